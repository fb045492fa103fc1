"""Issue 13: the foreign agent's own tables (``fa_state.VisitorList`` / ``PendingList``):
slotted records keyed by the integer home address, the earliest expiry exact and O(1)
amortised, the same answers as the general in-memory stores of ``core/bindings.py``, and a
visitor that costs well under half of what a dict-backed record did."""

from __future__ import annotations

import gc
import random
import tracemalloc
from dataclasses import replace
from ipaddress import IPv4Address

from mip4.core.bindings import (
    InMemoryPendingStore,
    InMemoryVisitorStore,
    PendingStore,
    VisitorStore,
)
from mip4.core.events import UdpReceived
from mip4.core.fa_state import (
    PendingList,
    PendingRegistration,
    Visitor,
    VisitorList,
    build,
)
from mip4.core.timers import earliest
from mip4.wire.messages import NO_FLAGS, RegistrationFlags

from .test_foreign_agent import FA_ADDR, HA, MAC, from_ha, from_mn, make_fa, reply, request, sas

A = IPv4Address
BASE = int(A("10.7.0.0"))


def _visitor(i: int, expires: float | None, rng: random.Random) -> Visitor:
    """A visitor for home address ``BASE + i`` with fresh address objects, as a decoder
    hands them over."""
    return Visitor(
        home_address=A(BASE + i),
        interface="vis0",
        link_address=bytes([2, 0, 0, 0, i >> 8 & 0xFF, i & 0xFF]),
        ip_source=A(BASE + i),
        ip_destination=A(int(FA_ADDR)),
        udp_source_port=rng.choice((434, 5555)),
        home_agent=A(int(HA)),
        care_of_address=A(int(FA_ADDR)),
        identification=rng.getrandbits(64),
        requested_lifetime=600,
        lifetime=600,
        expires=expires,
        flags=NO_FLAGS,
    )


def _pending(i: int, expires: float, rng: random.Random) -> PendingRegistration:
    return PendingRegistration(
        home_address=A(BASE + i),
        interface="vis0",
        link_address=None,
        ip_source=A(BASE + i),
        ip_destination=A(int(FA_ADDR)),
        udp_source_port=434,
        home_agent=A(int(HA)),
        care_of_address=A(int(FA_ADDR)),
        identification=rng.getrandbits(64),
        requested_lifetime=600,
        flags=NO_FLAGS,
        relayed_at=expires - 7.0,
        expires=expires,
    )


def test_the_tables_are_the_stores_the_engine_expects() -> None:
    assert isinstance(VisitorList(), VisitorStore)
    assert isinstance(PendingList(), PendingStore)
    fa = make_fa(sas())
    assert isinstance(fa._visitors, VisitorList) and isinstance(fa._pending, PendingList)


def test_records_are_slotted_and_build_equals_the_constructor() -> None:
    rng = random.Random(5)
    v = _visitor(1, 10.0, rng)
    p = _pending(1, 10.0, rng)
    made_v = build(Visitor, *[getattr(v, name) for name in v.__dataclass_fields__])
    made_p = build(PendingRegistration, *[getattr(p, name) for name in p.__dataclass_fields__])
    for record, made in ((v, made_v), (p, made_p)):
        assert not hasattr(record, "__dict__") and not hasattr(made, "__dict__")
        assert made == record and type(made) is type(record)
    assert v.colocated is False
    assert replace(v, flags=RegistrationFlags.D).colocated is True
    assert p.low_identification == p.identification & 0xFFFFFFFF


