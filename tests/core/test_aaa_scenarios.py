"""Whole-path scenarios on the virtual clock (tests/core/netsim.py): a mobile node known only
by its NAI (home address 0.0.0.0) with an MN-AAA secret, foreign agents that challenge
(RFC 4721) and ask a home AAA server (a fake one here: it reads ``AaaRequest`` actions and
injects ``AaaAnswer`` events, checking CHAP as FreeRADIUS's ``chap`` module does), and a home
agent that assigns addresses from a pool (RFC 2794)."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

from mip4.aaa.messages import AaaAnswer, AaaRequest, AaaResult, AccountingRecord, Authorization
from mip4.core.home_agent import HomeAgentConfig
from mip4.core.mobile_node import MobileNodeConfig
from mip4.security.mn_aaa import radius_chap_ok
from mip4.security.sa import ReplayMethod
from mip4.wire.codes import ReplyCode
from mip4.wire.messages import RegistrationReply, RegistrationRequest

from .netsim import HA_ADDR, HOME_NET, Packet, World

A = IPv4Address
ZERO = A(0)
NAI = "alice@example.net"
SECRET = b"alice-aaa-secret"
POOL = frozenset({A("10.0.0.100"), A("10.0.0.101")})

Decide = Callable[[AaaRequest], AaaResult]


def accept_good(req: AaaRequest) -> AaaResult:
    ok = req.nai == NAI and radius_chap_ok(SECRET, req.chap_password, req.chap_challenge)
    return AaaResult.ACCEPT if ok else AaaResult.REJECT


class AaaWorld(World):
    def __init__(
        self,
        *,
        pool: frozenset[IPv4Address] = POOL,
        replay: ReplayMethod = ReplayMethod.TIMESTAMPS,
        **fa: object,
    ) -> None:
        super().__init__(
            replay=replay,
            mn_config=MobileNodeConfig(
                home_address=ZERO, home_agent=HA_ADDR, nai=NAI, mn_aaa_secret=SECRET
            ),
            ha_config=HomeAgentConfig(
                address=HA_ADDR, home_network=HOME_NET, interface="ha0", address_pool=pool
            ),
            fa_options={"challenge_length": 16, "aaa": True, **fa},
        )
        self.decide: Decide = accept_good
        self.answered = {"fa1": 0, "fa2": 0}
        self.asked: list[AaaRequest] = []
        #: the AAA server answers nothing before this time (a slow server)
        self.quiet_until = 0.0

    def serve_aaa(self) -> None:
        """Answer every new AaaRequest of the foreign agents."""
        if self.now < self.quiet_until:
            return
        for fa in ("fa1", "fa2"):
            reqs = self.net.actions_of(fa, AaaRequest)
            for req in reqs[self.answered[fa] :]:
                self.answered[fa] += 1
                self.asked.append(req)
                result = self.decide(req)
                auth = Authorization(home_agent=HA_ADDR) if result is AaaResult.ACCEPT else None
                self.net.inject(fa, AaaAnswer(req.request_id, result, auth, server="radius1"))

    def run_serving(self, t: float, step: float = 0.25) -> None:
        while self.now < t:
            self.run_until(min(t, self.now + step))
            self.serve_aaa()


def replies_to_mn(w: World) -> list[int]:
    return [
        p.message.code
        for p in w.net.packets
        if p.receiver == "mn" and not p.dropped and isinstance(p.message, RegistrationReply)
    ]


def test_nai_node_gets_its_address_through_challenge_and_aaa_and_keeps_it_across_moves() -> None:
    w = AaaWorld()
    w.move("A")
    w.run_serving(5)
    assert w.mn.registered
    hoa = w.mn.home_address
    assert hoa in POOL
    (b,) = w.bindings()
    assert b.home_address == hoa
    assert w.ha.assignments == {NAI: hoa}
    assert w.fa1.visitors.get(hoa) is not None
    assert w.asked and w.asked[0].nai == NAI
    # the first request said 0.0.0.0 and carried MN-NAI, a challenge and MN-AAA
    first = w.requests_from_mn()[0].message
    assert isinstance(first, RegistrationRequest) and first.home_address == ZERO
    # moving to FA2 keeps the address (challenged and authorized again there)
    w.move("B")
    w.run_serving(12)
    assert w.mn.registered and w.mn.home_address == hoa
    assert [x.care_of_address for x in w.bindings()] == [A("192.168.2.1")]
    assert w.answered["fa2"] >= 1
    # re-registrations keep it too
    w.run_serving(1500)
    assert w.mn.home_address == hoa and w.ha.assignments == {NAI: hoa}


def test_address_returns_to_the_pool_when_the_binding_expires() -> None:
    w = AaaWorld()
    w.move("A")
    w.run_serving(5)
    hoa = w.mn.home_address
    w.net.set_up("mn", False)
    w.run_serving(1805)
    assert w.ha.assignments == {} and w.bindings() == []
    assert hoa in POOL


def test_pool_exhausted_gives_130_and_no_binding() -> None:
    w = AaaWorld(pool=frozenset())
    w.move("A")
    w.run_serving(5)
    assert not w.mn.registered
    assert ReplyCode.HA_INSUFFICIENT_RESOURCES in replies_to_mn(w)
    assert w.mn.home_address == ZERO and w.bindings() == []


def test_aaa_reject_is_108_and_the_node_gives_up() -> None:
    w = AaaWorld()
    w.decide = lambda req: AaaResult.REJECT
    w.move("A")
    w.run_serving(30)
    assert replies_to_mn(w) == [ReplyCode.FA_MN_FAILED_AAA_AUTH]
    r = w.mn.last_reaction
    assert r is not None and r.code == ReplyCode.FA_MN_FAILED_AAA_AUTH
    assert not w.mn.registered and w.bindings() == [] and len(w.fa1.visitors) == 0


def test_aaa_timeout_is_66_then_the_node_backs_off_and_recovers() -> None:
    w = AaaWorld()
    results = [AaaResult.TIMEOUT]
    w.decide = lambda req: results.pop(0) if results else accept_good(req)
    w.move("A")
    w.run_serving(60)
    codes = replies_to_mn(w)
    assert codes[0] == ReplyCode.FA_INSUFFICIENT_RESOURCES
    assert codes[-1] == ReplyCode.ACCEPTED
    assert w.mn.registered and w.mn.home_address in POOL


def test_stale_challenge_106_and_the_node_recovers_with_the_newest() -> None:
    w = AaaWorld()
    held = [True]

    def hold_requests(p: Packet) -> bool:
        # the node's first transmissions are lost while the agent's window moves on, so
        # the retransmission carries a challenge that is no longer valid
        return held[0] and p.sender == "mn" and isinstance(p.message, RegistrationRequest)

    w.net.drop_if(hold_requests)
    w.move("A")
    w.run_serving(5.5)
    held[0] = False
    w.run_serving(40)
    codes = replies_to_mn(w)
    assert ReplyCode.FA_STALE_CHALLENGE in codes
    assert codes[-1] == ReplyCode.ACCEPTED
    assert w.mn.registered


def test_accounting_start_when_the_visitor_is_accepted() -> None:
    w = AaaWorld(accounting=True)
    w.move("A")
    w.run_serving(5)
    (start,) = w.net.actions_of("fa1", AccountingRecord)
    assert start.nai == NAI and start.home_address == w.mn.home_address


def test_back_home_the_node_deregisters_and_releases_its_address() -> None:
    w = AaaWorld()
    w.move("A")
    w.run_serving(5)
    hoa = w.mn.home_address
    assert hoa in POOL
    # home again, with the assigned address on its interface
    w.net.link_down("mn", "mn0")
    w.net.link_up("mn", "mn0", "home", hoa, 24)
    w.run_serving(10)
    assert w.bindings() == [] and w.ha.assignments == {}
    assert w.mn.home_address == ZERO  # released (RFC 2794 §2)
    assert w.net.logs("mn", "mn.home_address_released")


def test_config_zero_home_address_needs_an_nai() -> None:
    import pytest

    with pytest.raises(ValueError, match="nai"):
        MobileNodeConfig(home_address=ZERO, home_agent=HA_ADDR)
    with pytest.raises(ValueError, match="nai"):
        MobileNodeConfig(home_address=A("10.0.0.5"), home_agent=HA_ADDR, mn_aaa_secret=b"s")
    cfg = MobileNodeConfig(home_address=ZERO, home_agent=HA_ADDR, nai=NAI, mn_aaa_secret=SECRET)
    assert cfg.home_network == HOME_NET and cfg.assigned_address
    assert "alice-aaa-secret" not in repr(cfg)


def test_retransmission_while_aaa_is_slow_is_not_denied_and_the_node_registers() -> None:
    """The AAA server takes longer than the node's retransmission timeout: with nonces the
    node resends the same request (RFC 5944 §3.6.3), which the foreign agent recognises as
    the copy of the one it holds -- not a stale challenge (106) -- and the one reply
    registers the node."""
    w = AaaWorld(replay=ReplayMethod.NONCES)
    w.quiet_until = 3.5  # the node retransmits after 1 s and again after 2 s more
    w.move("A")
    w.run_serving(10)
    assert w.mn.counters.events["retransmissions"] >= 1
    assert w.fa1.counters.discarded["duplicate_request"] >= 1
    assert ReplyCode.FA_STALE_CHALLENGE not in replies_to_mn(w)
    # with nonces the first exchange resynchronises (133, RFC 5944 §5.7); each
    # registration asked the AAA server once, and each got one answer
    assert replies_to_mn(w) == [ReplyCode.HA_IDENTIFICATION_MISMATCH, ReplyCode.ACCEPTED]
    assert len(w.asked) == 2 and w.mn.registered and w.mn.home_address in POOL


def test_retransmissions_with_timestamps_while_aaa_is_slow_get_no_106() -> None:
    """With timestamps (the default, and the only replay method a key from AAA has) a
    retransmission is a new registration (RFC 5944 §3.6.3) -- but one answering the
    challenge its first copy spent would get 106: through an agent that challenges the
    node resends the request unchanged (the same Identification and challenge), which the
    agent drops while it holds the first for the AAA server; the one reply registers it."""
    w = AaaWorld()
    w.quiet_until = 3.5
    w.move("A")
    w.run_serving(15)
    sent = [p.payload for p in w.requests_from_mn()]
    assert len(sent) >= 2 and len(set(sent)) == 1
    assert w.fa1.counters.discarded["duplicate_request"] == len(sent) - 1
    assert replies_to_mn(w) == [ReplyCode.ACCEPTED] and len(w.asked) == 1
