"""Replay protection: NTP identifications, the home agent's check, 133 resynchronisation."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from mip4.security.replay import (
    NTP_UNIX_OFFSET,
    RANDOM_LOW_BITS,
    MobileNodeReplay,
    ReplayState,
    check_request,
    high_word,
    identification_unix_seconds,
    is_newer,
    low_word,
    make_identification,
    matches_request,
    ntp_seconds,
    ntp_timestamp,
    random_u32,
    reply_identification,
    resync_identification,
    seconds_diff,
)
from mip4.security.sa import ReplayMethod
from mip4.wire.codes import ReplyCode

TS = ReplayMethod.TIMESTAMPS
NONCES = ReplayMethod.NONCES
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_ntp_offset_from_calendar() -> None:
    epoch_1900 = datetime(1900, 1, 1, tzinfo=UTC)
    epoch_1970 = datetime(1970, 1, 1, tzinfo=UTC)
    assert int((epoch_1970 - epoch_1900).total_seconds()) == NTP_UNIX_OFFSET
    assert NTP_UNIX_OFFSET == 86400 * (365 * 70 + 17)  # Solaris agentID.c's way


def test_ntp_timestamp_layout() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    secs_1900 = int((when - datetime(1900, 1, 1, tzinfo=UTC)).total_seconds())
    assert secs_1900 == 0xED00_3780  # by hand: 237 * 2**24 + 0x3780 = 3976214400
    assert ntp_timestamp(NOW) == secs_1900 << 32
    assert ntp_timestamp(NOW + 0.5) == (secs_1900 << 32) | 0x8000_0000
    assert ntp_timestamp(NOW + 0.25, low=0xDEADBEEF) == (secs_1900 << 32) | 0xDEADBEEF
    assert ntp_timestamp(0) == NTP_UNIX_OFFSET << 32
    assert ntp_timestamp(NOW + 0.9999998) >> 32 == secs_1900  # fraction never carries
    assert identification_unix_seconds(ntp_timestamp(NOW + 0.5)) == NOW + 0.5
    with pytest.raises(ValueError):
        ntp_timestamp(NOW, low=2**32)
    with pytest.raises(ValueError):
        ntp_timestamp(float("nan"))


def test_era_wrap_2036() -> None:
    wrap = 2**32 - NTP_UNIX_OFFSET  # Unix time of NTP era 1, 2036-02-07T06:28:16Z
    assert datetime.fromtimestamp(wrap, UTC) == datetime(2036, 2, 7, 6, 28, 16, tzinfo=UTC)
    before, after = ntp_timestamp(wrap - 2), ntp_timestamp(wrap + 2)
    assert high_word(after) == 2 and high_word(before) == 2**32 - 2
    assert is_newer(after, before) and not is_newer(before, after)
    assert seconds_diff(high_word(after), high_word(before)) == 4
    assert identification_unix_seconds(after, near_unix=wrap) == wrap + 2
    # the home agent just after the wrap accepts a request stamped just before it
    r = check_request(ReplayState(), before, TS, now_unix=wrap + 3, tolerance=7)
    assert r.accepted, r.reason


def test_words_and_matching() -> None:
    ident = make_identification(0x11223344, 0x55667788)
    assert ident == 0x1122334455667788
    assert (high_word(ident), low_word(ident)) == (0x11223344, 0x55667788)
    assert matches_request(ident, make_identification(0xFFFFFFFF, 0x55667788))
    assert not matches_request(ident, make_identification(0x11223344, 0x55667789))
    assert 0 <= random_u32() < 2**32
    with pytest.raises(ValueError):
        make_identification(2**32, 0)


# ------------------------------------------------------------------ home agent, timestamps


@pytest.mark.parametrize("skew", [-7, -3, 0, 1, 7])
def test_timestamp_within_tolerance(skew: int) -> None:
    ident = ntp_timestamp(NOW + skew, low=0x0BADCAFE)
    r = check_request(ReplayState(), ident, TS, now_unix=NOW, tolerance=7)
    assert r.accepted and r.code is None, r.reason
    assert r.reply_identification == ident  # §5.7.1: the whole field is copied
    assert r.state.last_accepted == ident


@pytest.mark.parametrize("skew", [-100, -8, 8, 3600])
def test_timestamp_outside_tolerance(skew: int) -> None:
    ident = ntp_timestamp(NOW + skew, low=0x0BADCAFE)
    state = ReplayState(last_accepted=ntp_timestamp(NOW - 3600))
    r = check_request(state, ident, TS, now_unix=NOW + 0.75, tolerance=7)
    assert not r.accepted and r.code is ReplyCode.HA_IDENTIFICATION_MISMATCH
    assert r.code is not None and int(r.code) == 133
    # §5.7.1: HA's time of day in the high word, the MN's low word kept
    assert r.reply_identification == (ntp_seconds(NOW) << 32) | 0x0BADCAFE
    assert r.state is state  # nothing learnt from a rejected request
    assert "tolerance" in r.reason


def test_timestamp_equal_or_older_rejected() -> None:
    first = ntp_timestamp(NOW, low=1000)
    r1 = check_request(ReplayState(), first, TS, now_unix=NOW)
    assert r1.accepted
    for ident in (first, first - 1, ntp_timestamp(NOW - 1, low=0xFFFFFFFF)):
        r = check_request(r1.state, ident, TS, now_unix=NOW)
        assert not r.accepted and r.code == 133, hex(ident)
        assert "not greater" in r.reason
        assert r.reply_identification == (ntp_seconds(NOW) << 32) | low_word(ident)
        assert r.state == r1.state
    r2 = check_request(r1.state, first + 1, TS, now_unix=NOW)
    assert r2.accepted and r2.state.last_accepted == first + 1


def test_timestamp_resync_end_to_end() -> None:
    """A mobile node whose clock is 100 s slow is told the HA's time and gets in next."""
    mn = MobileNodeReplay(TS)
    mn_clock = NOW - 100
    ha_state = ReplayState()
    req1 = mn.next_identification(mn_clock, low=0xAAAA0001)
    r1 = check_request(ha_state, req1, TS, now_unix=NOW)
    assert not r1.accepted
    assert matches_request(req1, r1.reply_identification)
    nxt = resync_identification(TS, req1, r1.reply_identification, new_low=0xAAAA0002)
    assert nxt == (ntp_seconds(NOW) << 32) | 0xAAAA0002
    assert check_request(ha_state, nxt, TS, now_unix=NOW + 1).accepted
    # the stateful helper learns the offset and keeps using it
    assert mn.on_reply(req1, r1.reply_identification, 133, mn_clock)
    assert mn.clock_offset == 100
    req2 = mn.next_identification(mn_clock + 5, low=0xAAAA0003)
    assert high_word(req2) == ntp_seconds(NOW + 5)
    r2 = check_request(ha_state, req2, TS, now_unix=NOW + 5)
    assert r2.accepted, r2.reason
    # a reply to some other request is ignored
    assert not mn.on_reply(req2, make_identification(0, 0xAAAA0004), 133, mn_clock)
    assert mn.clock_offset == 100


