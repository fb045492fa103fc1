"""The mobile node's registration client: build, sign, send, retransmit, match and verify.

Theory of operation
-------------------
:class:`RegistrationClient` holds what the node has asked its home agent for: the outstanding
request (:class:`PendingRequest`), the binding it believes the home agent holds
(:class:`Binding`), the corrections learnt from denials for the current attachment
(:class:`Corrections`) and when to try again. It never changes the node's state: every
method returns an outcome that names the :class:`~mip4.core.mn_state.MnInput` for the
coordinator's transition table, with the actions to emit once the transition is made.

* Requests (RFC 5944 §3.6.1): flags from the configuration *and* the attachment (S, B; D for
  a co-located address; M or G only if the agent advertises them, §3.6.1.2; T only if asked
  for and offered, RFC 3024 §5.1), the lifetime capped by the agent's and by a 69 reply,
  signed with the MN-HA authenticator (§3.6.1.3); extensions for the foreign agent only
  (challenge, RFC 4721 §3.2; Encapsulating Delivery Style, RFC 3024 §3.3) follow it.
* Retransmission (§3.6.3): after ``retransmit_initial``, doubling up to a bound; with
  timestamps each retransmission is a new registration with a new Identification -- except
  a request answering a challenge (a foreign agent's, or the home agent's for a co-located
  node), resent unchanged (a new registration would answer the challenge its first copy
  spent: 106, RFC 4721 §3.2; 131 from the home agent).
* Replies (§3.6.2.1): used only if the home address and the low 32 bits of the
  Identification match the outstanding request and, unless it is a foreign agent's denial
  without one, the MN-HA authenticator verifies. Each code's reaction is data
  (:mod:`mip4.core.mn_reactions`); :meth:`RegistrationClient.reply` turns it into a
  :class:`Step` (a transition), a :class:`Retry`, a :class:`RefusedCareOf` or an
  :class:`AwaitChallenge`.
* The binding's lifetime runs from when the request was sent (§3.6.2.2); the node renews it
  at ``renew_fraction`` of the granted lifetime.
* Revocation (RFC 3543): an unsolicited reply from the agent the node is registered
  through, denying (65 or 129) with Lifetime 0 and the Identification of the registration
  held, is a revocation notice: :class:`Revoked`; the coordinator re-registers or stops
  (``on_revocation``).
* Dynamic home agents (RFC 4433): with Home Agent 0.0.0.0 or 255.255.255.255 and
  ``requested_home_agent``, requests carry the Requested HA extension and go to that agent;
  the accepting agent's address is adopted; a 143 with a Redirected HA extension (under
  MN-HA) sends the node to another agent, at most ``redirect_limit`` times in a row.
* Keys from AAA (RFC 3957, :mod:`mip4.core.mn_keys`): a node with an NAI and an MN-AAA
  secret and no MN-HA association asks for a key in its requests (extension 42, no MN-HA)
  until it has a valid one; the reply's nonce (extension 43) gives the key that must verify
  the reply's MN-HA authenticator, and the accepted key signs the following requests until
  it expires or the binding ends. Such a node also asks a foreign agent it has no key for
  for an MN-FA key (extension 40, before MN-AAA); the accepted reply's nonce (41) gives the
  key that must verify the reply's MN-FA authenticator (a mismatch is counted
  ``aaa_fa_key_mismatch`` and the key not used); it signs the requests through that agent
  (MN-FA, last) until the binding ends or the node attaches elsewhere, and a 67 to a request
  signed with it (the agent lost it) makes the node ask again.
* The home agent has no key for the node (issue 10/11, ``Reaction.RETRY_AAA``): a 131
  without an MN-HA extension, to a node with an NAI and an MN-AAA secret, is taken
  unauthenticated -- the home agent cannot sign it, and all it can make the node do is
  the bounded retry below, as an advertised challenge can. A co-located node keeps the
  challenge the reply carries (MN-FA Challenge, :mod:`mip4.core.ha_aaa`) and retries at
  once with it and MN-AAA (RFC 4721: it has no foreign agent to advertise one); a node
  whose key came from AAA and that did not ask for a new one forgets its key, so the
  retry asks for one (RFC 3957 extension 42 with MN-AAA: the home agent lost the key, a
  restart) -- through a foreign agent after a fresh advertisement (its challenge was
  spent). Nothing new to try (no challenge for a co-located node, a key already asked
  for) gives up; the retries count against ``correction_limit``; a refusal by AAA is
  108 (foreign agent) or 144, which give up -- a 144 without MN-HA too, when the request
  carried MN-AAA (the home agent had no key to sign it with).

Module layout: the records the client keeps (:class:`PendingRequest`, :class:`Binding`,
:class:`RegistrationRecord`, :class:`Corrections`), the outcomes it returns (:class:`Step`,
:class:`Retry`, :class:`RefusedCareOf`, :class:`Revoked`, :class:`AwaitChallenge`,
``ReplyOutcome``) and :func:`encapsulation_of` moved to :mod:`mip4.core.mn_records`; they
are re-exported here, so ``from mip4.core.mn_client import Step`` still works. This module
keeps the client's behaviour on the request side: building, signing, sending and
retransmitting. The reply half -- matching, verifying and reacting to replies, applying an
accepted one -- is in :mod:`mip4.core.mn_reply` (functions of the client;
:meth:`RegistrationClient.reply` hands a datagram to it).
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network

from mip4.security.auth import (
    AuthenticationError,
    append_extensions,
    sign,
    sign_mn_aaa,
    verify,
)
from mip4.security.replay import MobileNodeReplay
from mip4.security.sa import ReplayMethod, SecurityAssociation
from mip4.wire.ext_keys import AAA_SUBTYPE, MNFAKeyGenNonceRequest
from mip4.wire.ext_mobility import DynamicHAExtension, DynamicHASubtype
from mip4.wire.ext_tunnel import EncapsulatingDeliveryExtension
from mip4.wire.extensions import (
    Extension,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.icmp import AgentFlags
from mip4.wire.messages import (
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
)
from mip4.wire.msg_base import REG_FLAGS

from . import mn_reply
from .actions import Action, Encapsulation, Log, SendUdp, UseColocatedAddress, UseForeignAgent
from .counters import Counters
from .events import UdpReceived
from .mn_attachment import Attachment, AttachmentKind
from .mn_config import MobileNodeConfig, ReverseTunnel
from .mn_keys import AaaKeys, KeyOffer
from .mn_reactions import CodeReaction
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

MN_HA = MobileHomeAuthExtension.TYPE
MN_FA = MobileForeignAuthExtension.TYPE
#: agent flags tested per request, as integers (RFC 5944 §2.1.1, RFC 3024 §3.4)
_M, _G, _T = int(AgentFlags.M), int(AgentFlags.G), int(AgentFlags.T)
_RS, _RB, _RD, _RM, _RG, _RT = (
    int(f)
    for f in (
        RegistrationFlags.S,
        RegistrationFlags.B,
        RegistrationFlags.D,
        RegistrationFlags.M,
        RegistrationFlags.G,
        RegistrationFlags.T,
    )
)
#: IP TTL of a request with T sent to a foreign agent (RFC 3024 §4.1.1)
REVERSE_TUNNEL_TTL = 255


class RegistrationClient:
    """The registration-client part of the mobile node (see the module docstring)."""

    __slots__ = (
        "_net",
        "_net_key",
        "_offer",
        "adjust",
        "announced",
        "await_challenge",
        "binding",
        "clock_offset",
        "config",
        "configured_sa",
        "counters",
        "fa_key",
        "home_address",
        "home_agent",
        "home_challenge",
        "keys",
        "last_reaction",
        "last_registration",
        "pending",
        "replay",
        "retry_at",
        "rng",
    )

    def __init__(
        self,
        config: MobileNodeConfig,
        sa: SecurityAssociation | None,
        clock_offset: float,
        rng: random.Random,
        counters: Counters,
    ) -> None:
        self.config = config
        #: the configured MN-HA association; ``None``: keys from AAA (RFC 3957)
        self.configured_sa = sa
        self.clock_offset = clock_offset
        self.rng = rng
        self.counters = counters
        self.keys: AaaKeys | None = None
        if sa is None:
            if config.nai is None or config.mn_aaa_secret is None:
                raise ValueError("no MN-HA association: keys from AAA need nai and mn_aaa_secret")
            self.keys = AaaKeys(config.nai, config.mn_aaa_secret)
        self.replay = MobileNodeReplay(method=self._replay_method)
        #: the key a reply's nonce implies while that reply is verified (RFC 3957)
        self._offer: KeyOffer | None = None
        self.home_agent = config.home_agent
        #: the home address in use: the configured one, or the one the home agent assigned
        #: (0.0.0.0 until then; RFC 2794 §2)
        self.home_address = config.home_address
        self.pending: PendingRequest | None = None
        self.binding: Binding | None = None
        self.adjust = Corrections()
        self.retry_at: float | None = None  #: backing off or failed: next attempt
        self.await_challenge = False
        #: the challenge the home agent's last 131 carried, for a co-located node's next
        #: request (RFC 4721 without a foreign agent; ``Reaction.RETRY_AAA``)
        self.home_challenge: bytes | None = None
        #: RFC 3957: the MN-FA key AAA gave for the foreign agent (its address) the node is
        #: registered through; asked for by a node whose MN-HA key comes from AAA
        self.fa_key: tuple[IPv4Address, SecurityAssociation] | None = None
        #: the last UseForeignAgent / UseColocatedAddress handed to the I/O layer
        self.announced: Action | None = None
        #: the last reply code received and the reaction taken
        self.last_reaction: CodeReaction | None = None
        #: the last accepted registration or deregistration (round trip, retransmissions)
        self.last_registration: RegistrationRecord | None = None
        #: :attr:`home_network` as last computed, and what it was computed from
        self._net_key: tuple[object, ...] = ()
        self._net: IPv4Network | None = None

    # ------------------------------------------------------------------------------------
    # Attachment changes
    # ------------------------------------------------------------------------------------

    @property
    def sa(self) -> SecurityAssociation:
        """The MN-HA association in use: the configured one, else the key from AAA.
        Raises ``LookupError`` while a node without a configured one has no key yet."""
        if self.configured_sa is not None:
            return self.configured_sa
        if self.keys is not None and self.keys.key is not None:
            return self.keys.key.association
        raise LookupError("no MN-HA key yet (asked of the home AAA server, RFC 3957)")

    @sa.setter
    def sa(self, sa: SecurityAssociation) -> None:
        self.configured_sa = sa

    @property
    def home_network(self) -> IPv4Network | None:
        """The home network as far as the node knows it (``None``: not known yet):
        the home address in use -- configured or assigned (RFC 2794) -- within
        ``home_subnet`` when that holds it, else with ``home_prefix_len``; before an
        address is assigned, ``home_subnet``, else the home agent's network (configured,
        adopted from a reply, or requested, RFC 4433); a node given none of these
        (Home Agent 0.0.0.0, the home AAA server picks) knows none.

        Computed again only when the configuration, the home address or the home agent
        changed (it is asked on every link event and advertisement)."""
        key = (self.config, self.home_address, self.home_agent)
        k = self._net_key
        if k and k[0] is key[0] and k[1] == key[1] and k[2] == key[2]:
            return self._net
        self._net = net = self._home_network()
        self._net_key = key
        return net

    def _home_network(self) -> IPv4Network | None:
        cfg = self.config
        sub = cfg.home_subnet
        if self.home_address != IPv4Address(0):
            if sub is not None and self.home_address in sub:
                return sub
            return IPv4Network((self.home_address, cfg.home_prefix_len), strict=False)
        if sub is not None:
            return sub
        base = self.home_agent
        if base in UNASSIGNED_HOME_AGENT:
            base = cfg.requested_home_agent or base
        if base in UNASSIGNED_HOME_AGENT:
            return None
        return IPv4Network((base, cfg.home_prefix_len), strict=False)

    def _broadcast(self, address: IPv4Address) -> bool:
        """``address`` is the home network's directed broadcast (RFC 5944 §3.6.1.2)."""
        net = self.home_network
        return net is not None and address == net.broadcast_address

    @property
    def _replay_method(self) -> ReplayMethod:
        sa = self.configured_sa
        return sa.replay if sa is not None else ReplayMethod.TIMESTAMPS

    def mn_ha(self, now: float) -> SecurityAssociation | None:
        """The MN-HA association to sign with: the configured one, or the key from AAA
        while it is valid (``None``: ask for one, RFC 3957)."""
        if self.configured_sa is not None:
            return self.configured_sa
        assert self.keys is not None
        return self.keys.current(now)

    def nothing_to_deregister(self, now: float) -> str | None:
        """Why a deregistration from home would be pointless (``None``: send it). A node
        whose MN-HA key comes from AAA (RFC 3957) and that holds no valid key cannot sign
        one -- and a key comes only with an accepted registration, so no binding it made
        is left either (the home agent forgets the key with the binding): a request
        without MN-HA would only be denied (131, RFC 5944 §3.6.1.3), and asking AAA for a
        key just to deregister nothing is no better."""
        if self.configured_sa is not None or self.mn_ha(now) is not None:
            return None
        if self.binding is not None:
            return None
        return "no MN-HA key (keys from AAA, RFC 3957) and no binding to deregister"

    def forget(self) -> None:
        """Detached, or home: no request, no binding, nothing learnt."""
        self.pending = None
        self.retry_at = None
        self.binding = None
        self.announced = None
        self.await_challenge = False
        self.adjust = Corrections()
        self.fa_key = None

    def attached(self, att: Attachment) -> None:
        """A new attachment: a binding for another care-of address is not a registration
        here; corrections start afresh."""
        if self.binding is not None and self.binding.care_of_address != att.care_of_address:
            self.binding = None
        if self.fa_key is not None and (att.agent is None or att.agent.address != self.fa_key[0]):
            self.fa_key = None  # RFC 3957: a key for another foreign agent
        self.adjust = Corrections()
        self.await_challenge = False
        self.retry_at = None

    def registered_at(self, att: Attachment | None) -> bool:
        """A binding is held for ``att``'s care-of address."""
        b = self.binding
        return (
            b is not None
            and att is not None
            and att.kind is not AttachmentKind.HOME
            and b.care_of_address == att.care_of_address
        )

    # ------------------------------------------------------------------------------------
    # Sending requests
    # ------------------------------------------------------------------------------------

    def registration(self, att: Attachment, now: float, registered: bool, why: str) -> Step:
        """A registration (or, at home, a deregistration of all bindings) for ``att``."""
        if att.kind is AttachmentKind.HOME:
            return self.deregistration(att, now, None, registered)
        # the flags as an integer, then the one precomputed member (no enum arithmetic)
        cfg = self.config
        bits = (_RS if cfg.simultaneous_bindings else 0) | (_RB if cfg.broadcast else 0)
        if att.kind is AttachmentKind.COLOCATED:
            bits |= _RD
        enc = self._encapsulation(att)
        if enc is Encapsulation.MINIMAL:
            bits |= _RM
        elif enc is Encapsulation.GRE:
            bits |= _RG
        if self.reverse_tunnel(att):
            bits |= _RT
        flags = REG_FLAGS[bits]
        entry = log("mn.register", {"why": why, "care_of_address": att.care_of_address})
        step = self._send_new(
            now,
            att,
            flags=flags,
            lifetime=self._lifetime(att),
            care_of_address=att.care_of_address,
            deregister=False,
            registered=registered,
        )
        return Step(step.input, step.why, step.after, before=(entry,))

    def deregistration(
        self,
        att: Attachment,
        now: float,
        care_of_address: IPv4Address | None,
        registered: bool,
    ) -> Step:
        """Ask the home agent to drop all bindings (``None``: Care-of Address = home
        address, RFC 5944 §3.6.1.2) or only ``care_of_address`` (S set, Lifetime 0)."""
        if care_of_address is None:
            coa = self.home_address  # RFC 5944 §3.6.1.2: deregister all bindings
            flags = REG_FLAGS[0]
        else:
            coa = care_of_address
            flags = REG_FLAGS[_RS]  # only this binding
        return self._send_new(
            now,
            att,
            flags=flags,
            lifetime=0,
            care_of_address=coa,
            deregister=True,
            registered=registered,
        )

    def _encapsulation(self, att: Attachment) -> Encapsulation:
        for enc in self.config.encapsulations:
            if enc in self.adjust.no_encapsulations:
                continue
            if enc is Encapsulation.IPIP:
                return enc
            if att.kind is AttachmentKind.COLOCATED:
                return enc  # the node decapsulates itself
            flags = att.agent.flag_bits if att.agent is not None else 0
            if enc is Encapsulation.MINIMAL and flags & _M:
                return enc
            if enc is Encapsulation.GRE and flags & _G:
                return enc
        return Encapsulation.IPIP

    def reverse_tunnel(self, att: Attachment) -> bool:
        offered = att.kind is AttachmentKind.COLOCATED or (
            att.agent is not None and bool(att.agent.flag_bits & _T)
        )
        forced = self.adjust.reverse_tunnel
        if forced is not None:
            return forced and offered
        return self.config.reverse_tunnel is not ReverseTunnel.OFF and offered

    def _lifetime(self, att: Attachment) -> int:
        lifetime = self.config.lifetime
        if att.agent is not None and att.agent.registration_lifetime:
            # RFC 5944 §3.6.1.2: not more than the agent advertises.
            lifetime = min(lifetime, att.agent.registration_lifetime)
        if self.adjust.max_lifetime is not None:
            lifetime = min(lifetime, self.adjust.max_lifetime)
        return max(lifetime, 1)

    def _send_new(
        self,
        now: float,
        att: Attachment,
        *,
        flags: RegistrationFlags,
        lifetime: int,
        care_of_address: IPv4Address,
        deregister: bool,
        registered: bool,
    ) -> Step:
        request = self._build(att, flags, lifetime, care_of_address, now)
        send = self._send_action(att, request)
        timeout = self.config.retransmit_initial
        self.pending = PendingRequest(
            request=request,
            send=send,
            attachment=att,
            deregister=deregister,
            first_sent=now,
            last_sent=now,
            retransmissions=0,
            timeout=timeout,
            next_retry=now + timeout,
        )
        self.retry_at = None
        self.counters.event("requests")
        entry = log(
            "mn.request",
            {
                "lifetime": lifetime,
                "care_of_address": care_of_address,
                "home_agent": self.home_agent,
                "flags": str(flags),
                "identification": f"{request.identification:#018x}",
            },
        )
        if att.kind is AttachmentKind.HOME:
            return Step(MnInput.DEREGISTRATION_SENT, "deregistration sent", (send, entry))
        if registered:
            return Step(MnInput.RENEWAL_SENT, "re-registration sent", (send, entry))
        return Step(MnInput.REQUEST_SENT, "request sent", (send, entry))

    def _build(
        self,
        att: Attachment,
        flags: RegistrationFlags,
        lifetime: int,
        care_of_address: IPv4Address,
        now: float,
    ) -> RegistrationRequest:
        identification = self.replay.next_identification(self._unix(now), self.rng.getrandbits(32))
        # RFC 2794 §2: the MN-NAI extension precedes the authentication extensions.
        nai = self.config.nai
        before_auth: list[Extension] = []
        if nai is not None:
            before_auth.append(MobileNodeNAIExtension(nai.encode()))
        requested = self._requested_home_agent()
        if requested is not None:
            # RFC 4433 §3.1: Home Agent 0.0.0.0 or all ones, and the Requested HA extension
            # (authenticated by MN-HA).
            before_auth.append(DynamicHAExtension(DynamicHASubtype.REQUESTED_HA, requested))
        mn_ha = self.mn_ha(now)
        if mn_ha is None and self.keys is not None:
            # RFC 3957 §6.1: ask the home AAA server for an MN-HA key; before MN-AAA.
            before_auth.append(self.keys.request_extension())
        req = RegistrationRequest(
            flags=flags,
            lifetime=lifetime,
            home_address=self.home_address,
            home_agent=self.home_agent,
            care_of_address=care_of_address,
            identification=identification,
            extensions=tuple(before_auth),
        )
        # RFC 5944 §3.6.1.3 (without a key yet, MN-AAA alone authenticates it: RFC 3957)
        signed = sign(req, MobileHomeAuthExtension, mn_ha) if mn_ha is not None else req
        # Extensions for the foreign agent only follow MN-HA (RFC 5944 §3.6.1.3); it removes
        # them before relaying.
        fa_only: list[Extension] = []
        challenge = att.agent.advertisement.challenge if att.agent is not None else None
        if att.kind is AttachmentKind.COLOCATED:
            challenge = self.home_challenge  # from the home agent's reply (RETRY_AAA)
        secret = self.config.mn_aaa_secret
        if challenge and secret is not None:
            # RFC 4721 §3.1, §5: NAI, MN-HA, MN-FA Challenge, MN-AAA -- the agent relays
            # everything up to MN-AAA and asks the home AAA server to check it.
            signed = append_extensions(signed, MobileForeignChallengeExtension(challenge))
            if self._asks_fa_key(att):
                # RFC 3957 §5.1: ask for an MN-FA key too (MN-AAA covers the request)
                signed = append_extensions(signed, MNFAKeyGenNonceRequest(AAA_SUBTYPE, 0))
            signed = sign_mn_aaa(signed, self.config.mn_aaa_spi, secret)
        elif challenge:
            # RFC 4721 §3.2: echo the agent's challenge.
            fa_only.append(MobileForeignChallengeExtension(challenge))
        if (
            att.kind is AttachmentKind.FOREIGN_AGENT
            and flags & RegistrationFlags.T
            and self.config.encapsulating_delivery
            and not self.adjust.direct_delivery
        ):
            # RFC 3024 §3.3: ask for the Encapsulating Delivery Style (only with T).
            fa_only.append(EncapsulatingDeliveryExtension())
        # (a request with nothing to sign -- no key yet and no challenge to answer, RFC 3957
        # and RFC 4721 without a foreign agent -- is encoded here all the same)
        signed = append_extensions(signed, *fa_only)
        fa = self.fa_key
        if fa is not None and att.agent is not None and att.agent.address == fa[0]:
            # RFC 5944 §3.6.1.3: MN-FA last, covering everything before it
            signed = sign(signed, MobileForeignAuthExtension, fa[1])
        return signed

    def _asks_fa_key(self, att: Attachment) -> bool:
        """RFC 3957: a node whose MN-HA key comes from AAA asks for an MN-FA key from a
        foreign agent it has none for."""
        if self.keys is None or att.kind is not AttachmentKind.FOREIGN_AGENT:
            return False
        fa = self.fa_key
        return fa is None or att.agent is None or fa[0] != att.agent.address

    def _take_fa_key(self, msg: RegistrationReply, att: Attachment, out: list[Action]) -> None:
        """RFC 3957: the MN-FA key the reply's nonce (extension 41, AAA subtype) gives,
        once the reply's MN-FA authenticator verifies with it."""
        agent = att.agent
        sa = self.keys.fa_candidate(msg) if self.keys is not None else None
        if agent is None or sa is None:
            return

        def lookup(spi: int) -> SecurityAssociation | None:
            return sa if spi == sa.spi else None

        try:
            verify(msg, MN_FA, lookup)
        except AuthenticationError:
            # the foreign agent holds another key (the server's AAA key differs from ours)
            self.counters.event("aaa_fa_key_mismatch")
            out.append(Log("mn.fa_key_mismatch", {"spi": sa.spi, "agent": agent.address}))
            return
        self.fa_key = (agent.address, sa)
        self.counters.event("aaa_fa_keys")
        out.append(Log("mn.fa_key_installed", {"spi": sa.spi, "agent": agent.address}))

    def _unix(self, now: float) -> float:
        return now + self.clock_offset

    def _awaiting_home_agent(self) -> bool:
        """RFC 4433: Home Agent 0.0.0.0 or 255.255.255.255 configured and none adopted yet
        (with a Requested HA extension, or left to the home AAA server to pick)."""
        return (
            self.home_agent == self.config.home_agent and self.home_agent in UNASSIGNED_HOME_AGENT
        )

    def _requested_home_agent(self) -> IPv4Address | None:
        """RFC 4433: the home agent asked for while none is assigned yet."""
        if self.config.dynamic_home_agent and self.home_agent == self.config.home_agent:
            return self.config.requested_home_agent
        return None

    def _send_action(self, att: Attachment, request: RegistrationRequest) -> SendUdp:
        if att.kind is AttachmentKind.FOREIGN_AGENT:
            agent = att.agent
            assert agent is not None
            # RFC 5944 §3.6.1.1: to the agent's address (the advertisement's source), from
            # the home address, TTL 1; the agent is reached by its link-layer address.
            # RFC 3024 §4.1.1: a request with T MUST go out with TTL 255 (the agent checks
            # it and denies others with 76, "mobile node too distant", §4.2.1): this limits
            # reverse-tunnel hijacking to nodes on the agent's link.
            return SendUdp(
                dst=agent.address,
                payload=request.raw,
                sport=self.config.port,
                src=self.home_address,
                interface=att.interface,
                link_dst=agent.link_address,
                ttl=REVERSE_TUNNEL_TTL if request.flags & RegistrationFlags.T else 1,
            )
        src = att.care_of_address if att.kind is AttachmentKind.COLOCATED else None
        return SendUdp(
            dst=self._requested_home_agent() or self.home_agent,
            payload=request.raw,
            sport=self.config.port,
            src=src or self.home_address,
            interface=att.interface,
        )

    # ------------------------------------------------------------------------------------
    # Timers
    # ------------------------------------------------------------------------------------

    def retransmit_due(self, now: float, out: list[Action]) -> Step | None:
        """Retransmit the outstanding request if its timeout passed (RFC 5944 §3.6.3);
        a :class:`Step` when the attempt is abandoned."""
        p = self.pending
        if p is None or now < p.next_retry:
            return None
        if p.retransmissions >= self.config.retransmit_limit:
            out.append(Log("mn.request_timeout", {"retransmissions": p.retransmissions}))
            self.pending = None
            if p.deregister and p.attachment.kind is AttachmentKind.HOME:
                return Step(MnInput.DEREGISTRATION_UNANSWERED, "deregistration unanswered")
            return Step(MnInput.BACKED_OFF, "no reply to the registration request")
        p.retransmissions += 1
        # RFC 5944 §3.6.3: each timeout at least twice the previous, bounded; the bound
        # SHOULD NOT exceed the requested lifetime.
        cap = self.config.retransmit_max
        if p.request.lifetime:
            cap = min(cap, max(float(p.request.lifetime), self.config.retransmit_initial))
        p.timeout = min(p.timeout * 2.0, cap)
        if self._replay_method is ReplayMethod.TIMESTAMPS and not self._answers_challenge(p):
            # RFC 5944 §3.6.3: with timestamps a retransmission is a new registration with
            # a new Identification.
            req = p.request
            p.request = self._build(p.attachment, req.flags, req.lifetime, req.care_of_address, now)
            p.send = self._send_action(p.attachment, p.request)
        p.last_sent = now
        p.next_retry = now + p.timeout
        self.counters.event("retransmissions")
        out.append(p.send)
        out.append(
            Log(
                "mn.retransmit",
                {
                    "n": p.retransmissions,
                    "next_timeout": p.timeout,
                    "identification": f"{p.request.identification:#018x}",
                },
            )
        )
        return None

    @staticmethod
    def _answers_challenge(p: PendingRequest) -> bool:
        """The outstanding request answers a challenge (RFC 4721) -- a foreign agent's, or
        for a co-located node its home agent's: a new registration built again from the
        same attachment would answer it a second time, which the agent refuses (106, §3.2;
        131 from the home agent) -- its first copy spent it. The request is resent
        unchanged instead: the agent recognises the copy of a request it holds for the home
        AAA server and drops it, the one reply answering both
        (:mod:`mip4.core.foreign_agent`, :mod:`mip4.core.ha_aaa`); a challenge that went
        stale meanwhile is refused, and the node gets a fresh one."""
        return p.attachment.kind is not AttachmentKind.HOME and any(
            isinstance(e, MobileForeignChallengeExtension) for e in p.request.extensions
        )

    def binding_expired(self, now: float, out: list[Action]) -> bool:
        """Drop the binding when its lifetime ran out; ``True`` if it did."""
        b = self.binding
        if b is None or b.expires is None or now < b.expires:
            return False
        out.append(Log("mn.binding_expired", {"care_of_address": b.care_of_address}))
        self.binding = None
        self.fa_key = None  # the foreign agent forgot it with the visitor (RFC 3957)
        if self.keys is not None:
            self.keys.forget()  # the home agent forgot it with the binding (RFC 3957)
        return True

    def renewal_due(self, now: float) -> bool:
        """Time to re-register (nothing outstanding, no pause scheduled); consumes it."""
        b = self.binding
        if (
            b is not None
            and b.renew_at is not None
            and now >= b.renew_at
            and self.pending is None
            and self.retry_at is None
        ):
            b.renew_at = None
            return True
        return False

    def retry_due(self, now: float) -> bool:
        """The pause after a denial (or a give-up with ``failed_retry``) is over."""
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            return True
        return False

    def next_deadline(self, renewing: bool) -> list[float]:
        """The client's deadlines; the renewal time only when ``renewing`` (the node is
        registered: it re-registers only then, so a binding kept while failed or waiting
        for a challenge must not make the engine wake up for nothing)."""
        times: list[float] = []
        if self.pending is not None:
            times.append(self.pending.next_retry)
        if self.retry_at is not None:
            times.append(self.retry_at)
        b = self.binding
        if b is not None:
            if b.expires is not None:
                times.append(b.expires)
            if (
                renewing
                and b.renew_at is not None
                and self.pending is None
                and self.retry_at is None
            ):
                times.append(b.renew_at)
        return times

    # ------------------------------------------------------------------------------------
    # Side effects of BACKED_OFF and GAVE_UP (run by the coordinator after the transition)
    # ------------------------------------------------------------------------------------

    def back_off(self, now: float, why: str, out: list[Action]) -> None:
        self.pending = None
        self.adjust.backoffs += 1
        delay = min(
            self.config.denial_backoff * 2.0 ** min(self.adjust.backoffs - 1, 32),
            self.config.denial_backoff_max,
        )
        self.retry_at = now + delay
        out.append(Log("mn.back_off", {"why": why, "retry_in": delay}))

    def give_up(self, now: float, reason: str, out: list[Action]) -> None:
        self.pending = None
        self.retry_at = None
        retry = self.config.failed_retry
        if retry is not None:
            # Start afresh later: the operator may have fixed what the peer objected to.
            self.retry_at = now + retry
            self.adjust = Corrections()
        out.append(Log("mn.gave_up", {"reason": reason, "retry_in": retry}))

    # ------------------------------------------------------------------------------------
    # Replies (RFC 5944 §3.6.2)
    # ------------------------------------------------------------------------------------

    def _discard(self, out: list[Action], why: str, **fields: object) -> None:
        # ``why`` is the short reason (the daemon rate-limits discard lines by it); the
        # specifics go in other fields (``detail``, ``code``...)
        self.counters.discard("reply")
        out.append(Log("mn.discard", {"why": why, **fields}))

    def reply(
        self, ev: UdpReceived, now: float, current: Attachment | None, out: list[Action]
    ) -> ReplyOutcome | None:
        """A datagram on the registration port; ``None`` when it is discarded (the reply
        half: :func:`mip4.core.mn_reply.reply`)."""
        return mn_reply.reply(self, ev, now, current, out)

    def revoked(self) -> None:
        """The binding is gone (revoked): nothing outstanding, nothing learnt."""
        self.binding = None
        self.pending = None
        self.retry_at = None
        self.adjust = Corrections()

    def _lookup(self, spi: int) -> SecurityAssociation | None:
        sa = self.configured_sa
        if self._offer is not None:  # a reply carrying a key's nonce is verified by it
            sa = self._offer.association
        elif self.keys is not None and self.keys.key is not None:
            sa = self.keys.key.association
        return sa if sa is not None and spi == sa.spi else None

    def _use_action(self, att: Attachment, flags: RegistrationFlags) -> Action:
        if att.kind is AttachmentKind.FOREIGN_AGENT:
            agent = att.agent
            assert agent is not None
            return UseForeignAgent(
                att.interface,
                agent.address,
                agent.link_address,
                self.home_address,
                home_agent=self.home_agent if flags & RegistrationFlags.B else None,
            )
        return UseColocatedAddress(
            att.interface,
            att.care_of_address,
            self.home_agent,
            self.home_address,
            encapsulation_of(flags),
            bool(flags & RegistrationFlags.T),
        )


__all__ = [
    "AwaitChallenge",
    "Binding",
    "Corrections",
    "PendingRequest",
    "RefusedCareOf",
    "RegistrationClient",
    "RegistrationRecord",
    "ReplyOutcome",
    "Retry",
    "Revoked",
    "Step",
    "encapsulation_of",
]
