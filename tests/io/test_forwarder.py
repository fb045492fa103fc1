"""The user-space IP-in-IP tunnel between two namespaces: TUN + raw protocol-4 sockets +
the dataplane encapsulation, carrying a ping and a real kernel TCP connection."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TypeVar

import pytest

from mip4.dataplane.common import Encapsulation, Tunnel
from mip4.dataplane.table import LinkDelivery, TunnelEntry
from mip4.io.forwarder import Forwarder
from mip4.io.icmpsock import ping
from mip4.io.netns import Netns, entered
from mip4.io.rawsock import open_tunnel_socket, open_udp_control, recv_udp
from mip4.io.tun import Tun
from mip4.wire.ip import internet_checksum
from mip4.wire.packets import ipv4_udp_packet

pytestmark = pytest.mark.lab

X, Y = IPv4Address("10.80.0.1"), IPv4Address("10.80.0.2")  # tunnel end points
IX, IY = IPv4Address("192.168.200.1"), IPv4Address("192.168.200.2")  # inner addresses
MakeNetns = Callable[[str], Netns]
T = TypeVar("T")


@dataclass
class Tunnelled:
    x: Netns
    y: Netns
    fx: Forwarder
    fy: Forwarder


@pytest.fixture
def tunnelled(make_netns: MakeNetns, prefix: str) -> Iterator[Tunnelled]:
    x, y = make_netns("x"), make_netns("y")
    x.add_veth("x0", "y0", y)
    for ns, ifname, addr in ((x, "x0", X), (y, "y0", Y)):
        ns.add_address(ifname, f"{addr}/24")
        ns.set_up(ifname)
        ns.set_up("lo")
    assert x.wait_up("x0") and y.wait_up("y0")
    with (
        Tun(f"{prefix}t", x.name, address=f"{IX}/32") as tx,
        Tun(f"{prefix}t", y.name, address=f"{IY}/32") as ty,
    ):
        x.add_route(f"{IY}/32", ifname=tx.name)
        y.add_route(f"{IX}/32", ifname=ty.name)
        fx = Forwarder(tx, netns=x.name)
        fy = Forwarder(ty, netns=y.name)
        try:
            fx.table.add_binding(IY, TunnelEntry(Tunnel(X, Y)))
            fy.table.add_binding(IX, TunnelEntry(Tunnel(Y, X)))
            yield Tunnelled(x, y, fx, fy)
        finally:
            fx.close()
            fy.close()


async def _with_forwarders(t: Tunnelled, coro: Callable[[], Awaitable[T]]) -> T:
    loop = asyncio.get_running_loop()
    t.fx.attach(loop)
    t.fy.attach(loop)
    try:
        return await asyncio.wait_for(coro(), 30)
    finally:
        t.fx.detach()
        t.fy.detach()


@pytest.mark.parametrize("encapsulation", list(Encapsulation))
def test_ping_through_the_tunnel(tunnelled: Tunnelled, encapsulation: Encapsulation) -> None:
    t = tunnelled
    key = 0x1234 if encapsulation is Encapsulation.GRE else None
    t.fx.table.add_binding(IY, TunnelEntry(Tunnel(X, Y, gre_key=key), encapsulation))
    t.fy.table.add_binding(IX, TunnelEntry(Tunnel(Y, X, gre_key=key), encapsulation))

    async def go() -> list[float]:
        return await asyncio.to_thread(ping, IY, netns=t.x.name, count=3, timeout=2, src=IX)

    rtts = asyncio.run(_with_forwarders(t, go))
    assert len(rtts) == 3
    # each direction arrived on the raw socket of the chosen protocol
    proto = f"raw_read_{int(encapsulation)}"
    assert t.fx.stats[proto] == t.fy.stats[proto] == t.fx.stats["raw_read"] == 3
    # the request went X -> Y and the reply Y -> X, both encapsulated
    assert t.fx.stats["encapsulated"] == 3 and t.fy.stats["delivered_tun"] == 3
    assert t.fy.stats["encapsulated"] == 3 and t.fx.stats["delivered_tun"] == 3
    assert t.fx.stats["decap_unknown_peer"] == 0


def test_tcp_connection_through_the_tunnel(tunnelled: Tunnelled) -> None:
    """A kernel TCP stack on both ends; bounded transfer (4 MiB) checked by digest."""
    t = tunnelled
    payload = os.urandom(4 << 20)

    async def go() -> float:
        with entered(t.y.name):
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((str(IY), 5001))
        srv.listen(1)
        srv.setblocking(False)

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            h, n = hashlib.sha256(), 0
            while chunk := await r.read(65536):
                h.update(chunk)
                n += len(chunk)
            w.write(n.to_bytes(8, "big") + h.digest())
            await w.drain()
            w.close()

        server = await asyncio.start_server(handle, sock=srv)
        try:
            with entered(t.x.name):
                cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            cli.setblocking(False)
            cli.bind((str(IX), 0))
            start = time.monotonic()
            await asyncio.get_running_loop().sock_connect(cli, (str(IY), 5001))
            r, w = await asyncio.open_connection(sock=cli)
            for i in range(0, len(payload), 256 << 10):
                w.write(payload[i : i + (256 << 10)])
                await w.drain()
            w.write_eof()
            answer = await r.readexactly(40)
            elapsed = time.monotonic() - start
            w.close()
            assert int.from_bytes(answer[:8], "big") == len(payload)
            assert answer[8:] == hashlib.sha256(payload).digest()
            return elapsed
        finally:
            server.close()
            await server.wait_closed()

    elapsed = asyncio.run(_with_forwarders(t, go))
    mbit = len(payload) * 8 / elapsed / 1e6
    print(f"\nuser-space IP-in-IP TCP goodput: {mbit:.0f} Mbit/s ({elapsed:.2f} s for 4 MiB)")
    segments = len(payload) // (1472 - 40)  # full-sized TCP segments through a 1472 MTU
    assert t.fx.stats["encapsulated"] >= segments
    assert t.fy.stats["delivered_tun"] >= segments
    assert t.fy.stats["decap_unknown_peer"] == t.fx.stats["decap_unknown_peer"] == 0


def _ipip(outer_src: IPv4Address, outer_dst: IPv4Address, inner: bytes) -> bytes:
    hdr = bytearray(20)
    hdr[0], hdr[8], hdr[9] = 0x45, 64, 4
    hdr[2:4] = (20 + len(inner)).to_bytes(2, "big")
    hdr[12:16], hdr[16:20] = outer_src.packed, outer_dst.packed
    hdr[10:12] = internet_checksum(hdr).to_bytes(2, "big")
    return bytes(hdr) + inner


def _udp_in_ip(src: IPv4Address, dst: IPv4Address, data: bytes) -> bytes:
    return ipv4_udp_packet(src, dst, 4000, 4000, data)


def test_unknown_tunnel_peers_are_dropped(tunnelled: Tunnelled) -> None:
    """RFC 2003 §6.2: only decapsulate from a peer we have a tunnel with."""
    t = tunnelled
    t.y.add_address("y0", "10.80.0.66/24")
    raw = open_tunnel_socket(4, t.y.name)
    try:
        inner = _udp_in_ip(IY, IX, b"spoofed")
        raw.sendto(_ipip(IPv4Address("10.80.0.66"), X, inner), (str(X), 0))
        raw.sendto(_ipip(Y, X, _udp_in_ip(IY, IX, b"genuine")), (str(X), 0))
        deadline = time.monotonic() + 3
        while t.fx.stats["raw_read"] < 2 and time.monotonic() < deadline:
            t.fx.pump_raw(4)
            time.sleep(0.01)
        assert t.fx.stats["decap_unknown_peer"] == 1
        assert t.fx.stats["delivered_tun"] == 1
    finally:
        raw.close()


def test_a_home_agent_decapsulates_only_sources_bound_to_the_care_of_address(
    tunnelled: Tunnelled,
) -> None:
    """RFC 3024 §4.3 (as the bpf plane's decap_not_bound): from a known peer, a reverse-
    tunnelled datagram whose inner source has no binding to that care-of address is
    dropped -- the home agent is no open relay for whoever can reach it."""
    t = tunnelled
    raw = open_tunnel_socket(4, t.y.name)
    try:
        stranger = IPv4Address("192.168.200.99")
        raw.sendto(_ipip(Y, X, _udp_in_ip(stranger, IX, b"not bound")), (str(X), 0))
        raw.sendto(_ipip(Y, X, _udp_in_ip(IY, IX, b"bound")), (str(X), 0))
        deadline = time.monotonic() + 3
        while t.fx.stats["raw_read"] < 2 and time.monotonic() < deadline:
            t.fx.pump_raw(4)
            time.sleep(0.01)
        assert t.fx.stats["decap_not_bound"] == 1
        assert t.fx.stats["delivered_tun"] == 1
    finally:
        raw.close()


def test_decapsulated_datagrams_reach_a_visitor_by_hardware_address(
    tunnelled: Tunnelled, make_netns: MakeNetns
) -> None:
    """Foreign-agent delivery (RFC 5944 §4.2.2): Y decapsulates and sends the inner
    datagram straight to the visitor's MAC; Y has no route to and no ARP entry for it."""
    t = tunnelled
    z = make_netns("z")
    t.y.add_veth("y1", "z0", z)
    t.y.set_up("y1")
    home = IPv4Address("172.20.0.5")
    z.add_address("z0", f"{home}/32")
    z.set_up("z0")
    zmac = z.link_address("z0")
    assert t.y.wait_up("y1") and z.wait_up("z0")
    t.fy.table.set_visitor(home, LinkDelivery("y1", zmac))
    t.fx.table.add_binding(home, TunnelEntry(Tunnel(X, Y), Encapsulation.IPIP))
    t.x.add_route(f"{home}/32", ifname=t.fx.tun.name)
    rx = open_udp_control(z.name, port=4000)
    with entered(t.x.name):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tx.bind((str(IX), 0))
        for i in range(5):
            tx.sendto(b"to-visitor-%d" % i, (str(home), 4000))
        got: list[bytes] = []
        deadline = time.monotonic() + 3
        while len(got) < 5 and time.monotonic() < deadline:
            t.fx.pump_tun()
            t.fy.pump_raw(4)
            got += [g.payload for g in recv_udp(rx)]
            time.sleep(0.01)
        assert got == [b"to-visitor-%d" % i for i in range(5)], (t.fx.stats, t.fy.stats)
        assert t.fy.stats["delivered_link"] == 5
        assert t.y.neighbour("y1", home) is None
        assert "172.20.0.5" not in t.y.exec(["ip", "route"]).stdout
    finally:
        tx.close()
        rx.close()


def test_too_big_for_the_tunnel_is_answered_with_fragmentation_needed(
    tunnelled: Tunnelled,
) -> None:
    """RFC 2003 §5.1: with a 1500-byte TUN MTU and a 1500-byte path, a full-sized DF
    datagram cannot be tunnelled; the sender gets ICMP "fragmentation needed" with
    1500 - 20 and its kernel lowers the path MTU, so the next datagram fits."""
    t = tunnelled
    t.x.set_mtu(t.fx.tun.name, 1500)
    t.fx.tunnel_mtu = 1500
    with entered(t.x.name):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO
        s.bind((str(IX), 0))
        s.connect((str(IY), 9))
        assert s.getsockopt(socket.IPPROTO_IP, 14) == 1500  # IP_MTU
        s.send(bytes(1472))  # 1500 bytes with headers, DF set
        deadline = time.monotonic() + 3
        while t.fx.stats["icmp_frag_needed"] == 0 and time.monotonic() < deadline:
            t.fx.pump_tun()
            time.sleep(0.01)
        assert t.fx.stats["icmp_frag_needed"] == 1
        assert t.fx.stats["encapsulated"] == 0
        deadline = time.monotonic() + 3
        while s.getsockopt(socket.IPPROTO_IP, 14) != 1480 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert s.getsockopt(socket.IPPROTO_IP, 14) == 1480
        # the connected socket also got the error reported (pending EMSGSIZE, once)
        with pytest.raises(OSError) as err:
            s.send(bytes(1452))
        assert err.value.errno == errno.EMSGSIZE
        # and a datagram that fits the tunnel goes through
        s.send(bytes(1452))
        deadline = time.monotonic() + 3
        while t.fx.stats["encapsulated"] == 0 and time.monotonic() < deadline:
            t.fx.pump_tun()
            time.sleep(0.01)
        assert t.fx.stats["encapsulated"] == 1


def test_home_link_broadcasts_reach_the_bindings_that_asked(
    make_netns: Callable[[str], Netns], prefix: str
) -> None:
    """RFC 5944 §4.3: a broadcast on the home link is tunnelled to a binding with B --
    nested in a unicast IP-in-IP datagram to the home address for a foreign agent care-of
    address, as it is for a co-located one. Unicast frames and the agent's own broadcasts
    are not; a binding without B gets nothing."""
    ha, lan = make_netns("h"), make_netns("l")
    ha.add_veth("h0", "l0", lan)
    ha.add_address("h0", "10.81.0.2/24")
    lan.add_address("l0", "10.81.0.1/24")
    lan.add_address("l0", "10.82.0.2/32")  # the care-of address (the tunnel's exit) is here
    ha.set_up("h0")
    lan.set_up("l0")
    assert ha.wait_up("h0") and lan.wait_up("l0")
    ha.add_route("10.82.0.0/24", gateway="10.81.0.1", ifname="h0")
    home, agent, coa = (
        IPv4Address("10.81.0.100"),
        IPv4Address("10.81.0.2"),
        IPv4Address("10.82.0.2"),
    )
    exit_ = open_tunnel_socket(Encapsulation.IPIP, lan.name)
    exit_.settimeout(0.5)
    with entered(lan.name):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"l0")
    with exit_, sender, Tun(f"{prefix}t", ha.name) as tun, Forwarder(tun, netns=ha.name) as fwd:
        fwd.table.add_binding(home, TunnelEntry(Tunnel(agent, coa)))
        fwd.watch_broadcasts("h0")

        def broadcast(payload: bytes, dst: str = "255.255.255.255") -> list[bytes]:
            """Send ``payload`` from the LAN, pump the agent, return what the exit got."""
            sender.sendto(payload, (dst, 9))
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and not fwd.pump_broadcast("h0"):
                time.sleep(0.01)
            got = []
            try:
                while True:
                    got.append(exit_.recv(65535))
            except TimeoutError:
                pass
            return got

        assert broadcast(b"no binding asked") == []
        # a foreign agent care-of address: nested
        fwd.table.set_broadcast(home, coa, True)
        (outer,) = broadcast(b"nested")
        assert outer[9] == 4 and outer[12:16] == agent.packed and outer[16:20] == coa.packed
        middle = outer[20:]
        assert middle[9] == 4 and middle[12:16] == agent.packed and middle[16:20] == home.packed
        inner = middle[20:]
        assert inner[9] == 17 and inner[16:20] == b"\xff" * 4 and inner[28:] == b"nested"
        # its UDP checksum is whole (the sender's veth left it to "hardware")
        pseudo = inner[12:20] + bytes((0, 17)) + (len(inner) - 20).to_bytes(2, "big")
        assert internet_checksum(pseudo + inner[20:]) == 0
        # the directed broadcast of the home network too
        (outer,) = broadcast(b"directed", "10.81.0.255")
        assert outer[40 + 16 : 40 + 20] == bytes([10, 81, 0, 255])
        # a co-located care-of address: the broadcast itself
        fwd.table.set_broadcast(home, coa, False)
        (outer,) = broadcast(b"direct")
        assert outer[16:20] == coa.packed and outer[20 + 9] == 17 and outer[48:] == b"direct"
        # unicast on the home link is not a broadcast
        sender.sendto(b"unicast", ("10.81.0.2", 9))
        time.sleep(0.1)
        fwd.pump_broadcast("h0")
        # nor are the agent's own broadcasts
        with entered(ha.name):
            own = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with own:
            own.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            own.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"h0")
            own.sendto(b"own", ("255.255.255.255", 9))
        time.sleep(0.1)
        fwd.pump_broadcast("h0")
        with pytest.raises(TimeoutError):
            exit_.recv(65535)
        assert fwd.stats["broadcast_forwarded"] == 3
        # the binding stops asking
        fwd.table.set_broadcast(home, None, None)
        assert broadcast(b"stopped") == [] and not fwd.table.broadcast
