"""Foreign agent engine (RFC 5944 §2.3, §3.7; RFC 3024 §3; RFC 4721 §3), driven with raw
bytes and a virtual clock. Messages are built with the codec and :func:`security.sign`;
what the agent sends is decoded and checked with :func:`security.verify`."""

from __future__ import annotations

import random
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mip4.core.actions import (
    Action,
    Encapsulation,
    InstallVisitor,
    Log,
    RemoveVisitor,
    SendIcmp,
    SendUdp,
)
from mip4.core.advertiser import next_sequence
from mip4.core.events import (
    DestinationUnreachable,
    Event,
    IcmpReceived,
    LinkDown,
    LinkUp,
    UdpReceived,
)
from mip4.core.foreign_agent import (
    FA_REQUEST_PIPELINE,
    VISITOR_TRANSITIONS,
    ForeignAgent,
    ForeignAgentConfig,
    VisitedLink,
    VisitorInput,
    VisitorState,
    unreachable_code,
)
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.core.registration import ProtocolError
from mip4.security.auth import FA_HA, MN_FA, MN_HA, sign, verify
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import (
    Extension,
    ForeignHomeAuthExtension,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    RawExtension,
)
from mip4.wire.icmp import AgentAdvertisement, AgentFlags, AgentSolicitation, decode_icmp
from mip4.wire.messages import NO_FLAGS, RegistrationFlags, RegistrationReply, RegistrationRequest

A = IPv4Address
F = RegistrationFlags
T = TypeVar("T")

FA_ADDR = A("10.1.0.1")
HA = A("10.0.0.1")
HOA = A("10.0.0.10")
HOA2 = A("10.0.0.11")
MAC = b"\x02\x00\x00\x00\x00\x10"
MAC2 = b"\x02\x00\x00\x00\x00\x11"
IDENT = 0x0123_4567_89AB_CDEF
UNIX0 = 1_790_000_000.0

MN_HA_SA = SecurityAssociation(spi=0x1000, key=b"h" * 16)  # the FA never sees this key
MN_FA_SA = SecurityAssociation(spi=0x3000, key=b"m" * 16)
FA_HA_SA = SecurityAssociation(spi=0x2000, key=b"f" * 16)
LINK = VisitedLink("vis0", FA_ADDR, 24)


def sas(*, mn_fa: bool = False, fa_ha: bool = True) -> SecurityAssociations:
    """The FA's SAs: FA-HA with the home agent; MN-FA with the mobile nodes only when asked
    (sharing one makes MN-FA mandatory in their requests, RFC 5944 §3.7.2.1)."""
    s = SecurityAssociations()
    if mn_fa:
        s.add(HOA, MN_FA_SA)
        s.add(HOA2, MN_FA_SA)
    if fa_ha:
        s.add(HA, FA_HA_SA)
    return s


def make_fa(store: SecurityAssociations | None = None, **cfg: object) -> ForeignAgent:
    config = ForeignAgentConfig(links=(LINK,), **cfg)  # type: ignore[arg-type]
    return ForeignAgent(
        config,
        store if store is not None else sas(),
        rng=random.Random(7),
    )


def request(
    *,
    lifetime: int = 600,
    hoa: IPv4Address = HOA,
    coa: IPv4Address = FA_ADDR,
    flags: RegistrationFlags = NO_FLAGS,
    ident: int = IDENT,
    mn_ha: bool = True,
    mn_fa: SecurityAssociation | None = None,
    fa_exts: tuple[Extension, ...] = (),
) -> bytes:
    req = RegistrationRequest(flags, lifetime, hoa, HA, coa, ident)
    if mn_ha:
        req = sign(req, MobileHomeAuthExtension, MN_HA_SA)
    if fa_exts:
        req = RegistrationRequest(
            req.flags,
            req.lifetime,
            req.home_address,
            req.home_agent,
            req.care_of_address,
            req.identification,
            (*req.extensions, *fa_exts),
        )
    if mn_fa is not None:
        req = sign(req, MobileForeignAuthExtension, mn_fa)
    return req.raw or req.encode()


def from_mn(
    payload: bytes, *, src: IPv4Address = HOA, mac: bytes = MAC, ttl: int = 255
) -> UdpReceived:
    """A request from a mobile node on the visited link (TTL 255: RFC 3024 §4.1.1 for T)."""
    return UdpReceived(payload, src, FA_ADDR, 5555, 434, "vis0", mac, ttl=ttl)


def reply(
    code: int = 0,
    lifetime: int = 600,
    *,
    hoa: IPv4Address = HOA,
    ident: int = IDENT,
    fa_ha: SecurityAssociation | None = FA_HA_SA,
) -> bytes:
    rep = sign(RegistrationReply(code, lifetime, hoa, HA, ident), MobileHomeAuthExtension, MN_HA_SA)
    if fa_ha is not None:
        rep = sign(rep, ForeignHomeAuthExtension, fa_ha)
    return rep.raw


def from_ha(payload: bytes) -> UdpReceived:
    return UdpReceived(payload, HA, FA_ADDR, 434, 434, "up0", ttl=64)


def of(actions: Sequence[Action], cls: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, cls)]


def to_mn(actions: Sequence[Action]) -> tuple[SendUdp, RegistrationReply]:
    (send,) = of(actions, SendUdp)
    # RFC 5944 §3.7.3.2: to the home address and UDP port, at the link-layer address.
    assert (send.dst, send.dport, send.interface, send.link_dst) == (HOA, 5555, "vis0", MAC)
    return send, RegistrationReply.decode(send.payload)


