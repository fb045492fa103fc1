"""The accounting shell (issue 10, acceptance 2): counts from the data plane in every
record, kept across the visitor's removal; the daemon's wiring (``RemoveVisitor`` →
:meth:`AaaShell.visitor_leaving`, the plane's counters → ``traffic``); at a clean shutdown
a Stop for every open session with Acct-Terminate-Cause Admin-Reboot (RFC 2866 §5.10),
checked in a real FreeRADIUS's ``detail`` file, and a bounded wait when nobody answers."""

from __future__ import annotations

import asyncio
import time
from ipaddress import IPv4Address
from types import SimpleNamespace
from typing import Any

import pytest

from mip4.aaa.messages import AccountingRecord, AcctStatus, TerminateCause
from mip4.aaa.policy import Policy, RadiusServer
from mip4.core.actions import Action, RemoveVisitor
from mip4.daemon.driving import DaemonExecutor
from mip4.daemon.run import visitor_traffic
from mip4.io.radius import ACCT_TERMINATE_ADMIN_REBOOT, AaaShell, RadiusClient, Traffic

from .conftest import RADIUS_SECRET, FreeRadius, needs_freeradius

A = IPv4Address
NAS = A("127.0.0.1")
HA = A("192.0.2.1")
HOME = A("10.1.0.5")


def start(session: str = "s1", home: IPv4Address = HOME) -> AccountingRecord:
    return AccountingRecord(1, AcctStatus.START, session, "mn1@home.example", home, NAS, HA, NAS)


def stop(session: str = "s1", home: IPv4Address = HOME) -> AccountingRecord:
    return AccountingRecord(
        2, AcctStatus.STOP, session, "mn1@home.example", home, NAS, HA, NAS,
        session_time=9, terminate_cause=TerminateCause.USER_REQUEST,
    )  # fmt: skip


def shell_with(
    counts: dict[IPv4Address, Traffic], server: RadiusServer | None = None, **kw: Any
) -> AaaShell:
    server = server or RadiusServer("x", NAS, 1812, b"x")
    return AaaShell(
        RadiusClient([server], kw.pop("policy", None)),
        lambda ev: None,
        traffic=lambda hoa: counts.get(hoa),
        **kw,
    )


def test_stop_after_the_visitor_is_gone_carries_the_counts_of_its_removal() -> None:
    """The engine's Stop of a deregistration follows its RemoveVisitor: a plane that drops
    the visitor's counters with it (the bpf plane does) would give the Stop nothing."""
    counts: dict[IPv4Address, Traffic] = {HOME: (100, 200, 1, 2)}
    shell = shell_with(counts)
    shell.with_traffic(start())
    counts[HOME] = (600, 1200, 6, 12)
    shell.visitor_leaving(HOME)
    del counts[HOME]  # the plane forgot the visitor
    rec = shell.with_traffic(stop())
    assert (rec.input_octets, rec.output_octets, rec.input_packets, rec.output_packets) == (
        500,
        1000,
        5,
        10,
    )
    assert shell.sessions == {} and shell._leaving == {}


def test_stop_prefers_live_counters_and_ignores_a_plane_that_restarted() -> None:
    counts: dict[IPv4Address, Traffic] = {HOME: (0, 0, 0, 0)}
    shell = shell_with(counts)
    shell.with_traffic(start())
    counts[HOME] = (10, 20, 1, 2)
    shell.visitor_leaving(HOME)
    counts[HOME] = (15, 20, 2, 2)  # the plane still counts (kept its counters): live wins
    assert shell.with_traffic(stop()).input_octets == 15
    # a new session; the plane's counters restart from zero after the removal
    counts[HOME] = (50, 50, 5, 5)
    shell.with_traffic(start("s2"))
    counts[HOME] = (80, 90, 8, 9)
    shell.visitor_leaving(HOME)
    counts[HOME] = (0, 0, 0, 0)
    rec = shell.with_traffic(stop("s2"))
    assert (rec.input_octets, rec.output_packets) == (30, 4)


def test_leaving_without_a_session_keeps_nothing_and_a_start_clears_it() -> None:
    counts: dict[IPv4Address, Traffic] = {HOME: (1, 1, 1, 1)}
    shell = shell_with(counts)
    shell.visitor_leaving(HOME)
    assert shell._leaving == {}
    shell.with_traffic(start())
    shell.visitor_leaving(HOME)
    shell.with_traffic(start("s2"))  # same address, a new session
    assert shell._leaving == {}


def test_open_sessions_and_their_counts_in_the_snapshot() -> None:
    counts: dict[IPv4Address, Traffic] = {HOME: (100, 200, 1, 2)}
    now = [1000.0]
    shell = shell_with(counts, clock=lambda: now[0])
    shell.with_traffic(start())
    counts[HOME] = (130, 260, 4, 5)
    now[0] += 7.5
    sessions: Any = shell.snapshot()["sessions"]
    assert sessions == [
        {
            "session_id": "s1",
            "nai": "mn1@home.example",
            "home_address": str(HOME),
            "care_of_address": str(NAS),
            "seconds": 7,
            "traffic": {
                "input_octets": 30,
                "output_octets": 60,
                "input_packets": 3,
                "output_packets": 3,
            },
            "plane": {
                "input_octets": 130,
                "output_octets": 260,
                "input_packets": 4,
                "output_packets": 5,
            },
        }
    ]
    shell.with_traffic(stop())
    assert shell.snapshot()["sessions"] == []


