"""Registration extensions of the MIP4 WG mobility documents.

========  ==========================================  ===========  ======================
Type      Extension                                   Format       Layout status
========  ==========================================  ===========  ======================
45        FA Error (RFC 4636)                         long         unverified (see class)
46        GFA IP Address (RFC 4857)                   short        unverified (see class)
136       NAI Carrying (RFC 3846 §3)                  short        unverified (see class)
137       Revocation Support (RFC 3543 §3.3)          short        verified: Wireshark, tshark
138       Generalized Link-Layer Address (RFC 4881)   short        unverified (see class)
139       Dynamic HA (RFC 4433 §3.1)                  short        verified: Wireshark, tshark
145       Message String (RFC 4917 §3)                short        verified: Wireshark, tshark
148       Mobile Network (RFC 5177 §3)                short        verified: Wireshark, tshark
149       Trusted Networks Configured (RFC 5265)      short        unverified (see class)
========  ==========================================  ===========  ======================

"Short" extensions that carry a subtype keep it in the first body byte (RFC 5944 §1.12); the
class has a ``subtype`` field. Type 148 has two layouts, chosen by its subtype: the registry
entry :class:`MobileNetworkExtension` dispatches to :class:`MobileNetworkRequestExtension`
(subtype 0) or :class:`MobileNetworkAckExtension` (subtypes 1 and 2); another subtype is kept
as a :class:`~mip4.wire.ext_base.RawExtension` (type 148 is skippable).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag
from ipaddress import IPv4Address
from typing import ClassVar, Self, cast

from .addr import ipv4_from_int
from .errors import EncodeError
from .ext_base import (
    LONG,
    Extension,
    ExtFormat,
    RawExtension,
    body_length_error,
    check_len,
    check_uint,
)

_U32 = struct.Struct("!I")
_REV = struct.Struct("!HI")
_DHA = struct.Struct("!BI")
_MNR = struct.Struct("!BBI")
_MNA = struct.Struct("!BBBBI")


def _check_ipv4(owner: object, name: str, value: IPv4Address) -> None:
    if not isinstance(value, IPv4Address):
        raise EncodeError(f"{type(owner).__name__}.{name} must be an IPv4Address, not {value!r}")


# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FAErrorExtension(Extension):
    """Foreign Agent Error Extension, type 45 (RFC 4636 §2)::

        0 Type | 1 Subtype | 2 Length(2) | 4 Status | 5 ...

    The FA puts its registration reply code in ``status`` here, after the MN-HA
    authenticator, instead of overwriting the HA's Code field (which would break the
    MN-HA authenticator).

    Layout status: UNVERIFIED. IANA keeps an "FA Error Extension subtypes (value 45)"
    registry, so the extension has a subtype, and the MIP4 WG gives non-skippable extensions
    with subtypes the long format (RFC 5944 §1.11); Wireshark names the type but does not
    decode it, and the RFC 4636 text was not available. The codec therefore reads the long
    header, takes the first body byte as Status, and keeps any further bytes in ``data``
    (so a message re-encodes byte for byte whatever follows).
    """

    TYPE: ClassVar[int] = 45
    FORMAT: ClassVar[ExtFormat] = LONG
    status: int
    subtype: int = 0
    data: bytes = b""

    def __post_init__(self) -> None:
        check_uint(self, "status", self.status, 8)
        check_uint(self, "subtype", self.subtype, 8)
        check_len(self, "data", self.data, 0xFFFF - 1)

    @property
    def header_subtype(self) -> int:
        return self.subtype

    def encode_body(self) -> bytes:
        return bytes((self.status,)) + self.data

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start < 1:
            raise body_length_error(cls, start, end, "need at least 1 (Status)")
        return cls(data[start], subtype, bytes(data[start + 1 : end]))


@dataclass(frozen=True)
class GFAAddressExtension(Extension):
    """GFA IP Address Extension, type 46 (RFC 4857; section unverified):
    ``Type | Length = 4 | GFA IP Address``. Layout status: UNVERIFIED (Wireshark names the
    type only; RFC text not available). Added because the type is non-skippable: without
    it every regional registration carrying it would be discarded as unknown."""

    TYPE: ClassVar[int] = 46
    gfa_address: IPv4Address

    def __post_init__(self) -> None:
        _check_ipv4(self, "gfa_address", self.gfa_address)

    def encode_body(self) -> bytes:
        return self.gfa_address.packed

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start != 4:
            raise body_length_error(cls, start, end, "need exactly 4 (GFA IP Address)")
        return cls(ipv4_from_int(_U32.unpack_from(data, start)[0]))


@dataclass(frozen=True)
class NAICarryingExtension(Extension):
    """Mobile IPv4 Extension for Carrying Network Access Identifiers, type 136 (RFC 3846 §3)::

        0 Type | 1 Length | 2 Sub-Type | 3 NAI...

    Layout status: UNVERIFIED (Wireshark names the type only; the RFC 3846 text was not
    available). The NAI is kept as bytes (UTF-8, RFC 4282)."""

    TYPE: ClassVar[int] = 136
    subtype: int
    nai: bytes

    def __post_init__(self) -> None:
        check_uint(self, "subtype", self.subtype, 8)
        check_len(self, "nai", self.nai, 254)

    def encode_body(self) -> bytes:
        return bytes((self.subtype,)) + self.nai

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start < 1:
            raise body_length_error(cls, start, end, "need at least 1 (Sub-Type)")
        return cls(data[start], bytes(data[start + 1 : end]))


class RevocationSupportFlags(IntFlag):
    """Flags word of the Revocation Support Extension (RFC 3543 §3.3)."""

    I = 0x8000  #: the agent supports the 'I' (inform mobile node) bit  # noqa: E741


@dataclass(frozen=True)
class RevocationSupportExtension(Extension):
    """Registration Revocation Support Extension, type 137 (RFC 3543 §3.3)::

    0 Type | 1 Length = 6 | 2 I Reserved(15 bits) | 4 Timestamp(4)
    """

    TYPE: ClassVar[int] = 137
    timestamp: int
    flags: RevocationSupportFlags | int = 0

    def __post_init__(self) -> None:
        check_uint(self, "timestamp", self.timestamp, 32)
        check_uint(self, "flags", self.flags, 16)

    def encode_body(self) -> bytes:
        return _REV.pack(self.flags, self.timestamp)

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start != 6:
            raise body_length_error(cls, start, end, "need exactly 6 (Flags, Timestamp)")
        flags, timestamp = _REV.unpack_from(data, start)
        return cls(timestamp, RevocationSupportFlags(flags))


@dataclass(frozen=True)
class GeneralizedLLAExtension(Extension):
    """Generalized Link-Layer Address Registration Extension, type 138 (RFC 4881;
    section number unverified)::

        0 Type | 1 Length | 2 Sub-Type | 3 Link-layer address...

    The subtypes are IANA's "Generalized Link Layer Address Registration Extension Subtypes".
    Layout status: UNVERIFIED (Wireshark names the type only; RFC text not available); the
    address is kept as opaque bytes."""

    TYPE: ClassVar[int] = 138
    subtype: int
    address: bytes

    def __post_init__(self) -> None:
        check_uint(self, "subtype", self.subtype, 8)
        check_len(self, "address", self.address, 254)

    def encode_body(self) -> bytes:
        return bytes((self.subtype,)) + self.address

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start < 1:
            raise body_length_error(cls, start, end, "need at least 1 (Sub-Type)")
        return cls(data[start], bytes(data[start + 1 : end]))


class DynamicHASubtype:
    """Subtypes of the Dynamic HA Extension (RFC 4433 §3.1)."""

    REQUESTED_HA = 1
    REDIRECTED_HA = 2


@dataclass(frozen=True)
class DynamicHAExtension(Extension):
    """Dynamic HA Extension, type 139 (RFC 4433 §3.1)::

    0 Type | 1 Length = 5 | 2 Sub-Type (1 requested, 2 redirected) | 3 Home Agent(4)
    """

    TYPE: ClassVar[int] = 139
    subtype: int
    home_agent: IPv4Address

    def __post_init__(self) -> None:
        check_uint(self, "subtype", self.subtype, 8)
        _check_ipv4(self, "home_agent", self.home_agent)

    def encode_body(self) -> bytes:
        return _DHA.pack(self.subtype, int(self.home_agent))

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start != 5:
            raise body_length_error(cls, start, end, "need exactly 5 (Sub-Type, Home Agent)")
        st, ha = _DHA.unpack_from(data, start)
        return cls(st, ipv4_from_int(ha))


class MessageStringSubtype:
    """Subtypes of the Message String Extension (RFC 4917 §3; Wireshark names)."""

    HA = 1
    FA = 2


@dataclass(frozen=True)
class MessageStringExtension(Extension):
    """Message String Extension, type 145 (RFC 4917 §3)::

    0 Type | 1 Length | 2 Sub-Type | 3 Text (UTF-8, not NUL-terminated)...
    """

    TYPE: ClassVar[int] = 145
    subtype: int
    text: bytes

    def __post_init__(self) -> None:
        check_uint(self, "subtype", self.subtype, 8)
        check_len(self, "text", self.text, 254)

    def encode_body(self) -> bytes:
        return bytes((self.subtype,)) + self.text

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start < 1:
            raise body_length_error(cls, start, end, "need at least 1 (Sub-Type)")
        return cls(data[start], bytes(data[start + 1 : end]))


class MobileNetworkCode:
    """Codes of the Mobile Network Acknowledgement (RFC 5177 §3.2; IANA)."""

    SUCCESS = 0
    INVALID_PREFIX_LEN = 1
    UNAUTHORIZED = 2
    FWDING_SETUP_FAILED = 3


@dataclass(frozen=True)
class MobileNetworkExtension(Extension):
    """Mobile Network Extension, type 148 (RFC 5177 §3). This is the registry entry; it
    decodes to :class:`MobileNetworkRequestExtension` (subtype 0) or
    :class:`MobileNetworkAckExtension` (subtypes 1 explicit, 2 implicit), or to a
    :class:`~mip4.wire.ext_base.RawExtension` for any other subtype."""

    TYPE: ClassVar[int] = 148

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start < 1:
            raise body_length_error(cls, start, end, "need at least 1 (Sub-Type)")
        st = data[start]
        sub: type[MobileNetworkExtension]
        if st == 0:
            sub = MobileNetworkRequestExtension
        elif st in (1, 2):
            sub = MobileNetworkAckExtension
        else:
            return cast(Self, RawExtension(cls.TYPE, bytes(data[start:end])))
        return cast(Self, sub._decode(data, start, end))

    @classmethod
    def _decode(cls, data: bytes, start: int, end: int) -> MobileNetworkExtension:
        raise NotImplementedError


@dataclass(frozen=True)
class MobileNetworkRequestExtension(MobileNetworkExtension):
    """Mobile Network Request Extension, type 148 subtype 0 (RFC 5177 §3.1)::

    0 Type | 1 Length = 6 | 2 Sub-Type = 0 | 3 Prefix Length | 4 Prefix(4)
    """

    prefix_length: int
    prefix: IPv4Address

    def __post_init__(self) -> None:
        check_uint(self, "prefix_length", self.prefix_length, 8)
        _check_ipv4(self, "prefix", self.prefix)

    def encode_body(self) -> bytes:
        return _MNR.pack(0, self.prefix_length, int(self.prefix))

    @classmethod
    def _decode(cls, data: bytes, start: int, end: int) -> MobileNetworkExtension:
        if end - start != 6:
            raise body_length_error(cls, start, end, "subtype 0 needs exactly 6")
        _, plen, prefix = _MNR.unpack_from(data, start)
        return cls(plen, ipv4_from_int(prefix))


@dataclass(frozen=True)
class MobileNetworkAckExtension(MobileNetworkExtension):
    """Mobile Network Acknowledgement Extension, type 148 subtypes 1 (explicit mode) and 2
    (implicit mode) (RFC 5177 §3.2)::

        0 Type | 1 Length = 8 | 2 Sub-Type | 3 Code | 4 Prefix Length | 5 Reserved
        6 Prefix(4)
    """

    subtype: int
    code: int
    prefix_length: int
    prefix: IPv4Address
    reserved: int = 0

    def __post_init__(self) -> None:
        if self.subtype not in (1, 2):
            raise EncodeError(f"MobileNetworkAckExtension.subtype must be 1 or 2: {self.subtype}")
        check_uint(self, "code", self.code, 8)
        check_uint(self, "prefix_length", self.prefix_length, 8)
        check_uint(self, "reserved", self.reserved, 8)
        _check_ipv4(self, "prefix", self.prefix)

    def encode_body(self) -> bytes:
        return _MNA.pack(
            self.subtype, self.code, self.prefix_length, self.reserved, int(self.prefix)
        )

    @classmethod
    def _decode(cls, data: bytes, start: int, end: int) -> MobileNetworkExtension:
        if end - start != 8:
            raise body_length_error(cls, start, end, "subtypes 1 and 2 need exactly 8")
        st, code, plen, reserved, prefix = _MNA.unpack_from(data, start)
        return cls(st, code, plen, ipv4_from_int(prefix), reserved)


@dataclass(frozen=True)
class TrustedNetworksConfiguredExtension(Extension):
    """Trusted Networks Configured (TNC) Extension, type 149 (RFC 5265 §5.3)::

        0 Type | 1 Length = 2 | 2 Sub-Type (0) | 3 Reserved

    Sent by a mobile node that has trusted networks configured (VPN traversal). Layout
    status: UNVERIFIED (Wireshark names the type only; RFC text not available); IANA keeps
    a "TNC Extension subtypes" registry, which is why a Sub-Type byte is read."""

    TYPE: ClassVar[int] = 149
    subtype: int = 0
    reserved: int = 0

    def __post_init__(self) -> None:
        check_uint(self, "subtype", self.subtype, 8)
        check_uint(self, "reserved", self.reserved, 8)

    def encode_body(self) -> bytes:
        return bytes((self.subtype, self.reserved))

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start != 2:
            raise body_length_error(cls, start, end, "need exactly 2 (Sub-Type, Reserved)")
        return cls(data[start], data[start + 1])


__all__ = [
    "DynamicHAExtension",
    "DynamicHASubtype",
    "FAErrorExtension",
    "GFAAddressExtension",
    "GeneralizedLLAExtension",
    "MessageStringExtension",
    "MessageStringSubtype",
    "MobileNetworkAckExtension",
    "MobileNetworkCode",
    "MobileNetworkExtension",
    "MobileNetworkRequestExtension",
    "NAICarryingExtension",
    "RevocationSupportExtension",
    "RevocationSupportFlags",
    "TrustedNetworksConfiguredExtension",
]
