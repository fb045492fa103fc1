"""The mobile node's handling of an advertisement it heard before (issue 13): the same
advertisement but for its sequence number refreshes the agent's record in place (no new
record, no copy of the decoded advertisement), while sequence number and lifetime handling
run as for any advertisement (RFC 5944 §2.4.2.1, §2.4.4)."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mip4.core.discovery import AdvertisementResult, AgentDiscovery
from mip4.core.mobile_node import MobileNode, MobileNodeConfig
from mip4.security.sa import SecurityAssociation
from mip4.wire.icmp import AgentAdvertisement, AgentFlags, decode_icmp

from .netsim import advertisement

FA = IPv4Address("192.168.1.1")
MAC = b"\x02" * 6


def heard(
    d: AgentDiscovery,
    sequence: int,
    now: float,
    *,
    mac: bytes = MAC,
    lifetime: int = 30,
    flags: AgentFlags = AgentFlags.F,
    challenge: bytes | None = None,
) -> AdvertisementResult | None:
    data = advertisement(FA, sequence=sequence, lifetime=lifetime, flags=flags, challenge=challenge)
    adv = decode_icmp(data)
    assert isinstance(adv, AgentAdvertisement)
    return d.advertisement(adv, FA, "e0", mac, now)


def test_same_advertisement_refreshes_the_record_in_place() -> None:
    d = AgentDiscovery()
    first = heard(d, 300, 0.0, lifetime=30)
    assert first is not None and first.new
    again = heard(d, 301, 20.0, lifetime=30)
    assert again is not None and not again.new and not again.rebooted
    assert again.agent is first.agent  # no new record
    assert again.agent.sequence == 301 and again.previous_sequence == 300
    assert again.agent.expires == 50.0 and again.agent.heard == 20.0  # §2.4.2.1
    assert d.next_deadline() == 50.0
    assert d.expire(49.9) == [] and d.expire(50.0) == [first.agent]


@pytest.mark.parametrize(
    ("prev", "cur", "reboot"),
    [(300, 5, True), (300, 255, True), (300, 256, False), (0xFFFF, 256, False), (10, 11, False)],
)
def test_reboot_detection_on_the_cached_path(prev: int, cur: int, reboot: bool) -> None:
    """RFC 5944 §2.4.4 / §2.3.2: the sequence number is read even when nothing else
    changed; a wrap from 0xffff to 256 is no reboot."""
    d = AgentDiscovery()
    a = heard(d, prev, 0.0)
    r = heard(d, cur, 1.0)
    assert a is not None and r is not None
    assert r.agent is a.agent
    assert r.rebooted is reboot and r.previous_sequence == prev and r.agent.sequence == cur


def test_changed_advertisement_makes_a_new_record() -> None:
    d = AgentDiscovery()
    a = heard(d, 1, 0.0)
    b = heard(d, 2, 1.0, flags=AgentFlags.F | AgentFlags.B)
    assert a is not None and b is not None
    assert b.agent is not a.agent and b.agent.busy and not a.agent.busy
    c = heard(d, 3, 2.0, challenge=b"\x01\x02\x03\x04")
    assert c is not None and c.agent is not b.agent
    assert c.agent.advertisement.challenge == b"\x01\x02\x03\x04"
    e = heard(d, 4, 3.0, challenge=b"\x01\x02\x03\x04", mac=b"\x02\x00\x00\x00\x00\x09")
    assert e is not None and e.agent is not c.agent  # another link-layer source


def test_nodes_share_one_decoded_advertisement() -> None:
    """No per-node copy: every node that heard the same content holds the same object,
    including one that first heard it with another sequence number."""
    d1, d2, d3 = AgentDiscovery(), AgentDiscovery(), AgentDiscovery()
    data = advertisement(FA, sequence=40, lifetime=33)
    a1, a2 = decode_icmp(data), decode_icmp(bytes(bytearray(data)))
    later = decode_icmp(advertisement(FA, sequence=41, lifetime=33))
    assert isinstance(a1, AgentAdvertisement) and isinstance(a2, AgentAdvertisement)
    assert isinstance(later, AgentAdvertisement)
    r1 = d1.advertisement(a1, FA, "e0", MAC, 0.0)
    r2 = d2.advertisement(a2, FA, "e0", MAC, 0.0)
    r3 = d3.advertisement(later, FA, "e0", MAC, 1.0)
    assert r1 is not None and r2 is not None and r3 is not None
    assert r1.agent.advertisement is r2.agent.advertisement is r3.agent.advertisement
    assert r3.agent.sequence == 41
    assert r1.agent.is_foreign_agent and not r1.agent.is_home_agent
    assert r1.agent.flags == AgentFlags.F


def test_mobile_node_keeps_no_generator_of_its_own() -> None:
    """The engine's ``rng`` is used by its agent discovery (solicitation jitter): no
    Mersenne Twister state per node."""
    rng = random.Random(1)
    cfg = MobileNodeConfig(home_address=IPv4Address("10.0.0.5"), home_agent=IPv4Address("10.0.0.1"))
    mn = MobileNode(cfg, SecurityAssociation(spi=1000, key=b"k" * 16), rng=rng)
    assert mn.discovery._rng is rng
    assert not hasattr(cfg, "__dict__")  # slotted configuration


AGENTS = [IPv4Address("192.168.1.1"), IPv4Address("192.168.2.1"), IPv4Address("192.168.3.1")]
IFACES = ["e0", "e1"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["hear", "forget", "expire", "link_down"]),
            st.integers(0, 2),
            st.integers(0, 1),
            st.integers(1, 40),
        ),
        max_size=40,
    )
)
def test_agents_kept_in_the_order_first_heard(ops: list[tuple[str, int, int, int]]) -> None:
    """The first agent has a slot of its own, the others a dict: together they behave as
    one dict keyed by (interface, address), in the order first heard (a replaced record
    keeps its place), which ``choose`` relies on (the first usable agent wins)."""
    d = AgentDiscovery()
    model: dict[tuple[str, IPv4Address], float] = {}
    now = 0.0
    for op, a, i, n in ops:
        now += 1.0
        key = (IFACES[i], AGENTS[a])
        if op == "hear":
            data = advertisement(AGENTS[a], sequence=n, lifetime=n)
            adv = decode_icmp(data)
            assert isinstance(adv, AgentAdvertisement)
            d.advertisement(adv, AGENTS[a], IFACES[i], MAC, now)
            model[key] = now + n
        elif op == "forget":
            got = d.forget(*key)
            assert (got is not None) == (model.pop(key, None) is not None)
        elif op == "expire":
            gone = d.expire(now + n)
            want = [k for k, e in model.items() if e <= now + n]
            assert [(g.interface, g.address) for g in gone] == want
            for k in want:
                del model[k]
        else:
            gone = d.link_down(IFACES[i])
            want = [k for k in model if k[0] == IFACES[i]]
            assert [(g.interface, g.address) for g in gone] == want
            for k in want:
                del model[k]
        assert [(g.interface, g.address) for g in d.agents()] == list(model)
        assert [g.expires for g in d.agents()] == list(model.values())
        assert d.next_deadline() == (min(model.values()) if model else None)
        for k in model:
            got = d.get(*k)
            assert got is not None and (got.interface, got.address) == k
