"""Fast conversions between 32-bit integers / 4-byte strings and ``IPv4Address``.

``ipaddress.IPv4Address(int)`` validates its argument on every call, which dominates the cost
of decoding a registration message. Values taken from a 4-byte wire field are always in range,
so :func:`ipv4_from_int` builds the address object directly.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address
from operator import attrgetter

from .errors import EncodeError

_new = object.__new__

ZERO = IPv4Address(0)
BROADCAST = IPv4Address(0xFFFFFFFF)


#: ``int(address)`` for an ``IPv4Address``, read from the integer slot ``__init__`` fills
#: (the one :func:`ipv4_from_int` writes) without the Python-level ``__int__`` call (~75 ->
#: ~35 ns): the fast paths' per-datagram keys (issue 13). ``tests/wire/test_addr.py`` holds
#: it to ``int()``.
ipv4_int: Callable[[IPv4Address], int] = attrgetter("_ip")


def ipv4_from_int(value: int) -> IPv4Address:
    """An ``IPv4Address`` for ``value``, which must already be in 0..2**32-1 (a wire field)."""
    a = _new(IPv4Address)
    a._ip = value  # type: ignore[attr-defined]  # the slot __init__ fills
    return a


def ipv4_from_bytes(data: bytes, offset: int = 0) -> IPv4Address:
    return ipv4_from_int(int.from_bytes(data[offset : offset + 4], "big"))


def ipv4_to_int(addr: IPv4Address | str | int) -> int:
    if isinstance(addr, IPv4Address):
        return int(addr)
    if isinstance(addr, int):
        if not 0 <= addr <= 0xFFFFFFFF:
            raise EncodeError(f"IPv4 address out of range: {addr}")
        return addr
    return int(IPv4Address(addr))


def ipv4_to_bytes(addr: IPv4Address) -> bytes:
    return addr.packed
