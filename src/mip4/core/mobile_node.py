"""The mobile node engine (RFC 5944 §2.4, §3.6, §4.2.1, §4.6; RFC 3024 §5).

Theory of operation
-------------------
A :class:`MobileNode` is driven like every engine (:mod:`mip4.core`): ``handle(event,
now)`` for a received datagram or a link change, ``handle_timer(now)`` when
``next_deadline()`` is reached; both return typed actions. It never reads a clock.

**Where am I?** The node keeps an *attachment*: how it is currently connected.

* *home* -- a LinkUp with an address on the home network, or an advertisement from its home
  agent (H bit from the configured home agent or from an address on the home network,
  RFC 5944 §2.4.3). It emits :class:`AtHome` and a :class:`GratuitousArp` for its home
  address (§4.6) and deregisters all its bindings (Lifetime 0, Care-of Address = home
  address, §3.6.1.2).
* *foreign agent* -- an advertisement with the F bit (RFC 5944 §2.1.1), not busy, heard
  through :class:`~mip4.core.discovery.AgentDiscovery`. The care-of address is the agent's
  first advertised one; requests go to the agent's address with TTL 1 (§3.6.1.1) and its
  link-layer address (never ARP, §4.2.1).
* *co-located* -- a LinkUp with an address on a foreign network, when the configuration
  allows it: D bit, request sent directly to the home agent from that address (§3.6.1.1).
  The node does not solicit then (§2.4: the care-of address is known); an advertisement
  with the R bit on that link makes it register through the agent instead (§2.4.1 / §3.6).

**Moves.** Losing the current agent's advertisements for their lifetime (§2.4.2.1) or
hearing an agent whose advertised prefix differs from the current one (§2.4.2.2, both
advertisements carrying a Prefix-Lengths extension) makes the node register again; an
agent whose sequence number falls into 0..255 rebooted (§2.4.4) and is registered with
again. At home, a foreign agent advertising a prefix other than the home network's means
the node has left. With no agent heard, the node solicits (§2.4: three at one per second,
then exponential back-off with randomised intervals, see :mod:`mip4.core.discovery`).

**Registration.** A request's flags come from the configuration *and* the attachment: S
and B from the configuration; D for a co-located address; M or G only if the agent
advertises it (§3.6.1.2); T only if the configuration asks for reverse tunnelling and the
agent advertises T or the address is co-located (RFC 3024 §5.1). Unanswered requests are
retransmitted after 1 s, then twice as long each time up to a bound (§3.6.3); with
timestamps each retransmission is a new registration with a new Identification, with
nonces it is the same request again. A reply is used only if its home address and the low
32 bits of its Identification match the outstanding request (§3.6.2.1, §5.7) and, unless it
is a foreign-agent denial (§3.6.2.1: those carry no MN-HA extension), its MN-HA
authenticator verifies. The node is *registered* only after such a reply accepts the
current care-of address; it re-registers before the granted lifetime (which may be shorter
than requested, §3.6.2.2) runs out, counted from when the request was sent. Every reply
code has a reaction (:mod:`mip4.core.mn_reactions`): 133 resynchronises the Identification
(§5.7), 69 retries with the lifetime in the reply, 136 retries with the home agent address
in the reply (§3.6.1.2 dynamic home agent discovery with a directed-broadcast home agent
address), RFC 3024 codes toggle T or drop the Encapsulating Delivery Style, 72/139 fall
back to IP-in-IP, challenge errors fetch a fresh challenge, 77 refuses that care-of
address, and the rest back off (exponentially, bounded) or give up with a reason the
operator can read (``failure_reason``; optionally retried after ``failed_retry``).

**State.** ``MnState`` and the transition table ``MN_TRANSITIONS`` (h11 style, checked after
every input): a missing (state, input) pair is a bug reported as a ``protocol-error`` log.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv4Network

from mip4.security.auth import AuthenticationError, append_extensions, sign, verify
from mip4.security.replay import MobileNodeReplay, low_word, matches_request
from mip4.security.sa import ReplayMethod, SecurityAssociation
from mip4.wire.errors import DecodeError
from mip4.wire.ext_tunnel import EncapsulatingDeliveryExtension
from mip4.wire.extensions import (
    Extension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
)
from mip4.wire.icmp import AgentAdvertisement, AgentFlags, AgentSolicitation, decode_icmp
from mip4.wire.messages import (
    INFINITE_LIFETIME,
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    decode_message,
)

from .actions import (
    MIP_PORT,
    Action,
    AtHome,
    AwayFromHome,
    Encapsulation,
    GratuitousArp,
    Log,
    SendIcmp,
    SendUdp,
    UseColocatedAddress,
    UseForeignAgent,
)
from .discovery import Agent, AgentDiscovery, address_moved, prefix_moved
from .events import DestinationUnreachable, Event, IcmpReceived, LinkDown, LinkUp, UdpReceived
from .mn_reactions import CodeReaction, Reaction, reaction_for
from .registration import ProtocolError, TransitionTable

_Body = Callable[[list[Action]], None]

ALL_ROUTERS = IPv4Address("224.0.0.2")  #: RFC 1256 §5.1 solicitation destination
MN_HA = MobileHomeAuthExtension.TYPE


class ReverseTunnel(Enum):
    """Reverse tunnelling preference (RFC 3024)."""

    OFF = "off"  #: never set T
    PREFER = "prefer"  #: set T when the agent offers it (or co-located); fine without
    REQUIRE = "require"  #: only register where T can be set


@dataclass(frozen=True)
class MobileNodeConfig:
    """Configuration of one mobile node."""

    home_address: IPv4Address
    """The node's permanent address on its home network (RFC 5944 §1.6)."""

    home_agent: IPv4Address
    """The home agent's address. The home network's directed-broadcast address asks for
    dynamic home agent discovery: the 136 reply names the real one (RFC 5944 §3.6.1.2)."""

    home_prefix_len: int = 24
    """Prefix length of the home network (decides "at home" and the broadcast address)."""

    lifetime: int = 1800
    """Requested registration lifetime, seconds (capped by the agent's advertised one)."""

    reverse_tunnel: ReverseTunnel = ReverseTunnel.OFF
    """Reverse tunnelling preference (RFC 3024): the T bit."""

    encapsulations: tuple[Encapsulation, ...] = (Encapsulation.IPIP,)
    """Tunnel encapsulations in order of preference. M and G are requested only when the
    agent advertises them (RFC 5944 §3.6.1.2); IP-in-IP is the fallback."""

    encapsulating_delivery: bool = False
    """When reverse tunnelling through a foreign agent, ask for the Encapsulating Delivery
    Style (RFC 3024 §3.3, extension 130) instead of Direct Delivery."""

    simultaneous_bindings: bool = False
    """Set S: ask the home agent to keep earlier bindings (RFC 5944 §3.3)."""

    broadcast: bool = False
    """Set B: ask for broadcast datagrams from the home network (RFC 5944 §3.3)."""

    colocated_allowed: bool = True
    """Register a co-located care-of address (D bit) on links without a foreign agent."""

    retransmit_initial: float = 1.0
    """First retransmission timeout, seconds; at least 1 (RFC 5944 §3.6.3)."""

    retransmit_max: float = 16.0
    """Bound on the doubling retransmission timeout (RFC 5944 §3.6.3)."""

    retransmit_limit: int = 5
    """Retransmissions of one registration before the attempt is abandoned (then the node
    backs off like a transient denial)."""

    renew_fraction: float = 0.8
    """Re-register when this fraction of the granted lifetime has passed."""

    denial_backoff: float = 10.0
    """First pause after a transient denial or an unanswered attempt; doubles each time."""

    denial_backoff_max: float = 300.0
    """Bound on that pause."""

    correction_limit: int = 4
    """Consecutive corrective retries (133 resync, 69, 136, T/encapsulation changes,
    challenges) before giving up: a peer that denies every correction is not retried
    forever."""

    failed_retry: float | None = None
    """After giving up, try again this many seconds later (``None``: only when the node
    attaches elsewhere, hears its agent reboot, or the link changes)."""

    solicit_initial_count: int = 3
    """Solicitations sent at one per second before backing off (RFC 5944 §2.4)."""

    solicit_max_interval: float = 60.0
    """Bound on the solicitation back-off interval (RFC 5944 §2.4)."""

    solicit_limit: int | None = None
    """Stop soliciting after this many (``None``: continue at the maximum interval)."""

    solicit_jitter: float = 0.1
    """Solicitation times are randomised (RFC 5944 §2.4 MUST): each interval is lengthened
    by up to this fraction."""

    solicitation_address: IPv4Address = ALL_ROUTERS
    """Where solicitations go: 224.0.0.2 or 255.255.255.255 (RFC 1256 §5.1)."""

    port: int = MIP_PORT
    """UDP source port of our requests (replies come back to it)."""

    def __post_init__(self) -> None:
        if not 0 <= self.home_prefix_len <= 32:
            raise ValueError(f"home_prefix_len {self.home_prefix_len}: must be 0..32")
        if not 1 <= self.lifetime <= INFINITE_LIFETIME:
            raise ValueError(f"lifetime {self.lifetime}: must be 1..65535 seconds")
        if self.retransmit_initial < 1.0:
            raise ValueError("retransmit_initial must be at least 1 second (RFC 5944 §3.6.3)")
        if self.retransmit_max < self.retransmit_initial:
            raise ValueError("retransmit_max must be >= retransmit_initial")
        if self.retransmit_limit < 0 or self.correction_limit < 0:
            raise ValueError("retransmit_limit and correction_limit must be >= 0")
        if not 0.0 < self.renew_fraction < 1.0:
            raise ValueError("renew_fraction must be strictly between 0 and 1")
        if self.failed_retry is not None and self.failed_retry <= 0:
            raise ValueError("failed_retry must be > 0 seconds (or None)")
        if self.denial_backoff <= 0 or self.denial_backoff_max < self.denial_backoff:
            raise ValueError("denial_backoff must be > 0 and <= denial_backoff_max")
        if not 0.0 <= self.solicit_jitter <= 1.0:
            raise ValueError("solicit_jitter must be within 0..1")
        if not self.encapsulations:
            raise ValueError("encapsulations must name at least one encapsulation")

    @property
    def home_network(self) -> IPv4Network:
        return IPv4Network((self.home_address, self.home_prefix_len), strict=False)

    @property
    def discovers_home_agent(self) -> bool:
        """The home agent address is the home network's directed broadcast
        (RFC 5944 §3.6.1.2)."""
        net = self.home_network
        return self.home_prefix_len < 31 and self.home_agent == net.broadcast_address


