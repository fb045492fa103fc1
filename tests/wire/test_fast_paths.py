"""The hot-path shortcuts of the codec (issue 13) give exactly what the slow paths give."""

from __future__ import annotations

import enum
from ipaddress import IPv4Address

import pytest

from mip4.wire.extensions import MobileNodeNAIExtension
from mip4.wire.msg_base import REG_FLAGS, RegistrationFlags
from mip4.wire.msg_registration import RegistrationReply


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
