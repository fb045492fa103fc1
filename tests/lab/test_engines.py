"""The real engines (HomeAgent, ForeignAgent, MobileNode) on the lab through mip4.io:
the mobile node registers through FA1, then FA2, then with a co-located care-of address in
network C, and comes home; the correspondent reaches its home address at every step, with
the router's ingress filter on (so reverse tunnelling has to work)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest

from mip4.core.engine import Engine
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent
from mip4.core.mobile_node import MnState, MobileNode, ReverseTunnel
from mip4.io.netns import Netns, entered
from mip4.io.runtime import NodeIO
from mip4.lab.backend import Settings
from mip4.lab.build import Lab
from mip4.lab.engines import lab_engine, lab_node_io

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@dataclass
class Nodes:
    lab: Lab
    ha: HomeAgent
    fa1: ForeignAgent
    fa2: ForeignAgent
    mn: MobileNode
    io: dict[str, NodeIO]


@pytest.fixture
def nodes(prefix: str) -> Iterator[Nodes]:
    """The three engines as the lab scenario builds them (reverse tunnelling preferred,
    IP-in-IP, 300 s lifetime), each on its own :class:`NodeIO`."""
    with Lab(prefix[2:], ingress_filter=True) as lab:
        settings = Settings(lab.lab_id)
        engines = {k: lab_engine(lab, k, settings) for k in ("ha", "fa1", "fa2", "mn")}
        ha, fa1, fa2, mn = (engines[k] for k in ("ha", "fa1", "fa2", "mn"))
        assert isinstance(ha, HomeAgent) and isinstance(mn, MobileNode)
        assert isinstance(fa1, ForeignAgent) and isinstance(fa2, ForeignAgent)
        assert mn.config.reverse_tunnel is ReverseTunnel.PREFER and mn.config.lifetime == 300
        io: dict[str, NodeIO] = {}
        try:
            for k in engines:
                io[k] = lab_node_io(lab, k)
            yield Nodes(lab, ha, fa1, fa2, mn, io)
        finally:
            for n in io.values():
                n.close()


class Stream:
    """A TCP connection from the correspondent to the mobile node's home address, paced
    (8 KiB every 20 ms, at most 8 MiB), checked end to end by digest. Kernel TCP on both
    ends: it must survive every handover."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.sent = hashlib.sha256()
        self.received = hashlib.sha256()
        self.n_sent = self.n_received = 0
        self.done = asyncio.Event()
        self.eof = asyncio.Event()

    async def start(self) -> None:
        mn_ip = str(self.lab.address("mn"))
        with entered(self.lab.ns("mn")):
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((mn_ip, 5005))
        srv.listen(1)
        srv.setblocking(False)
        self.server = await asyncio.start_server(self._serve, sock=srv)
        with entered(self.lab.ns("cn")):
            cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(cli, (mn_ip, 5005)), 5)
        _r, self.writer = await asyncio.open_connection(sock=cli)
        self.task = asyncio.create_task(self._send())

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while chunk := await r.read(65536):
            self.received.update(chunk)
            self.n_received += len(chunk)
        self.eof.set()
        w.close()

    async def _send(self) -> None:
        i = 0
        while not self.done.is_set() and self.n_sent < 8 << 20:
            chunk = hashlib.sha256(i.to_bytes(8, "big")).digest() * 256  # 8 KiB
            self.writer.write(chunk)
            self.sent.update(chunk)
            self.n_sent += len(chunk)
            await self.writer.drain()
            await asyncio.sleep(0.02)
            i += 1
        self.writer.write_eof()
        await self.writer.drain()

    async def flows(self, within: float = 10.0) -> bool:
        """Data keeps arriving (TCP may first have to wait out a retransmission timeout
        that grew while the node was between links)."""
        start = self.n_received
        return await _until(lambda: self.n_received > start + 16384, within)

    async def finish(self) -> None:
        self.done.set()
        await asyncio.wait_for(self.task, 20)
        await asyncio.wait_for(self.eof.wait(), 20)
        self.writer.close()
        self.server.close()
        await self.server.wait_closed()


