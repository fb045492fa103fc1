"""The mobile node's MN-HA key from AAA (RFC 3957): ask, derive, use until it expires.

Theory of operation
-------------------
A node configured with its NAI and MN-AAA secret and no MN-HA key (``mobile_node.aaa_keys``
in effect: no ``[[security_associations]]``) cannot sign its first request with MN-HA.
Instead (RFC 3957 §6.1) it puts the Generalized MN-HA Key Generation Nonce Request extension
(type 42, AAA subtype 1) before its authentication extensions and authenticates the request
with MN-AAA only; the home AAA server checks MN-AAA, picks a nonce and derives the key, the
home agent receives key and SPI, and its reply carries the Generalized MN-HA Key Generation
Nonce Reply extension (type 43) before the MN-HA authenticator computed with the new key.

:class:`AaaKeys` holds what the node has: :meth:`AaaKeys.current` is the derived
association while its lifetime runs (from when the reply arrived); :meth:`candidate`
derives the association a reply's nonce implies, which the registration client tries when
it verifies that reply's MN-HA authenticator. A candidate whose authenticator fails is a
key mismatch (the server's AAA key differs from the node's, or the nonce was damaged): the
client reports it (``mn.key_mismatch``, counted ``aaa_key_mismatch``) and discards the
reply. An authenticated acceptance installs the candidate (:meth:`install`); the node's
binding ending (deregistration, expiry) forgets it, as the home agent forgets what AAA
gave it then (:mod:`mip4.core.ha_aaa`), and the next request asks again. Key material is
never logged: only the SPI and the lifetime. :meth:`AaaKeys.fa_candidate` does the same for
an MN-FA key a foreign agent got from AAA (extension 41). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mip4.security.aaa_keys import DerivedKey, derived_association
from mip4.security.sa import ReplayMethod, SecurityAssociation
from mip4.wire.ext_keys import (
    AAA_SUBTYPE,
    AAAKeyGenNonce,
    MNFAKeyGenNonceReply,
    MNHAKeyGenNonceReply,
    MNHAKeyGenNonceRequest,
)
from mip4.wire.messages import RegistrationReply

__all__ = ["AaaKeys", "KeyOffer"]

#: a key Lifetime of all ones: the key does not expire (it lasts as long as the binding)
NO_END = 0xFFFFFFFF


@dataclass(frozen=True)
class KeyOffer:
    """The association a reply's Key Generation Nonce Reply implies, with its lifetime."""

    association: SecurityAssociation = field(repr=False)
    #: seconds (RFC 3957: the reply's Lifetime); ``None``: all ones, no end
    lifetime: int | None


@dataclass
class AaaKeys:
    """The MN-HA key a node gets from AAA (see the module docstring)."""

    nai: str
    aaa_key: bytes = field(repr=False)
    replay: ReplayMethod = ReplayMethod.TIMESTAMPS
    key: DerivedKey | None = None

    def current(self, now: float) -> SecurityAssociation | None:
        """The derived association, while it has not expired."""
        if self.key is None or not self.key.valid(now):
            return None
        return self.key.association

    @staticmethod
    def request_extension() -> MNHAKeyGenNonceRequest:
        """RFC 3957 §6.1, AAA subtype. The Mobile Node SPI is 0: the node takes the SPI the
        home agent names in the reply (mip4's choice; the RFC text was not at hand)."""
        return MNHAKeyGenNonceRequest(AAA_SUBTYPE, 0)

    def candidate(self, msg: RegistrationReply) -> KeyOffer | None:
        """The association the reply's MN-HA Key Generation Nonce Reply (AAA subtype)
        implies, or ``None`` when it carries none usable."""
        for ext in msg.extensions:
            if isinstance(ext, MNHAKeyGenNonceReply) and isinstance(ext.body, AAAKeyGenNonce):
                body = ext.body
                if not body.nonce:
                    return None
                try:
                    sa = derived_association(
                        self.aaa_key, body.nonce, self.nai, body.node_spi, replay=self.replay
                    )
                except ValueError:  # an SPI below 256
                    return None
                lifetime = None if ext.lifetime == NO_END else ext.lifetime
                return KeyOffer(sa, lifetime)
        return None

    def fa_candidate(self, msg: RegistrationReply) -> SecurityAssociation | None:
        """RFC 3957: the MN-FA association the reply's MN-FA Key Generation Nonce Reply
        (type 41, AAA subtype) implies -- the same derivation with its own nonce and the
        foreign agent's SPI -- or ``None`` when it carries none usable."""
        for ext in msg.extensions:
            if isinstance(ext, MNFAKeyGenNonceReply) and isinstance(ext.body, AAAKeyGenNonce):
                if not ext.body.nonce:
                    return None
                try:
                    return derived_association(
                        self.aaa_key, ext.body.nonce, self.nai, ext.body.node_spi
                    )
                except ValueError:  # an SPI below 256
                    return None
        return None

    def install(self, offer: KeyOffer, now: float) -> None:
        expires = None if offer.lifetime is None else now + offer.lifetime
        self.key = DerivedKey(offer.association, expires)

    def forget(self) -> None:
        self.key = None
