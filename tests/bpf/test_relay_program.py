"""The registration relay in ``mip4_agent`` (foreign agent, issue 13), through
BPF_PROG_TEST_RUN and, for where the relayed frames leave, through the attached program.

A foreign agent relays a visitor's Registration Request to its home agent and the home
agent's reply back (RFC 5944 §3.7.2.2, §3.7.3.2). With a ``mip4_relay`` entry for the
visitor's home address, the program relays the usual renewal itself:

* a request (UDP to port 434, type 1) that repeats the entry's 16 bytes (type, flags,
  lifetime, home address, home agent, care-of address) from the same visitor -- its
  interface, hardware address, IP source, the agent's address, UDP source port, IP TTL 255
  when the entry asks (RFC 3024 §4.2.1) -- with the usual layout (fixed part and MN-HA,
  RFC 5944 §3.5.2; no IP options, not a fragment) goes to the home agent from the agent's
  relay address and port: IP TTL 64, TOS 0, the Identification and DF as they came, a new
  header checksum; the UDP checksum updated (RFC 1624; none stays none, a result of 0 is
  sent as all ones, RFC 768); its Identification is kept as pending;
* a reply (UDP from port 434, type 3) accepting it (code 0 or 1, lifetime not 0; fixed part
  and MN-HA, no FA-HA) to the relay address and port, from the home agent the request went
  to, whose Identification's low-order 32 bits are the pending request's (RFC 5944
  §3.7.3.1) goes to the visitor: from the agent's address and port 434 to the visitor's
  address and port, at its hardware address from the interface's, out of its interface,
  with the header the agent's own link-layer sender writes (ID 0, no flags, TOS 0, TTL 64);
  nothing is pending after.

Each relayed datagram is copied, as it came in, into the ring buffer ``mip4_relayed`` first
(the engine replays it); without room there nothing is relayed. Anything else goes on
untouched, byte for byte, to the daemon, with nothing recorded.

The oracles are independent of the program: the datagrams are laid out here from RFC 5944
§3.3/§3.4 and RFC 768, their UDP checksums computed by congruence modulo 0xFFFF and verified
with the RFC 1071 word loop (``frames.rfc1071``), the IPv4 headers built and verified by
mip4's codec. Each test runs in a private network namespace (nothing named, gone with its
thread): a visitor link and an upstream link (veth pairs), a route to the home agent through
a router with a permanent neighbour entry, one through a router without, an unreachable one.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address as A
from typing import TypeVar

import pytest
from pyroute2 import IPRoute

from mip4.io.bpf.plane import (
    TC_ACT_OK,
    TC_ACT_REDIRECT,
    BpfPlane,
    Event,
    MapName,
    Program,
    TestRun,
    Tunnel,
)
from mip4.io.bpf.relay import Relay, Relayed
from mip4.wire.ip import IPv4Packet

from .frames import CN, COA, HA, HOME, ether, in_private_netns, rfc1071, udp_datagram

T = TypeVar("T")

AGENT = COA  #: the foreign agent's address on the visitor link (the request's destination)
UPSTREAM = A("192.0.2.1")  #: its address towards the home agent: the relayed request's source
ROUTER = A("192.0.2.254")  #: the next hop to the home agent (a permanent neighbour entry)
ROUTER_NO_NEIGH = A("192.0.2.253")  #: a next hop without a neighbour entry
HA_NO_NEIGH = A("10.0.1.1")  #: a home agent routed through it
HA_UNREACHABLE = A("203.0.113.9")  #: a home agent behind an "unreachable" route
NODE = HOME  #: the visitor's IP source: its home address
NODE_PORT = 50123
RELAY_PORT = 50434
MIP_PORT = 434
NODE_MAC = bytes.fromhex("02000000abcd")
ROUTER_MAC = bytes.fromhex("020000000099")
OTHER_MAC = bytes.fromhex("020000000042")
IDENT = 0xE2F0_1234_0000_0001
T_BIT = 0x02  #: RFC 5944 §3.3: reverse tunnelling requested (RFC 3024)
#: the ring's records: 76 bytes, an 8-byte header, rounded up to 8
RING_RECORDS = (1 << 20) // 88
#: the verdicts the relay never gives for what it does not relay
NOT_RELAYED = (Event.RELAY_REQUEST, Event.RELAY_REPLY, Event.RELAY_RING_FULL)


# -- the messages (RFC 5944 §3.3, §3.4, §3.5.2), laid out here -----------------------------


def mn_ha(ext_type: int = 32, length: int = 20, spi: int = 0x100) -> bytes:
    """A Mobile-Home Authentication extension: type, length, SPI, a 16-byte authenticator
    (its value is the home agent's to check, never the foreign agent's)."""
    return bytes([ext_type, length]) + spi.to_bytes(4, "big") + bytes(range(0xA0, 0xB0))


def request_payload(
    *,
    flags: int = T_BIT,
    lifetime: int = 1800,
    home: A = HOME,
    ha: A = HA,
    coa: A = COA,
    ident: int = IDENT,
    extensions: bytes | None = None,
) -> bytes:
    fixed = struct.pack(
        "!BBH4s4s4sQ", 1, flags, lifetime, home.packed, ha.packed, coa.packed, ident
    )
    return fixed + (mn_ha() if extensions is None else extensions)


def reply_payload(
    *,
    code: int = 0,
    lifetime: int = 1800,
    home: A = HOME,
    ha: A = HA,
    ident: int = IDENT,
    extensions: bytes | None = None,
) -> bytes:
    fixed = struct.pack("!BBH4s4sQ", 3, code, lifetime, home.packed, ha.packed, ident)
    return fixed + (mn_ha() if extensions is None else extensions)


# -- UDP checksums (RFC 768): computed one way, verified another -----------------------------


def _pseudo(src: A, dst: A, udp: bytes) -> bytes:
    return src.packed + dst.packed + bytes([0, 17]) + len(udp).to_bytes(2, "big")


def udp_checksum(src: A, dst: A, udp: bytes) -> int:
    """The checksum a Linux UDP sender writes (``csum_tcpudp_magic``, 0 sent as 0xFFFF), over
    the pseudo-header and ``udp`` (its checksum field 0), by congruence: the one's complement
    sum of 16-bit words is the number the bytes spell modulo 0xFFFF (2**16 = 1 modulo 0xFFFF),
    that sum being 0xFFFF, not 0, when the remainder is 0."""
    data = _pseudo(src, dst, udp) + udp
    if len(data) % 2:
        data += b"\0"
    r = int.from_bytes(data, "big") % 0xFFFF
    return 0xFFFF - r if r else 0xFFFF


def udp_valid(datagram: bytes) -> bool:
    """The UDP checksum of an IPv4 datagram verifies (RFC 1071 word loop: 0)."""
    ip = IPv4Packet.decode(datagram)  # verifies the IPv4 header checksum
    udp = ip.payload
    return rfc1071(_pseudo(ip.header.src, ip.header.dst, udp) + udp) == 0


def datagram(
    src: A,
    dst: A,
    sport: int,
    dport: int,
    payload: bytes,
    *,
    checksum: bool | int = True,
    **ip: object,
) -> bytes:
    """An IPv4/UDP datagram; ``checksum`` True: computed (:func:`udp_checksum`), False: none,
    an int: that."""
    if checksum is True:
        udp = udp_datagram(src, dst, sport, dport, payload)[20:]
        checksum = udp_checksum(src, dst, udp)
    return udp_datagram(src, dst, sport, dport, payload, checksum=int(checksum), **ip)  # type: ignore[arg-type]


# -- the namespace ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Net:
    visitor: int  #: the agent's visitor interface (rv0), 198.51.100.20/24
    visitor_mac: bytes
    upstream: int  #: its upstream interface (ru0), 192.0.2.1/24
    upstream_mac: bytes


def _links(ipr: IPRoute) -> Net:
    for a, b in (("rv0", "rv1"), ("ru0", "ru1")):
        ipr.link("add", ifname=a, kind="veth", peer=b)

    def index(name: str) -> int:
        return int(ipr.link_lookup(ifname=name)[0])

    def mac(i: int) -> bytes:
        return bytes.fromhex(ipr.get_links(i)[0].get_attr("IFLA_ADDRESS").replace(":", ""))

    ipr.addr("add", index=index("rv0"), address=str(AGENT), prefixlen=24)
    ipr.addr("add", index=index("ru0"), address=str(UPSTREAM), prefixlen=24)
    for name in ("rv0", "rv1", "ru0", "ru1"):
        ipr.link("set", index=index(name), state="up")
    up = index("ru0")
    ipr.neigh("add", dst=str(ROUTER), lladdr=ROUTER_MAC.hex(":"), ifindex=up, state=0x80)
    ipr.route("add", dst="10.0.0.0/24", gateway=str(ROUTER))
    ipr.route("add", dst="10.0.1.0/24", gateway=str(ROUTER_NO_NEIGH))
    ipr.route("add", dst="203.0.113.0/24", type="unreachable")
    return Net(index("rv0"), mac(index("rv0")), up, mac(up))


def _run(body: Callable[[BpfPlane, Net], T]) -> T:
    def in_ns() -> T:
        with IPRoute() as ipr, BpfPlane() as plane:
            return body(plane, _links(ipr))

    return in_private_netns(in_ns, forwarding=True)


def entry(net: Net, **kw: object) -> Relay:
    """The visitor's entry: it registered ``request_payload()`` from ``NODE``:``NODE_PORT``
    at ``NODE_MAC`` on the visitor link, through ``AGENT``, relayed from ``UPSTREAM``."""
    base = Relay(
        request=request_payload()[:16],
        node=NODE,
        agent=AGENT,
        relay_source=UPSTREAM,
        ifindex=net.visitor,
        node_port=NODE_PORT,
        relay_port=RELAY_PORT,
        node_mac=NODE_MAC,
        own_mac=net.visitor_mac,
        ttl_255=True,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def request_frame(
    net: Net,
    payload: bytes | None = None,
    *,
    src: A = NODE,
    dst: A = AGENT,
    sport: int = NODE_PORT,
    mac: bytes = NODE_MAC,
    to_mac: bytes | None = None,
    checksum: bool | int = True,
    **ip: object,
) -> bytes:
    """A visitor's request as a Linux UDP sender sends it (TTL 255 for a reverse tunnel,
    DF, Identification 0 for an unconnected socket, a checksum), at the agent's hardware
    address."""
    ip.setdefault("ttl", 255)
    ip.setdefault("df", True)
    p = request_payload() if payload is None else payload
    body = datagram(src, dst, sport, MIP_PORT, p, checksum=checksum, **ip)
    return ether(net.visitor_mac if to_mac is None else to_mac, mac, body)


def reply_frame(
    net: Net,
    payload: bytes | None = None,
    *,
    src: A = HA,
    dst: A = UPSTREAM,
    dport: int = RELAY_PORT,
    checksum: bool | int = True,
    **ip: object,
) -> bytes:
    """A home agent's reply to the relayed request, from the router, at the upstream
    interface's hardware address."""
    ip.setdefault("ttl", 61)
    ip.setdefault("df", True)
    ip.setdefault("identification", 0x7A31)
    ip.setdefault("tos", 0x10)
    p = reply_payload() if payload is None else payload
    body = datagram(src, dst, MIP_PORT, dport, p, checksum=checksum, **ip)
    return ether(net.upstream_mac, ROUTER_MAC, body)