async def _until(pred: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


def test_registration_through_agents_colocated_and_home(nodes: Nodes) -> None:
    n, lab = nodes, nodes.lab
    mn_ip = lab.address("mn")
    mn_if = lab.ifname("mn")
    net_c = lab.topology.network("c")
    assert net_c.colocated is not None
    coa_c = net_c.colocated

    def registered_at(coa: IPv4Address) -> Callable[[], bool]:
        return lambda: n.mn.registered and n.mn.care_of_address == coa

    async def ping_mn(count: int = 3) -> int:
        return len(await asyncio.to_thread(lab.ping, "cn", mn_ip, count=count, timeout=1.0))

    async def main() -> None:
        stop = asyncio.Event()
        engines: dict[str, Engine] = {"ha": n.ha, "fa1": n.fa1, "fa2": n.fa2, "mn": n.mn}
        tasks = {k: asyncio.create_task(n.io[k].run(e, stop)) for k, e in engines.items()}
        await asyncio.sleep(0)
        timings: dict[str, float] = {}
        try:
            # at home: the home agent's advertisements tell the node so
            assert await _until(lambda: n.mn.state is MnState.AT_HOME, 8), n.mn.state
            assert await ping_mn() == 3
            stream = Stream(lab)
            await stream.start()

            for net, fa_key in (("a", "fa1"), ("b", "fa2")):
                moved = time.monotonic()
                await asyncio.to_thread(lab.move, net)
                coa = lab.address(fa_key)
                assert await _until(registered_at(coa), 15), (net, n.mn.state)
                timings[net] = time.monotonic() - moved
                assert await ping_mn() == 3, net
                assert await stream.flows(), net
                fwd = n.io[fa_key].forwarder
                assert fwd is not None and fwd.stats["encapsulated"] > 0  # reverse tunnel

            # network C: no agent; the static assignment gives the co-located address
            moved = time.monotonic()
            await asyncio.to_thread(lab.move, "c")
            mn_ns = n.io["mn"].executor.ns
            mn_ns.add_address(mn_if, coa_c)
            mn_ns.add_route("0.0.0.0/0", gateway=net_c.gateway, replace=True)
            assert await _until(lambda: n.mn.registered and n.mn.care_of_address == coa_c.ip, 15), (
                n.mn.state,
                n.mn.failure_reason,
            )
            timings["c"] = time.monotonic() - moved
            assert await ping_mn() == 3
            assert await stream.flows(), "c"
            mn_fwd = n.io["mn"].forwarder
            assert mn_fwd is not None and mn_fwd.stats["delivered_tun"] >= 3

            # home again
            mn_ns.ipr.addr("del", index=mn_ns.index(mn_if), address=str(coa_c.ip), prefixlen=24)
            await asyncio.to_thread(lab.move, "home")
            assert await _until(lambda: n.mn.state is MnState.AT_HOME, 15), n.mn.state
            assert await _until(lambda: len(n.ha.bindings) == 0, 5)
            assert await ping_mn() == 3
            # the TCP connection opened at home lived through all four moves
            assert await stream.flows(), "home"
            await stream.finish()
            assert stream.n_received == stream.n_sent
            assert stream.received.digest() == stream.sent.digest()
            with Netns(lab.ns("rtr")) as rtr, Netns(lab.ns("mn")) as mn, Netns(lab.ns("ha")) as ha:
                mac = mn.link_address(mn_if)
                held = rtr.neighbour(lab.ifname("rtr", "home"), mn_ip)
                ha_mac = ha.link_address(lab.ifname("ha"))
                assert held == mac, (
                    f"router holds {held!r} for the node; node {mac!r}, home agent {ha_mac!r};"
                    f" home agent actions {dict(n.io['ha'].executor.stats)};"
                    f" mn actions {dict(n.io['mn'].executor.stats)}"
                )
            # the home agent announced the node's own MAC when it deregistered at home
            assert n.io["ha"].executor.stats["GratuitousArp"] == 2
            print("\nlink change -> registered:", {k: f"{v:.2f} s" for k, v in timings.items()})
        finally:
            stop.set()
            drivers = {k: await t for k, t in tasks.items()}
        for key, driver in drivers.items():
            assert driver.stats.get("action_errors", 0) == 0, key
            assert driver.stats.get("reader_errors", 0) == 0, key
            assert driver.stats["events"] > 0, key

    asyncio.run(asyncio.wait_for(main(), 120))
    # back home, nothing mobile is left in the kernel
    with Netns(lab.ns("ha")) as ha:
        assert all(r["dst"] != f"{mn_ip}/32" for r in ha.routes())
    assert lab.exec("ha", ["ip", "neigh", "show", "proxy"]).stdout.strip() == ""
    routes = lab.exec("mn", ["ip", "route"]).stdout
    assert "default via 10.1.0.1" in routes and "10.1.0.0/24 dev" in routes
    assert "lookup 434" not in lab.exec("mn", ["ip", "rule"]).stdout