def test_daemon_executor_tells_the_shell_before_removing_a_visitor() -> None:
    counts: dict[IPv4Address, Traffic] = {HOME: (0, 0, 0, 0)}
    shell = shell_with(counts)
    shell.with_traffic(start())
    seen: list[tuple[Action, Any]] = []

    class Inner:
        def execute(self, action: Action) -> None:
            # when the inner executor removes the visitor, the counts are already kept
            seen.append((action, dict(shell._leaving)))
            counts.pop(HOME, None)

    counts[HOME] = (40, 80, 4, 8)
    ex = DaemonExecutor(Inner())
    ex.aaa = shell
    ex.execute(RemoveVisitor(HOME, "vis0"))
    assert seen == [(RemoveVisitor(HOME, "vis0"), {HOME: (40, 80, 4, 8)})]
    assert shell.with_traffic(stop()).output_packets == 8


def test_visitor_traffic_of_the_planes() -> None:
    fwd = SimpleNamespace(visitor_traffic=lambda h: (1, 2, 3, 4) if h == HOME else None)
    plane = SimpleNamespace(visitor_traffic=lambda h: (10, 20, 30, 40) if h == HOME else None)
    user = SimpleNamespace(forwarder=fwd, fast_path=None)
    assert visitor_traffic(user) is fwd.visitor_traffic  # type: ignore[arg-type]
    both = visitor_traffic(SimpleNamespace(forwarder=fwd, fast_path=SimpleNamespace(plane=plane)))  # type: ignore[arg-type]
    assert both is not None
    assert both(HOME) == (11, 22, 33, 44) and both(A("10.9.9.9")) is None
    # a bpf plane without the method (yet): the forwarder's counts alone
    old = visitor_traffic(SimpleNamespace(forwarder=fwd, fast_path=SimpleNamespace(plane=object())))  # type: ignore[arg-type]
    assert old is fwd.visitor_traffic
    assert visitor_traffic(SimpleNamespace(forwarder=None, fast_path=None)) is None  # type: ignore[arg-type]


def test_shutdown_wait_is_one_servers_exchange_capped() -> None:
    assert shell_with({}, policy=Policy(timeout=0.5, retries=1)).shutdown_wait() == 1.0
    assert shell_with({}, policy=Policy(timeout=3.0, retries=2)).shutdown_wait() == 5.0


def test_shutdown_with_no_open_session_sends_nothing() -> None:
    shell = shell_with({})
    assert asyncio.run(shell.stop_sessions()) == 0
    assert "accounting_stop_shutdown" not in shell.stats


@needs_freeradius
@pytest.mark.timeout(60)
def test_shutdown_stops_every_open_session_with_admin_reboot(freeradius: FreeRadius) -> None:
    counts: dict[IPv4Address, Traffic] = {HOME: (1000, 2000, 10, 20), A("10.1.0.6"): (0,) * 4}
    server = RadiusServer(
        "fr",
        NAS,
        freeradius.config.auth_port,
        RADIUS_SECRET.encode(),
        acct_port=freeradius.config.acct_port,
    )
    now = [500.0]
    shell = shell_with(counts, server, policy=Policy(timeout=0.5, retries=1), clock=lambda: now[0])

    async def scenario() -> int:
        shell.execute(start("sess-a"))
        shell.execute(start("sess-b", A("10.1.0.6")))
        while shell.outstanding:
            await asyncio.sleep(0.01)
        counts[HOME] = (1500, 2600, 15, 26)
        counts[A("10.1.0.6")] = (7, 0, 1, 0)
        now[0] += 42
        try:
            return await shell.stop_sessions()
        finally:
            await shell.close()

    assert asyncio.run(scenario()) == 2
    assert shell.sessions == {}
    assert shell.stats["accounting_stop_shutdown"] == 2
    assert shell.stats["accounting_stop_shutdown_answered"] == 2
    records = freeradius.detail().split("\n\n")
    stops = {
        r.split('Acct-Session-Id = "')[1].split('"')[0]: r
        for r in records
        if "Acct-Status-Type = Stop" in r
    }
    assert sorted(stops) == ["sess-a", "sess-b"]
    a = stops["sess-a"]
    for line in (
        "Acct-Terminate-Cause = Admin-Reboot",
        "Acct-Input-Octets = 500",
        "Acct-Output-Octets = 600",
        "Acct-Input-Packets = 5",
        "Acct-Output-Packets = 6",
        "Acct-Session-Time = 42",
    ):
        assert line in a, a
    assert "Acct-Input-Octets = 7" in stops["sess-b"]
    assert "Admin-Reboot" in stops["sess-b"]
    assert ACCT_TERMINATE_ADMIN_REBOOT == 7


@pytest.mark.timeout(30)
def test_shutdown_waits_a_bounded_time_for_a_silent_server(silent_udp: tuple[int, int]) -> None:
    server = RadiusServer("quiet", NAS, silent_udp[0], b"x", acct_port=silent_udp[1])
    shell = shell_with({HOME: (0,) * 4}, server, policy=Policy(timeout=5.0, retries=3))
    shell.with_traffic(start())

    async def scenario() -> tuple[int, float]:
        t0 = time.monotonic()
        try:
            return await shell.stop_sessions(wait=0.5), time.monotonic() - t0
        finally:
            await shell.close()

    answered, took = asyncio.run(scenario())
    assert answered == 0 and took < 2.0
    assert shell.stats["accounting_stop_shutdown"] == 1
