"""Handovers between foreign agents on the virtual clock (tests/core/netsim.py): link-layer
triggers and anticipation, RFC 4881 post-registration edge tunnels, RFC 4988 Fast Binding
Update / Acknowledgement with buffering at the new agent, lost messages, fallbacks."""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

from mip4.core.actions import (
    BufferPackets,
    DropBuffer,
    EdgeRole,
    FlushBuffer,
    InstallEdgeTunnel,
    LeaveForeignAgent,
    RemoveEdgeTunnel,
    SendIcmp,
)
from mip4.core.events import HandoffTrigger, LinkUp, MoveAnticipated, UdpReceived
from mip4.core.fa_handoff import BUFFER_FLAG, HandoffSettings, node_link_address
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.mobile_node import HandoverMode, HandoverSettings, MnState, MobileNode
from mip4.security.auth import MN_FA
from mip4.security.sa import SecurityAssociation
from mip4.wire.codes import ReplyCode
from mip4.wire.icmp import decode_icmp
from mip4.wire.messages import (
    FastBindingAck,
    FastBindingUpdate,
    HandoffReply,
    HandoffRequest,
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
)

from .netsim import FA1_ADDR, FA2_ADDR, MN_COLOCATED, MN_HOME, UNIX0, Packet, World

FA_SETTINGS = HandoffSettings()


def handover_world(
    mode: HandoverMode | None = HandoverMode.FAST,
    *,
    fa1: HandoffSettings | None = FA_SETTINGS,
    fa2: HandoffSettings | None = FA_SETTINGS,
    mn_fa_sa: SecurityAssociation | None = None,
) -> World:
    """The standard world with handover settings on the node and the two agents."""
    w = World()
    for name, settings in (("fa1", fa1), ("fa2", fa2)):
        node = w.net.nodes[name]
        plain = node.factory()
        assert isinstance(plain, ForeignAgent)

        def make(plain: ForeignAgent = plain, settings: HandoffSettings | None = settings) -> Any:
            return ForeignAgent(plain.config, plain.security_associations, UNIX0, handoff=settings)

        node.factory = make
        node.engine = make()
        (iface,) = node.interfaces.values()
        (addr,) = iface.addresses
        w.net.inject(name, LinkUp(iface.name, addr, 24))
    mn = w.net.nodes["mn"]

    def make_mn() -> Any:
        return MobileNode(
            w.mn_config,
            w.mn_sa,
            UNIX0,
            rng=random.Random(7),
            handover=HandoverSettings(mode, mn_fa_sa=mn_fa_sa) if mode is not None else None,
        )

    mn.factory = make_mn
    mn.engine = make_mn()
    w.net.transfer()
    return w


def registered_at(w: World, where: str, agent: object) -> None:
    w.move(where)
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == agent


def anticipate(w: World, fa: str = "fa2") -> None:
    """A scan report on the node: "about to move to" ``fa``'s network."""
    engine = w.net.engine(fa)
    (link,) = engine.config.links
    iface = w.net.nodes[fa].interfaces[link.interface]
    adv = engine.advertisement(link)
    w.net.inject("mn", MoveAnticipated("mn0", adv.encode(), link.address, iface.mac))
    w.net.transfer()


def of_type(w: World, sender: str, cls: type, *, delivered: bool | None = None) -> list[Packet]:
    return w.net.sent(sender, cls, delivered=delivered)


def drop(
    w: World, cls: type, *, times: int | None = None, pred: Callable[[object], bool] = bool
) -> Callable[[Packet], bool]:
    """Drop datagrams carrying ``cls`` (the first ``times`` of them, or all)."""
    left = [times]

    def p(pkt: Packet) -> bool:
        if isinstance(pkt.action, SendIcmp) or pkt.payload[0] != cls.TYPE:  # type: ignore[attr-defined]
            return False
        if not pred(pkt.message):
            return False
        if left[0] is None:
            return True
        if left[0] > 0:
            left[0] -= 1
            return True
        return False

    return w.net.drop_if(p)


def edge(w: World, fa: str, cls: type) -> list[object]:
    return list(w.net.actions_of(fa, cls))


