"""Property tests: every encapsulation round-trips, and any bytes handed to a decapsulator
either decapsulate or raise DecodeError / TunnelError."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from ipaddress import IPv4Address as A

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mip4.dataplane import (
    Decapsulated,
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
from mip4.wire.errors import DecodeError

from .vectors import COA, HA, make_inner, rfc1071

# unicast-looking addresses that are neither tunnel endpoint
addrs = st.integers(0x01000000, 0xDFFFFFFF).map(A).filter(lambda a: a not in (HA, COA))


@st.composite
def inner_packets(draw: st.DrawFn, fragments: bool = True) -> bytes:
    flags_frag = draw(st.sampled_from([0, 0x4000]))
    if fragments and draw(st.booleans()):
        flags_frag = draw(st.sampled_from([0x2000, 0x0001, 0x2100]))
    return make_inner(
        draw(addrs),
        draw(addrs),
        ttl=draw(st.integers(2, 255)),
        tos=draw(st.integers(0, 255)),
        flags_frag=flags_frag,
        proto=draw(st.integers(0, 255)),
        payload=draw(st.binary(max_size=64)),
        ident=draw(st.integers(0, 0xFFFF)),
        options=draw(st.sampled_from([b"", b"\x94\x04\x00\x00", b"\x01" * 8])),
    )


tunnels = st.builds(
    Tunnel,
    st.just(HA),
    st.just(COA),
    ttl=st.integers(1, 255),
    set_df=st.booleans(),
    gre_key=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    gre_checksum=st.booleans(),
)


def forwarded(inner: bytes) -> bytes:
    """What the inner packet looks like after one forwarding hop (TTL - 1)."""
    b = bytearray(inner)
    b[8] -= 1
    hl = (b[0] & 0xF) * 4
    b[10:12] = b"\0\0"
    b[10:12] = rfc1071(bytes(b[:hl])).to_bytes(2, "big")
    return bytes(b)


@given(inner_packets(), tunnels, st.booleans(), st.integers(0, 0xFFFF))
def test_ipip_roundtrip(inner: bytes, tunnel: Tunnel, fwd: bool, ident: int) -> None:
    out = encapsulate_ipip(inner, tunnel, forwarding=fwd, identification=ident)
    assert rfc1071(bytes(out[:20])) == 0
    assert out[1] == inner[1]  # TOS copied
    assert out[8] == tunnel.ttl
    if inner[6] & 0x40:
        assert out[6] & 0x40  # RFC 2003 §3.1: DF set in the inner -> MUST in the outer
    d = decapsulate_ipip(bytes(out))
    assert bytes(d.inner) == (forwarded(inner) if fwd else inner)
    assert (d.outer_src, d.outer_dst) == (tunnel.src, tunnel.dst)


@given(inner_packets(), tunnels, st.booleans(), st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_gre_roundtrip(inner: bytes, tunnel: Tunnel, fwd: bool, seq: int | None) -> None:
    out = encapsulate_gre(inner, tunnel, forwarding=fwd, sequence=seq)
    d = decapsulate_gre(bytes(out))
    assert bytes(d.inner) == (forwarded(inner) if fwd else inner)
    assert (d.key, d.sequence) == (tunnel.gre_key, seq)


@given(inner_packets(fragments=False), st.booleans(), st.booleans())
def test_minimal_roundtrip(inner: bytes, fwd: bool, from_source: bool) -> None:
    src = A(inner[12:16]) if from_source else HA
    tunnel = Tunnel(src, COA)
    out = encapsulate_minimal(inner, tunnel, forwarding=fwd)
    assert len(out) == len(inner) + (8 if from_source else 12)
    assert rfc1071(bytes(out[: (out[0] & 0xF) * 4])) == 0
    d = decapsulate_minimal(bytes(out))
    assert bytes(d.inner) == (forwarded(inner) if fwd else inner)


@given(inner_packets(), tunnels, st.booleans(), st.sampled_from([4, 47]))
def test_udp_roundtrip(inner: bytes, tunnel: Tunnel, fwd: bool, nh: int) -> None:
    tunnel = Tunnel(tunnel.src, tunnel.dst, gre_key=tunnel.gre_key)
    out = encapsulate_udp(inner, tunnel, forwarding=fwd, next_header=nh)
    d = decapsulate_udp(bytes(out), COA, HA)
    assert bytes(d.inner) == (forwarded(inner) if fwd else inner)


Decap = Callable[[bytes], Decapsulated]
DECAPSULATORS: list[Decap] = [
    decapsulate_ipip,
    decapsulate_gre,
    decapsulate_minimal,
    lambda b: decapsulate_udp(b, COA, HA),
]


def _only_expected_errors(decap: Decap, data: bytes) -> None:
    with contextlib.suppress(DecodeError, TunnelError):
        decap(data)


@pytest.mark.parametrize("decap", DECAPSULATORS)
@given(data=st.binary(max_size=120))
def test_random_bytes(decap: Decap, data: bytes) -> None:
    _only_expected_errors(decap, data)


@given(inner_packets(fragments=False), tunnels, st.data())
def test_truncated_and_mutated(inner: bytes, tunnel: Tunnel, data: st.DataObject) -> None:
    packets: list[tuple[Decap, bytes]] = [
        (decapsulate_ipip, bytes(encapsulate_ipip(inner, tunnel))),
        (decapsulate_gre, bytes(encapsulate_gre(inner, tunnel, sequence=1))),
        (decapsulate_minimal, bytes(encapsulate_minimal(inner, tunnel))),
        (DECAPSULATORS[3], bytes(encapsulate_udp(inner, Tunnel(HA, COA)))),
    ]
    for decap, packet in packets:
        cut = data.draw(st.integers(0, len(packet) - 1))
        with pytest.raises(DecodeError):
            decap(packet[:cut])  # a truncated tunnel packet is always malformed
        b = bytearray(packet)
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] ^= data.draw(st.integers(1, 255))
        _only_expected_errors(decap, bytes(b))


@pytest.mark.oracle
@given(inner_packets(), tunnels)
def test_scapy_parses_ipip_and_gre(inner: bytes, tunnel: Tunnel) -> None:
    inet = pytest.importorskip("scapy.layers.inet")
    l2 = pytest.importorskip("scapy.layers.l2")
    conf = pytest.importorskip("scapy.config").conf
    # Payloads are compared as the bytes scapy was given, never re-rendered: once another
    # test has imported scapy.all, scapy dissects an inner IGMP datagram as its IGMP layer,
    # whose build adds a Router Alert option (RFC 2236 §2), so a re-rendered copy differs.
    raw = bytes(encapsulate_ipip(inner, tunnel))
    pkt = inet.IP(raw)
    assert pkt.proto == 4 and pkt.src == str(tunnel.src) and pkt.dst == str(tunnel.dst)
    assert pkt.tos == inner[1] and pkt.ttl == tunnel.ttl
    assert raw[pkt.ihl * 4 :] == forwarded(inner)
    assert pkt.payload.ttl == inner[8] - 1 and pkt.payload.len == len(inner)
    graw = bytes(encapsulate_gre(inner, tunnel, sequence=3))
    g = inet.IP(graw)
    gre = g[l2.GRE]
    assert gre.proto == 0x0800 and gre.sequence_number == 3
    assert gre.key_present == (tunnel.gre_key is not None)
    if tunnel.gre_key is not None:
        assert gre.key == tunnel.gre_key
    if tunnel.gre_checksum:
        assert gre.chksum_present == 1
        gre_raw = graw[g.ihl * 4 :]
        rebuilt = l2.GRE(gre_raw)
        inner_at = len(gre_raw) - len(forwarded(inner))
        rebuilt.remove_payload()
        rebuilt.add_payload(conf.raw_layer(load=gre_raw[inner_at:]))
        del rebuilt.chksum
        assert bytes(rebuilt) == gre_raw  # scapy computes the same checksum
