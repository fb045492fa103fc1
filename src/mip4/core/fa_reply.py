"""The foreign agent's reply half: relaying home agents' replies and answering mobile
nodes (RFC 5944 §3.7.2.3, §3.7.3; RFC 2794 §2 for NAI nodes; RFC 3543 §3.2).

Theory of operation
-------------------
Split out of :mod:`mip4.core.foreign_agent`, which keeps the coordinating role and calls
in here with itself (``fa``) as the first argument. Nothing here holds state: every
function reads and changes the agent's tables.

* :func:`relay_reply` -- a matched Registration Reply: FA-HA check (68), strip FA-HA and
  what follows MN-HA, MN-FA appended, the visitor entry made, refreshed or removed
  (``InstallVisitor`` / ``RemoveVisitor``), accounting started or stopped.
* :func:`on_unreachable` -- ICMP Destination Unreachable about a relayed request: 80, 81,
  82 or 88 (:func:`unreachable_code`) to each pending mobile node it concerns.
* :func:`deny`, :func:`deny_request`, :func:`reply_path_denial` -- the agent's own
  denials, request side (before relaying) and reply side (68, 71, 78, 80--88).
* :func:`send_to_mobile_node` -- the reply's addressing (home address or link-layer
  address, its UDP port, its link) and MN-FA signing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.aaa.messages import (
    TerminateCause,
)
from mip4.security.auth import (
    FA_HA,
    MN_HA,
    AuthenticationError,
    append_extensions,
    find_auth_extension,
    sign,
    strip_after,
    verify,
)
from mip4.security.sa import lookup_for
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_keys import AAA_SUBTYPE, AAAKeyGenNonce, MNFAKeyGenNonceReply
from mip4.wire.ext_keys import ReplayMethod as KeyReplayMethod
from mip4.wire.ext_mobility import RevocationSupportExtension, RevocationSupportFlags
from mip4.wire.extensions import (
    MobileForeignAuthExtension,
)
from mip4.wire.messages import (
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
)

from . import fa_aaa
from .actions import (
    DEBUG,
    INFO,
    MIP_PORT,
    Action,
    InstallVisitor,
    Log,
    RemoveVisitor,
    SendUdp,
)
from .bindings import (
    PendingRegistration,
    Visitor,
)
from .events import (
    DestinationUnreachable,
    UdpReceived,
)
from .fa_checks import FaRequest, bad_unicast
from .fa_state import VISITOR_TRANSITIONS, VisitorInput, VisitorState, make_record, new_visitor
from .registration import Discard, RegistrationDenied
from .timers import expiry

if TYPE_CHECKING:
    from .fa_aaa import MnFaOffer
    from .foreign_agent import ForeignAgent

#: a key Lifetime of all ones: no end of its own (RFC 3957)
KEY_LIFETIME_NO_END = 0xFFFFFFFF

__all__ = [
    "ReplyPath",
    "deny",
    "deny_request",
    "on_unreachable",
    "relay_reply",
    "reply_path_denial",
    "send_to_mobile_node",
    "unreachable_code",
]

_I, _P, _R, _RR = (
    VisitorState.IDLE,
    VisitorState.PENDING,
    VisitorState.REGISTERED,
    VisitorState.REREGISTERING,
)
_FLAG_D = int(RegistrationFlags.D)
#: the accepting codes by value (``ReplyCode(code)`` per reply costs an enum call)
_ACCEPTED = {int(c): c for c in (ReplyCode.ACCEPTED, ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS)}
_ZERO_ADDRESS = IPv4Address(0)


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


@dataclass
class ReplyPath:
    """Context of a reply-path decision (a reply from the home agent, a timeout, an ICMP
    error): the denial goes to the pending mobile node."""

    pending: PendingRegistration
    #: the home agent's reply, or ``None`` (timeout, ICMP error, undecodable reply)
    reply: RegistrationReply | None = None
    #: why the reply could not be decoded (71)
    malformed: str | None = None


def _reply_code(code: int) -> ReplyCode:
    try:
        return ReplyCode(code)
    except ValueError:
        return ReplyCode.HA_UNSPECIFIED if code >= 128 else ReplyCode.FA_UNSPECIFIED


def relay_reply(
    fa: ForeignAgent, event: UdpReceived, now: float, reply: RegistrationReply, ctx: ReplyPath
) -> list[Action]:
    pending = ctx.pending
    by_nai = pending.nai is not None and fa._nai_pending.get(pending.nai) is pending
    # RFC 2794 §2: a request for 0.0.0.0 becomes a visitor at the address assigned.
    hoa = reply.home_address if by_nai else pending.home_address
    # the FA-HA SA of the reply's source, else of the home agent the request went to
    # (one lookup when they are the same address, as usual)
    peer = event.src
    fa_sa = fa._fa_ha_sa(peer)
    if fa_sa is None and int(pending.home_agent) != int(peer):
        peer = pending.home_agent
        fa_sa = fa._fa_ha_sa(peer)
    theirs: RevocationSupportExtension | None = None
    if fa_sa is not None:
        # RFC 5944 §3.7.3.1: with an FA-HA SA, the reply MUST carry a valid FA-HA.
        try:
            verify(reply, FA_HA, lookup_for(fa.security_associations, peer))
        except AuthenticationError as e:
            raise RegistrationDenied(ReplyCode.FA_HA_FAILED_AUTH, str(e)) from None
        if fa.config.revocation:
            # RFC 3543 §3.2: the home agent's answer to our offer (FA-HA covers it).
            for ext in reply.extensions:
                if isinstance(ext, RevocationSupportExtension):
                    theirs = ext
    # RFC 5944 §3.7.3.2: remove FA-HA and whatever follows MN-HA before relaying.
    try:
        index = find_auth_extension(reply, MN_HA)
        # nothing after MN-HA (as usual without FA-HA): the reply itself, no copy
        last = index == len(reply.extensions) - 1 and reply.raw
        out = reply if last else strip_after(reply, index)
    except AuthenticationError:
        out = reply
        for i, ext in enumerate(reply.extensions):
            if ext.ext_type == FA_HA:
                out = strip_after(reply, i - 1)
                break
    code = reply.code
    accepted = code in (ReplyCode.ACCEPTED, ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS)
    # state_of(hoa) without looking the pending entry up: it is this one (under hoa, or
    # under the NAI for a request for 0.0.0.0)
    registered = fa._visitors.get(hoa) is not None
    before = _RR if registered else _P
    if accepted and pending.requested_lifetime and reply.lifetime:
        inp = VisitorInput.ACCEPTED
    elif accepted:
        inp = VisitorInput.DEREGISTERED
    else:
        inp = VisitorInput.DENIED
    # What can fail comes before any change: the transition check, the outgoing reply.
    VISITOR_TRANSITIONS.check(before, inp)
    offer = None
    if fa._mn_fa_offers:
        offer = fa._mn_fa_offers.pop(pending.nai if by_nai and pending.nai else hoa, None)
    if offer is not None and inp is VisitorInput.ACCEPTED:
        # RFC 3957: the MN-FA Key Generation Nonce Reply after MN-HA, and MN-FA computed
        # with the key AAA gave (the node derives it from the nonce and checks it)
        out = sign(
            append_extensions(out, _nonce_reply(offer)),
            MobileForeignAuthExtension,
            offer.association,
        )
        sent = send_to_mobile_node(fa, replace(pending, mn_fa_spi=None), out)
    else:
        offer = None
        sent = send_to_mobile_node(fa, pending, out)
    fa._drop_pending(pending)
    actions: list[Action] = []
    log_level = INFO
    if inp is VisitorInput.ACCEPTED:
        # The lifetime runs from when the request was relayed (as the MN counts it).
        lifetime = min(reply.lifetime, pending.requested_lifetime)
        visitor = new_visitor(
            hoa,  # home_address
            pending.interface,  # interface
            pending.link_address,  # link_address
            pending.ip_source,  # ip_source
            pending.ip_destination,  # ip_destination
            pending.udp_source_port,  # udp_source_port
            reply.home_agent,  # home_agent
            pending.care_of_address,  # care_of_address
            pending.identification,  # identification
            pending.requested_lifetime,  # requested_lifetime
            lifetime,  # lifetime
            expiry(pending.relayed_at, lifetime),  # expires
            pending.flags,  # flags
            pending.reverse_tunnel,  # reverse_tunnel
            pending.encapsulation,  # encapsulation
            pending.encapsulating_delivery,  # encapsulating_delivery
            pending.nai,  # nai
            offer.association.spi if offer is not None else pending.mn_fa_spi,  # mn_fa_spi
            theirs.timestamp if theirs is not None else None,  # revocation_timestamp
            (  # revocation_inform
                theirs is not None
                and fa.config.revocation_inform
                and bool(theirs.flags & RevocationSupportFlags.I)
            ),
        )
        old = fa._visitors.put(visitor)
        if old is not None and offer is None and same_visitor(old, visitor):
            # a renewal that leaves the visitor as it was: its log line is routine (debug);
            # this counter keeps it visible in ``mip4 status``
            log_level = DEBUG
            fa._counters.event("renewal_unchanged")
        if offer is not None:
            _learn_mn_fa_key(fa, visitor, offer)
        actions.extend(fa_aaa.accounting_start(fa, visitor, now))
        if int(visitor.flags) & _FLAG_D:  # visitor.colocated
            # D: the mobile node decapsulates at its co-located care-of address and
            # registered through us only because we asked (R bit, RFC 5944 §3.1): we
            # keep the visitor entry but deliver nothing for it.
            if old is not None and not old.colocated:
                actions.append(RemoveVisitor(hoa, old.interface))
        else:
            actions.append(
                make_record(
                    InstallVisitor,
                    {
                        "home_address": hoa,
                        "interface": visitor.interface,
                        "link_address": visitor.link_address,
                        "home_agent": visitor.home_agent,
                        "care_of_address": visitor.care_of_address,
                        "reverse_tunnel": visitor.reverse_tunnel,
                        "encapsulation": visitor.encapsulation,
                        "expires": visitor.expires,
                        "encapsulating_delivery": visitor.encapsulating_delivery,
                    },
                )
            )
        accepted_code = _ACCEPTED.get(code)  # (ACCEPTED is 0: falsy, hence no ``or``)
        fa._counters.accept(ReplyCode(code) if accepted_code is None else accepted_code)
        if fa.handoff is not None:  # RFC 4881: registration complete, tunnel down
            actions.extend(fa.handoff.registered(hoa, now))
            if visitor.link_address is None and not visitor.colocated:
                # pre-registered: the node is not on our link yet
                actions.extend(fa.handoff.expect(hoa, now))
    elif inp is VisitorInput.DEREGISTERED:
        old = fa._visitors.remove(hoa)
        if old is not None and not old.colocated:
            actions.append(RemoveVisitor(hoa, old.interface))
        if old is not None:
            fa_aaa.forget_mn_fa_key(fa, old)
        if old is not None:
            actions.extend(fa_aaa.accounting_stop(fa, old, now, TerminateCause.USER_REQUEST))
        fa._counters.accept(ReplyCode(code))
    else:
        fa._counters.deny(_reply_code(code))
    fa._counters.event("relayed_replies")
    actions.append(sent)
    if by_nai:  # a pending entry under hoa may have been there all along
        after = fa.state_of(hoa)
    elif inp is VisitorInput.ACCEPTED:  # visitor put, its pending entry dropped
        after = _R
    elif inp is VisitorInput.DEREGISTERED:  # both gone
        after = _I
    else:  # the pending entry dropped, a registration stands
        after = _R if registered else _I
    VISITOR_TRANSITIONS.confirm(before, inp, after)
    if log_level < fa.log_level:  # a line nobody writes: not built (ForeignAgent.log_level)
        return actions
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
            log_level,
        )
    )
    return actions


def same_visitor(old: Visitor, new: Visitor) -> bool:
    """``new`` renews ``old`` without changing it: every field but the expiry, the
    Identification and the home agent's revocation clock (which move on every renewal)."""
    # (the addresses: the same object first -- a visitor list shares them -- then equal)
    a, b = old.care_of_address, new.care_of_address
    if a is not b and a != b:
        return False
    a, b = old.home_agent, new.home_agent
    if a is not b and a != b:
        return False
    a, b = old.ip_source, new.ip_source
    if a is not b and a != b:
        return False
    a, b = old.ip_destination, new.ip_destination
    if a is not b and a != b:
        return False
    return (
        old.lifetime == new.lifetime
        and old.requested_lifetime == new.requested_lifetime
        and old.interface == new.interface
        and old.link_address == new.link_address
        and old.udp_source_port == new.udp_source_port
        and old.flags == new.flags
        and old.reverse_tunnel == new.reverse_tunnel
        and old.encapsulation is new.encapsulation
        and old.encapsulating_delivery == new.encapsulating_delivery
        and old.nai == new.nai
        and old.mn_fa_spi == new.mn_fa_spi
        and (old.revocation_timestamp is None) == (new.revocation_timestamp is None)
        and old.revocation_inform == new.revocation_inform
    )