def position(actions: list[Any], action: object) -> int:
    """Where ``action`` itself (not an equal one) is in ``actions``."""
    return next(i for i, a in enumerate(actions) if a is action)


# ----------------------------------------------------------------------------------------
# RFC 4988: Fast Binding Update, edge tunnel with buffering, teardown on registration
# ----------------------------------------------------------------------------------------


def test_fast_handover_full_exchange_and_teardown_after_registration() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    # MN -> FA1: Fast Binding Update naming FA2's care-of address
    (fbu,) = of_type(w, "mn", FastBindingUpdate)
    msg = fbu.message
    assert isinstance(msg, FastBindingUpdate)
    assert fbu.receiver == "fa1" and msg.care_of_address == FA2_ADDR
    assert msg.home_address == MN_HOME
    # FA1 -> FA2: Handoff Request asking for buffering; FA2 answers
    (hrq,) = of_type(w, "fa1", HandoffRequest)
    req = hrq.message
    assert isinstance(req, HandoffRequest)
    assert hrq.receiver == "fa2" and req.flags & BUFFER_FLAG and req.lifetime == 10
    assert req.care_of_address == FA1_ADDR
    (hrp,) = of_type(w, "fa2", HandoffReply)
    assert hrp.receiver == "fa1" and isinstance(hrp.message, HandoffReply)
    assert hrp.message.code == 0 and hrp.message.identification == req.identification
    # both ends of the tunnel, buffering at the new agent
    (t2,) = edge(w, "fa2", InstallEdgeTunnel)
    assert isinstance(t2, InstallEdgeTunnel)
    assert t2.role is EdgeRole.TARGET and t2.peer == FA1_ADDR and t2.home_address == MN_HOME
    (buf,) = edge(w, "fa2", BufferPackets)
    assert isinstance(buf, BufferPackets) and buf.limit == FA_SETTINGS.buffer_limit
    # FA2 knows the link a node handed over to it arrives on and, from the Handoff
    # Request, the node's hardware address: delivery to it starts now, before the
    # buffer (which then holds copies; issue 14)
    (early,) = edge(w, "fa2", FlushBuffer)
    assert isinstance(early, FlushBuffer) and early.home_address == MN_HOME
    assert early.interface == "fa2-b"
    assert early.link_address == w.net.nodes["mn"].interfaces["mn0"].mac
    fa2_setup = [a for _, a in w.net.nodes["fa2"].actions]
    assert position(fa2_setup, t2) < position(fa2_setup, early) < position(fa2_setup, buf)
    (t1,) = edge(w, "fa1", InstallEdgeTunnel)
    assert isinstance(t1, InstallEdgeTunnel) and t1.role is EdgeRole.SOURCE and t1.peer == FA2_ADDR
    # FA1 -> MN: acknowledgement
    (ack,) = of_type(w, "fa1", FastBindingAck)
    assert ack.receiver == "mn" and isinstance(ack.message, FastBindingAck)
    assert ack.message.code == 0 and ack.message.identification == msg.identification
    assert w.net.logs("mn", "mn.fast_binding_acked")
    assert w.mn.handover is not None and w.mn.handover.acknowledged == FA2_ADDR

    # The switch: the old routes go at once, the first request goes at once to FA2
    before = len(w.net.packets)
    w.move("B")
    assert w.net.actions_of("mn", LeaveForeignAgent)[-1].interface == "mn0"
    after = w.net.packets[before:]
    first_rrq = next(i for i, p in enumerate(after) if p.sender == "mn" and p.payload[0] == 1)
    adv_heard = [
        i
        for i, p in enumerate(after)
        if p.sender == "fa2" and isinstance(p.action, SendIcmp) and p.receiver == "mn"
    ]
    assert not adv_heard or first_rrq < adv_heard[0]  # no wait for an advertisement
    assert w.net.logs("mn", "mn.anticipation_used")
    # FA2 saw the node arrive: the buffer (the copies) is delivered to it
    first, flush = edge(w, "fa2", FlushBuffer)
    assert first is early
    assert isinstance(flush, FlushBuffer) and flush.home_address == MN_HOME
    assert flush.link_address == w.net.nodes["mn"].interfaces["mn0"].mac
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    # registration complete: FA2 tears the tunnel down and tells FA1, which does too
    (r2,) = edge(w, "fa2", RemoveEdgeTunnel)
    (r1,) = edge(w, "fa1", RemoveEdgeTunnel)
    assert isinstance(r1, RemoveEdgeTunnel) and r1.peer == FA2_ADDR
    assert isinstance(r2, RemoveEdgeTunnel) and r2.peer == FA1_ADDR
    teardown = [p for p in of_type(w, "fa2", HandoffRequest)]
    assert len(teardown) == 1 and isinstance(teardown[0].message, HandoffRequest)
    assert teardown[0].message.lifetime == 0 and teardown[0].receiver == "fa1"
    # the order at FA2: arrival (flush) before the reply relayed, tunnel removed after
    fa2_log = [a for _, a in w.net.nodes["fa2"].actions]
    assert position(fa2_log, flush) < position(fa2_log, r2)
    assert not w.fa1.handoff.tunnels and not w.fa2.handoff.tunnels  # type: ignore[union-attr]
    assert not edge(w, "fa2", DropBuffer)
    # the flow, in the message types of the figure: 20, 16, 17, 21, then 1/3, 16/17
    flow = [p.payload[0] for p in w.net.packets if not isinstance(p.action, SendIcmp)]
    assert flow[:4] == [1, 1, 3, 3]  # first registration through FA1
    assert flow[4:8] == [20, 16, 17, 21]
    # MN->FA2 request, FA2->HA, HA->FA2 reply; FA2 tears down (16) as it relays the
    # reply (3) to the node; FA1 answers the teardown (17)
    assert flow[8:] == [1, 1, 3, 16, 3, 17]


