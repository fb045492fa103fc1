"""Capture files without scapy: a pcap / pcapng reader and a pcap / pcapng writer.

Theory of operation
-------------------
:func:`read_capture` reads a stream (or bytes) as it comes, one record at a time, so a pipe
from ``tcpdump -U -w -`` is decoded while it is captured and memory does not grow with the
file. It recognises the format by its magic number (classic pcap in either byte order,
microsecond or nanosecond; pcapng, either byte order) and yields one :class:`Record` per
captured frame: its 1-based number, timestamp, link type, bytes and file offset. A file that
ends in the middle of a record does not raise: the last record comes out with ``cut_short``
set, holding whatever bytes were there, and reading stops. A record the reader cannot take
(a pcapng packet naming an undeclared interface, a captured length larger than its block or
than :data:`MAX_RECORD_BYTES`) comes out with ``problem`` set, naming its file offset. Only
a file that is not a capture at all (bad magic, a corrupt section header) raises
:class:`CaptureError`.

:func:`parse_frame` strips the link layer (Ethernet with 802.1Q/802.1ad tags, Linux cooked
SLL and SLL2, raw IP, BSD loopback) and parses IPv4 -- header options included -- into a
:class:`Datagram`; :func:`parse_udp` and :func:`parse_icmp` go one layer further. Each raises
:class:`FrameError` (a ``ValueError``) naming the layer and the byte offset within the frame,
so a caller can report the frame and carry on with the next one. Unlike
:meth:`mip4.wire.ip.IPv4Header.decode` this parser does not insist on a correct header
checksum: packets captured on the sending host often carry none yet (checksum offload), and
the decoder must still show them. Packets are built with :class:`mip4.wire.ip.IPv4Header`.

:class:`Reassembler` puts fragmented datagrams back together (out of order, overlaps
keep the first copy) in time linear in the fragments' bytes, and bounds what it holds: RFC
791's 65,535 bytes per datagram, 8,192 fragments per datagram, a timeout in capture time and
a number of datagrams pending.

The writer side builds IPv4 + UDP / ICMP packets with correct checksums
(:func:`ipv4_udp`, :func:`ipv4_icmp`), wraps them in Ethernet when asked, and writes classic
pcap (:class:`PcapWriter`) or pcapng (:func:`write_pcapng`), and splits packets into
fragments (:func:`fragment`). Used by the tests and by
:mod:`mip4.tools.sample`.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address
from typing import BinaryIO

from mip4.errors import Mip4Error
from mip4.wire.ip import NO_IP_FLAGS, IPFlags, IPProtocol, IPv4Header, internet_checksum
from mip4.wire.packets import icmp_with_checksum, ipv4_packet, ipv4_udp_packet

__all__ = [
    "CaptureError",
    "Datagram",
    "FrameError",
    "GivenUp",
    "Icmp",
    "LinkType",
    "PcapWriter",
    "Reassembler",
    "Record",
    "Udp",
    "UnsupportedLinkType",
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


class CaptureError(Mip4Error, ValueError):
    """The input is not a capture file this reader understands (whole-file problem)."""


class FrameError(Mip4Error, ValueError):
    """One frame cannot be parsed. ``offset`` counts from the start of the frame."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at frame offset {offset})")
        self.offset = offset


class UnsupportedLinkType(FrameError):
    """A frame of a link type this reader does not parse (the same for every frame of
    that interface: a caller reports it once)."""

    def __init__(self, linktype: int) -> None:
        super().__init__(f"unsupported link type {linktype}", 0)
        self.linktype = linktype


@dataclass(frozen=True)
class Record:
    """One captured frame, or one record the reader could not take (``problem``)."""

    number: int  #: 1-based, in file order (as Wireshark numbers frames)
    timestamp: float  #: seconds since the Unix epoch
    linktype: int
    data: bytes  #: the captured bytes
    orig_len: int  #: the frame's length on the wire (> len(data) when the snaplen cut it)
    cut_short: bool = False  #: the file ended inside this record
    offset: int = 0  #: where the record (pcapng: its block) starts in the file
    #: why this record holds no frame (an undeclared interface, a captured length larger
    #: than the record or than :data:`MAX_RECORD_BYTES`); ``data`` is empty then
    problem: str | None = None


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

