"""Registration extensions (RFC 5944 §1.9--§1.12, §3.5) and their registry.

Theory of operation
-------------------
Every extension is a frozen dataclass whose class attributes say its ``TYPE`` and its header
``FORMAT``:

* ``SHORT`` -- ``Type(1) Length(1) Data[Length]``, the type-length-value form (RFC 5944
  §1.10); its "short extension format" variant (§1.12) starts the data with a Sub-Type byte,
  which the classes concerned keep as a ``subtype`` field;
* ``LONG``  -- ``Type(1) Subtype(1) Length(2) Data[Length]`` (RFC 5944 §1.11, "long
  extension format"). The second byte is the subtype (36 generalized authentication, 40--43,
  45, 48) or reserved (37/38 CVSE); the class keeps it (``subtype`` or ``reserved``) so the
  message re-encodes byte for byte.

A class implements ``encode_body()`` and ``decode_body(data, start, end, subtype)``; the
header is the base class's job. :data:`REGISTRATION_EXTENSIONS` maps type numbers to classes.
:func:`decode_extensions` walks a message's extension area:

* a known type is decoded by its class;
* an unknown type 0--127 raises :class:`UnknownExtensionError` -- RFC 5944 §1.9: the whole
  message MUST be silently discarded;
* an unknown type 128--255 is kept as a :class:`RawExtension` (short format) so that the
  protocol can skip it and the message still re-encodes byte for byte.

Every field the wire carries is kept, reserved fields included, so that for every byte string
``b`` that decodes, re-encoding gives ``b`` back. Where a type has several subtype layouts,
the registry entry is a small dispatching base class whose ``decode_body`` picks the subclass
for the subtype (:class:`~mip4.wire.ext_mobility.MobileNetworkExtension`); where a type has one
layout whose body depends on the subtype, the class keeps ``subtype`` and a typed body
(:class:`~mip4.wire.ext_keys.KeyGenNonceReply`).

The classes for the MIP4 WG extensions live in ``ext_vendor`` (RFC 3115, RFC 4064),
``ext_keys`` (RFC 3957), ``ext_tunnel`` (RFC 3519, RFC 3024, RFC 6245) and ``ext_mobility``
(RFC 3543, 3846, 4433, 4636, 4857, 4881, 4917, 5177, 5265); importing this module registers
them all.

Constructors check ranges (``__post_init__``) and raise :class:`EncodeError` for a value the
wire cannot carry; the hot decoders (authentication extensions) bypass ``__init__`` and so
pay nothing for it.

:func:`extension_offsets` finds where each extension of a decoded message starts, so
authenticators are verified over the bytes as received (see :mod:`mip4.security.auth`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Self

from .errors import DecodeError, EncodeError, UnknownExtensionError


class ExtFormat(Enum):
    SHORT = 2  # header bytes
    LONG = 4

    @property
    def header_len(self) -> int:
        return self.value


SHORT = ExtFormat.SHORT
LONG = ExtFormat.LONG
_LONG_HDR = struct.Struct("!BBH")
_U32 = struct.Struct("!I")
_new = object.__new__
_setattr = object.__setattr__


def check_uint(owner: object, name: str, value: int, bits: int) -> None:
    """Raise :class:`EncodeError` unless ``value`` fits an unsigned ``bits``-bit field."""
    if not 0 <= value < (1 << bits):
        raise EncodeError(f"{type(owner).__name__}.{name} = {value} does not fit {bits} bits")


def check_len(owner: object, name: str, value: bytes, limit: int) -> None:
    """Raise :class:`EncodeError` if ``value`` is longer than ``limit`` bytes."""
    if len(value) > limit:
        raise EncodeError(f"{type(owner).__name__}.{name}: {len(value)} bytes, at most {limit} fit")


def body_length_error(cls: type[Extension], start: int, end: int, need: str) -> DecodeError:
    """A :class:`DecodeError` for an extension body of the wrong length, located at the
    extension's first byte (its Type)."""
    return DecodeError(
        f"{cls.__name__} (type {cls.TYPE}): body of {end - start} byte(s), {need}",
        start - cls.FORMAT.header_len,
    )


