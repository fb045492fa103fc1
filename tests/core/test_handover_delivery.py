"""Issue 14: the new agent delivers what the home agent tunnels to it from the moment it
relays the handed-over node's request, not from the home agent's reply.

The home agent moves its binding before its reply has reached the new agent; a foreign
agent makes its visitor entry (and so accepts the home agent's tunnel) only on the reply
(RFC 5944 §3.7.3.2). In the lab on the bpf plane each datagram the home agent sent in
between was dropped at the new agent (docs/handovers.md, "Which probes are lost"). With a
target edge tunnel for the node, :meth:`FaHandoff.relayed
<mip4.core.fa_handoff.FaHandoff.relayed>` installs the visitor's delivery -- without the
reverse tunnel -- before the request leaves; the reply's ``InstallVisitor`` replaces it,
and it goes with the tunnel when no registration comes of it."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from mip4.core.actions import (
    Action,
    BufferPackets,
    DropBuffer,
    FlushBuffer,
    InstallEdgeTunnel,
    InstallVisitor,
    RemoveVisitor,
    SendUdp,
)
from mip4.core.events import HandoffTrigger
from mip4.core.fa_config import ForeignAgentConfig, VisitedLink
from mip4.core.fa_handoff import HandoffSettings, node_link_address
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.mobile_node import HandoverMode
from mip4.security.sa import SecurityAssociations
from mip4.wire.messages import HandoffRequest, RegistrationReply

from .netsim import FA1_ADDR, FA2_ADDR, HA_ADDR, MN_HOME, recording
from .test_handover import anticipate, drop, handover_world, registered_at


def relays_request(actions: list[Action]) -> bool:
    return any(
        isinstance(a, SendUdp) and a.dst == HA_ADDR and a.payload[:1] == b"\x01" for a in actions
    )


def test_new_agent_delivers_from_the_relayed_request_before_the_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = handover_world(HandoverMode.FAST)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    seen = recording(monkeypatch, w, "fa2")
    w.move("B")
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    # the node's first request at FA2: the delivery is installed before it is relayed
    (first,) = [out for out in seen if relays_request(out)]
    early = [a for a in first if isinstance(a, InstallVisitor)]
    assert len(early) == 1, first
    (v,) = early
    relay = next(a for a in first if isinstance(a, SendUdp) and a.dst == HA_ADDR)
    assert first.index(v) < first.index(relay)
    assert v.home_address == MN_HOME and v.home_agent == HA_ADDR
    assert v.care_of_address == FA2_ADDR and v.interface == "fa2-b"
    assert v.link_address == w.net.nodes["mn"].interfaces["mn0"].mac
    assert not v.reverse_tunnel  # the node's datagrams keep to the edge tunnel meanwhile
    # the reply installs the visitor as always; nothing removes it
    installed = w.net.actions_of("fa2", InstallVisitor)
    assert installed[0] is v and len(installed) == 2
    assert not w.net.actions_of("fa2", RemoveVisitor)
    assert w.fa2.handoff is not None and not w.fa2.handoff.provisional


def test_early_delivery_goes_with_the_tunnel_when_no_registration_comes_of_it() -> None:
    w = handover_world(HandoverMode.FAST)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    # the home agent's replies never reach FA2: the node is never registered there
    drop(w, RegistrationReply, pred=lambda m: getattr(m, "home_address", None) == MN_HOME)
    w.move("B")
    w.advance(0.5)
    assert not w.mn.registered or w.mn.care_of_address != FA2_ADDR
    (early,) = w.net.actions_of("fa2", InstallVisitor)
    assert early.home_address == MN_HOME and not early.reverse_tunnel
    assert not w.net.actions_of("fa2", RemoveVisitor)  # the tunnel is still up
    w.advance(11)  # the edge tunnel's lifetime (10 s) ends
    (gone,) = w.net.actions_of("fa2", RemoveVisitor)
    assert gone.home_address == MN_HOME and gone.interface == early.interface
    assert w.fa2.handoff is not None and not w.fa2.handoff.provisional
    assert w.fa2.visitors.get(MN_HOME) is None  # the visitor list never had it


def test_no_early_delivery_where_the_agent_still_delivers_to_the_node() -> None:
    w = handover_world(HandoverMode.FAST)
    registered_at(w, "A", FA1_ADDR)
    for where, agent, fa in (("B", FA2_ADDR, "fa2"), ("A", FA1_ADDR, "fa1")):
        anticipate(w, fa)
        registered_at(w, where, agent)
    installed = len(w.net.actions_of("fa2", InstallVisitor))
    assert installed == 2  # the first arrival at FA2: early, then the reply's
    # back to B: FA2's entry from the first visit still delivers; nothing early
    anticipate(w, "fa2")
    registered_at(w, "B", FA2_ADDR)
    assert len(w.net.actions_of("fa2", InstallVisitor)) == installed + 1
    assert len(w.net.logs("fa2", "fa.handoff_delivering")) == 1


def test_the_agent_knows_on_which_link_a_node_handed_over_to_it_arrives() -> None:
    """Early delivery switched on in the agent (issue 14): each care-of address offered on
    a link maps to that link, so a Handoff Request naming the node's hardware address
    starts delivery at once (tests/core/test_handover_early_delivery.py)."""
    a, b = IPv4Address("192.0.2.1"), IPv4Address("198.51.100.1")
    extra = IPv4Address("192.0.2.9")
    config = ForeignAgentConfig(
        links=(
            VisitedLink("a0", a, care_of_addresses=(a, extra)),
            VisitedLink("b0", b),
        )
    )
    fa = ForeignAgent(config, SecurityAssociations(), 0.0, handoff=HandoffSettings())
    assert fa.handoff is not None
    assert fa.handoff.links == {a: "a0", extra: "a0", b: "b0"}
    assert ForeignAgent(config, SecurityAssociations(), 0.0).handoff is None


def test_a_pre_registered_nodes_buffer_is_not_delivered_before_it_arrives() -> None:
    """The combined method: the pre-registration is accepted first (FA2 holds what the home
    agent now tunnels to it), then the source trigger's Handoff Request names the node's
    hardware address. Delivering early would empty that buffer onto FA2's link before
    the node is there; FA2 keeps it for the node's first request instead."""
    w = handover_world(HandoverMode.LOW_LATENCY)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)  # pre-registration through FA1, accepted: FA2 buffers for the node
    assert w.fa2.handoff is not None and MN_HOME in w.fa2.handoff.awaiting
    (held,) = w.net.actions_of("fa2", BufferPackets)
    w.net.inject("fa1", HandoffTrigger(MN_HOME, FA2_ADDR))
    w.net.transfer()
    (hrq,) = [p for p in w.net.sent("fa1", HandoffRequest) if p.receiver == "fa2"]
    assert isinstance(hrq.message, HandoffRequest) and node_link_address(hrq.message)
    assert w.net.actions_of("fa2", InstallEdgeTunnel)
    assert not w.net.actions_of("fa2", FlushBuffer)
    assert w.net.actions_of("fa2", BufferPackets) == [held]
    w.move("B")
    (flush,) = w.net.actions_of("fa2", FlushBuffer)  # the node's first request
    assert flush.home_address == MN_HOME
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    assert not w.net.actions_of("fa2", DropBuffer)
