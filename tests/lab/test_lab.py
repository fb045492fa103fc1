"""The namespace lab: built, reachable, the mobile node changes links, torn down cleanly."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mip4.io.netns import Netns, list_netns, netns_exec
from mip4.lab.build import Lab, LabError
from mip4.lab.cli import register

from ..conftest import leftovers

pytestmark = pytest.mark.lab


@pytest.fixture
def lab(prefix: str) -> Iterator[Lab]:
    with Lab(prefix[2:]) as lab:
        yield lab


def test_up_then_down_leaves_nothing_behind(prefix: str) -> None:
    lab = Lab(prefix[2:])
    try:
        lab.up()
        assert sorted(n for n in list_netns() if n.startswith(prefix)) == sorted(lab.namespaces())
        assert len(lab.namespaces()) == 7
        state = json.loads(lab.state_file.read_text())
        assert state["status"] == "up" and state["mobile"] == {"node": "mn", "net": "home"}
        assert state["nodes"]["ha"]["interfaces"] == {"home": f"{prefix}-home"}
        sleeper = lab.popen("mn", ["sleep", "60"])
        deadline = time.monotonic() + 5
        while not lab.status()["processes"].get("mn") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sleeper.pid in lab.status()["processes"]["mn"]
        with pytest.raises(LabError, match="exists"):
            Lab(prefix[2:]).up()
    finally:
        gone = lab.down()
    assert sorted(gone) == sorted(lab.namespaces())
    assert sleeper.wait(timeout=5) != 0  # the process in the namespace was stopped
    assert leftovers(prefix) == []
    assert lab.down() == []  # idempotent


def test_down_removes_unrecorded_leftovers_by_prefix(prefix: str) -> None:
    stray = Netns(f"{prefix}-stray", create=True)
    stray.owned = False
    assert Lab(prefix[2:]).down() == [f"{prefix}-stray"]
    assert leftovers(prefix) == []


def test_failed_up_cleans_up(prefix: str, tmp_path: Path) -> None:
    lab = Lab(prefix[2:], run_dir=tmp_path)
    lab.ingress_filter = True
    # sabotage the last step: an nft table name nft rejects
    lab._install_ingress_filter = lambda: netns_exec(  # type: ignore[method-assign,assignment]
        lab.ns("rtr"), ["nft", "add", "table", "ip", "bad name"]
    )
    with pytest.raises(subprocess.CalledProcessError):
        lab.up()
    assert leftovers(prefix) == []
    assert not lab.state_dir.exists()


def test_reachability_across_the_router(lab: Lab) -> None:
    cn = lab.address("cn")
    for node in ("ha", "fa1", "fa2", "mn"):
        dst = lab.address(node)
        assert lab.ping("cn", dst, timeout=2), f"cn -> {node} {dst}"
        assert lab.ping(node, cn, timeout=2), f"{node} -> cn"
    # the home agent and the mobile node share the home link: no router in between
    route = lab.exec("mn", ["ip", "route", "get", str(lab.address("ha"))]).stdout
    assert "via" not in route
    assert lab.ping("fa1", lab.address("fa2"), timeout=2)


def test_the_mobile_node_changes_links(lab: Lab) -> None:
    ha, cn = lab.address("ha"), lab.address("cn")
    mn_if = lab.ifname("mn")
    assert lab.ping("mn", ha, timeout=2)

    lab.move("a")
    bridge_a = lab.exec("sw", ["ip", "-o", "link", "show", "master", lab.bridge("a")]).stdout
    assert lab.port("mn", "a") in bridge_a
    assert (
        lab.port("mn", "a")
        not in lab.exec("sw", ["ip", "-o", "link", "show", "master", lab.bridge("home")]).stdout
    )
    # the home agent is no longer on the mobile node's link
    lab.exec("mn", ["ip", "neigh", "flush", "dev", mn_if])
    assert lab.ping("mn", ha, timeout=0.5) == []
    # foreign agent 1 is: reach it by a host route on the link, as a visitor would. Its
    # echo reply goes towards the home network, so check the link layer: the mobile node
    # resolved FA1's hardware address on its new link.
    lab.exec("mn", ["ip", "route", "add", str(lab.address("fa1")), "dev", mn_if], check=True)
    lab.ping("mn", lab.address("fa1"), timeout=0.5)
    with Netns(lab.ns("fa1")) as fa1, Netns(lab.ns("mn")) as mn:
        fa1_mac = fa1.link_address(lab.ifname("fa1"))
        assert mn.neighbour(mn_if, lab.address("fa1")) == fa1_mac
    lab.exec("mn", ["ip", "route", "del", str(lab.address("fa1")), "dev", mn_if], check=True)

    # network C: the mobile node takes the co-located address and the router there
    lab.move("c")
    net_c = lab.topology.network("c")
    assert net_c.colocated is not None
    lab.exec("mn", ["ip", "addr", "add", str(net_c.colocated), "dev", mn_if], check=True)
    lab.exec("mn", ["ip", "route", "replace", "default", "via", str(net_c.gateway)], check=True)
    assert lab.wait_reachable("mn", cn)
    state = json.loads(lab.state_file.read_text())
    assert state["mobile"]["net"] == "c"
    assert Lab.load(lab.lab_id).mobile_net == "c"

    # and home again
    lab.exec("mn", ["ip", "addr", "del", str(net_c.colocated), "dev", mn_if], check=True)
    lab.exec("mn", ["ip", "route", "replace", "default", "via", "10.1.0.1"], check=True)
    lab.move("home")
    assert lab.wait_reachable("mn", ha)
    assert "UP" in lab.exec("mn", ["ip", "-o", "link", "show", mn_if]).stdout


def test_ingress_filter_drops_the_home_address_on_a_foreign_network(prefix: str) -> None:
    with Lab(prefix[2:], ingress_filter=True) as lab:
        net_c = lab.topology.network("c")
        assert net_c.colocated is not None
        mn_if = lab.ifname("mn")
        lab.move("c")
        lab.exec("mn", ["ip", "addr", "add", str(net_c.colocated), "dev", mn_if], check=True)
        lab.exec("mn", ["ip", "route", "replace", "default", "via", str(net_c.gateway)])
        cn = lab.address("cn")
        assert lab.wait_reachable("mn", cn)  # from the co-located address: fine
        home = lab.address("mn")
        assert lab.ping("mn", cn, src=home, timeout=0.5) == []  # from the home address: no
        rules = lab.exec("rtr", ["nft", "list", "table", "ip", f"{prefix}_ingress"]).stdout
        drops = [line for line in rules.splitlines() if f'"{lab.ifname("rtr", "c")}"' in line]
        assert drops and "packets 0 " not in drops[0]


def test_cli_up_status_exec_move_down(prefix: str, tmp_path: Path) -> None:
    lab_id = prefix[2:]
    parser = argparse.ArgumentParser(prog="mip4")
    register(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(["lab", "--run-dir", str(tmp_path), *argv])
        status: int = args.func(args)
        return status

    try:
        assert run("up", "--id", lab_id) == 0
        assert run("up", "--id", lab_id) == 2  # exists
        assert run("status") == 0  # the only lab in this run dir
        assert run("ping", "cn", "10.1.0.100", "-c", "1") == 0
        assert run("exec", "mn", "--", "ip", "-o", "addr", "show", "to", "10.1.0.100") == 0
        assert run("exec", "mn", "--", "false") == 1
        assert run("move", "b") == 0
        assert Lab.load(lab_id, tmp_path).mobile_net == "b"
        assert run("ping", "cn", "10.1.0.100", "-c", "1", "-W", "0.3") == 1
    finally:
        assert run("down", "--id", lab_id) == 0
    assert run("down", "--id", lab_id) == 0
    assert run("status") == 2  # no lab left
    assert leftovers(prefix) == []


def test_python_dash_m_entry_point(prefix: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mip4.lab", "--run-dir", str(tmp_path), "down", "--id",
         prefix[2:]],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "removed 0 namespace(s)" in out.stdout


def test_register_plugs_into_the_mip4_command_line(tmp_path: Path) -> None:
    from mip4.cli import build_parser

    parser = build_parser(("mip4.lab.cli",))
    args = parser.parse_args(["lab", "--run-dir", str(tmp_path), "status"])
    assert args.func(args) == 2  # no lab in this directory: a one-line error, no traceback
    args = parser.parse_args(["lab", "exec", "--id", "x1", "mn", "--", "ip", "-br", "link"])
    assert args.node == "mn" and args.cmd[-3:] == ["ip", "-br", "link"]
