"""The Linux executor and the user-space tunnel on the lab, driven by engine actions alone
(no engines yet): a mobile node away from home through a foreign agent, with and without
reverse tunnelling under ingress filtering; co-located in network C; back home."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TypeVar

import pytest

from mip4.core.actions import (
    AtHome,
    GratuitousArp,
    InstallBinding,
    InstallVisitor,
    ProxyArp,
    RemoveBinding,
    RemoveVisitor,
    UseColocatedAddress,
    UseForeignAgent,
)
from mip4.io.executor import LinuxExecutor
from mip4.io.forwarder import Forwarder
from mip4.io.netns import Netns
from mip4.io.tun import Tun
from mip4.lab.build import Lab

pytestmark = pytest.mark.lab
T = TypeVar("T")


@dataclass
class Agent:
    ns: Netns
    tun: Tun | None
    fwd: Forwarder | None
    ex: LinuxExecutor

    def close(self) -> None:
        self.ex.close()
        if self.fwd is not None:
            self.fwd.close()
        if self.tun is not None:
            self.tun.close()
        self.ns.close()


@dataclass
class World:
    lab: Lab
    ha: Agent
    fa: Agent
    mn: Agent
    mn_mac: bytes
    ha_mac: bytes
    fa_mac: bytes


def _agent(lab: Lab, key: str, *, tunnel: bool, source: IPv4Address | None = None) -> Agent:
    name = lab.ns(key)
    ns = Netns(name)
    tun = Tun(f"{lab.prefix}t", name) if tunnel else None
    fwd = Forwarder(tun, netns=name) if tun is not None else None
    ex = LinuxExecutor(
        name,
        forwarder=fwd,
        tunnel_source=source,
        home_gateway=lab.topology.network("home").gateway,
    )
    return Agent(ns, tun, fwd, ex)


@pytest.fixture
def world(prefix: str) -> Iterator[World]:
    with Lab(prefix[2:], ingress_filter=True) as lab:
        agents: list[Agent] = []
        try:
            agents.append(_agent(lab, "ha", tunnel=True, source=lab.address("ha")))
            agents.append(_agent(lab, "fa1", tunnel=True))
            agents.append(_agent(lab, "mn", tunnel=True))
            ha, fa, mn = agents
            yield World(
                lab,
                ha,
                fa,
                mn,
                mn.ns.link_address(lab.ifname("mn")),
                ha.ns.link_address(lab.ifname("ha")),
                fa.ns.link_address(lab.ifname("fa1")),
            )
        finally:
            for agent in agents:
                agent.close()


def _run(w: World, body: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        loop = asyncio.get_running_loop()
        fwds = [a.fwd for a in (w.ha, w.fa, w.mn) if a.fwd is not None]
        for f in fwds:
            f.attach(loop)
        try:
            return await asyncio.wait_for(body(), 60)
        finally:
            for f in fwds:
                f.detach()

    return asyncio.run(main())


async def _ping(lab: Lab, node: str, dst: IPv4Address, count: int = 2) -> int:
    return len(await asyncio.to_thread(lab.ping, node, dst, count=count, timeout=2.0))


async def _until(pred: Callable[[], bool], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()


def test_away_through_a_foreign_agent_then_home(world: World) -> None:
    w, lab = world, world.lab
    mn_ip, ha_ip, fa_ip = (lab.address(k) for k in ("mn", "ha", "fa1"))
    mn_if, ha_if, fa_if = lab.ifname("mn"), lab.ifname("ha"), lab.ifname("fa1")
    rtr = Netns(lab.ns("rtr"))
    rtr_home = lab.ifname("rtr", "home")
    assert w.ha.fwd is not None and w.fa.fwd is not None

    async def body() -> None:
        assert await _ping(lab, "cn", mn_ip) == 2  # at home: the router learns its MAC
        assert rtr.neighbour(rtr_home, mn_ip) == w.mn_mac

        lab.move("a")
        w.mn.ex.execute(UseForeignAgent(mn_if, fa_ip, w.fa_mac, mn_ip))
        w.fa.ex.execute(InstallVisitor(mn_ip, fa_if, w.mn_mac, ha_ip, fa_ip))
        w.ha.ex.execute(InstallBinding(mn_ip, fa_ip))
        w.ha.ex.execute(ProxyArp(ha_if, mn_ip, True))
        w.ha.ex.execute(GratuitousArp(ha_if, mn_ip))
        # the router now sends the home address to the home agent
        assert await _until(lambda: rtr.neighbour(rtr_home, mn_ip) == w.ha_mac)

        # requests are tunnelled and delivered, but the router's ingress filter drops the
        # replies the mobile node sends from its home address on network A
        assert await _ping(lab, "cn", mn_ip) == 0
        assert w.ha.fwd is not None and w.fa.fwd is not None
        assert w.ha.fwd.stats["encapsulated"] >= 2
        assert w.fa.fwd.stats["delivered_link"] >= 2

        # reverse tunnelling (RFC 3024) gets them through
        w.fa.ex.execute(RemoveVisitor(mn_ip, fa_if))
        w.fa.ex.execute(InstallVisitor(mn_ip, fa_if, w.mn_mac, ha_ip, fa_ip, reverse_tunnel=True))
        w.ha.ex.execute(InstallBinding(mn_ip, fa_ip, reverse_tunnel=True))
        assert await _ping(lab, "cn", mn_ip, count=3) == 3
        assert w.fa.fwd.stats["encapsulated"] >= 3
        assert w.ha.fwd.stats["delivered_tun"] >= 3
        assert f"from {mn_ip} iif {fa_if} lookup 434" in lab.exec("fa1", ["ip", "rule"]).stdout
        # the mobile node never ARPed on the foreign link: its only neighbour is the agent,
        # from the advertisement, permanent
        neigh = lab.exec("mn", ["ip", "neigh", "show", "dev", mn_if]).stdout.strip()
        assert neigh.splitlines() == [f"{fa_ip} lladdr {w.fa_mac.hex(':')} PERMANENT"]
        # the agent reaches the visitor by the hardware address its registration carried
        assert w.fa.ns.neighbour(fa_if, mn_ip) == w.mn_mac
        lab.exec("fa1", ["ip", "neigh", "del", str(mn_ip), "dev", fa_if], check=True)
        # ... and the node does not answer ARP for its home address there (RFC 5944 §4.6):
        # FA1 ARPs for it on the link (a host route there, for its own address as source)
        w.fa.ns.add_route(f"{mn_ip}/32", ifname=fa_if, table=77)
        w.fa.ns.add_rule(src=fa_ip, table=77, priority=77)
        arp_ignore = f"net.ipv4.conf.{mn_if}.arp_ignore"
        assert w.mn.ns.read_sysctl(arp_ignore) == "2"
        assert len(await asyncio.to_thread(lab.ping, "fa1", mn_ip, src=fa_ip)) == 0
        assert w.fa.ns.neighbour(fa_if, mn_ip) is None
        # control: a node that answers (arp_ignore 0) is found the same way
        w.mn.ns.sysctl(arp_ignore, 0, restore=False)
        lab.exec("fa1", ["ip", "neigh", "flush", "dev", fa_if])
        assert len(await asyncio.to_thread(lab.ping, "fa1", mn_ip, src=fa_ip, timeout=3)) == 1
        assert w.fa.ns.neighbour(fa_if, mn_ip) == w.mn_mac
        w.mn.ns.sysctl(arp_ignore, 2, restore=False)
        w.fa.ns.undo()
        lab.exec("fa1", ["ip", "neigh", "flush", "dev", fa_if])

        # home again
        lab.move("home")
        w.mn.ex.execute(AtHome(mn_if, mn_ip))
        w.ha.ex.execute(RemoveBinding(mn_ip))
        w.ha.ex.execute(ProxyArp(ha_if, mn_ip, False))
        w.fa.ex.execute(RemoveVisitor(mn_ip, fa_if))
        w.mn.ex.execute(GratuitousArp(mn_if, mn_ip))
        assert await _until(lambda: rtr.neighbour(rtr_home, mn_ip) == w.mn_mac)
        before = w.ha.fwd.stats["encapsulated"]
        assert await _ping(lab, "cn", mn_ip) == 2
        assert w.ha.fwd.stats["encapsulated"] == before
        assert "10.1.0.0/24 dev" in lab.exec("mn", ["ip", "route"]).stdout
        assert "default via 10.1.0.1" in lab.exec("mn", ["ip", "route"]).stdout

    try:
        _run(w, body)
    finally:
        rtr.close()
    assert str(mn_ip) not in lab.exec("ha", ["ip", "route"]).stdout
    assert lab.exec("ha", ["ip", "neigh", "show", "proxy"]).stdout.strip() == ""
    assert "lookup 434" not in lab.exec("fa1", ["ip", "rule"]).stdout


def test_colocated_care_of_address_with_reverse_tunnel(world: World) -> None:
    w, lab = world, world.lab
    mn_ip, ha_ip, cn_ip = lab.address("mn"), lab.address("ha"), lab.address("cn")
    mn_if, ha_if = lab.ifname("mn"), lab.ifname("ha")
    net_c = lab.topology.network("c")
    assert net_c.colocated is not None
    coa = net_c.colocated.ip

    async def body() -> None:
        lab.move("c")
        # the static "DHCP-less" assignment of network C
        w.mn.ns.add_address(mn_if, net_c.colocated)  # type: ignore[arg-type]
        w.mn.ns.add_route("0.0.0.0/0", gateway=net_c.gateway, replace=True)
        w.mn.ex.execute(UseColocatedAddress(mn_if, coa, ha_ip, mn_ip, reverse_tunnel=True))
        w.ha.ex.execute(InstallBinding(mn_ip, coa, reverse_tunnel=True))
        w.ha.ex.execute(ProxyArp(ha_if, mn_ip, True))
        w.ha.ex.execute(GratuitousArp(ha_if, mn_ip))
        assert await _ping(lab, "cn", mn_ip, count=3) == 3
        assert w.mn.fwd is not None and w.ha.fwd is not None
        assert w.mn.fwd.stats["delivered_tun"] >= 3  # decapsulated on the node itself
        assert w.mn.fwd.stats["encapsulated"] >= 3  # and reverse-tunnelled
        assert w.ha.fwd.stats["delivered_tun"] >= 3
        # the mobile node's own traffic from its home address goes through the tunnel too
        assert await _ping(lab, "mn", cn_ip) == 2

    _run(w, body)