def test_resync_rejects_mismatched_low_word() -> None:
    req = make_identification(5, 0x12345678)
    with pytest.raises(ValueError, match="low 32 bits"):
        resync_identification(TS, req, make_identification(9, 0x12345679), new_low=1)
    with pytest.raises(ValueError, match="low 32 bits"):
        resync_identification(NONCES, req, make_identification(9, 0x12345679), new_low=1)


def test_resync_stays_increasing() -> None:
    last = make_identification(ntp_seconds(NOW), 0xF0000000)
    reply = make_identification(ntp_seconds(NOW), 0x1)
    nxt = resync_identification(TS, make_identification(7, 1), reply, new_low=0x2, last_sent=last)
    # the smallest step past the last one, not a second ahead of the home agent's clock
    assert nxt == last + 1


def test_mn_timestamps_strictly_increase() -> None:
    mn = MobileNodeReplay(TS)
    a = mn.next_identification(NOW + 0.5, low=0x80000FFF)
    b = mn.next_identification(NOW + 0.5, low=0x10000000)  # same instant, smaller random bits
    c = mn.next_identification(NOW - 30, low=0x20000000)  # clock stepped back
    d = mn.next_identification(NOW + 0.75, low=None)  # the clock's fraction, nothing random
    assert is_newer(b, a) and is_newer(c, b) and is_newer(d, c)
    # the low word is the clock's fraction; only the lowest RANDOM_LOW_BITS are random
    mask = (1 << RANDOM_LOW_BITS) - 1
    assert a & ~mask == ntp_timestamp(NOW + 0.5) & ~mask and a & mask == 0xFFF
    assert b == a + 1 and c == b + 1
    assert d == ntp_timestamp(NOW + 0.75)


def test_many_requests_a_second_do_not_run_ahead_of_the_clock() -> None:
    """A node re-registering a hundred times within a second (rapid moves) stays on its
    clock: the home agent, 7 s tolerance, keeps accepting. (Random low words used to bump
    the seconds on every other request, and the node fell out of the window.)"""
    rng = random.Random(5)
    mn = MobileNodeReplay(TS)
    ha_state = ReplayState()
    for i in range(100):
        now = NOW + i * 0.009
        ident = mn.next_identification(now, low=rng.getrandbits(32))
        assert abs(identification_unix_seconds(ident, NOW) - now) < 0.001
        r = check_request(ha_state, ident, TS, now_unix=now, tolerance=7)
        assert r.accepted, (i, r.reason)
        ha_state = r.state
        assert mn.on_reply(ident, r.reply_identification, 0, now)


