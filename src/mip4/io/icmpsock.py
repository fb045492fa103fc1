"""ICMP sockets: router discovery (RFC 1256 / RFC 5944 §2: the agents' advertisements and
the nodes' solicitations, sent on a raw ICMP socket and read from a packet socket that
reports the sender's hardware address), ICMP Destination Unreachable about datagrams we
sent, and a bounded echo for probing the lab.

Split out of :mod:`mip4.io.rawsock` (the UDP 434 socket, the tunnel sockets and the
link-layer delivery), whose socket helpers and constants these use.

Router discovery (RFC 1256, RFC 5944 §2) is sent on a raw ICMP socket bound to the
interface (``SO_BINDTODEVICE``), TTL 1 for unicast and multicast, ``SO_BROADCAST`` for
255.255.255.255. It is received on an ``AF_PACKET`` socket with a classic BPF filter that
accepts only unfragmented ICMP types 9 and 10: unlike a raw ICMP socket, a packet socket
reports the sender's hardware address, which the mobile node needs to reach its foreign
agent without ARP (RFC 5944 §4.2.1).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address

from mip4.core.events import DestinationUnreachable, IcmpReceived
from mip4.wire.addr import ipv4_from_bytes
from mip4.wire.packets import (
    ICMP_DEST_UNREACH,
    icmp_with_checksum,
    parse_destination_unreachable,
)

from .netns import entered
from .rawsock import (
    _INT,
    ETH_P_IP,
    IP_ADD_MEMBERSHIP,
    IP_MULTICAST_IF,
    IP_MULTICAST_LOOP,
    IP_MULTICAST_TTL,
    IP_PKTINFO,
    IP_TTL,
    PACKET_OUTGOING,
    PKTINFO,
    _bind_to_device,
    _nonblocking,
    attach_filter,
    bpf_icmp_types,
    if_index,
    if_name,
)

# ----------------------------------------------------------------------------------------
# ICMP router discovery
# ----------------------------------------------------------------------------------------


def _mreqn(group: IPv4Address, ifindex: int) -> bytes:
    return group.packed + b"\0\0\0\0" + _INT.pack(ifindex)


def open_icmp_socket(
    interface: str,
    netns: str | None = None,
    *,
    ttl: int = 1,
    groups: Iterable[IPv4Address] = (),
) -> socket.socket:
    """A raw ICMP socket for sending router discovery on ``interface``: bound to the device,
    unicast and multicast TTL ``ttl``, broadcast allowed, multicast leaves by ``interface``
    and is not looped back. ``groups`` are joined on ``interface`` (a raw ICMP socket then
    also receives them, with the IP header; :func:`open_discovery_capture` is the receiver
    that also reports link-layer sources)."""
    with entered(netns):
        sock = socket.socket(
            socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMP
        )
    try:
        _bind_to_device(sock, interface)
        ifindex = if_index(sock, interface)
        sock.setsockopt(socket.IPPROTO_IP, IP_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_IF, _mreqn(IPv4Address(0), ifindex))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for g in groups:
            sock.setsockopt(socket.IPPROTO_IP, IP_ADD_MEMBERSHIP, _mreqn(IPv4Address(g), ifindex))
    except BaseException:
        sock.close()
        raise
    return _nonblocking(sock)


def open_discovery_capture(
    interface: str, netns: str | None = None, *, types: Iterable[int] = (9, 10)
) -> socket.socket:
    """An AF_PACKET socket on ``interface`` that receives only ICMP of ``types`` (router
    advertisement 9, solicitation 10), with the sender's hardware address."""
    with entered(netns):
        sock = socket.socket(
            socket.AF_PACKET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.htons(ETH_P_IP)
        )
    try:
        attach_filter(sock, bpf_icmp_types(*types))
        sock.bind((interface, ETH_P_IP))
    except BaseException:
        sock.close()
        raise
    return _nonblocking(sock)


