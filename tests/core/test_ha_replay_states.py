"""The home agent's replay table (issue 13): :class:`~mip4.security.replay.ReplayStates`
holds a timestamps-only state as the bare Identification and answers records like a dict
of :class:`~mip4.security.replay.ReplayState` (RFC 5944 §5.7: what is kept per node)."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from mip4.security.replay import ReplayState, ReplayStates

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
    """No record per node: the replay table's value is the binding's own int."""
    from .test_engine_memory import BASE, _home_agent, _requests

    ha, sas = _home_agent(3)
    for i, ev in enumerate(_requests(3, sas, 1.0, 0.5)):
        ha.handle(ev, 1.0 + i * 0.5)
    for i, ev in enumerate(_requests(3, sas, 60.0, 0.5)):
        ha.handle(ev, 60.0 + i * 0.5)
    assert ha.fast_renewals == 3
    replay = ha._replay
    assert isinstance(replay, ReplayStates)
    for i in range(3):
        (b,) = ha.bindings.bindings_of(A(BASE + i))
        assert replay.raw[int(b.home_address)] is b.identification
        assert ha.replay_state[b.home_address] == ReplayState(b.identification)