def test_node_ahead_of_the_home_agent_recovers_after_one_133() -> None:
    """A node whose clock is 30 s fast is refused; after the 133 it uses the agent's time
    (not its refused identifications plus one) and is accepted."""
    mn = MobileNodeReplay(TS)
    ha_state = ReplayState()
    refused = mn.next_identification(NOW + 30, low=0x123)
    r = check_request(ha_state, refused, TS, now_unix=NOW, tolerance=7)
    assert not r.accepted
    assert mn.on_reply(refused, r.reply_identification, 133, NOW + 30)
    nxt = mn.next_identification(NOW + 30.5, low=0x456)
    r2 = check_request(ha_state, nxt, TS, now_unix=NOW + 0.5, tolerance=7)
    assert r2.accepted, r2.reason
    assert mn.on_reply(nxt, r2.reply_identification, 0, NOW + 30.5)
    assert mn.last_accepted == nxt
    # and it keeps increasing from the accepted one after another 133
    mn.on_reply(nxt + 5, (ntp_seconds(NOW) << 32) | low_word(nxt + 5), 133, NOW + 30.6)
    assert mn.last_sent == nxt


# ------------------------------------------------------------------ home agent, nonces


def test_nonces_end_to_end() -> None:
    mn = MobileNodeReplay(NONCES)
    ha = ReplayState()
    # 1. the MN has no HA nonce yet: rejected, the 133 reply hands it one
    req1 = mn.next_identification(NOW, low=0x1111)
    assert high_word(req1) == 0
    r1 = check_request(ha, req1, NONCES, now_unix=NOW, new_nonce=0xCAFE0001)
    assert not r1.accepted and r1.code == 133 and "no nonce" in r1.reason
    assert r1.reply_identification == make_identification(0xCAFE0001, 0x1111)
    ha = r1.state
    assert ha.nonce == 0xCAFE0001
    assert resync_identification(
        NONCES, req1, r1.reply_identification, new_low=0x2222
    ) == make_identification(0xCAFE0001, 0x2222)
    assert mn.on_reply(req1, r1.reply_identification, 133, NOW)
    # 2. the MN echoes the nonce: accepted; the reply carries the next nonce
    req2 = mn.next_identification(NOW, low=0x2222)
    assert req2 == make_identification(0xCAFE0001, 0x2222)
    r2 = check_request(ha, req2, NONCES, now_unix=NOW, new_nonce=0xCAFE0002)
    assert r2.accepted and r2.reply_identification == make_identification(0xCAFE0002, 0x2222)
    assert r2.reply_identification == reply_identification(req2, NONCES, new_nonce=0xCAFE0002)
    ha = r2.state
    # 3. a replay of request 2 is rejected (its nonce was used up), with a fresh nonce
    r3 = check_request(ha, req2, NONCES, now_unix=NOW, new_nonce=0xCAFE0003)
    assert not r3.accepted and "not the nonce" in r3.reason
    assert r3.reply_identification == make_identification(0xCAFE0003, 0x2222)
    # 4. the MN learnt the nonce from reply 2 and uses it
    assert mn.on_reply(req2, r2.reply_identification, 0, NOW)
    req4 = mn.next_identification(NOW, low=0x4444)
    assert high_word(req4) == 0xCAFE0002
    # the HA has since issued 0xCAFE0003 (in reply 3): the MN's request is stale
    r4 = check_request(r3.state, req4, NONCES, now_unix=NOW, new_nonce=0xCAFE0004)
    assert not r4.accepted
    # and against the state before the replay it would have been accepted
    assert check_request(ha, req4, NONCES, now_unix=NOW, new_nonce=5).accepted


def test_nonce_arguments_checked() -> None:
    with pytest.raises(ValueError, match="new_nonce"):
        check_request(ReplayState(nonce=1), 1 << 32, NONCES, now_unix=NOW)
    with pytest.raises(ValueError, match="new_nonce"):
        reply_identification(1, NONCES)
    with pytest.raises(ValueError, match="random low word"):
        MobileNodeReplay(NONCES).next_identification(NOW)
    mn = MobileNodeReplay(NONCES)
    mn.next_identification(NOW, low=7)
    with pytest.raises(ValueError, match="repeats"):
        mn.next_identification(NOW, low=7)
    assert reply_identification(0x1234, TS) == 0x1234
    with pytest.raises(ValueError, match="64 bits"):
        check_request(ReplayState(), 2**64, TS, now_unix=NOW)
