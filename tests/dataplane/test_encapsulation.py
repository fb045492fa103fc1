"""Encapsulation and decapsulation, byte for byte (RFC 2003, RFC 2004, RFC 2784/2890,
RFC 3519), and the RFC 2003 rules: TTL, TOS, DF, loop avoidance, tunnel MTU."""

from __future__ import annotations

import struct
from collections.abc import Callable
from ipaddress import IPv4Address as A
from typing import Any

import pytest

from mip4.dataplane import (
    DropReason,
    PacketTooBig,
    Tunnel,
    TunnelError,
    decapsulate_gre,
    decapsulate_ipip,
    decapsulate_minimal,
    decapsulate_udp,
    encapsulate_gre,
    encapsulate_ipip,
    encapsulate_minimal,
    encapsulate_udp,
)
from mip4.dataplane.common import complete_transport_checksum
from mip4.wire.errors import DecodeError
from mip4.wire.ip import internet_checksum

from .vectors import (
    CN,
    COA,
    GRE,
    GRE_TUNNEL,
    HA,
    HOME,
    INNER,
    INNER_FORWARDED,
    IPIP,
    MINIMAL,
    MINIMAL_NO_S,
    TUNNEL,
    TUNNEL_FROM_CN,
    UDP_TUNNEL,
    h,
    make_inner,
    rfc1071,
)

Encap = Callable[..., Any]

# -- byte-exact, both directions ----------------------------------------------------------


def test_ipip_encapsulate_exact() -> None:
    assert encapsulate_ipip(INNER, TUNNEL) == IPIP


def test_ipip_decapsulate_exact() -> None:
    d = decapsulate_ipip(IPIP)
    assert bytes(d.inner) == INNER_FORWARDED
    assert (d.outer_src, d.outer_dst) == (HA, COA)
    assert d.key is None and d.sequence is None


def test_ipip_not_forwarding_keeps_inner_ttl() -> None:
    # RFC 2003 §3.1: the inner TTL is decremented only when tunnelling as part of forwarding.
    out = encapsulate_ipip(INNER, TUNNEL, forwarding=False)
    assert out[20:] == INNER
    assert out[:20] == IPIP[:20]


def test_minimal_encapsulate_exact() -> None:
    assert encapsulate_minimal(INNER, TUNNEL) == MINIMAL


def test_minimal_decapsulate_exact() -> None:
    d = decapsulate_minimal(MINIMAL)
    assert bytes(d.inner) == INNER_FORWARDED
    assert (d.outer_src, d.outer_dst) == (HA, COA)


def test_minimal_without_source_exact() -> None:
    # RFC 2004 §3: the encapsulator is the original source -> S clear, 8-byte header.
    assert encapsulate_minimal(INNER, TUNNEL_FROM_CN, forwarding=False) == MINIMAL_NO_S
    d = decapsulate_minimal(MINIMAL_NO_S)
    assert bytes(d.inner) == INNER  # source restored from the (unchanged) IP header


def test_gre_encapsulate_exact() -> None:
    assert encapsulate_gre(INNER, GRE_TUNNEL, sequence=1) == GRE


def test_gre_decapsulate_exact() -> None:
    d = decapsulate_gre(GRE)
    assert bytes(d.inner) == INNER_FORWARDED
    assert (d.key, d.sequence) == (0xABCD, 1)


def test_udp_encapsulate_exact() -> None:
    assert encapsulate_udp(INNER, TUNNEL) == UDP_TUNNEL


def test_udp_decapsulate_exact() -> None:
    d = decapsulate_udp(UDP_TUNNEL, COA, HA)
    assert bytes(d.inner) == INNER_FORWARDED and (d.outer_src, d.outer_dst) == (COA, HA)


def test_udp_gre() -> None:
    out = encapsulate_udp(INNER, GRE_TUNNEL, next_header=47, sequence=9)
    assert out[:4] == h("04 2f 0000")
    assert out[4:16] == h("3000 0800 0000abcd 00000009")
    assert out[16:] == INNER_FORWARDED
    d = decapsulate_udp(bytes(out), COA, HA)
    assert bytes(d.inner) == INNER_FORWARDED and (d.key, d.sequence) == (0xABCD, 9)


