"""The request- and reply-shaped messages of the MIP4 WG extensions: handoff (RFC 4881),
regional registration (RFC 4857) and fast binding (RFC 4988). Each reuses the Registration
Request or Reply layout (:mod:`mip4.wire.msg_base`); the class docstrings say what was
assumed where the layout is unverified."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import ClassVar, Self

from .addr import ipv4_from_int
from .ext_base import Extension
from .msg_base import (
    REG_FLAGS,
    RRP_HEADER,
    RRQ_HEADER,
    Message,
    RegistrationFlags,
    check_addrs,
    check_reply_fields,
    check_request_fields,
    extension_area,
    unpack_head,
    with_extensions,
)

# ----------------------------------------------------------------------------------------
# Request- and reply-shaped messages of the MIP4 WG extensions
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandoffRequest(Message):
    """Handoff Request (HRqst), type 16 (RFC 4881, HRqst format; section number
    unverified), as this codec reads it::

        0 Type | 1 Flags | 2 Lifetime(2) | 4 Home Address | 8 Home Agent
        12 Care-of Address | 16 Identification(8) | 24 Extensions...

    Layout status: UNVERIFIED. Wireshark names type 16 but does not decode it, and the
    RFC 4881 text was not available. The layout is the Registration Request's (RFC 5944
    §3.3): RFC 4881 hands registration state between foreign agents, and IANA keeps a
    "Code Values for Mobile IP Handoff Reply Messages" registry, i.e. the reply has a Code
    octet like a Registration Reply. The flag bits are kept as a plain integer because
    their meanings could not be checked. Treat as a placeholder until checked against the
    RFC text."""

    TYPE: ClassVar[int] = 16
    FIXED_LEN: ClassVar[int] = 24
    flags: int
    lifetime: int
    home_address: IPv4Address
    home_agent: IPv4Address
    care_of_address: IPv4Address
    identification: int
    extensions: tuple[Extension, ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_request_fields(self)
        check_addrs(self, "home_address", "home_agent", "care_of_address")

    def encode_fixed(self) -> bytes:
        return RRQ_HEADER.pack(
            self.TYPE,
            self.flags,
            self.lifetime,
            int(self.home_address),
            int(self.home_agent),
            int(self.care_of_address),
            self.identification,
        )

    def encode(self) -> bytes:
        return with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, flags, lifetime, hoa, ha, coa, ident = unpack_head(cls, RRQ_HEADER, data)
        return cls(
            flags,
            lifetime,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ipv4_from_int(coa),
            ident,
            extension_area(data, 24),
            data,
        )


@dataclass(frozen=True)
class _ReplyShapedMessage(Message):
    """``0 Type | 1 Code | 2 Lifetime(2) | 4 Home Address | 8 Home Agent |
    12 Identification(8) | 20 Extensions...`` -- the Registration Reply layout
    (RFC 5944 §3.4), shared by types 17, 19 and 21."""

    FIXED_LEN: ClassVar[int] = 20
    code: int
    lifetime: int
    home_address: IPv4Address
    home_agent: IPv4Address
    identification: int
    extensions: tuple[Extension, ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_reply_fields(self)
        check_addrs(self, "home_address", "home_agent")

    def encode_fixed(self) -> bytes:
        return RRP_HEADER.pack(
            self.TYPE,
            self.code,
            self.lifetime,
            int(self.home_address),
            int(self.home_agent),
            self.identification,
        )

    def encode(self) -> bytes:
        return with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, code, lifetime, hoa, ha, ident = unpack_head(cls, RRP_HEADER, data)
        return cls(
            code,
            lifetime,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ident,
            extension_area(data, 20),
            data,
        )


@dataclass(frozen=True)
class HandoffReply(_ReplyShapedMessage):
    """Handoff Reply (HRply), type 17 (RFC 4881, HRply format; section number
    unverified), in the Registration Reply layout;
    ``code`` takes IANA's "Code Values for Mobile IP Handoff Reply Messages".

    Layout status: UNVERIFIED (see :class:`HandoffRequest`)."""

    TYPE: ClassVar[int] = 17


@dataclass(frozen=True)
class RegionalRegistrationRequest(Message):
    """Regional Registration Request, type 18 (RFC 4857, message format section;
    section number unverified)::

        0 Type | 1 Flags (S B D M G r T x) | 2 Lifetime(2) | 4 Home Address
        8 GFA IP Address | 12 Care-of Address | 16 Identification(8) | 24 Extensions...

    The Registration Request layout with the Home Agent field holding the gateway foreign
    agent's address. Layout status: UNVERIFIED (Wireshark names type 18 but does not decode
    it; RFC 4857 text not available)."""

    TYPE: ClassVar[int] = 18
    FIXED_LEN: ClassVar[int] = 24
    flags: RegistrationFlags
    lifetime: int
    home_address: IPv4Address
    gfa_address: IPv4Address
    care_of_address: IPv4Address
    identification: int
    extensions: tuple[Extension, ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_request_fields(self)
        check_addrs(self, "home_address", "gfa_address", "care_of_address")

    def encode_fixed(self) -> bytes:
        return RRQ_HEADER.pack(
            self.TYPE,
            self.flags,
            self.lifetime,
            int(self.home_address),
            int(self.gfa_address),
            int(self.care_of_address),
            self.identification,
        )

    def encode(self) -> bytes:
        return with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, flags, lifetime, hoa, gfa, coa, ident = unpack_head(cls, RRQ_HEADER, data)
        return cls(
            REG_FLAGS[flags],
            lifetime,
            ipv4_from_int(hoa),
            ipv4_from_int(gfa),
            ipv4_from_int(coa),
            ident,
            extension_area(data, 24),
            data,
        )


@dataclass(frozen=True)
class RegionalRegistrationReply(_ReplyShapedMessage):
    """Regional Registration Reply, type 19 (RFC 4857; section number unverified), in
    the Registration Reply
    layout. Layout status: UNVERIFIED (see :class:`RegionalRegistrationRequest`)."""

    TYPE: ClassVar[int] = 19


@dataclass(frozen=True)
class _RequestShapedMessage(Message):
    """``0 Type | 1 Flags | 2 Lifetime(2) | 4 Home Address | 8 Home Agent |
    12 Care-of Address | 16 Identification(8) | 24 Extensions...`` -- the Registration
    Request layout (RFC 5944 §3.3) under another type number (20)."""

    FIXED_LEN: ClassVar[int] = 24
    flags: RegistrationFlags
    lifetime: int
    home_address: IPv4Address
    home_agent: IPv4Address
    care_of_address: IPv4Address
    identification: int
    extensions: tuple[Extension, ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_request_fields(self)
        check_addrs(self, "home_address", "home_agent", "care_of_address")

    def encode_fixed(self) -> bytes:
        return RRQ_HEADER.pack(
            self.TYPE,
            self.flags,
            self.lifetime,
            int(self.home_address),
            int(self.home_agent),
            int(self.care_of_address),
            self.identification,
        )

    def encode(self) -> bytes:
        return with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, flags, lifetime, hoa, ha, coa, ident = unpack_head(cls, RRQ_HEADER, data)
        return cls(
            REG_FLAGS[flags],
            lifetime,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ipv4_from_int(coa),
            ident,
            extension_area(data, 24),
            data,
        )


@dataclass(frozen=True)
class FastBindingUpdate(_RequestShapedMessage):
    """Fast Binding Update (FBU), type 20 (RFC 4988 §5.1, per its table of
    contents)::

        0 Type | 1 Flags (S B D M G r T x) | 2 Lifetime(2) | 4 Home Address
        8 Home Agent | 12 Care-of Address | 16 Identification(8) | 24 Extensions...

    The Registration Request layout with its own type; RFC 4988 sends it to the previous
    access router with the new care-of address. Layout status: UNVERIFIED (Wireshark names
    type 20 but does not decode it; RFC 4988 text not available)."""

    TYPE: ClassVar[int] = 20


@dataclass(frozen=True)
class FastBindingAck(_ReplyShapedMessage):
    """Fast Binding Acknowledgement (FBack), type 21 (RFC 4988 §5.2), in the Registration
    Reply layout. Layout status: UNVERIFIED (see :class:`FastBindingUpdate`)."""

    TYPE: ClassVar[int] = 21
