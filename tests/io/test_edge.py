"""The edge tunnels' datapath decisions (mip4.io.edge), driven directly: what the previous
agent re-tunnels, what the new agent buffers, flushes in order, drops, and sends back."""

from __future__ import annotations

from ipaddress import IPv4Address

from mip4.dataplane.common import Tunnel
from mip4.dataplane.table import LinkDelivery, TunnelEntry, TunnelTable
from mip4.io.edge import EdgeTunnels
from mip4.wire.packets import ipv4_udp_packet

HOME = IPv4Address("172.20.0.5")
CN = IPv4Address("10.9.0.1")
HA = IPv4Address("10.1.0.1")
FA1, FA2 = IPv4Address("10.2.0.1"), IPv4Address("10.3.0.1")
MAC = bytes.fromhex("02aabbccddee")


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, TunnelEntry]] = []
        self.delivered: list[tuple[str, bytes | None, bytes]] = []
        self.kernel: list[bytes] = []
        self.now = 100.0

    def edge(self, table: TunnelTable | None = None, *, bicast: bool = False) -> EdgeTunnels:
        return EdgeTunnels(
            table or TunnelTable(),
            lambda pkt, entry: self.sent.append((bytes(pkt), entry)),
            lambda ifname, mac, pkt: self.delivered.append((ifname, mac, bytes(pkt))),
            lambda pkt: self.kernel.append(bytes(pkt)),
            max_age=5.0,
            clock=lambda: self.now,
            bicast=bicast,
        )


def to_home(n: int) -> bytes:
    return ipv4_udp_packet(CN, HOME, 4000, 4000, n.to_bytes(4, "big"))


def from_home(n: int) -> bytes:
    return ipv4_udp_packet(HOME, CN, 4000, 4000, n.to_bytes(4, "big"))


def test_source_end_retunnels_datagrams_for_the_visitor_to_the_new_agent() -> None:
    r = Recorder()
    edge = r.edge()
    entry = TunnelEntry(Tunnel(FA1, FA2))
    assert not edge.intercept(memoryview(to_home(1)), int(HA))  # nothing set up yet
    edge.set_source(HOME, entry)
    assert edge.intercept(memoryview(to_home(2)), int(HA))
    assert r.sent == [(to_home(2), entry)]
    # another destination is not the edge's business
    other = ipv4_udp_packet(CN, IPv4Address("172.20.0.6"), 1, 1, b"x")
    assert not edge.intercept(bytearray(other), int(HA))
    edge.set_source(HOME, None)
    assert not edge.intercept(memoryview(to_home(3)), int(HA))
    assert len(r.sent) == 1


def test_bicasting_source_delivers_on_the_old_link_too_while_the_visitor_is_there() -> None:
    r = Recorder()
    table = TunnelTable()
    edge = r.edge(table, bicast=True)
    entry = TunnelEntry(Tunnel(FA1, FA2))
    edge.set_source(HOME, entry)
    table.set_visitor(HOME, LinkDelivery("a1", MAC))
    assert edge.intercept(memoryview(to_home(1)), int(HA))
    assert r.sent == [(to_home(1), entry)] and r.delivered == [("a1", MAC, to_home(1))]
    table.set_visitor(HOME, None)  # the visitor entry went: only the tunnel
    assert edge.intercept(memoryview(to_home(2)), int(HA))
    assert len(r.sent) == 2 and len(r.delivered) == 1


def test_bicasting_target_keeps_the_newest() -> None:
    r = Recorder()
    edge = r.edge(bicast=True)
    edge.buffer(HOME, 3)
    for n in range(5):
        assert edge.intercept(memoryview(to_home(n)), int(FA1))
    assert edge.flush(HOME, "b1", MAC) == 3
    assert r.delivered == [("b1", MAC, to_home(n)) for n in (2, 3, 4)]