def _nonce_reply(offer: MnFaOffer) -> MNFAKeyGenNonceReply:
    """RFC 3957: the Generalized MN-FA Key Generation Nonce Reply, AAA subtype."""
    lifetime = KEY_LIFETIME_NO_END if offer.lifetime is None else offer.lifetime
    sa = offer.association
    body = AAAKeyGenNonce(
        aaa_spi=offer.aaa_spi,
        node_spi=sa.spi,
        algorithm=int(sa.algorithm),
        replay_method=KeyReplayMethod.TIMESTAMPS,
        nonce=offer.nonce,
    )
    return MNFAKeyGenNonceReply(AAA_SUBTYPE, lifetime, body)


def _learn_mn_fa_key(fa: ForeignAgent, visitor: Visitor, offer: MnFaOffer) -> None:
    """The accepted visitor's MN-FA key from AAA replaces any earlier one (RFC 3957); it
    is kept under the NAI when the node sent one, and goes with the visitor."""
    fa_aaa.forget_mn_fa_key(fa, visitor)
    node: IPv4Address | str = visitor.nai if visitor.nai is not None else visitor.home_address
    for sa in fa.security_associations.for_peer(node):
        if sa.spi == offer.association.spi:
            fa.security_associations.remove(node, sa.spi)
    fa.security_associations.add(node, offer.association)
    fa._tables.mn_fa_learnt[node] = offer.association.spi
    fa._counters.event("aaa_mn_fa_keys")


