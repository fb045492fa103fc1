"""The mobile node's fast paths, held against its general code: the same inputs to a node
with the fast paths and to one without give the same actions and leave the same state."""

from __future__ import annotations

import random
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.core.events import Event, IcmpReceived, LinkDown, LinkUp, UdpReceived
from mip4.core.mn_attachment import AttachmentTracker
from mip4.core.mobile_node import MobileNode, MobileNodeConfig
from mip4.security.sa import SecurityAssociation
from mip4.wire.icmp import ADVERTISEMENTS, AgentFlags, decode_icmp
from mip4.wire.messages import RegistrationRequest

from .netsim import advertisement, reply_for

A = IPv4Address
HOME, HA = A("10.0.0.5"), A("10.0.0.1")
FA, FA2 = A("192.168.1.1"), A("192.168.2.1")
MAC, MAC2 = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
BCAST = A("255.255.255.255")
SA = SecurityAssociation(spi=1000, key=bytes(range(16)))


def make(fast: bool) -> tuple[MobileNode, list[int]]:
    """A node, and a counter of the advertisements its fast path took (``fast=False``:
    the fast path always declines, so the general code does everything)."""
    cfg = MobileNodeConfig(home_address=HOME, home_agent=HA, lifetime=300)
    mn = MobileNode(cfg, SA, 1_700_000_000.0, rng=random.Random(7))
    taken = [0]

    class Tracker(AttachmentTracker):
        __slots__ = ()

        def heard_again(self, ev: IcmpReceived, now: float) -> bool:
            if not fast:
                return False
            done = super().heard_again(ev, now)
            taken[0] += done
            return done

    mn.where.__class__ = Tracker
    return mn, taken


def snapshot(mn: MobileNode) -> tuple[Any, ...]:
    d = mn.discovery
    agents = [
        (a.address, a.interface, a.link_address, a.advertisement, a.expires, a.sequence, a.heard)
        for a in d.agents()
    ]
    p = mn.client.pending
    return (
        mn.state,
        mn.attachment,
        agents,
        d.soliciting,
        d.next_deadline(),
        p.request if p is not None else None,
        mn.binding,
        mn.counters.snapshot(),
        mn.next_deadline(),
        mn.client.await_challenge,
        sorted(mn.where.refused),
    )


def adv(
    src: IPv4Address = FA, mac: bytes = MAC, iface: str = "mn0", **kw: Any
) -> Callable[[MobileNode], Event]:
    def make_event(mn: MobileNode) -> Event:
        return IcmpReceived(advertisement(src, **kw), src, BCAST, iface, link_src=mac, ttl=1)

    return make_event


def reply(code: int = 0) -> Callable[[MobileNode], Event | None]:
    def make_event(mn: MobileNode) -> Event | None:
        p = mn.client.pending
        if p is None:
            return None
        payload = reply_for(RegistrationRequest.decode(p.request.raw), code, sa=SA)
        return UdpReceived(payload, FA, HOME, 434, 434, "mn0", ttl=64)

    return make_event


def const(ev: Event) -> Callable[[MobileNode], Event]:
    return lambda mn: ev


#: what can happen to a node, each a maker of the event (from the node's own state: a
#: reply answers its outstanding request) or the timer
STEPS: dict[str, Callable[[MobileNode], Event | None]] = {
    "link up": const(LinkUp("mn0")),
    "link down": const(LinkDown("mn0")),
    "second link up": const(LinkUp("mn1")),
    "second link down": const(LinkDown("mn1")),
    "adv": adv(sequence=300),
    "adv next": adv(sequence=301),
    "adv later": adv(sequence=900),
    "adv reboot": adv(sequence=3),
    "adv reboot again": adv(sequence=4),
    "adv busy": adv(sequence=302, flags=AgentFlags.F | AgentFlags.B),
    "adv other lifetime": adv(sequence=303, lifetime=45),
    "adv prefix": adv(sequence=304, prefix_len=24),
    "adv challenge": adv(sequence=305, challenge=b"abcd"),
    "adv home agent flag": adv(sequence=306, flags=AgentFlags.F | AgentFlags.H),
    "adv other mac": adv(sequence=307, mac=MAC2),
    "adv on second link": adv(sequence=308, iface="mn1"),
    "adv other agent": adv(FA2, MAC2, sequence=10),
    "adv other agent prefix": adv(FA2, MAC2, sequence=11, prefix_len=24),
    "reply": reply(0),
    "reply denied": reply(130),  # insufficient resources: back off
    "reply challenge": reply(104),  # unknown challenge: await a fresh one
}