def recv_discovery(sock: socket.socket, *, limit: int = 64) -> list[IcmpReceived]:
    """Drain an :func:`open_discovery_capture` socket into ``IcmpReceived`` events (the ICMP
    message in ``payload``; our own outgoing packets are skipped)."""
    out: list[IcmpReceived] = []
    for _ in range(limit):
        try:
            data, addr = sock.recvfrom(65535)
        except BlockingIOError:
            break
        ifname, _proto, pkttype, _hatype, lladdr = addr
        if pkttype == PACKET_OUTGOING or len(data) < 20:
            continue
        hlen = (data[0] & 0xF) * 4
        total = int.from_bytes(data[2:4], "big")
        out.append(
            IcmpReceived(
                payload=bytes(data[hlen:total]),
                src=ipv4_from_bytes(data, 12),
                dst=ipv4_from_bytes(data, 16),
                interface=ifname,
                link_src=bytes(lladdr) or None,
                ttl=data[8],
            )
        )
    return out


# ----------------------------------------------------------------------------------------
# ICMP Destination Unreachable about datagrams we sent
# ----------------------------------------------------------------------------------------

SOL_RAW = 255
ICMP_FILTER = 1


def open_icmp_error_socket(netns: str | None = None) -> socket.socket:
    """A raw ICMP socket that receives only Destination Unreachable (``ICMP_FILTER`` drops
    every other type in the kernel), with ``IP_PKTINFO`` for the arrival interface."""
    with entered(netns):
        sock = socket.socket(
            socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMP
        )
    try:
        sock.setsockopt(SOL_RAW, ICMP_FILTER, _INT.pack(~(1 << ICMP_DEST_UNREACH) & 0x7FFFFFFF))
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    except BaseException:
        sock.close()
        raise
    return _nonblocking(sock)


def recv_destination_unreachable(
    sock: socket.socket, *, ifname_of: Callable[[int], str] | None = None, limit: int = 64
) -> list[DestinationUnreachable]:
    """Drain an :func:`open_icmp_error_socket` socket into ``DestinationUnreachable``
    events."""
    cmsg_space = socket.CMSG_SPACE(PKTINFO.size)
    out: list[DestinationUnreachable] = []
    for _ in range(limit):
        try:
            data, anc, _flags, _addr = sock.recvmsg(65535, cmsg_space)
        except BlockingIOError:
            break
        ifindex = 0
        for level, kind, cdata in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                ifindex = PKTINFO.unpack_from(cdata)[0]
        name = ""
        if ifindex:
            name = ifname_of(ifindex) if ifname_of else if_name(sock, ifindex)
        quote = parse_destination_unreachable(data)
        if quote is not None:
            out.append(
                DestinationUnreachable(
                    code=quote.code,
                    src=quote.src,
                    original_dst=quote.original_dst,
                    interface=name,
                    original_sport=quote.original_sport,
                    original_dport=quote.original_dport,
                    original_payload=quote.original_payload,
                )
            )
    return out


# ----------------------------------------------------------------------------------------
# ICMP echo, for probing the lab (bounded)
# ----------------------------------------------------------------------------------------


def ping(
    dst: IPv4Address | str,
    *,
    netns: str | None = None,
    count: int = 1,
    timeout: float = 1.0,
    src: IPv4Address | str | None = None,
    size: int = 56,
) -> list[float]:
    """Send ``count`` (at most 100) ICMP echo requests to ``dst`` from namespace ``netns``,
    waiting at most ``timeout`` seconds for each reply; returns the round-trip times of
    the replies received."""
    import os
    import select

    dst = IPv4Address(dst)
    with entered(netns):
        sock = socket.socket(
            socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMP
        )
    rtts: list[float] = []
    try:
        if src is not None:
            sock.bind((str(src), 0))
        ident = os.getpid() & 0xFFFF
        for seq in range(min(count, 100)):
            body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + bytes(size)
            sent = time.monotonic()
            sock.sendto(icmp_with_checksum(body), (str(dst), 0))
            deadline = sent + timeout
            while (left := deadline - time.monotonic()) > 0:
                r, _, _ = select.select([sock], [], [], left)
                if not r:
                    break
                data = sock.recv(65535)
                hlen = (data[0] & 0xF) * 4
                if len(data) < hlen + 8 or data[12:16] != dst.packed:
                    continue
                typ, _code, _c, rid, rseq = struct.unpack_from("!BBHHH", data, hlen)
                if typ == 0 and rid == ident and rseq == seq:
                    rtts.append(time.monotonic() - sent)
                    break
    except OSError as exc:
        if exc.errno not in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            raise
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    return rtts
