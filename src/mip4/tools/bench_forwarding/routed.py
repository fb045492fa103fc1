"""The "routed" baseline of ``mip4 bench forwarding``: the tunnelled path's hops, with plain
kernel IP forwarding and no Mobile IP.

Why
---
The "direct" baseline is the correspondent reaching the mobile node *at home*: CN → router
→ MN, two bridge crossings and one forwarder. The tunnelled path with reverse tunnelling,
CN → router → HA → router → FA1 → MN and back MN → FA1 → router → HA → router → CN, crosses
five bridges, the router twice and two more forwarders, so its ratio against direct mixes
the data plane's cost with the cost of a longer path. Issue 12's own figure is "direct *on
the same veths*": :class:`RoutedPath` builds that path for an address of the mobile node
that no Mobile IP engine knows, so the ratio tunnelled ÷ routed is the data plane's cost.

How
---
The mobile node gets a routed address (:func:`routed_address`: ``.200`` of the network it
is on, a /32, which the benchmark's mobile node ignores), and policy routes make traffic to
and from it take the tunnelled path's hops:

* router: ``iif <cn> to X`` → via the home agent; ``iif <home> to X`` → via FA1 (network
  A; on network C the main table delivers on C); ``iif <net> from X`` → via the home agent,
  whose default route brings it back to the router and on to the correspondent;
* mobile node: ``from X`` → default via FA1 (network A) or the router (network C); FA1 (or
  the router on C) gets a permanent neighbour entry for X, as an agent knows its visitor's
  hardware address (the benchmark's mobile node answers ARP only for its addresses' own
  subnets, ``arp_ignore`` 2, which a /32 is not);
* the router's RFC 2827 ingress filter (the lab's ``<prefix>_ingress`` table) drops a
  datagram from the correspondent, or from X, arriving from the home network: two accept
  rules for X on the home interface are inserted at the head of its chain, and deleted
  with the rest;
* the home agent and FA1 send and forward on the interface they received on: their ICMP
  redirects are turned off (``send_redirects``), or the mobile node would learn a shorter
  way out and leave FA1.

Proof (:meth:`RoutedPath.verify`, before every measurement; :func:`check_forwarded` after
each UDP one): a UDP probe each way arrives with TTL 64 - 4 (router, HA, router, FA1; 64 -
3 on network C), where the direct path gives 63; and the home agent's and FA1's kernels
(``Ip: ForwDatagrams``) forwarded at least as many datagrams as the mobile node received.
Either failing raises :class:`RoutedPathError`, and the benchmark stops.

Everything is set up in the benchmark's own lab namespaces, with fixed table numbers and
rule preferences (:data:`TABLE`), and undone in reverse order on exit, also on failure.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Sequence
from ipaddress import IPv4Address

from mip4.io.netns import entered, write_sysctl
from mip4.lab.build import Lab
from mip4.lab.topology import Topology

#: the first routing table and rule preference used (four consecutive ones)
TABLE = 4201
#: the UDP port of the TTL probes (the benchmark's traffic uses 5201/5202)
PROBE_PORT = 5209
#: ``IP_RECVTTL`` / ``IP_TTL`` (``<linux/in.h>``; Python's ``socket`` lacks the first)
IP_RECVTTL = 12
IP_TTL = 2
#: every namespace's ``net.ipv4.ip_default_ttl``
DEFAULT_TTL = 64

#: the networks a routed baseline exists for: the foreign agent's, and the co-located one
#: (path name, the agent between router and node or None, forwarders after the router)
ROUTES: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "a": ("routed", "fa1", ("rtr", "ha", "rtr", "fa1")),
    "c": ("routed-colocated", None, ("rtr", "ha", "rtr")),
}


class RoutedPathError(RuntimeError):
    """The routed baseline does not take the tunnelled path's hops."""


def routed_address(topology: Topology, net: str) -> IPv4Address:
    """The mobile node's routed address on ``net``: ``.200`` of its subnet."""
    return topology.network(net).subnet.network_address + 200


def routed_addresses(topology: Topology) -> frozenset[IPv4Address]:
    """Every routed address (the mobile node's link monitor ignores them)."""
    return frozenset(routed_address(topology, n) for n in ROUTES if n in topology.net_keys())


def ip_forwarded(lab: Lab, node: str) -> int:
    """``Ip: ForwDatagrams`` of ``node``'s namespace: datagrams its kernel forwarded (not
    those a tc program redirected)."""
    with entered(lab.ns(node)), open("/proc/thread-self/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Ip:")]
    return int(rows[1][rows[0].index("ForwDatagrams")])


