"""The base of every UDP-434 message (:class:`Message`) and what the message codecs share:
the Registration Request/Reply header layouts and flags (RFC 5944 §3.3, §3.4) that the
request- and reply-shaped messages of the MIP4 WG reuse, range checks, and the lazy fields.

Lazy fields. Registration Requests and Replies are the hot path (a home agent decodes one
per registration, a foreign agent relays them mostly untouched). Their decoders check every
byte that could make decoding fail -- the fixed header and, with
:func:`~mip4.wire.extensions.scan_extensions`, the framing of each extension -- and then, when
every extension is of a type that cannot fail to decode once framed, leave the address fields
and ``extensions`` out of the instance: a :class:`FromRaw` descriptor on the class builds
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
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntFlag
from ipaddress import IPv4Address
from typing import ClassVar, Protocol, Self

from .errors import DecodeError, EncodeError
from .ext_base import Extension, check_uint
from .extensions import decode_extensions, encode_extensions

_new = object.__new__


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

    def __and__(self, other: int) -> RegistrationFlags:
        # The hot path tests flags with ``&`` several times per request; ``enum.Flag``'s own
        # operator builds the result through the enum machinery (~1 us on Python 3.11).
        # Every value of the 8-bit field is precomputed (REG_FLAGS), so look it up instead:
        # the same member, the same result.
        if type(other) is int or type(other) is RegistrationFlags:
            table = _FLAG_TABLE
            if table:
                return table[int.__and__(self, other)]
        return super().__and__(other)

    __rand__ = __and__


#: every value of the flags byte (filled once the members exist; see ``__and__``)
_FLAG_TABLE: list[RegistrationFlags] = []
REG_FLAGS = tuple(RegistrationFlags(i) for i in range(256))
_FLAG_TABLE.extend(REG_FLAGS)
NO_FLAGS = REG_FLAGS[0]

#: Registration Lifetime meaning "infinity" (RFC 5944 §3.3).
INFINITE_LIFETIME = 0xFFFF

RRQ_HEADER = struct.Struct("!BBHIIIQ")
RRP_HEADER = struct.Struct("!BBHIIQ")
NO_EXTENSIONS: tuple[Extension, ...] = ()


class FromRaw:
    """A field of a decoded message built from its ``raw`` bytes on first read, then cached
    in the instance ``__dict__`` (a non-data descriptor: the instance entry wins once set).
    The first read of any deferred field builds all of them (``group``), so a consumer that
    reads every field pays one descriptor call, not one per field. Instances made by the
    constructor have every field in their ``__dict__`` and never reach this. ``default`` is
    what reading the attribute on the class gives, as before."""

    __slots__ = ("build_all", "default", "group", "name")

    def __init__(
        self,
        group: dict[str, Callable[[bytes], object]],
        default: object,
        build_all: Callable[[bytes], dict[str, object]] | None = None,
    ) -> None:
        self.group = group
        self.default = default
        self.name = ""
        #: builds every field of the group in one call (the same values as ``group``'s
        #: builders one by one; a message type may give one: issue 13)
        self.build_all = build_all

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> object:
        if instance is None:
            return self.default if self.default is not None else self
        d = instance.__dict__
        raw = d["raw"]
        if self.build_all is not None:
            for name, value in self.build_all(raw).items():
                if name not in d:
                    d[name] = value
            return d[self.name]
        for name, build in self.group.items():
            if name not in d:
                d[name] = build(raw)
        return d[self.name]


def address_at(offset: int) -> Callable[[bytes], object]:
    unpack = struct.Struct(f"!{offset}xI").unpack_from

    def build(raw: bytes) -> object:
        # ipv4_from_int inlined: one call less per address (three per decoded request)
        a = _new(IPv4Address)
        a._ip = unpack(raw)[0]  # type: ignore[attr-defined]  # the slot __init__ fills
        return a

    return build


def extensions_at(offset: int) -> Callable[[bytes], object]:
    def build(raw: bytes) -> object:
        return decode_extensions(raw, offset)

    return build


def make_lazy(
    cls: type,
    fields: dict[str, Callable[[bytes], object]],
    build_all: Callable[[bytes], dict[str, object]] | None = None,
) -> None:
    """Install :class:`FromRaw` descriptors for ``fields`` on the dataclass ``cls`` (after
    the dataclass decorator has read the defaults it needs for ``__init__``); with
    ``build_all``, the first read builds them all with that one call."""
    for name in fields:
        default = cls.__dict__.get(name)
        desc = FromRaw(fields, default, build_all)
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


def extension_area(data: bytes, pos: int) -> tuple[Extension, ...]:
    if len(data) == pos:
        return NO_EXTENSIONS
    return decode_extensions(data, pos)


def check_addrs(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if not isinstance(value, IPv4Address):
            raise EncodeError(f"{type(owner).__name__}.{name} must be an IPv4Address: {value!r}")


def check_extensions(owner: object, extensions: object) -> None:
    if not isinstance(extensions, tuple) or not all(isinstance(e, Extension) for e in extensions):
        raise EncodeError(f"{type(owner).__name__}.extensions must be a tuple of Extension")


class RequestShaped(Protocol):
    @property
    def flags(self) -> int: ...
    @property
    def lifetime(self) -> int: ...
    @property
    def identification(self) -> int: ...
    @property
    def extensions(self) -> tuple[Extension, ...]: ...


class ReplyShaped(Protocol):
    @property
    def code(self) -> int: ...
    @property
    def lifetime(self) -> int: ...
    @property
    def identification(self) -> int: ...
    @property
    def extensions(self) -> tuple[Extension, ...]: ...


def check_request_fields(m: RequestShaped) -> None:
    """Ranges of the fields every request-shaped message shares (RFC 5944 §3.3 layout)."""
    check_uint(m, "flags", m.flags, 8)
    check_uint(m, "lifetime", m.lifetime, 16)
    check_uint(m, "identification", m.identification, 64)
    check_extensions(m, m.extensions)


def check_reply_fields(m: ReplyShaped) -> None:
    """Ranges of the fields every reply-shaped message shares (RFC 5944 §3.4 layout)."""
    check_uint(m, "code", m.code, 8)
    check_uint(m, "lifetime", m.lifetime, 16)
    check_uint(m, "identification", m.identification, 64)
    check_extensions(m, m.extensions)


def unpack_head(cls: type[Message], st: struct.Struct, data: bytes) -> tuple[int, ...]:
    """Unpack the fixed part of a ``cls`` message, checking its length and Type byte."""
    n = st.size
    if len(data) < n:
        raise DecodeError(f"{cls.__name__}: {len(data)} bytes, need {n}", len(data))
    values: tuple[int, ...] = st.unpack_from(data, 0)
    if values[0] != cls.TYPE:
        raise DecodeError(f"not a {cls.__name__} (type {values[0]}, expected {cls.TYPE})", 0)
    return values


def with_extensions(m: Message) -> bytes:
    fixed = m.encode_fixed()
    exts: tuple[Extension, ...] = m.extensions  # type: ignore[attr-defined]
    if exts:
        return fixed + encode_extensions(exts)
    return fixed