def registered(fa: ForeignAgent, now: float = 0.0, **kw: object) -> None:
    fa.handle(from_mn(request(**kw)), now)  # type: ignore[arg-type]
    fa.handle(from_ha(reply()), now + 0.1)
    assert fa.state_of(HOA) is VisitorState.REGISTERED


# ----------------------------------------------------------------------------------------
# Advertisements
# ----------------------------------------------------------------------------------------


def adv_of(actions: Sequence[Action]) -> tuple[SendIcmp, AgentAdvertisement]:
    (send,) = of(actions, SendIcmp)
    msg = decode_icmp(send.payload)
    assert isinstance(msg, AgentAdvertisement)
    return send, msg


def test_advertisement_schedule_and_contents() -> None:
    fa = make_fa()
    assert fa.next_deadline() == 0.0  # advertise as soon as the agent runs
    send, adv = adv_of(fa.handle_timer(0.0))
    assert (send.dst, send.ttl, send.interface, send.src) == (A("224.0.0.1"), 1, "vis0", FA_ADDR)
    m = adv.mobility
    assert m is not None
    assert m.sequence == 0  # RFC 5944 §2.3.2: the first advertisement after a (re)boot
    assert m.registration_lifetime == 1800
    assert m.care_of_addresses == (FA_ADDR,)
    want = AgentFlags.F | AgentFlags.M | AgentFlags.G | AgentFlags.T
    assert m.flags == want  # no R, B, H; never U or X (not implemented)
    assert adv.lifetime == 3  # 3 x the 1 s interval (RFC 1256 §4.1)
    assert adv.prefix_lengths == (24,)
    assert [r.address for r in adv.router_addresses] == [FA_ADDR]
    assert adv.challenge is None
    assert fa.next_deadline() == 1.0
    assert fa.handle_timer(0.5) == []
    _, adv2 = adv_of(fa.handle_timer(1.0))
    assert adv2.mobility is not None and adv2.mobility.sequence == 1


def test_advertisement_flags_follow_config() -> None:
    fa = make_fa(
        registration_required=True,
        minimal_encapsulation=False,
        gre_encapsulation=False,
        reverse_tunnel=False,
        home_agent=True,
        routes_common_traffic=False,
        advertisement_interval=10.0,
    )
    _, adv = adv_of(fa.handle_timer(0.0))
    assert adv.mobility is not None
    assert adv.mobility.flags == AgentFlags.F | AgentFlags.R | AgentFlags.H
    assert adv.code == 16 and adv.lifetime == 30


def test_busy_flag_when_visitor_list_full() -> None:
    fa = make_fa(max_visitors=1)
    registered(fa)
    _, adv = adv_of(fa.handle_timer(0.2))
    assert adv.mobility is not None and adv.mobility.flags & AgentFlags.B


def test_sequence_wraps_to_256_not_0() -> None:
    assert next_sequence(0) == 1 and next_sequence(0xFFFE) == 0xFFFF
    assert next_sequence(0xFFFF) == 256
    fa = make_fa()
    seen = []
    for i in range(0x10000 + 2):
        actions = fa.handle_timer(float(i))
        if i >= 0xFFFE:
            seen.append(adv_of(actions)[1].mobility.sequence)  # type: ignore[union-attr]
    assert seen == [0xFFFE, 0xFFFF, 256, 257]


def test_solicitation_answered_unicast_at_link_layer() -> None:
    fa = make_fa(advertise=False)
    assert fa.next_deadline() is None
    sol = AgentSolicitation().encode()
    actions = fa.handle(IcmpReceived(sol, HOA, A("224.0.0.2"), "vis0", MAC, ttl=1), 5.0)
    send, adv = adv_of(actions)
    assert (send.dst, send.link_dst, send.ttl) == (HOA, MAC, 1)
    assert adv.mobility is not None and adv.mobility.sequence == 0
    # No source address: multicast the answer.
    send, _ = adv_of(fa.handle(IcmpReceived(sol, A("0.0.0.0"), A("224.0.0.2"), "vis0", ttl=1), 6.0))
    assert send.dst == A("224.0.0.1") and send.link_dst is None


def test_solicitation_rate_limit_and_junk() -> None:
    fa = make_fa(solicitation_interval=2.0)
    sol = AgentSolicitation().encode()
    ev = IcmpReceived(sol, HOA, A("224.0.0.2"), "vis0", MAC, ttl=1)
    assert len(of(fa.handle(ev, 0.0), SendIcmp)) == 1
    assert of(fa.handle(ev, 1.0), SendIcmp) == []
    assert fa.counters.discarded["solicitation_rate_limited"] == 1
    assert len(of(fa.handle(ev, 2.0), SendIcmp)) == 1
    assert (
        of(fa.handle(IcmpReceived(b"\x0a\x00", HOA, FA_ADDR, "vis0", ttl=1), 3.0), SendIcmp) == []
    )
    assert fa.counters.discarded["icmp_decode_error"] == 1
    assert of(fa.handle(IcmpReceived(sol, HOA, FA_ADDR, "other0", ttl=1), 3.0), SendIcmp) == []