def from_visitor(plane: BpfPlane, net: Net, data: bytes, ingress: int | None = None) -> TestRun:
    i = net.visitor if ingress is None else ingress
    return plane.test_run(Program.AGENT, data, ifindex=i, ingress_ifindex=i)


def from_upstream(plane: BpfPlane, net: Net, data: bytes) -> TestRun:
    return plane.test_run(Program.AGENT, data, ifindex=net.upstream, ingress_ifindex=net.upstream)


def relayed_request(
    net: Net,
    payload: bytes,
    *,
    ha: A = HA,
    relay_port: int = RELAY_PORT,
    checksum: bool = True,
    identification: int = 0,
    df: bool = True,
) -> bytes:
    """What the relay must send: the payload as it came, from the relay address and port to
    the home agent's port 434, IP TTL 64, TOS 0, the Identification and DF as they came; at
    the router's hardware address from the upstream interface's."""
    body = datagram(
        UPSTREAM,
        ha,
        relay_port,
        MIP_PORT,
        payload,
        checksum=checksum,
        ttl=64,
        tos=0,
        identification=identification,
        df=df,
    )
    return ether(ROUTER_MAC, net.upstream_mac, body)


def relayed_reply(net: Net, payload: bytes, *, checksum: bool = True) -> bytes:
    """What the relay must send the visitor: the payload as it came, from the agent's address
    and port 434 to the visitor's, with the agent's link-layer sender's header (ID 0, no
    flags, TOS 0, TTL 64), at the visitor's hardware address from the interface's."""
    body = datagram(
        AGENT,
        NODE,
        MIP_PORT,
        NODE_PORT,
        payload,
        checksum=checksum,
        ttl=64,
        tos=0,
        identification=0,
        df=False,
    )
    return ether(NODE_MAC, net.visitor_mac, body)


