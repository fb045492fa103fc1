"""Encapsulation by the tc programs, through BPF_PROG_TEST_RUN (no namespace, no device).

Each output is checked twice with mip4's own code: decoded field by field with
:mod:`mip4.wire` (the decoders verify every checksum), and compared byte for byte with what
the user-space plane (:mod:`mip4.dataplane`) builds for the same packet -- the plane this one
replaces. The tunnels use ``oif`` mode (``bpf_redirect_neigh`` out of a named device), so no
route is needed; the ``bpf_fib_lookup`` mode is tested in ``test_slowpath.py`` (no route)
and ``test_lab.py`` (route found).
"""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from mip4.dataplane import Tunnel as PyTunnel
from mip4.dataplane import encapsulate_gre, encapsulate_ipip, encapsulate_minimal
from mip4.io.bpf.plane import (
    TC_ACT_OK,
    TC_ACT_REDIRECT,
    BpfPlane,
    Direction,
    Encap,
    Event,
    Program,
    Traffic,
    Tunnel,
)
from mip4.wire.ip import IPFlags, IPv4Header, IPv4Packet
from mip4.wire.tunnel import GREHeader, MinimalForwardingHeader

from .frames import CN, COA, ETH, HA, HOME, frame, inner, ip_of, tcp

LO = 1  # oif mode through the loopback: test runs never transmit


def tunnel(encap: Encap = Encap.IPIP, **kw: object) -> Tunnel:
    return Tunnel(HA, COA, encap, oif=LO, mtu=1500, **kw)  # type: ignore[arg-type]


def run_ha(plane: BpfPlane, packet: bytes, t: Tunnel, **kw: int) -> bytes:
    plane.set_binding(HOME, t)
    r = plane.test_run(Program.HA_ENCAP, frame(packet), **kw)
    assert r.retval == TC_ACT_REDIRECT
    assert r.data[:14] == ETH  # oif mode: the kernel fills the MACs on redirect
    return ip_of(r.data)


def check_inner_forwarded(original: bytes, got: bytes, ttl_delta: int = 1) -> None:
    """``got`` is ``original`` with TTL - ttl_delta and a valid checksum."""
    pkt = IPv4Packet.decode(got)  # verifies the header checksum
    orig = IPv4Packet.decode(original)
    assert pkt.header.ttl == orig.header.ttl - ttl_delta
    assert pkt.header.src == orig.header.src and pkt.header.dst == orig.header.dst
    assert pkt.payload == orig.payload


def test_ipip_outer_fields_checksums_and_inner_ttl(plane: BpfPlane) -> None:
    pkt = inner(tos=0x10, df=True)
    out = run_ha(plane, pkt, tunnel())
    outer = IPv4Header.decode(out)  # verifies the outer checksum
    assert (outer.src, outer.dst, outer.protocol) == (HA, COA, 4)
    assert outer.ttl == 64 and outer.tos == 0x10 and outer.flags == IPFlags.DF
    assert outer.total_length == len(pkt) + 20 == len(out)
    check_inner_forwarded(pkt, out[20:])
    # the same bytes as the user-space plane (outer ID: the inner one)
    assert out == encapsulate_ipip(pkt, PyTunnel(HA, COA), identification=0x1C46)
    assert plane.events()[Event.ENCAP] == 1


@pytest.mark.parametrize("tos", [0x00, 0xB8, 0x03])
def test_tos_copied_and_df_clear_stays_clear(plane: BpfPlane, tos: int) -> None:
    pkt = inner(tos=tos, df=False)
    outer = IPv4Header.decode(run_ha(plane, pkt, tunnel()))
    assert outer.tos == tos and not outer.dont_fragment and not outer.is_fragment


def test_outer_ttl_from_the_binding(plane: BpfPlane) -> None:
    out = run_ha(plane, inner(ttl=9), tunnel(ttl=17))
    assert IPv4Header.decode(out).ttl == 17
    assert IPv4Header.decode(out, 20).ttl == 8


