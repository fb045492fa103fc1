"""Accounting with the data plane's real counts (issue 10, acceptance 2), end to end: the
AAA lab (``mip4 ha``, two ``mip4 fa``, ``mip4 mn`` in namespaces, the lab's FreeRADIUS)
with a 2-second Interim-Update interval at FA1. The mobile node registers through FA1;
the test sends a known set of UDP datagrams from the node (reverse-tunnelled by FA1) and
to it (tunnelled by the home agent, delivered by FA1), into sinks bound in the
namespaces, so no ICMP error is provoked. FreeRADIUS's ``detail`` file must then hold an
Interim-Update and, once the node stops (it deregisters through FA1), a Stop whose
Acct-Input/Output-Octets/Packets are exactly those datagrams (inner IP lengths: 28 bytes
of IPv4 + UDP header each) and exactly what FA1's ``mip4 status --json`` reports for the
session from its forwarder. Then the node registers again and FA1 gets SIGTERM: its
open session is stopped with Acct-Terminate-Cause Admin-Reboot (RFC 2866 §5.10)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

import mip4.lab.configs as lab_configs_module
from mip4.lab.daemons import DaemonBackend
from mip4.lab.scenario import Scenario, Settings

pytestmark = pytest.mark.lab

TO_MN = [0, 10, 300, 1000, 1400]  # UDP payload sizes, correspondent -> mobile node
FROM_MN = [1, 20, 200, 1200]  # mobile node -> correspondent
UDP_IP = 28
CN_PORT, MN_PORT = 9000, 9001

#: a UDP sink: binds, prints "ready", takes up to N datagrams within T seconds, prints
#: their sizes as JSON
SINK = """
import json, socket, sys, time
addr, port, n, within = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
s.settimeout(0.1)
print("ready", flush=True)
got, deadline = [], time.monotonic() + within
while len(got) < n and time.monotonic() < deadline:
    try:
        got.append(len(s.recv(65535)))
    except TimeoutError:
        pass
print(json.dumps(got), flush=True)
"""
#: a UDP sender: from SRC to DST:PORT, one datagram per size (10 ms apart)
SEND = """
import json, socket, sys, time
src, dst, port, sizes = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
for size in sizes:
    s.sendto(bytes(size), (dst, port))
    time.sleep(0.01)
"""


def records(detail: str, nas: str) -> list[dict[str, str]]:
    """The detail file's accounting records from NAS-Identifier ``nas``, as dicts."""
    out = []
    for block in detail.split("\n\n"):
        rec: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.strip().partition(" = ")
            if sep:
                rec[key] = value.strip('"')
        if rec.get("NAS-Identifier") == nas:
            out.append(rec)
    return out


def counts(rec: dict[str, str]) -> tuple[int, int, int, int]:
    return (
        int(rec["Acct-Input-Octets"]),
        int(rec["Acct-Output-Octets"]),
        int(rec["Acct-Input-Packets"]),
        int(rec["Acct-Output-Packets"]),
    )


