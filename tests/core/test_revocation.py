"""Registration revocation (RFC 3543) on the virtual clock: negotiation, revocations by the
home agent and by the foreign agent, the mobile node informed, accounting ended, lost
revocations and acknowledgements, bad authenticators and replays."""

from __future__ import annotations

from typing import Any

import pytest

from mip4.aaa.messages import AccountingRecord, AcctStatus, TerminateCause
from mip4.core.actions import RemoveBinding, RemoveVisitor, SendUdp
from mip4.core.events import LinkDown, UdpReceived
from mip4.core.foreign_agent import ForeignAgent, ForeignAgentConfig, VisitedLink
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.core.mn_config import RevocationReaction
from mip4.core.mobile_node import MnState, MobileNodeConfig
from mip4.core.revocation import RevocationSettings
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_mobility import RevocationSupportExtension, RevocationSupportFlags
from mip4.wire.extensions import ForeignHomeAuthExtension, MobileHomeAuthExtension
from mip4.wire.icmp import AgentFlags
from mip4.wire.messages import RegistrationReply, RegistrationRequest
from mip4.wire.msg_revocation import (
    RegistrationRevocation,
    RevocationAck,
    RevocationAckFlags,
    RevocationFlags,
)

from .netsim import FA1_ADDR, FA_HA_KEY, FA_SPI, HA_ADDR, HOME_NET, MN_HOME, Packet, World

NAI = "alice@example.net"


def world(
    *,
    ha: dict[str, Any] | None = None,
    fa: dict[str, Any] | None = None,
    mn: dict[str, Any] | None = None,
    fa_ha_sa: bool = True,
) -> World:
    ha_cfg = HomeAgentConfig(
        address=HA_ADDR,
        home_network=HOME_NET,
        interface="ha0",
        **{"revocation": True, **(ha or {})},
    )
    fa_opts = {"revocation": True, "accounting": True, **(fa or {})}
    mn_cfg = MobileNodeConfig(home_address=MN_HOME, home_agent=HA_ADDR, **(mn or {}))
    w = World(ha_config=ha_cfg, fa_options=fa_opts, mn_config=mn_cfg, fa_ha_sa=fa_ha_sa)
    w.move("A")
    assert w.mn.registered
    return w


def is_revocation(p: Packet) -> bool:
    return p.payload[:1] == bytes([RegistrationRevocation.TYPE])


def is_ack(p: Packet) -> bool:
    return p.payload[:1] == bytes([RevocationAck.TYPE])


def revocations(w: World, sender: str) -> list[Packet]:
    return [p for p in w.net.sent(sender) if is_revocation(p)]


def acks(w: World, sender: str) -> list[Packet]:
    return [p for p in w.net.sent(sender) if is_ack(p)]


def revoke_ha(w: World, node: Any = MN_HOME) -> None:
    w.net.operate("ha", lambda ha, now: ha.revoke(node, now))


def revoke_fa(w: World) -> None:
    w.net.operate("fa1", lambda fa, now: fa.revoke(MN_HOME, now))


def stops(w: World) -> list[AccountingRecord]:
    return [r for r in w.net.actions_of("fa1", AccountingRecord) if r.status is AcctStatus.STOP]


# ----------------------------------------------------------------------------------------
# Negotiation (RFC 3543 §3.1, §3.2)
# ----------------------------------------------------------------------------------------