def _check_same(ops: int, seed: int, make_record: str) -> None:
    """Random puts (deadlines earlier, later, none), removals, expiries and peeks on the
    integer-keyed table and on the general store: the same answers at every step, and the
    next expiry is the minimum over the table's records."""
    rng = random.Random(seed)
    if make_record == "visitor":
        ours: VisitorList | PendingList = VisitorList()
        general: InMemoryVisitorStore | InMemoryPendingStore = InMemoryVisitorStore()
    else:
        ours, general = PendingList(), InMemoryPendingStore()
    now = 0.0
    keys = 40
    for _ in range(ops):
        op = rng.random()
        i = rng.randrange(keys)
        if op < 0.55:
            expires = None if rng.random() < 0.1 else now + rng.uniform(0.0, 30.0)
            if make_record == "visitor":
                record: Visitor | PendingRegistration = _visitor(i, expires, rng)
            else:
                record = _pending(i, now + rng.uniform(0.0, 30.0), rng)
            old_ours = ours.put(record)  # type: ignore[arg-type]
            old_general = general.put(record)  # type: ignore[arg-type]
            assert old_ours == old_general
        elif op < 0.7:
            assert ours.remove(A(BASE + i)) == general.remove(A(BASE + i))
        elif op < 0.85:
            now += rng.uniform(0.0, 5.0)
            got = ours.pop_expired(now)
            want = general.pop_expired(now)
            assert sorted(got, key=lambda r: int(r.home_address)) == sorted(
                want, key=lambda r: int(r.home_address)
            )
            assert all(r.expires is not None and r.expires <= now for r in got)
        else:
            assert ours.get(A(BASE + i)) == general.get(A(BASE + i))
        truth = earliest(r.expires for r in ours)
        assert ours.next_expiry() == truth == general.next_expiry()
        assert len(ours) == len(general)
        assert sorted(map(int, (r.home_address for r in ours))) == sorted(
            map(int, (r.home_address for r in general))
        )


def test_visitor_list_answers_as_the_general_store() -> None:
    for seed in range(12):
        _check_same(1500, seed, "visitor")


def test_pending_list_answers_as_the_general_store() -> None:
    for seed in range(12):
        _check_same(1500, 100 + seed, "pending")


def test_pending_deadlines_in_order_take_no_heap() -> None:
    """Pending deadlines come ``pending_timeout`` after their requests, in order: they
    queue in the FIFO (no heap item), and the table still answers as the general store
    through replies, retransmissions, timeouts, a clock step back and a changed timeout
    (out of order: the heap)."""
    rng = random.Random(5)
    table = PendingList()
    for i in range(1000):  # requests relayed one after the other: no heap item
        table.put(_pending(i, 7.0 + i * 0.001, rng))
    assert not table._heap and len(table._fifo) == 1000
    for i in range(0, 1000, 2):  # answered: their items are dropped as they surface
        table.remove(A(BASE + i))
    assert table.next_expiry() == 7.001 and len(table._fifo) == 999
    assert [int(r.home_address) - BASE for r in table.pop_expired(7.5)] == list(range(1, 501, 2))
    ours, general = PendingList(), InMemoryPendingStore()
    now, timeout = 0.0, 7.0
    heap_used = False
    for step in range(6000):
        i = rng.randrange(300)
        op = rng.random()
        if step == 3000:
            now -= 20.0  # a clock step back: deadlines out of order from here
        if step == 4500:
            timeout = 2.0  # a changed pending_timeout
        if op < 0.5:
            record = _pending(i, now + timeout, rng)
            assert ours.put(record) == general.put(record)
        elif op < 0.9:
            assert ours.remove(A(BASE + i)) == general.remove(A(BASE + i))
        else:
            now += rng.uniform(0.0, 3.0)
            got = sorted(ours.pop_expired(now), key=lambda r: int(r.home_address))
            assert got == sorted(general.pop_expired(now), key=lambda r: int(r.home_address))
        now += 0.001
        truth = earliest(r.expires for r in ours)
        assert ours.next_expiry() == truth == general.next_expiry()
        assert len(ours) == len(general)
        assert len(ours._fifo) + len(ours._heap) <= 2 * len(ours) + 1024 + 1
        heap_used = heap_used or bool(ours._heap)
    assert heap_used  # the step back and the shorter timeout went to the heap


