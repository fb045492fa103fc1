"""Every slow path returns the packet untouched (``TC_ACT_OK``, same bytes) so the kernel
handles it -- the per-binding route into the MTU-limited tunnel device sends "fragmentation
needed" and "time exceeded" (RFC 2003 §4--5) -- and counts why (``mip4_events``)."""

from __future__ import annotations

import pytest

from mip4.io.bpf.plane import TC_ACT_OK, TC_ACT_REDIRECT, BpfPlane, Encap, Event, Program, Tunnel

from .frames import CN, COA, HA, HOME, frame, in_private_netns, inner

LO = 1


def untouched(plane: BpfPlane, program: Program, packet: bytes, **kw: int) -> dict[Event, int]:
    f = frame(packet)
    r = plane.test_run(program, f, **kw)
    assert r.retval == TC_ACT_OK
    assert r.data == f
    assert plane.counters() == {}
    ev = plane.events()
    assert ev[Event.ENCAP] == 0
    return ev


def test_no_binding(plane: BpfPlane) -> None:
    plane.set_binding(HOME, Tunnel(HA, COA, oif=LO, mtu=1500))
    other = inner(dst=HA)
    assert untouched(plane, Program.HA_ENCAP, other)[Event.NOT_OURS] == 1
    assert untouched(plane, Program.REVERSE_ENCAP, inner())[Event.NOT_OURS] == 2


def test_not_ipv4(plane: BpfPlane) -> None:
    plane.set_binding(HOME, Tunnel(HA, COA, oif=LO, mtu=1500))
    arp = bytes.fromhex("ffffffffffff020000000001 0806") + bytes(28)
    r = plane.test_run(Program.HA_ENCAP, arp)
    assert (r.retval, r.data) == (TC_ACT_OK, arp)
    # EtherType IPv4 but version 6 (a test run refuses frames shorter than an IPv4 header)
    v6 = bytearray(frame(inner()))
    v6[14] = 0x65
    r = plane.test_run(Program.HA_ENCAP, bytes(v6))
    assert (r.retval, r.data) == (TC_ACT_OK, bytes(v6))


@pytest.mark.parametrize("ttl", [0, 1])
@pytest.mark.parametrize("program", [Program.HA_ENCAP, Program.REVERSE_ENCAP])
def test_ttl_expiring_when_forwarding(plane: BpfPlane, ttl: int, program: Program) -> None:
    """RFC 2003 §3.1 / RFC 791: TTL - 1 would reach 0: the kernel sends time exceeded."""
    t = Tunnel(HA, COA, oif=LO, mtu=1500)
    plane.set_binding(HOME, t)
    plane.set_reverse(HOME, t)
    # (reverse: to a correspondent; a datagram to the tunnel's own entry address, HA here,
    # is for the agent itself and never tunnelled: test_agent_program.py)
    pkt = inner(ttl=ttl) if program is Program.HA_ENCAP else inner(src=HOME, dst=CN, ttl=ttl)
    assert untouched(plane, program, pkt)[Event.SLOW_TTL] == 1


def test_ttl_zero_never_encapsulated_by_the_host(plane: BpfPlane) -> None:
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO, mtu=1500))
    assert untouched(plane, Program.HOST_ENCAP, inner(src=HOME, dst=HA, ttl=0))[Event.SLOW_TTL] == 1


def test_source_is_the_tunnel_exit(plane: BpfPlane) -> None:
    """RFC 2003 §3.2: never tunnel a datagram whose source is the tunnel exit point."""
    plane.set_binding(HOME, Tunnel(HA, COA, oif=LO, mtu=1500))
    assert untouched(plane, Program.HA_ENCAP, inner(src=COA))[Event.SLOW_LOOP] == 1


@pytest.mark.parametrize(
    ("encap", "key", "overhead"),
    [
        (Encap.IPIP, None, 20),
        (Encap.GRE, None, 24),
        (Encap.GRE, 9, 28),
        (Encap.MINIMAL, None, 12),
    ],
)
@pytest.mark.parametrize("df", [True, False])
def test_too_big_for_the_path(
    plane: BpfPlane, encap: Encap, key: int | None, overhead: int, df: bool
) -> None:
    """A packet that does not fit the outgoing MTU once encapsulated goes to the kernel
    (DF: fragmentation needed from the tunnel device; no DF: the kernel fragments); one
    byte less fits and is encapsulated."""
    plane.set_binding(HOME, Tunnel(HA, COA, encap, key=key, oif=LO, mtu=1400))
    fits = 1400 - overhead
    big = inner(payload_len=fits - 28 + 1, df=df)
    assert len(big) == fits + 1
    assert untouched(plane, Program.HA_ENCAP, big)[Event.SLOW_TOO_BIG] == 1
    ok = inner(payload_len=fits - 28, df=df)
    r = plane.test_run(Program.HA_ENCAP, frame(ok))
    assert r.retval == TC_ACT_REDIRECT and len(r.data) == 14 + 1400


@pytest.mark.parametrize(
    ("why", "packet", "gso"),
    [
        ("gso", inner(payload_len=3000), 1400),
        ("fragment", inner(mf=True, df=False), 0),
    ],
)
def test_minimal_strict_leaves_gso_and_fragments_to_the_kernel(
    plane: BpfPlane, why: str, packet: bytes, gso: int
) -> None:
    plane.set_binding(HOME, Tunnel(HA, COA, Encap.MINIMAL, oif=LO, mtu=1500, minimal_strict=True))
    kw = {"gso_size": gso, "gso_segs": 3} if gso else {}
    ev = untouched(plane, Program.HA_ENCAP, packet, **kw)
    assert ev[Event.SLOW_MINIMAL] == 1, why
    assert ev[Event.MINIMAL_FALLBACK] == 0


def _fib_run(forwarding: bool) -> dict[Event, int]:
    """In a fresh namespace (loopback only, no route): the HA program in fib mode."""
    with BpfPlane() as plane:
        plane.set_binding(HOME, Tunnel(HA, COA))  # oif 0: bpf_fib_lookup
        return untouched(plane, Program.HA_ENCAP, inner())


def test_no_route_to_the_care_of_address() -> None:
    """bpf_fib_lookup finds no route: untouched (the kernel answers, e.g. unreachable)."""
    ev = in_private_netns(lambda: _fib_run(True), forwarding=True)
    assert ev[Event.SLOW_NO_ROUTE] == 1


def test_forwarding_disabled() -> None:
    """bpf_fib_lookup answers "forwarding disabled" when ip_forward is 0 (a host: such a
    node uses ``oif`` mode instead)."""
    ev = in_private_netns(lambda: _fib_run(False), forwarding=False)
    assert ev[Event.SLOW_FWD_DISABLED] == 1
