"""Build, inspect, change and tear down the namespace lab (:mod:`mip4.lab.topology`).

Names
-----
A lab has an id (1-5 lowercase letters/digits); its *prefix* is ``m4<id>`` and every name it
creates starts with ``<prefix>-``:

* namespaces ``<prefix>-<node>`` (``cn``, ``rtr``, ``ha``, ``fa1``, ``fa2``, ``mn``) and the
  switch ``<prefix>-sw`` that holds the bridges;
* bridges ``<prefix>-b<net>``; switch ports ``<prefix>-<node><net>``, the mobile node's
  ``<prefix>-pmn``;
* a node's interface on network ``net`` is ``<prefix>-<net>``; the mobile node's single
  interface is ``<prefix>-mn``;
* the router's optional nftables table ``<prefix>_ingress``.

State
-----
``up`` writes ``/run/mip4-lab-<id>/state.json`` (names, addresses, where the mobile node is)
before it creates anything, so ``down`` always finds what ``up`` made; ``down`` also deletes
every namespace that starts with ``<prefix>-`` whether or not it is in the file (leftovers of
a crash), stops the processes running in them (by process id) and is idempotent. Deleting
a namespace removes its links, addresses, routes, nftables tables and TUN devices.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from mip4.io.icmpsock import ping
from mip4.io.netns import (
    Netns,
    delete_by_prefix,
    list_netns,
    netns_exec,
    netns_path,
    netns_pids,
)

from .topology import DEFAULT, TOPOLOGIES, Topology

RUN_DIR = Path("/run")
_ID = re.compile(r"^[a-z0-9]{1,5}$")


class LabError(RuntimeError):
    pass


def state_dir(lab_id: str, run_dir: Path = RUN_DIR) -> Path:
    return run_dir / f"mip4-lab-{lab_id}"


def existing_labs(run_dir: Path = RUN_DIR) -> list[str]:
    return sorted(p.name.removeprefix("mip4-lab-") for p in run_dir.glob("mip4-lab-*"))


@dataclass
class Lab:
    """One instance of the lab. ``with Lab("x1") as lab:`` builds it and always tears it
    down."""

    lab_id: str
    topology: Topology = DEFAULT
    ingress_filter: bool = False
    run_dir: Path = RUN_DIR
    #: where the mobile node is attached now
    mobile_net: str = ""
    #: issue 14: where the running daemons' control sockets are (``<node>.sock``), for
    #: :meth:`move` with ``anticipate``; None: their default places
    control_dir: Path | None = None
    _state: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not _ID.match(self.lab_id):
            raise LabError(f"lab id {self.lab_id!r}: use 1-5 lowercase letters or digits")
        self.mobile_net = self.mobile_net or self.topology.mobile_home

    # -- names ------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return f"m4{self.lab_id}"

    @property
    def state_dir(self) -> Path:
        return state_dir(self.lab_id, self.run_dir)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def ns(self, node: str) -> str:
        if node != self.topology.switch and node not in self.topology.node_keys():
            nodes = ", ".join([*self.topology.node_keys(), self.topology.switch])
            raise LabError(f"no node {node!r} in the lab; nodes: {nodes}")
        return f"{self.prefix}-{node}"

    def ifname(self, node: str, net: str | None = None) -> str:
        """``node``'s interface on ``net`` (the mobile node has one interface)."""
        if node == self.topology.mobile:
            return f"{self.prefix}-mn"
        if net is None:
            net = self.topology.node(node).attachments[0].net
        return f"{self.prefix}-{net}"

    def bridge(self, net: str) -> str:
        self.topology.network(net)
        return f"{self.prefix}-b{net}"

    def port(self, node: str, net: str) -> str:
        if node == self.topology.mobile:
            return f"{self.prefix}-pmn"
        return f"{self.prefix}-{node}{net}"

    def address(self, node: str, net: str | None = None) -> IPv4Address:
        return self.topology.address(node, net)

    def namespaces(self) -> list[str]:
        return [self.ns(self.topology.switch)] + [self.ns(n) for n in self.topology.node_keys()]

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.up()
        # torn down by __exit__; atexit covers an interpreter leaving some other way
        atexit.register(self.down)
        return self

    def __exit__(self, *exc: object) -> None:
        atexit.unregister(self.down)
        self.down()

    def up(self) -> None:
        """Build the lab. On any failure everything built so far is removed."""
        if self.state_file.exists() or any(netns_path(n).exists() for n in self.namespaces()):
            raise LabError(f"lab {self.lab_id!r} exists; run `mip4 lab down --id {self.lab_id}`")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_state("building")
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        self._write_state("up")

    def _build(self) -> None:
        topo = self.topology
        handles: dict[str, Netns] = {}
        try:
            for key in [topo.switch, *topo.node_keys()]:
                ns = Netns(self.ns(key), create=True)
                ns.owned = False  # down() deletes by prefix; keep it past this method
                atexit.unregister(ns.close)
                handles[key] = ns
                for k, v in (
                    ("net.ipv6.conf.all.disable_ipv6", 1),
                    ("net.ipv6.conf.default.disable_ipv6", 1),
                    ("net.ipv4.conf.all.rp_filter", 0),
                    ("net.ipv4.conf.default.rp_filter", 0),
                ):
                    with contextlib.suppress(FileNotFoundError):
                        ns.sysctl(k, v, restore=False)
                ns.set_up("lo")
            sw = handles[topo.switch]
            made: list[tuple[str, str, str]] = []  # (node, its interface, the switch port)
            for net in topo.networks:
                sw.add_bridge(self.bridge(net.key))
                sw.set_up(self.bridge(net.key))
            for node in topo.nodes:
                ns = handles[node.key]
                if node.key == topo.mobile:
                    plan = [(self.mobile_net, node.attachments[0].address)]
                else:
                    plan = [(a.net, a.address) for a in node.attachments]
                for net_key, address in plan:
                    port, ifname = self.port(node.key, net_key), self.ifname(node.key, net_key)
                    made.append((node.key, ifname, port))
                    sw.add_veth(port, ifname, ns)
                    sw.set_master(port, self.bridge(net_key))
                    sw.set_up(port)
                    ns.add_address(ifname, address)
                    ns.set_up(ifname)
                if node.forwarding:
                    ns.set_forwarding(True)
                if node.default_via is not None:
                    ns.add_route("0.0.0.0/0", gateway=topo.network(node.default_via).gateway)
            if self.ingress_filter:
                self._install_ingress_filter()
            # usable at once: wait until every node interface and every switch port is
            # operationally up (a bridge forwards on a port only once the kernel's link
            # watcher has seen its carrier, which on a busy machine comes later)
            for key, ifname, port in made:
                if not handles[key].wait_up(ifname):
                    raise LabError(f"{key}: {ifname} did not come up")
                if not sw.wait_up(port):
                    raise LabError(f"switch: {port} did not come up")
        finally:
            for ns in handles.values():
                ns.close()

    def _install_ingress_filter(self) -> None:
        """RFC 2827 ingress filtering on the router: a datagram arriving from a network
        must carry a source address of that network. This is what makes reverse tunnelling
        (RFC 3024) necessary for a mobile node away from home."""
        lines = [
            f"table ip {self.prefix}_ingress {{",
            "  chain forward {",
            "    type filter hook forward priority 0; policy accept;",
        ]
        for net in self.topology.networks:
            lines.append(
                f'    iifname "{self.ifname("rtr", net.key)}" ip saddr != {net.subnet} counter drop'
            )
        lines += ["  }", "}", ""]
        netns_exec(self.ns("rtr"), ["nft", "-f", "-"], input="\n".join(lines))

    def down(self) -> list[str]:
        """Stop the lab's processes, delete its namespaces (also unrecorded leftovers with
        its prefix) and its state directory. Safe to call at any time, any number of
        times. Returns the namespaces deleted."""
        gone = delete_by_prefix(f"{self.prefix}-")
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return gone

    @classmethod
    def load(cls, lab_id: str, run_dir: Path = RUN_DIR) -> Lab:
        """The lab ``up`` created with this id (with the topology its state file names)."""
        path = state_dir(lab_id, run_dir) / "state.json"
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab {lab_id!r} (no {path})") from None
        topology = TOPOLOGIES.get(str(state.get("topology", DEFAULT.name)))
        if topology is None:
            raise LabError(f"lab {lab_id!r}: unknown topology {state.get('topology')!r} in {path}")
        lab = cls(
            lab_id,
            topology=topology,
            ingress_filter=bool(state.get("ingress_filter")),
            run_dir=run_dir,
            mobile_net=str(state["mobile"]["net"]),
        )
        lab._state = state
        return lab

    # -- the mobile node moves --------------------------------------------------------

    def move(
        self,
        net: str,
        node: str | None = None,
        *,
        dhcp: bool = False,
        anticipate: bool = False,
        source_trigger: bool = False,
        lead: float = 0.1,
    ) -> None:
        """Move ``node``'s (default: the mobile node's) link to network ``net``: its
        switch port goes down, changes bridge and comes back up, so the node sees its
        carrier drop and return, exactly as after re-plugging a cable. Addresses and
        routes on the node are left to the node (its daemon), unless ``dhcp``: then the
        lab does what a DHCP server would on a network without a foreign agent (network
        C): it gives the node that network's co-located address and default route as soon
        as the port is up (:meth:`configure_colocated`), and takes them away again before
        the node leaves.

        Returns once the node's interface is operationally up again, which the kernel's
        link watcher can take up to about a second to report: from an asyncio program call
        it off the loop (``await asyncio.to_thread(lab.move, net)``).

        ``anticipate`` (issue 14): the move is announced to the running daemons ``lead``
        seconds before the switch, as a wireless scan report would
        (:func:`mip4.lab.handover.announce`; with ``source_trigger`` the node's current
        foreign agent is told too)."""
        node = node or self.topology.mobile
        if node != self.topology.mobile:
            raise LabError("only the mobile node changes links")
        if net not in self.topology.visitable():
            nets = ", ".join(self.topology.visitable())
            raise LabError(f"the mobile node cannot move to network {net!r}; networks: {nets}")
        if anticipate:
            from .handover import announce

            announce(self, net, source_trigger=source_trigger)
            time.sleep(max(0.0, lead))
        if dhcp:
            self.release_colocated(self.mobile_net)
        sw = Netns(self.ns(self.topology.switch))
        try:
            port = self.port(node, net)
            sw.set_up(port, False)
            # The cable stays out until the node's kernel has seen the carrier go: the
            # link watcher reports carrier changes from a work queue, and when that work
            # runs only after the port is back up (a busy machine), the node is told of
            # no change at all -- no re-plug a person makes is that fast.
            with Netns(self.ns(node)) as ns:
                self._wait_operstate(ns, self.ifname(node), up=False, within=3.0)
            sw.set_master(port, self.bridge(net))
            sw.set_up(port)
            if dhcp:
                self.configure_colocated(net)
            with Netns(self.ns(node)) as ns:
                ns.wait_up(self.ifname(node))
            # and the switch side: the bridge forwards on the port only once the link
            # watcher has seen its carrier (the node's first gratuitous ARPs at home were
            # lost on a busy machine, leaving the router with the home agent's address)
            sw.wait_up(port)
        finally:
            sw.close()
        self.mobile_net = net
        if self.state_file.exists():
            self._write_state("up")

    def configure_colocated(self, net: str) -> None:
        """What a DHCP server would give the mobile node on ``net`` when the network has a
        static co-located address (network C; nothing otherwise): the default route first
        (on-link, so it may precede the address), then the address, which the mobile node
        registers at once; the other way round, its first request would leave by the
        previous network's route and be lost."""
        colocated = self.topology.network(net).colocated
        if colocated is None:
            return
        mn = self.topology.mobile
        ifname, gateway = self.ifname(mn), str(self.topology.network(net).gateway)
        route = ["ip", "route", "replace", "default", "via", gateway, "dev", ifname, "onlink"]
        self.exec(mn, route, check=True)
        self.exec(mn, ["ip", "addr", "replace", str(colocated), "dev", ifname], check=True)

    def release_colocated(self, net: str) -> None:
        """Take ``net``'s co-located address off the mobile node (if it has it), as when a
        DHCP lease ends on leaving the network; its routes go with it."""
        colocated = self.topology.network(net).colocated
        if colocated is not None:
            mn = self.topology.mobile
            self.exec(mn, ["ip", "addr", "del", str(colocated), "dev", self.ifname(mn)])

    # -- running things ---------------------------------------------------------------

    @staticmethod
    def _wait_operstate(ns: Netns, ifname: str, *, up: bool, within: float) -> None:
        """Until ``ifname``'s operational state is (not) UP, bounded by ``within`` s."""
        deadline = time.monotonic() + within
        while (ns.operstate(ifname) == "UP") != up:
            if time.monotonic() >= deadline:
                state = "up" if up else "down"
                raise LabError(f"{ifname} did not go {state} within {within:g} s")
            time.sleep(0.005)

    def exec(
        self, node: str, argv: Sequence[str], *, check: bool = False, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return netns_exec(self.ns(node), argv, check=check, timeout=timeout)

    def popen(self, node: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside ``node``; :meth:`down` stops it if the caller did not."""
        return subprocess.Popen(["ip", "netns", "exec", self.ns(node), *argv], **kw)

    def ping(
        self,
        node: str,
        dst: IPv4Address | str,
        *,
        count: int = 1,
        timeout: float = 1.0,
        src: IPv4Address | str | None = None,
    ) -> list[float]:
        """ICMP echo from ``node`` (bounded: ``count`` ≤ 100, ``timeout`` per reply)."""
        return ping(dst, netns=self.ns(node), count=count, timeout=timeout, src=src)

    def wait_reachable(self, node: str, dst: IPv4Address | str, *, within: float = 5.0) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.ping(node, dst, timeout=0.5):
                return True
        return False

    # -- state ------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Everything a daemon configuration or a test needs to know about the lab."""
        topo = self.topology
        nodes: dict[str, Any] = {}
        for node in topo.nodes:
            nets = [a.net for a in node.attachments]
            if node.key == topo.mobile:
                nets = [self.mobile_net]
            nodes[node.key] = {
                "role": node.role,
                "netns": self.ns(node.key),
                "interfaces": {n: self.ifname(node.key, n) for n in nets},
                "addresses": {a.net: str(a.address) for a in node.attachments},
            }
        return {
            "id": self.lab_id,
            "prefix": self.prefix,
            "topology": topo.name,
            "switch": self.ns(topo.switch),
            "ingress_filter": self.ingress_filter,
            "networks": {
                n.key: {
                    "subnet": str(n.subnet),
                    "gateway": str(n.gateway),
                    "bridge": self.bridge(n.key),
                    "description": n.description,
                    **({"colocated": str(n.colocated)} if n.colocated else {}),
                }
                for n in topo.networks
            },
            "nodes": nodes,
            "mobile": {"node": topo.mobile, "net": self.mobile_net},
        }

    def _write_state(self, status: str) -> None:
        state = {**self.describe(), "status": status}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)
        self._state = state

    def status(self) -> dict[str, Any]:
        """What exists now: namespaces, their processes, where the mobile node is."""
        present = set(list_netns())
        names = {key: self.ns(key) for key in [self.topology.switch, *self.topology.node_keys()]}
        return {
            "id": self.lab_id,
            "state_file": str(self.state_file) if self.state_file.exists() else None,
            "status": self._state.get("status", "unknown"),
            "mobile": {"node": self.topology.mobile, "net": self.mobile_net},
            "namespaces": {k: (v in present) for k, v in names.items()},
            "processes": {k: netns_pids(v) for k, v in names.items() if v in present},
            "leftovers": sorted(
                n for n in present if n.startswith(f"{self.prefix}-") and n not in names.values()
            ),
        }
