"""Lazy fields of decoded Registration Requests and Replies (messages.py, "Lazy fields").

The decoders check everything that could fail up front and build addresses and extensions on
first read. These tests hold them to that: whatever ``scan_extensions`` accepts must decode,
a lazily decoded message is indistinguishable from an eagerly built one, and malformed input
still fails at ``decode`` time, not later.
"""

from __future__ import annotations

import dataclasses
import pickle
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.wire import (
    DecodeError,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    decode_extensions,
    decode_message,
)
from mip4.wire.extensions import scan_extensions

from .strategies import extension_lists

A = IPv4Address
RRQ = RegistrationRequest(
    RegistrationFlags.T,
    1800,
    A("10.1.0.100"),
    A("10.1.0.2"),
    A("10.2.0.2"),
    0xE8F3A1B200000001,
    (MobileNodeNAIExtension(b"mn@example.net"), MobileHomeAuthExtension(256, bytes(range(16)))),
)
RRP = RegistrationReply(
    0, 600, A("10.1.0.100"), A("10.1.0.2"), 7, (MobileHomeAuthExtension(300, b"\x01" * 16),)
)


@pytest.mark.parametrize("msg", [RRQ, RRP], ids=["request", "reply"])
def test_lazy_decode_is_whole(msg: RegistrationRequest | RegistrationReply) -> None:
    data = msg.encode()
    decoded = decode_message(data)
    # Deferred: the instance holds only what was cheap to take from the fixed header.
    assert "extensions" not in vars(decoded)
    assert "home_address" not in vars(decoded)
    assert decoded == msg and hash(decoded) == hash(msg)
    assert decoded.extensions == msg.extensions
    assert "extensions" in vars(decoded)  # built once, then read from the instance
    assert decoded.extensions is decoded.extensions
    assert decoded.home_address == msg.home_address
    assert repr(decode_message(data)) == repr(msg)
    assert pickle.loads(pickle.dumps(decode_message(data))) == msg
    again = dataclasses.replace(type(msg).decode(data), lifetime=1)
    assert again.home_agent == msg.home_agent and again.extensions == msg.extensions


def test_class_attribute_default_kept() -> None:
    assert RegistrationRequest.extensions == ()
    assert RegistrationReply.extensions == ()
    built = RegistrationReply(0, 1, A("1.2.3.4"), A("1.2.3.5"), 1)
    assert built.extensions == () and vars(built)["extensions"] == ()


def test_eager_for_types_that_can_fail() -> None:
    """An extension whose body can be malformed (here a Dynamic HA extension, type 139) is
    decoded at decode time, so its errors surface there."""
    base = RRQ.encode_fixed()
    good = base + bytes([139, 5, 1, 10, 1, 0, 2])
    assert not scan_extensions(good, 24)
    msg = RegistrationRequest.decode(good)
    assert "extensions" in vars(msg)
    with pytest.raises(DecodeError):
        RegistrationRequest.decode(base + bytes([139, 2, 1, 10]))


@pytest.mark.parametrize(
    "tail",
    [
        bytes([32, 3, 0, 0, 1]),  # MN-HA shorter than its SPI
        bytes([32, 20, 0, 0]),  # overruns the message
        bytes([32]),  # truncated header
        bytes([36, 1, 0]),  # truncated long header
        bytes([36, 1, 0, 2, 0, 0]),  # generalized auth shorter than its SPI
        bytes([7, 0]),  # unknown non-skippable type
    ],
)
def test_malformed_fails_at_decode(tail: bytes) -> None:
    with pytest.raises(DecodeError):
        RegistrationRequest.decode(RRQ.encode_fixed() + tail)
    with pytest.raises(DecodeError):
        RegistrationReply.decode(RRP.encode_fixed() + tail)


@settings(max_examples=400)
@given(st.binary(max_size=80))
def test_scan_never_accepts_what_decode_rejects(area: bytes) -> None:
    data = bytes(24) + area
    if scan_extensions(data, 24):
        decode_extensions(data, 24)  # must not raise


@settings(max_examples=200)
@given(extension_lists())
def test_scan_accepts_well_formed_simple_areas(exts: tuple[object, ...]) -> None:
    """Whatever the scan says, decoding through the message gives the same extensions."""
    msg = dataclasses.replace(RRQ, extensions=exts, raw=b"")  # type: ignore[arg-type]
    data = msg.encode()
    assert RegistrationRequest.decode(data).extensions == msg.extensions
