"""Algorithm known answers: RFC 2202 HMAC-MD5 (all 7 test cases) and RFC 2002 keyed MD5."""

from __future__ import annotations

import hashlib

import pytest

from mip4.security.auth import compute_authenticator, hmac_md5, keyed_md5
from mip4.security.sa import Algorithm

from .helpers import rfc2104_hmac_md5

# RFC 2202 §2, "Test Cases for HMAC-MD5": (key, data, digest).
RFC2202_HMAC_MD5 = [
    (b"\x0b" * 16, b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
    (b"Jefe", b"what do ya want for nothing?", "750c783e6ab0b503eaa86e310a5db738"),
    (b"\xaa" * 16, b"\xdd" * 50, "56be34521d144c88dbb8c733f0e8b3f6"),
    (bytes(range(1, 26)), b"\xcd" * 50, "697eaf0aca3a3aea3a75164746ffaa79"),
    (b"\x0c" * 16, b"Test With Truncation", "56461ef2342edc00f9bab995690efd4c"),
    (
        b"\xaa" * 80,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
    ),
    (
        b"\xaa" * 80,
        b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
        "6f630fad67cda0ee1fb1f562db3aa53e",
    ),
]


@pytest.mark.parametrize(("key", "data", "digest"), RFC2202_HMAC_MD5)
def test_rfc2202_hmac_md5(key: bytes, data: bytes, digest: str) -> None:
    expected = bytes.fromhex(digest)
    assert compute_authenticator(Algorithm.HMAC_MD5, key, data) == expected
    assert hmac_md5(key, data) == expected
    # and the independent oracle the other tests use agrees with the RFC
    assert rfc2104_hmac_md5(key, data) == expected


def test_rfc2202_case5_truncated_96() -> None:
    # RFC 2202 test case 5 also gives the digest truncated to 96 bits.
    assert hmac_md5(b"\x0c" * 16, b"Test With Truncation")[:12] == bytes.fromhex(
        "56461ef2342edc00f9bab995"
    )


def test_keyed_md5_is_prefix_plus_suffix() -> None:
    key, data = b"secret", b"registration bytes"
    expected = hashlib.md5(key + data + key).digest()
    assert keyed_md5(key, data) == expected
    assert compute_authenticator(Algorithm.KEYED_MD5, key, data) == expected
    # and it is not HMAC
    assert expected != hmac_md5(key, data)


def test_unknown_algorithm_rejected() -> None:
    with pytest.raises(ValueError, match="unknown authentication algorithm"):
        compute_authenticator(7, b"k", b"d")  # type: ignore[arg-type]
