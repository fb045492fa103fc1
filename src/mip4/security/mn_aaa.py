"""The MN-AAA authenticator as RADIUS CHAP attributes (RFC 4721 §7, RFC 2865 §5.3, §5.40).

Theory of operation. With SPI 2 (CHAP_SPI) the MN-AAA authenticator of RFC 4721 §7 is::

    MD5(challenge[0] || key || MD5(preceding data) || challenge[-237:])

where "preceding data" is the registration request as received up to and including the
MN-AAA extension's Type, Subtype, Length and SPI (:func:`~mip4.security.auth.covered_bytes`).
RADIUS CHAP (RFC 2865 §5.3, RFC 1994) verifies ``MD5(CHAP-Ident || secret || challenge)``
against ``CHAP-Password = CHAP-Ident || response``. So the foreign agent (or the home agent for
a co-located node) maps the request onto two RADIUS attributes and an unmodified RADIUS server
(FreeRADIUS's stock ``chap`` module) verifies the mobile node with the MN-AAA secret it holds
as the subscriber's Cleartext-Password:

* ``CHAP-Password`` (3)  = challenge[0] || authenticator (17 bytes);
* ``CHAP-Challenge`` (60) = MD5(preceding data) || challenge[-237:] (at most 16 + 237 = 253
  bytes, the largest RADIUS attribute value).

A challenge shorter than 238 bytes is used whole in the last part, so its first byte counts
twice (once as CHAP ident). The agent never learns the MN-AAA secret. Pure: stdlib + wire.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from mip4.wire.ext_auth import (
    GeneralizedAuthExtension,
    MobileForeignChallengeExtension,
    MobileNodeNAIExtension,
)

from .auth import (
    CHAP_SPI,
    GENERALIZED,
    AuthenticatedMessage,
    AuthenticationError,
    AuthFailure,
    covered_bytes,
    find_auth_extension,
)

#: RFC 4721 §7: the authenticator hashes the least-order 237 bytes of the challenge
CHAP_CHALLENGE_TAIL = 237


@dataclass(frozen=True)
class ChapAttributes:
    """The RADIUS attributes that carry one MN-AAA authenticator (RFC 4721 §7)."""

    #: the mobile node's NAI (MN-NAI extension 131, RFC 2794), the RADIUS User-Name
    nai: str
    #: CHAP-Password (3): challenge[0] || the 16-byte MN-AAA authenticator
    chap_password: bytes
    #: CHAP-Challenge (60): MD5(preceding data) || challenge[-237:]
    chap_challenge: bytes


def chap_password(challenge: bytes, authenticator: bytes) -> bytes:
    """CHAP-Password: the first challenge byte as CHAP ident, then the authenticator."""
    if not challenge:
        raise ValueError("MN-AAA CHAP needs a non-empty challenge (RFC 4721 §7)")
    return challenge[:1] + authenticator


def chap_challenge(covered: bytes, challenge: bytes) -> bytes:
    """CHAP-Challenge: MD5 of the covered bytes, then the challenge's last 237 bytes."""
    if not challenge:
        raise ValueError("MN-AAA CHAP needs a non-empty challenge (RFC 4721 §7)")
    return hashlib.md5(covered).digest() + challenge[-CHAP_CHALLENGE_TAIL:]


def radius_chap_ok(secret: bytes, password: bytes, challenge: bytes) -> bool:
    """What a RADIUS server's CHAP check computes (RFC 2865 §5.3): an independent oracle."""
    if len(password) != 17:
        return False
    expected = hashlib.md5(password[:1] + secret + challenge).digest()
    return hmac.compare_digest(expected, password[1:])


def _nai(message: AuthenticatedMessage, before: int) -> str:
    for ext in message.extensions[:before]:
        if isinstance(ext, MobileNodeNAIExtension):
            try:
                return ext.nai.decode("utf-8")
            except UnicodeDecodeError:
                break
    raise AuthenticationError(
        AuthFailure.MISSING, GENERALIZED, CHAP_SPI, "no valid MN-NAI extension (131, RFC 2794)"
    )


def chap_attributes(message: AuthenticatedMessage) -> ChapAttributes:
    """Map a registration request *as received* (``message.raw``) with an MN-NAI extension,
    an MN-FA Challenge extension and an MN-AAA extension with SPI 2 onto RADIUS CHAP.

    Raises :class:`AuthenticationError` when the request cannot be mapped (no raw bytes,
    missing or misplaced extensions, another SPI: RFC 4721 §7 defines CHAP for SPI 2 only)."""
    raw = message.raw
    if not raw:
        raise AuthenticationError(
            AuthFailure.NO_RAW_BYTES, GENERALIZED, detail="map the bytes as received"
        )
    index = find_auth_extension(message, GENERALIZED)
    ext = message.extensions[index]
    assert isinstance(ext, GeneralizedAuthExtension)
    if ext.spi != CHAP_SPI:
        raise AuthenticationError(
            AuthFailure.UNKNOWN_SPI, GENERALIZED, ext.spi, "RADIUS CHAP needs SPI 2 (CHAP_SPI)"
        )
    challenge = b""
    for e in reversed(message.extensions[:index]):
        if isinstance(e, MobileForeignChallengeExtension):
            challenge = e.challenge
            break
    if not challenge:
        raise AuthenticationError(AuthFailure.MISSING_CHALLENGE, GENERALIZED, ext.spi)
    covered = covered_bytes(raw, type(message).FIXED_LEN, index)
    return ChapAttributes(
        nai=_nai(message, index),
        chap_password=chap_password(challenge, ext.authenticator),
        chap_challenge=chap_challenge(covered, challenge),
    )


__all__ = [
    "CHAP_CHALLENGE_TAIL",
    "ChapAttributes",
    "chap_attributes",
    "chap_challenge",
    "chap_password",
    "radius_chap_ok",
]