def test_lost_fast_binding_update_is_sent_again() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    drop(w, FastBindingUpdate, times=1)
    anticipate(w)
    assert not w.net.logs("mn", "mn.fast_binding_acked")
    w.advance(0.25)
    fbus = of_type(w, "mn", FastBindingUpdate)
    assert len(fbus) == 2 and fbus[0].dropped and not fbus[1].dropped
    assert round(fbus[1].time - fbus[0].time, 6) == 0.2
    assert fbus[0].message == fbus[1].message  # the same update again
    assert w.net.logs("mn", "mn.fast_binding_acked")


def test_fast_binding_update_never_answered_is_bounded_then_falls_back() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    drop(w, FastBindingUpdate)
    anticipate(w)
    w.advance(5)
    fbus = of_type(w, "mn", FastBindingUpdate)
    assert len(fbus) == 1 + 3  # retransmit_limit 3
    gaps = [round(b.time - a.time, 6) for a, b in pairwise(fbus)]
    assert gaps == [0.2, 0.4, 0.8]
    (failed,) = w.net.logs("mn", "mn.fast_binding_failed")
    assert failed.fields["why"] == "no acknowledgement"
    # fallback: a normal registration on arrival
    w.net.stop_dropping()
    w.move("B")
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    assert not edge(w, "fa1", InstallEdgeTunnel) and not edge(w, "fa2", InstallEdgeTunnel)


def test_lost_fast_binding_ack_answered_again_without_a_second_tunnel() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    drop(w, FastBindingAck, times=1)
    anticipate(w)
    w.advance(0.25)
    assert len(of_type(w, "mn", FastBindingUpdate)) == 2
    acks = of_type(w, "fa1", FastBindingAck)
    assert len(acks) == 2 and acks[0].dropped and not acks[1].dropped
    assert len(of_type(w, "fa1", HandoffRequest)) == 1
    assert len(edge(w, "fa1", InstallEdgeTunnel)) == 1
    assert w.net.logs("mn", "mn.fast_binding_acked")


def test_lost_handoff_request_retransmitted() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    drop(w, HandoffRequest, times=1)
    anticipate(w)
    w.advance(0.15)
    hrqs = of_type(w, "fa1", HandoffRequest)
    assert len(hrqs) == 2 and hrqs[0].dropped and not hrqs[1].dropped
    assert hrqs[0].message == hrqs[1].message
    assert w.fa1.counters.snapshot()["events"]["handoff_retransmissions"] == 1
    assert len(edge(w, "fa2", InstallEdgeTunnel)) == 1
    (ack,) = of_type(w, "fa1", FastBindingAck)
    assert isinstance(ack.message, FastBindingAck) and ack.message.code == 0


