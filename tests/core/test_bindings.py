"""Registration tables (RFC 5944 §3.7.1, §3.8.1): in-memory stores and their deadlines."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mip4.core.actions import Encapsulation
from mip4.core.bindings import (
    BindingStore,
    InMemoryBindingStore,
    InMemoryPendingStore,
    InMemoryVisitorStore,
    MobilityBinding,
    PendingRegistration,
    PendingStore,
    Visitor,
    VisitorStore,
    same_binding,
)
from mip4.core.timers import earliest, expiry, remaining
from mip4.wire.messages import NO_FLAGS

A = IPv4Address
HOA = A("10.0.0.10")


def binding(hoa: IPv4Address, coa: IPv4Address, expires: float | None) -> MobilityBinding:
    return MobilityBinding(hoa, coa, 60, 0.0, expires, 1, NO_FLAGS)


def visitor(hoa: IPv4Address, expires: float | None) -> Visitor:
    return Visitor(
        hoa, "if0", b"\x02" * 6, hoa, A("10.1.0.1"), 434, A("10.0.0.1"), A("10.1.0.1"),
        7, 60, 60, expires, NO_FLAGS,
    )  # fmt: skip


def pending(hoa: IPv4Address, expires: float) -> PendingRegistration:
    return PendingRegistration(
        hoa, "if0", None, hoa, A("10.1.0.1"), 434, A("10.0.0.1"), A("10.1.0.1"),
        0x1_0000_0007, 60, NO_FLAGS, 0.0, expires,
    )  # fmt: skip


def test_stores_satisfy_their_protocols() -> None:
    assert isinstance(InMemoryBindingStore(), BindingStore)
    assert isinstance(InMemoryVisitorStore(), VisitorStore)
    assert isinstance(InMemoryPendingStore(), PendingStore)


def test_binding_store_keys_by_home_and_care_of_address() -> None:
    s = InMemoryBindingStore()
    c1, c2 = A("192.0.2.1"), A("192.0.2.2")
    assert s.put(binding(HOA, c1, 10.0)) is None
    assert s.put(binding(HOA, c2, 20.0)) is None
    old = s.put(binding(HOA, c1, 30.0))
    assert old is not None and old.expires == 10.0
    assert len(s) == 2 and s.mobile_nodes() == 1
    # The replaced deadline (10) is stale: the next one is 20.
    assert s.next_expiry() == 20.0
    assert s.pop_expired(15.0) == []
    assert [b.care_of_address for b in s.pop_expired(20.0)] == [c2]
    assert s.next_expiry() == 30.0
    assert [b.care_of_address for b in s.remove(HOA)] == [c1]
    assert len(s) == 0 and s.mobile_nodes() == 0 and s.next_expiry() is None
    assert s.remove(HOA) == ()


def test_infinite_binding_never_expires() -> None:
    s = InMemoryBindingStore()
    s.put(binding(HOA, A("192.0.2.1"), None))
    assert s.next_expiry() is None and s.pop_expired(1e12) == []
    assert len(s) == 1


def test_visitor_and_pending_stores() -> None:
    v = InMemoryVisitorStore()
    v.put(visitor(HOA, 50.0))
    v.put(visitor(A("10.0.0.11"), 40.0))
    assert v.next_expiry() == 40.0
    assert [x.home_address for x in v.pop_expired(45.0)] == [A("10.0.0.11")]
    assert v.get(HOA) is not None and len(v) == 1
    assert v.remove(HOA) is not None and v.next_expiry() is None
    p = InMemoryPendingStore()
    first = pending(HOA, 7.0)
    p.put(first)
    assert p.put(pending(HOA, 9.0)) == first  # one pending request per home address
    assert p.next_expiry() == 9.0 and len(p) == 1
    assert p.pop_expired(8.0) == []
    (gone,) = p.pop_expired(9.0)
    assert gone.low_identification == 7


def test_timers() -> None:
    assert expiry(10.0, 60) == 70.0
    assert expiry(10.0, 0xFFFF) is None
    assert remaining(10.0, 70.0) == 60 and remaining(80.0, 70.0) == 0
    assert remaining(0.0, None) == 0xFFFF
    assert earliest([None, 5.0, 3.0, None]) == 3.0 and earliest([None]) is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["put", "remove", "pop"]),
            st.integers(0, 3),
            st.integers(0, 2),
            st.one_of(st.none(), st.floats(0, 100)),
        ),
        max_size=40,
    )
)
def test_binding_store_matches_a_model(ops: list[tuple[str, int, int, float | None]]) -> None:
    s = InMemoryBindingStore()
    model: dict[tuple[IPv4Address, IPv4Address], float | None] = {}
    for op, h, c, t in ops:
        hoa, coa = A(f"10.0.0.{h + 10}"), A(f"192.0.2.{c + 1}")
        if op == "put":
            s.put(binding(hoa, coa, t))
            model[(hoa, coa)] = t
        elif op == "remove":
            s.remove(hoa, coa)
            model.pop((hoa, coa), None)
        else:
            now = t if t is not None else 50.0
            got = {(b.home_address, b.care_of_address) for b in s.pop_expired(now)}
            due = {k for k, d in model.items() if d is not None and d <= now}
            assert got == due
            for k in due:
                del model[k]
        assert len(s) == len(model)
        assert s.next_expiry() == earliest(model.values())
        assert {(b.home_address, b.care_of_address) for b in s} == set(model)


def test_views_are_read_only() -> None:
    from mip4.core.bindings import BindingTableView, PendingListView, VisitorListView

    store = InMemoryBindingStore()
    store.put(binding(HOA, A("192.0.2.1"), 5.0))
    view = BindingTableView(store)
    assert len(view) == 1 and view.next_expiry() == 5.0 and view.mobile_nodes() == 1
    assert [b.home_address for b in view] == [HOA]
    for v in (
        view,
        VisitorListView(InMemoryVisitorStore()),
        PendingListView(InMemoryPendingStore()),
    ):
        assert not hasattr(v, "put") and not hasattr(v, "remove") and not hasattr(v, "pop_expired")


def test_bindings_of_one_lifetime_share_its_object() -> None:
    """Issue 13: a store's million bindings of 600 s hold one ``600`` (28 bytes each
    otherwise)."""
    s = InMemoryBindingStore()
    made = []
    for i in range(3):
        lifetime = int(str(600 + i % 2))  # a new int object each time, as the wire gives
        b = MobilityBinding(A(0x0A000001 + i), A("192.0.2.1"), lifetime, 1.0, 601.0, i, NO_FLAGS)
        s.put(b)
        made.append(b)
    assert made[0].lifetime is made[2].lifetime == 600
    assert made[1].lifetime == 601
    assert s.bindings_of(A(0x0A000003)) == (
        MobilityBinding(A(0x0A000003), A("192.0.2.1"), 600, 1.0, 601.0, 2, NO_FLAGS),
    )


def test_deadlines_of_nodes_behind_one_care_of_address_spread_over_the_table() -> None:
    """Issue 13: the expiry order is keyed by home address alone -- the table's own integer
    key, no ``care-of << 32 | home`` key and no dict of them (keyed ``home << 32 |
    care-of``, every binding behind one foreign agent once started at the same slot of
    that dict: 680 ns a lookup at a million bindings) -- one item per node."""
    s = InMemoryBindingStore()
    coa = A("198.18.0.2")
    n = 4096
    for i in range(n):
        s.put(binding(A(0x0A000100 + i), coa, 600.0 + i % 7))
    assert sorted(item & 0xFFFFFFFF for item in s._heap._heap) == list(
        range(0x0A000100, 0x0A000100 + n)
    )
    assert not s._heap.odd()
    # the keys still name the bindings: each expires at its own deadline, once
    assert len(s.pop_expired(600.0)) == len(range(0, n, 7))
    assert s.next_expiry() == 601.0
    assert len(s.pop_expired(700.0)) == n - len(range(0, n, 7)) and len(s) == 0


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.one_of(st.none(), st.integers(1, 40))),
        max_size=60,
    )
)
def test_renew_in_place_is_remove_then_put(steps: list[tuple[int, int | None]]) -> None:
    """``InMemoryBindingStore.renew`` (the renewal fast path: no heap operation when the
    deadline moves later) answers as ``remove`` then ``put`` do, deadline by deadline,
    and keeps one heap item per binding."""
    coa = A("198.18.0.2")
    fast, slow = InMemoryBindingStore(), InMemoryBindingStore()
    now = 0.0
    for node, expires in steps:
        hoa = A(0x0A000100 + node)
        deadline = None if expires is None else now + expires
        new = binding(hoa, coa, deadline)
        current = fast.bindings_of(hoa)
        if current:
            fast.renew(current[0], new)
            slow.remove(hoa)
        else:
            fast.put(new)
        slow.put(binding(hoa, coa, deadline))
        assert fast.next_expiry() == slow.next_expiry()
        now += 1.0
        assert fast.pop_expired(now) == slow.pop_expired(now)
        assert sorted(map(repr, fast)) == sorted(map(repr, slow))
        assert len(fast._heap) <= len(fast) + len(steps)
    assert fast.pop_expired(1e9) == slow.pop_expired(1e9)
    assert fast.next_expiry() is None and slow.next_expiry() is None
    assert sorted(map(repr, fast)) == sorted(map(repr, slow))  # the infinite ones
    assert all(b.expires is None for b in fast)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.one_of(st.none(), st.integers(1, 40)),
            st.sampled_from([60, 600]),
            st.sampled_from(["198.18.0.9", "198.18.0.10"]),
            st.booleans(),
        ),
        max_size=60,
    )
)
def test_renew_in_place_is_remove_then_put_of_a_new_record(
    steps: list[tuple[int, int | None, int, str, bool]],
) -> None:
    """``InMemoryBindingStore.renew_in_place`` (the renewal fast path, issue 13: no new
    record per renewal) leaves the table as ``remove`` then ``put`` of the new record do,
    deadline by deadline, keeps the node's record object, and answers
    :func:`same_binding` of the record before and after."""
    coa = A("198.18.0.2")
    fast, slow = InMemoryBindingStore(), InMemoryBindingStore()
    now = 0.0
    for node, expires, lifetime, source, reverse in steps:
        hoa = A(0x0A000100 + node)
        deadline = None if expires is None else now + expires
        fields = (lifetime, now, deadline, int(now) + 7, NO_FLAGS, Encapsulation.IPIP, reverse)
        new = MobilityBinding(hoa, coa, *fields, A(source))
        current = fast.bindings_of(hoa)
        if current:
            (record,) = current
            want = same_binding(slow.bindings_of(hoa)[0], new)
            assert fast.renew_in_place(record, *fields, A(source)) is want
            assert fast.bindings_of(hoa)[0] is record
            slow.remove(hoa)
        else:
            fast.put(dataclasses.replace(new))
        slow.put(new)
        assert sorted(map(repr, fast)) == sorted(map(repr, slow))
        assert fast.next_expiry() == slow.next_expiry()
        now += 1.0
        assert fast.pop_expired(now) == slow.pop_expired(now)
        assert len(fast._heap) <= len(fast) + len(steps)
    assert fast.pop_expired(1e9) == slow.pop_expired(1e9)
    assert sorted(map(repr, fast)) == sorted(map(repr, slow))


@pytest.mark.parametrize("source", ["198.18.0.9", "198.18.0.10"])
@pytest.mark.parametrize("identical", [True, False])
def test_renew_in_place_answers_alike_for_the_records_own_source_and_an_equal_one(
    source: str, identical: bool
) -> None:
    """``renew_in_place`` tests the source's identity before its equality (issue 13): the
    record's own address object and an equal one answer alike and leave the record's
    object in place; another address replaces it and is not the same binding."""
    hoa, coa, old = A("10.0.1.5"), A("198.18.0.2"), A("198.18.0.9")
    fields = (600, 0.0, 600.0, 7, NO_FLAGS, Encapsulation.IPIP, False)
    store = InMemoryBindingStore()
    store.put(MobilityBinding(hoa, coa, *fields, old))
    (record,) = store.bindings_of(hoa)
    src = old if identical and source == str(old) else A(source)
    assert (src is record.source) is (identical and source == str(old))
    renewed = (601, 1.0, 601.0, 8, NO_FLAGS, Encapsulation.IPIP, False)
    assert store.renew_in_place(record, *renewed, src) is False  # another lifetime
    assert record.source == src
    assert (record.source is old) is (src == old)
    again = (601, 2.0, 602.0, 9, NO_FLAGS, Encapsulation.IPIP, False)
    assert store.renew_in_place(record, *again, src) is True  # nothing else changed
    assert store.renew_in_place(record, *again, A("198.18.0.77")) is False
    assert record.source == A("198.18.0.77")
