"""The usual renewal relayed by the kernel (issue 13, :mod:`mip4.core.fa_kernel`) held
against an agent that relays everything itself.

Two agents get the randomized sequences of ``tests/core/test_fa_relay.py`` (first
registrations, renewals, changes, denials, replays, malformed datagrams, FA-HA and MN-FA,
timeouts, clock steps, expiries, links going down). One relays everything itself. The
other runs with ``kernel_relay``: a model of the tc-BPF program (:class:`_Kernel`, the
rules of ``bpf/mip4_tunnel.bpf.c``'s ``relay()``, whose C is held to the same rules by
``tests/bpf/test_relay_program.py``) takes the ``RelayInKernel`` / ``StopRelayInKernel``
actions, relays what they allow, and hands the datagram back as ``RelayedByKernel``. What
the kernel sent plus what the engine did must be exactly what the other agent did (the
datagrams byte for byte), with the same counters, visitor and pending lists, states and
deadlines -- and the kernel must have relayed most renewals."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any

import pytest

from mip4.core import fa_state
from mip4.core.actions import (
    MIP_PORT,
    Action,
    Log,
    RelayInKernel,
    RemoveVisitor,
    SendUdp,
    StopRelayInKernel,
)
from mip4.core.events import RelayedByKernel, UdpReceived
from mip4.core.fa_kernel import entry_for
from mip4.core.foreign_agent import ForeignAgent
from mip4.security.auth import sign
from mip4.security.sa import SecurityAssociation
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import RegistrationReply, RegistrationRequest

from .test_fa_relay import CONFIGS, HA, HA2, NODES, OTHER, _Calm, _Run, _same, _store, _tables

A = IPv4Address


@dataclass
class _Entry:
    relay: RelayInKernel
    pending: bytes | None = None


class _Kernel:
    """What ``relay()`` in the agent's program does, on ``UdpReceived`` events."""

    def __init__(self) -> None:
        self.entries: dict[IPv4Address, _Entry] = {}
        self.requests = self.replies = 0
        #: every entry given
        self.given: list[RelayInKernel] = []

    def apply(self, actions: list[Action]) -> list[Action]:
        """Take the kernel's actions out of ``actions``; the rest, in order."""
        rest: list[Action] = []
        for a in actions:
            if isinstance(a, RelayInKernel):
                self.entries[a.home_address] = _Entry(a)  # replaced: nothing pending
                self.given.append(a)
            elif isinstance(a, StopRelayInKernel):
                self.entries.pop(a.home_address, None)
            elif isinstance(a, Log) and a.event.startswith("fa.kernel_"):
                pass
            else:
                rest.append(a)
        return rest

    def relay(self, ev: UdpReceived) -> SendUdp | None:
        p = ev.payload
        if len(p) == 46 and p[0] == 1 and ev.dport == MIP_PORT:
            e = self.entries.get(A(p[4:8]))
            if e is None:
                return None
            r = e.relay
            if (
                ev.interface != r.interface
                or ev.link_src != r.link_address
                or ev.src != r.node
                or ev.dst != r.agent
                or ev.sport != r.node_port
                or p[:16] != r.request
                or p[24] != 32
                or p[25] != 20
                or (r.ttl_255 and ev.ttl != 255)
            ):
                return None
            e.pending = p[16:24]
            self.requests += 1
            return SendUdp(A(p[8:12]), p, MIP_PORT, r.relay_port, r.relay_source)
        if len(p) == 42 and p[0] == 3 and ev.sport == MIP_PORT:
            if p[1] > 1 or p[2:4] == b"\0\0" or p[20] != 32 or p[21] != 20:
                return None
            e = self.entries.get(A(p[4:8]))
            if e is None:
                return None
            r = e.relay
            if (
                ev.dst != r.relay_source
                or ev.dport != r.relay_port
                or e.pending is None
                or p[16:20] != e.pending[4:8]
                or p[8:12] != r.request[8:12]
            ):
                return None
            e.pending = None
            self.replies += 1
            return SendUdp(
                r.node,
                p,
                r.node_port,
                MIP_PORT,
                r.agent,
                interface=r.interface,
                link_dst=r.link_address,
            )
        return None


