"""Home agent switching while registered (RFC 4433 with RFC 3543) between real daemons: the
lab built with a second home agent ``ha2`` (10.1.0.3) on the home network -- a topology of
this test, made with the lab's public API; the lab's own topology is unchanged -- and the
mobile node, away at FA1 with two TCP connections running, moved from HA1 to HA2 by
``mip4 ha redirect``. Both connections survive, every byte verified, none reset."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import pytest

import mip4.lab.configs as lab_configs_module
from mip4.daemon.control import request
from mip4.demo.runner import StreamPair
from mip4.lab.build import Lab
from mip4.lab.configs import LAB_KEY, LAB_SPI
from mip4.lab.scenario import Scenario, Settings
from mip4.lab.topology import DEFAULT, Attachment, Node

from ..system.helpers import MN, delivered, start_both_ways

pytestmark = [pytest.mark.lab, pytest.mark.slow]

HA1, HA2 = "10.1.0.2", "10.1.0.3"
TWO_HOME_AGENTS = replace(
    DEFAULT,
    nodes=(
        *DEFAULT.nodes,
        Node(
            "ha2", "home agent 2", (Attachment("home", IPv4Interface(f"{HA2}/24")),), True, "home"
        ),
    ),
)


def _sa(peer: object) -> str:
    return (
        "\n[[security_associations]]\n"
        f'peer = "{peer}"\nspi = {LAB_SPI + 1}\nkey = "{LAB_KEY.hex()}"\n'
        'algorithm = "hmac-md5"\nreplay = "timestamps"\n'
    )


def _configs(original: Any) -> Any:
    """The lab's files, plus: revocation between HA1 and FA1 (FA-HA SA), and ``ha2``'s file
    (HA1's with its own address, name and socket)."""

    def configs(lab: Lab, **kw: Any) -> dict[str, str]:
        out = dict(original(lab, **kw))
        ha, fa1 = out["ha"], out["fa1"]
        ha2 = ha.replace(f'address = "{HA1}"', f'address = "{HA2}"', 1)
        ha2 = ha2.replace(f'name = "{lab.prefix}-ha"', f'name = "{lab.prefix}-ha2"', 1)
        ha2 = ha2.replace("ha.sock", "ha2.sock", 1)
        assert ha2.count(HA2) == 1 and "ha2.sock" in ha2
        out["ha2"] = ha2
        out["ha"] = ha.replace("[home_agent]\n", "[home_agent]\nrevocation = true\n", 1)
        out["ha"] += _sa(lab.address("fa1"))
        out["fa1"] = fa1.replace("[foreign_agent]\n", "[foreign_agent]\nrevocation = true\n", 1)
        out["fa1"] += _sa(lab.address("ha"))
        return out

    return configs


def _bindings(path: Path) -> list[dict[str, Any]]:
    try:
        answer = request(path, "status", timeout=2.0)
    except (OSError, ValueError):
        return []
    if not answer.get("ok"):
        return []
    return list(answer["status"]["home_agent"]["bindings"])


def test_node_moved_to_another_home_agent_keeps_both_connections(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lab_configs_module, "lab_configs", _configs(lab_configs_module.lab_configs))
    workdir = tmp_path / "run"
    settings = Settings(prefix[2:])
    sc = Scenario(settings, workdir=workdir)
    sc.lab = Lab(settings.lab_id, topology=TWO_HOME_AGENTS, ingress_filter=settings.filtered)
    ha2: subprocess.Popen[bytes] | None = None
    with sc:
        lab = sc.lab
        with (workdir / "ha2.1.log").open("wb") as log:
            ha2 = lab.popen(
                "ha2",
                [sys.executable, "-m", "mip4.cli", "ha", "--config", str(workdir / "ha2.toml")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        pairs: list[StreamPair] = []
        try:
            sc.wait(
                lambda: (
                    bool(request(workdir / "ha2.sock", "ping", timeout=1.0).get("ok"))
                    if (workdir / "ha2.sock").exists()
                    else False
                ),
                20,
                "the second home agent to answer",
            )
            start_both_ways(lab, 60, pairs)
            sc.wait(lambda: min(delivered(pairs)) > 20_000, 10, "the streams to flow")
            rec = sc.move("a")
            assert rec.finished_at is not None, rec
            assert [b.care_of_address for b in sc.ha_status().bindings] == ["10.2.0.2"]
            before = delivered(pairs)
            sc.wait(
                lambda: all(a > b + 10_000 for a, b in zip(delivered(pairs), before, strict=True)),
                5,
                "TCP to flow through FA1 and HA1",
            )

            r = subprocess.run(
                [
                    *(sys.executable, "-m", "mip4.cli", "ha", "redirect", MN),
                    *("--to", HA2, "--socket", str(workdir / "ha.sock")),
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert r.returncode == 0, r.stderr
            registered = sc.wait(
                lambda: (
                    [b["care_of_address"] for b in _bindings(workdir / "ha2.sock")] == ["10.2.0.2"]
                    and sc.ha_status().bindings == ()
                    and sc.mn_status().registered
                ),
                15,
                "the node registered with HA2 and HA1's binding gone",
            )
            before = delivered(pairs)
            took = sc.wait(
                lambda: all(a > b + 10_000 for a, b in zip(delivered(pairs), before, strict=True)),
                10,
                "all four TCP directions to deliver again through HA2",
            )
            print(
                f"\nHA2 held the binding {registered:.2f} s after the command returned;"
                f" TCP resumed {took:.2f} s later"
            )
            mn_log = (workdir / "mn.1.log").read_text(errors="replace")
            events = [json.loads(x).get("event") for x in mn_log.splitlines() if x.startswith("{")]
            assert "mn.revoked" in events
            time.sleep(0.5)
            for p in pairs:
                p.stop()
            reports = [p.reports(60) for p in pairs]
        finally:
            for p in pairs:
                p.close()
            if ha2 is not None and ha2.poll() is None:
                ha2.send_signal(signal.SIGTERM)
                try:
                    ha2.wait(10)
                except subprocess.TimeoutExpired:
                    ha2.kill()
                    ha2.wait(5)
    for spec, client, server in reports:
        assert client is not None and server is not None, spec
        assert client.outcome == server.outcome == "ok", (spec, client.error, server.error)
        assert server.bytes_verified == client.bytes_sent and server.mismatched_bytes == 0
        assert client.bytes_verified == server.bytes_sent and client.mismatched_bytes == 0
        assert client.bytes_sent > 100_000 and server.bytes_sent > 100_000
