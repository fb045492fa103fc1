"""Authenticators over the bytes as received: known answers, coverage, tampering, ordering
rules, and the foreign agent's strip/relay helpers."""

from __future__ import annotations

import dataclasses
import hashlib
import struct

import pytest

from mip4.security.auth import (
    CHAP_SPI,
    AuthenticationError,
    AuthFailure,
    append_extensions,
    authorization_index,
    covered_bytes,
    sign,
    sign_mn_aaa,
    strip_after,
    strip_auth,
    strip_for_relay,
    truncate_before,
    verify,
    verify_mn_aaa,
    with_raw,
)
from mip4.security.sa import Algorithm, SecurityAssociation
from mip4.wire.errors import DecodeError
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    GeneralizedAuthExtension,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RawExtension,
)
from mip4.wire.messages import RegistrationReply, RegistrationRequest, decode_message

from .helpers import rfc2104_hmac_md5, rrp, rrq

MN_HA_KEY = b"mip4-mn-ha-key-1"
MN_HA = SecurityAssociation(1000, MN_HA_KEY)
MN_FA = SecurityAssociation(2000, b"mn-fa shared secret")
FA_HA = SecurityAssociation(3000, b"fa-ha shared secret")
AAA_KEY = b"mn-aaa secret"

# A Registration Request laid out by hand from RFC 5944 §3.3 and §3.5.2:
# Type 1, flags 0, lifetime 1800 (0x0708), HoA 10.0.0.5, HA 10.0.0.1, CoA 192.0.2.1,
# Identification 0x0123456789abcdef; then MN-HA: Type 32, Length 20, SPI 1000 (0x3e8).
HAND_FIXED = bytes.fromhex("01 00 0708 0a000005 0a000001 c0000201 0123456789abcdef")
HAND_MN_HA_HDR = bytes.fromhex("20 14 000003e8")
# HMAC-MD5(key "mip4-mn-ha-key-1", HAND_FIXED + HAND_MN_HA_HDR), computed with
#   openssl dgst -md5 -mac HMAC -macopt hexkey:6d6970342d6d6e2d68612d6b65792d31
# over the 30 bytes above (an oracle outside Python).
HAND_HMAC = bytes.fromhex("17e771c974b38e8f7a23dd955106150c")
# MD5(key || same 30 bytes || key), computed with `openssl dgst -md5`.
HAND_KEYED_MD5 = bytes.fromhex("72e531c0079359d8bbc7946d551c7db6")


def only(sa: SecurityAssociation):  # type: ignore[no-untyped-def]
    return lambda spi: sa if spi == sa.spi else None


def decode(data: bytes) -> RegistrationRequest | RegistrationReply:
    m = decode_message(data)
    assert isinstance(m, RegistrationRequest | RegistrationReply)
    return m


# ---------------------------------------------------------------- known answers


def test_hand_built_vector_mn_ha() -> None:
    signed = sign(rrq(), MobileHomeAuthExtension, MN_HA)
    assert signed.raw == HAND_FIXED + HAND_MN_HA_HDR + HAND_HMAC
    assert signed.raw == signed.encode()
    assert covered_bytes(signed.raw, 24, 0) == HAND_FIXED + HAND_MN_HA_HDR
    r = verify(decode(signed.raw), 32, only(MN_HA))
    assert (r.index, r.start, r.end, r.spi, r.sa) == (0, 24, 46, 1000, MN_HA)


def test_hand_built_vector_keyed_md5() -> None:
    sa = SecurityAssociation(1000, MN_HA_KEY, algorithm=Algorithm.KEYED_MD5)
    signed = sign(rrq(), MobileHomeAuthExtension, sa)
    assert signed.raw == HAND_FIXED + HAND_MN_HA_HDR + HAND_KEYED_MD5
    verify(decode(signed.raw), 32, only(sa))
    # the same SPI with the other algorithm does not verify
    with pytest.raises(AuthenticationError) as e:
        verify(decode(signed.raw), 32, only(MN_HA))
    assert e.value.reason is AuthFailure.BAD_AUTHENTICATOR


