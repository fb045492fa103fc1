"""The foreign agent's AAA half (issue 10/11): a request held for the home AAA server and
its answer (RFC 4721), copies of a held request, MN-FA keys from AAA (RFC 3957) and the
accounting records of each visitor's session (RFC 2866). Functions of the agent, as
:mod:`mip4.core.fa_reply` and :mod:`mip4.core.fa_revoke` are: they use its tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mip4.aaa.messages import (
    AaaAnswer,
    AaaRequest,
    AaaResult,
    AccountingRecord,
    AcctStatus,
    Authorization,
    TerminateCause,
)
from mip4.security.auth import (
    AuthenticationError,
)
from mip4.security.sa import SecurityAssociation
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_auth import GeneralizedAuthExtension
from mip4.wire.extensions import (
    MobileForeignChallengeExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.messages import (
    RegistrationRequest,
)

from .actions import (
    Action,
    Log,
)
from .bindings import (
    Visitor,
)
from .fa_checks import FaRequest
from .registration import RegistrationDenied

if TYPE_CHECKING:
    from .foreign_agent import ForeignAgent

#: RFC 4721 §3.2 / §10: the home AAA server did not authenticate the mobile node (its
#: Access-Reject): "mobile node failed AAA authentication". 67 ("mobile node failed
#: authentication", RFC 5944 §3.4) is the foreign agent's own MN-FA check.
AAA_REJECT_CODE = ReplyCode.FA_MN_FAILED_AAA_AUTH
#: No AAA server answered within the retransmission and failover bounds: the foreign
#: agent lacks a resource it needs to process the request, RFC 5944 §3.4 code 66
#: "insufficient resources" -- transient, so the node backs off and retries (88 means the
#: home agent is unreachable, which nothing here shows).
AAA_TIMEOUT_CODE = ReplyCode.FA_INSUFFICIENT_RESOURCES


@dataclass(frozen=True)
class MnFaOffer:
    """An MN-FA key the home AAA server gave for a relayed request (RFC 3957): the reply
    to the node carries its nonce (extension 41) and is signed with it (MN-FA)."""

    association: SecurityAssociation = field(repr=False)
    nonce: bytes = field(repr=False)
    #: Session-Timeout, seconds (``None``: no end of its own)
    lifetime: int | None
    #: the SPI of the request's MN-AAA extension
    aaa_spi: int


@dataclass
class AccountingSession:
    """One visitor's accounting session (RFC 2866): Start .. Interim* .. Stop."""

    session_id: str
    started: float
    next_interim: float | None
    radius_class: bytes | None = None


def ask_aaa(fa: ForeignAgent, ctx: FaRequest) -> list[Action]:
    """Hold the request and ask the home AAA server (an ``AaaRequest`` action); the
    ``AaaAnswer`` event with the same ``request_id`` decides."""
    rid = fa._next_request_id
    fa._next_request_id += 1
    try:
        aaa = AaaRequest.from_registration(rid, ctx.request, nas_address=ctx.link.address)
    except AuthenticationError as e:
        raise RegistrationDenied(AAA_REJECT_CODE, f"MN-AAA not usable: {e}") from None
    if ctx.challenge is not None:
        fa._advertiser.spend_challenge(ctx.challenge)  # RFC 4721 §3.2: no replays
    fa._aaa_waiting[rid] = ctx
    fa._counters.event("aaa_requests")
    return [
        aaa,
        Log(
            "fa.aaa_request",
            {"request_id": rid, "nai": aaa.nai, "home_address": ctx.request.home_address},
        ),
    ]


def duplicate_of_held(fa: ForeignAgent, ctx: FaRequest) -> bool:
    """Whether ``ctx`` is a copy of a request held for the home AAA server: heard on
    the same link, with the same NAI (or home address), Identification, challenge and
    MN-AAA authenticator.

    Such a copy is a retransmission (RFC 5944 §3.6.3: with nonces the node resends the
    same request; the network may duplicate it too), not a second use of the challenge:
    it asks for the very registration the agent is already deciding. It is dropped and
    counted (``duplicate_request``) rather than denied with 106 -- the challenge it
    answers was spent by its own first copy (RFC 4721 §3.2), so 106 would make the node
    abandon a registration that is about to succeed. No second answer is needed
    either: the one reply the agent relays for the held request carries the same home
    address and Identification, which is all the node matches a reply by (RFC 5944
    §3.6.2.1), so it answers every copy. A challenge replayed once the held request
    is decided (relayed or denied) is no longer held and gets 106 as before, and so
    does another request (another Identification or authenticator) answering the same
    challenge while the first is held."""
    key = held_key(ctx.request)
    if key is None:
        return False
    return any(
        held.link.interface == ctx.link.interface and held_key(held.request) == key
        for held in fa._aaa_waiting.values()
    )