def test_a_renewal_storm_pushes_nothing() -> None:
    """Renewals that move deadlines later leave the heap at one item per record, and every
    peek in between costs no heap operation beyond the moves due (O(1) amortised)."""
    rng = random.Random(9)
    table = VisitorList()
    n = 2000
    for i in range(n):
        table.put(_visitor(i, 100.0 + i * 0.01, rng))
    assert len(table._heap) == n
    for r in range(1, 21):
        for i in range(n):
            table.put(_visitor(i, 100.0 + 50.0 * r + i * 0.01, rng))
            assert table.next_expiry() is not None
    assert len(table._heap) == n  # moved on, never duplicated
    assert table.next_expiry() == 100.0 + 50.0 * 20
    due = {int(v.home_address) for v in table if v.expires is not None and v.expires <= 1105.0}
    assert len(due) == 501
    assert {int(v.home_address) for v in table.pop_expired(1105.0)} == due
    assert len(table) == n - 501 and table.next_expiry() == 100.0 + 50.0 * 20 + 5.01
    # moved earlier, again and again: the heap stays bounded by the table
    for r in range(30):
        for i in range(200):
            table.put(_visitor(i, 5000.0 - r - i * 0.001, rng))
    assert len(table._heap) <= 2 * len(table) + 1024
    assert table.next_expiry() == min(v.expires for v in table if v.expires is not None)


def test_records_share_the_addresses_visitors_repeat() -> None:
    rng = random.Random(3)
    table = VisitorList()
    a, b = _visitor(1, 10.0, rng), _visitor(2, 10.0, rng)
    table.put(a)
    table.put(b)
    got_a, got_b = table.get(A(BASE + 1)), table.get(A(BASE + 2))
    assert got_a is not None and got_b is not None
    assert got_a.home_agent is got_b.home_agent and got_a.home_agent == HA
    assert got_a.care_of_address is got_b.care_of_address
    assert got_a.ip_destination is got_b.ip_destination
    assert got_a.ip_source is got_a.home_address  # equal: one object


def _register(n: int) -> tuple[int, int]:
    """``n`` nodes registered through a fresh agent, each datagram's addresses and
    hardware address new objects (as a socket hands them over); the bytes the agent holds
    afterwards."""
    fa = make_fa(sas(fa_ha=False), max_visitors=n + 1, max_pending=n + 1)
    fa.handle_timer(0.0)
    hoa0 = int(A("10.0.0.10"))
    pairs = [
        (
            request(hoa=A(hoa0 + i), ident=(i + 1) << 32),
            reply(hoa=A(hoa0 + i), ident=(i + 1) << 32, fa_ha=None),
        )
        for i in range(n)
    ]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i, (req_raw, rep_raw) in enumerate(pairs):
        src = A(hoa0 + i)
        fa.handle(
            UdpReceived(req_raw, src, A(int(FA_ADDR)), 434, 434, "vis0", bytes(MAC), ttl=255), 1.0
        )
        fa.handle(
            UdpReceived(rep_raw, A(int(HA)), A(int(FA_ADDR)), 434, 434, "up0", None, ttl=64), 1.0
        )
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return len(fa.visitors), held


def test_a_visitor_costs_under_700_bytes() -> None:
    """Dict-backed records keyed by ``IPv4Address`` held ~1,220 bytes per visitor
    (``benchmarks/fa_relay.py --visitor-memory 100000`` before issue 13's tables); slotted
    records, integer keys, shared addresses and one heap item ~500."""
    n = 3000
    visitors, held = _register(n)
    assert visitors == n
    assert held / n < 700, held / n


