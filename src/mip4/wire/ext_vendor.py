"""Vendor/organization-specific extensions (RFC 3115) and the experimental extension
(RFC 4064).

RFC 3115 §3.1, the Critical Vendor/Organization Specific Extension (CVSE), long format whose
second byte is *reserved* rather than a subtype::

    0 Type | 1 Reserved | 2 Length(2) | 4 Vendor/Org-ID(4) | 8 Vendor-CVSE-Type(2)
    10 Vendor-CVSE-Value...            (Length = 6 + len(value))

RFC 3115 §3.2, the Normal Vendor/Organization Specific Extension (NVSE), short format::

    0 Type | 1 Length | 2 Reserved(2) | 4 Vendor/Org-ID(4) | 8 Vendor-NVSE-Type(2)
    10 Vendor-NVSE-Value...            (Length = 8 + len(value))

Both layouts are verified against Wireshark ``packet-mip.c`` (value at ``ext_len - 6`` and
``ext_len - 8``) and tshark. Types 38 and 134 are RFC 3115's numbers; 37 and 133 are the numbers
RFC 3025 (obsoleted by RFC 3115) used, which IANA still lists and Wireshark still names. This
codec gives 37 the CVSE layout and 133 the NVSE layout. Wireshark instead reads a *one*-byte
length for type 37 and then a CVSE body, which cannot be right for a format whose length is
16 bits; the RFC 3025 text was not available to settle it.

A CVSE that the receiver cannot interpret makes it reject the registration (RFC 3115 §4,
reply codes 100/101/140/141): that is the engines' job, not the codec's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from .ext_base import (
    LONG,
    Extension,
    ExtFormat,
    body_length_error,
    check_len,
    check_uint,
)

_CVSE = struct.Struct("!IH")
_NVSE = struct.Struct("!HIH")


@dataclass(frozen=True)
class _CriticalVendorExtension(Extension):
    FORMAT: ClassVar[ExtFormat] = LONG
    vendor_id: int
    vendor_type: int
    value: bytes = b""
    #: the byte after Type ("Reserved", RFC 3115 §3.1), kept for byte-exact re-encoding
    reserved: int = 0

    def __post_init__(self) -> None:
        check_uint(self, "vendor_id", self.vendor_id, 32)
        check_uint(self, "vendor_type", self.vendor_type, 16)
        check_uint(self, "reserved", self.reserved, 8)
        check_len(self, "value", self.value, 0xFFFF - 6)

    @property
    def header_subtype(self) -> int:
        return self.reserved

    def encode_body(self) -> bytes:
        return _CVSE.pack(self.vendor_id, self.vendor_type) + self.value

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start < 6:
            raise body_length_error(cls, start, end, "need at least 6 (Vendor-ID, CVSE-Type)")
        vendor_id, vendor_type = _CVSE.unpack_from(data, start)
        return cls(vendor_id, vendor_type, bytes(data[start + 6 : end]), subtype)


@dataclass(frozen=True)
class CriticalVendorExtension(_CriticalVendorExtension):
    """Critical Vendor/Organization Specific Extension (CVSE), type 38, RFC 3115 §3.1."""

    TYPE: ClassVar[int] = 38


@dataclass(frozen=True)
class CriticalVendorExtensionOld(_CriticalVendorExtension):
    """CVSE under RFC 3025's number, type 37; same layout as type 38 (see module notes:
    the layout of 37 is not verified against RFC 3025)."""

    TYPE: ClassVar[int] = 37


@dataclass(frozen=True)
class _NormalVendorExtension(Extension):
    vendor_id: int
    vendor_type: int
    value: bytes = b""
    #: the two bytes after Length ("Reserved", RFC 3115 §3.2)
    reserved: int = 0

    def __post_init__(self) -> None:
        check_uint(self, "vendor_id", self.vendor_id, 32)
        check_uint(self, "vendor_type", self.vendor_type, 16)
        check_uint(self, "reserved", self.reserved, 16)
        check_len(self, "value", self.value, 255 - 8)

    def encode_body(self) -> bytes:
        return _NVSE.pack(self.reserved, self.vendor_id, self.vendor_type) + self.value

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start < 8:
            raise body_length_error(
                cls, start, end, "need at least 8 (Reserved, Vendor-ID, NVSE-Type)"
            )
        reserved, vendor_id, vendor_type = _NVSE.unpack_from(data, start)
        return cls(vendor_id, vendor_type, bytes(data[start + 8 : end]), reserved)


@dataclass(frozen=True)
class NormalVendorExtension(_NormalVendorExtension):
    """Normal Vendor/Organization Specific Extension (NVSE), type 134, RFC 3115 §3.2."""

    TYPE: ClassVar[int] = 134


@dataclass(frozen=True)
class NormalVendorExtensionOld(_NormalVendorExtension):
    """NVSE under RFC 3025's number, type 133; same layout as type 134 (verified: Wireshark
    decodes 133 and 134 alike)."""

    TYPE: ClassVar[int] = 133


@dataclass(frozen=True)
class ExperimentalExtension(Extension):
    """Skippable extension for experimental use, type 255 (RFC 4064; section number unverified).
    RFC 4064 defines no
    body layout; the data are opaque. Short format (Wireshark)."""

    TYPE: ClassVar[int] = 255
    data: bytes = b""

    def __post_init__(self) -> None:
        check_len(self, "data", self.data, 255)

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        return cls(bytes(data[start:end]))


__all__ = [
    "CriticalVendorExtension",
    "CriticalVendorExtensionOld",
    "ExperimentalExtension",
    "NormalVendorExtension",
    "NormalVendorExtensionOld",
]
