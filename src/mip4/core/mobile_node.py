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
  first advertised one; requests go to the agent's address with TTL 1 (§3.6.1.1) -- TTL 255
  when they set T (RFC 3024 §4.1.1) -- and its link-layer address (never ARP, §4.2.1).
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

**Parts.** As h2 splits ``H2Connection`` from ``H2Stream``, this module is only the
coordinator. The attachment part (:mod:`mip4.core.mn_attachment`) handles links,
advertisements and move detection; the registration client (:mod:`mip4.core.mn_client`)
builds, signs, sends and retransmits requests and matches, verifies and reacts to replies.
Neither calls the other nor this class: each returns *outcomes* (small frozen dataclasses),
and :class:`MobileNode` acts on them. The configuration is :mod:`mip4.core.mn_config`
(re-exported here).

**Handovers** (only with ``handover=HandoverSettings(...)``; :mod:`mip4.core.mn_handover`).
A :class:`~mip4.core.events.MoveAnticipated` trigger ("about to move to network X") is
kept until the link comes up there, when its advertisement counts as heard on the new
link (the first request goes out at once; one solicitation confirms it; a link address
outside the anticipated prefixes makes it a wrong anticipation, ignored). In the fast mode
the node also sends a Fast Binding Update to its current foreign agent (RFC 4988). A
``LinkDown`` of the attachment's link emits
:class:`~mip4.core.actions.LeaveForeignAgent` (stop using the old routes at once). The
handover part does not move ``MnState``: the registration on arrival does.

**State.** ``MnState`` changes in one place, :meth:`MobileNode._fire`, which looks up
``(state, outcome)`` in :data:`~mip4.core.mn_state.MN_TRANSITIONS` -> (side effect, next
state) (h2 ``stream.py``). A pair not in the table is a protocol error: logged
``mn.protocol_error``, counted, never raised out of the engine.
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from mip4.security.replay import MobileNodeReplay
from mip4.security.sa import SecurityAssociation
from mip4.wire.messages import RegistrationRequest

from .actions import (
    Action,
    AtHome,
    AwayFromHome,
    GratuitousArp,
    LeaveForeignAgent,
    Log,
    UseForeignAgent,
)
from .counters import Counters
from .discovery import Agent, AgentDiscovery
from .engine import Body, error_boundary, make_rng
from .events import (
    DestinationUnreachable,
    Event,
    IcmpReceived,
    LinkDown,
    LinkUp,
    MoveAnticipated,
    UdpReceived,
)
from .mn_attachment import (
    Attach,
    Attachment,
    AttachmentKind,
    AttachmentTracker,
    Choice,
    GoHome,
    OwnAgentHeard,
    Rechoose,
    Solicit,
)
from .mn_client import (
    AwaitChallenge,
    Binding,
    Corrections,
    PendingRequest,
    RefusedCareOf,
    RegistrationClient,
    RegistrationRecord,
    Retry,
    Revoked,
    Step,
)
from .mn_config import ALL_ROUTERS, MobileNodeConfig, ReverseTunnel, RevocationReaction
from .mn_handover import HandoverMode, HandoverSettings, MnHandover
from .mn_reactions import CodeReaction
from .mn_state import MN_TRANSITIONS, MnEffect, MnInput, MnState, log