class MnState(Enum):
    DETACHED = "detached"  #: no link up
    DISCOVERING = "discovering"  #: link up, no usable agent or address yet
    REGISTERING = "registering"  #: a request is outstanding
    REGISTERED = "registered"  #: authenticated acceptance for the current care-of address
    BACKING_OFF = "backing off"  #: transient failure; a new attempt is scheduled
    DEREGISTERING = "deregistering"  #: at home, deregistration outstanding
    AT_HOME = "at home"
    FAILED = "failed"  #: gave up; waits for another agent, link or home


class MnInput(Enum):
    LINK_UP = "link up"
    LINK_DOWN = "link down"
    ICMP = "icmp"
    UDP = "udp"
    TIMER = "timer"
    DEREGISTER = "deregister"  #: the operator's :meth:`MobileNode.deregister`


class AttachmentKind(Enum):
    HOME = "home"
    FOREIGN_AGENT = "foreign agent"
    COLOCATED = "co-located"


_S = MnState
_ANY = frozenset(MnState)
_AWAY = frozenset(
    {_S.DETACHED, _S.DISCOVERING, _S.REGISTERING, _S.REGISTERED, _S.BACKING_OFF, _S.FAILED}
)


def _table() -> dict[tuple[MnState, MnInput], frozenset[MnState]]:
    t: dict[tuple[MnState, MnInput], frozenset[MnState]] = {}
    for s in MnState:
        # Link changes and advertisements may move the node anywhere (home, a new agent,
        # a co-located address, nowhere).
        t[(s, MnInput.LINK_UP)] = _ANY
        t[(s, MnInput.LINK_DOWN)] = _ANY
        t[(s, MnInput.ICMP)] = _ANY
        t[(s, MnInput.TIMER)] = _ANY
    # A reply only matters while a request is outstanding; elsewhere it is discarded.
    # Without a request outstanding (DETACHED, DISCOVERING, BACKING_OFF, AT_HOME, FAILED)
    # a reply is discarded and changes nothing.
    for s in MnState:
        t[(s, MnInput.UDP)] = frozenset({s})
    after_reply = frozenset(
        {_S.REGISTERING, _S.REGISTERED, _S.BACKING_OFF, _S.FAILED, _S.DISCOVERING}
    )
    t[(_S.REGISTERING, MnInput.UDP)] = after_reply
    t[(_S.REGISTERED, MnInput.UDP)] = after_reply  # a re-registration was outstanding
    t[(_S.DEREGISTERING, MnInput.UDP)] = frozenset(
        {_S.DEREGISTERING, _S.AT_HOME, _S.BACKING_OFF, _S.FAILED}
    )
    # Operator deregistration: from any state with a binding or none (a no-op elsewhere).
    for s in MnState:
        t[(s, MnInput.DEREGISTER)] = frozenset({s, _S.REGISTERING, _S.REGISTERED, _S.DEREGISTERING})
    return t