def test_link_down_stops_and_link_up_restarts_advertising() -> None:
    fa = make_fa()
    fa.handle_timer(0.0)
    fa.handle(LinkDown("vis0"), 0.5)
    assert fa.next_deadline() is None
    assert fa.handle_timer(5.0) == []
    fa.handle(LinkUp("vis0"), 7.0)
    assert fa.next_deadline() == 7.0
    assert len(of(fa.handle_timer(7.0), SendIcmp)) == 1


def test_challenge_advertised_and_checked() -> None:
    fa = make_fa(sas(mn_fa=True), challenge_length=4, challenge_window=1)
    _, adv = adv_of(fa.handle_timer(0.0))
    challenge = adv.challenge
    assert challenge is not None and len(challenge) == 4

    def with_challenge(c: bytes | None) -> list[Action]:
        exts = (MobileForeignChallengeExtension(c),) if c is not None else ()
        return fa.handle(from_mn(request(fa_exts=exts, mn_fa=MN_FA_SA)), 0.5)

    assert to_mn(with_challenge(None))[1].code == ReplyCode.FA_MISSING_CHALLENGE
    assert to_mn(with_challenge(b"nope"))[1].code == ReplyCode.FA_UNKNOWN_CHALLENGE
    # A request denied for another reason does not spend its challenge.
    exts = (MobileForeignChallengeExtension(challenge),)
    bad = fa.handle(from_mn(request(fa_exts=exts, mn_fa=MN_FA_SA, lifetime=5000)), 0.5)
    assert to_mn(bad)[1].code == ReplyCode.FA_LIFETIME_TOO_LONG
    relayed = of(with_challenge(challenge), SendUdp)
    assert relayed[0].dst == HA
    # The challenge belongs to the FA: it is not relayed to the home agent.
    fwd = RegistrationRequest.decode(relayed[0].payload)
    assert all(e.ext_type != MobileForeignChallengeExtension.TYPE for e in fwd.extensions)
    # Used once: a replay is stale; after a newer advertisement the old one is stale too.
    assert to_mn(with_challenge(challenge))[1].code == ReplyCode.FA_STALE_CHALLENGE
    _, adv2 = adv_of(fa.handle_timer(1.0))
    adv_of(fa.handle_timer(2.0))
    assert adv2.challenge is not None
    assert to_mn(with_challenge(adv2.challenge))[1].code == ReplyCode.FA_STALE_CHALLENGE


# ----------------------------------------------------------------------------------------
# Relaying a request and its reply
# ----------------------------------------------------------------------------------------


def test_relay_request_and_reply_installs_visitor() -> None:
    fa = make_fa(sas(mn_fa=True))
    fa.handle_timer(0.0)
    ev = from_mn(request(mn_fa=MN_FA_SA, flags=F.T | F.G))
    actions = fa.handle(ev, 0.2)
    (send,) = of(actions, SendUdp)
    assert (send.dst, send.dport, send.src) == (HA, 434, FA_ADDR)
    fwd = RegistrationRequest.decode(send.payload)
    # RFC 5944 §3.7.2.2: unchanged through MN-HA, MN-FA removed, FA-HA appended.
    assert fwd.raw.startswith(RegistrationRequest.decode(ev.payload).raw[: len(fwd.raw) - 22])
    verify(fwd, MN_HA, lambda spi: MN_HA_SA)
    verify(fwd, FA_HA, lambda spi: FA_HA_SA)
    assert [e.ext_type for e in fwd.extensions] == [MN_HA, FA_HA]
    (p,) = list(fa.pending)
    # RFC 5944 §3.7.1: the fields a visitor list entry must hold.
    assert (p.link_address, p.ip_source, p.ip_destination, p.udp_source_port) == (
        MAC,
        HOA,
        FA_ADDR,
        5555,
    )
    assert (p.home_agent, p.identification, p.requested_lifetime) == (HA, IDENT, 600)
    assert p.expires == 7.2
    assert fa.state_of(HOA) is VisitorState.PENDING
    assert fa.next_deadline() == 1.0  # next advertisement before the pending timeout

    actions = fa.handle(from_ha(reply(lifetime=300)), 0.5)
    send, rep = to_mn(actions)
    assert rep.code == 0 and rep.identification == IDENT and rep.lifetime == 300
    verify(rep, MN_HA, lambda spi: MN_HA_SA)
    verify(rep, MN_FA, lambda spi: MN_FA_SA)  # the MN used MN-FA, so the FA adds it
    assert all(e.ext_type != FA_HA for e in rep.extensions)
    (inst,) = of(actions, InstallVisitor)
    assert inst == InstallVisitor(
        HOA, "vis0", MAC, HA, FA_ADDR, True, Encapsulation.GRE, 300.2, False
    )
    assert fa.state_of(HOA) is VisitorState.REGISTERED
    v = fa.visitors.get(HOA)
    assert v is not None and v.expires == 300.2 and v.requested_lifetime == 600
    assert len(fa.pending) == 0


def test_relay_source_configurable() -> None:
    fa = make_fa(advertise=False, relay_source=A("198.51.100.7"), relay_port=40000)
    (send,) = of(fa.handle(from_mn(request()), 0.0), SendUdp)
    assert (send.src, send.sport, send.dst) == (A("198.51.100.7"), 40000, HA)


