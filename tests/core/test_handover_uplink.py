"""Issue 14, the node's own datagrams during a fast handover: once the previous agent
acknowledged the Fast Binding Update for the new care-of address (RFC 4988), the node
routes through the new agent as soon as it is on its link, not at the registration reply.

In the lab every datagram the node sent from its link switch to the reply (15-20 ms of the
probe echoes and the TCP uplink) was dropped by its own kernel: ``LeaveForeignAgent`` took
the routes away at link down and ``UseForeignAgent`` came with the reply
(docs/handovers.md, "Which probes are lost"). The new agent takes them already (back
through the edge tunnel until the home agent has the binding)."""

from __future__ import annotations

import pytest

from mip4.core.actions import Action, UseForeignAgent
from mip4.core.mobile_node import HandoverMode
from mip4.wire.messages import FastBindingAck

from .netsim import FA1_ADDR, FA2_ADDR, MN_HOME, recording
from .test_handover import anticipate, drop, handover_world, registered_at


def requests_fa2(actions: list[Action]) -> bool:
    return any(
        getattr(a, "dst", None) == FA2_ADDR and getattr(a, "payload", b"")[:1] == b"\x01"
        for a in actions
    )


def test_node_routes_through_the_prepared_agent_from_its_first_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = handover_world(HandoverMode.FAST)
    registered_at(w, "A", FA1_ADDR)
    anticipate(w)
    assert w.mn.handover is not None and w.mn.handover.acknowledged == FA2_ADDR
    before = len(w.net.actions_of("mn", UseForeignAgent))
    seen = recording(monkeypatch, w, "mn")
    w.move("B")
    w.advance(0.5)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    # the link-up that sends the first request to FA2 also routes through FA2
    (first,) = [out for out in seen if requests_fa2(out)][:1]
    (use,) = [a for a in first if isinstance(a, UseForeignAgent)]
    assert use.agent_address == FA2_ADDR and use.home_address == MN_HOME
    assert use.agent_link_address == w.net.nodes["fa2"].interfaces["fa2-b"].mac
    # the reply finds it done: no second hand-over of the same routes
    assert len(w.net.actions_of("mn", UseForeignAgent)) == before + 1
    assert w.mn.counters.events["handover_early_routes"] == 1


def test_without_an_acknowledgement_the_routes_wait_for_the_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = handover_world(HandoverMode.FAST)
    registered_at(w, "A", FA1_ADDR)
    drop(w, FastBindingAck)  # FA1's acknowledgements never arrive
    anticipate(w)
    assert w.mn.handover is not None and w.mn.handover.acknowledged is None
    seen = recording(monkeypatch, w, "mn")
    w.move("B")
    w.advance(1.0)
    assert w.mn.registered and w.mn.care_of_address == FA2_ADDR
    (first,) = [out for out in seen if requests_fa2(out)][:1]
    assert not [a for a in first if isinstance(a, UseForeignAgent)]
    assert w.net.actions_of("mn", UseForeignAgent)[-1].agent_address == FA2_ADDR
    assert not w.mn.counters.events["handover_early_routes"]