def _request_bytes() -> bytes:
    """fixed | NAI | MN-HA | skippable FA-only ext | MN-FA challenge? no: MN-FA, built by
    hand with every authenticator computed by the oracle over the documented range."""
    nai = bytes([131, 8]) + b"mn@home1"
    raw = HAND_FIXED + nai
    ha_hdr = bytes([32, 20]) + struct.pack("!I", MN_HA.spi)
    raw += ha_hdr + rfc2104_hmac_md5(MN_HA.key, raw + ha_hdr)
    raw += bytes([200, 3]) + b"abc"  # a skippable extension for the FA only
    fa_hdr = bytes([33, 20]) + struct.pack("!I", MN_FA.spi)
    raw += fa_hdr + rfc2104_hmac_md5(MN_FA.key, raw + fa_hdr)
    return raw


def test_known_answer_mn_ha_and_mn_fa() -> None:
    raw = _request_bytes()
    m = decode(raw)
    r_ha = verify(m, 32, only(MN_HA))
    r_fa = verify(m, 33, only(MN_FA))
    assert r_ha.index == 1 and r_fa.index == 3
    # MN-FA covers the whole MN-HA extension (numbers.md: FA processing)
    assert covered_bytes(raw, 24, 3) == raw[: r_fa.start + 6]
    assert covered_bytes(raw, 24, 1) == raw[: 24 + 10 + 6]
    # and our signer produces the same bytes from the same message
    built = sign(
        append_extensions(
            sign(
                rrq(extensions=(MobileNodeNAIExtension(b"mn@home1"),)),
                MobileHomeAuthExtension,
                MN_HA,
            ),
            RawExtension(200, b"abc"),
        ),
        MobileForeignAuthExtension,
        MN_FA,
    )
    assert built.raw == raw


def test_known_answer_fa_ha_on_relayed_request() -> None:
    raw = _request_bytes()
    relayed = sign(strip_for_relay(decode(raw)), ForeignHomeAuthExtension, FA_HA)
    cut = raw.index(bytes([200, 3]))  # end of MN-HA
    hdr = bytes([34, 20]) + struct.pack("!I", FA_HA.spi)
    assert relayed.raw == raw[:cut] + hdr + rfc2104_hmac_md5(FA_HA.key, raw[:cut] + hdr)
    m = decode(relayed.raw)
    assert verify(m, 34, only(FA_HA)).index == 2
    assert verify(m, 32, only(MN_HA)).index == 1


def test_known_answer_reply_mn_ha_fa_ha() -> None:
    raw = bytes.fromhex("03 00 0708 0a000005 0a000001 0123456789abcdef")
    ha_hdr = bytes([32, 20]) + struct.pack("!I", MN_HA.spi)
    raw += ha_hdr + rfc2104_hmac_md5(MN_HA.key, raw + ha_hdr)
    fh_hdr = bytes([34, 20]) + struct.pack("!I", FA_HA.spi)
    raw += fh_hdr + rfc2104_hmac_md5(FA_HA.key, raw + fh_hdr)
    signed = sign(sign(rrp(), MobileHomeAuthExtension, MN_HA), ForeignHomeAuthExtension, FA_HA)
    assert signed.raw == raw
    m = decode(raw)
    verify(m, 34, only(FA_HA))
    verify(m, 32, only(MN_HA))
    # the FA strips FA-HA and relays the rest, which the MN still verifies
    to_mn = strip_auth(m, 34)
    assert to_mn.raw == raw[:42]
    verify(decode(to_mn.raw), 32, only(MN_HA))


def _mn_aaa_request(challenge: bytes, spi: int = CHAP_SPI) -> tuple[bytes, bytes]:
    """fixed | NAI | MN-HA | challenge | MN-AAA; returns (raw, covered span of MN-AAA)."""
    raw = HAND_FIXED + bytes([131, 8]) + b"mn@home1"
    ha_hdr = bytes([32, 20]) + struct.pack("!I", MN_HA.spi)
    raw += ha_hdr + rfc2104_hmac_md5(MN_HA.key, raw + ha_hdr)
    raw += bytes([132, len(challenge)]) + challenge
    hdr = struct.pack("!BBHI", 36, 1, 20, spi)  # Type, Subtype 1 (MN-AAA), Length, SPI
    return raw, raw + hdr


