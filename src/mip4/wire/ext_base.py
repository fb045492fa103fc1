"""The base of every registration extension (RFC 5944 §1.9--§1.12): the two header formats,
:class:`Extension` and :class:`RawExtension`, and the range checks the classes share.

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
header is the base class's job. The classes live in ``ext_auth`` (RFC 5944 §3.5, RFC 2794,
RFC 4721), ``ext_vendor``, ``ext_keys``, ``ext_tunnel`` and ``ext_mobility``; the registry
that maps type numbers to them is :mod:`mip4.wire.extensions`.

Constructors check ranges (``__post_init__``) and raise :class:`EncodeError` for a value the
wire cannot carry; the hot decoders (authentication extensions) bypass ``__init__`` and so
pay nothing for it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Self

from .errors import DecodeError, EncodeError


class ExtFormat(Enum):
    SHORT = 2  # header bytes
    LONG = 4

    @property
    def header_len(self) -> int:
        return self.value


SHORT = ExtFormat.SHORT
LONG = ExtFormat.LONG
#: ``Type(1) Subtype(1) Length(2)``: the long format's header (RFC 5944 §1.11)
LONG_HEADER = struct.Struct("!BBH")


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
    #: extension decodes, and a message may build it later (see
    #: :func:`mip4.wire.extensions.scan_extensions`).
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
        return LONG_HEADER.pack(self.ext_type, self.header_subtype, n) + body


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


__all__ = [
    "LONG",
    "LONG_HEADER",
    "SHORT",
    "ExtFormat",
    "Extension",
    "RawExtension",
    "body_length_error",
    "check_len",
    "check_uint",
]