def relay_events(plane: BpfPlane) -> tuple[int, int, int]:
    ev = plane.events()
    return ev[Event.RELAY_REQUEST], ev[Event.RELAY_REPLY], ev[Event.RELAY_RING_FULL]


def untouched(
    plane: BpfPlane,
    run: TestRun,
    data: bytes,
    *,
    pending: bytes | None,
    relayed: tuple[int, int, int] = (0, 0, 0),
) -> None:
    """The frame went on as it came, nothing recorded, nothing pending changed, the relay's
    counters as they were (``relayed``)."""
    assert run.retval == TC_ACT_OK
    assert run.data == data
    assert plane.relay_records().drain() == []
    assert relay_events(plane) == relayed
    assert plane.relays()[HOME].pending == pending


def relay_one_request(plane: BpfPlane, net: Net, ident: int = IDENT) -> None:
    """A request relayed (its record drained): ``ident`` pending."""
    r = from_visitor(plane, net, request_frame(net, request_payload(ident=ident)))
    assert r.retval == TC_ACT_REDIRECT
    assert [x.kind for x in plane.relay_records().drain()] == [1]
    assert plane.relays()[HOME].pending == ident.to_bytes(8, "big")


# -- the request ---------------------------------------------------------------------------------


def test_a_renewal_is_relayed_to_the_home_agent() -> None:
    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        payload = request_payload()
        sent = request_frame(net, payload, identification=0x5C1D)
        r = from_visitor(plane, net, sent)
        assert r.retval == TC_ACT_REDIRECT
        assert r.data == relayed_request(net, payload, identification=0x5C1D)
        out = r.data[14:]
        head = IPv4Packet.decode(out).header  # the header checksum verifies
        assert (head.src, head.dst, head.ttl, head.tos, head.identification) == (
            UPSTREAM,
            HA,
            64,
            0,
            0x5C1D,
        )
        assert head.dont_fragment and not head.is_fragment
        assert out[20:26] == struct.pack("!HHH", RELAY_PORT, MIP_PORT, 54)
        assert out[26:28] != b"\0\0" and udp_valid(out)
        assert out[28:] == payload
        assert plane.relays()[HOME].pending == IDENT.to_bytes(8, "big")
        assert plane.relay_records().drain() == [
            Relayed(1, net.visitor, 255, NODE, AGENT, NODE_PORT, MIP_PORT, NODE_MAC, payload)
        ]
        assert relay_events(plane) == (1, 0, 0)
        ev = plane.events()
        assert ev[Event.NOT_OURS] == ev[Event.LOCAL] == ev[Event.ENCAP] == 0

    _run(body)


