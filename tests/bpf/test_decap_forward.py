"""A home agent forwards what it decapsulates from a reverse tunnel (``Peer.forward``,
``MIP4_PF_FORWARD``) in the program, as ``ip_forward`` would: a route lookup from the
interface the tunnel came in on, TTL - 1 with a valid header checksum (RFC 791, RFC 1624),
the next hop's hardware addresses and a redirect -- or a redirect through the kernel's
neighbour resolution when it has no entry yet. Whatever the program cannot forward as the
stack would goes to the stack as decapsulated, untouched (``TC_ACT_OK``): options, a TTL
that expires here (the stack sends time exceeded), too big for the next hop, no route or an
unreachable one, forwarding off, a local or broadcast destination.

From one mobile node to another bound to the same home agent (RFC 5944 §4.2.3), with the same
encapsulation: not decapsulated, the outer header rewritten in place towards the second
node's care-of address, byte for byte what the user-space plane would send; anything else
between two nodes decapsulated as before.

Through BPF_PROG_TEST_RUN in a private namespace (nothing named, gone with the thread):
one veth pair, 192.0.2.1/24 on one end, a permanent neighbour entry for the correspondent.
(A GSO packet cannot be made here -- the test run sets no GSO type, and the kernel refuses
to shrink a GSO packet of no type -- so TCP through the forwarding is the lab's:
``tests/bpf/test_roles.py`` and ``mip4 bench forwarding``.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address as A
from typing import TypeVar

import pytest
from pyroute2 import IPRoute

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
    Tunnel,
)
from mip4.wire.ip import IPv4Packet

from .frames import CN, COA, ETH, HA, HOME, frame, in_private_netns, inner, ip_of, rfc1071, tcp

LO = 1
OWN = A("192.0.2.1")  #: the home agent's address on the correspondent's link
NO_NEIGH = A("192.0.2.11")  #: on that link, no neighbour entry
UNREACHABLE = A("203.0.113.9")  #: an "unreachable" route
NOWHERE = A("198.18.0.9")  #: no route at all
NEXT_MAC = bytes.fromhex("020000000099")
ENCAPS = {
    "ipip": lambda p: encapsulate_ipip(p, PyTunnel(COA, HA), forwarding=False),
    "gre": lambda p: encapsulate_gre(p, PyTunnel(COA, HA), forwarding=False),
    "minimal": lambda p: encapsulate_minimal(p, PyTunnel(COA, HA), forwarding=False),
}
T = TypeVar("T")


@dataclass(frozen=True)
class Link:
    ifindex: int
    mac: bytes


def _link(ipr: IPRoute) -> Link:
    """The veth pair, its address, the neighbour entry and the unreachable route."""
    ipr.link("add", ifname="fw0", kind="veth", peer="fw1")
    idx = ipr.link_lookup(ifname="fw0")[0]
    ipr.addr("add", index=idx, address=str(OWN), prefixlen=24)
    for name in ("fw0", "fw1"):
        ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
    ipr.neigh("add", dst=str(CN), lladdr=NEXT_MAC.hex(":"), ifindex=idx, state=0x80)
    ipr.route("add", dst="203.0.113.0/24", type="unreachable")
    mac = bytes.fromhex(ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS").replace(":", ""))
    return Link(idx, mac)


def _run(body: Callable[[BpfPlane, Link], T], *, forwarding: bool = True, flag: bool = True) -> T:
    def in_ns() -> T:
        with IPRoute() as ipr, BpfPlane() as plane:
            link = _link(ipr)
            plane.set_binding(HOME, Tunnel(HA, COA, oif=LO, mtu=1500))
            plane.set_peer(Peer(HA, COA, bound_source=True, forward=flag))
            return body(plane, link)

    return in_private_netns(in_ns, forwarding=forwarding)


def _reverse(case: str = "ipip", /, **kw: object) -> tuple[bytes, bytes]:
    """(the tunnelled packet, the datagram inside it)."""
    kw.setdefault("src", HOME)
    kw.setdefault("dst", CN)
    datagram = inner(**kw)  # type: ignore[arg-type]
    return bytes(ENCAPS[case](datagram)), datagram


def _ttl_less(datagram: bytes) -> bytes:
    """What ip_forward makes of the datagram: TTL - 1, header checksum again."""
    p = bytearray(datagram)
    p[8] -= 1
    p[10:12] = b"\0\0"
    ihl = (p[0] & 0x0F) * 4
    p[10:12] = rfc1071(bytes(p[:ihl])).to_bytes(2, "big")
    return bytes(p)


@pytest.mark.parametrize("program", [Program.DECAP, Program.AGENT])
@pytest.mark.parametrize("case", sorted(ENCAPS))
def test_forwarded_to_the_next_hop(program: Program, case: str) -> None:
    tunnelled, datagram = _reverse(case)

    def body(plane: BpfPlane, link: Link) -> None:
        r = plane.test_run(program, frame(tunnelled))
        assert r.retval == TC_ACT_REDIRECT
        assert r.data[:6] == NEXT_MAC and r.data[6:12] == link.mac
        got = ip_of(r.data)
        assert got == _ttl_less(datagram)
        assert rfc1071(got[:20]) == 0
        IPv4Packet.decode(got)
        ev = plane.events()
        assert (ev[Event.DECAP_FORWARD], ev[Event.DECAP]) == (1, 0)
        assert plane.counters()[COA, Direction.DECAP].packets == 1

    _run(body)


def test_no_neighbour_entry_yet_the_kernel_resolves_it() -> None:
    """bpf_redirect_neigh out of the route's device: the MACs are left for the kernel."""
    tunnelled, datagram = _reverse(dst=NO_NEIGH)

    def body(plane: BpfPlane, link: Link) -> None:
        r = plane.test_run(Program.DECAP, frame(tunnelled))
        assert r.retval == TC_ACT_REDIRECT
        assert r.data[:14] == ETH
        assert ip_of(r.data) == _ttl_less(datagram)
        assert plane.events()[Event.DECAP_FORWARD] == 1

    _run(body)


