"""The home agent: registration processing and the mobility binding table (RFC 5944 §3.8,
§4; reverse tunnelling RFC 3024 §4).

Theory of operation
-------------------
:class:`HomeAgent` is a sans-IO state machine. The I/O shell feeds it
:class:`~mip4.core.events.UdpReceived` datagrams from UDP port 434 with ``handle(event,
now)``, calls ``handle_timer(now)`` when ``next_deadline()`` is reached, and carries out the
returned actions (send the reply, install or remove tunnels, proxy ARP). The engine never
reads a clock; ``clock_offset`` turns ``now`` into Unix wall time for NTP-timestamp
Identification checks only (``now + clock_offset``, STYLE.md practice 1).

A Registration Request goes through :data:`HA_PIPELINE`, one check per step of RFC 5944
§3.8.2.1, each raising :class:`~mip4.core.registration.RegistrationDenied` with the code it
owns (the order is the order of the list below):

1. ``check_well_formed`` -- 134: fields that cannot describe a binding (a care-of address
   that is zero, broadcast, multicast or the home address itself with a non-zero lifetime;
   a home address that is zero, multicast or broadcast). Bytes that do not decode are
   silently discarded and counted (``decode_error``); so is a message with an unknown
   non-skippable extension (``unknown_extension``, RFC 5944 §1.9).
2. ``check_mn_ha_auth`` -- 131: exactly one valid Mobile-Home Authentication Extension.
3. ``check_fa_ha_auth`` -- 132: when this agent shares an SA with the sender (a foreign
   agent), a valid Foreign-Home Authentication Extension.
4. ``check_identification`` -- 133 with the resynchronisation Identification
   (:mod:`mip4.security.replay`: timestamps or nonces per the MN's SA).
5. ``grant_lifetime`` -- never denies: the reply carries ``min(requested, max_lifetime)``.
6. ``check_home_agent_address`` -- 136 when the request was sent to the home network's
   subnet-directed broadcast address (whatever its Home Agent field says), or when the Home
   Agent field is not this agent's unicast address (a subnet-directed broadcast for home
   agent discovery, or another address); the reply's Home Agent field is this agent's
   unicast address (RFC 5944 §3.8.2.1, §3.8.3.1). Before that, :func:`select_home_agent`
   (RFC 4433): a node the operator moved elsewhere gets 143 with a Redirected HA
   extension; a request for Home Agent 0.0.0.0 or 255.255.255.255 with a Requested HA
   extension is accepted by the agent of ``home_agents`` picked for it (the reply names
   it) and redirected (143) by the others.
7. ``check_reverse_tunnel`` -- 137 when T is set but unsupported, 138 when configuration
   mandates T and it is clear (RFC 3024 §4.2).
8. ``check_encapsulation`` -- 139 when M or G is requested and not offered; otherwise the
   binding's encapsulation: GRE for G, minimal for M, IP in IP by default.
9. ``check_simultaneous_bindings`` -- 135 when S is set and the node already has the
   configured maximum; code 1 (accepted) when S is set but simultaneous bindings are
   disabled, the request then replacing all bindings (RFC 5944 §3.8.2.2, §3.4).
10. ``check_administrative`` -- 129 for a home address this agent does not serve, 130 when
    the binding table is full.

Checks 7--10 (capabilities and resources) do not apply to a deregistration. Once the
pipeline passes, the registration is applied: a non-zero lifetime adds or replaces the
binding for ``(home address, care-of address)`` (and without S removes the others); a zero
lifetime removes that care-of address's binding, or every binding when the care-of address
is the home address (RFC 5944 §3.8.2.2). The mobility binding table
(:class:`~mip4.core.bindings.BindingStore`) holds one state per home address, ``AWAY``
(bindings exist) or ``HOME`` (none), governed by :data:`BINDING_TRANSITIONS`: entering
``AWAY`` turns proxy ARP on and broadcasts a gratuitous ARP for the home address on the home
link (RFC 5944 §4.6); leaving it turns proxy ARP off and, when the node's own link-layer
address is known (learnt from an authenticated request it sent on the home link),
broadcasts a gratuitous ARP restoring it.

The reply (RFC 5944 §3.8.3) goes to the request's IP source and UDP source port, from the
request's destination address (this agent's address when the request was sent to a
broadcast), carries the Identification the replay check chose, and is authenticated with
MN-HA whenever the agent has the mobile node's SA, then with FA-HA when it has one for the
foreign agent (RFC 5944 §3.8.3.1: FA-HA last); a denial decided before the FA-HA check is
still signed for a foreign agent that shares an SA with this agent, which would otherwise
replace the code with 68. A reboot is a new engine: the table is empty.

Interface (what the I/O shell and the test network rely on)::

    ha = HomeAgent(HomeAgentConfig(address=..., home_network=...), sas, clock_offset)
    ha.handle(event, now) -> list[Action]   # UdpReceived (port 434), IcmpReceived
    ha.handle_timer(now) -> list[Action]    # binding expiry, advertisements, revocations
    ha.next_deadline() -> float | None
    ha.revoke(node, now) / ha.redirect(node, to, now) -> list[Action]   # operator calls
    ha.bindings / ha.counters / ha.replay_state / ha.state_of(home_address)

Actions: ``SendUdp`` (replies), ``InstallBinding`` / ``RemoveBinding``, ``ProxyArp``,
``GratuitousArp``, ``SendIcmp`` (advertisements), ``Log`` (every decision, discard and
expiry). ``sas`` maps ``(peer, SPI)`` to SAs: the peer of an MN-HA SA is the mobile node's
home address, the peer of an FA-HA SA the foreign agent's address as seen in the request's
IP source.

Registration revocation (RFC 3543, :mod:`mip4.core.revocation`): with ``revocation`` on,
a request relayed by a foreign agent with a Revocation Support extension (covered by a
valid FA-HA) is answered with ours, and the binding records the agent's timestamp. The
operator's ``revoke(node, now)`` (home address or NAI) ends every binding of the node --
``RemoveBinding``, proxy ARP off -- and sends each negotiating foreign agent a Registration
Revocation (A bit; I when both support informing the node), retransmitted until
acknowledged; ``redirect(node, to, now)`` (RFC 4433) records the move and revokes. A
foreign agent's revocation (authenticated, not a replay) removes the binding it names and
is acknowledged. Every revocation is counted (``bindings_revoked``, ``revocations_*``) and
logged (``ha.binding_revoked``, ``ha.revocation_*``).

With ``advertisement_interval`` set, the home agent also sends Agent Advertisements with
the H flag on its home link and answers Agent Solicitations there (RFC 5944 §2.3), so that
mobile nodes can tell they are home (§2.4.2); sequence numbers follow §2.3.2 (0 first,
0xffff wraps to 256).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address

from mip4.aaa.messages import AaaAnswer
from mip4.security.auth import (
    FA_HA,
    MN_HA,
    AuthenticationError,
    append_extensions,
    find_auth_extension,
    sign,
    verify,
)
from mip4.security.replay import ReplayState, check_request
from mip4.security.sa import (
    ReplayMethod,
    SecurityAssociation,
    SecurityAssociationStore,
    lookup_for,
)
from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError, UnknownExtensionError
from mip4.wire.ext_mobility import (
    DynamicHAExtension,
    DynamicHASubtype,
    RevocationSupportExtension,
    RevocationSupportFlags,
)
from mip4.wire.extensions import (
    Extension,
    ForeignHomeAuthExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.icmp import (
    AgentAdvertisement,
)
from mip4.wire.messages import (
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    decode_message,
)
from mip4.wire.msg_revocation import (
    RegistrationRevocation,
    RevocationAck,
    RevocationAckFlags,
    RevocationFlags,
)

from .actions import (
    MIP_PORT,
    Action,
    Encapsulation,
    GratuitousArp,
    InstallBinding,
    Log,
    ProxyArp,
    RemoveBinding,
    SendUdp,
)
from .advertiser import AdvertisedLink, Advertiser
from .bindings import (
    BindingStore,
    BindingTableView,
    HomeAgentStateStore,
    InMemoryBindingStore,
    MobilityBinding,
    WriteThroughDict,
)
from .counters import Counters
from .engine import error_boundary, make_rng
from .events import Event, IcmpReceived, UdpReceived
from .ha_aaa import HaAaa, IssuedKey
from .ha_config import HomeAgentConfig, HomeAgentPick, bad_unicast
from .registration import (
    Discard,
    Pipeline,
    RegistrationDenied,
    TransitionTable,
)
from .revocation import Revocations, decode_revocation, support_extension
from .timers import earliest, expiry

__all__ = [
    "BINDING_TRANSITIONS",
    "HA_PIPELINE",
    "BindingInput",
    "BindingState",
    "HomeAgent",
    "HomeAgentConfig",
]

_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_ZERO = IPv4Address(0)


# ----------------------------------------------------------------------------------------
# Binding state machine (per home address)
# ----------------------------------------------------------------------------------------


class BindingState(Enum):
    HOME = "home"  #: no mobility binding: the node is at home or unknown
    AWAY = "away"  #: at least one binding: proxy ARP on (RFC 5944 §4.6)


class BindingInput(Enum):
    REGISTER = "register"  #: accepted registration, non-zero lifetime
    DEREGISTER_ONE = "deregister_one"  #: lifetime 0, care-of address != home address
    DEREGISTER_ALL = "deregister_all"  #: lifetime 0, care-of address == home address
    EXPIRE = "expire"  #: a binding's lifetime ran out
    REVOKE = "revoke"  #: revoked: by the operator, or by the foreign agent (RFC 3543)


_H, _A = BindingState.HOME, BindingState.AWAY
#: Allowed transitions of a home address's binding state (enforced on every change).
BINDING_TRANSITIONS: TransitionTable[BindingState, BindingInput] = TransitionTable(
    "mobility binding",
    {
        (_H, BindingInput.REGISTER): frozenset({_A}),
        (_A, BindingInput.REGISTER): frozenset({_A}),
        # RFC 5944 §3.8.2.2: deregistering without a binding is accepted (code 0).
        (_H, BindingInput.DEREGISTER_ONE): frozenset({_H}),
        (_H, BindingInput.DEREGISTER_ALL): frozenset({_H}),
        (_A, BindingInput.DEREGISTER_ONE): frozenset({_A, _H}),
        (_A, BindingInput.DEREGISTER_ALL): frozenset({_H}),
        (_A, BindingInput.EXPIRE): frozenset({_A, _H}),
        # RFC 3543: a revocation removes one binding (by the FA) or all (by the operator).
        (_A, BindingInput.REVOKE): frozenset({_A, _H}),
        # (_H, EXPIRE) is missing on purpose: nothing can expire without a binding.
    },
)


# ----------------------------------------------------------------------------------------
# The request pipeline
# ----------------------------------------------------------------------------------------


@dataclass
class _Request:
    """Per-request context the pipeline checks read and annotate."""

    agent: HomeAgent
    event: UdpReceived
    now: float
    request: RegistrationRequest
    #: the mobile node's NAI (MN-NAI extension, RFC 2794 §2), when it sent one
    nai: str | None = None
    #: the home address the binding is for: the request's, or the one assigned from the
    #: pool when the request asked for 0.0.0.0 (RFC 2794 §2)
    home_address: IPv4Address = _ZERO
    #: MN-HA association (known once its SPI resolved, even if the authenticator failed)
    mn_sa: SecurityAssociation | None = None
    #: FA-HA association, when this agent has one for the sender
    fa_sa: SecurityAssociation | None = None
    #: Identification the reply carries (set by the replay check)
    reply_identification: int | None = None
    lifetime: int = 0
    code: ReplyCode = ReplyCode.ACCEPTED
    encapsulation: Encapsulation = Encapsulation.IPIP
    simultaneous: bool = False
    #: extensions the reply carries before its authenticators (RFC 4433 Redirected HA)
    reply_extensions: tuple[Extension, ...] = ()
    #: RFC 3543: the foreign agent's Revocation Support extension, once FA-HA verified it
    #: and this agent negotiates revocation (the reply then carries ours)
    revocation: RevocationSupportExtension | None = None
    #: the reply's Home Agent field when it is not the request's (RFC 4433: the home agent
    #: that accepts a request for 0.0.0.0 or 255.255.255.255 names itself)
    reply_home_agent: IPv4Address | None = None
    #: RFC 3957: the MN-HA key the home AAA server issued for this request
    issued_key: IssuedKey | None = None
    #: RFC 4433 with AAA: the home agent the home AAA server named for this request
    aaa_home_agent: IPv4Address | None = None

    @property
    def deregistration(self) -> bool:
        return self.request.lifetime == 0

    @property
    def identity(self) -> IPv4Address | str:
        """What the mobile node's SA and replay state are keyed by: its NAI when it sent one
        and an MN-HA SA is configured for it, else its home address (RFC 2794 §2)."""
        if self.nai is not None and self.agent.security_associations.for_peer(self.nai):
            return self.nai
        return self.request.home_address


def check_well_formed(ctx: _Request) -> None:
    """134 for fields that cannot describe a binding (RFC 5944 §3.8.2.1: "poorly formed").
    A home address of 0.0.0.0 is well formed with an MN-NAI extension (RFC 2794 §2: the
    home agent assigns one); an NAI that is not UTF-8 is not (RFC 4282)."""
    req = ctx.request
    for ext in req.extensions:
        if isinstance(ext, MobileNodeNAIExtension):
            try:
                ctx.nai = ext.nai.decode("utf-8")
            except UnicodeDecodeError:
                raise RegistrationDenied(
                    ReplyCode.HA_POORLY_FORMED_REQUEST, "MN-NAI is not UTF-8"
                ) from None
            if not ctx.nai:
                raise RegistrationDenied(ReplyCode.HA_POORLY_FORMED_REQUEST, "empty MN-NAI")
            break
    if req.home_address == _ZERO and ctx.nai is not None:
        pass  # RFC 2794 §2: assigned by assign_home_address
    elif bad_unicast(req.home_address):
        raise RegistrationDenied(
            ReplyCode.HA_POORLY_FORMED_REQUEST, f"home address {req.home_address} not unicast"
        )
    if req.lifetime:
        if bad_unicast(req.care_of_address):
            raise RegistrationDenied(
                ReplyCode.HA_POORLY_FORMED_REQUEST,
                f"care-of address {req.care_of_address} not unicast",
            )
        if req.care_of_address == req.home_address:
            raise RegistrationDenied(
                ReplyCode.HA_POORLY_FORMED_REQUEST,
                "care-of address equals the home address with a non-zero lifetime",
            )


def check_mn_ha_auth(ctx: _Request) -> None:
    """131 unless exactly one valid MN-HA extension is present (RFC 5944 §3.8.2.1: the home
    agent MUST check the Mobile-Home Authentication Extension; §3.5.2: it is required in
    every request)."""
    agent = ctx.agent
    issued = ctx.issued_key
    if issued is not None and not any(e.ext_type == MN_HA for e in ctx.request.extensions):
        # RFC 3957: the node asked for its key; the home AAA server verified its MN-AAA and
        # issued one. The reply carries the nonce and is signed with the new key.
        ctx.mn_sa = issued.association
        ctx.reply_extensions += (issued.reply_extension(),)
        return
    lookup = lookup_for(agent.security_associations, ctx.identity)
    try:
        result = verify(ctx.request, MN_HA, lookup)
    except AuthenticationError as e:
        if e.spi is not None:
            ctx.mn_sa = lookup(e.spi)
        raise RegistrationDenied(ReplyCode.HA_MN_FAILED_AUTH, str(e)) from None
    ctx.mn_sa = result.sa


def _via_foreign_agent(ctx: _Request) -> bool:
    """Whether the request was relayed by a foreign agent (not sent by the mobile node from
    its home address or its co-located care-of address)."""
    src, req = ctx.event.src, ctx.request
    if src == req.home_address:
        return False
    return not (req.flags & RegistrationFlags.D and src == req.care_of_address)


def check_fa_ha_auth(ctx: _Request) -> None:
    """132 when this agent shares an SA with the foreign agent and the FA-HA extension is
    missing or invalid (RFC 5944 §3.8.2.1)."""
    agent = ctx.agent
    src = ctx.event.src
    if not _via_foreign_agent(ctx):
        return  # sent by the mobile node itself (at home, or co-located): no foreign agent
    sas = agent.security_associations.for_peer(src)
    if not sas:
        return
    lookup = lookup_for(agent.security_associations, src)
    try:
        result = verify(ctx.request, FA_HA, lookup)
    except AuthenticationError as e:
        ctx.fa_sa = lookup(e.spi) if e.spi is not None else None
        if ctx.fa_sa is None:
            ctx.fa_sa = sas[0]
        raise RegistrationDenied(ReplyCode.HA_FA_FAILED_AUTH, str(e)) from None
    ctx.fa_sa = result.sa


def check_identification(ctx: _Request) -> None:
    """133 when the Identification is not fresh (RFC 5944 §3.8.2.1, §5.7). Only reached
    once MN-HA verified, so the replay state may be updated."""
    sa = ctx.mn_sa
    assert sa is not None  # check_mn_ha_auth passed
    agent = ctx.agent
    key = ctx.identity
    state = agent._replay.get(key, ReplayState())
    check = check_request(
        state,
        ctx.request.identification,
        sa.replay,
        now_unix=ctx.now + agent.clock_offset,
        tolerance=sa.replay_tolerance,
        new_nonce=agent._rng.getrandbits(32) if sa.replay is ReplayMethod.NONCES else None,
    )
    agent._replay[key] = check.state
    ctx.reply_identification = check.reply_identification
    if not check.accepted:
        raise RegistrationDenied(
            ReplyCode.HA_IDENTIFICATION_MISMATCH,
            check.reason,
            identification=check.reply_identification,
        )


def grant_lifetime(ctx: _Request) -> None:
    """The granted lifetime: at most the request's and at most ``max_lifetime``
    (RFC 5944 §3.8.3.2: the reply's Lifetime MUST NOT exceed the request's)."""
    ctx.lifetime = min(ctx.request.lifetime, ctx.agent.config.max_lifetime)


def check_home_agent_address(ctx: _Request) -> None:
    """136 when the request was sent to the home network's subnet-directed broadcast address,
    or when the Home Agent field is not this agent's unicast address; the reply carries that
    address (RFC 5944 §3.8.2.1, §3.8.3.1; home agent discovery §3.6.1.2)."""
    cfg = ctx.agent.config
    me = cfg.address
    ha = ctx.request.home_agent
    net = cfg.home_network
    if net.prefixlen < 31 and ctx.event.dst == net.broadcast_address:
        # RFC 5944 §3.8.2.1: a request sent to the subnet-directed broadcast address (as
        # opposed to unicast to the home agent) MUST be rejected with 136, whatever its Home
        # Agent field says; §3.8.3.1: the reply's Home Agent field is our unicast address.
        raise RegistrationDenied(
            ReplyCode.HA_UNKNOWN_HA_ADDRESS,
            f"sent to the directed broadcast {ctx.event.dst} (home agent field {ha})",
            home_agent=me,
        )
    if select_home_agent(ctx):
        return  # RFC 4433: this agent is the one picked for a dynamic request
    if ha != me:
        kind = "broadcast" if ha in (net.broadcast_address, _LIMITED_BROADCAST) else "unknown"
        raise RegistrationDenied(
            ReplyCode.HA_UNKNOWN_HA_ADDRESS,
            f"{kind} home agent address {ha}",
            home_agent=me,
        )


def requested_home_agent(req: RegistrationRequest) -> IPv4Address | None:
    """The Requested HA extension's address (RFC 4433 §3.1, 139 subtype 1), if any."""
    for ext in req.extensions:
        if isinstance(ext, DynamicHAExtension) and ext.subtype == DynamicHASubtype.REQUESTED_HA:
            return ext.home_agent
    return None