def test_the_route_without_a_neighbour_entry_leaves_the_addresses_to_the_kernel() -> None:
    """bpf_redirect_neigh: the Ethernet header stays as it came; the kernel fills it."""

    def body(plane: BpfPlane, net: Net) -> None:
        payload = request_payload(ha=HA_NO_NEIGH)
        plane.set_relay(HOME, entry(net, request=payload[:16]))
        sent = request_frame(net, payload)
        r = from_visitor(plane, net, sent)
        assert r.retval == TC_ACT_REDIRECT
        assert r.data[:14] == sent[:14]
        assert r.data[14:] == relayed_request(net, payload, ha=HA_NO_NEIGH)[14:]
        assert relay_events(plane) == (1, 0, 0)

    _run(body)


@pytest.mark.parametrize("ttl", [255, 254, 64, 1])
@pytest.mark.parametrize("ttl_255", [True, False], ids=["ttl-255", "any-ttl"])
def test_ttl_255_only_when_the_entry_asks(ttl: int, ttl_255: bool) -> None:
    """RFC 3024 §4.2.1: a request with T must arrive with IP TTL 255 (the daemon denies it
    otherwise, 76): with ``ttl_255`` any other TTL goes to the daemon; without, any TTL is
    relayed (and leaves with 64)."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net, ttl_255=ttl_255))
        sent = request_frame(net, ttl=ttl)
        r = from_visitor(plane, net, sent)
        if ttl_255 and ttl != 255:
            untouched(plane, r, sent, pending=None)
        else:
            assert r.retval == TC_ACT_REDIRECT
            assert r.data == relayed_request(net, request_payload())
            assert plane.relay_records().drain()[0].ttl == ttl

    _run(body)


def _flip(data: bytes, i: int) -> bytes:
    b = bytearray(data)
    b[i] ^= 0x01 if i != 0 else 0x02
    return bytes(b)


#: (name, entry changes, frame arguments, the interface it arrives on: "visitor"/"upstream")
REQUEST_MISMATCHES: list[tuple[str, dict[str, object], dict[str, object], str]] = [
    ("interface", {}, {"to_mac": "upstream"}, "upstream"),
    ("hardware-source", {}, {"mac": OTHER_MAC}, "visitor"),
    ("ip-source", {}, {"src": A("10.0.0.6")}, "visitor"),
    ("ip-destination", {}, {"dst": A("198.51.100.21")}, "visitor"),
    ("ip-destination-broadcast", {}, {"dst": A("255.255.255.255")}, "visitor"),
    ("udp-source-port", {}, {"sport": NODE_PORT + 1}, "visitor"),
    ("extension-type", {}, {"payload": request_payload(extensions=mn_ha(ext_type=33))}, "visitor"),
    ("extension-length", {}, {"payload": request_payload(extensions=mn_ha(length=21))}, "visitor"),
    (
        "extra-extension",
        {},
        {"payload": request_payload(extensions=mn_ha() + mn_ha(ext_type=35))},
        "visitor",
    ),
    (
        "mn-aaa-not-mn-ha",
        {},
        {"payload": request_payload(extensions=mn_ha(ext_type=36))},
        "visitor",
    ),
    ("no-extension", {}, {"payload": request_payload(extensions=b"")}, "visitor"),
    ("more-fragments", {}, {"mf": True, "df": False}, "visitor"),
    ("fragment-offset", {}, {"frag_offset": 8, "df": False}, "visitor"),
    ("ip-options", {}, {"options": b"\x01\x01\x01\x00"}, "visitor"),
    (
        "no-route",
        {"request": request_payload(ha=HA_UNREACHABLE)[:16]},
        {"payload": request_payload(ha=HA_UNREACHABLE)},
        "visitor",
    ),
    ("no-entry", {}, {"payload": request_payload(home=A("10.0.0.6"))}, "visitor"),
    ("another-hosts-frame", {}, {"to_mac": OTHER_MAC}, "visitor"),
    ("ttl-254", {}, {"ttl": 254}, "visitor"),
]
REQUEST_MISMATCHES += [
    (f"request-byte-{i}", {}, {"payload": _flip(request_payload(), i)}, "visitor")
    for i in range(16)
]


@pytest.mark.parametrize(
    ("changes", "frame_kw", "arrives"),
    [pytest.param(c, f, a, id=n) for n, c, f, a in REQUEST_MISMATCHES],
)
def test_a_request_unlike_the_registered_one_goes_on_untouched(
    changes: dict[str, object], frame_kw: dict[str, object], arrives: str
) -> None:
    """Any one difference from the entry, or from the usual layout, or no route to the home
    agent: the frame goes on byte for byte, nothing recorded, nothing pending; the matching
    request is relayed in the same place (the difference was the only one)."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net, **changes))
        kw = dict(frame_kw)
        if kw.get("to_mac") == "upstream":
            kw["to_mac"] = net.upstream_mac
        sent = request_frame(net, **kw)  # type: ignore[arg-type]
        ingress = net.upstream if arrives == "upstream" else net.visitor
        untouched(plane, from_visitor(plane, net, sent, ingress), sent, pending=None)
        if "request" not in changes:
            relay_one_request(plane, net)

    _run(body)