def test_negotiation_x_bit_and_support_extensions_around_fa_ha() -> None:
    w = world()
    adv = w.fa1.advertisement(w.fa1.config.links[0])
    assert adv.mobility is not None
    assert adv.mobility.flags & AgentFlags.X
    relayed = [p.message for p in w.net.sent("fa1", RegistrationRequest)]
    assert relayed
    exts = relayed[-1].extensions  # type: ignore[attr-defined]
    kinds = [type(e) for e in exts]
    # after MN-HA, before FA-HA (the FA-HA authenticator covers it)
    assert kinds[-3:] == [
        MobileHomeAuthExtension,
        RevocationSupportExtension,
        ForeignHomeAuthExtension,
    ]
    assert exts[-2].flags & RevocationSupportFlags.I
    ha_reply = [p.message for p in w.net.sent("ha", RegistrationReply)][-1]
    assert [type(e) for e in ha_reply.extensions][-2:] == [  # type: ignore[attr-defined]
        RevocationSupportExtension,
        ForeignHomeAuthExtension,
    ]
    to_mn = [p.message for p in w.net.sent("fa1", RegistrationReply)][-1]
    # the mobile node gets neither (everything after MN-HA is removed)
    assert [type(e) for e in to_mn.extensions] == [MobileHomeAuthExtension]  # type: ignore[attr-defined]
    (b,) = w.bindings()
    (v,) = list(w.fa1.visitors)
    assert b.revocation_timestamp is not None and b.revocation_inform
    assert v.revocation_timestamp is not None and v.revocation_inform


def test_no_negotiation_without_fa_ha_or_when_the_home_agent_declines() -> None:
    w = world(fa_ha_sa=False)
    assert w.fa1.advertisement(w.fa1.config.links[0]).mobility.flags & AgentFlags.X  # type: ignore[union-attr]
    (req,) = [p.message for p in w.net.sent("fa1", RegistrationRequest)]
    assert not any(isinstance(e, RevocationSupportExtension) for e in req.extensions)  # type: ignore[attr-defined]
    assert w.bindings()[0].revocation_timestamp is None

    w = world(ha={"revocation": False})
    ha_reply = [p.message for p in w.net.sent("ha", RegistrationReply)][-1]
    assert not any(isinstance(e, RevocationSupportExtension) for e in ha_reply.extensions)  # type: ignore[attr-defined]
    assert w.bindings()[0].revocation_timestamp is None
    assert next(iter(w.fa1.visitors)).revocation_timestamp is None
    # the operator can still end the binding; nothing is sent to the foreign agent
    revoke_ha(w)
    assert not revocations(w, "ha")
    assert w.net.logs("ha", "ha.binding_revoked")


def test_fa_without_revocation_does_not_advertise_x() -> None:
    w = world(fa={"revocation": False})
    assert not w.fa1.advertisement(w.fa1.config.links[0]).mobility.flags & AgentFlags.X  # type: ignore[union-attr]
    assert w.bindings()[0].revocation_timestamp is None


# ----------------------------------------------------------------------------------------
# Revocation by the home agent
# ----------------------------------------------------------------------------------------


def test_home_agent_revokes_fa_removes_visitor_informs_node_which_reregisters() -> None:
    w = world()
    registrations = len(w.net.logs("ha", "ha.registration"))
    revoke_ha(w)
    (rev,) = revocations(w, "ha")
    msg = rev.message
    assert isinstance(msg, RegistrationRevocation) and rev.receiver == "fa1"
    assert msg.flags & RevocationFlags.A and msg.flags & RevocationFlags.I
    assert msg.home_address == MN_HOME and msg.home_domain_address == HA_ADDR
    assert msg.foreign_domain_address == FA1_ADDR
    assert isinstance(msg.extensions[-1], ForeignHomeAuthExtension)
    # the foreign agent removed the visitor and ended its accounting session
    assert RemoveVisitor(MN_HOME, "fa1-a") in w.net.actions_of("fa1", RemoveVisitor)
    (stop,) = stops(w)
    assert stop.terminate_cause is TerminateCause.ADMIN_RESET
    assert w.fa1.counters.events["visitors_revoked"] == 1
    # ... informed the node (129: the home domain revoked it) and acknowledged with I
    notices = [
        p
        for p in w.net.sent("fa1", RegistrationReply)
        if p.receiver == "mn" and p.message.lifetime == 0  # type: ignore[attr-defined]
    ]
    assert notices and notices[0].message.code == ReplyCode.HA_ADMIN_PROHIBITED  # type: ignore[attr-defined]
    (ack,) = acks(w, "fa1")
    assert isinstance(ack.message, RevocationAck) and ack.message.flags & RevocationAckFlags.I
    assert ack.message.revocation_id == msg.revocation_id
    assert not w.ha.revocations.outstanding
    assert w.ha.counters.events["revocations_acknowledged"] == 1
    # the node took it as a revocation and registered again (on_revocation = reregister)
    assert w.mn.counters.events["revoked"] == 1
    assert w.net.logs("mn", "mn.revoked")
    assert len(w.net.logs("ha", "ha.registration")) == registrations + 1
    assert w.mn.registered and len(w.bindings()) == 1 and len(list(w.fa1.visitors)) == 1
    assert w.net.logs("ha", "ha.binding_revoked")[0].fields["by"] == "operator"


