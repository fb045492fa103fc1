"""IPv4 header codec and the Internet checksum (RFC 791 §3.1, RFC 1071, RFC 1624).

The hex below is written by hand from the RFC 791 layout; the checksums come from outside
this code base (the RFC 1071 worked example, a widely published real header, scapy).
"""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address as A

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mip4.wire.errors import DecodeError, EncodeError
from mip4.wire.ip import (
    IPFlags,
    IPv4Header,
    IPv4Packet,
    checksum_adjust,
    internet_checksum,
    peek,
)


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


# -- checksum vectors ---------------------------------------------------------------------


def test_rfc1071_worked_example() -> None:
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is its complement.
    assert internet_checksum(h("0001 f203 f4f5 f6f7")) == 0x220D


def test_real_udp_packet_header_checksum() -> None:
    # A real IPv4/UDP header (192.168.0.1 -> 192.168.0.199, DF, TTL 64), checksum b861.
    hdr = h("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7")
    assert internet_checksum(hdr) == 0xB861
    assert internet_checksum(hdr[:10] + b"\xb8\x61" + hdr[12:]) == 0


def test_checksum_odd_length_pads_with_zero() -> None:
    # RFC 1071 §4.1: an odd byte is added as the high byte of a final word.
    assert internet_checksum(b"\x01") == internet_checksum(b"\x01\x00") == 0xFEFF


def test_checksum_edge_values() -> None:
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(b"\0\0\0\0") == 0xFFFF
    # A sum of 0xFFFF (one's complement -0) gives checksum 0.
    assert internet_checksum(b"\xff\xff") == 0
    assert internet_checksum(b"\xff\xfe\x00\x01") == 0


