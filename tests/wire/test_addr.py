"""mip4.wire.addr's shortcuts into IPv4Address's integer slot (issue 13's fast paths): they
must agree with the public API, so that a Python whose ipaddress stores the integer
elsewhere fails here, by name, not somewhere in a fast path."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from mip4.wire.addr import ipv4_from_bytes, ipv4_from_int, ipv4_int


def test_the_integer_slot_is_int_both_ways() -> None:
    rng = random.Random(5)
    values = [0, 1, 0x7F000001, 0xC0000201, 0xFFFFFFFE, 0xFFFFFFFF]
    values += [rng.randrange(1 << 32) for _ in range(200)]
    for v in values:
        a = IPv4Address(v)
        assert ipv4_int(a) == int(a) == v
        b = ipv4_from_int(v)
        assert b == a and hash(b) == hash(a) and str(b) == str(a) and int(b) == v
        assert ipv4_from_bytes(b"\x00" + a.packed, 1) == a