def test_node_configured_to_stop_gives_up() -> None:
    w = world(mn={"on_revocation": RevocationReaction.STOP})
    requests = len(w.requests_from_mn())
    revoke_ha(w)
    assert w.mn.state is MnState.FAILED
    assert "revoked" in (w.mn.failure_reason or "")
    assert len(w.requests_from_mn()) == requests
    assert w.bindings() == [] and list(w.fa1.visitors) == []


def test_revoke_by_nai() -> None:
    w = world(mn={"nai": NAI})
    assert w.bindings()[0].nai == NAI
    revoke_ha(w, NAI)
    assert w.ha.counters.events["bindings_revoked"] == 1
    assert w.mn.counters.events["revoked"] == 1


def test_revoke_unknown_node_is_logged_and_counted() -> None:
    w = world()
    revoke_ha(w, HOME_NET[77])
    assert w.ha.counters.events["revoke_unknown"] == 1
    assert not revocations(w, "ha") and len(w.bindings()) == 1


def test_without_inform_support_the_node_is_not_told() -> None:
    w = world(fa={"revocation_inform": False})
    assert not next(iter(w.fa1.visitors)).revocation_inform
    revoke_ha(w)
    (rev,) = revocations(w, "ha")
    assert not rev.message.flags & RevocationFlags.I  # type: ignore[attr-defined]
    (ack,) = acks(w, "fa1")
    assert not ack.message.flags & RevocationAckFlags.I  # type: ignore[attr-defined]
    assert w.mn.counters.events["revoked"] == 0
    assert list(w.fa1.visitors) == []


# ----------------------------------------------------------------------------------------
# Lost revocations and acknowledgements: retransmission with back-off, bounded
# ----------------------------------------------------------------------------------------


def test_lost_revocations_are_retransmitted_with_back_off() -> None:
    w = world(mn={"on_revocation": RevocationReaction.STOP})
    lost = [0]

    def drop_two(p: Packet) -> bool:
        if p.sender == "ha" and is_revocation(p) and lost[0] < 2:
            lost[0] += 1
            return True
        return False

    w.net.drop_if(drop_two)
    t0 = w.now
    revoke_ha(w)
    assert list(w.fa1.visitors)  # nothing arrived yet
    w.advance(10)
    sent = revocations(w, "ha")
    assert [round(p.time - t0, 6) for p in sent] == [0.0, 1.0, 3.0]  # 1 s, then doubled
    ids = [p.message.revocation_id for p in sent]  # type: ignore[attr-defined]
    assert ids == sorted(set(ids))  # each retransmission a fresh, greater identifier
    assert [p.dropped for p in sent] == [True, True, False]
    assert list(w.fa1.visitors) == []
    assert w.ha.counters.events["revocation_retransmissions"] == 2
    assert not w.ha.revocations.outstanding
    assert w.ha.counters.events["revocations_acknowledged"] == 1