def _reference_checksum(data: bytes) -> int:
    """The RFC 1071 §4.1 loop, word by word with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@given(st.binary(max_size=300))
def test_checksum_matches_word_loop(data: bytes) -> None:
    assert internet_checksum(data) == _reference_checksum(data)


@given(
    st.binary(min_size=20, max_size=20).map(bytearray),
    st.sampled_from([1, 2, 3, 4, 6, 7, 8, 9]),  # every word but version/IHL and the checksum
    st.integers(0, 0xFFFF),
)
def test_checksum_adjust_rfc1624(data: bytearray, word: int, new: int) -> None:
    data[0] = 0x45  # a real header is never all zero (RFC 1624 §3's -0/+0 corner)
    data[10:12] = b"\0\0"
    c = internet_checksum(data)
    data[10:12] = c.to_bytes(2, "big")
    old = int.from_bytes(data[2 * word : 2 * word + 2], "big")
    data[2 * word : 2 * word + 2] = new.to_bytes(2, "big")
    adjusted = checksum_adjust(c, old, new)
    data[10:12] = adjusted.to_bytes(2, "big")
    assert internet_checksum(data) == 0


# -- byte-exact table ---------------------------------------------------------------------

CASES: list[tuple[str, IPv4Header]] = [
    (
        "4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7",
        IPv4Header(
            A("192.168.0.1"), A("192.168.0.199"), 17, total_length=115, ttl=64, flags=IPFlags.DF
        ),
    ),
    (
        # IHL 6 with a Router Alert option (RFC 2113), TTL 1, IGMP-like protocol 2, MF set,
        # fragment offset 0.
        "4600 0020 1234 2000 0102 088d 0a00 0001 e000 0016 9404 0000",
        IPv4Header(
            A("10.0.0.1"),
            A("224.0.0.22"),
            2,
            total_length=32,
            ttl=1,
            identification=0x1234,
            flags=IPFlags.MF,
            options=h("94040000"),
        ),
    ),
    (
        # TOS 0xb8, fragment offset 0x1fff (maximum), protocol 4 (IP in IP).
        "45b8 0014 ffff 1fff ff04 9b2f 0000 0000 ffff ffff",
        IPv4Header(
            A("0.0.0.0"),
            A("255.255.255.255"),
            4,
            total_length=20,
            ttl=255,
            tos=0xB8,
            identification=0xFFFF,
            fragment_offset=0x1FFF,
        ),
    ),
]


@pytest.mark.parametrize(("hexs", "hdr"), CASES)
def test_encode_table(hexs: str, hdr: IPv4Header) -> None:
    assert hdr.encode() == h(hexs)


@pytest.mark.parametrize(("hexs", "hdr"), CASES)
def test_decode_table(hexs: str, hdr: IPv4Header) -> None:
    raw = h(hexs)
    assert IPv4Header.decode(raw, complete=False) == hdr
    whole = raw + bytes(hdr.total_length - len(raw))
    assert IPv4Header.decode(whole) == hdr


def test_option_header_checksum_matches_scapy_value() -> None:
    # 0x088d and 0x9b2f were computed by scapy.utils.checksum over the same header bytes.
    assert CASES[1][1].encode()[10:12] == b"\x08\x8d"
    assert CASES[2][1].encode()[10:12] == b"\x9b\x2f"


def test_properties() -> None:
    hdr = CASES[1][1]
    assert hdr.header_len == 24
    assert hdr.is_fragment and not hdr.dont_fragment
    assert CASES[0][1].dont_fragment and not CASES[0][1].is_fragment
    assert CASES[2][1].is_fragment  # offset != 0


# -- decode errors ------------------------------------------------------------------------

GOOD = h("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7") + bytes(95)


def test_checksum_mismatch_names_both_values() -> None:
    bad = bytearray(GOOD)
    bad[10:12] = b"\xb8\x62"
    with pytest.raises(DecodeError, match=r"expected 0xb861, got 0xb862") as ei:
        IPv4Header.decode(bytes(bad))
    assert ei.value.offset == 10
    # verification can be turned off (e.g. for a quoted header in an ICMP error)
    assert IPv4Header.decode(bytes(bad), verify=False).protocol == 17


@pytest.mark.parametrize("n", range(20))
def test_truncated_header(n: int) -> None:
    with pytest.raises(DecodeError) as ei:
        IPv4Header.decode(GOOD[:n])
    assert ei.value.offset == 0


def test_truncated_packet() -> None:
    with pytest.raises(DecodeError, match="truncated") as ei:
        IPv4Packet.decode(GOOD[:114])
    assert ei.value.offset == 2


def test_bad_version_and_ihl() -> None:
    with pytest.raises(DecodeError, match="version 6"):
        peek(b"\x65" + GOOD[1:])
    with pytest.raises(DecodeError, match="IHL 4"):
        peek(b"\x44" + GOOD[1:])
    with pytest.raises(DecodeError, match="IHL says 60"):
        peek(b"\x4f" + GOOD[1:40], complete=False)


def test_total_length_below_header() -> None:
    raw = h("4500 0010 0000 0000 4011 66db 0a00 0001 0a00 0002")
    with pytest.raises(DecodeError, match="total length 16") as ei:
        IPv4Header.decode(raw)
    assert ei.value.offset == 2


def test_encode_errors() -> None:
    with pytest.raises(EncodeError, match="options"):
        IPv4Header(A("1.2.3.4"), A("1.2.3.5"), 1, options=b"\x01").encode()
    with pytest.raises(EncodeError, match="options"):
        IPv4Header(A("1.2.3.4"), A("1.2.3.5"), 1, options=bytes(44)).encode()
    with pytest.raises(EncodeError):
        IPv4Header(A("1.2.3.4"), A("1.2.3.5"), 1, ttl=256).encode()
    with pytest.raises(EncodeError):
        IPv4Header(A("1.2.3.4"), A("1.2.3.5"), 1, fragment_offset=0x2000).encode()


# -- packets ------------------------------------------------------------------------------


def test_packet_build_and_decode() -> None:
    p = IPv4Packet.build(A("10.0.0.1"), A("10.0.0.2"), 17, b"hello", ttl=3, flags=IPFlags.DF)
    assert p.header.total_length == 25
    raw = p.encode()
    assert len(raw) == 25 and raw[20:] == b"hello"
    assert IPv4Packet.decode(raw) == p
    # link-layer padding after Total Length is ignored
    assert IPv4Packet.decode(raw + b"\0\0\0") == p


def test_packet_inconsistent_length() -> None:
    hdr = IPv4Header(A("10.0.0.1"), A("10.0.0.2"), 17, total_length=30)
    with pytest.raises(EncodeError, match="total length"):
        IPv4Packet(hdr, b"abc").encode()


# -- properties ---------------------------------------------------------------------------

addrs = st.integers(0, 2**32 - 1).map(A)
headers = st.builds(
    IPv4Header,
    src=addrs,
    dst=addrs,
    protocol=st.integers(0, 255),
    ttl=st.integers(0, 255),
    tos=st.integers(0, 255),
    identification=st.integers(0, 0xFFFF),
    flags=st.integers(0, 7).map(IPFlags),
    fragment_offset=st.integers(0, 0x1FFF),
    options=st.integers(0, 10).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
)


@given(headers, st.binary(max_size=64))
def test_packet_roundtrip(hdr: IPv4Header, payload: bytes) -> None:
    p = IPv4Packet.build(
        hdr.src,
        hdr.dst,
        hdr.protocol,
        payload,
        ttl=hdr.ttl,
        tos=hdr.tos,
        identification=hdr.identification,
        flags=hdr.flags,
        fragment_offset=hdr.fragment_offset,
        options=hdr.options,
    )
    raw = p.encode()
    assert internet_checksum(raw[: p.header.header_len]) == 0
    assert IPv4Packet.decode(raw) == p


@given(st.binary(max_size=80))
def test_random_bytes_decode_or_decodeerror(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        IPv4Packet.decode(data)


@given(headers, st.binary(min_size=1, max_size=16), st.data())
def test_mutated_and_truncated(hdr: IPv4Header, payload: bytes, data: st.DataObject) -> None:
    p = IPv4Packet.build(hdr.src, hdr.dst, hdr.protocol, payload, options=hdr.options)
    raw = bytearray(p.encode())
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        IPv4Packet.decode(bytes(raw[:cut]))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    if i < p.header.header_len:
        # Any single-byte change in the header is caught (by the checksum, if nothing else).
        with pytest.raises(DecodeError):
            IPv4Packet.decode(bytes(raw))
    else:
        got = IPv4Packet.decode(bytes(raw))
        assert got.header == p.header and got.payload != p.payload
