"""Registration Revocation and its Acknowledgement (RFC 3543 §3.1, §3.2)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntFlag
from ipaddress import IPv4Address
from typing import ClassVar, Self

from .addr import ipv4_from_int
from .ext_base import Extension, check_uint
from .msg_base import (
    Message,
    check_addrs,
    check_extensions,
    extension_area,
    unpack_head,
    with_extensions,
)

# ----------------------------------------------------------------------------------------
# Registration revocation (RFC 3543)
# ----------------------------------------------------------------------------------------


class RevocationFlags(IntFlag):
    """Flags word of the Registration Revocation message (RFC 3543 §3.1)."""

    A = 0x8000  #: sent by the home agent (clear: sent by the foreign agent)
    I = 0x4000  #: the mobile node is to be informed  # noqa: E741


class RevocationAckFlags(IntFlag):
    """Flags word of the Registration Revocation Acknowledgement (RFC 3543 §3.2)."""

    I = 0x8000  #: the mobile node was informed  # noqa: E741


_REVOCATION = struct.Struct("!BBHIIII")
_REVOCATION_ACK = struct.Struct("!BBHII")


@dataclass(frozen=True)
class RegistrationRevocation(Message):
    """Registration Revocation, type 7 (RFC 3543 §3.1)::

        0 Type | 1 Reserved | 2 A I Reserved(14 bits) | 4 Home Address
        8 Home Domain Address | 12 Foreign Domain Address | 16 Revocation Identifier(4)
        20 Extensions...

    Verified: Wireshark ``packet-mip.c`` (the RFC text itself was not available). It must
    carry an FA-HA authentication extension (RFC 3543 §3.1)."""

    TYPE: ClassVar[int] = 7
    FIXED_LEN: ClassVar[int] = 20
    flags: RevocationFlags | int
    home_address: IPv4Address
    home_domain_address: IPv4Address
    foreign_domain_address: IPv4Address
    revocation_id: int
    extensions: tuple[Extension, ...] = ()
    reserved: int = 0
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_uint(self, "flags", self.flags, 16)
        check_uint(self, "revocation_id", self.revocation_id, 32)
        check_uint(self, "reserved", self.reserved, 8)
        check_addrs(self, "home_address", "home_domain_address", "foreign_domain_address")
        check_extensions(self, self.extensions)

    def encode_fixed(self) -> bytes:
        return _REVOCATION.pack(
            7,
            self.reserved,
            self.flags,
            int(self.home_address),
            int(self.home_domain_address),
            int(self.foreign_domain_address),
            self.revocation_id,
        )

    def encode(self) -> bytes:
        return with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, reserved, flags, hoa, hda, fda, rev_id = unpack_head(cls, _REVOCATION, data)
        return cls(
            RevocationFlags(flags),
            ipv4_from_int(hoa),
            ipv4_from_int(hda),
            ipv4_from_int(fda),
            rev_id,
            extension_area(data, 20),
            reserved,
            data,
        )


@dataclass(frozen=True)
class RevocationAck(Message):
    """Registration Revocation Acknowledgement, type 15 (RFC 3543 §3.2)::

        0 Type | 1 Reserved | 2 I Reserved(15 bits) | 4 Home Address
        8 Revocation Identifier(4) | 12 Extensions...

    Verified: Wireshark ``packet-mip.c`` (the RFC text itself was not available)."""

    TYPE: ClassVar[int] = 15
    FIXED_LEN: ClassVar[int] = 12
    flags: RevocationAckFlags | int
    home_address: IPv4Address
    revocation_id: int
    extensions: tuple[Extension, ...] = ()
    reserved: int = 0
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_uint(self, "flags", self.flags, 16)
        check_uint(self, "revocation_id", self.revocation_id, 32)
        check_uint(self, "reserved", self.reserved, 8)
        check_addrs(self, "home_address")
        check_extensions(self, self.extensions)

    def encode_fixed(self) -> bytes:
        return _REVOCATION_ACK.pack(
            15, self.reserved, self.flags, int(self.home_address), self.revocation_id
        )

    def encode(self) -> bytes:
        return with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, reserved, flags, hoa, rev_id = unpack_head(cls, _REVOCATION_ACK, data)
        return cls(
            RevocationAckFlags(flags),
            ipv4_from_int(hoa),
            rev_id,
            extension_area(data, 12),
            reserved,
            data,
        )