def test_lost_handoff_reply_answered_again_one_tunnel() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    drop(w, HandoffReply, times=1)
    anticipate(w)
    w.advance(0.15)
    assert len(of_type(w, "fa1", HandoffRequest)) == 2
    assert len(of_type(w, "fa2", HandoffReply)) == 2
    assert len(edge(w, "fa2", InstallEdgeTunnel)) == 1  # the retransmission is answered
    assert len(edge(w, "fa1", InstallEdgeTunnel)) == 1


def test_new_agent_never_answers_bounded_then_denied_ack_and_fallback() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    drop(w, HandoffRequest)
    anticipate(w)
    w.advance(5)
    assert len(of_type(w, "fa1", HandoffRequest)) == 1 + FA_SETTINGS.retransmit_limit
    assert w.net.logs("fa1", "fa.handoff_failed")
    (ack,) = of_type(w, "fa1", FastBindingAck)
    assert isinstance(ack.message, FastBindingAck)
    assert ack.message.code == ReplyCode.FA_REGISTRATION_TIMEOUT
    (failed,) = w.net.logs("mn", "mn.fast_binding_failed")
    assert failed.fields["code"] == ReplyCode.FA_REGISTRATION_TIMEOUT
    assert not edge(w, "fa1", InstallEdgeTunnel)
    w.net.stop_dropping()
    w.move("B")
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR


def test_previous_agent_without_support_discards_fbu_node_falls_back() -> None:
    w = handover_world(fa1=None)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    w.advance(5)
    assert len(of_type(w, "mn", FastBindingUpdate)) == 4
    assert not of_type(w, "fa1", FastBindingAck)
    assert w.fa1.counters.snapshot()["discarded"].get("unexpected_message") == 4
    assert w.net.logs("mn", "mn.fast_binding_failed")
    w.move("B")
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR


def test_new_agent_without_support_previous_agent_falls_back() -> None:
    w = handover_world(fa2=None)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    w.advance(5)
    assert len(of_type(w, "fa1", HandoffRequest)) == 4
    assert not of_type(w, "fa2", HandoffReply)
    (ack,) = of_type(w, "fa1", FastBindingAck)
    assert isinstance(ack.message, FastBindingAck) and ack.message.code != 0
    w.move("B")
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR


def test_wrong_anticipation_node_lands_elsewhere_buffer_dropped_tunnels_expire() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)  # "about to move to B" ...
    assert edge(w, "fa2", BufferPackets)
    # delivery to the node's hardware address on FA2's link starts at once (issue 14)
    (early,) = edge(w, "fa2", FlushBuffer)
    w.move("C")  # ... but the node ends up on C (co-located address)
    assert w.net.logs("mn", "mn.anticipation_wrong")
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == MN_COLOCATED
    assert edge(w, "fa2", FlushBuffer) == [early]  # the node never arrived: no second
    w.advance(FA_SETTINGS.buffer_timeout)
    (dropped,) = edge(w, "fa2", DropBuffer)
    assert isinstance(dropped, DropBuffer) and dropped.home_address == MN_HOME
    assert not edge(w, "fa2", RemoveEdgeTunnel)
    w.advance(FA_SETTINGS.lifetime)
    assert len(edge(w, "fa1", RemoveEdgeTunnel)) == 1
    assert len(edge(w, "fa2", RemoveEdgeTunnel)) == 1
    assert len(edge(w, "fa2", DropBuffer)) == 1  # not dropped twice
    assert w.net.logs("fa2", "fa.edge_tunnel_down")[0].fields["why"] == "lifetime ended"


def test_wrong_anticipation_on_a_link_without_address_moves_to_the_agent_there() -> None:
    w = handover_world(HandoverMode.LOW_LATENCY)
    registered_at(w, "C", MN_COLOCATED)
    anticipate(w, "fa2")  # the scan said B ...
    w.move("A")  # ... the node is on A
    w.advance(0.5)
    assert w.net.logs("mn", "mn.anticipation_used")
    assert w.mn.registered and w.mn.care_of_address == FA1_ADDR
    # the request towards the anticipated agent went nowhere; FA1's answer moved the node
    to_fa2 = [p for p in of_type(w, "mn", RegistrationRequest) if p.action.dst == FA2_ADDR]
    assert to_fa2 and all(p.dropped for p in to_fa2)


