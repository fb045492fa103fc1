"""System tests of the three engines in the in-memory network (tests/core/netsim.py)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address as A

import pytest

from mip4.core.actions import (
    AtHome,
    Encapsulation,
    GratuitousArp,
    InstallBinding,
    InstallVisitor,
    Log,
    ProxyArp,
    RemoveBinding,
    RemoveVisitor,
    SendIcmp,
    SendUdp,
    UseColocatedAddress,
    UseForeignAgent,
)
from mip4.core.events import LinkDown
from mip4.core.foreign_agent import VisitedLink
from mip4.core.home_agent import HomeAgentConfig
from mip4.core.mobile_node import MnState, MobileNode, MobileNodeConfig, ReverseTunnel
from mip4.security.sa import ReplayMethod
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import MobileForeignChallengeExtension
from mip4.wire.messages import RegistrationFlags, RegistrationReply, RegistrationRequest

from .netsim import (
    FA1_ADDR,
    FA2_ADDR,
    HA_ADDR,
    HOME_NET,
    MN_COLOCATED,
    MN_HOME,
    UNIX0,
    Packet,
    World,
)


def test_colocated_registration_and_return_home() -> None:
    w = World()
    w.move("C")
    assert w.mn.registered and w.mn.care_of_address == MN_COLOCATED
    (b,) = w.bindings()
    assert b.care_of_address == MN_COLOCATED and b.home_address == MN_HOME
    assert w.net.actions_of("ha", ProxyArp)[-1].enable
    assert w.net.actions_of("ha", InstallBinding)[-1].care_of_address == MN_COLOCATED
    w.advance(5)
    w.move("home")
    assert w.mn.state is MnState.AT_HOME
    assert w.bindings() == []
    assert w.net.actions_of("mn", AtHome)
    assert w.net.actions_of("mn", GratuitousArp)[-1].address == MN_HOME
    assert w.net.actions_of("ha", RemoveBinding)
    assert not w.net.actions_of("ha", ProxyArp)[-1].enable
    replies = w.net.sent("ha", RegistrationReply)
    assert all(p.receiver == "mn" and not p.dropped for p in replies)


def test_registration_at_home_deregisters() -> None:
    w = World()
    w.move("home")
    (p,) = w.net.sent("mn", RegistrationRequest)
    req = p.message
    assert isinstance(req, RegistrationRequest)
    assert req.lifetime == 0 and req.care_of_address == MN_HOME and p.receiver == "ha"
    assert w.mn.state is MnState.AT_HOME
    assert w.mn.home_agent == HA_ADDR


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------


def mn_config(**kw: object) -> MobileNodeConfig:
    return MobileNodeConfig(home_address=MN_HOME, home_agent=HA_ADDR, **kw)  # type: ignore[arg-type]


def ha_config(**kw: object) -> HomeAgentConfig:
    return HomeAgentConfig(address=HA_ADDR, home_network=HOME_NET, interface="ha0", **kw)  # type: ignore[arg-type]


def request_times(w: World, *, delivered: bool | None = None) -> list[float]:
    return [p.time for p in w.net.sent("mn", RegistrationRequest, delivered=delivered)]


def requests_of(w: World) -> list[RegistrationRequest]:
    out = []
    for p in w.net.sent("mn", RegistrationRequest):
        m = p.message
        assert isinstance(m, RegistrationRequest)
        out.append(m)
    return out


def is_request(p: Packet) -> bool:
    return p.sender == "mn" and isinstance(p.action, SendUdp) and p.payload[:1] == b"\x01"


def is_ha_reply(p: Packet) -> bool:
    return p.sender == "ha" and p.payload[:1] == b"\x03"


# ----------------------------------------------------------------------------------------
# Loss and retransmission (RFC 5944 §3.6.3)
# ----------------------------------------------------------------------------------------


def test_lost_requests_are_retransmitted_on_schedule() -> None:
    w = World()
    lost = [0]

    def first_two(p: Packet) -> bool:
        if is_request(p) and lost[0] < 2:
            lost[0] += 1
            return True
        return False

    w.net.drop_if(first_two)
    w.move("C")
    w.run_until(10)
    assert request_times(w) == [0.0, 1.0, 3.0]
    assert w.mn.registered
    (b,) = w.bindings()
    assert b.registered_at == 3.0


def test_lost_reply_is_recovered_by_retransmission() -> None:
    w = World()
    lost = [0]

    def first_reply(p: Packet) -> bool:
        if is_ha_reply(p) and lost[0] < 1:
            lost[0] += 1
            return True
        return False

    w.net.drop_if(first_reply)
    w.move("C")
    assert not w.mn.registered  # the acceptance was lost
    assert len(w.bindings()) == 1  # but the home agent holds the binding
    w.run_until(5)
    assert w.mn.registered
    assert request_times(w) == [0.0, 1.0]
    reqs = requests_of(w)
    # timestamps: the retransmission is a new registration with a newer Identification
    assert reqs[1].identification > reqs[0].identification
    assert w.ha.counters.accepted[ReplyCode.ACCEPTED] == 2


def test_backoff_schedule_when_everything_is_lost() -> None:
    w = World(mn_config=mn_config(retransmit_max=16.0, retransmit_limit=5, denial_backoff=10.0))
    w.net.drop_if(is_request)
    w.move("C")
    w.run_until(110)
    assert request_times(w) == [0, 1, 3, 7, 15, 31, 57, 58, 60, 64, 72, 88]
    assert w.mn.state is MnState.BACKING_OFF
    assert w.mn.next_deadline() == 124.0
    w.net.stop_dropping()
    w.run_until(125)
    assert w.mn.registered


def test_random_loss_still_registers() -> None:
    w = World(seed=3)
    w.net.loss_probability = 0.5
    w.move("C")
    w.run_until(300)
    assert w.mn.registered
    (b,) = w.bindings()
    assert b.care_of_address == MN_COLOCATED


# ----------------------------------------------------------------------------------------
# Reboots, lifetimes, expiry
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("replay", [ReplayMethod.TIMESTAMPS, ReplayMethod.NONCES])
def test_home_agent_reboot_binding_restored_at_renewal(replay: ReplayMethod) -> None:
    w = World(replay=replay, mn_config=mn_config(lifetime=100))
    w.move("C")
    w.run_until(10)
    assert w.mn.registered
    w.net.reboot("ha")
    assert w.bindings() == []
    w.run_until(79)
    assert w.bindings() == []
    w.run_until(81)
    (b,) = w.bindings()
    assert b.registered_at == 80.0 and w.mn.registered
    if replay is ReplayMethod.NONCES:
        # the rebooted agent lost the nonce: one 133, then a resynchronised request
        assert w.ha.counters.denied[ReplyCode.HA_IDENTIFICATION_MISMATCH] == 1


@pytest.mark.parametrize("where", ["C", "A"])
def test_renewals_do_not_rebuild_the_nodes_routes(where: str) -> None:
    """The node tells its I/O layer how to reach the network once per attachment; its
    renewals (with the agent's advertisements refreshing its record every second) and a
    re-registration with a rebooted home agent must not make it tear its routes down and
    build them again (that would drop the kernel's path-MTU state for them)."""
    w = World(ha_config=ha_config(max_lifetime=10), mn_config=mn_config(lifetime=10))
    w.move(where)
    w.run_until(30)
    w.net.reboot("ha")
    w.run_until(60)
    assert len(request_times(w)) >= 6  # renewed every 8 s, and after the reboot
    assert w.mn.registered and len(w.bindings()) == 1
    kind = UseForeignAgent if where == "A" else UseColocatedAddress
    assert len(w.net.actions_of("mn", kind)) == 1
    if where == "A":
        # the agent re-installs the visitor with a new expiry each time (the I/O layer
        # leaves the kernel objects alone when only the expiry changed)
        installs = w.net.actions_of("fa1", InstallVisitor)
        assert len(installs) >= 6
        assert len({replace(i, expires=None) for i in installs}) == 1


@pytest.mark.parametrize("where", ["C", "A"])
def test_lifetime_shortened_by_home_agent(where: str) -> None:
    w = World(ha_config=ha_config(max_lifetime=60), mn_config=mn_config(lifetime=1800))
    w.move(where)
    assert w.mn.registered
    assert w.mn.binding is not None and w.mn.binding.granted == 60
    assert w.mn.binding_expires == 60.0
    w.run_until(200)
    # re-registers at 80 % of the granted lifetime, every time
    assert request_times(w) == [0.0, 48.0, 96.0, 144.0, 192.0]
    assert all(r.lifetime == 1800 for r in requests_of(w))
    assert w.mn.registered and len(w.bindings()) == 1


def test_binding_expires_when_mobile_node_goes_silent() -> None:
    w = World(ha_config=ha_config(max_lifetime=60))
    w.move("C")
    w.move(None)
    w.run_until(59.9)
    assert len(w.bindings()) == 1
    w.run_until(60.1)
    assert w.bindings() == []
    assert w.net.actions_of("ha", RemoveBinding)[-1].care_of_address == MN_COLOCATED
    assert not w.net.actions_of("ha", ProxyArp)[-1].enable
    assert w.mn.state is MnState.DETACHED and not w.mn.registered


# ----------------------------------------------------------------------------------------
# Home agent denials produced by a real cause, and the mobile node's reaction
# ----------------------------------------------------------------------------------------


def test_129_home_address_not_served_gives_up() -> None:
    w = World(ha_config=ha_config(home_addresses=frozenset({HA_ADDR + 100})))
    w.move("C")
    assert w.ha.counters.denied[ReplyCode.HA_ADMIN_PROHIBITED] == 1
    assert w.mn.state is MnState.FAILED and not w.mn.registered
    assert "administratively prohibited" in (w.mn.failure_reason or "")
    w.run_until(1000)
    assert len(requests_of(w)) == 1  # no retry storm


def test_130_binding_table_full_backs_off() -> None:
    w = World(ha_config=ha_config(max_bindings=0), mn_config=mn_config(denial_backoff=10.0))
    w.move("C")
    assert w.mn.state is MnState.BACKING_OFF
    w.run_until(100)
    assert request_times(w) == [0.0, 10.0, 30.0, 70.0]
    assert w.ha.counters.denied[ReplyCode.HA_INSUFFICIENT_RESOURCES] == 4
    assert not w.mn.registered


def test_131_wrong_key_reply_cannot_be_authenticated() -> None:
    w = World(ha_mn_key=b"not the mobile node's key")
    w.move("C")
    w.run_until(40)
    assert w.ha.counters.denied[ReplyCode.HA_MN_FAILED_AUTH] >= 1
    # the reply is signed with the HA's (different) key: the node discards it
    assert w.net.logs("mn", "mn.discard")
    assert all(
        log.fields["why"] == "authentication failed" for log in w.net.logs("mn", "mn.discard")
    )
    assert not w.mn.registered and w.bindings() == []


@pytest.mark.parametrize("where", ["C", "A"])
@pytest.mark.parametrize("replay", [ReplayMethod.TIMESTAMPS, ReplayMethod.NONCES])
def test_133_identification_resynchronised(replay: ReplayMethod, where: str) -> None:
    # the node's clock is 1000 s behind the home agent's (timestamps); nonces always start
    # with a 133 that hands out the first nonce
    w = World(replay=replay, mn_clock_skew=-1000.0)
    w.move(where)
    assert w.ha.counters.denied[ReplyCode.HA_IDENTIFICATION_MISMATCH] == 1
    assert w.mn.registered
    reqs = requests_of(w)
    assert len(reqs) == 2
    assert request_times(w) == [0.0, 0.0]
    w.run_until(2000)
    assert w.ha.counters.denied[ReplyCode.HA_IDENTIFICATION_MISMATCH] == 1  # stays in sync
    assert w.mn.registered


def test_135_too_many_bindings_backs_off() -> None:
    w = World(
        ha_config=ha_config(max_simultaneous_bindings=1),
        mn_config=mn_config(simultaneous_bindings=True),
    )
    w.move("C")
    assert w.mn.registered
    # a second care-of address while the first binding is alive
    w.net.inject("mn", LinkDown("mn0"))
    w.net.link_up("mn", "mn0", "C", A("172.16.0.10"), 24, on_link=MN_HOME)
    assert w.ha.counters.denied[ReplyCode.HA_TOO_MANY_BINDINGS] == 1
    assert w.mn.state is MnState.BACKING_OFF and not w.mn.registered


def test_136_home_agent_discovery() -> None:
    w = World(mn_config=MobileNodeConfig(home_address=MN_HOME, home_agent=A("10.0.0.255")))
    w.move("C")
    assert w.ha.counters.denied[ReplyCode.HA_UNKNOWN_HA_ADDRESS] == 1
    assert w.mn.home_agent == HA_ADDR and w.mn.registered
    first, second = w.net.sent("mn", RegistrationRequest)
    assert first.action.dst == A("10.0.0.255") and second.action.dst == HA_ADDR


def test_137_reverse_tunnel_unavailable_registers_without_t() -> None:
    w = World(
        ha_config=ha_config(reverse_tunnel=False),
        mn_config=mn_config(reverse_tunnel=ReverseTunnel.PREFER),
    )
    w.move("C")
    assert w.ha.counters.denied[ReplyCode.HA_REVERSE_TUNNEL_UNAVAILABLE] == 1
    assert w.mn.registered
    (b,) = w.bindings()
    assert not b.reverse_tunnel
    first, second = requests_of(w)
    assert first.flags & RegistrationFlags.T and not second.flags & RegistrationFlags.T


def test_137_with_reverse_tunnel_required_by_node_gives_up() -> None:
    w = World(
        ha_config=ha_config(reverse_tunnel=False),
        mn_config=mn_config(reverse_tunnel=ReverseTunnel.REQUIRE),
    )
    w.move("C")
    assert w.mn.state is MnState.FAILED and "137" in (w.mn.failure_reason or "")


def test_138_reverse_tunnel_mandatory_retries_with_t() -> None:
    w = World(ha_config=ha_config(reverse_tunnel_required=True))
    w.move("C")
    assert w.ha.counters.denied[ReplyCode.HA_REVERSE_TUNNEL_MANDATORY] == 1
    assert w.mn.registered
    (b,) = w.bindings()
    assert b.reverse_tunnel
    use = w.net.actions_of("mn", UseColocatedAddress)[-1]
    assert use.reverse_tunnel


def test_139_encapsulation_unavailable_falls_back_to_ipip() -> None:
    w = World(
        ha_config=ha_config(gre_encapsulation=False),
        mn_config=mn_config(encapsulations=(Encapsulation.GRE, Encapsulation.IPIP)),
    )
    w.move("C")
    assert w.ha.counters.denied[ReplyCode.HA_ENCAPSULATION_UNAVAILABLE] == 1
    assert w.mn.registered
    (b,) = w.bindings()
    assert b.encapsulation is Encapsulation.IPIP


def test_gre_when_offered() -> None:
    w = World(mn_config=mn_config(encapsulations=(Encapsulation.GRE,)))
    w.move("C")
    (b,) = w.bindings()
    assert b.encapsulation is Encapsulation.GRE
    assert w.net.actions_of("mn", UseColocatedAddress)[-1].encapsulation is Encapsulation.GRE


def test_code_1_simultaneous_bindings_unsupported_is_a_registration() -> None:
    w = World(
        ha_config=ha_config(simultaneous_bindings=False),
        mn_config=mn_config(simultaneous_bindings=True),
    )
    w.move("C")
    assert w.ha.counters.accepted[ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS] == 1
    assert w.mn.registered
    assert w.mn.last_reaction is not None and w.mn.last_reaction.code == 1


# ----------------------------------------------------------------------------------------
# Through foreign agents
# ----------------------------------------------------------------------------------------


def mn_requests_to(w: World, receiver: str) -> list[Packet]:
    return [p for p in w.net.sent("mn", RegistrationRequest) if p.receiver == receiver]


def test_registration_via_foreign_agent() -> None:
    w = World()
    w.move("A")
    assert w.mn.registered and w.mn.care_of_address == FA1_ADDR
    (b,) = w.bindings()
    assert b.care_of_address == FA1_ADDR and b.source == FA1_ADDR
    v = w.fa1.visitors.get(MN_HOME)
    assert v is not None and v.care_of_address == FA1_ADDR
    assert v.link_address == w.net.nodes["mn"].interfaces["mn0"].mac
    (p,) = mn_requests_to(w, "fa1")
    assert isinstance(p.action, SendUdp) and p.action.ttl == 1
    use = w.net.actions_of("mn", UseForeignAgent)[-1]
    assert use.agent_address == FA1_ADDR
    assert use.agent_link_address == w.net.nodes["fa1"].interfaces["fa1-a"].mac
    assert w.net.actions_of("fa1", InstallVisitor)[-1].home_address == MN_HOME


def test_move_fa1_to_fa2() -> None:
    w = World(mn_config=mn_config(lifetime=300))
    w.move("A")
    w.advance(20)
    w.move("B")
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    (b,) = w.bindings()
    assert b.care_of_address == FA2_ADDR
    assert w.fa2.visitors.get(MN_HOME) is not None
    # FA1 is not told: its visitor entry lasts until the granted lifetime runs out
    assert w.fa1.visitors.get(MN_HOME) is not None
    w.run_until(301)
    assert w.fa1.visitors.get(MN_HOME) is None
    assert w.net.actions_of("fa1", RemoveVisitor)[-1].home_address == MN_HOME
    assert w.mn.registered and w.fa2.visitors.get(MN_HOME) is not None


def test_silent_roam_detected_by_network_prefix() -> None:
    w = World()
    w.move("A")
    w.advance(10)
    w.move("B", signal=False)  # no LinkDown/LinkUp: only advertisements tell
    t = w.now
    w.advance(2)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    moved = [p for p in mn_requests_to(w, "fa2")]
    assert moved and moved[0].time - t <= 1.0  # at FA2's next advertisement
    assert any("prefix" in str(log.fields.get("why")) for log in w.net.logs("mn", "mn.attach"))


def test_silent_loss_detected_by_advertisement_lifetime() -> None:
    w = World()
    w.move("A")
    w.advance(10.5)
    last_adv = 10.0
    w.move("C", signal=False)  # a link without an agent; the node is not told
    w.advance(5)
    (lost,) = [
        t for t, a in w.net.nodes["mn"].actions if isinstance(a, Log) and a.event == "mn.agent_lost"
    ]
    # ICMP Lifetime of FA advertisements is 3 s (3 x the 1 s interval)
    assert lost == last_adv + 3.0
    assert not w.mn.registered and w.mn.state is MnState.DISCOVERING


def test_return_home_from_foreign_agent() -> None:
    w = World(mn_config=mn_config(lifetime=100))
    w.move("A")
    w.advance(5)
    w.move("home")
    assert w.mn.state is MnState.AT_HOME and w.bindings() == []
    assert w.net.actions_of("mn", AtHome)
    assert w.net.actions_of("mn", GratuitousArp)
    # the home agent stops proxy ARP and announces the node's own hardware address
    assert not w.net.actions_of("ha", ProxyArp)[-1].enable
    garp = w.net.actions_of("ha", GratuitousArp)[-1]
    assert garp.link_address == w.net.nodes["mn"].interfaces["mn0"].mac
    w.run_until(106)
    assert w.fa1.visitors.get(MN_HOME) is None  # visitor expired silently
    assert not [p for p in w.net.sent("fa1", RegistrationReply) if p.time > 5]


def test_foreign_agent_reboot_triggers_reregistration() -> None:
    w = World(mn_config=mn_config(lifetime=600))
    w.move("A")
    w.advance(300.5)  # sequence numbers well above 255
    assert w.fa1.sequences["fa1-a"] > 256
    n = len(mn_requests_to(w, "fa1"))
    w.net.reboot("fa1")
    assert w.fa1.visitors.get(MN_HOME) is None
    w.advance(0.1)
    reqs = mn_requests_to(w, "fa1")
    assert len(reqs) == n + 1 and reqs[-1].time == 300.5
    assert w.net.logs("mn", "mn.agent_rebooted")
    assert w.fa1.visitors.get(MN_HOME) is not None and w.mn.registered


def test_home_agent_reboot_via_foreign_agent() -> None:
    w = World(mn_config=mn_config(lifetime=100))
    w.move("A")
    w.advance(10)
    w.net.reboot("ha")
    assert w.bindings() == []
    w.run_until(81)
    (b,) = w.bindings()
    assert b.care_of_address == FA1_ADDR and b.registered_at == 80.0


def test_lifetime_shortened_by_foreign_agent() -> None:
    w = World(fa_options={"max_lifetime": 100}, mn_config=mn_config(lifetime=1800))
    w.move("A")
    w.run_until(170)
    reqs = [p.message for p in mn_requests_to(w, "fa1")]
    assert all(isinstance(r, RegistrationRequest) and r.lifetime == 100 for r in reqs)
    assert [p.time for p in mn_requests_to(w, "fa1")] == [0.0, 80.0, 160.0]
    assert w.fa1.counters.denied[ReplyCode.FA_LIFETIME_TOO_LONG] == 0


def test_visitor_and_binding_expire_when_node_goes_silent() -> None:
    w = World(mn_config=mn_config(lifetime=60))
    w.move("A")
    w.move(None)
    w.run_until(59.9)
    assert w.fa1.visitors.get(MN_HOME) is not None and len(w.bindings()) == 1
    w.run_until(60.1)
    assert w.fa1.visitors.get(MN_HOME) is None and w.bindings() == []
    # neither agent sends anything because a lifetime ran out (RFC 5944 §3.7)
    assert not w.net.sent("fa1", RegistrationReply) or all(
        p.time == 0.0 for p in w.net.sent("fa1", RegistrationReply)
    )


def test_simultaneous_bindings_and_single_deregistration() -> None:
    w = World(mn_config=mn_config(simultaneous_bindings=True))
    w.move("C")
    w.advance(1)
    w.move("A")
    assert w.mn.registered
    assert sorted(b.care_of_address for b in w.bindings()) == sorted([MN_COLOCATED, FA1_ADDR])
    w.net.transfer()
    w.net._apply(w.net.nodes["mn"], w.mn.deregister(w.now, care_of_address=MN_COLOCATED))
    w.net.transfer()
    assert [b.care_of_address for b in w.bindings()] == [FA1_ADDR]


@pytest.mark.parametrize("pref", [ReverseTunnel.OFF, ReverseTunnel.PREFER])
def test_reverse_tunnelling_on_and_off(pref: ReverseTunnel) -> None:
    w = World(mn_config=mn_config(reverse_tunnel=pref))
    w.move("A")
    on = pref is ReverseTunnel.PREFER
    (b,) = w.bindings()
    assert b.reverse_tunnel is on
    v = w.fa1.visitors.get(MN_HOME)
    assert v is not None and v.reverse_tunnel is on
    assert w.net.actions_of("fa1", InstallVisitor)[-1].reverse_tunnel is on


def test_no_reverse_tunnel_offered_and_required_by_node() -> None:
    w = World(
        fa_options={"reverse_tunnel": False},
        mn_config=mn_config(reverse_tunnel=ReverseTunnel.REQUIRE),
    )
    w.move("A")
    w.advance(10)
    assert mn_requests_to(w, "fa1") == [] and not w.mn.registered


def test_encapsulation_never_requested_unless_advertised() -> None:
    w = World(
        fa_options={"gre_encapsulation": False},
        mn_config=mn_config(encapsulations=(Encapsulation.GRE, Encapsulation.IPIP)),
    )
    w.move("A")
    (b,) = w.bindings()
    assert b.encapsulation is Encapsulation.IPIP
    assert w.fa1.counters.denied[ReplyCode.FA_ENCAPSULATION_UNAVAILABLE] == 0


# ----------------------------------------------------------------------------------------
# Foreign agent denials produced by a real cause
# ----------------------------------------------------------------------------------------


def test_67_mn_fa_authentication_required_gives_up() -> None:
    w = World(fa_options={"require_mn_fa_auth": True})
    w.move("A")
    assert w.fa1.counters.denied[ReplyCode.FA_MN_FAILED_AUTH] == 1
    assert w.mn.state is MnState.FAILED and "67" in (w.mn.failure_reason or "")
    assert w.ha.counters.total_accepted == 0


def test_68_home_agent_fails_fa_ha_authentication() -> None:
    w = World(fa_ha_sa=True, ha_knows_fa=False)
    w.move("A")
    assert w.fa1.counters.denied[ReplyCode.FA_HA_FAILED_AUTH] == 1
    assert w.mn.state is MnState.FAILED and not w.mn.registered
    assert "68" in (w.mn.failure_reason or "")


def test_fa_ha_authentication_when_both_share_it() -> None:
    w = World(fa_ha_sa=True)
    w.move("A")
    assert w.mn.registered


def test_75_reverse_tunnel_mandatory_at_fa() -> None:
    w = World(fa_options={"reverse_tunnel_required": True})
    w.move("A")
    assert w.fa1.counters.denied[ReplyCode.FA_REVERSE_TUNNEL_MANDATORY] == 1
    assert w.mn.registered
    (b,) = w.bindings()
    assert b.reverse_tunnel


def test_78_registration_timeout_when_home_agent_silent() -> None:
    # the node waits 8 s before retransmitting; the agent gives up on the home agent after
    # its 7 s pending timeout (RFC 5944 §3.7.1)
    w = World(mn_config=mn_config(retransmit_initial=8.0, retransmit_max=8.0))
    w.net.icmp_errors = False
    w.net.set_up("ha", False)
    w.move("A")
    w.advance(7.5)
    assert w.fa1.counters.denied[ReplyCode.FA_REGISTRATION_TIMEOUT] == 1
    assert w.mn.state is MnState.BACKING_OFF
    assert w.mn.last_reaction is not None and w.mn.last_reaction.code == 78
    w.net.set_up("ha", True)
    w.advance(60)
    assert w.mn.registered


def test_81_home_agent_host_unreachable() -> None:
    w = World()
    w.net.set_up("ha", False)
    w.move("A")
    assert w.fa1.counters.denied[ReplyCode.FA_HA_HOST_UNREACHABLE] == 1
    assert w.mn.state is MnState.BACKING_OFF
    w.net.set_up("ha", True)
    w.advance(30)
    assert w.mn.registered


def test_66_insufficient_resources_backs_off() -> None:
    w = World(fa_options={"max_pending": 1})
    other = add_mobile_node(w, "mn2", A("10.0.0.6"))
    w.net.icmp_errors = False
    w.net.set_up("ha", False)  # keeps the first request pending
    w.net.link_up("mn2", "mn0", "A", None, None, on_link=A("10.0.0.6"))
    w.move("A")
    assert w.fa1.counters.denied[ReplyCode.FA_INSUFFICIENT_RESOURCES] == 1
    assert w.mn.state is MnState.BACKING_OFF
    assert other.state is MnState.REGISTERING
    w.net.set_up("ha", True)
    w.advance(200)
    assert w.mn.registered and other.registered


def test_106_stale_challenge_after_lost_reply() -> None:
    w = World(fa_options={"challenge_length": 16, "advertisement_interval": 5.0})
    lost = [0]

    def first_reply_to_mn(p: Packet) -> bool:
        if p.sender == "fa1" and p.receiver == "mn" and p.payload[:1] == b"\x03" and not lost[0]:
            lost[0] = 1
            return True
        return False

    w.net.drop_if(first_reply_to_mn)
    w.move("A")
    assert not w.mn.registered
    w.advance(1.5)  # the retransmission reuses the challenge: already used
    assert w.fa1.counters.denied[ReplyCode.FA_STALE_CHALLENGE] == 1
    assert w.mn.registered  # solicited a fresh challenge and registered
    reqs = [p.message for p in mn_requests_to(w, "fa1")]
    challenges = [
        [e for e in r.extensions if isinstance(e, MobileForeignChallengeExtension)]
        for r in reqs
        if isinstance(r, RegistrationRequest)
    ]
    assert challenges[0] == challenges[1] != challenges[-1]


def test_104_unknown_challenge_after_unnoticed_agent_reboot() -> None:
    w = World(
        fa_options={"challenge_length": 16, "advertisement_interval": 100.0},
        mn_config=mn_config(lifetime=100),
    )
    w.move("A")
    assert w.mn.registered
    w.advance(15)
    # the agent reboots and its first advertisement does not reach the node: the node's
    # renewal at 80 s answers a challenge the new agent never issued
    dropped: list[Packet] = []

    def first_advertisement(p: Packet) -> bool:
        if p.sender == "fa1" and isinstance(p.action, SendIcmp) and not dropped:
            dropped.append(p)
            return True
        return False

    w.net.drop_if(first_advertisement)
    w.net.reboot("fa1")
    w.run_until(81)
    assert [p.time for p in dropped] == [15.0]
    assert w.fa1.counters.denied[ReplyCode.FA_UNKNOWN_CHALLENGE] == 1
    assert w.mn.registered  # solicited a fresh challenge and registered again
    assert w.fa1.visitors.get(MN_HOME) is not None


def add_mobile_node(w: World, name: str, home: A) -> MobileNode:
    cfg = MobileNodeConfig(home_address=home, home_agent=HA_ADDR)
    sa = w.mn_sa
    ha = w.ha
    ha.security_associations.add(home, sa)

    def make() -> MobileNode:
        return MobileNode(cfg, sa, UNIX0, rng=random.Random(name))

    node = w.net.add_node(name, make, {"mn0": (None, [])})
    assert isinstance(node.engine, MobileNode)
    return node.engine


# ----------------------------------------------------------------------------------------
# More denials from real causes: wire corruption, routing, keys, a reconfigured agent
# ----------------------------------------------------------------------------------------


def test_71_reply_corrupted_on_the_way_to_the_foreign_agent() -> None:
    w = World(mn_config=mn_config(denial_backoff=10.0))
    hits: list[float] = []

    def first_ha_reply(p: Packet) -> bool:
        if is_ha_reply(p) and p.receiver == "fa1" and not hits:
            hits.append(p.time)
            return True
        return False

    # the last byte is lost: the MN-HA extension overruns the message
    w.net.corrupt_if(first_ha_reply, lambda b: b[:-1])
    w.move("A")
    assert w.fa1.counters.denied[ReplyCode.FA_POORLY_FORMED_REPLY] == 1
    assert w.mn.state is MnState.BACKING_OFF and w.mn.last_reaction is not None
    assert w.mn.last_reaction.code == 71
    w.advance(11)
    assert w.mn.registered


def test_80_home_network_unreachable() -> None:
    w = World(mn_config=MobileNodeConfig(home_address=MN_HOME, home_agent=A("10.9.9.9")))
    w.move("A")
    assert w.fa1.counters.denied[ReplyCode.FA_HOME_NETWORK_UNREACHABLE] == 1
    assert w.mn.state is MnState.BACKING_OFF
    assert "home network unreachable" in w.mn.last_reaction.reason  # type: ignore[union-attr]


def test_132_foreign_agent_fails_authentication_at_home_agent() -> None:
    w = World(fa_ha_sa=True, fa_knows_ha=False)
    w.move("A")
    assert w.ha.counters.denied[ReplyCode.HA_FA_FAILED_AUTH] == 1
    assert w.mn.state is MnState.FAILED and "132" in (w.mn.failure_reason or "")


def reconfigure_unnoticed(w: World, opts: dict[str, object], **changes: object) -> None:
    """Reboot FA1 with a new configuration; its first advertisement is lost, so the node
    keeps using what the old one advertised."""
    opts.update(changes)
    dropped: list[Packet] = []

    def first_advertisement(p: Packet) -> bool:
        if p.sender == "fa1" and isinstance(p.action, SendIcmp) and not dropped:
            dropped.append(p)
            return True
        return False

    w.net.drop_if(first_advertisement)
    w.net.reboot("fa1")
    w.advance(0.01)
    assert dropped


def test_69_lifetime_too_long_after_agent_reconfigured() -> None:
    opts: dict[str, object] = {"advertisement_interval": 100.0}
    w = World(fa_options=opts, mn_config=mn_config(lifetime=100))
    w.move("A")
    w.advance(15)
    reconfigure_unnoticed(w, opts, max_lifetime=50)
    w.run_until(81)
    assert w.fa1.counters.denied[ReplyCode.FA_LIFETIME_TOO_LONG] == 1
    assert w.mn.registered and w.mn.binding is not None and w.mn.binding.granted == 50
    last = requests_of(w)[-1]
    assert last.lifetime == 50


def test_72_encapsulation_unavailable_after_agent_reconfigured() -> None:
    opts: dict[str, object] = {"advertisement_interval": 100.0}
    w = World(
        fa_options=opts,
        mn_config=mn_config(lifetime=100, encapsulations=(Encapsulation.GRE, Encapsulation.IPIP)),
    )
    w.move("A")
    assert requests_of(w)[-1].flags & RegistrationFlags.G
    w.advance(15)
    reconfigure_unnoticed(w, opts, gre_encapsulation=False)
    w.run_until(81)
    assert w.fa1.counters.denied[ReplyCode.FA_ENCAPSULATION_UNAVAILABLE] == 1
    assert w.mn.registered
    (b,) = w.bindings()
    assert b.encapsulation is Encapsulation.IPIP


def test_74_reverse_tunnel_unavailable_after_agent_reconfigured() -> None:
    opts: dict[str, object] = {"advertisement_interval": 100.0}
    w = World(
        fa_options=opts, mn_config=mn_config(lifetime=100, reverse_tunnel=ReverseTunnel.PREFER)
    )
    w.move("A")
    w.advance(15)
    reconfigure_unnoticed(w, opts, reverse_tunnel=False)
    w.run_until(81)
    assert w.fa1.counters.denied[ReplyCode.FA_REVERSE_TUNNEL_UNAVAILABLE] == 1
    assert w.mn.registered
    (b,) = w.bindings()
    assert not b.reverse_tunnel


def test_77_invalid_care_of_address_after_agent_reconfigured() -> None:
    opts: dict[str, object] = {"advertisement_interval": 100.0}
    w = World(fa_options=opts, mn_config=mn_config(lifetime=100))
    w.move("A")
    w.advance(15)
    new_coa = A("192.168.1.100")
    opts["links"] = (VisitedLink("fa1-a", FA1_ADDR, 24, care_of_addresses=(new_coa,)),)
    reconfigure_unnoticed(w, opts)
    w.net.nodes["fa1"].interfaces["fa1-a"].addresses.add(new_coa)
    w.run_until(81)
    assert w.fa1.counters.denied[ReplyCode.FA_INVALID_COA] == 1
    # the node solicited, got a fresh advertisement and registered the new care-of address
    assert w.mn.registered and w.mn.care_of_address == new_coa
    (b,) = w.bindings()
    assert b.care_of_address == new_coa


def test_105_missing_challenge_after_agent_reconfigured() -> None:
    opts: dict[str, object] = {"advertisement_interval": 100.0}
    w = World(fa_options=opts, mn_config=mn_config(lifetime=100))
    w.move("A")
    w.advance(15)
    reconfigure_unnoticed(w, opts, challenge_length=16)
    w.run_until(81)
    assert w.fa1.counters.denied[ReplyCode.FA_MISSING_CHALLENGE] == 1
    assert w.mn.registered
    assert any(
        isinstance(e, MobileForeignChallengeExtension) for e in requests_of(w)[-1].extensions
    )


def test_136_home_agent_discovery_through_foreign_agent() -> None:
    w = World(mn_config=MobileNodeConfig(home_address=MN_HOME, home_agent=A("10.0.0.255")))
    w.move("A")
    assert w.ha.counters.denied[ReplyCode.HA_UNKNOWN_HA_ADDRESS] == 1
    assert w.mn.registered and w.mn.home_agent == HA_ADDR
    first, second = requests_of(w)
    assert first.home_agent == A("10.0.0.255") and second.home_agent == HA_ADDR
    v = w.fa1.visitors.get(MN_HOME)
    assert v is not None and v.home_agent == HA_ADDR


@pytest.mark.parametrize("required", [False, True])
def test_r_bit_makes_node_register_through_agent(required: bool) -> None:
    w = World(fa_options={"registration_required": required})
    # link A also hands the node an address of its own (a co-located care-of address)
    w.net.link_up("mn", "mn0", "A", A("192.168.1.50"), 24, on_link=MN_HOME)
    w.advance(2)
    assert w.mn.registered
    expected = FA1_ADDR if required else A("192.168.1.50")
    assert w.mn.care_of_address == expected
    (b,) = w.bindings()
    assert b.care_of_address == expected


def test_silent_move_from_home_to_foreign_agent() -> None:
    w = World()
    w.move("home")
    assert w.mn.state is MnState.AT_HOME
    w.move("A", signal=False)
    w.advance(1.5)
    assert w.mn.registered and w.mn.care_of_address == FA1_ADDR


def _set_bytes(offset: int, value: bytes) -> Callable[[bytes], bytes]:
    return lambda b: b[:offset] + value + b[offset + len(value) :]


def test_70_request_corrupted_on_the_way_to_the_foreign_agent() -> None:
    w = World()
    # the Home Agent field (offset 8) arrives as 0.0.0.0
    w.net.corrupt_if(is_request, _set_bytes(8, bytes(4)))
    w.move("A")
    assert w.fa1.counters.denied[ReplyCode.FA_POORLY_FORMED_REQUEST] == 1
    assert w.mn.state is MnState.FAILED and "70" in (w.mn.failure_reason or "")
    assert w.ha.counters.total_accepted == 0


def test_134_request_corrupted_on_the_way_to_the_home_agent() -> None:
    w = World()
    # the Care-of Address (offset 12) arrives as the limited broadcast address
    w.net.corrupt_if(is_request, _set_bytes(12, b"\xff" * 4))
    w.move("C")
    assert w.ha.counters.denied[ReplyCode.HA_POORLY_FORMED_REQUEST] == 1
    assert w.mn.state is MnState.FAILED and "134" in (w.mn.failure_reason or "")
    assert w.bindings() == []


@pytest.mark.parametrize(
    ("icmp_code", "reply_code"),
    [
        (3, ReplyCode.FA_HA_PORT_UNREACHABLE),  # no Mobile IP service on the home agent
        (13, ReplyCode.FA_HA_UNREACHABLE),  # a firewall: administratively prohibited
    ],
)
def test_82_88_icmp_errors_about_the_relayed_request(icmp_code: int, reply_code: int) -> None:
    w = World(mn_config=mn_config(denial_backoff=10.0))
    w.net.reject_if(lambda p: p.sender == "fa1" and p.receiver == "ha", icmp_code)
    w.move("A")
    assert w.fa1.counters.denied[ReplyCode(reply_code)] == 1
    assert w.mn.state is MnState.BACKING_OFF
    assert w.mn.last_reaction is not None and w.mn.last_reaction.code == reply_code
    w.net.stop_dropping()
    w.advance(11)
    assert w.mn.registered


@pytest.mark.parametrize("supported", [True, False])
def test_encapsulating_delivery_style(supported: bool) -> None:
    w = World(
        fa_options={"encapsulating_delivery": supported},
        mn_config=mn_config(reverse_tunnel=ReverseTunnel.PREFER, encapsulating_delivery=True),
    )
    w.move("A")
    assert w.mn.registered
    first = requests_of(w)[0]
    assert any(e.ext_type == 130 for e in first.extensions)
    v = w.fa1.visitors.get(MN_HOME)
    assert v is not None and v.reverse_tunnel and v.encapsulating_delivery is supported
    denied = w.fa1.counters.denied[ReplyCode.FA_DELIVERY_STYLE_UNSUPPORTED]
    assert denied == (0 if supported else 1)
    if not supported:  # retried with direct delivery
        assert not any(e.ext_type == 130 for e in requests_of(w)[-1].extensions)


def test_no_delivery_style_without_reverse_tunnelling() -> None:
    w = World(mn_config=mn_config(encapsulating_delivery=True))
    w.move("A")
    assert not any(e.ext_type == 130 for r in requests_of(w) for e in r.extensions)
