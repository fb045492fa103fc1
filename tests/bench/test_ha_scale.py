"""The home agent's engine at scale (issue 13), counted rather than timed: a mass expiry is
spread over ``handle_timer`` calls that each do a bounded amount of work, and the binding
table's deadline heap stays the size of the table under a renewal storm."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from types import FrameType
from typing import Any

from mip4.core.actions import RemoveBinding
from mip4.core.bindings import InMemoryBindingStore, MobilityBinding
from mip4.core.events import UdpReceived
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.auth import sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import NO_FLAGS, RegistrationFlags, RegistrationRequest

HA = IPv4Address("10.0.0.1")
NET = IPv4Network("10.0.0.0/8")
COA = IPv4Address("192.168.1.1")
UNIX0 = 1_790_000_000.0
KEY = b"k" * 16


def _hoa(i: int) -> IPv4Address:
    return IPv4Address(0x0A000010 + i)


def _home_agent(n: int) -> HomeAgent:
    store = SecurityAssociations()
    for i in range(n):
        store.add(_hoa(i), SecurityAssociation(256 + i, KEY))
    config = HomeAgentConfig(address=HA, home_network=NET, interface="home0")
    return HomeAgent(config, store, UNIX0)


def _request(i: int, now: float, lifetime: int = 60) -> UdpReceived:
    req = RegistrationRequest(
        NO_FLAGS, lifetime, _hoa(i), HA, COA, ntp_timestamp(UNIX0 + now, low=i), ()
    )
    req = sign(req, MobileHomeAuthExtension, SecurityAssociation(256 + i, KEY))
    return UdpReceived(req.raw or req.encode(), _hoa(i), HA, 434, 434, "home0", None, ttl=64)


def _lines_executed(func: Callable[[], object]) -> int:
    """How many Python lines ``func`` executes (a loop body counts once per iteration)."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    # a collection during the call would count the lines of whatever gc.callbacks hold
    # (the daemon's freeze_survivors, left by earlier tests in this process): not the
    # call's work
    collecting = gc.isenabled()
    gc.disable()
    sys.settrace(lambda frame, event, arg: local)
    try:
        func()
    finally:
        sys.settrace(None)
        if collecting:
            gc.enable()
    return count


def _mass_expiry(n: int) -> tuple[int, int, list[int]]:
    """``n`` bindings registered at once, renewed once, then all expiring together:
    (how many handle_timer calls it took, the most lines one call executed, how many
    bindings each call removed)."""
    ha = _home_agent(n)
    for i in range(n):
        ha.handle(_request(i, 0.0), 0.0)
    for i in range(n):  # a renewal each: the old deadlines are stale heap items
        ha.handle(_request(i, 30.0), 30.0)
    assert len(ha.bindings) == n
    now = 90.0
    calls, most, removed = 0, 0, []
    while (deadline := ha.next_deadline()) is not None and deadline <= now:
        out: list[object] = []
        most = max(most, _lines_executed(lambda out=out: out.extend(ha.handle_timer(now))))  # type: ignore[misc]
        removed.append(sum(isinstance(a, RemoveBinding) for a in out))
        calls += 1
        assert calls <= 4 * n, "no progress"
    assert len(ha.bindings) == 0
    assert sum(removed) == n
    return calls, most, removed


def test_a_mass_expiry_is_spread_over_calls_of_bounded_work() -> None:
    small_calls, small_most, small_removed = _mass_expiry(300)
    calls, most, removed = _mass_expiry(1500)
    batch = HomeAgent.EXPIRY_BATCH
    assert max(removed) <= batch and max(small_removed) <= batch
    assert calls >= 1500 // batch and calls > small_calls
    # the costliest call does the same work whether 300 or 1,500 bindings expire
    assert most <= small_most * 1.1, f"{small_most} lines (300 bindings), {most} (1,500)"


def _binding(i: int, now: float, lifetime: int) -> MobilityBinding:
    return MobilityBinding(
        _hoa(i), COA, lifetime, now, now + lifetime, i, RegistrationFlags(0), source=COA
    )


def test_the_deadline_heap_stays_the_size_of_the_table_under_a_renewal_storm() -> None:
    store = InMemoryBindingStore()
    n = 1000
    for now in range(0, 100):  # 100 renewals of each of 1,000 bindings
        for i in range(n):
            store.put(_binding(i, float(now), 600))
        if now % 10 == 0:
            assert store.next_expiry() == now + 600.0
    assert len(store._heap) == n  # one item per binding, not one per renewal
    assert store.next_expiry() == 99.0 + 600
    assert store.pop_expired(698.0) == []
    got = store.pop_expired(699.0)
    assert len(got) == n and len(store) == 0 and store.next_expiry() is None


def test_a_deadline_moved_earlier_is_kept_exactly() -> None:
    store = InMemoryBindingStore()
    store.put(_binding(0, 0.0, 600))
    store.put(_binding(0, 10.0, 60))  # shorter: due at 70, not 600
    store.put(_binding(1, 0.0, 100))
    assert store.next_expiry() == 70.0
    assert [b.home_address for b in store.pop_expired(70.0)] == [_hoa(0)]
    assert store.next_expiry() == 100.0
    store.put(_binding(1, 50.0, 65535))  # then infinite: never expires
    store.put(MobilityBinding(_hoa(1), COA, 65535, 50.0, None, 1, RegistrationFlags(0)))
    assert store.next_expiry() is None
    assert store.pop_expired(1e9) == []
    assert len(store) == 1


def test_a_limited_pop_leaves_the_next_expiry_at_or_before_now() -> None:
    store = InMemoryBindingStore()
    for i in range(50):
        store.put(_binding(i, 0.0, 10))
    got = store.pop_expired(10.0, limit=8)
    assert len(got) == 8
    expiry = store.next_expiry()
    assert expiry is not None and expiry <= 10.0
    while (expiry := store.next_expiry()) is not None and expiry <= 10.0:
        assert len(store.pop_expired(10.0, limit=8)) <= 8
    assert len(store) == 0


def test_bindings_share_one_care_of_address_object_and_the_sharing_is_bounded() -> None:
    store = InMemoryBindingStore()
    for i in range(1000):
        coa = IPv4Address(int(COA))  # a fresh object each time, as decoded from a request
        store.put(MobilityBinding(_hoa(i), coa, 60, 0.0, 60.0, i, RegistrationFlags(0)))
    assert len({id(b.care_of_address) for b in store}) == 1
    assert all(b.care_of_address == COA for b in store)
    many = InMemoryBindingStore()
    limit = InMemoryBindingStore.SHARED_CARE_OF_ADDRESSES
    for i in range(limit + 100):
        coa = IPv4Address(0xC0000000 + i)
        many.put(MobilityBinding(_hoa(i), coa, 60, 0.0, 60.0, i, RegistrationFlags(0)))
    assert len(many._coas) == limit
    assert [b.care_of_address for b in many] == [
        IPv4Address(0xC0000000 + i) for i in range(limit + 100)
    ]
