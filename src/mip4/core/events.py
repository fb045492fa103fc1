"""Inputs to the engines (besides the passage of time, which is ``handle_timer(now)``).

``now`` is a monotonic time in seconds supplied by the caller; engines never read a clock.
Received messages carry the bytes exactly as received, so authenticators are verified over
them (RFC 5944 §3.5.1), plus the addressing the I/O shell observed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mip4.aaa.messages import AaaAnswer as AaaAnswer
from mip4.aaa.messages import AccountingAnswer as AccountingAnswer
from mip4.wire.records import make_record


@dataclass(frozen=True)
class UdpReceived:
    """A UDP datagram to or from port 434 (Mobile IP control)."""

    payload: bytes
    src: IPv4Address
    dst: IPv4Address
    sport: int
    dport: int
    interface: str
    #: the sender's link-layer address when known (the FA needs it to deliver to a visitor
    #: without ARP, RFC 5944 §3.7.1 / §4.2.2)
    link_src: bytes | None = None
    #: IP TTL of the received datagram, as it arrived (no default: the foreign agent checks
    #: it, RFC 3024 §4.2.1: a request with T must arrive with TTL 255)
    ttl: int = field(kw_only=True)


def udp_received(
    payload: bytes,
    src: IPv4Address,
    dst: IPv4Address,
    sport: int,
    dport: int,
    interface: str,
    link_src: bytes | None,
    ttl: int,
) -> UdpReceived:
    """``UdpReceived(payload, src, dst, sport, dport, interface, link_src, ttl=ttl)`` built
    as one record (:func:`mip4.wire.records.make_record`: one ``__dict__`` assignment
    instead of a frozen ``__setattr__`` per field) -- the UDP socket and the simulator
    build one per datagram (``tests/io/test_udp_fast_paths.py`` and ``tests/sim`` compare it
    with the constructor, field by field)."""
    return make_record(
        UdpReceived,
        {
            "payload": payload,
            "src": src,
            "dst": dst,
            "sport": sport,
            "dport": dport,
            "interface": interface,
            "link_src": link_src,
            "ttl": ttl,
        },
    )


@dataclass(frozen=True)
class IcmpReceived:
    """An ICMP router discovery message (type 9 advertisement or type 10 solicitation)."""

    payload: bytes
    src: IPv4Address
    dst: IPv4Address
    interface: str
    link_src: bytes | None = None
    #: IP TTL of the received datagram, as it arrived (RFC 1256: router discovery uses 1)
    ttl: int = field(kw_only=True)


@dataclass(frozen=True)
class LinkUp:
    """The link on ``interface`` came up (or the node attached to a new link)."""

    interface: str
    #: our own address on it, when the link has one (co-located care-of address, or the
    #: agent's address)
    address: IPv4Address | None = None
    prefix_len: int | None = None


@dataclass(frozen=True)
class LinkDown:
    """The link on ``interface`` went down (the node left it)."""

    interface: str


@dataclass(frozen=True)
class DestinationUnreachable:
    """An ICMP Destination Unreachable (type 3) about a datagram this node sent: the
    foreign agent answers the mobile node with code 80, 81, 82 or 88 when it concerns a
    relayed Registration Request (RFC 5944 §3.4, §3.7.2.3; see :mod:`mip4.core.foreign_agent`).

    The I/O shell fills the fields from the ICMP message and the IP/UDP headers it quotes
    (RFC 792: the original IP header and at least 8 bytes of its payload; RFC 1812 §4.3.2.3
    routers quote as much as fits in 576 bytes)."""

    #: ICMP code: 0 net, 1 host, 3 port unreachable... (RFC 792, RFC 1122, RFC 1812)
    code: int
    #: who sent the ICMP error
    src: IPv4Address
    #: destination of the datagram that could not be delivered
    original_dst: IPv4Address
    interface: str
    #: the quoted datagram's UDP source / destination ports (``None`` when not UDP)
    original_sport: int | None = None
    original_dport: int | None = None
    #: the quoted UDP payload, as much as the error carried (may be empty or truncated)
    original_payload: bytes = b""


@dataclass(frozen=True)
class MoveAnticipated:
    """Link-layer anticipation on the mobile node: "about to move to network X", as a
    wireless driver's scan report gives it (RFC 4881 §1.3 L2 triggers). ``advertisement``
    is the new foreign agent's Agent Advertisement (ICMP bytes) heard or relayed in
    advance, ``src`` its IP source and ``link_src`` its link-layer address; the move
    itself is the later ``LinkDown`` / ``LinkUp`` on ``interface``."""

    interface: str
    advertisement: bytes
    src: IPv4Address
    link_src: bytes | None = None


@dataclass(frozen=True)
class HandoffTrigger:
    """Link-layer source trigger on a foreign agent (RFC 4881 §1.3, L2-ST): the visitor
    ``home_address`` is about to move to the foreign agent ``new_agent``. The agent
    starts a post-registration handoff (Handoff Request to the new agent)."""

    home_address: IPv4Address
    new_agent: IPv4Address


@dataclass(frozen=True)
class RelayedByKernel:
    """Issue 13: the datagram whose UDP payload is ``payload`` was relayed by the kernel on
    a :class:`~mip4.core.actions.RelayInKernel` -- a visitor's request sent on to its home
    agent (type 1), or the home agent's acceptance sent on to the visitor (type 3), its
    addressing the entry's. The foreign agent applies it as it would have had the datagram
    come to it, and sends nothing: that was done (:mod:`mip4.core.fa_kernel`)."""

    payload: bytes


Event = (
    UdpReceived
    | RelayedByKernel
    | IcmpReceived
    | LinkUp
    | LinkDown
    | DestinationUnreachable
    | AaaAnswer
    | AccountingAnswer
    | MoveAnticipated
    | HandoffTrigger
)
