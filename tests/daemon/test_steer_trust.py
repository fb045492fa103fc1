"""Flood steering's trust hook (issue 13): :class:`DaemonExecutor` tells ``trust`` the
destination of every accepting Registration Reply (type 3, code 0 or 1; RFC 5944 §3.8: only
an authenticated request gets one) and of nothing else, and still hands every action on."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mip4.core.actions import Action, SendUdp
from mip4.daemon.driving import DaemonExecutor
from mip4.daemon.run import trust_bound_sources
from mip4.wire.messages import RegistrationReply

from ..core.netsim import FA1_ADDR, World

HA = IPv4Address("10.75.0.2")
HOME = IPv4Address("10.75.0.100")
FA = IPv4Address("10.75.1.2")


@dataclass
class Inner:
    seen: list[Action] = field(default_factory=list)

    def execute(self, action: Action) -> None:
        self.seen.append(action)


def reply(code: int) -> bytes:
    return RegistrationReply(
        code=code, lifetime=300, home_address=HOME, home_agent=HA, identification=1
    ).encode()


def test_only_accepting_replies_make_their_destination_trusted() -> None:
    trusted: list[IPv4Address] = []
    inner = Inner()
    ex = DaemonExecutor(inner, trust=trusted.append)
    sends = [
        SendUdp(IPv4Address("10.75.1.10"), reply(0)),  # accepted
        SendUdp(IPv4Address("10.75.1.11"), reply(1)),  # accepted, no simultaneous bindings
        SendUdp(IPv4Address("10.75.1.12"), reply(131)),  # a forgery's answer
        SendUdp(IPv4Address("10.75.1.13"), reply(64)),  # a foreign agent's denial
        SendUdp(IPv4Address("10.75.1.14"), b"\x01\x00" + reply(0)[2:]),  # a request
        SendUdp(IPv4Address("10.75.1.15"), b"\x03"),  # too short to be a reply
    ]
    for a in sends:
        ex.execute(a)
    assert trusted == [IPv4Address("10.75.1.10"), IPv4Address("10.75.1.11")]
    assert inner.seen == sends  # every one handed on, in order


def test_a_home_agent_trusts_the_foreign_agent_that_relayed_an_accepted_request() -> None:
    w = World()
    w.move("A")
    w.advance(3)
    assert w.mn.registered
    trusted: list[IPv4Address] = []
    ex = DaemonExecutor(Inner(), trust=trusted.append)
    sends = [p.action for p in w.net.sent("ha") if isinstance(p.action, SendUdp)]
    for a in sends:
        ex.execute(a)
    accepting = [a.dst for a in sends if a.payload[0] == 3 and a.payload[1] == 0]
    assert accepting and trusted == accepting
    assert set(trusted) == {FA1_ADDR}  # the reply went back through the agent on link A


def test_without_steering_nothing_is_asked() -> None:
    inner = Inner()
    ex = DaemonExecutor(inner)
    ex.execute(SendUdp(FA, reply(0)))
    assert len(inner.seen) == 1


def test_a_restarted_home_agent_trusts_the_sources_of_its_bindings() -> None:
    # [store]: the bindings it starts with were accepted before the restart
    w = World()
    w.move("A")
    w.advance(3)
    assert w.mn.registered
    trusted: list[IPv4Address] = []

    class Recorder:
        capacity = 1
        marked = 0

        def trust(self, source: IPv4Address) -> None:
            trusted.append(source)
            self.marked += 1

    recorder = Recorder()
    trust_bound_sources(recorder, w.ha)  # type: ignore[arg-type]
    assert trusted == [FA1_ADDR] == [b.source for b in w.ha.bindings]
    trust_bound_sources(recorder, w.ha)  # type: ignore[arg-type]
    assert trusted == [FA1_ADDR]  # the map's size reached: no more updates