# ----------------------------------------------------------------------------------------
# RFC 4881 post-registration: source trigger at the previous agent
# ----------------------------------------------------------------------------------------


def test_post_registration_source_trigger_tunnel_then_teardown() -> None:
    w = handover_world(HandoverMode.BASE)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    assert not of_type(w, "mn", FastBindingUpdate)  # no FBU
    assert len(of_type(w, "mn", RegistrationRequest)) == 1  # no pre-registration
    w.net.inject("fa1", HandoffTrigger(MN_HOME, FA2_ADDR))
    w.net.transfer()
    (hrq,) = of_type(w, "fa1", HandoffRequest)
    assert isinstance(hrq.message, HandoffRequest) and not hrq.message.flags & BUFFER_FLAG
    # the trigger sends the visitor's hardware address: FA2 delivers to it from the
    # request on and holds copies for the switch although no buffer was asked (issue 14)
    mac = w.net.nodes["mn"].interfaces["mn0"].mac
    assert node_link_address(hrq.message) == mac
    (early,) = edge(w, "fa2", FlushBuffer)
    (copies,) = edge(w, "fa2", BufferPackets)
    assert early == FlushBuffer(MN_HOME, "fa2-b", mac)
    fa2_setup = [a for _, a in w.net.nodes["fa2"].actions]
    assert position(fa2_setup, early) < position(fa2_setup, copies)
    assert [e.role for e in edge(w, "fa2", InstallEdgeTunnel)] == [EdgeRole.TARGET]  # type: ignore[attr-defined]
    assert [e.role for e in edge(w, "fa1", InstallEdgeTunnel)] == [EdgeRole.SOURCE]  # type: ignore[attr-defined]
    assert not of_type(w, "fa1", FastBindingAck)
    w.move("B")
    assert edge(w, "fa2", FlushBuffer) == [early, early]  # the copies, at the request
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    assert len(edge(w, "fa1", RemoveEdgeTunnel)) == 1
    assert len(edge(w, "fa2", RemoveEdgeTunnel)) == 1
    assert w.net.logs("fa1", "fa.edge_tunnel_down")[0].fields["why"] == "peer tore it down"
    assert w.net.logs("fa2", "fa.edge_tunnel_down")[0].fields["why"] == "registration complete"
    assert w.net.logs("fa2", "fa.handoff_teardown_acked")


# ----------------------------------------------------------------------------------------
# RFC 4881 pre-registration (through the previous agent) and the combined method
# ----------------------------------------------------------------------------------------


def test_pre_registration_through_the_previous_agent_before_the_switch() -> None:
    w = handover_world(HandoverMode.LOW_LATENCY)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    # MN -> FA1 (next hop) -> FA2 -> HA, and the reply back the same way
    pre = of_type(w, "mn", RegistrationRequest)[-1]
    req = pre.message
    assert isinstance(req, RegistrationRequest) and req.care_of_address == FA2_ADDR
    assert pre.receiver == "fa1" and pre.action.dst == FA2_ADDR
    relayed = [p for p in of_type(w, "fa1", RegistrationRequest) if p.receiver == "fa2"]
    assert len(relayed) == 1 and relayed[0].payload == pre.payload
    back = [p for p in of_type(w, "fa1", RegistrationReply) if p.receiver == "mn"]
    assert back and not back[-1].dropped
    assert w.net.logs("fa1", "fa.pre_registration_reply_relayed")
    # registered with the new agent's care-of address while still on A
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    (b,) = w.bindings()
    assert b.care_of_address == FA2_ADDR
    (buf,) = edge(w, "fa2", BufferPackets)
    assert isinstance(buf, BufferPackets) and buf.home_address == MN_HOME
    # FA1's advertisements do not undo it while the node is still there
    w.advance(1.5)
    assert w.mn.care_of_address == FA2_ADDR
    assert w.mn.counters.snapshot()["events"]["pre_registration_kept"] >= 1
    # the switch: FA2 learns the node's link-layer address and flushes the buffer
    w.move("B")
    (flush,) = edge(w, "fa2", FlushBuffer)
    assert isinstance(flush, FlushBuffer)
    assert flush.link_address == w.net.nodes["mn"].interfaces["mn0"].mac
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    assert not edge(w, "fa2", DropBuffer)
    w.advance(5)
    assert not edge(w, "fa2", DropBuffer)


