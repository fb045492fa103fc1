"""``python -m mip4.tools.bench_store`` runs and reports its figures (the target itself is
the benchmark's business, not a test's: it depends on the machine)."""

from __future__ import annotations

import json

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
