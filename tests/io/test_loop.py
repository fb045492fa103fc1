"""EngineDriver (events in, one timer, actions out) and the Linux executor."""

from __future__ import annotations

import asyncio
import dataclasses
import select
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest

from mip4.core.actions import Action, Log, SendUdp
from mip4.core.counters import Counters
from mip4.core.events import Event, IcmpReceived, UdpReceived
from mip4.io.driver import EngineDriver
from mip4.io.executor import LinuxExecutor
from mip4.io.netns import Netns
from mip4.io.rawsock import open_udp_control, recv_udp, send_udp

A, B = IPv4Address("10.71.0.1"), IPv4Address("10.71.0.2")


@dataclass
class EchoEngine:
    """Answers every datagram with TTL 3, and wants a timer ``period`` after each input."""

    period: float
    events: list[tuple[Event, float]] = field(default_factory=list)
    timers: list[float] = field(default_factory=list)
    deadline: float | None = None

    def handle(self, event: Event, now: float) -> list[Action]:
        self.events.append((event, now))
        self.deadline = now + self.period
        assert isinstance(event, UdpReceived)
        return [SendUdp(event.src, b"echo:" + event.payload, dport=event.sport, ttl=3)]

    def handle_timer(self, now: float) -> list[Action]:
        assert self.deadline is not None and now >= self.deadline
        self.timers.append(now)
        self.deadline = None
        return [Log("timer", {"at": now})]

    def next_deadline(self) -> float | None:
        return self.deadline

    @property
    def counters(self) -> Counters:
        return Counters()


class Recorder:
    def __init__(self) -> None:
        self.actions: list[Action] = []

    def execute(self, action: Action) -> None:
        self.actions.append(action)
        if isinstance(action, Log) and action.fields.get("fail"):
            raise RuntimeError("planted failure")


@dataclass
class FixedEngine:
    deadlines: list[float]
    fired: list[float] = field(default_factory=list)

    def handle(self, event: Event, now: float) -> list[Action]:
        return [Log("fail", {"fail": True}), Log("after")]

    def handle_timer(self, now: float) -> list[Action]:
        self.fired.append(now)
        self.deadlines.pop(0)
        return []

    def next_deadline(self) -> float | None:
        return self.deadlines[0] if self.deadlines else None

    @property
    def counters(self) -> Counters:
        return Counters()


def test_driver_arms_one_timer_at_the_deadline_and_survives_failing_actions() -> None:
    async def go() -> tuple[FixedEngine, EngineDriver, Recorder]:
        now = time.monotonic()
        engine = FixedEngine([now + 0.05, now + 0.10, now + 0.15])
        rec = Recorder()
        driver = EngineDriver(engine, rec, loop=asyncio.get_running_loop())
        driver.start()
        assert driver.deadline == engine.deadlines[0]
        driver.feed(UdpReceived(b"x", A, B, 434, 434, "lo", ttl=64))
        await asyncio.sleep(0.3)
        driver.close()
        return engine, driver, rec

    engine, driver, rec = asyncio.run(go())
    assert len(engine.fired) == 3
    assert all(b - a >= 0.04 for a, b in zip(engine.fired, engine.fired[1:], strict=False))
    assert driver.stats["timers"] == 3 and driver.stats["action_errors"] == 1
    assert [a.event for a in rec.actions if isinstance(a, Log)] == ["fail", "after"]
    assert driver.deadline is None


@pytest.mark.lab
def test_driver_feeds_udp_events_and_the_executor_answers(
    make_netns: Callable[[str], Netns],
) -> None:
    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    for ns, ifname, addr in ((a, "a0", A), (b, "b0", B)):
        ns.add_address(ifname, f"{addr}/24")
        ns.set_up(ifname)
    assert a.wait_up("a0") and b.wait_up("b0")
    server = open_udp_control(b.name)
    client = open_udp_control(a.name, port=4343)
    engine = EchoEngine(period=0.05)
    executor = LinuxExecutor(b.name, udp=server)

    async def go() -> list[UdpReceived]:
        loop = asyncio.get_running_loop()
        driver = EngineDriver(engine, executor, loop=loop)
        driver.add_reader(server, lambda: list(recv_udp(server)))
        driver.start()
        assert driver.deadline is None
        try:
            for i in range(3):
                send_udp(client, b"ping%d" % i, B, 434)
            got: list[UdpReceived] = []
            deadline = time.monotonic() + 3
            while len(got) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                got += recv_udp(client)
            await asyncio.sleep(0.2)  # let the timer fire
            return got
        finally:
            driver.close()

    try:
        got = asyncio.run(go())
    finally:
        executor.close()
        server.close()
        client.close()
    assert sorted(g.payload for g in got) == [b"echo:ping0", b"echo:ping1", b"echo:ping2"]
    assert {(g.ttl, g.src, g.sport) for g in got} == {(3, B, 434)}
    seen = engine.events
    assert [e.interface for e, _ in seen if isinstance(e, UdpReceived)] == ["b0"] * 3
    assert all(isinstance(now, float) for _, now in seen)
    # one timer after the last input, not one per input
    assert len(engine.timers) == 1
    assert engine.timers[0] >= seen[-1][1] + 0.05
    assert executor.stats["SendUdp"] == 3 and executor.stats["Log"] == 1


