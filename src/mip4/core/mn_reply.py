"""The mobile node's reply half (RFC 5944 §3.6.2), moved out of
:mod:`mip4.core.mn_client`: matching and authenticating a Registration Reply, reacting to
its code (retry, back off, redirect, AAA recovery), and applying an accepted one.
Functions of the :class:`~mip4.core.mn_client.RegistrationClient`, whose state they use."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.security.auth import (
    GENERALIZED,
    MN_HA,
    AuthenticationError,
    verify,
)
from mip4.security.replay import low_word, matches_request
from mip4.security.sa import ReplayMethod
from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError
from mip4.wire.ext_keys import MNHAKeyGenNonceRequest
from mip4.wire.ext_mobility import DynamicHAExtension, DynamicHASubtype
from mip4.wire.ext_tunnel import EncapsulatingDeliveryExtension
from mip4.wire.extensions import (
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.messages import (
    INFINITE_LIFETIME,
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    decode_message,
)

from .actions import Action, Encapsulation, Log
from .events import UdpReceived
from .mn_attachment import Attachment, AttachmentKind
from .mn_config import ReverseTunnel
from .mn_reactions import CodeReaction, Reaction, reaction_for
from .mn_records import (
    UNASSIGNED_HOME_AGENT,
    AwaitChallenge,
    Binding,
    Corrections,
    PendingRequest,
    RefusedCareOf,
    RegistrationRecord,
    ReplyOutcome,
    Retry,
    Revoked,
    Step,
    encapsulation_of,
)
from .mn_state import MnInput, log

if TYPE_CHECKING:
    from .mn_client import RegistrationClient


def reply(
    c: RegistrationClient,
    ev: UdpReceived,
    now: float,
    current: Attachment | None,
    out: list[Action],
) -> ReplyOutcome | None:
    """A datagram on the registration port; ``None`` when it is discarded."""
    try:
        msg = decode_message(ev.payload)
    except DecodeError as e:
        c._discard(out, "malformed", error=str(e))
        return None
    if not isinstance(msg, RegistrationReply):
        c._discard(out, "not a registration reply", type=type(msg).__name__)
        return None
    if revocation_notice(c, msg, ev, current):
        c.counters.event("revoked")
        out.append(Log("mn.revoked", {"code": msg.code, "agent": ev.src}))
        return Revoked(reaction_for(msg.code).reason)
    p = c.pending
    if p is None:
        c._discard(out, "no outstanding request", code=msg.code)
        return None
    if msg.home_address != c.home_address and not assignment(c, msg):
        c._discard(out, "home address mismatch", home_address=msg.home_address)
        return None
    if not matches_request(p.request.identification, msg.identification):
        # RFC 5944 §3.6.2.1: the low-order 32 bits must match the request's.
        c._discard(
            out,
            "identification mismatch",
            expected=f"{low_word(p.request.identification):#010x}",
            got=f"{low_word(msg.identification):#010x}",
        )
        return None
    reaction = reaction_for(msg.code)
    has_mn_ha = any(e.ext_type == MN_HA for e in msg.extensions)
    authenticated = False
    if not has_mn_ha and aaa_can_recover(c, msg, p):
        # The agent has no key for us: it could not sign (module docstring).
        reaction = CodeReaction(
            msg.code,
            Reaction.RETRY_AAA,
            f"{reaction.reason}; the agent has no key for us: retry through AAA",
        )
    elif reaction.by_foreign_agent and not has_mn_ha:
        # RFC 5944 §3.6.2.1: a foreign agent's denial carries no MN-HA extension.
        pass
    elif (
        not has_mn_ha
        and msg.code == ReplyCode.HA_MN_FAILED_AAA_AUTH
        and any(e.ext_type == GENERALIZED for e in p.request.extensions)
    ):
        # The home AAA server refused the MN-AAA of a request the home agent had no key
        # for: it cannot sign its 144 either. The node stops (GIVE_UP) rather than
        # retransmit into the refusal: the bound on asking AAA again.
        pass
    else:
        c._offer = c.keys.candidate(msg) if c.keys is not None else None
        try:
            verify(msg, MN_HA, c._lookup)
            authenticated = True
        except AuthenticationError as e:
            if c._offer is not None:
                # RFC 3957: the key derived from the reply's nonce does not verify it
                c.counters.event("aaa_key_mismatch")
                out.append(
                    Log(
                        "mn.key_mismatch",
                        {"spi": c._offer.association.spi, "code": msg.code},
                    )
                )
                c._offer = None
            c._discard(out, "authentication failed", detail=str(e), code=msg.code)
            return None
    c.last_reaction = reaction
    out.append(
        log(
            "mn.reply",
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
        c.replay.on_reply(p.request.identification, msg.identification, msg.code, c._unix(now))
    c.pending = None
    try:
        return react(c, reaction, msg, p, now, current, out, authenticated)
    finally:
        c._offer = None


def revocation_notice(
    c: RegistrationClient, msg: RegistrationReply, ev: UdpReceived, current: Attachment | None
) -> bool:
    """RFC 3543: the foreign agent informs the node of a revocation with a Registration
    Reply that denies (65 by the foreign agent, 129 by the home agent), has Lifetime 0
    and the Identification of the registration the node holds, sent by the agent the
    node is registered through. (The agent has no MN-HA key: the reply cannot carry
    MN-HA; the Identification, 64 bits the node chose, is what ties it to the binding.)"""
    b = c.binding
    return (
        b is not None
        and msg.lifetime == 0
        and msg.code in (ReplyCode.FA_ADMIN_PROHIBITED, ReplyCode.HA_ADMIN_PROHIBITED)
        and msg.home_address == c.home_address
        and msg.identification == b.identification
        and current is not None
        and current.kind is AttachmentKind.FOREIGN_AGENT
        and current.agent is not None
        and ev.src == current.agent.address
        and b.care_of_address == current.care_of_address
    )


def assignment(c: RegistrationClient, msg: RegistrationReply) -> bool:
    """RFC 2794 §2: a node waiting for its home address takes a reply carrying its own
    NAI (the address is adopted only once the reply is authenticated and accepted)."""
    nai = c.config.nai
    if nai is None or c.home_address != IPv4Address(0):
        return False
    return any(
        isinstance(e, MobileNodeNAIExtension) and e.nai == nai.encode() for e in msg.extensions
    )


def react(
    c: RegistrationClient,
    r: CodeReaction,
    msg: RegistrationReply,
    p: PendingRequest,
    now: float,
    current: Attachment | None,
    out: list[Action],
    authenticated: bool,
) -> ReplyOutcome:
    kind = r.reaction
    if kind is Reaction.REGISTERED:
        assert authenticated  # FA denials never have code 0/1
        return accepted(c, msg, p, now, current, out)
    if kind is Reaction.BACK_OFF:
        return Step(MnInput.BACKED_OFF, r.reason)
    if kind is Reaction.GIVE_UP:
        return Step(MnInput.GAVE_UP, r.reason)
    if kind is Reaction.OTHER_AGENT:
        if p.attachment.agent is None:
            return Step(MnInput.GAVE_UP, r.reason)
        return RefusedCareOf(p.attachment, r.reason)
    if kind is Reaction.RETRY_REDIRECTED:
        return redirected(c, r, msg, p, now, out, authenticated)
    # Corrective retries.
    c.adjust.corrections += 1
    if c.adjust.corrections > c.config.correction_limit:
        return Step(
            MnInput.GAVE_UP,
            f"{r.reason}; still denied after {c.config.correction_limit} corrections",
        )
    if kind is Reaction.RESYNC:
        if not authenticated:
            return Step(MnInput.GAVE_UP, r.reason)
        # MobileNodeReplay.on_reply learnt the clock offset / nonce (RFC 5944 §5.7).
        return retry(c, p, now, "identification resynchronised")
    if kind is Reaction.RETRY_LIFETIME:
        if msg.lifetime == 0 or p.deregister:
            return Step(MnInput.GAVE_UP, r.reason)
        c.adjust.max_lifetime = msg.lifetime
        return retry(c, p, now, f"lifetime lowered to {msg.lifetime}")
    if kind is Reaction.RETRY_HOME_AGENT:
        ha = msg.home_agent
        if not authenticated or ha == c.home_agent or ha.is_unspecified or c._broadcast(ha):
            return Step(MnInput.GAVE_UP, r.reason)
        out.append(Log("mn.home_agent", {"home_agent": ha, "was": c.home_agent}))
        c.home_agent = ha  # RFC 5944 §3.6.1.2 dynamic home agent discovery
        return retry(c, p, now, "home agent discovered")
    if kind is Reaction.RETRY_IPIP:
        used = encapsulation_of(p.request.flags)
        if used is Encapsulation.IPIP:
            return Step(MnInput.GAVE_UP, r.reason)
        c.adjust.no_encapsulations = c.adjust.no_encapsulations | {used}
        return retry(c, p, now, "fall back to IP-in-IP")
    if kind is Reaction.RETRY_WITHOUT_T:
        if c.config.reverse_tunnel is ReverseTunnel.REQUIRE or not (
            p.request.flags & RegistrationFlags.T
        ):
            return Step(MnInput.GAVE_UP, r.reason)
        c.adjust.reverse_tunnel = False
        return retry(c, p, now, "without reverse tunnelling")
    if kind is Reaction.RETRY_WITH_T:
        c.adjust.reverse_tunnel = True
        if p.request.flags & RegistrationFlags.T or not c.reverse_tunnel(p.attachment):
            # RFC 3024 §5.1: T only if the agent advertises it.
            return Step(MnInput.GAVE_UP, f"{r.reason}; the agent does not offer reverse tunnelling")
        return retry(c, p, now, "with reverse tunnelling")
    if kind is Reaction.RETRY_DIRECT_DELIVERY:
        if c.adjust.direct_delivery or not any(
            e.ext_type == EncapsulatingDeliveryExtension.TYPE for e in p.request.extensions
        ):
            return Step(MnInput.GAVE_UP, r.reason)
        c.adjust.direct_delivery = True
        return retry(c, p, now, "direct delivery style")
    if kind is Reaction.RETRY_AAA:
        return retry_aaa(c, r, msg, p, now, out)
    if kind is Reaction.NEW_CHALLENGE:
        if p.attachment.kind is not AttachmentKind.FOREIGN_AGENT:
            return Step(MnInput.GAVE_UP, r.reason)
        c.await_challenge = True
        return AwaitChallenge(p.attachment.interface, r.reason)
    return Step(MnInput.GAVE_UP, r.reason)  # pragma: no cover - no other reaction


def aaa_can_recover(c: RegistrationClient, msg: RegistrationReply, p: PendingRequest) -> bool:
    """A 131 (or a 67 to a request signed with an MN-FA key from AAA) the node may act
    on unauthenticated: it can ask the home AAA server."""
    if c.config.nai is None or c.config.mn_aaa_secret is None:
        return False
    if msg.code == ReplyCode.FA_MN_FAILED_AUTH:
        return signed_with_fa_key(c, p.request)
    return msg.code == ReplyCode.HA_MN_FAILED_AUTH


def signed_with_fa_key(c: RegistrationClient, request: RegistrationRequest) -> bool:
    fa = c.fa_key
    return fa is not None and any(
        isinstance(e, MobileForeignAuthExtension) and e.spi == fa[1].spi for e in request.extensions
    )


def retry_aaa(
    c: RegistrationClient,
    r: CodeReaction,
    msg: RegistrationReply,
    p: PendingRequest,
    now: float,
    out: list[Action],
) -> ReplyOutcome:
    """``Reaction.RETRY_AAA`` (see the module docstring)."""
    att = p.attachment
    if msg.code == ReplyCode.FA_MN_FAILED_AUTH and att.kind is AttachmentKind.FOREIGN_AGENT:
        # RFC 3957: the foreign agent lost the MN-FA key AAA gave (a restart): ask again
        c.fa_key = None
        c.counters.event("aaa_fa_key_fallbacks")
        out.append(Log("mn.aaa_retry", {"code": msg.code, "challenge": False, "new_key": True}))
        c.await_challenge = True
        return AwaitChallenge(att.interface, r.reason)
    challenge = next(
        (e.challenge for e in msg.extensions if isinstance(e, MobileForeignChallengeExtension)),
        None,
    )
    asked_key = any(isinstance(e, MNHAKeyGenNonceRequest) for e in p.request.extensions)
    fall_back = c.keys is not None and not asked_key
    if att.kind is AttachmentKind.COLOCATED and challenge is not None:
        c.home_challenge = challenge
    elif att.kind is AttachmentKind.FOREIGN_AGENT and fall_back:
        pass  # a fresh advertisement brings the challenge for MN-AAA
    else:
        return Step(MnInput.GAVE_UP, f"{r.reason}; nothing new to try")
    if fall_back:
        assert c.keys is not None
        c.keys.forget()  # RFC 3957: the next request asks for a new MN-HA key
        c.counters.event("aaa_key_fallbacks")
    c.counters.event("aaa_retries")
    out.append(
        Log(
            "mn.aaa_retry",
            {"code": msg.code, "challenge": challenge is not None, "new_key": fall_back},
        )
    )
    if att.kind is AttachmentKind.FOREIGN_AGENT:
        c.await_challenge = True
        return AwaitChallenge(att.interface, r.reason)
    return retry(c, p, now, "retry through AAA with the home agent's challenge")


def redirected(
    c: RegistrationClient,
    r: CodeReaction,
    msg: RegistrationReply,
    p: PendingRequest,
    now: float,
    out: list[Action],
    authenticated: bool,
) -> ReplyOutcome:
    """RFC 4433: register with the home agent of the Redirected HA extension (MN-HA
    covers it); a loop of redirections stops after ``redirect_limit``."""
    to = None
    for ext in msg.extensions:
        if isinstance(ext, DynamicHAExtension) and ext.subtype == DynamicHASubtype.REDIRECTED_HA:
            to = ext.home_agent
    if not authenticated or to is None or to.is_unspecified or to.is_multicast:
        return Step(MnInput.GAVE_UP, f"{r.reason}; no usable Redirected HA extension")
    if to == c.home_agent or c._broadcast(to):
        return Step(MnInput.GAVE_UP, f"{r.reason}; redirected to the same home agent")
    c.adjust.redirects += 1
    if c.adjust.redirects > c.config.redirect_limit:
        return Step(
            MnInput.GAVE_UP,
            f"{r.reason}; redirected {c.config.redirect_limit} times in a row (redirection loop)",
        )
    c.counters.event("redirects")
    out.append(Log("mn.home_agent", {"home_agent": to, "was": c.home_agent, "why": "redirected"}))
    c.home_agent = to
    return retry(c, p, now, f"redirected to home agent {to}")


def retry(c: RegistrationClient, p: PendingRequest, now: float, why: str) -> ReplyOutcome:
    if p.deregister:
        req = p.request
        return c._send_new(
            now,
            p.attachment,
            flags=req.flags,
            lifetime=0,
            care_of_address=req.care_of_address,
            deregister=True,
            registered=c.registered_at(p.attachment),
        )
    return Retry(why)


def accepted(
    c: RegistrationClient,
    msg: RegistrationReply,
    p: PendingRequest,
    now: float,
    current: Attachment | None,
    out: list[Action],
) -> ReplyOutcome:
    att = p.attachment
    c.last_registration = RegistrationRecord(
        now, p.request.care_of_address, now - p.last_sent, p.retransmissions, p.deregister
    )
    if p.deregister:
        out.append(Log("mn.deregistered", {"code": msg.code}))
        if c.binding is not None and (
            p.request.care_of_address == c.home_address
            or p.request.care_of_address == c.binding.care_of_address
        ):
            c.binding = None
        if c.keys is not None and c.binding is None:
            c.keys.forget()  # the home agent forgets it with the binding (RFC 3957)
            c.fa_key = None  # and the foreign agent with the visitor
        if c.config.assigned_address and c.binding is None:
            # RFC 2794 §2: the assigned address goes back to the pool with the binding.
            released = c.home_address
            c.home_address = c.config.home_address
            out.append(Log("mn.home_address_released", {"home_address": released}))
        if (
            c.binding is None
            and c.config.home_agent in UNASSIGNED_HOME_AGENT
            and c.home_agent != c.config.home_agent
        ):
            # RFC 4433: the home agent was assigned for this registration; the next
            # one asks again (the home AAA server may pick another)
            released_ha = c.home_agent
            c.home_agent = c.config.home_agent
            out.append(Log("mn.home_agent_released", {"home_agent": released_ha}))
        c.adjust = Corrections()
        if att.kind is AttachmentKind.HOME:
            return Step(MnInput.DEREGISTERED_AT_HOME, "deregistered")
        if c.binding is not None:
            return Step(MnInput.DEREGISTERED_KEEPING, "other binding deregistered")
        return Step(MnInput.DEREGISTERED_AWAY, "deregistered while away")
    if current is None or current.care_of_address != att.care_of_address:
        # (cannot happen: a new attachment replaces the outstanding request) -- register
        # where the node is now rather than believe an acceptance for elsewhere
        out.append(Log("mn.stale_acceptance", {"care_of_address": att.care_of_address}))
        return Retry("acceptance for a previous care-of address")
    requested = p.request.lifetime
    granted = min(msg.lifetime, requested)  # RFC 5944 §3.6.2.2: never more than asked
    if granted == 0:
        return Step(MnInput.BACKED_OFF, "accepted with lifetime 0")
    if c.home_address != msg.home_address and assignment(c, msg):
        # RFC 2794 §2: adopt the home address the home agent assigned.
        c.home_address = msg.home_address
        out.append(Log("mn.home_address_assigned", {"home_address": msg.home_address}))
    if c._awaiting_home_agent() and not (
        msg.home_agent.is_unspecified
        or msg.home_agent.is_multicast
        or msg.home_agent == IPv4Address("255.255.255.255")
    ):
        # RFC 4433: the home agent that accepted names itself; keep using it.
        out.append(Log("mn.home_agent", {"home_agent": msg.home_agent, "was": c.home_agent}))
        c.home_agent = msg.home_agent
    # The lifetime runs from when the request was sent (RFC 5944 §3.6.2.2): with
    # timestamps only the last transmission can be answered; with nonces any of the
    # identical transmissions may have been, so count from the first (conservative).
    start = p.last_sent if c._replay_method is ReplayMethod.TIMESTAMPS else p.first_sent
    if c._offer is not None and c.keys is not None:
        # RFC 3957: the key is the node's from now on, for the reply's Lifetime
        c.keys.install(c._offer, now)
        offer, c._offer = c._offer, None
        lifetime = offer.lifetime
        out.append(Log("mn.key_installed", {"spi": offer.association.spi, "lifetime": lifetime}))
        c.counters.event("aaa_keys")
    if att.kind is AttachmentKind.FOREIGN_AGENT and c.keys is not None:
        c._take_fa_key(msg, att, out)  # RFC 3957 MN-FA key
    if granted >= INFINITE_LIFETIME:
        expires = renew = None
    else:
        expires = start + granted
        renew = start + granted * c.config.renew_fraction
    flags = p.request.flags
    c.binding = Binding(
        care_of_address=att.care_of_address,
        attachment=att,
        granted=granted,
        registered_at=now,
        expires=expires,
        renew_at=renew,
        encapsulation=encapsulation_of(flags),
        reverse_tunnel=bool(flags & RegistrationFlags.T),
        identification=p.request.identification,
    )
    c.adjust.corrections = 0
    c.adjust.backoffs = 0
    c.adjust.redirects = 0
    c.home_challenge = None  # used (the home agent spent it)
    after: list[Action] = [
        log(
            "mn.registered",
            {
                "care_of_address": att.care_of_address,
                "granted": granted,
                "requested": requested,
                "code": msg.code,
            },
        )
    ]
    # Tell the I/O layer only when what it must set up changes: a renewal with the same
    # agent (whose Agent record is refreshed by every advertisement) must not make it
    # tear down and rebuild the node's routes, which would drop path-MTU state and
    # leave a moment without a default route.
    use = c._use_action(att, flags)
    if c.announced != use:
        c.announced = use
        after.append(use)
    return Step(MnInput.ACCEPTED, "registration accepted", tuple(after))