def _to_the_stack(tunnelled: bytes, datagram: bytes, **kw: bool) -> dict[Event, int]:
    """The datagram goes to the stack as decapsulated: TTL and MACs as they came."""

    def body(plane: BpfPlane, link: Link) -> dict[Event, int]:
        r = plane.test_run(Program.DECAP, frame(tunnelled))
        assert r.retval == TC_ACT_OK
        assert r.data == ETH + datagram
        ev = plane.events()
        assert (ev[Event.DECAP], ev[Event.DECAP_FORWARD]) == (1, 0)
        return ev

    return _run(body, **kw)


SLOW: dict[str, tuple[dict[str, object], Event | None]] = {
    # RFC 791 / RFC 1812 §5.3.1: the stack sends time exceeded
    "ttl-1": ({"ttl": 1}, Event.SLOW_TTL),
    # the stack sends fragmentation needed (DF) or fragments
    "too-big-df": ({"payload_len": 1600, "df": True}, Event.SLOW_TOO_BIG),
    "too-big": ({"payload_len": 1600, "df": False}, Event.SLOW_TOO_BIG),
    # ip_forward processes options (record route, source routes)
    "options": ({"options": b"\x01\x01\x01\x00"}, None),
    "local": ({"dst": OWN}, None),
    "broadcast": ({"dst": A("192.0.2.255")}, None),
    "no-route": ({"dst": NOWHERE}, None),
    "unreachable": ({"dst": UNREACHABLE}, Event.SLOW_NO_ROUTE),
}


@pytest.mark.parametrize("case", list(SLOW))
def test_what_the_program_cannot_forward_goes_to_the_stack(case: str) -> None:
    kw, why = SLOW[case]
    ev = _to_the_stack(*_reverse(**kw))
    for e in (Event.SLOW_TTL, Event.SLOW_TOO_BIG, Event.SLOW_NO_ROUTE):
        assert ev[e] == (1 if e == why else 0), e


def test_forwarding_off() -> None:
    """bpf_fib_lookup answers "forwarding disabled" for the interface it came in on: the
    stack decides (and does not forward)."""
    ev = _to_the_stack(*_reverse(), forwarding=False)
    assert ev[Event.SLOW_FWD_DISABLED] == 1


def test_without_the_flag_the_stack_forwards() -> None:
    """A peer without ``forward`` (as before: a foreign agent's, a co-located node's)."""
    ev = _to_the_stack(*_reverse(), flag=False)
    assert ev[Event.SLOW_NO_ROUTE] == ev[Event.SLOW_TTL] == 0


def test_the_flag_round_trips_through_the_map(plane: BpfPlane) -> None:
    peers = [
        Peer(HA, COA, bound_source=True, forward=True),
        Peer(HA, A("198.51.100.21"), bound_source=True),
        Peer(COA, HA, key=9, any_key=False, forward=True),
    ]
    for p in peers:
        plane.set_peer(p)
    assert sorted(plane.peers(), key=str) == sorted(peers, key=str)