def test_revocation_gives_up_after_the_limit() -> None:
    w = world(ha={"revocation_retransmit_limit": 3, "revocation_retransmit_max": 2.0})
    w.net.drop_if(lambda p: p.sender == "ha" and is_revocation(p))
    t0 = w.now
    revoke_ha(w)
    w.advance(60)
    sent = revocations(w, "ha")
    assert [round(p.time - t0, 6) for p in sent] == [0.0, 1.0, 3.0, 5.0]  # capped at 2 s
    assert w.ha.counters.events["revocation_unacknowledged"] == 1
    assert not w.ha.revocations.outstanding
    assert w.net.logs("ha", "ha.revocation_unacknowledged")


def test_lost_ack_retransmission_is_acknowledged_again() -> None:
    w = world(mn={"on_revocation": RevocationReaction.STOP})
    lost = [0]

    def drop_first_ack(p: Packet) -> bool:
        if p.sender == "fa1" and is_ack(p) and not lost[0]:
            lost[0] += 1
            return True
        return False

    w.net.drop_if(drop_first_ack)
    revoke_ha(w)
    w.advance(5)
    assert len(revocations(w, "ha")) == 2
    assert [p.dropped for p in acks(w, "fa1")] == [True, False]
    assert w.fa1.counters.events["revocations_received"] == 2
    assert w.fa1.counters.discarded["revocation_replayed"] == 0
    assert w.fa1.counters.events["visitors_revoked"] == 1  # removed once
    assert len(stops(w)) == 1  # accounting stopped once
    assert not w.ha.revocations.outstanding


# ----------------------------------------------------------------------------------------
# Bad authenticator, replayed identifier
# ----------------------------------------------------------------------------------------


def test_bad_authenticator_is_ignored_and_counted() -> None:
    w = world(mn={"on_revocation": RevocationReaction.STOP})
    corrupted = [0]

    def first_revocation(p: Packet) -> bool:
        if p.sender == "ha" and is_revocation(p) and not corrupted[0]:
            corrupted[0] += 1
            return True
        return False

    w.net.corrupt_if(first_revocation, lambda data: data[:-1] + bytes([data[-1] ^ 1]))
    revoke_ha(w)
    assert w.fa1.counters.discarded["revocation_bad_authenticator"] == 1
    assert list(w.fa1.visitors) and not acks(w, "fa1")
    w.advance(2)  # the retransmission is intact
    assert list(w.fa1.visitors) == [] and len(acks(w, "fa1")) == 1


def test_replayed_revocation_is_ignored_and_counted() -> None:
    w = world()  # the node re-registers after the revocation
    revoke_ha(w)
    (rev,) = revocations(w, "ha")
    assert w.mn.registered and list(w.fa1.visitors)
    visitor = next(iter(w.fa1.visitors))
    # an attacker replays the captured revocation
    w.net.inject(
        "fa1",
        UdpReceived(rev.payload, HA_ADDR, FA1_ADDR, 434, 434, "fa1-a", ttl=64),
    )
    w.net.transfer()
    assert w.fa1.counters.discarded["revocation_replayed"] == 1
    assert list(w.fa1.visitors) == [visitor]
    assert len(acks(w, "fa1")) == 1  # no acknowledgement for the replay


def revocation_engine_pair() -> tuple[HomeAgent, ForeignAgent]:
    """Bare engines for messages built by hand."""
    sa = SecurityAssociation(spi=FA_SPI, key=FA_HA_KEY)
    fa_sas = SecurityAssociations()
    fa_sas.add(HA_ADDR, sa)
    fa = ForeignAgent(
        ForeignAgentConfig(links=(VisitedLink("fa1-a", FA1_ADDR, 24),), revocation=True), fa_sas
    )
    ha_sas = SecurityAssociations()
    ha_sas.add(FA1_ADDR, sa)
    ha = HomeAgent(HomeAgentConfig(address=HA_ADDR, home_network=HOME_NET, revocation=True), ha_sas)
    return ha, fa


