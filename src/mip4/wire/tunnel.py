"""Tunnel headers: the minimal forwarding header (RFC 2004 §3) and the GRE header
(RFC 2784, with the key and sequence number fields of RFC 2890).

Theory of operation
-------------------
Each header is a frozen dataclass with ``encode`` and ``decode(data, offset=0)``; checksums
are computed on encode and verified on decode (:class:`DecodeError` naming the expected and
actual values). The data plane (:mod:`mip4.dataplane`) builds the same bytes with the
precompiled structs exported here rather than through the dataclasses.

IP-in-IP (RFC 2003) has no header of its own beyond a second IPv4 header
(:mod:`mip4.wire.ip`). The UDP tunnelling data header of RFC 3519 §3.3 (message type 4) is a
Mobile IP message and lives with the other UDP-434 messages.

Minimal forwarding header (RFC 2004 §3)::

    0 Protocol | 1 S(0x80) + reserved(7) | 2 Header Checksum(2) | 4 Original Destination
    8 Original Source (only when S is set)

The checksum covers the forwarding header only (RFC 2004 §3). The reserved bits are sent as
zero and ignored on receipt.

GRE header (RFC 2784 §2, RFC 2890 §2)::

    0 C(0x8000) 0 K(0x2000) S(0x1000) Reserved0(9) Ver(3) | 2 Protocol Type(2)
    [4 Checksum(2) Reserved1(2)]   if C
    [Key(4)]                       if K
    [Sequence Number(4)]           if S

The checksum, when present, covers the GRE header and the payload (RFC 2784 §2.5). On
receipt a packet is rejected if the version is not 0 (RFC 2784 §2.3.1) or if bit 1 (routing
present) or bits 4--5 are set (RFC 2784 §2.3: "A receiver MUST discard a packet where any
of bits 1-5 are non-zero", bits 2 and 3 being K and S since RFC 2890); bits 6--12 and
Reserved1 are ignored (RFC 2784 §2.3, §2.6).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Self

from .addr import ipv4_from_int
from .errors import DecodeError, EncodeError
from .ip import Bytes, internet_checksum

# -- minimal encapsulation ----------------------------------------------------------------

MINIMAL_PROTOCOL = 55  # RFC 2004 §3
MINIMAL = struct.Struct("!BBHI")  # protocol, S|reserved, checksum, original destination
MINIMAL_S = 0x80
MINIMAL_LEN = 8
MINIMAL_LEN_WITH_SOURCE = 12

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_new = object.__new__
_setattr = object.__setattr__


def _mismatch(what: str, hdr: bytearray, pos: int, got: int, offset: int) -> DecodeError:
    hdr[pos : pos + 2] = b"\0\0"
    return DecodeError(
        f"{what} checksum mismatch: expected {internet_checksum(hdr):#06x}, got {got:#06x}",
        offset,
    )


@dataclass(frozen=True)
class MinimalForwardingHeader:
    """The minimal forwarding header of RFC 2004 §3. ``original_source`` is present (the S
    bit set) when the encapsulator is not the original source of the datagram."""

    protocol: int
    original_destination: IPv4Address
    original_source: IPv4Address | None = None

    @property
    def header_len(self) -> int:
        return MINIMAL_LEN if self.original_source is None else MINIMAL_LEN_WITH_SOURCE

    def encode(self) -> bytes:
        src = self.original_source
        sbit = 0 if src is None else MINIMAL_S
        try:
            hdr = bytearray(MINIMAL.pack(self.protocol, sbit, 0, int(self.original_destination)))
        except struct.error as e:
            raise EncodeError(f"minimal forwarding header: {e}") from None
        if src is not None:
            hdr += src.packed
        # RFC 2004 §3: checksum over the forwarding header only, checksum field zero.
        csum = internet_checksum(hdr)
        hdr[2] = csum >> 8
        hdr[3] = csum & 0xFF
        return bytes(hdr)

    @classmethod
    def decode(cls, data: Bytes, offset: int = 0, *, verify: bool = True) -> Self:
        left = len(data) - offset
        if left < MINIMAL_LEN:
            raise DecodeError(
                f"minimal forwarding header: {left} byte(s), need {MINIMAL_LEN}", offset
            )
        proto, sbyte, csum, dst = MINIMAL.unpack_from(data, offset)
        s = sbyte & MINIMAL_S
        n = MINIMAL_LEN_WITH_SOURCE if s else MINIMAL_LEN
        if left < n:
            raise DecodeError(
                f"minimal forwarding header with S set: {left} byte(s), need {n}", offset
            )
        if verify and internet_checksum(data[offset : offset + n]) != 0:
            raise _mismatch(
                "minimal forwarding header",
                bytearray(data[offset : offset + n]),
                2,
                csum,
                offset + 2,
            )
        o = _new(cls)
        _setattr(
            o,
            "__dict__",
            {
                "protocol": proto,
                "original_destination": ipv4_from_int(dst),
                "original_source": (
                    ipv4_from_int(_U32.unpack_from(data, offset + 8)[0]) if s else None
                ),
            },
        )
        return o


# -- GRE ----------------------------------------------------------------------------------

GRE_PROTOCOL = 47  # IANA protocol number
GRE_PROTO_IPV4 = 0x0800  # Protocol Type for IPv4 (an EtherType, RFC 2784 §2.4)
GRE_BASE = struct.Struct("!HH")
GRE_C = 0x8000  # checksum present (RFC 2784 §2.2)
GRE_R = 0x4000  # routing present (RFC 1701); a receiver MUST discard (RFC 2784 §2.3)
GRE_K = 0x2000  # key present (RFC 2890 §2)
GRE_S = 0x1000  # sequence number present (RFC 2890 §2)
GRE_MUST_BE_ZERO = 0x4C00  # bits 1, 4, 5 (RFC 2784 §2.3 as amended by RFC 2890)
GRE_VERSION_MASK = 0x0007


@dataclass(frozen=True)
class GREHeader:
    """A GRE header (RFC 2784 §2, RFC 2890 §2). ``key`` and ``sequence`` are ``None`` when
    absent; ``checksum_present`` says whether the C bit (and the checksum field) is there."""

    protocol_type: int = GRE_PROTO_IPV4
    checksum_present: bool = False
    key: int | None = None
    sequence: int | None = None

    @property
    def header_len(self) -> int:
        return (
            4
            + (4 if self.checksum_present else 0)
            + (0 if self.key is None else 4)
            + (0 if self.sequence is None else 4)
        )

    def encode(self, payload: Bytes = b"") -> bytes:
        """The header bytes. With the C bit the checksum is computed over the header and
        ``payload`` (RFC 2784 §2.5); otherwise ``payload`` is not used."""
        word = (
            (GRE_C if self.checksum_present else 0)
            | (0 if self.key is None else GRE_K)
            | (0 if self.sequence is None else GRE_S)
        )
        try:
            hdr = bytearray(GRE_BASE.pack(word, self.protocol_type))
            if self.checksum_present:
                hdr += b"\0\0\0\0"  # checksum (filled below), Reserved1 = 0 (RFC 2784 §2.6)
            if self.key is not None:
                hdr += _U32.pack(self.key)
            if self.sequence is not None:
                hdr += _U32.pack(self.sequence)
        except struct.error as e:
            raise EncodeError(f"GRE header: {e}") from None
        if self.checksum_present:
            csum = internet_checksum(bytes(hdr) + bytes(payload))
            hdr[4] = csum >> 8
            hdr[5] = csum & 0xFF
        return bytes(hdr)

    @classmethod
    def decode(
        cls, data: Bytes, offset: int = 0, end: int | None = None, *, verify: bool = True
    ) -> Self:
        """Decode the GRE header at ``offset`` of a GRE packet that ends at ``end`` (default:
        the end of ``data``); with the C bit the checksum is verified over
        ``data[offset:end]``. The payload starts at ``offset + header_len``."""
        if end is None:
            end = len(data)
        left = end - offset
        if left < 4:
            raise DecodeError(f"GRE header: {left} byte(s), need 4", offset)
        word, proto = GRE_BASE.unpack_from(data, offset)
        if word & GRE_VERSION_MASK:
            raise DecodeError(
                f"GRE version {word & GRE_VERSION_MASK}, expected 0 (RFC 2784 §2.3.1)",
                offset + 1,
            )
        if word & GRE_MUST_BE_ZERO:
            raise DecodeError(
                f"GRE flags {word:#06x}: routing/strict route/recursion bits set "
                "(RFC 2784 §2.3: MUST discard)",
                offset,
            )
        c, k, s = word & GRE_C, word & GRE_K, word & GRE_S
        n = 4 + (4 if c else 0) + (4 if k else 0) + (4 if s else 0)
        if left < n:
            raise DecodeError(f"GRE header: {left} byte(s), flags need {n}", offset)
        pos = offset + 4
        if c:
            if verify and internet_checksum(data[offset:end]) != 0:
                got = _U16.unpack_from(data, pos)[0]
                raise _mismatch("GRE", bytearray(data[offset:end]), 4, got, pos)
            pos += 4
        key = seq = None
        if k:
            key = _U32.unpack_from(data, pos)[0]
            pos += 4
        if s:
            seq = _U32.unpack_from(data, pos)[0]
        o = _new(cls)
        _setattr(
            o,
            "__dict__",
            {"protocol_type": proto, "checksum_present": bool(c), "key": key, "sequence": seq},
        )
        return o


__all__ = [
    "GRE_PROTOCOL",
    "GRE_PROTO_IPV4",
    "MINIMAL_LEN",
    "MINIMAL_LEN_WITH_SOURCE",
    "MINIMAL_PROTOCOL",
    "GREHeader",
    "MinimalForwardingHeader",
]
