"""Issue 13: the foreign agent's integer forms give what the ``IPv4Address`` forms gave."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from mip4.core.fa_checks import bad_unicast

A = IPv4Address


def _original(a: IPv4Address) -> bool:
    return a in (A("0.0.0.0"), A("255.255.255.255")) or a.is_multicast


def test_bad_unicast_on_integers() -> None:
    edges = [0, 1, 0xFFFFFFFF, 0xFFFFFFFE, 0xDFFFFFFF, 0xE0000000, 0xEFFFFFFF, 0xF0000000]
    rng = random.Random(13)
    sample = edges + [rng.getrandbits(32) for _ in range(20_000)]
    sample += [(top << 24) | rng.getrandbits(24) for top in range(256)]
    for i in sample:
        a = A(i)
        assert bad_unicast(a) is _original(a), a
