"""The home agent's own questions to the home AAA server, for nodes known only by NAI.

Theory of operation
-------------------
A mobile node configured with an NAI and an MN-AAA secret, and no home address, is not
known to its home agent in advance: no MN-HA security association is configured for it and
no address is reserved. With ``home_agent.aaa`` on, the home agent asks the home AAA server
itself, as cdma2000 home agents do (RFC 3957's model; the foreign agent's Access-Accept is not
relayed to the home agent, so the home agent cannot take what it carried):

1. A Registration Request that carries an MN-NAI extension (RFC 2794) and an MN-AAA
   extension with its MN-FA Challenge (RFC 4721 §5), for an NAI with no MN-HA association
   in the store, is *held*; the engine emits an :class:`~mip4.aaa.messages.AaaRequest`
   (User-Name = NAI, CHAP-Password / CHAP-Challenge from the MN-AAA authenticator, RFC 4721
   §7; ``foreign_agent=False``) and nothing else.
2. The :class:`~mip4.aaa.messages.AaaAnswer` event with the same ``request_id`` decides:

   * ``ACCEPT`` with an MN-HA SPI and key (3GPP2-MN-HA-SPI, 3GPP2-MN-HA-Shared-Key): the
     association is added to the store under the NAI (the engine already keys a node's SA by
     its NAI when it sent one, RFC 2794 §2), the home address the server gave
     (Framed-IP-Address) is remembered for the NAI, and the held request runs through
     ``HA_PIPELINE`` as if it had just arrived: MN-HA is checked with the key the server
     gave, and ``assign_home_address`` gives the node the server's address;
   * ``ACCEPT`` without a key: the held request runs through the pipeline unchanged (an SA
     configured later, or 131);
   * ``REJECT``: 144 "mobile node failed AAA authentication" (RFC 4721 §10, the home
     agent's code), no binding;
   * ``TIMEOUT`` (no server answered): 130 "insufficient resources" -- transient; the node
     retries later (RFC 5944 §3.4).

   * RFC 3957 key distribution: when the held request carried the Generalized MN-HA Key
     Generation Nonce Request (42, AAA subtype) and the Accept carries the nonce the server
     derived the key with (``Mip4-Key-Nonce``), the key is :attr:`HaAaa.last_issued`: the
     request has no MN-HA authenticator (the node has no key yet; the AAA server verified
     its MN-AAA), the reply carries the Generalized MN-HA Key Generation Nonce Reply (43)
     and is signed with the new key. A node whose key expired asks again: a request with
     extension 42 is held even when an association learnt from AAA exists.

   A key the server derived with a nonce (``Mip4-Key-Nonce``) for a request that did *not*
   ask for one is not installed (``aaa_key_unrequested``): the node never sees that nonce,
   so it cannot hold that key, and installing it would make the home agent sign its 131
   with a key the node cannot verify -- the node would never learn that it must ask for a
   new key (below).

3. What AAA gave lasts as long as the node's address assignment: when its last binding
   ends (deregistration, expiry) the address is released and the association learnt from
   AAA is removed, so the next registration asks again.

4. **A co-located node** (RFC 4721 with no foreign agent on the path; issue 10: "the same
   check is available at the home agent when no foreign agent is on the path"): nobody
   advertises a challenge to it, so its first request cannot carry the MN-FA Challenge
   and MN-AAA extensions the AAA request needs. For a request the mobile node sent
   itself from its co-located care-of address (D set, IP source = care-of address) with
   an NAI that has no MN-HA association here, by NAI or by home address (or that asks for
   a key, RFC 3957), the home
   agent plays the foreign agent's part of RFC 4721 §3.2 (:meth:`HaAaa.check_colocated`):

   * the request must answer the challenge this agent gave that NAI in an earlier reply,
     unused and not older than :data:`CHALLENGE_LIFETIME`, and carry MN-AAA; the challenge
     is then spent (one use, no replays) and the request is held for AAA as above;
   * otherwise (challenge missing, unknown, stale or already used) the denial is 131
     "mobile node failed authentication" -- the home agent has nothing to authenticate
     the node with; the codes RFC 4721 gives for challenges (104--106) are in the
     foreign agent's range (64--127, RFC 5944 §3.4) and would tell the node that a
     foreign agent it does not use denied it -- and the reply carries a fresh challenge
     in an MN-FA Challenge extension (132). The reply has no MN-HA extension (the agent
     has no key for the node); the node takes it as unauthenticated, as it takes an
     advertised challenge, and retries once with that challenge and MN-AAA
     (:mod:`mip4.core.mn_client`). Challenges are drawn from the agent's ``rng``, at most
     :data:`MAX_CHALLENGES` NAIs are remembered at once (the oldest is forgotten first).
   * a copy of a request already held for AAA (a retransmission, same bytes from the same
     source) is dropped and counted ``duplicate_request``: its challenge was spent by its
     first copy, and the one reply answers both.

   RFC 4721's text on the home agent was not reachable from the machine that wrote this;
   the denial code follows from RFC 5944 §3.4's code ranges and the reply extension is
   RFC 4721's MN-FA Challenge extension (132), its extension for challenges in
   registration messages.

Requests held at once are bounded (:data:`MAX_HELD`, 130 beyond it). Pure: no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mip4.aaa.messages import AaaAnswer, AaaRequest, AaaResult
from mip4.security.auth import AuthenticationError
from mip4.security.sa import SecurityAssociation, SecurityAssociationStore
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_auth import GeneralizedAuthExtension, GeneralizedAuthSubtype
from mip4.wire.ext_keys import (
    AAA_SUBTYPE,
    AAAKeyGenNonce,
    MNHAKeyGenNonceReply,
    MNHAKeyGenNonceRequest,
    ReplayMethod,
)
from mip4.wire.extensions import MobileForeignChallengeExtension, MobileNodeNAIExtension
from mip4.wire.messages import RegistrationFlags, RegistrationRequest

from .counters import Counters
from .events import UdpReceived
from .registration import Discard, RegistrationDenied

__all__ = [
    "AAA_REJECT_CODE",
    "AAA_TIMEOUT_CODE",
    "CHALLENGE_CODE",
    "CHALLENGE_LENGTH",
    "CHALLENGE_LIFETIME",
    "MAX_CHALLENGES",
    "MAX_HELD",
    "HaAaa",
    "IssuedKey",
]

#: RFC 4721 §10: "mobile node failed AAA authentication", the home agent's code
AAA_REJECT_CODE = ReplyCode.HA_MN_FAILED_AAA_AUTH
#: RFC 5944 §3.4: 130 "insufficient resources" -- no AAA server answered; transient
AAA_TIMEOUT_CODE = ReplyCode.HA_INSUFFICIENT_RESOURCES
_ZERO = IPv4Address(0)
#: most requests held for the AAA server's answer at once
MAX_HELD = 256
#: a co-located node's request without a valid challenge of ours: RFC 5944 §3.4 131
#: "mobile node failed authentication" (the home agent's range; see the module docstring)
CHALLENGE_CODE = ReplyCode.HA_MN_FAILED_AUTH
#: bytes of a challenge the home agent issues (RFC 4721 §2: at least 4; as our FAs)
CHALLENGE_LENGTH = 16
#: seconds a challenge given in a reply stays usable
CHALLENGE_LIFETIME = 60.0
#: NAIs whose challenge is remembered at once
MAX_CHALLENGES = 1024


def request_nai(req: RegistrationRequest) -> str | None:
    for ext in req.extensions:
        if isinstance(ext, MobileNodeNAIExtension):
            try:
                return ext.nai.decode("utf-8") or None
            except UnicodeDecodeError:
                return None
    return None


def has_mn_aaa(req: RegistrationRequest) -> bool:
    return any(
        isinstance(e, GeneralizedAuthExtension) and e.subtype == GeneralizedAuthSubtype.MN_AAA
        for e in req.extensions
    )


def asks_for_key(req: RegistrationRequest) -> bool:
    """RFC 3957 §6.1: the request carries the MN-HA Key Generation Nonce Request, AAA
    subtype."""
    return any(
        isinstance(e, MNHAKeyGenNonceRequest) and e.subtype == AAA_SUBTYPE for e in req.extensions
    )


def colocated(event: UdpReceived, req: RegistrationRequest) -> bool:
    """Sent by the mobile node itself from its co-located care-of address (no foreign agent
    on the path, RFC 5944 §3.6.1.1)."""
    return bool(req.flags & RegistrationFlags.D) and event.src == req.care_of_address


def request_challenge(req: RegistrationRequest) -> bytes | None:
    for e in req.extensions:
        if isinstance(e, MobileForeignChallengeExtension):
            return e.challenge
    return None


def mn_aaa_spi(req: RegistrationRequest) -> int:
    for e in req.extensions:
        if isinstance(e, GeneralizedAuthExtension) and e.subtype == GeneralizedAuthSubtype.MN_AAA:
            return e.spi
    return 0


#: a key Lifetime of all ones: no end of its own (it lasts as long as the binding)
KEY_LIFETIME_NO_END = 0xFFFFFFFF


@dataclass(frozen=True)
class IssuedKey:
    """An MN-HA key the home AAA server issued for a request that asked for one."""

    association: SecurityAssociation = field(repr=False)
    nonce: bytes
    #: Session-Timeout, seconds (``None``: the key has no end of its own)
    lifetime: int | None
    #: the SPI of the request's MN-AAA extension (the AAA key's)
    aaa_spi: int

    def reply_extension(self) -> MNHAKeyGenNonceReply:
        """RFC 3957 §6.2: the nonce, the SPI and algorithm the node is to use."""
        lifetime = KEY_LIFETIME_NO_END if self.lifetime is None else self.lifetime
        body = AAAKeyGenNonce(
            aaa_spi=self.aaa_spi,
            node_spi=self.association.spi,
            algorithm=int(self.association.algorithm),
            replay_method=ReplayMethod.TIMESTAMPS,
            nonce=self.nonce,
        )
        return MNHAKeyGenNonceReply(AAA_SUBTYPE, lifetime, body)


@dataclass
class _Held:
    event: UdpReceived
    nai: str
    #: the request asked for an MN-HA key (RFC 3957), with this MN-AAA SPI
    key_request: bool = False
    aaa_spi: int = 0


@dataclass
class HaAaa:
    """The home agent's AAA state (see the module docstring)."""

    counters: Counters
    #: the home agent's address, sent as NAS-IP-Address
    nas_address: IPv4Address
    _held: dict[int, _Held] = field(default_factory=dict)
    _next_id: int = 1
    #: NAI -> home address the AAA server gave (Framed-IP-Address)
    _addresses: dict[str, IPv4Address] = field(default_factory=dict)
    #: NAI -> SPI of the association learnt from AAA
    _learnt: dict[str, int] = field(default_factory=dict)
    #: the key issued by the last :meth:`answered` (RFC 3957), ``None`` when none was
    last_issued: IssuedKey | None = None
    #: the home agent the last :meth:`answered` Accept named (3GPP2-Home-Agent-IP-Address):
    #: RFC 4433 with AAA, the home AAA server picks the home agent of a request for 0.0.0.0
    last_home_agent: IPv4Address | None = None
    #: draws the challenges given to co-located nodes (the engine's ``rng``)
    rng: random.Random = field(default_factory=random.SystemRandom, repr=False)
    #: NAI -> (challenge given in a reply, when it stops being usable); insertion order
    #: is age order (RFC 4721 with a co-located care-of address, see the docstring)
    _challenges: dict[str, tuple[bytes, float]] = field(default_factory=dict, repr=False)
    #: told of every key learnt from AAA and every key forgotten (issue 15: a persistent
    #: store keeps them across a restart, see :meth:`HomeAgent.restore`)
    on_learnt: Callable[[str, SecurityAssociation], None] | None = field(default=None, repr=False)
    on_forgotten: Callable[[str], None] | None = field(default=None, repr=False)

    def relearn(self, nai: str, sa: SecurityAssociation, store: SecurityAssociationStore) -> None:
        """Take back a key learnt from AAA before a restart (kept by a persistent store)."""
        if not store.for_peer(nai):
            store.add(nai, sa)
            self._learnt[nai] = sa.spi

    @property
    def held(self) -> int:
        """Requests waiting for the AAA server."""
        return len(self._held)

    def address_for(self, nai: str) -> IPv4Address | None:
        """The home address the AAA server gave ``nai`` (``None``: none)."""
        return self._addresses.get(nai)

    def check_colocated(
        self,
        event: UdpReceived,
        req: RegistrationRequest,
        store: SecurityAssociationStore,
        now: float,
    ) -> tuple[RegistrationDenied, MobileForeignChallengeExtension] | None:
        """RFC 4721 at the home agent for a co-located node that must go through AAA (see
        the module docstring, item 4): ``None`` when the request may go on (not such a
        request, or it answers its challenge, now spent); else the denial (131) and the
        fresh challenge the reply is to carry. Raises :class:`Discard` for a copy of a
        request already held."""
        nai = request_nai(req)
        if nai is None or not colocated(event, req):
            return None
        known = store.for_peer(nai) or (
            req.home_address != _ZERO and store.for_peer(req.home_address)
        )
        if known and not asks_for_key(req):
            return None  # an MN-HA association decides (check_mn_ha_auth)
        if any(
            h.event.payload == event.payload and h.event.src == event.src
            for h in self._held.values()
        ):
            raise Discard("duplicate_request", nai)
        challenge = request_challenge(req)
        issued = self._challenges.get(nai)
        answered = issued is not None and issued[0] == challenge and now < issued[1]
        if answered and has_mn_aaa(req):
            del self._challenges[nai]  # RFC 4721 §3.2: used once
            self.counters.event("aaa_challenges_answered")
            return None
        if challenge is None:
            why = "no challenge (the home agent gives one)"
        elif issued is not None and issued[0] == challenge:
            why = "challenge no longer valid"
        else:
            why = "challenge not issued by this home agent, or already used"
        fresh = self.rng.randbytes(CHALLENGE_LENGTH)
        self._challenges.pop(nai, None)
        while len(self._challenges) >= MAX_CHALLENGES:
            del self._challenges[next(iter(self._challenges))]
        self._challenges[nai] = (fresh, now + CHALLENGE_LIFETIME)
        self.counters.event("aaa_challenges_issued")
        return (
            RegistrationDenied(CHALLENGE_CODE, f"co-located node: {why}"),
            MobileForeignChallengeExtension(fresh),
        )

    def hold(
        self, event: UdpReceived, req: RegistrationRequest, store: SecurityAssociationStore
    ) -> AaaRequest | None:
        """The :class:`AaaRequest` to emit when ``req`` must wait for the AAA server (its
        NAI has no MN-HA association and it carries MN-AAA); ``None``: process it now."""
        nai = request_nai(req)
        wants_key = asks_for_key(req)
        if nai is None or not has_mn_aaa(req) or (store.for_peer(nai) and not wants_key):
            return None
        try:
            aaa = AaaRequest.from_registration(
                self._next_id, req, nas_address=self.nas_address, foreign_agent=False
            )
        except AuthenticationError:
            return None  # no challenge to map onto CHAP: the pipeline decides (131)
        if len(self._held) >= MAX_HELD:
            raise RegistrationDenied(AAA_TIMEOUT_CODE, "too many requests wait for AAA")
        self._next_id += 1
        self._held[aaa.request_id] = _Held(event, nai, wants_key, mn_aaa_spi(req))
        self.counters.event("aaa_requests")
        return aaa

    def answered(
        self, answer: AaaAnswer, store: SecurityAssociationStore
    ) -> tuple[UdpReceived, str, RegistrationDenied | None]:
        """The held request ``answer`` is for, with its NAI, once the answer is applied (an
        accepted key is in the store), and for a reject or a timeout the denial to answer it
        with. Raises :class:`Discard` for an answer to nothing held."""
        held = self._held.pop(answer.request_id, None)
        self.last_issued = None
        self.last_home_agent = None
        if held is None:
            raise Discard("unmatched_aaa_answer", str(answer.request_id))
        self.counters.event(f"aaa_{answer.result.value}")
        if answer.result is AaaResult.REJECT:
            why = answer.reply_message or f"Access-Reject from {answer.server}"
            return held.event, held.nai, RegistrationDenied(AAA_REJECT_CODE, why)
        if answer.result is AaaResult.TIMEOUT:
            why = "no answer from the home AAA server"
            return held.event, held.nai, RegistrationDenied(AAA_TIMEOUT_CODE, why)
        authz = answer.authorization
        if authz is not None:
            self.last_home_agent = authz.home_agent
            if authz.home_address is not None:
                self._addresses[held.nai] = authz.home_address
            if authz.mn_ha_key and authz.mn_ha_spi is not None:
                try:
                    sa = SecurityAssociation(spi=authz.mn_ha_spi, key=authz.mn_ha_key)
                except ValueError:
                    self.counters.event("aaa_bad_key")
                else:
                    self.forget_key(held.nai, store)
                    if authz.key_nonce and not held.key_request:
                        # derived with a nonce the node will never see: not its key
                        self.counters.event("aaa_key_unrequested")
                    elif not store.for_peer(held.nai):
                        store.add(held.nai, sa)
                        self._learnt[held.nai] = sa.spi
                        if self.on_learnt is not None:
                            self.on_learnt(held.nai, sa)
                        if held.key_request and authz.key_nonce:
                            self.last_issued = IssuedKey(
                                sa, authz.key_nonce, authz.session_timeout, held.aaa_spi
                            )
                            self.counters.event("aaa_keys_issued")
        return held.event, held.nai, None

    def forget_key(self, nai: str, store: SecurityAssociationStore) -> None:
        spi = self._learnt.pop(nai, None)
        if spi is not None:
            store.remove(nai, spi)
            if self.on_forgotten is not None:
                self.on_forgotten(nai)

    def released(self, nai: str, store: SecurityAssociationStore) -> None:
        """``nai``'s address went back: what AAA gave it is forgotten."""
        self._addresses.pop(nai, None)
        self.forget_key(nai, store)
