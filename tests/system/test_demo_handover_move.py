"""Issue 14: ``Lab.move(net, anticipate=True)`` and ``mip4 lab move --anticipate`` on
running daemons -- the move is announced through the control sockets before the switch,
and the mobile node registers through the announced agent without waiting for an
advertisement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mip4.lab.handover import AnnounceError, announce
from mip4.lab.scenario import Scenario, Settings

from .helpers import lab_id

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def mn_events(workdir: Path) -> list[dict[str, object]]:
    out = []
    for path in sorted(workdir.glob("mn.*.log")):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def test_lab_move_anticipate_reaches_the_mobile_node(lab_prefix: str, tmp_path: Path) -> None:
    settings = Settings(lab_id(lab_prefix), handover="fast")
    with Scenario(settings, workdir=tmp_path / "daemons") as sc:
        lab = sc.lab
        assert sc.workdir is not None
        # the Python API: announced, then moved
        lab.move("a", dhcp=True, anticipate=True)
        sc.net = "a"
        sc.wait(lambda: sc.registered_at("a"), 15, "registration on a")
        events = [e["event"] for e in mn_events(sc.workdir)]
        assert "mn.move_anticipated" in events and "mn.anticipation_used" in events
        # the command line, with the source trigger to the current agent (FA1)
        proc = subprocess.run(
            [
                sys.executable, "-m", "mip4.cli", "lab", "move", "--id", lab.lab_id, "b",
                "--anticipate", "--source-trigger",
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stdout + proc.stderr  # no control dir: refused
        assert "no answer on /run/mip4/" in proc.stderr
        assert proc.stderr.count("\n") == 1
        proc = subprocess.run(
            [
                sys.executable, "-m", "mip4.cli", "lab", "move", "--id", lab.lab_id, "b",
                "--anticipate", "--source-trigger", "--control-dir", str(sc.workdir),
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lab.mobile_net = sc.net = "b"
        sc.wait(lambda: sc.registered_at("b"), 15, "registration on b")
        events = [e["event"] for e in mn_events(sc.workdir)]
        assert events.count("mn.move_anticipated") == 2
        assert events.count("mn.fast_binding_acked") == 1
        # a network without an agent cannot be announced
        with pytest.raises(AnnounceError, match="no foreign agent"):
            announce(lab, "c")
