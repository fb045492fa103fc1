"""Registration Requests from mobile nodes that have no address yet (RFC 2794, issue 10).

A mobile node known only by its NAI has no home address until its home agent assigns one:
its first Registration Request through a foreign agent carries Home Address 0.0.0.0 and
leaves the node with IP source 0.0.0.0. Linux drops a unicast datagram from 0.0.0.0 as a
martian before any UDP socket sees it (``ip_route_input_slow``: a zero source is accepted
only towards a broadcast), so the foreign agent's UDP 434 socket never gets it.

This module picks those datagrams up where the kernel still has them: an ``AF_PACKET``
socket on the agent's links with a classic BPF filter that passes only unfragmented IPv4
UDP from 0.0.0.0 to the registration port (every other datagram goes to the UDP socket as
before; the two never both see one: what the kernel does deliver from 0.0.0.0 -- to the
limited broadcast address, to a link-local multicast group -- is left to the UDP socket).
:func:`recv_unaddressed` turns each into the same :class:`~mip4.core.events.UdpReceived`
the UDP socket would give, with the sender's hardware address (the agent answers it at the
link layer, RFC 5944 §3.7.2.3 / RFC 2794 §2).
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address

from mip4.core.events import UdpReceived
from mip4.wire.addr import ipv4_from_bytes

from .netns import entered
from .rawsock import ETH_P_IP, PACKET_OUTGOING, attach_filter

__all__ = ["bpf_unaddressed_udp", "open_unaddressed_capture", "recv_unaddressed"]

_ZERO = IPv4Address(0)
_BROADCAST = IPv4Address("255.255.255.255")


def bpf_unaddressed_udp(port: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF: accept unfragmented IPv4 UDP from 0.0.0.0 to ``port`` (packet sockets of
    type ``SOCK_DGRAM``: offsets start at the IP header)."""
    return [
        (0x20, 0, 0, 12),  # ld [12]            source address
        (0x15, 0, 7, 0),  # jeq #0 else drop
        (0x30, 0, 0, 9),  # ldb [9]            protocol
        (0x15, 0, 5, 17),  # jeq #17 else drop
        (0x28, 0, 0, 6),  # ldh [6]            flags / fragment offset
        (0x45, 3, 0, 0x1FFF),  # fragment -> drop
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf)   header length
        (0x48, 0, 0, 2),  # ldh [x+2]          destination port
        (0x15, 1, 0, port),  # jeq port -> accept
        (0x06, 0, 0, 0),  # drop
        (0x06, 0, 0, 0xFFFF),  # accept
    ]


def open_unaddressed_capture(netns: str | None = None, *, port: int = 434) -> socket.socket:
    """A non-blocking ``AF_PACKET`` socket (every interface of the namespace) that receives
    only what :func:`bpf_unaddressed_udp` passes."""
    with entered(netns):
        sock = socket.socket(
            socket.AF_PACKET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.htons(ETH_P_IP)
        )
    try:
        attach_filter(sock, bpf_unaddressed_udp(port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def parse_unaddressed(data: bytes, interface: str, hwaddr: bytes) -> UdpReceived | None:
    """One captured datagram as the event the UDP socket would have given (``None``: not
    a well-formed UDP datagram from 0.0.0.0)."""
    if len(data) < 28 or data[0] >> 4 != 4:
        return None
    hlen = (data[0] & 0xF) * 4
    total = int.from_bytes(data[2:4], "big")
    if hlen < 20 or total > len(data) or total < hlen + 8:
        return None
    if ipv4_from_bytes(data, 12) != _ZERO:
        return None
    udp_len = int.from_bytes(data[hlen + 4 : hlen + 6], "big")
    if udp_len < 8 or hlen + udp_len > total:
        return None
    dst = ipv4_from_bytes(data, 16)
    if dst in (_ZERO, _BROADCAST) or dst.is_multicast:
        # the kernel itself delivers these from 0.0.0.0 (a limited broadcast, a link-local
        # group): the UDP socket has them already
        return None
    return UdpReceived(
        payload=bytes(data[hlen + 8 : hlen + udp_len]),
        src=_ZERO,
        dst=dst,
        sport=int.from_bytes(data[hlen : hlen + 2], "big"),
        dport=int.from_bytes(data[hlen + 2 : hlen + 4], "big"),
        interface=interface,
        link_src=hwaddr or None,
        ttl=data[8],
    )


def recv_unaddressed(sock: socket.socket, limit: int = 256) -> list[UdpReceived]:
    """Drain :func:`open_unaddressed_capture` (at most ``limit`` datagrams)."""
    out: list[UdpReceived] = []
    for _ in range(limit):
        try:
            data, addr = sock.recvfrom(65535)
        except BlockingIOError:
            break
        if addr[2] == PACKET_OUTGOING:
            continue
        ev = parse_unaddressed(data, addr[0], bytes(addr[4]))
        if ev is not None:
            out.append(ev)
    return out