def test_pre_registration_then_wrong_anticipation_drops_the_buffer() -> None:
    w = handover_world(HandoverMode.LOW_LATENCY)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    assert w.mn.care_of_address == FA2_ADDR
    w.move("C")
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == MN_COLOCATED
    (b,) = w.bindings()
    assert b.care_of_address == MN_COLOCATED
    w.advance(FA_SETTINGS.buffer_timeout)
    (dropped,) = edge(w, "fa2", DropBuffer)
    assert isinstance(dropped, DropBuffer) and dropped.home_address == MN_HOME


def test_pre_registration_from_a_stranger_is_not_relayed() -> None:
    w = handover_world(HandoverMode.LOW_LATENCY)
    registered_at(w, "A", FA1_ADDR)
    (req,) = of_type(w, "mn", RegistrationRequest)[:1]
    w.net.inject(
        "fa1",
        UdpReceived(
            req.payload, MN_HOME, FA2_ADDR, 434, 434, "fa1-a", link_src=b"\x02\0\0\0\0\x99", ttl=1
        ),
    )
    w.net.transfer()
    assert w.fa1.counters.snapshot()["discarded"]["pre_registration_not_from_visitor"] == 1
    assert not [p for p in of_type(w, "fa1", RegistrationRequest) if p.receiver == "fa2"]


def test_combined_method_edge_tunnel_covers_a_pre_registration_that_did_not_complete() -> None:
    w = handover_world(HandoverMode.LOW_LATENCY)
    registered_at(w, "A", FA1_ADDR)
    w.net.inject("fa1", HandoffTrigger(MN_HOME, FA2_ADDR))  # source trigger: edge tunnel
    w.net.transfer()
    assert [e.role for e in edge(w, "fa2", InstallEdgeTunnel)] == [EdgeRole.TARGET]  # type: ignore[attr-defined]
    # the pre-registration relayed by FA1 is lost on its way to FA2
    w.net.drop_if(lambda p: p.sender == "fa1" and p.receiver == "fa2" and p.payload[:1] == b"\x01")
    anticipate(w)
    assert w.net.logs("fa1", "fa.pre_registration_relayed")
    w.move("B")  # the switch comes before the pre-registration completed
    w.net.stop_dropping()
    assert edge(w, "fa2", FlushBuffer)  # the tunnel's datagrams reach the node at once
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    assert len(edge(w, "fa1", RemoveEdgeTunnel)) == 1
    assert len(edge(w, "fa2", RemoveEdgeTunnel)) == 1
    w.advance(10)
    assert w.net.logs("fa1", "fa.pre_registration_unanswered")


def test_lost_teardown_is_bounded_and_the_old_end_still_expires() -> None:
    w = handover_world(HandoverMode.BASE)
    registered_at(w, "A", FA1_ADDR)
    w.net.inject("fa1", HandoffTrigger(MN_HOME, FA2_ADDR))
    w.net.transfer()
    drop(w, HandoffRequest, pred=lambda m: isinstance(m, HandoffRequest) and m.lifetime == 0)
    w.move("B")
    w.advance(5)
    teardowns = of_type(w, "fa2", HandoffRequest)
    assert len(teardowns) == 4 and all(p.dropped for p in teardowns)
    (failed,) = w.net.logs("fa2", "fa.handoff_failed")
    assert failed.fields["teardown"] is True
    assert not edge(w, "fa1", RemoveEdgeTunnel)
    w.advance(FA_SETTINGS.lifetime)
    assert len(edge(w, "fa1", RemoveEdgeTunnel)) == 1


