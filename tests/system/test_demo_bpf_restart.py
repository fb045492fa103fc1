"""Crash and clean stop of the daemons on the bpf plane (issue 12), on the real lab with
every role on it (``[io] dataplane = "bpf"`` added to each configuration as the lab writes
it).

The mobile node registers through FA1, reverse tunnelled. Then the home agent and FA1 are
SIGKILLed: the correspondent still reaches the home address, both ways through both
tunnels -- the tc filters keep the programs and their maps (bindings, peers, visitor,
reverse tunnel) alive without a daemon. Restarted, each daemon replaces its programs and
starts from maps reconciled with its (empty) tables; the node re-registers within one
lifetime and the path works again through the new instances. Finally every daemon gets
SIGTERM: no clsact hook (hence no program, no tc filter), no bpf reverse-tunnel rule, no
pinned map and no TUN device is left in any namespace of the lab.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

import mip4.lab.configs as lab_configs_module
from mip4.io.executor import BPF_REVERSE_TABLE
from mip4.lab.configs import with_lab_dataplane
from mip4.lab.daemons import DaemonBackend
from mip4.lab.scenario import Scenario, Settings

from .helpers import lab_id

pytestmark = [pytest.mark.lab, pytest.mark.slow]

MN = "10.1.0.100"
FA1_COA = "10.2.0.2"
NODES = ("ha", "fa1", "fa2", "mn")


def _all_on_bpf(monkeypatch: pytest.MonkeyPatch) -> None:
    original: Callable[..., dict[str, str]] = lab_configs_module.lab_configs

    def with_bpf(*args: Any, **kw: Any) -> dict[str, str]:
        texts = original(*args, **kw)
        for node in NODES:
            assert texts[node].count("[io]\n") == 1
        return with_lab_dataplane(texts, "bpf")

    monkeypatch.setattr(lab_configs_module, "lab_configs", with_bpf)


def _in(ns: str, argv: list[str]) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=10, check=True
    ).stdout


@pytest.mark.usefixtures("needs_bpf")
def test_sigkill_keeps_forwarding_restart_reconciles_sigterm_leaves_nothing(
    lab_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _all_on_bpf(monkeypatch)
    lifetime = 8
    with Scenario(Settings(lab_id(lab_prefix), lifetime=lifetime)) as sc:
        agents = sc.agents
        assert isinstance(agents, DaemonBackend)
        for node in NODES:
            st = agents.status(node)
            assert st is not None and st["dataplane"] == "bpf", (node, st)
        assert sc.move("a").registered
        assert [b.care_of_address for b in sc.ha_status().bindings] == [FA1_COA]
        assert sc.lab.wait_reachable("cn", MN, within=5)

        # SIGKILL: no daemon left on the path, the fast paths go on forwarding
        for node in ("ha", "fa1"):
            proc = agents.procs[node]
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        tuns = {n: _in(sc.lab.ns(n), ["ip", "-o", "link", "show", "type", "tun"]) for n in NODES}
        assert tuns["fa2"].strip() != "" and tuns["mn"].strip() != "", tuns  # alive
        del tuns["fa2"], tuns["mn"]
        assert all(t.strip() == "" for t in tuns.values()), tuns  # the user-space plane died
        assert sc.lab.wait_reachable("cn", MN, within=5), "forwarding lost with the daemons"
        assert "clsact" in _in(sc.lab.ns("ha"), ["tc", "qdisc", "show"])

        # restart: programs replaced, maps reconciled; the node re-registers
        for node in ("fa1", "ha"):
            agents.restart(node, signal.SIGKILL)
        sc.wait(
            lambda: [b.care_of_address for b in sc.ha_status().bindings] == [FA1_COA],
            lifetime + 4,
            "the mobile node to re-register with the restarted home agent",
        )
        # the home agent holds the binding once it has replied; FA1 installs the visitor
        # when it relays that reply, and the node has it when it reports itself registered
        sc.wait(
            lambda: sc.mn_status().registered and sc.mn_status().care_of_address == FA1_COA,
            5,
            "the mobile node to have its reply through FA1",
        )
        assert sc.lab.wait_reachable("cn", MN, within=5)
        assert len(sc.lab.ping("cn", MN, count=3)) == 3  # through FA1's restarted fast path
        st = agents.status("ha")
        assert st is not None and st["dataplane"] == "bpf"
        assert st["fast_path"]["bindings"].get(MN, {}).get("packets", 0) > 0, st["fast_path"]
        st = agents.status("fa1")
        assert st is not None
        assert st["fast_path"]["events"].get("decap_visitor", 0) > 0, st["fast_path"]

        # SIGTERM: nothing of the planes is left
        agents.close()
        assert all(code == 0 for code in agents.stopped.values()), agents.stopped
        for node in NODES:
            ns = sc.lab.ns(node)
            assert "clsact" not in _in(ns, ["tc", "qdisc", "show"]), node
            assert f"lookup {BPF_REVERSE_TABLE}" not in _in(ns, ["ip", "rule", "show"]), node
            assert _in(ns, ["ip", "-o", "link", "show", "type", "tun"]).strip() == "", node
        pins = subprocess.run(
            ["find", "/sys/fs/bpf/mip4", "-name", f"{sc.lab.prefix}*"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        assert pins.strip() == "", pins
