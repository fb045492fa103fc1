"""The link-source tap: which hardware address each (source address, source port) last
sent a Registration Request from, read from a ``PACKET_RX_RING`` behind a BPF port filter,
so that an agent can answer a node that has no address it could ARP for (split from
:mod:`mip4.io.rawsock`, which has the sockets and filters it uses)."""

from __future__ import annotations

import contextlib
import mmap
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from .netns import entered
from .rawsock import (
    ETH_P_IP,
    PACKET_OUTGOING,
    SOL_PACKET,
    _nonblocking,
    attach_filter,
    bpf_on_interfaces,
    bpf_udp_dport,
    bpf_udp_dport_from_home_address,
    if_index,
    if_name,
)

_U16 = struct.Struct("!H")

# Linux constants the socket module lacks in Python 3.11
PACKET_RX_RING = 5  # <linux/if_packet.h>
PACKET_VERSION = 10
TPACKET_V2 = 1
TP_STATUS_USER = 1  #: the frame is the reader's (TP_STATUS_KERNEL, 0: the kernel's)
#: struct tpacket2_hdr: tp_status, tp_len, tp_snaplen, tp_mac, tp_net
_TPACKET2 = struct.Struct("=IIIHH")
#: struct sockaddr_ll follows the 32-byte tpacket2_hdr: its ifindex, pkttype, halen, addr
_SLL_IFINDEX, _SLL_PKTTYPE, _SLL_HALEN, _SLL_ADDR = 32 + 4, 32 + 10, 32 + 11, 32 + 12
#: sockaddr_ll from its ifindex on, in one read: ifindex, (hatype), pkttype, halen, addr[8]
_SLL = struct.Struct("=i2xBB8s")
#: an IPv4 header without options (IHL 5) and the UDP source port after it, in one read:
#: version/IHL, (...), source address, (destination), source port
_IP20_SPORT = struct.Struct("!B11xI4xH")


def _indexes(sock: socket.socket, names: Iterable[str]) -> tuple[int, ...]:
    """The indexes of the interfaces ``names`` that exist in the namespace of ``sock``,
    sorted (a name not there is skipped)."""
    found: set[int] = set()
    for name in names:
        with contextlib.suppress(OSError):
            found.add(if_index(sock, name))
    return tuple(sorted(found))


class _RxRing:
    """A ``PACKET_RX_RING`` (TPACKET_V2) mapped into this process: the kernel writes each
    frame the filter accepts into the next slot and marks it ``TP_STATUS_USER``; the reader
    takes it and hands the slot back (``TP_STATUS_KERNEL``) -- no system call per frame,
    and none to learn that nothing is left (``Documentation/networking/packet_mmap.rst``).
    256-byte slots keep the first 176 bytes of each datagram (the tracker needs 62 at
    most: an IPv4 header with options and the UDP source port); 512 slots, 128 KiB."""

    FRAME, BLOCK, BLOCKS = 256, 4096, 32

    __slots__ = ("frames", "map", "next")

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        self.frames = self.BLOCK // self.FRAME * self.BLOCKS
        req = struct.pack("IIII", self.BLOCK, self.BLOCKS, self.FRAME, self.frames)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        self.map = mmap.mmap(sock.fileno(), self.BLOCK * self.BLOCKS)
        self.next = 0  # the slot the kernel fills next after those already read


