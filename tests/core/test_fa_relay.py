"""The foreign agent's relay fast path (issue 13, :mod:`mip4.core.fa_relay`) held against
the general code: two agents, one relaying the usual renewal from its bytes and one sending
every datagram through the general path, get the same randomized sequences of inputs --
first registrations and renewals (with and without MN-FA, FA-HA, RFC 2002 associations),
changes of care-of address, flags, lifetime, link-layer address and link, deregistrations,
denials by the home agent and by the agent itself (lifetime, encapsulation, reverse
tunnelling and TTL, MN-FA, FA-HA, a full pending list), replays of old requests and
replies, unmatched and malformed replies, extra extensions, links going down, timeouts,
clock steps and visitor expiries -- and must return the same actions field by field (the
datagrams byte for byte), and keep the same counters, visitor and pending lists, states
and deadlines."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

import pytest

import mip4.core.fa_relay as fa_relay_module
from mip4.core.actions import DEBUG, INFO, Action, SendUdp
from mip4.core.bindings import InMemoryPendingStore, InMemoryVisitorStore
from mip4.core.events import LinkDown, LinkUp, UdpReceived
from mip4.core.fa_config import ForeignAgentConfig, VisitedLink
from mip4.core.foreign_agent import ForeignAgent
from mip4.security.auth import sign
from mip4.security.sa import Algorithm, SecurityAssociation, SecurityAssociations
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    MobileForeignAuthExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RawExtension,
)
from mip4.wire.messages import RegistrationReply, RegistrationRequest
from mip4.wire.msg_base import REG_FLAGS

A = IPv4Address
HA = A("10.0.0.1")
HA2 = A("10.0.0.2")  # another home agent, without an FA-HA association here
OTHER = A("10.0.0.77")  # a reply from somewhere else
LINK0 = VisitedLink("vis0", A("10.1.0.1"), 24, care_of_addresses=(A("10.1.0.1"), A("10.1.0.2")))
LINK1 = VisitedLink("vis1", A("10.2.0.1"), 24)
COAS = (A("10.1.0.1"), A("10.1.0.2"), A("10.2.0.1"), A("10.3.0.9"))
MACS = (b"\x02\x00\x00\x00\x00\x10", b"\x02\x00\x00\x00\x00\x11", None)

#: mobile nodes: home address -> (MN-HA association, MN-FA association the node uses or
#: None, whether the foreign agent holds that MN-FA association)
NODES: dict[IPv4Address, tuple[SecurityAssociation, SecurityAssociation | None, bool]] = {
    A("10.0.0.10"): (SecurityAssociation(0x1000, b"a" * 16), None, False),
    A("10.0.0.11"): (SecurityAssociation(0x1001, b"b" * 16), None, False),
    A("10.0.0.12"): (
        SecurityAssociation(0x1002, b"c" * 16),
        SecurityAssociation(0x3002, b"C" * 16),
        True,
    ),
    A("10.0.0.13"): (
        SecurityAssociation(0x1003, b"d" * 16),
        SecurityAssociation(0x3003, b"D" * 16, spi_covered=False),  # RFC 2002
        True,
    ),
    A("10.0.0.14"): (
        SecurityAssociation(0x1004, b"e" * 16),
        SecurityAssociation(0x3004, b"E" * 16, algorithm=Algorithm.KEYED_MD5),
        True,
    ),
    A("10.0.0.15"): (  # sends MN-FA the agent has no association for (67)
        SecurityAssociation(0x1005, b"f" * 16),
        SecurityAssociation(0x3005, b"F" * 16),
        False,
    ),
}
FA_HA_SA = SecurityAssociation(0x2000, b"h" * 16)
FA_HA_2002 = SecurityAssociation(0x2001, b"H" * 16, spi_covered=False)
BAD = SecurityAssociation(0x2000, b"x" * 16)  # right SPI, wrong key


def _store(fa_ha: SecurityAssociation | None) -> SecurityAssociations:
    store = SecurityAssociations()
    for hoa, (_mn_ha, mn_fa, held) in NODES.items():
        if mn_fa is not None and held:
            store.add(hoa, mn_fa)
    if fa_ha is not None:
        store.add(HA, fa_ha)
    return store


#: configurations: name -> (keyword arguments, FA-HA association, general stores)
CONFIGS: dict[str, tuple[dict[str, Any], SecurityAssociation | None, bool]] = {
    "plain": ({}, None, False),
    "fa_ha": ({}, FA_HA_SA, False),
    "fa_ha_rfc2002": ({}, FA_HA_2002, False),
    "tight": (
        {
            "max_lifetime": 300,
            "gre_encapsulation": False,
            "minimal_encapsulation": False,
            "max_pending": 2,
            "max_visitors": 4,
            "relay_source": A("10.8.0.1"),
        },
        FA_HA_SA,
        False,
    ),
    "reverse_required": ({"reverse_tunnel_required": True, "pending_timeout": 2.0}, None, False),
    "no_reverse": ({"reverse_tunnel": False, "require_mn_fa_auth": True}, None, False),
    "stores": ({"max_pending": 3}, FA_HA_SA, True),
    "accounting": ({"accounting": True}, None, False),  # the fast path steps aside
}


def _agents(name: str, seed: int) -> tuple[ForeignAgent, ForeignAgent]:
    kwargs, fa_ha, stores = CONFIGS[name]
    cfg = ForeignAgentConfig(links=(LINK0, LINK1), **kwargs)
    out = []
    for fast in (True, False):
        extra: dict[str, Any] = {}
        if stores:
            extra = {"visitors": InMemoryVisitorStore(), "pending": InMemoryPendingStore()}
        fa = ForeignAgent(cfg, _store(fa_ha), rng=random.Random(seed), **extra)
        fa.relay_fast_path = fast
        out.append(fa)
    return out[0], out[1]


def _tables(fa: ForeignAgent) -> tuple[object, ...]:
    def key(r: Any) -> int:
        return int(r.home_address)

    return (
        sorted(fa.visitors, key=key),
        sorted(fa.pending, key=key),
        [fa.state_of(h) for h in NODES],
        fa.next_deadline(),
        dict(fa.counters.accepted),
        dict(fa.counters.denied),
        dict(fa.counters.discarded),
        dict(fa.counters.events),
    )


def _same(fast: ForeignAgent, general: ForeignAgent, got: list[Action], want: list[Action]) -> None:
    assert got == want
    for g, w in zip(got, want, strict=True):
        assert type(g) is type(w)
        if isinstance(g, SendUdp):
            assert isinstance(w, SendUdp)
            assert g.payload == w.payload
    assert _tables(fast) == _tables(general)


class _Run:
    """One randomized sequence, fed to both agents."""

    def __init__(self, name: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fast, self.general = _agents(name, seed)
        self.fa_ha = CONFIGS[name][1]
        self.now = 0.0
        self.ident = 1 << 40
        #: per node: the last request relayed (as the general agent relayed it)
        self.relayed: dict[IPv4Address, RegistrationRequest] = {}
        #: requests and replies seen, for replays
        self.old: list[UdpReceived] = []
        #: per node: what it asks for now (coa, flags, lifetime, mac, link)
        self.ask: dict[IPv4Address, tuple[IPv4Address, int, int, bytes | None, str]] = {
            hoa: (A("10.1.0.1"), 0, 600, MACS[0], "vis0") for hoa in NODES
        }
        self.feed(None)

    def feed(self, event: object) -> list[Action]:
        if event is None:
            got, want = self.fast.handle_timer(self.now), self.general.handle_timer(self.now)
        else:
            got = self.fast.handle(event, self.now)  # type: ignore[arg-type]
            want = self.general.handle(event, self.now)  # type: ignore[arg-type]
        _same(self.fast, self.general, got, want)
        return want

    def request(self, hoa: IPv4Address) -> None:
        rng = self.rng
        mn_ha, mn_fa, _held = NODES[hoa]
        coa, flags, life, mac, link = self.ask[hoa]
        r = rng.random()
        if r < 0.12:  # a change
            coa = rng.choice(COAS)
            flags = rng.choice((0, 0, 0x02, 0x08, 0x10, 0x0A, 0x20, 0x80, 0x40, 0x01, 0x04))
            life = rng.choice((600, 600, 300, 301, 1800, 2000, 0, 65535, 5))
            mac = rng.choice(MACS)
            link = rng.choice(("vis0", "vis0", "vis1", "eth9"))
            self.ask[hoa] = (coa, flags, life, mac, link)
        elif r < 0.35:  # a change the agent can take
            link = rng.choice(("vis0", "vis1"))
            coa = rng.choice(LINK0.offered if link == "vis0" else LINK1.offered)
            flags = rng.choice((0, 0x02, 0x08, 0x10, 0x0A, 0x40, 0x80))
            life = rng.choice((600, 300, 1800, 60))
            self.ask[hoa] = (coa, flags, life, rng.choice(MACS), link)
        self.ident += rng.randrange(1, 1 << 32)
        ha = HA if rng.random() < 0.9 else rng.choice((HA2, A("224.0.0.5"), A("0.0.0.0")))
        exts: tuple[Any, ...] = ()
        if rng.random() < 0.05:
            exts = (MobileNodeNAIExtension(b"node@example.net"),)
        req = RegistrationRequest(REG_FLAGS[flags], life, hoa, ha, coa, self.ident, exts)
        signed = sign(req, MobileHomeAuthExtension, mn_ha)
        r = rng.random()
        if mn_fa is not None and r < 0.9:
            key = mn_fa if rng.random() < 0.9 else replace(mn_fa, key=b"wrong")
            signed = sign(signed, MobileForeignAuthExtension, key)
        elif r < 0.03:
            signed = sign(signed, MobileForeignAuthExtension, SecurityAssociation(0x3999, b"z"))
        raw = signed.raw
        assert raw is not None
        if rng.random() < 0.03:
            raw = raw + RawExtension(200, b"xy").encode()  # skippable, after MN-HA
        if rng.random() < 0.02:
            raw = raw[: rng.randrange(1, len(raw))]
        src = hoa if rng.random() < 0.95 else A("0.0.0.0")
        ttl = 255 if rng.random() < 0.9 else 64
        dst = rng.choice((A("10.1.0.1"), A("10.1.0.2"), A("224.0.0.11"), A("10.2.0.1")))
        ev = UdpReceived(raw, src, dst, rng.choice((434, 5555)), 434, link, mac, ttl=ttl)
        self.old.append(ev)
        for action in self.feed(ev):
            if isinstance(action, SendUdp) and action.payload[:1] == b"\x01":  # relayed
                self.relayed[hoa] = RegistrationRequest.decode(action.payload)

    def reply(self, hoa: IPv4Address) -> None:
        rng = self.rng
        req = self.relayed.get(hoa)
        if req is None:
            return
        mn_ha = NODES[hoa][0]
        code = rng.choice((0, 0, 0, 0, 0, 1, 129, 133, 64))
        life = req.lifetime
        if rng.random() < 0.15:
            life = rng.choice((0, 30, 600, 1800, 65535))
        ident = req.identification
        if rng.random() < 0.05:
            ident ^= 1
        ha = req.home_agent if rng.random() < 0.95 else HA2
        rep = sign(RegistrationReply(code, life, hoa, ha, ident), MobileHomeAuthExtension, mn_ha)
        r = rng.random()
        if self.fa_ha is not None and r < 0.9:
            rep = sign(rep, ForeignHomeAuthExtension, self.fa_ha)
        elif r < 0.95:
            rep = sign(rep, ForeignHomeAuthExtension, BAD)
        raw = rep.raw
        assert raw is not None
        if rng.random() < 0.03:
            raw = raw[:-1]
        src = req.home_agent if rng.random() < 0.95 else OTHER
        ev = UdpReceived(raw, src, A("10.1.0.1"), 434, 434, "up0", None, ttl=64)
        self.old.append(ev)
        self.feed(ev)

    def step(self) -> None:
        rng = self.rng
        hoa = rng.choice(list(NODES))
        r = rng.random()
        if r < 0.45:
            self.request(hoa)
        elif r < 0.9:
            self.reply(hoa)
        elif r < 0.93 and self.old:
            self.feed(rng.choice(self.old))  # a replay of an old request or reply
        elif r < 0.98:
            steps = (0.01, 0.5, 3.0, 8.0, 0.2, 1.0, 301.0, 700.0)
            self.now += rng.choice(steps[:-1] if rng.random() < 0.8 else steps)  # clock
            self.feed(None)
        elif r < 0.99:
            self.feed(LinkDown("vis1"))
        else:
            self.feed(LinkUp("vis1"))
        self.now += 0.001


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(4))
def test_the_fast_path_acts_as_the_general_path(name: str, seed: int) -> None:
    run = _Run(name, seed)
    for _ in range(1500):
        run.step()
    if CONFIGS[name][0].get("accounting"):
        assert run.fast.fast_requests == run.fast.fast_replies == 0
    else:  # the comparison covered the fast path, not only the general one
        assert run.fast.fast_requests > 10
        assert run.fast.fast_replies > 10
    assert run.general.fast_requests == run.general.fast_replies == 0


@pytest.mark.parametrize("level", [DEBUG, INFO])
def test_log_levels(level: int) -> None:
    run = _Run("fa_ha", 7)
    run.fast.log_level = run.general.log_level = level
    for _ in range(500):
        run.step()
    assert run.fast.fast_requests > 20


def test_the_comparison_sees_a_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness fails a fast path that differs in one small thing (the level of a
    renewal's routine log record)."""
    monkeypatch.setattr(fa_relay_module, "DEBUG", INFO)
    run = _Run("plain", 1)
    with pytest.raises(AssertionError):
        for _ in range(700):
            run.step()


