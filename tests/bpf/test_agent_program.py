"""``mip4_agent`` -- one program at ingress of a mobility agent's interfaces -- and the
delivery of decapsulated datagrams to a visitor's hardware address, through
BPF_PROG_TEST_RUN.

* A tunnel packet from a registered (local, peer) pair is decapsulated (the home agent's
  reverse-tunnel exit, the foreign agent's tunnel exit), whatever the maps say about its
  addresses; from an unregistered peer it is never decapsulated.
* Otherwise a bound destination is tunnelled to its care-of address (home agent), and a
  source with a reverse tunnel to its home agent (foreign agent), inner TTL - 1 both.
* A decapsulated datagram whose destination is in ``mip4_visitors`` is redirected out of the
  visitor's interface to the visitor's hardware address, unchanged (as the user-space plane
  delivers it); any other goes to the stack.
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
    Peer,
    Program,
    Traffic,
    Tunnel,
    Visitor,
)
from mip4.wire.ip import IPv4Header, IPv4Packet

from .frames import CN, COA, ETH, HA, HOME, frame, inner, ip_of

LO = 1  # oif mode through the loopback: test runs never transmit
VISITOR_MAC = bytes.fromhex("02000000abcd")
OWN_MAC = bytes.fromhex("020000001234")

#: tunnelled by the home agent to the foreign agent's care-of address (inner: ``inner()``)
TUNNELLED = {
    "ipip": encapsulate_ipip(inner(), PyTunnel(HA, COA), forwarding=False),
    "gre": encapsulate_gre(inner(), PyTunnel(HA, COA), forwarding=False),
    "minimal": encapsulate_minimal(inner(), PyTunnel(HA, COA), forwarding=False),
}


@pytest.mark.parametrize("case", sorted(TUNNELLED))
def test_decapsulates_from_a_registered_peer_even_when_bound(plane: BpfPlane, case: str) -> None:
    plane.set_peer(Peer(COA, HA))
    # the outer destination bound and the outer source reverse-tunnelled: decap wins
    plane.set_binding(COA, Tunnel(HA, A("198.51.100.99"), oif=LO, mtu=1500))
    plane.set_reverse(HA, Tunnel(COA, A("198.51.100.99"), oif=LO, mtu=1500))
    r = plane.test_run(Program.AGENT, frame(TUNNELLED[case]))
    assert r.retval == TC_ACT_OK
    assert r.data[:14] == ETH
    assert ip_of(r.data) == inner()
    ev = plane.events()
    assert ev[Event.DECAP] == 1 and ev[Event.ENCAP] == 0
    assert plane.counters() == {(HA, Direction.DECAP): Traffic(1, len(inner()))}


@pytest.mark.parametrize("case", sorted(TUNNELLED))
def test_never_decapsulates_from_an_unregistered_peer(plane: BpfPlane, case: str) -> None:
    plane.set_peer(Peer(COA, A("10.0.0.2")))  # another home agent
    r = plane.test_run(Program.AGENT, frame(TUNNELLED[case]))
    assert r.retval == TC_ACT_OK
    assert r.data == frame(TUNNELLED[case])
    ev = plane.events()
    assert ev[Event.DECAP_UNKNOWN_PEER] == 1 and ev[Event.DECAP] == 0
    assert plane.counters() == {}


def test_bound_destination_is_tunnelled(plane: BpfPlane) -> None:
    """Home agent: a datagram for a bound home address, inner TTL - 1."""
    pkt = inner(src=CN, dst=HOME)
    plane.set_binding(HOME, Tunnel(HA, COA, Encap.GRE, key=9, oif=LO, mtu=1500))
    r = plane.test_run(Program.AGENT, frame(pkt))
    assert r.retval == TC_ACT_REDIRECT
    out = ip_of(r.data)
    assert out == encapsulate_gre(pkt, PyTunnel(HA, COA, gre_key=9), identification=0x1C46)
    assert plane.counters() == {(HOME, Direction.HA): Traffic(1, len(pkt))}


def test_reverse_tunnelled_source(plane: BpfPlane) -> None:
    """Foreign agent (RFC 3024): a visitor's datagram to its home agent, inner TTL - 1."""
    pkt = inner(src=HOME, dst=CN)
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO, mtu=1500))
    r = plane.test_run(Program.AGENT, frame(pkt))
    assert r.retval == TC_ACT_REDIRECT
    out = ip_of(r.data)
    outer = IPv4Header.decode(out)
    assert (outer.src, outer.dst, outer.protocol) == (COA, HA, 4)
    inner_pkt = IPv4Packet.decode(out[20:])
    assert inner_pkt.header.ttl == 63 and inner_pkt.header.src == HOME
    assert plane.counters() == {(HOME, Direction.REVERSE): Traffic(1, len(pkt))}


def test_nothing_known_passes_untouched(plane: BpfPlane) -> None:
    pkt = inner(src=CN, dst=A("10.0.0.6"))
    r = plane.test_run(Program.AGENT, frame(pkt))
    assert (r.retval, r.data) == (TC_ACT_OK, frame(pkt))
    assert plane.events()[Event.NOT_OURS] == 1