#: Allowed transitions of the mobile node: (state, input) -> possible next states.
MN_TRANSITIONS: TransitionTable[MnState, MnInput] = TransitionTable("mobile node", _table())


@dataclass(frozen=True)
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


@dataclass
class _Pending:
    """The outstanding Registration Request."""

    request: RegistrationRequest
    send: SendUdp
    attachment: Attachment
    deregister: bool
    first_sent: float
    last_sent: float
    retransmissions: int
    timeout: float
    next_retry: float


@dataclass
class _Binding:
    """What the node believes its home agent holds for it."""

    care_of_address: IPv4Address
    attachment: Attachment
    granted: int
    registered_at: float
    expires: float | None  #: None: infinite lifetime
    renew_at: float | None
    encapsulation: Encapsulation
    reverse_tunnel: bool


@dataclass(frozen=True)
class RegistrationRecord:
    """The node's last accepted registration or deregistration, for the operator."""

    #: when the reply arrived (the engine's clock)
    at: float
    #: the care-of address registered (the home address for a deregistration at home)
    care_of_address: IPv4Address
    #: from the request's last transmission to the reply, seconds
    round_trip: float
    retransmissions: int
    deregistration: bool


@dataclass
class _Adjust:
    """Corrections learnt from denials, valid for the current attachment."""

    max_lifetime: int | None = None
    no_encapsulations: set[Encapsulation] = field(default_factory=set)
    reverse_tunnel: bool | None = None  #: forced on/off by 74/75/137/138
    direct_delivery: bool = False  #: 79: no Encapsulating Delivery Style
    corrections: int = 0
    backoffs: int = 0


