"""The home agent's registration request pipeline (RFC 5944 §3.8.2.1; reverse tunnelling
RFC 3024 §4.2; NAI home address assignment RFC 2794 §2; dynamic home agent RFC 4433).

Theory of operation
-------------------
Split out of :mod:`mip4.core.home_agent` (which keeps the engine, the binding table, the
reply and revocations): the per-request context :class:`HaRequest` and the checks of
:data:`HA_PIPELINE`. Each check reads the request and the agent's configuration and state
through ``ctx.agent``, annotates the context, and raises
:class:`~mip4.core.registration.RegistrationDenied` with the code it owns; applying an
accepted registration and building the reply stay in :class:`~mip4.core.home_agent.HomeAgent`.

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

Checks 7--10 (capabilities and resources) do not apply to a deregistration.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.security.auth import FA_HA, MN_HA, AuthenticationError, verify
from mip4.security.replay import ReplayState, check_request
from mip4.security.sa import ReplayMethod, SecurityAssociation, lookup_for
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_mobility import DynamicHAExtension, DynamicHASubtype, RevocationSupportExtension
from mip4.wire.extensions import Extension, MobileNodeNAIExtension
from mip4.wire.messages import RegistrationFlags, RegistrationRequest

from .actions import Encapsulation
from .events import UdpReceived
from .ha_aaa import IssuedKey
from .ha_config import HomeAgentConfig, HomeAgentPick
from .registration import Pipeline, RegistrationDenied

if TYPE_CHECKING:
    from .home_agent import HomeAgent

__all__ = ["HA_PIPELINE", "HaRequest", "via_foreign_agent"]

_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_ZERO = IPv4Address(0)
_ALL_ONES = 0xFFFFFFFF
#: RegistrationFlags bits, as plain integers (the checks test ``HaRequest.flag_bits``)
_S, _D, _M, _G, _T = (
    int(f)
    for f in (
        RegistrationFlags.S,
        RegistrationFlags.D,
        RegistrationFlags.M,
        RegistrationFlags.G,
        RegistrationFlags.T,
    )
)


#: per configuration object: (the configuration, network, broadcast and own address as
#: integers, whether the prefix is /31 or /32) -- see :func:`_serves`
_NETWORK_INTS: dict[int, tuple[HomeAgentConfig, int, int, int, bool]] = {}


def _serves(cfg: HomeAgentConfig, hoa: IPv4Address) -> bool:
    """:meth:`HomeAgentConfig.serves` for the usual configuration (no address pool, no
    ``home_addresses`` list: every address of the home network but its network and
    broadcast addresses and the agent's own), on integers; the method itself otherwise."""
    if cfg.address_pool or cfg.home_addresses is not None:
        return cfg.serves(hoa)
    entry = _NETWORK_INTS.get(id(cfg))
    if entry is None or entry[0] is not cfg:
        if len(_NETWORK_INTS) > 16:
            _NETWORK_INTS.clear()
        net = cfg.home_network
        entry = (
            cfg,
            int(net.network_address),
            int(net.broadcast_address),
            int(cfg.address),
            net.prefixlen >= 31,
        )
        _NETWORK_INTS[id(cfg)] = entry
    _, first, last, me, tiny = entry
    a = int(hoa)
    return first <= a <= last and a != me and (tiny or (a != first and a != last))


def _bad_unicast(a: int) -> bool:
    """:func:`~mip4.core.ha_config.bad_unicast` on an integer address: 0.0.0.0, the limited
    broadcast, or multicast (224.0.0.0/4)."""
    return a == 0 or a == _ALL_ONES or a >> 28 == 0xE


# ----------------------------------------------------------------------------------------
# The request pipeline
# ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class HaRequest:
    """Per-request context the pipeline checks read and annotate.

    The request's addresses, flags and source are also kept as plain integers
    (``*_int``, ``flag_bits``), read once: the checks compare integers instead of
    ``IPv4Address`` objects and ``enum.Flag`` values (issue 13: the engine's cost per
    request)."""

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
    #: lifetime 0 (RFC 5944 §3.8.2.2)
    deregistration: bool = field(init=False)
    #: the request's flags as an integer (RFC 5944 §3.3 bit values)
    flag_bits: int = field(init=False)
    #: the request's Home Address, Home Agent and Care-of Address fields, and the IP
    #: source of the datagram, as integers
    hoa_int: int = field(init=False)
    ha_int: int = field(init=False)
    coa_int: int = field(init=False)
    src_int: int = field(init=False)

    def __post_init__(self) -> None:
        req = self.request
        self.deregistration = req.lifetime == 0
        self.flag_bits = int(req.flags)
        self.hoa_int = int(req.home_address)
        self.ha_int = int(req.home_agent)
        self.coa_int = int(req.care_of_address)
        self.src_int = int(self.event.src)

    @property
    def identity(self) -> IPv4Address | str:
        """What the mobile node's SA and replay state are keyed by: its NAI when it sent one
        and an MN-HA SA is configured for it, else its home address (RFC 2794 §2)."""
        if self.nai is not None and self.agent.security_associations.for_peer(self.nai):
            return self.nai
        return self.request.home_address


def check_well_formed(ctx: HaRequest) -> None:
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
    hoa = ctx.hoa_int
    if hoa == 0 and ctx.nai is not None:
        pass  # RFC 2794 §2: assigned by assign_home_address
    elif _bad_unicast(hoa):
        raise RegistrationDenied(
            ReplyCode.HA_POORLY_FORMED_REQUEST, f"home address {req.home_address} not unicast"
        )
    if not ctx.deregistration:
        if _bad_unicast(ctx.coa_int):
            raise RegistrationDenied(
                ReplyCode.HA_POORLY_FORMED_REQUEST,
                f"care-of address {req.care_of_address} not unicast",
            )
        if ctx.coa_int == hoa:
            raise RegistrationDenied(
                ReplyCode.HA_POORLY_FORMED_REQUEST,
                "care-of address equals the home address with a non-zero lifetime",
            )


def check_mn_ha_auth(ctx: HaRequest) -> None:
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


def via_foreign_agent(ctx: HaRequest) -> bool:
    """Whether the request was relayed by a foreign agent (not sent by the mobile node from
    its home address or its co-located care-of address)."""
    src = ctx.src_int
    if src == ctx.hoa_int:
        return False
    return not (ctx.flag_bits & _D and src == ctx.coa_int)


def check_fa_ha_auth(ctx: HaRequest) -> None:
    """132 when this agent shares an SA with the foreign agent and the FA-HA extension is
    missing or invalid (RFC 5944 §3.8.2.1)."""
    agent = ctx.agent
    src = ctx.event.src
    if not via_foreign_agent(ctx):
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


def check_identification(ctx: HaRequest) -> None:
    """133 when the Identification is not fresh (RFC 5944 §3.8.2.1, §5.7). Only reached
    once MN-HA verified, so the replay state may be updated."""
    sa = ctx.mn_sa
    assert sa is not None  # check_mn_ha_auth passed
    agent = ctx.agent
    key = ctx.identity
    state = agent._replay.get(key)
    if state is None:
        state = ReplayState()
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


def grant_lifetime(ctx: HaRequest) -> None:
    """The granted lifetime: at most the request's and at most ``max_lifetime``
    (RFC 5944 §3.8.3.2: the reply's Lifetime MUST NOT exceed the request's)."""
    ctx.lifetime = min(ctx.request.lifetime, ctx.agent.config.max_lifetime)


def check_home_agent_address(ctx: HaRequest) -> None:
    """136 when the request was sent to the home network's subnet-directed broadcast address,
    or when the Home Agent field is not this agent's unicast address; the reply carries that
    address (RFC 5944 §3.8.2.1, §3.8.3.1; home agent discovery §3.6.1.2)."""
    cfg = ctx.agent.config
    me = cfg.address
    ha = ctx.request.home_agent
    net = cfg.home_network
    if net.prefixlen < 31 and int(ctx.event.dst) == int(net.broadcast_address):
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
    if ctx.ha_int != int(me):
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


def _redirect(ctx: HaRequest, to: IPv4Address, why: str) -> RegistrationDenied:
    """143 with a Redirected HA extension (RFC 4433 §3.1 subtype 2), authenticated with the
    reply's MN-HA (it precedes it). A node that asked for its key (RFC 3957) gets the
    nonce reply too: the MN-HA is made with the key AAA issued for this request, which the
    node derives only from that nonce (without it the reply could not be verified)."""
    issued = ctx.issued_key
    keep = (
        (issued.reply_extension(),)
        if issued is not None and ctx.mn_sa is issued.association
        else ()
    )
    ctx.reply_extensions = (*keep, DynamicHAExtension(DynamicHASubtype.REDIRECTED_HA, to))
    return RegistrationDenied(ReplyCode.HA_REDIRECTED, why, home_agent=ctx.agent.config.address)


def select_home_agent(ctx: HaRequest) -> bool:
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
    dynamic = ctx.ha_int == 0 or ctx.ha_int == _ALL_ONES  # 0.0.0.0 or 255.255.255.255
    if dynamic and ctx.aaa_home_agent == me:
        # RFC 4433 with AAA: the home AAA server picked this agent (the foreign agent
        # relayed the request here for it); the reply names it
        ctx.reply_home_agent = me
        return True
    if not dynamic or not cfg.home_agents:
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


def check_reverse_tunnel(ctx: HaRequest) -> None:
    """137 / 138 (RFC 3024 §4.2)."""
    if ctx.deregistration:
        return
    cfg = ctx.agent.config
    t = bool(ctx.flag_bits & _T)
    if t and not cfg.reverse_tunnel:
        raise RegistrationDenied(
            ReplyCode.HA_REVERSE_TUNNEL_UNAVAILABLE, "reverse tunnelling not offered"
        )
    if not t and cfg.reverse_tunnel_required:
        raise RegistrationDenied(
            ReplyCode.HA_REVERSE_TUNNEL_MANDATORY, "reverse tunnelling mandatory, T clear"
        )


def check_encapsulation(ctx: HaRequest) -> None:
    """139 when M or G asks for an encapsulation this agent does not offer; else choose it
    (IP in IP is the default every agent MUST support, RFC 5944 §4.1, §3.8.2.2)."""
    if ctx.deregistration:
        return
    cfg = ctx.agent.config
    flags = ctx.flag_bits
    if flags & _G:
        if not cfg.gre_encapsulation:
            raise RegistrationDenied(ReplyCode.HA_ENCAPSULATION_UNAVAILABLE, "GRE not offered")
        ctx.encapsulation = Encapsulation.GRE
    if flags & _M:
        if not cfg.minimal_encapsulation:
            raise RegistrationDenied(
                ReplyCode.HA_ENCAPSULATION_UNAVAILABLE, "minimal encapsulation not offered"
            )
        if ctx.encapsulation is Encapsulation.IPIP:
            ctx.encapsulation = Encapsulation.MINIMAL


def check_simultaneous_bindings(ctx: HaRequest) -> None:
    """S bit: 135 past the per-node maximum; code 1 when not supported (RFC 5944 §3.4)."""
    if ctx.deregistration or not ctx.flag_bits & _S:
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


def assign_home_address(ctx: HaRequest) -> None:
    """RFC 2794 §2: a node known by its NAI that asks for 0.0.0.0 gets the address its NAI
    already holds, else a free one of ``address_pool`` (130 when none is left); an address
    of the pool held by another NAI is refused (129). The address stays with the NAI until
    its last binding ends (deregistration or expiry)."""
    agent = ctx.agent
    req = ctx.request
    nai = ctx.nai
    held = agent._assigned.get(nai) if nai is not None else None
    if ctx.hoa_int != 0:
        owner = agent._assigned_to.get(req.home_address) if agent._assigned_to else None
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


def check_administrative(ctx: HaRequest) -> None:
    """129 for a home address this agent does not serve; 130 when the table is full."""
    agent = ctx.agent
    hoa = ctx.home_address
    if ctx.deregistration and hoa == _ZERO:
        return  # an NAI deregistering with nothing assigned
    if not _serves(agent.config, hoa):
        raise RegistrationDenied(
            ReplyCode.HA_ADMIN_PROHIBITED, f"home address {hoa} not served by this agent"
        )
    if ctx.deregistration:
        return
    count = len(agent._bindings)
    if count + 1 <= agent.config.max_bindings:
        return  # room even if nothing is replaced
    current = agent._bindings.bindings_of(hoa)
    replaced = sum(
        1
        for b in current
        if not ctx.simultaneous or b.care_of_address == ctx.request.care_of_address
    )
    if count - replaced + 1 > agent.config.max_bindings:
        raise RegistrationDenied(
            ReplyCode.HA_INSUFFICIENT_RESOURCES,
            f"binding table full ({agent.config.max_bindings})",
        )


#: RFC 5944 §3.8.2.1 order; see the module docstring.
HA_PIPELINE: Pipeline[HaRequest] = Pipeline(
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