def wait_for(pred: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {within:g} s waiting for {what}")


@pytest.mark.timeout(300)
def test_accounting_records_carry_the_forwarders_counts(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lab_configs_module, "INTERIM_INTERVAL", 2)
    with Scenario(Settings(prefix[2:], aaa=True)) as sc:
        backend = sc.agents
        assert isinstance(backend, DaemonBackend) and backend.radius is not None
        radius = backend.radius
        lab = sc.lab
        nas = f"{lab.prefix}-fa1"
        fa1_toml = backend.paths["fa1"].read_text()
        assert "interim_interval = 2\n" in fa1_toml
        move = sc.move("a")
        assert move.finished_at is not None, move
        (start,) = wait_for(
            lambda: [r for r in records(radius.detail(), nas) if r["Acct-Status-Type"] == "Start"],
            10,
            "the Start of FA1's session",
        )
        session = start["Acct-Session-Id"]
        home, cn = str(lab.address("mn")), str(lab.address("cn"))
        assert start["Framed-IP-Address"] == home

        # -- known datagrams both ways, into sinks (bounded: a few datagrams, 20 s) --
        sinks = {
            "cn": lab.popen("cn", [sys.executable, "-c", SINK, cn, str(CN_PORT),
                                   str(len(FROM_MN)), "20"], stdout=subprocess.PIPE),
            "mn": lab.popen("mn", [sys.executable, "-c", SINK, home, str(MN_PORT),
                                   str(len(TO_MN)), "20"], stdout=subprocess.PIPE),
        }  # fmt: skip
        got: dict[str, list[int]] = {}
        try:
            for proc in sinks.values():
                assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
            lab.exec("mn", [sys.executable, "-c", SEND, home, cn, str(CN_PORT),
                            json.dumps(FROM_MN)], check=True)  # fmt: skip
            lab.exec("cn", [sys.executable, "-c", SEND, cn, home, str(MN_PORT),
                            json.dumps(TO_MN)], check=True)  # fmt: skip
            for node, proc in sinks.items():
                out, _ = proc.communicate(timeout=30)
                got[node] = json.loads(out.decode().splitlines()[-1])
        finally:
            for proc in sinks.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert sorted(got["cn"]) == sorted(FROM_MN) and sorted(got["mn"]) == sorted(TO_MN), got
        sent = (
            sum(UDP_IP + s for s in FROM_MN),
            sum(UDP_IP + s for s in TO_MN),
            len(FROM_MN),
            len(TO_MN),
        )

        # -- FA1's status (what `mip4 status --json` prints): the session's counts --
        status = backend.status("fa1")
        assert status is not None
        (open_session,) = status["aaa"]["sessions"]
        assert open_session["session_id"] == session
        names = ("input_octets", "output_octets", "input_packets", "output_packets")
        assert tuple(open_session["traffic"][n] for n in names) == sent, open_session
        assert tuple(open_session["plane"][n] for n in names) == sent, open_session

        # -- an Interim-Update with those counts (2 s interval) --
        def interim() -> list[dict[str, str]]:
            return [
                r
                for r in records(radius.detail(), nas)
                if r["Acct-Status-Type"] == "Interim-Update"
                and r["Acct-Session-Id"] == session
                and counts(r) == sent
            ]

        wait_for(interim, 10, f"an Interim-Update carrying {sent}")
        for r in records(radius.detail(), nas):  # none ever counted more than was sent
            if r["Acct-Status-Type"] != "Start":
                assert all(c <= s for c, s in zip(counts(r), sent, strict=True)), r

        # -- the node stops: it deregisters through FA1, whose Stop has the same counts --
        assert backend._stop("mn") == 0

        def stopped() -> list[dict[str, str]]:
            return [
                r
                for r in records(radius.detail(), nas)
                if r["Acct-Status-Type"] == "Stop" and r["Acct-Session-Id"] == session
            ]

        (stop,) = wait_for(stopped, 15, "the Stop of the deregistration")
        assert stop["Acct-Terminate-Cause"] == "User-Request", stop
        assert counts(stop) == sent, stop

        # -- registered again, then FA1 is stopped: Admin-Reboot for the open session --
        backend._start("mn")
        backend._wait_answering("mn", 20)
        (second,) = wait_for(
            lambda: [
                r
                for r in records(radius.detail(), nas)
                if r["Acct-Status-Type"] == "Start" and r["Acct-Session-Id"] != session
            ],
            30,
            "a second session at FA1",
        )
        assert backend._stop("fa1") == 0
        (final,) = wait_for(
            lambda: [
                r
                for r in records(radius.detail(), nas)
                if r["Acct-Status-Type"] == "Stop"
                and r["Acct-Session-Id"] == second["Acct-Session-Id"]
            ],
            10,
            "the Stop FA1 sends when it is stopped",
        )
        assert final["Acct-Terminate-Cause"] == "Admin-Reboot", final
        assert counts(final) == (0, 0, 0, 0), final  # no datagram in this session
    assert sc.exit_codes.get("ha") == 0
