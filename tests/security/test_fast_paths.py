"""Issue 13's shortcuts in :mod:`mip4.security` give what the code they replaced gave:
authenticators from a bounded table of keyed HMAC-MD5 contexts (against :mod:`hmac` and
OpenSSL's one-shot HMAC, RFC 2202's vectors included), the bytes of :func:`signed_bytes`
(against :func:`sign`), and the replay state of an accepted timestamp (against
``dataclasses.replace``)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.security import sa as sa_module
from mip4.security.auth import (
    FA_HA,
    MN_FA,
    MN_HA,
    AuthenticationError,
    AuthFailure,
    _check_raw,
    append_extensions,
    find_auth_extension,
    sign,
    signed_bytes,
    verify,
)
from mip4.security.replay import ReplayCheck, ReplayState, check_request
from mip4.security.sa import Algorithm, ReplayMethod, SecurityAssociation, SecurityAssociations
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    MobileForeignAuthExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RawExtension,
)
from mip4.wire.messages import NO_FLAGS, RegistrationReply, RegistrationRequest

A = IPv4Address

#: RFC 2202 §2, HMAC-MD5 test cases 1, 2, 6 (key longer than the block)
RFC2202 = [
    (b"\x0b" * 16, b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
    (b"Jefe", b"what do ya want for nothing?", "750c783e6ab0b503eaa86e310a5db738"),
    (
        b"\xaa" * 80,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
    ),
]


@pytest.mark.parametrize(("key", "data", "digest"), RFC2202)
def test_context_table_gives_rfc2202_digests(key: bytes, data: bytes, digest: str) -> None:
    sa = SecurityAssociation(256, key)
    assert sa.authenticator(data).hex() == digest
    assert sa.authenticator(data).hex() == digest  # from the table the second time


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=1, max_size=100), data=st.binary(max_size=300))
def test_context_table_equals_hmac_and_the_one_shot(key: bytes, data: bytes) -> None:
    sa = SecurityAssociation(256, key)
    want = hmac.new(key, data, hashlib.md5).digest()
    assert sa.authenticator(data) == want
    assert sa.authenticator(data) == want
    assert sa_module._hmac_digest(key, data, "md5") == want


def test_context_table_is_bounded_and_keyed_md5_does_not_use_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sa_module, "_CONTEXTS", {})
    monkeypatch.setattr(sa_module, "CONTEXTS_MAX", 16)
    for i in range(100):
        key = i.to_bytes(16, "big")
        sa = SecurityAssociation(256 + i, key)
        assert sa.authenticator(b"data") == hmac.new(key, b"data", hashlib.md5).digest()
        assert len(sa_module._CONTEXTS) <= 16
    old = SecurityAssociation(300, b"k" * 16, algorithm=Algorithm.KEYED_MD5)
    sa_module._CONTEXTS.clear()
    assert old.authenticator(b"x") == hashlib.md5(b"k" * 16 + b"x" + b"k" * 16).digest()
    assert sa_module._CONTEXTS == {}


def test_shared_contexts_of_a_store_still_agree() -> None:
    store = SecurityAssociations()
    a, b = SecurityAssociation(256, b"s" * 16), SecurityAssociation(257, b"s" * 16)
    store.add(A("10.0.0.1"), a)
    store.add(A("10.0.0.2"), b)
    assert store.keyed_contexts() == 1
    want = hmac.new(b"s" * 16, b"abc", hashlib.md5).digest()
    assert a.authenticator(b"abc") == b.authenticator(b"abc") == want


@pytest.mark.parametrize("spi_covered", [True, False])
@pytest.mark.parametrize(
    ("ext_cls", "ext_type"),
    [
        (MobileHomeAuthExtension, MN_HA),
        (MobileForeignAuthExtension, MN_FA),
        (ForeignHomeAuthExtension, FA_HA),
    ],
)
def test_signed_bytes_are_the_bytes_sign_makes(
    spi_covered: bool,
    ext_cls: type[MobileHomeAuthExtension]
    | type[MobileForeignAuthExtension]
    | type[ForeignHomeAuthExtension],
    ext_type: int,
) -> None:
    sa = SecurityAssociation(0x1234, b"q" * 16, spi_covered=spi_covered)
    hoa, ha = A("10.0.0.10"), A("10.0.0.1")
    nai = MobileNodeNAIExtension(b"n@example.net")
    for msg in (
        RegistrationReply(0, 600, hoa, ha, 0x1122334455667788),
        RegistrationReply(133, 0, hoa, ha, 1, (nai,)),
        RegistrationRequest(NO_FLAGS, 600, hoa, ha, A("192.0.2.1"), 7, (nai,)),
    ):
        assert signed_bytes(msg.encode(), ext_type, sa) == sign(msg, ext_cls, sa).raw


@settings(max_examples=200, deadline=None)
@given(
    last=st.none() | st.integers(0, 2**64 - 1),
    nonce=st.none() | st.integers(0, 2**32 - 1),
    low=st.integers(0, 2**32 - 1),
    skew=st.integers(-10, 10),
)
def test_accepted_timestamp_state_equals_replace(
    last: int | None, nonce: int | None, low: int, skew: int
) -> None:
    now = 1_790_000_000.0
    ident = (((int(now) + 2208988800 + skew) & 0xFFFFFFFF) << 32) | low
    state = ReplayState(last, nonce)
    check = check_request(state, ident, ReplayMethod.TIMESTAMPS, now_unix=now, tolerance=7.0)
    if check.accepted:
        assert check.state == dataclasses.replace(state, last_accepted=ident)
        assert type(check.state) is ReplayState
        slow = ReplayCheck(True, ident, ReplayState(ident, nonce))
        assert check == slow and vars(check) == vars(slow)
        assert dataclasses.astuple(check.state) == dataclasses.astuple(slow.state)
        # a home agent keeps one per node as long as its binding: slotted, no dict of its
        # own (issue 13: 1 M bindings in < 1 GiB; the dict-backed record cost ~190 B more)
        assert not hasattr(check.state, "__dict__")
        assert hash(check.state) == hash(slow.state) and check.code is None
    else:
        assert check.state is state


def _reference_verify(message: Any, ext_type: int, lookup: Any) -> tuple[object, ...]:
    """``verify`` for MN-HA/MN-FA/FA-HA as it was before its one-extension shortcut."""
    raw = message.raw
    index = find_auth_extension(message, ext_type)
    offsets = _check_raw(message, raw, type(message).FIXED_LEN)
    start = offsets[index]
    spi_end = start + 6
    end = offsets[index + 1] if index + 1 < len(offsets) else len(raw)
    spi = int.from_bytes(raw[start + 2 : start + 6], "big")
    sa = lookup(spi)
    if sa is None:
        raise AuthenticationError(AuthFailure.UNKNOWN_SPI, ext_type, spi)
    covered = raw[:spi_end] if sa.spi_covered else raw[: spi_end - 4]
    if not hmac.compare_digest(sa.authenticator(covered), raw[spi_end:end]):
        raise AuthenticationError(AuthFailure.BAD_AUTHENTICATOR, ext_type, spi)
    return (index, message.extensions[index], sa, start, end)


def _outcome(f: Any) -> tuple[object, ...]:
    try:
        r = f()
    except (AuthenticationError, ValueError) as e:
        return ("error", type(e), str(e), getattr(e, "reason", None))
    if isinstance(r, tuple):
        return r
    return (r.index, r.extension, r.sa, r.start, r.end)


@settings(max_examples=300, deadline=None)
@given(
    layout=st.lists(st.sampled_from(["mn_ha", "fa_ha", "mn_fa", "nai", "raw"]), max_size=4),
    reply=st.booleans(),
    known=st.booleans(),
    spi_covered=st.booleans(),
    corrupt=st.booleans(),
)
def test_verify_shortcut_decides_as_the_general_path(
    layout: list[str], reply: bool, known: bool, spi_covered: bool, corrupt: bool
) -> None:
    _verify_both_ways(layout, reply, known, spi_covered, corrupt)


@pytest.mark.parametrize(
    "layout",
    [
        ["mn_ha"],
        ["mn_ha", "fa_ha"],
        ["fa_ha", "mn_ha"],
        ["mn_ha", "mn_ha"],
        ["mn_ha", "fa_ha", "fa_ha"],
        ["nai", "mn_ha", "fa_ha"],
        ["mn_ha", "raw", "fa_ha"],
        ["mn_ha", "mn_fa"],
        ["mn_fa"],
        ["fa_ha"],
        [],
    ],
)
@pytest.mark.parametrize("corrupt", [False, True])
@pytest.mark.parametrize("known", [False, True])
def test_verify_shortcut_on_the_usual_layouts_and_their_neighbours(
    layout: list[str], corrupt: bool, known: bool
) -> None:
    for reply in (False, True):
        for spi_covered in (False, True):
            _verify_both_ways(layout, reply, known, spi_covered, corrupt)


def _verify_both_ways(
    layout: list[str], reply: bool, known: bool, spi_covered: bool, corrupt: bool
) -> None:
    good = SecurityAssociation(0x1234, b"g" * 16, spi_covered=spi_covered)
    hoa, ha = A("10.0.0.10"), A("10.0.0.1")
    msg: Any = (
        RegistrationReply(0, 600, hoa, ha, 99)
        if reply
        else RegistrationRequest(NO_FLAGS, 600, hoa, ha, A("192.0.2.1"), 99)
    )
    signers: dict[str, Any] = {
        "mn_ha": MobileHomeAuthExtension,
        "fa_ha": ForeignHomeAuthExtension,
        "mn_fa": MobileForeignAuthExtension,
    }
    for part in layout:
        if part in signers:
            msg = sign(msg, signers[part], good)
        else:
            ext = MobileNodeNAIExtension(b"n@x") if part == "nai" else RawExtension(200, b"zz")
            msg = append_extensions(msg, ext)
    raw = msg.raw or msg.encode()
    if corrupt and len(raw) > msg.FIXED_LEN:
        raw = raw[:-1] + bytes([raw[-1] ^ 1])
    decoded = (RegistrationReply if reply else RegistrationRequest).decode(raw)

    def lookup(spi: int) -> SecurityAssociation | None:
        return good if known and spi == good.spi else None

    for ext_type in (MN_HA, MN_FA, FA_HA):
        got = _outcome(lambda: verify(decoded, ext_type, lookup))  # noqa: B023
        want = _outcome(lambda: _reference_verify(decoded, ext_type, lookup))  # noqa: B023
        assert got == want, (layout, ext_type)


def test_no_key_is_kept_from_one_node_to_the_next() -> None:
    """Issue 13: the table keeps the last few keys (a request's check and its reply's
    signature share one), never one per node: at a million nodes each renewing once per
    lifetime it would only miss, and make a large table slower than a small one."""
    sa_module._CONTEXTS.clear()
    for i in range(2000):
        key = (i * 7919).to_bytes(16, "big")
        sa = SecurityAssociation(256 + i, key)
        want = hmac.new(key, b"request", hashlib.md5).digest()
        assert sa.authenticator(b"request") == want
        assert sa.authenticator(b"reply") == hmac.new(key, b"reply", hashlib.md5).digest()
        assert len(sa_module._CONTEXTS) <= sa_module.CONTEXTS_MAX <= 16
    sa_module._CONTEXTS.clear()


@pytest.mark.parametrize("length", [1, 16, 63, 64, 65, 200])
def test_keyed_states_are_rfc2104_for_every_key_length(length: int) -> None:
    """The inner and outer MD5 states (RFC 2104) shared by a store's associations of one
    key, and the table's: keys shorter than, as long as and longer than MD5's block."""
    key = bytes(range(256))[:length]
    store = SecurityAssociations()
    a, b = SecurityAssociation(256, key), SecurityAssociation(257, key)
    store.add(A("10.0.0.1"), a)
    store.add(A("10.0.0.2"), b)
    alone = SecurityAssociation(258, key)
    for data in (b"", b"x", bytes(64), bytes(range(200))):
        want = hmac.new(key, data, hashlib.md5).digest()
        assert a.authenticator(data) == b.authenticator(data) == alone.authenticator(data) == want