@pytest.mark.parametrize("clen", [4, 16, 237, 238, 255])
def test_known_answer_mn_aaa_chap(clen: int) -> None:
    challenge = bytes((7 * i + 3) & 0xFF for i in range(clen))
    raw, covered = _mn_aaa_request(challenge)
    # RFC 4721 §7: MD5(high-order byte of Challenge || Key || MD5(covered) ||
    #                  least-order 237 bytes of Challenge)
    tail = challenge[max(0, clen - 237) :]
    expected = hashlib.md5(challenge[:1] + AAA_KEY + hashlib.md5(covered).digest() + tail).digest()
    msg = rrq(
        extensions=(
            MobileNodeNAIExtension(b"mn@home1"),
            MobileHomeAuthExtension(MN_HA.spi, raw[40:56]),
            MobileForeignChallengeExtension(challenge),
        )
    )
    signed = sign_mn_aaa(msg, CHAP_SPI, AAA_KEY)
    assert signed.raw == covered + expected
    assert signed.raw == signed.encode()
    m = decode(signed.raw)
    r = verify_mn_aaa(m, chap_key=AAA_KEY)
    assert r.index == 3 and isinstance(r.extension, GeneralizedAuthExtension)
    with pytest.raises(AuthenticationError) as e:
        verify_mn_aaa(m, chap_key=b"wrong key")
    assert e.value.reason is AuthFailure.BAD_AUTHENTICATOR
    # MN-HA, before it, still verifies (MN-AAA is after all it covers)
    verify(m, 32, only(MN_HA))


def test_mn_aaa_hmac_spi() -> None:
    sa = SecurityAssociation(4000, AAA_KEY)
    challenge = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    raw, covered = _mn_aaa_request(challenge, spi=4000)
    msg = decode(raw)
    signed = sign_mn_aaa(msg, 4000, AAA_KEY)
    assert signed.raw == covered + rfc2104_hmac_md5(AAA_KEY, covered)
    m = decode(signed.raw)
    assert verify_mn_aaa(m, only(sa)).sa is sa
    assert verify(m, 36, only(sa)).index == 3
    with pytest.raises(AuthenticationError) as e:
        verify_mn_aaa(m, lambda spi: None)
    assert e.value.reason is AuthFailure.UNKNOWN_SPI


def test_mn_aaa_needs_challenge() -> None:
    msg = sign(rrq(extensions=(MobileNodeNAIExtension(b"mn@x"),)), MobileHomeAuthExtension, MN_HA)
    with pytest.raises(ValueError, match="Challenge"):
        sign_mn_aaa(msg, CHAP_SPI, AAA_KEY)
    signed = sign_mn_aaa(msg, CHAP_SPI, AAA_KEY, challenge=b"abcd")
    with pytest.raises(AuthenticationError) as e:
        verify_mn_aaa(decode(signed.raw), chap_key=AAA_KEY, challenge=b"abcd")
    assert e.value.reason is AuthFailure.MISSING_CHALLENGE
    with pytest.raises(AuthenticationError) as e:
        verify_mn_aaa(decode(signed.raw), chap_key=None)
    assert e.value.reason is AuthFailure.MISSING_CHALLENGE


def test_mn_aaa_chap_without_key() -> None:
    raw, _ = _mn_aaa_request(b"abcdefgh")
    signed = sign_mn_aaa(decode(raw), CHAP_SPI, AAA_KEY)
    with pytest.raises(AuthenticationError) as e:
        verify_mn_aaa(decode(signed.raw), only(MN_HA))
    assert e.value.reason is AuthFailure.UNKNOWN_SPI


# ---------------------------------------------------------------- tampering


def _flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(b)


def _fails(data: bytes, ext_type: int, sa: SecurityAssociation) -> bool:
    try:
        m = decode_message(data)
    except DecodeError:
        return True
    if not isinstance(m, RegistrationRequest | RegistrationReply):
        return True  # a flipped type byte made it another message: not accepted as this one
    try:
        verify(m, ext_type, only(sa))
    except AuthenticationError:
        return True
    return False