# ---- mobile node to mobile node: the home agent sends it on without decapsulating ----

HOME2 = A("10.0.0.6")  #: a second mobile node's home address, bound too
COA2 = A("192.0.2.20")  #: its care-of address, on the correspondent's link
COA2_MAC = bytes.fromhex("0200000000aa")
TUNNELS = {
    "ipip": Tunnel(HA, COA2),
    "gre": Tunnel(HA, COA2, Encap.GRE),
    "gre-key": Tunnel(HA, COA2, Encap.GRE, key=0xBEEF),
}
PY_TUNNELS = {
    "ipip": (encapsulate_ipip, PyTunnel(HA, COA2)),
    "gre": (encapsulate_gre, PyTunnel(HA, COA2)),
    "gre-key": (encapsulate_gre, PyTunnel(HA, COA2, gre_key=0xBEEF)),
}
#: what the first node's foreign agent sends: GRE with the key it was told, or none
INCOMING = {
    "ipip": (encapsulate_ipip, PyTunnel(COA, HA), None),
    "gre": (encapsulate_gre, PyTunnel(COA, HA), None),
    "gre-key": (encapsulate_gre, PyTunnel(COA, HA, gre_key=0x1234), 0x1234),
}


def _between_nodes(
    incoming: str, binding: Tunnel, body: Callable[[BpfPlane, Link], T], *, flag: bool = True
) -> T:
    """As ``_run``, with the second node bound (``binding``) and its care-of address a
    neighbour on the correspondent's link; the first node's peer as ``incoming`` sends."""

    def in_ns() -> T:
        with IPRoute() as ipr, BpfPlane() as plane:
            link = _link(ipr)
            ipr.neigh(
                "add", dst=str(COA2), lladdr=COA2_MAC.hex(":"), ifindex=link.ifindex, state=0x80
            )
            key = INCOMING[incoming][2]
            plane.set_binding(HOME, Tunnel(HA, COA, oif=LO, mtu=1500))
            plane.set_binding(HOME2, binding)
            plane.set_peer(Peer(HA, COA, key=key, bound_source=True, forward=flag))
            return body(plane, link)

    return in_private_netns(in_ns, forwarding=True)


def _node_to_node(incoming: str = "ipip", **kw: object) -> tuple[bytes, bytes]:
    """(the first node's reverse-tunnelled packet to the second node, its datagram)."""
    kw.setdefault("src", HOME)
    kw.setdefault("dst", HOME2)
    datagram = inner(**kw)  # type: ignore[arg-type]
    enc, tunnel, _ = INCOMING[incoming]
    return bytes(enc(datagram, tunnel, forwarding=False)), datagram


@pytest.mark.parametrize("program", [Program.DECAP, Program.AGENT])
@pytest.mark.parametrize("case", sorted(TUNNELS))
def test_node_to_node_is_tunnelled_on_in_place(program: Program, case: str) -> None:
    """RFC 5944 §4.2.3: the home agent tunnels the datagram to the second node's care-of
    address -- the bytes mip4's user-space plane would send (outer TOS and DF from the
    inner header, the inner Identification, TTL 64, the binding's GRE key; the inner TTL
    - 1) -- to the next hop's hardware address, counted as decapsulated from the first
    node's care-of address and tunnelled to the second node."""
    tunnelled, datagram = _node_to_node(case, tos=0x28)
    enc, py_tunnel = PY_TUNNELS[case]

    def body(plane: BpfPlane, link: Link) -> None:
        r = plane.test_run(program, frame(tunnelled))
        assert r.retval == TC_ACT_REDIRECT
        assert r.data[:6] == COA2_MAC and r.data[6:12] == link.mac
        got = ip_of(r.data)
        assert got == bytes(enc(datagram, py_tunnel, identification=0x1C46))
        assert rfc1071(got[:20]) == 0
        assert got[len(got) - len(datagram) :] == _ttl_less(datagram)
        ev = plane.events()
        assert (ev[Event.DECAP_FORWARD], ev[Event.ENCAP], ev[Event.DECAP]) == (1, 1, 0), ev
        counters = plane.counters()
        assert counters[COA, Direction.DECAP].packets == 1
        assert counters[HOME2, Direction.HA].packets == 1
        assert counters[HOME2, Direction.HA].bytes == len(datagram)

    _between_nodes(case, TUNNELS[case], body)


