"""``python -m mip4.tools.bench_store`` runs and reports its figures (the target itself is
the benchmark's business, not a test's: it depends on the machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mip4.tools import bench_store


def test_in_process_bench_reports_every_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_store.main(["--nodes", "40", "--rounds", "2", "--batch", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["rates"]) == set(bench_store.MODES) == set(out["ratios"])
    assert all(rate > 0 for rate in out["rates"].values())
    assert out["ratios"]["memory"] == 1.0 and out["target"] == bench_store.TARGET
    assert set(out["batched"]) == set(bench_store.MODES)


def test_the_text_report_prints_rates_and_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_store.main(["--nodes", "20", "--rounds", "1"]) == 0
    text = capsys.readouterr().out
    for mode in bench_store.MODES:
        assert mode in text
    assert "x memory" in text and "the target of 0.8x" in text


def test_modes_are_interleaved_and_the_median_of_the_round_ratios_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench_store.main(["--nodes", "30", "--rounds", "3", "--group", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["group"] == 8
    for mode in bench_store.MODES[1:]:
        per_round = out["round_ratios"][mode]
        assert len(per_round) == 3 and all(r > 0 for r in per_round)
        assert out["ratios"][mode] == sorted(per_round)[1]  # the median
        assert len(out["round_wall_ratios"][mode]) == 3


def test_one_round_group_runs_each_mode_once_in_alternating_order(tmp_path: Path) -> None:
    run = bench_store.bench(10, 2, tmp_path, group=4)
    assert len(run.rounds) == 2
    assert all(set(r) == set(bench_store.MODES) for r in run.rounds)
    assert list(run.rounds[0]) == list(bench_store.MODES)
    assert list(run.rounds[1]) == list(reversed(bench_store.MODES))
    # 10 renewals per round per mode, the unmeasured first round left out; the daemon's
    # commits: normal one per request, full at most one per group of 4 (fewer when the
    # writer thread's commit covers the groups handled while it synced), one at least
    assert all(r.registrations == 20 for r in run.results.values())
    assert run.results["sqlite-normal"].commits == 3 * 10
    assert 3 <= run.results["sqlite-full"].commits <= 3 * 3
    (tmp_path / "b").mkdir()
    sync = bench_store.bench(10, 2, tmp_path / "b", group=4, daemon=False)
    assert sync.results["sqlite-full"].commits == sync.results["sqlite-normal"].commits == 9
    assert bench_store.median([3.0, 1.0, 2.0, 10.0]) == 2.5