def test_gre_checksum_covers_payload() -> None:
    t = Tunnel(HA, COA, gre_checksum=True)
    out = encapsulate_gre(INNER, t)
    assert out[20:22] == h("8000") and out[22:24] == h("0800")
    # RFC 2784 §2.5: checksum over GRE header and payload
    assert rfc1071(bytes(out[20:])) == 0
    assert bytes(decapsulate_gre(bytes(out)).inner) == INNER_FORWARDED
    bad = bytearray(out)
    bad[-1] ^= 1
    with pytest.raises(DecodeError, match="GRE checksum"):
        decapsulate_gre(bytes(bad))


# -- the RFC 2003 §3.1 outer header rules --------------------------------------------------


@pytest.mark.parametrize("tos", [0, 0x10, 0xB8, 0xFF])
def test_tos_copied(tos: int) -> None:
    inner = make_inner(tos=tos)
    for out in (encapsulate_ipip(inner, TUNNEL), encapsulate_gre(inner, GRE_TUNNEL)):
        assert out[1] == tos


@pytest.mark.parametrize("df", [True, False])
def test_df_copied(df: bool) -> None:
    inner = make_inner(flags_frag=0x4000 if df else 0)
    out = encapsulate_ipip(inner, TUNNEL)
    assert bool(out[6] & 0x40) is df
    assert not out[6] & 0x20 and out[7] == 0  # outer: not a fragment


def test_df_may_be_set_when_inner_clear() -> None:
    # RFC 2003 §3.1 / §5.1: MAY set DF in the outer header for tunnel PMTU discovery.
    out = encapsulate_ipip(make_inner(flags_frag=0), Tunnel(HA, COA, set_df=True))
    assert out[6] & 0x40


@pytest.mark.parametrize("ttl", [1, 30, 64, 255])
def test_outer_ttl_configurable(ttl: int) -> None:
    out = encapsulate_ipip(INNER, Tunnel(HA, COA, ttl=ttl))
    assert out[8] == ttl
    assert rfc1071(bytes(out[:20])) == 0


def test_outer_ttl_default_64_and_identification() -> None:
    out = encapsulate_ipip(INNER, TUNNEL, identification=0xBEEF)
    assert out[8] == 64 and out[4:6] == h("beef")
    assert rfc1071(bytes(out[:20])) == 0


def test_tunnel_ttl_validated() -> None:
    with pytest.raises(ValueError):
        Tunnel(HA, COA, ttl=0)


@pytest.mark.parametrize("ttl", [2, 64, 255])
def test_inner_ttl_decremented_when_forwarding(ttl: int) -> None:
    inner = make_inner(ttl=ttl)
    for enc, pos in (
        (encapsulate_ipip(inner, TUNNEL), 20),
        (encapsulate_gre(inner, GRE_TUNNEL, sequence=3), 32),
        (encapsulate_udp(inner, TUNNEL), 4),
        (encapsulate_minimal(inner, TUNNEL), 0),
    ):
        assert enc[pos + 8] == ttl - 1
        assert rfc1071(bytes(enc[pos : pos + 20])) == 0  # checksum updated


@pytest.mark.parametrize(
    "encap",
    [encapsulate_ipip, encapsulate_gre, encapsulate_udp, encapsulate_minimal],
)
def test_ttl_expiry(encap: Encap) -> None:
    f = encap
    # RFC 2003 §3.1: forwarding a TTL-1 datagram would make it 0: discard.
    with pytest.raises(TunnelError) as ei:
        f(make_inner(ttl=1), TUNNEL)
    assert ei.value.reason is DropReason.TTL_EXPIRED
    # a TTL-1 datagram the node originates is fine; TTL 0 never (MUST NOT encapsulate)
    f(make_inner(ttl=1), TUNNEL, forwarding=False)
    with pytest.raises(TunnelError) as ei:
        f(make_inner(ttl=0), TUNNEL, forwarding=False)
    assert ei.value.reason is DropReason.TTL_EXPIRED


# -- loop avoidance, RFC 2003 §3.2 --------------------------------------------------------


