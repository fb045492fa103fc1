"""Sockets below UDP: raw IPv4 for tunnels, AF_PACKET for link-layer delivery, and the UDP
434 control socket with the addressing the engines need (the ICMP sockets -- router
discovery, Destination Unreachable, echo -- are :mod:`mip4.io.icmpsock`).

Theory of operation
-------------------
Every ``open_*`` takes ``netns``: the socket is created while the calling thread is inside
that namespace (:func:`mip4.io.netns.entered`) and stays there; ``None`` means the current
namespace (the daemons run under ``ip netns exec``). All sockets are non-blocking and
close-on-exec; the ``recv_*`` helpers drain until ``EAGAIN`` (bounded by ``limit``).

Tunnel sockets (IP protocols 4, 47, 55) are raw sockets with ``IP_HDRINCL``: the data plane
builds the complete outer header itself (RFC 2003 §3.1 TTL/TOS/DF rules live in
:mod:`mip4.dataplane`), the kernel fills in only the header checksum, the total length, and
the identification and source address when they are zero. Received datagrams include the
outer IP header. An open raw socket for a protocol also stops the kernel's ICMP
protocol-unreachable replies for it.

The UDP 434 socket asks for ``IP_PKTINFO`` and ``IP_RECVTTL`` so every datagram comes with
the arrival interface, its destination address (unicast, broadcast or multicast) and its TTL
(a request relayed by a foreign agent must have arrived with TTL 1, RFC 5944 §3.6.1.1).
The link-source tap (:mod:`mip4.io.linktap`: AF_PACKET, BPF on the UDP port) supplies the
sender's hardware address (the foreign agent must deliver the reply to it without ARP, RFC
5944 §3.7.1).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import socket
import struct
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.core.events import UdpReceived, udp_received
from mip4.wire.addr import ipv4_from_bytes
from mip4.wire.addr import ipv4_int as _int
from mip4.wire.packets import (
    gratuitous_arp,
)

from .netns import entered

if TYPE_CHECKING:
    from .mmsg import BatchReceiver

# Linux constants the socket module lacks in Python 3.11
IP_TTL = 2
IP_HDRINCL = 3
IP_PKTINFO = 8
IP_RECVTTL = 12
IP_MULTICAST_IF = 32
IP_MULTICAST_TTL = 33
IP_MULTICAST_LOOP = 34
IP_ADD_MEMBERSHIP = 35
SO_BINDTODEVICE = 25
SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
PACKET_OUTGOING = 4
BROADCAST_MAC = b"\xff" * 6

ALL_SYSTEMS = IPv4Address("224.0.0.1")  #: RFC 1256 advertisements
ALL_ROUTERS = IPv4Address("224.0.0.2")  #: RFC 1256 solicitations
LIMITED_BROADCAST = IPv4Address("255.255.255.255")

PKTINFO = struct.Struct("=i4s4s")
_INT = struct.Struct("=i")


def _nonblocking(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)
    return sock


def _bind_to_device(sock: socket.socket, interface: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())


def if_index(sock: socket.socket, interface: str) -> int:
    """Index of ``interface`` in the namespace of ``sock`` (SIOCGIFINDEX on the socket)."""
    import fcntl

    ifr = struct.pack("16si20x", interface.encode(), 0)
    res = fcntl.ioctl(sock.fileno(), 0x8933, ifr)  # SIOCGIFINDEX
    return int(struct.unpack_from("16si", res)[1])


def if_name(sock: socket.socket, index: int) -> str:
    """Name of interface ``index`` in the namespace of ``sock`` (SIOCGIFNAME)."""
    import fcntl

    ifr = struct.pack("16si20x", b"", index)
    res = fcntl.ioctl(sock.fileno(), 0x8910, ifr)  # SIOCGIFNAME
    return res[:16].split(b"\0", 1)[0].decode()


class InterfaceNames:
    """Interface index -> name in the namespace of ``sock`` (:func:`if_name`), kept from
    one read to the next (issue 13: one ``SIOCGIFNAME`` per read of the control socket
    before) until :meth:`clear` -- which its owner calls whenever it reads the
    namespace's link notifications (a link renamed, gone or new: :class:`LinkChanges`,
    :class:`~mip4.io.linkmon.LinkMonitor`). At most ``limit`` names (all forgotten when
    full)."""

    __slots__ = ("limit", "names", "sock")

    def __init__(self, sock: socket.socket, limit: int = 1024) -> None:
        self.sock = sock
        self.limit = limit
        self.names: dict[int, str] = {}

    def __call__(self, index: int) -> str:
        name = self.names.get(index)
        if name is None:
            if len(self.names) >= self.limit:
                self.names.clear()
            name = self.names[index] = if_name(self.sock, index)
        return name

    def clear(self) -> None:
        self.names.clear()


# ----------------------------------------------------------------------------------------
# classic BPF (SO_ATTACH_FILTER)
# ----------------------------------------------------------------------------------------


def attach_filter(sock: socket.socket, program: Iterable[tuple[int, int, int, int]]) -> None:
    """Attach a classic BPF program, a list of ``(code, jt, jf, k)``."""
    insns = b"".join(struct.pack("HBBI", *i) for i in program)
    buf = ctypes.create_string_buffer(insns)
    fprog = struct.pack("HL", len(insns) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def bpf_icmp_types(*types: int) -> list[tuple[int, int, int, int]]:
    """Accept unfragmented IPv4 ICMP whose type is one of ``types`` (packet sockets of type
    ``SOCK_DGRAM``: offsets start at the IP header)."""
    n = len(types)
    drop = 6 + n  # index of "ret 0"; "ret 0xffff" follows it
    prog = [
        (0x30, 0, 0, 9),  # ldb [9]            protocol
        (0x15, 0, drop - 2, 1),  # jeq #1
        (0x28, 0, 0, 6),  # ldh [6]            flags/fragment offset
        (0x45, drop - 4, 0, 0x1FFF),  # jset #0x1fff -> drop
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf)   header length
        (0x50, 0, 0, 0),  # ldb [x+0]          ICMP type
    ]
    for i, t in enumerate(types):
        here = 6 + i
        prog.append((0x15, drop - here, 0, t))  # -> accept
    prog += [(0x06, 0, 0, 0), (0x06, 0, 0, 0xFFFF)]
    return prog


def bpf_udp_dport(port: int) -> list[tuple[int, int, int, int]]:
    """Accept unfragmented IPv4 UDP to ``port``."""
    return [
        (0x30, 0, 0, 9),  # ldb [9]
        (0x15, 0, 5, 17),  # jeq #17 else drop
        (0x28, 0, 0, 6),  # ldh [6]
        (0x45, 3, 0, 0x1FFF),  # fragment -> drop
        (0xB1, 0, 0, 0),  # ldxb msh
        (0x48, 0, 0, 2),  # ldh [x+2]  destination port
        (0x15, 1, 0, port),  # jeq port -> accept  (falls through to drop)
        (0x06, 0, 0, 0),
        (0x06, 0, 0, 0xFFFF),
    ]


def bpf_udp_dport_from_home_address(port: int) -> list[tuple[int, int, int, int]]:
    """:func:`bpf_udp_dport`, and only datagrams whose IP source is the address in bytes
    4-7 of their payload: a Registration Request a mobile node sent from its own home
    address (the Home Address field, RFC 5944 §3.3) -- the only datagrams whose sender's
    hardware address a home agent uses (RFC 5944 §4.6: the node's own address, announced
    again when it deregisters at home). Everything else (a foreign agent's relays,
    co-located nodes) is not copied to the tap at all."""
    return [
        (0x30, 0, 0, 9),  # 0: ldb [9]
        (0x15, 0, 10, 17),  # 1: jeq #17 else drop
        (0x28, 0, 0, 6),  # 2: ldh [6]
        (0x45, 8, 0, 0x1FFF),  # 3: fragment -> drop
        (0xB1, 0, 0, 0),  # 4: ldxb msh
        (0x48, 0, 0, 2),  # 5: ldh [x+2]  destination port
        (0x15, 0, 5, port),  # 6: jeq port else drop
        (0x40, 0, 0, 12),  # 7: ld [x+12]  payload bytes 4-7 (the Home Address field)
        (0x07, 0, 0, 0),  # 8: tax
        (0x20, 0, 0, 12),  # 9: ld [12]  IP source
        (0x1D, 0, 1, 0),  # 10: jeq x -> accept else drop
        (0x06, 0, 0, 0xFFFF),  # 11: accept
        (0x06, 0, 0, 0),  # 12: drop
    ]


#: classic BPF's ancillary load of the arrival interface's index (``SKF_AD_OFF +
#: SKF_AD_IFINDEX``, <linux/filter.h>), as the unsigned ``k`` of ``ld [k]``
_SKF_AD_IFINDEX = (-0x1000 + 8) & 0xFFFFFFFF


def bpf_on_interfaces(
    indexes: Iterable[int], program: list[tuple[int, int, int, int]]
) -> list[tuple[int, int, int, int]]:
    """``program``, for frames that arrive on one of the interfaces ``indexes`` only: a
    comparison of the arrival interface's index with each in front of it (every other
    frame is dropped before ``program`` runs, and never copied to the socket). No index:
    nothing is accepted. ``program``'s jumps are relative: it runs unchanged behind the
    prefix. An unbound packet socket with this filter keeps its place among the
    kernel's receive handlers -- before IP, so a tap still sees a frame before the UDP
    socket does -- which a socket bound to one interface would not (a bound socket's
    handler runs after IP's)."""
    wanted = sorted(set(indexes))
    n = len(wanted)
    if n > 250:
        raise ValueError(f"bpf_on_interfaces: {n} interfaces (a jump reaches 255 at most)")
    prog = [(0x20, 0, 0, _SKF_AD_IFINDEX)]  # ld ifidx
    for i, index in enumerate(wanted):
        prog.append((0x15, n - i, 0, index))  # jeq #index -> program
    prog.append((0x06, 0, 0, 0))  # another interface: drop
    return prog + program


# ----------------------------------------------------------------------------------------
# raw IPv4: tunnels
# ----------------------------------------------------------------------------------------


def open_tunnel_socket(
    protocol: int, netns: str | None = None, *, rcvbuf: int = 1 << 21, sndbuf: int = 1 << 21
) -> socket.socket:
    """A raw IPv4 socket for ``protocol`` (4, 47 or 55) with ``IP_HDRINCL``.

    Send complete datagrams with ``sock.sendto(packet, (str(outer_dst), 0))``; receive with
    ``recv_into``: each datagram starts with its outer IP header."""
    with entered(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_HDRINCL, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    except BaseException:
        sock.close()
        raise
    return _nonblocking(sock)


# ----------------------------------------------------------------------------------------
# AF_PACKET: delivery to a hardware address, gratuitous ARP
# ----------------------------------------------------------------------------------------


SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20  # <linux/if_packet.h>


def open_packet_sender(netns: str | None = None) -> socket.socket:
    """An AF_PACKET ``SOCK_DGRAM`` socket that only sends (protocol 0 receives nothing);
    the kernel adds the Ethernet header for the destination given to :func:`send_to_link`.
    Its frames go straight to the device (``PACKET_QDISC_BYPASS``): a frame the daemon
    built for a hardware address is final, and the tc-BPF plane's egress program must not
    tunnel it -- e.g. a mobile node's Registration Request to a foreign agent, sent while
    the reverse tunnel of its previous, co-located attachment is still installed."""
    with entered(netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0)
    with contextlib.suppress(OSError):
        sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    return _nonblocking(sock)


def send_to_link(
    sock: socket.socket,
    interface: str,
    link_dst: bytes,
    packet: bytes | bytearray | memoryview,
    *,
    ethertype: int = ETH_P_IP,
) -> int:
    """Send ``packet`` on ``interface`` to hardware address ``link_dst``, no ARP."""
    return sock.sendto(packet, (interface, ethertype, 0, 0, link_dst))


#: the 28 bytes of an IPv4 header without options and a UDP header (RFC 791 §3.1, RFC 768)
_IPV4_UDP = struct.Struct("!BBHHHBBH4s4sHHHH")
#: what changes per datagram: bytes 2-11 of the IPv4 header (Total Length, Identification,
#: flags and fragment offset, TTL, protocol, checksum) and bytes 4-7 of the UDP header
_IPV4_VARIABLE = struct.Struct("!HHHBBH")
_UDP_VARIABLE = struct.Struct("!HH")
_UDP = 17


#: what a packet socket bound to an interface answers once the interface is deleted
_GONE = frozenset({errno.ENXIO, errno.ENODEV})
#: an Ethernet header's length, and the hardware type its devices have (<linux/if_arp.h>)
_ETH_HLEN, ARPHRD_ETHER = 14, 1


class _Template:
    """One destination's header: the bytes that do not change, their one's complement
    sums (taken modulo 0xFFFF: a sum of 16-bit words is congruent to the number the
    bytes spell, 2**16 being 1 modulo 0xFFFF), and the socket address. With ``link`` (a
    socket bound to the interface and the interface's hardware address) the buffer
    starts with the Ethernet header the kernel would have written (``offset`` 14)."""

    __slots__ = ("address", "buffer", "ip_sum", "link", "offset", "ttl", "udp_sum")

    def __init__(
        self,
        interface: str,
        link_dst: bytes,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        ttl: int,
        link: tuple[socket.socket, bytes] | None = None,
    ) -> None:
        self.ttl = ttl
        # Total Length, Identification (0, as ipv4_udp_packet), checksums: zero here
        header = _IPV4_UDP.pack(0x45, 0, 0, 0, 0, ttl, _UDP, 0, src, dst, sport, dport, 0, 0)
        self.ip_sum = int.from_bytes(header[:20], "big") % 0xFFFF
        # the pseudo-header without its length, and the ports (RFC 768)
        self.udp_sum = (int.from_bytes(src + dst, "big") + _UDP + sport + dport) % 0xFFFF
        self.address = (interface, ETH_P_IP, 0, 0, link_dst)
        self.link: socket.socket | None = None
        self.offset = 0
        if link is None:
            self.buffer = bytearray(header)
        else:  # destination, source, EtherType IPv4 (what eth_header writes)
            self.link, self.offset = link[0], _ETH_HLEN
            self.buffer = bytearray(link_dst + link[1] + b"\x08\x00" + header)


def bound_ethernet_socket(interface: str, netns: str | None) -> tuple[socket.socket, bytes] | None:
    """A non-blocking packet socket (protocol 0: it receives nothing) bound to
    ``interface`` in ``netns``, with the interface's hardware address; ``None`` when the
    interface is not Ethernet or binding fails. Opening the socket itself may raise
    :class:`OSError` (no packet sockets here)."""
    import fcntl

    with entered(netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    try:
        ifr = fcntl.ioctl(sock.fileno(), 0x8927, struct.pack("16s16x", interface.encode()))
        if struct.unpack_from("=H", ifr, 16)[0] == ARPHRD_ETHER:  # SIOCGIFHWADDR: sa_family
            sock.bind((interface, 0))
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            return _nonblocking(sock), bytes(ifr[18:24])
    except OSError:
        pass
    sock.close()
    return None


class LinkUdpSender:
    """IPv4/UDP datagrams sent to a hardware address on a link from an ``AF_PACKET``
    socket (:func:`open_packet_sender`; the kernel adds the Ethernet header, no ARP):
    the foreign agent's replies to its visitors (RFC 5944 §3.7.3.2).

    A header template is kept per destination -- interface, hardware address, source and
    destination addresses, ports and TTL, i.e. per visitor -- so that a datagram only
    computes what changes: Total Length, UDP Length and the two checksums, the IPv4 one
    from the template's sum, the UDP one from the template's sum and the payload's
    (RFC 1071 §2), packed into the template's buffer (``struct.pack_into``) in front of
    the payload. The bytes are those of :func:`mip4.wire.packets.ipv4_udp_packet`
    (Identification 0, no DF, TOS 0); ``tests/io/test_link_sender.py`` compares them.
    At most ``max_templates`` are kept (all forgotten when full: a template is cheap to
    make again).

    ``bind_links``: on an Ethernet interface, send the whole frame (the Ethernet header
    the kernel would write, in the template) with ``send`` on a ``SOCK_RAW`` packet socket
    bound to the interface, opened in ``netns`` (the namespace of ``sock``) once per
    interface -- a ``sendto`` with an interface name makes CPython ask the kernel for its
    index (``SIOCGIFINDEX``) on every datagram. The hardware address is the interface's
    when its first template is made. A send the bound socket fails because the interface
    is gone (``ENXIO``, ``ENODEV``) forgets it and goes through ``sock`` as without
    ``bind_links``: the same datagram, the same error if it fails there too."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        max_templates: int = 65536,
        bind_links: bool = False,
        netns: str | None = None,
    ) -> None:
        self.sock = sock
        self.max_templates = max_templates
        self.bind_links = bind_links
        self.netns = netns
        self._templates: dict[tuple[str, bytes, int, int, int, int, int], _Template] = {}
        #: interface -> its bound socket and hardware address (``None``: not Ethernet,
        #: or the bound socket failed: ``sock`` with the interface's name)
        self._links: dict[str, tuple[socket.socket, bytes] | None] = {}

    def __len__(self) -> int:
        return len(self._templates)

    def _link(self, interface: str) -> tuple[socket.socket, bytes] | None:
        if interface in self._links:
            return self._links[interface]
        link = self._links[interface] = bound_ethernet_socket(interface, self.netns)
        return link

    def _forget_link(self, interface: str) -> None:
        """The interface is gone: its bound socket is of no use any more; a new interface
        of that name gets one at its first template (when it is there and Ethernet)."""
        old = self._links.pop(interface, None)
        if old is not None:
            old[0].close()
        self._templates.clear()

    def close(self) -> None:
        """Close the bound sockets (not ``sock``, the caller's)."""
        for link in self._links.values():
            if link is not None:
                link[0].close()
        self._links.clear()
        self._templates.clear()

    def _frame(
        self,
        interface: str,
        link_dst: bytes,
        src: IPv4Address,
        dst: IPv4Address,
        sport: int,
        dport: int,
        payload: bytes,
        ttl: int,
    ) -> tuple[bytearray, _Template]:
        key = (interface, link_dst, _int(src), _int(dst), sport, dport, ttl)
        t = self._templates.get(key)
        if t is None:
            if len(self._templates) >= self.max_templates:
                self._templates.clear()
            link = self._link(interface) if self.bind_links else None
            t = _Template(interface, link_dst, src.packed, dst.packed, sport, dport, ttl, link)
            self._templates[key] = t
        n = len(payload)
        total, length = 28 + n, 8 + n
        s = (t.ip_sum + total) % 0xFFFF
        buf, o = t.buffer, t.offset
        _IPV4_VARIABLE.pack_into(buf, o + 2, total, 0, 0, t.ttl, _UDP, 0xFFFF - s if s else 0)
        words = int.from_bytes(payload, "big")
        if n & 1:
            words <<= 8  # an odd final byte padded with zero (RFC 1071 §1)
        # never zero: a UDP checksum that computes to zero is sent as all ones (RFC 768)
        _UDP_VARIABLE.pack_into(
            buf, o + 24, length, 0xFFFF - (t.udp_sum + 2 * length + words) % 0xFFFF
        )
        return buf + payload, t

    def packet(
        self,
        interface: str,
        link_dst: bytes,
        src: IPv4Address,
        dst: IPv4Address,
        sport: int,
        dport: int,
        payload: bytes,
        ttl: int = 64,
    ) -> tuple[bytearray, _Template]:
        """The datagram for ``payload`` (a new ``bytearray``) and its template."""
        pkt, t = self._frame(interface, link_dst, src, dst, sport, dport, payload, ttl)
        return (pkt[t.offset :] if t.offset else pkt), t

    def send(
        self,
        interface: str,
        link_dst: bytes,
        src: IPv4Address,
        dst: IPv4Address,
        sport: int,
        dport: int,
        payload: bytes,
        ttl: int = 64,
    ) -> int:
        """Send ``payload`` from ``src``:``sport`` to ``dst``:``dport`` on ``interface``
        at hardware address ``link_dst``; the length of the IPv4 datagram sent."""
        pkt, t = self._frame(interface, link_dst, src, dst, sport, dport, payload, ttl)
        link = t.link
        if link is not None:
            try:
                return link.send(pkt) - _ETH_HLEN
            except OSError as e:
                if e.errno not in _GONE:
                    raise  # e.g. ENETDOWN: what sendto answers too; the socket stays
                self._forget_link(interface)
                pkt, t = self._frame(interface, link_dst, src, dst, sport, dport, payload, ttl)
        return self.sock.sendto(pkt, t.address)


def hardware_address(sock: socket.socket, interface: str) -> bytes:
    """The hardware address of ``interface`` (SIOCGIFHWADDR in the namespace of ``sock``)."""
    import fcntl

    ifr = struct.pack("16s16x", interface.encode())
    res = fcntl.ioctl(sock.fileno(), 0x8927, ifr)  # SIOCGIFHWADDR
    return bytes(res[18:24])


#: per packet socket that keeps them (:func:`keep_hardware_addresses`): interface name ->
#: its hardware address, asked of the kernel once (issue 13: an ``ioctl`` per gratuitous
#: ARP before) and forgotten when the link changes (:func:`forget_hardware_addresses`)
_HARDWARE: weakref.WeakKeyDictionary[socket.socket, dict[str, bytes]] = weakref.WeakKeyDictionary()


def keep_hardware_addresses(sock: socket.socket) -> None:
    """Let :func:`own_hardware_address` keep what it asks on ``sock``. Only for a socket
    whose owner sees the namespace's link notifications and calls
    :func:`forget_hardware_addresses` for them (:class:`LinkChanges`, or the mobile
    node's :class:`~mip4.io.linkmon.LinkMonitor`): a kept address is never stale after
    the link's address changed."""
    _HARDWARE.setdefault(sock, {})


def forget_hardware_addresses(interface: str | None = None) -> None:
    """Drop the kept hardware address of ``interface`` (``None``: of every interface), on
    every socket: the link changed (a new address, renamed, deleted, re-created)."""
    for kept in _HARDWARE.values():
        if interface is None:
            kept.clear()
        else:
            kept.pop(interface, None)


def own_hardware_address(sock: socket.socket, interface: str) -> bytes:
    """:func:`hardware_address`, kept per socket and interface when the socket keeps them
    (:func:`keep_hardware_addresses`)."""
    kept = _HARDWARE.get(sock)
    if kept is None:
        return hardware_address(sock, interface)
    mac = kept.get(interface)
    if mac is None:
        mac = kept[interface] = hardware_address(sock, interface)
    return mac


_RTMGRP_LINK = 0x1
_RTM_NEWLINK, _RTM_DELLINK = 16, 17
_NLMSG = struct.Struct("=IHHII")
_RTA = struct.Struct("=HH")
_IFINFOMSG_SIZE = 16
_IFLA_IFNAME = 3


def drain_netlink(sock: socket.socket, limit: int) -> Iterator[bytes | None]:
    """At most ``limit`` reads of a non-blocking netlink socket, until ``EAGAIN``: each
    read's bytes, or ``None`` where notifications were lost (``ENOBUFS``: the reader
    must read the state again)."""
    for _ in range(limit):
        try:
            yield sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            yield None


class LinkChanges:
    """The namespace's link notifications (``RTMGRP_LINK``), read to forget the hardware
    addresses kept for the links that changed (:func:`forget_hardware_addresses`): for a
    node without a :class:`~mip4.io.linkmon.LinkMonitor` (the agents). A lost
    notification (``ENOBUFS``) forgets every link's."""

    def __init__(self, netns: str | None = None) -> None:
        with entered(netns):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        try:
            sock.bind((0, _RTMGRP_LINK))
        except BaseException:
            sock.close()
            raise
        self.sock = _nonblocking(sock)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, limit: int = 64) -> list[str]:
        """Drain the notifications; forget the changed links' addresses; their names."""
        names: list[str] = []
        for data in drain_netlink(self.sock, limit):
            if data is None:
                forget_hardware_addresses()
            else:
                names += _link_names(data)
        for name in names:
            forget_hardware_addresses(name)
        return names

    def close(self) -> None:
        self.sock.close()


def _link_names(data: bytes) -> list[str]:
    """The interface names of the ``RTM_{NEW,DEL}LINK`` messages in ``data``."""
    names: list[str] = []
    pos = 0
    while pos + _NLMSG.size <= len(data):
        length, kind = _NLMSG.unpack_from(data, pos)[:2]
        if length < _NLMSG.size or pos + length > len(data):
            break
        if kind in (_RTM_NEWLINK, _RTM_DELLINK):
            a, end = pos + _NLMSG.size + _IFINFOMSG_SIZE, pos + length
            while a + _RTA.size <= end:
                alen, akind = _RTA.unpack_from(data, a)
                if alen < _RTA.size or a + alen > end:
                    break
                if akind & 0x3FFF == _IFLA_IFNAME:
                    raw = data[a + _RTA.size : a + alen].split(b"\0", 1)[0]
                    names.append(raw.decode(errors="replace"))
                    break
                a += (alen + 3) & ~3
        pos += (length + 3) & ~3
    return names


def send_gratuitous_arp(
    interface: str,
    address: IPv4Address,
    link_address: bytes | None = None,
    *,
    count: int = 3,
    interval: float = 0.0,
    netns: str | None = None,
    sock: socket.socket | None = None,
) -> int:
    """Broadcast ``count`` gratuitous ARP requests for ``address`` on ``interface``, mapping
    it to ``link_address`` (default: the interface's own). Bounded: at most 10 packets,
    ``interval`` at most 1 s apart. Returns the number sent."""
    count = max(0, min(count, 10))
    own = sock is None
    s = sock if sock is not None else open_packet_sender(netns)
    try:
        mac = link_address if link_address is not None else own_hardware_address(s, interface)
        # (an IPv4Address given is used as it is: IPv4Address(IPv4Address) parses its text)
        ip = address if type(address) is IPv4Address else IPv4Address(address)
        frame = gratuitous_arp(ip, mac)
        sent = 0
        for i in range(count):
            if i and interval:
                time.sleep(min(interval, 1.0))
            send_to_link(s, interface, BROADCAST_MAC, frame, ethertype=ETH_P_ARP)
            sent += 1
        return sent
    finally:
        if own:
            s.close()


class ArpSender:
    """Gratuitous ARPs (issue 13: three per first registration) sent whole -- the Ethernet
    header the kernel would write for :func:`send_gratuitous_arp`, and its ARP request --
    with ``send`` on a ``SOCK_RAW`` packet socket bound to their interface: a ``sendto``
    with the interface's name makes CPython ask the kernel for its index on every frame.
    One bound socket per Ethernet interface, opened in ``netns`` when first needed; an
    announcement's frame is made once and sent again for its repeats while the
    interface's hardware address is the one it was made with (asked with
    :func:`own_hardware_address` on the bound socket, kept there when ``keep`` and then
    forgotten on link notifications as for any socket). On an interface that is not
    Ethernet, or once its bound socket fails because the interface is gone (``ENXIO``,
    ``ENODEV``), a frame goes through ``fallback()`` (:func:`send_gratuitous_arp`) --
    the same frame, the same error if it fails there too."""

    def __init__(
        self, netns: str | None, fallback: Callable[[], socket.socket], *, keep: bool = False
    ) -> None:
        self.netns = netns
        self.fallback = fallback
        self.keep = keep
        #: interface -> its bound socket (``None``: not Ethernet, use ``fallback``)
        self._links: dict[str, socket.socket | None] = {}

    def _link(self, interface: str) -> socket.socket | None:
        if interface in self._links:
            return self._links[interface]
        try:
            bound = bound_ethernet_socket(interface, self.netns)
        except OSError:  # no packet sockets here: the fallback's error, if any, is the one
            bound = None
        link = None if bound is None else bound[0]
        if link is not None and self.keep:
            keep_hardware_addresses(link)
        self._links[interface] = link
        return link

    def keep_hardware_addresses(self) -> None:
        """Keep the interfaces' hardware addresses from now on (see :class:`ArpSender`)."""
        self.keep = True
        for link in self._links.values():
            if link is not None:
                keep_hardware_addresses(link)

    def announcement(
        self, interface: str, address: IPv4Address, link_address: bytes | None = None
    ) -> Callable[[], None]:
        """A function that sends one gratuitous ARP request announcing ``address`` at
        ``link_address`` (default: the interface's own) on ``interface``: what
        ``send_gratuitous_arp(interface, address, link_address, count=1, ...)`` sends."""
        made: list[bytes] = []  # [own hardware address, frame]

        def send() -> None:
            link = self._link(interface)
            if link is not None:
                own = own_hardware_address(link, interface)
                if not made or made[0] != own:
                    arp = gratuitous_arp(address, link_address or own)
                    made[:] = [own, BROADCAST_MAC + own + _ETHERTYPE_ARP + arp]
                try:
                    link.send(made[1])
                    return
                except OSError as e:
                    if e.errno not in _GONE:
                        raise
                    self._forget_link(interface)
            send_gratuitous_arp(interface, address, link_address, count=1, sock=self.fallback())

        return send

    def _forget_link(self, interface: str) -> None:
        old = self._links.pop(interface, None)
        if old is not None:
            old.close()

    def close(self) -> None:
        for link in self._links.values():
            if link is not None:
                link.close()
        self._links.clear()


_ETHERTYPE_ARP = ETH_P_ARP.to_bytes(2, "big")


# ----------------------------------------------------------------------------------------
# UDP 434
# ----------------------------------------------------------------------------------------


def open_udp_control(
    netns: str | None = None,
    *,
    address: IPv4Address | str = "0.0.0.0",
    port: int = 434,
    interface: str | None = None,
    reuse_port: bool = False,
    before_bind: Callable[[socket.socket], None] | None = None,
) -> socket.socket:
    """The Mobile IP control socket: bound to ``address:port`` (the wildcard by default, so
    broadcast and multicast requests arrive too), broadcast allowed, ``IP_PKTINFO`` and
    ``IP_RECVTTL`` on; bound to ``interface`` when given. ``reuse_port``: ``SO_REUSEPORT``
    (one of a group of sockets on the port, flood steering's); ``before_bind(sock)`` runs
    just before the bind (a filter that must hold from the first datagram)."""
    with entered(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        if interface is not None:
            _bind_to_device(sock, interface)
        if before_bind is not None:
            before_bind(sock)
        sock.bind((str(address), port))
    except BaseException:
        sock.close()
        raise
    return _nonblocking(sock)


#: source addresses as ``recvmsg`` reports them (dotted strings) and destination addresses
#: as ``IP_PKTINFO`` carries them (4 bytes) -> the one ``IPv4Address`` of each: a home agent
#: hears the same few foreign agents and nodes again and again, and parsing the string
#: costs more than the rest of turning a datagram into an event (bounded: cleared when full,
#: ~1 ms at most, once per 16,384 new addresses)
_ADDRESSES: dict[str | bytes, IPv4Address] = {}
_ADDRESSES_MAX = 16384
#: room for the two control messages open_udp_control asks for (IP_PKTINFO, IP_TTL)
_CMSG_SPACE = socket.CMSG_SPACE(PKTINFO.size) + socket.CMSG_SPACE(_INT.size)


def _address(key: str | bytes) -> IPv4Address:
    a = _ADDRESSES.get(key)
    if a is None:
        a = IPv4Address(key) if isinstance(key, str) else ipv4_from_bytes(key)
        if len(_ADDRESSES) >= _ADDRESSES_MAX:
            _ADDRESSES.clear()
        _ADDRESSES[key] = a
    return a


def recv_udp(
    sock: socket.socket,
    *,
    ifname_of: Callable[[int], str] | None = None,
    link_src_of: Callable[[IPv4Address, int], bytes | None] | None = None,
    after_read: Callable[[], object] | None = None,
    limit: int = 64,
    dport: int | None = None,
    link_sources: Mapping[int, tuple[str, bytes]] | None = None,
    receiver: BatchReceiver | None = None,
) -> list[UdpReceived]:
    """Drain a :func:`open_udp_control` socket into ``UdpReceived`` events.

    ``ifname_of`` maps the arrival interface index to its name (default: ask the socket's
    own namespace, once per index per call); ``link_src_of(src, sport)`` supplies the
    sender's hardware address (e.g. :meth:`~LinkSourceTracker.lookup`). Every datagram of
    the batch is read before the first ``link_src_of`` call, and ``after_read()`` (when
    given) runs in between: with :meth:`~LinkSourceTracker.poll` there, one drain of the
    packet tap covers the whole batch (a tap sees a frame before the UDP socket does) and
    ``link_src_of`` can be the tracker's :meth:`~LinkSourceTracker.get`, which does not
    poll again for every datagram. ``dport`` is the socket's own port when the caller
    knows it (else it is asked of the socket, a system call per batch). ``link_sources``
    (instead of ``link_src_of``): the tracker's own :attr:`~LinkSourceTracker.table`,
    looked up here as :meth:`~LinkSourceTracker.get` does (issue 13: no call per
    datagram). ``receiver``: a :class:`~mip4.io.mmsg.BatchReceiver` of ``sock``, which
    reads the batch with one ``recvmmsg`` (issue 13) instead of one ``recvmsg`` per
    datagram."""
    if link_sources is not None and link_src_of is not None:
        raise ValueError("recv_udp: link_src_of or link_sources, not both")
    if ifname_of is None:

        def ifname_of(index: int) -> str:
            return if_name(sock, index)

    if dport is None:
        dport = sock.getsockname()[1]
    cmsg_space = _CMSG_SPACE
    recvmsg = sock.recvmsg
    # issue 13 (a relaying agent reads two datagrams per registration): the address table
    # is looked up here, _address called only for an address not in it yet
    known = _ADDRESSES.get
    pktinfo, ttl_of, ip = PKTINFO.unpack_from, _INT.unpack_from, socket.IPPROTO_IP
    names: dict[int, str] = {}
    read: list[tuple[bytes, int, bytes, int, IPv4Address, int]] = []
    if receiver is not None:
        read = receiver.read(limit)
        limit = 0  # (the loop below reads nothing more)
    for _ in range(limit):
        try:
            data, anc, _flags, (host, sport) = recvmsg(65535, cmsg_space)
        except BlockingIOError:
            break
        # Without the control messages (a socket not opened by open_udp_control) the TTL is
        # unknown: 0, which fails the RFC 3024 §4.2.1 check (T requests must arrive with
        # 255) rather than passing it as a default of 64 would.
        ifindex, dst, ttl = 0, b"\0\0\0\0", 0
        for level, kind, cdata in anc:
            if level != ip:
                continue
            if kind == IP_PKTINFO:
                ifindex, _spec, dst = pktinfo(cdata)
            elif kind == IP_TTL:
                ttl = ttl_of(cdata)[0]
        read.append((data, ifindex, dst, ttl, known(host) or _address(host), sport))
    if after_read is not None and read:
        after_read()
    out: list[UdpReceived] = []
    append = out.append
    table = link_sources.get if link_sources is not None else None
    link: bytes | None = None
    for data, ifindex, dst, ttl, src, sport in read:
        if ifindex:
            interface = names.get(ifindex)
            if interface is None:
                interface = names[ifindex] = ifname_of(ifindex)
        else:
            interface = ""
        if table is not None:
            hit = table(_int(src) << 16 | sport)  # LinkSourceTracker.get, in line
            link = hit[1] if hit else None
        elif link_src_of is not None:
            link = link_src_of(src, sport)
        append(
            udp_received(data, src, known(dst) or _address(dst), sport, dport, interface, link, ttl)
        )
    return out


#: (source, interface index, TTL) -> the control messages ``send_udp`` passes for them
_ANCILLARY: dict[tuple[int, int, int | None], list[tuple[int, int, bytes]]] = {}
#: destination address -> its dotted string, as ``sendmsg`` takes it (bounded)
_DOTTED: dict[int, str] = {}


def _ancillary(
    src: IPv4Address | None, ifindex: int, ttl: int | None
) -> list[tuple[int, int, bytes]]:
    key = (_int(src) if src is not None else -1, ifindex, ttl)
    anc = _ANCILLARY.get(key)
    if anc is None:
        anc = []
        if src is not None or ifindex:
            spec = (src or IPv4Address(0)).packed
            anc.append((socket.IPPROTO_IP, IP_PKTINFO, PKTINFO.pack(ifindex, spec, b"\0" * 4)))
        if ttl is not None:
            anc.append((socket.IPPROTO_IP, IP_TTL, _INT.pack(ttl)))
        if len(_ANCILLARY) >= 4096:
            _ANCILLARY.clear()
        _ANCILLARY[key] = anc
    return anc


def send_udp(
    sock: socket.socket,
    payload: bytes,
    dst: IPv4Address,
    dport: int = 434,
    *,
    src: IPv4Address | None = None,
    ifindex: int = 0,
    ttl: int | None = None,
) -> int:
    """Send one datagram; ``src``/``ifindex`` go in an ``IP_PKTINFO`` and ``ttl`` in an
    ``IP_TTL`` control message, so one socket serves every interface and TTL. The control
    messages of each (source, interface, TTL) and the destination's dotted string are
    built once and kept (bounded tables; ``tests/io/test_udp_fast_paths.py``)."""
    d = _int(dst)
    host = _DOTTED.get(d)
    if host is None:
        host = str(dst)
        if len(_DOTTED) >= _ADDRESSES_MAX:
            _DOTTED.clear()
        _DOTTED[d] = host
    return sock.sendmsg([payload], _ancillary(src, ifindex, ttl), 0, (host, dport))
