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
§3.8.2.1 (``check_well_formed`` ... ``check_administrative``, each raising
:class:`~mip4.core.registration.RegistrationDenied` with the code it owns). The pipeline --
the per-request context (:class:`~mip4.core.ha_pipeline.HaRequest`) and every check, with
their order and codes -- lives in :mod:`mip4.core.ha_pipeline`; this module keeps the
engine that runs it, applies an accepted registration and sends the reply, and re-exports
``HA_PIPELINE``.

The usual renewal -- one binding renewed at the same care-of address, MN-HA and perhaps
FA-HA, timestamps -- is answered from its bytes by :mod:`mip4.core.ha_renewal` with the
same actions, records and counters (``renewal_fast_path``), and so is the usual first
registration of a node without a binding, by the same code
(``first_registration_fast_path``); every other request goes through the pipeline, and a
request either fast path leaves is denied as the pipeline denies it.

The capability and resource checks do not apply to a deregistration. Once the
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

import random
from collections.abc import Iterator, Mapping, MutableMapping
from ipaddress import IPv4Address

from mip4.aaa.messages import AaaAnswer
from mip4.security.auth import (
    FA_HA,
    MN_HA,
    AuthenticationError,
    AuthFailure,
    append_extensions,
    find_auth_extension,
    sign,
    signed_bytes,
)
from mip4.security.replay import ReplayState, ReplayStates
from mip4.security.sa import (
    SecurityAssociation,
    SecurityAssociationStore,
)
from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError, UnknownExtensionError
from mip4.wire.ext_mobility import (
    RevocationSupportExtension,
    RevocationSupportFlags,
)
from mip4.wire.extensions import (
    Extension,
    ForeignHomeAuthExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    encode_extensions,
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
from mip4.wire.msg_base import RRP_HEADER as _RRP_HEADER

from . import ha_revoke
from .actions import (
    DEBUG,
    INFO,
    MIP_PORT,
    Action,
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
    HomeAgentKeyStore,
    HomeAgentStateStore,
    InMemoryBindingStore,
    MobilityBinding,
    WriteThroughDict,
    same_binding,
)
from .counters import Counters
from .engine import error_boundary, make_rng
from .events import Event, IcmpReceived, UdpReceived
from .ha_aaa import HaAaa
from .ha_config import HomeAgentConfig, bad_unicast
from .ha_pipeline import HA_PIPELINE, HaRequest, check_well_formed, via_foreign_agent
from .ha_pipeline import _stable_index as _stable_index
from .ha_renewal import _ConfigInts, usual_registration
from .ha_states import BINDING_TRANSITIONS as BINDING_TRANSITIONS
from .ha_states import BindingInput as BindingInput
from .ha_states import BindingState as BindingState
from .registration import (
    Discard,
    RegistrationDenied,
)
from .revocation import Revocations, decode_revocation, support_extension
from .timers import earliest, expiry

_H, _A = BindingState.HOME, BindingState.AWAY

__all__ = [
    "BINDING_TRANSITIONS",
    "HA_PIPELINE",
    "BindingInput",
    "BindingState",
    "HomeAgent",
    "HomeAgentConfig",
]

_ZERO = IPv4Address(0)
_ALL_ONES = 0xFFFFFFFF
_FLAG_B, _FLAG_D, _FLAG_T = (
    int(RegistrationFlags.B),
    int(RegistrationFlags.D),
    int(RegistrationFlags.T),
)


# ----------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------


class HomeAgent:
    """Sans-IO home agent. See the module docstring."""

    #: answer the usual renewal from its bytes (:mod:`mip4.core.ha_renewal`: the same
    #: actions, records and counters as the general path; issue 13). ``False`` sends every
    #: request through the general path (tests hold one against the other with it).
    renewal_fast_path: bool = True
    #: answer the usual first registration from its bytes too (:mod:`mip4.core.ha_renewal`;
    #: only with ``renewal_fast_path``); ``False`` sends first registrations through the
    #: general path (tests/core/test_ha_first.py holds one against the other with it)
    first_registration_fast_path: bool = True

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
        #: replay state per node: a timestamps-only state held as its bare Identification
        #: (no record per node, issue 13); a persistent store's ``WriteThroughDict`` after
        #: :meth:`restore`
        replay = ReplayStates()
        self._replay: MutableMapping[IPv4Address | str, ReplayState] = replay
        store = self._bindings
        if type(store) is InMemoryBindingStore:  # (exactly: a subclass persists its own)
            # a renewed binding may hold its node's replay state (the renewal fast path:
            # one record per renewal, not two; issue 13)
            store.hold_replay(replay)
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
        self._aaa = HaAaa(self._counters, config.address, rng=self._rng)
        self._advertiser = Advertiser(
            (AdvertisedLink(config.interface, config.address, config.home_network.prefixlen),),
            config.advertiser_settings(),
            self._counters,
            self._rng,
        )
        #: The lowest level of the ``ha.registration`` records built: one below it -- the
        #: routine (DEBUG) line of a renewal that leaves the binding as it was -- is not
        #: built at all (``renewal_unchanged`` still counts it), on the fast path and the
        #: general one alike. DEBUG, the default, builds every record; a daemon whose
        #: logger drops DEBUG and that reads no record below it may raise it (as the foreign
        #: agent's ``log_level``; the daemon's metrics time registrations by these records).
        self.log_level: int = DEBUG
        #: renewals the fast path answered (not a counter of the MIB: it says which code
        #: answered, not what was decided; the decision is counted as the general path does)
        self.fast_renewals = 0
        #: first registrations the fast path answered (mip4.core.ha_renewal; like
        #: ``fast_renewals``, which code answered, not what was decided)
        self.fast_first_registrations = 0
        #: the fast path's integers of ``config`` (mip4.core.ha_renewal)
        self._renewal_config: _ConfigInts | None = None

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
        if self.renewal_fast_path and type(event) is UdpReceived:
            try:
                fast = usual_registration(self, event, now)
            except Exception as exc:  # pragma: no cover - the fast path raises nothing
                failure = exc

                def fail(_actions: list[Action]) -> None:
                    raise failure

                return error_boundary("ha", self._counters, fail, who=_who(event))
            if fast is not None:
                return fast
        ctx: HaRequest | None = None

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
                        out.extend(ha_revoke.on_revocation_message(self, revocation, event, now))
                        return
                    ctx = self._begin(event, now)
                    store = self.security_associations
                    if self.config.aaa:  # issue 10: RFC 4721 for a co-located node (ha_aaa)
                        challenge = self._aaa.check_colocated(event, ctx.request, store, now)
                        if challenge is not None:
                            denial, ctx.reply_extensions = challenge[0], (challenge[1],)
                            raise denial
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

        out: list[Action] = []
        try:
            body(out)
        except Exception as exc:
            failure = exc

            # The rare path: the shared boundary handles the exception as if it had run
            # the body itself (the actions made before it, then the same exception), with
            # the input's fields for its log line built only now (issue 13: not a dict
            # per request; tests/core/test_ha_boundary.py holds it against the boundary).
            def again(actions: list[Action]) -> None:
                actions.extend(out)
                raise failure

            return error_boundary("ha", self._counters, again, who=_who(event), on_denied=on_denied)
        return out

    def handle_timer(self, now: float) -> list[Action]:
        """Expire bindings whose lifetime ran out (RFC 5944 §3.8.1 remaining Lifetime)."""
        return error_boundary("ha", self._counters, lambda out: self._on_timer(now, out))

    #: the most binding deadlines one ``handle_timer`` call looks at: a mass expiry is
    #: spread over calls (``next_deadline`` stays at or before ``now`` while any is left),
    #: so no call blocks the loop for long whatever the size of the table. A real home
    #: agent's loop spends ~150 us on each expiry (the engine, the fast path's map
    #: entries, the log line; ``mip4 bench bindings --expire``: 128 made a 19.6 ms call)
    EXPIRY_BATCH = 32

    def _on_timer(self, now: float, actions: list[Action]) -> None:
        actions.extend(self._advertiser.on_timer(now))
        actions.extend(self._revocations.on_timer(now))  # RFC 3543 retransmissions
        expired = self._bindings.pop_expired(now, self.EXPIRY_BATCH)
        for b in expired:
            hoa = b.home_address
            actions.append(RemoveBinding(hoa, b.care_of_address, expired=True))
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
        if isinstance(store, HomeAgentKeyStore):
            # MN-HA keys the home AAA server gave (RFC 3957) outlive the restart too
            for nai, sa in store.mn_ha_keys().items():
                self._aaa.relearn(nai, sa, self.security_associations)
            self._aaa.on_learnt = store.put_mn_ha_key
            self._aaa.on_forgotten = store.remove_mn_ha_key
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
        redirects = self._redirects
        if not redirects:
            return None
        if nai is not None and nai in redirects:
            return redirects[nai]
        return redirects.get(home_address)

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
            "ha", self._counters, lambda out: ha_revoke.revoke_node(self, node, now, reason, out)
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
            ha_revoke.revoke_node(self, node, now, f"redirected to {to}", out)

        return error_boundary("ha", self._counters, body)

    def _revocation_offered(self, ctx: HaRequest) -> RevocationSupportExtension | None:
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

    def _begin(self, event: UdpReceived, now: float) -> HaRequest:
        try:
            msg = decode_message(event.payload)
        except UnknownExtensionError as e:
            # RFC 5944 §1.9: unknown non-skippable extension -> silently discard.
            raise Discard("unknown_extension", str(e)) from None
        except DecodeError as e:
            raise Discard("decode_error", str(e)) from None
        if not isinstance(msg, RegistrationRequest):
            raise Discard("unexpected_message", type(msg).__name__)
        return HaRequest(self, event, now, msg, home_address=msg.home_address)

    def _accept(self, ctx: HaRequest) -> list[Action]:
        req = ctx.request
        hoa, coa = ctx.home_address, req.care_of_address
        before = _A if self._bindings.bindings_of(hoa) else _H
        if not ctx.deregistration:
            inp = BindingInput.REGISTER
        elif ctx.coa_int == int(hoa):
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
        log_level = INFO
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
            replaced: tuple[MobilityBinding, ...] = ()
            if not ctx.simultaneous:
                # RFC 5944 §3.8.2.2 (S clear): the new binding replaces every other one.
                replaced = self._bindings.remove(hoa)
            bits = ctx.flag_bits
            broadcast = bool(bits & _FLAG_B)
            revocation = ctx.revocation
            binding = MobilityBinding.of(
                hoa,
                coa,
                lifetime,
                ctx.now,
                expiry(ctx.now, lifetime),
                req.identification,
                req.flags,
                ctx.encapsulation,
                bool(bits & _FLAG_T),
                ctx.event.src,
                ctx.nai,
                revocation.timestamp if revocation else None,
                self._inform(revocation) if revocation is not None else False,
            )
            old = self._bindings.put(binding)
            if old is None and len(replaced) == 1:
                old = replaced[0]
            if old is not None and len(replaced) <= 1 and same_binding(old, binding):
                # a renewal that leaves the binding as it was: its log line is routine
                # (debug); this counter keeps it visible in ``mip4 status``
                log_level = DEBUG
                self._counters.event("renewal_unchanged")
            actions.append(
                InstallBinding.of(
                    hoa,
                    coa,
                    ctx.encapsulation,
                    binding.reverse_tunnel,
                    binding.expires,
                    broadcast,
                    self.config.interface if broadcast else None,
                    bool(bits & _FLAG_D),
                )
            )
            # make before break: the replaced bindings go after the new one is installed,
            # so a datagram for the node arriving in between is tunnelled, not dropped
            for b in replaced:
                if int(b.care_of_address) != ctx.coa_int:
                    actions.append(RemoveBinding(hoa, b.care_of_address))
        # a registration has just put its binding: the node is away (no table lookup)
        after = self.state_of(hoa) if ctx.deregistration else _A
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
        if log_level < self.log_level:  # a line nobody writes: not built (see log_level)
            return actions
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
                    "decision": inp._value_,
                    "encapsulation": ctx.encapsulation._name_,
                    "nai": ctx.nai,
                },
                log_level,
            )
        )
        return actions

    def _deny(self, ctx: HaRequest, denial: RegistrationDenied) -> list[Action]:
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

    def _denied_early(
        self,
        event: UdpReceived,
        now: float,
        code: ReplyCode,
        failure: AuthFailure,
        ext_type: int,
        spi: int | None,
        mn_sa: SecurityAssociation,
        fa_sa: SecurityAssociation | None = None,
    ) -> list[Action]:
        """What :meth:`handle` answers for a well-formed request whose MN-HA (131) or
        FA-HA (132) check failed (RFC 5944 §3.8.2.1), for the renewal fast path that
        found it so (:mod:`mip4.core.ha_renewal`): the request is decoded and denied as
        the pipeline would deny it, without checking the authenticator again."""
        ctx = self._begin(event, now)
        check_well_formed(ctx)  # (passes: the fast path checked it; it reads the NAI)
        ctx.mn_sa, ctx.fa_sa = mn_sa, fa_sa
        error = AuthenticationError(failure, ext_type, spi)
        denial = RegistrationDenied(code, str(error))

        def body(_out: list[Action]) -> None:
            raise denial

        return error_boundary(
            "ha",
            self._counters,
            body,
            who=_who(event),
            on_denied=lambda d: self._deny(ctx, d),
        )

    def _fa_sa_for_reply(self, ctx: HaRequest) -> SecurityAssociation | None:
        """The FA-HA association for the request's sender, when it is a foreign agent."""
        if not via_foreign_agent(ctx):
            return None
        src = ctx.event.src
        for ext in ctx.request.extensions:
            if isinstance(ext, ForeignHomeAuthExtension):
                sa = self.security_associations.get(src, ext.spi)
                if sa is not None:
                    return sa
        sas = self.security_associations.for_peer(src)
        return sas[0] if sas else None

    def _mn_sa_for_reply(self, ctx: HaRequest) -> SecurityAssociation | None:
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
        ctx: HaRequest,
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
        extensions = ctx.reply_extensions
        for e in req.extensions:
            if isinstance(e, MobileNodeNAIExtension):
                extensions = (e, *extensions)
                break
        if home_agent is None:
            home_agent = ctx.reply_home_agent or req.home_agent
        if ctx.revocation is None or not code.accepted:
            # The usual reply (MN-HA, and FA-HA for a foreign agent that shares an SA with
            # this agent): its bytes are built directly, without the message objects
            # ``_reply_message`` makes for the general case -- the same bytes (issue 13;
            # tests/core/test_ha_reply_paths.py compares the two).
            payload = _RRP_HEADER.pack(
                3, int(code), lifetime, int(ctx.home_address), int(home_agent), identification
            )
            if extensions:
                payload += encode_extensions(extensions)
            # RFC 5944 §3.8.3.2: MN-HA MUST be included when the HA has the MN's SA;
            # FA-HA (when shared with the foreign agent) comes after it (§3.8.3.1).
            if ctx.mn_sa is not None:
                payload = signed_bytes(payload, MN_HA, ctx.mn_sa)
            if ctx.fa_sa is not None:
                payload = signed_bytes(payload, FA_HA, ctx.fa_sa)
        else:
            payload = self._reply_message(
                ctx, code, lifetime, identification, home_agent, extensions
            )
        # RFC 5944 §3.8.3.1: to the request's source address and UDP source port, from the
        # request's destination address unless that was a broadcast.
        src = ev.dst
        d = int(src)
        bcast = int(self.config.home_network.broadcast_address)
        if d in (0, _ALL_ONES, bcast) or d >> 28 == 0xE:  # 0.0.0.0, broadcasts, multicast
            src = self.config.address
        return SendUdp.of(ev.src, payload, ev.sport, ev.dport if ev.dport else MIP_PORT, src)

    def _reply_message(
        self,
        ctx: HaRequest,
        code: ReplyCode,
        lifetime: int,
        identification: int,
        home_agent: IPv4Address,
        extensions: tuple[Extension, ...],
    ) -> bytes:
        """The reply's bytes built as a message and signed extension by extension (the
        general case: an accepted registration that negotiated revocation support)."""
        reply = RegistrationReply.of(
            int(code), lifetime, ctx.home_address, home_agent, identification, extensions
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
        return reply.raw or reply.encode()


def _who(event: object) -> dict[str, object]:
    if isinstance(event, UdpReceived):
        return {"source": event.src, "sport": event.sport, "interface": event.interface}
    return {"event": type(event).__name__}