def _stable_index(identity: IPv4Address | str, n: int) -> int:
    """The same pick for the same node on every home agent and after restarts."""
    digest = hashlib.sha256(str(identity).encode()).digest()
    return int.from_bytes(digest[:4], "big") % n


def _redirect(ctx: _Request, to: IPv4Address, why: str) -> RegistrationDenied:
    """143 with a Redirected HA extension (RFC 4433 §3.1 subtype 2), authenticated with the
    reply's MN-HA (it precedes it)."""
    ctx.reply_extensions = (DynamicHAExtension(DynamicHASubtype.REDIRECTED_HA, to),)
    return RegistrationDenied(ReplyCode.HA_REDIRECTED, why, home_agent=ctx.agent.config.address)


def select_home_agent(ctx: _Request) -> bool:
    """RFC 4433 (part of step 6): whether this agent accepts as the home agent picked.

    * A node the operator moved to another home agent (:meth:`HomeAgent.redirect`) is
      redirected there (143 with a Redirected HA extension) whatever its Home Agent field.
    * A request with Home Agent 0.0.0.0 or 255.255.255.255 for which this agent's own
      Access-Accept named this agent (3GPP2-Home-Agent-IP-Address) is accepted here.
    * A request with Home Agent 0.0.0.0 or 255.255.255.255 and a Requested HA extension,
      when ``home_agents`` is configured: the requested agent when it is listed (and
      ``home_agent_pick`` is ``requested``), else the one the node's identity picks
      (:func:`_stable_index`), the same on every agent. This
      agent accepts when it is the one (the reply's Home Agent field is then its own
      address); otherwise 143 names the one picked.

    Deregistrations are never redirected."""
    agent = ctx.agent
    cfg = agent.config
    me = cfg.address
    req = ctx.request
    if ctx.deregistration:
        return False
    moved = agent.redirect_of(ctx.nai, req.home_address)
    if moved is not None and moved != me:
        raise _redirect(ctx, moved, f"moved to home agent {moved} by the operator")
    if req.home_agent in (_ZERO, _LIMITED_BROADCAST) and ctx.aaa_home_agent == me:
        # RFC 4433 with AAA: the home AAA server picked this agent (the foreign agent
        # relayed the request here for it); the reply names it
        ctx.reply_home_agent = me
        return True
    if req.home_agent not in (_ZERO, _LIMITED_BROADCAST) or not cfg.home_agents:
        return False
    requested = requested_home_agent(req)
    if requested is None:
        return False  # RFC 5944 home agent discovery: 136 names this agent
    if moved == me:
        pick = me
    elif requested in cfg.home_agents and cfg.home_agent_pick is HomeAgentPick.REQUESTED:
        pick = requested
    else:
        pick = cfg.home_agents[_stable_index(ctx.identity, len(cfg.home_agents))]
    if pick != me:
        raise _redirect(ctx, pick, f"dynamic assignment picks home agent {pick}")
    ctx.reply_home_agent = me
    return True