@pytest.mark.parametrize(
    "encap",
    [encapsulate_ipip, encapsulate_gre, encapsulate_udp, encapsulate_minimal],
)
def test_never_tunnel_packet_from_tunnel_exit(encap: Encap) -> None:
    f = encap
    for forwarding in (True, False):
        with pytest.raises(TunnelError) as ei:
            f(make_inner(src=COA), TUNNEL, forwarding=forwarding)
        assert ei.value.reason is DropReason.LOOP


def test_forwarded_packet_with_own_source_refused() -> None:
    t = Tunnel(HA, COA, own_addresses=frozenset({HA, A("10.9.9.9")}))
    with pytest.raises(TunnelError) as ei:
        encapsulate_ipip(make_inner(src=A("10.9.9.9")), t)
    assert ei.value.reason is DropReason.LOOP
    # a datagram the home agent itself originates may be tunnelled
    out = encapsulate_ipip(make_inner(src=HA), t, forwarding=False)
    assert out[20 + 12 : 20 + 16] == HA.packed


# -- tunnel MTU, RFC 2003 §5.1 ------------------------------------------------------------


def test_packet_too_big_with_df() -> None:
    inner = make_inner(payload=b"z" * 1480)  # 1500 bytes, DF
    with pytest.raises(PacketTooBig) as ei:
        encapsulate_ipip(inner, TUNNEL, mtu=1500)
    assert ei.value.next_hop_mtu == 1480 and ei.value.reason is DropReason.TOO_BIG
    with pytest.raises(PacketTooBig) as ei:
        encapsulate_gre(inner, GRE_TUNNEL, mtu=1500, sequence=1)
    assert ei.value.next_hop_mtu == 1500 - 20 - 12
    with pytest.raises(PacketTooBig) as ei:
        encapsulate_udp(inner, TUNNEL, mtu=1500)
    assert ei.value.next_hop_mtu == 1500 - 32
    with pytest.raises(PacketTooBig) as ei:
        encapsulate_minimal(inner, TUNNEL, mtu=1500)
    assert ei.value.next_hop_mtu == 1500 - 12
    # exactly fitting is fine
    assert len(encapsulate_ipip(make_inner(payload=b"z" * 1460), TUNNEL, mtu=1500)) == 1500


def test_too_big_without_df_goes_out_fragmentable() -> None:
    inner = make_inner(payload=b"z" * 1480, flags_frag=0)
    out = encapsulate_ipip(inner, Tunnel(HA, COA, set_df=True), mtu=1500)
    assert len(out) == 1520
    assert not out[6] & 0x40  # DF clear so the outer packet can be fragmented


def test_too_long_for_ipv4() -> None:
    inner = make_inner(payload=b"z" * (65535 - 20))
    with pytest.raises(TunnelError) as ei:
        encapsulate_ipip(inner, TUNNEL)
    assert ei.value.reason is DropReason.TOO_LONG


# -- minimal encapsulation specifics ------------------------------------------------------


@pytest.mark.parametrize("flags_frag", [0x2000, 0x0001, 0x2005])
def test_minimal_rejects_fragments(flags_frag: int) -> None:
    # RFC 2004 §3: MUST NOT be used when the original datagram is already fragmented.
    with pytest.raises(TunnelError) as ei:
        encapsulate_minimal(make_inner(flags_frag=flags_frag), TUNNEL)
    assert ei.value.reason is DropReason.FRAGMENT
    # IP in IP carries fragments
    encapsulate_ipip(make_inner(flags_frag=flags_frag), TUNNEL)


def test_minimal_keeps_options_and_restores_them() -> None:
    inner = make_inner(options=h("94040000"), ttl=9)
    out = encapsulate_minimal(inner, TUNNEL)
    assert out[0] == 0x46 and out[20:24] == h("94040000")
    assert out[24] == 17 and out[25] == 0x80  # forwarding header after the options
    d = decapsulate_minimal(bytes(out))
    expected = bytearray(inner)
    expected[8] = 8  # the TTL decremented once, by forwarding
    expected[10:12] = b"\0\0"
    expected[10:12] = rfc1071(bytes(expected[:24])).to_bytes(2, "big")
    assert bytes(d.inner) == expected


