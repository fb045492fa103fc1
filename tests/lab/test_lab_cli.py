"""``mip4 lab`` as a user drives it (issue 9, items 16-20): ``demo --keep`` leaves the lab
and its daemons up, bad names are one line and exit 2, ``move c`` configures the co-located
address, killing ``exec`` stops its command, and ``configs`` writes the daemon files of a lab
with any id."""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from mip4.cli import main
from mip4.io.netns import netns_pids
from mip4.lab.build import Lab
from mip4.lab.configs import lab_configs
from mip4.lab.demo import default_out

from ..conftest import leftovers

MIP4 = [sys.executable, "-m", "mip4.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _fake_lab(run_dir: Path, lab_id: str) -> None:
    """The state file ``mip4 lab up`` writes, without the namespaces: enough for the
    command line to find the lab and check its arguments (no root needed)."""
    d = run_dir / f"mip4-lab-{lab_id}"
    d.mkdir(parents=True)
    (d / "state.json").write_text(json.dumps({**Lab(lab_id).describe(), "status": "up"}))


def test_default_demo_output_is_ignored_by_git() -> None:
    """``mip4 lab demo`` without ``--out`` writes to ``./mip4-demo-<timestamp>/``; run from
    the checkout, that must not show up as untracked files (issue 9, item 21)."""
    out = default_out()
    assert not out.is_absolute() and len(out.parts) == 1
    patterns = (ROOT / ".gitignore").read_text().splitlines()
    ignored = [p for p in patterns if p.strip() and not p.startswith("#")]
    assert any(fnmatch.fnmatch(out.name, p.strip("/")) and p.endswith("/") for p in ignored)


@pytest.mark.parametrize(
    ("argv", "bad"),
    [
        (["move", "x"], "'x'"),
        (["move", "cn"], "'cn'"),  # a network, but not one the mobile node visits
        (["exec", "zz", "--", "true"], "'zz'"),
        (["ping", "zz", "10.1.0.100"], "'zz'"),
    ],
    ids=["move-x", "move-cn", "exec-zz", "ping-zz"],
)
def test_bad_node_or_network_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], bad: str
) -> None:
    _fake_lab(tmp_path, "t17")
    status = main(["lab", "--run-dir", str(tmp_path), argv[0], "--id", "t17", *argv[1:]])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert bad in err and "Traceback" not in err


def test_move_help_lists_the_networks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lab", "move", "--help"])
    out = capsys.readouterr().out
    assert "home, a, b, c" in out
    assert "co-located" in out


def test_configs_for_any_lab_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cfg"
    assert (
        main(["lab", "--run-dir", str(tmp_path), "configs", "--id", "q7", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    files = sorted(p.name for p in out.iterdir())
    assert files == ["fa1.toml", "fa2.toml", "ha.toml", "mn.toml"]
    for name in files:
        text = (out / name).read_text()
        assert text == lab_configs(Lab("q7"))[name.removesuffix(".toml")]
        assert "m4q7-" in text and "m4demo" not in text
        tomllib.loads(text)
    # how to start them, with a mip4 that works without an activated venv
    starts = [line for line in printed.splitlines() if " lab exec --id q7 " in line]
    assert len(starts) == 4
    for line in starts:
        command = line.split()[0]
        assert command != "mip4" and (Path(command).is_file() or command == sys.executable)


def test_configs_check_the_daemon_files(tmp_path: Path) -> None:
    """What ``configs`` writes passes ``mip4 ha|fa|mn --check``."""
    out = tmp_path / "cfg"
    assert (
        main(["lab", "--run-dir", str(tmp_path), "configs", "--id", "q8", "--out", str(out)]) == 0
    )
    for node, role in (("ha", "ha"), ("fa1", "fa"), ("fa2", "fa"), ("mn", "mn")):
        done = subprocess.run(
            [*MIP4, role, "--config", str(out / f"{node}.toml"), "--check"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, (node, done.stdout, done.stderr)


@pytest.mark.lab
def test_move_c_configures_the_colocated_address(prefix: str, tmp_path: Path) -> None:
    lab_id = prefix[2:]

    def lab(*argv: str) -> int:
        return main(["lab", "--run-dir", str(tmp_path), *argv])

    def mn_addresses() -> str:
        return Lab.load(lab_id, tmp_path).exec("mn", ["ip", "-o", "-4", "addr", "show"]).stdout

    def mn_default() -> str:
        return Lab.load(lab_id, tmp_path).exec("mn", ["ip", "route", "show", "default"]).stdout

    try:
        assert lab("up", "--id", lab_id) == 0
        assert lab("move", "--id", lab_id, "c") == 0
        assert "10.4.0.100/24" in mn_addresses()
        assert "via 10.4.0.1" in mn_default()
        assert lab("move", "--id", lab_id, "a") == 0  # leaving C gives the address back
        assert "10.4.0.100" not in mn_addresses()
        assert lab("move", "--id", lab_id, "c") == 0
        assert lab("move", "--id", lab_id, "home") == 0
        assert "10.4.0.100" not in mn_addresses()
        assert "10.1.0.100/24" in mn_addresses()
    finally:
        assert lab("down", "--id", lab_id) == 0
    assert leftovers(prefix) == []


@pytest.mark.lab
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killing_exec_stops_its_command(prefix: str, tmp_path: Path, sig: int) -> None:
    lab_id = prefix[2:]
    lab = Lab(lab_id, run_dir=tmp_path)
    lab.up()
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = subprocess.Popen(
            [*MIP4, "lab", "--run-dir", str(tmp_path), "exec", "--id", lab_id, "mn", "--",
             "sleep", "300"],
        )  # fmt: skip
        ns = lab.ns("mn")
        deadline = time.monotonic() + 20
        while not netns_pids(ns) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert netns_pids(ns), "the command never started"
        os.kill(proc.pid, sig)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while netns_pids(ns) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert netns_pids(ns) == [], "the command outlived mip4 lab exec"
        if sig == signal.SIGTERM:
            assert proc.returncode == 128 + signal.SIGTERM  # the command's own status
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        lab.down()
    assert leftovers(prefix) == []


@pytest.mark.lab
@pytest.mark.slow
def test_demo_keep_leaves_the_lab_and_its_daemons_up(prefix: str, tmp_path: Path) -> None:
    lab_id = prefix[2:]
    out = tmp_path / "demo"
    try:
        done = subprocess.run(
            [*MIP4, "lab", "demo", "--id", lab_id, "--out", str(out), "--dwell", "0.5",
             "--keep"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert "--keep: lab" in done.stdout, (done.stdout, done.stderr)
        # the command has exited: its lab and daemons are still there
        lab = Lab.load(lab_id)
        assert all(lab.status()["namespaces"].values())
        for node in ("ha", "fa1", "fa2", "mn"):
            assert netns_pids(lab.ns(node)), f"no daemon left in {node}"
        status = subprocess.run(
            [*MIP4, "status", "--socket", str(out / "daemons" / "mn.sock"), "--json"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["mobile_node"]["at_home"]
    finally:
        Lab(lab_id).down()
    assert leftovers(prefix) == []
