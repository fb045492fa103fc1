"""Where the mobile node is attached: links, agent advertisements, move detection.

Theory of operation
-------------------
:class:`AttachmentTracker` is the mobile node's attachment part (RFC 5944 §2.4). It keeps the
links that are up, the agents heard on them (:class:`~mip4.core.discovery.AgentDiscovery`),
the current :class:`Attachment` and the care-of addresses an agent refused (code 77). It
never registers and never changes the node's state: each input returns an *outcome* for the
coordinator (:class:`~mip4.core.mobile_node.MobileNode`), which registers, deregisters or
moves the state machine (:mod:`mip4.core.mn_state`) accordingly:

* :class:`GoHome` -- a link with an address on the home network, or an advertisement from
  the node's own home agent (H bit, RFC 5944 §2.4.3);
* :class:`Attach` -- a usable foreign agent (F bit, not busy, §2.1.1) or a co-located
  care-of address (§3.6.1.1); a move is an agent whose advertised prefix differs from the
  current one (§2.4.2.2), a foreign agent's prefix while at home, an agent that requires
  registration (R, §2.4.1) on a co-located link;
* :class:`Solicit` -- nothing usable on a link: soliciting started there (§2.4);
* :class:`OwnAgentHeard` -- the current foreign agent advertised again (the record is kept
  fresh: challenge, flags, sequence); ``rebooted`` when its sequence number fell into
  0..255 (§2.4.4).

Logs and solicitations are actions appended to the caller's list; decisions are returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Network
from typing import Protocol

from mip4.wire.errors import DecodeError
from mip4.wire.icmp import (
    ADVERTISEMENTS,
    AgentAdvertisement,
    AgentFlags,
    AgentSolicitation,
    decode_icmp,
)

from .actions import Action, Log, SendIcmp
from .counters import Counters
from .discovery import Agent, AgentDiscovery, address_moved, prefix_moved, sequence_shows_reboot
from .events import IcmpReceived, LinkDown, LinkUp
from .mn_config import MobileNodeConfig, ReverseTunnel
from .mn_state import log


class AttachmentKind(Enum):
    HOME = "home"
    FOREIGN_AGENT = "foreign agent"
    COLOCATED = "co-located"


@dataclass(frozen=True, slots=True)
class Attachment:
    kind: AttachmentKind
    interface: str
    #: the care-of address registered (home address when at home)
    care_of_address: IPv4Address
    #: the foreign agent (FOREIGN_AGENT only)
    agent: Agent | None = None
    #: the co-located address's subnet, when known (COLOCATED only)
    network: IPv4Network | None = None

    @property
    def agent_key(self) -> tuple[str, IPv4Address] | None:
        return (self.agent.interface, self.agent.address) if self.agent is not None else None


# ----------------------------------------------------------------------------------------
# Outcomes
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoHome:
    """The node is on its home network, on ``interface`` (RFC 5944 §2.4.3)."""

    interface: str


@dataclass(frozen=True)
class Attach:
    """Attach (and register) as ``attachment`` says; ``why`` for the log."""

    attachment: Attachment
    why: str


@dataclass(frozen=True)
class Solicit:
    """Nothing usable on ``interface``: soliciting started there (RFC 5944 §2.4)."""

    interface: str


@dataclass(frozen=True)
class Rechoose:
    """Choose the attachment on ``interface`` afresh (:meth:`AttachmentTracker.choose`),
    after detaching from the current one if it was there."""

    interface: str


@dataclass(frozen=True)
class OwnAgentHeard:
    """The current foreign agent advertised again."""

    agent: Agent
    rebooted: bool  #: RFC 5944 §2.4.4: its sequence number shows a reboot
    new: bool  #: heard for the first time since it was last forgotten
    previous_sequence: int | None


Choice = GoHome | Attach | Solicit
AdvertisementOutcome = GoHome | Attach | OwnAgentHeard

_F, _H = int(AgentFlags.F), int(AgentFlags.H)


class HomeNetworkSource(Protocol):
    """What knows the node's home network (the registration client: it may change with
    an assigned home address or home agent; or the configuration)."""

    @property
    def home_network(self) -> IPv4Network | None: ...


#: no refused care-of address (one shared empty set: none per node)
_NONE_REFUSED: frozenset[tuple[str, IPv4Address, IPv4Address]] = frozenset()


class AttachmentTracker:
    """The attachment part of the mobile node (see the module docstring). Slotted: one
    per node (a simulation holds a million)."""

    __slots__ = ("config", "counters", "current", "discovery", "home", "links", "refused")

    def __init__(
        self,
        config: MobileNodeConfig,
        discovery: AgentDiscovery,
        counters: Counters,
        home: HomeNetworkSource | None = None,
    ) -> None:
        self.config = config
        #: what gives the home network as the node knows it now (its ``home_network`` is
        #: ``None`` while unknown -- a node whose home address and home agent are both
        #: assigned, RFC 2794 + RFC 4433); default: the configuration
        self.home: HomeNetworkSource = home if home is not None else config
        self.discovery = discovery
        self.counters = counters
        #: interface -> (address, prefix length) for the links that are up
        self.links: dict[str, tuple[IPv4Address | None, int | None]] = {}
        self.current: Attachment | None = None
        #: (interface, agent, care-of address) refused with 77 (invalid care-of address)
        self.refused: frozenset[tuple[str, IPv4Address, IPv4Address]] = _NONE_REFUSED

    def home_network(self) -> IPv4Network | None:
        """The home network as the node knows it now (``None``: not known yet)."""
        return self.home.home_network

    @property
    def at_home(self) -> bool:
        a = self.current
        return a is not None and a.kind is AttachmentKind.HOME

    # ------------------------------------------------------------------------------------
    # Links
    # ------------------------------------------------------------------------------------

    def link_up(self, ev: LinkUp, now: float, out: list[Action]) -> GoHome | Rechoose | None:
        """A link came up. ``None``: still attached elsewhere (the link only adds
        candidates)."""
        # 0.0.0.0 is no address (a link not configured yet, RFC 1122 §3.2.1.3): never a
        # co-located care-of address, and not a sign of home
        address = ev.address if ev.address is not None and int(ev.address) != 0 else None
        self.links[ev.interface] = (address, ev.prefix_len if address is not None else None)
        out.append(log("mn.link_up", {"interface": ev.interface, "address": address}))
        if self._on_home_network(address):
            return GoHome(ev.interface)
        a = self.current
        if a is not None and a.interface != ev.interface:
            if a.kind is not AttachmentKind.HOME:
                self.discovery.start_soliciting(ev.interface, now)
                self.solicit_due(now, out)
            return None
        return Rechoose(ev.interface)

    def link_down(self, ev: LinkDown, out: list[Action]) -> bool:
        """A link went down; ``True`` when the current attachment was on it."""
        self.links.pop(ev.interface, None)
        self.discovery.link_down(ev.interface)
        if self.refused:
            self.refused = frozenset(k for k in self.refused if k[0] != ev.interface)
        out.append(log("mn.link_down", {"interface": ev.interface}))
        a = self.current
        return a is not None and a.interface == ev.interface

    def choose(self, interface: str, now: float, out: list[Action]) -> Choice | None:
        """How to attach on ``interface``: a usable foreign agent already heard, else a
        co-located address, else solicit. ``None`` when the link is not up."""
        if interface not in self.links:
            return None
        address, prefix_len = self.links[interface]
        if self._on_home_network(address):
            return GoHome(interface)
        for agent in self.discovery.agents(interface):
            if self.usable(agent, out):
                return self.through(agent, "agent already heard")
        if address is not None and self.config.colocated_allowed:
            network = (
                IPv4Network((address, prefix_len), strict=False) if prefix_len is not None else None
            )
            # RFC 5944 §2.4: no solicitation once a care-of address is known by other
            # means; an agent that requires registration (R) is heard by its periodic
            # advertisements.
            return Attach(
                Attachment(AttachmentKind.COLOCATED, interface, address, network=network),
                "co-located care-of address",
            )
        self.discovery.start_soliciting(interface, now)
        return Solicit(interface)

    def other_agent(self, out: list[Action], why: str) -> Attach | None:
        """A usable agent heard on a link that is up (after losing or leaving one)."""
        for other in self.discovery.agents():
            if other.interface in self.links and self.usable(other, out):
                return self.through(other, why)
        return None

    def refuse(self, att: Attachment) -> None:
        """The agent refused this care-of address (code 77)."""
        assert att.agent is not None
        self.refused = self.refused | {(att.interface, att.agent.address, att.care_of_address)}

    def restart_soliciting(self, interface: str, now: float, out: list[Action]) -> None:
        self.discovery.stop_soliciting()
        self.discovery.start_soliciting(interface, now)
        self.solicit_due(now, out)

    # ------------------------------------------------------------------------------------
    # Agent discovery
    # ------------------------------------------------------------------------------------

    def icmp(
        self,
        ev: IcmpReceived,
        now: float,
        out: list[Action],
        *,
        home_agent: IPv4Address,
        failed: bool,
    ) -> AdvertisementOutcome | None:
        """An ICMP message on a link: agent advertisements only (RFC 5944 §2.1)."""
        if ev.interface not in self.links:
            self.counters.discard("icmp_link_down")
            return None
        try:
            msg = decode_icmp(ev.payload)
        except DecodeError as e:
            self.counters.discard("icmp_malformed")
            out.append(Log("mn.discard", {"what": "icmp", "why": str(e)}))
            return None
        if isinstance(msg, AgentSolicitation):
            return None  # only agents answer solicitations
        return self._advertisement(msg, ev, now, out, home_agent, failed)

    def heard_again(self, ev: IcmpReceived, now: float) -> bool:
        """The fast path of :meth:`icmp` for the usual advertisement: the current foreign
        agent's, the very bytes heard before from it (a periodic one every node of the
        link hears) or the same content but for the sequence number, no reboot shown
        (RFC 5944 §2.4.4), nothing being solicited. Then all :meth:`icmp` would do is
        refresh the agent's record in place -- sequence number, lifetime (RFC 5944
        §2.4.2.1) -- and report :class:`OwnAgentHeard` with nothing new, to which the
        coordinator has nothing to add unless it awaits a challenge (its caller checks
        that); this does the refresh and returns ``True``. ``False``: nothing done, take
        the general path. (``tests/core/test_mn_fast_paths.py`` holds it against the
        general path, action for action and field for field.)"""
        a = self.current
        if a is None or a.kind is not AttachmentKind.FOREIGN_AGENT:
            return False
        agent = a.agent
        payload = ev.payload
        if (
            agent is None
            or type(payload) is not bytes
            or ev.link_src != agent.link_address
            or ev.interface != agent.interface
            or ev.src != agent.address
            or ev.interface not in self.links
            or agent.flag_bits & _H  # a home agent's: RFC 5944 §2.4.3 first
            or not agent.flag_bits & _F
        ):
            return False
        d = self.discovery
        if d.soliciting or d.get(agent.interface, agent.address) is not agent:
            return False
        adv = ADVERTISEMENTS.peek(payload)
        if adv is None:
            return False
        m = adv.mobility
        if m is None or ADVERTISEMENTS.shared(adv) is not agent.advertisement:
            return False
        seq = m.sequence
        if sequence_shows_reboot(agent.sequence, seq):
            return False
        ADVERTISEMENTS.hits += 1  # as decode_icmp would have counted it
        agent.expires = now + adv.lifetime
        agent.sequence = seq
        agent.heard = now
        return True

    def _is_home_agent_adv(self, agent: Agent, home_agent: IPv4Address) -> bool:
        """RFC 5944 §2.4.3: an advertisement from the node's own home agent."""
        if not agent.is_home_agent:
            return False
        return agent.address == home_agent or self._on_home_network(agent.address)

    def _on_home_network(self, address: IPv4Address | None) -> bool:
        if address is None:
            return False
        net = self.home_network()
        return net is not None and address in net

    def _advertisement(
        self,
        adv: AgentAdvertisement,
        ev: IcmpReceived,
        now: float,
        out: list[Action],
        home_agent: IPv4Address,
        failed: bool,
    ) -> AdvertisementOutcome | None:
        res = self.discovery.advertisement(adv, ev.src, ev.interface, ev.link_src, now)
        if res is None:
            self.counters.event("router_advertisement")
            return None
        agent = res.agent
        a = self.current
        if self._is_home_agent_adv(agent, home_agent):
            if not (self.at_home and a is not None and a.interface == ev.interface):
                return GoHome(ev.interface)
            if res.rebooted:
                out.append(Log("mn.home_agent_rebooted", {"agent": agent.address}))
            return None
        if not agent.is_foreign_agent:
            return None
        key = (agent.interface, agent.address)
        if res.rebooted and self.refused:
            self.refused = frozenset(k for k in self.refused if k[:2] != key)
        if self.discovery.soliciting:
            self.discovery.stop_soliciting()
        if a is not None and a.kind is AttachmentKind.FOREIGN_AGENT and a.agent_key == key:
            # Our agent: keep the record fresh (challenge, flags, sequence).
            self.current = Attachment(a.kind, a.interface, a.care_of_address, agent)
            return OwnAgentHeard(agent, res.rebooted, res.new, res.previous_sequence)
        if a is None:
            if self.usable(agent, out):
                return self.through(agent, "foreign agent advertisement")
            return None
        if a.kind is AttachmentKind.HOME:
            # RFC 5944 §2.4.2.2 applied to the home network: a foreign agent on our link
            # advertising a prefix that is not the home network means we left home.
            if (
                a.interface == agent.interface
                and (home := self.home_network()) is not None
                and address_moved(home, agent)
                and self.usable(agent, out)
            ):
                return self.through(agent, "foreign network prefix: left home")
            return None
        if a.kind is AttachmentKind.COLOCATED:
            # RFC 5944 §2.4.1 / §3.6: R set -> register through the agent even though a
            # co-located address is available.
            if (
                a.interface == agent.interface
                and agent.registration_required
                and self.usable(agent, out)
            ):
                return self.through(agent, "agent requires registration (R)")
            return None
        # Another foreign agent while attached to one.
        current = a.agent
        assert current is not None
        if prefix_moved(current, agent) and self.usable(agent, out):
            # RFC 5944 §2.4.2.2: the network prefix changed: the node has moved.
            return self.through(agent, "network prefix changed (RFC 5944 §2.4.2.2)")
        if failed and self.usable(agent, out):
            return self.through(agent, "another agent after giving up")
        return None

    def usable(self, agent: Agent, out: list[Action]) -> bool:
        if not agent.is_foreign_agent or not agent.care_of_addresses:
            return False
        if agent.busy:
            out.append(Log("mn.agent_busy", {"agent": agent.address}))
            return False
        if (agent.interface, agent.address, agent.care_of_addresses[0]) in self.refused:
            return False
        if self.config.reverse_tunnel is ReverseTunnel.REQUIRE and not agent.flags & AgentFlags.T:
            # RFC 3024 §5.1: T may be set only if the agent advertises it.
            out.append(
                Log("mn.agent_unusable", {"agent": agent.address, "why": "no reverse tunnel"})
            )
            return False
        return True

    @staticmethod
    def through(agent: Agent, why: str) -> Attach:
        """Attach through ``agent``, with its first advertised care-of address."""
        return Attach(
            Attachment(
                AttachmentKind.FOREIGN_AGENT, agent.interface, agent.care_of_addresses[0], agent
            ),
            why,
        )

    def expired(self, now: float) -> list[Agent]:
        """Agents whose advertisement lifetime ran out; the current one among them means
        the node lost its agent (RFC 5944 §2.4.2.1)."""
        lost = self.discovery.expire(now)
        for agent in lost:
            if self.refused:
                self.refused = frozenset(
                    k for k in self.refused if k[:2] != (agent.interface, agent.address)
                )
        return lost

    def solicit_due(self, now: float, out: list[Action]) -> None:
        interface = self.discovery.poll(now)
        if interface is None or interface not in self.links:
            return
        self.counters.event("solicitations")
        out.append(
            SendIcmp(
                dst=self.config.solicitation_address,
                payload=AgentSolicitation().encode(),
                interface=interface,
                ttl=1,  # RFC 5944 §2.2
            )
        )


__all__ = [
    "AdvertisementOutcome",
    "Attach",
    "Attachment",
    "AttachmentKind",
    "AttachmentTracker",
    "Choice",
    "GoHome",
    "OwnAgentHeard",
    "Rechoose",
    "Solicit",
]