def on_unreachable(fa: ForeignAgent, event: DestinationUnreachable, now: float) -> list[Action]:
    """An ICMP error about a relayed request: 80/81/82/88 to the mobile node."""
    targets: list[PendingRegistration] = []
    data = event.original_payload
    if len(data) >= 24 and data[0] == RegistrationRequest.TYPE:
        # The quoted request names the mobile node and its Identification.
        hoa = IPv4Address(data[4:8])
        ident = int.from_bytes(data[16:24], "big")
        p = fa._pending.get(hoa)
        if p is not None and p.identification == ident:
            targets.append(p)
    elif event.original_dport in (None, MIP_PORT):
        # RFC 792 quotes only 8 bytes of the datagram: every request pending at that
        # destination is affected.
        targets = [
            p
            for p in [*fa._pending, *fa._nai_pending.values()]
            if p.home_agent == event.original_dst
        ]
    if not targets:
        raise Discard("unmatched_icmp_error", f"about {event.original_dst}")
    code = unreachable_code(event.code)
    actions: list[Action] = []
    for p in targets:
        fa._drop_pending(p)
        actions.extend(
            reply_path_denial(
                fa,
                ReplyPath(p),
                RegistrationDenied(code, f"ICMP unreachable code {event.code} from {event.src}"),
                VisitorInput.UNREACHABLE,
            )
        )
    return actions