class MobileNode:
    """The sans-IO mobile node (see the module docstring)."""

    def __init__(
        self,
        config: MobileNodeConfig,
        sa: SecurityAssociation,
        clock_offset: float = 0.0,
        *,
        rng: random.Random | None = None,
    ) -> None:
        """``sa`` is the MN-HA mobility security association; ``clock_offset`` maps the
        engine's monotonic ``now`` to Unix time (``unix = now + clock_offset``), used only
        to build timestamp Identifications (RFC 5944 §5.7.1). ``rng`` supplies the random
        low words and nonces (a seeded one makes tests reproducible)."""
        self.config = config
        self.sa = sa
        self.clock_offset = clock_offset
        self._rng = rng if rng is not None else random.SystemRandom()
        self.replay = MobileNodeReplay(method=sa.replay)
        self.discovery = AgentDiscovery(
            initial_solicitations=config.solicit_initial_count,
            max_interval=config.solicit_max_interval,
            max_solicitations=config.solicit_limit,
            jitter=config.solicit_jitter,
            rng=random.Random(self._rng.getrandbits(64)),
        )
        self.state = MnState.DETACHED
        self.home_agent = config.home_agent
        #: interface -> (address, prefix length) for the links that are up
        self.links: dict[str, tuple[IPv4Address | None, int | None]] = {}
        self.attachment: Attachment | None = None
        self._pending: _Pending | None = None
        self._binding: _Binding | None = None
        self._adjust = _Adjust()
        self._retry_at: float | None = None  #: backing off: next attempt
        self._await_challenge = False
        #: (interface, agent, care-of address) refused with 77 (invalid care-of address)
        self._refused: set[tuple[str, IPv4Address, IPv4Address]] = set()
        #: the last UseForeignAgent / UseColocatedAddress handed to the I/O layer
        self._announced: Action | None = None
        #: the reason of the last give-up, for the operator
        self.failure_reason: str | None = None
        #: the last reply code received and the reaction taken
        self.last_reaction: CodeReaction | None = None
        #: the last accepted registration or deregistration (round trip, retransmissions)
        self.last_registration: RegistrationRecord | None = None
        self.counters: dict[str, int] = {}

    # ------------------------------------------------------------------------------------
    # Public state
    # ------------------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        """An authenticated acceptance is held for the current care-of address."""
        b = self._binding
        a = self.attachment
        return (
            b is not None
            and a is not None
            and a.kind is not AttachmentKind.HOME
            and b.care_of_address == a.care_of_address
        )

    @property
    def care_of_address(self) -> IPv4Address | None:
        a = self.attachment
        return a.care_of_address if a is not None and a.kind is not AttachmentKind.HOME else None

    @property
    def binding_expires(self) -> float | None:
        return self._binding.expires if self._binding is not None else None

    @property
    def binding(self) -> _Binding | None:
        return self._binding

    @property
    def pending_request(self) -> RegistrationRequest | None:
        return self._pending.request if self._pending is not None else None

    @property
    def at_home(self) -> bool:
        a = self.attachment
        return a is not None and a.kind is AttachmentKind.HOME

    # ------------------------------------------------------------------------------------
    # Engine interface
    # ------------------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Action]:
        if isinstance(event, LinkUp):
            return self._guard(MnInput.LINK_UP, now, lambda out: self._on_link_up(event, now, out))
        if isinstance(event, LinkDown):
            return self._guard(
                MnInput.LINK_DOWN, now, lambda out: self._on_link_down(event, now, out)
            )
        if isinstance(event, IcmpReceived):
            return self._guard(MnInput.ICMP, now, lambda out: self._on_icmp(event, now, out))
        if isinstance(event, UdpReceived):
            return self._guard(MnInput.UDP, now, lambda out: self._on_udp(event, now, out))
        if isinstance(event, DestinationUnreachable):
            # Not acted upon: the retransmission timer covers a request that went nowhere
            # (only a foreign agent turns these into reply codes 80-88, RFC 5944 §3.7.2.3).
            self._count("icmp-unreachable")
            return [Log("mn-icmp-unreachable", {"code": event.code, "about": event.original_dst})]
        return [Log("mn-unknown-event", {"event": type(event).__name__})]

    def handle_timer(self, now: float) -> list[Action]:
        return self._guard(MnInput.TIMER, now, lambda out: self._on_timer(now, out))

    def next_deadline(self) -> float | None:
        times: list[float] = []
        d = self.discovery.next_deadline()
        if d is not None:
            times.append(d)
        if self._pending is not None:
            times.append(self._pending.next_retry)
        if self._retry_at is not None:
            times.append(self._retry_at)
        b = self._binding
        if b is not None:
            if b.expires is not None:
                times.append(b.expires)
            if b.renew_at is not None and self._pending is None and self._retry_at is None:
                times.append(b.renew_at)
        return min(times) if times else None

    def deregister(self, now: float, care_of_address: IPv4Address | None = None) -> list[Action]:
        """Ask the home agent to drop bindings: all of them (``None``: Care-of Address =
        home address, S clear, RFC 5944 §3.6.1.2) or only ``care_of_address`` (S set, that
        care-of address, Lifetime 0)."""
        return self._guard(
            MnInput.DEREGISTER, now, lambda out: self._deregister(now, care_of_address, out)
        )

    # ------------------------------------------------------------------------------------
    # Error boundary and transition check
    # ------------------------------------------------------------------------------------

    def _guard(self, inp: MnInput, now: float, body: _Body) -> list[Action]:
        out: list[Action] = []
        before = self.state
        try:
            MN_TRANSITIONS.check(before, inp)
            body(out)
            MN_TRANSITIONS.confirm(before, inp, self.state)
        except ProtocolError as e:
            self._count("protocol-error")
            out.append(Log("mn-protocol-error", {"error": str(e)}))
        except Exception as e:  # the boundary: no engine raises on any input
            self._count("internal-error")
            out.append(Log("mn-internal-error", {"error": repr(e), "input": inp.value}))
        return out

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _set_state(self, state: MnState, out: list[Action], why: str) -> None:
        if state is not self.state:
            out.append(Log("mn-state", {"from": self.state.value, "to": state.value, "why": why}))
            self.state = state

    # ------------------------------------------------------------------------------------
    # Links
    # ------------------------------------------------------------------------------------

    def _on_link_up(self, ev: LinkUp, now: float, out: list[Action]) -> None:
        self.links[ev.interface] = (ev.address, ev.prefix_len)
        out.append(Log("mn-link-up", {"interface": ev.interface, "address": ev.address}))
        if ev.address is not None and ev.address in self.config.home_network:
            self._arrive_home(ev.interface, now, out)
            return
        a = self.attachment
        if a is not None and a.interface != ev.interface:
            # Still attached elsewhere: keep it; a new link only adds candidates.
            if a.kind is not AttachmentKind.HOME:
                self.discovery.start_soliciting(ev.interface, now)
                self._solicit_due(now, out)
            return
        if a is not None:
            self._detach(out, "link came up again")
        self._find_attachment(ev.interface, now, out)

    def _on_link_down(self, ev: LinkDown, now: float, out: list[Action]) -> None:
        self.links.pop(ev.interface, None)
        self.discovery.link_down(ev.interface)
        self._refused = {k for k in self._refused if k[0] != ev.interface}
        out.append(Log("mn-link-down", {"interface": ev.interface}))
        a = self.attachment
        if a is not None and a.interface == ev.interface:
            self._detach(out, "link down")
            for iface in list(self.links):
                self._find_attachment(iface, now, out)
                if self.attachment is not None:
                    break
            if self.attachment is None:
                self._set_state(
                    MnState.DISCOVERING if self.links else MnState.DETACHED, out, "link down"
                )

    def _detach(self, out: list[Action], why: str) -> None:
        """Forget the attachment; the node holds no usable binding any more."""
        self.attachment = None
        self._pending = None
        self._retry_at = None
        self._binding = None
        self._announced = None
        self._await_challenge = False
        self._adjust = _Adjust()
        out.append(Log("mn-detached", {"why": why}))

    def _find_attachment(self, interface: str, now: float, out: list[Action]) -> None:
        """Choose how to attach on ``interface``: a usable foreign agent already heard,
        else a co-located address (then solicit anyway, for an R-bit agent), else
        solicit."""
        if interface not in self.links:
            return
        address, prefix_len = self.links[interface]
        if address is not None and address in self.config.home_network:
            self._arrive_home(interface, now, out)
            return
        for agent in self.discovery.agents(interface):
            if self._usable(agent, out):
                self._attach_agent(agent, now, out, "agent already heard")
                return
        if address is not None and self.config.colocated_allowed:
            network = (
                IPv4Network((address, prefix_len), strict=False) if prefix_len is not None else None
            )
            # RFC 5944 §2.4: no solicitation once a care-of address is known by other
            # means; an agent that requires registration (R) is heard by its periodic
            # advertisements.
            self._attach(
                Attachment(AttachmentKind.COLOCATED, interface, address, network=network),
                now,
                out,
                "co-located care-of address",
            )
            return
        self._set_state(MnState.DISCOVERING, out, "looking for an agent")
        self.discovery.start_soliciting(interface, now)
        self._solicit_due(now, out)

    # ------------------------------------------------------------------------------------
    # Agent discovery
    # ------------------------------------------------------------------------------------

    def _on_icmp(self, ev: IcmpReceived, now: float, out: list[Action]) -> None:
        if ev.interface not in self.links:
            self._count("icmp-link-down")
            return
        try:
            msg = decode_icmp(ev.payload)
        except DecodeError as e:
            self._count("icmp-malformed")
            out.append(Log("mn-discard", {"what": "icmp", "why": str(e)}))
            return
        if isinstance(msg, AgentSolicitation):
            return  # only agents answer solicitations
        self._on_advertisement(msg, ev, now, out)

    def _is_home_agent_adv(self, agent: Agent) -> bool:
        """RFC 5944 §2.4.3: an advertisement from the node's own home agent."""
        if not agent.is_home_agent:
            return False
        home = self.config.home_network
        return agent.address == self.home_agent or agent.address in home

    def _on_advertisement(
        self, adv: AgentAdvertisement, ev: IcmpReceived, now: float, out: list[Action]
    ) -> None:
        res = self.discovery.advertisement(adv, ev.src, ev.interface, ev.link_src, now)
        if res is None:
            self._count("router-advertisement")
            return
        agent = res.agent
        if self._is_home_agent_adv(agent):
            if not (self.at_home and self.attachment and self.attachment.interface == ev.interface):
                self._arrive_home(ev.interface, now, out)
            elif res.rebooted:
                out.append(Log("mn-home-agent-rebooted", {"agent": agent.address}))
            return
        if not agent.is_foreign_agent:
            return
        key = (agent.interface, agent.address)
        if res.rebooted:
            self._refused = {k for k in self._refused if k[:2] != key}
        if self.discovery.soliciting:
            self.discovery.stop_soliciting()
        a = self.attachment
        if a is not None and a.kind is AttachmentKind.FOREIGN_AGENT and a.agent_key == key:
            # Our agent: keep the record fresh (challenge, flags, sequence).
            self.attachment = Attachment(a.kind, a.interface, a.care_of_address, agent)
            if res.rebooted:
                # RFC 5944 §2.4.4: it lost its visitor list; register again.
                out.append(
                    Log(
                        "mn-agent-rebooted",
                        {
                            "agent": agent.address,
                            "sequence": agent.sequence,
                            "previous": res.previous_sequence,
                        },
                    )
                )
                self._adjust = _Adjust()
                self._start_registration(now, out, "foreign agent rebooted")
            elif self._await_challenge:
                self._await_challenge = False
                self._start_registration(now, out, "fresh challenge")
            elif self.state is MnState.FAILED and res.new:
                self._start_registration(now, out, "agent heard again")
            return
        if a is None:
            if self._usable(agent, out):
                self._attach_agent(agent, now, out, "foreign agent advertisement")
            return
        if a.kind is AttachmentKind.HOME:
            # RFC 5944 §2.4.2.2 applied to the home network: a foreign agent on our link
            # advertising a prefix that is not the home network means we left home.
            if (
                a.interface == agent.interface
                and address_moved(self.config.home_network, agent)
                and self._usable(agent, out)
            ):
                self._attach_agent(agent, now, out, "foreign network prefix: left home")
            return
        if a.kind is AttachmentKind.COLOCATED:
            # RFC 5944 §2.4.1 / §3.6: R set -> register through the agent even though a
            # co-located address is available.
            if (
                a.interface == agent.interface
                and agent.registration_required
                and self._usable(agent, out)
            ):
                self._attach_agent(agent, now, out, "agent requires registration (R)")
            return
        # Another foreign agent while attached to one.
        current = a.agent
        assert current is not None
        moved = prefix_moved(current, agent)
        if moved and self._usable(agent, out):
            # RFC 5944 §2.4.2.2: the network prefix changed: the node has moved.
            self._attach_agent(agent, now, out, "network prefix changed (RFC 5944 §2.4.2.2)")
        elif self.state is MnState.FAILED and self._usable(agent, out):
            self._attach_agent(agent, now, out, "another agent after giving up")

    def _usable(self, agent: Agent, out: list[Action]) -> bool:
        if not agent.is_foreign_agent or not agent.care_of_addresses:
            return False
        if agent.busy:
            out.append(Log("mn-agent-busy", {"agent": agent.address}))
            return False
        if (agent.interface, agent.address, agent.care_of_addresses[0]) in self._refused:
            return False
        if self.config.reverse_tunnel is ReverseTunnel.REQUIRE and not agent.flags & AgentFlags.T:
            # RFC 3024 §5.1: T may be set only if the agent advertises it.
            out.append(
                Log("mn-agent-unusable", {"agent": agent.address, "why": "no reverse tunnel"})
            )
            return False
        return True

    def _attach_agent(self, agent: Agent, now: float, out: list[Action], why: str) -> None:
        att = Attachment(
            AttachmentKind.FOREIGN_AGENT, agent.interface, agent.care_of_addresses[0], agent
        )
        self._attach(att, now, out, why)

    def _attach(self, att: Attachment, now: float, out: list[Action], why: str) -> None:
        if self._binding is not None and self._binding.care_of_address != att.care_of_address:
            # A binding for another care-of address is not a registration here.
            self._binding = None
        self.attachment = att
        self._adjust = _Adjust()
        self._await_challenge = False
        self._retry_at = None
        out.append(
            Log(
                "mn-attach",
                {
                    "kind": att.kind.value,
                    "interface": att.interface,
                    "care_of_address": att.care_of_address,
                    "why": why,
                },
            )
        )
        if att.kind is not AttachmentKind.HOME:
            out.append(AwayFromHome(att.interface, self.config.home_address))
        self._start_registration(now, out, why)

    def _solicit_due(self, now: float, out: list[Action]) -> None:
        interface = self.discovery.poll(now)
        if interface is None or interface not in self.links:
            return
        self._count("solicitations")
        out.append(
            SendIcmp(
                dst=self.config.solicitation_address,
                payload=AgentSolicitation().encode(),
                interface=interface,
                ttl=1,  # RFC 5944 §2.2
            )
        )

    # ------------------------------------------------------------------------------------
    # Home (RFC 5944 §2.4.3, §4.6)
    # ------------------------------------------------------------------------------------

    def _arrive_home(self, interface: str, now: float, out: list[Action]) -> None:
        was = self.attachment
        self.discovery.stop_soliciting()
        self._pending = None
        self._retry_at = None
        self._binding = None
        self._adjust = _Adjust()
        self._announced = None
        self.attachment = Attachment(AttachmentKind.HOME, interface, self.config.home_address)
        out.append(AtHome(interface, self.config.home_address))
        # RFC 5944 §4.6: on returning home the node broadcasts gratuitous ARP for its home
        # address so that neighbours stop using the home agent's link-layer address.
        out.append(GratuitousArp(interface, self.config.home_address))
        out.append(
            Log(
                "mn-at-home",
                {"interface": interface, "from": was.kind.value if was is not None else None},
            )
        )
        self._send_deregistration(now, out, None)

    def _deregister(
        self, now: float, care_of_address: IPv4Address | None, out: list[Action]
    ) -> None:
        if self.attachment is None:
            out.append(Log("mn-deregister-ignored", {"why": "not attached"}))
            return
        self._send_deregistration(now, out, care_of_address)

    def _send_deregistration(
        self, now: float, out: list[Action], care_of_address: IPv4Address | None
    ) -> None:
        att = self.attachment
        assert att is not None
        flags = RegistrationFlags(0)
        if care_of_address is None:
            coa = self.config.home_address  # RFC 5944 §3.6.1.2: deregister all bindings
        else:
            coa = care_of_address
            flags |= RegistrationFlags.S  # only this binding
        self._send_new(now, out, att, flags=flags, lifetime=0, care_of_address=coa, deregister=True)

    # ------------------------------------------------------------------------------------
    # Sending requests
    # ------------------------------------------------------------------------------------

    def _encapsulation(self, att: Attachment) -> Encapsulation:
        for enc in self.config.encapsulations:
            if enc in self._adjust.no_encapsulations:
                continue
            if enc is Encapsulation.IPIP:
                return enc
            if att.kind is AttachmentKind.COLOCATED:
                return enc  # the node decapsulates itself
            flags = att.agent.flags if att.agent is not None else AgentFlags(0)
            if enc is Encapsulation.MINIMAL and flags & AgentFlags.M:
                return enc
            if enc is Encapsulation.GRE and flags & AgentFlags.G:
                return enc
        return Encapsulation.IPIP

    def _reverse_tunnel(self, att: Attachment) -> bool:
        offered = att.kind is AttachmentKind.COLOCATED or (
            att.agent is not None and bool(att.agent.flags & AgentFlags.T)
        )
        forced = self._adjust.reverse_tunnel
        if forced is not None:
            return forced and offered
        return self.config.reverse_tunnel is not ReverseTunnel.OFF and offered

    def _lifetime(self, att: Attachment) -> int:
        lifetime = self.config.lifetime
        if att.agent is not None and att.agent.registration_lifetime:
            # RFC 5944 §3.6.1.2: not more than the agent advertises.
            lifetime = min(lifetime, att.agent.registration_lifetime)
        if self._adjust.max_lifetime is not None:
            lifetime = min(lifetime, self._adjust.max_lifetime)
        return max(lifetime, 1)

    def _start_registration(self, now: float, out: list[Action], why: str) -> None:
        att = self.attachment
        if att is None:
            return
        if att.kind is AttachmentKind.HOME:
            self._send_deregistration(now, out, None)
            return
        flags = RegistrationFlags(0)
        if self.config.simultaneous_bindings:
            flags |= RegistrationFlags.S
        if self.config.broadcast:
            flags |= RegistrationFlags.B
        if att.kind is AttachmentKind.COLOCATED:
            flags |= RegistrationFlags.D
        enc = self._encapsulation(att)
        if enc is Encapsulation.MINIMAL:
            flags |= RegistrationFlags.M
        elif enc is Encapsulation.GRE:
            flags |= RegistrationFlags.G
        if self._reverse_tunnel(att):
            flags |= RegistrationFlags.T
        out.append(Log("mn-register", {"why": why, "care_of_address": att.care_of_address}))
        self._send_new(
            now,
            out,
            att,
            flags=flags,
            lifetime=self._lifetime(att),
            care_of_address=att.care_of_address,
            deregister=False,
        )

    def _send_new(
        self,
        now: float,
        out: list[Action],
        att: Attachment,
        *,
        flags: RegistrationFlags,
        lifetime: int,
        care_of_address: IPv4Address,
        deregister: bool,
    ) -> None:
        request = self._build(att, flags, lifetime, care_of_address, now)
        send = self._send_action(att, request.raw)
        timeout = self.config.retransmit_initial
        self._pending = _Pending(
            request=request,
            send=send,
            attachment=att,
            deregister=deregister,
            first_sent=now,
            last_sent=now,
            retransmissions=0,
            timeout=timeout,
            next_retry=now + timeout,
        )
        self._retry_at = None
        if att.kind is AttachmentKind.HOME:
            self._set_state(MnState.DEREGISTERING, out, "deregistration sent")
        elif self.registered:
            self._set_state(MnState.REGISTERED, out, "re-registration sent")
        else:
            self._set_state(MnState.REGISTERING, out, "request sent")
        self._count("requests")
        out.append(send)
        out.append(
            Log(
                "mn-request",
                {
                    "lifetime": lifetime,
                    "care_of_address": care_of_address,
                    "home_agent": self.home_agent,
                    "flags": str(flags),
                    "identification": f"{request.identification:#018x}",
                },
            )
        )

    def _build(
        self,
        att: Attachment,
        flags: RegistrationFlags,
        lifetime: int,
        care_of_address: IPv4Address,
        now: float,
    ) -> RegistrationRequest:
        identification = self.replay.next_identification(self._unix(now), self._rng.getrandbits(32))
        req = RegistrationRequest(
            flags=flags,
            lifetime=lifetime,
            home_address=self.config.home_address,
            home_agent=self.home_agent,
            care_of_address=care_of_address,
            identification=identification,
        )
        signed = sign(req, MobileHomeAuthExtension, self.sa)  # RFC 5944 §3.6.1.3
        # Extensions for the foreign agent only follow MN-HA (RFC 5944 §3.6.1.3); it removes
        # them before relaying.
        fa_only: list[Extension] = []
        challenge = att.agent.advertisement.challenge if att.agent is not None else None
        if challenge:
            # RFC 4721 §3.2: echo the agent's challenge.
            fa_only.append(MobileForeignChallengeExtension(challenge))
        if (
            att.kind is AttachmentKind.FOREIGN_AGENT
            and flags & RegistrationFlags.T
            and self.config.encapsulating_delivery
            and not self._adjust.direct_delivery
        ):
            # RFC 3024 §3.3: ask for the Encapsulating Delivery Style (only with T).
            fa_only.append(EncapsulatingDeliveryExtension())
        if fa_only:
            signed = append_extensions(signed, *fa_only)
        return signed

    def _unix(self, now: float) -> float:
        return now + self.clock_offset

    def _send_action(self, att: Attachment, payload: bytes) -> SendUdp:
        if att.kind is AttachmentKind.FOREIGN_AGENT:
            agent = att.agent
            assert agent is not None
            # RFC 5944 §3.6.1.1: to the agent's address (the advertisement's source), from
            # the home address, TTL 1; the agent is reached by its link-layer address.
            return SendUdp(
                dst=agent.address,
                payload=payload,
                sport=self.config.port,
                src=self.config.home_address,
                interface=att.interface,
                link_dst=agent.link_address,
                ttl=1,
            )
        src = att.care_of_address if att.kind is AttachmentKind.COLOCATED else None
        return SendUdp(
            dst=self.home_agent,
            payload=payload,
            sport=self.config.port,
            src=src or self.config.home_address,
            interface=att.interface,
        )

    # ------------------------------------------------------------------------------------
    # Timers
    # ------------------------------------------------------------------------------------

    def _on_timer(self, now: float, out: list[Action]) -> None:
        for agent in self.discovery.expire(now):
            self._agent_lost(agent, now, out)
        self._solicit_due(now, out)
        p = self._pending
        if p is not None and now >= p.next_retry:
            self._retransmit(p, now, out)
        b = self._binding
        if b is not None and b.expires is not None and now >= b.expires:
            out.append(Log("mn-binding-expired", {"care_of_address": b.care_of_address}))
            self._binding = None
            if self.state is MnState.REGISTERED:
                if self._pending is not None:
                    self._set_state(MnState.REGISTERING, out, "binding expired")
                else:
                    self._start_registration(now, out, "binding expired")
        b = self._binding
        if (
            b is not None
            and b.renew_at is not None
            and now >= b.renew_at
            and self._pending is None
            and self._retry_at is None
            and self.state is MnState.REGISTERED
        ):
            b.renew_at = None
            self._start_registration(now, out, "re-registration before the lifetime ends")
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            if self.attachment is not None:
                self._start_registration(now, out, "back-off over")

    def _agent_lost(self, agent: Agent, now: float, out: list[Action]) -> None:
        self._refused = {k for k in self._refused if k[:2] != (agent.interface, agent.address)}
        a = self.attachment
        if a is None or a.agent_key != (agent.interface, agent.address):
            return
        # RFC 5944 §2.4.2.1: lost contact with the agent: the node has moved.
        out.append(Log("mn-agent-lost", {"agent": agent.address}))
        self._detach(out, "agent advertisement lifetime expired")
        for other in self.discovery.agents():
            if other.interface in self.links and self._usable(other, out):
                self._attach_agent(other, now, out, "other agent still advertising")
                return
        self._set_state(MnState.DISCOVERING, out, "agent lost")
        if a.interface in self.links:
            self._find_attachment(a.interface, now, out)

    def _retransmit(self, p: _Pending, now: float, out: list[Action]) -> None:
        if p.retransmissions >= self.config.retransmit_limit:
            out.append(Log("mn-request-timeout", {"retransmissions": p.retransmissions}))
            self._pending = None
            if p.deregister and p.attachment.kind is AttachmentKind.HOME:
                self._set_state(MnState.AT_HOME, out, "deregistration unanswered")
                return
            self._back_off(now, out, "no reply to the registration request")
            return
        p.retransmissions += 1
        # RFC 5944 §3.6.3: each timeout at least twice the previous, bounded; the bound
        # SHOULD NOT exceed the requested lifetime.
        cap = self.config.retransmit_max
        if p.request.lifetime:
            cap = min(cap, max(float(p.request.lifetime), self.config.retransmit_initial))
        p.timeout = min(p.timeout * 2.0, cap)
        if self.sa.replay is ReplayMethod.TIMESTAMPS:
            # RFC 5944 §3.6.3: with timestamps a retransmission is a new registration with
            # a new Identification.
            req = p.request
            p.request = self._build(p.attachment, req.flags, req.lifetime, req.care_of_address, now)
            p.send = self._send_action(p.attachment, p.request.raw)
        p.last_sent = now
        p.next_retry = now + p.timeout
        self._count("retransmissions")
        out.append(p.send)
        out.append(
            Log(
                "mn-retransmit",
                {
                    "n": p.retransmissions,
                    "next_timeout": p.timeout,
                    "identification": f"{p.request.identification:#018x}",
                },
            )
        )

    def _back_off(self, now: float, out: list[Action], why: str) -> None:
        self._adjust.backoffs += 1
        delay = min(
            self.config.denial_backoff * 2.0 ** min(self._adjust.backoffs - 1, 32),
            self.config.denial_backoff_max,
        )
        self._retry_at = now + delay
        self._set_state(MnState.BACKING_OFF, out, why)
        out.append(Log("mn-back-off", {"why": why, "retry_in": delay}))

    def _give_up(self, now: float, out: list[Action], reason: str) -> None:
        self._pending = None
        self._retry_at = None
        self.failure_reason = reason
        self._set_state(MnState.FAILED, out, reason)
        retry = self.config.failed_retry
        if retry is not None:
            # Start afresh later: the operator may have fixed what the peer objected to.
            self._retry_at = now + retry
            self._adjust = _Adjust()
        out.append(Log("mn-gave-up", {"reason": reason, "retry_in": retry}))

    # ------------------------------------------------------------------------------------
    # Replies (RFC 5944 §3.6.2)
    # ------------------------------------------------------------------------------------

    def _discard(self, out: list[Action], why: str, **fields: object) -> None:
        self._count("reply-discarded")
        out.append(Log("mn-discard", {"why": why, **fields}))

    def _on_udp(self, ev: UdpReceived, now: float, out: list[Action]) -> None:
        try:
            msg = decode_message(ev.payload)
        except DecodeError as e:
            self._discard(out, "malformed", error=str(e))
            return
        if not isinstance(msg, RegistrationReply):
            self._discard(out, "not a registration reply", type=type(msg).__name__)
            return
        p = self._pending
        if p is None:
            self._discard(out, "no outstanding request", code=msg.code)
            return
        if msg.home_address != self.config.home_address:
            self._discard(out, "home address mismatch", home_address=msg.home_address)
            return
        if not matches_request(p.request.identification, msg.identification):
            # RFC 5944 §3.6.2.1: the low-order 32 bits must match the request's.
            self._discard(
                out,
                "identification mismatch",
                expected=f"{low_word(p.request.identification):#010x}",
                got=f"{low_word(msg.identification):#010x}",
            )
            return
        reaction = reaction_for(msg.code)
        has_mn_ha = any(e.ext_type == MN_HA for e in msg.extensions)
        authenticated = False
        if reaction.by_foreign_agent and not has_mn_ha:
            # RFC 5944 §3.6.2.1: a foreign agent's denial carries no MN-HA extension.
            pass
        else:
            try:
                verify(msg, MN_HA, self._lookup)
                authenticated = True
            except AuthenticationError as e:
                self._discard(out, "authentication failed", reason=str(e), code=msg.code)
                return
        self.last_reaction = reaction
        out.append(
            Log(
                "mn-reply",
                {
                    "code": msg.code,
                    "lifetime": msg.lifetime,
                    "reaction": reaction.reaction.value,
                    "reason": reaction.reason,
                    "authenticated": authenticated,
                },
            )
        )
        if authenticated:
            self.replay.on_reply(
                p.request.identification, msg.identification, msg.code, self._unix(now)
            )
        self._react(reaction, msg, p, now, out, authenticated)

    def _lookup(self, spi: int) -> SecurityAssociation | None:
        return self.sa if spi == self.sa.spi else None

    def _react(
        self,
        r: CodeReaction,
        msg: RegistrationReply,
        p: _Pending,
        now: float,
        out: list[Action],
        authenticated: bool,
    ) -> None:
        kind = r.reaction
        self._pending = None
        if kind is Reaction.REGISTERED:
            assert authenticated  # FA denials never have code 0/1
            self._accepted(msg, p, now, out)
            return
        if kind is Reaction.BACK_OFF:
            self._back_off(now, out, r.reason)
            return
        if kind is Reaction.GIVE_UP:
            self._give_up(now, out, r.reason)
            return
        if kind is Reaction.OTHER_AGENT:
            a = p.attachment
            if a.agent is None:
                self._give_up(now, out, r.reason)
                return
            # This care-of address is refused: use another agent, or wait for this one to
            # advertise a different care-of address (its advertisement may have been stale).
            self._refused.add((a.interface, a.agent.address, a.care_of_address))
            self._detach(out, r.reason)
            for other in self.discovery.agents():
                if other.interface in self.links and self._usable(other, out):
                    self._attach_agent(other, now, out, "care-of address refused")
                    return
            self._set_state(MnState.DISCOVERING, out, r.reason)
            if a.interface in self.links:
                self.discovery.start_soliciting(a.interface, now)
                self._solicit_due(now, out)
            return
        # Corrective retries.
        self._adjust.corrections += 1
        if self._adjust.corrections > self.config.correction_limit:
            self._give_up(
                now,
                out,
                f"{r.reason}; still denied after {self.config.correction_limit} corrections",
            )
            return
        if kind is Reaction.RESYNC:
            if not authenticated:
                self._give_up(now, out, r.reason)
                return
            # MobileNodeReplay.on_reply learnt the clock offset / nonce (RFC 5944 §5.7).
            self._retry(p, now, out, "identification resynchronised")
        elif kind is Reaction.RETRY_LIFETIME:
            if msg.lifetime == 0 or p.deregister:
                self._give_up(now, out, r.reason)
                return
            self._adjust.max_lifetime = msg.lifetime
            self._retry(p, now, out, f"lifetime lowered to {msg.lifetime}")
        elif kind is Reaction.RETRY_HOME_AGENT:
            ha = msg.home_agent
            if (
                not authenticated
                or ha == self.home_agent
                or ha.is_unspecified
                or ha == self.config.home_network.broadcast_address
            ):
                self._give_up(now, out, r.reason)
                return
            out.append(Log("mn-home-agent", {"home_agent": ha, "was": self.home_agent}))
            self.home_agent = ha  # RFC 5944 §3.6.1.2 dynamic home agent discovery
            self._retry(p, now, out, "home agent discovered")
        elif kind is Reaction.RETRY_IPIP:
            used = _encapsulation_of(p.request.flags)
            if used is Encapsulation.IPIP:
                self._give_up(now, out, r.reason)
                return
            self._adjust.no_encapsulations.add(used)
            self._retry(p, now, out, "fall back to IP-in-IP")
        elif kind is Reaction.RETRY_WITHOUT_T:
            if self.config.reverse_tunnel is ReverseTunnel.REQUIRE or not (
                p.request.flags & RegistrationFlags.T
            ):
                self._give_up(now, out, r.reason)
                return
            self._adjust.reverse_tunnel = False
            self._retry(p, now, out, "without reverse tunnelling")
        elif kind is Reaction.RETRY_WITH_T:
            self._adjust.reverse_tunnel = True
            if p.request.flags & RegistrationFlags.T or not self._reverse_tunnel(p.attachment):
                # RFC 3024 §5.1: T only if the agent advertises it.
                self._give_up(now, out, f"{r.reason}; the agent does not offer reverse tunnelling")
                return
            self._retry(p, now, out, "with reverse tunnelling")
        elif kind is Reaction.RETRY_DIRECT_DELIVERY:
            if self._adjust.direct_delivery or not any(
                e.ext_type == EncapsulatingDeliveryExtension.TYPE for e in p.request.extensions
            ):
                self._give_up(now, out, r.reason)
                return
            self._adjust.direct_delivery = True
            self._retry(p, now, out, "direct delivery style")
        elif kind is Reaction.NEW_CHALLENGE:
            if p.attachment.kind is not AttachmentKind.FOREIGN_AGENT:
                self._give_up(now, out, r.reason)
                return
            self._await_challenge = True
            self._set_state(MnState.DISCOVERING, out, r.reason)
            self.discovery.stop_soliciting()
            self.discovery.start_soliciting(p.attachment.interface, now)
            self._solicit_due(now, out)
        else:  # pragma: no cover - the table has no other reaction
            self._give_up(now, out, r.reason)

    def _retry(self, p: _Pending, now: float, out: list[Action], why: str) -> None:
        if p.deregister:
            req = p.request
            self._send_new(
                now,
                out,
                p.attachment,
                flags=req.flags,
                lifetime=0,
                care_of_address=req.care_of_address,
                deregister=True,
            )
        else:
            self._start_registration(now, out, why)

    def _accepted(self, msg: RegistrationReply, p: _Pending, now: float, out: list[Action]) -> None:
        att = p.attachment
        self.last_registration = RegistrationRecord(
            now, p.request.care_of_address, now - p.last_sent, p.retransmissions, p.deregister
        )
        if p.deregister:
            out.append(Log("mn-deregistered", {"code": msg.code}))
            if self._binding is not None and (
                p.request.care_of_address == self.config.home_address
                or p.request.care_of_address == self._binding.care_of_address
            ):
                self._binding = None
            self._adjust = _Adjust()
            if att.kind is AttachmentKind.HOME:
                self._set_state(MnState.AT_HOME, out, "deregistered")
            elif self._binding is not None:
                self._set_state(MnState.REGISTERED, out, "other binding deregistered")
            else:
                self._set_state(MnState.DISCOVERING, out, "deregistered while away")
            return
        if self.attachment is None or self.attachment.care_of_address != att.care_of_address:
            # (cannot happen: a new attachment replaces the outstanding request) -- register
            # where the node is now rather than believe an acceptance for elsewhere
            out.append(Log("mn-stale-acceptance", {"care_of_address": att.care_of_address}))
            self._start_registration(now, out, "acceptance for a previous care-of address")
            return
        requested = p.request.lifetime
        granted = min(msg.lifetime, requested)  # RFC 5944 §3.6.2.2: never more than asked
        if granted == 0:
            self._back_off(now, out, "accepted with lifetime 0")
            return
        # The lifetime runs from when the request was sent (RFC 5944 §3.6.2.2): with
        # timestamps only the last transmission can be answered; with nonces any of the
        # identical transmissions may have been, so count from the first (conservative).
        start = p.last_sent if self.sa.replay is ReplayMethod.TIMESTAMPS else p.first_sent
        if granted >= INFINITE_LIFETIME:
            expires = renew = None
        else:
            expires = start + granted
            renew = start + granted * self.config.renew_fraction
        flags = p.request.flags
        self._binding = _Binding(
            care_of_address=att.care_of_address,
            attachment=att,
            granted=granted,
            registered_at=now,
            expires=expires,
            renew_at=renew,
            encapsulation=_encapsulation_of(flags),
            reverse_tunnel=bool(flags & RegistrationFlags.T),
        )
        self._adjust.corrections = 0
        self._adjust.backoffs = 0
        self.failure_reason = None
        self._set_state(MnState.REGISTERED, out, "registration accepted")
        out.append(
            Log(
                "mn-registered",
                {
                    "care_of_address": att.care_of_address,
                    "granted": granted,
                    "requested": requested,
                    "code": msg.code,
                },
            )
        )
        # Tell the I/O layer only when what it must set up changes: a renewal with the same
        # agent (whose Agent record is refreshed by every advertisement) must not make it
        # tear down and rebuild the node's routes, which would drop path-MTU state and
        # leave a moment without a default route.
        use = self._use_action(att, flags)
        if self._announced != use:
            self._announced = use
            out.append(use)

    def _use_action(self, att: Attachment, flags: RegistrationFlags) -> Action:
        if att.kind is AttachmentKind.FOREIGN_AGENT:
            agent = att.agent
            assert agent is not None
            return UseForeignAgent(
                att.interface,
                agent.address,
                agent.link_address,
                self.config.home_address,
                home_agent=self.home_agent if flags & RegistrationFlags.B else None,
            )
        return UseColocatedAddress(
            att.interface,
            att.care_of_address,
            self.home_agent,
            self.config.home_address,
            _encapsulation_of(flags),
            bool(flags & RegistrationFlags.T),
        )


def _encapsulation_of(flags: RegistrationFlags) -> Encapsulation:
    if flags & RegistrationFlags.M:
        return Encapsulation.MINIMAL
    if flags & RegistrationFlags.G:
        return Encapsulation.GRE
    return Encapsulation.IPIP


__all__ = [
    "ALL_ROUTERS",
    "MN_TRANSITIONS",
    "Attachment",
    "AttachmentKind",
    "MnInput",
    "MnState",
    "MobileNode",
    "MobileNodeConfig",
    "RegistrationRecord",
    "ReverseTunnel",
]