def test_every_bit_flip_in_mn_ha_span_fails() -> None:
    raw = sign(
        rrq(extensions=(MobileNodeNAIExtension(b"mn@x"),)), MobileHomeAuthExtension, MN_HA
    ).raw
    assert not _fails(raw, 32, MN_HA)
    for bit in range(len(raw) * 8):  # covered bytes and the authenticator
        assert _fails(_flip(raw, bit), 32, MN_HA), f"bit {bit} flipped and still verified"


def test_bytes_after_mn_ha_are_not_covered_by_it() -> None:
    raw = _request_bytes()
    m = decode(raw)
    r_ha = verify(m, 32, only(MN_HA))
    for bit in range(r_ha.end * 8, len(raw) * 8):
        flipped = _flip(raw, bit)
        try:
            m2 = decode(flipped)
        except DecodeError:
            continue  # a flipped type/length byte after MN-HA: the message does not decode
        # MN-HA still verifies: it does not cover what follows it (RFC 5944 §3.5.1) ...
        try:
            verify(m2, 32, only(MN_HA))
        except AuthenticationError as e:
            # ... unless the flip turned MN-FA (33) into a second MN-HA (32) or an FA-HA (34)
            # ahead of ... : a structural rejection, never a bad authenticator
            assert e.reason in (AuthFailure.DUPLICATE, AuthFailure.MISPLACED), str(e)
            assert bit // 8 == r_ha.end + 5, bit  # the MN-FA type byte
        # ... but MN-FA, which covers everything before it plus itself, fails
        assert _fails(flipped, 33, MN_FA)
    for bit in range(r_ha.end * 8):
        assert _fails(_flip(raw, bit), 33, MN_FA)


def test_unknown_spi() -> None:
    m = decode(sign(rrq(), MobileHomeAuthExtension, MN_HA).raw)
    with pytest.raises(AuthenticationError) as e:
        verify(m, 32, lambda spi: None)
    assert e.value.reason is AuthFailure.UNKNOWN_SPI and e.value.spi == 1000
    assert isinstance(e.value, ValueError)
    other = SecurityAssociation(1000, b"different key")
    with pytest.raises(AuthenticationError) as e:
        verify(m, 32, only(other))
    assert e.value.reason is AuthFailure.BAD_AUTHENTICATOR


def test_short_authenticator_fails() -> None:
    raw = HAND_FIXED + bytes([32, 8]) + struct.pack("!I", 1000) + HAND_HMAC[:4]
    with pytest.raises(AuthenticationError) as e:
        verify(decode(raw), 32, only(MN_HA))
    assert e.value.reason is AuthFailure.BAD_AUTHENTICATOR


# ---------------------------------------------------------------- ordering rules


def _raw_with(*exts: object) -> RegistrationRequest:
    """A decoded request whose extensions are exactly ``exts`` (authenticators garbage)."""
    return decode(rrq(extensions=tuple(exts)).encode())  # type: ignore[arg-type,return-value]


A16 = b"\0" * 16


@pytest.mark.parametrize(
    ("exts", "ext_type", "reason"),
    [
        ((), 32, AuthFailure.MISSING),
        ((MobileNodeNAIExtension(b"x"),), 33, AuthFailure.MISSING),
        (
            (MobileHomeAuthExtension(1000, A16), MobileHomeAuthExtension(1000, A16)),
            32,
            AuthFailure.DUPLICATE,
        ),
        (
            (MobileForeignAuthExtension(2000, A16), MobileHomeAuthExtension(1000, A16)),
            32,
            AuthFailure.MISPLACED,
        ),
        (
            (ForeignHomeAuthExtension(3000, A16), MobileHomeAuthExtension(1000, A16)),
            32,
            AuthFailure.MISPLACED,
        ),
        (
            (MobileForeignAuthExtension(2000, A16), MobileHomeAuthExtension(1000, A16)),
            33,
            AuthFailure.MISPLACED,
        ),
        (
            (ForeignHomeAuthExtension(3000, A16), MobileForeignAuthExtension(2000, A16)),
            33,
            AuthFailure.MISPLACED,
        ),
        (
            (ForeignHomeAuthExtension(3000, A16), MobileHomeAuthExtension(1000, A16)),
            34,
            AuthFailure.MISPLACED,
        ),
        (
            (ForeignHomeAuthExtension(3000, A16), MobileForeignAuthExtension(2000, A16)),
            34,
            AuthFailure.MISPLACED,
        ),
        (
            (
                MobileForeignChallengeExtension(b"abcd"),
                ForeignHomeAuthExtension(3000, A16),
                GeneralizedAuthExtension(1, 2, A16),
            ),
            36,
            AuthFailure.MISPLACED,
        ),
        ((GeneralizedAuthExtension(1, 2, A16),), 36, AuthFailure.MISSING_CHALLENGE),
    ],
)
def test_ordering_rules(exts: tuple, ext_type: int, reason: AuthFailure) -> None:  # type: ignore[type-arg]
    with pytest.raises(AuthenticationError) as e:
        verify(_raw_with(*exts), ext_type, lambda spi: MN_HA)
    assert e.value.reason is reason, str(e.value)


