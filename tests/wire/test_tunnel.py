"""Minimal forwarding header (RFC 2004 §3) and GRE header (RFC 2784, RFC 2890) codecs.

Hex written by hand from the RFC layouts. The first two checksums were summed by hand
(0600+0a01+0203 = 1204 -> edfb; 1180+c000+020a+c633+6407 = fdc5 -> 023a); all four were
checked with ``scapy.utils.checksum``.
"""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address as A

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mip4.wire.errors import DecodeError, EncodeError
from mip4.wire.tunnel import GREHeader, MinimalForwardingHeader


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


MINIMAL_CASES = [
    ("06 00 edfb 0a010203", MinimalForwardingHeader(6, A("10.1.2.3"))),
    (
        "11 80 023a c000020a c6336407",
        MinimalForwardingHeader(17, A("192.0.2.10"), A("198.51.100.7")),
    ),
]


@pytest.mark.parametrize(("hexs", "hdr"), MINIMAL_CASES)
def test_minimal_encode(hexs: str, hdr: MinimalForwardingHeader) -> None:
    assert hdr.encode() == h(hexs)
    assert hdr.header_len == len(h(hexs))


@pytest.mark.parametrize(("hexs", "hdr"), MINIMAL_CASES)
def test_minimal_decode(hexs: str, hdr: MinimalForwardingHeader) -> None:
    assert MinimalForwardingHeader.decode(h(hexs)) == hdr
    # at an offset, with payload following
    assert MinimalForwardingHeader.decode(b"\xaa" * 20 + h(hexs) + b"payload", 20) == hdr


def test_minimal_reserved_bits_ignored() -> None:
    # RFC 2004 §3: reserved bits sent as zero, ignored on receipt (checksum adjusted).
    raw = h("06 7f ed7c 0a010203")
    assert MinimalForwardingHeader.decode(raw) == MINIMAL_CASES[0][1]


def test_minimal_checksum_mismatch() -> None:
    with pytest.raises(DecodeError, match=r"expected 0xedfb, got 0xedfc") as ei:
        MinimalForwardingHeader.decode(h("06 00 edfc 0a010203"))
    assert ei.value.offset == 2
    # the checksum does not cover what follows the header (RFC 2004 §3)
    MinimalForwardingHeader.decode(h("06 00 edfb 0a010203 ffff"))


@pytest.mark.parametrize("n", range(12))
def test_minimal_truncated(n: int) -> None:
    raw = h(MINIMAL_CASES[1][0])
    with pytest.raises(DecodeError) as ei:
        MinimalForwardingHeader.decode(b"\0" * 3 + raw[:n], 3)
    assert ei.value.offset == 3


GRE_CASES: list[tuple[str, bytes, GREHeader]] = [
    ("0000 0800", b"", GREHeader()),
    ("2000 0800 00001234", b"", GREHeader(key=0x1234)),
    ("3000 0800 deadbeef 00000001", b"", GREHeader(key=0xDEADBEEF, sequence=1)),
    ("1000 86dd ffffffff", b"", GREHeader(protocol_type=0x86DD, sequence=0xFFFFFFFF)),
    ("8000 0800 73fd 0000", h("010203"), GREHeader(checksum_present=True)),
    (
        "b000 0800 9c25 0000 00000005 00000007",
        h("abcd"),
        GREHeader(checksum_present=True, key=5, sequence=7),
    ),
]


@pytest.mark.parametrize(("hexs", "payload", "hdr"), GRE_CASES)
def test_gre_encode(hexs: str, payload: bytes, hdr: GREHeader) -> None:
    assert hdr.encode(payload) == h(hexs)
    assert hdr.header_len == len(h(hexs))


@pytest.mark.parametrize(("hexs", "payload", "hdr"), GRE_CASES)
def test_gre_decode(hexs: str, payload: bytes, hdr: GREHeader) -> None:
    assert GREHeader.decode(h(hexs) + payload) == hdr
    framed = b"\x45" * 20 + h(hexs) + payload + b"trailer"
    assert GREHeader.decode(framed, 20, 20 + len(h(hexs)) + len(payload)) == hdr


