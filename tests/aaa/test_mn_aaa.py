"""RFC 4721 §7 MN-AAA authenticator -> RADIUS CHAP attributes, and the pure AAA mapping."""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address

import pytest

from mip4.aaa.attributes import (
    access_request_attributes,
    accounting_attributes,
    authorization_from_attributes,
)
from mip4.aaa.freeradius import FreeRadiusConfig, RadiusClientEntry, Subscriber, config_files
from mip4.aaa.messages import (
    AaaAnswer,
    AaaRequest,
    AaaResult,
    AccountingRecord,
    AcctStatus,
    Authorization,
    TerminateCause,
)
from mip4.aaa.policy import RadiusServer
from mip4.security.auth import AuthenticationError, AuthFailure, covered_bytes, sign_mn_aaa
from mip4.security.mn_aaa import chap_attributes, radius_chap_ok
from mip4.wire import messages as m
from mip4.wire.ext_auth import GeneralizedAuthExtension, MobileForeignChallengeExtension

from .requests import FA, mn_aaa_rrq

SECRET = b"mn-aaa-shared-secret"


@pytest.mark.parametrize("length", [1, 16, 236, 237, 238, 255])
def test_chap_attributes_verify_as_radius_chap(length: int) -> None:
    challenge = bytes((i * 7 + 3) % 256 for i in range(length))
    rrq = mn_aaa_rrq("mn@home.example", SECRET, challenge)
    chap = chap_attributes(rrq)
    assert chap.nai == "mn@home.example"
    # CHAP-Password = challenge[0] || authenticator (the MN-AAA extension's, as received)
    auth_ext = rrq.extensions[-1]
    assert isinstance(auth_ext, GeneralizedAuthExtension)
    assert chap.chap_password == challenge[:1] + auth_ext.authenticator
    # CHAP-Challenge = MD5(preceding data through the SPI) || challenge[-237:], <= 253 bytes
    covered = covered_bytes(rrq.raw, m.RegistrationRequest.FIXED_LEN, len(rrq.extensions) - 1)
    assert chap.chap_challenge == hashlib.md5(covered).digest() + challenge[-237:]
    assert len(chap.chap_challenge) <= 253
    # what a RADIUS server's CHAP check computes (RFC 2865 §5.3): MD5(ident||secret||challenge)
    assert radius_chap_ok(SECRET, chap.chap_password, chap.chap_challenge)
    assert not radius_chap_ok(b"another secret", chap.chap_password, chap.chap_challenge)


def test_chap_attributes_need_the_bytes_as_received_and_spi_2() -> None:
    rrq = mn_aaa_rrq("mn@home.example", SECRET, b"0123456789abcdef")
    local = m.RegistrationRequest(
        flags=rrq.flags,
        lifetime=rrq.lifetime,
        home_address=rrq.home_address,
        home_agent=rrq.home_agent,
        care_of_address=rrq.care_of_address,
        identification=rrq.identification,
        extensions=rrq.extensions,
    )
    with pytest.raises(AuthenticationError) as e:
        chap_attributes(local)
    assert e.value.reason is AuthFailure.NO_RAW_BYTES
    other_spi = sign_mn_aaa(
        m.RegistrationRequest(
            flags=rrq.flags,
            lifetime=1,
            home_address=IPv4Address(0),
            home_agent=IPv4Address(0),
            care_of_address=rrq.care_of_address,
            identification=1,
            extensions=(MobileForeignChallengeExtension(b"x" * 16),),
        ),
        0x100,
        SECRET,
    )
    with pytest.raises(AuthenticationError) as e:
        chap_attributes(other_spi)
    assert e.value.reason is AuthFailure.UNKNOWN_SPI


def test_chap_attributes_need_an_nai() -> None:
    msg = m.RegistrationRequest(
        flags=m.RegistrationFlags(0),
        lifetime=1,
        home_address=IPv4Address(0),
        home_agent=IPv4Address(0),
        care_of_address=IPv4Address("198.51.100.7"),
        identification=1,
        extensions=(MobileForeignChallengeExtension(b"x" * 16),),
    )
    with pytest.raises(AuthenticationError) as e:
        chap_attributes(sign_mn_aaa(msg, 2, SECRET))
    assert e.value.reason is AuthFailure.MISSING