class _Habitual(random.Random):
    """Each choice is the first of its options two times in three (a node asking from the
    same address, port and agent address as before, an acceptance): enough repeated
    renewals for the kernel to relay, every variation still drawn."""

    def choice(self, seq: Any) -> Any:
        return seq[0] if super().random() < 0.67 else super().choice(seq)


class _KernelRun(_Run):
    """``_Run`` with the first agent relaying through :class:`_Kernel`."""

    def __init__(self, name: str, seed: int) -> None:
        self.kernel = _Kernel()
        #: per node: its last request (as it came in)
        self.last: dict[IPv4Address, UdpReceived] = {}
        super().__init__(name, seed)
        self.rng = _Habitual(seed)
        self.fast.kernel_relay = True
        # the kernel's relays are pending whatever the pending list holds (fa_kernel): no
        # full list here, where the other agent would refuse what the kernel relayed
        cfg = replace(self.fast.config, max_pending=2 * len(NODES))
        self.fast.reconfigure(cfg)
        self.general.reconfigure(cfg)

    def request(self, hoa: IPv4Address) -> None:
        super().request(hoa)
        self.last[hoa] = self.old[-1]

    def repeat(self, hoa: IPv4Address) -> None:
        """The node's last request again with a new Identification (the agent does not
        check MN-HA; the home agent here answers what was relayed): a renewal."""
        ev = self.last.get(hoa)
        if ev is None:
            return self.request(hoa)
        self.ident += self.rng.randrange(1, 1 << 32)
        p = ev.payload
        ev = replace(ev, payload=p[:16] + self.ident.to_bytes(8, "big") + p[24:])
        self.old.append(ev)
        for action in self.feed(ev):
            if isinstance(action, SendUdp) and action.payload[:1] == b"\x01":  # relayed
                self.relayed[hoa] = RegistrationRequest.decode(action.payload)

    def step(self) -> None:
        rng = self.rng
        if rng.random() < 0.4:
            hoa = rng.choice(list(NODES))
            self.repeat(hoa)
            if rng.random() < 0.8:
                self.reply(hoa)
            self.now += 0.001
            return
        super().step()

    def reply(self, hoa: IPv4Address) -> None:
        """``_Run.reply``, except that without an FA-HA association the home agent adds
        none nine times in ten (``_Run`` adds a wrong one then: a reply the agent relays
        without it, which the kernel leaves to the agent)."""
        rng = self.rng
        req = self.relayed.get(hoa)
        if req is None:
            return
        if self.fa_ha is not None or rng.random() < 0.1:
            super().reply(hoa)
            return
        code = rng.choice((0, 0, 0, 0, 0, 1, 129, 133, 64))
        life = req.lifetime if rng.random() >= 0.15 else rng.choice((0, 30, 600, 1800, 65535))
        ident = req.identification ^ (1 if rng.random() < 0.05 else 0)
        ha = req.home_agent if rng.random() < 0.95 else HA2
        rep = sign(
            RegistrationReply(code, life, hoa, ha, ident), MobileHomeAuthExtension, NODES[hoa][0]
        )
        raw = rep.raw
        assert raw is not None
        if rng.random() < 0.03:
            raw = raw[:-1]
        src = req.home_agent if rng.random() < 0.95 else OTHER
        dst = rng.choice((A("10.1.0.1"), A("10.8.0.1")))
        ev = UdpReceived(raw, src, dst, 434, rng.choice((434, 435)), "up0", None, ttl=64)
        self.old.append(ev)
        self.feed(ev)

    def feed(self, event: object) -> list[Action]:
        fast, general, kernel = self.fast, self.general, self.kernel
        if event is None:
            got = kernel.apply(fast.handle_timer(self.now))
            want = general.handle_timer(self.now)
            _same(fast, general, got, want)
            return want
        want = general.handle(event, self.now)  # type: ignore[arg-type]
        sent = kernel.relay(event) if isinstance(event, UdpReceived) else None
        if sent is None:
            got = kernel.apply(fast.handle(event, self.now))  # type: ignore[arg-type]
            _same(fast, general, got, want)
            return want
        assert isinstance(event, UdpReceived)
        got = kernel.apply(fast.handle(RelayedByKernel(event.payload), self.now))
        # the kernel's datagram is the one the other agent sent, byte for byte
        sends = [a for a in want if isinstance(a, SendUdp)]
        assert sends and sends[0] == sent and sends[0].payload == sent.payload
        rest = list(want)
        rest.remove(sends[0])
        _same(fast, general, got, rest)
        return want


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(4))
def test_the_kernel_relay_acts_as_the_agent(name: str, seed: int) -> None:
    run = _KernelRun(name, seed)
    for _ in range(1500):
        run.step()
    kernel = run.kernel
    assert run.fast.kernel_requests == kernel.requests
    assert run.fast.kernel_replies == kernel.replies
    kwargs, fa_ha, _stores = CONFIGS[name]
    if name == "plain":  # the comparison covered the kernel's relays, not only the agent's
        assert kernel.requests > 100
        assert kernel.replies > 20
    elif name == "reverse_required":
        assert kernel.requests > 0 and kernel.replies > 0
    if fa_ha is not None:  # FA-HA with HA: an HMAC per datagram, never the kernel's
        assert all(r.request[8:12] != HA.packed for r in kernel.given)
    if kwargs.get("accounting") or kwargs.get("require_mn_fa_auth"):
        assert not kernel.given