def check_reverse_tunnel(ctx: _Request) -> None:
    """137 / 138 (RFC 3024 §4.2)."""
    if ctx.deregistration:
        return
    cfg = ctx.agent.config
    t = bool(ctx.request.flags & RegistrationFlags.T)
    if t and not cfg.reverse_tunnel:
        raise RegistrationDenied(
            ReplyCode.HA_REVERSE_TUNNEL_UNAVAILABLE, "reverse tunnelling not offered"
        )
    if not t and cfg.reverse_tunnel_required:
        raise RegistrationDenied(
            ReplyCode.HA_REVERSE_TUNNEL_MANDATORY, "reverse tunnelling mandatory, T clear"
        )


def check_encapsulation(ctx: _Request) -> None:
    """139 when M or G asks for an encapsulation this agent does not offer; else choose it
    (IP in IP is the default every agent MUST support, RFC 5944 §4.1, §3.8.2.2)."""
    if ctx.deregistration:
        return
    cfg = ctx.agent.config
    flags = ctx.request.flags
    if flags & RegistrationFlags.G:
        if not cfg.gre_encapsulation:
            raise RegistrationDenied(ReplyCode.HA_ENCAPSULATION_UNAVAILABLE, "GRE not offered")
        ctx.encapsulation = Encapsulation.GRE
    if flags & RegistrationFlags.M:
        if not cfg.minimal_encapsulation:
            raise RegistrationDenied(
                ReplyCode.HA_ENCAPSULATION_UNAVAILABLE, "minimal encapsulation not offered"
            )
        if ctx.encapsulation is Encapsulation.IPIP:
            ctx.encapsulation = Encapsulation.MINIMAL


