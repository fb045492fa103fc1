"""Agent Advertisement / Agent Solicitation codec (RFC 1256, RFC 5944 §2.1--§2.2, RFC 4721).

The hex tables are written by hand from the RFC layouts; their checksums were computed with
``scapy.utils.checksum`` (an independent implementation), never by this code base.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from ipaddress import IPv4Address as A
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mip4.wire.errors import DecodeError, EncodeError, UnknownExtensionError
from mip4.wire.extensions import Extension, RawExtension
from mip4.wire.icmp import (
    PAD,
    AgentAdvertisement,
    AgentFlags,
    AgentSolicitation,
    ChallengeExtension,
    MobilityAgentAdvertisementExtension,
    PaddingExtension,
    PrefixLengthsExtension,
    RouterAddress,
    decode_icmp,
)


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


F = AgentFlags

CASES: list[tuple[str, str, AgentAdvertisement | AgentSolicitation]] = [
    (
        "foreign agent, code 16, CoA, prefix lengths, pad",
        # type 9 code 16 | csum | 1 addr, size 2 | lifetime 1800
        # 10.0.0.1 pref 0 | ext 16 len 10 seq 1 reglife 300 flags R|F CoA 10.0.0.1
        # ext 19 len 1 /24 | pad
        "09 10 0eab 01 02 0708  0a000001 00000000  10 0a 0001 012c 9000 0a000001  13 01 18  00",
        AgentAdvertisement(
            code=16,
            lifetime=1800,
            router_addresses=(RouterAddress(A("10.0.0.1"), 0),),
            extensions=(
                MobilityAgentAdvertisementExtension(1, 300, F.R | F.F, (A("10.0.0.1"),)),
                PrefixLengthsExtension((24,)),
                PaddingExtension(),
            ),
        ),
    ),
    (
        "plain RFC 1256 router advertisement, negative preferences",
        "09 00 e2e8 02 02 0e10  c0000201 ffffffff  c0000202 80000000",
        AgentAdvertisement(
            code=0,
            lifetime=3600,
            router_addresses=(
                RouterAddress(A("192.0.2.1"), -1),
                RouterAddress(A("192.0.2.2"), -0x80000000),
            ),
        ),
    ),
    (
        "home agent, no router addresses, every flag and a reserved bit, challenge, "
        "unknown skippable extension",
        "09 10 7b5c 00 02 0258  10 06 ffff ffff 3fc1  18 04 deadbeef  c8 02 abcd",
        AgentAdvertisement(
            code=16,
            lifetime=600,
            extensions=(
                MobilityAgentAdvertisementExtension(
                    0xFFFF,
                    0xFFFF,
                    F.H | F.F | F.M | F.G | F.r | F.T | F.U | F.X | F(0x0001),
                ),
                ChallengeExtension(h("deadbeef")),
                RawExtension(200, h("abcd")),
            ),
        ),
    ),
    # A Router Solicitation from any host: 0a 00 f5ff 00000000.
    ("solicitation", "0a 00 f5ff 00000000", AgentSolicitation()),
]


@pytest.mark.parametrize(("name", "hexs", "msg"), CASES, ids=[c[0] for c in CASES])
def test_encode_table(name: str, hexs: str, msg: AgentAdvertisement | AgentSolicitation) -> None:
    assert msg.encode() == h(hexs)


@pytest.mark.parametrize(("name", "hexs", "msg"), CASES, ids=[c[0] for c in CASES])
def test_decode_table(name: str, hexs: str, msg: AgentAdvertisement | AgentSolicitation) -> None:
    got = decode_icmp(h(hexs))
    assert got == msg
    if isinstance(got, AgentAdvertisement):
        assert got.raw == h(hexs)


def test_flag_values_match_numbers_reference() -> None:
    # numbers.md §2 (Wireshark packet-icmp.c, tshark): the 16-bit flags word of ext 16.
    expected = {
        "R": 0x8000,
        "B": 0x4000,
        "H": 0x2000,
        "F": 0x1000,
        "M": 0x0800,
        "G": 0x0400,
        "r": 0x0200,
        "T": 0x0100,
        "U": 0x0080,
        "X": 0x0040,
    }
    assert {f.name: f.value for f in AgentFlags} == expected


def test_helper_properties() -> None:
    fa = decode_icmp(h(CASES[0][1]))
    assert isinstance(fa, AgentAdvertisement)
    assert fa.mobility is not None
    assert fa.mobility.care_of_addresses == (A("10.0.0.1"),)
    assert fa.mobility.flags & F.F and not fa.mobility.flags & F.H
    assert fa.prefix_lengths == (24,)
    assert fa.challenge is None
    plain = decode_icmp(h(CASES[1][1]))
    assert isinstance(plain, AgentAdvertisement)
    assert plain.mobility is None and plain.prefix_lengths is None
    ha = decode_icmp(h(CASES[2][1]))
    assert isinstance(ha, AgentAdvertisement)
    assert ha.challenge == h("deadbeef")
    assert ha.mobility is not None and ha.mobility.registration_lifetime == 0xFFFF


# -- decode errors ------------------------------------------------------------------------


def _with_checksum(hexs: str) -> bytes:
    """Fill in the ICMP checksum of a hand-written message (RFC 1071 word loop)."""
    b = bytearray(h(hexs))
    b[2:4] = b"\0\0"
    if len(b) % 2:
        b.append(0)
        odd = True
    else:
        odd = False
    s = 0
    for i in range(0, len(b), 2):
        s += (b[i] << 8) | b[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    if odd:
        b.pop()
    b[2:4] = (~s & 0xFFFF).to_bytes(2, "big")
    return bytes(b)


def test_checksum_mismatch() -> None:
    bad = bytearray(h(CASES[0][1]))
    bad[2:4] = b"\x0e\xac"
    with pytest.raises(DecodeError, match=r"expected 0x0eab, got 0x0eac") as ei:
        decode_icmp(bytes(bad))
    assert ei.value.offset == 2
    with pytest.raises(DecodeError, match="checksum"):
        decode_icmp(h("0a 00 f5fe 00000000"))


def test_other_icmp_type_is_named() -> None:
    echo = _with_checksum("08 00 0000 1234 0001")
    with pytest.raises(DecodeError, match="ICMP type 8") as ei:
        decode_icmp(echo)
    assert ei.value.offset == 0
    with pytest.raises(DecodeError, match="empty"):
        decode_icmp(b"")


def test_bad_codes() -> None:
    with pytest.raises(DecodeError, match="code 1") as ei:
        decode_icmp(_with_checksum("09 01 0000 00 02 0258"))
    assert ei.value.offset == 1
    with pytest.raises(DecodeError, match="code 3"):
        decode_icmp(_with_checksum("0a 03 0000 00000000"))


def test_address_entry_size_must_be_2() -> None:
    with pytest.raises(DecodeError, match="entry size 3") as ei:
        decode_icmp(_with_checksum("09 00 0000 01 03 0258 0a000001 00000000 00000000"))
    assert ei.value.offset == 5


def test_router_addresses_overrun() -> None:
    with pytest.raises(DecodeError, match="2 router address") as ei:
        decode_icmp(_with_checksum("09 00 0000 02 02 0258 0a000001 00000000"))
    assert ei.value.offset == 16


@pytest.mark.parametrize("n", range(1, 8))
def test_truncated_fixed_part(n: int) -> None:
    for raw in (h(CASES[0][1]), h(CASES[3][1])):
        with pytest.raises(DecodeError, match="need 8") as ei:
            decode_icmp(raw[:n])
        assert ei.value.offset == n


def test_mobility_extension_bad_length() -> None:
    # Length 7 is not 6 + 4N (RFC 5944 §2.1.1).
    raw = _with_checksum("09 10 0000 00 02 0258  10 07 0001 012c 9000 0a000001")
    with pytest.raises(DecodeError, match="6 \\+ 4N") as ei:
        decode_icmp(raw)
    assert ei.value.offset == 8


def test_extension_overruns_message() -> None:
    raw = _with_checksum("09 10 0000 00 02 0258  10 0a 0001 012c 9000 0a00")
    with pytest.raises(DecodeError, match="overruns") as ei:
        decode_icmp(raw)
    assert ei.value.offset == 8


def test_truncated_extension_header() -> None:
    raw = _with_checksum("09 10 0000 00 02 0258  00 10")
    with pytest.raises(DecodeError, match="truncated header") as ei:
        decode_icmp(raw)
    assert ei.value.offset == 9


def test_unknown_non_skippable_extension_discards_advertisement() -> None:
    # RFC 5944 §1.9 in the router discovery number space: type 50 is unknown, < 128.
    raw = _with_checksum("09 10 0000 00 02 0258  10 06 0001 012c 9000  32 02 0000")
    with pytest.raises(UnknownExtensionError) as ei:
        decode_icmp(raw)
    assert ei.value.ext_type == 50
    assert ei.value.offset == 16
    assert "agent advertisement" in str(ei.value)


def test_registration_extension_numbers_do_not_apply() -> None:
    # 32 is MN-HA authentication in the registration space but unknown here: discard.
    raw = _with_checksum("09 10 0000 00 02 0258  20 02 0000")
    with pytest.raises(UnknownExtensionError):
        decode_icmp(raw)


def test_prefix_lengths_must_match_num_addrs() -> None:
    raw = _with_checksum("09 10 0000 01 02 0258 0a000001 00000000  13 02 18 18")
    with pytest.raises(DecodeError, match="Num Addrs is 1") as ei:
        decode_icmp(raw)
    assert ei.value.offset == 16


def test_prefix_length_over_32() -> None:
    raw = _with_checksum("09 10 0000 01 02 0258 0a000001 00000000  13 01 21")
    with pytest.raises(DecodeError, match="prefix length 33") as ei:
        decode_icmp(raw)
    assert ei.value.offset == 18


def test_solicitation_ignores_reserved_and_trailing_bytes() -> None:
    assert decode_icmp(_with_checksum("0a 00 0000 ffffffff 0102")) == AgentSolicitation()


def test_encode_errors() -> None:
    with pytest.raises(EncodeError):
        AgentAdvertisement(code=1).encode()
    with pytest.raises(EncodeError):
        AgentAdvertisement(lifetime=70000).encode()
    with pytest.raises(EncodeError):
        AgentAdvertisement(router_addresses=(RouterAddress(A("1.2.3.4"), 2**31),)).encode()
    with pytest.raises(EncodeError):
        PrefixLengthsExtension((33,)).encode()
    with pytest.raises(EncodeError):
        MobilityAgentAdvertisementExtension(0x10000, 0, F(0)).encode()


# -- properties ---------------------------------------------------------------------------

addrs = st.integers(0, 2**32 - 1).map(A)


@st.composite
def advertisements(draw: st.DrawFn) -> AgentAdvertisement:
    routers = tuple(
        RouterAddress(draw(addrs), draw(st.integers(-(2**31), 2**31 - 1)))
        for _ in range(draw(st.integers(0, 4)))
    )
    candidates: list[st.SearchStrategy[Extension]] = [
        st.builds(
            MobilityAgentAdvertisementExtension,
            st.integers(0, 0xFFFF),
            st.integers(0, 0xFFFF),
            st.integers(0, 0xFFFF).map(AgentFlags),
            st.lists(addrs, max_size=5).map(tuple),
        ),
        st.just(PrefixLengthsExtension(tuple(draw(st.integers(0, 32)) for _ in routers))),
        st.binary(max_size=20).map(ChallengeExtension),
        st.just(PAD),
        st.builds(RawExtension, st.integers(128, 255), st.binary(max_size=20)),
    ]
    exts = tuple(draw(st.lists(st.one_of(candidates), max_size=5)))
    return AgentAdvertisement(
        code=draw(st.sampled_from([0, 16])),
        lifetime=draw(st.integers(0, 0xFFFF)),
        router_addresses=routers,
        extensions=exts,
    )


@given(advertisements())
def test_roundtrip(adv: AgentAdvertisement) -> None:
    raw = adv.encode()
    got = decode_icmp(raw)
    assert got == adv
    assert isinstance(got, AgentAdvertisement) and got.encode() == raw


@given(st.binary(max_size=64))
def test_random_bytes(data: bytes) -> None:
    for prefix in (b"", b"\x09\x00", b"\x09\x10", b"\x0a\x00"):
        raw = _with_checksum((prefix + data)[:2].hex() + "0000" + (prefix + data)[4:].hex())
        with contextlib.suppress(DecodeError):
            got = decode_icmp(raw)
            if isinstance(got, AgentAdvertisement):
                assert got.encode() == raw  # whatever decodes re-encodes byte for byte


@given(advertisements(), st.data())
def test_truncated_and_mutated(adv: AgentAdvertisement, data: st.DataObject) -> None:
    raw = adv.encode()
    cut = data.draw(st.integers(0, len(raw) - 1))
    with contextlib.suppress(DecodeError):
        decode_icmp(raw[:cut])
    b = bytearray(raw)
    i = data.draw(st.integers(0, len(b) - 1))
    b[i] ^= data.draw(st.integers(1, 255))
    # A single-byte change is caught by the checksum.
    with pytest.raises(DecodeError):
        decode_icmp(bytes(b))
    # With the checksum fixed up, the result is a message or a DecodeError, nothing else.
    fixed = _with_checksum(b.hex())
    with contextlib.suppress(DecodeError):
        got = decode_icmp(fixed)
        assert isinstance(got, AgentSolicitation) or got.encode() == fixed


# -- oracles ------------------------------------------------------------------------------


@pytest.mark.oracle
def test_scapy_reads_our_advertisement() -> None:
    scapy_inet = pytest.importorskip("scapy.layers.inet")
    raw = CASES[0][2].encode()
    pkt = scapy_inet.ICMP(raw)
    assert pkt.type == 9 and pkt.code == 16
    # scapy recomputes the checksum over the same bytes when asked to rebuild
    del pkt.chksum
    assert bytes(pkt)[2:4] == raw[2:4]


@pytest.mark.oracle
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_our_advertisement(tmp_path: Path) -> None:
    scapy_all = pytest.importorskip("scapy.all")
    adv = CASES[2][2]
    assert isinstance(adv, AgentAdvertisement)
    ip = scapy_all.IP(src="192.0.2.1", dst="224.0.0.1", ttl=1, proto=1) / scapy_all.Raw(
        adv.encode()
    )
    pcap = tmp_path / "adv.pcap"
    scapy_all.wrpcap(str(pcap), [scapy_all.Ether() / ip])
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-V"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "Type: 9 (Mobile IP Advertisement)" in out
    assert "Checksum Status: Good" in out
    assert "Registration Lifetime: 65535" in out
    assert "Challenge: deadbeef" in out
    for flag in ("Home Agent: True", "Reverse tunneling: True", "Revocation support: True"):
        assert flag in out
    assert "Registration Required: False" in out
