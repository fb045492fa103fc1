"""Properties: sign-then-verify always succeeds; flipping any covered bit always fails."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.security.auth import (
    AuthenticationError,
    covered_bytes,
    sign,
    sign_mn_aaa,
    verify,
    verify_mn_aaa,
)
from mip4.security.sa import Algorithm, SecurityAssociation
from mip4.wire.errors import DecodeError
from mip4.wire.extensions import (
    REGISTRATION_EXTENSIONS,
    Extension,
    ForeignHomeAuthExtension,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RawExtension,
)
from mip4.wire.messages import (
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    decode_message,
)

u32 = st.integers(0, 2**32 - 1)
addr = u32.map(IPv4Address)
sas = st.builds(
    SecurityAssociation,
    spi=st.integers(256, 2**32 - 1),
    key=st.binary(min_size=1, max_size=80),
    algorithm=st.sampled_from(Algorithm),
)
plain_exts = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=40).map(MobileNodeNAIExtension),
        st.binary(min_size=4, max_size=40).map(MobileForeignChallengeExtension),
        st.builds(
            RawExtension,
            st.integers(128, 255).filter(lambda t: t not in REGISTRATION_EXTENSIONS),
            st.binary(max_size=30),
        ),
    ),
    max_size=4,
).map(tuple)


@st.composite
def messages(draw: st.DrawFn) -> RegistrationRequest | RegistrationReply:
    exts: tuple[Extension, ...] = draw(plain_exts)
    ident = draw(st.integers(0, 2**64 - 1))
    if draw(st.booleans()):
        return RegistrationRequest(
            RegistrationFlags(draw(st.integers(0, 255))), draw(st.integers(0, 0xFFFF)),
            draw(addr), draw(addr), draw(addr), ident, exts,
        )  # fmt: skip
    return RegistrationReply(
        draw(st.integers(0, 255)), draw(st.integers(0, 0xFFFF)), draw(addr), draw(addr), ident,
        exts,
    )  # fmt: skip


def _decode(data: bytes) -> RegistrationRequest | RegistrationReply:
    m = decode_message(data)
    assert isinstance(m, RegistrationRequest | RegistrationReply)
    return m


def _flipped_verifies(data: bytes, check: Callable[[Any], object]) -> bool:
    """Whether a tampered message still passes ``check``. A flip in the type byte may make
    it another message type (still covered, so it must fail authentication too)."""
    try:
        m = decode_message(data)
        if not hasattr(m, "extensions"):
            return False
        check(m)
    except (DecodeError, AuthenticationError):
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(messages(), sas, sas, st.data())
def test_sign_then_verify_and_any_covered_flip_fails(
    msg: RegistrationRequest | RegistrationReply,
    sa: SecurityAssociation,
    sa2: SecurityAssociation,
    data: st.DataObject,
) -> None:
    signed = sign(msg, MobileHomeAuthExtension, sa)
    assert signed.raw == signed.encode()
    received = _decode(signed.raw)
    assert received == signed
    r = verify(received, 32, lambda spi: sa if spi == sa.spi else None)
    assert r.end == len(signed.raw)
    # a second authenticator after it (MN-FA for a request, FA-HA for a reply)
    second = (
        MobileForeignAuthExtension
        if isinstance(msg, RegistrationRequest)
        else (ForeignHomeAuthExtension)
    )
    both = _decode(sign(received, second, sa2).raw)
    verify(both, 32, lambda spi: sa if spi == sa.spi else None)
    verify(both, second.TYPE, lambda spi: sa2 if spi == sa2.spi else None)

    # flip one bit anywhere in the covered bytes or the authenticator
    raw = signed.raw
    assert covered_bytes(raw, type(msg).FIXED_LEN, len(signed.extensions) - 1) == raw[:-16]
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    flipped = bytearray(raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not _flipped_verifies(
        bytes(flipped), lambda m: verify(m, 32, lambda spi: sa if spi == sa.spi else None)
    ), f"bit {bit} flipped and the message still verified"


@settings(max_examples=100, deadline=None)
@given(messages(), st.binary(min_size=1, max_size=40), st.binary(min_size=4, max_size=255),
       st.data())  # fmt: skip
def test_mn_aaa_chap_property(
    msg: RegistrationRequest | RegistrationReply,
    key: bytes,
    challenge: bytes,
    data: st.DataObject,
) -> None:
    base = sign(
        _with(msg, MobileForeignChallengeExtension(challenge)),
        MobileHomeAuthExtension,
        SecurityAssociation(300, b"ha"),
    )
    signed = sign_mn_aaa(base, 2, key)
    verify_mn_aaa(_decode(signed.raw), chap_key=key)
    bit = data.draw(st.integers(0, len(signed.raw) * 8 - 1))
    flipped = bytearray(signed.raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not _flipped_verifies(bytes(flipped), lambda m: verify_mn_aaa(m, chap_key=key)), (
        f"bit {bit} flipped and MN-AAA still verified"
    )


def _with(
    msg: RegistrationRequest | RegistrationReply, ext: Extension
) -> RegistrationRequest | RegistrationReply:
    from dataclasses import replace

    return replace(msg, extensions=(*msg.extensions, ext))