def test_a_bad_ip_header_checksum_goes_on_untouched() -> None:
    """ip_rcv drops it: the relay, which writes a new header checksum, must not launder it."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        b = bytearray(request_frame(net))
        b[14 + 10] ^= 0x40
        sent = bytes(b)
        untouched(plane, from_visitor(plane, net, sent), sent, pending=None)

    _run(body)


def test_a_wrong_length_goes_on_untouched() -> None:
    """The IP and UDP lengths must be those of the usual layout, whatever the frame holds."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        good = request_frame(net)
        # a trailing byte in the UDP length and the IP length (the checksums made again)
        longer = request_frame(net, request_payload() + b"\0")
        untouched(plane, from_visitor(plane, net, longer), longer, pending=None)
        # the UDP length one short (IP length as usual)
        b = bytearray(good)
        b[14 + 24 : 14 + 26] = (53).to_bytes(2, "big")
        b[14 + 26 : 14 + 28] = b"\0\0"
        short = bytes(b)
        untouched(plane, from_visitor(plane, net, short), short, pending=None)

    _run(body)


def test_a_missing_udp_checksum_stays_missing() -> None:
    """RFC 768: a checksum of 0 means none; an incremental update of it would make one up."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        sent = request_frame(net, checksum=False)
        r = from_visitor(plane, net, sent)
        assert r.retval == TC_ACT_REDIRECT
        assert r.data == relayed_request(net, request_payload(), checksum=False)
        assert r.data[14 + 26 : 14 + 28] == b"\0\0"

    _run(body)


def _ident_for_zero_checksum(relay_port: int) -> int:
    """An Identification whose relayed request's UDP checksum computes to 0 (sent 0xFFFF):
    its last 16-bit word makes the sum of the rest + it = 0 modulo 0xFFFF."""
    base = IDENT & ~0xFFFF
    udp = udp_datagram(UPSTREAM, HA, relay_port, MIP_PORT, request_payload(ident=base))[20:]
    data = _pseudo(UPSTREAM, HA, udp) + udp
    return base | ((0xFFFF - int.from_bytes(data, "big") % 0xFFFF) % 0xFFFF)


def test_a_checksum_that_computes_to_zero_is_sent_as_all_ones() -> None:
    """RFC 768: a computed checksum of 0 is transmitted as all ones (0 means none)."""
    ident = _ident_for_zero_checksum(RELAY_PORT)

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        payload = request_payload(ident=ident)
        r = from_visitor(plane, net, request_frame(net, payload))
        assert r.retval == TC_ACT_REDIRECT
        assert r.data[14 + 26 : 14 + 28] == b"\xff\xff"
        assert udp_valid(r.data[14:])
        assert r.data == relayed_request(net, payload)

    _run(body)


#: (Identification, source port, TTL 255 request flags, lifetime): requests as several Linux
#: senders would send them, each with its own checksum
SENDERS = [
    (IDENT, NODE_PORT, T_BIT, 1800),
    (0x0000_0000_0000_0000, 434, 0x00, 65535),
    (0xFFFF_FFFF_FFFF_FFFF, 1024, T_BIT | 0x80, 1),
    (0x8000_0000_7FFF_FFFF, 65535, T_BIT, 600),
    (0x1234_5678_9ABC_DEF0, 49152, 0x40 | T_BIT, 300),
]


@pytest.mark.parametrize(("ident", "sport", "flags", "lifetime"), SENDERS)
@pytest.mark.parametrize("relay_port", [RELAY_PORT, MIP_PORT])
def test_a_linux_senders_checksum_stays_valid(
    ident: int, sport: int, flags: int, lifetime: int, relay_port: int
) -> None:
    """The visitor's UDP checksum as a Linux sender computes it (here by congruence, not by
    the program's arithmetic), updated by RFC 1624 for the new addresses and port: the
    relayed datagram's checksum verifies (RFC 1071) and equals a checksum computed afresh."""

    def body(plane: BpfPlane, net: Net) -> None:
        payload = request_payload(ident=ident, flags=flags, lifetime=lifetime)
        plane.set_relay(
            HOME,
            entry(net, request=payload[:16], node_port=sport, relay_port=relay_port),
        )
        sent = request_frame(net, payload, sport=sport)
        assert udp_valid(sent[14:])
        r = from_visitor(plane, net, sent)
        assert r.retval == TC_ACT_REDIRECT
        assert udp_valid(r.data[14:])
        assert r.data == relayed_request(net, payload, relay_port=relay_port)

    _run(body)