def udp_ttl(
    lab: Lab,
    src_node: str,
    src: IPv4Address,
    dst_node: str,
    dst: IPv4Address,
    *,
    tries: int = 20,
    wait: float = 0.1,
) -> int | None:
    """The TTL a UDP datagram from ``src`` (in ``src_node``) has on arrival at ``dst`` (in
    ``dst_node``); None when none of ``tries`` datagrams, ``wait`` seconds apart, arrives."""
    with entered(lab.ns(dst_node)):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        with entered(lab.ns(src_node)):
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            rx.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            rx.bind((str(dst), PROBE_PORT))
            rx.settimeout(wait)
            tx.bind((str(src), 0))
            for _ in range(tries):
                tx.sendto(b"mip4 bench forwarding: routed path probe", (str(dst), PROBE_PORT))
                try:
                    _data, ancillary, _flags, _addr = rx.recvmsg(64, socket.CMSG_SPACE(4))
                except TimeoutError:
                    continue
                for level, kind, value in ancillary:
                    if level == socket.IPPROTO_IP and kind == IP_TTL:
                        return int(struct.unpack("=i", value[:4])[0])
        finally:
            tx.close()
    finally:
        rx.close()
    return None


class RoutedPath:
    """The routed baseline on network ``net`` (``"a"``: through FA1, ``"c"``: the co-located
    comparison), for the mobile node attached there; a context manager that installs it
    and removes it again."""

    def __init__(self, lab: Lab, net: str) -> None:
        if net not in ROUTES:
            raise ValueError(f"no routed baseline on network {net!r}")
        self.lab = lab
        self.net = net
        self.path, self.agent, self.hops = ROUTES[net]
        self.address = routed_address(lab.topology, net)
        self.correspondent = lab.address("cn")
        #: (node, argv) that undo what was done, in order of doing
        self._undo: list[tuple[str, list[str]]] = []
        #: (node, sysctl, previous value)
        self._sysctls: list[tuple[str, str, str]] = []

    # -- setting up and tearing down ---------------------------------------------------

    def __enter__(self) -> RoutedPath:
        try:
            self.install()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _do(self, node: str, argv: Sequence[str], undo: Sequence[str] | None = None) -> str:
        out = self.lab.exec(node, list(argv), check=False)
        if out.returncode != 0:
            raise RoutedPathError(f"{node}: {' '.join(argv)}: {out.stderr.strip()}")
        if undo is not None:
            self._undo.append((node, list(undo)))
        return out.stdout

    def _sysctl(self, node: str, key: str, value: int) -> None:
        old = write_sysctl(key, value, self.lab.ns(node))
        self._sysctls.append((node, key, old))

    def install(self) -> None:
        lab, x = self.lab, str(self.address)
        mn, mn_if = lab.topology.mobile, lab.ifname(lab.topology.mobile)
        rtr = "rtr"
        ha_ip = str(lab.address("ha"))
        rtr_home, rtr_cn, rtr_net = (lab.ifname(rtr, n) for n in ("home", "cn", self.net))
        t_in, t_back, t_out, t_mn = (str(TABLE + i) for i in range(4))
        gateway = (
            str(lab.address(self.agent))
            if self.agent is not None
            else str(lab.topology.network(self.net).gateway)
        )
        # the mobile node: the address, and its replies through FA1 (or the router)
        self._do(mn, ["ip", "addr", "add", f"{x}/32", "dev", mn_if],
                 ["ip", "addr", "del", f"{x}/32", "dev", mn_if])  # fmt: skip
        route = ["default", "via", gateway, "dev", mn_if, "onlink", "table", t_mn]
        self._do(mn, ["ip", "route", "add", *route], ["ip", "route", "del", *route])
        rule = ["pref", t_mn, "from", x, "lookup", t_mn]
        self._do(mn, ["ip", "rule", "add", *rule], ["ip", "rule", "del", *rule])
        # the router: from the correspondent to the home agent ...
        route = [x, "via", ha_ip, "dev", rtr_home, "table", t_in]
        self._do(rtr, ["ip", "route", "add", *route], ["ip", "route", "del", *route])
        rule = ["pref", t_in, "iif", rtr_cn, "to", x, "lookup", t_in]
        self._do(rtr, ["ip", "rule", "add", *rule], ["ip", "rule", "del", *rule])
        # ... back from the home agent to FA1 (on network C the main table delivers) ...
        if self.agent is not None:
            route = [x, "via", gateway, "dev", rtr_net, "table", t_back]
            self._do(rtr, ["ip", "route", "add", *route], ["ip", "route", "del", *route])
            rule = ["pref", t_back, "iif", rtr_home, "to", x, "lookup", t_back]
            self._do(rtr, ["ip", "rule", "add", *rule], ["ip", "rule", "del", *rule])
        # ... and the replies from the node's network to the home agent
        route = ["default", "via", ha_ip, "dev", rtr_home, "table", t_out]
        self._do(rtr, ["ip", "route", "add", *route], ["ip", "route", "del", *route])
        rule = ["pref", t_out, "iif", rtr_net, "from", x, "lookup", t_out]
        self._do(rtr, ["ip", "rule", "add", *rule], ["ip", "rule", "del", *rule])
        # the last forwarder knows the node's hardware address, as FA1 knows its visitor's:
        # the node's daemon answers ARP only for addresses of the asker's subnet
        # (``arp_ignore`` 2), which the /32 is not
        last, last_if = (self.agent, lab.ifname(self.agent)) if self.agent else (rtr, rtr_net)
        mac = self._do(mn, ["cat", f"/sys/class/net/{mn_if}/address"]).strip()
        neigh = [x, "dev", last_if]
        self._do(last, ["ip", "neigh", "replace", *neigh, "lladdr", mac, "nud", "permanent"],
                 ["ip", "neigh", "del", *neigh])  # fmt: skip
        # the ingress filter lets the routed traffic arrive from the home network
        if lab.ingress_filter:
            table = f"{lab.prefix}_ingress"
            for match in ("saddr", "daddr"):
                out = self._do(
                    rtr,
                    ["nft", "-e", "-a", "insert", "rule", "ip", table, "forward",
                     "iifname", rtr_home, "ip", match, x, "accept"],
                )  # fmt: skip
                handle = re.search(r"# handle (\d+)", out)
                if handle is None:
                    raise RoutedPathError(f"rtr: nft gave no rule handle: {out.strip()!r}")
                self._undo.append(
                    (rtr, ["nft", "delete", "rule", "ip", table, "forward", "handle",
                           handle.group(1)])
                )  # fmt: skip
        # no ICMP redirects from the forwarders that send back where they received from
        for node in ("ha", *((self.agent,) if self.agent else ())):
            for dev in ("all", lab.ifname(node)):
                self._sysctl(node, f"net.ipv4.conf.{dev}.send_redirects", 0)

    def remove(self) -> list[str]:
        """Undo everything, newest first; returns what could not be undone."""
        failed: list[str] = []
        while self._undo:
            node, argv = self._undo.pop()
            out = self.lab.exec(node, argv, check=False)
            if out.returncode != 0:
                failed.append(f"{node}: {' '.join(argv)}: {out.stderr.strip()}")
        while self._sysctls:
            node, key, old = self._sysctls.pop()
            try:
                write_sysctl(key, old, self.lab.ns(node))
            except OSError as exc:
                failed.append(f"{node}: {key}: {exc}")
        return failed

    # -- the proof --------------------------------------------------------------------

    @property
    def expected_ttl(self) -> int:
        return DEFAULT_TTL - len(self.hops)

    def verify(self, within: float = 5.0) -> dict[str, int]:
        """UDP probes both ways; each must arrive having crossed :attr:`hops` forwarders
        (TTL 64 - hops), or :class:`RoutedPathError`. Retried for up to ``within`` seconds
        (a neighbour entry may still be resolving); returns the TTLs seen."""
        lab, mn = self.lab, self.lab.topology.mobile
        deadline = time.monotonic() + within
        while True:
            seen = {
                "to_mn": udp_ttl(lab, "cn", self.correspondent, mn, self.address),
                "from_mn": udp_ttl(lab, mn, self.address, "cn", self.correspondent),
            }
            if all(v == self.expected_ttl for v in seen.values()):
                return {k: int(v) for k, v in seen.items() if v is not None}
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        route = " -> ".join(["cn", *self.hops, mn])
        raise RoutedPathError(
            f"{self.path}: the routed baseline must go {route} both ways"
            f" (TTL {DEFAULT_TTL} - {len(self.hops)} = {self.expected_ttl} on arrival);"
            f" UDP probes arrived with TTL {seen['to_mn']} (cn -> {self.address}) and"
            f" {seen['from_mn']} ({self.address} -> cn): the policy routes do not hold"
        )

    @property
    def forwarders(self) -> tuple[str, ...]:
        """The nodes whose kernels must forward every routed datagram (not the router)."""
        return tuple(dict.fromkeys(h for h in self.hops if h != "rtr"))

    def forwarded(self) -> dict[str, int]:
        return {node: ip_forwarded(self.lab, node) for node in self.forwarders}


def check_forwarded(
    path: str, before: dict[str, int], after: dict[str, int], delivered: int
) -> dict[str, int]:
    """Each forwarder's kernel forwarded at least the ``delivered`` datagrams, or
    :class:`RoutedPathError`; returns what each forwarded."""
    counts = {node: after[node] - before[node] for node in before}
    short = {node: n for node, n in counts.items() if n < delivered}
    if short:
        which = ", ".join(f"{node} {n:,}" for node, n in short.items())
        raise RoutedPathError(
            f"{path}: the mobile node received {delivered:,} datagrams, but the kernels on"
            f" the path forwarded only {which}: the datagrams did not all cross them"
        )
    return counts