def test_gre_without_key(plane: BpfPlane) -> None:
    pkt = inner()
    out = run_ha(plane, pkt, tunnel(Encap.GRE))
    outer = IPv4Header.decode(out)
    assert (outer.protocol, outer.total_length) == (47, len(pkt) + 24)
    gre = GREHeader.decode(out, 20)
    assert gre == GREHeader(0x0800, False, None, None)
    check_inner_forwarded(pkt, out[24:])
    assert out == encapsulate_gre(pkt, PyTunnel(HA, COA), identification=0x1C46)


def test_gre_with_key(plane: BpfPlane) -> None:
    pkt = inner()
    out = run_ha(plane, pkt, tunnel(Encap.GRE, key=0xDEADBEEF))
    outer = IPv4Header.decode(out)
    assert (outer.protocol, outer.total_length) == (47, len(pkt) + 28)
    assert GREHeader.decode(out, 20) == GREHeader(0x0800, False, 0xDEADBEEF, None)
    check_inner_forwarded(pkt, out[28:])
    expected = encapsulate_gre(pkt, PyTunnel(HA, COA, gre_key=0xDEADBEEF), identification=0x1C46)
    assert out == expected


def test_minimal_with_source(plane: BpfPlane) -> None:
    """RFC 2004 §3: the home agent is not the original source, so S is set and the original
    source travels in the forwarding header; the modified original header keeps its ID, TOS
    and (decremented) TTL."""
    pkt = inner(ttl=64)
    out = run_ha(plane, pkt, tunnel(Encap.MINIMAL))
    outer = IPv4Header.decode(out)
    assert (outer.src, outer.dst, outer.protocol) == (HA, COA, 55)
    assert outer.ttl == 63 and outer.identification == 0x1C46 and outer.tos == 0x10
    assert outer.total_length == len(pkt) + 12
    m = MinimalForwardingHeader.decode(out, 20)  # verifies its checksum
    assert m == MinimalForwardingHeader(17, HOME, CN)
    assert out[32:] == pkt[20:]
    assert out == encapsulate_minimal(pkt, PyTunnel(HA, COA))


def test_minimal_without_source(plane: BpfPlane) -> None:
    """RFC 2004 §3: S clear when the encapsulator is the original source -- a node
    tunnelling its own datagram (the egress program, TTL left alone)."""
    pkt = inner(src=CN, dst=HOME)
    plane.set_reverse(CN, Tunnel(CN, COA, Encap.MINIMAL, oif=LO, mtu=1500))
    r = plane.test_run(Program.HOST_ENCAP, frame(pkt))
    assert r.retval == TC_ACT_OK  # out of the tunnel's device: sent on
    out = ip_of(r.data)
    outer = IPv4Header.decode(out)
    assert (outer.src, outer.dst, outer.protocol, outer.ttl) == (CN, COA, 55, 64)
    assert outer.total_length == len(pkt) + 8
    assert MinimalForwardingHeader.decode(out, 20) == MinimalForwardingHeader(17, HOME, None)
    assert out == encapsulate_minimal(pkt, PyTunnel(CN, COA), forwarding=False)


@pytest.mark.parametrize(
    ("why", "packet"),
    [
        ("first fragment", inner(mf=True, df=False)),
        ("last fragment", inner(frag_offset=100, df=False)),
        ("options", inner(options=b"\x01\x01\x01\x00")),
    ],
)
def test_minimal_falls_back_to_ipip(plane: BpfPlane, why: str, packet: bytes) -> None:
    """RFC 2004 §3 forbids minimal encapsulation of fragments (and our header rewrite
    handles no options): IP in IP instead."""
    out = run_ha(plane, packet, tunnel(Encap.MINIMAL))
    outer = IPv4Header.decode(out)
    assert outer.protocol == 4, why
    assert outer.total_length == len(packet) + 20
    assert not outer.is_fragment  # the outer header is whole; only DF is copied
    hlen = IPv4Header.decode(packet).header_len
    got = IPv4Header.decode(out, 20)  # checksum verified
    assert got.ttl == 63 and got.header_len == hlen
    assert got.is_fragment == (why != "options")
    assert out[20 + hlen :] == packet[hlen:]
    assert plane.events()[Event.MINIMAL_FALLBACK] == 1