def test_ordering_checked_before_spi_lookup() -> None:
    m = decode(
        sign(sign(rrq(), MobileForeignAuthExtension, MN_FA), MobileHomeAuthExtension, MN_HA).raw
    )
    called: list[int] = []
    with pytest.raises(AuthenticationError) as e:
        verify(m, 32, lambda spi: called.append(spi))
    assert e.value.reason is AuthFailure.MISPLACED and called == []


def test_other_generalized_subtypes_are_not_mn_aaa() -> None:
    m = _raw_with(MobileHomeAuthExtension(1000, A16), GeneralizedAuthExtension(2, 5000, A16))
    with pytest.raises(AuthenticationError) as e:
        verify_mn_aaa(m, lambda spi: None)
    assert e.value.reason is AuthFailure.MISSING


# ---------------------------------------------------------------- raw bytes discipline


def test_verify_requires_raw() -> None:
    signed = sign(rrq(), MobileHomeAuthExtension, MN_HA)
    local = dataclasses.replace(signed, raw=b"")
    with pytest.raises(AuthenticationError) as e:
        verify(local, 32, only(MN_HA))
    assert e.value.reason is AuthFailure.NO_RAW_BYTES
    assert "with_raw" in str(e.value)
    assert verify(with_raw(local), 32, only(MN_HA)).index == 0
    assert with_raw(signed) is signed


def test_verify_uses_raw_not_reencoding() -> None:
    # A peer encodes an NAI; we decode, verify, and a re-encoding is never consulted:
    # corrupting the decoded fields (not the bytes) leaves verification unchanged.
    raw = sign(
        rrq(extensions=(MobileNodeNAIExtension(b"mn@x"),)), MobileHomeAuthExtension, MN_HA
    ).raw
    m = decode(raw)
    object.__setattr__(m, "lifetime", 1)  # the object now differs from the bytes
    verify(m, 32, only(MN_HA))


def test_stale_raw_detected() -> None:
    m = decode(sign(rrq(), MobileHomeAuthExtension, MN_HA).raw)
    stale = dataclasses.replace(m, extensions=(*m.extensions, MobileNodeNAIExtension(b"x")))
    with pytest.raises(ValueError, match="stale"):
        sign(stale, MobileForeignAuthExtension, MN_FA)
    with pytest.raises(ValueError, match="stale"):
        strip_after(stale, 0)
    with pytest.raises(ValueError, match="stale"):
        verify(stale, 32, only(MN_HA))


def test_sign_does_not_mutate_and_keeps_fields() -> None:
    base = rrq(extensions=(MobileNodeNAIExtension(b"mn@x"),))
    signed = sign(base, MobileHomeAuthExtension, MN_HA)
    assert base.extensions == (MobileNodeNAIExtension(b"mn@x"),) and base.raw == b""
    assert isinstance(signed, RegistrationRequest)
    assert signed.extensions[:1] == base.extensions
    assert dataclasses.replace(signed, extensions=base.extensions) == base
    assert decode(signed.raw) == signed


# ---------------------------------------------------------------- foreign agent helpers


