"""Issue 14: the new agent's datapath delivering and holding at once (mip4.io.edge). A
``flush`` before the node arrived starts delivery to its hardware address; a ``buffer``
after it holds copies as well (the newest, bounded) while delivering; the ``flush`` at
the node's first request delivers the copies and stops holding; a visitor entry left from
an earlier visit does not end the holding early."""

from __future__ import annotations

from mip4.dataplane.common import Tunnel
from mip4.dataplane.table import LinkDelivery, TunnelEntry, TunnelTable

from .test_edge import FA1, FA2, HOME, MAC, Recorder, to_home


def test_delivering_and_holding_then_the_copies_at_the_nodes_request() -> None:
    r = Recorder()
    edge = r.edge(bicast=True)
    edge.set_reverse(HOME, TunnelEntry(Tunnel(FA2, FA1)))
    assert edge.flush(HOME, "b1", MAC) == 0  # at the Handoff Request: nothing held yet
    edge.buffer(HOME, 3)
    for n in range(5):
        assert edge.intercept(memoryview(to_home(n)), int(FA1))
    # every datagram went straight to the node's hardware address ...
    assert r.delivered == [("b1", MAC, to_home(n)) for n in range(5)]
    assert edge.stats["edge_delivered"] == 5
    # ... and the newest 3 are held
    assert edge.flush(HOME, "b1", MAC) == 3
    assert r.delivered[5:] == [("b1", MAC, to_home(n)) for n in (2, 3, 4)]
    # after the node's request: delivered, no longer held
    assert edge.intercept(memoryview(to_home(9)), int(FA1))
    assert r.delivered[-1] == ("b1", MAC, to_home(9))
    assert edge.flush(HOME, "b1", MAC) == 0


def test_a_visitor_entry_from_an_earlier_visit_does_not_end_the_holding() -> None:
    r = Recorder()
    table = TunnelTable()
    edge = r.edge(table, bicast=True)
    table.set_visitor(HOME, LinkDelivery("b1", MAC))  # left from the node's last stay here
    edge.flush(HOME, "b1", MAC)
    edge.buffer(HOME, 8)
    assert edge.intercept(memoryview(to_home(1)), int(FA1))
    assert edge.flush(HOME, "b1", MAC) == 1  # the copy is there for the node's request
    # once the copies are delivered, the visitor entry takes over as before
    assert not edge.intercept(memoryview(to_home(2)), int(FA1))
    assert int(HOME) not in edge.arrivals


def test_holding_stops_when_too_old_delivery_goes_on() -> None:
    r = Recorder()
    edge = r.edge()
    edge.flush(HOME, "b1", MAC)
    edge.buffer(HOME, 8)
    assert edge.intercept(memoryview(to_home(1)), int(FA1))
    r.now += 6.0  # past max_age
    assert edge.intercept(memoryview(to_home(2)), int(FA1))
    assert [p for _i, _m, p in r.delivered] == [to_home(1), to_home(2)]
    assert edge.stats["edge_buffer_expired"] == 1
    assert edge.flush(HOME, "b1", MAC) == 0
    # and a DropBuffer (the engine's buffer_timeout) keeps the delivery too
    edge.buffer(HOME, 8)
    edge.intercept(memoryview(to_home(3)), int(FA1))
    assert edge.drop(HOME) == 1
    assert edge.intercept(memoryview(to_home(4)), int(FA1))
    assert r.delivered[-1] == ("b1", MAC, to_home(4))
