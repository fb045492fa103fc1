"""What a first registration leaves in the kernel and the undo journal before its reply
leaves (RFC 5944 §4.6: the home agent proxies and announces the node before it tells the
node it is bound; issue 13 keeps it while making each step cheaper): when the reply's
``sendmsg`` runs, the host route to the TUN device and the proxy neighbour entry have been
requested, the first gratuitous ARP is on the wire, and the journal file holds both
kernel records -- also with the journal's lines held for one write per pass of the loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

import mip4.io.rawsock as rawsock
from mip4.dataplane.table import TunnelTable
from mip4.io.executor import LinuxExecutor
from mip4.io.forwarder import Forwarder
from mip4.io.nlthread import NetlinkThread
from mip4.io.undo import Journal, ProxyNeighbourRecord, RouteRecord, load_journal
from mip4.wire.packets import gratuitous_arp

from ..core import test_home_agent as hat

MAC = b"\x02\x00\x00\x00\x00\x01"


class Trace:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.steps: list[tuple[str, object]] = []


class Netlink:
    """The netlink facade, recording each request in the trace."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def link_lookup(self, *, ifname: str) -> list[int]:
        return [{"tun0": 7, "home0": 3}[ifname]]

    def route(self, command: str, **kw: object) -> list[object]:
        self.trace.steps.append((f"route {command}", kw["dst"]))
        return []

    def neigh(self, command: str, **kw: object) -> list[object]:
        self.trace.steps.append((f"neigh {command}", kw["dst"]))
        return []

    def close(self) -> None:
        pass


class PacketSocket:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def sendto(self, frame: bytes, address: object) -> int:
        self.trace.steps.append(("arp", bytes(frame)))
        return len(frame)


class UdpSocket:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def sendmsg(self, buffers: list[bytes], *args: object) -> int:
        # what the journal file says at the moment the reply leaves
        self.trace.steps.append(("reply", load_journal(self.trace.journal.path)))
        return len(buffers[0])


@pytest.mark.parametrize("held", [False, True])
def test_kernel_state_and_journal_before_the_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    monkeypatch.setattr(rawsock, "hardware_address", lambda _s, _i: MAC)
    journal = Journal(tmp_path / "ha.journal")
    trace = Trace(journal)
    forwarder = SimpleNamespace(table=TunnelTable(), tun=SimpleNamespace(name="tun0"))
    ex = LinuxExecutor(forwarder=cast(Forwarder, forwarder), tunnel_source=hat.HA, journal=journal)
    ex.ns._ipr = cast(NetlinkThread, Netlink(trace))
    ex._packet = cast(Any, PacketSocket(trace))
    ex._udp_by_port[434] = cast(Any, UdpSocket(trace))
    ex._proxy_immediate.add("home0")  # no sysctl: there is no home0 here
    later: list[Callable[[], None]] = []
    ex.call_later = lambda _delay, func: later.append(func)
    soon: list[Callable[[], None]] = []
    if held:
        ex.hold_journal_lines(soon.append)
    ha = hat.make_ha()
    for action in ha.handle(hat.udp(hat.request(lifetime=600)), 0.0):
        ex.execute(action)
    hoa = str(hat.HOA)
    steps = [name for name, _ in trace.steps]
    assert steps == ["route replace", "neigh replace", "arp", "reply"]
    assert trace.steps[0][1] == hoa and trace.steps[1][1] == hoa
    assert trace.steps[2][1] == gratuitous_arp(hat.HOA, MAC)
    assert trace.steps[3][1] == [
        RouteRecord(hoa, 32, 254, 7, None),
        ProxyNeighbourRecord(hoa, 3, "home0"),
    ]
    assert len(later) == 2  # the other two announcements, later
    for func in [*soon, *later]:
        func()
    assert [name for name, _ in trace.steps] == [*steps, "arp", "arp"]
    journal.close()