def test_other_traffic_keeps_its_path() -> None:
    """With a relay entry, what is not the renewal takes the paths it took before: a
    visitor's data is reverse-tunnelled, its UDP tunnel data (RFC 3519: type 4 to port 434)
    and a non-matching request to the agent go on as before (the agent's own, ``LOCAL``)."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        plane.set_reverse(HOME, Tunnel(AGENT, HA, oif=1, mtu=1500))
        data = ether(net.visitor_mac, NODE_MAC, datagram(NODE, CN, 5353, 53, b"query"))
        assert from_visitor(plane, net, data).retval == TC_ACT_REDIRECT
        assert plane.events()[Event.ENCAP] == 1
        tunnel_data = request_frame(net, bytes([4, 0, 0, 0]) + bytes(42))
        r = from_visitor(plane, net, tunnel_data)
        assert (r.retval, r.data) == (TC_ACT_OK, tunnel_data)
        changed = request_frame(net, request_payload(lifetime=900))
        r = from_visitor(plane, net, changed)
        assert (r.retval, r.data) == (TC_ACT_OK, changed)
        assert plane.events()[Event.LOCAL] == 2
        assert relay_events(plane) == (0, 0, 0)
        assert plane.relay_records().drain() == []

    _run(body)


# -- the reply -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1])
def test_an_acceptance_is_relayed_to_the_visitor(code: int) -> None:
    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        relay_one_request(plane, net)
        payload = reply_payload(code=code)
        sent = reply_frame(net, payload)
        r = from_upstream(plane, net, sent)
        assert r.retval == TC_ACT_REDIRECT
        assert r.data == relayed_reply(net, payload)
        assert r.data[:12] == NODE_MAC + net.visitor_mac
        out = r.data[14:]
        head = IPv4Packet.decode(out).header
        assert (head.src, head.dst, head.ttl, head.tos, head.identification) == (
            AGENT,
            NODE,
            64,
            0,
            0,
        )
        assert not head.dont_fragment and not head.is_fragment
        assert out[20:26] == struct.pack("!HHH", MIP_PORT, NODE_PORT, 50)
        assert udp_valid(out) and out[28:] == payload
        assert plane.relays()[HOME].pending is None
        assert plane.relay_records().drain() == [
            Relayed(3, net.upstream, 61, HA, UPSTREAM, MIP_PORT, RELAY_PORT, ROUTER_MAC, payload)
        ]
        assert relay_events(plane) == (1, 1, 0)
        # answered: the same reply again goes to the daemon
        r = from_upstream(plane, net, sent)
        assert (r.retval, r.data) == (TC_ACT_OK, sent)

    _run(body)


def test_only_the_low_32_bits_of_the_identification_are_matched() -> None:
    """RFC 5944 §3.7.3.1: the foreign agent matches the low-order 32 bits (the home agent may
    have rewritten the high-order ones, §5.7)."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        relay_one_request(plane, net)
        payload = reply_payload(ident=(0x0BAD_CAFE << 32) | (IDENT & 0xFFFF_FFFF))
        r = from_upstream(plane, net, reply_frame(net, payload))
        assert r.retval == TC_ACT_REDIRECT
        assert r.data == relayed_reply(net, payload)

    _run(body)


def test_a_reply_relayed_to_port_434() -> None:
    """The agent relays from port 434 (its socket's): the reply is from and to 434."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net, relay_port=MIP_PORT))
        r = from_visitor(plane, net, request_frame(net))
        assert r.retval == TC_ACT_REDIRECT
        assert r.data == relayed_request(net, request_payload(), relay_port=MIP_PORT)
        r = from_upstream(plane, net, reply_frame(net, dport=MIP_PORT))
        assert r.retval == TC_ACT_REDIRECT
        assert r.data == relayed_reply(net, reply_payload())
        assert [x.kind for x in plane.relay_records().drain()] == [1, 3]

    _run(body)


def test_a_reply_without_a_checksum_stays_without() -> None:
    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        relay_one_request(plane, net)
        r = from_upstream(plane, net, reply_frame(net, checksum=False))
        assert r.retval == TC_ACT_REDIRECT
        assert r.data == relayed_reply(net, reply_payload(), checksum=False)

    _run(body)


REPLY_MISMATCHES: list[tuple[str, dict[str, object]]] = [
    ("identification-low-32", {"payload": reply_payload(ident=IDENT + 1)}),
    ("home-agent", {"payload": reply_payload(ha=A("10.0.0.2"))}),
    ("code-2", {"payload": reply_payload(code=2)}),
    ("denied-by-fa-64", {"payload": reply_payload(code=64)}),
    ("denied-by-ha-129", {"payload": reply_payload(code=129)}),
    ("denied-by-ha-133", {"payload": reply_payload(code=133)}),
    ("lifetime-0", {"payload": reply_payload(lifetime=0)}),
    ("destination-port", {"dport": RELAY_PORT + 1}),
    ("destination-address", {"dst": A("192.0.2.2")}),
    ("fa-ha-extension", {"payload": reply_payload(extensions=mn_ha() + mn_ha(ext_type=34))}),
    ("extension-type", {"payload": reply_payload(extensions=mn_ha(ext_type=33))}),
    ("no-entry", {"payload": reply_payload(home=A("10.0.0.6"))}),
    ("ip-options", {"options": b"\x01\x01\x01\x00"}),
    ("more-fragments", {"mf": True, "df": False}),
]


@pytest.mark.parametrize("frame_kw", [pytest.param(k, id=n) for n, k in REPLY_MISMATCHES])
def test_a_reply_that_does_not_accept_the_pending_request_goes_on_untouched(
    frame_kw: dict[str, object],
) -> None:
    """A denial, a deregistration's acceptance, FA-HA to verify, another Identification or
    home agent, not to the relay's address and port: to the daemon, the request still
    pending; the accepting reply is then relayed in the same place."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        relay_one_request(plane, net)
        sent = reply_frame(net, **frame_kw)  # type: ignore[arg-type]
        pending = IDENT.to_bytes(8, "big")
        untouched(plane, from_upstream(plane, net, sent), sent, pending=pending, relayed=(1, 0, 0))
        assert from_upstream(plane, net, reply_frame(net)).retval == TC_ACT_REDIRECT

    _run(body)