def test_visitor_expires_silently() -> None:
    fa = make_fa(advertise=False)
    registered(fa)
    assert fa.next_deadline() == 600.0
    assert fa.handle_timer(599.0) == []
    actions = fa.handle_timer(600.0)
    assert of(actions, RemoveVisitor) == [RemoveVisitor(HOA, "vis0")]
    assert of(actions, SendUdp) == []  # RFC 5944 §3.7: no message on expiry
    assert fa.state_of(HOA) is VisitorState.IDLE
    assert fa.next_deadline() is None


def test_reregistration_and_deregistration() -> None:
    fa = make_fa(advertise=False)
    registered(fa)
    fa.handle(from_mn(request(ident=IDENT + 1)), 100.0)
    assert fa.state_of(HOA) is VisitorState.REREGISTERING
    fa.handle(from_ha(reply(ident=IDENT + 1)), 100.1)
    v = fa.visitors.get(HOA)
    assert v is not None and v.expires == 700.0
    fa.handle(from_mn(request(ident=IDENT + 2, lifetime=0)), 200.0)
    actions = fa.handle(from_ha(reply(ident=IDENT + 2, lifetime=0)), 200.1)
    assert to_mn(actions)[1].code == 0
    assert of(actions, RemoveVisitor) == [RemoveVisitor(HOA, "vis0")]
    assert fa.state_of(HOA) is VisitorState.IDLE and fa.next_deadline() is None


def test_home_agent_denial_is_relayed_and_keeps_registration() -> None:
    fa = make_fa(advertise=False)
    registered(fa)
    fa.handle(from_mn(request(ident=IDENT + 1)), 10.0)
    # The home agent answers 133, changing the high bits (RFC 5944 §5.7): match on the low
    # 32 bits.
    resync = (0xAAAA_AAAA << 32) | ((IDENT + 1) & 0xFFFFFFFF)
    actions = fa.handle(from_ha(reply(133, 0, ident=resync)), 10.1)
    _, rep = to_mn(actions)
    assert rep.code == 133 and rep.identification == resync
    assert of(actions, RemoveVisitor) == [] and of(actions, InstallVisitor) == []
    assert fa.state_of(HOA) is VisitorState.REGISTERED
    assert fa.counters.denied[ReplyCode.HA_IDENTIFICATION_MISMATCH] == 1


def test_pending_timeout_78() -> None:
    fa = make_fa(advertise=False, pending_timeout=7.0)
    fa.handle(from_mn(request()), 1.0)
    assert fa.next_deadline() == 8.0
    assert fa.handle_timer(7.9) == []
    actions = fa.handle_timer(8.0)
    _, rep = to_mn(actions)
    assert rep.code == ReplyCode.FA_REGISTRATION_TIMEOUT and rep.identification == IDENT
    assert fa.state_of(HOA) is VisitorState.IDLE and fa.next_deadline() is None
    # The late reply is then unmatched and silently discarded.
    assert of(fa.handle(from_ha(reply()), 9.0), SendUdp) == []
    assert fa.counters.discarded["unmatched_reply"] == 1


def test_unmatched_replies_are_discarded() -> None:
    fa = make_fa(advertise=False)
    assert of(fa.handle(from_ha(reply()), 0.0), SendUdp) == []
    fa.handle(from_mn(request()), 0.0)
    assert of(fa.handle(from_ha(reply(ident=IDENT + 1)), 0.1), SendUdp) == []
    assert fa.counters.discarded["unmatched_reply"] == 2
    assert fa.state_of(HOA) is VisitorState.PENDING


# ----------------------------------------------------------------------------------------
# Every FA denial code from a real cause
# ----------------------------------------------------------------------------------------


def denied(fa: ForeignAgent, payload: bytes, code: ReplyCode) -> RegistrationReply:
    actions = fa.handle(from_mn(payload), 0.0)
    _, rep = to_mn(actions)
    assert rep.code == code, (ReplyCode(rep.code).name, code.name)
    assert rep.identification == IDENT
    assert all(s.dst != HA for s in of(actions, SendUdp))  # not relayed
    assert len(fa.pending) == 0
    assert fa.counters.denied[code] == 1
    (log,) = of(actions, Log)
    assert log.fields["code"] == int(code)
    return rep


def test_67_mobile_node_failed_authentication() -> None:
    denied(make_fa(require_mn_fa_auth=True), request(), ReplyCode.FA_MN_FAILED_AUTH)
    wrong = SecurityAssociation(spi=MN_FA_SA.spi, key=b"x" * 16)
    rep = denied(make_fa(sas(mn_fa=True)), request(mn_fa=wrong), ReplyCode.FA_MN_FAILED_AUTH)
    verify(rep, MN_FA, lambda spi: MN_FA_SA)


def test_67_mn_fa_mandatory_with_a_shared_security_association() -> None:
    """RFC 5944 §3.7.2.1: when the FA shares a mobility SA with the mobile node, exactly one
    MN-FA extension MUST be present: none or two are denied with 67; one valid is relayed."""
    denied(make_fa(sas(mn_fa=True)), request(), ReplyCode.FA_MN_FAILED_AUTH)
    # another mobile node, with which this agent shares nothing, needs none
    store = SecurityAssociations()
    store.add(HOA2, MN_FA_SA)
    store.add(HA, FA_HA_SA)
    assert of(make_fa(store).handle(from_mn(request()), 0.0), SendUdp)[0].dst == HA
    twice = RegistrationRequest.decode(request(mn_fa=MN_FA_SA))
    twice = sign(twice, MobileForeignAuthExtension, MN_FA_SA)
    denied(make_fa(sas(mn_fa=True)), twice.raw or twice.encode(), ReplyCode.FA_MN_FAILED_AUTH)
    fa = make_fa(sas(mn_fa=True))
    (relayed,) = of(fa.handle(from_mn(request(mn_fa=MN_FA_SA)), 0.0), SendUdp)
    assert relayed.dst == HA and fa.state_of(HOA) is VisitorState.PENDING


