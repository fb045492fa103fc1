"""RFC 3957 key distribution (issue 11): the derivation, and FreeRADIUS deriving the MN-HA
key itself with its stock expansions -- the same key the mobile node derives."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mip4.aaa.freeradius import Subscriber
from mip4.aaa.messages import AaaResult
from mip4.security.aaa_keys import DEFAULT_NONCE_LENGTH, derive_key, derived_association
from mip4.security.sa import Algorithm

from .conftest import MN1, MN3, FreeRadius, needs_freeradius
from .test_freeradius import ask, client


def test_derive_key_is_hmac_sha1_of_nonce_and_nai() -> None:
    nonce, nai, key = bytes(range(16)), b"mn@example", b"aaa-key"
    expected = hmac.new(key, nonce + nai, hashlib.sha1).digest()
    assert derive_key(key, nonce, nai) == expected and len(expected) == 20
    assert derive_key(key, nonce[:-1] + b"\xff", nai) != expected
    assert derive_key(b"other", nonce, nai) != expected
    sa = derived_association(key, nonce, "mn@example", 4100)
    assert sa.key == expected and sa.spi == 4100 and sa.algorithm is Algorithm.HMAC_MD5
    assert "aaa-key" not in repr(sa) and expected.hex() not in repr(sa)


@pytest.mark.parametrize("bad", [(b"", b"n", b"i"), (b"k", b"", b"i"), (b"k", b"n", b"")])
def test_derive_key_refuses_empty_inputs(bad: tuple[bytes, bytes, bytes]) -> None:
    with pytest.raises(ValueError):
        derive_key(*bad)


def test_subscriber_derivation_needs_an_spi_and_no_static_key() -> None:
    with pytest.raises(ValueError, match="derive_mn_ha_key"):
        Subscriber("x@y", b"s", mn_ha_spi=300, mn_ha_key=b"k", derive_mn_ha_key=True)
    with pytest.raises(ValueError, match="derive_mn_ha_key"):
        Subscriber("x@y", b"s", derive_mn_ha_key=True)


@needs_freeradius
@pytest.mark.timeout(120)
def test_freeradius_derives_the_rfc3957_key(freeradius: FreeRadius) -> None:
    """Two Access-Requests: each Accept carries a fresh 16-byte nonce and the key
    HMAC-SHA1(AAA key, nonce || NAI) -- computed by FreeRADIUS, checked here."""
    seen = []
    for ident in (1, 2):
        ans = ask(client(freeradius), MN3.nai, MN3.secret, ident)
        assert ans.result is AaaResult.ACCEPT
        authz = ans.authorization
        assert authz is not None and authz.key_nonce is not None and authz.mn_ha_key is not None
        assert len(authz.key_nonce) == DEFAULT_NONCE_LENGTH
        assert authz.mn_ha_spi == MN3.mn_ha_spi and authz.session_timeout == 600
        assert authz.mn_ha_key == derive_key(MN3.secret, authz.key_nonce, MN3.nai.encode())
        seen.append(authz.key_nonce)
    assert seen[0] != seen[1]
    # a subscriber with a static key gets that key and no nonce
    ans = ask(client(freeradius), MN1.nai, MN1.secret)
    assert ans.authorization is not None
    assert ans.authorization.key_nonce is None and ans.authorization.mn_ha_key == MN1.mn_ha_key
