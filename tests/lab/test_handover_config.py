"""Daemon configuration of handovers (issue 14): ``[handoff]`` for the foreign agent,
``[handover]`` for the mobile node, checked (one line naming file and key, exit 2) and
handed to the engines by ``build_engine``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mip4.core.fa_handoff import HandoffSettings
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.mn_handover import HandoverMode
from mip4.core.mobile_node import MobileNode
from mip4.daemon.config import load_config
from mip4.daemon.run import build_engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mip4.cli", *args], capture_output=True, text=True, timeout=60
    )


def write(tmp_path: Path, role: str, extra: str) -> Path:
    path = tmp_path / f"{role}.toml"
    path.write_text((EXAMPLES / f"{role}.toml").read_text() + "\n" + extra)
    return path


def test_without_the_tables_the_engines_have_no_handover_part(tmp_path: Path) -> None:
    fa = build_engine(load_config("fa", EXAMPLES / "fa.toml"))
    mn = build_engine(load_config("mn", EXAMPLES / "mn.toml"))
    assert isinstance(fa, ForeignAgent) and fa.handoff is None
    assert isinstance(mn, MobileNode) and mn.handover is None


def test_handoff_table_reaches_the_foreign_agent(tmp_path: Path) -> None:
    cfg = load_config("fa", write(tmp_path, "fa", "[handoff]\nbuffer_limit = 16\n"))
    fa = build_engine(cfg)
    assert isinstance(fa, ForeignAgent) and fa.handoff is not None
    assert fa.handoff.settings == HandoffSettings(buffer_limit=16)
    # an empty table turns it on with the defaults
    fa = build_engine(load_config("fa", write(tmp_path, "fa", "[handoff]\n")))
    assert isinstance(fa, ForeignAgent) and fa.handoff is not None
    assert fa.handoff.settings == HandoffSettings()


@pytest.mark.parametrize("mode", list(HandoverMode))
def test_handover_mode_reaches_the_mobile_node(tmp_path: Path, mode: HandoverMode) -> None:
    cfg = load_config("mn", write(tmp_path, "mn", f'[handover]\nmode = "{mode.value}"\n'))
    mn = build_engine(cfg)
    assert isinstance(mn, MobileNode) and mn.handover is not None
    assert mn.handover.settings.mode is mode


@pytest.mark.parametrize(
    ("role", "extra", "expected"),
    [
        ("mn", '[handover]\nmode = "quick"\n', "handover.mode: expected one of"),
        ("mn", "[handover]\nlifetime = 0\n", "handover lifetime must be 1..65535"),
        ("mn", "[handover]\nspeed = 1\n", "unknown key handover.speed"),
        (
            "fa",
            "[handoff]\nbuffer_timeout = 0\n",
            ": handoff: buffer_limit must be >= 0 and buffer_timeout > 0",
        ),
        ("fa", "[handoff]\nlifetime = 0\n", ": handoff: lifetime not in 1..65535"),
        ("fa", '[handoff]\nlifetime = "x"\n', "handoff.lifetime: expected an integer"),
    ],
)
def test_bad_handover_settings_exit_2_with_one_line(
    tmp_path: Path, role: str, extra: str, expected: str
) -> None:
    path = write(tmp_path, role, extra)
    r = run(role, "--config", str(path), "--check")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and str(path) in r.stderr and expected in r.stderr
    assert "Traceback" not in r.stderr and "handoff: handoff:" not in r.stderr