def test_denials_other_than_69_copy_the_requested_lifetime() -> None:
    """RFC 5944 §3.7.2.3: the Lifetime of a reply the foreign agent sends SHOULD be copied
    from the request (69 carries the maximum instead): on the request path (here 72, 70,
    67) and on the reply path (78 timeout, 68, 80)."""
    rep = denied(make_fa(gre_encapsulation=False), request(lifetime=432, flags=F.G), _C.FA_ENC)
    assert rep.lifetime == 432
    assert denied(make_fa(), request(lifetime=77, mn_ha=False), _C.FA_BAD).lifetime == 77
    rep = denied(make_fa(require_mn_fa_auth=True), request(lifetime=500), _C.FA_MN_AUTH)
    assert rep.lifetime == 500
    fa = make_fa(advertise=False)
    fa.handle(from_mn(request(lifetime=321)), 0.0)
    _, rep = to_mn(fa.handle_timer(7.5))
    assert (rep.code, rep.lifetime) == (ReplyCode.FA_REGISTRATION_TIMEOUT, 321)
    fa.handle(from_mn(request(lifetime=654, ident=IDENT + 1)), 10.0)
    _, rep = to_mn(fa.handle(from_ha(reply(ident=IDENT + 1, fa_ha=None)), 10.1))
    assert (rep.code, rep.lifetime) == (ReplyCode.FA_HA_FAILED_AUTH, 654)
    fa.handle(from_mn(request(lifetime=99, ident=IDENT + 2)), 20.0)
    unreachable = DestinationUnreachable(0, A("10.9.9.9"), HA, "up0", 434, 434, b"")
    _, rep = to_mn(fa.handle(unreachable, 20.1))
    assert (rep.code, rep.lifetime) == (ReplyCode.FA_HOME_NETWORK_UNREACHABLE, 99)


class _C:
    FA_ENC = ReplyCode.FA_ENCAPSULATION_UNAVAILABLE
    FA_BAD = ReplyCode.FA_POORLY_FORMED_REQUEST
    FA_MN_AUTH = ReplyCode.FA_MN_FAILED_AUTH


def test_76_reverse_tunnel_request_must_arrive_with_ttl_255() -> None:
    """RFC 3024 §4.2.1: a request with T that did not arrive with IP TTL 255 (sent from
    beyond the link, or by a node sending TTL 1) is denied with 76; TTL does not matter
    without T, nor for a deregistration."""
    for ttl in (1, 64, 254):
        ev = from_mn(request(lifetime=300, flags=F.T), ttl=ttl)
        fa = make_fa()
        actions = fa.handle(ev, 0.0)
        _, rep = to_mn(actions)
        assert (rep.code, rep.lifetime) == (ReplyCode.FA_MN_TOO_DISTANT, 300)
        assert fa.counters.denied[ReplyCode.FA_MN_TOO_DISTANT] == 1 and len(fa.pending) == 0
    fa = make_fa()
    assert of(fa.handle(from_mn(request(flags=F.T), ttl=255), 0.0), SendUdp)[0].dst == HA
    fa = make_fa()
    assert of(fa.handle(from_mn(request(), ttl=1), 0.0), SendUdp)[0].dst == HA
    fa = make_fa()
    dereg = from_mn(request(lifetime=0, flags=F.T), ttl=1)
    assert of(fa.handle(dereg, 0.0), SendUdp)[0].dst == HA


def test_69_lifetime_too_long_carries_maximum() -> None:
    rep = denied(make_fa(max_lifetime=900), request(lifetime=1000), ReplyCode.FA_LIFETIME_TOO_LONG)
    assert rep.lifetime == 900


def test_70_poorly_formed_request() -> None:
    denied(make_fa(), request(mn_ha=False), ReplyCode.FA_POORLY_FORMED_REQUEST)
    style = (RawExtension(130, b""),)
    denied(make_fa(), request(fa_exts=style), ReplyCode.FA_POORLY_FORMED_REQUEST)


def test_72_encapsulation_unavailable() -> None:
    code = ReplyCode.FA_ENCAPSULATION_UNAVAILABLE
    denied(make_fa(minimal_encapsulation=False), request(flags=F.M), code)
    denied(make_fa(gre_encapsulation=False), request(flags=F.G), code)


def test_74_75_79_reverse_tunnel() -> None:
    denied(
        make_fa(reverse_tunnel=False), request(flags=F.T), ReplyCode.FA_REVERSE_TUNNEL_UNAVAILABLE
    )
    denied(make_fa(reverse_tunnel_required=True), request(), ReplyCode.FA_REVERSE_TUNNEL_MANDATORY)
    style = (RawExtension(130, b""),)
    denied(
        make_fa(encapsulating_delivery=False),
        request(flags=F.T, fa_exts=style),
        ReplyCode.FA_DELIVERY_STYLE_UNSUPPORTED,
    )


