"""Dynamic home agent assignment and redirection (RFC 4433) on the virtual clock: two home
agents on the home network, a mobile node that asks for one, redirection by the receiving
home agent, the operator moving a registered node (with RFC 3543 revocation), and a
redirection loop that stops."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from mip4.aaa.messages import AccountingRecord, AcctStatus
from mip4.core.ha_config import HomeAgentPick
from mip4.core.home_agent import HomeAgent, HomeAgentConfig, _stable_index
from mip4.core.mobile_node import MnState, MobileNodeConfig
from mip4.security.sa import SecurityAssociations
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_mobility import DynamicHAExtension, DynamicHASubtype
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import RegistrationReply, RegistrationRequest

from .netsim import FA1_ADDR, HA_ADDR, HOME_NET, MN_COLOCATED, MN_HOME, UNIX0, World

HA2_ADDR = HOME_NET[2]
AGENTS = (HA_ADDR, HA2_ADDR)
ZERO = IPv4Address(0)
ALL_ONES = IPv4Address("255.255.255.255")


def ha_config(address: IPv4Address, **kw: Any) -> HomeAgentConfig:
    return HomeAgentConfig(address=address, home_network=HOME_NET, interface="ha0", **kw)


def two_home_agents(
    *,
    mn: dict[str, Any] | None = None,
    ha1: dict[str, Any] | None = None,
    ha2: dict[str, Any] | None = None,
    fa: dict[str, Any] | None = None,
    fa_ha_sa: bool = False,
) -> World:
    """The standard world plus a second home agent ``ha2`` (10.0.0.2) on the home link,
    sharing the mobile node's MN-HA key (no FA-HA with the foreign agents)."""
    mn_cfg = MobileNodeConfig(
        home_address=MN_HOME, home_agent=(mn or {}).pop("home_agent", HA_ADDR), **(mn or {})
    )
    w = World(
        mn_config=mn_cfg,
        ha_config=ha_config(HA_ADDR, **(ha1 or {})),
        fa_options=fa,
        fa_ha_sa=fa_ha_sa,
    )

    def make_ha2() -> HomeAgent:
        sas = SecurityAssociations()
        sas.add(MN_HOME, w.mn_sa)
        return HomeAgent(ha_config(HA2_ADDR, **(ha2 or {})), sas, UNIX0)

    w.net.add_node("ha2", make_ha2, {"ha2-0": ("home", [HA2_ADDR])})
    return w


def ha2(w: World) -> HomeAgent:
    e = w.net.engine("ha2")
    assert isinstance(e, HomeAgent)
    return e


def replies(w: World, sender: str, code: int | None = None) -> list[RegistrationReply]:
    out = []
    for p in w.net.sent(sender, RegistrationReply):
        m = p.message
        assert isinstance(m, RegistrationReply)
        if code is None or m.code == code:
            out.append(m)
    return out


@pytest.mark.parametrize("field", [ZERO, ALL_ONES])
def test_request_for_a_dynamic_home_agent_is_accepted_by_the_requested_one(
    field: IPv4Address,
) -> None:
    w = two_home_agents(
        mn={"home_agent": field, "requested_home_agent": HA_ADDR},
        ha1={"home_agents": AGENTS},
        ha2={"home_agents": AGENTS},
    )
    w.move("A")
    assert w.mn.registered and w.mn.home_agent == HA_ADDR
    first = w.requests_from_mn()[0].message
    assert isinstance(first, RegistrationRequest) and first.home_agent == field
    ext = next(e for e in first.extensions if isinstance(e, DynamicHAExtension))
    assert ext.subtype == DynamicHASubtype.REQUESTED_HA and ext.home_agent == HA_ADDR
    # the foreign agent relayed it to the requested home agent, which named itself
    relayed = w.net.sent("fa1", RegistrationRequest)
    assert relayed[0].receiver == "ha"
    (reply,) = replies(w, "ha")
    assert reply.code == ReplyCode.ACCEPTED and reply.home_agent == HA_ADDR
    assert len(w.bindings()) == 1 and not list(ha2(w).bindings)
    # the next registration names the home agent it was given
    w.advance(1500)
    last = w.requests_from_mn()[-1].message
    assert isinstance(last, RegistrationRequest) and last.home_agent == HA_ADDR
    assert not any(isinstance(e, DynamicHAExtension) for e in last.extensions)


def test_without_home_agents_configured_a_dynamic_request_gets_136() -> None:
    w = two_home_agents(mn={"home_agent": ZERO, "requested_home_agent": HA_ADDR})
    w.move("A")
    assert replies(w, "ha", ReplyCode.HA_UNKNOWN_HA_ADDRESS)
    assert w.mn.registered and w.mn.home_agent == HA_ADDR  # RFC 5944 §3.6.1.2 path