def test_gre_checksum_mismatch() -> None:
    with pytest.raises(DecodeError, match=r"GRE checksum mismatch: expected 0x73fd, got 0x73fe"):
        GREHeader.decode(h("8000 0800 73fe 0000 010203"))
    # the checksum covers the payload (RFC 2784 §2.5)
    with pytest.raises(DecodeError, match="checksum"):
        GREHeader.decode(h("8000 0800 73fd 0000 010204"))
    assert GREHeader.decode(h("8000 0800 73fe 0000 010203"), verify=False).checksum_present


def test_gre_version_must_be_zero() -> None:
    # RFC 2784 §2.3.1 (version 1 is the PPTP enhanced GRE header).
    with pytest.raises(DecodeError, match="version 1"):
        GREHeader.decode(h("2001 880b 0000 0000"))


@pytest.mark.parametrize("bit", [0x4000, 0x0800, 0x0400])
def test_gre_bits_1_4_5_discard(bit: int) -> None:
    # RFC 2784 §2.3: a receiver MUST discard a packet where any of bits 1-5 are non-zero
    # (bits 2 and 3 are K and S since RFC 2890).
    raw = bit.to_bytes(2, "big") + h("0800") + bytes(8)
    with pytest.raises(DecodeError, match="MUST discard"):
        GREHeader.decode(raw)


def test_gre_bits_6_to_12_ignored() -> None:
    # RFC 2784 §2.3: bits 6-12 MUST be ignored on receipt.
    assert GREHeader.decode(h("03f8 0800")) == GREHeader()


@pytest.mark.parametrize(("hexs", "payload", "hdr"), GRE_CASES)
def test_gre_truncated(hexs: str, payload: bytes, hdr: GREHeader) -> None:
    raw = h(hexs)
    for n in range(len(raw)):
        with pytest.raises(DecodeError):
            GREHeader.decode(raw[:n])


def test_encode_errors() -> None:
    with pytest.raises(EncodeError):
        GREHeader(key=2**32).encode()
    with pytest.raises(EncodeError):
        GREHeader(protocol_type=0x10000).encode()
    with pytest.raises(EncodeError):
        MinimalForwardingHeader(256, A("1.2.3.4")).encode()


# -- properties ---------------------------------------------------------------------------

addrs = st.integers(0, 2**32 - 1).map(A)
u32 = st.integers(0, 2**32 - 1)
minimal_headers = st.builds(
    MinimalForwardingHeader, st.integers(0, 255), addrs, st.one_of(st.none(), addrs)
)
gre_headers = st.builds(
    GREHeader,
    st.integers(0, 0xFFFF),
    st.booleans(),
    st.one_of(st.none(), u32),
    st.one_of(st.none(), u32),
)


@given(minimal_headers)
def test_minimal_roundtrip(hdr: MinimalForwardingHeader) -> None:
    assert MinimalForwardingHeader.decode(hdr.encode()) == hdr


@given(gre_headers, st.binary(max_size=40))
def test_gre_roundtrip(hdr: GREHeader, payload: bytes) -> None:
    raw = hdr.encode(payload) + payload
    assert GREHeader.decode(raw) == hdr


@given(st.binary(max_size=24))
def test_random_bytes(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        MinimalForwardingHeader.decode(data)
    with contextlib.suppress(DecodeError):
        GREHeader.decode(data)


@given(minimal_headers, st.data())
def test_minimal_mutation_caught(hdr: MinimalForwardingHeader, data: st.DataObject) -> None:
    raw = bytearray(hdr.encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    if i == 1:
        return  # the S bit changes the length; reserved bits are ignored
    raw[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DecodeError, match="checksum"):
        MinimalForwardingHeader.decode(bytes(raw))