def test_encapsulating_delivery_style_accepted() -> None:
    fa = make_fa(advertise=False)
    fa.handle(from_mn(request(flags=F.T, fa_exts=(RawExtension(130, b""),))), 0.0)
    actions = fa.handle(from_ha(reply()), 0.1)
    (inst,) = of(actions, InstallVisitor)
    assert inst.reverse_tunnel and inst.encapsulating_delivery


def test_77_invalid_care_of_address() -> None:
    denied(make_fa(), request(coa=A("10.1.0.99")), ReplyCode.FA_INVALID_COA)
    # Sent to all mobility agents for another agent's care-of address: not ours to deny.
    fa = make_fa()
    ev = UdpReceived(
        request(coa=A("10.1.0.99")), HOA, A("224.0.0.11"), 5555, 434, "vis0", MAC, ttl=1
    )
    assert of(fa.handle(ev, 0.0), SendUdp) == []
    assert fa.counters.discarded["care_of_address_of_another_agent"] == 1
    # With D (co-located care-of address registering via the FA, R bit) it is relayed.
    fa = make_fa()
    actions = fa.handle(from_mn(request(coa=A("10.1.0.99"), flags=F.D)), 0.0)
    assert [s.dst for s in of(actions, SendUdp)] == [HA]


def test_colocated_registration_via_fa_installs_no_delivery() -> None:
    fa = make_fa(advertise=False, registration_required=True)
    colo = A("10.1.0.99")
    fa.handle(from_mn(request(coa=colo, flags=F.D | F.T), src=colo), 0.0)
    actions = fa.handle(from_ha(reply()), 0.1)
    (send,) = of(actions, SendUdp)
    assert send.dst == colo and send.link_dst == MAC
    assert of(actions, InstallVisitor) == []  # the node decapsulates itself
    v = fa.visitors.get(HOA)
    assert v is not None and v.colocated  # but RFC 5944 §3.7.1 still wants the entry
    assert of(fa.handle_timer(600.0), RemoveVisitor) == []
    assert fa.state_of(HOA) is VisitorState.IDLE


def test_solicitation_without_link_address_is_answered_by_multicast() -> None:
    fa = make_fa(advertise=False)
    sol = AgentSolicitation().encode()
    send, _ = adv_of(fa.handle(IcmpReceived(sol, HOA, A("224.0.0.2"), "vis0", None, ttl=1), 0.0))
    assert send.dst == A("224.0.0.1") and send.link_dst is None


def test_66_insufficient_resources() -> None:
    fa = make_fa(max_pending=1)
    fa.handle(from_mn(request()), 0.0)
    actions = fa.handle(from_mn(request(hoa=HOA2), src=HOA2, mac=MAC2), 0.0)
    (send,) = of(actions, SendUdp)
    assert RegistrationReply.decode(send.payload).code == ReplyCode.FA_INSUFFICIENT_RESOURCES
    assert send.link_dst == MAC2
    full = make_fa(max_visitors=1, advertise=False)
    registered(full)
    actions = full.handle(from_mn(request(hoa=HOA2), src=HOA2, mac=MAC2), 1.0)
    (send,) = of(actions, SendUdp)
    assert RegistrationReply.decode(send.payload).code == ReplyCode.FA_INSUFFICIENT_RESOURCES


def test_deregistration_skips_capability_checks() -> None:
    fa = make_fa(reverse_tunnel=False, max_pending=1)
    actions = fa.handle(from_mn(request(lifetime=0, flags=F.T)), 0.0)
    assert [s.dst for s in of(actions, SendUdp)] == [HA]


def test_68_home_agent_failed_authentication() -> None:
    fa = make_fa(advertise=False)
    fa.handle(from_mn(request()), 0.0)
    actions = fa.handle(from_ha(reply(fa_ha=None)), 0.1)
    _, rep = to_mn(actions)
    assert rep.code == ReplyCode.FA_HA_FAILED_AUTH
    assert of(actions, InstallVisitor) == []
    assert fa.state_of(HOA) is VisitorState.IDLE
    fa.handle(from_mn(request(ident=IDENT + 1)), 1.0)
    wrong = SecurityAssociation(spi=FA_HA_SA.spi, key=b"w" * 16)
    actions = fa.handle(from_ha(reply(ident=IDENT + 1, fa_ha=wrong)), 1.1)
    assert of(actions, SendUdp)[0].payload[1] == ReplyCode.FA_HA_FAILED_AUTH
    # Without an FA-HA SA, a reply without FA-HA is relayed.
    fa2 = make_fa(sas(fa_ha=False), advertise=False)
    fa2.handle(from_mn(request()), 0.0)
    assert to_mn(fa2.handle(from_ha(reply(fa_ha=None)), 0.1))[1].code == 0


def test_71_poorly_formed_reply() -> None:
    fa = make_fa(advertise=False)
    fa.handle(from_mn(request()), 0.0)
    bad = reply()[:-3]  # the FA-HA extension's length now overruns the message
    actions = fa.handle(from_ha(bad), 0.1)
    _, rep = to_mn(actions)
    assert rep.code == ReplyCode.FA_POORLY_FORMED_REPLY and rep.identification == IDENT
    assert fa.state_of(HOA) is VisitorState.IDLE


