"""NodeIO opens one node's I/O in a namespace and gives every change back on close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest

from mip4.core.actions import Action, ProxyArp
from mip4.core.events import Event, LinkUp
from mip4.io.netns import Netns
from mip4.io.runtime import NodeIO

pytestmark = pytest.mark.lab


@dataclass
class Once:
    """Asks for proxy ARP on the first LinkUp, records every event."""

    events: list[Event] = field(default_factory=list)

    def handle(self, event: Event, now: float) -> list[Action]:
        self.events.append(event)
        if isinstance(event, LinkUp) and len(self.events) == 1:
            return [ProxyArp(event.interface, IPv4Address("10.74.0.99"), True)]
        return []

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float | None:
        return None


def test_open_run_close(make_netns: Callable[[str], Netns], prefix: str) -> None:
    ns, peer = make_netns("n"), make_netns("p")
    ns.add_veth("n0", "p0", peer)
    ns.add_address("n0", "10.74.0.1/24")
    ns.set_up("n0")
    peer.set_up("p0")
    assert ns.wait_up("n0")
    tun = f"{prefix}t"
    io = NodeIO.open(
        ns.name,
        ["n0"],
        tun_name=tun,
        tunnel_source=IPv4Address("10.74.0.1"),
        link_sources=True,
        forwarding=True,
        icmp_errors=True,
        watch_links=True,
    )
    try:
        assert ns.read_sysctl("net.ipv4.ip_forward") == "1"
        assert ns.read_sysctl(f"net.ipv4.conf.{tun}.rp_filter") == "0"
        assert io.current_links() == [LinkUp("n0", IPv4Address("10.74.0.1"), 24)]
        engine = Once()

        async def main() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(io.run(engine, stop))
            for _ in range(100):
                await asyncio.sleep(0.01)
                if engine.events:
                    break
            stop.set()
            await task

        asyncio.run(main())
        assert engine.events[0] == LinkUp("n0", IPv4Address("10.74.0.1"), 24)
        assert "10.74.0.99 dev n0 proxy" in ns.exec(["ip", "neigh", "show", "proxy"]).stdout
    finally:
        io.close()
    # everything given back: forwarding off again, proxy entry gone, TUN device gone
    assert ns.read_sysctl("net.ipv4.ip_forward") == "0"
    assert ns.exec(["ip", "neigh", "show", "proxy"]).stdout.strip() == ""
    assert tun not in ns.exec(["ip", "-o", "link"]).stdout
