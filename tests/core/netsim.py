"""An in-memory network for the sans-IO engines (aioquic ``tests/test_connection.py`` style).

Part 1, builders: hand-made agent advertisements and home-agent replies for unit tests.

Part 2, :class:`Network`: named links (with an IPv4 prefix), nodes whose interfaces attach to
links, and a virtual clock. ``SendUdp``/``SendIcmp`` actions are delivered as
``UdpReceived``/``IcmpReceived`` events: unicast to the interface owning the destination
address (restricted to the sender's link, and matched by link-layer address, when the action
names an interface), multicast / limited broadcast / a link's directed broadcast to every
other interface on the link; TTL is decremented across links. Every datagram is recorded as
a :class:`Packet` (delivered or dropped, and why). Loss: drop predicates and a seeded loss
probability; ``corrupt_if`` mutates payloads in flight. ``set_up(name, False)`` cuts a node
off (its timers keep running); undeliverable unicast UDP comes back to the sender as an ICMP
Destination Unreachable event. ``reboot(name)`` replaces an engine with a fresh one.
``transfer()`` delivers until nothing is in flight; ``run_until(t)`` advances the clock to
each minimum ``next_deadline()`` in turn, firing timers, up to ``t``. Non-send actions are
kept per node (``actions_of``, ``logs``).

Part 3, :class:`World`: the standard topology -- home link (home agent 10.0.0.1, mobile node
home address 10.0.0.5/24), link A with FA1 (192.168.1.1), link B with FA2 (192.168.2.1),
link C without an agent where the node gets the co-located address 172.16.0.9 -- and
``move()`` to carry the mobile node between them (with or without link signals).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Protocol, TypeVar

import pytest

from mip4.core.actions import Action, Log, SendIcmp, SendUdp
from mip4.core.bindings import MobilityBinding
from mip4.core.events import (
    DestinationUnreachable,
    Event,
    IcmpReceived,
    LinkDown,
    LinkUp,
    UdpReceived,
)
from mip4.core.foreign_agent import ForeignAgent, ForeignAgentConfig, VisitedLink
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.core.mobile_node import MobileNode, MobileNodeConfig
from mip4.security.auth import sign
from mip4.security.sa import ReplayMethod, SecurityAssociation, SecurityAssociations
from mip4.wire.errors import DecodeError
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.icmp import (
    AgentAdvertisement,
    AgentFlags,
    ChallengeExtension,
    MobilityAgentAdvertisementExtension,
    PrefixLengthsExtension,
    RouterAddress,
    decode_icmp,
)
from mip4.wire.messages import RegistrationReply, RegistrationRequest, decode_message

A = IPv4Address
T = TypeVar("T")
_NOWHERE = IPv4Network("0.0.0.0/32")

# ----------------------------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------------------------


def advertisement(
    address: IPv4Address,
    *,
    sequence: int = 0,
    lifetime: int = 30,
    registration_lifetime: int = 600,
    flags: AgentFlags = AgentFlags.F,
    care_of_addresses: tuple[IPv4Address, ...] | None = None,
    prefix_len: int | None = None,
    challenge: bytes | None = None,
) -> bytes:
    """An encoded agent advertisement from ``address`` (RFC 5944 §2.1)."""
    coas = (address,) if care_of_addresses is None else care_of_addresses
    exts: list[object] = [
        MobilityAgentAdvertisementExtension(sequence, registration_lifetime, flags, coas)
    ]
    if prefix_len is not None:
        exts.append(PrefixLengthsExtension((prefix_len,)))
    if challenge is not None:
        exts.append(ChallengeExtension(challenge))
    adv = AgentAdvertisement(
        code=0,
        lifetime=lifetime,
        router_addresses=(RouterAddress(address, 0),),
        extensions=tuple(exts),  # type: ignore[arg-type]
    )
    return adv.encode()


def reply_for(
    request: bytes | RegistrationRequest,
    code: int = 0,
    *,
    sa: SecurityAssociation | None,
    lifetime: int | None = None,
    identification: int | None = None,
    home_agent: IPv4Address | None = None,
) -> bytes:
    """A Registration Reply answering ``request`` as a home agent would (signed with
    ``sa``; ``sa=None``: unsigned, as a foreign agent's denial)."""
    req = request
    if not isinstance(req, RegistrationRequest):
        req = RegistrationRequest.decode(req)
    rep = RegistrationReply(
        code=code,
        lifetime=req.lifetime if lifetime is None else lifetime,
        home_address=req.home_address,
        home_agent=req.home_agent if home_agent is None else home_agent,
        identification=req.identification if identification is None else identification,
    )
    if sa is None:
        return rep.encode()
    return sign(rep, MobileHomeAuthExtension, sa).raw


# ----------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------


class Engine(Protocol):
    def handle(self, event: Event, now: float) -> list[Action]: ...

    def handle_timer(self, now: float) -> list[Action]: ...

    def next_deadline(self) -> float | None: ...


@dataclass
class Interface:
    name: str
    link: str | None
    mac: bytes
    #: addresses routed to this interface from anywhere
    addresses: set[IPv4Address] = field(default_factory=set)
    #: addresses answered on the attached link only (a mobile node's home address on a
    #: foreign link: the foreign agent reaches it by link-layer address)
    on_link: set[IPv4Address] = field(default_factory=set)


@dataclass
class Node:
    name: str
    engine: Engine
    factory: Callable[[], Engine]
    interfaces: dict[str, Interface]
    up: bool = True
    #: every action the engine returned other than sends, with the time
    actions: list[tuple[float, Action]] = field(default_factory=list)

    @property
    def primary(self) -> IPv4Address | None:
        for i in self.interfaces.values():
            for a in sorted(i.addresses):
                return a
        return None


@dataclass
class Packet:
    """One datagram put on the network (delivered, dropped, or undeliverable)."""

    time: float
    sender: str
    action: SendUdp | SendIcmp
    receiver: str | None = None
    interface: str | None = None
    dropped: bool = False
    why: str = ""

    @property
    def payload(self) -> bytes:
        return self.action.payload

    @property
    def message(self) -> object:
        if isinstance(self.action, SendIcmp):
            return decode_icmp(self.payload)
        return decode_message(self.payload)


@dataclass(frozen=True)
class Link:
    name: str
    network: IPv4Network | None = None


class Network:
    """Links, nodes attached to them by interfaces, a virtual clock, and delivery.

    Unicast UDP goes to the interface that owns the destination address (anywhere; an
    interface-restricted send -- ``SendUdp.interface`` -- only on that link, where the
    link-layer destination or an on-link address also matches). Multicast, the limited
    broadcast and a link's directed broadcast reach every other interface of the link.
    Delivery is immediate; ``transfer()`` runs until no datagram is in flight.
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.now = 0.0
        self.links: dict[str, Link] = {}
        self.nodes: dict[str, Node] = {}
        self.packets: list[Packet] = []
        self._queue: list[tuple[str, Event]] = []
        self._rng = random.Random(seed)
        self.loss_probability = 0.0
        self.drop_predicates: list[Callable[[Packet], bool]] = []
        #: (predicate, mutation) pairs applied to delivered payloads (corruption on the wire)
        self.mutators: list[tuple[Callable[[Packet], bool], Callable[[bytes], bytes]]] = []
        #: (predicate, ICMP code) pairs: rejected with an ICMP error (a firewall, no listener)
        self.rejecters: list[tuple[Callable[[Packet], bool], int]] = []
        #: answer undeliverable unicast UDP with ICMP Destination Unreachable
        self.icmp_errors = True
        self._macs = 0

    # -- building ------------------------------------------------------------------------

    def add_link(self, name: str, network: str | None = None) -> Link:
        link = Link(name, IPv4Network(network) if network else None)
        self.links[name] = link
        return link

    def add_node(
        self,
        name: str,
        factory: Callable[[], Engine],
        interfaces: dict[str, tuple[str | None, list[IPv4Address]]],
    ) -> Node:
        ifs = {}
        for ifname, (link, addrs) in interfaces.items():
            self._macs += 1
            ifs[ifname] = Interface(ifname, link, bytes([2, 0, 0, 0, 0, self._macs]), set(addrs))
        node = Node(name, factory(), factory, ifs)
        self.nodes[name] = node
        return node

    def engine(self, name: str) -> Any:
        return self.nodes[name].engine

    # -- loss ----------------------------------------------------------------------------

    def drop_if(self, predicate: Callable[[Packet], bool]) -> Callable[[Packet], bool]:
        self.drop_predicates.append(predicate)
        return predicate

    def reject_if(self, predicate: Callable[[Packet], bool], icmp_code: int) -> None:
        """Drop matching packets and answer the sender with ICMP Destination Unreachable
        ``icmp_code`` (3: nothing listens on the port; 13: administratively prohibited)."""
        self.rejecters.append((predicate, icmp_code))

    def corrupt_if(
        self, predicate: Callable[[Packet], bool], mutate: Callable[[bytes], bytes]
    ) -> None:
        """Deliver the payload of matching packets as ``mutate(payload)``."""
        self.mutators.append((predicate, mutate))

    def stop_dropping(self) -> None:
        self.drop_predicates.clear()
        self.rejecters.clear()
        self.mutators.clear()
        self.loss_probability = 0.0

    # -- events into engines -------------------------------------------------------------

    def inject(self, node: str, event: Event) -> None:
        self._queue.append((node, event))

    def operate(self, name: str, call: Callable[[Any, float], list[Action]]) -> list[Action]:
        """An operator call on ``name``'s engine, ``call(engine, now)`` (``revoke``,
        ``redirect``...): its actions go out as the engine's own would, then the network
        runs until nothing is in flight."""
        actions = call(self.nodes[name].engine, self.now)
        self.emit(name, actions)
        return actions

    def emit(self, name: str, actions: list[Action]) -> None:
        """Carry out ``actions`` as ``name``'s engine's own, then run until quiet (what a
        daemon's driver does with the actions of an operator command)."""
        self._apply(self.nodes[name], list(actions))
        self.transfer()

    def link_up(
        self,
        node: str,
        ifname: str,
        link: str,
        address: IPv4Address | None = None,
        prefix_len: int | None = None,
        *,
        on_link: IPv4Address | None = None,
        signal: bool = True,
    ) -> None:
        iface = self.nodes[node].interfaces[ifname]
        iface.link = link
        iface.addresses = {address} if address is not None else set()
        iface.on_link = {on_link} if on_link is not None else set()
        if signal:
            self.inject(node, LinkUp(ifname, address, prefix_len))
        self.transfer()

    def link_down(self, node: str, ifname: str, *, signal: bool = True) -> None:
        iface = self.nodes[node].interfaces[ifname]
        iface.link = None
        iface.addresses = set()
        iface.on_link = set()
        if signal:
            self.inject(node, LinkDown(ifname))
        self.transfer()

    def reboot(self, name: str) -> None:
        """Replace the engine with a fresh one (all its state lost); it is told which of
        its links are up, as a booting node would find out."""
        node = self.nodes[name]
        node.engine = node.factory()
        node.actions.append((self.now, Log("netsim-reboot", {"node": name})))
        for iface in node.interfaces.values():
            if iface.link is not None:
                addr = min(iface.addresses) if iface.addresses else None
                net = self.links[iface.link].network
                self.inject(name, LinkUp(iface.name, addr, net.prefixlen if net and addr else None))
        self.transfer()

    def set_up(self, name: str, up: bool) -> None:
        """Cut a node off the network (``up=False``: nothing reaches it, nothing it sends
        gets out; its clock and timers keep running) or reconnect it."""
        self.nodes[name].up = up

    # -- running -------------------------------------------------------------------------

    def _apply(self, node: Node, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, SendUdp | SendIcmp):
                self._send(node, a)
            else:
                node.actions.append((self.now, a))

    def _send(self, sender: Node, a: SendUdp | SendIcmp) -> None:
        if not sender.up:
            self.packets.append(Packet(self.now, sender.name, a, dropped=True, why="sender down"))
            return
        targets = self._route(sender, a)
        if not targets:
            self.packets.append(Packet(self.now, sender.name, a, dropped=True, why="no route"))
            self._icmp_error(sender, a, 0)  # net unreachable
            return
        for node, iface, src_iface in targets:
            p = Packet(self.now, sender.name, a, node.name, iface.name)
            self.packets.append(p)
            if not node.up:
                p.dropped, p.why = True, "node down"
                self._icmp_error(sender, a, 1)  # host unreachable
                continue
            rejected = [code for pred, code in self.rejecters if pred(p)]
            if rejected:
                p.dropped, p.why = True, f"rejected (ICMP code {rejected[0]})"
                self._icmp_error(sender, a, rejected[0])
                continue
            if any(pred(p) for pred in self.drop_predicates) or (
                self.loss_probability and self._rng.random() < self.loss_probability
            ):
                p.dropped, p.why = True, "lost"
                continue
            payload = a.payload
            for pred, mutate in self.mutators:
                if pred(p):
                    payload = mutate(payload)
                    p.why = "corrupted"
            link_src = src_iface.mac if src_iface is not None else None
            same_link = src_iface is not None and src_iface.link == iface.link
            src = a.src or (
                sorted(src_iface.addresses)[0]
                if src_iface is not None and src_iface.addresses
                else sender.primary or A("0.0.0.0")
            )
            ev: Event
            if isinstance(a, SendUdp):
                ttl = a.ttl if a.ttl is not None else 64
                if not same_link:
                    ttl -= 1
                    link_src = None
                if ttl <= 0:
                    p.dropped, p.why = True, "ttl expired"
                    continue
                ev = UdpReceived(
                    payload, src, a.dst, a.sport, a.dport, iface.name, link_src=link_src, ttl=ttl
                )
            else:
                ev = IcmpReceived(payload, src, a.dst, iface.name, link_src=link_src, ttl=a.ttl)
            self._queue.append((node.name, ev))

    def _icmp_error(self, sender: Node, a: SendUdp | SendIcmp, code: int) -> None:
        """RFC 792 Destination Unreachable back to the sender of an undeliverable unicast
        UDP datagram (when ``icmp_errors`` is on)."""
        if not self.icmp_errors or not isinstance(a, SendUdp):
            return
        if a.dst.is_multicast or a.dst == A("255.255.255.255"):
            return
        iface = a.interface or next(
            (i.name for i in sender.interfaces.values() if i.link is not None), None
        )
        if iface is None:
            return
        self._queue.append(
            (
                sender.name,
                DestinationUnreachable(
                    code=code,
                    src=A("0.0.0.0"),
                    original_dst=a.dst,
                    interface=iface,
                    original_sport=a.sport,
                    original_dport=a.dport,
                    original_payload=a.payload,
                ),
            )
        )

    def _route(
        self, sender: Node, a: SendUdp | SendIcmp
    ) -> list[tuple[Node, Interface, Interface | None]]:
        dst = a.dst
        out_if: Interface | None = sender.interfaces.get(a.interface) if a.interface else None
        if a.interface is not None and (out_if is None or out_if.link is None):
            return []
        if out_if is None:
            # the sender's interface on the destination's link, else its first live one
            live = [i for i in sender.interfaces.values() if i.link is not None]
            on_dst = [i for i in live if dst in self._network(i.link)]
            choice = on_dst or live
            out_if = choice[0] if choice else None
        everyone = [
            (n, i) for n in self.nodes.values() for i in n.interfaces.values() if i.link is not None
        ]
        if dst.is_multicast or dst == A("255.255.255.255"):
            if out_if is None:
                return []
            return [
                (n, i, out_if)
                for n, i in everyone
                if i.link == out_if.link and not (n is sender and i is out_if)
            ]
        for link in self.links.values():
            if link.network is not None and dst == link.network.broadcast_address:
                return [
                    (n, i, out_if)
                    for n, i in everyone
                    if i.link == link.name and not (n is sender and i is out_if)
                ]
        if a.interface is not None and out_if is not None:
            on = [(n, i) for n, i in everyone if i.link == out_if.link and n is not sender]
            for n, i in on:
                if a.link_dst is not None and i.mac == a.link_dst:
                    return [(n, i, out_if)]
            for n, i in on:
                if dst in i.addresses or dst in i.on_link:
                    return [(n, i, out_if)]
            if a.link_dst is not None:
                return []
        for n, i in everyone:
            if dst in i.addresses and n is not sender:
                return [(n, i, out_if)]
        return []

    def _network(self, link: str | None) -> IPv4Network:
        net = self.links[link].network if link is not None else None
        return net if net is not None else _NOWHERE

    def transfer(self, limit: int = 10_000) -> None:
        """Deliver until nothing is in flight (at the current time)."""
        n = 0
        while self._queue:
            name, ev = self._queue.pop(0)
            node = self.nodes[name]
            n += 1
            if n > limit:
                raise RuntimeError("netsim: delivery does not converge")
            self._apply(node, node.engine.handle(ev, self.now))

    def next_deadline(self) -> float | None:
        ds = [n.engine.next_deadline() for n in self.nodes.values()]
        return min((d for d in ds if d is not None), default=None)

    def run_until(self, t: float, limit: int = 100_000) -> None:
        """Advance the virtual clock to ``t``, firing every engine's timers at their
        deadlines (the clock jumps to the minimum ``next_deadline`` each step)."""
        self.transfer()
        steps = 0
        while True:
            d = self.next_deadline()
            if d is None or d > t:
                break
            steps += 1
            if steps > limit:
                raise RuntimeError(f"netsim: timers do not converge at {self.now}")
            self.now = max(self.now, d)
            for node in list(self.nodes.values()):
                nd = node.engine.next_deadline()
                if nd is not None and nd <= self.now:
                    self._apply(node, node.engine.handle_timer(self.now))
            self.transfer()
        self.now = max(self.now, t)

    def advance(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    # -- inspection ----------------------------------------------------------------------

    def sent(
        self, sender: str | None = None, kind: type | None = None, *, delivered: bool | None = None
    ) -> list[Packet]:
        out = []
        for p in self.packets:
            if sender is not None and p.sender != sender:
                continue
            if delivered is not None and p.dropped == delivered:
                continue
            if kind is not None:
                try:
                    if not isinstance(p.message, kind):
                        continue
                except DecodeError:
                    continue
            out.append(p)
        return out

    def actions_of(self, name: str, cls: type[T]) -> list[T]:
        return [a for _, a in self.nodes[name].actions if isinstance(a, cls)]

    def logs(self, name: str, event: str) -> list[Log]:
        return [a for a in self.actions_of(name, Log) if a.event == event]


# ----------------------------------------------------------------------------------------
# The standard world: home link, foreign links A (FA1) and B (FA2), link C (no agent)
# ----------------------------------------------------------------------------------------

UNIX0 = 1_700_000_000.0
HOME_NET = IPv4Network("10.0.0.0/24")
HA_ADDR = A("10.0.0.1")
MN_HOME = A("10.0.0.5")
FA1_ADDR = A("192.168.1.1")
FA2_ADDR = A("192.168.2.1")
MN_COLOCATED = A("172.16.0.9")
LINKS = {
    "home": "10.0.0.0/24",
    "A": "192.168.1.0/24",
    "B": "192.168.2.0/24",
    "C": "172.16.0.0/24",
}
MN_HA_KEY = bytes(range(16))
FA_HA_KEY = bytes(range(16, 32))
MN_SPI = 1000
FA_SPI = 2000


def mn_ha_sa(replay: ReplayMethod = ReplayMethod.TIMESTAMPS) -> SecurityAssociation:
    return SecurityAssociation(spi=MN_SPI, key=MN_HA_KEY, replay=replay)


class World:
    """The standard topology with a mobile node ``mn``, home agent ``ha`` and (when the
    foreign agent engine is given) foreign agents ``fa1`` on link A and ``fa2`` on link B."""

    def __init__(
        self,
        *,
        mn_config: MobileNodeConfig | None = None,
        ha_config: HomeAgentConfig | None = None,
        fas: bool = True,
        fa_options: dict[str, Any] | None = None,
        fa2_options: dict[str, Any] | None = None,
        replay: ReplayMethod = ReplayMethod.TIMESTAMPS,
        mn_clock_skew: float = 0.0,
        fa_ha_sa: bool = False,
        ha_mn_key: bytes | None = None,
        ha_knows_fa: bool = True,
        fa_knows_ha: bool = True,
        seed: int = 0,
    ) -> None:
        self.net = Network(seed=seed)
        for name, prefix in LINKS.items():
            self.net.add_link(name, prefix)
        self.mn_sa = mn_ha_sa(replay)
        self.mn_config = mn_config or MobileNodeConfig(home_address=MN_HOME, home_agent=HA_ADDR)
        self.ha_config = ha_config or HomeAgentConfig(
            address=HA_ADDR, home_network=HOME_NET, interface="ha0"
        )
        self.fa_ha_sa = SecurityAssociation(spi=FA_SPI, key=FA_HA_KEY) if fa_ha_sa else None
        seed_rng = random.Random(seed)
        mn_seed = seed_rng.getrandbits(32)

        def make_mn() -> Engine:
            return MobileNode(
                self.mn_config, self.mn_sa, UNIX0 + mn_clock_skew, rng=random.Random(mn_seed)
            )

        def make_ha() -> Engine:
            sas = SecurityAssociations()
            ha_side = self.mn_sa
            if ha_mn_key is not None:  # a misconfigured key on the home agent's side
                ha_side = SecurityAssociation(spi=MN_SPI, key=ha_mn_key, replay=replay)
            sas.add(self.mn_config.home_address, ha_side)
            if self.mn_config.nai is not None:  # RFC 2794 §2: an MN-HA SA for the NAI
                sas.add(self.mn_config.nai, ha_side)
            if self.fa_ha_sa is not None and ha_knows_fa:
                sas.add(FA1_ADDR, self.fa_ha_sa)
                sas.add(FA2_ADDR, self.fa_ha_sa)
            return HomeAgent(self.ha_config, sas, UNIX0)

        self.net.add_node("ha", make_ha, {"ha0": ("home", [HA_ADDR])})
        self.net.add_node("mn", make_mn, {"mn0": (None, [])})
        if fas:
            for name, addr, link, opts in (
                ("fa1", FA1_ADDR, "A", fa_options),
                (
                    "fa2",
                    FA2_ADDR,
                    "B",
                    fa2_options if fa2_options is not None else fa_options or {},
                ),
            ):
                ifname = f"{name}-{link.lower()}"

                def make_fa(
                    addr: IPv4Address = addr,
                    ifname: str = ifname,
                    opts: dict[str, Any] | None = opts,
                ) -> Engine:
                    sas = SecurityAssociations()
                    if self.fa_ha_sa is not None and fa_knows_ha:
                        sas.add(HA_ADDR, self.fa_ha_sa)
                    options = {"links": (VisitedLink(ifname, addr, 24),), **(opts or {})}
                    cfg = ForeignAgentConfig(**options)
                    return ForeignAgent(cfg, sas, UNIX0)

                self.net.add_node(name, make_fa, {ifname: (link, [addr])})
                self.net.inject(name, LinkUp(ifname, addr, 24))
            self.net.transfer()

    # -- engines -------------------------------------------------------------------------

    @property
    def mn(self) -> MobileNode:
        e = self.net.nodes["mn"].engine
        assert isinstance(e, MobileNode)
        return e

    @property
    def ha(self) -> HomeAgent:
        e = self.net.nodes["ha"].engine
        assert isinstance(e, HomeAgent)
        return e

    @property
    def fa1(self) -> ForeignAgent:
        e = self.net.nodes["fa1"].engine
        assert isinstance(e, ForeignAgent)
        return e

    @property
    def fa2(self) -> ForeignAgent:
        e = self.net.nodes["fa2"].engine
        assert isinstance(e, ForeignAgent)
        return e

    @property
    def now(self) -> float:
        return self.net.now

    # -- moving the mobile node ----------------------------------------------------------

    def move(self, where: str | None, *, signal: bool = True) -> None:
        """Attach the mobile node to ``where`` ("home", "A", "B", "C") or detach it
        (``None``). With ``signal`` the node gets LinkDown/LinkUp; without, it only notices
        by advertisements (a silent roam)."""
        net = self.net
        iface = net.nodes["mn"].interfaces["mn0"]
        if iface.link is not None:
            net.link_down("mn", "mn0", signal=signal)
        if where is None:
            return
        home = self.mn_config.home_address
        if where == "home":
            net.link_up("mn", "mn0", "home", home, 24, signal=signal)
        elif where == "C":
            net.link_up("mn", "mn0", "C", MN_COLOCATED, 24, on_link=home, signal=signal)
        else:
            net.link_up("mn", "mn0", where, None, None, on_link=home, signal=signal)

    def run_until(self, t: float) -> None:
        self.net.run_until(t)

    def advance(self, seconds: float) -> None:
        self.net.advance(seconds)

    def bindings(self) -> list[MobilityBinding]:
        return list(self.ha.bindings)

    def requests_from_mn(self) -> list[Packet]:
        return [p for p in self.net.sent("mn", RegistrationRequest)]


def recording(monkeypatch: pytest.MonkeyPatch, world: World, name: str) -> list[list[Action]]:
    """Every action list node ``name``'s engine returns from ``handle`` from now on, in
    order (sends too): its ``handle`` is wrapped until the test ends."""
    engine = world.net.nodes[name].engine
    seen: list[list[Action]] = []
    original = engine.handle

    def handle(event: Any, now: float) -> list[Action]:
        out = original(event, now)
        seen.append(out)
        return out

    monkeypatch.setattr(engine, "handle", handle)
    return seen
