"""Authentication, NAI and challenge extensions: RFC 5944 §3.5, RFC 2794, RFC 4721.

====  ===================================  ==========================
type  class                                 RFC
====  ===================================  ==========================
32    :class:`MobileHomeAuthExtension`      RFC 5944 §3.5.2
33    :class:`MobileForeignAuthExtension`   RFC 5944 §3.5.3
34    :class:`ForeignHomeAuthExtension`     RFC 5944 §3.5.4
36    :class:`GeneralizedAuthExtension`     RFC 4721 §5 (long format)
131   :class:`MobileNodeNAIExtension`       RFC 2794 §2
132   :class:`MobileForeignChallengeExtension`  RFC 4721 §4
====  ===================================  ==========================

Every registration carries one of these, so their decoders are the hot path: they build the
frozen object without running its checking ``__init__``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from .errors import DecodeError
from .ext_base import LONG, Extension, ExtFormat, check_len, check_uint

_U32 = struct.Struct("!I")
_new = object.__new__
_setattr = object.__setattr__


# ----------------------------------------------------------------------------------------
# Authentication extensions (RFC 5944 §3.5)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AuthExtension(Extension):
    """``SPI(4) Authenticator[Length-4]``; RFC 5944 §3.5.1."""

    MIN_BODY: ClassVar[int | None] = 4
    spi: int
    authenticator: bytes

    def __post_init__(self) -> None:  # not run by the fast decoder below
        check_uint(self, "spi", self.spi, 32)
        check_len(self, "authenticator", self.authenticator, 251)

    def encode_body(self) -> bytes:
        return _U32.pack(self.spi) + self.authenticator

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start < 4:
            raise DecodeError(
                f"authentication extension {cls.TYPE}: length {end - start} < 4 (no SPI)",
                start - 2,
            )
        # Hot path (every registration carries one): build without the frozen __init__.
        o = _new(cls)
        _setattr(
            o,
            "__dict__",
            {"spi": _U32.unpack_from(data, start)[0], "authenticator": data[start + 4 : end]},
        )
        return o


@dataclass(frozen=True)
class MobileHomeAuthExtension(_AuthExtension):
    """Mobile-Home Authentication Extension, type 32 (RFC 5944 §3.5.2). Required in every
    Registration Request and Reply."""

    TYPE: ClassVar[int] = 32


@dataclass(frozen=True)
class MobileForeignAuthExtension(_AuthExtension):
    """Mobile-Foreign Authentication Extension, type 33 (RFC 5944 §3.5.3)."""

    TYPE: ClassVar[int] = 33


@dataclass(frozen=True)
class ForeignHomeAuthExtension(_AuthExtension):
    """Foreign-Home Authentication Extension, type 34 (RFC 5944 §3.5.4)."""

    TYPE: ClassVar[int] = 34


class GeneralizedAuthSubtype:
    """Subtypes of extension 36 (IANA; RFC 4721 §5, RFC 4857, RFC 4988)."""

    MN_AAA = 1
    FA_FA = 2
    MN_GFA = 3
    MN_PAR = 4


@dataclass(frozen=True)
class GeneralizedAuthExtension(Extension):
    """Generalized Mobile IP Authentication Extension, type 36, long format (RFC 4721 §5):
    ``Type Subtype Length(2) SPI(4) Authenticator``. Subtype 1 is MN-AAA."""

    TYPE: ClassVar[int] = 36
    FORMAT: ClassVar[ExtFormat] = LONG
    MIN_BODY: ClassVar[int | None] = 4
    subtype: int
    spi: int
    authenticator: bytes

    def __post_init__(self) -> None:
        check_uint(self, "subtype", self.subtype, 8)
        check_uint(self, "spi", self.spi, 32)
        check_len(self, "authenticator", self.authenticator, 0xFFFF - 4)

    @property
    def header_subtype(self) -> int:
        return self.subtype

    def encode_body(self) -> bytes:
        return _U32.pack(self.spi) + self.authenticator

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        if end - start < 4:
            raise DecodeError(f"generalized authentication: length {end - start} < 4", start - 4)
        o = _new(cls)  # hot path (MN-AAA): skip the checking __init__
        _setattr(
            o,
            "__dict__",
            {
                "subtype": subtype,
                "spi": _U32.unpack_from(data, start)[0],
                "authenticator": data[start + 4 : end],
            },
        )
        return o


#: The authentication extensions whose authenticator covers the message up to and including
#: their own SPI (RFC 5944 §3.5.1 and RFC 4721 §5).
AUTH_EXTENSION_TYPES = frozenset({32, 33, 34, 36})


# ----------------------------------------------------------------------------------------
# NAI and challenge (RFC 2794, RFC 4721)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MobileNodeNAIExtension(Extension):
    """Mobile Node NAI Extension, type 131 (RFC 2794 §2). The NAI is UTF-8 text (RFC 4282)."""

    TYPE: ClassVar[int] = 131
    MIN_BODY: ClassVar[int | None] = 0
    nai: bytes

    def __post_init__(self) -> None:
        check_len(self, "nai", self.nai, 255)

    def encode_body(self) -> bytes:
        return self.nai

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        o = _new(cls)  # hot path (AAA registrations): skip the checking __init__
        _setattr(o, "__dict__", {"nai": data[start:end]})
        return o


@dataclass(frozen=True)
class MobileForeignChallengeExtension(Extension):
    """MN-FA Challenge Extension, type 132 (RFC 4721 §4): the challenge the mobile node copies
    from the agent advertisement into its request."""

    TYPE: ClassVar[int] = 132
    MIN_BODY: ClassVar[int | None] = 0
    challenge: bytes

    def __post_init__(self) -> None:
        check_len(self, "challenge", self.challenge, 255)

    def encode_body(self) -> bytes:
        return self.challenge

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        o = _new(cls)  # hot path (challenge/response): skip the checking __init__
        _setattr(o, "__dict__", {"challenge": data[start:end]})
        return o


__all__ = [
    "AUTH_EXTENSION_TYPES",
    "ForeignHomeAuthExtension",
    "GeneralizedAuthExtension",
    "GeneralizedAuthSubtype",
    "MobileForeignAuthExtension",
    "MobileForeignChallengeExtension",
    "MobileHomeAuthExtension",
    "MobileNodeNAIExtension",
]
