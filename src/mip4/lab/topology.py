"""The virtual internet of issue 4, as data.

::

          CN 198.51.100.10
           |  net "cn" 198.51.100.0/24
         router .1 on every network (forwards; optional ingress filtering)
       /        |              |               \\
  net "home"   net "a"        net "b"          net "c"
  10.1.0.0/24  10.2.0.0/24    10.3.0.0/24      10.4.0.0/24
  HA .2        FA1 .2         FA2 .2           (no agent; co-located care-of
  MN .100      (care-of .2)   (care-of .2)      address .100, static)

Every network is a Linux bridge in one "switch" namespace; every node is a namespace
joined to its bridges by veth pairs. The mobile node has one interface whose switch-side
peer is moved from bridge to bridge: that is the mobile node changing links.

The AAA lab (:data:`AAA`, ``mip4 lab up --aaa``, ``mip4 lab demo --aaa``; issue 11) is the
same with a second home agent ``ha2`` at 10.1.0.3 on the home network: the home AAA server
picks one of the two (RFC 4433), and an operator may move a node from one to the other.

Only private (RFC 1918) and documentation (RFC 5737) addresses are used, all inside the
namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network


@dataclass(frozen=True)
class Network:
    key: str
    subnet: IPv4Network
    #: the router's address on it (every node's default gateway here)
    gateway: IPv4Address
    description: str
    #: the mobile node's address when it attaches here without a foreign agent
    colocated: IPv4Interface | None = None


@dataclass(frozen=True)
class Attachment:
    net: str
    address: IPv4Interface


@dataclass(frozen=True)
class Node:
    key: str
    role: str
    attachments: tuple[Attachment, ...]
    forwarding: bool = False
    #: the network whose router is the default gateway (None: none needed)
    default_via: str | None = None


@dataclass(frozen=True)
class Topology:
    networks: tuple[Network, ...]
    nodes: tuple[Node, ...]
    #: the node that changes links, and the network it starts on
    mobile: str = "mn"
    mobile_home: str = "home"
    #: the networks the mobile node may attach to (empty: all)
    mobile_nets: tuple[str, ...] = ()
    switch: str = "sw"
    extra: dict[str, str] = field(default_factory=dict)
    #: which of :data:`TOPOLOGIES` this is (recorded in the lab's state file, so that
    #: ``Lab.load`` rebuilds the same one)
    name: str = "default"

    def home_agents(self) -> list[str]:
        """The home agents' nodes, in order (``ha`` first)."""
        return [n.key for n in self.nodes if n.role.startswith("home agent")]

    def network(self, key: str) -> Network:
        for n in self.networks:
            if n.key == key:
                return n
        raise KeyError(f"no network {key!r}; networks: {', '.join(self.net_keys())}")

    def node(self, key: str) -> Node:
        for n in self.nodes:
            if n.key == key:
                return n
        raise KeyError(f"no node {key!r}; nodes: {', '.join(self.node_keys())}")

    def visitable(self) -> list[str]:
        """The networks the mobile node may attach to."""
        return list(self.mobile_nets) or self.net_keys()

    def net_keys(self) -> list[str]:
        return [n.key for n in self.networks]

    def node_keys(self) -> list[str]:
        return [n.key for n in self.nodes]

    def address(self, node: str, net: str | None = None) -> IPv4Address:
        """``node``'s address (on ``net``, default its first attachment)."""
        for a in self.node(node).attachments:
            if net is None or a.net == net:
                return a.address.ip
        raise KeyError(f"node {node!r} has no address on {net!r}")


def _net(key: str, cidr: str, description: str, colocated: str | None = None) -> Network:
    subnet = IPv4Network(cidr)
    return Network(
        key,
        subnet,
        subnet.network_address + 1,
        description,
        IPv4Interface(colocated) if colocated else None,
    )


def _at(net: str, address: str) -> Attachment:
    return Attachment(net, IPv4Interface(address))


NETWORKS = (
    _net("cn", "198.51.100.0/24", "correspondent network"),
    _net("home", "10.1.0.0/24", "home network (home agent)"),
    _net("a", "10.2.0.0/24", "foreign network A (foreign agent FA1)"),
    _net("b", "10.3.0.0/24", "foreign network B (foreign agent FA2)"),
    _net("c", "10.4.0.0/24", "network C, no foreign agent", colocated="10.4.0.100/24"),
)

DEFAULT = Topology(
    networks=NETWORKS,
    nodes=(
        Node(
            "rtr",
            "router",
            tuple(_at(n.key, f"{n.gateway}/{n.subnet.prefixlen}") for n in NETWORKS),
            forwarding=True,
        ),
        Node("cn", "correspondent node", (_at("cn", "198.51.100.10/24"),), default_via="cn"),
        Node("ha", "home agent", (_at("home", "10.1.0.2/24"),), True, "home"),
        Node("fa1", "foreign agent 1", (_at("a", "10.2.0.2/24"),), True, "a"),
        Node("fa2", "foreign agent 2", (_at("b", "10.3.0.2/24"),), True, "b"),
        Node("mn", "mobile node", (_at("home", "10.1.0.100/24"),), default_via="home"),
    ),
    mobile_nets=("home", "a", "b", "c"),
)

#: issue 11: the AAA lab, with a second home agent on the home network
AAA = replace(
    DEFAULT,
    nodes=(
        *DEFAULT.nodes[:3],
        Node("ha2", "home agent 2", (_at("home", "10.1.0.3/24"),), True, "home"),
        *DEFAULT.nodes[3:],
    ),
    name="aaa",
)

#: every topology by name
TOPOLOGIES = {t.name: t for t in (DEFAULT, AAA)}
