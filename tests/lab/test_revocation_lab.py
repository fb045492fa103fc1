"""Registration revocation (RFC 3543) between the real daemons on the namespace lab: the
lab's configurations plus revocation and an FA-HA security association between the home
agent and FA1 (added by this test, the lab itself unchanged); ``mip4 ha revoke`` and
``mip4 fa revoke`` on the command line, over the daemons' control sockets."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mip4.lab.configs as lab_configs_module
from mip4.lab.build import Lab
from mip4.lab.configs import LAB_KEY, LAB_SPI
from mip4.lab.scenario import Scenario, Settings

pytestmark = pytest.mark.lab


def _sa(peer: object) -> str:
    return (
        "\n[[security_associations]]\n"
        f'peer = "{peer}"\nspi = {LAB_SPI + 1}\nkey = "{LAB_KEY.hex()}"\n'
        'algorithm = "hmac-md5"\nreplay = "timestamps"\n'
    )


def with_revocation(original: Callable[..., dict[str, str]]) -> Callable[..., dict[str, str]]:
    """The lab's configurations, plus revocation on the home agent and FA1 and an FA-HA
    security association between them (RFC 3543 authenticates with FA-HA)."""

    def configs(lab: Lab, **kw: Any) -> dict[str, str]:
        out = dict(original(lab, **kw))
        ha_ip, fa1_ip = lab.address("ha"), lab.address("fa1")
        out["ha"] = out["ha"].replace("[home_agent]\n", "[home_agent]\nrevocation = true\n", 1)
        out["ha"] += _sa(fa1_ip)
        out["fa1"] = out["fa1"].replace(
            "[foreign_agent]\n", "[foreign_agent]\nrevocation = true\n", 1
        )
        out["fa1"] += _sa(ha_ip)
        return out

    return configs


def events(sc: Scenario, node: str) -> list[dict[str, Any]]:
    backend = sc.agents
    path = backend.log_path(node)  # type: ignore[attr-defined]
    out = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            rec["event"] = str(rec.get("event", "")).replace("-", ".", 1).replace("-", "_")
            out.append(rec)
    return out


def count(sc: Scenario, node: str, event: str) -> int:
    return sum(1 for e in events(sc, node) if e["event"] == event)


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mip4.cli", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_revocation_by_the_home_agent_and_by_the_foreign_agent(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        lab_configs_module, "lab_configs", with_revocation(lab_configs_module.lab_configs)
    )
    workdir = tmp_path / "run"
    with Scenario(Settings(prefix[2:]), workdir=workdir) as sc:
        mn_ip = str(sc.lab.address("mn"))
        move = sc.move("a")
        assert move.finished_at is not None, move
        registered = count(sc, "mn", "mn.registered")

        # -- the home agent revokes: FA1 drops the visitor, informs the node, acknowledges
        r = cli("ha", "revoke", mn_ip, "--socket", str(workdir / "ha.sock"))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"mip4 ha revoke: revoked {mn_ip}, revocations_sent 1"
        sc.wait(
            lambda: (
                count(sc, "ha", "ha.revocation_acknowledged") == 1
                and count(sc, "fa1", "fa.visitor_revoked") == 1
                and count(sc, "mn", "mn.revoked") == 1
                and count(sc, "mn", "mn.registered") > registered
                and sc.mn_status().registered
            ),
            15,
            "revocation by the home agent, acknowledged, and the node registered again",
        )
        (revoked,) = [e for e in events(sc, "fa1") if e["event"] == "fa.visitor_revoked"]
        assert revoked["informed"] is True
        assert len(sc.ha_status().bindings) == 1
        registered = count(sc, "mn", "mn.registered")

        # -- FA1 revokes: the home agent removes the binding and acknowledges
        r = cli("fa", "revoke", mn_ip, "--socket", str(workdir / "fa1.sock"))
        assert r.returncode == 0, r.stderr
        sc.wait(
            lambda: (
                count(sc, "fa1", "fa.revocation_acknowledged") == 1
                and count(sc, "mn", "mn.revoked") == 2
                and count(sc, "mn", "mn.registered") > registered
                and sc.mn_status().registered
            ),
            15,
            "revocation by FA1, acknowledged, and the node registered again",
        )
        by_fa = [
            e
            for e in events(sc, "ha")
            if e["event"] == "ha.binding_revoked" and e.get("by") == "foreign_agent"
        ]
        assert len(by_fa) == 1

        # -- a node that has no binding: one line, exit 1
        r = cli("ha", "revoke", "bob@example.net", "--socket", str(workdir / "ha.sock"))
        assert r.returncode == 1
        assert r.stderr.strip() == "mip4 ha revoke: revoke: no binding for bob@example.net"
