"""The hot-path shortcuts of the codec (issue 13) give exactly what the slow paths give."""

from __future__ import annotations

import enum
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.wire.extensions import (
    Extension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RawExtension,
)
from mip4.wire.msg_base import REG_FLAGS, FromRaw, RegistrationFlags
from mip4.wire.msg_registration import RegistrationReply, RegistrationRequest, _rrq_fields

_desc = RegistrationRequest.__dict__["home_address"]
assert isinstance(_desc, FromRaw)
#: the per-field builders the one-call builder stands for
_RRQ_BUILDERS = _desc.group


def test_flag_and_matches_enum_for_every_pair() -> None:
    members = list(RegistrationFlags)
    for f in REG_FLAGS:
        for other in (*members, *range(256), 0x1FF, -1):
            fast = f & other
            slow = enum.IntFlag.__and__(f, other)
            assert fast == slow and type(fast) is type(slow) is RegistrationFlags
            assert fast is REG_FLAGS[int(slow)]
            assert (other & f) == slow and type(other & f) is RegistrationFlags


def test_flag_and_other_operands_fall_back() -> None:
    f = REG_FLAGS[0x22]
    assert f & True == enum.IntFlag.__and__(f, True)
    with pytest.raises(TypeError):
        f & "x"  # type: ignore[operator]


def test_reply_of_is_the_constructor_without_checks() -> None:
    nai = MobileNodeNAIExtension(b"mn@example.org")
    args = (0, 600, IPv4Address("10.0.0.5"), IPv4Address("10.0.0.1"), 2**63 + 5, (nai,))
    fast = RegistrationReply.of(*args)
    slow = RegistrationReply(*args)
    assert fast == slow and repr(fast) == repr(slow)
    assert fast.encode() == slow.encode()
    assert RegistrationReply.decode(fast.encode()) == slow


@settings(max_examples=300, deadline=None)
@given(
    hoa=st.integers(0, 2**32 - 1),
    ha=st.integers(0, 2**32 - 1),
    coa=st.integers(0, 2**32 - 1),
    ident=st.integers(0, 2**64 - 1),
    nai=st.none() | st.binary(min_size=1, max_size=40),
    skippable=st.none() | st.binary(max_size=20),
    auth=st.binary(max_size=30),
)
def test_request_fields_built_in_one_call_equal_the_field_builders(
    hoa: int,
    ha: int,
    coa: int,
    ident: int,
    nai: bytes | None,
    skippable: bytes | None,
    auth: bytes,
) -> None:
    exts: list[Extension] = []
    if nai is not None:
        exts.append(MobileNodeNAIExtension(nai))
    if skippable is not None:
        exts.append(RawExtension(200, skippable))
    exts.append(MobileHomeAuthExtension(0x1234, auth))
    req = RegistrationRequest(
        REG_FLAGS[0x22], 600, IPv4Address(hoa), IPv4Address(ha), IPv4Address(coa), ident,
        tuple(exts),
    )  # fmt: skip
    raw = req.encode()
    one_call = _rrq_fields(raw)
    by_field = {name: build(raw) for name, build in _RRQ_BUILDERS.items()}
    assert one_call == by_field
    assert [type(v) for v in one_call.values()] == [type(v) for v in by_field.values()]
    decoded = RegistrationRequest.decode(raw)
    assert "extensions" not in vars(decoded)  # deferred (lazy) ...
    assert decoded.home_agent == IPv4Address(ha)  # ... every field built by one read
    assert {k: vars(decoded)[k] for k in one_call} == one_call
    assert decoded == req and decoded.encode() == raw
