"""The home agent pipeline's integer shortcuts (issue 13) decide as the general code does."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from itertools import islice
from typing import Any

import pytest

from mip4.core.ha_config import HomeAgentConfig, bad_unicast
from mip4.core.ha_pipeline import _bad_unicast, _serves


def _around(net: IPv4Network) -> list[IPv4Address]:
    lo, hi = int(net.network_address), int(net.broadcast_address)
    ints = {0, 1, 0xFFFFFFFF, 0xE0000000, 0xEFFFFFFF, 0xF0000000, lo, hi}
    ints |= {max(0, lo - 1), min(0xFFFFFFFF, hi + 1), lo + 1, max(lo, hi - 1)}
    return [IPv4Address(i) for i in sorted(ints)]


def test_serves_matches_the_config_method() -> None:
    for prefix in ("10.0.0.0/8", "10.1.0.0/24", "10.1.0.4/30", "10.1.0.8/31", "10.1.0.9/32"):
        net = IPv4Network(prefix)
        hosts = [net.network_address, net.broadcast_address, *islice(net.hosts(), 3)]
        for me in hosts:
            cfg = HomeAgentConfig(address=me, home_network=net)
            for a in [*_around(net), *hosts]:
                assert _serves(cfg, a) == cfg.serves(a), (prefix, me, a)


def test_serves_defers_to_the_method_with_a_pool_or_a_list() -> None:
    net = IPv4Network("10.1.0.0/24")
    pool = frozenset({IPv4Address("10.1.0.50")})
    with_pool = HomeAgentConfig(address=IPv4Address("10.1.0.1"), home_network=net,
                                address_pool=pool)  # fmt: skip
    listed = HomeAgentConfig(address=IPv4Address("10.1.0.1"), home_network=net,
                             home_addresses=frozenset({IPv4Address("10.1.0.7")}))  # fmt: skip
    for cfg in (with_pool, listed):
        for a in (*_around(net), IPv4Address("10.1.0.50"), IPv4Address("10.1.0.7")):
            assert _serves(cfg, a) == cfg.serves(a)


def test_bad_unicast_on_integers() -> None:
    for i in (0, 1, 0xDFFFFFFF, 0xE0000000, 0xE0000001, 0xEFFFFFFF, 0xF0000000, 0xFFFFFFFE,
              0xFFFFFFFF):  # fmt: skip
        assert _bad_unicast(i) == bad_unicast(IPv4Address(i)), hex(i)


def test_mobility_binding_of_equals_the_constructor() -> None:
    import dataclasses

    from mip4.core.actions import Encapsulation
    from mip4.core.bindings import MobilityBinding
    from mip4.wire.messages import RegistrationFlags

    # a distinct value for every field, so a field filled from the wrong argument shows
    values = (
        IPv4Address("10.0.0.10"),
        IPv4Address("192.0.2.1"),
        600,
        12.5,
        612.5,
        0x1122334455667788,
        RegistrationFlags.S | RegistrationFlags.T,
        Encapsulation.GRE,
        True,
        IPv4Address("192.0.2.9"),
        "n@example.net",
        77,
        True,
    )
    names = [f.name for f in dataclasses.fields(MobilityBinding) if f.init]
    assert len(names) == len(values)  # a new field fails here: add it to ``of``
    fast = MobilityBinding.of(*values)
    kwargs: dict[str, Any] = dict(zip(names, values, strict=True))
    slow = MobilityBinding(**kwargs)
    assert fast == slow and hash(fast) == hash(slow)
    assert [getattr(fast, n) for n in names] == list(values)
    for n in names:
        assert getattr(fast, n) is getattr(slow, n)
    # the fields the constructor fills itself (the in-memory table's business) too
    for f in dataclasses.fields(MobilityBinding):
        if not f.init:
            assert getattr(fast, f.name) is getattr(slow, f.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.lifetime = 1  # type: ignore[misc]
    defaults = MobilityBinding.of(*values[:7], Encapsulation.IPIP, False, None, None, None, False)
    assert defaults == MobilityBinding(*values[:7])
