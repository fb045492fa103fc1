"""Tunnelling extensions: UDP tunnelling (RFC 3519), encapsulating delivery (RFC 3024) and the
GRE key (RFC 6245).

RFC 3519 §3.1, UDP Tunnel Request, type 144 (skippable), short format, Length 6::

    0 Type | 1 Length | 2 Sub-Type | 3 Reserved 1 | 4 F R Reserved 2(6 bits) | 5 Encapsulation
    6 Reserved 3(2)

RFC 3519 §3.2, UDP Tunnel Reply, type 44 (non-skippable), short format, Length 6::

    0 Type | 1 Length | 2 Sub-Type | 3 Reply Code | 4 F Reserved(15 bits) | 6 Keepalive Interval(2)

Both verified against Wireshark ``packet-mip.c`` and tshark. Reserved bits and bytes are kept
so messages re-encode byte for byte (RFC 3519: sent as zero, ignored on receipt).

RFC 3024 §3.3, Encapsulating Delivery Style, type 130 (skippable): Type, Length = 0, no data.

RFC 6245 §3.1, GRE Key, type 48 (non-skippable), long format (IANA keeps a "GRE Key Extension
subtypes" registry)::

    0 Type | 1 Subtype | 2 Length(2) = 4 | 4 Key Identifier(4)

Layout verified against autonubil/codex ``docs/gre.md``; the RFC 6245 text itself was not
available to check. Subtype 0 is the only one this author knows of.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag
from typing import ClassVar, Self

from .ext_base import (
    LONG,
    Extension,
    ExtFormat,
    body_length_error,
    check_uint,
)

_REQ = struct.Struct("!BBBBH")
_REP = struct.Struct("!BBHH")
_U32 = struct.Struct("!I")


class UDPTunnelRequestFlags(IntFlag):
    """Flags octet of the UDP Tunnel Request Extension (RFC 3519 §3.1)."""

    F = 0x80  #: force UDP tunnelling even if no NAT is detected
    R = 0x40  #: registration through the FA is required (the MN uses a co-located CoA)


class UDPTunnelReplyFlags(IntFlag):
    """Flags word of the UDP Tunnel Reply Extension (RFC 3519 §3.2)."""

    F = 0x8000  #: UDP tunnelling is forced by the home agent


class UDPTunnelReplyCode:
    """Reply codes of the UDP Tunnel Reply Extension (RFC 3519 §3.2; Wireshark)."""

    WILL_TUNNEL = 0
    DECLINED_UNSPECIFIED = 64


class Encapsulation:
    """Next Header / Encapsulation values (RFC 3519 §3.1, §3.3): IP protocol numbers."""

    IP_IN_IP = 4
    GRE = 47
    MINIMAL = 55


@dataclass(frozen=True)
class UDPTunnelRequestExtension(Extension):
    """UDP Tunnel Request Extension, type 144 (RFC 3519 §3.1)."""

    TYPE: ClassVar[int] = 144
    flags: UDPTunnelRequestFlags | int = 0
    encapsulation: int = Encapsulation.IP_IN_IP
    subtype: int = 0
    reserved1: int = 0
    reserved3: int = 0

    def __post_init__(self) -> None:
        check_uint(self, "flags", self.flags, 8)
        check_uint(self, "encapsulation", self.encapsulation, 8)
        check_uint(self, "subtype", self.subtype, 8)
        check_uint(self, "reserved1", self.reserved1, 8)
        check_uint(self, "reserved3", self.reserved3, 16)

    def encode_body(self) -> bytes:
        return _REQ.pack(
            self.subtype, self.reserved1, self.flags, self.encapsulation, self.reserved3
        )

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start != 6:
            raise body_length_error(cls, start, end, "need exactly 6")
        st, r1, flags, encap, r3 = _REQ.unpack_from(data, start)
        return cls(UDPTunnelRequestFlags(flags), encap, st, r1, r3)


@dataclass(frozen=True)
class UDPTunnelReplyExtension(Extension):
    """UDP Tunnel Reply Extension, type 44 (RFC 3519 §3.2). ``keepalive`` is in seconds."""

    TYPE: ClassVar[int] = 44
    code: int = UDPTunnelReplyCode.WILL_TUNNEL
    flags: UDPTunnelReplyFlags | int = 0
    keepalive: int = 0
    subtype: int = 0

    def __post_init__(self) -> None:
        check_uint(self, "code", self.code, 8)
        check_uint(self, "flags", self.flags, 16)
        check_uint(self, "keepalive", self.keepalive, 16)
        check_uint(self, "subtype", self.subtype, 8)

    def encode_body(self) -> bytes:
        return _REP.pack(self.subtype, self.code, self.flags, self.keepalive)

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start != 6:
            raise body_length_error(cls, start, end, "need exactly 6")
        st, code, flags, keepalive = _REP.unpack_from(data, start)
        return cls(code, UDPTunnelReplyFlags(flags), keepalive, st)


@dataclass(frozen=True)
class EncapsulatingDeliveryExtension(Extension):
    """Encapsulating Delivery Style Extension, type 130 (RFC 3024 §3.3): Length 0."""

    TYPE: ClassVar[int] = 130

    def encode_body(self) -> bytes:
        return b""

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end != start:
            raise body_length_error(cls, start, end, "need 0")
        return cls()


@dataclass(frozen=True)
class GREKeyExtension(Extension):
    """GRE Key Extension, type 48 (RFC 6245 §3.1), long format."""

    TYPE: ClassVar[int] = 48
    FORMAT: ClassVar[ExtFormat] = LONG
    key: int
    subtype: int = 0

    def __post_init__(self) -> None:
        check_uint(self, "key", self.key, 32)
        check_uint(self, "subtype", self.subtype, 8)

    @property
    def header_subtype(self) -> int:
        return self.subtype

    def encode_body(self) -> bytes:
        return _U32.pack(self.key)

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start != 4:
            raise body_length_error(cls, start, end, "need exactly 4 (Key Identifier)")
        return cls(_U32.unpack_from(data, start)[0], subtype)


__all__ = [
    "EncapsulatingDeliveryExtension",
    "Encapsulation",
    "GREKeyExtension",
    "UDPTunnelReplyCode",
    "UDPTunnelReplyExtension",
    "UDPTunnelReplyFlags",
    "UDPTunnelRequestExtension",
    "UDPTunnelRequestFlags",
]
