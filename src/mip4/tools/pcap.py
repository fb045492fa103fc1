"""Capture files without scapy: a pcap / pcapng reader and a pcap / pcapng writer.

Theory of operation
-------------------
:func:`read_capture` takes the whole file as bytes, recognises the format by its magic number
(classic pcap in either byte order, microsecond or nanosecond; pcapng, either byte order) and
yields one :class:`Record` per captured frame: its 1-based number, timestamp, link type and
bytes. A file that ends in the middle of a record does not raise: the last record comes out
with ``cut_short`` set, holding whatever bytes were there, and reading stops. Only a file that
is not a capture at all (bad magic, a corrupt section header) raises :class:`CaptureError`.

:func:`parse_frame` strips the link layer (Ethernet with 802.1Q/802.1ad tags, Linux cooked
SLL and SLL2, raw IP, BSD loopback) and parses IPv4 -- header options included -- into a
:class:`Datagram`; :func:`parse_udp` and :func:`parse_icmp` go one layer further. Each raises
:class:`FrameError` (a ``ValueError``) naming the layer and the byte offset within the frame,
so a caller can report the frame and carry on with the next one. Unlike
:meth:`mip4.wire.ip.IPv4Header.decode` this parser does not insist on a correct header
checksum: packets captured on the sending host often carry none yet (checksum offload), and
the decoder must still show them. Packets are built with :class:`mip4.wire.ip.IPv4Header`.

:class:`Reassembler` puts fragmented datagrams back together (out of order, overlaps
keep the first copy, a bounded number pending).

The writer side builds IPv4 + UDP / ICMP packets with correct checksums
(:func:`ipv4_udp`, :func:`ipv4_icmp`), wraps them in Ethernet when asked, and writes classic
pcap (:class:`PcapWriter`) or pcapng (:func:`write_pcapng`), and splits packets into
fragments (:func:`fragment`). Used by the tests and by
:mod:`mip4.tools.sample`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address
from typing import BinaryIO

from mip4.wire.ip import NO_IP_FLAGS, IPFlags, IPProtocol, IPv4Header, internet_checksum
from mip4.wire.packets import icmp_with_checksum, ipv4_packet, ipv4_udp_packet

__all__ = [
    "CaptureError",
    "Datagram",
    "FrameError",
    "Icmp",
    "LinkType",
    "PcapWriter",
    "Reassembler",
    "Record",
    "Udp",
    "detect_format",
    "ethernet",
    "fragment",
    "internet_checksum",
    "ipv4_icmp",
    "ipv4_udp",
    "parse_frame",
    "parse_icmp",
    "parse_ipv4",
    "parse_udp",
    "read_capture",
    "write_pcap",
    "write_pcapng",
]


class LinkType(IntEnum):
    """The link-layer header types this reader understands (tcpdump.org/linktypes.html)."""

    NULL = 0  #: BSD loopback: 4-byte address family in host byte order
    ETHERNET = 1
    RAW_BSD = 12  #: DLT_RAW on OpenBSD-derived systems
    RAW_BSD14 = 14  #: DLT_RAW on some other BSDs
    RAW = 101  #: raw IPv4 or IPv6
    LINUX_SLL = 113
    IPV4 = 228
    LINUX_SLL2 = 276


class CaptureError(ValueError):
    """The input is not a capture file this reader understands (whole-file problem)."""


class FrameError(ValueError):
    """One frame cannot be parsed. ``offset`` counts from the start of the frame."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at frame offset {offset})")
        self.offset = offset


@dataclass(frozen=True)
class Record:
    """One captured frame."""

    number: int  #: 1-based, in file order (as Wireshark numbers frames)
    timestamp: float  #: seconds since the Unix epoch
    linktype: int
    data: bytes  #: the captured bytes
    orig_len: int  #: the frame's length on the wire (> len(data) when the snaplen cut it)
    cut_short: bool = False  #: the file ended inside this record


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def detect_format(data: bytes) -> str | None:
    """``"pcap"``, ``"pcapng"`` or ``None`` (not a capture), from the first four bytes."""
    head = data[:4]
    if head in PCAP_MAGICS:
        return "pcap"
    if head == PCAPNG_MAGIC:
        return "pcapng"
    return None


def read_capture(data: bytes) -> Iterator[Record]:
    """The records of a pcap or pcapng file held in ``data``. Raises :class:`CaptureError`
    (before yielding anything) if ``data`` is not a capture file."""
    fmt = detect_format(data)
    if fmt == "pcap":
        return _read_pcap(data)
    if fmt == "pcapng":
        _check_shb(data, 0)
        return _read_pcapng(data)
    raise CaptureError(f"not a pcap or pcapng file (magic {data[:4].hex() or 'empty'})")


