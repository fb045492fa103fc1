"""Unit tests of the mobile node engine, driven by hand-built advertisements and replies."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.core.actions import (
    Action,
    AtHome,
    AwayFromHome,
    Encapsulation,
    GratuitousArp,
    Log,
    SendIcmp,
    SendUdp,
    UseColocatedAddress,
    UseForeignAgent,
)
from mip4.core.events import IcmpReceived, LinkDown, LinkUp, UdpReceived
from mip4.core.mn_reactions import REPLY_REACTIONS, Reaction, reaction_for
from mip4.core.mobile_node import (
    MN_TRANSITIONS,
    MnInput,
    MnState,
    MobileNode,
    MobileNodeConfig,
    ReverseTunnel,
)
from mip4.core.registration import ProtocolError
from mip4.security.auth import verify
from mip4.security.replay import NTP_UNIX_OFFSET, high_word, low_word
from mip4.security.sa import ReplayMethod, SecurityAssociation
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import MobileForeignChallengeExtension
from mip4.wire.icmp import AgentFlags, AgentSolicitation, decode_icmp
from mip4.wire.messages import RegistrationFlags, RegistrationRequest

from .netsim import advertisement, reply_for

T = TypeVar("T")
A = IPv4Address
HOME = A("10.0.0.5")
HA = A("10.0.0.1")
FA = A("192.168.1.1")
FA2 = A("192.168.2.1")
COA = A("172.16.0.9")
MAC = b"\x02\x00\x00\x00\x00\x01"
BCAST = A("255.255.255.255")
UNIX0 = 1_700_000_000.0
SA = SecurityAssociation(spi=1000, key=bytes(range(16)))
SA_NONCE = SecurityAssociation(spi=1000, key=bytes(range(16)), replay=ReplayMethod.NONCES)
WRONG_SA = SecurityAssociation(spi=1000, key=b"x" * 16)


def make(sa: SecurityAssociation = SA, **kw: object) -> MobileNode:
    cfg = MobileNodeConfig(home_address=HOME, home_agent=HA, **kw)  # type: ignore[arg-type]
    return MobileNode(cfg, sa, UNIX0, rng=random.Random(7))


def of(actions: Sequence[object], cls: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, cls)]


def requests(actions: Sequence[object]) -> list[RegistrationRequest]:
    return [RegistrationRequest.decode(a.payload) for a in of(actions, SendUdp)]


def state_of(mn: MobileNode) -> MnState:
    return mn.state


def logs(actions: Sequence[object], event: str) -> list[Log]:
    return [a for a in of(actions, Log) if a.event == event]


def adv_event(src: IPv4Address = FA, iface: str = "mn0", **kw: object) -> IcmpReceived:
    return IcmpReceived(advertisement(src, **kw), src, BCAST, iface, link_src=MAC, ttl=1)  # type: ignore[arg-type]


def udp(payload: bytes, src: IPv4Address = FA, dst: IPv4Address = HOME) -> UdpReceived:
    return UdpReceived(payload, src, dst, 434, 434, "mn0", ttl=64)


def attach_fa(
    mn: MobileNode, now: float = 0.0, **kw: object
) -> tuple[list[Action], RegistrationRequest]:
    mn.handle(LinkUp("mn0"), now)
    acts = mn.handle(adv_event(**kw), now)  # type: ignore[arg-type]
    reqs = requests(acts)
    assert len(reqs) == 1, acts
    return acts, reqs[0]


def register_fa(mn: MobileNode, now: float = 0.0, **kw: object) -> RegistrationRequest:
    _, req = attach_fa(mn, now, **kw)
    acts = mn.handle(udp(reply_for(req, sa=SA)), now + 0.1)
    assert mn.registered, acts
    return req


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"lifetime": 0},
        {"lifetime": 70000},
        {"retransmit_initial": 0.5},
        {"retransmit_max": 0.5},
        {"renew_fraction": 1.0},
        {"encapsulations": ()},
        {"home_prefix_len": 33},
    ],
)
def test_config_rejects_bad_values(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MobileNodeConfig(home_address=HOME, home_agent=HA, **kw)  # type: ignore[arg-type]


def test_config_directed_broadcast_means_home_agent_discovery() -> None:
    assert MobileNodeConfig(home_address=HOME, home_agent=A("10.0.0.255")).discovers_home_agent
    assert not MobileNodeConfig(home_address=HOME, home_agent=HA).discovers_home_agent


# ----------------------------------------------------------------------------------------
# Reply code table
# ----------------------------------------------------------------------------------------


def test_every_reply_code_has_a_reaction() -> None:
    assert sorted(REPLY_REACTIONS) == list(range(256))
    for code, r in REPLY_REACTIONS.items():
        assert r.code == code and r.reason
        assert str(code) in r.reason


def test_only_0_and_1_register() -> None:
    assert {c for c, r in REPLY_REACTIONS.items() if r.reaction is Reaction.REGISTERED} == {0, 1}


@pytest.mark.parametrize(
    ("code", "reaction"),
    [
        (ReplyCode.HA_IDENTIFICATION_MISMATCH, Reaction.RESYNC),
        (ReplyCode.FA_LIFETIME_TOO_LONG, Reaction.RETRY_LIFETIME),
        (ReplyCode.HA_UNKNOWN_HA_ADDRESS, Reaction.RETRY_HOME_AGENT),
        (ReplyCode.FA_REVERSE_TUNNEL_MANDATORY, Reaction.RETRY_WITH_T),
        (ReplyCode.HA_REVERSE_TUNNEL_UNAVAILABLE, Reaction.RETRY_WITHOUT_T),
        (ReplyCode.HA_ENCAPSULATION_UNAVAILABLE, Reaction.RETRY_IPIP),
        (ReplyCode.FA_STALE_CHALLENGE, Reaction.NEW_CHALLENGE),
        (ReplyCode.HA_MN_FAILED_AUTH, Reaction.GIVE_UP),
        (ReplyCode.HA_INSUFFICIENT_RESOURCES, Reaction.BACK_OFF),
        (ReplyCode.FA_INVALID_COA, Reaction.OTHER_AGENT),
        (200, Reaction.BACK_OFF),
    ],
)
def test_reaction_table_entries(code: int, reaction: Reaction) -> None:
    assert reaction_for(code).reaction is reaction


def test_transition_table_is_enforced() -> None:
    # a reply cannot register a node that has no request outstanding
    with pytest.raises(ProtocolError):
        MN_TRANSITIONS.lookup(MnState.AT_HOME, MnInput.ACCEPTED)
    with pytest.raises(ProtocolError):
        MN_TRANSITIONS.lookup(MnState.FAILED, MnInput.ACCEPTED)
    # and the engine reports (never raises) a transition the table does not allow
    mn = make()
    mn.handle(LinkUp("mn0", HOME, 24), 0.0)
    mn.state = MnState.AT_HOME
    bogus = MN_TRANSITIONS.table.pop((MnState.AT_HOME, MnInput.LINKS_DOWN))
    try:
        acts = mn.handle(LinkDown("mn0"), 1.0)
    finally:
        MN_TRANSITIONS.table[(MnState.AT_HOME, MnInput.LINKS_DOWN)] = bogus
    assert logs(acts, "mn.protocol_error") and mn.counters.discarded["protocol_error"] == 1


# ----------------------------------------------------------------------------------------
# Agent solicitation (RFC 5944 §2.4)
# ----------------------------------------------------------------------------------------


def test_solicits_on_foreign_link_with_backoff() -> None:
    mn = make(solicit_max_interval=16.0, solicit_jitter=0.0)
    acts = mn.handle(LinkUp("mn0"), 0.0)
    times = []
    sol = of(acts, SendIcmp)
    assert len(sol) == 1
    assert sol[0].dst == A("224.0.0.2") and sol[0].ttl == 1 and sol[0].interface == "mn0"
    assert isinstance(decode_icmp(sol[0].payload), AgentSolicitation)
    times.append(0.0)
    now = 0.0
    while len(times) < 9:
        d = mn.next_deadline()
        assert d is not None
        now = d
        if of(mn.handle_timer(now), SendIcmp):
            times.append(now)
    # three at one per second, then doubling, bounded by 16 s
    assert times == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 48.0, 64.0]
    assert state_of(mn) is MnState.DISCOVERING


def test_advertisement_stops_solicitation() -> None:
    mn = make()
    mn.handle(LinkUp("mn0"), 0.0)
    mn.handle(adv_event(), 0.5)
    assert not mn.discovery.soliciting


# ----------------------------------------------------------------------------------------
# Registration through a foreign agent (RFC 5944 §3.6.1)
# ----------------------------------------------------------------------------------------


def test_request_through_foreign_agent() -> None:
    mn = make(lifetime=900)
    acts, req = attach_fa(mn, registration_lifetime=300)
    (send,) = of(acts, SendUdp)
    assert send.dst == FA and send.ttl == 1 and send.link_dst == MAC
    assert send.src == HOME and send.interface == "mn0"
    assert req.home_address == HOME and req.home_agent == HA
    assert req.care_of_address == FA
    assert req.lifetime == 300  # capped by the agent's registration lifetime
    assert not req.flags & RegistrationFlags.D
    verify(req, 32, lambda spi: SA if spi == SA.spi else None)
    assert abs(high_word(req.identification) - (UNIX0 + NTP_UNIX_OFFSET)) <= 1
    assert state_of(mn) is MnState.REGISTERING and not mn.registered


def test_care_of_address_is_the_advertised_one() -> None:
    mn = make()
    _, req = attach_fa(mn, care_of_addresses=(A("192.168.1.100"),))
    assert req.care_of_address == A("192.168.1.100")


def test_busy_agent_not_used() -> None:
    mn = make()
    mn.handle(LinkUp("mn0"), 0.0)
    acts = mn.handle(adv_event(flags=AgentFlags.F | AgentFlags.B), 0.0)
    assert not requests(acts)


def test_accepted_reply_registers_and_announces() -> None:
    mn = make(lifetime=100)
    _, req = attach_fa(mn, now=10.0)
    acts = mn.handle(udp(reply_for(req, sa=SA, lifetime=60)), 10.5)
    assert mn.registered and state_of(mn) is MnState.REGISTERED
    (use,) = of(acts, UseForeignAgent)
    assert use.agent_address == FA and use.agent_link_address == MAC and use.home_address == HOME
    # granted (shortened) lifetime counted from when the request was sent
    assert mn.binding_expires == 70.0
    assert mn.next_deadline() is not None
    assert mn.care_of_address == FA


def test_reregisters_before_expiry_and_keeps_registered() -> None:
    mn = make(lifetime=100)
    req = register_fa(mn, lifetime=100, registration_lifetime=100)
    # keep the agent alive
    mn.handle(adv_event(sequence=1, lifetime=1000), 50.0)
    acts = mn.handle_timer(80.0)
    (renew,) = requests(acts)
    assert renew.identification != req.identification
    assert mn.registered  # still registered while the renewal is outstanding
    mn.handle(udp(reply_for(renew, sa=SA)), 80.2)
    assert mn.binding_expires == 180.0
    assert not of(mn.handle_timer(81.0), UseForeignAgent)


def test_binding_expires_if_renewal_unanswered() -> None:
    mn = make(lifetime=20, retransmit_limit=100)
    register_fa(mn, registration_lifetime=20, lifetime=10_000)
    now = 0.0
    while now < 20.0:
        d = mn.next_deadline()
        assert d is not None
        now = d
        mn.handle_timer(now)
    assert not mn.registered
    assert state_of(mn) is MnState.REGISTERING


@pytest.mark.parametrize(
    ("sa", "mutate"),
    [
        (WRONG_SA, None),
        (SA, "low"),
        (SA, "home"),
        (None, None),
    ],
)
def test_unacceptable_replies_are_discarded(
    sa: SecurityAssociation | None, mutate: str | None
) -> None:
    mn = make()
    _, req = attach_fa(mn)
    kw: dict[str, object] = {}
    if mutate == "low":
        kw["identification"] = req.identification ^ 1
    payload = reply_for(req, sa=sa, **kw)  # type: ignore[arg-type]
    if mutate == "home":
        req2 = dataclasses.replace(req, home_address=A("10.0.0.6"), extensions=(), raw=b"")
        payload = reply_for(req2, sa=sa)
    acts = mn.handle(udp(payload), 0.5)
    assert not mn.registered
    assert state_of(mn) is MnState.REGISTERING
    assert logs(acts, "mn.discard")


def test_reply_without_request_is_discarded() -> None:
    mn = make()
    mn.handle(LinkUp("mn0"), 0.0)
    req = RegistrationRequest(RegistrationFlags(0), 10, HOME, HA, FA, 5)
    acts = mn.handle(udp(reply_for(req, sa=SA)), 0.0)
    assert logs(acts, "mn.discard") and not mn.registered


def test_garbage_never_raises() -> None:
    mn = make()
    attach_fa(mn)
    for payload in (b"", b"\x03", b"\x03" + b"\0" * 19, b"\x01" * 30, bytes(range(60))):
        mn.handle(udp(payload), 1.0)
        mn.handle(IcmpReceived(payload, FA, BCAST, "mn0", ttl=1), 1.0)
    assert mn.counters.discarded["internal_error"] == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_random_input_never_raises(payload: bytes, icmp: bool) -> None:
    mn = make()
    attach_fa(mn)
    if icmp:
        mn.handle(IcmpReceived(payload, FA, BCAST, "mn0", ttl=1), 1.0)
    else:
        mn.handle(udp(payload), 1.0)
    assert mn.counters.discarded["internal_error"] == 0
    assert mn.counters.discarded["protocol_error"] == 0


# ----------------------------------------------------------------------------------------
# Flags (RFC 5944 §3.6.1.2, RFC 3024 §5.1)
# ----------------------------------------------------------------------------------------


def test_s_and_b_from_configuration() -> None:
    mn = make(simultaneous_bindings=True, broadcast=True)
    _, req = attach_fa(mn)
    assert req.flags & RegistrationFlags.S and req.flags & RegistrationFlags.B
    # with B at a foreign agent the broadcasts come nested, tunnelled from the home agent
    # to the home address (RFC 5944 §4.3): the node accepts tunnels from it
    (use,) = of(mn.handle(udp(reply_for(req, sa=SA)), 0.5), UseForeignAgent)
    assert use.home_agent == HA
    plain = make()
    _, req = attach_fa(plain)
    (use,) = of(plain.handle(udp(reply_for(req, sa=SA)), 0.5), UseForeignAgent)
    assert use.home_agent is None


@pytest.mark.parametrize(
    ("pref", "agent", "expected"),
    [
        ((Encapsulation.GRE,), AgentFlags.F, 0),
        ((Encapsulation.GRE,), AgentFlags.F | AgentFlags.G, RegistrationFlags.G),
        ((Encapsulation.MINIMAL,), AgentFlags.F | AgentFlags.G, 0),
        (
            (Encapsulation.MINIMAL, Encapsulation.GRE),
            AgentFlags.F | AgentFlags.G,
            RegistrationFlags.G,
        ),
        ((Encapsulation.MINIMAL,), AgentFlags.F | AgentFlags.M, RegistrationFlags.M),
    ],
)
def test_encapsulation_only_when_offered(
    pref: tuple[Encapsulation, ...], agent: AgentFlags, expected: int
) -> None:
    mn = make(encapsulations=pref)
    _, req = attach_fa(mn, flags=agent)
    assert req.flags & (RegistrationFlags.M | RegistrationFlags.G) == expected


@pytest.mark.parametrize(
    ("pref", "agent_t", "t_set", "usable"),
    [
        (ReverseTunnel.OFF, True, False, True),
        (ReverseTunnel.PREFER, True, True, True),
        (ReverseTunnel.PREFER, False, False, True),
        (ReverseTunnel.REQUIRE, True, True, True),
        (ReverseTunnel.REQUIRE, False, False, False),
    ],
)
def test_reverse_tunnel_rules(
    pref: ReverseTunnel, agent_t: bool, t_set: bool, usable: bool
) -> None:
    mn = make(reverse_tunnel=pref)
    mn.handle(LinkUp("mn0"), 0.0)
    flags = AgentFlags.F | (AgentFlags.T if agent_t else AgentFlags(0))
    reqs = requests(mn.handle(adv_event(flags=flags), 0.0))
    assert bool(reqs) == usable
    if reqs:
        assert bool(reqs[0].flags & RegistrationFlags.T) == t_set


# ----------------------------------------------------------------------------------------
# Co-located care-of address
# ----------------------------------------------------------------------------------------


def test_colocated_registration() -> None:
    mn = make(reverse_tunnel=ReverseTunnel.PREFER)
    acts = mn.handle(LinkUp("mn0", COA, 24), 0.0)
    (send,) = of(acts, SendUdp)
    req = RegistrationRequest.decode(send.payload)
    assert send.dst == HA and send.src == COA and send.ttl is None
    assert req.care_of_address == COA
    assert req.flags & RegistrationFlags.D and req.flags & RegistrationFlags.T
    assert not of(acts, SendIcmp)  # RFC 5944 §2.4: the care-of address is already known
    acts = mn.handle(udp(reply_for(req, sa=SA), src=HA, dst=COA), 0.2)
    (use,) = of(acts, UseColocatedAddress)
    assert use.care_of_address == COA and use.home_agent == HA and use.reverse_tunnel
    assert mn.registered


def test_away_from_home_comes_before_the_first_request() -> None:
    """A node that finds itself on a foreign link withdraws its home subnet there before
    its first request (RFC 5944 §4.6), or a co-located node's request to its home agent
    would be sent on-link and wait on ARP forever."""
    mn = make()
    acts = mn.handle(LinkUp("mn0", COA, 24), 0.0)
    kinds = [type(a) for a in acts if isinstance(a, AwayFromHome | SendUdp)]
    assert kinds == [AwayFromHome, SendUdp]
    (away,) = of(acts, AwayFromHome)
    assert away == AwayFromHome("mn0", mn.config.home_address)
    # through a foreign agent, too
    mn = make()
    acts = mn.handle(LinkUp("mn0", None, None), 0.0) + mn.handle(adv_event(), 0.5)
    assert of(acts, AwayFromHome) == [AwayFromHome("mn0", mn.config.home_address)]
    assert requests(acts)


def test_colocated_not_allowed_solicits() -> None:
    mn = make(colocated_allowed=False)
    acts = mn.handle(LinkUp("mn0", COA, 24), 0.0)
    assert not requests(acts) and of(acts, SendIcmp)


def test_r_bit_forces_foreign_agent_registration() -> None:
    mn = make()
    acts = mn.handle(LinkUp("mn0", COA, 24), 0.0)
    (req,) = requests(acts)
    mn.handle(udp(reply_for(req, sa=SA), src=HA, dst=COA), 0.2)
    assert mn.registered
    # an agent without R: keep the co-located registration
    assert not requests(mn.handle(adv_event(), 1.0))
    # with R: register through it
    acts = mn.handle(adv_event(src=FA2, flags=AgentFlags.F | AgentFlags.R), 2.0)
    (req2,) = requests(acts)
    assert req2.care_of_address == FA2 and not req2.flags & RegistrationFlags.D
    assert not mn.registered  # not until the agent's reply


# ----------------------------------------------------------------------------------------
# Retransmission (RFC 5944 §3.6.3)
# ----------------------------------------------------------------------------------------


def _retransmission_times(mn: MobileNode, until: float) -> list[tuple[float, RegistrationRequest]]:
    sent: list[tuple[float, RegistrationRequest]] = []
    now = 0.0
    while True:
        d = mn.next_deadline()
        if d is None or d > until:
            return sent
        now = d
        for r in requests(mn.handle_timer(now)):
            sent.append((now, r))


def test_retransmission_backoff_timestamps() -> None:
    mn = make(retransmit_max=8.0, retransmit_limit=5, denial_backoff=100.0)
    _, first = attach_fa(mn, lifetime=1000)
    sent = _retransmission_times(mn, 60.0)
    assert [t for t, _ in sent] == [1.0, 3.0, 7.0, 15.0, 23.0]
    ids = [first.identification] + [r.identification for _, r in sent]
    assert len(set(ids)) == len(ids)  # timestamps: each retransmission is new
    assert ids == sorted(ids)
    # given up after the limit: backing off, next attempt after denial_backoff
    assert state_of(mn) is MnState.BACKING_OFF
    assert mn.next_deadline() == 31.0 + 100.0
    (again,) = requests(mn.handle_timer(131.0))
    assert again.identification > ids[-1]


def test_retransmission_nonces_resends_same_request() -> None:
    mn = make(sa=SA_NONCE, retransmit_limit=3)
    _, first = attach_fa(mn, lifetime=1000)
    sent = _retransmission_times(mn, 8.0)
    assert [t for t, _ in sent] == [1.0, 3.0, 7.0]
    assert all(r.raw == first.raw for _, r in sent)


def test_reply_to_older_retransmission_is_discarded_with_timestamps() -> None:
    mn = make()
    _, first = attach_fa(mn, lifetime=1000)
    mn.handle_timer(1.0)
    acts = mn.handle(udp(reply_for(first, sa=SA)), 1.5)
    assert not mn.registered and logs(acts, "mn.discard")


# ----------------------------------------------------------------------------------------
# Denials
# ----------------------------------------------------------------------------------------


def test_resync_timestamps_after_133() -> None:
    mn = make()
    _, req = attach_fa(mn)
    ha_secs = int(UNIX0) + NTP_UNIX_OFFSET + 500  # HA clock 500 s ahead
    ident = (ha_secs << 32) | low_word(req.identification)
    acts = mn.handle(udp(reply_for(req, 133, sa=SA, identification=ident)), 0.5)
    (req2,) = requests(acts)
    assert abs(high_word(req2.identification) - ha_secs) <= 1
    assert req2.identification > req.identification
    mn.handle(udp(reply_for(req2, sa=SA)), 0.7)
    assert mn.registered


def test_resync_nonces_after_133() -> None:
    mn = make(sa=SA_NONCE)
    _, req = attach_fa(mn)
    ident = (0xCAFEBABE << 32) | low_word(req.identification)
    acts = mn.handle(udp(reply_for(req, 133, sa=SA_NONCE, identification=ident)), 0.5)
    (req2,) = requests(acts)
    assert high_word(req2.identification) == 0xCAFEBABE
    assert low_word(req2.identification) != low_word(req.identification)


def test_unauthenticated_133_is_ignored() -> None:
    mn = make()
    _, req = attach_fa(mn)
    ident = (123 << 32) | low_word(req.identification)
    acts = mn.handle(udp(reply_for(req, 133, sa=WRONG_SA, identification=ident)), 0.5)
    assert not requests(acts) and logs(acts, "mn.discard")


def test_repeated_corrections_give_up() -> None:
    mn = make(correction_limit=2)
    _, req = attach_fa(mn)
    for _ in range(2):
        (req,) = requests(mn.handle(udp(reply_for(req, 133, sa=SA)), 0.5))
    acts = mn.handle(udp(reply_for(req, 133, sa=SA)), 0.6)
    assert not requests(acts)
    assert state_of(mn) is MnState.FAILED and "identification mismatch" in (mn.failure_reason or "")


def test_lifetime_too_long_retries_with_reply_lifetime() -> None:
    mn = make(lifetime=1000)
    _, req = attach_fa(mn, registration_lifetime=1000)
    acts = mn.handle(udp(reply_for(req, 69, sa=None, lifetime=120)), 0.5)
    (req2,) = requests(acts)
    assert req2.lifetime == 120


def test_home_agent_discovery_136() -> None:
    mn = MobileNode(
        MobileNodeConfig(home_address=HOME, home_agent=A("10.0.0.255")),
        SA,
        UNIX0,
        rng=random.Random(1),
    )
    acts = mn.handle(LinkUp("mn0", COA, 24), 0.0)
    (send,) = of(acts, SendUdp)
    req = RegistrationRequest.decode(send.payload)
    assert send.dst == A("10.0.0.255") and req.home_agent == A("10.0.0.255")
    acts = mn.handle(udp(reply_for(req, 136, sa=SA, home_agent=HA), src=HA, dst=COA), 0.3)
    (send2,) = of(acts, SendUdp)
    req2 = RegistrationRequest.decode(send2.payload)
    assert send2.dst == HA and req2.home_agent == HA and mn.home_agent == HA
    mn.handle(udp(reply_for(req2, sa=SA), src=HA, dst=COA), 0.5)
    assert mn.registered


def test_fa_denial_without_authentication_backs_off() -> None:
    mn = make(denial_backoff=10.0)
    _, req = attach_fa(mn)
    acts = mn.handle(udp(reply_for(req, 66, sa=None)), 0.5)
    assert state_of(mn) is MnState.BACKING_OFF and not requests(acts)
    assert mn.next_deadline() == 10.5
    (req2,) = requests(mn.handle_timer(10.5))
    assert req2.identification != req.identification


def test_ha_denial_needs_authentication() -> None:
    mn = make()
    _, req = attach_fa(mn)
    acts = mn.handle(udp(reply_for(req, 130, sa=None)), 0.5)
    assert state_of(mn) is MnState.REGISTERING and logs(acts, "mn.discard")


@pytest.mark.parametrize("code", [65, 67, 129, 131, 134])
def test_give_up_with_readable_reason(code: int) -> None:
    mn = make()
    _, req = attach_fa(mn)
    sa = None if code < 128 else SA
    acts = mn.handle(udp(reply_for(req, code, sa=sa)), 0.5)
    assert state_of(mn) is MnState.FAILED
    (gave_up,) = logs(acts, "mn.gave_up")
    assert mn.failure_reason == gave_up.fields["reason"]
    assert str(code) in (mn.failure_reason or "")
    assert mn.next_deadline() is None or not requests(mn.handle_timer(mn.next_deadline() or 0))


def test_reverse_tunnel_codes() -> None:
    mn = make(reverse_tunnel=ReverseTunnel.OFF)
    _, req = attach_fa(mn, flags=AgentFlags.F | AgentFlags.T)
    assert not req.flags & RegistrationFlags.T
    (req2,) = requests(mn.handle(udp(reply_for(req, 75, sa=None)), 0.5))
    assert req2.flags & RegistrationFlags.T
    (req3,) = requests(mn.handle(udp(reply_for(req2, 137, sa=SA)), 0.6))
    assert not req3.flags & RegistrationFlags.T


def test_reverse_tunnel_mandatory_but_agent_lacks_t_gives_up() -> None:
    mn = make()
    _, req = attach_fa(mn, flags=AgentFlags.F)
    mn.handle(udp(reply_for(req, 75, sa=None)), 0.5)
    assert state_of(mn) is MnState.FAILED


def test_encapsulation_unavailable_falls_back_to_ipip() -> None:
    mn = make(encapsulations=(Encapsulation.GRE, Encapsulation.IPIP))
    _, req = attach_fa(mn, flags=AgentFlags.F | AgentFlags.G)
    assert req.flags & RegistrationFlags.G
    (req2,) = requests(mn.handle(udp(reply_for(req, 139, sa=SA)), 0.5))
    assert not req2.flags & (RegistrationFlags.G | RegistrationFlags.M)


def test_challenge_echoed_and_stale_challenge_refreshed() -> None:
    mn = make()
    _, req = attach_fa(mn, challenge=b"chal-1")
    assert [e for e in req.extensions if isinstance(e, MobileForeignChallengeExtension)] == [
        MobileForeignChallengeExtension(b"chal-1")
    ]
    acts = mn.handle(udp(reply_for(req, 106, sa=None)), 0.5)
    assert of(acts, SendIcmp) and not requests(acts)
    acts = mn.handle(adv_event(sequence=1, challenge=b"chal-2"), 0.8)
    (req2,) = requests(acts)
    assert MobileForeignChallengeExtension(b"chal-2") in req2.extensions


def test_invalid_coa_uses_other_agent() -> None:
    mn = make()
    _, req = attach_fa(mn)
    mn.handle(adv_event(src=FA2), 0.1)
    (req2,) = requests(mn.handle(udp(reply_for(req, 77, sa=None)), 0.5))
    assert req2.care_of_address == FA2


# ----------------------------------------------------------------------------------------
# Moves (RFC 5944 §2.4.2, §2.4.4)
# ----------------------------------------------------------------------------------------


def test_agent_reboot_by_sequence_number() -> None:
    mn = make()
    register_fa(mn, sequence=300)
    assert not requests(mn.handle(adv_event(sequence=301), 1.0))
    acts = mn.handle(adv_event(sequence=2), 2.0)
    (req,) = requests(acts)
    assert logs(acts, "mn.agent_rebooted")
    assert req.care_of_address == FA


def test_sequence_rollover_is_not_a_reboot() -> None:
    mn = make()
    register_fa(mn, sequence=0xFFFF)
    assert not requests(mn.handle(adv_event(sequence=256), 1.0))


def test_agent_lifetime_expiry_is_a_move() -> None:
    mn = make(lifetime=1000)
    register_fa(mn, lifetime=10, registration_lifetime=1000)
    mn.handle(adv_event(src=FA2, lifetime=100), 5.0)  # no prefix extension: no move yet
    assert mn.care_of_address == FA
    acts = mn.handle_timer(10.0)
    (req,) = requests(acts)
    assert req.care_of_address == FA2 and logs(acts, "mn.agent_lost")
    assert not mn.registered


def test_agent_lifetime_expiry_without_other_agent_solicits() -> None:
    mn = make()
    register_fa(mn, lifetime=10)
    acts = mn.handle_timer(10.0)
    assert of(acts, SendIcmp) and state_of(mn) is MnState.DISCOVERING and not mn.registered


def test_prefix_change_is_a_move() -> None:
    mn = make()
    register_fa(mn, prefix_len=24, lifetime=100)
    # same prefix: no move
    assert not requests(mn.handle(adv_event(src=A("192.168.1.2"), prefix_len=24), 1.0))
    acts = mn.handle(adv_event(src=FA2, prefix_len=24), 2.0)
    (req,) = requests(acts)
    assert req.care_of_address == FA2


def test_link_down_up_registers_again() -> None:
    mn = make()
    register_fa(mn)
    mn.handle(LinkDown("mn0"), 5.0)
    assert not mn.registered and state_of(mn) is MnState.DETACHED
    acts = mn.handle(LinkUp("mn0"), 6.0)
    assert of(acts, SendIcmp)
    (req,) = requests(mn.handle(adv_event(src=FA2), 6.5))
    assert req.care_of_address == FA2


# ----------------------------------------------------------------------------------------
# Home (RFC 5944 §2.4.3, §4.6)
# ----------------------------------------------------------------------------------------


def test_return_home_deregisters_all_bindings() -> None:
    mn = make()
    register_fa(mn)
    mn.handle(LinkDown("mn0"), 5.0)
    acts = mn.handle(LinkUp("mn0", HOME, 24), 6.0)
    assert of(acts, AtHome) == [AtHome("mn0", HOME)]
    assert of(acts, GratuitousArp) == [GratuitousArp("mn0", HOME)]
    (send,) = of(acts, SendUdp)
    req = RegistrationRequest.decode(send.payload)
    assert send.dst == HA and send.src == HOME
    assert req.lifetime == 0 and req.care_of_address == HOME
    assert not req.flags & RegistrationFlags.S
    assert state_of(mn) is MnState.DEREGISTERING and not mn.registered
    acts = mn.handle(udp(reply_for(req, sa=SA), src=HA), 6.2)
    assert state_of(mn) is MnState.AT_HOME and mn.next_deadline() is None
    # and again once the home agent has stopped answering ARP for the home address: a
    # proxy reply it sent between the node's arrival and the deregistration must not win
    assert of(acts, GratuitousArp) == [GratuitousArp("mn0", HOME)]


def test_home_agent_advertisement_means_home() -> None:
    mn = make()
    register_fa(mn)
    acts = mn.handle(adv_event(src=HA, flags=AgentFlags.H), 3.0)
    assert of(acts, AtHome) and mn.at_home
    (req,) = requests(acts)
    assert req.lifetime == 0


def test_deregister_single_binding() -> None:
    mn = make(simultaneous_bindings=True)
    register_fa(mn)
    acts = mn.deregister(5.0, care_of_address=FA)
    (req,) = requests(acts)
    assert req.lifetime == 0 and req.care_of_address == FA and req.flags & RegistrationFlags.S
    mn.handle(udp(reply_for(req, sa=SA)), 5.1)
    assert not mn.registered


def test_deregistration_retransmitted_then_at_home() -> None:
    mn = make(retransmit_limit=2)
    acts = mn.handle(LinkUp("mn0", HOME, 24), 0.0)
    assert requests(acts)[0].lifetime == 0
    sent = _retransmission_times(mn, 100.0)
    assert [t for t, _ in sent] == [1.0, 3.0]
    assert state_of(mn) is MnState.AT_HOME


def test_foreign_prefix_while_at_home_means_left_home() -> None:
    mn = make()
    mn.handle(LinkUp("mn0", HOME, 24), 0.0)
    assert mn.at_home
    # an agent without a Prefix-Lengths extension proves nothing
    assert not requests(mn.handle(adv_event(), 1.0))
    assert mn.at_home
    # one advertising a foreign prefix does
    acts = mn.handle(adv_event(src=FA2, prefix_len=24), 2.0)
    (req,) = requests(acts)
    assert req.care_of_address == FA2 and not mn.at_home
    # an agent on the home network (same prefix) keeps the node at home
    mn2 = make()
    mn2.handle(LinkUp("mn0", HOME, 24), 0.0)
    assert not requests(mn2.handle(adv_event(src=A("10.0.0.2"), prefix_len=24), 1.0))
    assert mn2.at_home


def test_solicitation_times_are_randomised_but_never_faster() -> None:
    mn = make(solicit_max_interval=64.0, solicit_jitter=0.5)
    mn.handle(LinkUp("mn0"), 0.0)
    times = [0.0]
    while len(times) < 8:
        d = mn.next_deadline()
        assert d is not None
        if of(mn.handle_timer(d), SendIcmp):
            times.append(d)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    nominal = [1.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert all(n <= g <= n * 1.5 for g, n in zip(gaps, nominal, strict=True))
    assert gaps != nominal


def test_failed_retry_starts_afresh_later() -> None:
    mn = make(failed_retry=100.0)
    _, req = attach_fa(mn, lifetime=1000)
    mn.handle(udp(reply_for(req, 129, sa=SA)), 0.5)
    assert state_of(mn) is MnState.FAILED
    assert mn.next_deadline() == 100.5
    (again,) = requests(mn.handle_timer(100.5))
    assert state_of(mn) is MnState.REGISTERING
    mn.handle(udp(reply_for(again, sa=SA)), 100.6)
    assert mn.registered and mn.failure_reason is None


def test_without_failed_retry_a_failed_node_waits() -> None:
    mn = make()
    _, req = attach_fa(mn, lifetime=1000)
    mn.handle(udp(reply_for(req, 129, sa=SA)), 0.5)
    assert mn.next_deadline() == 1000.0  # only the agent's advertisement lifetime
    assert not requests(mn.handle_timer(1000.0))


def test_no_wake_up_for_a_renewal_that_cannot_happen() -> None:
    """Failed with its binding kept (a deregistration denied for good), the node does not
    re-register, so the renewal time is no deadline: it used to be returned by
    ``next_deadline`` for ever (netsim's "timers do not converge", found by the hypothesis
    test with seed 65536)."""
    mn = make()
    register_fa(mn, registration_lifetime=100, lifetime=9000)
    acts = mn.deregister(1.0)
    (req,) = requests(acts)
    mn.handle(udp(reply_for(req, ReplyCode.HA_ADMIN_PROHIBITED, sa=SA)), 1.1)
    b = mn.binding
    assert mn.state is MnState.FAILED and b is not None and b.renew_at is not None
    mn.handle_timer(b.renew_at)
    d = mn.next_deadline()
    assert d is None or d > b.renew_at


def test_reverse_tunnel_request_to_foreign_agent_has_ttl_255() -> None:
    """RFC 3024 §4.1.1: a request with T sent to the foreign agent goes out with IP TTL
    255 (the agent denies anything else with 76); retransmissions too."""
    mn = make(reverse_tunnel=ReverseTunnel.PREFER)
    acts, req = attach_fa(mn, flags=AgentFlags.F | AgentFlags.T)
    assert req.flags & RegistrationFlags.T
    (send,) = of(acts, SendUdp)
    assert send.dst == FA and send.ttl == 255
    (again,) = of(mn.handle_timer(mn.next_deadline() or 0.0), SendUdp)
    assert again.ttl == 255
