"""Properties of the UDP-434 codec (hypothesis).

* decode(encode(x)) == x for generated messages of every type, with generated extension
  lists, and for every extension class on its own;
* anything that decodes re-encodes to exactly the bytes it came from (reserved fields and
  unknown skippable extensions are kept);
* any byte string -- random, every truncation of a valid message, every single-byte mutation
  of one -- either decodes or raises DecodeError, never another exception (h11
  ``fuzz/afl-server.py`` style).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mip4.wire import (
    MESSAGES,
    REGISTRATION_EXTENSIONS,
    DecodeError,
    Extension,
    Message,
    decode_extensions,
    decode_message,
    extension_offsets,
)

from .strategies import EXTENSION_STRATEGIES, MESSAGE_STRATEGIES, messages

FAST = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _decodes_or_decode_error(data: bytes) -> Message | None:
    """Decode ``data``; return the message, or None for a DecodeError. Any other exception
    propagates and fails the test. A decoded message must re-encode to ``data``."""
    try:
        msg = decode_message(data)
    except DecodeError:
        return None
    assert msg.encode() == data
    return msg


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("cls", list(MESSAGE_STRATEGIES), ids=lambda c: c.__name__)
@FAST
@given(data=st.data())
def test_message_round_trip(cls: type[Message], data: st.DataObject) -> None:
    msg = data.draw(MESSAGE_STRATEGIES[cls])
    wire = msg.encode()
    assert wire[0] == cls.TYPE
    got = decode_message(wire)
    assert type(got) is cls
    assert got == msg
    assert got.encode() == wire


@pytest.mark.parametrize("cls", list(EXTENSION_STRATEGIES), ids=lambda c: c.__name__)
@FAST
@given(data=st.data())
def test_extension_round_trip(cls: type[Extension], data: st.DataObject) -> None:
    ext = data.draw(EXTENSION_STRATEGIES[cls])
    wire = ext.encode()
    assert decode_extensions(wire, 0) == (ext,)
    assert extension_offsets(wire, 0) == (0,)


def test_every_registered_class_has_a_strategy() -> None:
    for cls in REGISTRATION_EXTENSIONS.values():
        assert any(issubclass(s, cls) for s in EXTENSION_STRATEGIES), cls.__name__
    assert set(MESSAGE_STRATEGIES) == set(MESSAGES.values())


@settings(max_examples=200, deadline=None)
@given(messages())
def test_extension_offsets_match_encoding(msg: Message) -> None:
    exts: tuple[Extension, ...] = getattr(msg, "extensions", ())
    fixed: int = getattr(msg, "FIXED_LEN", 0)
    wire = msg.encode()
    if not exts:
        return
    offsets = extension_offsets(wire, fixed)
    expected, pos = [], fixed
    for e in exts:
        expected.append(pos)
        pos += len(e.encode())
    assert offsets == tuple(expected)


# ---------------------------------------------------------------- hostile input


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes(data: bytes) -> None:
    _decodes_or_decode_error(data)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(MESSAGES)), st.binary(max_size=80))
def test_random_bytes_after_a_known_type(t: int, rest: bytes) -> None:
    _decodes_or_decode_error(bytes((t,)) + rest)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_random_extension_areas(data: bytes) -> None:
    try:
        exts = decode_extensions(data, 0)
    except DecodeError:
        return
    assert b"".join(e.encode() for e in exts) == data


def _header(ext: Extension, body_len: int) -> bytes:
    if ext.FORMAT.header_len == 4:
        return bytes((ext.ext_type, ext.header_subtype)) + body_len.to_bytes(2, "big")
    return bytes((ext.ext_type, body_len))


@pytest.mark.parametrize("cls", list(EXTENSION_STRATEGIES), ids=lambda c: c.__name__)
@FAST
@given(data=st.data())
def test_every_body_length(cls: type[Extension], data: st.DataObject) -> None:
    """The extension's body cut to every shorter length (and grown by a byte), with a
    consistent length field, alone at the end of a message: decodes exactly or DecodeError."""
    ext = data.draw(EXTENSION_STRATEGIES[cls])
    body = ext.encode()[ext.FORMAT.header_len :]
    for body2 in [body[:n] for n in range(len(body))] + [body + b"\x00"]:
        area = _header(ext, len(body2)) + body2
        try:
            exts = decode_extensions(area, 0)
        except DecodeError:
            continue
        assert b"".join(e.encode() for e in exts) == area


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_every_truncation(msg: Message) -> None:
    wire = msg.encode()
    for n in range(len(wire)):
        _decodes_or_decode_error(wire[:n])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.data())
def test_single_byte_mutations(msg: Message, data: st.DataObject) -> None:
    wire = msg.encode()
    for _ in range(8):
        i = data.draw(st.integers(0, len(wire) - 1), label="index")
        v = data.draw(st.integers(0, 255), label="value")
        _decodes_or_decode_error(wire[:i] + bytes((v,)) + wire[i + 1 :])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_every_single_byte_flip(msg: Message) -> None:
    """Exhaustively: each position, flipped to its complement and to 0."""
    wire = msg.encode()
    for i in range(len(wire)):
        for v in {wire[i] ^ 0xFF, 0}:
            _decodes_or_decode_error(wire[:i] + bytes((v,)) + wire[i + 1 :])