def check_simultaneous_bindings(ctx: _Request) -> None:
    """S bit: 135 past the per-node maximum; code 1 when not supported (RFC 5944 §3.4)."""
    if ctx.deregistration or not ctx.request.flags & RegistrationFlags.S:
        return
    agent = ctx.agent
    cfg = agent.config
    if not cfg.simultaneous_bindings:
        ctx.code = ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS
        return
    current = agent._bindings.bindings_of(ctx.home_address)
    others = [b for b in current if b.care_of_address != ctx.request.care_of_address]
    if len(others) >= cfg.max_simultaneous_bindings:
        raise RegistrationDenied(
            ReplyCode.HA_TOO_MANY_BINDINGS,
            f"{len(others)} bindings already (maximum {cfg.max_simultaneous_bindings})",
        )
    ctx.simultaneous = True


def assign_home_address(ctx: _Request) -> None:
    """RFC 2794 §2: a node known by its NAI that asks for 0.0.0.0 gets the address its NAI
    already holds, else a free one of ``address_pool`` (130 when none is left); an address
    of the pool held by another NAI is refused (129). The address stays with the NAI until
    its last binding ends (deregistration or expiry)."""
    agent = ctx.agent
    req = ctx.request
    nai = ctx.nai
    held = agent._assigned.get(nai) if nai is not None else None
    if req.home_address != _ZERO:
        owner = agent._assigned_to.get(req.home_address)
        if held is not None and held != req.home_address:
            raise RegistrationDenied(
                ReplyCode.HA_ADMIN_PROHIBITED, f"{nai} holds home address {held}"
            )
        if owner is not None and owner != nai:
            raise RegistrationDenied(
                ReplyCode.HA_ADMIN_PROHIBITED,
                f"home address {req.home_address} is assigned to another node",
            )
        if (
            nai is not None
            and held is None
            and not ctx.deregistration
            and req.home_address in agent.config.address_pool
        ):
            agent._pending_assignment = (nai, req.home_address)
        return
    if held is not None:
        ctx.home_address = held
        return
    if ctx.deregistration:
        return  # nothing held, nothing to release: accepted as a no-op (RFC 5944 §3.8.2.2)
    # issue 10: the address the home AAA server gave the NAI (Framed-IP-Address)
    given = agent._aaa.address_for(nai) if nai is not None else None
    if nai is not None and given is not None:
        if agent._assigned_to.get(given, nai) != nai:
            raise RegistrationDenied(
                ReplyCode.HA_ADMIN_PROHIBITED, f"AAA gave {nai} {given}, held by another node"
            )
        ctx.home_address = given
        agent._pending_assignment = (nai, given)
        return
    free = sorted(agent.config.address_pool - agent._assigned_to.keys())
    if not free:
        raise RegistrationDenied(
            ReplyCode.HA_INSUFFICIENT_RESOURCES, "no home address left in the pool"
        )
    ctx.home_address = free[0]
    assert nai is not None  # check_well_formed: 0.0.0.0 only with an NAI
    agent._pending_assignment = (nai, free[0])


def check_administrative(ctx: _Request) -> None:
    """129 for a home address this agent does not serve; 130 when the table is full."""
    agent = ctx.agent
    hoa = ctx.home_address
    if hoa == _ZERO and ctx.deregistration:
        return  # an NAI deregistering with nothing assigned
    if not agent.config.serves(hoa):
        raise RegistrationDenied(
            ReplyCode.HA_ADMIN_PROHIBITED, f"home address {hoa} not served by this agent"
        )
    if ctx.deregistration:
        return
    current = agent._bindings.bindings_of(hoa)
    replaced = sum(
        1
        for b in current
        if not ctx.simultaneous or b.care_of_address == ctx.request.care_of_address
    )
    if len(agent._bindings) - replaced + 1 > agent.config.max_bindings:
        raise RegistrationDenied(
            ReplyCode.HA_INSUFFICIENT_RESOURCES,
            f"binding table full ({agent.config.max_bindings})",
        )


