"""The binding table's expiry order (``core/ha_deadlines.py``, issue 13): one integer per
home address, stale items only for the nodes written down in ``_odd``, held against a model
of the table through every store operation, with simultaneous bindings, limited pops, a
small peek budget and drains of a heap set aside (no O(n) rebuild in one call)."""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.core.actions import Encapsulation
from mip4.core.bindings import InMemoryBindingStore, MobilityBinding
from mip4.core.ha_deadlines import INFINITE, HomeAddressDeadlines, deadline_key
from mip4.core.timers import earliest
from mip4.wire.messages import NO_FLAGS

A = IPv4Address


def _binding(hoa: IPv4Address, coa: IPv4Address, expires: float | None) -> MobilityBinding:
    return MobilityBinding(hoa, coa, 60, 0.0, expires, 1, NO_FLAGS)


@given(st.lists(st.floats(allow_nan=False), min_size=2, max_size=2))
def test_deadline_keys_sort_as_the_deadlines(pair: list[float]) -> None:
    a, b = pair
    if a == b == 0.0:
        return  # -0.0 and 0.0: equal floats, distinct keys (both sort with zero)
    assert (deadline_key(a) < deadline_key(b)) is (a < b)
    assert (deadline_key(a) == deadline_key(b)) is (a == b)
    assert deadline_key(None) == deadline_key(math.inf) == INFINITE


class _Small(HomeAddressDeadlines):
    """Small budgets, what the last drain began with (``began``: the items then), and how
    many drain steps were taken (``steps``)."""

    __slots__ = ("began", "steps")

    def __init__(self) -> None:
        super().__init__()
        self.began = self.steps = 0

    def _set_aside(self) -> None:
        self.began = len(self)
        super()._set_aside()

    def _drain(self) -> int:
        self.steps += 1
        return super()._drain()


def _small(budget: int, slack: int, drain: int) -> _Small:
    limits = {"PEEK_BUDGET": budget, "SLACK": slack, "DRAIN": drain, "__slots__": ()}
    small: _Small = type("Small", (_Small,), limits)()
    return small


