"""Issue 14, item 1 of the interruption floor: the demo's probe interval is a setting
(``mip4 lab demo --probe-interval SECONDS``, ``run_demo(probe_interval=...)``) that reaches
the probe sender; a bad value is one line and exit 2; and the demo reports the
interruption statistic over windows with no move (the measurement's own floor) and how
regularly the sender kept its interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mip4.cli import main
from mip4.demo.probe import ProbeLog, analyze
from mip4.demo.runner import local_popen
from mip4.lab import demo
from mip4.lab.scenario import ScenarioError

LOOPBACK = "127.0.0.1"


def test_probe_interval_reaches_the_probe_sender() -> None:
    """The demo's probe pair, started with 2 ms, runs a sender with ``--interval 0.002``:
    it sends exactly ``bound / interval + 1`` probes and reports that interval."""
    probes = demo.start_probes(local_popen, LOOPBACK, 0.002, 1.0, port=0)
    try:
        argv = probes.sender.argv
        assert argv[argv.index("--interval") + 1] == "0.002"
        sender, receiver = probes.reports(30)
    finally:
        probes.close()
    assert sender is not None and receiver is not None
    assert sender["interval"] == 0.002
    assert len(sender["sent_at"]) == int(1.0 / 0.002) + 1
    stats = demo.send_statistics(sender, 0.002)
    assert stats["interval_ms"] == 2.0 and stats["sent"] == 501
    assert stats["achieved_median_ms"] < 10  # 10 ms: the old fixed interval


def test_cli_probe_interval_reaches_run_demo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    def fake_run_demo(settings: object, out: Path, **kw: Any) -> demo.DemoRun:
        seen.update(kw)
        raise ScenarioError("stopped by the test")

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    monkeypatch.setattr(demo, "is_root", lambda: True)
    status = main(["lab", "demo", "--out", str(tmp_path / "o"), "--probe-interval", "0.002"])
    assert status == 1 and "stopped by the test" in capsys.readouterr().err
    assert seen["probe_interval"] == 0.002
    seen.clear()
    main(["lab", "demo", "--out", str(tmp_path / "o")])
    assert seen["probe_interval"] == demo.PROBE_INTERVAL == 0.01


@pytest.mark.parametrize("bad", ["abc", "0", "-0.001", "nan", "inf", "0.0001", "0.5", ""])
def test_bad_probe_interval_is_one_line_and_exit_2(
    bad: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    called: list[object] = []
    monkeypatch.setattr(demo, "run_demo", lambda *a, **kw: called.append(a))
    status = main(["lab", "demo", "--out", str(tmp_path / "o"), "--probe-interval", bad])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "--probe-interval" in err and repr(bad) in err and "Traceback" not in err
    assert not called and not (tmp_path / "o").exists()


def _logs(interval: float, hole: tuple[int, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A sender's and a receiver's report: 1000 probes ``interval`` apart, each arriving
    0.5 ms after it was sent, except those numbered ``hole[0]`` up to ``hole[1]``."""
    sent = [1000.0 + i * interval for i in range(1000)]
    received = [[i, t, t + 0.0005] for i, t in enumerate(sent) if not hole[0] <= i < hole[1]]
    return {"sent_at": sent, "interval": interval}, {"received": received}


def test_no_move_window_is_the_move_statistic_over_a_quiet_window() -> None:
    sender, receiver = _logs(0.001, (400, 407))  # 7 probes lost: an 8 ms gap
    windows = [("home", 1000.1, 1000.3), ("a", 1000.3, 1000.5)]
    got = demo.no_move_windows(sender, receiver, windows)
    assert [w["where"] for w in got] == ["home", "a"]
    assert got[0]["seconds"] == 0.2
    assert got[0]["interruption_ms"] == pytest.approx(1.0)
    assert got[0]["probes_sent"] == 200 and got[0]["probes_lost"] == 0
    assert got[1]["interruption_ms"] == pytest.approx(8.0)
    assert got[1]["probes_lost"] == 7
    # exactly what a move's window reads (demo.report uses analyze for the moves)
    moves = analyze(ProbeLog.one_way(sender, receiver), [(1000.3, 1000.5)])
    assert got[1]["interruption_ms"] == moves[0].interruption_ms
    assert demo.no_move_windows(None, receiver, windows) == []


def test_send_statistics_counts_late_sends() -> None:
    sent = [10.0 + i * 0.001 for i in range(100)]
    sent[50:] = [t + 0.005 for t in sent[50:]]  # one stall of 5 ms, then on schedule again
    stats = demo.send_statistics({"sent_at": sent, "realtime": True}, 0.001)
    assert stats["achieved_median_ms"] == pytest.approx(1.0)
    assert stats["achieved_max_ms"] == pytest.approx(6.0)
    assert stats["late_sends"] == 50 and stats["realtime"] is True
    assert demo.send_statistics(None, 0.001) == {"interval_ms": 1.0}


def test_switch_gap_reads_the_switch_not_the_jitter_elsewhere() -> None:
    """The gap at a move's link switch (its middle within SWITCH_WINDOW of the move's
    start) is told apart from a longer gap later in the move's window; the no-move windows
    cut as short give the same statistic's floor."""
    sender, receiver = _logs(0.001, (300, 304))  # 4 lost at t0 + 0.3 s: a 5 ms gap
    received = [r for r in receiver["received"] if not 700 <= r[0] < 709]  # jitter: 10 ms
    receiver = {"received": received}
    start = 1000.0 + 0.299  # the move's link switch, just before the first lost probe
    (gap,) = demo.switch_gaps(sender, receiver, [start])
    assert gap == pytest.approx(5.0)
    # the move's window as the report reads it: the later, longer gap wins there
    (whole,) = analyze(ProbeLog.one_way(sender, receiver), [(start, 1000.999)])
    assert whole.interruption_ms == pytest.approx(10.0)
    (quiet,) = demo.no_move_windows(sender, receiver, [("a", 1000.4, 1000.8)])
    short = quiet["short_windows"]
    assert short["n"] == 2 and short["seconds"] == 0.2
    assert short["median_ms"] == pytest.approx(5.5) and short["max_ms"] == pytest.approx(10.0)
    assert demo.switch_gaps(None, receiver, [start]) == [None]
