"""``mip4 ha|fa|mn``: configuration errors exit 2 with one line naming file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mip4.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_config_error_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "ha.toml"
    bad.write_text(
        (EXAMPLES / "ha.toml").read_text().replace("max_lifetime = 1800", 'max_lifetime = "x"')
    )
    r = run("ha", "--config", str(bad))
    assert r.returncode == 2
    assert r.stderr == f"mip4 ha: {bad}: home_agent.max_lifetime: expected an integer, got 'x'\n"
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_a_bad_flood_steering_value_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "ha.toml"
    text = (EXAMPLES / "ha.toml").read_text()
    bad.write_text(text.replace("[io]\n", '[io]\nflood_steering = "maybe"\n', 1))
    r = run("ha", "--config", str(bad), "--check")
    assert r.returncode == 2
    assert r.stderr.startswith(f"mip4 ha: {bad}: io.flood_steering: ")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("role", ["ha", "fa", "mn"])
def test_check_only(role: str, tmp_path: Path) -> None:
    r = run(role, "--config", str(EXAMPLES / f"{role}.toml"), "--check")
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout
    typo = tmp_path / f"{role}.toml"
    typo.write_text((EXAMPLES / f"{role}.toml").read_text() + "\n[daemon2]\n")
    r = run(role, "--config", str(typo), "--check")
    assert r.returncode == 2 and "unknown key daemon2" in r.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    r = run("mn", "--config", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "nope.toml: cannot read" in r.stderr


def test_a_negative_status_limit_exits_2_with_one_line(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mip4.cli", "status", "--limit", "-1", "-s", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr == "mip4 status: --limit -1: 0 (all) or more\n"
