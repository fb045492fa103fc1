"""The foreign agent: agent advertisement, registration relay, visitor list (RFC 5944 §2.3,
§3.7, §4.2.2; reverse tunnelling RFC 3024 §3; challenges RFC 4721 §3).

Theory of operation
-------------------
:class:`ForeignAgent` is a sans-IO state machine driven by ``handle(event, now)``,
``handle_timer(now)`` and ``next_deadline()``; every side effect comes out as an action.

**Advertising** (RFC 5944 §2.3). On each visited link (:class:`VisitedLink`) the agent
multicasts an Agent Advertisement every ``advertisement_interval`` seconds, starting at the
first ``handle_timer`` call (``next_deadline()`` is 0.0 until then) and again at once after
a ``LinkUp``; it stops on ``LinkDown``. The ICMP Lifetime is ``advertisement_lifetime``
(default three intervals, RFC 1256 §4.1). The Mobility Agent Advertisement Extension's
sequence number is 0 in the first advertisement and then counts up, wrapping from 0xffff to
256, never back to 0 (RFC 5944 §2.3.2), so mobile nodes can tell a reboot (low number) from
a wrap. Flags advertise only what this agent does: F always, R, H, M, G, T from the
configuration, B while the visitor list is full; never U or X (UDP tunnelling and
revocation are not implemented). A Prefix-Lengths Extension (RFC 5944 §2.1.2) and a
Challenge Extension (RFC 4721 §3.1) are added when configured. An Agent Solicitation is
answered at once (optionally at most once per ``solicitation_interval`` per link): unicast
to its source at the link-layer address it came from, or multicast when the source is
0.0.0.0 (RFC 1256 §6.2.6, RFC 5944 §2.3).

**Relaying requests** (RFC 5944 §3.7.2). A Registration Request heard on a visited link goes
through :data:`FA_REQUEST_PIPELINE`; a check raises
:class:`~mip4.core.registration.RegistrationDenied` with an FA code (64--127) and the agent
answers the mobile node itself:

* ``check_well_formed`` 70 -- no MN-HA (or MN-AAA) extension, a home address that is zero,
  broadcast or multicast, a zero Home Agent field, an Encapsulating Delivery Style
  extension without T (RFC 3024 §3.3);
* ``check_challenge`` 105 / 104 / 106 -- only when challenges are advertised (RFC 4721 §3.2);
* ``check_mn_fa_auth`` 67 -- a present or required MN-FA extension that does not verify;
* ``check_care_of_address`` 77 -- without D, the care-of address must be one this agent
  offers on that link;
* ``check_lifetime`` 69 -- longer than ``max_lifetime``; the reply's Lifetime is the maximum
  (RFC 5944 §3.7.2.3);
* ``check_encapsulation`` 72 -- M or G that this agent cannot decapsulate;
* ``check_reverse_tunnel`` 74 / 75 / 79 (RFC 3024 §3.2, §3.3);
* ``check_resources`` 66 -- visitor list or pending list full.

Capability and resource checks are skipped for a deregistration (lifetime 0): RFC 5944 §3.7
says the agent MUST relay well-formed deregistrations. A request that passes is cut after
the MN-HA (or MN-AAA) extension -- everything up to it is relayed byte for byte, the FA-only
extensions (MN-FA, challenge, delivery style) are removed -- signed with FA-HA when this
agent shares an SA with the home agent, and sent to the Home Agent field (RFC 5944
§3.7.2.2). A pending entry records what §3.7.1 asks for.

**Relaying replies** (RFC 5944 §3.7.3). A Registration Reply must match a pending entry by
home address and the low-order 32 bits of the Identification; otherwise it is silently
discarded. A reply whose fixed part decodes but whose extensions do not is answered to the
mobile node with 71; an FA-HA extension that is required (SA with the home agent) and
missing or wrong gives 68. Otherwise the reply is cut after its MN-HA extension (FA-HA
removed), MN-FA is appended when the mobile node authenticated with one, and it is sent to
the mobile node's home address and UDP port at its link-layer address on its link. An
accepted registration becomes (or refreshes) the visitor entry and installs delivery
(``InstallVisitor``); an accepted deregistration removes it (``RemoveVisitor``); a denial
only drops the pending entry (the home agent keeps its binding too, §3.8.2.3).

**Timers**: pending entries older than ``pending_timeout`` are answered with 78
(registration timeout); visitors whose granted lifetime ran out are removed silently
(RFC 5944 §3.7: a foreign agent MUST NOT send a request or reply because a lifetime
expired). An ICMP Destination Unreachable about a relayed request
(:class:`~mip4.core.events.DestinationUnreachable`) answers the pending mobile node with
80 (network), 81 (host), 82 (port) or 88 (other).

**Interface**::

    fa = ForeignAgent(ForeignAgentConfig(links=(VisitedLink("wlan0", addr),)), sas, offset)
    fa.handle(event, now) -> list[Action]   # UdpReceived, IcmpReceived, LinkUp, LinkDown,
                                            # DestinationUnreachable
    fa.handle_timer(now) -> list[Action]    # advertisements, 78 timeouts, visitor expiry
    fa.next_deadline() -> float | None      # 0.0 before the first advertisement
    fa.visitors / fa.pending / fa.counters / fa.sequences / fa.state_of(home_address)

Actions: ``SendIcmp`` (advertisements), ``SendUdp`` (relayed requests to home agents,
replies to mobile nodes with ``link_dst``), ``InstallVisitor`` / ``RemoveVisitor``, ``Log``.
``sas`` keys: a mobile node's home address for MN-FA, a home agent's address for FA-HA.

**State**: per home address the agent is ``IDLE``, ``PENDING`` (first request relayed),
``REGISTERED`` (visitor) or ``REREGISTERING`` (visitor with a request relayed);
:data:`VISITOR_TRANSITIONS` lists every allowed transition and is enforced on each change.
Inputs that match nothing (a reply without a pending request, a reply with the wrong
identification) are counted discards, never exceptions.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address

from mip4.security.auth import (
    FA_HA,
    MN_FA,
    MN_HA,
    AuthenticationError,
    authorization_index,
    find_auth_extension,
    sign,
    strip_after,
    strip_for_relay,
    verify,
)
from mip4.security.sa import SecurityAssociation, SecurityAssociationStore, lookup_for
from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError, UnknownExtensionError
from mip4.wire.extensions import (
    Extension,
    ForeignHomeAuthExtension,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
)
from mip4.wire.icmp import (
    AgentAdvertisement,
    AgentFlags,
    AgentSolicitation,
    ChallengeExtension,
    MobilityAgentAdvertisementExtension,
    PrefixLengthsExtension,
    RouterAddress,
    decode_icmp,
)
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
    Encapsulation,
    InstallVisitor,
    Log,
    RemoveVisitor,
    SendIcmp,
    SendUdp,
)
from .bindings import (
    InMemoryPendingStore,
    InMemoryVisitorStore,
    PendingListView,
    PendingRegistration,
    PendingStore,
    Visitor,
    VisitorListView,
    VisitorStore,
)
from .counters import Counters
from .engine import error_boundary
from .events import DestinationUnreachable, Event, IcmpReceived, LinkDown, LinkUp, UdpReceived
from .registration import (
    Discard,
    Pipeline,
    RegistrationDenied,
    TransitionTable,
    config_from_mapping,
)
from .timers import earliest, expiry

__all__ = [
    "ALL_SYSTEMS",
    "FA_REQUEST_PIPELINE",
    "SEQUENCE_WRAP_TO",
    "VISITOR_TRANSITIONS",
    "ForeignAgent",
    "ForeignAgentConfig",
    "VisitedLink",
    "VisitorInput",
    "VisitorState",
    "next_sequence",
    "unreachable_code",
]

#: All-systems multicast group, the default advertisement destination (RFC 1256 §4.1).
ALL_SYSTEMS = IPv4Address("224.0.0.1")
_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_ZERO = IPv4Address(0)
#: Encapsulating Delivery Style Extension type (RFC 3024 §3.3).
_DELIVERY_STYLE = 130
#: The sequence number after 0xffff (RFC 5944 §2.3.2).
SEQUENCE_WRAP_TO = 256


def next_sequence(sequence: int) -> int:
    """The advertisement sequence number after ``sequence``: +1, and 0xffff -> 256
    (RFC 5944 §2.3.2: 0--255 are only used right after a reboot)."""
    return SEQUENCE_WRAP_TO if sequence >= 0xFFFF else sequence + 1


def unreachable_code(icmp_code: int) -> ReplyCode:
    """The reply code for an ICMP Destination Unreachable code (RFC 5944 §3.4: 80 home
    network unreachable, 81 home agent host unreachable, 82 home agent port unreachable,
    88 home agent unreachable for any other ICMP error)."""
    if icmp_code in (0, 6, 9, 11):  # net unreachable / unknown / prohibited / for TOS
        return ReplyCode.FA_HOME_NETWORK_UNREACHABLE
    if icmp_code in (1, 7, 10, 12):  # host unreachable / unknown / prohibited / for TOS
        return ReplyCode.FA_HA_HOST_UNREACHABLE
    if icmp_code == 3:
        return ReplyCode.FA_HA_PORT_UNREACHABLE
    return ReplyCode.FA_HA_UNREACHABLE


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitedLink:
    """A link on which this agent offers foreign agent service."""

    #: interface name (events' ``interface``)
    interface: str
    #: this agent's address on the link: the advertisement's router address and source
    address: IPv4Address
    #: prefix length of the link (Prefix-Lengths Extension, RFC 5944 §2.1.2)
    prefix_len: int = 24
    #: care-of addresses offered on this link (RFC 5944 §3.7.1: a foreign agent MUST be
    #: configured with a care-of address); empty means ``(address,)``
    care_of_addresses: tuple[IPv4Address, ...] = ()
    #: where periodic advertisements go: 224.0.0.1 or 255.255.255.255 (RFC 1256 §4.1)
    advertisement_destination: IPv4Address = ALL_SYSTEMS

    @property
    def offered(self) -> tuple[IPv4Address, ...]:
        return self.care_of_addresses or (self.address,)


@dataclass(frozen=True)
class ForeignAgentConfig:
    """Foreign agent configuration (RFC 5944 §2.3, §3.7.1)."""

    #: the visited links (at least one)
    links: tuple[VisitedLink, ...]
    #: seconds between unsolicited advertisements; RFC 5944 §2.3.2 asks agents not to
    #: advertise more than about once a second
    advertisement_interval: float = 1.0
    #: ICMP Lifetime of advertisements, seconds; ``None``: 3 x interval (RFC 1256 §4.1)
    advertisement_lifetime: int | None = None
    #: send periodic advertisements at all (solicitations are always answered)
    advertise: bool = True
    #: at most one solicited advertisement per link per this many seconds (0: no limit)
    solicitation_interval: float = 0.0
    #: R flag: registration required even with a co-located care-of address (§2.1.1)
    registration_required: bool = False
    #: H flag: this node is also a home agent on these links
    home_agent: bool = False
    #: ICMP code 16 instead of 0: the agent does not route common traffic (§2.1)
    routes_common_traffic: bool = True
    #: longest Lifetime accepted (advertised as the Registration Lifetime; 69 beyond it)
    max_lifetime: int = 1800
    #: M flag: decapsulates minimal encapsulation (72 otherwise)
    minimal_encapsulation: bool = True
    #: G flag: decapsulates GRE (72 otherwise)
    gre_encapsulation: bool = True
    #: T flag: reverse tunnelling (RFC 3024; 74 otherwise)
    reverse_tunnel: bool = True
    #: reverse tunnelling mandatory (RFC 3024 §3.2; 75 when T is clear)
    reverse_tunnel_required: bool = False
    #: RFC 3024 §3.3 Encapsulating Delivery Style supported (79 otherwise)
    encapsulating_delivery: bool = True
    #: require a valid MN-FA extension in every request (67 otherwise)
    require_mn_fa_auth: bool = False
    #: RFC 4721 challenge length in bytes (0: no challenges); 16 bytes is customary
    challenge_length: int = 0
    #: how many of the most recent advertised challenges a request may answer
    challenge_window: int = 2
    #: seconds a relayed request may stay unanswered before 78 (RFC 5944 §3.7.1: 7 s)
    pending_timeout: float = 7.0
    #: most pending requests at once (RFC 5944 §3.7.1 suggests a limit; 66 beyond it)
    max_pending: int = 5
    #: most visitors at once (66 beyond it; the B flag is advertised while full)
    max_visitors: int = 1024
    #: UDP source port of relayed requests (replies come back to it)
    relay_port: int = MIP_PORT
    #: IP source of relayed requests: this agent's address towards the home agents
    #: (RFC 5944 §3.7.2.2); ``None`` uses the care-of address of the request's link. The
    #: home agent finds its FA-HA security association by this address.
    relay_source: IPv4Address | None = None

    def __post_init__(self) -> None:
        if not self.links:
            raise ValueError("foreign agent: links must name at least one visited link")
        names = [link.interface for link in self.links]
        if len(set(names)) != len(names):
            raise ValueError(f"foreign agent: links: duplicate interface in {names}")
        if not self.advertisement_interval > 0:
            raise ValueError("foreign agent: advertisement_interval must be > 0")
        if self.advertisement_lifetime is not None and not (
            1 <= self.advertisement_lifetime <= 0xFFFF
        ):
            raise ValueError("foreign agent: advertisement_lifetime not in 1..65535")
        if not 1 <= self.max_lifetime <= INFINITE_LIFETIME:
            raise ValueError(f"foreign agent: max_lifetime {self.max_lifetime} not in 1..65535")
        if not self.pending_timeout > 0:
            raise ValueError("foreign agent: pending_timeout must be > 0")
        if self.reverse_tunnel_required and not self.reverse_tunnel:
            raise ValueError("foreign agent: reverse_tunnel_required needs reverse_tunnel")
        if not 0 <= self.challenge_length <= 255:
            raise ValueError("foreign agent: challenge_length not in 0..255")
        if self.challenge_window < 1:
            raise ValueError("foreign agent: challenge_window must be >= 1")
        if self.max_pending < 1 or self.max_visitors < 1:
            raise ValueError("foreign agent: max_pending and max_visitors must be >= 1")

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, object], source: str = "<config>"
    ) -> ForeignAgentConfig:
        """From a parsed TOML table (``links`` an array of tables); errors name ``source``
        and the key."""
        return config_from_mapping(cls, data, source)

    @property
    def icmp_lifetime(self) -> int:
        if self.advertisement_lifetime is not None:
            return self.advertisement_lifetime
        return min(0xFFFF, max(1, round(3 * self.advertisement_interval)))

    def link(self, interface: str) -> VisitedLink | None:
        for link in self.links:
            if link.interface == interface:
                return link
        return None


# ----------------------------------------------------------------------------------------
# Per-home-address state machine
# ----------------------------------------------------------------------------------------


class VisitorState(Enum):
    IDLE = "idle"  #: neither pending nor registered
    PENDING = "pending"  #: a request relayed, no current registration
    REGISTERED = "registered"  #: a current registration (visitor list entry)
    REREGISTERING = "reregistering"  #: registered, and a new request relayed


class VisitorInput(Enum):
    REQUEST = "request_relayed"
    ACCEPTED = "reply_accepted"
    DEREGISTERED = "deregistration_accepted"
    DENIED = "reply_denied"  #: by the home agent, or by this agent on the reply path
    TIMEOUT = "pending_timeout"
    UNREACHABLE = "icmp_unreachable"
    EXPIRED = "lifetime_expired"


_I, _P, _R, _RR = (
    VisitorState.IDLE,
    VisitorState.PENDING,
    VisitorState.REGISTERED,
    VisitorState.REREGISTERING,
)
_VI = VisitorInput


def _one(s: VisitorState) -> frozenset[VisitorState]:
    return frozenset({s})


#: Every allowed (state, input) pair; anything else is a protocol error.
VISITOR_TRANSITIONS: TransitionTable[VisitorState, VisitorInput] = TransitionTable(
    "visitor",
    {
        (_I, _VI.REQUEST): _one(_P),
        (_P, _VI.REQUEST): _one(_P),  # a newer request replaces the pending one
        (_P, _VI.ACCEPTED): _one(_R),
        (_P, _VI.DEREGISTERED): _one(_I),
        (_P, _VI.DENIED): _one(_I),
        (_P, _VI.TIMEOUT): _one(_I),
        (_P, _VI.UNREACHABLE): _one(_I),
        (_R, _VI.REQUEST): _one(_RR),
        (_R, _VI.EXPIRED): _one(_I),
        (_RR, _VI.REQUEST): _one(_RR),
        (_RR, _VI.ACCEPTED): _one(_R),
        (_RR, _VI.DEREGISTERED): _one(_I),
        (_RR, _VI.DENIED): _one(_R),  # the current registration stands
        (_RR, _VI.TIMEOUT): _one(_R),
        (_RR, _VI.UNREACHABLE): _one(_R),
        (_RR, _VI.EXPIRED): _one(_P),
    },
)


# ----------------------------------------------------------------------------------------
# Request pipeline
# ----------------------------------------------------------------------------------------


@dataclass
class _Request:
    agent: ForeignAgent
    event: UdpReceived
    now: float
    link: VisitedLink
    request: RegistrationRequest
    #: MN-FA association when the request carried a verifiable MN-FA extension
    mn_fa_sa: SecurityAssociation | None = None
    delivery_style: bool = False
    #: the RFC 4721 challenge the request answered, when challenges are in use
    challenge: bytes | None = None

    @property
    def deregistration(self) -> bool:
        return self.request.lifetime == 0


def _bad_unicast(a: IPv4Address) -> bool:
    return a in (_ZERO, _LIMITED_BROADCAST) or a.is_multicast


def check_well_formed(ctx: _Request) -> None:
    """70 (RFC 5944 §3.7.2.3 "poorly formed Request")."""
    req = ctx.request
    code = ReplyCode.FA_POORLY_FORMED_REQUEST
    try:
        authorization_index(req)  # RFC 5944 §3.5.2: MN-HA is required in every request
    except AuthenticationError:
        raise RegistrationDenied(code, "no MN-HA or MN-AAA extension") from None
    if _bad_unicast(req.home_address):
        raise RegistrationDenied(code, f"home address {req.home_address} not unicast")
    if req.home_agent == _ZERO or req.home_agent.is_multicast:
        raise RegistrationDenied(code, f"home agent {req.home_agent} not usable")
    if req.lifetime and req.care_of_address == _ZERO:
        raise RegistrationDenied(code, "no care-of address")
    ctx.delivery_style = any(e.ext_type == _DELIVERY_STYLE for e in req.extensions)
    if ctx.delivery_style and not req.flags & RegistrationFlags.T:
        # RFC 3024 §3.3: the extension is only meaningful with reverse tunnelling.
        raise RegistrationDenied(code, "Encapsulating Delivery Style without the T bit")


def check_challenge(ctx: _Request) -> None:
    """RFC 4721 §3.2: when challenges are advertised, the request must answer a recent one
    (105 missing, 104 unknown, 106 stale or already used)."""
    agent = ctx.agent
    if not agent.config.challenge_length:
        return
    challenge = None
    for e in ctx.request.extensions:
        if isinstance(e, MobileForeignChallengeExtension):
            challenge = e.challenge
    iface = ctx.link.interface
    if challenge is None:
        raise RegistrationDenied(ReplyCode.FA_MISSING_CHALLENGE, "no MN-FA Challenge extension")
    recent = agent._challenges.get(iface, deque())
    if challenge in agent._used_challenges:
        raise RegistrationDenied(ReplyCode.FA_STALE_CHALLENGE, "challenge already used")
    if challenge not in recent:
        if challenge in agent._old_challenges.get(iface, deque()):
            raise RegistrationDenied(ReplyCode.FA_STALE_CHALLENGE, "challenge no longer valid")
        raise RegistrationDenied(ReplyCode.FA_UNKNOWN_CHALLENGE, "challenge not advertised")
    ctx.challenge = challenge  # spent once the request is relayed (see _relay_request)


def check_mn_fa_auth(ctx: _Request) -> None:
    """67 when an MN-FA extension is present or required and does not verify (RFC 5944
    §3.7.2.1)."""
    agent = ctx.agent
    req = ctx.request
    present = any(e.ext_type == MN_FA for e in req.extensions)
    if not present and not agent.config.require_mn_fa_auth:
        return
    lookup = lookup_for(agent.security_associations, req.home_address)
    try:
        result = verify(req, MN_FA, lookup)
    except AuthenticationError as e:
        if e.spi is not None:
            ctx.mn_fa_sa = lookup(e.spi)
        raise RegistrationDenied(ReplyCode.FA_MN_FAILED_AUTH, str(e)) from None
    ctx.mn_fa_sa = result.sa


def check_care_of_address(ctx: _Request) -> None:
    """77: a foreign agent care-of address must be one this agent offers on the link."""
    req = ctx.request
    if ctx.deregistration or req.flags & RegistrationFlags.D:
        return
    if req.care_of_address not in ctx.link.offered:
        dst = ctx.event.dst
        if dst != ctx.link.address and dst not in ctx.link.offered:
            # Sent to a group (224.0.0.11) for another agent's care-of address on this
            # link: that agent answers, not us.
            raise Discard("care_of_address_of_another_agent", str(req.care_of_address))
        raise RegistrationDenied(
            ReplyCode.FA_INVALID_COA, f"{req.care_of_address} is not offered on this link"
        )


def check_lifetime(ctx: _Request) -> None:
    """69 beyond ``max_lifetime``; the reply's Lifetime carries the maximum (RFC 5944
    §3.7.2.3)."""
    limit = ctx.agent.config.max_lifetime
    if ctx.request.lifetime > limit:
        raise RegistrationDenied(
            ReplyCode.FA_LIFETIME_TOO_LONG,
            f"requested {ctx.request.lifetime} s, at most {limit} s",
            lifetime=limit,
        )


def check_encapsulation(ctx: _Request) -> None:
    """72 when M or G asks for an encapsulation this agent cannot decapsulate."""
    if ctx.deregistration:
        return
    cfg = ctx.agent.config
    flags = ctx.request.flags
    if flags & RegistrationFlags.M and not cfg.minimal_encapsulation:
        raise RegistrationDenied(
            ReplyCode.FA_ENCAPSULATION_UNAVAILABLE, "minimal encapsulation not supported"
        )
    if flags & RegistrationFlags.G and not cfg.gre_encapsulation:
        raise RegistrationDenied(ReplyCode.FA_ENCAPSULATION_UNAVAILABLE, "GRE not supported")


def check_reverse_tunnel(ctx: _Request) -> None:
    """74 / 75 / 79 (RFC 3024 §3.2, §3.3)."""
    if ctx.deregistration:
        return
    cfg = ctx.agent.config
    t = bool(ctx.request.flags & RegistrationFlags.T)
    if t and not cfg.reverse_tunnel:
        raise RegistrationDenied(
            ReplyCode.FA_REVERSE_TUNNEL_UNAVAILABLE, "reverse tunnelling not supported"
        )
    if not t and cfg.reverse_tunnel_required:
        raise RegistrationDenied(
            ReplyCode.FA_REVERSE_TUNNEL_MANDATORY, "reverse tunnelling mandatory, T clear"
        )
    if ctx.delivery_style and not cfg.encapsulating_delivery:
        raise RegistrationDenied(
            ReplyCode.FA_DELIVERY_STYLE_UNSUPPORTED, "Encapsulating Delivery Style unsupported"
        )


def check_resources(ctx: _Request) -> None:
    """66 when the visitor list or the pending list is full (RFC 5944 §3.7.1)."""
    if ctx.deregistration:
        return
    agent = ctx.agent
    cfg = agent.config
    hoa = ctx.request.home_address
    if agent._visitors.get(hoa) is None and len(agent._visitors) >= cfg.max_visitors:
        raise RegistrationDenied(ReplyCode.FA_INSUFFICIENT_RESOURCES, "visitor list full")
    if agent._pending.get(hoa) is None and len(agent._pending) >= cfg.max_pending:
        raise RegistrationDenied(ReplyCode.FA_INSUFFICIENT_RESOURCES, "too many pending requests")


#: RFC 5944 §3.7.2.1 / §3.7.2.3 checks, in order.
FA_REQUEST_PIPELINE: Pipeline[_Request] = Pipeline(
    (
        check_well_formed,
        check_challenge,
        check_mn_fa_auth,
        check_care_of_address,
        check_lifetime,
        check_encapsulation,
        check_reverse_tunnel,
        check_resources,
    )
)


@dataclass
class _ReplyPath:
    """Context of a reply-path decision (a reply from the home agent, a timeout, an ICMP
    error): the denial goes to the pending mobile node."""

    pending: PendingRegistration
    #: the home agent's reply, or ``None`` (timeout, ICMP error, undecodable reply)
    reply: RegistrationReply | None = None
    #: why the reply could not be decoded (71)
    malformed: str | None = None


@dataclass
class _LinkState:
    sequence: int = 0
    next_advertisement: float | None = 0.0
    last_solicited: float | None = None
    up: bool = True


# ----------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------


class ForeignAgent:
    """Sans-IO foreign agent. See the module docstring."""

    def __init__(
        self,
        config: ForeignAgentConfig,
        security_associations: SecurityAssociationStore,
        clock_offset: float = 0.0,
        *,
        visitors: VisitorStore | None = None,
        pending: PendingStore | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.config = config
        #: SAs keyed by peer address: a mobile node's home address (MN-FA) or a home
        #: agent's address (FA-HA).
        self.security_associations = security_associations
        #: Unix time = ``now + clock_offset`` (unused by the FA's own checks; kept for the
        #: uniform engine interface and for logs)
        self.clock_offset = clock_offset
        self._visitors: VisitorStore = visitors if visitors is not None else InMemoryVisitorStore()
        self._pending: PendingStore = pending if pending is not None else InMemoryPendingStore()
        self._counters = Counters()
        self._random_bytes = random_bytes
        self._links: dict[str, _LinkState] = {
            link.interface: _LinkState(next_advertisement=0.0 if config.advertise else None)
            for link in config.links
        }
        n = config.challenge_window
        self._challenges: dict[str, deque[bytes]] = {
            link.interface: deque(maxlen=n) for link in config.links
        }
        self._old_challenges: dict[str, deque[bytes]] = {
            link.interface: deque(maxlen=64) for link in config.links
        }
        self._used_challenges: deque[bytes] = deque(maxlen=4096)
        self.pipeline = FA_REQUEST_PIPELINE

    # -- read-only views ------------------------------------------------------------------

    @property
    def visitors(self) -> VisitorListView:
        """The visitor list, read-only."""
        return VisitorListView(self._visitors)

    @property
    def pending(self) -> PendingListView:
        """Pending registrations, read-only."""
        return PendingListView(self._pending)

    @property
    def counters(self) -> Counters:
        return self._counters

    @property
    def sequences(self) -> Mapping[str, int]:
        """Per link, the sequence number the next advertisement will carry."""
        return {k: v.sequence for k, v in self._links.items()}

    def state_of(self, home_address: IPv4Address) -> VisitorState:
        v = self._visitors.get(home_address) is not None
        p = self._pending.get(home_address) is not None
        if v:
            return _RR if p else _R
        return _P if p else _I

    # -- inputs ---------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest of: next advertisement per link, pending timeouts, visitor expiry."""
        return earliest(
            [
                *(s.next_advertisement for s in self._links.values() if s.up),
                self._pending.next_expiry(),
                self._visitors.next_expiry(),
            ]
        )

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one input; never raises (one error boundary, see the module docstring)."""
        ctx: _Request | _ReplyPath | None = None

        def body(out: list[Action]) -> None:
            nonlocal ctx
            if isinstance(event, UdpReceived):
                ctx = self._classify(event, now)
                if isinstance(ctx, _Request):
                    self.pipeline.run(ctx)
                    out.extend(self._relay_request(ctx))
                    return
                if ctx.reply is None:
                    # RFC 5944 §3.7.3.1: a reply for a pending request that is not well
                    # formed is answered to the mobile node with 71.
                    raise RegistrationDenied(
                        ReplyCode.FA_POORLY_FORMED_REPLY, ctx.malformed or "poorly formed"
                    )
                out.extend(self._relay_reply(event, now, ctx.reply, ctx))
            elif isinstance(event, IcmpReceived):
                out.extend(self._on_icmp(event, now))
            elif isinstance(event, DestinationUnreachable):
                out.extend(self._on_unreachable(event, now))
            elif isinstance(event, LinkUp):
                out.extend(self._on_link(event.interface, True, now))
            elif isinstance(event, LinkDown):
                out.extend(self._on_link(event.interface, False, now))
            else:
                raise Discard("unexpected_event", type(event).__name__)

        return error_boundary(
            "fa",
            self._counters,
            body,
            who=_who(event),
            on_denied=lambda denial: self._deny(ctx, denial, now),
        )

    def handle_timer(self, now: float) -> list[Action]:
        """Advertise, time out pending requests (78), expire visitors."""
        return error_boundary("fa", self._counters, lambda out: self._on_timer(now, out))

    def _on_timer(self, now: float, actions: list[Action]) -> None:
        for link in self.config.links:
            st = self._links[link.interface]
            if st.up and st.next_advertisement is not None and st.next_advertisement <= now:
                actions.append(self._advertise(link, link.advertisement_destination, None))
                st.next_advertisement = now + self.config.advertisement_interval
        for p in self._pending.pop_expired(now):
            # RFC 5944 §3.7.1: a pending request may be deleted after its timeout; the
            # mobile node is told with code 78.
            actions.extend(
                self._reply_path_denial(
                    _ReplyPath(p),
                    RegistrationDenied(ReplyCode.FA_REGISTRATION_TIMEOUT, "no reply"),
                    VisitorInput.TIMEOUT,
                )
            )
        for v in self._visitors.pop_expired(now):
            hoa = v.home_address
            before = _RR if self._pending.get(hoa) is not None else _R
            # RFC 5944 §3.7: no message is sent because a lifetime expired.
            if not v.colocated:
                actions.append(RemoveVisitor(hoa, v.interface))
            VISITOR_TRANSITIONS.confirm(before, VisitorInput.EXPIRED, self.state_of(hoa))
            self._counters.event("visitor_expired")
            actions.append(
                Log(
                    "fa.visitor_expired",
                    {"home_address": hoa, "care_of_address": v.care_of_address},
                )
            )

    # -- advertisements -------------------------------------------------------------------

    def advertisement(self, link: VisitedLink) -> AgentAdvertisement:
        """The advertisement this agent would send now on ``link`` (does not advance the
        sequence number)."""
        cfg = self.config
        flags = AgentFlags.F
        if cfg.registration_required:
            flags |= AgentFlags.R
        if cfg.home_agent:
            flags |= AgentFlags.H
        if cfg.minimal_encapsulation:
            flags |= AgentFlags.M
        if cfg.gre_encapsulation:
            flags |= AgentFlags.G
        if cfg.reverse_tunnel:
            flags |= AgentFlags.T
        if len(self._visitors) >= cfg.max_visitors:
            flags |= AgentFlags.B  # RFC 5944 §2.1.1: busy, no additional mobile nodes
        st = self._links[link.interface]
        exts: list[Extension] = [
            MobilityAgentAdvertisementExtension(st.sequence, cfg.max_lifetime, flags, link.offered),
            PrefixLengthsExtension((link.prefix_len,)),
        ]
        return AgentAdvertisement(
            code=0 if cfg.routes_common_traffic else 16,
            lifetime=cfg.icmp_lifetime,
            router_addresses=(RouterAddress(link.address, 0),),
            extensions=tuple(exts),
        )

    def _advertise(self, link: VisitedLink, dst: IPv4Address, link_dst: bytes | None) -> SendIcmp:
        adv = self.advertisement(link)
        cfg = self.config
        if cfg.challenge_length:
            # RFC 4721 §3.1: a fresh challenge in every advertisement.
            challenge = self._random_bytes(cfg.challenge_length)
            recent = self._challenges[link.interface]
            if len(recent) == recent.maxlen:
                self._old_challenges[link.interface].append(recent[0])
            recent.append(challenge)
            adv = AgentAdvertisement(
                adv.code,
                adv.lifetime,
                adv.router_addresses,
                (*adv.extensions, ChallengeExtension(challenge)),
            )
        st = self._links[link.interface]
        # RFC 5944 §2.3.2: 0 first, then +1, wrapping to 256.
        st.sequence = next_sequence(st.sequence)
        self._counters.event("advertisements_sent")
        return SendIcmp(
            dst=dst,
            payload=adv.encode(),
            interface=link.interface,
            src=link.address,
            ttl=1,  # RFC 1256 §4.1 / RFC 5944 §2.3: advertisements stay on the link
            link_dst=link_dst,
        )

    def _on_icmp(self, event: IcmpReceived, now: float) -> list[Action]:
        link = self.config.link(event.interface)
        if link is None:
            raise Discard("icmp_on_unknown_interface", event.interface)
        try:
            msg = decode_icmp(event.payload)
        except DecodeError as e:
            raise Discard("icmp_decode_error", str(e)) from None
        if not isinstance(msg, AgentSolicitation):
            raise Discard("foreign_advertisement", str(event.src))
        st = self._links[link.interface]
        if not st.up:
            raise Discard("link_down", link.interface)
        limit = self.config.solicitation_interval
        if limit and st.last_solicited is not None and now - st.last_solicited < limit:
            raise Discard("solicitation_rate_limited", str(event.src))
        st.last_solicited = now
        self._counters.event("solicitations_answered")
        if event.src == _ZERO or event.link_src is None:
            # No address to answer, or no link-layer address to reach it without ARP.
            return [self._advertise(link, link.advertisement_destination, None)]
        # Unicast to the solicitor, at its link-layer address: a mobile node away from home
        # has no on-link address to ARP for (RFC 5944 §4.2.1 / §2.3).
        return [self._advertise(link, event.src, event.link_src)]

    def _on_link(self, interface: str, up: bool, now: float) -> list[Action]:
        st = self._links.get(interface)
        if st is None:
            return []
        st.up = up
        if up and self.config.advertise:
            st.next_advertisement = now  # advertise at once on a (re)started link
        return [Log("fa.link", {"interface": interface, "up": up})]

    # -- requests -------------------------------------------------------------------------

    def _classify(self, event: UdpReceived, now: float) -> _Request | _ReplyPath:
        try:
            msg = decode_message(event.payload)
        except UnknownExtensionError as e:
            # RFC 5944 §1.9: unknown non-skippable extension -> silently discard.
            raise Discard("unknown_extension", str(e)) from None
        except DecodeError as e:
            pending = self._pending_for_undecodable_reply(event.payload)
            if pending is not None:
                return _ReplyPath(pending, None, str(e))
            raise Discard("decode_error", str(e)) from None
        if isinstance(msg, RegistrationRequest):
            link = self.config.link(event.interface)
            if link is None:
                raise Discard("request_on_unknown_interface", event.interface)
            if not self._links[link.interface].up:
                raise Discard("link_down", link.interface)
            return _Request(self, event, now, link, msg)
        if isinstance(msg, RegistrationReply):
            pending = self._pending.get(msg.home_address)
            if pending is None:
                raise Discard("unmatched_reply", f"no pending request for {msg.home_address}")
            if pending.low_identification != msg.identification & 0xFFFFFFFF:
                # RFC 5944 §3.7.3.1: the low-order 32 bits must match the pending request.
                raise Discard("unmatched_reply", "identification does not match")
            return _ReplyPath(pending, msg)
        raise Discard("unexpected_message", type(msg).__name__)

    def _pending_for_undecodable_reply(self, data: bytes) -> PendingRegistration | None:
        """The pending request named by the fixed part of a reply whose extensions do not
        decode (such a reply is answered with 71), if any."""
        if len(data) < RegistrationReply.FIXED_LEN or data[0] != RegistrationReply.TYPE:
            return None
        fixed = RegistrationReply.decode(data[: RegistrationReply.FIXED_LEN])
        pending = self._pending.get(fixed.home_address)
        if pending is None or pending.low_identification != fixed.identification & 0xFFFFFFFF:
            return None
        return pending

    def _relay_request(self, ctx: _Request) -> list[Action]:
        req, ev, link = ctx.request, ctx.event, ctx.link
        hoa = req.home_address
        before = self.state_of(hoa)
        VISITOR_TRANSITIONS.check(before, VisitorInput.REQUEST)
        # RFC 5944 §3.7.2.2: relay unchanged through the MN-HA (or MN-AAA) extension;
        # FA-only extensions after it (MN-FA, challenge, delivery style) are removed.
        relayed = strip_for_relay(req)
        fa_sa = self._fa_ha_sa(req.home_agent)
        if fa_sa is not None:
            relayed = sign(relayed, ForeignHomeAuthExtension, fa_sa)  # RFC 5944 §3.7.2.2
        flags = req.flags
        pending = PendingRegistration(
            home_address=hoa,
            interface=link.interface,
            link_address=ev.link_src,
            ip_source=ev.src,
            ip_destination=ev.dst,
            udp_source_port=ev.sport,
            home_agent=req.home_agent,
            care_of_address=req.care_of_address,
            identification=req.identification,
            requested_lifetime=req.lifetime,
            flags=flags,
            relayed_at=ctx.now,
            expires=ctx.now + self.config.pending_timeout,
            reverse_tunnel=bool(flags & RegistrationFlags.T),
            encapsulation=_encapsulation(flags),
            encapsulating_delivery=ctx.delivery_style,
            mn_fa_spi=ctx.mn_fa_sa.spi if ctx.mn_fa_sa is not None else None,
        )
        self._pending.put(pending)
        if ctx.challenge is not None:
            self._used_challenges.append(ctx.challenge)  # RFC 4721 §3.2: no replays
        VISITOR_TRANSITIONS.confirm(before, VisitorInput.REQUEST, self.state_of(hoa))
        self._counters.event("relayed_requests")
        src = self.config.relay_source
        if src is None:
            src = req.care_of_address if req.care_of_address in link.offered else link.offered[0]
        payload = relayed.raw or relayed.encode()
        return [
            SendUdp(
                dst=req.home_agent,
                payload=payload,
                dport=MIP_PORT,
                sport=self.config.relay_port,
                src=src,
            ),
            Log(
                "fa.request_relayed",
                {
                    "home_address": hoa,
                    "home_agent": req.home_agent,
                    "care_of_address": req.care_of_address,
                    "lifetime": req.lifetime,
                    "identification": req.identification,
                },
            ),
        ]

    # -- replies --------------------------------------------------------------------------

    def _relay_reply(
        self, event: UdpReceived, now: float, reply: RegistrationReply, ctx: _ReplyPath
    ) -> list[Action]:
        pending = ctx.pending
        hoa = pending.home_address
        fa_sa = self._fa_ha_sa(event.src) or self._fa_ha_sa(pending.home_agent)
        if fa_sa is not None:
            # RFC 5944 §3.7.3.1: with an FA-HA SA, the reply MUST carry a valid FA-HA.
            peer = event.src if self._fa_ha_sa(event.src) is not None else pending.home_agent
            try:
                verify(reply, FA_HA, lookup_for(self.security_associations, peer))
            except AuthenticationError as e:
                raise RegistrationDenied(ReplyCode.FA_HA_FAILED_AUTH, str(e)) from None
        # RFC 5944 §3.7.3.2: remove FA-HA and whatever follows MN-HA before relaying.
        try:
            index = find_auth_extension(reply, MN_HA)
            out = strip_after(reply, index)
        except AuthenticationError:
            out = reply
            for i, ext in enumerate(reply.extensions):
                if ext.ext_type == FA_HA:
                    out = strip_after(reply, i - 1)
                    break
        code = reply.code
        accepted = code in (ReplyCode.ACCEPTED, ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS)
        before = self.state_of(hoa)
        if accepted and pending.requested_lifetime and reply.lifetime:
            inp = VisitorInput.ACCEPTED
        elif accepted:
            inp = VisitorInput.DEREGISTERED
        else:
            inp = VisitorInput.DENIED
        # What can fail comes before any change: the transition check, the outgoing reply.
        VISITOR_TRANSITIONS.check(before, inp)
        sent = self._send_to_mobile_node(pending, out)
        self._pending.remove(hoa)
        actions: list[Action] = []
        if inp is VisitorInput.ACCEPTED:
            # The lifetime runs from when the request was relayed (as the MN counts it).
            lifetime = min(reply.lifetime, pending.requested_lifetime)
            visitor = Visitor(
                home_address=hoa,
                interface=pending.interface,
                link_address=pending.link_address,
                ip_source=pending.ip_source,
                ip_destination=pending.ip_destination,
                udp_source_port=pending.udp_source_port,
                home_agent=reply.home_agent,
                care_of_address=pending.care_of_address,
                identification=pending.identification,
                requested_lifetime=pending.requested_lifetime,
                lifetime=lifetime,
                expires=expiry(pending.relayed_at, lifetime),
                flags=pending.flags,
                reverse_tunnel=pending.reverse_tunnel,
                encapsulation=pending.encapsulation,
                encapsulating_delivery=pending.encapsulating_delivery,
            )
            old = self._visitors.put(visitor)
            if visitor.colocated:
                # D: the mobile node decapsulates at its co-located care-of address and
                # registered through us only because we asked (R bit, RFC 5944 §3.1): we
                # keep the visitor entry but deliver nothing for it.
                if old is not None and not old.colocated:
                    actions.append(RemoveVisitor(hoa, old.interface))
            else:
                actions.append(
                    InstallVisitor(
                        home_address=hoa,
                        interface=visitor.interface,
                        link_address=visitor.link_address,
                        home_agent=visitor.home_agent,
                        care_of_address=visitor.care_of_address,
                        reverse_tunnel=visitor.reverse_tunnel,
                        encapsulation=visitor.encapsulation,
                        expires=visitor.expires,
                        encapsulating_delivery=visitor.encapsulating_delivery,
                    )
                )
            self._counters.accept(ReplyCode(code))
        elif inp is VisitorInput.DEREGISTERED:
            old = self._visitors.remove(hoa)
            if old is not None and not old.colocated:
                actions.append(RemoveVisitor(hoa, old.interface))
            self._counters.accept(ReplyCode(code))
        else:
            self._counters.deny(_reply_code(code))
        self._counters.event("relayed_replies")
        actions.append(sent)
        VISITOR_TRANSITIONS.confirm(before, inp, self.state_of(hoa))
        actions.append(
            Log(
                "fa.reply_relayed",
                {
                    "home_address": hoa,
                    "home_agent": reply.home_agent,
                    "care_of_address": pending.care_of_address,
                    "code": code,
                    "lifetime": reply.lifetime,
                    "decision": inp.value,
                },
            )
        )
        return actions

    def _on_unreachable(self, event: DestinationUnreachable, now: float) -> list[Action]:
        """An ICMP error about a relayed request: 80/81/82/88 to the mobile node."""
        targets: list[PendingRegistration] = []
        data = event.original_payload
        if len(data) >= 24 and data[0] == RegistrationRequest.TYPE:
            # The quoted request names the mobile node and its Identification.
            hoa = IPv4Address(data[4:8])
            ident = int.from_bytes(data[16:24], "big")
            p = self._pending.get(hoa)
            if p is not None and p.identification == ident:
                targets.append(p)
        elif event.original_dport in (None, MIP_PORT):
            # RFC 792 quotes only 8 bytes of the datagram: every request pending at that
            # destination is affected.
            targets = [p for p in self._pending if p.home_agent == event.original_dst]
        if not targets:
            raise Discard("unmatched_icmp_error", f"about {event.original_dst}")
        code = unreachable_code(event.code)
        actions: list[Action] = []
        for p in targets:
            self._pending.remove(p.home_address)
            actions.extend(
                self._reply_path_denial(
                    _ReplyPath(p),
                    RegistrationDenied(
                        code, f"ICMP unreachable code {event.code} from {event.src}"
                    ),
                    VisitorInput.UNREACHABLE,
                )
            )
        return actions

    # -- denials --------------------------------------------------------------------------

    def _deny(
        self, ctx: _Request | _ReplyPath | None, denial: RegistrationDenied, now: float
    ) -> list[Action]:
        if isinstance(ctx, _ReplyPath):
            self._pending.remove(ctx.pending.home_address)
            return self._reply_path_denial(ctx, denial, VisitorInput.DENIED)
        if isinstance(ctx, _Request):
            return self._deny_request(ctx, denial)
        self._counters.discard("denied_without_context")  # pragma: no cover - defensive
        return [Log("fa.discard", {"reason": "denied_without_context", "detail": str(denial)})]

    def _deny_request(self, ctx: _Request, denial: RegistrationDenied) -> list[Action]:
        """RFC 5944 §3.7.2.3: the agent answers the mobile node itself; the request is not
        relayed and no state changes."""
        req, ev = ctx.request, ctx.event
        self._counters.deny(denial.code)
        reply = RegistrationReply(
            code=int(denial.code),
            lifetime=denial.lifetime if denial.lifetime is not None else 0,
            home_address=req.home_address,
            home_agent=req.home_agent,
            identification=req.identification,  # RFC 5944 §3.7.2.3: copied from the request
        )
        if ctx.mn_fa_sa is not None:
            reply = sign(reply, MobileForeignAuthExtension, ctx.mn_fa_sa)
        dst = req.home_address if _bad_unicast(ev.src) else ev.src
        return [
            SendUdp(
                dst=dst,
                payload=reply.raw or reply.encode(),
                dport=ev.sport,
                sport=MIP_PORT,
                src=ctx.link.address,
                interface=ctx.link.interface,
                link_dst=ev.link_src,
            ),
            Log(
                "fa.registration_denied",
                {
                    "home_address": req.home_address,
                    "home_agent": req.home_agent,
                    "care_of_address": req.care_of_address,
                    "code": int(denial.code),
                    "lifetime": reply.lifetime,
                    "reason": denial.reason,
                },
            ),
        ]

    def _reply_path_denial(
        self,
        ctx: _ReplyPath,
        denial: RegistrationDenied,
        inp: VisitorInput,
    ) -> list[Action]:
        """Deny a pending request from the reply side (68, 71, 78, 80--88): the pending
        entry is already gone; an existing registration stands."""
        p = ctx.pending
        hoa = p.home_address
        before = _RR if self._visitors.get(hoa) is not None else _P
        VISITOR_TRANSITIONS.confirm(before, inp, self.state_of(hoa))
        self._counters.deny(denial.code)
        reply = RegistrationReply(
            code=int(denial.code),
            lifetime=0,
            home_address=hoa,
            home_agent=p.home_agent,
            identification=p.identification,
        )
        return [
            self._send_to_mobile_node(p, reply),
            Log(
                "fa.registration_denied",
                {
                    "home_address": hoa,
                    "home_agent": p.home_agent,
                    "care_of_address": p.care_of_address,
                    "code": int(denial.code),
                    "lifetime": 0,
                    "reason": denial.reason,
                },
            ),
        ]

    def _send_to_mobile_node(
        self, pending: PendingRegistration, reply: RegistrationReply
    ) -> SendUdp:
        """RFC 5944 §3.7.3.2: to the mobile node's home address and UDP port, at its
        link-layer address (no ARP), on its link; MN-FA appended when it used one."""
        if pending.mn_fa_spi is not None:
            sa = self.security_associations.get(pending.home_address, pending.mn_fa_spi)
            if sa is not None:
                reply = sign(reply, MobileForeignAuthExtension, sa)
        link = self.config.link(pending.interface)
        src = pending.ip_destination
        if link is not None and (_bad_unicast(src) or src.is_multicast):
            src = link.address
        dst = pending.ip_source if not _bad_unicast(pending.ip_source) else pending.home_address
        return SendUdp(
            dst=dst,
            payload=reply.raw or reply.encode(),
            dport=pending.udp_source_port,
            sport=MIP_PORT,
            src=src,
            interface=pending.interface,
            link_dst=pending.link_address,
        )

    def _fa_ha_sa(self, home_agent: IPv4Address) -> SecurityAssociation | None:
        sas = self.security_associations.for_peer(home_agent)
        return sas[0] if sas else None


def _encapsulation(flags: RegistrationFlags) -> Encapsulation:
    if flags & RegistrationFlags.G:
        return Encapsulation.GRE
    if flags & RegistrationFlags.M:
        return Encapsulation.MINIMAL
    return Encapsulation.IPIP


def _reply_code(code: int) -> ReplyCode:
    try:
        return ReplyCode(code)
    except ValueError:
        return ReplyCode.HA_UNSPECIFIED if code >= 128 else ReplyCode.FA_UNSPECIFIED


def _who(event: object) -> dict[str, object]:
    if isinstance(event, UdpReceived | IcmpReceived):
        return {"source": event.src, "interface": event.interface}
    return {"event": type(event).__name__}