@dataclass
class LinkSourceTracker:
    """Remembers the hardware address each (source address, source port) last sent a
    datagram to ``port`` from, seen on an AF_PACKET socket with a BPF port filter. Drain it
    (:meth:`poll`) before reading the UDP socket: packet taps see a frame before the UDP
    socket does.

    :meth:`open` maps a receive ring on the socket (``ring``): :meth:`poll` then reads
    the frames from memory, with no ``recvfrom`` per frame (nor the ``SIOCGIFNAME`` that
    CPython's ``recvfrom`` asks for each frame's interface name) and none answering
    ``EAGAIN`` at the end -- a foreign agent's tap is drained twice per datagram (its own
    reader and the UDP reader's ``after_read``). Interface names come from a table by
    index (``names``; a Linux interface index is not reused within a namespace). Without
    a ring (a socket given to the constructor) :meth:`poll` reads with ``recvfrom``; both
    fill ``table`` alike (``tests/io/test_link_source_ring.py``). ``table`` is keyed by
    :meth:`key` -- the source address and port in one integer, read from the frame as
    integers: no ``IPv4Address`` made for a frame, none hashed (through ``hex()``) for it
    or for its lookup (issue 13). ``table`` is one dict for the tracker's life (entries
    dropped in place, never replaced): :func:`~mip4.io.rawsock.recv_udp` may hold it
    (``link_sources``).

    ``only`` (:meth:`open`'s ``interfaces``): the tap takes frames that arrive on these
    interfaces only (a foreign agent's visited links: issue 13, the home agent's replies
    on its other links are not copied to the tap nor read back), by a comparison of the
    arrival interface's index in its filter (:func:`~mip4.io.rawsock.bpf_on_interfaces`:
    the socket stays unbound, so the tap still sees a frame before the UDP socket does).
    Indexes are resolved by name at open and again by :meth:`links_changed` (a link
    created later, or deleted and created again); a name not there yet is skipped.
    ``None``: every interface of the namespace."""

    sock: socket.socket
    table: dict[int, tuple[str, bytes]]
    ring: _RxRing | None = None
    names: dict[int, str] = field(default_factory=dict)
    only: tuple[str, ...] | None = None
    #: the filter without the interface prefix, and the indexes the prefix holds
    program: list[tuple[int, int, int, int]] = field(default_factory=list)
    indexes: tuple[int, ...] = ()

    @classmethod
    def open(
        cls,
        interface: str | None,
        netns: str | None = None,
        *,
        port: int = 434,
        from_home_address: bool = False,
        interfaces: tuple[str, ...] | None = None,
    ) -> LinkSourceTracker:
        """``from_home_address``: only datagrams sent from the Home Address they carry
        (:func:`bpf_udp_dport_from_home_address`; what a home agent needs).
        ``interfaces``: only frames arriving on these (the class's ``only``); ``interface``
        binds the socket to one instead (its handler then runs after IP's)."""
        with entered(netns):
            sock = socket.socket(
                socket.AF_PACKET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.htons(ETH_P_IP)
            )
        try:
            program = (
                bpf_udp_dport_from_home_address(port) if from_home_address else bpf_udp_dport(port)
            )
            indexes: tuple[int, ...] = ()
            if interfaces is None:
                attach_filter(sock, program)
            else:
                indexes = _indexes(sock, interfaces)
                attach_filter(sock, bpf_on_interfaces(indexes, program))
            ring: _RxRing | None = None
            with contextlib.suppress(OSError):  # no ring: recvfrom per frame, as before
                ring = _RxRing(sock)
            if interface is not None:  # else: every interface of the namespace
                sock.bind((interface, ETH_P_IP))
        except BaseException:
            sock.close()
            raise
        only = None if interfaces is None else tuple(interfaces)
        return cls(_nonblocking(sock), {}, ring, only=only, program=program, indexes=indexes)

    def links_changed(self, names: Iterable[str] | None = None) -> bool:
        """Links named ``names`` changed (``None``: any may have): with ``only``, the
        indexes of its interfaces are asked again and the filter replaced when they
        differ (a visited link created, or deleted and created again, after open).
        Whether it was replaced."""
        only = self.only
        if only is None or (names is not None and not set(names) & set(only)):
            return False
        indexes = _indexes(self.sock, only)
        if indexes == self.indexes:
            return False
        attach_filter(self.sock, bpf_on_interfaces(indexes, self.program))
        self.indexes = indexes
        return True

    def poll(self, limit: int = 256) -> int:
        """Read at most ``limit`` frames into the table; how many were recorded."""
        if self.ring is not None:
            return self._poll_ring(self.ring, limit)
        n = 0
        for _ in range(limit):
            try:
                data, addr = self.sock.recvfrom(2048)
            except BlockingIOError:
                break
            if addr[2] == PACKET_OUTGOING or len(data) < 28:
                continue
            hlen = (data[0] & 0xF) * 4
            sport = int.from_bytes(data[hlen : hlen + 2], "big")
            key = int.from_bytes(data[12:16], "big") << 16 | sport
            self.table[key] = (addr[0], bytes(addr[4]))
            n += 1
        if len(self.table) > 4096:  # bounded: forget the oldest half
            for k in list(self.table)[:2048]:
                del self.table[k]
        return n

    def _poll_ring(self, ring: _RxRing, limit: int) -> int:
        """:meth:`poll` from the ring: what the ``recvfrom`` loop records, frame by frame."""
        m, table, names = ring.map, self.table, self.names
        size, frames, i = ring.FRAME, ring.frames, ring.next
        unpack, sll, ip20 = _TPACKET2.unpack_from, _SLL.unpack_from, _IP20_SPORT.unpack_from
        n = 0
        for _ in range(limit):
            off = i * size
            status, length, snap, _mac, net = unpack(m, off)
            if not status & TP_STATUS_USER:
                break
            # the frame's fields are read after its status says it is ours (issue 13: the
            # link address fields in one read, and the usual header without options in one)
            index, pkttype, halen, addr = sll(m, off + _SLL_IFINDEX)
            if pkttype != PACKET_OUTGOING and length >= 28:
                p = off + net
                vihl, src, sport = ip20(m, p)
                hlen = (vihl & 0xF) * 4
                if snap >= hlen + 2:
                    if hlen != 20:  # options (or a bad length): the port is elsewhere
                        sport = _U16.unpack_from(m, p + hlen)[0]
                    name = names.get(index)
                    if name is None:
                        if len(names) >= 4096:
                            names.clear()
                        name = names[index] = if_name(self.sock, index)
                    table[src << 16 | sport] = (name, addr[:halen])
                    n += 1
            m[off : off + 4] = b"\0\0\0\0"  # TP_STATUS_KERNEL: the slot back to the kernel
            i = i + 1 if i + 1 < frames else 0
        ring.next = i
        if len(table) > 4096:  # bounded: forget the oldest half
            for k in list(table)[:2048]:
                del table[k]
        return n

    @staticmethod
    def key(src: IPv4Address, sport: int) -> int:
        """The key of ``table`` for a source address and port."""
        return int(src) << 16 | sport

    def lookup(self, src: IPv4Address, sport: int) -> bytes | None:
        self.poll()
        return self.get(src, sport)

    def get(self, src: IPv4Address, sport: int) -> bytes | None:
        """What :meth:`lookup` answers, without draining the tap first (for a caller that
        just did: :func:`recv_udp`'s ``after_read``)."""
        hit = self.table.get(int(src) << 16 | sport)
        return hit[1] if hit else None

    def close(self) -> None:
        if self.ring is not None:
            self.ring.map.close()
            self.ring = None
        self.sock.close()
