"""The foreign agent: agent advertisement, registration relay, visitor list (RFC 5944 §2.3,
§3.7, §4.2.2; reverse tunnelling RFC 3024 §3; challenges RFC 4721 §3).

Theory of operation
-------------------
:class:`ForeignAgent` is a sans-IO state machine driven by ``handle(event, now)``,
``handle_timer(now)`` and ``next_deadline()``; every side effect comes out as an action.

The engine is the coordinator of five parts, each in its own module:

* :mod:`mip4.core.advertiser` -- Agent Advertisements on each visited link
  (:class:`VisitedLink`): periodic ones from the first ``handle_timer`` call
  (``next_deadline()`` is 0.0 until then) and at once after a ``LinkUp``, none after a
  ``LinkDown``; the §2.3.2 sequence numbers; solicitation answers; the RFC 4721 challenge
  ring. Flags advertise only what this agent does: F always, R, H, M, G, T from the
  configuration, B while the visitor list is full (:mod:`mip4.core.fa_config`).
* :mod:`mip4.core.fa_checks` -- the request checks, in RFC order.
* :mod:`mip4.core.bindings` -- the visitor list and the pending list.
* :mod:`mip4.core.fa_reply` -- the reply half, moved out of this module: relaying a home
  agent's reply (``relay_reply``), ICMP errors about relayed requests (``on_unreachable``,
  ``unreachable_code``, re-exported here), the agent's own denials on the request and
  reply sides (``deny``, ``deny_request``, ``reply_path_denial``) and addressing a reply
  to a mobile node (``send_to_mobile_node``); ``ReplyPath`` is the reply-side context.
* :mod:`mip4.core.fa_aaa` -- the AAA half, moved out of this module: holding a request
  for the home AAA server and acting on its answer, copies of a held request, MN-FA keys
  from AAA, and the accounting records of each visitor's session.
* :mod:`mip4.core.fa_revoke` -- revocation handling, moved out of this module:
  ``revoke_visitor``, ``on_revocation_message`` and ``relay_source``. ``revoke()`` and the
  ``revocations`` view stay here.

The moved parts are functions that take the agent as their first argument (``fa``); the
engine dispatches events, runs timers and keeps the tables, and calls into them.

**Relaying requests** (RFC 5944 §3.7.2). A Registration Request heard on a visited link goes
through :data:`~mip4.core.fa_checks.FA_REQUEST_PIPELINE`; a check raises
:class:`~mip4.core.registration.RegistrationDenied` with an FA code (64--127) and the agent
answers the mobile node itself (the checks are listed in :mod:`mip4.core.fa_checks`).
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

**The home AAA server** (RFC 4721 §3.2, with ``aaa``): a request that passes the checks
and carries MN-AAA is held (an ``AaaRequest`` action) until the ``AaaAnswer`` event
decides: Accept relays it, Reject answers 108, no answer 66. A retransmitted copy of a
held request (same NAI or home address, Identification, challenge and MN-AAA
authenticator, on the same link) is dropped and counted ``duplicate_request``: its
challenge was spent by its first copy, and the one reply relayed for that copy answers it.
RFC 3957 MN-FA keys: when the held request asks for one (extension 40, AAA subtype) and
the Access-Accept carries it (``Authorization.mn_fa_*``), the agent keeps it until the home
agent's reply; an accepted reply goes to the node with the MN-FA Key Generation Nonce Reply
(41) and MN-FA computed with the key, and the key becomes the node's MN-FA association here
(under its NAI), checked on its later requests and removed with the visitor. A request that
asks for a new key with MN-AAA needs no MN-FA when the only association is one learnt so.

**Timers**: pending entries older than ``pending_timeout`` are answered with 78
(registration timeout); visitors whose granted lifetime ran out are removed silently
(RFC 5944 §3.7: a foreign agent MUST NOT send a request or reply because a lifetime
expired). An ICMP Destination Unreachable about a relayed request
(:class:`~mip4.core.events.DestinationUnreachable`) answers the pending mobile node with
80 (network), 81 (host), 82 (port) or 88 (other).

**Revocation** (RFC 3543, :mod:`mip4.core.revocation`). With ``revocation`` on, the agent
advertises X and, towards home agents it shares an FA-HA SA with, puts a Revocation
Support extension before FA-HA in relayed requests; the home agent's answering extension
(under the reply's FA-HA) makes the visitor revocable. A home agent's revocation
(authenticated, not a replay) removes the visitor, ends its accounting session
(ADMIN_RESET), informs the mobile node when the I bit asks for it (a Registration Reply
with 129, Lifetime 0 and its registration's Identification) and is acknowledged. The
operator's ``revoke(home_address, now)`` and a visited link going down revoke visitors
here (the node is told 65 when its link is still up) and tell their home agents.

**Handovers** (RFC 4881, RFC 4988, :mod:`mip4.core.fa_handoff`; only when the agent is
built with ``handoff=HandoffSettings(...)``). Handoff Requests/Replies (16/17) from other
agents and a visitor's Fast Binding Update (20) go to the handoff part before anything
else; a link-layer source trigger (:class:`~mip4.core.events.HandoffTrigger`) starts a
post-registration handoff for a visitor. A visitor's Registration Request addressed to
another agent is a pre-registration, relayed to that agent (and its reply back) by the
handoff part. A Registration Request from a node an edge tunnel (or a pre-registration)
waits for is its arrival (the buffer is flushed to it); an accepted registration through
this agent tears the tunnel down. Without the settings these messages are discarded as
``unexpected_message``, as by an agent that does not implement them.

**Interface**::

    fa = ForeignAgent(ForeignAgentConfig(links=(VisitedLink("wlan0", addr),)), sas, offset)
    fa.handle(event, now) -> list[Action]   # UdpReceived, IcmpReceived, LinkUp, LinkDown,
                                            # DestinationUnreachable
    fa.handle_timer(now) -> list[Action]    # advertisements, 78 timeouts, visitor expiry,
                                            # revocation retransmissions
    fa.revoke(home_address, now) -> list[Action]                  # operator call
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

import dataclasses
import random
from collections.abc import Mapping
from ipaddress import IPv4Address

from mip4.aaa.messages import (
    AaaAnswer,
    AccountingAnswer,
    AcctStatus,
    Authorization,
    TerminateCause,
)
from mip4.security.auth import (
    GENERALIZED,
    append_extensions,
    sign,
    strip_for_relay,
)
from mip4.security.sa import SecurityAssociation, SecurityAssociationStore
from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError, UnknownExtensionError
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.icmp import AgentAdvertisement
from mip4.wire.messages import (
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    decode_message,
)

from . import fa_aaa, fa_kernel, fa_reply, fa_revoke
from .actions import (
    DEBUG,
    INFO,
    MIP_PORT,
    Action,
    Encapsulation,
    InstallVisitor,
    Log,
    RelayInKernel,
    RemoveVisitor,
    SendUdp,
)
from .advertiser import SEQUENCE_WRAP_TO, Advertiser
from .bindings import (
    PendingListView,
    PendingRegistration,
    PendingStore,
    VisitorListView,
    VisitorStore,
)
from .counters import Counters
from .engine import error_boundary, make_rng
from .events import (
    DestinationUnreachable,
    Event,
    HandoffTrigger,
    IcmpReceived,
    LinkDown,
    LinkUp,
    UdpReceived,
)
from .fa_aaa import AccountingSession, MnFaOffer
from .fa_checks import FA_REQUEST_PIPELINE, FaRequest, FaTables
from .fa_config import ForeignAgentConfig, VisitedLink
from .fa_handoff import HANDOFF_MESSAGE_TYPES, FaHandoff, HandoffSettings
from .fa_handoff_inputs import on_handoff_message, on_handoff_trigger, pre_registration
from .fa_relay import FastConfig, relay_reply, relay_request
from .fa_reply import ReplyPath, unreachable_code
from .fa_state import (
    VISITOR_TRANSITIONS,
    PendingList,
    VisitorInput,
    VisitorList,
    VisitorState,
    make_record,
    new_pending,
)
from .registration import Discard, RegistrationDenied
from .revocation import Revocations, decode_revocation, support_extension
from .timers import earliest

__all__ = [
    "FA_REQUEST_PIPELINE",
    "VISITOR_TRANSITIONS",
    "ForeignAgent",
    "ForeignAgentConfig",
    "VisitedLink",
    "VisitorInput",
    "VisitorState",
    "unreachable_code",
]


_I, _P, _R, _RR = (
    VisitorState.IDLE,
    VisitorState.PENDING,
    VisitorState.REGISTERED,
    VisitorState.REREGISTERING,
)


# ----------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------


class ForeignAgent:
    """Sans-IO foreign agent. See the module docstring."""

    #: relay the usual renewal from its bytes (:mod:`mip4.core.fa_relay`: the same
    #: actions, records, counters and tables as the general path; issue 13). ``False``
    #: sends every datagram through the general path (tests hold one against the other).
    relay_fast_path: bool = True

    def __init__(
        self,
        config: ForeignAgentConfig,
        security_associations: SecurityAssociationStore,
        clock_offset: float = 0.0,
        *,
        visitors: VisitorStore | None = None,
        pending: PendingStore | None = None,
        rng: random.Random | None = None,
        handoff: HandoffSettings | None = None,
    ) -> None:
        self.config = config
        #: SAs keyed by peer address: a mobile node's home address (MN-FA) or a home
        #: agent's address (FA-HA).
        self.security_associations = security_associations
        #: Unix time = ``now + clock_offset`` (unused by the FA's own checks; kept for the
        #: uniform engine interface and for logs)
        self.clock_offset = clock_offset
        self._visitors: VisitorStore = visitors if visitors is not None else VisitorList()
        self._pending: PendingStore = pending if pending is not None else PendingList()
        self._counters = Counters()
        self._advertiser = Advertiser(
            config.advertised_links(), config.advertiser_settings(), self._counters, make_rng(rng)
        )
        self._tables = FaTables(
            config, security_associations, self._advertiser, self._visitors, self._pending, {}
        )
        self.pipeline = FA_REQUEST_PIPELINE
        #: requests for 0.0.0.0 relayed and not yet answered, by NAI (RFC 2794 §2)
        self._nai_pending: dict[str, PendingRegistration] = {}
        #: requests waiting for the home AAA server, by AaaRequest.request_id
        self._aaa_waiting: dict[int, FaRequest] = {}
        #: RFC 3957: MN-FA keys AAA gave for relayed requests, by pending key (NAI for a
        #: request for 0.0.0.0, else home address), until the home agent's reply
        self._mn_fa_offers: dict[IPv4Address | str, MnFaOffer] = {}
        self._next_request_id = 1
        #: accounting sessions by home address
        self._sessions: dict[IPv4Address, AccountingSession] = {}
        self._session_seq = 0
        #: RFC 3543 revocations sent and received
        self._revocations = Revocations(
            "fa", config.revocation_settings(), security_associations, clock_offset, self._counters
        )
        #: RFC 4881 / RFC 4988 handovers (:mod:`mip4.core.fa_handoff`); ``None``: not offered
        self.handoff: FaHandoff | None = (
            FaHandoff(handoff, self._counters, make_rng(rng)) if handoff is not None else None
        )
        if self.handoff is not None:
            # issue 14: a node handed over to one of our care-of addresses arrives on the
            # link that offers it; knowing its hardware address from the Handoff Request,
            # the target end delivers from the request on (FaHandoff.on_request)
            self.handoff.links = {
                coa: link.interface for link in config.links for coa in link.offered
            }
        #: The lowest level of the ``Log`` actions built: a record below it -- the routine
        #: (DEBUG) lines of renewals that leave a visitor as it was, ``fa.request_relayed``
        #: and ``fa.reply_relayed`` -- is not built at all (its counters still count it).
        #: DEBUG, the default, builds every record. A daemon whose logger drops DEBUG and
        #: that reads no record below it (metrics time requests by those two) raises it.
        self.log_level: int = DEBUG
        #: requests and replies the fast path relayed (not counters of the MIB: they say
        #: which code relayed, not what was decided; that is counted as the general path
        #: counts it)
        self.fast_requests = 0
        self.fast_replies = 0
        #: the fast path's reading of ``config`` (mip4.core.fa_relay)
        self._fast_config: FastConfig | None = None
        #: issue 13 (:mod:`mip4.core.fa_kernel`): the I/O shell's kernel relays the usual
        #: renewal (``RelayInKernel`` actions) and gives back what it relayed
        #: (``RelayedByKernel``); ``False``, the default: every datagram comes here
        self.kernel_relay = False
        #: the home addresses the kernel relays for (integer key), and what it was told
        self._kernel: dict[int, RelayInKernel] = {}
        #: reconfigured: the next input stops every kernel relay first
        self._kernel_stale = False
        #: datagrams the kernel relayed (requests, replies), applied here
        self.kernel_requests = 0
        self.kernel_replies = 0
        #: of those: requests the engine had stopped relaying for when they came back (a
        #: changed request overtook them: not applied); datagrams the fast path would not
        #: take (applied by the general path)
        self.kernel_superseded = 0
        self.kernel_general = 0

    # -- read-only views ------------------------------------------------------------------

    def reconfigure(self, config: ForeignAgentConfig) -> None:
        """Run on ``config`` from now on: the engine and the tables its request checks read
        (:class:`~mip4.core.fa_checks.FaTables`) both take it. Only what is read when it is
        used may differ from the running configuration (the caller checks:
        :mod:`mip4.daemon.reload`); visitors, pending requests and advertisements stay."""
        self.config = config
        self._tables = dataclasses.replace(self._tables, config=config)
        if self._kernel:  # what the kernel was told was decided on the old configuration
            self._kernel_stale = True

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
        return self._advertiser.sequences

    def state_of(self, home_address: IPv4Address) -> VisitorState:
        v = self._visitors.get(home_address) is not None
        p = self._pending.get(home_address) is not None
        if v:
            return _RR if p else _R
        return _P if p else _I

    # -- inputs ---------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest of: next advertisement per link, pending timeouts, visitor expiry,
        requests pending under an NAI, interim accounting, revocation retransmissions and
        the handoff part's timers. Called after every input (the driver re-arms its
        timer), so each part answers in O(1) amortised (the tables:
        :class:`~mip4.core.fa_state.VisitorList`) and the parts usually empty cost a test."""
        best = self._advertiser.next_deadline()
        d = self._pending.next_expiry()
        if d is not None and (best is None or d < best):
            best = d
        d = self._visitors.next_expiry()
        if d is not None and (best is None or d < best):
            best = d
        if self._revocations._outstanding:  # usually none: no min() over nothing per read
            d = self._revocations.next_deadline()
            if d is not None and (best is None or d < best):
                best = d
        if self._nai_pending or self._sessions or self.handoff is not None:
            best = earliest(
                [
                    best,
                    *(p.expires for p in self._nai_pending.values()),
                    *(s.next_interim for s in self._sessions.values()),
                    self.handoff.next_deadline() if self.handoff is not None else None,
                ]
            )
        return best

    def pending_for(self, nai: str) -> PendingRegistration | None:
        """The request for 0.0.0.0 pending under ``nai`` (RFC 2794 §2), if any."""
        return self._nai_pending.get(nai)

    @property
    def aaa_waiting(self) -> int:
        """How many requests wait for the home AAA server's answer."""
        return len(self._aaa_waiting)

    @property
    def sessions(self) -> Mapping[IPv4Address, str]:
        """Accounting sessions: home address -> Acct-Session-Id."""
        return {hoa: s.session_id for hoa, s in self._sessions.items()}

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one input; never raises (one error boundary, see the module docstring)."""
        if self.kernel_relay:  # issue 13: the usual renewal relayed by the kernel
            return fa_kernel.handle(self, event, now)
        return self._handle(event, now)

    def _handle(self, event: Event, now: float) -> list[Action]:
        if self.relay_fast_path and type(event) is UdpReceived and event.payload:
            kind = event.payload[0]  # a Registration Request (1) or Reply (3)
            if kind == 1 or kind == 3:
                try:
                    fast = (relay_request if kind == 1 else relay_reply)(self, event, now)
                except Exception as exc:  # pragma: no cover - the fast path raises nothing
                    failure = exc

                    def fail(_actions: list[Action]) -> None:
                        raise failure

                    return error_boundary("fa", self._counters, fail, who=_who(event))
                if fast is not None:
                    return fast
        ctx: FaRequest | ReplyPath | None = None

        def body(out: list[Action]) -> None:
            nonlocal ctx
            if isinstance(event, UdpReceived):
                if (
                    self.handoff is not None
                    and event.payload
                    and event.payload[0] in HANDOFF_MESSAGE_TYPES
                ):
                    out.extend(on_handoff_message(self, self.handoff, event, now))
                    return
                if self.handoff is not None:
                    relayed = pre_registration(self, self.handoff, event, now)
                    if relayed is not None:  # RFC 4881 pre-registration through us
                        out.extend(relayed)
                        return
                revocation = decode_revocation(event.payload)
                if revocation is not None:  # RFC 3543 types 7 and 15
                    out.extend(fa_revoke.on_revocation_message(self, revocation, event, now))
                    return
                ctx = self._classify(event, now)
                if isinstance(ctx, FaRequest):
                    if self.handoff is not None:  # RFC 4881: the node reached the new agent
                        out.extend(
                            self.handoff.arrived(
                                ctx.request.home_address, event.interface, event.link_src
                            )
                        )
                    if self._aaa_waiting and fa_aaa.duplicate_of_held(self, ctx):
                        # RFC 5944 §3.6.3 retransmission of a request held for the home
                        # AAA server: one answer serves both copies (see _duplicate_of_held)
                        raise Discard("duplicate_request", str(ctx.request.home_address))
                    self.pipeline.run(ctx)
                    if self.config.aaa and _has_mn_aaa(ctx.request):
                        out.extend(fa_aaa.ask_aaa(self, ctx))
                    else:
                        relay = self._relay_request(ctx)
                        if self.handoff is not None:  # issue 14: before the request leaves
                            out.extend(
                                self.handoff.relayed(
                                    ctx.request,
                                    event.interface,
                                    event.link_src,
                                    now,
                                    visiting=self._visitors.get(ctx.request.home_address)
                                    is not None,
                                )
                            )
                        out.extend(relay)
                    return
                if ctx.reply is None:
                    # RFC 5944 §3.7.3.1: a reply for a pending request that is not well
                    # formed is answered to the mobile node with 71.
                    raise RegistrationDenied(
                        ReplyCode.FA_POORLY_FORMED_REPLY, ctx.malformed or "poorly formed"
                    )
                out.extend(fa_reply.relay_reply(self, event, now, ctx.reply, ctx))
            elif isinstance(event, IcmpReceived):
                out.extend(self._on_icmp(event, now))
            elif isinstance(event, DestinationUnreachable):
                out.extend(fa_reply.on_unreachable(self, event, now))
            elif isinstance(event, LinkUp):
                out.extend(self._on_link(event.interface, True, now))
            elif isinstance(event, LinkDown):
                out.extend(self._on_link(event.interface, False, now))
            elif isinstance(event, AaaAnswer):
                waiting = self._aaa_waiting.pop(event.request_id, None)
                if waiting is None:
                    raise Discard("unmatched_aaa_answer", str(event.request_id))
                ctx = waiting
                out.extend(fa_aaa.on_aaa_answer(self, waiting, event))
            elif isinstance(event, AccountingAnswer):
                self._counters.event("accounting_ok" if event.ok else "accounting_failed")
            elif isinstance(event, HandoffTrigger) and self.handoff is not None:
                out.extend(on_handoff_trigger(self, self.handoff, event, now))
            else:
                raise Discard("unexpected_event", type(event).__name__)

        return error_boundary(
            "fa",
            self._counters,
            body,
            who=_who(event),
            on_denied=lambda denial: fa_reply.deny(self, ctx, denial, now),
        )

    def handle_timer(self, now: float) -> list[Action]:
        """Advertise, time out pending requests (78), expire visitors."""
        if self.kernel_relay:
            return fa_kernel.handle_timer(self, now)
        return self._handle_timer(now)

    def _handle_timer(self, now: float) -> list[Action]:
        return error_boundary("fa", self._counters, lambda out: self._on_timer(now, out))

    def _on_timer(self, now: float, actions: list[Action]) -> None:
        actions.extend(self._advertiser.on_timer(now, busy=self._busy()))
        actions.extend(self._revocations.on_timer(now))  # RFC 3543 retransmissions
        if self.handoff is not None:  # RFC 4881 / 4988 retransmissions, tunnel lifetimes
            actions.extend(self.handoff.on_timer(now))
        expired_nai = [n for n, p in self._nai_pending.items() if p.expires <= now]
        nai_expired = [self._nai_pending.pop(n) for n in expired_nai]
        for p in [*self._pending.pop_expired(now), *nai_expired]:
            by_nai = p.nai is not None and p.home_address == _ZERO_ADDRESS
            self._mn_fa_offers.pop(p.nai if by_nai and p.nai else p.home_address, None)
            # RFC 5944 §3.7.1: a pending request may be deleted after its timeout; the
            # mobile node is told with code 78.
            actions.extend(
                fa_reply.reply_path_denial(
                    self,
                    ReplyPath(p),
                    RegistrationDenied(ReplyCode.FA_REGISTRATION_TIMEOUT, "no reply"),
                    VisitorInput.TIMEOUT,
                )
            )
        for v in self._visitors.pop_expired(now):
            hoa = v.home_address
            fa_aaa.forget_mn_fa_key(self, v)  # RFC 3957: learnt for this registration
            actions.extend(fa_aaa.accounting_stop(self, v, now, TerminateCause.SESSION_TIMEOUT))
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
        for hoa, session in self._sessions.items():
            interval = self.config.accounting_interval
            if session.next_interim is None or session.next_interim > now or interval is None:
                continue
            visitor = self._visitors.get(hoa)
            while session.next_interim <= now:
                session.next_interim += interval
            if visitor is not None:
                actions.append(
                    fa_aaa.accounting_record(self, visitor, session, AcctStatus.INTERIM_UPDATE, now)
                )

    # -- advertisements (core/advertiser.py) ---------------------------------------------

    # -- restart (issue 15: a persistent visitor list) -----------------------------------

    def restore(self, now: float) -> list[Action]:
        """Take over the visitor list a persistent store kept from a predecessor; call it
        once, before the first input. Visitors whose lifetime ran out while the agent was
        down are dropped silently (RFC 5944 §3.7: no message because a lifetime expired);
        each remaining one that is not co-located gets its ``InstallVisitor`` again; a
        ``Log`` (``fa.restored``) gives the counts.

        With visitors restored, the advertisement sequence numbers continue from 256: the
        agent did not lose its registrations, and a number in 0..255 would tell every
        visitor it rebooted and make it register again (RFC 5944 §2.3.2, §2.4.4)."""
        expired = self._visitors.pop_expired(now)
        actions: list[Action] = []
        visitors = list(self._visitors)
        for v in visitors:
            if v.colocated:
                continue
            actions.append(
                InstallVisitor(
                    home_address=v.home_address,
                    interface=v.interface,
                    link_address=v.link_address,
                    home_agent=v.home_agent,
                    care_of_address=v.care_of_address,
                    reverse_tunnel=v.reverse_tunnel,
                    encapsulation=v.encapsulation,
                    expires=v.expires,
                    encapsulating_delivery=v.encapsulating_delivery,
                )
            )
        if visitors:
            # The advertiser has no setter for this yet (core/advertiser.py is not the
            # store's to change): its per-link state is set here, the only such place.
            for st in self._advertiser._state.values():
                st.sequence = max(st.sequence, SEQUENCE_WRAP_TO)
            self._counters.event("visitor_restored", len(visitors))
        if expired:
            self._counters.event("visitor_expired_while_down", len(expired))
        actions.append(Log("fa.restored", {"visitors": len(visitors), "expired": len(expired)}))
        return actions

    def advertisement(self, link: VisitedLink) -> AgentAdvertisement:
        """The advertisement this agent would send now on ``link`` (does not advance the
        sequence number)."""
        return self._advertiser.advertisement(link.interface, busy=self._busy())

    def _busy(self) -> bool:
        """RFC 5944 §2.1.1: B while the visitor list is full (no additional mobile nodes)."""
        return len(self._visitors) >= self.config.max_visitors

    def _on_icmp(self, event: IcmpReceived, now: float) -> list[Action]:
        link = self.config.link(event.interface)
        if link is None:
            raise Discard("icmp_on_unknown_interface", event.interface)
        if not Advertiser.is_solicitation(event.payload):
            raise Discard("foreign_advertisement", str(event.src))
        adv = self._advertiser.answer(
            link.interface, event.src, event.link_src, now, busy=self._busy()
        )
        return [adv]

    def _on_link(self, interface: str, up: bool, now: float) -> list[Action]:
        if not self._advertiser.set_link(interface, up, now):
            return []
        actions: list[Action] = [Log("fa.link", {"interface": interface, "up": up})]
        if not up:
            # RFC 3543: the visitors of a link that is gone are revoked (the home agents
            # that negotiated revocation are told; nobody is left on the link to inform).
            for v in [v for v in self._visitors if v.interface == interface]:
                fa_revoke.revoke_visitor(
                    self, v, now, "link down", actions, inform=False, tell_home_agent=True
                )
        return actions

    # -- handovers (RFC 4881, RFC 4988): core/fa_handoff_inputs.py, core/fa_handoff.py -----

    # -- revocation (RFC 3543) ---------------------------------------------------------------

    @property
    def revocations(self) -> Revocations:
        """Revocations sent and not yet acknowledged (``outstanding``), read by status."""
        return self._revocations

    def revoke(
        self, home_address: IPv4Address, now: float, *, reason: str = "operator"
    ) -> list[Action]:
        """Operator call: end the visitor ``home_address`` now. The mobile node is informed
        (a Registration Reply with code 65, Lifetime 0 and its registration's
        Identification, when ``revocation_inform``), the accounting session stops, and the
        home agent is sent a Registration Revocation when it negotiated revocation."""

        def body(out: list[Action]) -> None:
            v = self._visitors.get(home_address)
            if v is None:
                self._counters.event("revoke_unknown")
                out.append(Log("fa.revoke_unknown", {"home_address": home_address}))
                return
            fa_revoke.revoke_visitor(
                self,
                v,
                now,
                reason,
                out,
                inform=self.config.revocation_inform,
                tell_home_agent=True,
            )

        return error_boundary("fa", self._counters, body)

    # -- requests -------------------------------------------------------------------------

    def _classify(self, event: UdpReceived, now: float) -> FaRequest | ReplyPath:
        try:
            msg = decode_message(event.payload)
        except UnknownExtensionError as e:
            # RFC 5944 §1.9: unknown non-skippable extension -> silently discard.
            raise Discard("unknown_extension", str(e)) from None
        except DecodeError as e:
            pending = self._pending_for_undecodable_reply(event.payload)
            if pending is not None:
                return ReplyPath(pending, None, str(e))
            raise Discard("decode_error", str(e)) from None
        if isinstance(msg, RegistrationRequest):
            link = self.config.link(event.interface)
            if link is None:
                raise Discard("request_on_unknown_interface", event.interface)
            if not self._advertiser.is_up(link.interface):
                raise Discard("link_down", link.interface)
            return FaRequest(self._tables, event, now, link, msg)
        if isinstance(msg, RegistrationReply):
            pending = self._nai_pending_for(msg) if self._nai_pending else None
            if pending is None:
                pending = self._pending.get(msg.home_address)
            if pending is None:
                raise Discard("unmatched_reply", f"no pending request for {msg.home_address}")
            if pending.low_identification != msg.identification & 0xFFFFFFFF:
                # RFC 5944 §3.7.3.1: the low-order 32 bits must match the pending request.
                raise Discard("unmatched_reply", "identification does not match")
            return ReplyPath(pending, msg)
        raise Discard("unexpected_message", type(msg).__name__)

    def _pending_for_undecodable_reply(self, data: bytes) -> PendingRegistration | None:
        """The pending request named by the fixed part of a reply whose extensions do not
        decode (such a reply is answered with 71), if any."""
        if len(data) < RegistrationReply.FIXED_LEN or data[0] != RegistrationReply.TYPE:
            return None
        fixed = RegistrationReply.decode(data[: RegistrationReply.FIXED_LEN])
        pending = self._pending.get(fixed.home_address)
        if pending is None:
            ident = fixed.identification & 0xFFFFFFFF
            for p in self._nai_pending.values():
                if p.low_identification == ident:
                    pending = p
        if pending is None or pending.low_identification != fixed.identification & 0xFFFFFFFF:
            return None
        return pending

    def _nai_pending_for(self, reply: RegistrationReply) -> PendingRegistration | None:
        """RFC 2794 §2: a reply to a request for 0.0.0.0 is matched by its MN-NAI extension
        (the home address it carries is the one assigned) and the Identification."""
        if not self._nai_pending:
            return None
        for ext in reply.extensions:
            if isinstance(ext, MobileNodeNAIExtension):
                p = self._nai_pending.get(ext.nai.decode("utf-8", "replace"))
                if p is not None and p.low_identification == reply.identification & 0xFFFFFFFF:
                    return p
        return None

    def _drop_pending(self, pending: PendingRegistration) -> None:
        if pending.nai is not None and self._nai_pending.get(pending.nai) is pending:
            del self._nai_pending[pending.nai]
            self._mn_fa_offers.pop(pending.nai, None)
        else:
            self._pending.remove(pending.home_address)
            if self._mn_fa_offers:  # usually empty: no address hash for nothing
                self._mn_fa_offers.pop(pending.home_address, None)

    # -- the home AAA server (RFC 4721 §3.2; mip4.aaa) -------------------------------------

    def _relay_request(
        self, ctx: FaRequest, authorization: Authorization | None = None
    ) -> list[Action]:
        req, ev, link = ctx.request, ctx.event, ctx.link
        hoa = req.home_address
        by_nai = not int(hoa) and ctx.nai is not None
        home_agent = req.home_agent
        if ctx.requested_home_agent is not None:
            home_agent = ctx.requested_home_agent  # RFC 4433 §3.1
        aaa_ha = authorization.home_agent if authorization is not None else None
        if aaa_ha is not None and not int(home_agent):
            home_agent = aaa_ha  # the home AAA server named the home agent
        if not int(home_agent):
            raise RegistrationDenied(
                ReplyCode.FA_MISSING_HOME_AGENT, "neither the request nor AAA names a home agent"
            )
        visitor = None if by_nai else self._visitors.get(hoa)
        if by_nai:
            before = _P if ctx.nai in self._nai_pending else _I
        elif visitor is not None:  # state_of, with the visitor entry kept for below
            before = _RR if self._pending.get(hoa) is not None else _R
        else:
            before = _P if self._pending.get(hoa) is not None else _I
        VISITOR_TRANSITIONS.check(before, VisitorInput.REQUEST)
        if (
            by_nai
            and ctx.nai not in self._nai_pending
            and len(self._pending) + len(self._nai_pending) >= self.config.max_pending
        ):
            raise RegistrationDenied(
                ReplyCode.FA_INSUFFICIENT_RESOURCES, "too many pending requests"
            )
        # RFC 5944 §3.7.2.2: relay unchanged through the MN-HA (or MN-AAA) extension;
        # FA-only extensions after it (MN-FA, challenge, delivery style) are removed.
        relayed = relayed_request(ctx)
        fa_sa = self._fa_ha_sa(home_agent)
        if fa_sa is not None and self.config.revocation:
            # RFC 3543 §3.2: offer revocation, after MN-HA (or MN-AAA), covered by FA-HA.
            ours = support_extension(
                self._revocations.timestamp(ctx.now), self.config.revocation_inform
            )
            relayed = append_extensions(relayed, ours)
        if fa_sa is not None:
            relayed = sign(relayed, ForeignHomeAuthExtension, fa_sa)  # RFC 5944 §3.7.2.2
        flags = req.flags
        iflags = int(flags)
        pending = new_pending(
            hoa,  # home_address
            link.interface,  # interface
            ev.link_src,  # link_address
            ev.src,  # ip_source
            ev.dst,  # ip_destination
            ev.sport,  # udp_source_port
            home_agent,  # home_agent
            req.care_of_address,  # care_of_address
            req.identification,  # identification
            req.lifetime,  # requested_lifetime
            flags,  # flags
            ctx.now,  # relayed_at
            ctx.now + self.config.pending_timeout,  # expires
            bool(iflags & _FLAG_T),  # reverse_tunnel
            _encapsulation(iflags),  # encapsulation
            ctx.delivery_style,  # encapsulating_delivery
            ctx.mn_fa_sa.spi if ctx.mn_fa_sa is not None else None,  # mn_fa_spi
            ctx.nai,  # nai
        )
        if by_nai:
            assert ctx.nai is not None
            self._nai_pending[ctx.nai] = pending
            after = _P
        else:
            self._pending.put(pending)
            # state_of(hoa), from what was just looked up and put (no lookups again)
            after = _RR if visitor is not None else _P
        if ctx.challenge is not None:
            self._advertiser.spend_challenge(ctx.challenge)  # RFC 4721 §3.2: no replays
        VISITOR_TRANSITIONS.confirm(before, VisitorInput.REQUEST, after)
        self._counters.event("relayed_requests")
        src = self.config.relay_source
        if src is None:
            src = req.care_of_address if req.care_of_address in link.offered else link.offered[0]
        payload = relayed.raw or relayed.encode()
        # A visitor's renewal asking for what it has: its line is routine (debug); every
        # relayed request is counted (``relayed_requests``) and its reply logged.
        level = INFO
        if before is _R:
            v = visitor
            if (
                v is not None
                and v.care_of_address == req.care_of_address
                and v.home_agent == home_agent
                and v.requested_lifetime == req.lifetime
                and v.flags == flags
                and v.interface == link.interface
                and v.link_address == ev.link_src
                and v.ip_source == ev.src
                and v.nai == ctx.nai
            ):
                level = DEBUG
        send = make_record(
            SendUdp,
            {
                "dst": home_agent,
                "payload": payload,
                "dport": MIP_PORT,
                "sport": self.config.relay_port,
                "src": src,
                "interface": None,
                "link_dst": None,
                "ttl": None,
            },
        )
        if level < self.log_level:  # a line nobody writes: not built (see log_level)
            return [send]
        return [
            send,
            Log(
                "fa.request_relayed",
                {
                    "home_address": hoa,
                    "nai": ctx.nai,
                    "home_agent": home_agent,
                    "care_of_address": req.care_of_address,
                    "lifetime": req.lifetime,
                    "identification": req.identification,
                },
                level,
            ),
        ]

    def _link_address(self, interface: str) -> IPv4Address | None:
        link = self.config.link(interface)
        return link.address if link is not None else None

    def _fa_ha_sa(self, home_agent: IPv4Address) -> SecurityAssociation | None:
        sas = self.security_associations.for_peer(home_agent)
        return sas[0] if sas else None


_ZERO_ADDRESS = IPv4Address(0)


def _has_mn_aaa(request: RegistrationRequest) -> bool:
    """Whether the request authenticates to the home AAA server (MN-AAA, RFC 4721 §6)."""
    return any(e.ext_type == GENERALIZED for e in request.extensions)


_FLAG_T, _FLAG_M, _FLAG_G = (
    int(RegistrationFlags.T),
    int(RegistrationFlags.M),
    int(RegistrationFlags.G),
)


def _encapsulation(flags: int) -> Encapsulation:
    if flags & _FLAG_G:
        return Encapsulation.GRE
    if flags & _FLAG_M:
        return Encapsulation.MINIMAL
    return Encapsulation.IPIP


def relayed_request(ctx: FaRequest) -> RegistrationRequest:
    """The request as relayed (RFC 5944 §3.7.2.2): :func:`strip_for_relay` of it, or the
    request itself -- no copy -- when the authorization-enabling extension
    ``check_well_formed`` found is its last extension (nothing to cut)."""
    req = ctx.request
    if req.raw and 0 <= ctx.auth_index == len(req.extensions) - 1:
        return req
    return strip_for_relay(req)


def _who(event: object) -> dict[str, object]:
    if isinstance(event, UdpReceived | IcmpReceived):
        return {"source": event.src, "interface": event.interface}
    return {"event": type(event).__name__}