def test_a_reply_with_nothing_pending_goes_on_untouched() -> None:
    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        sent = reply_frame(net)
        untouched(plane, from_upstream(plane, net, sent), sent, pending=None)

    _run(body)


def test_a_new_entry_has_nothing_pending() -> None:
    """``set_relay`` replaces the entry: what was pending is forgotten (the reply then goes
    to the daemon)."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        relay_one_request(plane, net)
        plane.set_relay(HOME, entry(net))
        sent = reply_frame(net)
        untouched(plane, from_upstream(plane, net, sent), sent, pending=None, relayed=(1, 0, 0))

    _run(body)


# -- the ring buffer ----------------------------------------------------------------------------


def test_records_come_in_order_and_once() -> None:
    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        records = plane.relay_records()
        assert records is plane.relay_records()
        fd = records.fileno()
        assert select.select([fd], [], [], 0)[0] == []
        idents = [IDENT + i for i in range(4)]
        for i in idents:
            r = from_visitor(plane, net, request_frame(net, request_payload(ident=i)))
            assert r.retval == TC_ACT_REDIRECT
        reply = reply_frame(net, reply_payload(ident=idents[-1]))
        assert from_upstream(plane, net, reply).retval == TC_ACT_REDIRECT
        # five records: nobody woken (the daemon reads the ring at its next input or timer)
        assert select.select([fd], [], [], 0.2)[0] == []
        first = records.drain(limit=2)
        assert [int.from_bytes(x.payload[16:24], "big") for x in first] == idents[:2]
        rest = records.drain()
        assert [x.kind for x in rest] == [1, 1, 3]
        assert [int.from_bytes(x.payload[12:20], "big") for x in rest[2:]] == idents[-1:]
        assert [len(x.payload) for x in first + rest] == [46, 46, 46, 46, 42]
        assert records.drain() == [] and records.drain(limit=1) == []
        assert select.select([fd], [], [], 0)[0] == []

    _run(body)


def test_the_daemon_is_woken_once_64_records_wait() -> None:
    """``mip4_relayed``'s descriptor turns readable with the 64th record waiting, not
    before (``MIP4_RELAYED_WAKE``: a woken daemon applies many at once); read, it is quiet
    again."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        records = plane.relay_records()
        fd = records.fileno()
        for i in range(63):
            frame = request_frame(net, request_payload(ident=IDENT + i))
            assert from_visitor(plane, net, frame).retval == TC_ACT_REDIRECT
        assert select.select([fd], [], [], 0.2)[0] == []
        frame = request_frame(net, request_payload(ident=IDENT + 63))
        assert from_visitor(plane, net, frame).retval == TC_ACT_REDIRECT
        assert select.select([fd], [], [], 2.0)[0] == [fd]
        assert len(records.drain()) == 64
        assert select.select([fd], [], [], 0)[0] == []

    _run(body)


def test_a_full_ring_relays_nothing() -> None:
    """The engine must see every relayed datagram: with no room in ``mip4_relayed`` (no
    reader here) a request and a reply go on untouched, counted ``relay_ring_full``, the
    pending request unchanged; reading one record makes room for one relay."""

    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        frame = request_frame(net)
        relayed = 0
        while relayed <= RING_RECORDS:
            r = from_visitor(plane, net, frame)
            if r.retval != TC_ACT_REDIRECT:
                break
            relayed += 1
        assert relayed == RING_RECORDS
        assert relay_events(plane) == (RING_RECORDS, 0, 1)
        # (the loop's last run found the ring full)
        assert (r.retval, r.data) == (TC_ACT_OK, frame)
        other = request_frame(net, request_payload(ident=IDENT + 7))
        r = from_visitor(plane, net, other)
        assert (r.retval, r.data) == (TC_ACT_OK, other)
        assert plane.relays()[HOME].pending == IDENT.to_bytes(8, "big")
        reply = reply_frame(net)
        r = from_upstream(plane, net, reply)
        assert (r.retval, r.data) == (TC_ACT_OK, reply)
        assert relay_events(plane) == (RING_RECORDS, 0, 3)
        assert plane.relays()[HOME].pending == IDENT.to_bytes(8, "big")
        records = plane.relay_records()
        assert len(records.drain(limit=1)) == 1
        assert from_upstream(plane, net, reply).retval == TC_ACT_REDIRECT
        assert plane.relays()[HOME].pending is None
        left = records.drain()
        assert len(left) == RING_RECORDS
        assert {x.kind for x in left[:-1]} == {1} and left[-1].kind == 3

    _run(body)


