"""NodeIO opens one node's I/O in a namespace and gives every change back on close."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.core.actions import Action, ProxyArp, SendUdp
from mip4.core.events import Event, LinkUp, UdpReceived
from mip4.io.netns import Netns, entered
from mip4.io.runtime import NodeIO
from mip4.io.undo import Journal, SysctlRecord, load_journal

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


@dataclass
class Answerer:
    """Answers a UDP datagram that says ``valid`` (as an engine answers a request that
    authenticates); drops the rest at once, as forged requests are."""

    forged: int = 0
    answered: list[bytes] = field(default_factory=list)

    def handle(self, event: Event, now: float) -> list[Action]:
        if not isinstance(event, UdpReceived):
            return []
        if not event.payload.startswith(b"valid"):
            self.forged += 1
            return []
        self.answered.append(event.payload)
        return [SendUdp(event.src, event.payload, dport=event.sport, sport=event.dport)]

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float | None:
        return None


def test_a_valid_request_after_a_burst_of_forged_ones_is_answered(
    make_netns: Callable[[str], Netns],
) -> None:
    """Issue 9 item 5: 2,000 forged requests arrive before the daemon reads its UDP 434
    socket, then one valid request. The control socket's receive buffer is sized (2 MiB,
    like the raw sockets') so the valid one is still queued, read and answered."""
    ns, peer = make_netns("n"), make_netns("p")
    ns.add_veth("n0", "p0", peer)
    ns.add_address("n0", "10.75.0.1/24")
    peer.add_address("p0", "10.75.0.2/24")
    ns.set_up("n0")
    peer.set_up("p0")
    assert ns.wait_up("n0") and peer.wait_up("p0")
    io = NodeIO.open(ns.name, ["n0"], port=4434)
    try:
        assert io.udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 1 << 21
        with entered(peer.name):
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with client:
            client.bind(("10.75.0.2", 4435))
            client.settimeout(5)
            forged = bytes([1, 0x02]) + bytes(26) + bytes(range(36))  # request-sized
            for _ in range(2_000):
                client.sendto(forged, ("10.75.0.1", 4434))
            client.sendto(b"valid request", ("10.75.0.1", 4434))
            engine = Answerer()

            async def main() -> None:
                stop = asyncio.Event()
                task = asyncio.create_task(io.run(engine, stop))
                for _ in range(500):
                    await asyncio.sleep(0.01)
                    if engine.answered:
                        break
                stop.set()
                await task

            asyncio.run(main())
            assert engine.answered == [b"valid request"], engine.forged
            assert engine.forged == 2_000
            assert client.recvfrom(100) == (b"valid request", ("10.75.0.1", 4434))
    finally:
        io.close()


def test_abandon_leaves_the_kernel_state_and_its_journal(
    make_netns: Callable[[str], Netns], prefix: str, tmp_path: Path
) -> None:
    """A crash as the lab simulates it: sockets and TUN device close, the kernel state and
    the journal stay; the journal's records then undo it (the leftover cleaner's way), and
    forwarding gets back the value it had before."""
    ns, peer = make_netns("n"), make_netns("p")
    ns.add_veth("n0", "p0", peer)
    ns.add_address("n0", "10.76.0.1/24")
    ns.set_up("n0")
    ns.sysctl("net.ipv4.ip_forward", 0, restore=False)
    tun = f"{prefix}t"
    path = tmp_path / "fa.undo.json"
    io = NodeIO.open(ns.name, ["n0"], tun_name=tun, forwarding=True, journal=Journal(path))
    io.executor.execute(ProxyArp("n0", IPv4Address("10.76.0.99"), True))
    io.abandon()
    assert tun not in ns.exec(["ip", "-o", "link"]).stdout
    assert ns.read_sysctl("net.ipv4.ip_forward") == "1"
    assert "10.76.0.99" in ns.exec(["ip", "neigh", "show", "proxy"]).stdout
    records = load_journal(path)
    assert SysctlRecord("net.ipv4.ip_forward", "0") in records
    with Netns(ns.name) as cleaner:
        done = [r.describe() for r in reversed(records) if cleaner.undo_record(r)]
    assert "proxy neighbour 10.76.0.99 dev n0" in done
    assert ns.read_sysctl("net.ipv4.ip_forward") == "0"
    assert ns.exec(["ip", "neigh", "show", "proxy"]).stdout.strip() == ""
