"""Generic Notification and its Acknowledgement (RFC 6098)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
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
# Generic notification (RFC 6098)
# ----------------------------------------------------------------------------------------

_NOTIFY = struct.Struct("!BBBBIIIQ")


class NotificationDirection:
    """Message Direction (MD) values of the Generic Notification (RFC 6098, as far as this
    author recalls them; unverified)."""

    HA_TO_MN = 0
    HA_TO_FA = 1
    MN_TO_HA = 2
    MN_TO_FA = 3
    FA_TO_MN = 4
    FA_TO_HA = 5


def _check_notification(m: GenericNotification | GenericNotificationAck, octet3: int) -> None:
    check_uint(m, "subtype", m.subtype, 8)
    check_uint(m, "direction", m.direction, 8)
    check_uint(m, "code" if isinstance(m, GenericNotificationAck) else "reserved", octet3, 8)
    check_uint(m, "identification", m.identification, 64)
    check_addrs(m, "home_address", "home_agent", "care_of_address")
    check_extensions(m, m.extensions)


def _encode_notification(m: GenericNotification | GenericNotificationAck, octet3: int) -> bytes:
    return _NOTIFY.pack(
        m.TYPE,
        m.subtype,
        m.direction,
        octet3,
        int(m.home_address),
        int(m.home_agent),
        int(m.care_of_address),
        m.identification,
    )


@dataclass(frozen=True)
class GenericNotification(Message):
    """Generic Notification message, type 22 (RFC 6098, message format section; section
    number unverified), as this codec reads it::

        0 Type | 1 Subtype | 2 MD (message direction) | 3 Reserved | 4 Home Address
        8 Home Agent Address | 12 Care-of Address | 16 Identification(8) | 24 Extensions...

    Layout status: UNVERIFIED. Wireshark names type 22 but decodes no field of it (tshark
    shows no Mobile IP fields), and the RFC 6098 text was not available. This is the
    author's best reading of RFC 6098: a 24-byte fixed part shaped like the Registration
    Request, so that Identification-based replay protection (the IESG write-up mentions
    "timestamp-based replay protection") and the authentication extensions work as in
    registration."""

    TYPE: ClassVar[int] = 22
    FIXED_LEN: ClassVar[int] = 24
    subtype: int
    direction: int
    home_address: IPv4Address
    home_agent: IPv4Address
    care_of_address: IPv4Address
    identification: int
    extensions: tuple[Extension, ...] = ()
    reserved: int = 0
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_notification(self, self.reserved)

    def encode_fixed(self) -> bytes:
        return _encode_notification(self, self.reserved)

    def encode(self) -> bytes:
        return with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, subtype, md, reserved, hoa, ha, coa, ident = unpack_head(cls, _NOTIFY, data)
        return cls(
            subtype,
            md,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ipv4_from_int(coa),
            ident,
            extension_area(data, 24),
            reserved,
            data,
        )


@dataclass(frozen=True)
class GenericNotificationAck(Message):
    """Generic Notification Acknowledgement, type 23 (RFC 6098, message format section;
    section number unverified), as this codec reads it::

        0 Type | 1 Subtype | 2 MD | 3 Code | 4 Home Address | 8 Home Agent Address
        12 Care-of Address | 16 Identification(8) | 24 Extensions...

    Layout status: UNVERIFIED (see :class:`GenericNotification`)."""

    TYPE: ClassVar[int] = 23
    FIXED_LEN: ClassVar[int] = 24
    subtype: int
    direction: int
    code: int
    home_address: IPv4Address
    home_agent: IPv4Address
    care_of_address: IPv4Address
    identification: int
    extensions: tuple[Extension, ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_notification(self, self.code)

    def encode_fixed(self) -> bytes:
        return _encode_notification(self, self.code)

    def encode(self) -> bytes:
        return with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, subtype, md, code, hoa, ha, coa, ident = unpack_head(cls, _NOTIFY, data)
        return cls(
            subtype,
            md,
            code,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ipv4_from_int(coa),
            ident,
            extension_area(data, 24),
            data,
        )