def test_executor_refuses_unknown_actions() -> None:
    ex = LinuxExecutor.__new__(LinuxExecutor)
    with pytest.raises(NotImplementedError, match="no Linux executor for str"):
        ex.execute("nonsense")  # type: ignore[arg-type]


def _wait(pred: Callable[[], bool], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pred():
            return True
        select.select([], [], [], 0.02)
    return pred()


@pytest.mark.lab
def test_executor_sends_discovery_and_link_addressed_messages(
    make_netns: Callable[[str], Netns],
) -> None:
    from mip4.core.actions import SendIcmp
    from mip4.io.icmpsock import open_discovery_capture, recv_discovery
    from mip4.io.rawsock import ALL_SYSTEMS
    from mip4.wire.packets import icmp_with_checksum

    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    for ns, ifname, addr in ((a, "a0", A), (b, "b0", B)):
        ns.add_address(ifname, f"{addr}/24")
        ns.set_up(ifname)
    assert a.wait_up("a0") and b.wait_up("b0")
    mac_a, mac_b = a.link_address("a0"), b.link_address("b0")
    visitor = IPv4Address("10.1.0.100")  # not on the link: only its MAC gets it there
    b.add_address("b0", f"{visitor}/32")
    cap = open_discovery_capture("b0", b.name)
    rx = open_udp_control(b.name, port=434)
    advert = icmp_with_checksum(bytes([9, 16, 0, 0, 1, 2, 0, 30]) + A.packed + bytes(4))
    with LinuxExecutor(a.name) as ex:
        ex.execute(SendIcmp(ALL_SYSTEMS, advert, "a0"))
        ex.execute(SendIcmp(visitor, advert, "a0", link_dst=mac_b))
        ex.execute(SendUdp(visitor, b"reply", interface="a0", link_dst=mac_b, ttl=1))
        ex.execute(SendUdp(B, b"plain", interface="a0", ttl=9))
        got: list[IcmpReceived] = []
        udp: list[UdpReceived] = []

        def arrived() -> bool:
            got.extend(recv_discovery(cap))
            udp.extend(recv_udp(rx))
            return len(got) >= 2 and len(udp) >= 2

        assert _wait(arrived)
    cap.close()
    rx.close()
    assert [(g.dst, g.ttl, g.link_src, g.payload) for g in got] == [
        (ALL_SYSTEMS, 1, mac_a, advert),
        (visitor, 1, mac_a, advert),
    ]
    assert [(u.payload, u.dst, u.src, u.ttl) for u in udp] == [
        (b"reply", visitor, A, 1),
        (b"plain", B, A, 9),
    ]
    assert a.neighbour("a0", visitor) is None


@pytest.mark.lab
def test_visitor_without_hardware_address_and_binding_bookkeeping(
    make_netns: Callable[[str], Netns], prefix: str
) -> None:
    from mip4.core.actions import InstallBinding, InstallVisitor, RemoveBinding, RemoveVisitor
    from mip4.io.forwarder import Forwarder
    from mip4.io.tun import Tun

    fa = make_netns("fa")
    fa.add_veth("v0", "v1")
    fa.set_up("v0")
    home, ha, coa = IPv4Address("10.1.0.100"), IPv4Address("10.1.0.2"), IPv4Address("10.2.0.2")
    with Tun(f"{prefix}t", fa.name) as tun, Forwarder(tun, netns=fa.name) as fwd:
        with LinuxExecutor(fa.name, forwarder=fwd, tunnel_source=ha) as ex:
            ex.execute(InstallVisitor(home, "v0", None, ha, coa))
            assert f"{home} dev v0" in fa.exec(["ip", "route"]).stdout
            assert fwd.table.peers[int(ha)] == 1
            ex.execute(InstallVisitor(home, "v0", None, ha, coa, reverse_tunnel=True))
            assert fwd.table.peers[int(ha)] == 2  # the visitor's and the reverse tunnel's
            ex.execute(RemoveVisitor(home, "v0"))
            assert str(home) not in fa.exec(["ip", "route"]).stdout
            assert fwd.table.peers[int(ha)] == 0 and not fwd.table.reverse
            assert "lookup 434" not in fa.exec(["ip", "rule"]).stdout
            ex.execute(RemoveVisitor(home, "v0"))  # unknown now: nothing happens
            # simultaneous bindings: two care-of addresses, removed one by one
            other = IPv4Address("10.3.0.2")
            ex.execute(InstallBinding(home, coa))
            ex.execute(InstallBinding(home, other, broadcast=True))
            assert [e.dst for e in fwd.table.bindings[int(home)]] == [str(coa), str(other)]
            assert ex.stats["broadcast_not_forwarded"] == 1
            ex.execute(RemoveBinding(home, coa))
            assert f"{home} dev {tun.name}" in fa.exec(["ip", "route"]).stdout
            ex.execute(RemoveBinding(home, other))
            assert int(home) not in fwd.table.bindings
            assert str(home) not in fa.exec(["ip", "route"]).stdout
            assert fwd.table.peers[int(coa)] == fwd.table.peers[int(other)] == 0
            ex.execute(InstallBinding(home, coa))
        # closing the executor removed the route it made
        assert str(home) not in fa.exec(["ip", "route"]).stdout


@pytest.mark.lab
def test_visitor_renewal_leaves_the_kernel_objects_alone(
    make_netns: Callable[[str], Netns], prefix: str
) -> None:
    """A visitor re-installed with only a new expiry (the foreign agent's renewal) deletes
    nothing and adds nothing: no moment without the visitor's route or reverse-tunnel rule,
    no lost path-MTU state. A real change (no reverse tunnel any more) is applied."""
    import subprocess

    from mip4.core.actions import InstallVisitor
    from mip4.io.forwarder import Forwarder
    from mip4.io.tun import Tun

    fa, mn = make_netns("fa"), make_netns("mn")
    fa.add_veth("v0", "m0", mn)
    fa.set_up("v0")
    mn.set_up("m0")
    assert fa.wait_up("v0") and mn.wait_up("m0")
    fa.add_address("v0", "10.2.0.2/24")
    home, ha, coa = IPv4Address("10.1.0.100"), IPv4Address("10.1.0.2"), IPv4Address("10.2.0.2")
    mac = bytes.fromhex("020000000001")
    visitor = InstallVisitor(home, "v0", mac, ha, coa, reverse_tunnel=True, expires=100.0)
    monitor: subprocess.Popen[str] | None = None
    try:
        with (
            Tun(f"{prefix}t", fa.name) as tun,
            Forwarder(tun, netns=fa.name) as fwd,
            LinuxExecutor(fa.name, forwarder=fwd) as ex,
        ):
            ex.execute(visitor)
            rules, routes = fa.exec(["ip", "rule"]).stdout, fa.exec(["ip", "route"]).stdout
            assert "lookup 434" in rules and f"{home} via {home}" in routes
            # from here on, every route, rule and neighbour change is recorded
            monitor = subprocess.Popen(
                ["ip", "-n", str(fa.name), "monitor", "route", "rule", "neigh"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            time.sleep(0.3)  # the monitor is listening
            for expires in (180.0, 260.0):
                ex.execute(dataclasses.replace(visitor, expires=expires))
            assert fa.exec(["ip", "rule"]).stdout == rules
            assert fa.exec(["ip", "route"]).stdout == routes
            assert fwd.table.peers[int(ha)] == 2
            # a marker the monitor must see first: nothing changed before it
            fa.exec(["ip", "route", "add", "192.0.2.77/32", "dev", "v0"], check=True)
            time.sleep(0.3)
            monitor.terminate()
            seen = monitor.communicate(timeout=5)[0]
            assert seen.startswith("192.0.2.77 dev"), seen
            # a real change is applied
            ex.execute(dataclasses.replace(visitor, reverse_tunnel=False, expires=300.0))
            assert "lookup 434" not in fa.exec(["ip", "rule"]).stdout
            assert fwd.table.peers[int(ha)] == 1 and not fwd.table.reverse
    finally:
        if monitor is not None and monitor.poll() is None:
            monitor.kill()
            monitor.wait()
