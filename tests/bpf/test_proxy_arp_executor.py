"""``ProxyArp`` with the bpf fast path (RFC 5944 §4.6): the home agent's executor makes a
``mip4_proxy`` entry (the program answers) instead of a kernel proxy neighbour entry, and
deletes it when the node is back; the entry is there before the first gratuitous ARP goes
out and before the reply, with the actions held (one read, issue 13) or not.

* an interface the fast path is not attached to, or a full map: the kernel entry, as with
  the user-space plane (``tests/io/test_first_registration_order.py`` checks that one);
* no ``proxy_delay`` sysctl on the fast path (the program answers at once; the test's
  ``home0`` does not exist, so a sysctl would fail).

A real loaded object (its maps), no attachment, no namespace: the netlink facade and the
packet and UDP sockets are recording stand-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address
from types import SimpleNamespace
from typing import Any, cast

import pytest

import mip4.io.rawsock as rawsock
from mip4.core.actions import Action, ProxyArp
from mip4.dataplane.table import TunnelTable
from mip4.io.bpf.agent import FastPath, Role
from mip4.io.bpf.plane import BpfPlane
from mip4.io.executor import LinuxExecutor
from mip4.io.forwarder import Forwarder
from mip4.io.netns import NetnsError
from mip4.io.nlthread import NetlinkThread
from mip4.wire.packets import gratuitous_arp

from ..core import test_home_agent as hat

HOME0 = 3  #: the home link's interface index (the stand-in netlink's)
HA_MAC = bytes.fromhex("020000001234")  #: its hardware address
NODE_MAC = bytes.fromhex("020000000010")


class Trace:
    def __init__(self, plane: BpfPlane) -> None:
        self.plane = plane
        self.steps: list[tuple[str, object]] = []

    def proxies(self) -> dict[tuple[IPv4Address, int], bytes]:
        return self.plane.proxies()


class Netlink:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def link_lookup(self, *, ifname: str) -> list[int]:
        known = {"tun0": 7, "home0": HOME0}
        return [known[ifname]] if ifname in known else []

    def link(self, command: str, *, index: int) -> list[dict[str, str]]:
        assert (command, index) == ("get", HOME0)
        self.trace.steps.append(("link get", index))
        return [{"address": HA_MAC.hex(":")}]

    def route(self, command: str, **kw: object) -> list[object]:
        self.trace.steps.append((f"route {command}", kw["dst"]))
        return []

    def neigh(self, command: str, **kw: object) -> list[object]:
        self.trace.steps.append((f"neigh {command}", kw["dst"]))
        return []

    def close(self) -> None:
        pass


class PacketSocket:
    """Records each gratuitous ARP with the proxy map as it is when the frame leaves."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def sendto(self, frame: bytes, address: object) -> int:
        self.trace.steps.append(("arp", (bytes(frame), self.trace.proxies())))
        return len(frame)


class UdpSocket:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def sendmsg(self, buffers: list[bytes], *args: object) -> int:
        self.trace.steps.append(("reply", self.trace.proxies()))
        return len(buffers[0])


class Timer:
    def __init__(self, func: Callable[[], None]) -> None:
        self.func = func
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class NoRoutes:
    """The fast path's own netlink (next hops of care-of addresses): no route anywhere, so
    it makes no managed neighbour entry."""

    def __init__(self) -> None:
        self.ipr = self

    def route(self, command: str, **kw: object) -> list[object]:
        return []


def executor(
    plane: BpfPlane, monkeypatch: pytest.MonkeyPatch, ifindexes: tuple[int, ...] = (HOME0,)
) -> tuple[LinuxExecutor, Trace, list[Timer]]:
    monkeypatch.setattr(rawsock, "hardware_address", lambda _s, _i: HA_MAC)
    trace = Trace(plane)
    fast = FastPath(plane, None, ifindexes, Role.HOME_AGENT)
    fast._ns = cast(Any, NoRoutes())
    forwarder = SimpleNamespace(table=TunnelTable(), tun=SimpleNamespace(name="tun0"))
    ex = LinuxExecutor(forwarder=cast(Forwarder, forwarder), tunnel_source=hat.HA, fast_path=fast)
    ex.ns._ipr = cast(NetlinkThread, Netlink(trace))
    ex._packet = cast(Any, PacketSocket(trace))
    ex._udp_by_port[434] = cast(Any, UdpSocket(trace))
    later: list[Timer] = []

    def call_later(_delay: float, func: Callable[[], None]) -> Timer:
        later.append(Timer(func))
        return later[-1]

    ex.call_later = call_later
    return ex, trace, later


def run(ex: LinuxExecutor, actions: list[Action], held: bool) -> None:
    if held:
        ex.hold_actions()
    for action in actions:
        ex.execute(action)
    if held:
        assert ex.release_actions() == []


