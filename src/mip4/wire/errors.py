"""The codec's errors.

Every malformed input raises :class:`DecodeError` (a :class:`ValueError`), whose message says
what was wrong and at which byte offset. A registration message that carries an extension of an
unrecognised *non-skippable* type (0--127) raises the subclass
:class:`UnknownExtensionError`: RFC 5944 §1.9 says such a message MUST be silently discarded,
and agents count these discards separately from plain malformed input.
"""

from __future__ import annotations

from mip4.errors import Mip4Error


class DecodeError(Mip4Error, ValueError):
    """Malformed input. ``offset`` is the byte offset (from the start of the decoded buffer)
    where the problem was found, or ``None`` when it concerns the whole buffer."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        if offset is not None:
            message = f"{message} (at offset {offset})"
        super().__init__(message)
        self.offset = offset


class UnknownExtensionError(DecodeError):
    """An unrecognised extension type in the non-skippable range 0--127 (RFC 5944 §1.9):
    the whole message must be silently discarded."""

    def __init__(self, ext_type: int, offset: int, space: str = "registration") -> None:
        super().__init__(
            f"unrecognised non-skippable {space} extension type {ext_type}: "
            "message must be discarded (RFC 5944 §1.9)",
            offset,
        )
        self.ext_type = ext_type


class EncodeError(Mip4Error, ValueError):
    """A message or extension whose fields cannot be represented on the wire
    (a value out of range, a body too long for its length field)."""