def test_the_comparison_sees_a_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness fails a replay that differs in one small thing (the pending entry of a
    request the kernel relayed dated a second late: the visitor's expiry moves with it)."""
    real = fa_state.new_pending

    def late(*fields: Any) -> Any:
        f = list(fields)
        f[11] += 1.0  # relayed_at
        return real(*f)

    monkeypatch.setattr("mip4.core.fa_kernel.new_pending", late)
    run = _KernelRun("plain", 2)
    with pytest.raises(AssertionError):
        for _ in range(1500):
            run.step()
    assert run.kernel.requests > 0


def _calm_run(name: str = "plain") -> tuple[_KernelRun, IPv4Address]:
    run = _KernelRun(name, 5)
    run.rng = _Calm(0)
    return run, A("10.0.0.10")


def test_usual_renewals_are_the_kernels() -> None:
    """After the first registration (the agent's), every renewal and its acceptance are the
    kernel's; the engine's visitor follows them."""
    run, hoa = _calm_run()
    run.request(hoa)
    run.reply(hoa)
    entry = run.kernel.entries[hoa].relay
    assert entry.request[:1] == b"\x01" and A(entry.request[4:8]) == hoa
    assert entry.relay_source == A("10.1.0.1") and entry.relay_port == MIP_PORT
    for _ in range(20):
        run.now += 100.0
        run.request(hoa)
        run.reply(hoa)
        v = run.fast.visitors.get(hoa)
        assert v is not None and v.expires is not None and v.expires > run.now + 500
    assert run.kernel.requests == run.kernel.replies == 20
    assert run.fast.kernel_requests == run.fast.kernel_replies == 20


def test_an_entry_is_given_once_per_acceptance() -> None:
    """The agent's own relay of an acceptance that makes the visitor gives the program one
    entry, not one for the visitor and another for the reply to the node."""
    run, hoa = _calm_run()
    run.request(hoa)
    run.reply(hoa)
    assert len(run.kernel.given) == 1


def test_a_changed_request_stops_the_relay_first() -> None:
    run, hoa = _calm_run()
    run.request(hoa)
    run.reply(hoa)
    assert hoa in run.kernel.entries
    req = run.old[0]  # a shorter lifetime below: not a repeat
    changed = bytearray(req.payload)
    changed[2:4] = (300).to_bytes(2, "big")
    ev = replace(req, payload=bytes(changed))
    assert run.kernel.relay(ev) is None
    actions = run.fast.handle(ev, run.now)
    assert actions[0] == StopRelayInKernel(hoa)


def test_expiry_stops_the_relay() -> None:
    run, hoa = _calm_run()
    run.request(hoa)
    run.reply(hoa)
    run.now += 10_000.0
    actions = run.fast.handle_timer(run.now)
    kinds = [type(a) for a in actions]
    assert RemoveVisitor in kinds and StopRelayInKernel in kinds
    assert kinds.index(StopRelayInKernel) > kinds.index(RemoveVisitor)


def test_a_reconfiguration_stops_every_relay() -> None:
    run = _KernelRun("plain", 5)
    run.rng = _Calm(0)
    nodes = [A("10.0.0.10"), A("10.0.0.11")]
    for hoa in nodes:
        run.request(hoa)
        run.reply(hoa)
    assert set(run.kernel.entries) == set(nodes)
    run.fast.reconfigure(replace(run.fast.config, max_lifetime=300))
    actions = run.fast.handle_timer(run.now)
    assert [a for a in actions if isinstance(a, StopRelayInKernel)] == [
        StopRelayInKernel(h) for h in nodes
    ]


def test_a_superseded_request_is_not_applied() -> None:
    """The kernel relayed a renewal, then the engine stopped relaying for the node (a changed
    request came first): the renewal's record changes nothing."""
    run, hoa = _calm_run()
    run.request(hoa)
    run.reply(hoa)
    renewal = run.old[0]
    tables = _tables(run.fast)
    run.fast._kernel.clear()  # what a StopRelayInKernel for the node leaves
    assert run.fast.handle(RelayedByKernel(renewal.payload), run.now) == []
    assert run.fast.kernel_superseded == 1
    assert _tables(run.fast) == tables


def test_the_general_path_applies_what_the_fast_path_would_not() -> None:
    """A reply the kernel relayed that the replay does not cover (here the pending request
    carries an NAI, which no request the kernel relays has): applied by the general path,
    without a second send to the node, and the kernel relays no more for it."""
    run, hoa = _calm_run()
    run.request(hoa)
    run.reply(hoa)
    run.request(hoa)  # relayed by the kernel: pending in the engine too
    req = run.relayed[hoa]
    assert run.kernel.entries[hoa].pending is not None
    pending = run.fast.pending.get(hoa)
    assert pending is not None
    run.fast._pending.put(replace(pending, nai="x@example.net"))

    rep = sign(
        RegistrationReply(0, 600, hoa, HA, req.identification),
        MobileHomeAuthExtension,
        NODES[hoa][0],
    )
    assert rep.raw is not None
    ev = UdpReceived(rep.raw, HA, A("10.1.0.1"), 434, 434, "up0", None, ttl=64)
    assert run.kernel.relay(ev) is not None
    actions = run.fast.handle(RelayedByKernel(ev.payload), run.now)
    assert not [a for a in actions if isinstance(a, SendUdp)]
    assert StopRelayInKernel(hoa) in actions
    assert run.fast.kernel_general == 1
    v = run.fast.visitors.get(hoa)
    assert v is not None and v.identification == req.identification


@pytest.mark.parametrize(
    "why",
    ["mn_fa", "fa_ha", "no_mac", "broadcast_dst", "colocated", "nai", "accounting", "zero_src"],
)
def test_what_the_kernel_is_never_given(why: str) -> None:
    """Renewals that need an HMAC (MN-FA, FA-HA), a part of the agent the kernel has not
    (accounting), or addressing it cannot match (no hardware address, a broadcast or
    unspecified address, a co-located care-of address, an NAI) stay the agent's."""
    run, hoa = _calm_run()
    run.request(hoa)
    run.reply(hoa)
    v = run.fast.visitors.get(hoa)
    assert v is not None
    assert entry_for(run.fast, v) is not None
    fa = run.fast
    if why == "fa_ha":
        fa = ForeignAgent(fa.config, _store(SecurityAssociation(0x2000, b"h" * 16)))
    elif why == "accounting":
        fa = ForeignAgent(replace(fa.config, accounting=True), _store(None))
    changes: dict[str, Any] = {
        "mn_fa": {"home_address": A("10.0.0.12")},  # the agent holds its MN-FA association
        "no_mac": {"link_address": None},
        "broadcast_dst": {"ip_destination": A("255.255.255.255")},
        "colocated": {"flags": v.flags | 0x20},
        "nai": {"nai": "n@example.net"},
        "zero_src": {"ip_source": A("0.0.0.0")},
    }
    assert entry_for(fa, replace(v, **changes.get(why, {}))) is None