def test_strip_helpers() -> None:
    raw = _request_bytes()
    m = decode(raw)
    assert authorization_index(m) == 1
    s = strip_for_relay(m)
    assert len(s.extensions) == 2 and raw.startswith(s.raw) and s.raw == s.encode()
    t = truncate_before(m, 3)  # drop MN-FA only
    assert t.extensions == m.extensions[:3] and t.raw == raw[: len(t.raw)] == t.encode()
    assert strip_after(m, 3).raw == raw
    assert strip_after(m, -1).raw == raw[:24] and strip_after(m, -1).extensions == ()
    assert strip_auth(m, 33).raw == t.raw
    with pytest.raises(IndexError):
        strip_after(m, 4)
    with pytest.raises(AuthenticationError):
        authorization_index(decode(HAND_FIXED))


def test_authorization_index_mn_aaa() -> None:
    m = _raw_with(
        MobileNodeNAIExtension(b"x"),
        MobileForeignChallengeExtension(b"abcd"),
        GeneralizedAuthExtension(1, 2, A16),
        MobileForeignAuthExtension(2000, A16),
    )
    assert authorization_index(m) == 2
    assert len(strip_for_relay(m).extensions) == 3


def test_fa_relay_triangle() -> None:
    """MN -> FA -> HA and back, each hop checking only the bytes it received."""
    challenge = b"0123456789abcdef"
    request = sign(
        sign(
            rrq(
                extensions=(
                    MobileNodeNAIExtension(b"mn@home"),
                    MobileForeignChallengeExtension(challenge),
                )
            ),
            MobileHomeAuthExtension,
            MN_HA,
        ),
        MobileForeignAuthExtension,
        MN_FA,
    )
    at_fa = decode(request.raw)
    verify(at_fa, 33, only(MN_FA))
    relay = sign(
        append_extensions(strip_for_relay(at_fa), RawExtension(200, b"fa-only")),
        ForeignHomeAuthExtension,
        FA_HA,
    )
    at_ha = decode(relay.raw)
    assert at_ha.raw[: 46 + 18] == request.raw[: 46 + 18]  # the MN's bytes untouched
    ha_ok = verify(at_ha, 32, only(MN_HA))
    verify(at_ha, 34, only(FA_HA))
    assert ha_ok.index == 2
    with pytest.raises(AuthenticationError):
        verify(at_ha, 33, only(MN_FA))  # removed by the FA
    reply = sign(sign(rrp(), MobileHomeAuthExtension, MN_HA), ForeignHomeAuthExtension, FA_HA)
    at_fa2 = decode(reply.raw)
    verify(at_fa2, 34, only(FA_HA))
    to_mn = sign(strip_auth(at_fa2, 34), MobileForeignAuthExtension, MN_FA)
    at_mn = decode(to_mn.raw)
    verify(at_mn, 32, only(MN_HA))
    verify(at_mn, 33, only(MN_FA))


def test_append_extensions() -> None:
    m = decode(sign(rrq(), MobileHomeAuthExtension, MN_HA).raw)
    assert append_extensions(m) is m
    a = append_extensions(m, RawExtension(201, b"x"), MobileNodeNAIExtension(b"n"))
    assert a.raw == m.raw + bytes([201, 1]) + b"x" + bytes([131, 1]) + b"n"
    assert decode(a.raw) == a
    local = append_extensions(rrq())
    assert local.raw == rrq().encode()


