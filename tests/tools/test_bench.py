"""Smoke test of ``mip4 bench codec``: the output shape, not the speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mip4.cli import main
from mip4.tools.bench import OPERATIONS, mip4_operations, scapy_operations, workload
from mip4.wire.messages import decode_message

ROOT = Path(__file__).resolve().parents[2]


def test_bench_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "codec", "--json", "--iterations", "3", "--repeat", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["results"]) == set(OPERATIONS)
    for op, r in out["results"].items():
        assert r["mip4_ops_per_s"] > 0
        assert r["scapy_ops_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["mip4_ops_per_s"] / r["scapy_ops_per_s"])
        assert (r["target_ratio"] is not None) == (op in ("decode", "sign+verify"))
        if r["target_ratio"] is not None:
            assert r["target_met"] == (r["ratio"] >= r["target_ratio"])
    assert out["repeat"] == 1 and "bytes" in out["workload"]


def test_bench_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "codec", "--iterations", "2", "--repeat", "1", "--no-scapy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mip4 codec benchmark")
    rows = [ln.split()[0] for ln in lines[5:]]
    assert rows == list(OPERATIONS)


def test_both_sides_do_the_same_work() -> None:
    """The scapy side builds and checks the very bytes ours produces (else the ratio would
    compare different work)."""
    _, signed, raw = workload()
    ours = mip4_operations()
    theirs = scapy_operations()
    assert theirs is not None
    assert ours["encode"]() == raw == theirs["encode"]() == theirs["sign"]()
    assert decode_message(raw) == ours["decode"]() == signed
    assert bytes(theirs["decode"]()) == raw  # type: ignore[call-overload]


def test_benchmarks_script() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "codec.py"), "--json", "--iterations", "1",
         "--repeat", "1", "--no-scapy"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(r.stdout)["results"]["decode"]["scapy_ops_per_s"] is None


def test_bench_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "codec", "--profile", "decode", "--iterations", "50"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mip4 decode: 50 calls")
    assert "decode_message" in out and "tottime" in out