def run(steps: list[tuple[str, float]], fast: bool) -> tuple[list[Any], int]:
    ADVERTISEMENTS.clear()  # the same memo state for both runs: nothing heard yet
    mn, taken = make(fast)
    now = 0.0
    seen: list[Any] = []
    for name, dt in steps:
        now += dt
        if name.startswith("another node hears "):
            # the memo decodes it for that node: this node then hears bytes known already
            ev = STEPS[name.removeprefix("another node hears ")](mn)
            assert isinstance(ev, IcmpReceived)
            decode_icmp(ev.payload)
            continue
        if name == "timer":
            d = mn.next_deadline()
            if d is not None:
                now = max(now, d)
            seen.append(("timer", now, mn.handle_timer(now), snapshot(mn)))
            continue
        ev = STEPS[name](mn)
        if ev is None:
            continue
        seen.append((name, now, mn.handle(ev, now), snapshot(mn)))
    return seen, taken[0]


steps = st.lists(
    st.tuples(
        st.sampled_from(
            [*STEPS, *(f"another node hears {k}" for k in STEPS if "adv" in k), "timer"]
        ),
        st.sampled_from([0.0, 0.5, 5.0, 40.0]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_advertisement_fast_path_is_the_general_code(script: list[tuple[str, float]]) -> None:
    fast, _ = run(script, fast=True)
    general, _ = run(script, fast=False)
    assert fast == general


def test_fast_path_is_taken_and_declines_what_it_must() -> None:
    """Not vacuous: a node hearing its agent's advertisement again takes it (the same
    bytes, or the next sequence number already decoded for another node); a reboot, a
    change of content, another link-layer source, a solicitation in progress, an awaited
    challenge take the general code -- and each of these gives what the general code
    gives."""
    base = [("link up", 0.0), ("adv", 0.0), ("reply", 0.1)]  # registered
    cases = {
        "same bytes": ([*base, ("adv", 1.0)], 1),
        "next sequence, decoded for another node first": (
            [
                *base,
                ("another node hears adv next", 1.0),
                ("adv next", 0.0),
                ("another node hears adv later", 1.0),
                ("adv later", 0.0),
            ],
            2,
        ),
        "next sequence, heard first (decoded here)": ([*base, ("adv next", 1.0)], 0),
        "reboot": ([*base, ("adv reboot", 1.0)], 0),
        "busy": ([*base, ("adv busy", 1.0)], 0),
        "other lifetime": ([*base, ("adv other lifetime", 1.0)], 0),
        "home agent flag": ([*base, ("adv home agent flag", 1.0)], 0),
        "other mac": ([*base, ("adv other mac", 1.0)], 0),
        "soliciting on a second link": ([*base, ("second link up", 0.0), ("adv", 1.0)], 0),
        "awaiting a challenge": (
            [
                ("link up", 0.0),
                ("adv challenge", 0.0),
                ("reply challenge", 0.1),
                ("adv challenge", 1.0),
            ],
            0,
        ),
        "not registered yet": ([("link up", 0.0), ("adv", 0.0), ("adv", 0.5)], 1),
    }
    for name, (script, expected) in cases.items():
        fast, taken = run(script, fast=True)
        general, none = run(script, fast=False)
        assert fast == general, name
        assert (taken, none) == (expected, 0), name
    registered = run(base, fast=True)[0][-1][3]
    assert registered[0].value == "registered" and registered[6] is not None


def test_log_records_are_the_constructors() -> None:
    from mip4.core.actions import Log
    from mip4.core.mn_state import log

    fields: dict[str, object] = {"why": "link down", "n": 3}
    fast, slow = log("mn.detached", fields), Log("mn.detached", dict(fields))
    assert fast == slow and vars(fast) == vars(slow) and list(vars(fast)) == list(vars(slow))
    assert fast.level == slow.level and type(fast) is Log