@pytest.mark.parametrize(
    ("icmp_code", "reply_code"),
    [
        (0, ReplyCode.FA_HOME_NETWORK_UNREACHABLE),
        (1, ReplyCode.FA_HA_HOST_UNREACHABLE),
        (3, ReplyCode.FA_HA_PORT_UNREACHABLE),
        (13, ReplyCode.FA_HA_UNREACHABLE),
    ],
)
def test_80_81_82_88_icmp_unreachable(icmp_code: int, reply_code: ReplyCode) -> None:
    assert unreachable_code(icmp_code) == reply_code
    fa = make_fa(advertise=False)
    (relayed,) = of(fa.handle(from_mn(request()), 0.0), SendUdp)
    # A router quoting the whole datagram (RFC 1812): matched by home address + ident.
    err = DestinationUnreachable(icmp_code, A("10.9.0.1"), HA, "up0", 434, 434, relayed.payload)
    _, rep = to_mn(fa.handle(err, 0.5))
    assert rep.code == reply_code
    assert fa.state_of(HOA) is VisitorState.IDLE
    # RFC 792 quoting only the UDP header: every request pending at that home agent.
    fa.handle(from_mn(request(ident=IDENT + 1)), 1.0)
    short = DestinationUnreachable(icmp_code, A("10.9.0.1"), HA, "up0", 434, 434, b"")
    actions = fa.handle(short, 1.5)
    assert of(actions, SendUdp)[0].payload[1] == reply_code
    # Nothing pending any more: a further error is a counted discard.
    assert of(fa.handle(short, 2.0), SendUdp) == []
    assert fa.counters.discarded["unmatched_icmp_error"] == 1


def test_pipeline_order() -> None:
    assert FA_REQUEST_PIPELINE.names == (
        "check_well_formed",
        "check_nai",
        "check_challenge",
        "check_mn_fa_auth",
        "check_care_of_address",
        "check_lifetime",
        "check_encapsulation",
        "check_reverse_tunnel",
        "check_resources",
    )


def test_transition_table_is_complete_and_enforced() -> None:
    for state in VisitorState:
        for inp in VisitorInput:
            if (state, inp) in VISITOR_TRANSITIONS.table:
                assert VISITOR_TRANSITIONS.check(state, inp)
            else:
                with pytest.raises(ProtocolError):
                    VISITOR_TRANSITIONS.check(state, inp)
    # Nothing can be accepted without a pending request, nothing expires when idle.
    assert (VisitorState.IDLE, VisitorInput.ACCEPTED) not in VISITOR_TRANSITIONS.table
    assert (VisitorState.REGISTERED, VisitorInput.TIMEOUT) not in VISITOR_TRANSITIONS.table


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="links"):
        ForeignAgentConfig(links=())
    with pytest.raises(ValueError, match="max_lifetime"):
        ForeignAgentConfig(links=(LINK,), max_lifetime=0)


# ----------------------------------------------------------------------------------------
# Robustness
# ----------------------------------------------------------------------------------------


def _assert_sane(fa: ForeignAgent) -> None:
    assert fa.counters.discarded["internal_error"] == 0
    assert fa.counters.discarded["protocol_error"] == 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120), st.booleans())
def test_random_bytes_never_raise(data: bytes, icmp: bool) -> None:
    fa = make_fa()
    fa.handle(from_mn(request()), 0.0)
    ev: Event = IcmpReceived(data, HOA, FA_ADDR, "vis0", MAC, ttl=1) if icmp else from_ha(data)
    assert isinstance(fa.handle(ev, 0.1), list)
    assert isinstance(fa.handle(from_mn(data), 0.2), list)
    _assert_sane(fa)


_MESSAGES = [
    ("mn", request()),
    ("mn", request(lifetime=0)),
    ("mn", request(ident=IDENT + 1, flags=F.T)),
    ("mn", request(hoa=HOA2)),
    ("ha", reply()),
    ("ha", reply(lifetime=0)),
    ("ha", reply(133, 0)),
    ("ha", reply(ident=IDENT + 1)),
    ("ha", reply(hoa=HOA2)),
]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@example(steps=[(2, 0.0, [(1, 0x20)]), (7, 0.0, [])])  # a request edited to D, accepted
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*range(len(_MESSAGES)), "timer", "icmp", "down", "up"]),
            st.floats(0, 10),
            st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=2),
        ),
        max_size=30,
    )
)
def test_random_event_sequences_never_raise(
    steps: list[tuple[int | str, float, list[tuple[int, int]]]],
) -> None:
    fa = make_fa(pending_timeout=3.0)
    now = 0.0
    installed: set[IPv4Address] = set()  # what the executor would have, from the actions
    for what, dt, edits in steps:
        now += dt
        actions: list[Action] = []
        if what == "timer":
            actions = fa.handle_timer(now)
        elif what == "icmp":
            actions = fa.handle(DestinationUnreachable(1, HA, HA, "up0", 434, 434, b""), now)
        elif what in ("down", "up"):
            actions = fa.handle(LinkDown("vis0") if what == "down" else LinkUp("vis0"), now)
        else:
            assert isinstance(what, int)
            who, payload = _MESSAGES[what]
            data = bytearray(payload)
            for pos, val in edits:
                if pos < len(data):
                    data[pos] = val
            ev = from_mn(bytes(data)) if who == "mn" else from_ha(bytes(data))
            actions = fa.handle(ev, now)
        for a in actions:
            if isinstance(a, InstallVisitor):
                installed.add(a.home_address)
            elif isinstance(a, RemoveVisitor):
                assert a.home_address in installed
                installed.discard(a.home_address)
        # Delivery is installed for every visitor but a co-located one (D: the node
        # decapsulates itself; the agent keeps its entry and delivers nothing).
        assert installed == {v.home_address for v in fa.visitors if not v.colocated}
        _assert_sane(fa)
        deadline = fa.next_deadline()
        assert deadline is None or deadline >= 0
        for v in fa.visitors:
            assert fa.state_of(v.home_address) in (
                VisitorState.REGISTERED,
                VisitorState.REREGISTERING,
            )