#: Largest frame taken from a record: libpcap's MAXIMUM_SNAPLEN (tcpdump's and Wireshark's
#: default snapshot length). A larger captured length is reported, not read into memory.
MAX_RECORD_BYTES = 262144
#: Largest pcapng block read into memory (Wireshark's limit is 16 MiB as well); larger
#: blocks other than packets are skipped as they stream past.
MAX_BLOCK_BYTES = 16 << 20
_CHUNK = 1 << 20


def detect_format(data: bytes) -> str | None:
    """``"pcap"``, ``"pcapng"`` or ``None`` (not a capture), from the first four bytes."""
    head = data[:4]
    if head in PCAP_MAGICS:
        return "pcap"
    if head == PCAPNG_MAGIC:
        return "pcapng"
    return None


class _Input:
    """A binary stream read in order, with the file offset of the next byte. ``read(n)``
    returns ``n`` bytes unless the stream ends first; it never asks for more than
    :data:`_CHUNK` bytes at once, so memory follows what the stream really holds."""

    def __init__(self, stream: BinaryIO, head: bytes = b"") -> None:
        self._stream = stream
        self._head = head
        self.pos = 0

    def read(self, n: int) -> bytes:
        out = b""
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
        parts = [out]
        got = len(out)
        while got < n:
            chunk = self._stream.read(min(n - got, _CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        data = b"".join(parts)
        self.pos += len(data)
        return data

    def skip(self, n: int) -> int:
        """Read and forget ``n`` bytes; how many there were."""
        done = 0
        while done < n:
            step = len(self.read(min(n - done, _CHUNK)))
            if not step:
                break
            done += step
        return done


def read_capture(source: bytes | BinaryIO, head: bytes = b"") -> Iterator[Record]:
    """The records of a pcap or pcapng capture, read as they come: ``source`` is the whole
    file as bytes, or a binary stream (a file, a pipe: ``tcpdump -U -w -``) whose first
    bytes may already have been read into ``head``. Raises :class:`CaptureError` (before
    yielding anything) if it is not a capture file; a pcapng block with an impossible
    length later on raises it while iterating."""
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    inp = _Input(stream, bytes(head))
    magic = inp.read(4)
    if magic in PCAP_MAGICS:
        rest = inp.read(20)
        if len(rest) < 20:
            raise CaptureError(f"pcap global header cut short: {4 + len(rest)} of 24 bytes")
        return _read_pcap(inp, magic + rest)
    if magic == PCAPNG_MAGIC:
        first = magic + inp.read(8)
        endian = _check_shb(first, 0)
        return _read_pcapng(inp, first, endian)
    raise CaptureError(f"not a pcap or pcapng file (magic {magic.hex() or 'empty'})")


def _read_pcap(inp: _Input, header: bytes) -> Iterator[Record]:
    endian, unit = PCAP_MAGICS[header[:4]]
    linktype = struct.unpack_from(endian + "I", header, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(endian + "IIII")
    n = 0
    while True:
        at = inp.pos
        head = inp.read(16)
        if not head:
            return
        n += 1
        if len(head) < 16:
            yield Record(n, 0.0, linktype, b"", 0, cut_short=True, offset=at)
            return
        sec, frac, incl, orig = rec.unpack(head)
        ts = sec + frac * unit
        if incl > MAX_RECORD_BYTES:
            yield Record(
                n, ts, linktype, b"", orig, offset=at,
                problem=(
                    f"record at file offset {at}: captured length {incl} is larger than "
                    f"{MAX_RECORD_BYTES} bytes; the rest of the file is not read"
                ),
            )  # fmt: skip
            return
        frame = inp.read(incl)
        if len(frame) < incl:
            yield Record(n, ts, linktype, frame, orig, cut_short=True, offset=at)
            return
        yield Record(n, ts, linktype, frame, orig, offset=at)


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


_NG_PACKETS = frozenset({2, 3, 6})  # Packet Block (obsolete), Simple, Enhanced


def _read_pcapng(inp: _Input, first: bytes, endian: str) -> Iterator[Record]:
    interfaces: list[tuple[int, float, int]] = []  # (linktype, ts unit, snaplen)
    n = 0
    pending = first  # the section header's first 12 bytes, already read
    while True:
        at = inp.pos - len(pending)
        head = pending or inp.read(8)
        pending = b""
        if not head:
            return
        if len(head) < 8:
            n += 1
            yield Record(
                n, 0.0, interfaces[0][0] if interfaces else 0, b"", 0, cut_short=True, offset=at
            )
            return
        if head[:4] == PCAPNG_MAGIC:
            if len(head) < 12:
                head += inp.read(4)
            endian = _check_shb(head, 0)
            interfaces = []  # interface ids are per section
        btype, blen = struct.unpack_from(endian + "II", head, 0)
        if blen < 12 or blen % 4:
            raise CaptureError(f"pcapng block at file offset {at}: bad total length {blen}")
        if blen > MAX_BLOCK_BYTES and btype in _NG_PACKETS | {1, 0x0A0D0D0A}:
            n += btype in _NG_PACKETS
            yield Record(
                n, 0.0, 0, b"", 0, offset=at,
                problem=(
                    f"pcapng block at file offset {at}: total length {blen} is larger than "
                    f"{MAX_BLOCK_BYTES} bytes; the rest of the file is not read"
                ),
            )  # fmt: skip
            return
        want = blen - 12
        if btype not in _NG_PACKETS | {1, 0x0A0D0D0A}:
            got = inp.skip(want + 4 - (len(head) - 8))
            if got < want + 4 - (len(head) - 8):
                return  # a trailing non-packet block cut short: nothing lost
            continue
        body = head[8:] + inp.read(want - (len(head) - 8))
        cut = len(body) < want or len(inp.read(4)) < 4
        if btype == 1:  # Interface Description Block
            if len(body) >= 8:
                lt, _, snap = struct.unpack_from(endian + "HHI", body, 0)
                interfaces.append((lt, _tsresol(body[8:], endian), snap))
        elif btype in (6, 2):  # Enhanced Packet Block; obsolete Packet Block
            n += 1
            if len(body) < 20:
                yield Record(n, 0.0, 0, b"", 0, cut_short=True, offset=at)
                return
            if btype == 6:
                iface, hi, lo, caplen, orig = struct.unpack_from(endian + "IIIII", body, 0)
            else:
                iface, _drops, hi, lo, caplen, orig = struct.unpack_from(endian + "HHIIII", body, 0)
            if iface >= len(interfaces):
                yield Record(
                    n, 0.0, 0, b"", orig, offset=at, cut_short=cut,
                    problem=(
                        f"packet block at file offset {at} names interface {iface}, but "
                        f"this section declares {len(interfaces)} interface(s)"
                    ),
                )  # fmt: skip
                if cut:
                    return
                continue
            lt, unit, _ = interfaces[iface]
            ts = ((hi << 32) | lo) * unit
            room = max(0, min(len(body), want) - 20)
            if caplen > room and not cut:
                yield Record(
                    n, ts, lt, b"", orig, offset=at,
                    problem=(
                        f"packet block at file offset {at}: captured length {caplen} is "
                        f"larger than the block's {room} bytes of packet data"
                    ),
                )  # fmt: skip
                continue
            frame = body[20 : 20 + caplen]
            if cut or len(frame) < caplen:
                yield Record(n, ts, lt, frame, orig, cut_short=True, offset=at)
                return
            yield Record(n, ts, lt, frame, orig, offset=at)
        elif btype == 3:  # Simple Packet Block
            n += 1
            if not interfaces:
                yield Record(
                    n, 0.0, 0, b"", 0, offset=at, cut_short=cut,
                    problem=(
                        f"simple packet block at file offset {at}, but this section "
                        "declares no interface"
                    ),
                )  # fmt: skip
                if cut:
                    return
                continue
            lt, _, snap = interfaces[0]
            if len(body) < 4:
                yield Record(n, 0.0, lt, b"", 0, cut_short=True, offset=at)
                return
            orig = struct.unpack_from(endian + "I", body, 0)[0]
            caplen = min(orig, snap) if snap else orig
            frame = body[4 : 4 + caplen]
            if cut:
                yield Record(n, 0.0, lt, frame, orig, cut_short=True, offset=at)
                return
            yield Record(n, 0.0, lt, frame, orig, offset=at)
        elif cut:
            return  # a section header cut short: nothing lost


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
    raise UnsupportedLinkType(linktype)


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


@dataclass(frozen=True)
class GivenUp:
    """A fragmented datagram the :class:`Reassembler` stopped waiting for."""

    frames: list[int]  #: frame numbers of its fragments, in arrival order
    reason: str  #: why (timed out, too many fragments, too long, too many pending)


class _Pending:
    """One datagram being reassembled: its bytes so far and which of them are filled.

    ``have[i]`` is 1 once byte ``i`` of the payload arrived; a fragment only fills the
    bytes still missing (RFC 815 keeps the first copy too), found with ``bytearray.find``,
    so each fragment costs time in proportion to its own length, never to what is held."""

    __slots__ = ("data", "filled", "frames", "have", "start", "total")

    def __init__(self, start: float | None) -> None:
        self.data = bytearray()
        self.have = bytearray()
        self.filled = 0  #: bytes of ``have`` set below ``total`` (all of them until known)
        self.total: int | None = None  #: payload length, from the fragment without MF
        self.frames: list[int] = []
        self.start = start  #: capture time of the first fragment

    def add(self, offset: int, payload: bytes) -> None:
        end = offset + len(payload)
        if self.total is not None:
            end = min(end, self.total)  # past the last fragment's end: not part of it
        if end <= offset:
            return
        if len(self.have) < end:
            grow = end - len(self.have)
            self.have += bytes(grow)
            self.data += bytes(grow)
        have, pos = self.have, offset
        while pos < end:
            gap = have.find(0, pos, end)
            if gap < 0:
                break
            stop = have.find(1, gap, end)
            if stop < 0:
                stop = end
            self.data[gap:stop] = payload[gap - offset : stop - offset]
            have[gap:stop] = b"\x01" * (stop - gap)
            self.filled += stop - gap
            pos = stop

    def set_total(self, total: int) -> None:
        if self.total is not None:
            return  # the first last fragment decides, like the first copy of any byte
        self.total = total
        if len(self.have) > total:
            self.filled = self.have.count(1, 0, total)  # once per datagram

    def complete(self) -> bool:
        return self.total is not None and self.filled >= self.total


class Reassembler:
    """Puts fragmented IPv4 datagrams back together (RFC 791 §3.2, RFC 815), keyed by
    (source, destination, protocol, identification). Overlapping bytes keep what arrived
    first; so does a second fragment without MF.

    Work per fragment is proportional to its length (no re-sorting or re-joining of what
    is held), and what one datagram may hold is bounded: RFC 791 §3.1 limits a datagram to
    65,535 bytes in all (``max_length``), a datagram of more than ``max_fragments``
    fragments (65,535 / 8 = 8,192 distinct 8-byte offsets) is given up, and so is one
    not completed ``timeout`` seconds of capture time after its first fragment (RFC 791
    §3.2 suggests a 15-second initial timer; Linux waits ``ipfrag_time``, 30 s, the
    default here). At most ``max_pending`` datagrams are held; the oldest is given up
    beyond that. Datagrams given up are listed in :attr:`given_up` until
    :meth:`take_given_up` hands them out (and forgets them: a reader of an endless capture
    takes them as it goes, so nothing grows without bound)."""

    MAX_DATAGRAM = 65535

    def __init__(
        self,
        max_pending: int = 256,
        *,
        max_fragments: int = 8192,
        timeout: float = 30.0,
        max_length: int = MAX_DATAGRAM,
    ) -> None:
        self.max_pending = max_pending
        self.max_fragments = max_fragments
        self.timeout = timeout
        self.max_length = max_length
        self._pending: dict[tuple[IPv4Address, IPv4Address, int, int], _Pending] = {}
        self.given_up: list[GivenUp] = []

    @property
    def dropped(self) -> list[list[int]]:
        """Frame numbers of the datagrams given up."""
        return [g.frames for g in self.given_up]

    def _give_up(self, key: tuple[IPv4Address, IPv4Address, int, int], reason: str) -> None:
        self.given_up.append(GivenUp(self._pending.pop(key).frames, reason))

    def _timed_out(self) -> str:
        return f"not completed within {self.timeout:g} s of its first fragment"

    def _expire(self, now: float) -> None:
        while self._pending:
            key, p = next(iter(self._pending.items()))
            if p.start is None or now - p.start <= self.timeout:
                return
            self._give_up(key, self._timed_out())

    def add(
        self, dgram: Datagram, frame: int, now: float | None = None
    ) -> tuple[Datagram, list[int]] | None:
        """Add one fragment (``now``: its capture time, for the timeout); returns the
        whole datagram and its frames once complete."""
        key = (dgram.src, dgram.dst, dgram.protocol, dgram.ident)
        if now is not None:
            self._expire(now)
            p = self._pending.get(key)
            if p is not None and p.start is not None and now - p.start > self.timeout:
                self._give_up(key, self._timed_out())
        if key not in self._pending:
            if len(self._pending) >= self.max_pending:
                oldest = next(iter(self._pending))
                self._give_up(oldest, f"more than {self.max_pending} datagrams pending")
            self._pending[key] = _Pending(now)
        p = self._pending[key]
        p.frames.append(frame)
        header = 20 + len(dgram.options)
        end = dgram.frag_offset + len(dgram.payload)
        if header + end > self.max_length:
            self._give_up(
                key,
                f"a fragment ends at byte {header + end}, past the {self.max_length}-byte "
                "limit of an IPv4 datagram (RFC 791 §3.1)",
            )
            return None
        if len(p.frames) > self.max_fragments:
            self._give_up(key, f"more than {self.max_fragments} fragments")
            return None
        p.add(dgram.frag_offset, dgram.payload)
        if not dgram.more_fragments:
            p.set_total(end)
        if not p.complete():
            return None
        del self._pending[key]
        assert p.total is not None
        whole = Datagram(
            src=dgram.src,
            dst=dgram.dst,
            protocol=dgram.protocol,
            ttl=dgram.ttl,
            options=dgram.options,
            payload=bytes(p.data[: p.total]),
            offset=0,
            fragment=False,
            first_fragment=True,
            ident=dgram.ident,
        )
        return whole, p.frames

    def take_given_up(self) -> list[GivenUp]:
        """The datagrams given up since the last call (no longer kept here)."""
        new, self.given_up = self.given_up, []
        return new

    def incomplete(self) -> list[tuple[Datagram | None, list[int]]]:
        """Frame numbers of the datagrams still missing pieces (and given up)."""
        out: list[tuple[Datagram | None, list[int]]] = [(None, f) for f in self.dropped]
        out.extend((None, p.frames) for p in self._pending.values())
        return out

    def pending(self) -> list[list[int]]:
        """Frame numbers of the datagrams still waiting for fragments."""
        return [p.frames for p in self._pending.values()]


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