@dataclass(frozen=True)
class Extension:
    """Base class of every extension. Subclasses set ``TYPE`` and ``FORMAT``."""

    TYPE: ClassVar[int] = -1
    FORMAT: ClassVar[ExtFormat] = SHORT
    #: When not ``None``: ``decode_body`` succeeds for every body of at least this many bytes
    #: (the format's own maximum aside), so checking the framing is enough to know the
    #: extension decodes, and a message may build it later (see :func:`scan_extensions`).
    MIN_BODY: ClassVar[int | None] = None

    @property
    def ext_type(self) -> int:
        return self.TYPE

    @property
    def header_subtype(self) -> int:
        """The byte after the type in a long-format header (subtype or reserved)."""
        return 0

    def encode_body(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        raise NotImplementedError

    def encode(self) -> bytes:
        body = self.encode_body()
        n = len(body)
        if self.FORMAT is SHORT:
            if n > 255:
                raise EncodeError(f"extension {self.ext_type}: body of {n} bytes exceeds 255")
            return bytes((self.ext_type, n)) + body
        if n > 0xFFFF:
            raise EncodeError(f"extension {self.ext_type}: body of {n} bytes exceeds 65535")
        return _LONG_HDR.pack(self.ext_type, self.header_subtype, n) + body


@dataclass(frozen=True)
class RawExtension(Extension):
    """An extension of a skippable type (128--255) this implementation does not interpret.
    RFC 5944 §1.9: it is ignored by the protocol but kept so the message re-encodes exactly."""

    raw_type: int
    data: bytes

    def __post_init__(self) -> None:
        check_uint(self, "raw_type", self.raw_type, 8)
        check_len(self, "data", self.data, 255)

    @property
    def ext_type(self) -> int:
        return self.raw_type

    def encode_body(self) -> bytes:
        return self.data


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


# ----------------------------------------------------------------------------------------
# Registry and the walk over an extension area
# ----------------------------------------------------------------------------------------

REGISTRATION_EXTENSIONS: dict[int, type[Extension]] = {}

_BodyDecoder = Callable[[bytes, int, int, int], Extension]
#: type -> (bound decode_body, long format?): what decode_extensions needs, looked up once.
#: Kept in step with REGISTRATION_EXTENSIONS by register(), the only way to add a type.
_DECODERS: dict[int, tuple[_BodyDecoder, bool]] = {}
#: type -> (long format?, MIN_BODY) for the types whose bodies always decode once framed;
#: the table :func:`scan_extensions` uses.
_SCAN: dict[int, tuple[bool, int]] = {}


def register(*classes: type[Extension]) -> None:
    """Add extension classes to :data:`REGISTRATION_EXTENSIONS` (use this, not item
    assignment: it also fills the decoder's lookup table)."""
    for cls in classes:
        if cls.TYPE in REGISTRATION_EXTENSIONS and REGISTRATION_EXTENSIONS[cls.TYPE] is not cls:
            raise RuntimeError(f"extension type {cls.TYPE} registered twice")
        REGISTRATION_EXTENSIONS[cls.TYPE] = cls
        _DECODERS[cls.TYPE] = (cls.decode_body, cls.FORMAT is LONG)
        if cls.MIN_BODY is not None:
            _SCAN[cls.TYPE] = (cls.FORMAT is LONG, cls.MIN_BODY)
        else:
            _SCAN.pop(cls.TYPE, None)


register(
    MobileHomeAuthExtension,
    MobileForeignAuthExtension,
    ForeignHomeAuthExtension,
    GeneralizedAuthExtension,
    MobileNodeNAIExtension,
    MobileForeignChallengeExtension,
)

_EMPTY: tuple[Extension, ...] = ()


def decode_extensions(
    data: bytes,
    pos: int,
    registry: Mapping[int, type[Extension]] = REGISTRATION_EXTENSIONS,
) -> tuple[Extension, ...]:
    """Decode the extensions in ``data[pos:]``. Raises :class:`DecodeError`, or
    :class:`UnknownExtensionError` for an unknown non-skippable type (RFC 5944 §1.9)."""
    end = len(data)
    if pos >= end:
        return _EMPTY
    if registry is REGISTRATION_EXTENSIONS and len(_DECODERS) == len(registry):
        decoders = _DECODERS
    else:
        decoders = {t: (c.decode_body, c.FORMAT is LONG) for t, c in registry.items()}
    exts: list[Extension] = []
    append = exts.append
    get = decoders.get
    while pos < end:
        t = data[pos]
        entry = get(t)
        if entry is None:
            if t < 128:
                raise UnknownExtensionError(t, pos)
            is_long = False
        else:
            is_long = entry[1]
        if is_long:
            if pos + 4 > end:
                raise DecodeError(f"truncated long header of extension {t}", pos)
            _, subtype, length = _LONG_HDR.unpack_from(data, pos)
            start = pos + 4
            stop = start + length
        else:
            if pos + 2 > end:
                raise DecodeError(f"truncated header of extension {t}", pos)
            subtype = 0
            start = pos + 2
            stop = start + data[pos + 1]
        if stop > end:
            raise DecodeError(
                f"extension {t}: length {stop - start} overruns the message "
                f"({end - start} byte(s) left)",
                pos,
            )
        if entry is None:
            append(RawExtension(t, bytes(data[start:stop])))
        else:
            append(entry[0](data, start, stop, subtype))
        pos = stop
    return tuple(exts)


def scan_extensions(data: bytes, pos: int) -> bool:
    """Whether the registration extension area ``data[pos:]`` is sure to decode: the
    framing is sound and every extension is of a type that decodes once framed
    (``MIN_BODY``) or of an unknown skippable type (128--255).

    ``True`` lets a message defer building its extensions until they are first used: the
    bytes are known good, so :func:`decode_extensions` cannot fail on them later. ``False``
    says nothing more -- the caller decodes eagerly, which raises the precise error if there
    is one. Cheaper than decoding: no object is built."""
    end = len(data)
    get = _SCAN.get
    while pos < end:
        t = data[pos]
        entry = get(t)
        if entry is None:
            if t < 128 or t in _DECODERS:
                return False
            if pos + 2 > end:
                return False
            pos += 2 + data[pos + 1]
            continue
        if entry[0]:
            if pos + 4 > end:
                return False
            n = (data[pos + 2] << 8) | data[pos + 3]
            pos += 4
        else:
            if pos + 2 > end:
                return False
            n = data[pos + 1]
            pos += 2
        if n < entry[1]:
            return False
        pos += n
    return pos == end


def extension_offsets(
    data: bytes,
    pos: int,
    registry: Mapping[int, type[Extension]] = REGISTRATION_EXTENSIONS,
) -> tuple[int, ...]:
    """The offset of each extension header in ``data[pos:]``, for data that has already
    been decoded successfully (used to find the bytes an authenticator covers)."""
    offsets: list[int] = []
    end = len(data)
    get = registry.get
    while pos < end:
        offsets.append(pos)
        cls = get(data[pos])
        if cls is not None and cls.FORMAT is LONG:
            pos += 4 + _LONG_HDR.unpack_from(data, pos)[2]
        else:
            pos += 2 + data[pos + 1]
    return tuple(offsets)


def encode_extensions(extensions: tuple[Extension, ...]) -> bytes:
    return b"".join([e.encode() for e in extensions])


# The MIP4 WG extensions register themselves on import (they need the base class above).
from . import ext_keys, ext_mobility, ext_tunnel, ext_vendor  # noqa: E402, F401
