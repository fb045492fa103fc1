"""Unit tests of the mobile node's agent discovery bookkeeping (RFC 5944 §2.4)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mip4.core.discovery import (
    AgentDiscovery,
    address_moved,
    prefix_moved,
    sequence_shows_reboot,
)
from mip4.wire.icmp import AgentAdvertisement, AgentFlags

from .netsim import advertisement

A = IPv4Address
FA = A("192.168.1.1")
FA2 = A("192.168.2.1")


def adv(src: IPv4Address = FA, **kw: object) -> AgentAdvertisement:
    return AgentAdvertisement.decode(advertisement(src, **kw))  # type: ignore[arg-type]


def test_plain_router_advertisement_is_not_an_agent() -> None:
    d = AgentDiscovery()
    plain = AgentAdvertisement(lifetime=10)
    assert d.advertisement(AgentAdvertisement.decode(plain.encode()), FA, "e0", None, 0.0) is None
    assert d.agents() == []


def test_agent_recorded_until_lifetime() -> None:
    d = AgentDiscovery()
    r = d.advertisement(adv(lifetime=30, sequence=4), FA, "e0", b"\x02" * 6, 5.0)
    assert r is not None and r.new and not r.rebooted
    agent = r.agent
    assert agent.expires == 35.0 and agent.is_foreign_agent and agent.link_address == b"\x02" * 6
    assert d.next_deadline() == 35.0
    assert d.expire(34.9) == []
    assert d.expire(35.0) == [agent]
    assert d.agents() == []


def test_refresh_extends_lifetime() -> None:
    d = AgentDiscovery()
    d.advertisement(adv(lifetime=30, sequence=1), FA, "e0", None, 0.0)
    r = d.advertisement(adv(lifetime=30, sequence=2), FA, "e0", None, 20.0)
    assert r is not None and not r.new and r.previous_sequence == 1
    assert d.expire(30.0) == []
    assert len(d.expire(50.0)) == 1


@pytest.mark.parametrize(
    ("prev", "cur", "reboot"),
    [
        (300, 5, True),
        (300, 255, True),
        (300, 256, False),  # not below 256
        (0xFFFF, 256, False),  # rollover (RFC 5944 §2.3.2)
        (10, 3, True),
        (10, 11, False),
        (10, 10, False),
        (0, 0, False),
    ],
)
def test_reboot_rule(prev: int, cur: int, reboot: bool) -> None:
    assert sequence_shows_reboot(prev, cur) is reboot
    d = AgentDiscovery()
    d.advertisement(adv(sequence=prev), FA, "e0", None, 0.0)
    r = d.advertisement(adv(sequence=cur), FA, "e0", None, 1.0)
    assert r is not None and r.rebooted is reboot


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_reboot_rule_property(prev: int, cur: int) -> None:
    assert sequence_shows_reboot(prev, cur) == (cur < prev and cur < 256)


def test_prefix_move_detection() -> None:
    d = AgentDiscovery()
    r1 = d.advertisement(adv(FA, prefix_len=24), FA, "e0", None, 0.0)
    r2 = d.advertisement(adv(FA2, prefix_len=24), FA2, "e0", None, 0.0)
    r3 = d.advertisement(adv(A("192.168.1.7"), prefix_len=24), A("192.168.1.7"), "e0", None, 0.0)
    r4 = d.advertisement(adv(A("192.168.1.8")), A("192.168.1.8"), "e0", None, 0.0)
    assert r1 and r2 and r3 and r4
    assert prefix_moved(r1.agent, r2.agent) is True
    assert prefix_moved(r1.agent, r3.agent) is False
    # RFC 5944 §2.4.2.2: not used unless both carry the extension
    assert prefix_moved(r1.agent, r4.agent) is None
    from ipaddress import IPv4Network

    assert address_moved(IPv4Network("192.168.1.0/24"), r2.agent) is True
    assert address_moved(IPv4Network("192.168.1.0/24"), r1.agent) is False
    assert address_moved(None, r1.agent) is None


def test_flags() -> None:
    d = AgentDiscovery()
    r = d.advertisement(
        adv(flags=AgentFlags.F | AgentFlags.B | AgentFlags.R | AgentFlags.H), FA, "e0", None, 0
    )
    assert r is not None
    a = r.agent
    assert a.busy and a.registration_required and a.is_home_agent and a.is_foreign_agent
    assert a.registration_lifetime == 600 and a.care_of_addresses == (FA,)


def test_link_down_forgets_agents_and_stops_soliciting() -> None:
    d = AgentDiscovery()
    d.advertisement(adv(), FA, "e0", None, 0.0)
    d.advertisement(adv(FA2), FA2, "e1", None, 0.0)
    d.start_soliciting("e0", 0.0)
    assert [a.address for a in d.link_down("e0")] == [FA]
    assert not d.soliciting
    assert [a.address for a in d.agents()] == [FA2]


def test_solicitation_schedule() -> None:
    d = AgentDiscovery(initial_solicitations=3, max_interval=10.0, max_solicitations=7)
    d.start_soliciting("e0", 100.0)
    times = []
    t = 100.0
    while (n := d.next_deadline()) is not None:
        t = n
        assert d.poll(t - 0.001) is None
        assert d.poll(t) == "e0"
        times.append(t - 100.0)
    assert times == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 26.0]  # intervals 1 1 2 4 8 10
    assert d.solicitations_sent == 7


def test_restart_keeps_backoff() -> None:
    d = AgentDiscovery()
    d.start_soliciting("e0", 0.0)
    d.poll(0.0)
    d.start_soliciting("e0", 0.5)  # no burst
    assert d.next_deadline() == 1.0


def test_rate_limit_validated() -> None:
    with pytest.raises(ValueError):
        AgentDiscovery(initial_interval=0.5)
    with pytest.raises(ValueError):
        AgentDiscovery(max_interval=0.5)