def test_any_message_with_an_extension_area() -> None:
    """Revocation (RFC 3543: carries FA-HA) has the same FIXED_LEN/extensions/raw shape."""
    from ipaddress import IPv4Address

    from mip4.wire import messages

    revocation = getattr(messages, "RegistrationRevocation", None)
    if revocation is None:
        pytest.skip("wire has no RegistrationRevocation yet")
    msg = revocation(
        0x8000, IPv4Address("10.0.0.5"), IPv4Address("10.0.0.1"), IPv4Address("192.0.2.1"), 77
    )
    signed = sign(msg, ForeignHomeAuthExtension, FA_HA)
    hdr = bytes([34, 20]) + struct.pack("!I", FA_HA.spi)
    assert signed.raw == msg.encode() + hdr + rfc2104_hmac_md5(FA_HA.key, msg.encode() + hdr)
    received = decode_message(signed.raw)
    assert verify(received, 34, only(FA_HA)).start == 20  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "ext", "at", "code"),
    [
        (AuthFailure.BAD_AUTHENTICATOR, 32, "ha", 131),
        (AuthFailure.MISSING, 32, "ha", 131),
        (AuthFailure.UNKNOWN_SPI, 32, "ha", 131),
        (AuthFailure.BAD_AUTHENTICATOR, 34, "ha", 132),
        (AuthFailure.BAD_AUTHENTICATOR, 36, "ha", 144),
        (AuthFailure.MISPLACED, 32, "ha", 134),
        (AuthFailure.BAD_AUTHENTICATOR, 33, "fa", 67),
        (AuthFailure.UNKNOWN_SPI, 33, "fa", 67),
        (AuthFailure.BAD_AUTHENTICATOR, 34, "fa", 68),
        (AuthFailure.BAD_AUTHENTICATOR, 36, "fa", 108),
        (AuthFailure.MISSING_CHALLENGE, 36, "fa", 105),
        (AuthFailure.DUPLICATE, 33, "fa", 70),
        (AuthFailure.MISPLACED, 34, "fa", 71),
        (AuthFailure.BAD_AUTHENTICATOR, 32, "fa", None),
        (AuthFailure.BAD_AUTHENTICATOR, 32, "mn", None),
    ],
)
def test_reply_code_for(reason: AuthFailure, ext: int, at: str, code: int | None) -> None:
    from mip4.security.auth import reply_code_for

    got = reply_code_for(AuthenticationError(reason, ext), at=at)  # type: ignore[arg-type]
    assert got == code


def test_package_exports() -> None:
    import mip4.security as sec

    for name in sec.__all__:
        assert hasattr(sec, name), name
    assert sec.MN_HA == 32 and sec.MN_FA == 33 and sec.FA_HA == 34 and sec.GENERALIZED == 36


def test_strip_for_relay_keeps_mn_aaa_after_mn_ha() -> None:
    """RFC 4721 order NAI, MN-HA, challenge, MN-AAA, MN-FA: the relay keeps the MN-AAA the
    HA/AAA needs and its challenge, and drops only what follows (MN-FA)."""
    raw, _ = _mn_aaa_request(b"abcdefgh")
    signed = sign(sign_mn_aaa(decode(raw), CHAP_SPI, AAA_KEY), MobileForeignAuthExtension, MN_FA)
    m = decode(signed.raw)
    verify(m, 33, only(MN_FA))
    relayed = strip_for_relay(m)
    assert [e.ext_type for e in relayed.extensions] == [131, 32, 132, 36]
    assert authorization_index(m) == 1
    at_ha = decode(sign(relayed, ForeignHomeAuthExtension, FA_HA).raw)
    verify(at_ha, 32, only(MN_HA))
    verify_mn_aaa(at_ha, chap_key=AAA_KEY)
    verify(at_ha, 34, only(FA_HA))


def test_sign_rejects_other_extension_classes() -> None:
    with pytest.raises(TypeError, match="sign_mn_aaa"):
        sign(rrq(), GeneralizedAuthExtension, MN_HA)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sign(rrq(), MobileNodeNAIExtension, MN_HA)  # type: ignore[arg-type]


def test_rfc2002_coverage_without_spi() -> None:
    """RFC 2002 §3.5.1 (and Qualcomm's default): Type and Length covered, SPI not."""

    def prefix_suffix(k: bytes, d: bytes) -> bytes:
        return hashlib.md5(k + d + k).digest()

    for algorithm, oracle in (
        (Algorithm.HMAC_MD5, rfc2104_hmac_md5),
        (Algorithm.KEYED_MD5, prefix_suffix),
    ):
        sa = SecurityAssociation(1000, MN_HA_KEY, algorithm=algorithm, spi_covered=False)
        signed = sign(rrq(), MobileHomeAuthExtension, sa)
        expected = oracle(MN_HA_KEY, HAND_FIXED + HAND_MN_HA_HDR[:2])
        assert signed.raw == HAND_FIXED + HAND_MN_HA_HDR + expected
        verify(decode(signed.raw), 32, only(sa))
        # the two dialects do not verify each other
        modern = SecurityAssociation(1000, MN_HA_KEY, algorithm=algorithm)
        with pytest.raises(AuthenticationError):
            verify(decode(signed.raw), 32, only(modern))
        assert "spi_covered=False" in repr(sa)
