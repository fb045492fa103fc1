"""Issue 14, what is left of the interruption: the new agent delivers what the edge tunnel
brings straight to the node from the Handoff Request on, while also buffering it, so the
first datagrams after the link switch do not wait for the node's Registration Request.

The previous agent puts the node's hardware address (from its visitor entry) in the
Handoff Request as a Generalized Link-Layer Address extension (type 138, RFC 4881; mip4's
reading); the new agent, knowing on which link a node handed over to its care-of address
arrives (``FaHandoff.links``), emits a ``FlushBuffer`` at once (delivery to that address
starts) and then ``BufferPackets`` (copies are held); the node's first request flushes the
copies as before. The datapath half: ``tests/io/test_handover_edge.py``."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from mip4.core.actions import (
    BufferPackets,
    DropBuffer,
    FlushBuffer,
    InstallEdgeTunnel,
    Log,
    RemoveEdgeTunnel,
    SendUdp,
)
from mip4.core.counters import Counters
from mip4.core.fa_handoff import (
    BUFFER_FLAG,
    GLLA_IEEE_802,
    FaHandoff,
    HandoffSettings,
    node_link_address,
)
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.mobile_node import HandoverMode
from mip4.wire.ext_mobility import GeneralizedLLAExtension
from mip4.wire.messages import HandoffRequest, decode_message

from .netsim import FA1_ADDR, FA2_ADDR, MN_HOME, World
from .test_handover import anticipate, edge, handover_world, of_type, registered_at

MAC = bytes.fromhex("02aabbccddee")


def _mn_mac(w: World) -> bytes:
    mac = w.net.nodes["mn"].interfaces["mn0"].mac
    assert isinstance(mac, bytes)
    return mac


def _fa2_link(w: World) -> str:
    fa2 = w.net.engine("fa2")
    assert isinstance(fa2, ForeignAgent) and fa2.handoff is not None
    (link,) = fa2.config.links
    fa2.handoff.links = {link.address: link.interface}
    return link.interface


def test_fast_handoff_request_carries_the_nodes_hardware_address() -> None:
    w = handover_world()
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    (hrq,) = of_type(w, "fa1", HandoffRequest)
    req = hrq.message
    assert isinstance(req, HandoffRequest)
    (glla,) = [e for e in req.extensions if isinstance(e, GeneralizedLLAExtension)]
    assert glla.subtype == GLLA_IEEE_802 and glla.address == _mn_mac(w)
    assert node_link_address(req) == _mn_mac(w)
    # byte for byte through the codec (what the new agent decodes)
    again = decode_message(req.encode())
    assert isinstance(again, HandoffRequest) and node_link_address(again) == _mn_mac(w)


def test_new_agent_delivers_from_the_handoff_request_on_and_buffers() -> None:
    w = handover_world()
    iface = _fa2_link(w)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    # before the node moved: delivery to its hardware address on FA2's link, then copies
    fa2 = [a for _t, a in w.net.nodes["fa2"].actions]
    (install,) = [a for a in fa2 if isinstance(a, InstallEdgeTunnel)]
    (early,) = [a for a in fa2 if isinstance(a, FlushBuffer)]
    (buf,) = [a for a in fa2 if isinstance(a, BufferPackets)]
    assert early == FlushBuffer(MN_HOME, iface, _mn_mac(w))
    assert fa2.index(install) < fa2.index(early) < fa2.index(buf)
    (up,) = w.net.logs("fa2", "fa.edge_tunnel_up")
    assert up.fields["early"] is True and up.fields["buffer"] is True
    assert w.fa2.counters.events["handoff_early_deliveries"] == 1
    # the node arrives: its first request flushes the copies (a second FlushBuffer)
    w.move("B")
    flushes = edge(w, "fa2", FlushBuffer)
    assert flushes == [early, FlushBuffer(MN_HOME, iface, _mn_mac(w))]
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    assert len(edge(w, "fa2", RemoveEdgeTunnel)) == 1  # torn down as before


def test_post_registration_trigger_delivers_early_and_holds_copies() -> None:
    """The source trigger (no buffer flag): FaHandoff.start given the visitor's hardware
    address sends it; the new agent delivers early and holds copies all the same (without
    them the datagrams it delivers while the node's port is down would be lost), which the
    node's first request flushes."""
    w = handover_world(HandoverMode.BASE)
    iface = _fa2_link(w)
    registered_at(w, "A", FA1_ADDR)
    fa1 = w.net.engine("fa1")
    assert isinstance(fa1, ForeignAgent) and fa1.handoff is not None
    v = fa1.visitors.get(MN_HOME)
    assert v is not None
    actions = fa1.handoff.start(
        v.home_address, v.home_agent, v.care_of_address, FA2_ADDR, w.net.now,
        buffer=False, link_address=v.link_address,
    )  # fmt: skip
    w.net.emit("fa1", actions)
    w.net.transfer()
    (hrq,) = of_type(w, "fa1", HandoffRequest)
    assert isinstance(hrq.message, HandoffRequest) and not hrq.message.flags & BUFFER_FLAG
    early = FlushBuffer(MN_HOME, iface, _mn_mac(w))
    assert edge(w, "fa2", FlushBuffer) == [early]
    fa2 = [a for _t, a in w.net.nodes["fa2"].actions]
    (buf,) = [a for a in fa2 if isinstance(a, BufferPackets)]
    assert fa2.index(early) < fa2.index(buf)
    (up,) = w.net.logs("fa2", "fa.edge_tunnel_up")
    assert up.fields["buffer"] is False and up.fields["early"] is True
    w.move("B")
    assert edge(w, "fa2", FlushBuffer) == [early, early]  # the copies, at the request
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    assert not edge(w, "fa2", DropBuffer)


def test_without_a_known_link_or_address_the_new_agent_waits_for_the_node() -> None:
    # no links (an agent that does not know them): as before, the first FlushBuffer comes
    # with the node's request
    w = handover_world()
    assert w.fa2.handoff is not None
    w.fa2.handoff.links = {}
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    assert not edge(w, "fa2", FlushBuffer)
    assert edge(w, "fa2", BufferPackets)
    # a request without the visitor's hardware address: no extension, no early delivery
    w = handover_world(HandoverMode.BASE)
    _fa2_link(w)
    registered_at(w, "A", FA1_ADDR)
    fa1 = w.net.engine("fa1")
    assert isinstance(fa1, ForeignAgent) and fa1.handoff is not None
    v = fa1.visitors.get(MN_HOME)
    assert v is not None
    actions = fa1.handoff.start(
        v.home_address, v.home_agent, v.care_of_address, FA2_ADDR, w.net.now, buffer=False
    )
    w.net.emit("fa1", actions)
    w.net.transfer()
    (hrq,) = of_type(w, "fa1", HandoffRequest)
    assert isinstance(hrq.message, HandoffRequest) and not hrq.message.extensions
    assert not edge(w, "fa2", FlushBuffer)


def _request(*extensions: GeneralizedLLAExtension) -> HandoffRequest:
    return HandoffRequest(
        flags=1,
        lifetime=10,
        home_address=MN_HOME,
        home_agent=IPv4Address("10.1.0.2"),
        care_of_address=FA1_ADDR,
        identification=7,
        extensions=extensions,
    )


def test_only_a_six_octet_ieee_802_address_counts() -> None:
    assert node_link_address(_request(GeneralizedLLAExtension(GLLA_IEEE_802, MAC))) == MAC
    assert node_link_address(_request(GeneralizedLLAExtension(GLLA_IEEE_802 + 1, MAC))) is None
    assert node_link_address(_request(GeneralizedLLAExtension(GLLA_IEEE_802, MAC[:4]))) is None
    assert node_link_address(_request()) is None
    part = FaHandoff(HandoffSettings(), Counters(), random.Random(1))
    part.links = {FA2_ADDR: "b0"}
    odd = _request(GeneralizedLLAExtension(GLLA_IEEE_802 + 1, MAC))
    out = part.on_request(odd, FA1_ADDR, FA2_ADDR, 434, 0.0)
    assert not [a for a in out if isinstance(a, FlushBuffer)]
    assert [a for a in out if isinstance(a, BufferPackets)]
    # the request came to another of our addresses than the mapped one: no early delivery
    part = FaHandoff(HandoffSettings(), Counters(), random.Random(1))
    part.links = {IPv4Address("192.168.9.1"): "c0"}
    out = part.on_request(
        _request(GeneralizedLLAExtension(GLLA_IEEE_802, MAC)), FA1_ADDR, FA2_ADDR, 434, 0.0
    )
    assert not [a for a in out if isinstance(a, FlushBuffer)]
    assert [a for a in out if isinstance(a, SendUdp)]  # answered all the same
    assert [a for a in out if isinstance(a, Log) and a.event == "fa.edge_tunnel_up"]