def test_minimal_decapsulation_checks_forwarding_checksum() -> None:
    bad = bytearray(MINIMAL)
    bad[20 + 4] ^= 0xFF  # original destination changed, forwarding checksum now wrong
    with pytest.raises(DecodeError, match="minimal forwarding header checksum") as ei:
        decapsulate_minimal(bytes(bad))
    assert ei.value.offset == 22


# -- decapsulation checks -----------------------------------------------------------------


def test_wrong_outer_protocol() -> None:
    for decap, packet in (
        (decapsulate_ipip, GRE),
        (decapsulate_gre, IPIP),
        (decapsulate_minimal, IPIP),
    ):
        with pytest.raises(TunnelError) as ei:
            decap(packet)
        assert ei.value.reason is DropReason.PROTOCOL


def test_outer_checksum_checked() -> None:
    bad = bytearray(IPIP)
    bad[8] = 63  # TTL changed without updating the checksum
    with pytest.raises(DecodeError, match="checksum") as ei:
        decapsulate_ipip(bytes(bad))
    assert ei.value.offset == 10


def test_inner_checksum_checked_with_offset() -> None:
    bad = bytearray(IPIP)
    bad[20 + 1] ^= 0x04  # inner TOS
    with pytest.raises(DecodeError, match="checksum") as ei:
        decapsulate_ipip(bytes(bad))
    assert ei.value.offset == 30


def test_inner_length_must_fill_payload() -> None:
    # outer payload one byte longer than the inner packet says
    inner = INNER_FORWARDED + b"\0"
    outer = bytearray(h("45 10 0033 0000 4000 40 04 0000 0a000001 c6336414"))
    outer[10:12] = rfc1071(bytes(outer)).to_bytes(2, "big")
    with pytest.raises(DecodeError, match="inner packet") as ei:
        decapsulate_ipip(bytes(outer) + inner)
    assert ei.value.offset == 22


def test_inner_ttl_zero_discarded() -> None:
    # RFC 2003 §3.1: after decapsulation, inner TTL 0 MUST be discarded.
    inner = bytearray(make_inner(ttl=1))
    outer = encapsulate_ipip(bytes(inner), TUNNEL, forwarding=False)
    outer[20 + 8] = 0
    outer[30:32] = b"\0\0"
    outer[30:32] = rfc1071(bytes(outer[20:40])).to_bytes(2, "big")
    with pytest.raises(TunnelError) as ei:
        decapsulate_ipip(bytes(outer))
    assert ei.value.reason is DropReason.TTL_EXPIRED


def test_outer_fragment_refused() -> None:
    outer = bytearray(IPIP)
    outer[6] = 0x20  # MF
    outer[10:12] = b"\0\0"
    outer[10:12] = rfc1071(bytes(outer[:20])).to_bytes(2, "big")
    with pytest.raises(TunnelError) as ei:
        decapsulate_ipip(bytes(outer))
    assert ei.value.reason is DropReason.FRAGMENT


def test_truncated_tunnel_packets() -> None:
    for decap, packet in (
        (decapsulate_ipip, IPIP),
        (decapsulate_gre, GRE),
        (decapsulate_minimal, MINIMAL),
    ):
        for n in range(len(packet)):
            with pytest.raises(DecodeError):
                decap(packet[:n])
    for n in range(len(UDP_TUNNEL)):
        with pytest.raises(DecodeError):
            decapsulate_udp(UDP_TUNNEL[:n], COA, HA)


def test_trailing_link_padding_ignored() -> None:
    assert bytes(decapsulate_ipip(IPIP + b"\0\0\0").inner) == INNER_FORWARDED
    assert encapsulate_ipip(INNER + b"\0\0", TUNNEL) == IPIP


def test_udp_decapsulation_errors() -> None:
    with pytest.raises(DecodeError, match="type 1"):
        decapsulate_udp(h("01 04 0000") + INNER, COA, HA)
    with pytest.raises(TunnelError) as ei:
        decapsulate_udp(h("04 37 0000") + INNER, COA, HA)
    assert ei.value.reason is DropReason.UNSUPPORTED
    with pytest.raises(TunnelError) as ei:
        decapsulate_udp(h("04 11 0000") + INNER, COA, HA)
    assert ei.value.reason is DropReason.PROTOCOL
    # Reserved is ignored on receipt
    assert bytes(decapsulate_udp(h("04 04 ffff") + INNER, COA, HA).inner) == INNER


