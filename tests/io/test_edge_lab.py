"""The handover actions carried out on Linux (io/executor.py + io/edge.py): an IP-in-IP
edge tunnel between two foreign agents' user-space forwarders, both directions, with the
new agent's buffer flushed in order to the node's hardware address."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest

from mip4.core.actions import (
    BufferPackets,
    DropBuffer,
    EdgeRole,
    FlushBuffer,
    InstallEdgeTunnel,
    LeaveForeignAgent,
    RemoveEdgeTunnel,
    UseForeignAgent,
)
from mip4.io.executor import LinuxExecutor
from mip4.io.forwarder import Forwarder
from mip4.io.netns import Netns, entered
from mip4.io.rawsock import open_tunnel_socket, open_udp_control, recv_udp
from mip4.io.tun import Tun
from mip4.wire.ip import internet_checksum
from mip4.wire.packets import ipv4_udp_packet

pytestmark = pytest.mark.lab

HA = IPv4Address("10.81.0.2")  # home agent stand-in (and correspondent) in namespace h
FA1_H, FA1_B = IPv4Address("10.81.0.1"), IPv4Address("10.82.0.1")
FA2 = IPv4Address("10.82.0.2")
FA2_LINK = IPv4Address("10.83.0.1")
HOME = IPv4Address("172.20.0.5")
MakeNetns = Callable[[str], Netns]


@dataclass
class Agents:
    h: Netns
    a: Netns
    b: Netns
    n: Netns
    fa: Forwarder
    fb: Forwarder
    ea: LinuxExecutor
    eb: LinuxExecutor
    node_mac: bytes

    def pump(self, until: Callable[[], bool], timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for f in (self.fa, self.fb):
                f.pump_raw(4)
                f.pump_tun()
            if until():
                return True
            time.sleep(0.005)
        return until()


@pytest.fixture
def agents(make_netns: MakeNetns, prefix: str) -> Iterator[Agents]:
    h, a, b, n = (make_netns(x) for x in "habn")
    a.add_veth("a0", "h0", h)
    a.add_veth("a1", "b0", b)
    b.add_veth("b1", "n0", n)
    for ns, ifname, addr in (
        (a, "a0", f"{FA1_H}/24"),
        (h, "h0", f"{HA}/24"),
        (a, "a1", f"{FA1_B}/24"),
        (b, "b0", f"{FA2}/24"),
        (b, "b1", f"{FA2_LINK}/24"),
        (n, "n0", f"{HOME}/32"),
    ):
        ns.add_address(ifname, addr)
        ns.set_up(ifname)
    for ns in (h, a, b, n):
        ns.set_up("lo")
        ns.sysctl("net.ipv4.conf.all.rp_filter", 0)
        ns.sysctl("net.ipv4.conf.default.rp_filter", 0)
    for ns in (a, b):
        ns.sysctl("net.ipv4.ip_forward", 1)
    assert a.wait_up("a0") and a.wait_up("a1") and b.wait_up("b1") and n.wait_up("n0")
    n.add_route("0.0.0.0/0", gateway=FA2_LINK, ifname="n0", onlink=True)
    h.add_route(f"{HOME}/32", gateway=FA1_H, ifname="h0")
    with Tun(f"{prefix}t", a.name) as ta, Tun(f"{prefix}t", b.name) as tb:
        for ns, tun in ((a, ta), (b, tb)):
            ns.sysctl(f"net.ipv4.conf.{tun.name}.rp_filter", 0)
        fa, fb = Forwarder(ta, netns=a.name), Forwarder(tb, netns=b.name)
        ea = LinuxExecutor(a.name, forwarder=fa, own_addresses=frozenset({FA1_H, FA1_B}))
        eb = LinuxExecutor(b.name, forwarder=fb, own_addresses=frozenset({FA2, FA2_LINK}))
        try:
            fa.table.add_peer(HA)  # the home agent's tunnel to FA1 (its visitor)
            yield Agents(h, a, b, n, fa, fb, ea, eb, n.link_address("n0"))
        finally:
            ea.close()
            eb.close()
            fa.close()
            fb.close()


def _ipip(outer_src: IPv4Address, outer_dst: IPv4Address, inner: bytes) -> bytes:
    hdr = bytearray(20)
    hdr[0], hdr[8], hdr[9] = 0x45, 64, 4
    hdr[2:4] = (20 + len(inner)).to_bytes(2, "big")
    hdr[12:16], hdr[16:20] = outer_src.packed, outer_dst.packed
    hdr[10:12] = internet_checksum(hdr).to_bytes(2, "big")
    return bytes(hdr) + inner


def _from_home_agent(t: Agents, payloads: list[bytes]) -> None:
    """What the home agent tunnels to FA1 (the care-of address it still has)."""
    raw = open_tunnel_socket(4, t.h.name)
    try:
        for p in payloads:
            inner = ipv4_udp_packet(HA, HOME, 4000, 4000, p)
            raw.sendto(_ipip(HA, FA1_H, inner), (str(FA1_H), 0))
    finally:
        raw.close()


def test_edge_tunnel_buffers_at_the_new_agent_flushes_in_order_and_carries_both_ways(
    agents: Agents,
) -> None:
    t = agents
    t.eb.execute(InstallEdgeTunnel(HOME, FA1_B, FA2, EdgeRole.TARGET))
    t.eb.execute(BufferPackets(HOME, 4))
    t.ea.execute(InstallEdgeTunnel(HOME, FA2, FA1_B, EdgeRole.SOURCE))
    rx = open_udp_control(t.n.name, port=4000)
    try:
        _from_home_agent(t, [b"early-%d" % i for i in range(6)])
        edge_b = t.fb.edge
        assert edge_b is not None
        assert t.pump(lambda: edge_b.stats["edge_buffered"] == 6)
        assert edge_b.stats["edge_buffer_full"] == 2  # bounded: four held (bicast: the newest)
        assert recv_udp(rx) == []  # nothing reached the node before it arrived
        t.eb.execute(FlushBuffer(HOME, "b1", t.node_mac))
        got: list[bytes] = []

        def received(n: int) -> bool:
            got.extend(g.payload for g in recv_udp(rx))
            return len(got) >= n

        t.pump(lambda: received(4))
        assert got == [b"early-%d" % i for i in range(2, 6)]
        # after the flush: straight to the node through the edge tunnel
        _from_home_agent(t, [b"late"])
        t.pump(lambda: received(5))
        assert got[4:] == [b"late"]
        assert t.fa.stats["delivered_link"] == 0  # FA1 never delivered on its own link
        # the other direction: the node's datagram goes back through the edge tunnel to
        # FA1, which forwards it (no reverse tunnel to the home agent here)
        with entered(t.h.name):
            hs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with hs:
            hs.bind((str(HA), 4001))
            hs.settimeout(0)
            with entered(t.n.name):
                ns_ = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with ns_:
                ns_.bind((str(HOME), 0))
                ns_.sendto(b"from-node", (str(HA), 4001))
                back: list[bytes] = []

                def heard() -> bool:
                    with contextlib.suppress(BlockingIOError):
                        back.append(hs.recv(2048))
                    return bool(back)

                assert t.pump(heard), (t.fa.stats, t.fb.stats)
        assert back == [b"from-node"]
        assert t.fb.stats["encapsulated"] >= 1 and t.fa.edge is not None
        assert t.fa.edge.stats["edge_returned"] == 1
    finally:
        rx.close()
    # teardown: both ends gone, the peers no longer accepted, the rule gone
    t.eb.execute(RemoveEdgeTunnel(HOME, FA1_B))
    t.ea.execute(RemoveEdgeTunnel(HOME, FA2))
    assert int(FA1_B) not in t.fb.table.peers and int(FA2) not in t.fa.table.peers
    assert "172.20.0.5" not in t.b.exec(["ip", "rule"]).stdout
    assert t.fa.edge is not None and t.fa.edge.sources == {}
    assert t.fb.edge is not None and t.fb.edge.reverse == {} and t.fb.edge.arrivals == {}


def test_drop_buffer_discards_what_was_held(agents: Agents) -> None:
    t = agents
    t.eb.execute(InstallEdgeTunnel(HOME, FA1_B, FA2, EdgeRole.TARGET))
    t.eb.execute(BufferPackets(HOME, 8))
    t.ea.execute(InstallEdgeTunnel(HOME, FA2, FA1_B, EdgeRole.SOURCE))
    rx = open_udp_control(t.n.name, port=4000)
    try:
        _from_home_agent(t, [b"x-%d" % i for i in range(3)])
        edge_b = t.fb.edge
        assert edge_b is not None
        assert t.pump(lambda: edge_b.stats["edge_buffered"] == 3)
        t.eb.execute(DropBuffer(HOME))
        assert t.eb.stats["edge_dropped"] == 3
        t.eb.execute(FlushBuffer(HOME, "b1", t.node_mac))
        time.sleep(0.1)
        assert recv_udp(rx) == []
    finally:
        rx.close()


def test_leave_foreign_agent_drops_the_routes_through_it_at_once(agents: Agents) -> None:
    """The mobile node's link-layer trigger: the routes and the neighbour entry through
    the old agent go when the link does, not when a lifetime ends."""
    t = agents
    agent_mac = t.b.link_address("b1")
    with LinuxExecutor(t.n.name) as ex:
        ex.execute(UseForeignAgent("n0", FA2_LINK, agent_mac, HOME))
        routes = t.n.exec(["ip", "route"]).stdout
        assert f"default via {FA2_LINK}" in routes and f"{FA2_LINK} dev n0" in routes
        assert t.n.neighbour("n0", FA2_LINK) is not None
        ex.execute(LeaveForeignAgent("n0", HOME))
        routes = t.n.exec(["ip", "route"]).stdout
        assert "default" not in routes and str(FA2_LINK) not in routes, routes
        assert t.n.neighbour("n0", FA2_LINK) is None
        assert ex.stats["LeaveForeignAgent"] == 1