class MobileNode:
    """The sans-IO mobile node (see the module docstring): a coordinator of its attachment
    part (:attr:`where`) and its registration client (:attr:`client`)."""

    def __init__(
        self,
        config: MobileNodeConfig,
        sa: SecurityAssociation | None,
        clock_offset: float = 0.0,
        *,
        rng: random.Random | None = None,
        handover: HandoverSettings | None = None,
    ) -> None:
        """``sa`` is the MN-HA mobility security association (``None``: the node gets its
        key from AAA, RFC 3957, :mod:`mip4.core.mn_keys`); ``clock_offset`` maps the
        engine's monotonic ``now`` to Unix time (``unix = now + clock_offset``), used only
        to build timestamp Identifications (RFC 5944 §5.7.1). ``rng`` supplies the random
        low words and nonces (a seeded one makes tests reproducible). ``handover`` turns
        on the link-layer anticipation and fast handovers (:mod:`mip4.core.mn_handover`)."""
        self.config = config
        self.sa = sa
        self._rng = make_rng(rng)
        self._counters = Counters()
        discovery = AgentDiscovery(
            initial_solicitations=config.solicit_initial_count,
            max_interval=config.solicit_max_interval,
            max_solicitations=config.solicit_limit,
            jitter=config.solicit_jitter,
            rng=self._rng,  # the engine's own: no Mersenne Twister state (2.5 KB) per node
        )
        #: the registration client: requests, replies, the binding
        self.client = RegistrationClient(config, sa, clock_offset, self._rng, self._counters)
        #: the attachment part: links, agents, the current attachment
        self.where = AttachmentTracker(config, discovery, self._counters, home=self.client)
        #: changed only by :meth:`_fire`, through :data:`MN_TRANSITIONS`
        self.state = MnState.DETACHED
        #: the reason of the last give-up, for the operator
        self.failure_reason: str | None = None
        #: the handover part (RFC 4881 / RFC 4988); ``None``: not configured
        self.handover: MnHandover | None = (
            MnHandover(handover, self._counters, self._rng) if handover is not None else None
        )

    # -- issue 15 (added by the ops helper for SIGHUP; mip4.daemon.reload) ---------------

    def reconfigure(self, config: MobileNodeConfig) -> None:
        """Run on ``config`` from now on. Only what is read when it is used may differ from
        the running configuration (the caller checks: :data:`mip4.daemon.reload.IN_PLACE`):
        the lifetime asked for in the next request, the retransmission and back-off
        timers, the renewal point and the reaction to a revocation. The binding held
        stays as granted."""
        self.config = config
        self.client.config = config
        self.where.config = config

    # -- end of the ops helper's hunk ----------------------------------------------------

    # ------------------------------------------------------------------------------------
    # Public state
    # ------------------------------------------------------------------------------------

    @property
    def counters(self) -> Counters:
        return self._counters

    @property
    def clock_offset(self) -> float:
        return self.client.clock_offset

    @property
    def replay(self) -> MobileNodeReplay:
        return self.client.replay

    @property
    def discovery(self) -> AgentDiscovery:
        return self.where.discovery

    @property
    def links(self) -> dict[str, tuple[IPv4Address | None, int | None]]:
        """interface -> (address, prefix length) for the links that are up"""
        return self.where.links

    @property
    def attachment(self) -> Attachment | None:
        return self.where.current

    @property
    def home_agent(self) -> IPv4Address:
        """The home agent registered with (a 136 reply may have named another one)."""
        return self.client.home_agent

    @property
    def home_address(self) -> IPv4Address:
        """The home address in use: configured, or assigned by the home agent (0.0.0.0
        until then, RFC 2794 §2)."""
        return self.client.home_address

    @property
    def last_reaction(self) -> CodeReaction | None:
        """The last reply code received and the reaction taken."""
        return self.client.last_reaction

    @property
    def last_registration(self) -> RegistrationRecord | None:
        """The last accepted registration or deregistration (round trip, retransmissions)."""
        return self.client.last_registration

    @property
    def registered(self) -> bool:
        """An authenticated acceptance is held for the current care-of address."""
        return self.client.registered_at(self.where.current)

    @property
    def care_of_address(self) -> IPv4Address | None:
        a = self.where.current
        return a.care_of_address if a is not None and a.kind is not AttachmentKind.HOME else None

    @property
    def binding_expires(self) -> float | None:
        b = self.client.binding
        return b.expires if b is not None else None

    @property
    def binding(self) -> Binding | None:
        return self.client.binding

    @property
    def pending_request(self) -> RegistrationRequest | None:
        p = self.client.pending
        return p.request if p is not None else None

    @property
    def _pending(self) -> PendingRequest | None:
        # read by mip4.lab.scenario's round-trip recorder
        return self.client.pending

    @property
    def at_home(self) -> bool:
        return self.where.at_home

    # ------------------------------------------------------------------------------------
    # Engine interface
    # ------------------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Action]:
        if (
            type(event) is IcmpReceived
            and not self.client.await_challenge
            and self.where.heard_again(event, now)
        ):
            # our agent's advertisement again, nothing new in it: its record refreshed,
            # nothing to do (AttachmentTracker.heard_again; reads and a refresh only)
            return []
        if isinstance(event, LinkUp):
            return self._guard("link up", lambda out: self._on_link_up(event, now, out))
        if isinstance(event, LinkDown):
            return self._guard("link down", lambda out: self._on_link_down(event, now, out))
        if isinstance(event, IcmpReceived):
            return self._guard("icmp", lambda out: self._on_icmp(event, now, out))
        if isinstance(event, UdpReceived):
            return self._guard("udp", lambda out: self._on_udp(event, now, out))
        if isinstance(event, MoveAnticipated):
            return self._guard("anticipation", lambda out: self._on_anticipation(event, now, out))
        if isinstance(event, DestinationUnreachable):
            # Not acted upon: the retransmission timer covers a request that went nowhere
            # (only a foreign agent turns these into reply codes 80-88, RFC 5944 §3.7.2.3).
            self._counters.event("icmp_unreachable")
            return [Log("mn.icmp_unreachable", {"code": event.code, "about": event.original_dst})]
        return [Log("mn.unknown_event", {"event": type(event).__name__})]

    def handle_timer(self, now: float) -> list[Action]:
        return self._guard("timer", lambda out: self._on_timer(now, out))

    def next_deadline(self) -> float | None:
        # read after every call into the node: the minimum of the discovery's, the
        # client's (RegistrationClient.next_deadline, inline: no list) and the handover's
        d = self.where.discovery.next_deadline()
        c = self.client
        p = c.pending
        if p is not None and (d is None or p.next_retry < d):
            d = p.next_retry
        r = c.retry_at
        if r is not None and (d is None or r < d):
            d = r
        b = c.binding
        if b is not None:
            e = b.expires
            if e is not None and (d is None or e < d):
                d = e
            e = b.renew_at
            if (
                e is not None
                and p is None
                and r is None
                and self.state is MnState.REGISTERED
                and (d is None or e < d)
            ):
                d = e
        if self.handover is not None:
            h = self.handover.next_deadline()
            if h is not None and (d is None or h < d):
                d = h
        return d

    def deregister(self, now: float, care_of_address: IPv4Address | None = None) -> list[Action]:
        """Ask the home agent to drop bindings: all of them (``None``: Care-of Address =
        home address, S clear, RFC 5944 §3.6.1.2) or only ``care_of_address`` (S set, that
        care-of address, Lifetime 0)."""
        return self._guard("deregister", lambda out: self._deregister(now, care_of_address, out))

    # ------------------------------------------------------------------------------------
    # Error boundary and the one place the state changes
    # ------------------------------------------------------------------------------------

    def _guard(self, what: str, body: Body) -> list[Action]:
        # the shared boundary: a protocol error or a bug is logged (mn.protocol_error,
        # mn.internal_error) and counted as a discard; the engine never raises
        return error_boundary("mn", self._counters, body, who={"input": what})

    def _fire(self, inp: MnInput, now: float, out: list[Action], why: str) -> None:
        """Look ``(state, inp)`` up in the table, move, then run the side effect."""
        effect, state = MN_TRANSITIONS.lookup(self.state, inp)
        if state is not self.state:
            out.append(log("mn.state", {"from": self.state.value, "to": state.value, "why": why}))
            self.state = state
        if effect is MnEffect.BACK_OFF:
            self.client.back_off(now, why, out)
        elif effect is MnEffect.GIVE_UP:
            self.failure_reason = why
            self.client.give_up(now, why, out)
        elif effect is MnEffect.REGISTERED:
            self.failure_reason = None
        elif effect is MnEffect.ANNOUNCE_HOME and self.where.current is not None:
            out.append(GratuitousArp(self.where.current.interface, self.client.home_address))

    def _step(self, step: Step, now: float, out: list[Action]) -> None:
        out.extend(step.before)
        self._fire(step.input, now, out, step.why)
        out.extend(step.after)

    # ------------------------------------------------------------------------------------
    # Acting on the attachment part's outcomes
    # ------------------------------------------------------------------------------------

    def _apply(self, choice: Choice | None, now: float, out: list[Action]) -> None:
        if isinstance(choice, GoHome):
            self._go_home(choice.interface, now, out)
        elif isinstance(choice, Attach):
            self._attach(choice.attachment, now, out, choice.why)
        elif isinstance(choice, Solicit):
            self._fire(MnInput.NO_AGENT, now, out, "looking for an agent")
            self.where.solicit_due(now, out)

    def _on_link_up(self, ev: LinkUp, now: float, out: list[Action]) -> None:
        outcome = self.where.link_up(ev, now, out)
        anticipated = self.handover.take(ev.interface) if self.handover is not None else None
        if anticipated is not None and anticipated.contradicted_by(ev.address):
            out.append(
                Log("mn.anticipation_wrong", {"agent": anticipated.src, "address": ev.address})
            )
            anticipated = None
        if anticipated is not None and isinstance(outcome, Rechoose):
            # RFC 4881 §1.3 L2 trigger: the new agent's advertisement is known already;
            # take it as heard on the new link (register at once), then solicit to confirm.
            self.where.discovery.advertisement(
                anticipated.advertisement,
                anticipated.src,
                ev.interface,
                anticipated.link_src,
                now,
            )
            out.append(Log("mn.anticipation_used", {"agent": anticipated.src}))
        if isinstance(outcome, GoHome):
            self._go_home(outcome.interface, now, out)
        elif isinstance(outcome, Rechoose):
            if self.where.current is not None:
                self._detach(out, "link came up again")
            self._apply(self.where.choose(outcome.interface, now, out), now, out)
            if anticipated is not None and ev.interface in self.where.links:
                self.where.restart_soliciting(ev.interface, now, out)

    def _on_anticipation(self, ev: MoveAnticipated, now: float, out: list[Action]) -> None:
        """An "about to move to network X" trigger (see :mod:`mip4.core.mn_handover`)."""
        h = self.handover
        if h is None:
            self._counters.discard("anticipation_not_configured")
            out.append(Log("mn.discard", {"what": "anticipation", "why": "no handover settings"}))
            return
        a = h.anticipate(ev, out)
        cur = self.where.current
        if (
            a is None
            or h.mode is HandoverMode.BASE
            or a.care_of_address is None
            or self.state is not MnState.REGISTERED
            or cur is None
            or cur.kind is not AttachmentKind.FOREIGN_AGENT
            or cur.agent is None
            or cur.care_of_address == a.care_of_address
        ):
            return
        if h.mode is HandoverMode.LOW_LATENCY:
            # RFC 4881 §3 pre-registration (mip4's reading): register through the new agent
            # before the switch; the request goes to it through the current agent (the
            # datagram's next hop is the current agent's link-layer address).
            mobility = a.advertisement.mobility
            assert mobility is not None
            agent = Agent(
                address=a.src,
                interface=cur.interface,
                link_address=cur.agent.link_address,
                advertisement=a.advertisement,
                expires=now + a.advertisement.lifetime,
                sequence=mobility.sequence,
                heard=now,
            )
            h.pre_registering_from = cur.agent_key
            self._attach(
                Attachment(AttachmentKind.FOREIGN_AGENT, cur.interface, a.care_of_address, agent),
                now,
                out,
                "pre-registration (RFC 4881)",
            )
            return
        # RFC 4988: Fast Binding Update to the previous agent, naming the new care-of
        # address; the previous agent tunnels to the new one while the node switches.
        h.fast_binding_update(
            cur.agent,
            self.client.home_address,
            self.client.home_agent,
            a.care_of_address,
            self.config.port,
            now,
            out,
        )

    def _on_link_down(self, ev: LinkDown, now: float, out: list[Action]) -> None:
        if self.handover is not None:
            self.handover.cancel("link down before the acknowledgement", out)
            self.handover.pre_registering_from = None
        was = self.where.current
        if not self.where.link_down(ev, out):
            return
        if self.handover is not None and was is not None and was.kind is not AttachmentKind.HOME:
            # L2 trigger: stop using the routes through the old agent at once.
            out.append(LeaveForeignAgent(ev.interface, self.client.home_address))
        self._detach(out, "link down")
        for iface in list(self.where.links):
            self._apply(self.where.choose(iface, now, out), now, out)
            if self.where.current is not None:
                return
        if not self.where.links:
            self._fire(MnInput.LINKS_DOWN, now, out, "link down")

    def _on_icmp(self, ev: IcmpReceived, now: float, out: list[Action]) -> None:
        outcome = self.where.icmp(
            ev, now, out, home_agent=self.home_agent, failed=self.state is MnState.FAILED
        )
        if isinstance(outcome, GoHome):
            self._go_home(outcome.interface, now, out)
        elif isinstance(outcome, Attach):
            h = self.handover
            if h is not None and h.pre_registering_from == outcome.attachment.agent_key:
                # still on the previous agent's link after pre-registering elsewhere: its
                # advertisements do not undo the pre-registration (RFC 4881 §3)
                self._counters.event("pre_registration_kept")
                return
            self._attach(outcome.attachment, now, out, outcome.why)
        elif isinstance(outcome, OwnAgentHeard):
            self._own_agent(outcome, now, out)

    def _own_agent(self, heard: OwnAgentHeard, now: float, out: list[Action]) -> None:
        if heard.rebooted:
            # RFC 5944 §2.4.4: it lost its visitor list; register again.
            out.append(
                Log(
                    "mn.agent_rebooted",
                    {
                        "agent": heard.agent.address,
                        "sequence": heard.agent.sequence,
                        "previous": heard.previous_sequence,
                    },
                )
            )
            self.client.adjust = Corrections()
            self._register(now, out, "foreign agent rebooted")
        elif self.client.await_challenge:
            self.client.await_challenge = False
            self._register(now, out, "fresh challenge")
        elif self.state is MnState.FAILED and heard.new:
            self._register(now, out, "agent heard again")

    def _agent_lost(self, agent: Agent, now: float, out: list[Action]) -> None:
        a = self.where.current
        if a is None or a.agent_key != (agent.interface, agent.address):
            return
        # RFC 5944 §2.4.2.1: lost contact with the agent: the node has moved.
        out.append(Log("mn.agent_lost", {"agent": agent.address}))
        self._detach(out, "agent advertisement lifetime expired")
        other = self.where.other_agent(out, "other agent still advertising")
        if other is not None:
            self._attach(other.attachment, now, out, other.why)
            return
        self._fire(MnInput.AGENT_LOST, now, out, "agent lost")
        self._apply(self.where.choose(a.interface, now, out), now, out)

    def _detach(self, out: list[Action], why: str) -> None:
        """Forget the attachment; the node holds no usable binding any more."""
        self.where.current = None
        self.client.forget()
        out.append(log("mn.detached", {"why": why}))

    def _attach(self, att: Attachment, now: float, out: list[Action], why: str) -> None:
        self.client.attached(att)
        self.where.current = att
        out.append(
            log(
                "mn.attach",
                {
                    "kind": att.kind.value,
                    "interface": att.interface,
                    "care_of_address": att.care_of_address,
                    "why": why,
                },
            )
        )
        if att.kind is AttachmentKind.FOREIGN_AGENT:
            # The request goes to the agent's link-layer address (RFC 5944 §3.6.1.1, no
            # route needed), so it leaves first and the home subnet is withdrawn from the
            # link right after (RFC 5944 §4.6) -- the request is not held up by it.
            self._register(now, out, why)
            out.append(AwayFromHome(att.interface, self.client.home_address))
            self._route_through_prepared_agent(att, out)
            return
        if att.kind is not AttachmentKind.HOME:
            # a co-located node's request goes by the visited network's router: the home
            # subnet must not be on-link here first (RFC 5944 §4.6)
            out.append(AwayFromHome(att.interface, self.client.home_address))
        self._register(now, out, why)

    def _route_through_prepared_agent(self, att: Attachment, out: list[Action]) -> None:
        """Issue 14 (mip4's choice): the previous agent acknowledged a Fast Binding Update
        for this care-of address (RFC 4988), so the new agent already takes the node's
        datagrams -- back through the edge tunnel until the home agent has the binding.
        The node routes through it at once instead of at the registration reply: until
        then its kernel has no route and drops everything it sends (in the lab every
        datagram of the 15-20 ms from the link switch to the reply;
        docs/handovers.md). The reply then finds the same routes set up and does not hand
        them over again (a reply asking for more -- broadcasts -- does)."""
        h, agent = self.handover, att.agent
        if h is None or agent is None or h.acknowledged != att.care_of_address:
            return
        use = UseForeignAgent(
            att.interface, agent.address, agent.link_address, self.client.home_address
        )
        self.client.announced = use
        out.append(use)
        self._counters.event("handover_early_routes")
        out.append(Log("mn.route_early", {"agent": agent.address, "interface": att.interface}))

    def _go_home(self, interface: str, now: float, out: list[Action]) -> None:
        """RFC 5944 §2.4.3, §4.6: at home, deregister all bindings."""
        was = self.where.current
        self.where.discovery.stop_soliciting()
        skip = self.client.nothing_to_deregister(now)  # before the binding is forgotten
        self.client.forget()
        att = Attachment(AttachmentKind.HOME, interface, self.client.home_address)
        self.where.current = att
        home = self.client.home_address
        out.append(AtHome(interface, home))
        if not home.is_unspecified:
            # RFC 5944 §4.6: on returning home the node broadcasts gratuitous ARP for its
            # home address so that neighbours stop using the home agent's link-layer address
            # (a node whose address is still to be assigned has none to announce).
            out.append(GratuitousArp(interface, home))
        out.append(
            Log(
                "mn.at_home",
                {"interface": interface, "from": was.kind.value if was is not None else None},
            )
        )
        if skip is not None:
            # Nothing it could sign and no binding it could have made (keys from AAA,
            # RFC 3957: the home agent would deny an unauthenticated request, 131).
            self._counters.event("deregistrations_skipped")
            out.append(Log("mn.deregistration_skipped", {"why": skip}))
            self._fire(MnInput.NOTHING_TO_DEREGISTER, now, out, skip)
            return
        self._step(self.client.deregistration(att, now, None, False), now, out)

    # ------------------------------------------------------------------------------------
    # Acting on the registration client's outcomes
    # ------------------------------------------------------------------------------------

    def _register(self, now: float, out: list[Action], why: str) -> None:
        att = self.where.current
        if att is not None:
            self._step(self.client.registration(att, now, self.registered, why), now, out)

    def _deregister(
        self, now: float, care_of_address: IPv4Address | None, out: list[Action]
    ) -> None:
        att = self.where.current
        if att is None:
            out.append(Log("mn.deregister_ignored", {"why": "not attached"}))
            return
        self._step(self.client.deregistration(att, now, care_of_address, self.registered), now, out)

    def _on_udp(self, ev: UdpReceived, now: float, out: list[Action]) -> None:
        if self.handover is not None and self.handover.is_ack(ev.payload):
            self.handover.on_ack(ev.payload, ev.src, out)  # RFC 4988 Fast Binding Ack
            return
        outcome = self.client.reply(ev, now, self.where.current, out)
        if isinstance(outcome, Step):
            self._step(outcome, now, out)
        elif isinstance(outcome, Retry):
            self._register(now, out, outcome.why)
        elif isinstance(outcome, RefusedCareOf):
            # This care-of address is refused: use another agent, or wait for this one to
            # advertise a different care-of address (its advertisement may have been stale).
            a = outcome.attachment
            self.where.refuse(a)
            self._detach(out, outcome.reason)
            other = self.where.other_agent(out, "care-of address refused")
            if other is not None:
                self._attach(other.attachment, now, out, other.why)
                return
            self._fire(MnInput.CARE_OF_REFUSED, now, out, outcome.reason)
            if a.interface in self.where.links:
                self.where.discovery.start_soliciting(a.interface, now)
                self.where.solicit_due(now, out)
        elif isinstance(outcome, AwaitChallenge):
            self._fire(MnInput.AWAIT_CHALLENGE, now, out, outcome.reason)
            self.where.restart_soliciting(outcome.interface, now, out)
        elif isinstance(outcome, Revoked):
            self._revoked(outcome, now, out)

    def _revoked(self, outcome: Revoked, now: float, out: list[Action]) -> None:
        """RFC 3543: the registration was revoked; register again or stop, as configured."""
        self.client.revoked()
        why = f"registration revoked: {outcome.reason}"
        if self.config.on_revocation is RevocationReaction.REREGISTER:
            self._register(now, out, why)
        elif self.state in (MnState.REGISTERING, MnState.REGISTERED):
            self._fire(MnInput.GAVE_UP, now, out, why)
        else:
            out.append(Log("mn.gave_up", {"reason": why, "retry_in": None}))

    def _on_timer(self, now: float, out: list[Action]) -> None:
        if self.handover is not None:
            self.handover.on_timer(now, out)
        for agent in self.where.expired(now):
            self._agent_lost(agent, now, out)
        self.where.solicit_due(now, out)
        step = self.client.retransmit_due(now, out)
        if step is not None:
            self._step(step, now, out)
        if self.client.binding_expired(now, out) and self.state is MnState.REGISTERED:
            if self.client.pending is not None:
                self._fire(MnInput.BINDING_EXPIRED, now, out, "binding expired")
            else:
                self._register(now, out, "binding expired")
        if self.state is MnState.REGISTERED and self.client.renewal_due(now):
            self._register(now, out, "re-registration before the lifetime ends")
        if self.client.retry_due(now) and self.where.current is not None:
            self._register(now, out, "back-off over")


__all__ = [
    "ALL_ROUTERS",
    "MN_TRANSITIONS",
    "Attachment",
    "AttachmentKind",
    "HandoverMode",
    "HandoverSettings",
    "MnInput",
    "MnState",
    "MobileNode",
    "MobileNodeConfig",
    "RegistrationRecord",
    "ReverseTunnel",
]