def test_udp_encapsulation_unsupported() -> None:
    with pytest.raises(TunnelError):
        encapsulate_udp(INNER, TUNNEL, next_header=55)
    with pytest.raises(TunnelError):
        encapsulate_udp(INNER, Tunnel(HA, COA, gre_checksum=True), next_header=47)


def test_gre_non_ipv4_payload_refused() -> None:
    pkt = bytearray(GRE)
    pkt[22:24] = h("86dd")
    with pytest.raises(TunnelError) as ei:
        decapsulate_gre(bytes(pkt))
    assert ei.value.reason is DropReason.PROTOCOL


def test_malformed_inner_on_encapsulation() -> None:
    with pytest.raises(DecodeError):
        encapsulate_ipip(INNER[:25], TUNNEL)
    bad = bytearray(INNER)
    bad[8] = 3
    with pytest.raises(DecodeError, match="checksum"):
        encapsulate_ipip(bytes(bad), TUNNEL)


def test_inputs_may_be_bytearray_or_memoryview() -> None:
    assert encapsulate_ipip(bytearray(INNER), TUNNEL) == IPIP
    assert encapsulate_ipip(memoryview(INNER), TUNNEL) == IPIP
    assert bytes(decapsulate_ipip(memoryview(IPIP)).inner) == INNER_FORWARDED
    assert bytes(decapsulate_minimal(bytearray(MINIMAL)).inner) == INNER_FORWARDED


def test_decapsulation_is_zero_copy() -> None:
    buf = bytearray(IPIP)
    d = decapsulate_ipip(buf)
    assert isinstance(d.inner, memoryview) and d.inner.obj is buf


def test_home_address_endpoints() -> None:
    # sanity: the vectors are what their names say
    assert INNER[12:16] == CN.packed and INNER[16:20] == HOME.packed


def test_identification_is_taken_modulo_2_16() -> None:
    out = encapsulate_ipip(INNER, TUNNEL, identification=0x1BEEF)
    assert out[4:6] == h("beef") and rfc1071(bytes(out[:20])) == 0


def test_gre_key_validated() -> None:
    with pytest.raises(ValueError):
        Tunnel(HA, COA, gre_key=2**32)


def _datagram(proto: int, segment: bytes, flags_frag: int = 0) -> bytearray:
    src, dst = bytes([10, 1, 0, 1]), bytes([255, 255, 255, 255])
    hdr = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 7, flags_frag, 64, proto, 0, src, dst
        )
    )
    hdr[10:12] = internet_checksum(hdr).to_bytes(2, "big")
    return hdr + segment


def test_complete_transport_checksum_udp_and_tcp() -> None:
    """What a receiver verifies: the one's complement sum over pseudo-header and segment
    comes out 0 (RFC 768, RFC 9293). Worked UDP example: 10.1.0.1 -> 255.255.255.255,
    ports 1234 -> 9, payload b"hi"."""
    udp = bytearray(struct.pack("!HHHH", 1234, 9, 10, 0x1234) + b"hi")  # a partial checksum
    pkt = _datagram(17, bytes(udp))
    assert complete_transport_checksum(pkt)
    pseudo = bytes(pkt[12:20]) + bytes((0, 17)) + (10).to_bytes(2, "big")
    assert internet_checksum(pseudo + bytes(pkt[20:])) == 0
    assert pkt[26:28] == bytes.fromhex("8894")  # by hand: 0xffff - sum of the 16-bit words
    tcp = bytearray(20) + b"data"
    tcp[12] = 5 << 4
    pkt = _datagram(6, bytes(tcp))
    assert complete_transport_checksum(pkt)
    pseudo = bytes(pkt[12:20]) + bytes((0, 6)) + (24).to_bytes(2, "big")
    assert internet_checksum(pseudo + bytes(pkt[20:])) == 0
    # not for other protocols, fragments or truncated headers; nothing is changed
    for other in (_datagram(1, b"\x08\x00\x00\x00"), _datagram(17, bytes(udp), 0x2000)):
        before = bytes(other)
        assert not complete_transport_checksum(other) and bytes(other) == before
    assert not complete_transport_checksum(_datagram(17, b"\x00\x01"))
