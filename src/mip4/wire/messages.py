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

Flags are an :class:`enum.IntFlag`; decoded values come from a precomputed table so decoding
does not pay for enum construction.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntFlag
from ipaddress import IPv4Address
from typing import ClassVar, Self

from .addr import ZERO, ipv4_from_int
from .errors import DecodeError
from .extensions import Extension, decode_extensions, encode_extensions


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


@dataclass(frozen=True)
class Message:
    """Base class of every UDP-434 message."""

    TYPE: ClassVar[int] = -1

    def encode(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode(cls, data: bytes) -> Self:
        raise NotImplementedError


def _extension_area(data: bytes, pos: int) -> tuple[Extension, ...]:
    if len(data) == pos:
        return _NO_EXT
    return decode_extensions(data, pos)


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
            raise DecodeError(f"Registration Request: {len(data)} bytes, need 24", len(data))
        t, flags, lifetime, hoa, ha, coa, ident = _RRQ.unpack_from(data, 0)
        if t != 1:
            raise DecodeError(f"not a Registration Request (type {t})", 0)
        exts = _extension_area(data, 24)
        # Hot path: build the frozen object without its field-by-field __init__.
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
            raise DecodeError(f"Registration Reply: {len(data)} bytes, need 20", len(data))
        t, code, lifetime, hoa, ha, ident = _RRP.unpack_from(data, 0)
        if t != 3:
            raise DecodeError(f"not a Registration Reply (type {t})", 0)
        exts = _extension_area(data, 20)
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


MESSAGES: dict[int, type[Message]] = {
    RegistrationRequest.TYPE: RegistrationRequest,
    RegistrationReply.TYPE: RegistrationReply,
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
    "Message",
    "RegistrationFlags",
    "RegistrationReply",
    "RegistrationRequest",
    "decode_message",
]
