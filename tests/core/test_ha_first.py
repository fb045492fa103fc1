"""The home agent's first-registration fast path (issue 13, :mod:`mip4.core.ha_renewal`)
held against the general code: two engines, both with the renewal fast path, one
answering the usual first registration from its bytes and one sending it through the
general path, get the same randomized sequences of inputs (those of
``tests/core/test_ha_renewal.py``, with deregistrations and expiries often enough that
most registrations are first ones) and must return the same actions field by field (the
replies byte for byte), and keep the same counters, binding table, replay state,
deadlines and home-link addresses."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from mip4.core.actions import GratuitousArp, InstallBinding, Log, ProxyArp, SendUdp
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.store.sqlite import SqliteStore

from .test_ha_renewal import CONFIGS, _Delegating, _Node, _Run, _same, _store
from .test_home_agent import HA, NET, UNIX0, _Nonces

A = IPv4Address


def _pair(store: Any = lambda fast: None, **settings: Any) -> tuple[HomeAgent, HomeAgent]:
    def one(fast: bool) -> HomeAgent:
        cfg = dict(settings)
        config = HomeAgentConfig(
            address=HA, home_network=cfg.pop("home_network", NET), interface="home0", **cfg
        )
        ha = HomeAgent(config, _store(), UNIX0, bindings=store(fast), rng=_Nonces(0x7000_0000))
        ha.first_registration_fast_path = fast
        ha.restore(0.0)
        return ha

    return one(True), one(False)


class _FirstRun(_Run):
    """The renewal test's steps, with a deregistration (of one care-of address or of all)
    or a long wait before many of them: first registrations are the usual request."""

    def step(self) -> None:
        r = self.rng
        if r.random() < 0.35:
            node = r.choice(self.nodes)
            self.now += r.choice([0.0, 0.5, 1.0])
            all_ = r.random() < 0.5
            self.send(node, self._request(node, lifetime=0, coa=node.hoa if all_ else None))
            if r.random() < 0.5:
                self._reshape(node)
            return
        super().step()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_fast_path_acts_as_the_general_path(name: str) -> None:
    fast_total = accepted = 0
    for seed in range(40):
        fast, general = _pair(**CONFIGS[name])
        run = _FirstRun(seed * 104729 + len(name), fast, general)
        for _ in range(120):
            run.step()
        assert general.fast_first_registrations == 0
        fast_total += fast.fast_first_registrations
        accepted += fast.counters.total_accepted
    # the sequences exercise the fast path, and not only it
    assert 0.05 * accepted < fast_total < accepted, (fast_total, accepted)


def test_other_binding_stores(tmp_path: Path) -> None:
    """The persistent store (issue 15) gets the same writes; a store that is not the
    in-memory one, the same table."""
    fast_total = {"sqlite": 0, "delegating": 0}
    for seed in range(12):
        for name in fast_total:
            sqlite = {
                fast: SqliteStore(tmp_path / f"{seed}-{fast}.db", UNIX0) for fast in (True, False)
            }
            try:
                if name == "sqlite":
                    fast, general = _pair(lambda f, db=sqlite: db[f].bindings)
                else:
                    fast, general = _pair(lambda f: _Delegating())
                run = _FirstRun(seed, fast, general)
                for _ in range(120):
                    run.step()
                    assert sqlite[True]._pending == sqlite[False]._pending
                    assert sqlite[True].writes == sqlite[False].writes
                fast_total[name] += fast.fast_first_registrations
            finally:
                for store in sqlite.values():
                    store.close()
    assert min(fast_total.values()) > 30, fast_total


@pytest.mark.parametrize("via", ["colocated", "fa:192.168.1.1", "fa:192.168.2.1", "home"])
def test_the_usual_first_registration_takes_it(via: str) -> None:
    """Direct, relayed with FA-HA (RFC 5944 and RFC 2002 coverage) and from the home link:
    the fast path answers, with the actions of RFC 5944 §4.6 in the general path's order."""
    fast, general = _pair()
    run = _Run(5, fast, general)
    coa = A(via[3:]) if via.startswith("fa:") else A("172.16.0.5")
    node = _Node(A("10.0.0.10"), coa, via, flags=0x20 if via == "colocated" else 0)
    run.now = 10.0
    payload = run._request(node)
    event = run._event(node, payload)
    got = fast.handle(event, run.now)
    want = general.handle(event, run.now)
    _same(fast, general, got, want)
    assert fast.fast_first_registrations == 1
    assert [type(a) for a in got] == [InstallBinding, ProxyArp, GratuitousArp, SendUdp, Log]
    assert fast.counters.total_accepted == 1
    # its renewal is the renewal fast path's, as before
    run.now += 1.0
    event = run._event(node, run._request(node))
    _same(fast, general, fast.handle(event, run.now), general.handle(event, run.now))
    assert fast.fast_renewals == general.fast_renewals == 1
    assert fast.fast_first_registrations == 1


def test_the_comparison_sees_a_difference() -> None:
    """The pair of engines is not blind: a fast path that left out the proxy entry, or
    counted nothing, is caught."""
    fast, general = _pair()
    run = _Run(1, fast, general)
    node = _Node(A("10.0.0.10"), A("172.16.0.5"), "colocated", flags=0x20)
    event = run._event(node, run._request(node))
    got = fast.handle(event, run.now)
    want = general.handle(event, run.now)
    assert fast.fast_first_registrations == 1
    _same(fast, general, got, want)
    with pytest.raises(AssertionError):
        _same(fast, general, [a for a in got if not isinstance(a, ProxyArp)], want)
    fast._counters.accepted.clear()
    with pytest.raises(AssertionError):
        _same(fast, general, got, want)
