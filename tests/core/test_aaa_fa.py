"""The foreign agent with NAI-named mobile nodes (RFC 2794), the home AAA server (RFC 4721
§3.2: ``AaaRequest`` actions out, ``AaaAnswer`` events in) and RADIUS accounting (RFC 2866:
``AccountingRecord`` Start / Interim-Update / Stop), on a virtual clock. A fake AAA server
is this test: it reads the actions and feeds the answers."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address

from mip4.aaa.messages import (
    AaaAnswer,
    AaaRequest,
    AaaResult,
    AccountingAnswer,
    AccountingRecord,
    AcctStatus,
    Authorization,
    TerminateCause,
)
from mip4.core.actions import Action, InstallVisitor, RemoveVisitor, SendIcmp, SendUdp
from mip4.core.foreign_agent import ForeignAgent, VisitorState
from mip4.security.auth import CHAP_SPI, sign, sign_mn_aaa
from mip4.security.mn_aaa import radius_chap_ok
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.icmp import AgentAdvertisement, decode_icmp
from mip4.wire.messages import NO_FLAGS, RegistrationReply, RegistrationRequest

from .test_foreign_agent import (
    FA_ADDR,
    FA_HA_SA,
    HA,
    IDENT,
    MAC,
    MN_HA_SA,
    from_ha,
    from_mn,
    make_fa,
    of,
)

A = IPv4Address
ZERO = A(0)
NAI = "alice@example.net"
SECRET = b"alice-aaa-secret"
ASSIGNED = A("10.0.0.100")


def challenge_of(fa: ForeignAgent, now: float) -> bytes:
    (send,) = of(fa.handle_timer(now), SendIcmp)
    adv = decode_icmp(send.payload)
    assert isinstance(adv, AgentAdvertisement) and adv.challenge is not None
    return adv.challenge


def aaa_request(
    challenge: bytes | None,
    *,
    hoa: IPv4Address = ZERO,
    ha: IPv4Address = HA,
    lifetime: int = 600,
    ident: int = IDENT,
    nai: str | None = NAI,
    secret: bytes = SECRET,
) -> bytes:
    exts: tuple[MobileNodeNAIExtension | MobileForeignChallengeExtension, ...] = ()
    if nai is not None:
        exts += (MobileNodeNAIExtension(nai.encode()),)
    if challenge is not None:
        exts += (MobileForeignChallengeExtension(challenge),)
    req = RegistrationRequest(NO_FLAGS, lifetime, hoa, ha, FA_ADDR, ident, exts)
    req = sign(req, MobileHomeAuthExtension, MN_HA_SA)
    if challenge is not None:
        req = sign_mn_aaa(req, CHAP_SPI, secret)
    return req.raw or req.encode()


def ha_reply(code: int = 0, lifetime: int = 600, *, hoa: IPv4Address = ASSIGNED) -> bytes:
    rep = RegistrationReply(code, lifetime, hoa, HA, IDENT, (MobileNodeNAIExtension(NAI.encode()),))
    rep = sign(rep, MobileHomeAuthExtension, MN_HA_SA)
    return sign(rep, ForeignHomeAuthExtension, FA_HA_SA).raw


def to_mn(actions: Sequence[Action]) -> tuple[SendUdp, RegistrationReply]:
    (send,) = of(actions, SendUdp)
    assert (send.interface, send.link_dst) == ("vis0", MAC)
    return send, RegistrationReply.decode(send.payload)


def aaa_fa(**cfg: object) -> ForeignAgent:
    return make_fa(None, challenge_length=16, aaa=True, **cfg)


class FakeAaa:
    """The home AAA server: checks the CHAP attributes the way FreeRADIUS's chap module
    does and answers."""

    def __init__(self, secrets: dict[str, bytes]) -> None:
        self.secrets = secrets
        self.seen: list[AaaRequest] = []

    def answer(self, actions: Sequence[Action], *, silent: bool = False) -> AaaAnswer:
        (req,) = of(actions, AaaRequest)
        self.seen.append(req)
        if silent:
            return AaaAnswer(req.request_id, AaaResult.TIMEOUT)
        secret = self.secrets.get(req.nai)
        if secret is None or not radius_chap_ok(secret, req.chap_password, req.chap_challenge):
            return AaaAnswer(req.request_id, AaaResult.REJECT, server="radius1")
        auth = Authorization(home_address=ASSIGNED, home_agent=HA)
        return AaaAnswer(req.request_id, AaaResult.ACCEPT, auth, server="radius1")


# ----------------------------------------------------------------------------------------
# NAI at the foreign agent (RFC 2794 §2)
# ----------------------------------------------------------------------------------------


def test_zero_home_address_without_nai_is_97() -> None:
    fa = make_fa()
    send, rep = to_mn(fa.handle(from_mn(aaa_request(None, nai=None), src=ZERO), 0.0))
    assert rep.code == ReplyCode.FA_MISSING_NAI
    assert send.dst == A("255.255.255.255")  # no address yet: link-layer unicast


def test_required_nai_missing_is_97_and_zero_refused_is_96_and_no_home_agent_is_98() -> None:
    fa = make_fa(require_nai=True)
    _, rep = to_mn(fa.handle(from_mn(aaa_request(None, hoa=A("10.0.0.10"), nai=None)), 0.0))
    assert rep.code == ReplyCode.FA_MISSING_NAI
    fa = make_fa(zero_home_address=False)
    _, rep = to_mn(fa.handle(from_mn(aaa_request(None), src=ZERO), 0.0))
    assert rep.code == ReplyCode.FA_NONZERO_HOA_REQUIRED
    fa = make_fa()
    _, rep = to_mn(fa.handle(from_mn(aaa_request(None, ha=ZERO), src=ZERO), 0.0))
    assert rep.code == ReplyCode.FA_MISSING_HOME_AGENT


def test_zero_home_address_relayed_and_reply_matched_by_nai() -> None:
    fa = make_fa()
    actions = fa.handle(from_mn(aaa_request(None), src=ZERO), 0.0)
    (relay,) = of(actions, SendUdp)
    assert relay.dst == HA
    assert len(fa.pending) == 0  # pending under the NAI, not under 0.0.0.0
    actions = fa.handle(from_ha(ha_reply()), 0.1)
    send, rep = to_mn(actions)
    assert rep.code == 0 and rep.home_address == ASSIGNED
    assert send.dst == ASSIGNED
    (install,) = of(actions, InstallVisitor)
    assert install.home_address == ASSIGNED
    visitor = fa.visitors.get(ASSIGNED)
    assert visitor is not None and visitor.nai == NAI
    assert fa.state_of(ASSIGNED) is VisitorState.REGISTERED


def test_nai_pending_request_times_out_with_78() -> None:
    fa = make_fa()
    fa.handle_timer(0.0)
    fa.handle(from_mn(aaa_request(None), src=ZERO), 0.0)
    assert fa.next_deadline() is not None and fa.next_deadline() <= 7.0  # type: ignore[operator]
    actions = fa.handle_timer(7.0)
    _, rep = to_mn([a for a in actions if isinstance(a, SendUdp)])
    assert rep.code == ReplyCode.FA_REGISTRATION_TIMEOUT


# ----------------------------------------------------------------------------------------
# The home AAA server (RFC 4721 §3.2)
# ----------------------------------------------------------------------------------------


def test_aaa_accept_relays_to_the_home_agent() -> None:
    fa = aaa_fa()
    aaa = FakeAaa({NAI: SECRET})
    ch = challenge_of(fa, 0.0)
    actions = fa.handle(from_mn(aaa_request(ch), src=ZERO), 0.1)
    assert of(actions, SendUdp) == []  # held until the AAA server decides
    assert fa.aaa_waiting == 1
    answer = aaa.answer(actions)
    assert aaa.seen[0].nai == NAI and aaa.seen[0].nas_address == FA_ADDR
    actions = fa.handle(answer, 0.2)
    (relay,) = of(actions, SendUdp)
    assert relay.dst == HA and fa.aaa_waiting == 0
    _, rep = to_mn(fa.handle(from_ha(ha_reply()), 0.3))
    assert rep.code == 0 and rep.home_address == ASSIGNED


def test_aaa_accept_names_the_home_agent_when_the_request_left_it_to_aaa() -> None:
    fa = aaa_fa()
    ch = challenge_of(fa, 0.0)
    actions = fa.handle(from_mn(aaa_request(ch, ha=ZERO), src=ZERO), 0.1)
    answer = FakeAaa({NAI: SECRET}).answer(actions)
    (relay,) = of(fa.handle(answer, 0.2), SendUdp)
    assert relay.dst == HA  # from the Authorization
    assert fa.pending_for(NAI) is not None


def test_aaa_accept_without_a_home_agent_is_98() -> None:
    fa = aaa_fa()
    ch = challenge_of(fa, 0.0)
    actions = fa.handle(from_mn(aaa_request(ch, ha=ZERO), src=ZERO), 0.1)
    (req,) = of(actions, AaaRequest)
    answer = AaaAnswer(req.request_id, AaaResult.ACCEPT, Authorization(), server="r")
    _, rep = to_mn(fa.handle(answer, 0.2))
    assert rep.code == ReplyCode.FA_MISSING_HOME_AGENT


def test_aaa_reject_is_108_and_nothing_is_relayed() -> None:
    fa = aaa_fa()
    ch = challenge_of(fa, 0.0)
    actions = fa.handle(from_mn(aaa_request(ch, secret=b"wrong"), src=ZERO), 0.1)
    answer = FakeAaa({NAI: SECRET}).answer(actions)
    assert answer.result is AaaResult.REJECT
    _, rep = to_mn(fa.handle(answer, 0.2))
    assert rep.code == ReplyCode.FA_MN_FAILED_AAA_AUTH
    assert len(fa.pending) == 0 and len(fa.visitors) == 0 and fa.aaa_waiting == 0


def test_aaa_unknown_nai_is_108() -> None:
    fa = aaa_fa()
    ch = challenge_of(fa, 0.0)
    actions = fa.handle(from_mn(aaa_request(ch), src=ZERO), 0.1)
    _, rep = to_mn(fa.handle(FakeAaa({}).answer(actions), 0.2))
    assert rep.code == ReplyCode.FA_MN_FAILED_AAA_AUTH


def test_aaa_timeout_is_66_and_the_node_may_retry_with_a_fresh_challenge() -> None:
    fa = aaa_fa()
    aaa = FakeAaa({NAI: SECRET})
    ch = challenge_of(fa, 0.0)
    actions = fa.handle(from_mn(aaa_request(ch), src=ZERO), 0.1)
    _, rep = to_mn(fa.handle(aaa.answer(actions, silent=True), 5.0))
    assert rep.code == ReplyCode.FA_INSUFFICIENT_RESOURCES
    # the challenge is spent: the same request again is stale (106) ...
    _, rep = to_mn(fa.handle(from_mn(aaa_request(ch), src=ZERO), 5.1))
    assert rep.code == ReplyCode.FA_STALE_CHALLENGE
    # ... a fresh one goes through once the server is back
    ch2 = challenge_of(fa, 6.0)
    actions = fa.handle(from_mn(aaa_request(ch2, ident=IDENT), src=ZERO), 6.1)
    (relay,) = of(fa.handle(aaa.answer(actions), 6.2), SendUdp)
    assert relay.dst == HA


def test_unmatched_aaa_answer_is_a_counted_discard() -> None:
    fa = aaa_fa()
    fa.handle(AaaAnswer(99, AaaResult.ACCEPT), 0.0)
    assert fa.counters.discarded["unmatched_aaa_answer"] == 1


def test_challenge_missing_unknown_stale_with_aaa() -> None:
    fa = aaa_fa()
    ch = challenge_of(fa, 0.0)
    _, rep = to_mn(fa.handle(from_mn(aaa_request(None), src=ZERO), 0.1))
    assert rep.code == ReplyCode.FA_MISSING_CHALLENGE
    _, rep = to_mn(fa.handle(from_mn(aaa_request(b"x" * 16), src=ZERO), 0.2))
    assert rep.code == ReplyCode.FA_UNKNOWN_CHALLENGE
    for t in (1.0, 2.0, 3.0):
        challenge_of(fa, t)  # the window (2) moves on
    _, rep = to_mn(fa.handle(from_mn(aaa_request(ch), src=ZERO), 3.1))
    assert rep.code == ReplyCode.FA_STALE_CHALLENGE


# ----------------------------------------------------------------------------------------
# Accounting (RFC 2866)
# ----------------------------------------------------------------------------------------


def test_accounting_start_interim_stop_on_deregistration() -> None:
    fa = make_fa(accounting=True, accounting_interval=60.0)
    fa.handle(from_mn(aaa_request(None), src=ZERO), 0.0)
    actions = fa.handle(from_ha(ha_reply()), 0.1)
    (start,) = of(actions, AccountingRecord)
    assert start.status is AcctStatus.START
    assert (start.nai, start.home_address, start.care_of_address) == (NAI, ASSIGNED, FA_ADDR)
    assert fa.sessions == {ASSIGNED: start.session_id}
    assert fa.next_deadline() is not None
    interim = [r for r in of(fa.handle_timer(60.1), AccountingRecord)]
    assert [r.status for r in interim] == [AcctStatus.INTERIM_UPDATE]
    assert interim[0].session_id == start.session_id and interim[0].session_time == 60
    assert fa.handle(AccountingAnswer(interim[0].request_id, True), 60.2) == []
    # a re-registration keeps the session
    fa.handle(from_mn(aaa_request(None, hoa=ASSIGNED, ident=IDENT + 1), src=ASSIGNED), 100.0)
    rep2 = RegistrationReply(0, 600, ASSIGNED, HA, IDENT + 1)
    rep2 = sign(sign(rep2, MobileHomeAuthExtension, MN_HA_SA), ForeignHomeAuthExtension, FA_HA_SA)
    assert of(fa.handle(from_ha(rep2.raw), 100.1), AccountingRecord) == []
    # deregistration: Stop, User-Request
    fa.handle(
        from_mn(aaa_request(None, hoa=ASSIGNED, lifetime=0, ident=IDENT + 2), src=ASSIGNED), 200.0
    )
    rep3 = RegistrationReply(0, 0, ASSIGNED, HA, IDENT + 2)
    rep3 = sign(sign(rep3, MobileHomeAuthExtension, MN_HA_SA), ForeignHomeAuthExtension, FA_HA_SA)
    actions = fa.handle(from_ha(rep3.raw), 200.1)
    assert of(actions, RemoveVisitor)
    (stop,) = of(actions, AccountingRecord)
    assert stop.status is AcctStatus.STOP and stop.terminate_cause is TerminateCause.USER_REQUEST
    assert stop.session_id == start.session_id and stop.session_time == 200
    assert fa.sessions == {}


def test_accounting_stop_on_expiry() -> None:
    fa = make_fa(accounting=True)
    fa.handle(from_mn(aaa_request(None, lifetime=100), src=ZERO), 0.0)
    fa.handle(from_ha(ha_reply(lifetime=100)), 0.1)
    actions = fa.handle_timer(100.0)
    (stop,) = of(actions, AccountingRecord)
    assert stop.status is AcctStatus.STOP
    assert stop.terminate_cause is TerminateCause.SESSION_TIMEOUT


def test_no_accounting_unless_configured() -> None:
    fa = make_fa()
    fa.handle(from_mn(aaa_request(None), src=ZERO), 0.0)
    assert of(fa.handle(from_ha(ha_reply()), 0.1), AccountingRecord) == []


# ----------------------------------------------------------------------------------------
# Retransmissions of a request held for the home AAA server (RFC 5944 §3.6.3, RFC 4721 §3.2)
# ----------------------------------------------------------------------------------------


def test_retransmission_while_held_for_aaa_is_dropped_not_106_and_answered_once() -> None:
    fa = aaa_fa()
    aaa = FakeAaa({NAI: SECRET})
    ch = challenge_of(fa, 0.0)
    request = aaa_request(ch)
    first = fa.handle(from_mn(request, src=ZERO), 0.1)
    # the node retransmits the very same request before the AAA server has answered
    again = fa.handle(from_mn(request, src=ZERO), 1.1)
    assert of(again, SendUdp) == [] and of(again, AaaRequest) == []  # no 106, no 2nd ask
    assert fa.counters.discarded["duplicate_request"] == 1
    assert fa.aaa_waiting == 1
    (relay,) = of(fa.handle(aaa.answer(first), 1.5), SendUdp)
    assert relay.dst == HA and len(aaa.seen) == 1
    # the one reply answers both copies
    _, rep = to_mn(fa.handle(from_ha(ha_reply()), 1.6))
    assert rep.code == 0 and rep.identification == IDENT
    assert fa.counters.denied[ReplyCode.FA_STALE_CHALLENGE] == 0


def test_replayed_challenge_after_the_held_request_completed_is_still_106() -> None:
    fa = aaa_fa()
    aaa = FakeAaa({NAI: SECRET})
    ch = challenge_of(fa, 0.0)
    request = aaa_request(ch)
    fa.handle(aaa.answer(fa.handle(from_mn(request, src=ZERO), 0.1)), 0.2)
    to_mn(fa.handle(from_ha(ha_reply()), 0.3))
    # the same bytes again, once nothing is held: a replay of a spent challenge
    _, rep = to_mn(fa.handle(from_mn(request, src=ZERO), 0.4))
    assert rep.code == ReplyCode.FA_STALE_CHALLENGE
    assert "duplicate_request" not in fa.counters.discarded
    # and after a denial (Access-Reject) the held request is gone too
    ch2 = challenge_of(fa, 1.0)
    bad = aaa_request(ch2, secret=b"wrong", ident=IDENT + 5)
    _, rep = to_mn(fa.handle(aaa.answer(fa.handle(from_mn(bad, src=ZERO), 1.1)), 1.2))
    assert rep.code == ReplyCode.FA_MN_FAILED_AAA_AUTH
    _, rep = to_mn(fa.handle(from_mn(bad, src=ZERO), 1.3))
    assert rep.code == ReplyCode.FA_STALE_CHALLENGE


def test_another_request_answering_a_held_challenge_is_106() -> None:
    fa = aaa_fa()
    ch = challenge_of(fa, 0.0)
    fa.handle(from_mn(aaa_request(ch), src=ZERO), 0.1)
    # same challenge, another Identification (so another authenticator): not a copy
    _, rep = to_mn(fa.handle(from_mn(aaa_request(ch, ident=IDENT + 1), src=ZERO), 0.2))
    assert rep.code == ReplyCode.FA_STALE_CHALLENGE
    # same Identification, another MN-AAA authenticator (forged): not a copy either
    _, rep = to_mn(fa.handle(from_mn(aaa_request(ch, secret=b"forged"), src=ZERO), 0.3))
    assert rep.code == ReplyCode.FA_STALE_CHALLENGE
    assert "duplicate_request" not in fa.counters.discarded and fa.aaa_waiting == 1
