"""The foreign agent's Registration Request checks, in the order RFC 5944 §3.7.2.1 and
§3.7.2.3 give them (reverse tunnelling RFC 3024 §3; challenges RFC 4721 §3.2).

Theory of operation
-------------------
A request heard on a visited link becomes a :class:`FaRequest` context and runs through
:data:`FA_REQUEST_PIPELINE`: each check either returns (possibly after recording what it
found: the MN-FA security association, the challenge answered, the delivery style) or raises
:class:`~mip4.core.registration.RegistrationDenied` with the foreign agent code (64--127)
it owns, which the agent's error boundary turns into a reply to the mobile node (see
:mod:`mip4.core.foreign_agent`). A check reads the agent only through :class:`FaTables` --
the configuration, the security associations, the advertiser's challenge ring and the two
tables -- so this module does not import the engine.

The checks, in order:

* ``check_well_formed`` 70 -- no MN-HA (or MN-AAA) extension, a home address that is zero
  (unless the node names itself by NAI),
  broadcast or multicast, a zero Home Agent field, an Encapsulating Delivery Style
  extension without T (RFC 3024 §3.3);
* ``check_nai`` 97 / 96 / 98 (RFC 2794 §2) -- a request for home address 0.0.0.0 (or any
  request, with ``require_nai``) without MN-NAI; 0.0.0.0 not relayed; no home agent;
* ``check_challenge`` 105 / 104 / 106 -- only when challenges are advertised (RFC 4721 §3.2);
* ``check_mn_fa_auth`` 67 -- a present or required MN-FA extension that does not verify
  (not required of a request asking AAA for a new MN-FA key, RFC 3957, when the only
  association here is one learnt from AAA);
* ``check_care_of_address`` 77 -- without D, the care-of address must be one this agent
  offers on that link;
* ``check_lifetime`` 69 -- longer than ``max_lifetime``; the reply's Lifetime is the maximum
  (RFC 5944 §3.7.2.3);
* ``check_encapsulation`` 72 -- M or G that this agent cannot decapsulate;
* ``check_reverse_tunnel`` 74 / 76 / 75 / 79 (RFC 3024 §3.2, §3.3, §4.2.1): 76 when a
  request with T did not arrive with IP TTL 255;
* ``check_resources`` 66 -- visitor list or pending list full.

Capability and resource checks are skipped for a deregistration (lifetime 0): RFC 5944 §3.7
says the agent MUST relay well-formed deregistrations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mip4.security.auth import (
    GENERALIZED,
    MN_FA,
    AuthenticationError,
    authorization_index,
    verify,
)
from mip4.security.sa import SecurityAssociation, SecurityAssociationStore, lookup_for
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_keys import AAA_SUBTYPE, MNFAKeyGenNonceRequest
from mip4.wire.ext_mobility import DynamicHAExtension, DynamicHASubtype
from mip4.wire.extensions import MobileForeignChallengeExtension, MobileNodeNAIExtension
from mip4.wire.messages import RegistrationFlags, RegistrationRequest

from .advertiser import Advertiser
from .bindings import PendingStore, VisitorStore
from .events import UdpReceived
from .fa_config import ForeignAgentConfig, VisitedLink
from .registration import Discard, Pipeline, RegistrationDenied

__all__ = [
    "FA_REQUEST_PIPELINE",
    "FaRequest",
    "FaTables",
    "bad_unicast",
    "check_care_of_address",
    "check_challenge",
    "check_encapsulation",
    "check_lifetime",
    "check_mn_fa_auth",
    "check_nai",
    "check_resources",
    "check_reverse_tunnel",
    "check_well_formed",
]

_ZERO = IPv4Address(0)
#: Encapsulating Delivery Style Extension type (RFC 3024 §3.3).
_DELIVERY_STYLE = 130
#: the flags the checks test, as plain integers (``int(flags) & _T``: no enum operator)
_D, _M, _G, _T = (
    int(f)
    for f in (RegistrationFlags.D, RegistrationFlags.M, RegistrationFlags.G, RegistrationFlags.T)
)
_MG = _M | _G


@dataclass(frozen=True)
class FaTables:
    """What the checks may read of the foreign agent (and, for the challenge ring and the
    tables' sizes, nothing else)."""

    config: ForeignAgentConfig
    security_associations: SecurityAssociationStore
    advertiser: Advertiser
    visitors: VisitorStore
    pending: PendingStore
    #: MN-FA keys learnt from AAA (RFC 3957): node (NAI or home address) -> SPI
    mn_fa_learnt: dict[IPv4Address | str, int] = field(default_factory=dict)


@dataclass
class FaRequest:
    """Per-request context the checks read and annotate."""

    agent: FaTables
    event: UdpReceived
    now: float
    link: VisitedLink
    request: RegistrationRequest
    #: MN-FA association when the request carried a verifiable MN-FA extension
    mn_fa_sa: SecurityAssociation | None = None
    delivery_style: bool = False
    #: the RFC 4721 challenge the request answered, when challenges are in use
    challenge: bytes | None = None
    #: the mobile node's NAI (MN-NAI extension, RFC 2794), when it sent one
    nai: str | None = None
    #: RFC 4433: the Requested HA extension's unicast address, for a request whose Home
    #: Agent field is 0.0.0.0 or 255.255.255.255 (it is relayed there)
    requested_home_agent: IPv4Address | None = None
    #: index of the authorization-enabling extension (MN-HA, else MN-AAA; RFC 5944
    #: §3.7.2.2), found by ``check_well_formed`` (-1 before it ran)
    auth_index: int = -1

    @property
    def wants_mn_fa_key(self) -> bool:
        """RFC 3957: the request asks for an MN-FA key from AAA (extension 40, AAA subtype)
        and authenticates to the home AAA server (MN-AAA)."""
        exts = self.request.extensions
        return any(
            isinstance(e, MNFAKeyGenNonceRequest) and e.subtype == AAA_SUBTYPE for e in exts
        ) and any(e.ext_type == GENERALIZED for e in exts)

    @property
    def mn_key(self) -> IPv4Address | str:
        """What the MN-FA SA is looked up by: the NAI when an SA is configured for it,
        else the home address (RFC 2794 §2)."""
        if self.nai is not None and self.agent.security_associations.for_peer(self.nai):
            return self.nai
        return self.request.home_address

    @property
    def pending_key(self) -> IPv4Address | str:
        """A request for 0.0.0.0 is pending under its NAI, others under the home address."""
        if self.request.home_address == _ZERO and self.nai is not None:
            return self.nai
        return self.request.home_address

    @property
    def deregistration(self) -> bool:
        return self.request.lifetime == 0


def bad_unicast(a: IPv4Address) -> bool:
    """0.0.0.0, 255.255.255.255 or multicast (224.0.0.0/4), on the integer: no
    ``IPv4Address.__eq__`` or network containment per check (issue 13)."""
    i = int(a)
    return i == 0 or i == 0xFFFFFFFF or i >> 28 == 0xE


def check_well_formed(ctx: FaRequest) -> None:
    """70 (RFC 5944 §3.7.2.3 "poorly formed Request")."""
    req = ctx.request
    code = ReplyCode.FA_POORLY_FORMED_REQUEST
    try:
        # RFC 5944 §3.5.2: MN-HA is required in every request
        ctx.auth_index = authorization_index(req)
    except AuthenticationError:
        raise RegistrationDenied(code, "no MN-HA or MN-AAA extension") from None
    exts = req.extensions
    delivery_style = False
    for ext in exts:
        # one pass: the first MN-NAI, and whether the delivery style extension is there
        t = ext.ext_type
        if t == _DELIVERY_STYLE:
            delivery_style = True
        elif ctx.nai is None and isinstance(ext, MobileNodeNAIExtension):
            try:
                ctx.nai = ext.nai.decode("utf-8")
            except UnicodeDecodeError:
                raise RegistrationDenied(code, "MN-NAI is not UTF-8") from None
            if not ctx.nai:
                raise RegistrationDenied(code, "empty MN-NAI")
    # the addresses on their integers (issue 13): no IPv4Address.__eq__ per test
    hoa, ha = int(req.home_address), int(req.home_agent)
    if hoa == 0:
        pass  # RFC 2794 §2: to be assigned; check_nai decides (97 / 96 / 98)
    elif hoa == 0xFFFFFFFF or hoa >> 28 == 0xE:
        raise RegistrationDenied(code, f"home address {req.home_address} not unicast")
    if ha == 0 or ha == 0xFFFFFFFF:
        for ext in exts:
            if isinstance(ext, DynamicHAExtension) and ext.subtype == DynamicHASubtype.REQUESTED_HA:
                if bad_unicast(ext.home_agent):
                    raise RegistrationDenied(code, f"requested home agent {ext.home_agent}")
                # RFC 4433 §3.1: relayed to the requested home agent.
                ctx.requested_home_agent = ext.home_agent
    if ctx.requested_home_agent is not None:
        pass
    elif ha == 0 and (hoa == 0 or ctx.agent.config.aaa):
        pass  # check_nai: 98 unless the home AAA server is to name it
    elif ha == 0 or ha >> 28 == 0xE:  # multicast
        raise RegistrationDenied(code, f"home agent {req.home_agent} not usable")
    if req.lifetime and not int(req.care_of_address):
        raise RegistrationDenied(code, "no care-of address")
    ctx.delivery_style = delivery_style
    if delivery_style and not int(req.flags) & _T:
        # RFC 3024 §3.3: the extension is only meaningful with reverse tunnelling.
        raise RegistrationDenied(code, "Encapsulating Delivery Style without the T bit")


def check_nai(ctx: FaRequest) -> None:
    """RFC 2794 §2: 97 when the NAI is missing (a request for home address 0.0.0.0 names
    its node only by it; or the configuration requires it), 96 when this agent does not
    relay requests for 0.0.0.0, 98 when such a request names no home agent (dynamic home
    agent assignment, RFC 4433, is not offered)."""
    req = ctx.request
    cfg = ctx.agent.config
    zero_hoa = not int(req.home_address)
    if ctx.nai is None and (zero_hoa or cfg.require_nai):
        raise RegistrationDenied(ReplyCode.FA_MISSING_NAI, "no MN-NAI extension")
    if zero_hoa and not cfg.zero_home_address:
        raise RegistrationDenied(ReplyCode.FA_NONZERO_HOA_REQUIRED, "home address 0.0.0.0")
    if (
        not int(req.home_agent)
        and ctx.requested_home_agent is None
        and not (cfg.aaa and any(e.ext_type == GENERALIZED for e in req.extensions))
    ):
        # Only the home AAA server could name it (its Access-Accept, RFC 4721 §3.2).
        raise RegistrationDenied(ReplyCode.FA_MISSING_HOME_AGENT, "home agent 0.0.0.0")


def check_challenge(ctx: FaRequest) -> None:
    """RFC 4721 §3.2: when challenges are advertised, the request must answer a recent one
    (105 missing, 104 unknown, 106 stale or already used)."""
    if not ctx.agent.config.challenge_length:
        return
    challenge = None
    for e in ctx.request.extensions:
        if isinstance(e, MobileForeignChallengeExtension):
            challenge = e.challenge
    ctx.agent.advertiser.check_challenge(ctx.link.interface, challenge)
    ctx.challenge = challenge  # spent once the request is relayed (see _relay_request)


def check_mn_fa_auth(ctx: FaRequest) -> None:
    """67 when an MN-FA extension is present or required and does not verify (RFC 5944
    §3.7.2.1). It is required when configured, and whenever this agent shares a mobility
    security association with the mobile node."""
    agent = ctx.agent
    req = ctx.request
    present = False
    for e in req.extensions:
        if e.ext_type == MN_FA:
            present = True
            break
    # RFC 5944 §3.7.2.1: when the foreign agent and the mobile node share a mobility
    # security association, exactly one Mobile-Foreign Authentication extension MUST be
    # present (verify() refuses none and more than one alike); otherwise 67.
    shared = bool(agent.security_associations.for_peer(ctx.mn_key))
    if not present and not shared and not agent.config.require_mn_fa_auth:
        return
    if not present and ctx.wants_mn_fa_key and _only_learnt(ctx):
        # RFC 3957: the node asks the home AAA server for a new MN-FA key (it lost the one
        # learnt here, or moved away and back); AAA authenticates it (MN-AAA), and the new
        # key replaces the old one when the registration is accepted.
        return
    lookup = lookup_for(agent.security_associations, ctx.mn_key)
    try:
        result = verify(req, MN_FA, lookup)
    except AuthenticationError as e:
        if e.spi is not None:
            ctx.mn_fa_sa = lookup(e.spi)
        raise RegistrationDenied(ReplyCode.FA_MN_FAILED_AUTH, str(e)) from None
    ctx.mn_fa_sa = result.sa


def _only_learnt(ctx: FaRequest) -> bool:
    """The node's only MN-FA association here is one learnt from AAA."""
    spi = ctx.agent.mn_fa_learnt.get(ctx.mn_key)
    sas = ctx.agent.security_associations.for_peer(ctx.mn_key)
    return spi is not None and all(sa.spi == spi for sa in sas)


def check_care_of_address(ctx: FaRequest) -> None:
    """77: a foreign agent care-of address must be one this agent offers on the link."""
    req = ctx.request
    if not req.lifetime or int(req.flags) & _D:  # a deregistration, or D
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


def check_lifetime(ctx: FaRequest) -> None:
    """69 beyond ``max_lifetime``; the reply's Lifetime carries the maximum (RFC 5944
    §3.7.2.3)."""
    limit = ctx.agent.config.max_lifetime
    if ctx.request.lifetime > limit:
        raise RegistrationDenied(
            ReplyCode.FA_LIFETIME_TOO_LONG,
            f"requested {ctx.request.lifetime} s, at most {limit} s",
            lifetime=limit,
        )


def check_encapsulation(ctx: FaRequest) -> None:
    """72 when M or G asks for an encapsulation this agent cannot decapsulate."""
    req = ctx.request
    flags = int(req.flags)
    if not req.lifetime or not flags & _MG:  # a deregistration, or neither M nor G
        return
    cfg = ctx.agent.config
    if flags & _M and not cfg.minimal_encapsulation:
        raise RegistrationDenied(
            ReplyCode.FA_ENCAPSULATION_UNAVAILABLE, "minimal encapsulation not supported"
        )
    if flags & _G and not cfg.gre_encapsulation:
        raise RegistrationDenied(ReplyCode.FA_ENCAPSULATION_UNAVAILABLE, "GRE not supported")


def check_reverse_tunnel(ctx: FaRequest) -> None:
    """74 / 75 / 79 (RFC 3024 §3.2, §3.3)."""
    if not ctx.request.lifetime:  # a deregistration
        return
    cfg = ctx.agent.config
    t = bool(int(ctx.request.flags) & _T)
    if t and not cfg.reverse_tunnel:
        raise RegistrationDenied(
            ReplyCode.FA_REVERSE_TUNNEL_UNAVAILABLE, "reverse tunnelling not supported"
        )
    if t and ctx.event.ttl != 255:
        # RFC 3024 §4.2.1: a request with T MUST arrive with IP TTL 255 -- sent by a mobile
        # node on this link, not forged from afar to hijack a reverse tunnel; otherwise the
        # foreign agent MUST deny it with 76 ("mobile node too distant").
        raise RegistrationDenied(
            ReplyCode.FA_MN_TOO_DISTANT, f"T set and IP TTL {ctx.event.ttl}, not 255"
        )
    if not t and cfg.reverse_tunnel_required:
        raise RegistrationDenied(
            ReplyCode.FA_REVERSE_TUNNEL_MANDATORY, "reverse tunnelling mandatory, T clear"
        )
    if ctx.delivery_style and not cfg.encapsulating_delivery:
        raise RegistrationDenied(
            ReplyCode.FA_DELIVERY_STYLE_UNSUPPORTED, "Encapsulating Delivery Style unsupported"
        )


def check_resources(ctx: FaRequest) -> None:
    """66 when the visitor list or the pending list is full (RFC 5944 §3.7.1)."""
    req = ctx.request
    if not req.lifetime:  # a deregistration
        return
    agent = ctx.agent
    cfg = agent.config
    hoa = req.home_address
    # the lookups only when a list is full (a node already on it keeps its place)
    if len(agent.visitors) >= cfg.max_visitors and agent.visitors.get(hoa) is None:
        raise RegistrationDenied(ReplyCode.FA_INSUFFICIENT_RESOURCES, "visitor list full")
    if not int(hoa):
        return  # pending under its NAI (see ForeignAgent); bounded by max_pending there
    if len(agent.pending) >= cfg.max_pending and agent.pending.get(hoa) is None:
        raise RegistrationDenied(ReplyCode.FA_INSUFFICIENT_RESOURCES, "too many pending requests")


#: RFC 5944 §3.7.2.1 / §3.7.2.3 checks, in order.
FA_REQUEST_PIPELINE: Pipeline[FaRequest] = Pipeline(
    (
        check_well_formed,
        check_nai,
        check_challenge,
        check_mn_fa_auth,
        check_care_of_address,
        check_lifetime,
        check_encapsulation,
        check_reverse_tunnel,
        check_resources,
    )
)
