"""Issue 14, what is left of the interruption: on a foreign agent's link the mobile node's
Registration Request leaves before the home subnet is withdrawn from the link (the request
goes to the agent's link-layer address and needs no route), so the executor's work for
:class:`AwayFromHome` no longer delays it; a co-located node still withdraws first (its
request goes through the visited network's router)."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address

from mip4.core.actions import AwayFromHome, SendUdp
from mip4.core.events import LinkDown, LinkUp
from mip4.core.mobile_node import HandoverMode
from mip4.wire.messages import RegistrationRequest

from .netsim import FA1_ADDR, FA2_ADDR
from .test_handover import anticipate, handover_world, registered_at
from .test_mobile_node import adv_event, make, of


def _order(actions: Sequence[object]) -> list[type]:
    out: list[type] = []
    for a in actions:
        if isinstance(a, AwayFromHome):
            out.append(AwayFromHome)
        elif isinstance(a, SendUdp) and a.payload[:1] == bytes((RegistrationRequest.TYPE,)):
            out.append(RegistrationRequest)
    return out


def test_request_to_a_foreign_agent_leaves_before_away_from_home() -> None:
    mn = make()
    acts = mn.handle(LinkUp("mn0", None, None), 0.0) + mn.handle(adv_event(), 0.5)
    assert _order(acts) == [RegistrationRequest, AwayFromHome]
    (send,) = [a for a in of(acts, SendUdp) if a.link_dst is not None]
    assert send.interface == "mn0"  # by the agent's link-layer address: no route needed


def test_colocated_node_still_withdraws_the_home_subnet_first() -> None:
    mn = make()
    acts = mn.handle(LinkUp("mn0", IPv4Address("10.9.0.50"), 24), 0.0)
    assert _order(acts) == [AwayFromHome, RegistrationRequest]


def test_anticipated_move_between_agents_sends_the_request_first() -> None:
    """A move A → B announced in advance: at link up on B the node's first action of
    the attachment is the request to FA2, then the withdrawal."""
    w = handover_world(HandoverMode.FAST)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    now = w.net.now
    w.mn.handle(LinkDown("mn0"), now)
    acts = w.mn.handle(LinkUp("mn0", None, None), now + 0.001)
    assert _order(acts) == [RegistrationRequest, AwayFromHome]
    (send,) = [a for a in of(acts, SendUdp) if a.payload[:1] == b"\x01"]
    assert send.dst == FA2_ADDR and send.link_dst is not None