# -- denials --------------------------------------------------------------------------


def deny(
    fa: ForeignAgent, ctx: FaRequest | ReplyPath | None, denial: RegistrationDenied, now: float
) -> list[Action]:
    if isinstance(ctx, ReplyPath):
        fa._drop_pending(ctx.pending)
        return reply_path_denial(fa, ctx, denial, VisitorInput.DENIED)
    if isinstance(ctx, FaRequest):
        return deny_request(fa, ctx, denial)
    fa._counters.discard("denied_without_context")  # pragma: no cover - defensive
    return [Log("fa.discard", {"reason": "denied_without_context", "detail": str(denial)})]


def deny_request(fa: ForeignAgent, ctx: FaRequest, denial: RegistrationDenied) -> list[Action]:
    """RFC 5944 §3.7.2.3: the agent answers the mobile node itself; the request is not
    relayed and no state changes."""
    req, ev = ctx.request, ctx.event
    fa._counters.deny(denial.code)
    # RFC 5944 §3.7.2.3: the Lifetime SHOULD be copied from the request, except for 69,
    # whose reply carries the longest lifetime this agent accepts (denial.lifetime).
    reply = RegistrationReply(
        code=int(denial.code),
        lifetime=denial.lifetime if denial.lifetime is not None else req.lifetime,
        home_address=req.home_address,
        home_agent=req.home_agent,
        identification=req.identification,  # RFC 5944 §3.7.2.3: copied from the request
    )
    if ctx.mn_fa_sa is not None:
        reply = sign(reply, MobileForeignAuthExtension, ctx.mn_fa_sa)
    dst = req.home_address if bad_unicast(ev.src) else ev.src
    if dst == _ZERO_ADDRESS:
        # RFC 2794 §2: a node without an address yet is reached at its link-layer address.
        dst = IPv4Address("255.255.255.255")
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


