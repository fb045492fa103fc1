"""Issue 13, end to end: an agent's NodeIO keeps its control socket's arrival interface
names across reads (one SIOCGIFNAME per read before) and asks again after a link
notification: a datagram that arrives after its interface was renamed carries the new
name."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

import mip4.io.rawsock as rawsock
from mip4.core.actions import Action
from mip4.core.counters import Counters
from mip4.core.events import Event, UdpReceived
from mip4.io.driver import EngineDriver
from mip4.io.netns import Netns, netns_exec
from mip4.io.rawsock import open_udp_control, send_udp
from mip4.io.runtime import NodeIO

pytestmark = pytest.mark.lab

A, B = IPv4Address("10.77.0.1"), IPv4Address("10.77.0.2")


class Recording:
    def __init__(self) -> None:
        self.interfaces: list[str] = []

    def handle(self, event: Event, now: float) -> list[Action]:
        if isinstance(event, UdpReceived):
            self.interfaces.append(event.interface)
        return []

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float | None:
        return None

    @property
    def counters(self) -> Counters:
        return Counters()


def test_a_renamed_interface_is_named_anew(
    make_netns: Callable[[str], Netns], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_netns("a"), make_netns("b")
    a.add_veth("v0", "w0", b)
    for ns, ifname, addr in ((a, "v0", A), (b, "w0", B)):
        ns.add_address(ifname, f"{addr}/24")
        ns.set_up(ifname)
    assert a.wait_up("v0") and b.wait_up("w0")
    asked: list[int] = []
    real = rawsock.if_name

    def counting(sock: socket.socket, index: int) -> str:
        asked.append(index)
        return real(sock, index)

    monkeypatch.setattr(rawsock, "if_name", counting)
    client = open_udp_control(b.name, port=4343)
    io = NodeIO.open(a.name, ["v0"], port=4344)
    engine = Recording()
    try:
        assert io.linkmon is None and io.link_changes is not None

        async def until(n: int) -> None:
            deadline = time.monotonic() + 3
            while len(engine.interfaces) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(engine.interfaces) == n

        async def go() -> None:
            driver = EngineDriver(engine, io.executor)
            io.attach(driver)
            for i in range(3):  # three reads, one name asked
                send_udp(client, b"x", A, 4344)
                await until(i + 1)
            netns_exec(a.name, ["ip", "link", "set", "v0", "down"])
            netns_exec(a.name, ["ip", "link", "set", "v0", "name", "v9"])
            netns_exec(a.name, ["ip", "link", "set", "v9", "up"])
            assert a.wait_up("v9")
            await asyncio.sleep(0.2)  # the loop reads the link notifications
            deadline = time.monotonic() + 3
            while len(engine.interfaces) < 4 and time.monotonic() < deadline:
                send_udp(client, b"y", A, 4344)  # until the route is back
                await asyncio.sleep(0.05)
            driver.close()

        asyncio.run(go())
    finally:
        io.close()
        client.close()
    assert engine.interfaces[:3] == ["v0"] * 3
    assert engine.interfaces[3:] and set(engine.interfaces[3:]) == {"v9"}
    assert len(asked) == 2  # once before the rename, once after
