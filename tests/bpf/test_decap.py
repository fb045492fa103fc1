"""Decapsulation by ``mip4_decap`` through BPF_PROG_TEST_RUN: protocol 4/47/55 from a
registered (local, peer) pair is stripped and handed to the stack (``TC_ACT_OK`` with the
inner packet); anything else -- an unregistered peer above all -- goes on untouched.

The tunnelled packets are built by the user-space plane (:mod:`mip4.dataplane`) and by the
BPF encapsulation itself (round trip); the expected inner packets are what the user-space
decapsulators return.
"""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from mip4.dataplane import Tunnel as PyTunnel
from mip4.dataplane import (
    decapsulate_gre,
    decapsulate_ipip,
    decapsulate_minimal,
    encapsulate_gre,
    encapsulate_ipip,
    encapsulate_minimal,
)
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
)
from mip4.wire.ip import IPv4Packet, internet_checksum

from .frames import CN, COA, ETH, HA, HOME, frame, inner, ip_of

#: tunnelled by the home agent to the care-of address (a foreign agent decapsulates)
PT = PyTunnel(HA, COA)
CASES = {
    "ipip": (encapsulate_ipip(inner(), PT), decapsulate_ipip),
    "gre": (encapsulate_gre(inner(), PT), decapsulate_gre),
    "gre-key": (encapsulate_gre(inner(), PyTunnel(HA, COA, gre_key=77)), decapsulate_gre),
    "gre-seq": (encapsulate_gre(inner(), PT, sequence=5), decapsulate_gre),
    "minimal-s": (encapsulate_minimal(inner(), PT), decapsulate_minimal),
    "minimal": (
        encapsulate_minimal(inner(src=HA), PT, forwarding=False),
        decapsulate_minimal,
    ),
}


def decap(plane: BpfPlane, packet: bytes | bytearray) -> bytes:
    r = plane.test_run(Program.DECAP, frame(packet))
    assert r.retval == TC_ACT_OK
    assert r.data[:14] == ETH
    return ip_of(r.data)


@pytest.mark.parametrize("case", list(CASES))
def test_decapsulates_from_a_registered_peer(plane: BpfPlane, case: str) -> None:
    tunnelled, pydecap = CASES[case]
    plane.set_peer(Peer(COA, HA, key=77 if case == "gre-key" else None))
    got = decap(plane, tunnelled)
    expected = bytes(pydecap(bytes(tunnelled)).inner)
    assert got == expected
    IPv4Packet.decode(got)  # a valid packet, header checksum included
    assert plane.events()[Event.DECAP] == 1
    assert plane.counters() == {(HA, Direction.DECAP): Traffic(1, len(expected))}


@pytest.mark.parametrize("case", list(CASES))
def test_never_from_an_unregistered_peer(plane: BpfPlane, case: str) -> None:
    tunnelled, _ = CASES[case]
    plane.set_peer(Peer(COA, A("10.0.0.2")))  # another home agent
    plane.set_peer(Peer(HA, COA))  # the pair the other way round
    plane.set_peer(Peer(A("198.51.100.21"), HA))  # the same peer, another local address
    f = frame(tunnelled)
    r = plane.test_run(Program.DECAP, f)
    assert (r.retval, r.data) == (TC_ACT_OK, f)
    ev = plane.events()
    assert ev[Event.DECAP_UNKNOWN_PEER] == 1 and ev[Event.DECAP] == 0
    assert plane.counters() == {}


def test_peer_removed_stops_decapsulation(plane: BpfPlane) -> None:
    tunnelled, _ = CASES["ipip"]
    plane.set_peer(Peer(COA, HA))
    assert plane.peers() == [Peer(COA, HA)]
    assert plane.del_peer(COA, HA) and not plane.del_peer(COA, HA)
    f = frame(tunnelled)
    assert plane.test_run(Program.DECAP, f).data == f


def _untouched(plane: BpfPlane, packet: bytes | bytearray, event: Event) -> None:
    f = frame(packet)
    r = plane.test_run(Program.DECAP, f)
    assert (r.retval, r.data) == (TC_ACT_OK, f)
    assert plane.events()[event] == 1
    assert plane.events()[Event.DECAP] == 0