class _Calm(random.Random):
    """No change and no fault: every draw below a threshold fails, every choice is the
    first (code 0, the first destination)."""

    def random(self) -> float:
        return 0.5

    def choice(self, seq: Any) -> Any:
        return seq[0]


def test_usual_renewals_take_the_fast_path() -> None:
    """A visitor's renewals, relayed both ways, never reach the general path's decoder."""
    run = _Run("fa_ha", 3)
    run.rng = _Calm(0)
    hoa = A("10.0.0.12")  # MN-FA
    calls: list[str] = []
    general: Callable[..., Any] = run.fast._classify

    def classify(*a: Any) -> Any:
        calls.append("general")
        return general(*a)

    run.fast._classify = classify  # type: ignore[method-assign,assignment]
    run.request(hoa)  # a first registration: the general path (its reply: the fast one)
    run.reply(hoa)
    assert calls == ["general"]
    for _ in range(20):
        run.request(hoa)
        run.reply(hoa)
    assert calls == ["general"]
    assert run.fast.fast_requests == 20
    assert run.fast.fast_replies == 21


def test_a_reconfigured_agent() -> None:
    """The fast path reads the configuration the agent runs on now (``reconfigure``): a
    shorter ``max_lifetime``, no GRE and reverse tunnelling required from the middle of a
    run on, with the same answers as the general path before and after."""
    run = _Run("fa_ha", 11)
    for _ in range(600):
        run.step()
    before = run.fast.fast_requests
    cfg = replace(
        run.fast.config, max_lifetime=300, gre_encapsulation=False, reverse_tunnel_required=True
    )
    run.fast.reconfigure(cfg)
    run.general.reconfigure(cfg)
    for _ in range(900):
        run.step()
    assert run.fast.fast_requests > before  # T requests within 300 s still go fast
