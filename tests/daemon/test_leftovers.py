"""Start-up clean-up in a namespace: a stale persistent TUN device of the configured name,
reverse-tunnel rules and routes (table 434), a mobile node's withdrawn home subnet route,
what a killed daemon's undo journal names (a home agent's proxy ARP entries)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mip4.io.netns import Netns

pytestmark = pytest.mark.lab

SCRIPT = (
    "import json, sys; from mip4.daemon.config import load_config; "
    "from mip4.daemon.run import clear_leftovers; "
    "print(json.dumps(clear_leftovers(load_config(sys.argv[1], sys.argv[2]))))"
)

KILLED_HA = (
    "import sys; from mip4.daemon.config import load_config; "
    "from mip4.daemon.run import journal_path; from mip4.io.netns import Netns; "
    "from mip4.io.undo import Journal; "
    "ns = Netns(None, journal=Journal(journal_path(load_config('ha', sys.argv[1])))); "
    "ns.add_proxy_neighbour(sys.argv[2], sys.argv[3])"
)

KILLED_MN = (
    "import sys; from ipaddress import IPv4Address, IPv4Network; "
    "from mip4.daemon.config import load_config; "
    "from mip4.daemon.run import journal_path; from mip4.io.netns import Netns; "
    "from mip4.io.undo import Journal; "
    "ns = Netns(None, journal=Journal(journal_path(load_config('mn', sys.argv[1])))); "
    "ns.withdraw_route(IPv4Network('10.1.0.0/24'), sys.argv[2], IPv4Address('10.1.0.100'), "
    "undo=ns.new_stack('away from home'))"
)


def veth(ns: Netns, name: str) -> None:
    """An interface with a carrier (no dummy module here): a veth pair, both ends up."""
    ns.exec(["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"])
    ns.exec(["ip", "link", "set", name, "up"])
    ns.exec(["ip", "link", "set", f"{name}p", "up"])


def clear(ns: Netns, role: str, path: Path) -> list[str]:
    r = ns.exec([sys.executable, "-c", SCRIPT, role, str(path)], check=True)
    result: list[str] = json.loads(r.stdout)
    return result


def test_stale_tun_rules_and_routes_are_removed(
    prefix: str, make_netns: Callable[[str], Netns], tmp_path: Path
) -> None:
    ns = make_netns("cl")
    tun = f"{prefix}-t"
    veth(ns, f"{prefix}-e")
    ns.exec(["ip", "tuntap", "add", "mode", "tun", "name", tun])  # persistent
    ns.exec(["ip", "route", "add", "default", "dev", f"{prefix}-e", "table", "434"])
    ns.exec(["ip", "rule", "add", "from", "10.1.0.100", "table", "434", "priority", "4340"])
    ns.exec(["ip", "rule", "add", "from", "10.1.0.101", "table", "100", "priority", "4341"])
    cfg = tmp_path / "fa.toml"
    cfg.write_text(
        "[foreign_agent]\n[[foreign_agent.links]]\n"
        f'interface = "{prefix}-e"\naddress = "10.2.0.2"\n[io]\ntun_name = "{tun}"\n'
    )
    removed = clear(ns, "fa", cfg)
    assert removed == [f"link {tun}", "rule priority 4340 table 434", "routes of table 434"]
    links = ns.exec(["ip", "-o", "link"]).stdout
    assert tun not in links and f"{prefix}-e" in links
    rules = ns.exec(["ip", "rule"]).stdout
    assert "lookup 434" not in rules and "lookup 100" in rules  # only ours
    assert ns.exec(["ip", "route", "show", "table", "434"]).stdout.strip() == ""
    assert clear(ns, "fa", cfg) == []  # idempotent


def test_mobile_node_home_subnet_route_is_put_back(
    prefix: str, make_netns: Callable[[str], Netns], tmp_path: Path
) -> None:
    ns = make_netns("mn")
    eth = f"{prefix}-e"
    veth(ns, eth)
    ns.exec(["ip", "addr", "add", "10.1.0.100/24", "dev", eth])
    cfg = tmp_path / "mn.toml"
    cfg.write_text(
        '[mobile_node]\nhome_address = "10.1.0.100"\nhome_agent = "10.1.0.2"\n'
        f'[io]\ninterfaces = ["{eth}"]\ntun_name = "{prefix}-t"\n'
        f'[daemon]\ncontrol_socket = "{tmp_path}/mn.sock"\n'
        '[[security_associations]]\npeer = "10.1.0.2"\nspi = 256\nkey = "00ff"\n'
    )
    # as a mobile node killed away from home leaves it: the route withdrawn by the
    # executor's recipe, with the daemon's journal, and never put back
    ns.exec([sys.executable, "-c", KILLED_MN, str(cfg), eth], check=True)
    assert "10.1.0.0/24" not in ns.exec(["ip", "route"]).stdout
    assert clear(ns, "mn", cfg) == [f"restored route 10.1.0.0/24 dev {eth}"]
    routes = ns.exec(["ip", "route"]).stdout
    assert f"10.1.0.0/24 dev {eth} proto kernel scope link src 10.1.0.100" in routes
    assert clear(ns, "mn", cfg) == []


def test_home_agent_stale_proxy_neighbours_are_removed(
    prefix: str, make_netns: Callable[[str], Netns], tmp_path: Path
) -> None:
    ns = make_netns("ha")
    eth = f"{prefix}-e"
    veth(ns, eth)
    ns.exec(["ip", "addr", "add", "10.1.0.2/24", "dev", eth])
    ns.exec(["ip", "neigh", "add", "proxy", "192.0.2.7", "dev", eth])  # not the daemon's
    cfg = tmp_path / "ha.toml"
    cfg.write_text(
        '[home_agent]\naddress = "10.1.0.2"\nhome_network = "10.1.0.0/24"\n'
        f'interface = "{eth}"\n[io]\ntun_name = "{prefix}-t"\n'
        f'[daemon]\ncontrol_socket = "{tmp_path}/ha.sock"\n'
    )
    # a killed home agent's proxy entry: made as the executor makes it, with the daemon's
    # journal, and never undone
    ns.exec([sys.executable, "-c", KILLED_HA, str(cfg), eth, "10.1.0.100"], check=True)
    assert "10.1.0.100" in ns.exec(["ip", "neigh", "show", "proxy"]).stdout
    assert list(tmp_path.glob("*.undo.json"))
    assert clear(ns, "ha", cfg) == [f"proxy neighbour 10.1.0.100 dev {eth}"]
    left = ns.exec(["ip", "neigh", "show", "proxy"]).stdout
    assert "10.1.0.100" not in left and "192.0.2.7" in left
    assert clear(ns, "ha", cfg) == []
    assert not list(tmp_path.glob("*.undo.json"))  # the journal is consumed