def test_replay_floor_is_the_registration_timestamp() -> None:
    """A revocation older than the timestamp the home agent sent at registration (one
    captured from an earlier registration) is a replay even the first time it is seen."""
    w = world()
    (v,) = list(w.fa1.visitors)
    assert v.revocation_timestamp is not None
    from mip4.security.auth import sign

    old = sign(
        RegistrationRevocation(
            flags=RevocationFlags.A,
            home_address=MN_HOME,
            home_domain_address=HA_ADDR,
            foreign_domain_address=FA1_ADDR,
            revocation_id=v.revocation_timestamp - 10,
        ),
        ForeignHomeAuthExtension,
        SecurityAssociation(spi=FA_SPI, key=FA_HA_KEY),
    )
    w.net.inject("fa1", UdpReceived(old.raw, HA_ADDR, FA1_ADDR, 434, 434, "fa1-a", ttl=64))
    w.net.transfer()
    assert w.fa1.counters.discarded["revocation_replayed"] == 1
    assert list(w.fa1.visitors) == [v]


def test_unknown_peer_and_unmatched_ack_are_discarded() -> None:
    ha, fa = revocation_engine_pair()
    stranger = HOME_NET[200]
    ack = RevocationAck(flags=0, home_address=MN_HOME, revocation_id=5).encode()
    out = fa.handle(UdpReceived(ack, stranger, FA1_ADDR, 434, 434, "fa1-a", ttl=64), 0.0)
    assert not [a for a in out if isinstance(a, SendUdp)]
    assert fa.counters.discarded["revocation_bad_authenticator"] == 1
    from mip4.security.auth import sign

    signed = sign(
        RevocationAck(flags=0, home_address=MN_HOME, revocation_id=5),
        ForeignHomeAuthExtension,
        SecurityAssociation(spi=FA_SPI, key=FA_HA_KEY),
    )
    ha.handle(UdpReceived(signed.raw, FA1_ADDR, HA_ADDR, 434, 434, "eth0", ttl=64), 0.0)
    assert ha.counters.discarded["unmatched_revocation_ack"] == 1


def test_agent_without_revocation_discards_revocations() -> None:
    w = world(fa={"revocation": False})
    signed_from_ha = w.net.operate("ha", lambda ha, now: ha.revoke(MN_HOME, now))
    assert not [a for a in signed_from_ha if isinstance(a, SendUdp)]
    assert list(w.fa1.visitors)  # the FA keeps it until its lifetime ends


# ----------------------------------------------------------------------------------------
# Revocation by the foreign agent
# ----------------------------------------------------------------------------------------


def test_foreign_agent_revokes_by_operator_call() -> None:
    w = world(mn={"on_revocation": RevocationReaction.STOP})
    revoke_fa(w)
    (rev,) = revocations(w, "fa1")
    msg = rev.message
    assert isinstance(msg, RegistrationRevocation) and rev.receiver == "ha"
    assert not msg.flags & RevocationFlags.A
    assert w.bindings() == []
    assert RemoveBinding(MN_HOME, FA1_ADDR) in w.net.actions_of("ha", RemoveBinding)
    assert w.net.logs("ha", "ha.binding_revoked")[-1].fields["by"] == "foreign_agent"
    (ack,) = acks(w, "ha")
    assert ack.receiver == "fa1" and ack.message.revocation_id == msg.revocation_id  # type: ignore[attr-defined]
    assert not w.fa1.revocations.outstanding
    (stop,) = stops(w)
    assert stop.terminate_cause is TerminateCause.ADMIN_RESET
    # the node was told (65: the foreign agent revoked it) and stopped
    notice = [p for p in w.net.sent("fa1", RegistrationReply) if p.receiver == "mn"][-1]
    assert notice.message.code == ReplyCode.FA_ADMIN_PROHIBITED  # type: ignore[attr-defined]
    assert w.mn.state is MnState.FAILED