def test_next_deadline_is_the_earliest_of_every_part() -> None:
    """``ForeignAgent.next_deadline`` (tested parts, no list of generators) answers what
    the earliest of every part's deadline gives, through requests, replies, timeouts,
    expiries and advertisements on a virtual clock."""
    rng = random.Random(11)
    fa = make_fa(sas(fa_ha=False), pending_timeout=7.0, max_pending=100, max_visitors=100)
    hoa0 = int(A("10.0.0.10"))
    now = 0.0
    fa.handle_timer(now)
    asked: dict[int, int] = {}
    for step in range(3000):
        now += rng.uniform(0.0, 0.4)
        i = rng.randrange(60)
        hoa = A(hoa0 + i)
        ident = (step + 1) << 32
        if rng.random() < 0.45:
            lifetime = rng.choice((0, 5, 30, 600))
            fa.handle(from_mn(request(hoa=hoa, ident=ident, lifetime=lifetime), src=hoa), now)
            asked[i] = ident
        elif asked:
            i, ident = rng.choice(list(asked.items()))
            del asked[i]
            hoa = A(hoa0 + i)
            code = rng.choice((0, 0, 0, 129))
            fa.handle(
                from_ha(reply(code, rng.choice((5, 30, 600)), hoa=hoa, ident=ident, fa_ha=None)),
                now,
            )
        if rng.random() < 0.3:
            fa.handle_timer(now)
        want = earliest(
            [
                fa._advertiser.next_deadline(),
                fa._pending.next_expiry(),
                fa._visitors.next_expiry(),
                *(p.expires for p in fa._nai_pending.values()),
                *(s.next_interim for s in fa._sessions.values()),
                fa._revocations.next_deadline(),
            ]
        )
        truth = earliest(
            [
                fa._advertiser.next_deadline(),
                *(p.expires for p in fa.pending),
                *(v.expires for v in fa.visitors),
            ]
        )
        assert fa.next_deadline() == want == truth
    counts = fa.counters.snapshot()
    assert sum(counts["accepted"].values()) > 300 and counts["events"]["visitor_expired"] > 100
    assert counts["denied"]["78 fa_registration_timeout"] > 5


def test_a_renewal_put_of_the_records_own_objects_is_the_general_put() -> None:
    """Issue 13: ``VisitorList.put`` of a record that holds the replaced record's own
    address objects (a renewal: the relay fast path builds it from the old one) skips the
    sharing; it answers as the general store, and every record stays as a put of fresh
    objects (the sharing done each time) leaves it: its addresses the shared ones, its
    source its home address object when equal -- also with the shared map full."""
    rng = random.Random(11)

    class Small(VisitorList):
        __slots__ = ()
        SHARED_ADDRESSES = 3  # full from the third address on

    for table in (VisitorList, Small):
        ours, fresh, general = table(), table(), InMemoryVisitorStore()
        now, renewals = 0.0, 0
        for _ in range(3000):
            i = rng.randrange(30)
            op = rng.random()
            held = ours.get(A(BASE + i))
            if op < 0.6 and held is not None:
                expires = None if rng.random() < 0.05 else now + rng.uniform(-5.0, 30.0)
                record = replace(held, expires=expires, identification=rng.getrandbits(64))
                renewals += 1
            elif op < 0.85:
                record = _visitor(i, now + rng.uniform(0.0, 30.0), rng)
                if rng.random() < 0.3:  # another home agent / care-of address
                    record = replace(
                        record,
                        home_agent=A(int(HA) + rng.randrange(4)),
                        care_of_address=A(int(FA_ADDR) + rng.randrange(4)),
                    )
            elif op < 0.92:
                assert ours.remove(A(BASE + i)) == general.remove(A(BASE + i))
                fresh.remove(A(BASE + i))
                continue
            else:
                now += rng.uniform(0.0, 5.0)
                got = sorted(ours.pop_expired(now), key=lambda r: int(r.home_address))
                assert got == sorted(general.pop_expired(now), key=lambda r: int(r.home_address))
                fresh.pop_expired(now)
                continue
            copy = replace(
                record,
                home_address=A(int(record.home_address)),
                ip_source=A(int(record.ip_source)),
                ip_destination=A(int(record.ip_destination)),
                home_agent=A(int(record.home_agent)),
                care_of_address=A(int(record.care_of_address)),
            )
            assert ours.put(record) == general.put(record) == fresh.put(copy)
            assert ours.next_expiry() == general.next_expiry() == fresh.next_expiry()
            for v in ours:
                assert v.ip_source is v.home_address or v.ip_source != v.home_address
                for address in (v.ip_destination, v.home_agent, v.care_of_address):
                    assert ours._share(address) is address
            assert sorted(map(repr, ours)) == sorted(map(repr, fresh))
        assert renewals > 1000
        assert len(ours._heap) <= 2 * len(ours) + 1024