def reply_path_denial(
    fa: ForeignAgent,
    ctx: ReplyPath,
    denial: RegistrationDenied,
    inp: VisitorInput,
) -> list[Action]:
    """Deny a pending request from the reply side (68, 71, 78, 80--88): the pending
    entry is already gone; an existing registration stands."""
    p = ctx.pending
    hoa = p.home_address
    before = _RR if fa._visitors.get(hoa) is not None else _P
    VISITOR_TRANSITIONS.confirm(before, inp, fa.state_of(hoa))
    fa._counters.deny(denial.code)
    # RFC 5944 §3.7.2.3: the Lifetime SHOULD be copied from the request.
    reply = RegistrationReply(
        code=int(denial.code),
        lifetime=p.requested_lifetime,
        home_address=hoa,
        home_agent=p.home_agent,
        identification=p.identification,
    )
    return [
        send_to_mobile_node(fa, p, reply),
        Log(
            "fa.registration_denied",
            {
                "home_address": hoa,
                "home_agent": p.home_agent,
                "care_of_address": p.care_of_address,
                "code": int(denial.code),
                "lifetime": reply.lifetime,
                "reason": denial.reason,
            },
        ),
    ]


def send_to_mobile_node(
    fa: ForeignAgent, pending: PendingRegistration | Visitor, reply: RegistrationReply
) -> SendUdp:
    """RFC 5944 §3.7.3.2: to the mobile node's home address and UDP port, at its
    link-layer address (no ARP), on its link; MN-FA appended when it used one."""
    if pending.mn_fa_spi is not None:
        peer: IPv4Address | str = pending.home_address
        if pending.nai is not None and fa.security_associations.for_peer(pending.nai):
            peer = pending.nai
        sa = fa.security_associations.get(peer, pending.mn_fa_spi)
        if sa is not None:
            reply = sign(reply, MobileForeignAuthExtension, sa)
    src = pending.ip_destination
    if bad_unicast(src):  # (multicast included)
        link = fa.config.link(pending.interface)
        if link is not None:
            src = link.address
    dst = pending.ip_source
    if bad_unicast(dst):
        # RFC 2794 §2: a node still without an address is reached at its link-layer
        # address; the IP destination is the address assigned (or all ones).
        dst = pending.home_address
        if dst == _ZERO_ADDRESS:
            dst = reply.home_address
        if dst == _ZERO_ADDRESS:
            dst = IPv4Address("255.255.255.255")
    return make_record(
        SendUdp,
        {
            "dst": dst,
            "payload": reply.raw or reply.encode(),
            "dport": pending.udp_source_port,
            "sport": MIP_PORT,
            "src": src,
            "interface": pending.interface,
            "link_dst": pending.link_address,
            "ttl": None,
        },
    )
