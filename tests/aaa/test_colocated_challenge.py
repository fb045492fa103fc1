"""A co-located node's registrations through AAA (issue 10: "the same check is available at
the home agent when no foreign agent is on the path (co-located care-of address)"), and a
home agent that lost a key AAA gave (issue 11, a restart): engines on the virtual clock
(tests/core/netsim.py) with a fake AAA server, and the home agent driven by hand for the
challenge rules (:mod:`mip4.core.ha_aaa`, item 4)."""

from __future__ import annotations

import random
from ipaddress import IPv4Address
from pathlib import Path

from mip4.aaa.messages import AaaAnswer, AaaRequest, AaaResult
from mip4.core.actions import Action, SendUdp
from mip4.core.events import UdpReceived
from mip4.core.ha_aaa import CHALLENGE_LIFETIME
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.auth import CHAP_SPI, append_extensions, sign, sign_mn_aaa
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.store import SqliteStore
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_auth import GeneralizedAuthExtension
from mip4.wire.ext_keys import MNHAKeyGenNonceRequest
from mip4.wire.extensions import (
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.messages import RegistrationFlags, RegistrationReply, RegistrationRequest
from tests.core.netsim import HA_ADDR, HOME_NET, MN_COLOCATED, MN_SPI, UNIX0

from .test_ha_aaa import GIVEN, NAI, SECRET, HaAaaWorld, replies_to_mn
from .test_keys_engine import KeysWorld

A = IPv4Address
ZERO = A(0)


def replies_from_ha(w: HaAaaWorld) -> list[RegistrationReply]:
    out = []
    for p in w.net.sent("ha", RegistrationReply):
        msg = p.message
        assert isinstance(msg, RegistrationReply)
        out.append(msg)
    return out


def requests_from_mn(w: HaAaaWorld) -> list[RegistrationRequest]:
    out = []
    for p in w.requests_from_mn():
        msg = p.message
        assert isinstance(msg, RegistrationRequest)
        out.append(msg)
    return out


def challenge_in(msg: RegistrationReply | RegistrationRequest) -> bytes | None:
    for e in msg.extensions:
        if isinstance(e, MobileForeignChallengeExtension):
            return e.challenge
    return None


# ----------------------------------------------------------------------------------------
# The whole path: the first registration of a co-located node known only by NAI
# ----------------------------------------------------------------------------------------


def test_colocated_node_first_registration_through_aaa_with_the_home_agents_challenge() -> None:
    w = HaAaaWorld()
    w.move("C")  # no foreign agent: nobody advertises a challenge
    w.run_serving(10)
    assert w.mn.registered and w.mn.home_address == GIVEN
    (b,) = w.bindings()
    assert b.care_of_address == MN_COLOCATED and b.home_address == GIVEN
    assert replies_to_mn(w) == [ReplyCode.HA_MN_FAILED_AUTH, ReplyCode.ACCEPTED]
    first_reply = replies_from_ha(w)[0]
    given = challenge_in(first_reply)
    assert given is not None and len(given) == 16
    # the home agent has no key for the node: its 131 carries no MN-HA
    assert not any(isinstance(e, MobileHomeAuthExtension) for e in first_reply.extensions)
    first, second = requests_from_mn(w)[:2]
    assert challenge_in(first) is None
    assert not any(isinstance(e, GeneralizedAuthExtension) for e in first.extensions)
    # the node retried by itself with that challenge and MN-AAA
    assert challenge_in(second) == given
    assert any(isinstance(e, GeneralizedAuthExtension) for e in second.extensions)
    assert first.flags & RegistrationFlags.D and second.flags & RegistrationFlags.D
    (asked,) = w.asked["ha"]
    assert asked.nai == NAI and not asked.foreign_agent and asked.nas_address == HA_ADDR
    events = w.ha.counters.snapshot()["events"]
    assert events["aaa_challenges_issued"] == 1 and events["aaa_challenges_answered"] == 1
    assert w.mn.counters.snapshot()["events"]["aaa_retries"] == 1
    # renewals use the key AAA gave: no challenge, no second AAA request
    w.run_serving(2000)
    assert w.mn.registered and len(w.asked["ha"]) == 1
    assert all(challenge_in(r) is None for r in requests_from_mn(w)[2:])


def test_colocated_retransmission_while_aaa_is_slow_is_a_copy_the_home_agent_drops() -> None:
    w = HaAaaWorld()
    serve = w.serve_aaa

    def slow() -> None:
        if w.now >= 4.0:  # the node retransmits after 1 s and 2 s more
            serve()

    w.serve_aaa = slow  # type: ignore[method-assign]
    w.move("C")
    w.run_serving(15)
    assert w.mn.registered
    assert replies_to_mn(w) == [ReplyCode.HA_MN_FAILED_AUTH, ReplyCode.ACCEPTED]
    answered = [r for r in requests_from_mn(w) if challenge_in(r) is not None]
    assert len(answered) >= 2 and len({r.raw for r in answered}) == 1  # resent unchanged
    assert w.ha.counters.snapshot()["discarded"]["duplicate_request"] == len(answered) - 1
    assert len(w.asked["ha"]) == 1


def test_colocated_node_without_a_key_gets_one_from_aaa_on_its_first_registration() -> None:
    w = KeysWorld(key_lifetime=None)
    w.move("C")
    w.run_serving(10)
    assert w.mn.registered and w.mn.home_address == GIVEN
    second = requests_from_mn(w)[1]
    assert any(isinstance(e, MNHAKeyGenNonceRequest) for e in second.extensions)
    assert challenge_in(second) is not None
    keys = w.mn.client.keys
    assert keys is not None and keys.key is not None
    assert keys.key.association.key == w.keys[0]


def test_colocated_access_reject_is_144_and_the_node_gives_up() -> None:
    w = HaAaaWorld()
    w.ha_results = [AaaResult.REJECT] * 10
    w.move("C")
    w.run_serving(60)
    assert replies_to_mn(w) == [ReplyCode.HA_MN_FAILED_AUTH, ReplyCode.HA_MN_FAILED_AAA_AUTH]
    assert not w.mn.registered and w.bindings() == [] and len(w.asked["ha"]) == 1


def test_without_home_agent_aaa_the_colocated_node_gives_up_at_once() -> None:
    w = HaAaaWorld(ha_aaa=False)
    w.move("C")
    w.run_serving(60)
    # a 131 with no challenge: nothing new to try
    assert replies_to_mn(w) == [ReplyCode.HA_MN_FAILED_AUTH]
    assert not w.mn.registered and w.asked["ha"] == []
    assert "aaa_retries" not in w.mn.counters.snapshot()["events"]


# ----------------------------------------------------------------------------------------
# The home agent's challenge rules, driven by hand
# ----------------------------------------------------------------------------------------

MN_PORT = 434
WRONG_KEY = SecurityAssociation(spi=MN_SPI, key=b"k" * 16)


def make_ha() -> HomeAgent:
    cfg = HomeAgentConfig(address=HA_ADDR, home_network=HOME_NET, interface="ha0", aaa=True)
    return HomeAgent(cfg, SecurityAssociations(), 0.0, rng=random.Random(7))


def colocated_request(
    challenge: bytes | None, *, ident: int = 1, mn_aaa: bool = True, secret: bytes = SECRET
) -> UdpReceived:
    exts: tuple[MobileNodeNAIExtension | MobileForeignChallengeExtension, ...] = (
        MobileNodeNAIExtension(NAI.encode()),
    )
    req = RegistrationRequest(
        RegistrationFlags.D, 600, ZERO, HA_ADDR, MN_COLOCATED, (3_900_000_000 << 32) | ident, exts
    )
    req = sign(req, MobileHomeAuthExtension, WRONG_KEY)
    if challenge is not None:
        req = append_extensions(req, MobileForeignChallengeExtension(challenge))
        if mn_aaa:
            req = sign_mn_aaa(req, CHAP_SPI, secret)
    return UdpReceived(req.raw, MN_COLOCATED, HA_ADDR, MN_PORT, 434, "ha0", ttl=64)


def reply_of(actions: list[Action]) -> RegistrationReply:
    (send,) = [a for a in actions if isinstance(a, SendUdp)]
    assert send.dst == MN_COLOCATED
    return RegistrationReply.decode(send.payload)


def aaa_of(actions: list[Action]) -> AaaRequest:
    (req,) = [a for a in actions if isinstance(a, AaaRequest)]
    return req


def test_missing_unknown_stale_and_replayed_challenges_get_131_with_a_fresh_one() -> None:
    ha = make_ha()
    rep = reply_of(ha.handle(colocated_request(None), 0.0))
    assert rep.code == ReplyCode.HA_MN_FAILED_AUTH
    c1 = challenge_in(rep)
    assert c1 is not None
    # a challenge this agent never gave
    rep = reply_of(ha.handle(colocated_request(b"u" * 16, ident=2), 1.0))
    assert rep.code == ReplyCode.HA_MN_FAILED_AUTH
    c2 = challenge_in(rep)
    assert c2 is not None and c2 != c1
    # the superseded one is no longer valid
    rep = reply_of(ha.handle(colocated_request(c1, ident=3), 2.0))
    assert rep.code == ReplyCode.HA_MN_FAILED_AUTH
    c3 = challenge_in(rep)
    assert c3 is not None
    # the right challenge without MN-AAA does not do
    rep = reply_of(ha.handle(colocated_request(c3, ident=4, mn_aaa=False), 3.0))
    assert rep.code == ReplyCode.HA_MN_FAILED_AUTH
    c4 = challenge_in(rep)
    assert c4 is not None
    # too old
    rep = reply_of(ha.handle(colocated_request(c4, ident=5), 4.0 + CHALLENGE_LIFETIME))
    assert rep.code == ReplyCode.HA_MN_FAILED_AUTH
    c5 = challenge_in(rep)
    assert c5 is not None
    # the current one, with MN-AAA: held for the AAA server (no reply yet)
    request = colocated_request(c5, ident=6)
    actions = ha.handle(request, 70.0)
    assert [a for a in actions if isinstance(a, SendUdp)] == []
    asked = aaa_of(actions)
    assert asked.nai == NAI and not asked.foreign_agent
    # its retransmission while held: dropped and counted, no 131
    assert [a for a in ha.handle(request, 71.0) if isinstance(a, SendUdp)] == []
    assert ha.counters.snapshot()["discarded"]["duplicate_request"] == 1
    answer = AaaAnswer(asked.request_id, AaaResult.REJECT, server="r1")
    assert reply_of(ha.handle(answer, 72.0)).code == ReplyCode.HA_MN_FAILED_AAA_AUTH
    # replayed once decided: spent, 131 with a fresh challenge, nothing asked of AAA
    actions = ha.handle(request, 73.0)
    rep = reply_of(actions)
    assert rep.code == ReplyCode.HA_MN_FAILED_AUTH and challenge_in(rep) not in (None, c5)
    assert [a for a in actions if isinstance(a, AaaRequest)] == []
    events = ha.counters.snapshot()["events"]
    assert events["aaa_challenges_issued"] == 6 and events["aaa_challenges_answered"] == 1


def test_a_node_with_a_key_here_needs_no_challenge() -> None:
    ha = make_ha()
    ha.security_associations.add(NAI, WRONG_KEY)
    actions = ha.handle(colocated_request(None), 0.0)
    rep = reply_of(actions)
    # MN-HA decides (it verifies: the node signed with this key; the test's Identification
    # is not a current timestamp, the next check, 133), no challenge
    assert challenge_in(rep) is None and rep.code == ReplyCode.HA_IDENTIFICATION_MISMATCH
    assert "aaa_challenges_issued" not in ha.counters.snapshot()["events"]


def test_a_node_with_a_key_for_its_home_address_needs_no_challenge() -> None:
    ha = make_ha()
    ha.security_associations.add(GIVEN, WRONG_KEY)
    ev = colocated_request(None)
    req = RegistrationRequest.decode(ev.payload)
    req = sign(
        RegistrationRequest(
            req.flags, 600, GIVEN, HA_ADDR, MN_COLOCATED, req.identification, req.extensions[:1]
        ),
        MobileHomeAuthExtension,
        WRONG_KEY,
    )
    rep = reply_of(
        ha.handle(UdpReceived(req.raw, MN_COLOCATED, HA_ADDR, 434, 434, "ha0", ttl=64), 0.0)
    )
    assert challenge_in(rep) is None and rep.code == ReplyCode.HA_IDENTIFICATION_MISMATCH


def test_a_request_through_a_foreign_agent_is_not_challenged_by_the_home_agent() -> None:
    ha = make_ha()
    ev = colocated_request(None)
    relayed = UdpReceived(ev.payload, A("192.168.1.1"), HA_ADDR, 434, 434, "ha0", ttl=64)
    rep = RegistrationReply.decode(
        next(a for a in ha.handle(relayed, 0.0) if isinstance(a, SendUdp)).payload
    )
    assert (
        challenge_in(rep) is None
        and "aaa_challenges_issued" not in (ha.counters.snapshot()["events"])
    )


def test_many_nais_are_bounded() -> None:
    from mip4.core import ha_aaa

    ha = make_ha()
    for i in range(ha_aaa.MAX_CHALLENGES + 10):
        req = RegistrationRequest(
            RegistrationFlags.D,
            600,
            ZERO,
            HA_ADDR,
            MN_COLOCATED,
            i,
            (MobileNodeNAIExtension(f"n{i}@x".encode()),),
        )
        req = sign(req, MobileHomeAuthExtension, WRONG_KEY)
        ha.handle(UdpReceived(req.raw, MN_COLOCATED, HA_ADDR, 434, 434, "ha0", ttl=64), 0.0)
    assert len(ha._aaa._challenges) == ha_aaa.MAX_CHALLENGES


# ----------------------------------------------------------------------------------------
# The home agent forgot a key AAA gave (restart): the node asks for a new one (RFC 3957)
# ----------------------------------------------------------------------------------------


def restart_home_agent(w: HaAaaWorld) -> None:
    w.net.reboot("ha")
    w.forget_configured_key()


def test_home_agent_restart_the_node_falls_back_to_a_new_key_through_the_foreign_agent() -> None:
    w = KeysWorld(key_lifetime=None)
    w.move("A")
    w.run_serving(10)
    assert w.mn.registered and replies_to_mn(w) == [ReplyCode.ACCEPTED]
    restart_home_agent(w)
    w.run_serving(2000)  # the renewal finds a home agent without the key
    codes = replies_to_mn(w)
    assert ReplyCode.HA_MN_FAILED_AUTH in codes and codes[-1] == ReplyCode.ACCEPTED
    assert w.mn.registered and len(w.bindings()) == 1
    assert w.mn.counters.snapshot()["events"]["aaa_key_fallbacks"] == 1
    # the key derived for the renewal (which asked for none) was not installed; the one
    # issued for the node's key request is the node's key now
    events = w.ha.counters.snapshot()["events"]
    assert events["aaa_key_unrequested"] == 1 and events["aaa_keys_issued"] == 1
    keys = w.mn.client.keys
    assert keys is not None and keys.key is not None
    assert keys.key.association.key == w.keys[-1] != w.keys[0]
    (sa,) = w.ha.security_associations.for_peer(NAI)
    assert sa.key == w.keys[-1]


def test_home_agent_restart_the_colocated_node_falls_back_to_a_new_key() -> None:
    w = KeysWorld(key_lifetime=None)
    w.move("C")
    w.run_serving(10)
    assert w.mn.registered
    restart_home_agent(w)
    w.run_serving(2000)
    assert w.mn.registered and len(w.bindings()) == 1
    assert w.mn.counters.snapshot()["events"]["aaa_key_fallbacks"] == 1
    keys = w.mn.client.keys
    assert keys is not None and keys.key is not None
    assert keys.key.association.key == w.keys[-1] != w.keys[0]


def test_fallback_is_bounded_when_aaa_keeps_refusing() -> None:
    w = KeysWorld(key_lifetime=None)
    w.move("A")
    w.run_serving(10)
    restart_home_agent(w)
    before = len(w.asked["ha"])
    refuse = [False]
    serve = w.serve_aaa

    def serve_then_refuse() -> None:
        # the home AAA server refuses every request that asks for a key
        if refuse[0]:
            for req in w.net.actions_of("ha", AaaRequest)[w.served["ha"] :]:
                w.served["ha"] += 1
                w.asked["ha"].append(req)
                w.net.inject("ha", AaaAnswer(req.request_id, AaaResult.REJECT, server="r1"))
        serve()
        refuse[0] = w.ha.counters.snapshot()["events"].get("aaa_key_unrequested", 0) >= 1

    w.serve_aaa = serve_then_refuse  # type: ignore[method-assign]
    w.run_serving(6000)
    codes = replies_to_mn(w)
    assert codes[-2:] == [ReplyCode.HA_MN_FAILED_AUTH, ReplyCode.HA_MN_FAILED_AAA_AUTH]
    assert not w.mn.registered
    assert len(w.asked["ha"]) - before == 2  # the renewal, one key request: no loop


def test_fallback_stops_when_the_home_agent_cannot_ask_aaa() -> None:
    w = KeysWorld(key_lifetime=None)
    w.move("A")
    w.run_serving(10)
    w.net.reboot("ha")
    w.forget_configured_key()
    w.ha.config = HomeAgentConfig(address=HA_ADDR, home_network=HOME_NET, interface="ha0")
    w.run_serving(6000)
    codes = replies_to_mn(w)
    # 131 for the renewal, 131 for the key request (this agent does not ask AAA): give up
    assert codes[-2:] == [ReplyCode.HA_MN_FAILED_AUTH, ReplyCode.HA_MN_FAILED_AUTH]
    assert not w.mn.registered
    assert w.mn.counters.snapshot()["events"]["aaa_key_fallbacks"] == 1


def test_a_home_agent_restarted_on_its_store_keeps_the_key_aaa_gave(tmp_path: Path) -> None:
    """Issue 15 with RFC 3957: the key the home AAA server gave is kept in the home agent's
    store with the binding, so a restart (SIGKILL: nothing committed after the last
    registration) costs the node nothing -- no 131, no new key; without the store's keys
    the node falls back as in the tests above."""
    w = KeysWorld(key_lifetime=None)
    node = w.net.nodes["ha"]
    plain = node.factory
    stores = [SqliteStore(tmp_path / "ha.db", UNIX0)]

    def on_store() -> HomeAgent:
        fresh = plain()
        assert isinstance(fresh, HomeAgent)
        ha = HomeAgent(
            fresh.config, fresh.security_associations, UNIX0, bindings=stores[-1].bindings
        )
        for peer in (NAI, IPv4Address(0)):  # only AAA has the node's key (HaAaaWorld)
            ha.security_associations.remove(peer, MN_SPI)
        ha.restore(w.net.now)
        return ha

    node.factory = on_store
    w.net.reboot("ha")
    w.move("A")
    w.run_serving(10)
    assert w.mn.registered and replies_to_mn(w) == [ReplyCode.ACCEPTED]
    stores[-1].commit()  # what the daemon does before the reply leaves
    stores[-1]._db.close()  # killed
    stores.append(SqliteStore(tmp_path / "ha.db", UNIX0))
    w.net.reboot("ha")
    (sa,) = w.ha.security_associations.for_peer(NAI)
    assert sa.key == w.keys[-1]  # back from the store
    w.run_serving(2000)  # renewals reach the restarted home agent
    codes = replies_to_mn(w)
    assert ReplyCode.HA_MN_FAILED_AUTH not in codes and len(codes) > 1
    assert set(codes) == {ReplyCode.ACCEPTED}
    assert w.mn.registered and len(w.bindings()) == 1
    assert w.mn.counters.snapshot()["events"].get("aaa_key_fallbacks", 0) == 0
    assert len(w.keys) == 1  # AAA was never asked for another key
    # the binding expires while the agent is down: the key leaves the store with it
    stores[-1].commit()
    stores[-1]._db.close()
    later = SqliteStore(tmp_path / "ha.db", UNIX0)
    assert NAI in later.bindings.mn_ha_keys()
    ha = HomeAgent(w.ha.config, SecurityAssociations(), UNIX0, bindings=later.bindings)
    ha.restore(w.net.now + 100_000.0)
    later.commit()
    assert later.bindings.mn_ha_keys() == {} and ha.security_associations.for_peer(NAI) == []