# ----------------------------------------------------------------------------------------
# The two agents together (the mobile node played by hand)
# ----------------------------------------------------------------------------------------


def _triangle(*, mn_fa: bool = False) -> tuple[ForeignAgent, HomeAgent, SecurityAssociations]:
    ha_sas = SecurityAssociations()
    ha_sas.add(HOA, MN_HA_SA)
    ha_sas.add(FA_ADDR, FA_HA_SA)  # the HA knows the FA by its care-of address
    ha = HomeAgent(
        HomeAgentConfig(address=HA, home_network=IPv4Network("10.0.0.0/24"), interface="h0"),
        ha_sas,
        UNIX0,
    )
    return make_fa(sas(mn_fa=mn_fa), advertise=False), ha, ha_sas


def _through(fa: ForeignAgent, ha: HomeAgent, payload: bytes, now: float) -> list[Action]:
    (relayed,) = of(fa.handle(from_mn(payload), now), SendUdp)
    assert relayed.dst == HA
    ha_actions = ha.handle(
        UdpReceived(
            relayed.payload, relayed.src or FA_ADDR, relayed.dst, relayed.sport, 434, "h-up", ttl=64
        ),
        now,
    )
    (back,) = of(ha_actions, SendUdp)
    assert back.dst == relayed.src and back.dport == relayed.sport
    return fa.handle(
        UdpReceived(back.payload, HA, back.dst, back.sport, back.dport, "up0", ttl=64), now
    )


def test_triangle_registration_accepted() -> None:
    fa, ha, _ = _triangle(mn_fa=True)
    ident = ntp_timestamp(UNIX0 + 1.0, low=7)
    actions = _through(fa, ha, request(ident=ident, mn_fa=MN_FA_SA), 1.0)
    _, rep = to_mn(actions)
    assert rep.code == 0 and rep.identification == ident
    verify(rep, MN_HA, lambda spi: MN_HA_SA)
    assert len(of(actions, InstallVisitor)) == 1
    assert [b.care_of_address for b in ha.bindings.bindings_of(HOA)] == [FA_ADDR]


def test_triangle_home_agent_denial_reaches_mobile_node_unchanged() -> None:
    fa, ha, _ = _triangle()
    bad = SecurityAssociation(spi=MN_HA_SA.spi, key=b"q" * 16)
    req = sign(
        RegistrationRequest(NO_FLAGS, 600, HOA, HA, FA_ADDR, ntp_timestamp(UNIX0 + 1.0)),
        MobileHomeAuthExtension,
        bad,
    )
    _, rep = to_mn(_through(fa, ha, req.raw, 1.0))
    assert rep.code == ReplyCode.HA_MN_FAILED_AUTH  # not turned into 68 by the FA
    assert fa.state_of(HOA) is VisitorState.IDLE and len(ha.bindings) == 0


def test_config_from_toml() -> None:
    import tomllib

    from mip4.core.registration import ConfigError

    text = """
    advertisement_interval = 2
    max_lifetime = 900
    reverse_tunnel_required = true
    [[links]]
    interface = "wlan0"
    address = "10.1.0.1"
    prefix_len = 24
    care_of_addresses = ["10.1.0.1", "10.1.0.2"]
    """
    cfg = ForeignAgentConfig.from_mapping(tomllib.loads(text), "fa.toml")
    assert cfg.advertisement_interval == 2.0 and cfg.max_lifetime == 900
    assert cfg.reverse_tunnel_required and cfg.icmp_lifetime == 6
    assert cfg.links == (VisitedLink("wlan0", FA_ADDR, 24, (FA_ADDR, A("10.1.0.2"))),)
    with pytest.raises(ConfigError, match=r"fa\.toml: unknown key max_lifetme"):
        ForeignAgentConfig.from_mapping({"links": [], "max_lifetme": 1}, "fa.toml")
    with pytest.raises(ConfigError, match=r"fa\.toml: links\[0\]\.address"):
        ForeignAgentConfig.from_mapping(
            {"links": [{"interface": "x", "address": "10.1.0.300"}]}, "fa.toml"
        )
    with pytest.raises(ConfigError, match=r"fa\.toml: max_lifetime: expected an integer"):
        ForeignAgentConfig.from_mapping({"links": [], "max_lifetime": "long"}, "fa.toml")
    with pytest.raises(ConfigError, match=r"fa\.toml: .*links must name at least one"):
        ForeignAgentConfig.from_mapping({"links": []}, "fa.toml")


def test_reconfigure_reaches_the_request_checks() -> None:
    """``ForeignAgent.reconfigure`` (a reload's in-place keys): the engine and the tables its
    request checks read both run on the new configuration."""
    import dataclasses

    fa = make_fa()
    new = dataclasses.replace(fa.config, require_nai=not fa.config.require_nai)
    fa.reconfigure(new)
    assert fa.config is new
    assert fa._tables.config is new