def test_source_end_sends_the_nodes_own_datagrams_on_from_the_peer_only() -> None:
    r = Recorder()
    table = TunnelTable()
    edge = r.edge(table)
    edge.set_source(HOME, TunnelEntry(Tunnel(FA1, FA2)))
    # from a stranger: not taken
    assert not edge.intercept(memoryview(from_home(1)), int(IPv4Address("10.7.7.7")))
    # from the new agent, no reverse tunnel: to the kernel, which forwards it
    assert edge.intercept(memoryview(from_home(2)), int(FA2))
    assert r.kernel == [from_home(2)]
    # with a reverse tunnel to the home agent (RFC 3024): into it
    reverse = TunnelEntry(Tunnel(FA1, HA))
    table.set_reverse(HOME, reverse)
    assert edge.intercept(memoryview(from_home(3)), int(FA2))
    assert r.sent == [(from_home(3), reverse)]


def test_target_buffers_bounded_then_flushes_in_order_then_delivers_straight() -> None:
    r = Recorder()
    edge = r.edge()
    edge.set_reverse(HOME, TunnelEntry(Tunnel(FA2, FA1)))
    edge.buffer(HOME, 3)
    for n in range(5):
        assert edge.intercept(memoryview(to_home(n)), int(FA1))
    assert r.delivered == [] and r.kernel == []
    assert edge.stats["edge_buffered"] == 3 and edge.stats["edge_buffer_full"] == 2
    assert edge.flush(HOME, "b1", MAC) == 3
    assert r.delivered == [("b1", MAC, to_home(n)) for n in range(3)]  # oldest kept, in order
    assert edge.intercept(memoryview(to_home(9)), int(FA1))
    assert r.delivered[-1] == ("b1", MAC, to_home(9))
    # the node's own datagrams go back through the edge tunnel
    entry = edge.reverse_entry(int(HOME))
    assert entry is not None and entry.tunnel.dst == FA1


def test_target_hands_over_to_the_visitor_entry_once_it_has_a_hardware_address() -> None:
    r = Recorder()
    table = TunnelTable()
    edge = r.edge(table)
    edge.buffer(HOME, 8)
    edge.flush(HOME, "b1", MAC)
    table.set_visitor(HOME, LinkDelivery("b1", None))  # pre-registered: no address yet
    assert edge.intercept(memoryview(to_home(1)), int(HA))
    table.set_visitor(HOME, LinkDelivery("b1", MAC))
    assert not edge.intercept(memoryview(to_home(2)), int(HA))
    assert int(HOME) not in edge.arrivals
    assert len(r.delivered) == 1


def test_drop_buffer_discards_and_stops_buffering() -> None:
    r = Recorder()
    edge = r.edge()
    edge.buffer(HOME, 8)
    for n in range(4):
        edge.intercept(memoryview(to_home(n)), int(HA))
    assert edge.drop(HOME) == 4
    assert not edge.intercept(memoryview(to_home(5)), int(HA))  # no longer held
    assert edge.flush(HOME, "b1", MAC) == 0
    assert r.delivered == []


def test_buffer_older_than_max_age_is_dropped() -> None:
    r = Recorder()
    edge = r.edge()
    edge.buffer(HOME, 8)
    assert edge.intercept(memoryview(to_home(1)), int(HA))
    r.now += 6.0
    assert not edge.intercept(memoryview(to_home(2)), int(HA))
    assert edge.stats["edge_buffer_expired"] == 1
    assert edge.flush(HOME, "b1", MAC) == 0


def test_target_without_buffer_drops_until_the_node_arrives() -> None:
    """Post-registration without the buffer flag: datagrams out of the edge tunnel for a
    node not here yet are dropped, not handed to the kernel (which would route them home)."""
    r = Recorder()
    edge = r.edge()
    edge.set_reverse(HOME, TunnelEntry(Tunnel(FA2, FA1)))
    assert edge.intercept(memoryview(to_home(1)), int(FA1))
    assert r.kernel == [] and r.delivered == [] and edge.stats["edge_not_arrived"] == 1
    edge.flush(HOME, "b1", MAC)
    assert edge.intercept(memoryview(to_home(2)), int(FA1))
    assert r.delivered == [("b1", MAC, to_home(2))]
    edge.forget(HOME)
    edge.set_reverse(HOME, None)
    assert not edge.intercept(memoryview(to_home(3)), int(FA1))
