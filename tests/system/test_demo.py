"""The demo scenario on real agents: home → A (FA1) → B (FA2) → C (co-located) → home with
two verified TCP connections (one from the correspondent to the home address, one from the
mobile node out) and a UDP probe stream; with and without reverse tunnelling, and with
IP-in-IP, minimal encapsulation and GRE. Then ``mip4 lab demo`` itself, as a user runs it,
and without root."""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mip4.io.netns import list_netns
from mip4.lab.demo import ROUTE, DemoRun, run_demo
from mip4.lab.scenario import Settings

from .helpers import lab_id, leftovers

pytestmark = [pytest.mark.lab, pytest.mark.slow]

#: what each stop registers, by the itinerary
EXPECTED_COA = {"a": "10.2.0.2", "b": "10.3.0.2", "c": "10.4.0.100", "home": None}


def check_run(run: DemoRun, encapsulation: str, reverse_tunnel: bool) -> None:
    report = run.report
    text = report.render_text()
    assert report.ok, text
    assert run.ok, run.problems
    assert report.resets == 0
    # every move registered where it should, with a measured round trip
    assert [m.move.to_net for m in report.moves] == list(ROUTE)
    for m in report.moves:
        assert m.move.registered, (m.move, text)
        assert m.move.care_of_address == EXPECTED_COA[m.move.to_net]
        assert m.move.registration_rtt_ms is not None
        assert 0 < m.move.registration_rtt_ms < 5000
        # the interruption is measured from the probes, and the stream recovered
        assert m.interruption_ms is not None and math.isfinite(m.interruption_ms), text
        assert 0 < m.interruption_ms < 10_000
        assert m.recovered
        assert m.probes_sent > 0
        # the probes resume within each stay, not only after the next move: most of those
        # sent while the node is there arrive (a stay without delivery, like the co-located
        # stop once was without reverse tunnelling, loses nearly all of them)
        assert m.probes_lost < 0.75 * m.probes_sent, (m, text)
    # both connections, both directions: every byte verified
    assert len(report.connections) == 2
    for c in report.connections:
        assert c.client_outcome == c.server_outcome == "ok", c
        for d in c.directions:
            assert d.complete and d.mismatched == 0, d
            assert d.verified == d.sent > 100_000, d
            # no direction sits out a whole stay (2.5 s); a move costs it well under that
            assert d.longest_gap_ms < 2500, (c.name, d.label, d.longest_gap_ms)
    # the home agent's bindings after each move: the tunnel the node asked for
    for move, bindings in zip(report.moves, run.bindings_seen, strict=True):
        coa = EXPECTED_COA[move.move.to_net]
        if coa is None:
            assert bindings == [], bindings
            continue
        assert [b["care_of_address"] for b in bindings] == [coa]
        assert bindings[0]["encapsulation"] == encapsulation
        assert bindings[0]["reverse_tunnel"] is reverse_tunnel
    # the tunnel carried the traffic away from home; at home, no tunnel at all
    # (either plane: with MIP4_LAB_DATAPLANE=bpf the home agent's fast path does most of it)
    assert run.ha_tunnelled["encapsulated"] > 1000, (run.ha_tunnelled, run.ha_forwarder)
    if reverse_tunnel:
        assert run.ha_tunnelled["delivered_tun"] > 1000, (run.ha_tunnelled, run.ha_forwarder)
    assert [h.label for h in run.home_stays] == ["start", "after move 4"]
    for stay in run.home_stays:
        assert stay.tunnelled == 0 and stay.bindings == 0, stay
    assert run.bindings_after_home == 0
    # the files
    assert run.json_path is not None and run.plot_path is not None
    saved = json.loads(run.json_path.read_text())
    assert saved["ok"] is True and saved["resets"] == 0 and len(saved["moves"]) == 4
    assert run.plot_path.stat().st_size > 1000


