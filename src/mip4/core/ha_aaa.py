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

3. What AAA gave lasts as long as the node's address assignment: when its last binding
   ends (deregistration, expiry) the address is released and the association learnt from
   AAA is removed, so the next registration asks again.

Requests held at once are bounded (:data:`MAX_HELD`, 130 beyond it). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mip4.aaa.messages import AaaAnswer, AaaRequest, AaaResult
from mip4.security.auth import AuthenticationError
from mip4.security.sa import SecurityAssociation, SecurityAssociationStore
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_auth import GeneralizedAuthExtension, GeneralizedAuthSubtype
from mip4.wire.extensions import MobileNodeNAIExtension
from mip4.wire.messages import RegistrationRequest

from .counters import Counters
from .events import UdpReceived
from .registration import Discard, RegistrationDenied

__all__ = ["AAA_REJECT_CODE", "AAA_TIMEOUT_CODE", "MAX_HELD", "HaAaa"]

#: RFC 4721 §10: "mobile node failed AAA authentication", the home agent's code
AAA_REJECT_CODE = ReplyCode.HA_MN_FAILED_AAA_AUTH
#: RFC 5944 §3.4: 130 "insufficient resources" -- no AAA server answered; transient
AAA_TIMEOUT_CODE = ReplyCode.HA_INSUFFICIENT_RESOURCES
#: most requests held for the AAA server's answer at once
MAX_HELD = 256


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


@dataclass
class _Held:
    event: UdpReceived
    nai: str


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

    @property
    def held(self) -> int:
        """Requests waiting for the AAA server."""
        return len(self._held)

    def address_for(self, nai: str) -> IPv4Address | None:
        """The home address the AAA server gave ``nai`` (``None``: none)."""
        return self._addresses.get(nai)

    def hold(
        self, event: UdpReceived, req: RegistrationRequest, store: SecurityAssociationStore
    ) -> AaaRequest | None:
        """The :class:`AaaRequest` to emit when ``req`` must wait for the AAA server (its
        NAI has no MN-HA association and it carries MN-AAA); ``None``: process it now."""
        nai = request_nai(req)
        if nai is None or not has_mn_aaa(req) or store.for_peer(nai):
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
        self._held[aaa.request_id] = _Held(event, nai)
        self.counters.event("aaa_requests")
        return aaa

    def answered(
        self, answer: AaaAnswer, store: SecurityAssociationStore
    ) -> tuple[UdpReceived, str, RegistrationDenied | None]:
        """The held request ``answer`` is for, with its NAI, once the answer is applied (an
        accepted key is in the store), and for a reject or a timeout the denial to answer it
        with. Raises :class:`Discard` for an answer to nothing held."""
        held = self._held.pop(answer.request_id, None)
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
            if authz.home_address is not None:
                self._addresses[held.nai] = authz.home_address
            if authz.mn_ha_key and authz.mn_ha_spi is not None:
                try:
                    sa = SecurityAssociation(spi=authz.mn_ha_spi, key=authz.mn_ha_key)
                except ValueError:
                    self.counters.event("aaa_bad_key")
                else:
                    self.forget_key(held.nai, store)
                    if not store.for_peer(held.nai):
                        store.add(held.nai, sa)
                        self._learnt[held.nai] = sa.spi
        return held.event, held.nai, None

    def forget_key(self, nai: str, store: SecurityAssociationStore) -> None:
        spi = self._learnt.pop(nai, None)
        if spi is not None:
            store.remove(nai, spi)

    def released(self, nai: str, store: SecurityAssociationStore) -> None:
        """``nai``'s address went back: what AAA gave it is forgotten."""
        self._addresses.pop(nai, None)
        self.forget_key(nai, store)
