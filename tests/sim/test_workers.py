"""``mip4 sim --workers``: the nodes split over processes give the run one process gives."""

from __future__ import annotations

import io
import itertools
import json
import os
from pathlib import Path

import pytest

from mip4.cli import main
from mip4.sim import Scenario, Simulator
from mip4.sim.mobility import RandomWaypoint, draw
from mip4.sim.model import share
from mip4.sim.workers import _Prefixed, run_workers

#: no loss (the only draws whose order depends on the split: see mip4.sim.workers), with
#: reboots of both kinds of agent and renewals (120 s lifetime)
SPLIT = Scenario(
    nodes=120, foreign_agents=9, home_agents=2, duration=600.0, seed=5, reboot_rate=6.0,
    lifetime=120,
)  # fmt: skip


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_give_the_same_totals_as_one_process(workers: int) -> None:
    one = run_workers(SPLIT, 1)
    split = run_workers(SPLIT, workers)
    assert split.workers == workers and one.workers == 1
    assert one.invariant_violations == [] and split.invariant_violations == []
    assert one.reboots["home agent"] > 0 and one.reboots["foreign agent"] > 0
    assert split.reboots == one.reboots
    # every registration, at the same simulated second, with the same reply codes
    assert split.home_agent_accepts_per_second == one.home_agent_accepts_per_second
    assert split.registrations_per_second == one.registrations_per_second
    assert split.reply_codes == one.reply_codes and one.accepted > SPLIT.nodes
    # the same handoffs with the same latencies, the same binding table and visitor
    # lists at every sample, the same state at the end
    assert split.handoffs == one.handoffs > 0
    assert sorted(split.handoff_samples) == sorted(one.handoff_samples)
    assert sorted(split.first_registration_samples) == sorted(one.first_registration_samples)
    assert split.bindings_over_time == one.bindings_over_time
    assert split.registered_at_end == one.registered_at_end
    assert split.in_handoff_at_end == one.in_handoff_at_end
    assert split.disagreements_at_end == one.disagreements_at_end
    assert split.dropped == one.dropped
    # the engines did the same (but for the replicas' own periodic work, below)
    skip = ("foreign agent: timer", "foreign agent: LinkUp", "home agent: timer")
    for what, c in one.engine_cost_by_input.items():
        if what not in skip:
            assert split.engine_cost_by_input[what]["calls"] == c["calls"], what
    assert split.actions == one.actions
    # what differs: every replica's periodic advertisements and timers are events of its
    # own process (one periodic advertisement per agent per interval and worker)
    assert split.events > one.events
    assert split.cpu_seconds > 0 and split.peak_rss_bytes > one.peak_rss_bytes


def test_workers_with_loss_keep_invariants_and_sum_their_figures() -> None:
    """With loss the links' draws follow each worker's own events (a different, equally
    likely run): the totals are the workers' sums, and every invariant holds in each."""
    sc = Scenario(
        nodes=90, foreign_agents=4, home_agents=3, duration=300.0, seed=2, radio_loss=0.05,
        core_loss=0.05,
    )  # fmt: skip
    parts = [Simulator(sc, worker=(w, 2)).run() for w in range(2)]
    merged = run_workers(sc, 2)
    assert merged.invariant_violations == []
    assert merged.accepted == sum(p.accepted for p in parts)
    assert merged.dropped == {
        k: sum(p.dropped.get(k, 0) for p in parts) for k in {k for p in parts for k in p.dropped}
    }
    assert merged.bindings_over_time[-1][1] == sum(p.bindings_over_time[-1][1] for p in parts)
    assert merged.registered_at_end >= 0.8 * sc.nodes


def test_a_node_moves_the_same_in_any_share() -> None:
    whole = RandomWaypoint(30, 4, 3, speed_min=0.01, speed_max=0.05, dwell=10.0, key=9)
    part = RandomWaypoint(10, 4, 3, speed_min=0.01, speed_max=0.05, dwell=10.0, key=9, first=20)
    for i in range(10):
        t = 0.0
        while t < 1500.0:
            whole.advance(20 + i, t)
            part.advance(i, t)
            assert whole.cell(20 + i) == part.cell(i)
            t = whole.next_change(20 + i)
            assert part.next_change(i) == t
    assert 0.0 <= draw(9, 0, 0) < 1.0 and draw(9, 0, 0) != draw(9, 1, 0) != draw(9, 0, 1)


def test_shares_cover_the_population_once() -> None:
    for nodes, workers in ((10, 3), (1_000_000, 2), (7, 7)):
        bounds = [share(nodes, w, workers) for w in range(workers)]
        assert bounds[0][0] == 0 and bounds[-1][1] == nodes
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        sizes = [hi - lo for lo, hi in bounds]
        assert max(sizes) - min(sizes) <= 1


def test_cli_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    args = ["sim", "--nodes", "30", "--fas", "4", "--has", "2", "--duration", "120"]
    assert main([*args, "--workers", "2", "--json", str(out), "--progress"]) == 0
    captured = capsys.readouterr()
    assert "2 worker processes" in captured.out
    data = json.loads(out.read_text())
    assert data["workers"] == 2 and data["invariant_violations"] == []
    assert main([*args, "--workers", "0"]) == 2
    assert main([*args, "--workers", "31"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_progress_lines_carry_the_worker() -> None:
    out = io.StringIO()
    stream = _Prefixed(out, "w1 ")
    print("sim 0 s", "bindings 3", file=stream)
    print("sim 60 s", file=stream, flush=True)
    assert out.getvalue() == "w1 sim 0 s bindings 3\nw1 sim 60 s\n"


def test_each_worker_is_a_session_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """With scheduler autogroups the CPU is shared between sessions: workers left in the
    command's session would share one session's part of a busy machine (measured here:
    two 2-worker runs side by side, 46.3 s in one session, 28.1 s in their own)."""
    from mip4.sim import workers
    from mip4.sim.report import Report

    def fake(scenario: Scenario, worker: tuple[int, int], **_: object) -> Report:
        r = Report.empty(scenario)
        leader = os.getsid(0) == os.getpid() != os.getsid(os.getppid())
        r.logs = {"own session": int(leader)}
        return r

    monkeypatch.setattr(workers, "run_one", fake)
    merged = run_workers(SPLIT, 2)  # forked after the patch: the workers run ``fake``
    assert merged.logs == {"own session": 2}