def test_receiving_home_agent_redirects_to_the_one_picked() -> None:
    # order the list so that the node's identity picks the second home agent, HA2
    agents = AGENTS if _stable_index(MN_HOME, 2) == 1 else (HA2_ADDR, HA_ADDR)
    assert agents[_stable_index(MN_HOME, 2)] == HA2_ADDR
    spread = {"home_agents": agents, "home_agent_pick": HomeAgentPick.SPREAD}
    w = two_home_agents(
        mn={"home_agent": ZERO, "requested_home_agent": HA_ADDR}, ha1=spread, ha2=spread
    )
    w.move("C")
    (redirect,) = replies(w, "ha", ReplyCode.HA_REDIRECTED)
    kinds = [type(e) for e in redirect.extensions]
    # the Redirected HA extension precedes MN-HA: the node can trust it
    assert kinds == [DynamicHAExtension, MobileHomeAuthExtension]
    ext = redirect.extensions[0]
    assert isinstance(ext, DynamicHAExtension)
    assert ext.subtype == DynamicHASubtype.REDIRECTED_HA and ext.home_agent == HA2_ADDR
    assert w.mn.registered and w.mn.home_agent == HA2_ADDR
    assert w.bindings() == [] and len(list(ha2(w).bindings)) == 1
    assert w.mn.counters.events["redirects"] == 1


def test_redirection_loop_stops_after_the_limit() -> None:
    w = two_home_agents(mn={"redirect_limit": 3})
    w.net.operate("ha", lambda ha, now: ha.redirect(MN_HOME, HA2_ADDR, now))
    w.net.operate("ha2", lambda ha, now: ha.redirect(MN_HOME, HA_ADDR, now))
    w.move("C")
    w.advance(30)
    bounced = replies(w, "ha", ReplyCode.HA_REDIRECTED) + replies(w, "ha2", ReplyCode.HA_REDIRECTED)
    assert len(bounced) == 4  # followed 3 times, the 4th stops it
    assert w.mn.state is MnState.FAILED
    assert "redirection loop" in (w.mn.failure_reason or "")
    assert w.bindings() == [] and not list(ha2(w).bindings)


def test_operator_moves_a_registered_node_to_another_home_agent() -> None:
    """RFC 4433 with RFC 3543: the old home agent revokes the binding (the foreign agent
    informs the node and ends its accounting session), the node asks again and is
    redirected, and registers with the new home agent."""
    w = two_home_agents(
        ha1={"revocation": True},
        fa={"revocation": True, "accounting": True},
        fa_ha_sa=True,
    )
    w.move("A")
    assert w.mn.registered and len(w.bindings()) == 1
    w.net.operate("ha", lambda ha, now: ha.redirect(MN_HOME, HA2_ADDR, now))
    assert w.bindings() == []
    (b,) = list(ha2(w).bindings)
    assert b.care_of_address == FA1_ADDR
    assert w.mn.registered and w.mn.home_agent == HA2_ADDR
    (v,) = list(w.fa1.visitors)
    assert v.home_agent == HA2_ADDR
    assert w.mn.counters.events["revoked"] == 1
    assert replies(w, "ha", ReplyCode.HA_REDIRECTED)
    statuses = [r.status for r in w.net.actions_of("fa1", AccountingRecord)]
    assert statuses == [AcctStatus.START, AcctStatus.STOP, AcctStatus.START]
    assert w.ha.redirects == {MN_HOME: HA2_ADDR}


def test_redirect_of_a_colocated_node_takes_effect_at_its_next_registration() -> None:
    w = two_home_agents()
    w.move("C")
    assert w.mn.registered and w.mn.care_of_address == MN_COLOCATED
    w.net.operate("ha", lambda ha, now: ha.redirect(MN_HOME, HA2_ADDR, now))
    assert w.bindings() == []
    w.advance(1500)  # the renewal goes to HA1, which redirects it
    assert w.mn.home_agent == HA2_ADDR and w.mn.registered
    assert len(list(ha2(w).bindings)) == 1


def test_redirect_to_itself_cancels_and_deregistrations_are_not_redirected() -> None:
    w = two_home_agents()
    w.move("C")
    w.net.operate("ha", lambda ha, now: ha.redirect(MN_HOME, HA2_ADDR, now))
    w.net.operate("ha", lambda ha, now: ha.redirect(MN_HOME, HA_ADDR, now))
    assert w.ha.redirects == {}
    w.advance(1500)
    assert w.mn.home_agent == HA_ADDR and len(w.bindings()) == 1
    w.net.operate("ha", lambda ha, now: ha.redirect(MN_HOME, HA2_ADDR, now))
    w.advance(1)
    w.move("home")  # the node deregisters with HA1: accepted, not redirected
    assert w.mn.state is MnState.AT_HOME
    assert replies(w, "ha")[-1].code == ReplyCode.ACCEPTED


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="home_agents"):
        ha_config(HA_ADDR, home_agents=(HA2_ADDR,))
    with pytest.raises(ValueError, match="requested_home_agent"):
        MobileNodeConfig(home_address=MN_HOME, home_agent=ZERO, requested_home_agent=ALL_ONES)