@pytest.mark.parametrize("program", [Program.AGENT, Program.DECAP])
@pytest.mark.parametrize("case", sorted(TUNNELLED))
def test_decapsulated_for_a_visitor_goes_to_its_hardware_address(
    plane: BpfPlane, program: Program, case: str
) -> None:
    plane.set_peer(Peer(COA, HA))
    plane.set_visitor(HOME, Visitor(LO, VISITOR_MAC, OWN_MAC))
    r = plane.test_run(program, frame(TUNNELLED[case]))
    assert r.retval == TC_ACT_REDIRECT
    assert r.data[:14] == VISITOR_MAC + OWN_MAC + b"\x08\x00"
    assert ip_of(r.data) == inner()  # delivered as it was sent: TTL unchanged
    ev = plane.events()
    assert ev[Event.DECAP_VISITOR] == 1 and ev[Event.DECAP] == 0


def test_decapsulated_for_someone_else_goes_to_the_stack(plane: BpfPlane) -> None:
    plane.set_peer(Peer(COA, HA))
    plane.set_visitor(A("10.0.0.6"), Visitor(LO, VISITOR_MAC, OWN_MAC))
    r = plane.test_run(Program.AGENT, frame(TUNNELLED["ipip"]))
    assert r.retval == TC_ACT_OK and r.data == frame(inner())


def test_visitor_map_round_trip(plane: BpfPlane) -> None:
    v = Visitor(7, VISITOR_MAC, OWN_MAC)
    plane.set_visitor(HOME, v)
    assert plane.visitors() == {HOME: v}
    assert plane.del_visitor(HOME) and not plane.del_visitor(HOME)
    assert plane.visitors() == {}
    with pytest.raises(ValueError):
        Visitor(7, b"\x01", OWN_MAC).pack()


@pytest.mark.parametrize("key", [None, 77], ids=["no-key", "key"])
def test_foreign_agent_peer_takes_any_gre_key(plane: BpfPlane, key: int | None) -> None:
    """A foreign agent is not told the binding's GRE key: as its user-space plane, it
    decapsulates GRE from its home agent with any key or none (``Peer.any_key``)."""
    plane.set_peer(Peer(COA, HA, any_key=True))
    assert plane.peers() == [Peer(COA, HA, any_key=True)]
    packet = encapsulate_gre(inner(), PyTunnel(HA, COA, gre_key=key), forwarding=False)
    r = plane.test_run(Program.AGENT, frame(packet))
    assert (r.retval, ip_of(r.data)) == (TC_ACT_OK, inner())
    assert plane.events()[Event.DECAP] == 1


@pytest.mark.parametrize("program", [Program.AGENT, Program.REVERSE_ENCAP, Program.HOST_ENCAP])
@pytest.mark.parametrize(
    "dst",
    [COA, A("255.255.255.255"), A("224.0.0.11"), A("224.0.0.1")],
    ids=["the-agent", "broadcast", "mobile-agents", "all-systems"],
)
def test_what_a_visitor_sends_the_agent_is_not_reverse_tunnelled(
    plane: BpfPlane, program: Program, dst: A
) -> None:
    """A visitor with a reverse tunnel still talks to its foreign agent: its Registration
    Requests to the agent's address (RFC 5944 §3.7; a re-registration, or the visitor back
    at an agent that still holds its entry) and its Agent Solicitations (RFC 5944 §2.4,
    multicast or broadcast) go on to the stack, as the kernel's local and broadcast routes
    come before the reverse tunnel's policy rule in the user-space plane."""
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO, mtu=1500))
    pkt = inner(src=HOME, dst=dst)
    r = plane.test_run(program, frame(pkt))
    assert (r.retval, r.data) == (TC_ACT_OK, frame(pkt))
    ev = plane.events()
    assert ev[Event.LOCAL] == 1 and ev[Event.ENCAP] == 0
    assert plane.counters() == {}
    # anything else from the visitor is tunnelled (a co-located node's, out of the
    # tunnel's own device, sent on)
    sent = TC_ACT_OK if program is Program.HOST_ENCAP else TC_ACT_REDIRECT
    assert plane.test_run(program, frame(inner(src=HOME, dst=CN))).retval == sent
    assert plane.events()[Event.ENCAP] == 1


def test_the_daemons_link_level_frames_bypass_the_egress_programs() -> None:
    """A mobile node moving from its co-located address to a foreign agent sends its
    Registration Request to the agent itself, on the link (AF_PACKET), before the reverse
    tunnel of its co-located attachment is undone: ``mip4_host_encap`` at the interface's
    egress would tunnel it to the home agent from the care-of address it just left. The
    daemons' link-level sockets bypass the qdisc layer, where tc's egress hook is."""
    from mip4.io.rawsock import PACKET_QDISC_BYPASS, SOL_PACKET, open_packet_sender

    sock = open_packet_sender()
    try:
        assert sock.getsockopt(SOL_PACKET, PACKET_QDISC_BYPASS) == 1
    finally:
        sock.close()