@pytest.mark.parametrize("held", [False, True], ids=["one-by-one", "held"])
def test_first_registration_makes_a_map_entry_before_the_announcement_and_the_reply(
    plane: BpfPlane, monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    ex, trace, later = executor(plane, monkeypatch)
    ha = hat.make_ha()
    run(ex, ha.handle(hat.udp(hat.request(lifetime=600)), 0.0), held)
    entry = {(hat.HOA, HOME0): HA_MAC}
    # the interface's hardware address asked once (the answer's), then no kernel proxy
    # entry: the host route, the announcement, the reply
    assert [name for name, _ in trace.steps].count("link get") == 1
    steps = [step for step in trace.steps if step[0] != "link get"]
    assert [name for name, _ in steps] == ["route replace", "arp", "reply"]
    assert steps[1][1] == (gratuitous_arp(hat.HOA, HA_MAC), entry)
    assert steps[2][1] == entry
    assert ex.ns.proxy_neighbours == set()
    assert plane.proxies() == entry

    # the node back on its home link deregisters: the route and the entry go, the
    # agent's announcements still to come are cancelled, the node's own hardware
    # address is announced (RFC 5944 §4.6)
    assert len(later) == 2
    del trace.steps[:]
    ev = hat.udp(
        hat.request(now=5, lifetime=0, coa=hat.HOA),
        src=hat.HOA,
        interface="home0",
        link_src=NODE_MAC,
    )
    run(ex, ha.handle(ev, 5.0), held)
    assert plane.proxies() == {}
    assert [name for name, _ in trace.steps] == ["route del", "arp", "reply"]
    assert trace.steps[1][1] == (gratuitous_arp(hat.HOA, NODE_MAC), {})
    assert len(later) == 4 and ex.ns.proxy_neighbours == set()
    # the timers come: the agent's announcements (cancelled) send nothing, the node's two
    # repeats go out
    del trace.steps[:]
    for timer in later:
        if not timer.cancelled:
            timer.func()
    assert trace.steps == [("arp", (gratuitous_arp(hat.HOA, NODE_MAC), {}))] * 2


def test_a_second_address_does_not_ask_the_interface_again(
    plane: BpfPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex, trace, _later = executor(plane, monkeypatch)
    ex._proxy_immediate.add("home0")  # (the kernel path is not taken: no sysctl anyway)
    for home in (hat.HOA, hat.HOA2):
        ex.execute(ProxyArp("home0", home, True))
    assert plane.proxies() == {(hat.HOA, HOME0): HA_MAC, (hat.HOA2, HOME0): HA_MAC}
    assert [name for name, _ in trace.steps] == ["link get"]
    ex.execute(ProxyArp("home0", hat.HOA, False))
    ex.execute(ProxyArp("home0", hat.HOA, False))  # not answered any more: nothing to do
    assert plane.proxies() == {(hat.HOA2, HOME0): HA_MAC}
    assert ex.ns.proxy_neighbours == set()


def test_an_interface_that_is_gone(plane: BpfPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answering starts on an interface that exists only (as with a kernel entry); stopping
    on one that is gone is nothing to do."""
    ex, trace, _later = executor(plane, monkeypatch)
    with pytest.raises(NetnsError):
        ex.execute(ProxyArp("gone0", hat.HOA, True))
    ex.execute(ProxyArp("gone0", hat.HOA, False))
    assert plane.proxies() == {} and trace.steps == []


def test_an_interface_without_the_fast_path_gets_a_kernel_entry(
    plane: BpfPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex, trace, _later = executor(plane, monkeypatch, ifindexes=(HOME0 + 1,))
    ex._proxy_immediate.add("home0")  # no sysctl: there is no home0 here
    ex.execute(ProxyArp("home0", hat.HOA, True))
    assert plane.proxies() == {}
    assert trace.steps == [("neigh replace", str(hat.HOA))]
    assert ex.ns.proxy_neighbours == {("home0", hat.HOA)}
    ex.execute(ProxyArp("home0", hat.HOA, False))
    assert trace.steps[-1] == ("neigh del", str(hat.HOA))
    assert ex.ns.proxy_neighbours == set()


def test_a_full_map_falls_back_to_a_kernel_entry(
    plane: BpfPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More nodes away than ``mip4_proxy`` holds (65,536): the home agent still answers
    for the next one (RFC 5944 §4.6), with a kernel proxy entry, and takes that entry away
    when the node is back."""
    ex, trace, _later = executor(plane, monkeypatch)
    ex._proxy_immediate.add("home0")
    n = 0
    while plane.set_proxy(IPv4Address(0x0B000000 + n), 99, HA_MAC):
        n += 1
        assert n <= 1 << 20
    assert n == 65536
    ex.execute(ProxyArp("home0", hat.HOA, True))
    assert (hat.HOA, HOME0) not in plane.proxies()
    assert trace.steps[-1] == ("neigh replace", str(hat.HOA))
    assert ex.ns.proxy_neighbours == {("home0", hat.HOA)}
    assert ex.stats["proxy_arp_map_full"] == 1
    ex.execute(ProxyArp("home0", hat.HOA, False))
    assert trace.steps[-1] == ("neigh del", str(hat.HOA))
    assert ex.ns.proxy_neighbours == set()
