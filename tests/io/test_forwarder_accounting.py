"""The forwarder's per-visitor accounting counters (issue 10, RFC 2866 §5.3/§5.4): a foreign
agent Y with a visitor Z on its link and a home agent X across an IP-in-IP tunnel, both
forwarders driven directly. Input = what Z sent that Y reverse-tunnelled (RFC 3024);
output = what arrived through the tunnel for Z and Y delivered to it; octets are inner
IP datagram lengths. Y's own reverse-tunnelled datagrams (a co-located node's case: a
reverse tunnel, no visitor) count for nobody."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

from mip4.dataplane.common import Encapsulation, Tunnel
from mip4.dataplane.table import LinkDelivery, TunnelEntry
from mip4.io.netns import Netns, entered
from mip4.io.rawsock import open_udp_control, recv_udp
from mip4.wire.packets import ipv4_udp_packet

from .test_forwarder import IX, IY, Tunnelled, X, Y
from .test_forwarder import tunnelled as tunnelled  # the fixture

pytestmark = pytest.mark.lab

HOME = IPv4Address("172.20.0.5")  # the visitor's home address
Y_LINK = IPv4Address("172.20.0.1")  # the agent's address on the visitor's link
UDP_IP = 28  # IPv4 + UDP headers
TO_VISITOR = [0, 10, 100, 1000, 1400]
FROM_VISITOR = [1, 50, 700]


def _pump_until(t: Tunnelled, done: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not done() and time.monotonic() < deadline:
        t.fx.pump_tun()
        t.fx.pump_raw(4)
        t.fy.pump_tun()
        t.fy.pump_raw(4)
        time.sleep(0.005)


def test_visitor_traffic_counts_inner_datagrams_both_ways(
    tunnelled: Tunnelled, make_netns: Callable[[str], Netns]
) -> None:
    t = tunnelled
    z = make_netns("z")
    t.y.add_veth("y1", "z0", z)
    t.y.add_address("y1", f"{Y_LINK}/32")
    t.y.set_up("y1")
    z.add_address("z0", f"{HOME}/32")
    z.set_up("z0")
    assert t.y.wait_up("y1") and z.wait_up("z0")
    z.add_route(f"{IX}/32", gateway=Y_LINK, ifname="z0", onlink=True)
    t.y.add_route(f"{HOME}/32", ifname="y1")  # the visitor's source passes rp_filter
    t.y.set_forwarding(True)
    # Y: the foreign agent. No binding for IX: the visitor's datagrams take the reverse
    # tunnel by their source; so do Y's own (a reverse tunnel without a visitor)
    t.fy.table.remove_binding(IX)
    t.fy.table.set_visitor(HOME, LinkDelivery("y1", z.link_address("z0")))
    t.fy.table.set_reverse(HOME, TunnelEntry(Tunnel(Y, X), Encapsulation.IPIP))
    t.fy.table.set_reverse(IY, TunnelEntry(Tunnel(Y, X), Encapsulation.IPIP))
    # X: the home agent tunnels the home address to Y
    t.fx.table.add_binding(HOME, TunnelEntry(Tunnel(X, Y), Encapsulation.IPIP))
    t.x.add_route(f"{HOME}/32", ifname=t.fx.tun.name)
    assert t.fy.visitor_traffic(HOME) is None  # nothing seen yet

    at_z = open_udp_control(z.name, port=4000)
    at_x = open_udp_control(t.x.name, port=4001)
    with entered(t.x.name):
        from_x = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with entered(z.name):
        from_z = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with entered(t.y.name):
        from_y = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        from_x.bind((str(IX), 0))
        from_z.bind((str(HOME), 0))
        from_y.bind((str(IY), 0))
        for size in TO_VISITOR:
            from_x.sendto(bytes(size), (str(HOME), 4000))
        for size in FROM_VISITOR:
            from_z.sendto(bytes(size), (str(IX), 4001))
        from_y.sendto(bytes(333), (str(IX), 4001))  # Y's own: reverse-tunnelled, no visitor
        got_z: list[bytes] = []
        got_x: list[bytes] = []

        def arrived() -> bool:
            got_z.extend(g.payload for g in recv_udp(at_z))
            got_x.extend(g.payload for g in recv_udp(at_x))
            return len(got_z) == len(TO_VISITOR) and len(got_x) == len(FROM_VISITOR) + 1

        _pump_until(t, arrived)
        assert sorted(map(len, got_z)) == sorted(TO_VISITOR), (t.fx.stats, t.fy.stats)
        assert sorted(map(len, got_x)) == sorted([*FROM_VISITOR, 333]), t.fy.stats
        expected = (
            sum(UDP_IP + s for s in FROM_VISITOR),
            sum(UDP_IP + s for s in TO_VISITOR),
            len(FROM_VISITOR),
            len(TO_VISITOR),
        )
        assert t.fy.visitor_traffic(HOME) == expected
        assert t.fy.visitors_traffic() == {str(HOME): expected}
        # only visitors count: not Y's own source, not at the home agent's end
        assert t.fy.visitor_traffic(IY) is None
        assert t.fx.visitor_traffic(HOME) is None and t.fx.visitors_traffic() == {}
        # a buffered arrival (handover, io/edge.py) delivered later counts as output too
        held = ipv4_udp_packet(IX, HOME, 4001, 4000, bytes(50))
        t.fy.deliver("y1", z.link_address("z0"), memoryview(held))
        _pump_until(t, lambda: bool(recv_udp(at_z)))
        expected = (expected[0], expected[1] + len(held), expected[2], expected[3] + 1)
        assert len(held) == UDP_IP + 50 and t.fy.visitor_traffic(HOME) == expected
        # the counters outlive the visitor entry (the Stop of a deregistration is built
        # after the entry is gone), and traffic for a departed visitor is not counted
        t.fy.table.set_visitor(HOME, None)
        from_x.sendto(bytes(5), (str(HOME), 4000))
        _pump_until(t, lambda: t.fy.stats["delivered_tun"] >= 1)
        assert t.fy.stats["delivered_tun"] == 1
        assert t.fy.visitor_traffic(HOME) == expected
    finally:
        for s in (from_x, from_z, from_y, at_z, at_x):
            s.close()


def test_departed_visitors_counters_are_dropped_first_past_the_limit(
    tunnelled: Tunnelled, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mip4.io.forwarder as forwarder

    monkeypatch.setattr(forwarder, "MAX_TRAFFIC_ENTRIES", 2)
    fy = tunnelled.fy
    fy.table.set_visitor(HOME, LinkDelivery("y0", b"\x02" * 6))
    fy._new_traffic(int(HOME))[0] = 7
    fy._new_traffic(int(IY))  # departed (not a visitor)
    fy._new_traffic(int(IX))  # at the limit: IY's counters go, HOME's stay
    assert fy.visitor_traffic(HOME) == (7, 0, 0, 0)
    assert fy.visitor_traffic(IY) is None and fy.visitor_traffic(IX) == (0, 0, 0, 0)
