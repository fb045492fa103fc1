"""Registration Request and Registration Reply (RFC 5944 §3.3, §3.4): the hot path.

Their decoders defer the address fields and the extensions (see :mod:`mip4.wire.msg_base`,
"Lazy fields") and build the frozen object by assigning its ``__dict__`` at once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import ClassVar, Self

from .addr import ipv4_from_int
from .errors import DecodeError
from .ext_base import Extension
from .extensions import decode_extensions, encode_extensions, scan_extensions
from .msg_base import (
    REG_FLAGS,
    RRP_HEADER,
    RRQ_HEADER,
    Message,
    RegistrationFlags,
    address_at,
    check_addrs,
    check_reply_fields,
    check_request_fields,
    extensions_at,
    make_lazy,
)

_new = object.__new__
_setattr = object.__setattr__


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
        check_request_fields(self)
        check_addrs(self, "home_address", "home_agent", "care_of_address")

    def encode_fixed(self) -> bytes:
        return RRQ_HEADER.pack(
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
        t, flags, lifetime, hoa, ha, coa, ident = RRQ_HEADER.unpack_from(data, 0)
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
                    "flags": REG_FLAGS[flags],
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
                "flags": REG_FLAGS[flags],
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
        check_reply_fields(self)
        check_addrs(self, "home_address", "home_agent")

    @classmethod
    def of(
        cls,
        code: int,
        lifetime: int,
        home_address: IPv4Address,
        home_agent: IPv4Address,
        identification: int,
        extensions: tuple[Extension, ...] = (),
    ) -> Self:
        """A reply built by an agent from values it already holds in range (a
        :class:`~mip4.wire.codes.ReplyCode`, a lifetime and an Identification taken from a
        decoded request): the constructor's range and type checks are skipped (a home
        agent builds one per request). Encoding still fails on a value the wire cannot
        carry."""
        o = _new(cls)
        _setattr(
            o,
            "__dict__",
            {
                "code": code,
                "lifetime": lifetime,
                "home_address": home_address,
                "home_agent": home_agent,
                "identification": identification,
                "extensions": extensions,
                "raw": b"",
            },
        )
        return o

    def encode_fixed(self) -> bytes:
        return RRP_HEADER.pack(
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
        t, code, lifetime, hoa, ha, ident = RRP_HEADER.unpack_from(data, 0)
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


_RRQ_ADDRESSES = struct.Struct("!4xIII").unpack_from


def _rrq_fields(raw: bytes) -> dict[str, object]:
    """A decoded request's deferred fields in one call (what ``address_at`` and
    ``extensions_at`` build one by one; ``tests/wire/test_fast_paths.py``)."""
    hoa, ha, coa = _RRQ_ADDRESSES(raw)
    h = _new(IPv4Address)
    h._ip = hoa  # type: ignore[attr-defined]  # the slot __init__ fills
    a = _new(IPv4Address)
    a._ip = ha  # type: ignore[attr-defined]
    c = _new(IPv4Address)
    c._ip = coa  # type: ignore[attr-defined]
    return {
        "home_address": h,
        "home_agent": a,
        "care_of_address": c,
        "extensions": decode_extensions(raw, 24),
    }


make_lazy(
    RegistrationRequest,
    {
        "home_address": address_at(4),
        "home_agent": address_at(8),
        "care_of_address": address_at(12),
        "extensions": extensions_at(24),
    },
    _rrq_fields,
)
make_lazy(
    RegistrationReply,
    {
        "home_address": address_at(4),
        "home_agent": address_at(8),
        "extensions": extensions_at(20),
    },
)
