"""Shared builders and an independent HMAC-MD5 oracle for the security tests."""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address

from mip4.wire.extensions import Extension
from mip4.wire.messages import RegistrationFlags, RegistrationReply, RegistrationRequest

HOA = IPv4Address("10.0.0.5")
HA = IPv4Address("10.0.0.1")
COA = IPv4Address("192.0.2.1")


def rfc2104_hmac_md5(key: bytes, data: bytes) -> bytes:
    """HMAC-MD5 written out from RFC 2104 §2 (not via the hmac module): an oracle
    independent of the code under test. Checked against RFC 2202 in test_vectors.py."""
    if len(key) > 64:
        key = hashlib.md5(key).digest()
    key = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    return hashlib.md5(opad + hashlib.md5(ipad + data).digest()).digest()


def rrq(
    ident: int = 0x0123456789ABCDEF, extensions: tuple[Extension, ...] = ()
) -> RegistrationRequest:
    return RegistrationRequest(RegistrationFlags(0), 1800, HOA, HA, COA, ident, extensions)


def rrp(
    ident: int = 0x0123456789ABCDEF, code: int = 0, extensions: tuple[Extension, ...] = ()
) -> RegistrationReply:
    return RegistrationReply(code, 1800, HOA, HA, ident, extensions)
