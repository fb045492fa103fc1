"""Messages carried in UDP port 434 (RFC 5944 §3 and the MIP4 WG extensions).

Theory of operation
-------------------
Each message is a frozen dataclass with a ``TYPE`` class attribute, ``encode() -> bytes`` and
a ``decode(data)`` class method; :func:`decode_message` dispatches on the first byte through
:data:`MESSAGES`. Messages that end in an extension area keep the decoded extensions in
``extensions`` and, in a field that takes no part in equality, the exact bytes received
(``raw``): authenticators are verified over ``raw`` (RFC 5944 §3.5.1), never over a
re-serialisation. Hot decoders build the frozen object by assigning its ``__dict__`` at once
instead of calling the field-by-field frozen ``__init__`` (3x faster on CPython 3.11).

Lazy fields. Registration Requests and Replies are the hot path (a home agent decodes one
per registration, a foreign agent relays them mostly untouched). Their decoders check every
byte that could make decoding fail -- the fixed header and, with
:func:`~mip4.wire.extensions.scan_extensions`, the framing of each extension -- and then, when
every extension is of a type that cannot fail to decode once framed, leave the address fields
and ``extensions`` out of the instance: a :class:`_FromRaw` descriptor on the class builds
each from ``raw`` the first time it is read and stores it in the instance, where later reads
find it directly. So a message that decodes is whole from the start; it only pays for the
objects somebody looks at. Equality, hashing, ``repr`` and ``dataclasses.replace`` read the
fields through the descriptors and see no difference. (``vars(message)`` shows only what has
been built so far.)

Flags are an :class:`enum.IntFlag`; decoded values come from a precomputed table so decoding
does not pay for enum construction. Reserved fields are kept (default 0), so anything that
decodes re-encodes to the same bytes. Constructors check ranges and raise
:class:`~mip4.wire.errors.EncodeError` for a value the wire cannot carry; the RRQ/RRP fast
decoders bypass them.

====  ===============================================  =========================================
Type  Message                                          Layout source
====  ===============================================  =========================================
1     RegistrationRequest (RFC 5944 §3.3)              RFC; Wireshark; tshark; Solaris agent
3     RegistrationReply (RFC 5944 §3.4)                RFC; Wireshark; tshark; Solaris agent
4     TunnelData (RFC 3519 §3.3)                       Wireshark; scapy
7     RegistrationRevocation (RFC 3543 §3.1)           Wireshark
15    RevocationAck (RFC 3543 §3.2)                    Wireshark
16    HandoffRequest (RFC 4881)                        UNVERIFIED: RRQ layout assumed
17    HandoffReply (RFC 4881)                          UNVERIFIED: RRP layout assumed
18    RegionalRegistrationRequest (RFC 4857)           UNVERIFIED: RRQ layout, GFA for HA
19    RegionalRegistrationReply (RFC 4857)             UNVERIFIED: RRP layout assumed
20    FastBindingUpdate (RFC 4988 §5.1)                UNVERIFIED: RRQ layout assumed
21    FastBindingAck (RFC 4988 §5.2)                   UNVERIFIED: RRP layout assumed
22    GenericNotification (RFC 6098)                   UNVERIFIED (see class)
23    GenericNotificationAck (RFC 6098)                UNVERIFIED (see class)
255   ExperimentalMessage (RFC 4064)                   opaque after the Type octet
====  ===============================================  =========================================

"UNVERIFIED": Wireshark names the type but does not decode it, and the RFC text could not be
read while this was written; each class docstring says what was assumed and why.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntFlag
from ipaddress import IPv4Address
from typing import ClassVar, Protocol, Self

from .addr import ZERO, ipv4_from_int
from .errors import DecodeError, EncodeError
from .extensions import Extension, decode_extensions, encode_extensions, scan_extensions


class RegistrationFlags(IntFlag):
    """Registration Request flags (RFC 5944 §3.3)."""

    S = 0x80  #: simultaneous bindings
    B = 0x40  #: broadcast datagrams
    D = 0x20  #: decapsulation by mobile node (co-located care-of address)
    M = 0x10  #: minimal encapsulation (RFC 2004)
    G = 0x08  #: GRE encapsulation (RFC 2784)
    R = 0x04  #: "r": sent as zero, ignored on receipt (was V, Van Jacobson compression)
    T = 0x02  #: reverse tunnelling requested (RFC 3024)
    X = 0x01  #: "x": sent as zero, ignored on receipt


_REG_FLAGS = tuple(RegistrationFlags(i) for i in range(256))
NO_FLAGS = _REG_FLAGS[0]

#: Registration Lifetime meaning "infinity" (RFC 5944 §3.3).
INFINITE_LIFETIME = 0xFFFF

_RRQ = struct.Struct("!BBHIIIQ")
_RRP = struct.Struct("!BBHIIQ")
_NO_EXT: tuple[Extension, ...] = ()
_new = object.__new__
_setattr = object.__setattr__


class _FromRaw:
    """A field of a decoded message built from its ``raw`` bytes on first read, then cached
    in the instance ``__dict__`` (a non-data descriptor: the instance entry wins once set).
    The first read of any deferred field builds all of them (``group``), so a consumer that
    reads every field pays one descriptor call, not one per field. Instances made by the
    constructor have every field in their ``__dict__`` and never reach this. ``default`` is
    what reading the attribute on the class gives, as before."""

    __slots__ = ("default", "group", "name")

    def __init__(self, group: dict[str, Callable[[bytes], object]], default: object) -> None:
        self.group = group
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> object:
        if instance is None:
            return self.default if self.default is not None else self
        d = instance.__dict__
        raw = d["raw"]
        for name, build in self.group.items():
            if name not in d:
                d[name] = build(raw)
        return d[self.name]


def _address_at(offset: int) -> Callable[[bytes], object]:
    def build(raw: bytes) -> object:
        return ipv4_from_int(int.from_bytes(raw[offset : offset + 4], "big"))

    return build


def _extensions_at(offset: int) -> Callable[[bytes], object]:
    def build(raw: bytes) -> object:
        return decode_extensions(raw, offset)

    return build


def _make_lazy(cls: type, fields: dict[str, Callable[[bytes], object]]) -> None:
    """Install :class:`_FromRaw` descriptors for ``fields`` on the dataclass ``cls`` (after
    the dataclass decorator has read the defaults it needs for ``__init__``)."""
    for name in fields:
        default = cls.__dict__.get(name)
        desc = _FromRaw(fields, default)
        desc.__set_name__(cls, name)
        setattr(cls, name, desc)


@dataclass(frozen=True)
class Message:
    """Base class of every UDP-434 message."""

    TYPE: ClassVar[int] = -1

    def encode(self) -> bytes:
        raise NotImplementedError

    def encode_fixed(self) -> bytes:
        """The fixed part (everything before the extensions, or the whole message)."""
        raise NotImplementedError

    @classmethod
    def decode(cls, data: bytes) -> Self:
        raise NotImplementedError


def _extension_area(data: bytes, pos: int) -> tuple[Extension, ...]:
    if len(data) == pos:
        return _NO_EXT
    return decode_extensions(data, pos)


def _check_uint(owner: object, name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise EncodeError(f"{type(owner).__name__}.{name} = {value} does not fit {bits} bits")


def _check_addrs(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if not isinstance(value, IPv4Address):
            raise EncodeError(f"{type(owner).__name__}.{name} must be an IPv4Address: {value!r}")


def _check_extensions(owner: object, extensions: object) -> None:
    if not isinstance(extensions, tuple) or not all(isinstance(e, Extension) for e in extensions):
        raise EncodeError(f"{type(owner).__name__}.extensions must be a tuple of Extension")


class _RequestShaped(Protocol):
    @property
    def flags(self) -> int: ...
    @property
    def lifetime(self) -> int: ...
    @property
    def identification(self) -> int: ...
    @property
    def extensions(self) -> tuple[Extension, ...]: ...


class _ReplyShaped(Protocol):
    @property
    def code(self) -> int: ...
    @property
    def lifetime(self) -> int: ...
    @property
    def identification(self) -> int: ...
    @property
    def extensions(self) -> tuple[Extension, ...]: ...


def _check_request_fields(m: _RequestShaped) -> None:
    """Ranges of the fields every request-shaped message shares (RFC 5944 §3.3 layout)."""
    _check_uint(m, "flags", m.flags, 8)
    _check_uint(m, "lifetime", m.lifetime, 16)
    _check_uint(m, "identification", m.identification, 64)
    _check_extensions(m, m.extensions)


def _check_reply_fields(m: _ReplyShaped) -> None:
    """Ranges of the fields every reply-shaped message shares (RFC 5944 §3.4 layout)."""
    _check_uint(m, "code", m.code, 8)
    _check_uint(m, "lifetime", m.lifetime, 16)
    _check_uint(m, "identification", m.identification, 64)
    _check_extensions(m, m.extensions)


def _head(cls: type[Message], st: struct.Struct, data: bytes) -> tuple[int, ...]:
    """Unpack the fixed part of a ``cls`` message, checking its length and Type byte."""
    n = st.size
    if len(data) < n:
        raise DecodeError(f"{cls.__name__}: {len(data)} bytes, need {n}", len(data))
    values: tuple[int, ...] = st.unpack_from(data, 0)
    if values[0] != cls.TYPE:
        raise DecodeError(f"not a {cls.__name__} (type {values[0]}, expected {cls.TYPE})", 0)
    return values


def _with_extensions(m: Message) -> bytes:
    fixed = m.encode_fixed()
    exts: tuple[Extension, ...] = m.extensions  # type: ignore[attr-defined]
    if exts:
        return fixed + encode_extensions(exts)
    return fixed


@dataclass(frozen=True)
class RegistrationRequest(Message):
    """Registration Request, type 1 (RFC 5944 §3.3)::

    0 Type | 1 Flags | 2 Lifetime(2) | 4 Home Address | 8 Home Agent | 12 Care-of Address
    16 Identification(8) | 24 Extensions...
    """

    TYPE: ClassVar[int] = 1
    FIXED_LEN: ClassVar[int] = 24
    flags: RegistrationFlags
    lifetime: int
    home_address: IPv4Address
    home_agent: IPv4Address
    care_of_address: IPv4Address
    identification: int
    extensions: tuple[Extension, ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:  # not run by the fast decoder below
        _check_request_fields(self)
        _check_addrs(self, "home_address", "home_agent", "care_of_address")

    def encode_fixed(self) -> bytes:
        return _RRQ.pack(
            1,
            self.flags,
            self.lifetime,
            int(self.home_address),
            int(self.home_agent),
            int(self.care_of_address),
            self.identification,
        )

    def encode(self) -> bytes:
        if self.extensions:
            return self.encode_fixed() + encode_extensions(self.extensions)
        return self.encode_fixed()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) < 24:
            raise DecodeError(f"RegistrationRequest: {len(data)} bytes, need 24", len(data))
        t, flags, lifetime, hoa, ha, coa, ident = _RRQ.unpack_from(data, 0)
        if t != 1:
            raise DecodeError(f"not a RegistrationRequest (type {t}, expected 1)", 0)
        if scan_extensions(data, 24):
            # Every byte that could fail has been checked: addresses and extensions are
            # built from ``raw`` when first read (module docstring, "Lazy fields").
            o = _new(cls)
            _setattr(
                o,
                "__dict__",
                {
                    "flags": _REG_FLAGS[flags],
                    "lifetime": lifetime,
                    "identification": ident,
                    "raw": data,
                },
            )
            return o
        exts = decode_extensions(data, 24)  # raises the precise DecodeError, if any
        o = _new(cls)
        _setattr(
            o,
            "__dict__",
            {
                "flags": _REG_FLAGS[flags],
                "lifetime": lifetime,
                "home_address": ipv4_from_int(hoa),
                "home_agent": ipv4_from_int(ha),
                "care_of_address": ipv4_from_int(coa),
                "identification": ident,
                "extensions": exts,
                "raw": data,
            },
        )
        return o


@dataclass(frozen=True)
class RegistrationReply(Message):
    """Registration Reply, type 3 (RFC 5944 §3.4)::

    0 Type | 1 Code | 2 Lifetime(2) | 4 Home Address | 8 Home Agent
    12 Identification(8) | 20 Extensions...
    """

    TYPE: ClassVar[int] = 3
    FIXED_LEN: ClassVar[int] = 20
    code: int
    lifetime: int
    home_address: IPv4Address
    home_agent: IPv4Address
    identification: int
    extensions: tuple[Extension, ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:  # not run by the fast decoder below
        _check_reply_fields(self)
        _check_addrs(self, "home_address", "home_agent")

    def encode_fixed(self) -> bytes:
        return _RRP.pack(
            3,
            self.code,
            self.lifetime,
            int(self.home_address),
            int(self.home_agent),
            self.identification,
        )

    def encode(self) -> bytes:
        if self.extensions:
            return self.encode_fixed() + encode_extensions(self.extensions)
        return self.encode_fixed()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) < 20:
            raise DecodeError(f"RegistrationReply: {len(data)} bytes, need 20", len(data))
        t, code, lifetime, hoa, ha, ident = _RRP.unpack_from(data, 0)
        if t != 3:
            raise DecodeError(f"not a RegistrationReply (type {t}, expected 3)", 0)
        if scan_extensions(data, 20):
            o = _new(cls)  # lazy fields: see the module docstring
            _setattr(
                o,
                "__dict__",
                {"code": code, "lifetime": lifetime, "identification": ident, "raw": data},
            )
            return o
        exts = decode_extensions(data, 20)  # raises the precise DecodeError, if any
        o = _new(cls)
        _setattr(
            o,
            "__dict__",
            {
                "code": code,
                "lifetime": lifetime,
                "home_address": ipv4_from_int(hoa),
                "home_agent": ipv4_from_int(ha),
                "identification": ident,
                "extensions": exts,
                "raw": data,
            },
        )
        return o


_make_lazy(
    RegistrationRequest,
    {
        "home_address": _address_at(4),
        "home_agent": _address_at(8),
        "care_of_address": _address_at(12),
        "extensions": _extensions_at(24),
    },
)
_make_lazy(
    RegistrationReply,
    {
        "home_address": _address_at(4),
        "home_agent": _address_at(8),
        "extensions": _extensions_at(20),
    },
)


# ----------------------------------------------------------------------------------------
# NAT traversal (RFC 3519)
# ----------------------------------------------------------------------------------------

_TUNNEL = struct.Struct("!BBH")


@dataclass(frozen=True)
class TunnelData(Message):
    """Tunnel Data message, type 4 (RFC 3519 §3.3): an IP-in-UDP packet on port 434::

        0 Type | 1 Next Header (4 IP, 47 GRE, 55 minimal) | 2 Reserved(2) | 4 payload...

    Verified: Wireshark ``packet-mip.c``, scapy ``MobileIPTunnelData``. ``payload`` is the
    tunnelled packet (or GRE / minimal-encapsulation header and packet)."""

    TYPE: ClassVar[int] = 4
    FIXED_LEN: ClassVar[int] = 4
    next_header: int
    payload: bytes
    reserved: int = 0

    def __post_init__(self) -> None:
        _check_uint(self, "next_header", self.next_header, 8)
        _check_uint(self, "reserved", self.reserved, 16)

    def encode_fixed(self) -> bytes:
        return _TUNNEL.pack(4, self.next_header, self.reserved)

    def encode(self) -> bytes:
        return self.encode_fixed() + self.payload

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, next_header, reserved = _head(cls, _TUNNEL, data)
        return cls(next_header, bytes(data[4:]), reserved)


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
        _check_uint(self, "flags", self.flags, 16)
        _check_uint(self, "revocation_id", self.revocation_id, 32)
        _check_uint(self, "reserved", self.reserved, 8)
        _check_addrs(self, "home_address", "home_domain_address", "foreign_domain_address")
        _check_extensions(self, self.extensions)

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
        return _with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, reserved, flags, hoa, hda, fda, rev_id = _head(cls, _REVOCATION, data)
        return cls(
            RevocationFlags(flags),
            ipv4_from_int(hoa),
            ipv4_from_int(hda),
            ipv4_from_int(fda),
            rev_id,
            _extension_area(data, 20),
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
        _check_uint(self, "flags", self.flags, 16)
        _check_uint(self, "revocation_id", self.revocation_id, 32)
        _check_uint(self, "reserved", self.reserved, 8)
        _check_addrs(self, "home_address")
        _check_extensions(self, self.extensions)

    def encode_fixed(self) -> bytes:
        return _REVOCATION_ACK.pack(
            15, self.reserved, self.flags, int(self.home_address), self.revocation_id
        )

    def encode(self) -> bytes:
        return _with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, reserved, flags, hoa, rev_id = _head(cls, _REVOCATION_ACK, data)
        return cls(
            RevocationAckFlags(flags),
            ipv4_from_int(hoa),
            rev_id,
            _extension_area(data, 12),
            reserved,
            data,
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
        _check_request_fields(self)
        _check_addrs(self, "home_address", "home_agent", "care_of_address")

    def encode_fixed(self) -> bytes:
        return _RRQ.pack(
            self.TYPE,
            self.flags,
            self.lifetime,
            int(self.home_address),
            int(self.home_agent),
            int(self.care_of_address),
            self.identification,
        )

    def encode(self) -> bytes:
        return _with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, flags, lifetime, hoa, ha, coa, ident = _head(cls, _RRQ, data)
        return cls(
            flags,
            lifetime,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ipv4_from_int(coa),
            ident,
            _extension_area(data, 24),
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
        _check_reply_fields(self)
        _check_addrs(self, "home_address", "home_agent")

    def encode_fixed(self) -> bytes:
        return _RRP.pack(
            self.TYPE,
            self.code,
            self.lifetime,
            int(self.home_address),
            int(self.home_agent),
            self.identification,
        )

    def encode(self) -> bytes:
        return _with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, code, lifetime, hoa, ha, ident = _head(cls, _RRP, data)
        return cls(
            code,
            lifetime,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ident,
            _extension_area(data, 20),
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
        _check_request_fields(self)
        _check_addrs(self, "home_address", "gfa_address", "care_of_address")

    def encode_fixed(self) -> bytes:
        return _RRQ.pack(
            self.TYPE,
            self.flags,
            self.lifetime,
            int(self.home_address),
            int(self.gfa_address),
            int(self.care_of_address),
            self.identification,
        )

    def encode(self) -> bytes:
        return _with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, flags, lifetime, hoa, gfa, coa, ident = _head(cls, _RRQ, data)
        return cls(
            _REG_FLAGS[flags],
            lifetime,
            ipv4_from_int(hoa),
            ipv4_from_int(gfa),
            ipv4_from_int(coa),
            ident,
            _extension_area(data, 24),
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
        _check_request_fields(self)
        _check_addrs(self, "home_address", "home_agent", "care_of_address")

    def encode_fixed(self) -> bytes:
        return _RRQ.pack(
            self.TYPE,
            self.flags,
            self.lifetime,
            int(self.home_address),
            int(self.home_agent),
            int(self.care_of_address),
            self.identification,
        )

    def encode(self) -> bytes:
        return _with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, flags, lifetime, hoa, ha, coa, ident = _head(cls, _RRQ, data)
        return cls(
            _REG_FLAGS[flags],
            lifetime,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ipv4_from_int(coa),
            ident,
            _extension_area(data, 24),
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
    _check_uint(m, "subtype", m.subtype, 8)
    _check_uint(m, "direction", m.direction, 8)
    _check_uint(m, "code" if isinstance(m, GenericNotificationAck) else "reserved", octet3, 8)
    _check_uint(m, "identification", m.identification, 64)
    _check_addrs(m, "home_address", "home_agent", "care_of_address")
    _check_extensions(m, m.extensions)


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
        return _with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, subtype, md, reserved, hoa, ha, coa, ident = _head(cls, _NOTIFY, data)
        return cls(
            subtype,
            md,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ipv4_from_int(coa),
            ident,
            _extension_area(data, 24),
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
        return _with_extensions(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, subtype, md, code, hoa, ha, coa, ident = _head(cls, _NOTIFY, data)
        return cls(
            subtype,
            md,
            code,
            ipv4_from_int(hoa),
            ipv4_from_int(ha),
            ipv4_from_int(coa),
            ident,
            _extension_area(data, 24),
            data,
        )


# ----------------------------------------------------------------------------------------
# Experimental (RFC 4064)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentalMessage(Message):
    """Mobile IP message for experimental use, type 255 (RFC 4064; section number
    unverified). RFC 4064 leaves
    everything after the Type octet to the experiment, so it is kept as opaque ``data``."""

    TYPE: ClassVar[int] = 255
    FIXED_LEN: ClassVar[int] = 1
    data: bytes = b""

    def encode_fixed(self) -> bytes:
        return b"\xff"

    def encode(self) -> bytes:
        return b"\xff" + self.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if not data:
            raise DecodeError("ExperimentalMessage: 0 bytes, need 1", 0)
        if data[0] != 255:
            raise DecodeError(f"not an ExperimentalMessage (type {data[0]}, expected 255)", 0)
        return cls(bytes(data[1:]))


MESSAGES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        RegistrationRequest,
        RegistrationReply,
        TunnelData,
        RegistrationRevocation,
        RevocationAck,
        HandoffRequest,
        HandoffReply,
        RegionalRegistrationRequest,
        RegionalRegistrationReply,
        FastBindingUpdate,
        FastBindingAck,
        GenericNotification,
        GenericNotificationAck,
        ExperimentalMessage,
    )
}


def decode_message(data: bytes) -> Message:
    """Decode one UDP-434 payload. Raises :class:`DecodeError` for malformed input and for
    an unknown message type (naming it)."""
    if not data:
        raise DecodeError("empty message", 0)
    cls = MESSAGES.get(data[0])
    if cls is None:
        raise DecodeError(f"unknown Mobile IP message type {data[0]}", 0)
    return cls.decode(data)


__all__ = [
    "INFINITE_LIFETIME",
    "MESSAGES",
    "NO_FLAGS",
    "ZERO",
    "ExperimentalMessage",
    "FastBindingAck",
    "FastBindingUpdate",
    "GenericNotification",
    "GenericNotificationAck",
    "HandoffReply",
    "HandoffRequest",
    "Message",
    "NotificationDirection",
    "RegionalRegistrationReply",
    "RegionalRegistrationRequest",
    "RegistrationFlags",
    "RegistrationReply",
    "RegistrationRequest",
    "RegistrationRevocation",
    "RevocationAck",
    "RevocationAckFlags",
    "RevocationFlags",
    "TunnelData",
    "decode_message",
]
