"""Issue 13, end to end: an agent's NodeIO (no link monitor) keeps the interface's hardware
address for its gratuitous ARPs once attached to a driver, reads the namespace's link
notifications on the loop, and announces the new address after the link's changed."""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

import mip4.io.rawsock as rawsock
from mip4.core.actions import Action, GratuitousArp
from mip4.core.counters import Counters
from mip4.core.events import Event
from mip4.io.driver import EngineDriver
from mip4.io.netns import Netns, entered, netns_exec
from mip4.io.rawsock import ETH_P_ARP
from mip4.io.runtime import NodeIO

pytestmark = pytest.mark.lab

ADDRESS = IPv4Address("10.1.0.16")


class Idle:
    def handle(self, event: Event, now: float) -> list[Action]:
        return []

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float | None:
        return None

    @property
    def counters(self) -> Counters:
        return Counters()


def _announced(cap: socket.socket) -> str:
    ready, _, _ = select.select([cap], [], [], 2.0)
    assert ready, "no ARP frame"
    return cap.recv(2048)[8:14].hex(":")


def test_the_new_address_is_announced_after_a_change(
    make_netns: Callable[[str], Netns], monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = make_netns("rt")
    ns.add_veth("v0", "v1")
    netns_exec(ns.name, ["ip", "link", "set", "v0", "address", "02:00:00:00:0a:01"])
    ns.set_up("v0")
    ns.set_up("v1")
    with entered(ns.name):
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ARP))
    cap.bind(("v1", ETH_P_ARP))
    asked: list[str] = []
    real = rawsock.hardware_address

    def counting(sock: socket.socket, interface: str) -> bytes:
        asked.append(interface)
        return real(sock, interface)

    monkeypatch.setattr(rawsock, "hardware_address", counting)
    io = NodeIO.open(ns.name, ["v0"])
    try:
        assert io.linkmon is None and io.link_changes is not None

        async def go() -> list[str]:
            driver = EngineDriver(Idle(), io.executor)
            io.attach(driver)
            seen = []
            for _ in range(2):
                io.executor.execute(GratuitousArp("v0", ADDRESS, None, 1))
                seen.append(_announced(cap))
            netns_exec(ns.name, ["ip", "link", "set", "v0", "address", "02:00:00:00:0b:02"])
            for _ in range(50):  # the loop reads the notification (bounded wait)
                await asyncio.sleep(0.02)
                if len(asked) == 1 and not rawsock._HARDWARE.get(io.executor.packet):
                    break
            io.executor.execute(GratuitousArp("v0", ADDRESS, None, 1))
            seen.append(_announced(cap))
            driver.close()
            return seen

        seen = asyncio.run(go())
        assert seen == ["02:00:00:00:0a:01", "02:00:00:00:0a:01", "02:00:00:00:0b:02"]
        assert asked == ["v0", "v0"]  # once before the change, once after
    finally:
        io.close()
        cap.close()