#: RFC 5944 §3.8.2.1 order; see the module docstring.
HA_PIPELINE: Pipeline[_Request] = Pipeline(
    (
        check_well_formed,
        check_mn_ha_auth,
        check_fa_ha_auth,
        check_identification,
        grant_lifetime,
        check_home_agent_address,
        check_reverse_tunnel,
        check_encapsulation,
        assign_home_address,
        check_simultaneous_bindings,
        check_administrative,
    )
)


# ----------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------


class HomeAgent:
    """Sans-IO home agent. See the module docstring."""

    def __init__(
        self,
        config: HomeAgentConfig,
        security_associations: SecurityAssociationStore,
        clock_offset: float = 0.0,
        *,
        bindings: BindingStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        #: SAs keyed by peer address: a mobile node's home address (MN-HA) or a foreign
        #: agent's address (FA-HA).
        self.security_associations = security_associations
        #: Unix wall time = ``now + clock_offset`` (NTP timestamp checks only).
        self.clock_offset = clock_offset
        self._bindings: BindingStore = bindings if bindings is not None else InMemoryBindingStore()
        self._view = BindingTableView(self._bindings)
        self._replay: dict[IPv4Address | str, ReplayState] = {}
        #: RFC 2794 §2 assignments: NAI -> home address and back
        self._assigned: dict[str, IPv4Address] = {}
        self._assigned_to: dict[IPv4Address, str] = {}
        #: an assignment the request being processed makes once it is accepted
        self._pending_assignment: tuple[str, IPv4Address] | None = None
        self._rng = make_rng(rng)
        #: link-layer addresses of mobile nodes heard on the home link (from their own
        #: requests there), to re-announce them when a binding expires (RFC 5944 §4.6)
        self._home_link_addresses: dict[IPv4Address, bytes] = {}
        self._counters = Counters()
        #: RFC 3543 revocations sent and received
        self._revocations = Revocations(
            "ha", config.revocation_settings(), security_associations, clock_offset, self._counters
        )
        #: RFC 4433: nodes the operator moved to another home agent (by NAI or home address)
        self._redirects: dict[IPv4Address | str, IPv4Address] = {}
        self.pipeline = HA_PIPELINE
        #: issue 10: requests held for the home AAA server, what it gave (mip4.core.ha_aaa)
        self._aaa = HaAaa(self._counters, config.address)
        self._advertiser = Advertiser(
            (AdvertisedLink(config.interface, config.address, config.home_network.prefixlen),),
            config.advertiser_settings(),
            self._counters,
            self._rng,
        )

    # -- read-only views ------------------------------------------------------------------

    @property
    def bindings(self) -> BindingTableView:
        """The mobility binding table, read-only."""
        return self._view

    @property
    def counters(self) -> Counters:
        return self._counters

    @property
    def replay_state(self) -> Mapping[IPv4Address | str, ReplayState]:
        return dict(self._replay)

    @property
    def assignments(self) -> Mapping[str, IPv4Address]:
        """Home addresses assigned to NAIs (RFC 2794 §2), read-only copy."""
        return dict(self._assigned)

    def _release(self, hoa: IPv4Address) -> None:
        """The binding of ``hoa`` ended: an assigned address returns to the pool."""
        nai = self._assigned_to.pop(hoa, None)
        if nai is not None:
            del self._assigned[nai]
            self._counters.event("address_released")
            self._aaa.released(nai, self.security_associations)  # issue 10

    def state_of(self, home_address: IPv4Address) -> BindingState:
        return BindingState.AWAY if self._bindings.bindings_of(home_address) else _H

    def __iter__(self) -> Iterator[MobilityBinding]:
        return iter(self._bindings)

    # -- inputs ---------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The next binding expiry, advertisement or revocation retransmission (``None``:
        nothing to wait for)."""
        return earliest(
            [
                self._bindings.next_expiry(),
                self._advertiser.next_deadline(),
                self._revocations.next_deadline(),
            ]
        )

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one input. Never raises: the error boundary turns a denial into a reply
        and anything else into a counted discard."""
        ctx: _Request | None = None

        def body(out: list[Action]) -> None:
            nonlocal ctx
            if isinstance(event, IcmpReceived):
                out.extend(self._on_icmp(event, now))
            elif isinstance(event, UdpReceived | AaaAnswer):
                if isinstance(event, AaaAnswer):  # issue 10: the held request, decided
                    held, nai, denial = self._aaa.answered(event, self.security_associations)
                    ctx = self._begin(held, now)
                    ctx.nai = nai
                    ctx.issued_key = self._aaa.last_issued  # RFC 3957
                    ctx.aaa_home_agent = self._aaa.last_home_agent  # RFC 4433 with AAA
                    if denial is not None:
                        raise denial
                else:
                    revocation = decode_revocation(event.payload)
                    if revocation is not None:  # RFC 3543 types 7 and 15
                        out.extend(self._on_revocation_message(revocation, event, now))
                        return
                    ctx = self._begin(event, now)
                    store = self.security_associations
                    aaa = self._aaa.hold(event, ctx.request, store) if self.config.aaa else None
                    if aaa is not None:  # issue 10: ask the home AAA server first
                        out.append(aaa)
                        out.append(
                            Log("ha.aaa_request", {"request_id": aaa.request_id, "nai": aaa.nai})
                        )
                        return
                self._pending_assignment = None
                try:
                    self.pipeline.run(ctx)
                    out.extend(self._accept(ctx))
                finally:
                    self._pending_assignment = None
            # links and ICMP errors do not concern the home agent

        def on_denied(denial: RegistrationDenied) -> list[Action]:
            if ctx is None:  # pragma: no cover - denials come from the pipeline only
                self._counters.discard("denied_without_request")
                return []
            return self._deny(ctx, denial)

        return error_boundary("ha", self._counters, body, who=_who(event), on_denied=on_denied)

    def handle_timer(self, now: float) -> list[Action]:
        """Expire bindings whose lifetime ran out (RFC 5944 §3.8.1 remaining Lifetime)."""
        return error_boundary("ha", self._counters, lambda out: self._on_timer(now, out))

    #: the most binding deadlines one ``handle_timer`` call looks at: a mass expiry is
    #: spread over calls (``next_deadline`` stays at or before ``now`` while any is left),
    #: so no call blocks the loop for long whatever the size of the table
    EXPIRY_BATCH = 128

    def _on_timer(self, now: float, actions: list[Action]) -> None:
        actions.extend(self._advertiser.on_timer(now))
        actions.extend(self._revocations.on_timer(now))  # RFC 3543 retransmissions
        expired = self._bindings.pop_expired(now, self.EXPIRY_BATCH)
        for b in expired:
            hoa = b.home_address
            actions.append(RemoveBinding(hoa, b.care_of_address))
            self._counters.event("binding_expired")
            actions.append(
                Log(
                    "ha.binding_expired",
                    {
                        "home_address": hoa,
                        "care_of_address": b.care_of_address,
                        "lifetime": b.lifetime,
                    },
                )
            )
        # Several bindings of one node may expire together: one transition per node.
        for hoa in dict.fromkeys(b.home_address for b in expired):
            after = self.state_of(hoa)
            if after is _H:
                self._release(hoa)
                cfg = self.config
                actions.append(ProxyArp(cfg.interface, hoa, False))
                mac = self._home_link_addresses.get(hoa)
                if mac is not None:
                    # RFC 5944 §4.6: undo our proxy entries in neighbours' caches.
                    actions.append(GratuitousArp(cfg.interface, hoa, mac, cfg.gratuitous_arp_count))
            BINDING_TRANSITIONS.confirm(_A, BindingInput.EXPIRE, after)

    # -- restart (issue 15: a persistent binding store) ---------------------------------

    def restore(self, now: float) -> list[Action]:
        """Take over the state a persistent store kept from a predecessor; call it once,
        before the first input. Returns what re-installs it: per mobile node still away,
        ``ProxyArp`` and ``GratuitousArp`` (RFC 5944 §4.6, as on its first registration),
        then an ``InstallBinding`` per binding; and a ``Log`` (``ha.restored``) with the
        counts.

        Bindings that expired while the agent was down are removed from the store (and
        their NAI's address released) without actions: nothing of them is installed.
        When the store also keeps the replay state and the NAI assignments
        (:class:`~mip4.core.bindings.HomeAgentStateStore`), they are loaded and every later
        change to them is written through to it, so a replayed request stays refused
        across the restart (RFC 5944 §5.7)."""
        store = self._bindings
        if isinstance(store, HomeAgentStateStore):
            self._replay = WriteThroughDict(
                {**store.replay_states(), **self._replay}, store.put_replay, store.remove_replay
            )
            assigned = {**store.assignments(), **self._assigned}
            self._assigned = WriteThroughDict(
                assigned, store.put_assignment, store.remove_assignment
            )
            self._assigned_to = {hoa: nai for nai, hoa in assigned.items()}
        expired = store.pop_expired(now)
        for hoa in dict.fromkeys(b.home_address for b in expired):
            if self.state_of(hoa) is _H:
                self._release(hoa)
        # An assignment whose binding is gone (expired, or never written) returns too.
        for hoa in [h for h in self._assigned_to if self.state_of(h) is _H]:
            self._release(hoa)
        actions: list[Action] = []
        cfg = self.config
        nodes: dict[IPv4Address, list[MobilityBinding]] = {}
        for b in store:
            nodes.setdefault(b.home_address, []).append(b)
        for hoa, bindings in nodes.items():
            actions.append(ProxyArp(cfg.interface, hoa, True))
            actions.append(GratuitousArp(cfg.interface, hoa, None, cfg.gratuitous_arp_count))
            for b in bindings:
                broadcast = bool(b.flags & RegistrationFlags.B)
                actions.append(
                    InstallBinding(
                        hoa,
                        b.care_of_address,
                        b.encapsulation,
                        reverse_tunnel=b.reverse_tunnel,
                        expires=b.expires,
                        broadcast=broadcast,
                        home_interface=cfg.interface if broadcast else None,
                        colocated=bool(b.flags & RegistrationFlags.D),
                    )
                )
        restored = sum(len(b) for b in nodes.values())
        if restored:
            self._counters.event("binding_restored", restored)
        if expired:
            self._counters.event("binding_expired_while_down", len(expired))
        actions.append(
            Log(
                "ha.restored",
                {
                    "bindings": restored,
                    "mobile_nodes": len(nodes),
                    "expired": len(expired),
                    "replay_states": len(self._replay),
                    "assignments": len(self._assigned),
                },
            )
        )
        return actions

    # -- revocation (RFC 3543) and redirection (RFC 4433) ---------------------------------

    @property
    def revocations(self) -> Revocations:
        """Revocations sent and not yet acknowledged (``outstanding``), read by status."""
        return self._revocations

    @property
    def redirects(self) -> Mapping[IPv4Address | str, IPv4Address]:
        """Nodes moved to another home agent by :meth:`redirect` (NAI or home address)."""
        return dict(self._redirects)

    def redirect_of(self, nai: str | None, home_address: IPv4Address) -> IPv4Address | None:
        """The home agent ``redirect`` moved this node to, if any."""
        if nai is not None and nai in self._redirects:
            return self._redirects[nai]
        return self._redirects.get(home_address)

    def home_address_of(self, node: IPv4Address | str) -> IPv4Address | None:
        """The home address bound for ``node`` (a home address or an NAI), if any."""
        if isinstance(node, IPv4Address):
            return node if self._bindings.bindings_of(node) else None
        held = self._assigned.get(node)
        if held is not None:
            return held
        for b in self._bindings:
            if b.nai == node:
                return b.home_address
        return None

    def revoke(
        self, node: IPv4Address | str, now: float, *, reason: str = "operator"
    ) -> list[Action]:
        """Operator call: end every binding of ``node`` (home address or NAI) now. Each one
        registered through a foreign agent that negotiated revocation gets a Registration
        Revocation with the A bit, and the I bit when both agents support informing the
        mobile node (RFC 3543); the revocation is retransmitted until acknowledged."""
        return error_boundary(
            "ha", self._counters, lambda out: self._revoke(node, now, reason, out)
        )

    def redirect(self, node: IPv4Address | str, to: IPv4Address, now: float) -> list[Action]:
        """Operator call (RFC 4433 with RFC 3543): move ``node`` to home agent ``to``. Its
        bindings here are revoked (the foreign agent informs it), and its next requests here
        are answered 143 with a Redirected HA extension naming ``to``, so it registers
        there. ``to`` equal to this agent's address cancels an earlier move."""

        def body(out: list[Action]) -> None:
            if to == self.config.address:
                self._redirects.pop(node, None)
                out.append(Log("ha.redirect_cleared", {"node": str(node)}))
                return
            if bad_unicast(to):
                raise Discard("bad_redirect", f"home agent {to} not unicast")
            self._redirects[node] = to
            self._counters.event("redirects")
            out.append(Log("ha.redirect", {"node": str(node), "to": to}))
            self._revoke(node, now, f"redirected to {to}", out)

        return error_boundary("ha", self._counters, body)

    def _revocation_offered(self, ctx: _Request) -> RevocationSupportExtension | None:
        """RFC 3543 §3.2: the foreign agent's Revocation Support extension when this agent
        negotiates revocation and FA-HA verified the request (it covers the extension)."""
        if not self.config.revocation or ctx.fa_sa is None:
            return None
        for ext in ctx.request.extensions:
            if isinstance(ext, RevocationSupportExtension):
                return ext
        return None

    def _inform(self, theirs: RevocationSupportExtension | None) -> bool:
        """Both agents support the 'I' bit."""
        return (
            theirs is not None
            and self.config.revocation_inform
            and bool(theirs.flags & RevocationSupportFlags.I)
        )

    def _revoke(self, node: IPv4Address | str, now: float, reason: str, out: list[Action]) -> None:
        hoa = self.home_address_of(node)
        if hoa is None:
            self._counters.event("revoke_unknown")
            out.append(Log("ha.revoke_unknown", {"node": str(node), "reason": reason}))
            return
        cfg = self.config
        removed = self._bindings.remove(hoa)
        for b in removed:
            out.append(RemoveBinding(hoa, b.care_of_address))
            if b.revocation_timestamp is not None and b.source is not None:
                flags = RevocationFlags.A
                if b.revocation_inform:
                    flags |= RevocationFlags.I  # RFC 3543: the FA informs the mobile node
                out.extend(
                    self._revocations.start(
                        peer=b.source,
                        home_address=hoa,
                        flags=flags,
                        home_domain_address=cfg.address,
                        foreign_domain_address=b.care_of_address,
                        now=now,
                        reason=reason,
                        src=cfg.address,
                    )
                )
        self._binding_gone(hoa, out)
        BINDING_TRANSITIONS.confirm(_A, BindingInput.REVOKE, self.state_of(hoa))
        self._counters.event("bindings_revoked", len(removed))
        out.append(
            Log(
                "ha.binding_revoked",
                {
                    "home_address": hoa,
                    "care_of_addresses": [str(b.care_of_address) for b in removed],
                    "by": "operator",
                    "reason": reason,
                },
            )
        )

    def _binding_gone(self, hoa: IPv4Address, out: list[Action]) -> None:
        """After bindings were removed other than by a request: without any left, the
        address is released and proxy ARP undone (RFC 5944 §4.6)."""
        if self.state_of(hoa) is not _H:
            return
        self._release(hoa)
        cfg = self.config
        out.append(ProxyArp(cfg.interface, hoa, False))
        mac = self._home_link_addresses.get(hoa)
        if mac is not None:
            out.append(GratuitousArp(cfg.interface, hoa, mac, cfg.gratuitous_arp_count))

    def _on_revocation_message(
        self, msg: RegistrationRevocation | RevocationAck, event: UdpReceived, now: float
    ) -> list[Action]:
        """A foreign agent's revocation of a binding, or its acknowledgement of ours
        (RFC 3543); authenticated with FA-HA, replays ignored and counted."""
        src = event.src
        self._revocations.verify(msg, src)
        if isinstance(msg, RevocationAck):
            done = self._revocations.acknowledged(msg, src)
            return [
                Log(
                    "ha.revocation_acknowledged",
                    {
                        "peer": src,
                        "home_address": msg.home_address,
                        "informed": bool(msg.flags & RevocationAckFlags.I),
                        "retransmissions": done.retransmissions,
                    },
                )
            ]
        if msg.flags & RevocationFlags.A:
            raise Discard("unexpected_revocation", f"A bit set, from {src}")
        hoa = msg.home_address
        matching = [
            b
            for b in self._bindings.bindings_of(hoa)
            if b.source == src and b.revocation_timestamp is not None
        ]
        floor = max((b.revocation_timestamp or 0 for b in matching), default=None)
        if not self._revocations.fresh(msg, src, floor):
            raise Discard("revocation_replayed", f"{hoa} identifier {msg.revocation_id} from {src}")
        out: list[Action] = []
        self._counters.event("revocations_received")
        if matching:
            for b in matching:
                self._bindings.remove(hoa, b.care_of_address)
                out.append(RemoveBinding(hoa, b.care_of_address))
            self._binding_gone(hoa, out)
            BINDING_TRANSITIONS.confirm(_A, BindingInput.REVOKE, self.state_of(hoa))
            self._counters.event("bindings_revoked", len(matching))
        out.append(
            Log(
                "ha.binding_revoked",
                {
                    "home_address": hoa,
                    "care_of_addresses": [str(b.care_of_address) for b in matching],
                    "by": "foreign_agent",
                    "peer": src,
                    "identifier": msg.revocation_id,
                },
            )
        )
        out.append(self._revocations.ack(msg, src, informed=False, local=event.dst))
        return out

    # -- advertisements (RFC 5944 §2.3) ---------------------------------------------------

    def advertisement(self) -> AgentAdvertisement:
        """The Agent Advertisement this home agent sends on its home link: H flag, no
        care-of address (it is not a foreign agent), the capabilities it offers."""
        return self._advertiser.advertisement(self.config.interface)

    def _on_icmp(self, event: IcmpReceived, now: float) -> list[Action]:
        if self.config.advertisement_interval is None or event.interface != self.config.interface:
            return []
        if not Advertiser.is_solicitation(event.payload):
            return []  # another agent's advertisement
        return [self._advertiser.answer(event.interface, event.src, event.link_src, now)]

    # -- internals ------------------------------------------------------------------------

    def _begin(self, event: UdpReceived, now: float) -> _Request:
        try:
            msg = decode_message(event.payload)
        except UnknownExtensionError as e:
            # RFC 5944 §1.9: unknown non-skippable extension -> silently discard.
            raise Discard("unknown_extension", str(e)) from None
        except DecodeError as e:
            raise Discard("decode_error", str(e)) from None
        if not isinstance(msg, RegistrationRequest):
            raise Discard("unexpected_message", type(msg).__name__)
        return _Request(self, event, now, msg, home_address=msg.home_address)

    def _accept(self, ctx: _Request) -> list[Action]:
        req = ctx.request
        hoa, coa = ctx.home_address, req.care_of_address
        before = self.state_of(hoa)
        if not ctx.deregistration:
            inp = BindingInput.REGISTER
        elif coa == hoa:
            inp = BindingInput.DEREGISTER_ALL
        else:
            inp = BindingInput.DEREGISTER_ONE
        # Everything that can fail happens before the table changes: the transition check
        # and the (signed) reply. Past this point the changes and their actions go together.
        BINDING_TRANSITIONS.check(before, inp)
        lifetime = 0 if ctx.deregistration else ctx.lifetime
        if not ctx.deregistration:
            ctx.revocation = self._revocation_offered(ctx)
        reply = self._reply(ctx, ctx.code, lifetime)
        actions: list[Action] = []
        ev = ctx.event
        if ev.interface == self.config.interface and ev.link_src is not None and ev.src == hoa:
            self._home_link_addresses[hoa] = ev.link_src  # authenticated: past the pipeline
        if ctx.deregistration:
            if inp is BindingInput.DEREGISTER_ALL:
                removed = self._bindings.remove(hoa)
            else:
                removed = self._bindings.remove(hoa, coa)
            actions.extend(RemoveBinding(hoa, b.care_of_address) for b in removed)
        else:
            if not ctx.simultaneous:
                # RFC 5944 §3.8.2.2 (S clear): the new binding replaces every other one.
                for b in self._bindings.remove(hoa):
                    if b.care_of_address != coa:
                        actions.append(RemoveBinding(hoa, b.care_of_address))
            binding = MobilityBinding(
                home_address=hoa,
                care_of_address=coa,
                lifetime=lifetime,
                registered_at=ctx.now,
                expires=expiry(ctx.now, lifetime),
                identification=req.identification,
                flags=req.flags,
                encapsulation=ctx.encapsulation,
                reverse_tunnel=bool(req.flags & RegistrationFlags.T),
                source=ctx.event.src,
                nai=ctx.nai,
                revocation_timestamp=ctx.revocation.timestamp if ctx.revocation else None,
                revocation_inform=self._inform(ctx.revocation),
            )
            self._bindings.put(binding)
            actions.append(
                InstallBinding(
                    hoa,
                    coa,
                    ctx.encapsulation,
                    reverse_tunnel=binding.reverse_tunnel,
                    expires=binding.expires,
                    broadcast=bool(req.flags & RegistrationFlags.B),
                    home_interface=self.config.interface
                    if req.flags & RegistrationFlags.B
                    else None,
                    colocated=bool(req.flags & RegistrationFlags.D),
                )
            )
        after = self.state_of(hoa)
        BINDING_TRANSITIONS.confirm(before, inp, after)
        if self._pending_assignment is not None and after is _A:
            nai, assigned = self._pending_assignment
            self._assigned[nai] = assigned
            self._assigned_to[assigned] = nai
            self._counters.event("address_assigned")
        elif after is _H:
            self._release(hoa)
        cfg = self.config
        if before is _H and after is _A:
            # RFC 5944 §4.6: while the node is away the home agent answers ARP for it and
            # MUST first broadcast a gratuitous ARP so neighbours update their caches.
            actions.append(ProxyArp(cfg.interface, hoa, True))
            actions.append(GratuitousArp(cfg.interface, hoa, None, cfg.gratuitous_arp_count))
        elif before is _A and after is _H:
            # RFC 5944 §4.6: the home agent stops proxying; when the node deregistered from
            # the home link itself, announce its own link-layer address on its behalf.
            actions.append(ProxyArp(cfg.interface, hoa, False))
            mac = self._home_link_addresses.get(hoa)
            if mac is not None:
                actions.append(GratuitousArp(cfg.interface, hoa, mac, cfg.gratuitous_arp_count))
        self._counters.accept(ctx.code)
        actions.append(reply)
        actions.append(
            Log(
                "ha.registration",
                {
                    "home_address": hoa,
                    "care_of_address": coa,
                    "source": ctx.event.src,
                    "code": int(ctx.code),
                    "lifetime": lifetime,
                    "requested_lifetime": req.lifetime,
                    "decision": inp.value,
                    "encapsulation": ctx.encapsulation.name,
                    "nai": ctx.nai,
                },
            )
        )
        return actions

    def _deny(self, ctx: _Request, denial: RegistrationDenied) -> list[Action]:
        self._counters.deny(denial.code)
        if ctx.mn_sa is None:
            ctx.mn_sa = self._mn_sa_for_reply(ctx)
        if ctx.fa_sa is None:
            # A denial decided before the FA-HA check still goes back through the foreign
            # agent, which requires FA-HA when it shares an SA with us (RFC 5944 §3.7.3.1):
            # without it the FA would turn our code into 68.
            ctx.fa_sa = self._fa_sa_for_reply(ctx)
        lifetime = denial.lifetime if denial.lifetime is not None else 0
        return [
            self._reply(
                ctx,
                denial.code,
                lifetime,
                identification=denial.identification,
                home_agent=denial.home_agent,
            ),
            Log(
                "ha.registration",
                {
                    "home_address": ctx.home_address,
                    "care_of_address": ctx.request.care_of_address,
                    "source": ctx.event.src,
                    "nai": ctx.nai,
                    "code": int(denial.code),
                    "lifetime": lifetime,
                    "requested_lifetime": ctx.request.lifetime,
                    "decision": "denied",
                    "reason": denial.reason,
                },
            ),
        ]

    def _fa_sa_for_reply(self, ctx: _Request) -> SecurityAssociation | None:
        """The FA-HA association for the request's sender, when it is a foreign agent."""
        if not _via_foreign_agent(ctx):
            return None
        src = ctx.event.src
        for ext in ctx.request.extensions:
            if isinstance(ext, ForeignHomeAuthExtension):
                sa = self.security_associations.get(src, ext.spi)
                if sa is not None:
                    return sa
        sas = self.security_associations.for_peer(src)
        return sas[0] if sas else None

    def _mn_sa_for_reply(self, ctx: _Request) -> SecurityAssociation | None:
        """The MN-HA association named by the request's MN-HA SPI (to authenticate a reply
        sent before or despite authentication failing)."""
        req = ctx.request
        try:
            ext = req.extensions[find_auth_extension(req, MN_HA)]
        except AuthenticationError:
            return None
        assert isinstance(ext, MobileHomeAuthExtension)
        return self.security_associations.get(ctx.identity, ext.spi)

    def _reply(
        self,
        ctx: _Request,
        code: ReplyCode,
        lifetime: int,
        *,
        identification: int | None = None,
        home_agent: IPv4Address | None = None,
    ) -> SendUdp:
        req, ev = ctx.request, ctx.event
        if identification is None:
            identification = (
                ctx.reply_identification
                if ctx.reply_identification is not None
                else req.identification
            )
        # RFC 5944 §3.8.3.2: Home Agent field is the request's, or (136) our unicast address.
        # RFC 2794 §2: the reply carries the MN-NAI extension of the request (the foreign
        # agent and the node match it when the home address was 0.0.0.0), before MN-HA.
        nai_ext = tuple(e for e in req.extensions if isinstance(e, MobileNodeNAIExtension))[:1]
        if home_agent is None:
            home_agent = ctx.reply_home_agent or req.home_agent
        reply = RegistrationReply(
            code=int(code),
            lifetime=lifetime,
            home_address=ctx.home_address,
            home_agent=home_agent,
            identification=identification,
            extensions=nai_ext + ctx.reply_extensions,
        )
        # RFC 5944 §3.8.3.2: MN-HA MUST be included when the HA has the MN's SA; FA-HA
        # (when shared with the foreign agent) comes after it.
        if ctx.mn_sa is not None:
            reply = sign(reply, MobileHomeAuthExtension, ctx.mn_sa)
        if ctx.revocation is not None and code.accepted:
            # RFC 3543 §3.2: ours answers the foreign agent's, after MN-HA, before FA-HA.
            ours = support_extension(
                self._revocations.timestamp(ctx.now), self._inform(ctx.revocation)
            )
            reply = append_extensions(reply, ours)
        if ctx.fa_sa is not None:
            reply = sign(reply, ForeignHomeAuthExtension, ctx.fa_sa)
        payload = reply.raw or reply.encode()
        # RFC 5944 §3.8.3.1: to the request's source address and UDP source port, from the
        # request's destination address unless that was a broadcast.
        src = ev.dst
        net = self.config.home_network
        if src in (net.broadcast_address, _LIMITED_BROADCAST, _ZERO) or src.is_multicast:
            src = self.config.address
        return SendUdp(
            dst=ev.src,
            payload=payload,
            dport=ev.sport,
            sport=ev.dport if ev.dport else MIP_PORT,
            src=src,
        )


def _who(event: object) -> dict[str, object]:
    if isinstance(event, UdpReceived):
        return {"source": event.src, "sport": event.sport, "interface": event.interface}
    return {"event": type(event).__name__}
