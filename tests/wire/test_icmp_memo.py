"""The memo of decoded agent advertisements (``mip4.wire.icmp.AdvertisementMemo``): the
same bytes are decoded once and shared; the same advertisement with another sequence
number only has its checksum verified and its sequence number read; the result is always
what a full decode gives."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mip4.wire.errors import DecodeError
from mip4.wire.icmp import (
    ADVERTISEMENTS,
    AdvertisementMemo,
    AgentAdvertisement,
    AgentFlags,
    ChallengeExtension,
    MobilityAgentAdvertisementExtension,
    PrefixLengthsExtension,
    RouterAddress,
    decode_icmp,
    same_but_sequence,
    sequence_offset,
)
from mip4.wire.ip import internet_checksum

FA = IPv4Address("100.64.3.1")


def adv_bytes(
    sequence: int = 7,
    *,
    flags: AgentFlags = AgentFlags.F,
    lifetime: int = 180,
    pad_first: bool = False,
    challenge: bytes | None = None,
) -> bytes:
    exts: list[object] = []
    if pad_first:
        exts.append(ChallengeExtension(b"\x01\x02\x03\x04"))
    exts.append(MobilityAgentAdvertisementExtension(sequence, 600, flags, (FA,)))
    exts.append(PrefixLengthsExtension((24,)))
    if challenge is not None:
        exts.append(ChallengeExtension(challenge))
    return AgentAdvertisement(
        lifetime=lifetime,
        router_addresses=(RouterAddress(FA, 0),),
        extensions=tuple(exts),  # type: ignore[arg-type]
    ).encode()


def test_same_bytes_decoded_once_and_shared() -> None:
    memo = AdvertisementMemo()
    data = adv_bytes()
    a = memo.decode(data)
    b = memo.decode(bytes(bytearray(data)))  # an equal copy, another object
    assert a is b
    assert a == AgentAdvertisement.decode(data)
    assert (memo.misses, memo.partial, memo.hits) == (1, 0, 1)


def test_new_sequence_number_parses_only_what_changes() -> None:
    memo = AdvertisementMemo()
    first = memo.decode(adv_bytes(7))
    data = adv_bytes(8)
    second = memo.decode(data)
    assert (memo.misses, memo.partial) == (1, 1)
    assert second == AgentAdvertisement.decode(data)
    assert second.raw == data
    assert second.mobility is not None and second.mobility.sequence == 8
    assert first.mobility is not None and first.mobility.sequence == 7
    # everything but the sequence number is shared with the first decode
    assert second.router_addresses is first.router_addresses
    assert second.extensions[1] is first.extensions[1]
    assert second.mobility.care_of_addresses is first.mobility.care_of_addresses
    assert memo.shared(second) is first


@pytest.mark.parametrize("sequence", [0, 255, 256, 0xFFFF])
def test_sequence_wrap_values(sequence: int) -> None:
    memo = AdvertisementMemo()
    memo.decode(adv_bytes(300))
    got = memo.decode(adv_bytes(sequence))
    assert memo.partial == 1
    assert got.mobility is not None and got.mobility.sequence == sequence


def test_bad_checksum_refused_on_the_short_path() -> None:
    memo = AdvertisementMemo()
    memo.decode(adv_bytes(7))
    bad = bytearray(adv_bytes(8))
    bad[2] ^= 0x01  # RFC 1256 §5.2: a wrong checksum is discarded
    with pytest.raises(DecodeError, match="checksum"):
        memo.decode(bytes(bad))
    bad_seq = bytearray(adv_bytes(8))
    off = sequence_offset(bytes(bad_seq))
    assert off is not None
    bad_seq[off + 1] ^= 0x01  # sequence number changed, checksum not
    with pytest.raises(DecodeError, match="checksum"):
        memo.decode(bytes(bad_seq))
    assert memo.partial == 0


def test_other_content_is_decoded_in_full() -> None:
    memo = AdvertisementMemo()
    memo.decode(adv_bytes(7))
    busy = memo.decode(adv_bytes(8, flags=AgentFlags.F | AgentFlags.B))
    assert busy.mobility is not None and busy.mobility.flags & AgentFlags.B
    memo.decode(adv_bytes(9, lifetime=60))
    memo.decode(adv_bytes(10, challenge=b"abcd"))
    assert (memo.misses, memo.partial) == (4, 0)
    # not the first extension: always the full decode
    other = memo.decode(adv_bytes(7, pad_first=True))
    assert other == AgentAdvertisement.decode(adv_bytes(7, pad_first=True))
    assert memo.shared(other) is other
    assert memo.misses == 5


def test_same_but_sequence() -> None:
    assert same_but_sequence(adv_bytes(1), adv_bytes(2))
    assert same_but_sequence(adv_bytes(1), adv_bytes(1))
    assert not same_but_sequence(adv_bytes(1), adv_bytes(2, lifetime=60))
    assert not same_but_sequence(adv_bytes(1), adv_bytes(2, flags=AgentFlags.F | AgentFlags.B))
    assert not same_but_sequence(adv_bytes(1), adv_bytes(2, challenge=b"abcd"))
    assert not same_but_sequence(b"", b"")


def test_tables_are_bounded() -> None:
    memo = AdvertisementMemo(exact=4, shapes=3)
    for lifetime in range(10, 30):
        for seq in range(3):
            memo.decode(adv_bytes(seq, lifetime=lifetime))
    assert len(memo._exact) <= 4 and len(memo._shape) <= 3 and len(memo._base) <= 4
    memo.clear()
    assert not memo._exact and not memo._shape and not memo._base


def test_decode_icmp_uses_the_process_memo() -> None:
    data = adv_bytes(4321, lifetime=77)
    assert decode_icmp(data) is decode_icmp(data)
    assert decode_icmp(data) is ADVERTISEMENTS.decode(data)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(1, 0xFFFF))
def test_memo_agrees_with_full_decode(a: int, b: int, lifetime: int) -> None:
    memo = AdvertisementMemo()
    for seq in (a, b, a):
        data = adv_bytes(seq, lifetime=lifetime)
        assert memo.decode(data) == AgentAdvertisement.decode(data)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.data())
def test_memo_any_changed_byte_decodes_or_raises_as_in_full(
    seq: int, other: int, data: st.DataObject
) -> None:
    """A memo primed with one advertisement, given another with one byte changed (and its
    sequence number): whatever a full decode does, the memo does."""
    memo = AdvertisementMemo()
    memo.decode(adv_bytes(seq))
    changed = bytearray(adv_bytes(other))
    pos = data.draw(st.integers(0, len(changed) - 1))
    changed[pos] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):  # a valid checksum over the changed bytes
        changed[2:4] = b"\0\0"
        changed[2:4] = internet_checksum(changed).to_bytes(2, "big")
    try:
        want = AgentAdvertisement.decode(bytes(changed))
    except DecodeError:
        with pytest.raises(DecodeError):
            memo.decode(bytes(changed))
    else:
        assert memo.decode(bytes(changed)) == want