def test_access_request_from_registration() -> None:
    rrq = mn_aaa_rrq("mn@home.example", SECRET, b"0123456789abcdef")
    req = AaaRequest.from_registration(7, rrq, nas_address=FA)
    assert (req.request_id, req.nai, req.home_address) == (7, "mn@home.example", IPv4Address(0))
    assert req.care_of_address == rrq.care_of_address
    attrs = dict(access_request_attributes(req))
    assert attrs["User-Name"] == "mn@home.example"
    assert attrs["CHAP-Password"] == req.chap_password
    assert attrs["CHAP-Challenge"] == req.chap_challenge
    assert attrs["NAS-IP-Address"] == str(FA)
    assert attrs["3GPP2-Home-Agent-IP-Address"] == "192.0.2.1"
    assert "Framed-IP-Address" not in attrs  # 0.0.0.0: "assign one"


def test_accounting_attributes_carry_counters_and_gigawords() -> None:
    base = {
        "request_id": 1,
        "session_id": "mip4-0001",
        "nai": "mn@home.example",
        "home_address": IPv4Address("10.1.0.5"),
        "care_of_address": IPv4Address("198.51.100.7"),
        "home_agent": IPv4Address("192.0.2.1"),
        "nas_address": FA,
    }
    start = dict(accounting_attributes(AccountingRecord(status=AcctStatus.START, **base)))  # type: ignore[arg-type]
    assert start["Acct-Status-Type"] == 1 and "Acct-Input-Octets" not in start
    stop = AccountingRecord(
        status=AcctStatus.STOP,
        input_octets=5 * 2**32 + 17,
        output_octets=1000,
        input_packets=12,
        output_packets=13,
        session_time=60,
        terminate_cause=TerminateCause.USER_REQUEST,
        **base,  # type: ignore[arg-type]
    )
    attrs = dict(accounting_attributes(stop))
    assert attrs["Acct-Input-Octets"] == 17 and attrs["Acct-Input-Gigawords"] == 5
    assert attrs["Acct-Output-Octets"] == 1000 and "Acct-Output-Gigawords" not in attrs
    assert (attrs["Acct-Input-Packets"], attrs["Acct-Output-Packets"]) == (12, 13)
    assert attrs["Acct-Terminate-Cause"] == 1 and attrs["Acct-Session-Id"] == "mip4-0001"
    with pytest.raises(ValueError, match="terminate_cause"):
        AccountingRecord(status=AcctStatus.STOP, **base)  # type: ignore[arg-type]


def test_authorization_is_typed_and_errors_do_not_leak_values() -> None:
    key = bytes(range(20))
    authz = authorization_from_attributes(
        {
            "Framed-IP-Address": ["10.1.0.5"],
            "3GPP2-Home-Agent-IP-Address": ["192.0.2.1"],
            "3GPP2-MN-HA-SPI": [4096],
            "3GPP2-MN-HA-Shared-Key": [key],
        }
    )
    assert authz == Authorization(
        IPv4Address("10.1.0.5"), IPv4Address("192.0.2.1"), 4096, key, None, None
    )
    with pytest.raises(ValueError) as e:
        authorization_from_attributes({"3GPP2-MN-HA-Shared-Key": ["not-bytes-secret"]})
    assert "not-bytes-secret" not in str(e.value)
    assert authorization_from_attributes({}) == Authorization()


def test_secrets_and_keys_never_in_reprs() -> None:
    key = b"KEYKEYKEYKEYKEYKEYKE"
    texts = [
        repr(Authorization(mn_ha_key=key)),
        repr(AaaAnswer(1, AaaResult.ACCEPT, Authorization(mn_ha_key=key))),
        repr(RadiusServer("a", IPv4Address("127.0.0.1"), 1812, b"RADIUS-SECRET")),
        repr(Subscriber("n@x", b"MN-AAA-SECRET", mn_ha_key=key)),
        repr(RadiusClientEntry("c", IPv4Address("127.0.0.1"), "RADIUS-SECRET")),
    ]
    for text in texts:
        for secret in ("KEYKEY", "RADIUS-SECRET", "MN-AAA-SECRET", key.hex()):
            assert secret not in text


def test_generated_users_file_and_reject_fix() -> None:
    cfg = FreeRadiusConfig(
        "/d",
        IPv4Address("127.0.0.1"),
        1812,
        1813,
        (RadiusClientEntry("c", IPv4Address("127.0.0.1"), "s"),),
        (Subscriber("n@x", b"pw", IPv4Address("10.0.0.1"), None, 5, b"\x01\x02"),),
    )
    files = config_files(cfg)
    assert files["users"].startswith('"n@x" Cleartext-Password := "pw"\n')
    assert "Mip4-MN-HA-Shared-Key = 0x0102" in files["users"]
    assert "&reply: !* ANY" in files["radiusd.conf"]
    with pytest.raises(ValueError):
        config_files(FreeRadiusConfig("/d", cfg.address, 1, 2, (), (Subscriber('a"b', b"pw"),)))