def test_foreign_agent_revokes_when_the_visitors_link_goes() -> None:
    w = world()
    w.net.inject("fa1", LinkDown("fa1-a"))
    w.net.transfer()
    assert list(w.fa1.visitors) == []
    assert w.bindings() == []
    assert len(revocations(w, "fa1")) == 1 and len(acks(w, "ha")) == 1
    assert w.mn.counters.events["revoked"] == 0  # nobody left on the link to tell
    assert len(stops(w)) == 1
    assert w.net.logs("fa1", "fa.visitor_revoked")[0].fields["reason"] == "link down"


def test_foreign_agent_revocation_lost_then_retransmitted() -> None:
    w = world(mn={"on_revocation": RevocationReaction.STOP})
    lost = [0]

    def drop_first(p: Packet) -> bool:
        if p.sender == "fa1" and is_revocation(p) and not lost[0]:
            lost[0] += 1
            return True
        return False

    w.net.drop_if(drop_first)
    revoke_fa(w)
    assert len(w.bindings()) == 1
    w.advance(2)
    assert w.bindings() == []
    assert w.fa1.counters.events["revocation_retransmissions"] == 1


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"revocation_retransmit_initial": 0.0}, "revocation_retransmit_initial"),
        ({"revocation_retransmit_max": 0.5}, "revocation_retransmit_max"),
        ({"revocation_retransmit_limit": -1}, "revocation_retransmit_limit"),
    ],
)
def test_settings_are_checked_and_named(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HomeAgentConfig(address=HA_ADDR, home_network=HOME_NET, **kw)
    with pytest.raises(ValueError, match=match):
        ForeignAgentConfig(links=(VisitedLink("a", FA1_ADDR),), **kw)
    assert RevocationSettings().enabled is False


def test_home_agent_ignores_a_replayed_or_misdirected_revocation() -> None:
    w = world(mn={"on_revocation": RevocationReaction.STOP})
    revoke_fa(w)
    (rev,) = revocations(w, "fa1")
    assert w.bindings() == []
    # the node registers again; the captured revocation is replayed to the home agent
    w.move("B")
    w.move("A")
    assert len(w.bindings()) == 1
    w.net.inject("ha", UdpReceived(rev.payload, FA1_ADDR, HA_ADDR, 434, 434, "ha0", ttl=64))
    w.net.transfer()
    assert w.ha.counters.discarded["revocation_replayed"] == 1
    assert len(w.bindings()) == 1 and len(acks(w, "ha")) == 1
    # a revocation with the A bit (a home agent's) is not for a home agent
    from mip4.security.auth import sign

    wrong = sign(
        RegistrationRevocation(
            flags=RevocationFlags.A,
            home_address=MN_HOME,
            home_domain_address=HA_ADDR,
            foreign_domain_address=FA1_ADDR,
            revocation_id=2**32 - 1,
        ),
        ForeignHomeAuthExtension,
        SecurityAssociation(spi=FA_SPI, key=FA_HA_KEY),
    )
    w.net.inject("ha", UdpReceived(wrong.raw, FA1_ADDR, HA_ADDR, 434, 434, "ha0", ttl=64))
    w.net.transfer()
    assert w.ha.counters.discarded["unexpected_revocation"] == 1
    assert len(w.bindings()) == 1


def test_foreign_agent_revocation_with_a_bad_authenticator_is_ignored_by_the_home_agent() -> None:
    w = world(mn={"on_revocation": RevocationReaction.STOP})
    w.net.corrupt_if(
        lambda p: p.sender == "fa1" and is_revocation(p),
        lambda data: data[:-1] + bytes([data[-1] ^ 0x80]),
    )
    revoke_fa(w)
    w.advance(60)
    assert w.ha.counters.discarded["revocation_bad_authenticator"] == 5  # 1 + 4 retransmissions
    assert len(w.bindings()) == 1  # the binding stays until its lifetime ends
    assert w.fa1.counters.events["revocation_unacknowledged"] == 1