def _check(store: InMemoryBindingStore, pushed: bool = False) -> None:
    """The structure's invariants, on the union of the heap and the one set aside (a
    drain under way): both are valid heaps; a node with bindings has one live item, at or
    before its deadline; a node in ``_odd`` has that many stale items besides; any other
    node has exactly its live item, or nothing; after a push, the items are at most twice
    the nodes plus ``SLACK`` (a removal leaves its item until it surfaces) -- or, while a
    drain is under way, at most what it began with plus one per ``DRAIN`` of those."""
    heap: HomeAddressDeadlines = store._heap
    for part in (heap._heap, heap._old):
        assert all(part[(i - 1) // 2] <= part[i] for i in range(1, len(part)))
    union = heap._heap + heap._old
    assert len(heap) == len(union)
    items = Counter(item & 0xFFFFFFFF for item in union)
    keys: dict[int, list[int]] = {}
    for item in union:
        keys.setdefault(item & 0xFFFFFFFF, []).append(item >> 32)
    odd = heap.odd()
    assert heap._odd_n == len(odd)
    assert all(hoa % len(heap._odd) == i for i, shard in enumerate(heap._odd) for hoa in shard)
    for hoa in set(items) | set(store._by_hoa) | set(odd):
        deadline = store._deadline(hoa)
        live, stale = odd.get(hoa, (None, 0))
        if hoa not in odd and deadline is not None:
            live = min(keys[hoa])
        assert items[hoa] == stale + (live is not None), hoa
        assert (live is None) is (deadline is None)
        if deadline is not None:
            assert live is not None and live <= deadline_key(deadline)
            assert live in keys[hoa]
        if hoa in odd:
            assert stale >= 1
    if pushed:
        if heap.draining():
            assert isinstance(heap, _Small)
            assert len(heap) <= heap.began + -(-heap.began // heap.DRAIN)
        else:
            assert len(heap) <= 2 * (len(store._by_hoa) + len(odd)) + heap.SLACK + 1


_OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["put", "put", "sooner", "sooner", "remove", "remove_all", "renew", "pop", "pop_some"]
        ),
        st.integers(0, 3),
        st.integers(0, 2),
        st.one_of(st.none(), st.integers(0, 60).map(float)),
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(
    _OPS,
    st.sampled_from([1, 2, 1024]),
    st.sampled_from([0, 2, 1024]),
    st.sampled_from([1, 3, 128]),
)
def test_the_expiry_order_matches_a_model(
    ops: list[tuple[str, int, int, float | None]], budget: int, slack: int, drain: int
) -> None:
    """Bindings (several per node, S bit) put, removed, renewed in place, popped with and
    without a limit: every pop returns exactly what is due, each binding at its own
    deadline; ``next_expiry`` is exact, or -- past the peek budget only -- no later than
    the true one; the invariants hold after every step."""
    _run_model(ops, budget, slack, drain)


_SOONER = st.lists(
    st.tuples(
        st.sampled_from(["sooner"] * 6 + ["put", "remove", "remove_all", "renew", "pop_some"]),
        st.integers(0, 1),
        st.integers(0, 2),
        st.one_of(st.none(), st.integers(0, 60).map(float)),
    ),
    min_size=20,
    max_size=80,
)


@settings(max_examples=200)
@given(_SOONER, st.sampled_from([1, 1024]), st.sampled_from([0, 2]), st.sampled_from([1, 3]))
def test_the_expiry_order_matches_a_model_through_drains(
    ops: list[tuple[str, int, int, float | None]], budget: int, slack: int, drain: int
) -> None:
    """The same, deadlines moved earlier again and again: a small ``SLACK`` sets the
    heap aside, a small ``DRAIN`` makes each drain last several pushes, with pushes,
    removals, renewals and limited pops while it is under way."""
    _run_model(ops, budget, slack, drain)


def _run_model(
    ops: list[tuple[str, int, int, float | None]], budget: int, slack: int, drain: int
) -> None:
    store = InMemoryBindingStore()
    store._heap = _small(budget, slack, drain)
    model: dict[tuple[IPv4Address, IPv4Address], float | None] = {}
    now = 0.0
    for op, h, c, t in ops:
        hoa, coa = A(0x0A000010 + h), A(0xC0000201 + c)
        later = None if t is None else now + t
        pushed = op in ("put", "sooner")
        if op == "sooner":  # a deadline moved earlier (a stale item each time, drains)
            was = model.get((hoa, coa))
            later = later if was is None else was - 1.0
        if pushed:
            store.put(_binding(hoa, coa, later))
            model[(hoa, coa)] = later
        elif op == "remove":
            store.remove(hoa, coa)
            model.pop((hoa, coa), None)
        elif op == "remove_all":
            store.remove(hoa)
            model = {k: v for k, v in model.items() if k[0] != hoa}
        elif op == "renew":
            only = store.bindings_of(hoa)
            if len(only) == 1:
                (record,) = only
                fields = (60, now, later, 2, NO_FLAGS, Encapsulation.IPIP, False)
                store.renew_in_place(record, *fields, coa)
                pushed = True
                model[(hoa, record.care_of_address)] = later
        else:
            now += 1.0 if t is None else t / 4
            due = {k for k, d in model.items() if d is not None and d <= now}
            got: list[MobilityBinding] = []
            if op == "pop":
                got = store.pop_expired(now)
            else:
                for _ in range(4 * len(store._heap) + 4):
                    got += store.pop_expired(now, limit=2)
                    nxt = store.next_expiry()
                    if nxt is None or nxt > now:
                        break
            keys = [(b.home_address, b.care_of_address) for b in got]
            assert sorted(keys) == sorted(due) and len(keys) == len(set(keys))
            assert all(b.expires is not None and b.expires <= now for b in got)
            for k in due:
                del model[k]
        _check(store, pushed)
        assert len(store) == len(model)
        assert {(b.home_address, b.care_of_address) for b in store} == set(model)
        true = earliest(model.values())
        got_next = store.next_expiry()
        if budget >= 1024:
            assert got_next == true
        else:
            # past the budget: a lower bound (only ``None`` when there is no deadline)
            assert true is None if got_next is None else true is None or got_next <= true
        _check(store)
    for _ in range(len(ops) + 1):  # each call moves ``budget`` items on
        if budget >= 1024 or store.next_expiry() == earliest(model.values()):
            break
    assert store.next_expiry() == earliest(model.values())


def test_simultaneous_bindings_expire_each_at_its_own_deadline() -> None:
    store = InMemoryBindingStore()
    hoa = A("10.0.0.10")
    store.put(_binding(hoa, A("192.0.2.1"), 30.0))
    store.put(_binding(hoa, A("192.0.2.2"), 10.0))
    store.put(_binding(hoa, A("192.0.2.3"), None))
    store.put(_binding(hoa, A("192.0.2.4"), 20.0))
    assert len(store._heap) == 2  # the first deadline's item, and 10 (moved earlier)
    assert store.next_expiry() == 10.0
    assert [b.care_of_address for b in store.pop_expired(15.0)] == [A("192.0.2.2")]
    assert store.next_expiry() == 20.0
    assert [b.care_of_address for b in store.pop_expired(30.0)] == [
        A("192.0.2.4"),
        A("192.0.2.1"),
    ]
    assert store.next_expiry() is None and len(store) == 1
    assert store.pop_expired(1e12) == []
    (left,) = store
    assert left.care_of_address == A("192.0.2.3")


def test_renewals_push_nothing_and_leave_no_record() -> None:
    """The usual renewal (a later deadline) costs no heap operation and no ``_odd``
    entry: the heap stays one item per node."""
    store = InMemoryBindingStore()
    coa = A("198.18.0.2")
    for round_ in range(5):
        for i in range(100):
            store.put(_binding(A(0x0A000100 + i), coa, 600.0 + round_))
    assert len(store._heap) == 100 and not store._heap.odd()
    assert store.next_expiry() == 604.0


def test_stale_items_are_drained_away() -> None:
    """A deadline moved earlier over and over leaves stale items; past ``SLACK`` beyond
    one per node the heap is set aside and drained, ``DRAIN`` items a push, dropping the
    stale ones: the items stay within the bound."""
    store = InMemoryBindingStore()
    hoa, coa = A("10.0.0.10"), A("192.0.2.1")
    for i in range(3000):
        store.put(_binding(hoa, coa, 1e6 - i))
        assert len(store._heap) <= 2 * 2 + HomeAddressDeadlines.SLACK + 1
    assert store.next_expiry() == 1e6 - 2999
    assert len(store.pop_expired(1e6)) == 1 and len(store) == 0


def test_no_one_dict_holds_the_stale_items_of_every_node() -> None:
    """A population whose deadlines all move earlier (registering again with a shorter
    lifetime) puts every home address in ``_odd``: spread over its dicts, so that the
    insertion that grows one copies a share of them, not all (CPython copies a dict
    whole as it grows it: 21.9-30.9 ms on the loop's thread at 699,050 entries)."""
    store = InMemoryBindingStore()
    coa, n = A("192.0.2.1"), 20_000
    for i in range(n):  # consecutive home addresses: a pool's
        store.put(_binding(A(0x0A000000 + i), coa, 1000.0))
    for i in range(n):
        store.put(_binding(A(0x0A000000 + i), coa, 500.0))
    heap = store._heap
    shards = [len(shard) for shard in heap._odd]
    assert sum(shards) == heap._odd_n == n
    assert len(shards) >= 200 and max(shards) <= n // len(shards) + 1
    assert len(store.pop_expired(500.0)) == n
    for _ in range(n // heap.PEEK_BUDGET + 2):  # (the stale items, dropped as they surface)
        if store.next_expiry() is None:
            break
    assert store.next_expiry() is None and len(heap) == 0
    assert heap._odd_n == 0 and not heap.odd()


@pytest.mark.parametrize("n", [1, 50])
def test_a_deregistered_node_leaves_a_stale_item_that_surfaces_once(n: int) -> None:
    store = InMemoryBindingStore()
    coa = A("192.0.2.1")
    for i in range(n):
        store.put(_binding(A(0x0A000100 + i), coa, 10.0))
        store.remove(A(0x0A000100 + i))
        store.put(_binding(A(0x0A000100 + i), coa, 20.0))
    assert len(store._heap) == 2 * n and len(store._heap.odd()) == n
    assert store.next_expiry() == 20.0  # the stale items dropped on the way
    assert len(store._heap) == n and not store._heap.odd()
    assert len(store.pop_expired(20.0)) == n and len(store._heap) == 0


def test_a_mass_deregistration_does_not_rebuild_the_heap_in_one_call() -> None:
    """Nodes gone leave one item each, dropped as they surface (bounded work per call):
    the next registration pushes one item, it does not rebuild the heap (O(n))."""
    store = InMemoryBindingStore()
    coa = A("192.0.2.1")
    n = 3000
    for i in range(n):
        store.put(_binding(A(0x0A000100 + i), coa, 100.0 + i))
    for i in range(n - 10):
        store.remove(A(0x0A000100 + i))
    store.put(_binding(A(0x0A100000), coa, 50.0))
    assert len(store._heap) == n + 1  # nothing rebuilt
    assert store.next_expiry() == 50.0


def _lines_run(call: Callable[..., object], *args: object) -> int:
    """How many lines of ``core/ha_deadlines.py`` ``call(*args)`` runs: the work it does on
    the expiry heap, counted, not timed."""
    here = HomeAddressDeadlines.peek.__code__.co_filename
    count = 0

    def local(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame: FrameType, event: str, arg: object) -> Any:
        return local if frame.f_code.co_filename == here else None

    before = sys.gettrace()
    sys.settrace(calls)
    try:
        call(*args)
    finally:
        sys.settrace(before)
    return count


@pytest.mark.parametrize("n", [1500, 6000])
def test_no_push_handles_more_than_a_bounded_number_of_items(n: int) -> None:
    """Issue 13 (no pause longer than 10 ms: bounded work per call): every node's
    deadline moved earlier by 1 s, wave after wave, through ``put`` and the renewal fast
    path (``renew_in_place``) -- each wave leaves a stale item per node, and the 4th
    passes the bound. No call rebuilds the heap (O(n): at a million nodes one ``put``
    took 548 ms): each drains at most ``DRAIN`` items of the heap set aside, so the
    lines of ``ha_deadlines.py`` one call runs are bounded whatever ``n`` is (a rebuild
    runs three per node). The drain ends, the stale items with it, and the bindings
    expire as before."""
    drain = 16
    store = InMemoryBindingStore()
    store._heap = _small(1024, 1024, drain)
    coa = A("192.0.2.1")
    for i in range(n):
        store.put(_binding(A(0x0A000000 + i), coa, 1000.0))
    worst = 0
    for wave in range(1, 7):
        deadline = 1000.0 - wave
        for i in range(n):
            if wave % 2:
                b = _binding(A(0x0A000000 + i), coa, deadline)
                lines = _lines_run(store.put, b)
            else:
                record = store.only_binding(0x0A000000 + i)
                assert record is not None
                fields = (60, 0.0, deadline, 2, NO_FLAGS, Encapsulation.IPIP, False, coa)
                lines = _lines_run(store.renew_in_place, record, *fields)
            worst = max(worst, lines)
    # per call: the push (under 20 lines), and at most ``drain`` items of under 12 each
    assert worst <= 20 + drain * 12
    assert isinstance(store._heap, _Small)
    assert store._heap.steps >= 4 * n // drain  # (the 4n items set aside went that way)
    _check(store, pushed=True)
    assert len(store._heap) <= 4 * n  # nodes moved on once since the last drain began
    assert store.next_expiry() == 994.0
    assert len(store.pop_expired(994.0)) == n and len(store) == 0
    assert store.pop_expired(1000.0) == [] and len(store._heap) == 0 and not store._heap.odd()