@pytest.mark.parametrize(
    ("encapsulation", "reverse_tunnel", "backend"),
    [
        ("ipip", True, "daemons"),
        ("ipip", False, "daemons"),
        ("minimal", True, "daemons"),
        ("gre", True, "daemons"),
        ("gre", True, "engines"),
    ],
    ids=["ipip-reverse", "ipip-direct", "minimal-reverse", "gre-reverse", "gre-in-process"],
)
def test_connections_survive_four_moves(
    lab_prefix: str, tmp_path: Path, encapsulation: str, reverse_tunnel: bool, backend: str
) -> None:
    settings = Settings(
        lab_id(lab_prefix), reverse_tunnel=reverse_tunnel, encapsulation=encapsulation
    )
    lines: list[str] = []
    run = run_demo(settings, tmp_path / "out", log=lines.append, dwell=2.5, backend=backend)
    check_run(run, encapsulation, reverse_tunnel)
    # one progress line per step, the teardown last
    assert sum("move " in line for line in lines) == 4
    assert lines[-1].endswith(f"lab {settings.lab_id} torn down")
    # the mobile node saw every link change
    assert all(m.move.note.startswith("link up after") for m in run.report.moves)
    if backend == "daemons":
        # their configurations and logs are kept with the report
        logs = {p.name for p in (tmp_path / "out" / "daemons").glob("*.log")}
        assert logs == {"ha.1.log", "fa1.1.log", "fa2.1.log", "mn.1.log"}


MIP4 = [sys.executable, "-m", "mip4.cli"]


def test_mip4_lab_demo_command(lab_prefix: str, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [*MIP4, "lab", "demo", "--id", lab_id(lab_prefix), "--out", str(out), "--dwell", "2"],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    for needle in ("move 1/4 home → a", "Moves", "Connections", "TCP resets: 0", "PASS"):
        assert needle in text, text
    for row in ("home → a", "a → b", "b → c", "c → home"):
        assert row in text.split("Moves")[1], text
    assert (out / "report.json").exists()
    assert (out / "throughput.png").exists() or (out / "throughput.svg").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] is True and len(report["moves"]) == 4
    # after the command, nothing of its lab is left: namespaces, links, TUN devices,
    # nftables tables, state, processes
    assert leftovers(lab_prefix, str(out)) == []


#: Runs a command as uid/gid 65534 with no capabilities, wherever the checkout lives: a new
#: user namespace maps the caller's uid to 65534 inside, so the process is not root (geteuid()
#: is 65534, execve drops every capability) but still reads the files of the checkout and its
#: venv as their owner. ``setpriv --reuid=65534`` could not import mip4 from a checkout in a
#: directory other users cannot read (/root, any 0700 directory).
AS_NOBODY = ["unshare", "--user", "--map-user=65534", "--map-group=65534", "--"]


def test_as_nobody_is_unprivileged_and_reads_a_private_checkout(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "f").write_text("x")
    proc = subprocess.run(
        [*AS_NOBODY, sys.executable, "-c",
         "import os, sys; print(os.geteuid(), os.getegid(), open(sys.argv[1]).read(),"
         " open('/proc/self/status').read().split('CapEff:')[1].split()[0])",
         str(private / "f")],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert proc.stdout.split() == ["65534", "65534", "x", "0000000000000000"]


def test_mip4_lab_demo_without_root(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run(
        [*AS_NOBODY, *MIP4, "lab", "demo", "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "needs root" in proc.stderr
    assert not (tmp_path / "x").exists()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_mip4_lab_demo_interrupted_tears_everything_down(lab_prefix: str, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.Popen(
        [*MIP4, "lab", "demo", "--id", lab_id(lab_prefix), "--out", str(out), "--dwell", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C at a terminal: SIGINT at its default disposition. A test run started in the
        # background of a non-interactive shell inherits SIGINT ignored, and Python then
        # keeps it ignored, so the demo would never see the interrupt this test sends.
        preexec_fn=_default_sigint,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any("move 1/4" in line for line in seen):
            assert time.monotonic() < deadline, seen
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        # the lab is up, the daemons and the streams run: Ctrl-C
        assert any(n.startswith(f"{lab_prefix}-") for n in list_netns())
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130, err
    assert "interrupted; everything torn down" in err
    assert leftovers(lab_prefix, str(out)) == []
