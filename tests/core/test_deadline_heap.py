"""The deadline heap of the general in-memory tables (``bindings._DeadlineHeap``: the
visitor and pending stores of ``core/bindings.py``, which the SQLite store's visitor list
uses too): every pop gives exactly what is due, ``next_expiry`` is exact (or, past the peek
budget, no later than the true one), and superseded items are dropped a few at a time by
the pushes that follow -- a drain, as in the home agent's expiry order -- never by
rebuilding the heap in one push (O(n): a pause at a million entries)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.core.bindings import _DeadlineHeap, _InMemoryHomeAddressStore

A = IPv4Address
BASE = 0x0A000010


@dataclass(frozen=True)
class Entry:
    home_address: IPv4Address
    expires: float | None
    tag: int = 0


class _Small(_DeadlineHeap):
    __slots__ = ()


def _store(budget: int, slack: int, drain: int) -> _InMemoryHomeAddressStore[Entry]:
    limits = {"PEEK_BUDGET": budget, "SLACK": slack, "DRAIN": drain, "__slots__": ()}
    store: _InMemoryHomeAddressStore[Entry] = _InMemoryHomeAddressStore()
    store._heap = type("Small", (_Small,), limits)()
    return store


def _check(store: _InMemoryHomeAddressStore[Entry], began: int | None, pushed: bool) -> None:
    """Both parts are valid heaps; every entry has a live item (its key's queued deadline,
    no later than its own); after a push, the items are at most twice the keys plus
    ``SLACK`` -- or, while a drain is under way, at most what it began with plus one per
    ``DRAIN`` of those."""
    heap = store._heap
    for part in (heap._heap, heap._old):
        assert all(part[(i - 1) // 2] <= part[i] for i in range(1, len(part)))
    union = heap._heap + heap._old
    for entry in store:
        if entry.expires is None:
            continue
        queued = heap._queued.get(entry.home_address)
        assert queued is not None and queued <= entry.expires
        assert (queued, entry.home_address) in union
    if heap.draining():
        assert began is not None and len(heap) <= began + -(-began // heap.DRAIN)
    elif pushed:
        assert len(heap) <= 2 * len(heap._queued) + heap.SLACK + 1


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["put", "sooner", "sooner", "sooner", "remove", "pop", "pop_some"]),
        st.integers(0, 5),
        st.one_of(st.none(), st.integers(0, 60).map(float)),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(_OPS, st.sampled_from([1, 2, 1024]), st.sampled_from([0, 2, 1024]), st.sampled_from([1, 3]))
def test_the_general_tables_expire_as_a_model_does_through_drains(
    ops: list[tuple[str, int, float | None]], budget: int, slack: int, drain: int
) -> None:
    """Entries put, moved earlier again and again (superseded items: with a small
    ``SLACK`` the heap is set aside and drained over several pushes), removed, popped at
    once and a few items at a time: the same as a dict of deadlines."""
    store = _store(budget, slack, drain)
    model: dict[IPv4Address, float | None] = {}
    now = 0.0
    began: int | None = None
    for op, h, t in ops:
        hoa = A(BASE + h)
        if op in ("put", "sooner"):
            expires = None if t is None else now + t
            was = model.get(hoa)
            if op == "sooner" and was is not None:
                expires = was - 1.0
            draining = store._heap.draining()
            queued = store._heap._queued.get(hoa)
            pushed = expires is not None and (queued is None or expires < queued)
            store.put(Entry(hoa, expires, h))
            model[hoa] = expires
            if store._heap.draining() and not draining:
                began = len(store._heap)  # (set aside by this push)
            _check(store, began, pushed)
        elif op == "remove":
            store.remove(hoa)
            model.pop(hoa, None)
        else:
            now += 1.0 if t is None else t / 4
            due = {k for k, d in model.items() if d is not None and d <= now}
            if op == "pop":
                got = store.pop_expired(now)
            else:  # a few items at a time, while the next expiry says some are due
                got = []
                for _ in range(4 * len(store._heap) + 4):
                    keys = store._heap.pop_due(now, store._deadline, 2)
                    got += [e for e in map(store.remove, keys) if e is not None]
                    nxt = store.next_expiry()
                    if nxt is None or nxt > now:
                        break
            assert {e.home_address for e in got} == due
            for k in due:
                del model[k]
        assert {e.home_address: e.expires for e in store} == model
        finite = [d for d in model.values() if d is not None]
        nxt = store.next_expiry()
        if budget == 1024:
            assert nxt == (min(finite) if finite else None)
        elif finite:
            assert nxt is not None and nxt <= min(finite)


def test_superseded_items_go_a_drain_at_a_time_never_all_in_one_push() -> None:
    """100,000 entries whose deadlines are all moved earlier, again and again: past the
    bound the heap is set aside, and each push then looks at no more than ``DRAIN`` items
    of it (the work a push does is bounded, whatever the table's size); each drain ends
    within the pushes that follow, the superseded items gone, and every entry still
    expires at its deadline."""
    n = 100_000
    store: _InMemoryHomeAddressStore[Entry] = _InMemoryHomeAddressStore()
    heap = store._heap
    for i in range(n):
        store.put(Entry(A(BASE + i), 1000.0 + i))
    assert len(heap) == n and not heap.draining()
    drains, began = 0, 0
    for step in (1, 2, 3):  # every deadline moved earlier, three times: superseded items
        for i in range(n):
            old_before = len(heap._old)
            draining = heap.draining()
            store.put(Entry(A(BASE + i), 1000.0 - 100 * step + i))
            if draining:
                assert 0 <= old_before - len(heap._old) <= heap.DRAIN
            elif heap.draining():
                drains += 1
                began = len(heap._old)
                assert began == 2 * n + heap.SLACK + 1  # set aside only past the bound
            assert len(heap) <= max(2 * n + heap.SLACK + 1, began + -(-began // heap.DRAIN))
    # set aside twice (in the second and third rounds), each drain over in ~2n / DRAIN
    assert drains == 2 and not heap.draining()
    assert len(heap) <= 2 * n + heap.SLACK
    assert store.next_expiry() == 700.0
    assert len(store.pop_expired(700.0 + n / 2)) == n // 2 + 1
    assert store.next_expiry() == 700.0 + n // 2 + 1
    assert len(store.pop_expired(2000.0 + n)) == n - (n // 2 + 1)
    assert store.next_expiry() is None and not len(heap)
