"""System tests of the three engines in the in-memory network (tests/core/netsim.py)."""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from mip4.core.actions import (
    AtHome,
    Encapsulation,
    GratuitousArp,
    InstallBinding,
    ProxyArp,
    RemoveBinding,
    SendUdp,
    UseColocatedAddress,
)
from mip4.core.events import LinkDown
from mip4.core.home_agent import HomeAgentConfig
from mip4.core.mobile_node import MnState, MobileNodeConfig, ReverseTunnel
from mip4.security.sa import ReplayMethod
from mip4.wire.codes import ReplyCode
from mip4.wire.messages import RegistrationFlags, RegistrationReply, RegistrationRequest

from .netsim import HA_ADDR, HOME_NET, MN_COLOCATED, MN_HOME, Packet, World


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


def test_lifetime_shortened_by_home_agent() -> None:
    w = World(ha_config=ha_config(max_lifetime=60), mn_config=mn_config(lifetime=1800))
    w.move("C")
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
    assert w.net.logs("mn", "mn-discard")
    assert all(
        log.fields["why"] == "authentication failed" for log in w.net.logs("mn", "mn-discard")
    )
    assert not w.mn.registered and w.bindings() == []


@pytest.mark.parametrize("replay", [ReplayMethod.TIMESTAMPS, ReplayMethod.NONCES])
def test_133_identification_resynchronised(replay: ReplayMethod) -> None:
    # the node's clock is 1000 s behind the home agent's (timestamps); nonces always start
    # with a 133 that hands out the first nonce
    w = World(replay=replay, mn_clock_skew=-1000.0)
    w.move("C")
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