@pytest.mark.parametrize(
    ("peer_key", "tunnel_key"),
    [(77, 78), (77, None), (None, 77)],
    ids=["wrong", "missing", "extra"],
)
def test_gre_key_must_match(plane: BpfPlane, peer_key: int | None, tunnel_key: int | None) -> None:
    """RFC 2890 §2.1: a key configured for the tunnel must be there and equal."""
    plane.set_peer(Peer(COA, HA, key=peer_key))
    packet = encapsulate_gre(inner(), PyTunnel(HA, COA, gre_key=tunnel_key))
    _untouched(plane, packet, Event.DECAP_KEY)


def test_gre_with_checksum_left_to_the_stack(plane: BpfPlane) -> None:
    plane.set_peer(Peer(COA, HA))
    packet = encapsulate_gre(inner(), PyTunnel(HA, COA, gre_checksum=True))
    _untouched(plane, packet, Event.DECAP_BAD)


@pytest.mark.parametrize("word", [0x0001, 0x4000, 0x0800], ids=["version", "routing", "bit4"])
def test_gre_reserved_bits_or_version(plane: BpfPlane, word: int) -> None:
    """RFC 2784 §2.3 / §2.3.1: version not 0, or bits 1/4/5 set: not decapsulated here."""
    plane.set_peer(Peer(COA, HA))
    packet = bytearray(encapsulate_gre(inner(), PT))
    packet[20:22] = word.to_bytes(2, "big")
    _untouched(plane, packet, Event.DECAP_BAD)


def test_minimal_bad_checksum(plane: BpfPlane) -> None:
    plane.set_peer(Peer(COA, HA))
    packet = bytearray(CASES["minimal-s"][0])
    packet[22] ^= 0xFF  # forwarding header checksum
    _untouched(plane, packet, Event.DECAP_BAD)


def test_outer_fragment_left_to_the_stack(plane: BpfPlane) -> None:
    """The kernel reassembles; the reassembled packet is not seen by tc again here."""
    plane.set_peer(Peer(COA, HA))
    packet = bytearray(CASES["ipip"][0])
    packet[6] |= 0x20  # MF
    packet[10:12] = b"\0\0"
    csum = internet_checksum(packet[:20])
    packet[10:12] = csum.to_bytes(2, "big")
    _untouched(plane, packet, Event.DECAP_BAD)


def test_inner_ttl_zero_not_decapsulated(plane: BpfPlane) -> None:
    """RFC 2003 §3.1: an inner TTL of 0 after decapsulation MUST be discarded."""
    plane.set_peer(Peer(COA, HA))
    packet = IPv4Packet.build(HA, COA, 4, inner(ttl=0)).encode()
    _untouched(plane, packet, Event.DECAP_BAD)


def test_other_protocols_pass(plane: BpfPlane) -> None:
    plane.set_peer(Peer(HOME, CN))
    _untouched(plane, inner(), Event.NOT_OURS)


@pytest.mark.parametrize(
    ("encap", "key", "src"),
    [
        (Encap.IPIP, None, CN),
        (Encap.GRE, None, CN),
        (Encap.GRE, 0xFFFFFFFF, CN),
        (Encap.MINIMAL, None, CN),
        (Encap.MINIMAL, None, HA),
    ],
)
def test_round_trip(plane: BpfPlane, encap: Encap, key: int | None, src: A) -> None:
    """The home agent's program encapsulates, the foreign agent's decapsulates: the
    original packet comes back with TTL - 1."""
    plane.set_binding(HOME, Tunnel(HA, COA, encap, key=key, oif=1, mtu=1500))
    plane.set_peer(Peer(COA, HA, key=key))
    pkt = inner(src=src, ttl=30)
    r = plane.test_run(Program.HA_ENCAP, frame(pkt))
    assert r.retval == TC_ACT_REDIRECT
    back = decap(plane, ip_of(r.data))
    got, orig = IPv4Packet.decode(back), IPv4Packet.decode(pkt)
    assert got.header.ttl == 29
    assert got == IPv4Packet(
        orig.header.__class__(**{**orig.header.__dict__, "ttl": 29}), orig.payload
    )
