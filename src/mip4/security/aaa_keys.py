"""Mobility keys derived from the AAA key (RFC 3957 §5, §6): pure derivation.

Theory of operation. A mobile node that shares only an AAA key (its MN-AAA secret) with its
home AAA server asks for an MN-HA key with the Generalized MN-HA Key Generation Nonce
Request extension (type 42, AAA subtype 1). The home AAA server picks a fresh Key
Generation Nonce, derives

    key = HMAC-SHA1(AAA-key, Key Generation Nonce || Mobile Node Identifier)

(the identifier: the NAI of the MN-NAI extension, RFC 2794), hands key and SPI to the home
agent, and the nonce travels back to the node in the Generalized MN-HA Key Generation Nonce
Reply extension (type 43). The node computes the same key and checks the reply's MN-HA
authenticator with it: a mismatch (another AAA key at the server, a damaged nonce) shows as
that authenticator failing.

Source: the RFC 3957 body was not reachable from here (only its front page); the formula
is the one in ``shared/reference/aaa-radius.md`` (secondary sources), and it matches the
comment "key = HMAC-SHA1 (AAA-key, {Key Generation Nonce || client identifier})" of
Dibbler's DHCPv6 AAA-key code, which took it from RFC 3957. The test suite checks that
FreeRADIUS, configured with this formula in ``unlang``, and this module agree.

Keys are ``bytes`` in frozen dataclasses with ``repr=False``: never printed. Pure: stdlib.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from .sa import Algorithm, ReplayMethod, SecurityAssociation

__all__ = [
    "DEFAULT_NONCE_LENGTH",
    "DerivedKey",
    "derive_key",
    "derived_association",
]

#: bytes of Key Generation Nonce the lab's FreeRADIUS generates (RFC 3957 asks for a nonce
#: that is unpredictable; 128 bits)
DEFAULT_NONCE_LENGTH = 16


def derive_key(aaa_key: bytes, nonce: bytes, identifier: bytes) -> bytes:
    """RFC 3957: HMAC-SHA1(AAA-key, nonce || mobile node identifier), 20 bytes."""
    if not aaa_key:
        raise ValueError("the AAA key must not be empty")
    if not nonce:
        raise ValueError("the Key Generation Nonce must not be empty (RFC 3957)")
    if not identifier:
        raise ValueError("the mobile node identifier (its NAI) must not be empty")
    return hmac.new(aaa_key, nonce + identifier, hashlib.sha1).digest()


@dataclass(frozen=True)
class DerivedKey:
    """An MN-HA key the node derived, and until when (engine clock) it may be used."""

    association: SecurityAssociation = field(repr=False)
    #: ``None``: no end (the reply's Lifetime was all ones)
    expires: float | None

    @property
    def spi(self) -> int:
        return self.association.spi

    def valid(self, now: float) -> bool:
        return self.expires is None or now < self.expires


def derived_association(
    aaa_key: bytes,
    nonce: bytes,
    nai: str,
    spi: int,
    *,
    replay: ReplayMethod = ReplayMethod.TIMESTAMPS,
) -> SecurityAssociation:
    """The MN-HA association RFC 3957 gives the node: HMAC-MD5 (RFC 5944 §3.5.1) with the
    derived key under the home agent's ``spi``."""
    key = derive_key(aaa_key, nonce, nai.encode("utf-8"))
    return SecurityAssociation(spi=spi, key=key, algorithm=Algorithm.HMAC_MD5, replay=replay)
