"""Messages whose body is an opaque payload: Tunnel Data (RFC 3519 §3.3, NAT traversal)
and the experimental message (RFC 4064)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from .errors import DecodeError
from .ext_base import check_uint
from .msg_base import (
    Message,
    unpack_head,
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
        check_uint(self, "next_header", self.next_header, 8)
        check_uint(self, "reserved", self.reserved, 16)

    def encode_fixed(self) -> bytes:
        return _TUNNEL.pack(4, self.next_header, self.reserved)

    def encode(self) -> bytes:
        return self.encode_fixed() + self.payload

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _, next_header, reserved = unpack_head(cls, _TUNNEL, data)
        return cls(next_header, bytes(data[4:]), reserved)


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
