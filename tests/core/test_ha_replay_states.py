"""The home agent's replay table (issue 13): :class:`~mip4.security.replay.ReplayStates`
holds a timestamps-only state as the bare Identification and answers records like a dict
of :class:`~mip4.security.replay.ReplayState` (RFC 5944 §5.7: what is kept per node)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mip4.core.actions import Encapsulation
from mip4.core.bindings import InMemoryBindingStore, MobilityBinding
from mip4.security.replay import HELD, ReplayState, ReplayStates
from mip4.wire.messages import RegistrationFlags

A = IPv4Address

_STATES = st.builds(
    ReplayState,
    st.one_of(st.none(), st.integers(0, 2**64 - 1)),
    st.one_of(st.none(), st.integers(0, 2**32 - 1)),
)


@given(st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), _STATES)), max_size=40))
def test_replay_states_answer_as_a_dict_of_records(
    steps: list[tuple[int, ReplayState | None]],
) -> None:
    ours = ReplayStates()
    model: dict[IPv4Address | str, ReplayState] = {}
    for node, state in steps:
        key: IPv4Address | str = A(0x0A000010 + node) if node % 2 else f"node{node}@example"
        if state is None:
            assert ours.pop(key, None) == model.pop(key, None)
        else:
            ours[key] = state
            model[key] = state
        assert dict(ours) == model and len(ours) == len(model)
        assert all(isinstance(v, ReplayState) for v in ours.values())
        assert ours.get(key) == model.get(key) and (key in ours) is (key in model)
    # a timestamps-only state is the Identification itself; any other, the record
    for key, state in model.items():
        held = ours.raw[key if isinstance(key, str) else int(key)]
        if state.nonce is None and state.last_accepted is not None:
            assert held == state.last_accepted and type(held) is int
        else:
            assert held is state
    assert dict(ReplayStates(model.items())) == model


def test_a_renewal_keeps_the_identification_the_binding_holds() -> None:
    """No record per node: the replay state is the binding's own int -- after a first
    registration the replay table's value, after a renewal the binding's, held for the
    replay table (whose value is then the one shared ``HELD``), read through it all the
    same."""
    from .test_engine_memory import BASE, _home_agent, _requests

    ha, sas = _home_agent(3)
    replay = ha._replay
    assert isinstance(replay, ReplayStates)
    for i, ev in enumerate(_requests(3, sas, 1.0, 0.5)):
        ha.handle(ev, 1.0 + i * 0.5)
    for i in range(3):
        (b,) = ha.bindings.bindings_of(A(BASE + i))
        assert replay.raw[int(b.home_address)] is b.identification and not b.holds_replay
    for i, ev in enumerate(_requests(3, sas, 60.0, 0.5)):
        ha.handle(ev, 60.0 + i * 0.5)
    assert ha.fast_renewals == 3
    for i in range(3):
        (b,) = ha.bindings.bindings_of(A(BASE + i))
        assert b.holds_replay and replay.raw[int(b.home_address)] is HELD
        assert ha.replay_state[b.home_address] == ReplayState(b.identification)
        assert (
            replay.get(b.home_address) == replay[b.home_address] == ha.replay_state[b.home_address]
        )
    assert len(replay) == 3 and set(replay) == {A(BASE + i) for i in range(3)}


def _held_binding(
    store: InMemoryBindingStore, replay: ReplayStates, hoa: IPv4Address, ident: int
) -> MobilityBinding:
    """A binding of ``hoa`` renewed as the fast path renews one (``ident`` accepted,
    held by the binding for ``replay``)."""
    b = MobilityBinding(hoa, A("192.0.2.1"), 600, 0.0, 600.0, ident - 1, RegistrationFlags(0))
    store.put(b)
    replay[hoa] = ReplayState(ident - 1)
    replay.raw[int(hoa)] = HELD
    store.renew_in_place(
        b, 600, 1.0, 601.0, ident, RegistrationFlags(0), Encapsulation.IPIP, False,
        A("192.0.2.1"), True,
    )  # fmt: skip
    assert b.holds_replay and replay[hoa] == ReplayState(ident) and replay.raw[int(hoa)] is HELD
    return b


def test_one_binding_table_holds_for_one_replay_table() -> None:
    store, replay = InMemoryBindingStore(), ReplayStates()
    assert store.hold_replay(replay) and store.hold_replay(replay)
    assert not store.hold_replay(ReplayStates())  # a second replay table: no
    assert not InMemoryBindingStore().hold_replay(replay)  # a second holder: no
    assert store.holding_for is replay


@pytest.mark.parametrize("how", ["remove", "remove-coa", "expire", "replace", "second", "renew"])
def test_a_binding_that_goes_gives_its_replay_state_back(how: str) -> None:
    """RFC 5944 §5.7: the state outlives the binding -- removed, expired, replaced by a
    new record, or no longer the node's only binding, the replay table has it again."""
    store, replay = InMemoryBindingStore(), ReplayStates()
    assert store.hold_replay(replay)
    hoa = A("10.0.0.5")
    b = _held_binding(store, replay, hoa, 1000)
    if how == "remove":
        assert store.remove(hoa) == (b,)
    elif how == "remove-coa":
        assert store.remove(hoa, b.care_of_address) == (b,)
    elif how == "expire":
        assert store.pop_expired(700.0) == [b]
    elif how == "replace":  # a new record for the same binding (the general path's put)
        store.put(MobilityBinding(hoa, b.care_of_address, 600, 2.0, 602.0, 3, b.flags))
    elif how == "second":  # a second care-of address (simultaneous bindings)
        store.put(MobilityBinding(hoa, A("192.0.2.2"), 600, 2.0, 602.0, 3, b.flags))
    else:
        store.renew(b, MobilityBinding(hoa, b.care_of_address, 600, 2.0, 602.0, 3, b.flags))
    assert not b.holds_replay
    assert replay.raw[int(hoa)] == 1000 and replay[hoa] == ReplayState(1000)


def test_a_write_to_the_replay_table_takes_the_state_back() -> None:
    """The general path writes the replay table (check_identification): from then on the
    state is what it wrote, whatever the binding's Identification."""
    store, replay = InMemoryBindingStore(), ReplayStates()
    assert store.hold_replay(replay)
    hoa, other = A("10.0.0.5"), A("10.0.0.6")
    b = _held_binding(store, replay, hoa, 1000)
    c = _held_binding(store, replay, other, 2000)
    replay[hoa] = ReplayState(1001, 7)
    assert not b.holds_replay and b.identification == 1000
    assert replay[hoa] == ReplayState(1001, 7) and dict(replay)[hoa] == ReplayState(1001, 7)
    store.remove(hoa)  # (nothing to give back: the table has it)
    assert replay[hoa] == ReplayState(1001, 7)
    assert c.holds_replay and replay.pop(other) == ReplayState(2000)
    assert not c.holds_replay and other not in replay and replay.get(other) is None
    store.remove(other)
    assert other not in replay and len(replay) == 1