@pytest.mark.parametrize("encap", [Encap.IPIP, Encap.GRE, Encap.MINIMAL])
def test_gso_packet_is_never_half_done(plane: BpfPlane, encap: Encap) -> None:
    """A GSO packet is encapsulated as a unit, with the ENCAP flags so the kernel segments
    it as IPIP/GRE afterwards (minimal: IP in IP, no GSO handler for protocol 55). A test
    run cannot set the GSO type, and the kernel refuses to re-type such a packet: what
    matters here is that the refusal leaves the packet untouched (TTL included) for the
    kernel, and that minimal chose IP in IP first. TCP GSO through the fast path is the lab
    suite's part (issue 12 item 2)."""
    pkt = inner(payload_len=3000)
    plane.set_binding(HOME, tunnel(encap))
    r = plane.test_run(Program.HA_ENCAP, frame(pkt), gso_size=1400, gso_segs=3)
    assert (r.retval, r.data) == (TC_ACT_OK, frame(pkt))
    ev = plane.events()
    assert ev[Event.SLOW_ADJUST] == 1 and ev[Event.ENCAP] == 0
    assert ev[Event.MINIMAL_FALLBACK] == (1 if encap is Encap.MINIMAL else 0)
    assert plane.counters() == {}


@pytest.mark.parametrize(
    ("case", "gso_size", "too_big"),
    [
        ("tcp", 1360, False),
        ("tcp", 1361, True),
        ("tcp-options", 1348, False),  # 12 bytes of TCP options in every segment
        ("tcp-options", 1349, True),
        ("udp", 1372, False),
        ("udp", 1373, True),
    ],
)
def test_gso_segments_are_held_to_the_tunnels_mtu(
    plane: BpfPlane, case: str, gso_size: int, too_big: bool
) -> None:
    """Each outer segment of a GSO packet must fit the tunnel's MTU (1400 here): the kernel
    cuts outer segments as long as the inner ones are now (adjust_room shrinks gso_size by
    the overhead): the IP header, the TCP header (its data offset) or UDP's 8 bytes, and
    gso_size bytes. One byte over is the slow path, untouched: the stack sends fragmentation
    needed (RFC 2003 §5.1); at the limit the packet goes on to the encapsulation, which a
    test run's GSO packet of no type cannot pass (slow_adjust): the check came first."""
    pkt = (
        inner(payload_len=3000)
        if case == "udp"
        else tcp(payload_len=3000, options=3 if case == "tcp-options" else 0)
    )
    plane.set_binding(HOME, Tunnel(HA, COA, oif=LO, mtu=1400))
    r = plane.test_run(Program.HA_ENCAP, frame(pkt), gso_size=gso_size, gso_segs=3)
    assert (r.retval, r.data) == (TC_ACT_OK, frame(pkt))
    ev = plane.events()
    assert (ev[Event.SLOW_TOO_BIG], ev[Event.SLOW_ADJUST]) == ((1, 0) if too_big else (0, 1))


def test_reverse_tunnel_from_the_visitor_interface(plane: BpfPlane) -> None:
    """FA (RFC 3024): a visitor's datagram (source: its home address) to the home agent;
    the FA forwards it, so the inner TTL drops by one."""
    pkt = inner(src=HOME, dst=CN)
    plane.set_reverse(HOME, Tunnel(COA, HA, Encap.GRE, key=7, oif=LO, mtu=1500))
    r = plane.test_run(Program.REVERSE_ENCAP, frame(pkt))
    assert r.retval == TC_ACT_REDIRECT
    out = ip_of(r.data)
    outer = IPv4Header.decode(out)
    assert (outer.src, outer.dst, outer.protocol) == (COA, HA, 47)
    assert GREHeader.decode(out, 20).key == 7
    check_inner_forwarded(pkt, out[28:])
    assert plane.counters() == {(HOME, Direction.REVERSE): Traffic(1, len(pkt))}