def test_the_drain_limit_is_a_limit() -> None:
    def body(plane: BpfPlane, net: Net) -> None:
        plane.set_relay(HOME, entry(net))
        for i in range(5):
            from_visitor(plane, net, request_frame(net, request_payload(ident=i)))
        records = plane.relay_records()
        assert records.drain(limit=0) == []
        got = [records.drain(limit=2), records.drain(limit=2), records.drain(limit=2)]
        assert [len(g) for g in got] == [2, 2, 1]
        assert [int.from_bytes(x.payload[16:24], "big") for g in got for x in g] == list(range(5))

    _run(body)


# -- where the relayed frames leave: the program attached, frames on the wire ---------------


def _exchange(inject: str, capture: str, data: bytes, match: Callable[[bytes], bool]) -> bytes:
    """Send ``data`` out of ``inject`` (into its veth peer, where the program is) and return
    the first frame matching ``match`` that ``capture`` receives."""
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        rx.bind((capture, 0))
        rx.settimeout(3.0)
        tx.bind((inject, 0))
        tx.send(data)
        while True:
            got = rx.recv(2048)
            if match(got):
                return got
    finally:
        rx.close()
        tx.close()


def _is_udp(b: bytes) -> bool:
    return len(b) > 14 + 28 and b[12:14] == b"\x08\x00" and b[14 + 9] == 17


def test_the_relayed_frames_leave_by_the_right_interfaces() -> None:
    """Attached at ingress of both interfaces: the request, sent to the visitor interface,
    leaves by the upstream one (to the router); the reply, sent to the upstream interface,
    leaves by the visitor's (``bpf_redirect`` to the entry's interface)."""

    def body(plane: BpfPlane, net: Net) -> None:
        for i in (net.visitor, net.upstream):
            plane.attach(i, Program.AGENT)
        plane.set_relay(HOME, entry(net))
        got = _exchange("rv1", "ru1", request_frame(net), _is_udp)
        assert got == relayed_request(net, request_payload())
        got = _exchange("ru1", "rv1", reply_frame(net), _is_udp)
        assert got == relayed_reply(net, reply_payload())
        records = plane.relay_records().drain()
        assert [(x.kind, x.ifindex) for x in records] == [(1, net.visitor), (3, net.upstream)]
        assert relay_events(plane) == (1, 1, 0)

    _run(body)


# -- the map and the plane -------------------------------------------------------------------


def test_relay_entries_round_trip(plane: BpfPlane) -> None:
    net = Net(7, bytes.fromhex("020000001234"), 8, bytes.fromhex("020000005678"))
    e = entry(net, ttl_255=False, relay_port=434)
    plane.set_relay(HOME, e)
    assert plane.relays() == {HOME: e}
    assert plane.del_relay(HOME) and not plane.del_relay(HOME)
    assert plane.relays() == {}
    plane.set_relay(HOME, e)
    assert plane.clear(MapName.RELAY) == 1 and plane.relays() == {}
    assert plane.clear(MapName.RELAYED) == 0  # a ring buffer: no entries


@pytest.mark.parametrize(
    "changes",
    [
        {"request": bytes(15)},
        {"request": b"\x03" + bytes(15)},
        {"node_mac": b"\x01"},
        {"own_mac": bytes(7)},
        {"node": A("0.0.0.0")},
        {"agent": A("255.255.255.255")},
        {"agent": A("224.0.0.11")},
    ],
    ids=["short", "not-a-request", "node-mac", "own-mac", "node-0", "agent-bcast", "agent-mcast"],
)
def test_an_entry_the_program_cannot_use_is_refused(changes: dict[str, object]) -> None:
    net = Net(7, bytes.fromhex("020000001234"), 8, bytes.fromhex("020000005678"))
    with pytest.raises(ValueError):
        entry(net, **changes).pack()


def test_the_relay_map_scales_with_the_capacity_and_the_ring_does_not() -> None:
    with BpfPlane() as default, BpfPlane(capacity=4096) as small:
        assert default.max_entries(MapName.RELAY) == 65536
        assert small.max_entries(MapName.RELAY) == 4096
        assert default.max_entries(MapName.RELAYED) == small.max_entries(MapName.RELAYED) == 1 << 20


def test_closing_the_plane_closes_the_records() -> None:
    with BpfPlane() as plane:
        records = plane.relay_records()
        assert records.drain() == []
    with pytest.raises(ValueError):
        records.drain()
