"""Foreign-agent challenge window (RFC 4721 §2, §3.2)."""

from __future__ import annotations

import pytest

from mip4.security.challenge import (
    CHALLENGE_WINDOW,
    ChallengeWindow,
    random_challenge,
    request_challenge,
)
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import MobileForeignChallengeExtension, MobileNodeNAIExtension

MN1, MN2 = "mn1@example", "mn2@example"


def c(i: int) -> bytes:
    return i.to_bytes(4, "big") * 4


def test_window_accepts_recent_rejects_stale_and_unknown() -> None:
    w = ChallengeWindow()
    assert w.current is None and w.window == CHALLENGE_WINDOW == 2
    for i in range(5):
        w.advertise(c(i))
    assert w.current == c(4)
    assert w.check(MN1, c(4)) is None
    assert w.check(MN1, c(3)) is None  # still within the window of 2
    assert w.check(MN1, c(2)) is ReplyCode.FA_STALE_CHALLENGE  # issued, left the window
    assert w.check(MN1, c(99)) is ReplyCode.FA_UNKNOWN_CHALLENGE
    assert w.check(MN1, None) is ReplyCode.FA_MISSING_CHALLENGE
    assert [int(x) for x in (104, 105, 106)] == [
        ReplyCode.FA_UNKNOWN_CHALLENGE,
        ReplyCode.FA_MISSING_CHALLENGE,
        ReplyCode.FA_STALE_CHALLENGE,
    ]


def test_reuse_is_stale_only_after_consume() -> None:
    w = ChallengeWindow()
    w.advertise(c(1))
    assert w.check(MN1, c(1)) is None
    assert w.check(MN1, c(1)) is None  # check alone changes nothing
    w.consume(MN1, c(1))
    assert w.check(MN1, c(1)) is ReplyCode.FA_STALE_CHALLENGE
    assert w.check(MN2, c(1)) is None  # another node may still use it
    w.forget(MN1)
    assert w.check(MN1, c(1)) is None


def test_per_node_challenge_from_reply() -> None:
    w = ChallengeWindow(window=1)
    for i in range(3):
        w.advertise(c(i))
    w.issue_to(MN1, c(77))
    assert w.check(MN1, c(77)) is None
    assert w.check(MN2, c(77)) is ReplyCode.FA_UNKNOWN_CHALLENGE
    w.consume(MN1, c(77))
    assert w.check(MN1, c(77)) is ReplyCode.FA_STALE_CHALLENGE


def test_history_is_bounded() -> None:
    w = ChallengeWindow(window=2, history=3)
    for i in range(10):
        w.advertise(c(i))
    assert w.check(MN1, c(7)) is ReplyCode.FA_STALE_CHALLENGE
    assert w.check(MN1, c(6)) is ReplyCode.FA_UNKNOWN_CHALLENGE  # forgotten


def test_arguments_checked() -> None:
    with pytest.raises(ValueError):
        ChallengeWindow(window=0)
    with pytest.raises(ValueError):
        ChallengeWindow(window=4, history=2)
    with pytest.raises(ValueError, match="at least 4"):
        ChallengeWindow().advertise(b"abc")
    with pytest.raises(ValueError):
        random_challenge(3)
    a, b = random_challenge(), random_challenge(4)
    assert len(a) == 16 and len(b) == 4 and a != random_challenge()


def test_request_challenge() -> None:
    exts = (
        MobileNodeNAIExtension(b"x"),
        MobileForeignChallengeExtension(b"first"),
        MobileForeignChallengeExtension(b"second"),
    )
    assert request_challenge(exts) == b"second"
    assert request_challenge(exts[:1]) is None