def _read_pcap(data: bytes) -> Iterator[Record]:
    endian, unit = PCAP_MAGICS[data[:4]]
    if len(data) < 24:
        raise CaptureError(f"pcap global header cut short: {len(data)} of 24 bytes")
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(endian + "IIII")
    pos, n, end = 24, 0, len(data)
    while pos < end:
        n += 1
        if pos + 16 > end:
            yield Record(n, 0.0, linktype, b"", 0, cut_short=True)
            return
        sec, frac, incl, orig = rec.unpack_from(data, pos)
        pos += 16
        frame = data[pos : pos + incl]
        ts = sec + frac * unit
        if len(frame) < incl:
            yield Record(n, ts, linktype, frame, orig, cut_short=True)
            return
        pos += incl
        yield Record(n, ts, linktype, frame, orig)


def _check_shb(data: bytes, pos: int) -> str:
    if len(data) < pos + 12:
        raise CaptureError("pcapng section header block cut short")
    bom = data[pos + 8 : pos + 12]
    if bom == b"\x4d\x3c\x2b\x1a":
        return "<"
    if bom == b"\x1a\x2b\x3c\x4d":
        return ">"
    raise CaptureError(f"pcapng section header: bad byte-order magic {bom.hex()}")


def _tsresol(options: bytes, endian: str) -> float:
    """The if_tsresol option (code 9) of an Interface Description Block; default 10^-6."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = options[pos + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -(v & 0x7F)
        pos += 4 + ((length + 3) & ~3)
    return 1e-6


def _read_pcapng(data: bytes) -> Iterator[Record]:
    endian = "<"
    interfaces: list[tuple[int, float, int]] = []  # (linktype, ts unit, snaplen)
    pos, n, end = 0, 0, len(data)
    while pos < end:
        if pos + 12 > end:
            n += 1
            yield Record(n, 0.0, interfaces[0][0] if interfaces else 0, b"", 0, cut_short=True)
            return
        if data[pos : pos + 4] == PCAPNG_MAGIC:
            endian = _check_shb(data, pos)
            interfaces = []  # interface ids are per section
        btype, blen = struct.unpack_from(endian + "II", data, pos)
        if blen < 12 or blen % 4:
            raise CaptureError(f"pcapng block at file offset {pos}: bad total length {blen}")
        body = data[pos + 8 : pos + blen - 4]
        cut = pos + blen > end
        if btype == 1:  # Interface Description Block
            if len(body) >= 8:
                lt, _, snap = struct.unpack_from(endian + "HHI", body, 0)
                interfaces.append((lt, _tsresol(body[8:], endian), snap))
        elif btype in (6, 2):  # Enhanced Packet Block; obsolete Packet Block
            n += 1
            if len(body) < 20:
                yield Record(n, 0.0, 0, b"", 0, cut_short=True)
                return
            if btype == 6:
                iface, hi, lo, caplen, orig = struct.unpack_from(endian + "IIIII", body, 0)
            else:
                iface, _drops, hi, lo, caplen, orig = struct.unpack_from(endian + "HHIIII", body, 0)
            lt, unit, _ = interfaces[iface] if iface < len(interfaces) else (0, 1e-6, 0)
            frame = body[20 : 20 + caplen]
            ts = ((hi << 32) | lo) * unit
            if cut or len(frame) < caplen:
                yield Record(n, ts, lt, frame, orig, cut_short=True)
                return
            yield Record(n, ts, lt, frame, orig)
        elif btype == 3:  # Simple Packet Block
            n += 1
            lt, _, snap = interfaces[0] if interfaces else (0, 1e-6, 0)
            if len(body) < 4:
                yield Record(n, 0.0, lt, b"", 0, cut_short=True)
                return
            orig = struct.unpack_from(endian + "I", body, 0)[0]
            caplen = min(orig, snap) if snap else orig
            frame = body[4 : 4 + caplen]
            if cut:
                yield Record(n, 0.0, lt, frame, orig, cut_short=True)
                return
            yield Record(n, 0.0, lt, frame, orig)
        elif cut:
            return  # a trailing non-packet block cut short: nothing lost
        pos += blen


# ---------------------------------------------------------------------------------------------
# Parsing frames
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Datagram:
    """An IPv4 datagram found in a frame."""

    src: IPv4Address
    dst: IPv4Address
    protocol: int
    ttl: int
    options: bytes  #: the IPv4 options, as captured
    payload: bytes  #: the bytes after the IPv4 header, up to Total Length
    offset: int  #: where the payload starts within the frame
    fragment: bool  #: MF set or a non-zero fragment offset
    first_fragment: bool
    ident: int = 0  #: the IPv4 Identification field
    frag_offset: int = 0  #: in bytes
    more_fragments: bool = False


@dataclass(frozen=True)
class Udp:
    sport: int
    dport: int
    payload: bytes
    offset: int  #: where the UDP payload starts within the frame


@dataclass(frozen=True)
class Icmp:
    type: int
    code: int
    message: bytes  #: the whole ICMP message, header included
    offset: int  #: where the ICMP message starts within the frame


_ETH_VLAN = {0x8100, 0x88A8, 0x9100}


def _link_payload(linktype: int, frame: bytes) -> tuple[int, int]:
    """(ethertype, offset of the network-layer header). Ethertype 0x0800 is IPv4."""
    if linktype == LinkType.ETHERNET:
        if len(frame) < 14:
            raise FrameError(f"Ethernet header cut short ({len(frame)} bytes)", 0)
        pos = 12
        etype = int.from_bytes(frame[12:14], "big")
        while etype in _ETH_VLAN:
            if len(frame) < pos + 6:
                raise FrameError("802.1Q tag cut short", pos)
            pos += 4
            etype = int.from_bytes(frame[pos : pos + 2], "big")
        return etype, pos + 2
    if linktype == LinkType.LINUX_SLL:
        if len(frame) < 16:
            raise FrameError(f"Linux cooked (SLL) header cut short ({len(frame)} bytes)", 0)
        return int.from_bytes(frame[14:16], "big"), 16
    if linktype == LinkType.LINUX_SLL2:
        if len(frame) < 20:
            raise FrameError(f"Linux cooked (SLL2) header cut short ({len(frame)} bytes)", 0)
        return int.from_bytes(frame[0:2], "big"), 20
    if linktype in (LinkType.RAW, LinkType.RAW_BSD, LinkType.RAW_BSD14, LinkType.IPV4):
        return (0x0800 if frame[:1] and frame[0] >> 4 == 4 else 0x86DD), 0
    if linktype == LinkType.NULL:
        if len(frame) < 4:
            raise FrameError("loopback header cut short", 0)
        fam = int.from_bytes(frame[:4], "little")
        if fam > 0xFFFF:
            fam = int.from_bytes(frame[:4], "big")
        return (0x0800 if fam == 2 else 0x86DD), 4
    raise FrameError(f"unsupported link type {linktype}", 0)


def parse_ipv4(frame: bytes, pos: int = 0) -> Datagram:
    """Parse the IPv4 header at ``frame[pos:]``. Raises :class:`FrameError`."""
    avail = len(frame) - pos
    if avail < 20:
        raise FrameError(f"IPv4 header cut short ({avail} of 20 bytes)", pos)
    vihl = frame[pos]
    if vihl >> 4 != 4:
        raise FrameError(f"not IPv4 (version {vihl >> 4})", pos)
    ihl = (vihl & 0xF) * 4
    if ihl < 20:
        raise FrameError(f"IPv4 header length {ihl} < 20", pos)
    if avail < ihl:
        raise FrameError(f"IPv4 options cut short ({avail} of {ihl} header bytes)", pos)
    total, frag, ttl, proto = struct.unpack_from("!H2xHBB", frame, pos + 2)
    if total < ihl:
        raise FrameError(f"IPv4 total length {total} < header length {ihl}", pos + 2)
    if total > avail:
        raise FrameError(
            f"IPv4 datagram cut short: total length {total}, {avail} byte(s) captured", pos + 2
        )
    more, foff = bool(frag & 0x2000), frag & 0x1FFF
    return Datagram(
        src=IPv4Address(frame[pos + 12 : pos + 16]),
        dst=IPv4Address(frame[pos + 16 : pos + 20]),
        protocol=proto,
        ttl=ttl,
        options=bytes(frame[pos + 20 : pos + ihl]),
        payload=bytes(frame[pos + ihl : pos + total]),
        offset=pos + ihl,
        fragment=more or foff != 0,
        first_fragment=foff == 0,
        ident=int.from_bytes(frame[pos + 4 : pos + 6], "big"),
        frag_offset=foff * 8,
        more_fragments=more,
    )


class Reassembler:
    """Puts fragmented IPv4 datagrams back together (RFC 791 §3.2, RFC 815), keyed by
    (source, destination, protocol, identification). Overlapping bytes keep what arrived
    first. At most ``max_pending`` datagrams are held; the oldest is dropped beyond that."""

    MAX_DATAGRAM = 65535

    def __init__(self, max_pending: int = 256) -> None:
        self.max_pending = max_pending
        #: key -> (pieces by offset, total payload length once the last piece is seen,
        #: frame numbers)
        self._pending: dict[
            tuple[IPv4Address, IPv4Address, int, int], tuple[dict[int, bytes], list[int], list[int]]
        ] = {}
        self.dropped: list[list[int]] = []  #: frame numbers of datagrams given up

    def add(self, dgram: Datagram, frame: int) -> tuple[Datagram, list[int]] | None:
        """Add one fragment; returns the whole datagram and its frames once complete."""
        key = (dgram.src, dgram.dst, dgram.protocol, dgram.ident)
        if key not in self._pending:
            if len(self._pending) >= self.max_pending:
                oldest = next(iter(self._pending))
                self.dropped.append(self._pending.pop(oldest)[2])
            self._pending[key] = ({}, [], [])
        pieces, total, frames = self._pending[key]
        frames.append(frame)
        pieces.setdefault(dgram.frag_offset, dgram.payload)
        if not dgram.more_fragments:
            total[:] = [dgram.frag_offset + len(dgram.payload)]
        if not total:
            return None
        data = bytearray()
        for off in sorted(pieces):
            piece = pieces[off]
            if off > len(data):
                return None  # a hole
            data += piece[len(data) - off :]
        if len(data) < total[0]:
            return None
        del self._pending[key]
        whole = Datagram(
            src=dgram.src,
            dst=dgram.dst,
            protocol=dgram.protocol,
            ttl=dgram.ttl,
            options=dgram.options,
            payload=bytes(data[: total[0]]),
            offset=0,
            fragment=False,
            first_fragment=True,
            ident=dgram.ident,
        )
        return whole, frames

    def incomplete(self) -> list[tuple[Datagram | None, list[int]]]:
        """Frame numbers of the datagrams still missing pieces (and given up)."""
        out: list[tuple[Datagram | None, list[int]]] = [(None, f) for f in self.dropped]
        out.extend((None, frames) for _, _, frames in self._pending.values())
        return out


def parse_frame(linktype: int, frame: bytes) -> Datagram | None:
    """The IPv4 datagram in ``frame``, or ``None`` for a frame that carries something else
    (ARP, IPv6, ...). Raises :class:`FrameError` for a malformed or truncated frame."""
    etype, pos = _link_payload(linktype, frame)
    if etype != 0x0800:
        return None
    return parse_ipv4(frame, pos)


def parse_udp(dgram: Datagram) -> Udp:
    p = dgram.payload
    if len(p) < 8:
        raise FrameError(f"UDP header cut short ({len(p)} of 8 bytes)", dgram.offset)
    sport, dport, length = struct.unpack_from("!HHH", p, 0)
    if length < 8 or length > len(p):
        raise FrameError(
            f"UDP length {length} disagrees with the {len(p)}-byte IP payload", dgram.offset + 4
        )
    return Udp(sport, dport, p[8:length], dgram.offset + 8)


def parse_icmp(dgram: Datagram) -> Icmp:
    p = dgram.payload
    if len(p) < 4:
        raise FrameError(f"ICMP header cut short ({len(p)} of 4 bytes)", dgram.offset)
    return Icmp(p[0], p[1], p, dgram.offset)


# ---------------------------------------------------------------------------------------------
# Building packets
# ---------------------------------------------------------------------------------------------


def ipv4_udp(
    src: IPv4Address | str,
    dst: IPv4Address | str,
    payload: bytes,
    sport: int = 434,
    dport: int = 434,
    ttl: int = 64,
    ident: int = 0,
    options: bytes = b"",
) -> bytes:
    """An IPv4 + UDP packet with correct header and UDP checksums
    (:func:`mip4.wire.packets.ipv4_udp_packet`)."""
    return ipv4_udp_packet(
        IPv4Address(src), IPv4Address(dst), sport, dport, payload, ttl=ttl, identification=ident,
        options=options,
    )  # fmt: skip


def ipv4_icmp(
    src: IPv4Address | str,
    dst: IPv4Address | str,
    icmp: bytes,
    ttl: int = 1,
    ident: int = 0,
    options: bytes = b"",
    fix_checksum: bool = True,
) -> bytes:
    """An IPv4 + ICMP packet. With ``fix_checksum`` the ICMP checksum (bytes 2--3) is
    recomputed; otherwise ``icmp`` is used as given."""
    if fix_checksum and len(icmp) >= 4:
        icmp = icmp_with_checksum(icmp)
    return ipv4_packet(
        IPv4Address(src), IPv4Address(dst), IPProtocol.ICMP, icmp, ttl=ttl, identification=ident,
        options=options,
    )  # fmt: skip


def fragment(ip_packet: bytes, mtu: int) -> list[bytes]:
    """Split an IPv4 packet into fragments of at most ``mtu`` bytes (RFC 791 §3.2)."""
    head = IPv4Header.decode(ip_packet)
    ihl = head.header_len
    payload = ip_packet[ihl : head.total_length]
    step = (mtu - ihl) // 8 * 8
    if step <= 0:
        raise ValueError(f"MTU {mtu} leaves no room for data after a {ihl}-byte header")
    out = []
    for off in range(0, len(payload), step):
        piece = payload[off : off + step]
        more = off + step < len(payload)
        out.append(
            ipv4_packet(
                head.src, head.dst, head.protocol, piece, ttl=head.ttl,
                identification=head.identification, options=head.options,
                flags=IPFlags.MF if more else NO_IP_FLAGS, fragment_offset=off // 8,
            )
        )  # fmt: skip
    return out


def _mac_for(dst: IPv4Address) -> bytes:
    if dst.is_multicast:
        return b"\x01\x00\x5e" + (int(dst) & 0x7FFFFF).to_bytes(3, "big")
    if int(dst) == 0xFFFFFFFF:
        return b"\xff" * 6
    return b"\x02\x00" + dst.packed


def ethernet(ip_packet: bytes, src_mac: bytes | None = None, dst_mac: bytes | None = None) -> bytes:
    """Wrap an IPv4 packet in an Ethernet II header. Default MACs are derived from the IP
    addresses (locally administered; the IPv4 multicast mapping for multicast)."""
    src = IPv4Address(ip_packet[12:16])
    dst = IPv4Address(ip_packet[16:20])
    return (
        (dst_mac or _mac_for(dst)) + (src_mac or b"\x02\x00" + src.packed) + b"\x08\x00" + ip_packet
    )


class PcapWriter:
    """Writes a classic little-endian microsecond pcap to a binary stream."""

    def __init__(self, stream: BinaryIO, linktype: int = LinkType.ETHERNET, snaplen: int = 65535):
        self.stream = stream
        self.linktype = int(linktype)
        stream.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, self.linktype))

    def write(self, frame: bytes, timestamp: float = 0.0, orig_len: int | None = None) -> None:
        """Write one frame, link-layer header included (see :meth:`write_ip`). ``orig_len``
        larger than the frame records a frame cut by the snap length."""
        sec = int(timestamp)
        usec = round((timestamp - sec) * 1e6)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        orig = len(frame) if orig_len is None else orig_len
        self.stream.write(struct.pack("<IIII", sec, usec, len(frame), orig) + frame)

    def write_ip(self, ip_packet: bytes, timestamp: float = 0.0) -> None:
        """Write an IPv4 packet, adding an Ethernet header when the link type is Ethernet."""
        if self.linktype == LinkType.ETHERNET:
            ip_packet = ethernet(ip_packet)
        self.write(ip_packet, timestamp)


def write_pcap(
    stream: BinaryIO, packets: Iterable[tuple[float, bytes]], linktype: int = LinkType.ETHERNET
) -> None:
    """Write ``(timestamp, IPv4 packet)`` pairs as a pcap (Ethernet headers added if needed)."""
    w = PcapWriter(stream, linktype)
    for ts, pkt in packets:
        w.write_ip(pkt, ts)


def _ng_block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def write_pcapng(
    stream: BinaryIO, packets: Iterable[tuple[float, bytes]], linktype: int = LinkType.ETHERNET
) -> None:
    """Write ``(timestamp, IPv4 packet)`` pairs as a little-endian pcapng file with one
    interface (microsecond resolution, the default)."""
    stream.write(_ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    stream.write(_ng_block(1, struct.pack("<HHI", int(linktype), 0, 65535)))
    for ts, pkt in packets:
        frame = ethernet(pkt) if linktype == LinkType.ETHERNET else pkt
        t = round(ts * 1e6)
        hdr = struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(frame), len(frame))
        stream.write(_ng_block(6, hdr + frame))