def test_host_encap_leaves_the_ttl_alone(plane: BpfPlane) -> None:
    """Co-located node: it is the source, it does not forward (inner TTL unchanged)."""
    pkt = inner(src=HOME, dst=CN, ttl=1)
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO, mtu=1500))
    r = plane.test_run(Program.HOST_ENCAP, frame(pkt))
    assert r.retval == TC_ACT_OK
    out = ip_of(r.data)
    assert out[20:] == pkt
    assert out == encapsulate_ipip(pkt, PyTunnel(COA, HA), forwarding=False, identification=0x1C46)


def test_per_binding_counters_sum_over_cpus(plane: BpfPlane) -> None:
    other = A("10.0.0.6")
    plane.set_binding(other, tunnel())
    a, b = inner(payload_len=10), inner(dst=other, payload_len=100)
    for _ in range(3):
        run_ha(plane, a, tunnel())
    plane.test_run(Program.HA_ENCAP, frame(b))
    assert plane.counters() == {
        (HOME, Direction.HA): Traffic(3, 3 * len(a)),
        (other, Direction.HA): Traffic(1, len(b)),
    }
    assert plane.events()[Event.ENCAP] == 4
    plane.forget_counters(HOME)
    assert list(plane.counters()) == [(other, Direction.HA)]


def test_binding_map_round_trip(plane: BpfPlane) -> None:
    t1 = Tunnel(HA, COA, Encap.GRE, key=1)
    t2 = Tunnel(HA, A("198.51.100.21"), Encap.MINIMAL, oif=3, mtu=1400, ttl=9, minimal_strict=True)
    plane.set_binding(HOME, t1)
    plane.set_binding(A("10.0.0.6"), t2)
    assert plane.bindings() == {HOME: t1, A("10.0.0.6"): t2}
    plane.set_binding(HOME, t2)  # a renewal with a new care-of address: one update
    assert plane.bindings()[HOME] == t2
    assert plane.del_binding(HOME) and not plane.del_binding(HOME)
    assert list(plane.bindings()) == [A("10.0.0.6")]
    with pytest.raises(ValueError):
        Tunnel(HA, COA, Encap.IPIP, key=1).pack()


@pytest.mark.parametrize("same_device", [True, False], ids=["its-device", "another-device"])
def test_host_encap_sends_on_out_of_the_tunnels_own_device(
    plane: BpfPlane, same_device: bool
) -> None:
    """At the co-located node's egress the datagram was routed by table 435, whose route is
    the route to the home agent: leaving by the tunnel's device, the encapsulated packet goes
    on (``TC_ACT_OK``) with the Ethernet header the kernel built for that next hop, not
    redirected into the same device's queue and this hook again; leaving by another device,
    it is redirected to the tunnel's (``bpf_redirect_neigh``: the kernel resolves the next
    hop). Encapsulated and counted the same either way."""
    pkt = inner(src=HOME, dst=CN)
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO if same_device else LO + 100, mtu=1500))
    r = plane.test_run(Program.HOST_ENCAP, frame(pkt))
    assert r.retval == (TC_ACT_OK if same_device else TC_ACT_REDIRECT)
    assert r.data[:14] == frame(pkt)[:14]
    assert ip_of(r.data) == encapsulate_ipip(
        pkt, PyTunnel(COA, HA), forwarding=False, identification=0x1C46
    )
    assert plane.events()[Event.ENCAP] == 1
    assert plane.counters() == {(HOME, Direction.REVERSE): Traffic(1, len(pkt))}
