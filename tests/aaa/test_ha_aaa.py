"""The home agent asks the home AAA server itself for a node known only by its NAI (issue 10
item 2, :mod:`mip4.core.ha_aaa`): virtual clock, engines only (tests/core/netsim.py). The
home agent has no MN-HA association and no pool address for the node: the Access-Accept
gives both (3GPP2-MN-HA-SPI/-Key, Framed-IP-Address)."""

from __future__ import annotations

from ipaddress import IPv4Address

from mip4.aaa.messages import AaaAnswer, AaaRequest, AaaResult, Authorization
from mip4.core.home_agent import HomeAgentConfig
from mip4.core.mobile_node import MobileNodeConfig
from mip4.daemon import status
from mip4.security.mn_aaa import radius_chap_ok
from mip4.wire.codes import ReplyCode
from mip4.wire.messages import RegistrationReply
from tests.core.netsim import HA_ADDR, HOME_NET, MN_COLOCATED, MN_HA_KEY, MN_SPI, World

A = IPv4Address
ZERO = A(0)
NAI = "bob@example.net"
SECRET = b"bob-aaa-secret"
GIVEN = A("10.0.0.77")  # Framed-IP-Address


class HaAaaWorld(World):
    """FAs that challenge and ask AAA, a home agent with ``aaa`` on and nothing configured
    for the node; one fake AAA server (CHAP checked as FreeRADIUS's ``chap`` does) answers
    both."""

    def __init__(self, *, ha_aaa: bool = True, mn_home_agent: IPv4Address = HA_ADDR) -> None:
        super().__init__(
            mn_config=MobileNodeConfig(
                home_address=ZERO, home_agent=mn_home_agent, nai=NAI, mn_aaa_secret=SECRET
            ),
            ha_config=HomeAgentConfig(
                address=HA_ADDR, home_network=HOME_NET, interface="ha0", aaa=ha_aaa
            ),
            fa_options={"challenge_length": 16, "aaa": True},
        )
        self.forget_configured_key()
        self.served = {"fa1": 0, "fa2": 0, "ha": 0}
        self.asked: dict[str, list[AaaRequest]] = {"fa1": [], "fa2": [], "ha": []}
        self.ha_results: list[AaaResult] = []

    def forget_configured_key(self) -> None:
        """netsim configures the MN-HA key at the home agent; here only AAA has it."""
        sas = self.ha.security_associations
        for peer in (NAI, ZERO):
            sas.remove(peer, MN_SPI)

    def serve_aaa(self) -> None:
        for node in self.served:
            reqs = self.net.actions_of(node, AaaRequest)
            for req in reqs[self.served[node] :]:
                self.served[node] += 1
                self.asked[node].append(req)
                ok = req.nai == NAI and radius_chap_ok(
                    SECRET, req.chap_password, req.chap_challenge
                )
                result = AaaResult.ACCEPT if ok else AaaResult.REJECT
                if node == "ha" and self.ha_results:
                    result = self.ha_results.pop(0)
                auth = None
                if result is AaaResult.ACCEPT:
                    auth = Authorization(
                        home_address=GIVEN,
                        home_agent=HA_ADDR,
                        mn_ha_spi=MN_SPI,
                        mn_ha_key=MN_HA_KEY,
                    )
                self.net.inject(node, AaaAnswer(req.request_id, result, auth, server="r1"))

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


def test_home_agent_learns_key_and_address_from_its_own_access_request() -> None:
    w = HaAaaWorld()
    w.move("A")
    w.run_serving(5)
    assert w.mn.registered and w.mn.home_address == GIVEN
    (b,) = w.bindings()
    assert b.home_address == GIVEN
    assert w.ha.assignments == {NAI: GIVEN}
    (asked,) = w.asked["ha"]
    assert asked.nai == NAI and asked.nas_address == HA_ADDR and not asked.foreign_agent
    (sa,) = w.ha.security_associations.for_peer(NAI)
    assert sa.spi == MN_SPI and sa.key == MN_HA_KEY
    assert w.ha.counters.snapshot()["events"]["aaa_accept"] == 1
    st = status.mobile_node(w.mn, w.now)  # mip4 status: the address in use, the NAI
    assert (st["home_address"], st["nai"]) == (str(GIVEN), NAI)
    # re-registrations and a move keep the key: the home agent does not ask again
    w.move("B")
    w.run_serving(12)
    assert w.mn.registered and w.mn.home_address == GIVEN
    assert [x.care_of_address for x in w.bindings()] == [A("192.168.2.1")]
    assert len(w.asked["ha"]) == 1 and len(w.asked["fa2"]) >= 1
    # co-located on C: no foreign agent, no challenge; the learnt key still serves
    w.move("C")
    w.run_serving(25)
    assert w.mn.registered and w.mn.home_address == GIVEN
    assert [x.care_of_address for x in w.bindings()] == [MN_COLOCATED]
    assert len(w.asked["ha"]) == 1


def test_without_ha_aaa_the_unknown_node_fails_mn_ha_131() -> None:
    w = HaAaaWorld(ha_aaa=False)
    w.move("A")
    w.run_serving(5)
    assert not w.mn.registered and w.asked["ha"] == []
    assert ReplyCode.HA_MN_FAILED_AUTH in replies_to_mn(w)


def test_access_reject_at_the_home_agent_is_144_and_nothing_is_kept() -> None:
    w = HaAaaWorld()
    w.ha_results = [AaaResult.REJECT] * 20
    w.move("A")
    w.run_serving(30)
    assert replies_to_mn(w)[0] == ReplyCode.HA_MN_FAILED_AAA_AUTH
    assert not w.mn.registered and w.bindings() == [] and w.ha.assignments == {}
    assert w.ha.security_associations.for_peer(NAI) == []
    assert len(w.fa1.visitors) == 0


def test_aaa_silent_at_the_home_agent_is_130_then_the_node_recovers() -> None:
    w = HaAaaWorld()
    w.ha_results = [AaaResult.TIMEOUT]
    w.move("A")
    w.run_serving(60)
    codes = replies_to_mn(w)
    assert codes[0] == ReplyCode.HA_INSUFFICIENT_RESOURCES
    assert codes[-1] == ReplyCode.ACCEPTED
    assert w.mn.registered and w.mn.home_address == GIVEN


def test_release_forgets_what_aaa_gave_and_the_next_registration_asks_again() -> None:
    w = HaAaaWorld()
    w.move("A")
    w.run_serving(5)
    assert w.ha.assignments == {NAI: GIVEN}
    w.net.set_up("mn", False)
    w.run_serving(1805)  # the binding expires
    assert w.ha.assignments == {} and w.bindings() == []
    assert w.ha.security_associations.for_peer(NAI) == []
    assert w.ha._aaa.address_for(NAI) is None


def test_unmatched_answer_is_a_counted_discard() -> None:
    w = HaAaaWorld()
    out = w.ha.handle(AaaAnswer(999, AaaResult.ACCEPT), w.now)
    assert not any(isinstance(a, RegistrationReply) for a in out)
    assert w.ha.counters.snapshot()["discarded"]["unmatched_aaa_answer"] == 1
