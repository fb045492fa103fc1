"""A small read/write buffer in the style of aioquic's pure-Python ``Buffer``.

``pull_*`` read big-endian integers and byte strings and raise :class:`DecodeError` naming
the offset when the data runs out; ``push_*`` append. Hot paths in the codec use precompiled
``struct.Struct`` objects directly; the buffer is for everything else.
"""

from __future__ import annotations

import struct

from .errors import DecodeError

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


class Buffer:
    """Reads from ``data`` starting at ``pos`` (up to ``end``), or accumulates pushes."""

    __slots__ = ("_chunks", "data", "end", "pos")

    def __init__(self, data: bytes = b"", pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self._chunks: list[bytes] = []

    # -- reading ---------------------------------------------------------------------------
    def remaining(self) -> int:
        return self.end - self.pos

    def eof(self) -> bool:
        return self.pos >= self.end

    def _need(self, n: int, what: str) -> int:
        pos = self.pos
        if pos + n > self.end:
            raise DecodeError(f"truncated: {what} needs {n} byte(s), {self.end - pos} left", pos)
        self.pos = pos + n
        return pos

    def pull_u8(self, what: str = "u8") -> int:
        pos = self._need(1, what)
        return self.data[pos]

    def pull_u16(self, what: str = "u16") -> int:
        pos = self._need(2, what)
        return int(_U16.unpack_from(self.data, pos)[0])

    def pull_u32(self, what: str = "u32") -> int:
        pos = self._need(4, what)
        return int(_U32.unpack_from(self.data, pos)[0])

    def pull_u64(self, what: str = "u64") -> int:
        pos = self._need(8, what)
        return int(_U64.unpack_from(self.data, pos)[0])

    def pull_bytes(self, n: int, what: str = "bytes") -> bytes:
        pos = self._need(n, what)
        return bytes(self.data[pos : pos + n])

    def pull_rest(self) -> bytes:
        pos, self.pos = self.pos, self.end
        return bytes(self.data[pos : self.end])

    # -- writing ---------------------------------------------------------------------------
    def push_u8(self, v: int) -> None:
        self._chunks.append(bytes((v,)))

    def push_u16(self, v: int) -> None:
        self._chunks.append(_U16.pack(v))

    def push_u32(self, v: int) -> None:
        self._chunks.append(_U32.pack(v))

    def push_u64(self, v: int) -> None:
        self._chunks.append(_U64.pack(v))

    def push_bytes(self, b: bytes) -> None:
        self._chunks.append(bytes(b))

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)