def test_trigger_for_an_unknown_visitor_is_a_counted_discard() -> None:
    w = handover_world(HandoverMode.LOW_LATENCY)
    w.net.inject("fa1", HandoffTrigger(MN_HOME, FA2_ADDR))
    w.net.transfer()
    assert not of_type(w, "fa1", HandoffRequest)
    assert w.fa1.counters.snapshot()["discarded"]["handoff_unknown_visitor"] == 1


def test_fast_binding_update_from_another_link_address_is_discarded() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    fbu = FastBindingUpdate(
        flags=RegistrationFlags(0),
        lifetime=10,
        home_address=MN_HOME,
        home_agent=w.mn.home_agent,
        care_of_address=FA2_ADDR,
        identification=1,
    )
    w.net.inject(
        "fa1",
        UdpReceived(
            fbu.encode(), MN_HOME, FA1_ADDR, 434, 434, "fa1-a", link_src=b"\x02\0\0\0\0\x99", ttl=1
        ),
    )
    w.net.transfer()
    assert not of_type(w, "fa1", HandoffRequest)
    assert w.fa1.counters.snapshot()["discarded"]["fast_binding_not_from_visitor"] == 1


# ----------------------------------------------------------------------------------------
# Link-layer triggers on the node
# ----------------------------------------------------------------------------------------


def test_link_down_leaves_the_old_agent_at_once_only_with_handover_settings() -> None:
    for mode, expected in ((HandoverMode.BASE, 1), (None, 0)):
        w = handover_world(mode)
        registered_at(w, "A", FA1_ADDR)
        w.move(None)
        assert len(w.net.actions_of("mn", LeaveForeignAgent)) == expected
        assert w.mn.state is MnState.DETACHED


def test_link_up_solicits_at_once_and_registers_on_the_first_advertisement() -> None:
    w = handover_world(HandoverMode.BASE)
    w.move("A")
    sols = [p for p in w.net.sent("mn") if isinstance(p.action, SendIcmp) and p.time == 0.0]
    assert sols
    adv = [p for p in w.net.sent("fa1") if isinstance(p.action, SendIcmp) and p.receiver == "mn"]
    assert adv and isinstance(decode_icmp(adv[0].payload), object)
    (rrq, *_) = of_type(w, "mn", RegistrationRequest)
    assert rrq.time == 0.0
    w.advance(0.1)
    assert w.mn.registered


def test_anticipation_without_handover_settings_is_a_counted_discard() -> None:
    w = handover_world(None)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    assert w.mn.counters.snapshot()["discarded"]["anticipation_not_configured"] == 1
    assert not of_type(w, "mn", FastBindingUpdate)


def test_replies_still_reach_the_node_with_handover_settings() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    assert of_type(w, "fa1", RegistrationReply)


# ----------------------------------------------------------------------------------------
# Random loss of the handover messages: the invariants hold on every seed
# ----------------------------------------------------------------------------------------

HANDOVER_TYPES = {16, 17, 20, 21}


@pytest.mark.parametrize("mode", [HandoverMode.FAST, HandoverMode.LOW_LATENCY])
@pytest.mark.parametrize("seed", range(12))
def test_random_loss_of_handover_messages_keeps_the_invariants(
    mode: HandoverMode, seed: int
) -> None:
    w = handover_world(mode)
    registered_at(w, "A", FA1_ADDR)
    rng = random.Random(seed)
    w.net.drop_if(
        lambda p: (
            not isinstance(p.action, SendIcmp)
            and p.payload[0] in HANDOVER_TYPES
            and rng.random() < 0.4
        )
    )
    w.net.inject("fa1", HandoffTrigger(MN_HOME, FA2_ADDR))
    anticipate(w)
    w.advance(rng.choice((0.0, 0.05, 0.3, 1.0, 3.0)))
    w.move("B")
    w.advance(30)
    # the node always ends up registered through the agent where it is
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    (b,) = w.bindings()
    assert b.care_of_address == FA2_ADDR
    for fa in ("fa1", "fa2"):
        part = w.net.engine(fa).handoff
        # every tunnel end installed was removed; nothing left outstanding
        assert len(edge(w, fa, InstallEdgeTunnel)) == len(edge(w, fa, RemoveEdgeTunnel))
        assert not part.tunnels and not part.outgoing and not part.awaiting
        assert not part.proxied
        # every buffer ends exactly once, delivered or dropped (a flush without a buffer
        # only starts delivery from the tunnel)
        buffering = False
        for _, a in w.net.nodes[fa].actions:
            if isinstance(a, BufferPackets):
                assert not buffering
                buffering = True
            elif isinstance(a, DropBuffer):
                assert buffering
                buffering = False
            elif isinstance(a, FlushBuffer):
                buffering = False
        assert not buffering
    # retransmissions are bounded: one anticipation, one trigger
    assert len(of_type(w, "mn", FastBindingUpdate)) <= 1 + 3
    setups = [
        p
        for p in of_type(w, "fa1", HandoffRequest)
        if isinstance(p.message, HandoffRequest) and p.message.lifetime
    ]
    assert len(setups) <= 2 * (1 + FA_SETTINGS.retransmit_limit)
    assert len(of_type(w, "fa2", HandoffRequest)) <= 2 * (1 + FA_SETTINGS.retransmit_limit)