def on_aaa_answer(fa: ForeignAgent, ctx: FaRequest, answer: AaaAnswer) -> list[Action]:
    fa._counters.event(f"aaa_{answer.result.value}")
    if answer.result is AaaResult.REJECT:
        raise RegistrationDenied(
            AAA_REJECT_CODE, answer.reply_message or f"Access-Reject from {answer.server}"
        )
    if answer.result is AaaResult.TIMEOUT:
        raise RegistrationDenied(AAA_TIMEOUT_CODE, "no answer from the home AAA server")
    out = fa._relay_request(ctx, answer.authorization)
    offer = mn_fa_offer(fa, ctx, answer.authorization)
    if offer is not None:
        fa._mn_fa_offers[ctx.pending_key] = offer
    return out


def mn_fa_offer(fa: ForeignAgent, ctx: FaRequest, authz: Authorization | None) -> MnFaOffer | None:
    """RFC 3957: the MN-FA key the Access-Accept gives for a request that asked for one
    (``None``: not asked, or none given)."""
    if authz is None or not ctx.wants_mn_fa_key:
        return None
    if authz.mn_fa_key is None or authz.mn_fa_spi is None or not authz.mn_fa_key_nonce:
        fa._counters.event("aaa_mn_fa_key_missing")
        return None
    try:
        sa = SecurityAssociation(spi=authz.mn_fa_spi, key=authz.mn_fa_key)
    except ValueError:
        fa._counters.event("aaa_bad_key")
        return None
    aaa_spi = next(
        (e.spi for e in ctx.request.extensions if isinstance(e, GeneralizedAuthExtension)), 0
    )
    return MnFaOffer(sa, authz.mn_fa_key_nonce, authz.session_timeout, aaa_spi)


def forget_mn_fa_key(fa: ForeignAgent, visitor: Visitor) -> None:
    """The visitor is gone: an MN-FA key learnt from AAA for it goes too."""
    for node in (visitor.nai, visitor.home_address):
        if node is None:
            continue
        spi = fa._tables.mn_fa_learnt.pop(node, None)
        if spi is not None:
            fa.security_associations.remove(node, spi)
            fa._counters.event("aaa_mn_fa_keys_forgotten")


def accounting_record(
    fa: ForeignAgent,
    visitor: Visitor,
    session: AccountingSession,
    status: AcctStatus,
    now: float,
    cause: TerminateCause | None = None,
) -> AccountingRecord:
    """Octet and packet counts are the data plane's: the I/O shell fills them in."""
    rid = fa._next_request_id
    fa._next_request_id += 1
    return AccountingRecord(
        request_id=rid,
        status=status,
        session_id=session.session_id,
        nai=visitor.nai or str(visitor.home_address),
        home_address=visitor.home_address,
        care_of_address=visitor.care_of_address,
        home_agent=visitor.home_agent,
        nas_address=fa._link_address(visitor.interface),
        session_time=int(now - session.started),
        terminate_cause=cause,
        radius_class=session.radius_class,
    )


def accounting_start(fa: ForeignAgent, visitor: Visitor, now: float) -> list[Action]:
    """Start when a visitor's registration is first accepted (re-registrations keep
    the session)."""
    if not fa.config.accounting or visitor.home_address in fa._sessions:
        return []
    fa._session_seq += 1
    interval = fa.config.accounting_interval
    session = AccountingSession(
        # unique per agent (its first address) and across restarts (start time)
        session_id=f"{fa.config.links[0].address}-{int(now)}-{fa._session_seq}",
        started=now,
        next_interim=now + interval if interval is not None else None,
    )
    fa._sessions[visitor.home_address] = session
    return [accounting_record(fa, visitor, session, AcctStatus.START, now)]


def accounting_stop(
    fa: ForeignAgent, visitor: Visitor, now: float, cause: TerminateCause
) -> list[Action]:
    session = fa._sessions.pop(visitor.home_address, None)
    if session is None:
        return []
    return [accounting_record(fa, visitor, session, AcctStatus.STOP, now, cause)]


def held_key(request: RegistrationRequest) -> tuple[object, ...] | None:
    """What identifies a request held for the home AAA server: NAI (or home address),
    Identification, challenge and MN-AAA authenticator (``None``: no MN-AAA)."""
    nai: bytes | None = None
    challenge: bytes | None = None
    authenticator: bytes | None = None
    for e in request.extensions:
        if isinstance(e, MobileNodeNAIExtension):
            nai = e.nai
        elif isinstance(e, MobileForeignChallengeExtension):
            challenge = e.challenge
        elif isinstance(e, GeneralizedAuthExtension):
            authenticator = e.authenticator
    if authenticator is None:
        return None
    who = nai if nai is not None else request.home_address
    return (who, request.identification, challenge, authenticator)