#: (incoming encapsulation, the second node's binding, the datagram's fields): what is
#: decapsulated as before, then forward()'s or the stack's (the second node's home
#: address has no route here: to the stack as decapsulated)
NOT_IN_PLACE: dict[str, tuple[str, Tunnel, dict[str, object]]] = {
    "ipip-to-gre": ("ipip", TUNNELS["gre"], {}),
    "gre-to-ipip": ("gre", TUNNELS["ipip"], {}),
    "gre-to-gre-with-key": ("gre", TUNNELS["gre-key"], {}),
    "gre-key-to-gre": ("gre-key", TUNNELS["gre"], {}),
    "to-minimal": ("ipip", Tunnel(HA, COA2, Encap.MINIMAL), {}),
    "options": ("ipip", TUNNELS["ipip"], {"options": b"\x01\x01\x01\x00"}),
    "no-route": ("ipip", Tunnel(HA, NOWHERE), {}),
    "unreachable": ("ipip", Tunnel(HA, UNREACHABLE), {}),
    "too-big": ("ipip", TUNNELS["ipip"], {"payload_len": 1460, "df": True}),
    "too-big-oif": ("ipip", Tunnel(HA, COA2, oif=LO, mtu=1400), {"payload_len": 1400}),
}


@pytest.mark.parametrize("case", list(NOT_IN_PLACE))
def test_what_cannot_be_sent_on_in_place_is_decapsulated_as_before(case: str) -> None:
    incoming, binding, kw = NOT_IN_PLACE[case]
    tunnelled, datagram = _node_to_node(incoming, **kw)

    def body(plane: BpfPlane, link: Link) -> None:
        r = plane.test_run(Program.DECAP, frame(tunnelled))
        assert r.retval == TC_ACT_OK
        assert r.data == ETH + datagram
        ev = plane.events()
        assert (ev[Event.DECAP], ev[Event.ENCAP], ev[Event.DECAP_FORWARD]) == (1, 0, 0), ev
        assert (HOME2, Direction.HA) not in plane.counters()

    _between_nodes(incoming, binding, body)


def test_a_ttl_that_expires_here_goes_to_the_stack() -> None:
    """The stack sends time exceeded (RFC 1812 §5.3.1), as forward() leaves it to."""
    tunnelled, datagram = _node_to_node(ttl=1)

    def body(plane: BpfPlane, link: Link) -> None:
        r = plane.test_run(Program.DECAP, frame(tunnelled))
        assert (r.retval, r.data) == (TC_ACT_OK, ETH + datagram)
        ev = plane.events()
        assert (ev[Event.SLOW_TTL], ev[Event.DECAP], ev[Event.ENCAP]) == (1, 1, 0), ev

    _between_nodes("ipip", TUNNELS["ipip"], body)


def test_without_the_flag_nothing_is_sent_on() -> None:
    tunnelled, datagram = _node_to_node()

    def body(plane: BpfPlane, link: Link) -> None:
        r = plane.test_run(Program.DECAP, frame(tunnelled))
        assert (r.retval, r.data) == (TC_ACT_OK, ETH + datagram)
        assert plane.events()[Event.ENCAP] == 0

    _between_nodes("ipip", TUNNELS["ipip"], body, flag=False)


@pytest.mark.parametrize(("gso_size", "sent_on"), [(1440, True), (1441, False)])
def test_node_to_node_gso_segments_are_held_to_the_routes_mtu(gso_size: int, sent_on: bool) -> None:
    """Sent on in place, a GSO packet keeps its gso_size, so each outer segment is the outer
    header, the inner IP and TCP headers and gso_size bytes: at most the MTU of the route to
    the care-of address (fw0's 1500) or not sent on in place. (Not sent on, it is
    decapsulated as before -- which a test run's GSO packet of no type cannot be: left
    untouched, slow_adjust.)"""
    datagram = tcp(HOME, HOME2, payload_len=2900)
    tunnelled = bytes(encapsulate_ipip(datagram, PyTunnel(COA, HA), forwarding=False))

    def body(plane: BpfPlane, link: Link) -> None:
        r = plane.test_run(Program.DECAP, frame(tunnelled), gso_size=gso_size, gso_segs=3)
        ev = plane.events()
        if sent_on:
            assert r.retval == TC_ACT_REDIRECT
            assert ip_of(r.data)[16:20] == COA2.packed
            assert (ev[Event.ENCAP], ev[Event.SLOW_ADJUST]) == (1, 0), ev
        else:
            assert (r.retval, r.data) == (TC_ACT_OK, frame(tunnelled))
            assert (ev[Event.ENCAP], ev[Event.SLOW_ADJUST]) == (0, 1), ev

    _between_nodes("ipip", TUNNELS["ipip"], body)
