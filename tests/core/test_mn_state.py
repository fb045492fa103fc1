"""The mobile node's transition table: every legal ``(state, input)`` pair listed from the
table is reached by driving the engine, every other pair is refused, and no raw input in
any state is a protocol error (issue 8 §1)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

from mip4.core.counters import Counters
from mip4.core.engine import Engine
from mip4.core.events import IcmpReceived, LinkDown, LinkUp, UdpReceived
from mip4.core.mn_keys import AaaKeys
from mip4.core.mn_state import MN_TRANSITIONS, MnInput, MnState, legal_pairs
from mip4.core.mobile_node import MobileNode, MobileNodeConfig
from mip4.core.registration import ProtocolError
from mip4.security.sa import SecurityAssociation

from .netsim import advertisement, reply_for

A = IPv4Address
HOME = A("10.0.0.5")
HA = A("10.0.0.1")
FA1 = A("192.168.1.1")
FA2 = A("192.168.2.1")
COA = A("172.16.0.9")
OTHER_COA = A("172.16.9.9")
MAC = b"\x02\x00\x00\x00\x00\x01"
BCAST = A("255.255.255.255")
SA = SecurityAssociation(spi=1000, key=bytes(range(16)))
S = MnState
I = MnInput  # noqa: E741


class Node:
    """A mobile node on a hand-driven clock, attached (if at all) on ``mn0``."""

    def __init__(self) -> None:
        cfg = MobileNodeConfig(home_address=HOME, home_agent=HA, failed_retry=50.0)
        self.mn = MobileNode(cfg, SA, 1_700_000_000.0, rng=random.Random(3))
        self.now = 0.0

    def at(self, dt: float = 0.1) -> float:
        self.now += dt
        return self.now

    def link_up(self, iface: str = "mn0", address: IPv4Address | None = None) -> None:
        self.mn.handle(LinkUp(iface, address, 24 if address is not None else None), self.at())

    def link_down(self, iface: str = "mn0") -> None:
        self.mn.handle(LinkDown(iface), self.at())

    def adv(self, src: IPv4Address = FA1, **kw: object) -> None:
        kw.setdefault("prefix_len", 24)
        kw.setdefault("registration_lifetime", 100)
        kw.setdefault("lifetime", 9000)  # the agent outlives the tests' timers
        payload = advertisement(src, **kw)  # type: ignore[arg-type]
        self.mn.handle(IcmpReceived(payload, src, BCAST, "mn0", link_src=MAC, ttl=1), self.at())

    def reply(self, code: int = 0, *, signed: bool = True) -> None:
        req = self.mn.pending_request
        assert req is not None
        payload = reply_for(req, code, sa=SA if signed else None)
        self.mn.handle(UdpReceived(payload, FA1, HOME, 434, 434, "mn0", ttl=64), self.at())

    def until(self, t: float) -> None:
        """Run the timers up to ``t``."""
        for _ in range(1000):
            d = self.mn.next_deadline()
            if d is None or d > t:
                break
            self.now = max(self.now, d)
            self.mn.handle_timer(self.now)
        self.now = t

    def renew(self) -> None:
        """Run the timers until a re-registration is outstanding."""
        for _ in range(100):
            if self.mn.pending_request is not None:
                return
            d = self.mn.next_deadline()
            assert d is not None
            self.now = max(self.now, d)
            self.mn.handle_timer(self.now)
        raise AssertionError("no re-registration")


# ----------------------------------------------------------------------------------------
# Reaching each state (where it matters, with a binding and an agent on mn0)
# ----------------------------------------------------------------------------------------


def detached() -> Node:
    return Node()


def registering() -> Node:
    n = Node()
    n.link_up()
    n.adv()
    return n


def registered() -> Node:
    n = registering()
    n.reply(0)
    assert n.mn.registered
    return n


def renewing() -> Node:
    """Registered, with a re-registration outstanding."""
    n = registered()
    n.renew()
    return n


def backing_off() -> Node:
    n = renewing()
    n.reply(130)  # insufficient resources: back off (binding kept)
    return n


def failed() -> Node:
    n = renewing()
    n.reply(129)  # administratively prohibited: give up (binding kept)
    return n


def discovering() -> Node:
    n = renewing()
    n.reply(104, signed=False)  # unknown challenge: wait for a fresh one (binding kept)
    return n


def deregistering() -> Node:
    n = Node()
    n.link_up(address=HOME)
    return n


def at_home() -> Node:
    n = deregistering()
    n.reply(0)
    return n


def deregistering_away() -> Node:
    """Registered, then the operator deregisters all bindings."""
    n = registered()
    n.mn.deregister(n.at())
    return n


def deregistering_other() -> Node:
    """Registered, then the operator deregisters another care-of address."""
    n = registered()
    n.mn.deregister(n.at(), care_of_address=OTHER_COA)
    return n


def registering_deregistration() -> Node:
    """A request outstanding, then the operator deregisters all bindings."""
    n = registering()
    n.mn.deregister(n.at())
    return n


REACH: dict[str, tuple[Callable[[], Node], MnState]] = {
    "detached": (detached, S.DETACHED),
    "discovering": (discovering, S.DISCOVERING),
    "registering": (registering, S.REGISTERING),
    "registered": (registered, S.REGISTERED),
    "renewing": (renewing, S.REGISTERED),
    "backing off": (backing_off, S.BACKING_OFF),
    "deregistering": (deregistering, S.DEREGISTERING),
    "at home": (at_home, S.AT_HOME),
    "failed": (failed, S.FAILED),
    "deregistering away": (deregistering_away, S.REGISTERED),
    "deregistering other": (deregistering_other, S.REGISTERED),
    "registering deregistration": (registering_deregistration, S.REGISTERING),
}


# ----------------------------------------------------------------------------------------
# Producing each input
# ----------------------------------------------------------------------------------------


def request_sent(n: Node) -> None:
    if n.mn.state is S.DETACHED:
        n.link_up(address=COA)  # a co-located care-of address
    else:
        n.adv(FA2)  # another prefix: moved (or left home)


def deregistration_sent(n: Node) -> None:
    n.link_up(address=HOME)


def renewal_sent(n: Node) -> None:
    n.mn.deregister(n.at(), care_of_address=OTHER_COA)


def no_agent(n: Node) -> None:
    n.link_up("mn1")
    n.link_down("mn0")


def agent_lost(n: Node) -> None:
    n.mn.handle_timer(n.at(10_000.0))


def links_down(n: Node) -> None:
    n.link_down("mn0")


def binding_expired(n: Node) -> None:
    b = n.mn.binding
    assert b is not None and b.expires is not None
    n.until(b.expires)


def deregistration_unanswered(n: Node) -> None:
    n.until(n.now + 200.0)


def nothing_to_deregister(n: Node) -> None:
    # the node as one whose key comes from AAA (RFC 3957) and has none: no binding either
    n.mn.client.configured_sa = None
    n.mn.client.keys = AaaKeys("mn@example.net", b"mn-aaa-secret")
    n.mn.client.binding = None
    n.link_up(address=HOME)


def reply(code: int, signed: bool = True) -> Callable[[Node], None]:
    return lambda n: n.reply(code, signed=signed)


#: For each input, the reacher to start from in each state (default: the state's name).
DRIVE: dict[MnInput, Callable[[Node], None]] = {
    I.REQUEST_SENT: request_sent,
    I.RENEWAL_SENT: renewal_sent,
    I.DEREGISTRATION_SENT: deregistration_sent,
    I.ACCEPTED: reply(0),
    I.DEREGISTERED_AT_HOME: reply(0),
    I.DEREGISTERED_AWAY: reply(0),
    I.DEREGISTERED_KEEPING: reply(0),
    I.BACKED_OFF: reply(130),
    I.GAVE_UP: reply(129),
    I.NO_AGENT: no_agent,
    I.AGENT_LOST: agent_lost,
    I.CARE_OF_REFUSED: reply(77, signed=False),
    I.AWAIT_CHALLENGE: reply(104, signed=False),
    I.LINKS_DOWN: links_down,
    I.BINDING_EXPIRED: binding_expired,
    I.DEREGISTRATION_UNANSWERED: deregistration_unanswered,
    I.NOTHING_TO_DEREGISTER: nothing_to_deregister,
}

#: Where a pair needs a particular start (a request outstanding, a deregistration...).
START: dict[tuple[MnState, MnInput], str] = {
    (S.REGISTERED, I.ACCEPTED): "renewing",
    (S.REGISTERED, I.BACKED_OFF): "renewing",
    (S.REGISTERED, I.GAVE_UP): "renewing",
    (S.REGISTERED, I.CARE_OF_REFUSED): "renewing",
    (S.REGISTERED, I.AWAIT_CHALLENGE): "renewing",
    (S.REGISTERED, I.BINDING_EXPIRED): "renewing",
    (S.REGISTERED, I.DEREGISTERED_AWAY): "deregistering away",
    (S.REGISTERED, I.DEREGISTERED_KEEPING): "deregistering other",
    (S.REGISTERING, I.DEREGISTERED_AWAY): "registering deregistration",
}

_NAME = {state: name for name, (_, state) in REACH.items() if name == state.value}


@pytest.mark.parametrize(
    ("state", "inp"), legal_pairs(), ids=lambda x: str(x.name if hasattr(x, "name") else x)
)
def test_every_legal_pair_is_reached(
    state: MnState, inp: MnInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    reach, expected = REACH[START.get((state, inp), _NAME[state])]
    n = reach()
    assert n.mn.state is expected is state
    seen: list[tuple[MnState, MnInput]] = []
    lookup = MN_TRANSITIONS.lookup

    def record(s: MnState, i: MnInput) -> object:
        seen.append((s, i))
        return lookup(s, i)

    monkeypatch.setattr(MN_TRANSITIONS, "lookup", record)
    DRIVE[inp](n)
    assert seen and seen[0] == (state, inp), seen
    assert n.mn.counters.discarded["protocol_error"] == 0
    assert n.mn.state is MN_TRANSITIONS.table[(state, inp)][1] or len(seen) > 1


def test_table_is_tight() -> None:
    """One next state per pair; every pair not listed is a protocol error."""
    legal = set(legal_pairs())
    assert len(legal) == len(MN_TRANSITIONS.table)
    for s, i in itertools.product(MnState, MnInput):
        if (s, i) in legal:
            _effect, end = MN_TRANSITIONS.lookup(s, i)
            assert isinstance(end, MnState)
        else:
            with pytest.raises(ProtocolError):
                MN_TRANSITIONS.lookup(s, i)
    # the table checks something: far fewer pairs than |states| x |inputs|
    assert len(legal) < len(MnState) * len(MnInput) // 2


def test_every_state_is_reached() -> None:
    assert {state for _, state in REACH.values()} == set(MnState)


RAW: dict[str, Callable[[Node], object]] = {
    "link up": lambda n: n.link_up("mn2"),
    "link down": lambda n: n.link_down("mn3"),
    "icmp": lambda n: n.mn.handle(IcmpReceived(b"\x09", FA1, BCAST, "mn0", ttl=1), n.at()),
    "udp": lambda n: n.mn.handle(UdpReceived(b"\x03", FA1, HOME, 434, 434, "mn0", ttl=64), n.at()),
    "timer": lambda n: n.mn.handle_timer(n.at(5.0)),
    "deregister": lambda n: n.mn.deregister(n.at()),
}


@pytest.mark.parametrize("raw", list(RAW))
@pytest.mark.parametrize("start", list(REACH))
def test_any_input_in_any_state_is_no_protocol_error(start: str, raw: str) -> None:
    """Inputs are never refused by state: only outcomes move the machine."""
    n = REACH[start][0]()
    RAW[raw](n)
    assert n.mn.counters.discarded["protocol_error"] == 0
    assert n.mn.counters.discarded["internal_error"] == 0


def test_mobile_node_is_an_engine() -> None:
    """The shared engine shape (mip4.core.engine): mypy checks the assignment, the boundary
    counts into the shared Counters."""
    engine: Engine = Node().mn
    assert isinstance(engine.counters, Counters)
    assert engine.next_deadline() is None
