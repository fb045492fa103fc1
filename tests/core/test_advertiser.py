"""The advertiser shared by the foreign agent and the home agent (core/advertiser.py)."""

from __future__ import annotations

import ast
import random
from ipaddress import IPv4Address
from pathlib import Path

import pytest

import mip4.core
from mip4.core.advertiser import (
    ALL_SYSTEMS,
    AdvertisedLink,
    Advertiser,
    AdvertiserSettings,
    icmp_lifetime,
    next_sequence,
)
from mip4.core.counters import Counters
from mip4.core.registration import Discard, RegistrationDenied
from mip4.wire.codes import ReplyCode
from mip4.wire.icmp import AgentAdvertisement, AgentFlags, AgentSolicitation, decode_icmp

A = IPv4Address
MAC = b"\x02\x00\x00\x00\x00\x01"
LINK = AdvertisedLink("vis0", A("10.1.0.1"), 24, (A("10.1.0.1"),))


def make(**kw: object) -> tuple[Advertiser, Counters]:
    settings = AdvertiserSettings(
        flags=AgentFlags.F,
        registration_lifetime=1800,
        icmp_lifetime=3,
        **kw,  # type: ignore[arg-type]
    )
    counters = Counters()
    return Advertiser((LINK,), settings, counters, random.Random(1)), counters


def decoded(payload: bytes) -> AgentAdvertisement:
    msg = decode_icmp(payload)
    assert isinstance(msg, AgentAdvertisement) and msg.mobility is not None
    return msg


def test_sequence_rule_rfc5944_2_3_2() -> None:
    assert [next_sequence(s) for s in (0, 1, 255, 0xFFFE, 0xFFFF)] == [1, 2, 256, 0xFFFF, 256]
    adv, counters = make(interval=1.0)
    seen = [decoded(adv.advertise("vis0", ALL_SYSTEMS).payload).mobility for _ in range(3)]
    assert [m.sequence for m in seen if m is not None] == [0, 1, 2]
    assert counters.events["advertisements_sent"] == 3


def test_schedule_and_links() -> None:
    adv, _ = make(interval=2.0)
    assert adv.next_deadline() == 0.0
    (first,) = adv.on_timer(0.0)
    assert (first.dst, first.ttl, first.src, first.interface) == (
        ALL_SYSTEMS,
        1,
        LINK.address,
        "vis0",
    )
    assert adv.on_timer(1.0) == [] and adv.next_deadline() == 2.0
    assert adv.set_link("vis0", False, 1.5) and adv.next_deadline() is None
    assert adv.on_timer(5.0) == []
    assert adv.set_link("vis0", True, 6.0) and adv.next_deadline() == 6.0
    assert not adv.set_link("nope0", True, 6.0)
    quiet, _ = make()  # no interval: solicitations only
    assert quiet.next_deadline() is None and quiet.on_timer(100.0) == []


def test_busy_flag_and_contents() -> None:
    adv, _ = make()
    plain = decoded(adv.advertisement("vis0").encode())
    busy = decoded(adv.advertisement("vis0", busy=True).encode())
    assert plain.mobility is not None and busy.mobility is not None
    assert plain.mobility.flags == AgentFlags.F
    assert busy.mobility.flags == AgentFlags.F | AgentFlags.B
    assert plain.mobility.care_of_addresses == (LINK.address,)
    assert plain.prefix_lengths == (24,) and plain.lifetime == 3
    assert icmp_lifetime(None, 1.0) == 3 and icmp_lifetime(9, 1.0) == 9
    assert icmp_lifetime(None, 1e9) == 0xFFFF


def test_solicitation_answers() -> None:
    sol = AgentSolicitation().encode()
    assert Advertiser.is_solicitation(sol)
    with pytest.raises(Discard):
        Advertiser.is_solicitation(b"\x0a")
    adv, counters = make(solicitation_interval=5.0)
    unicast = adv.answer("vis0", A("10.0.0.10"), MAC, 0.0)
    assert (unicast.dst, unicast.link_dst) == (A("10.0.0.10"), MAC)
    with pytest.raises(Discard, match="solicitation_rate_limited"):
        adv.answer("vis0", A("10.0.0.10"), MAC, 1.0)
    multicast = adv.answer("vis0", A("0.0.0.0"), None, 6.0)
    assert (multicast.dst, multicast.link_dst) == (ALL_SYSTEMS, None)
    # without the link-layer address: multicast, unless ARP works on the link (home link)
    assert adv.answer("vis0", A("10.0.0.10"), None, 12.0).dst == ALL_SYSTEMS
    home, _ = make(arp_on_link=True)
    assert home.answer("vis0", A("10.0.0.10"), None, 0.0).dst == A("10.0.0.10")
    adv.set_link("vis0", False, 20.0)
    with pytest.raises(Discard, match="link_down"):
        adv.answer("vis0", A("10.0.0.10"), MAC, 30.0)
    assert counters.events["solicitations_answered"] == 3


def test_challenge_ring_rfc4721() -> None:
    adv, _ = make(challenge_length=8, challenge_window=2)
    challenges = [decoded(adv.advertise("vis0", ALL_SYSTEMS).payload).challenge for _ in range(3)]
    assert all(c is not None and len(c) == 8 for c in challenges) and len(set(challenges)) == 3
    oldest, current, newest = challenges

    def code(c: bytes | None) -> ReplyCode | None:
        try:
            adv.check_challenge("vis0", c)
        except RegistrationDenied as d:
            return d.code
        return None

    assert code(None) is ReplyCode.FA_MISSING_CHALLENGE
    assert code(b"never-advertised") is ReplyCode.FA_UNKNOWN_CHALLENGE
    assert code(oldest) is ReplyCode.FA_STALE_CHALLENGE  # left the window
    assert code(current) is None and code(newest) is None
    assert current is not None
    adv.spend_challenge(current)
    assert code(current) is ReplyCode.FA_STALE_CHALLENGE  # answered once already


def test_home_agent_does_not_import_the_foreign_agent() -> None:
    """Issue 8 §2: the agents share core/advertiser.py, not each other."""
    path = Path(mip4.core.__file__).parent / "home_agent.py"
    imported = {
        node.module
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "advertiser" in imported
    assert not {m for m in imported if m.split(".")[-1] in ("foreign_agent", "fa_config")}


def test_next_deadline_is_the_earliest_due_on_an_up_link_over_many_links() -> None:
    """Issue 13 (asked after every read): the one-pass minimum answers as the minimum
    over the up links that have an advertisement due, for any mix of links."""
    links = tuple(
        AdvertisedLink(f"vis{i}", A(f"10.1.{i}.1"), 24, (A(f"10.1.{i}.1"),)) for i in range(6)
    )
    settings = AdvertiserSettings(
        flags=AgentFlags.F, registration_lifetime=1800, icmp_lifetime=3, interval=2.0
    )
    rng = random.Random(13)
    for _ in range(300):
        adv = Advertiser(links, settings, Counters(), random.Random(1))
        for link in links:
            adv.set_link(link.interface, rng.random() < 0.6, rng.choice([0.0, 1.0, 5.5, 9.0]))
        for st in adv._state.values():
            if rng.random() < 0.3:
                st.next_advertisement = None
            elif rng.random() < 0.5:
                st.next_advertisement = rng.choice([3.0, 3.0, 7.25, 0.5])
        due = [
            st.next_advertisement
            for st in adv._state.values()
            if st.up and st.next_advertisement is not None
        ]
        assert adv.next_deadline() == (min(due) if due else None)
