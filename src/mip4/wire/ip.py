"""The IPv4 header (RFC 791 §3.1) and the Internet checksum (RFC 1071).

Theory of operation
-------------------
:class:`IPv4Header` is a frozen dataclass with ``encode()`` and ``decode(data, offset=0)``.
The header checksum is not a field: ``encode`` computes it and ``decode`` checks it (RFC 791
§3.1, RFC 1812 §5.2.2 -- a router MUST verify it) and raises :class:`DecodeError` naming the
expected and actual values on mismatch. Version and IHL are derived: the version is always 4
and the IHL follows from the length of ``options`` (a multiple of 4, at most 40 bytes, padded
by the caller with End-of-Options as RFC 791 requires).

:class:`IPv4Packet` couples a header and its payload and checks that the Total Length agrees
with them. The data plane does not build these objects per packet: it reads the few fields it
needs with the precompiled :data:`HEADER` struct (or :func:`peek`) and patches bytes in
place, using :func:`checksum_adjust` (RFC 1624) for incremental checksum updates.

:func:`internet_checksum` folds the data as one big integer: the one's complement sum of
16-bit words is congruent to the integer value of the data modulo 0xFFFF (2**16 ≡ 1), so the
whole sum runs in C in ``int.from_bytes`` and ``%``. It is shared by ICMP, the minimal
forwarding header and GRE.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address
from typing import NamedTuple, Self

from .addr import ipv4_from_int
from .errors import DecodeError, EncodeError

#: Fixed 20-byte header: ver/ihl, tos, total length, id, flags/frag, ttl, proto, checksum,
#: src, dst (RFC 791 §3.1). Addresses are read as integers.
HEADER = struct.Struct("!BBHHHBBHII")
MIN_HEADER_LEN = 20
MAX_HEADER_LEN = 60

_new = object.__new__
_setattr = object.__setattr__

Bytes = bytes | bytearray | memoryview


class IPProtocol(IntEnum):
    """IP protocol numbers used by Mobile IP (IANA "Assigned Internet Protocol Numbers")."""

    ICMP = 1
    IPIP = 4  #: IP in IP (RFC 2003)
    TCP = 6
    UDP = 17
    GRE = 47  #: RFC 2784
    MINIMAL = 55  #: minimal encapsulation (RFC 2004)


class IPFlags(IntFlag):
    """The three flag bits of RFC 791 §3.1 (as the top 3 bits of the 16-bit word)."""

    RESERVED = 0x4  #: bit 0: reserved, must be zero
    DF = 0x2  #: bit 1: don't fragment
    MF = 0x1  #: bit 2: more fragments


_IP_FLAGS = tuple(IPFlags(i) for i in range(8))
NO_IP_FLAGS = _IP_FLAGS[0]

DF_MASK = 0x4000  # in the 16-bit flags/fragment-offset word
MF_MASK = 0x2000
FRAG_OFFSET_MASK = 0x1FFF


def internet_checksum(data: Bytes) -> int:
    """The 16-bit one's complement of the one's complement sum of ``data`` taken as 16-bit
    big-endian words, an odd final byte padded with zero (RFC 1071 §1, RFC 791 §3.1).

    Over data that includes a correct checksum field the result is 0."""
    n = int.from_bytes(data, "big")
    if len(data) & 1:
        n <<= 8
    if n == 0:
        return 0xFFFF
    s = n % 0xFFFF
    # A non-zero sum congruent to 0 is one's complement "negative zero", 0xFFFF.
    return 0xFFFF - s if s else 0


def checksum_adjust(checksum: int, old_word: int, new_word: int) -> int:
    """Update a checksum after one 16-bit word changed from ``old_word`` to ``new_word``:
    ``HC' = ~(~HC + ~m + m')`` (RFC 1624 §3, eqn. 3)."""
    s = (~checksum & 0xFFFF) + (~old_word & 0xFFFF) + new_word
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class HeaderFields(NamedTuple):
    """The header fields the data plane needs, read without building an object."""

    header_len: int
    tos: int
    total_length: int
    identification: int
    flags_frag: int  #: the raw flags/fragment-offset word
    ttl: int
    protocol: int
    src: int
    dst: int


_H10 = struct.Struct("!10H")  # a 20-byte header as words, for the checksum fast path
_tuple_new = tuple.__new__


def peek(
    data: Bytes, offset: int = 0, *, verify: bool = True, complete: bool = True
) -> HeaderFields:
    """Check and read an IPv4 header at ``offset`` without building an :class:`IPv4Header`:
    version 4, IHL >= 5, the whole header present, Total Length >= IHL*4 and (if
    ``complete``) not beyond the data, and (if ``verify``) the header checksum. Pass
    ``complete=False`` for the truncated copy quoted in an ICMP error. Raises
    :class:`DecodeError`."""
    left = len(data) - offset
    if left < MIN_HEADER_LEN:
        raise DecodeError(f"IPv4 header: {left} byte(s), need {MIN_HEADER_LEN}", offset)
    vihl, tos, total, ident, ff, ttl, proto, _csum, src, dst = HEADER.unpack_from(data, offset)
    if vihl != 0x45:
        if vihl >> 4 != 4:
            raise DecodeError(f"IPv4 header: version {vihl >> 4}, expected 4", offset)
        if vihl & 0xF < 5:
            raise DecodeError(f"IPv4 header: IHL {vihl & 0xF} < 5", offset)
    hlen = (vihl & 0xF) << 2
    if left < hlen:
        raise DecodeError(f"IPv4 header: IHL says {hlen} bytes, {left} present", offset)
    if total < hlen:
        raise DecodeError(f"IPv4 header: total length {total} < header length {hlen}", offset + 2)
    if complete and total > left:
        raise DecodeError(
            f"IPv4 packet truncated: total length {total}, {left} byte(s) present", offset + 2
        )
    if verify:
        # RFC 791 §3.1: the one's complement sum over the header, checksum included, is
        # -0 (0xFFFF); on integers, a non-zero multiple of 0xFFFF.
        if hlen == MIN_HEADER_LEN:
            ok = sum(_H10.unpack_from(data, offset)) % 0xFFFF == 0
        else:
            ok = internet_checksum(data[offset : offset + hlen]) == 0
        if not ok:
            hdr = data[offset : offset + hlen]
            raise DecodeError(
                f"IPv4 header checksum mismatch: expected {_expected_checksum(hdr):#06x}, "
                f"got {_csum:#06x}",
                offset + 10,
            )
    return _tuple_new(HeaderFields, (hlen, tos, total, ident, ff, ttl, proto, src, dst))


def _expected_checksum(hdr: Bytes) -> int:
    b = bytearray(hdr)
    b[10:12] = b"\0\0"
    return internet_checksum(b)


@dataclass(frozen=True)
class IPv4Header:
    """An IPv4 header (RFC 791 §3.1)::

    0 Version/IHL | 1 TOS | 2 Total Length(2) | 4 Identification(2) | 6 Flags/Fragment
    Offset(2) | 8 TTL | 9 Protocol | 10 Header Checksum(2) | 12 Source | 16 Destination |
    20 Options (IHL*4 - 20 bytes)

    ``fragment_offset`` is in 8-byte units, as on the wire. The checksum is computed by
    :meth:`encode` and verified by :meth:`decode`.
    """

    src: IPv4Address
    dst: IPv4Address
    protocol: int
    total_length: int = MIN_HEADER_LEN
    ttl: int = 64
    tos: int = 0
    identification: int = 0
    flags: IPFlags = NO_IP_FLAGS
    fragment_offset: int = 0
    options: bytes = field(default=b"", repr=False)

    @property
    def header_len(self) -> int:
        return MIN_HEADER_LEN + len(self.options)

    @property
    def dont_fragment(self) -> bool:
        return bool(self.flags & IPFlags.DF)

    @property
    def is_fragment(self) -> bool:
        """MF set or a non-zero offset: this datagram is a fragment (RFC 791 §2.3)."""
        return bool(self.flags & IPFlags.MF) or self.fragment_offset != 0

    def encode(self) -> bytes:
        n = len(self.options)
        if n & 3 or n > MAX_HEADER_LEN - MIN_HEADER_LEN:
            raise EncodeError(f"IPv4 options: {n} bytes, need a multiple of 4 up to 40")
        if not 0 <= self.fragment_offset <= FRAG_OFFSET_MASK:
            raise EncodeError(f"IPv4 fragment offset {self.fragment_offset} out of range")
        if not 0 <= self.flags <= 7:
            raise EncodeError(f"IPv4 flags {int(self.flags)} out of range")
        try:
            hdr = bytearray(
                HEADER.pack(
                    0x45 + (n >> 2),
                    self.tos,
                    self.total_length,
                    self.identification,
                    (int(self.flags) << 13) | self.fragment_offset,
                    self.ttl,
                    self.protocol,
                    0,
                    int(self.src),
                    int(self.dst),
                )
            )
        except struct.error as e:
            raise EncodeError(f"IPv4 header field out of range: {e}") from None
        if n:
            hdr += self.options
        csum = internet_checksum(hdr)
        hdr[10] = csum >> 8
        hdr[11] = csum & 0xFF
        return bytes(hdr)

    @classmethod
    def decode(
        cls, data: Bytes, offset: int = 0, *, verify: bool = True, complete: bool = True
    ) -> Self:
        """Decode the header at ``offset``; unless ``complete`` is false the packet it heads
        must be whole (Total Length bytes present). Raises :class:`DecodeError`."""
        f = peek(data, offset, verify=verify, complete=complete)
        hlen = f.header_len
        o = _new(cls)
        _setattr(
            o,
            "__dict__",
            {
                "src": ipv4_from_int(f.src),
                "dst": ipv4_from_int(f.dst),
                "protocol": f.protocol,
                "total_length": f.total_length,
                "ttl": f.ttl,
                "tos": f.tos,
                "identification": f.identification,
                "flags": _IP_FLAGS[f.flags_frag >> 13],
                "fragment_offset": f.flags_frag & FRAG_OFFSET_MASK,
                "options": bytes(data[offset + 20 : offset + hlen]) if hlen > 20 else b"",
            },
        )
        return o


@dataclass(frozen=True)
class IPv4Packet:
    """An IPv4 header and its payload; ``header.total_length`` must equal
    ``header.header_len + len(payload)``. Build one with :meth:`build`, which fills it in."""

    header: IPv4Header
    payload: bytes

    @classmethod
    def build(
        cls,
        src: IPv4Address,
        dst: IPv4Address,
        protocol: int,
        payload: bytes,
        *,
        ttl: int = 64,
        tos: int = 0,
        identification: int = 0,
        flags: IPFlags = NO_IP_FLAGS,
        fragment_offset: int = 0,
        options: bytes = b"",
    ) -> IPv4Packet:
        total = MIN_HEADER_LEN + len(options) + len(payload)
        header = IPv4Header(
            src, dst, protocol, total, ttl, tos, identification, flags, fragment_offset, options
        )
        return cls(header, bytes(payload))

    def encode(self) -> bytes:
        h = self.header
        if h.total_length != h.header_len + len(self.payload):
            raise EncodeError(
                f"IPv4 total length {h.total_length} != header {h.header_len} + "
                f"payload {len(self.payload)}"
            )
        return h.encode() + self.payload

    @classmethod
    def decode(cls, data: Bytes, *, verify: bool = True) -> IPv4Packet:
        """Decode a whole packet. Bytes after Total Length (link-layer padding) are
        ignored."""
        h = IPv4Header.decode(data, 0, verify=verify)
        return cls(h, bytes(data[h.header_len : h.total_length]))


__all__ = [
    "HEADER",
    "MAX_HEADER_LEN",
    "MIN_HEADER_LEN",
    "HeaderFields",
    "IPFlags",
    "IPProtocol",
    "IPv4Header",
    "IPv4Packet",
    "checksum_adjust",
    "internet_checksum",
    "peek",
]