# ----------------------------------------------------------------------------------------
# MN-FA authentication of the Fast Binding Update and its acknowledgement
# ----------------------------------------------------------------------------------------

MN_FA_SA = SecurityAssociation(spi=3000, key=bytes(range(40, 56)))


def fa1_shares_mn_fa_key(w: World) -> None:
    # added after the first registration (the node does not sign its requests with MN-FA)
    w.fa1.security_associations.add(MN_HOME, MN_FA_SA)


def test_fbu_signed_with_mn_fa_accepted_and_ack_signed() -> None:
    w = handover_world(mn_fa_sa=MN_FA_SA)
    registered_at(w, "A", FA1_ADDR)
    fa1_shares_mn_fa_key(w)
    anticipate(w)
    (fbu,) = of_type(w, "mn", FastBindingUpdate)
    assert isinstance(fbu.message, FastBindingUpdate)
    assert [e.ext_type for e in fbu.message.extensions] == [MN_FA]
    (ack,) = of_type(w, "fa1", FastBindingAck)
    assert isinstance(ack.message, FastBindingAck)
    assert [e.ext_type for e in ack.message.extensions] == [MN_FA]
    assert w.net.logs("mn", "mn.fast_binding_acked")


def test_unsigned_fbu_refused_when_the_agent_shares_an_mn_fa_key() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    fa1_shares_mn_fa_key(w)
    anticipate(w)
    w.advance(5)
    assert not of_type(w, "fa1", HandoffRequest)
    assert w.fa1.counters.snapshot()["discarded"]["fast_binding_auth_failed"] == 4
    assert w.net.logs("mn", "mn.fast_binding_failed")


def test_fbu_with_a_wrong_key_refused() -> None:
    w = handover_world(mn_fa_sa=SecurityAssociation(spi=3000, key=bytes(16)))
    registered_at(w, "A", FA1_ADDR)
    fa1_shares_mn_fa_key(w)
    anticipate(w)
    assert not of_type(w, "fa1", HandoffRequest)
    assert w.fa1.counters.snapshot()["discarded"]["fast_binding_auth_failed"] == 1


def test_unsigned_ack_refused_by_a_node_with_an_mn_fa_key() -> None:
    w = handover_world(mn_fa_sa=MN_FA_SA)
    registered_at(w, "A", FA1_ADDR)
    w.net.drop_if(lambda p: p.sender == "mn" and p.payload[:1] == bytes((FastBindingUpdate.TYPE,)))
    anticipate(w)
    (fbu,) = of_type(w, "mn", FastBindingUpdate)
    u = fbu.message
    assert isinstance(u, FastBindingUpdate)
    forged = FastBindingAck(0, 10, MN_HOME, u.home_agent, u.identification)
    w.net.inject("mn", UdpReceived(forged.encode(), FA1_ADDR, MN_HOME, 434, 434, "mn0", ttl=1))
    w.net.transfer()
    assert w.mn.counters.snapshot()["discarded"]["fast_binding_ack_auth_failed"] == 1
    assert not w.net.logs("mn", "mn.fast_binding_acked")
