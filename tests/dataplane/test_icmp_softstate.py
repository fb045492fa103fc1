"""ICMP errors toward the original sender and the tunnel soft state (RFC 2003 §4, §5;
RFC 1191; RFC 1122 §3.2.2), and GRE sequence ordering (RFC 2890 §2.2)."""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from mip4.dataplane import (
    GRESequenceWindow,
    TunnelSoftState,
    encapsulate_gre,
    encapsulate_ipip,
    fragmentation_needed,
    may_send_error,
    time_exceeded,
)
from mip4.dataplane.icmp import destination_unreachable
from mip4.wire.errors import DecodeError

from .vectors import CN, GRE_TUNNEL, HA, INNER, INNER_FORWARDED, TUNNEL, h, make_inner, rfc1071

ROUTER = A("203.0.113.1")
#: hand-written: IPv4 10.0.0.1 -> 192.0.2.10, proto 1, TTL 64, total 58, checksum aeb8
ERR_IP = h("45 00 003a 0000 0000 40 01 aeb8 0a000001 c000020a")


def test_fragmentation_needed_exact() -> None:
    # RFC 1191 §4: type 3 code 4, unused 0, Next-Hop MTU; RFC 2003 §5.1: tunnel MTU minus
    # the encapsulating header (49 - 20 = 29 = 0x1d).
    assert fragmentation_needed(INNER, 49, HA) == ERR_IP + h("03 04 8f64 0000 001d") + INNER


def test_time_exceeded_exact() -> None:
    assert time_exceeded(INNER, HA) == ERR_IP + h("0b 00 8785 00000000") + INNER


def test_fragmentation_needed_only_when_needed() -> None:
    assert fragmentation_needed(INNER, 50, HA) is None  # 30 + 20 fits
    assert fragmentation_needed(make_inner(flags_frag=0, payload=b"z" * 100), 50, HA) is None


def test_fragmentation_needed_large_packet_quote_limit() -> None:
    big = make_inner(payload=b"z" * 1480)
    msg = fragmentation_needed(big, 1500, HA)
    assert msg is not None
    assert len(msg) == 576  # RFC 1812 §4.3.2.3
    assert msg[26:28] == (1480).to_bytes(2, "big")
    assert msg[28:48] == big[:20]
    assert rfc1071(msg[:20]) == 0 and rfc1071(msg[20:]) == 0
    # other overheads: GRE with key 32, UDP tunnelling 32, minimal with source 12
    msg = fragmentation_needed(big, 1500, HA, overhead=32)
    assert msg is not None and msg[26:28] == (1468).to_bytes(2, "big")


@pytest.mark.parametrize(
    ("packet", "allowed"),
    [
        (INNER, True),
        (make_inner(proto=1, payload=h("0800 0000 0001 0001")), True),  # echo request
        (make_inner(proto=1, payload=h("0304 0000 0000 05dc")), False),  # an ICMP error
        (make_inner(proto=1, payload=h("0b00 0000 0000 0000")), False),
        (make_inner(flags_frag=0x0010), False),  # not the first fragment
        (make_inner(flags_frag=0x2000), True),  # the first fragment
        (make_inner(dst=A("224.0.0.5")), False),  # multicast
        (make_inner(dst=A("255.255.255.255")), False),  # broadcast
        (make_inner(src=A("0.0.0.0")), False),
        (make_inner(src=A("127.0.0.1")), False),
        (make_inner(src=A("240.0.0.1")), False),
    ],
)
def test_rfc1122_no_error_about(packet: bytes, allowed: bool) -> None:
    assert may_send_error(packet) is allowed
    assert (destination_unreachable(packet, 1, HA) is not None) is allowed


@pytest.mark.oracle
def test_scapy_reads_fragmentation_needed() -> None:
    inet = pytest.importorskip("scapy.layers.inet")
    msg = fragmentation_needed(make_inner(payload=b"z" * 1480), 1500, HA)
    assert msg is not None
    pkt = inet.IP(msg)
    assert pkt.src == "10.0.0.1" and pkt.dst == "192.0.2.10" and pkt.proto == 1
    icmp = pkt[inet.ICMP]
    assert (icmp.type, icmp.code, icmp.nexthopmtu) == (3, 4, 1480)
    # scapy's own checksums agree with ours
    rebuilt = inet.IP(msg)
    del rebuilt.chksum
    del rebuilt[inet.ICMP].chksum
    assert bytes(rebuilt) == msg


# -- soft state ---------------------------------------------------------------------------


def icmp_from_router(itype: int, code: int, quoted: bytes, *, rest: int = 0, dst: A = HA) -> bytes:
    """An ICMP error from a router inside the tunnel, checksums by the RFC 1071 loop."""
    icmp = bytearray(bytes([itype, code, 0, 0]) + rest.to_bytes(4, "big") + quoted)
    icmp[2:4] = rfc1071(bytes(icmp)).to_bytes(2, "big")
    total = 20 + len(icmp)
    ip = bytearray(
        h("4500")
        + total.to_bytes(2, "big")
        + h("0000 0000 40 01 0000")
        + ROUTER.packed
        + dst.packed
    )
    ip[10:12] = rfc1071(bytes(ip)).to_bytes(2, "big")
    return bytes(ip + icmp)


BIG = make_inner(payload=b"z" * 1430)  # 1450 bytes, DF


def outer_of(inner: bytes) -> bytes:
    return bytes(encapsulate_ipip(inner, TUNNEL))


def test_datagram_too_big_updates_mtu_and_is_relayed() -> None:
    st = TunnelSoftState(TUNNEL)
    # the router quoted the whole outer datagram (RFC 1812 routers quote up to 576 bytes)
    err = icmp_from_router(3, 4, outer_of(BIG)[:548], rest=1400)
    relay = st.on_icmp_error(err, now=100.0)
    assert st.current_mtu(100.0) == 1400
    assert st.next_deadline() == 700.0
    # RFC 2003 §4.1 MUST relay; §5.1 with MTU 1400 - 20
    assert relay is not None
    assert relay[12:16] == HA.packed and relay[16:20] == CN.packed
    assert relay[20:22] == h("0304") and relay[26:28] == (1380).to_bytes(2, "big")
    # subsequent big DF datagrams are refused with fragmentation needed (RFC 2003 §5.1)
    verdict = st.check(BIG, now=200.0)
    assert not verdict.forward and verdict.icmp is not None
    assert verdict.icmp[26:28] == (1380).to_bytes(2, "big")
    assert st.check(INNER, now=200.0).forward
    # the learnt MTU ages out (RFC 1191 §6.3)
    st.handle_timer(700.0)
    assert st.current_mtu(700.0) == 1500 and st.next_deadline() is None
    assert st.check(BIG, now=700.0) == (True, None)


def test_too_big_with_rfc792_quote_only_updates_state() -> None:
    st = TunnelSoftState(TUNNEL)
    err = icmp_from_router(3, 4, outer_of(BIG)[:28], rest=1400)
    assert st.on_icmp_error(err, now=0.0) is None  # the inner header was not quoted
    assert st.current_mtu(0.0) == 1400


def test_too_big_with_zero_mtu_uses_plateau() -> None:
    st = TunnelSoftState(TUNNEL)
    err = icmp_from_router(3, 4, outer_of(BIG)[:48], rest=0)  # outer total length 1470
    st.on_icmp_error(err, now=0.0)
    assert st.current_mtu(0.0) == 1006  # RFC 1191 §7: the plateau below 1470


@pytest.mark.parametrize(
    ("itype", "code", "relayed_code"),
    [
        (3, 0, 0),  # net unreachable -> code 0 (RFC 2003 §4.1)
        (3, 1, 1),  # host unreachable -> relayed as host unreachable
        (3, 2, 0),  # protocol unreachable -> code 0
        (11, 0, 1),  # time exceeded -> host unreachable (RFC 2003 §4.4, MUST)
    ],
)
def test_unreachable_relayed(itype: int, code: int, relayed_code: int) -> None:
    st = TunnelSoftState(TUNNEL)
    relay = st.on_icmp_error(icmp_from_router(itype, code, outer_of(INNER)), now=10.0)
    assert relay is not None
    assert relay[20] == 3 and relay[21] == relayed_code
    assert relay[28:58] == INNER_FORWARDED  # the original datagram, as it entered the tunnel
    assert not st.reachable(10.0)
    # RFC 2003 §5: later datagrams get an ICMP error back *and* are still tunnelled
    verdict = st.check(INNER, now=20.0)
    assert verdict.forward and verdict.icmp is not None and verdict.icmp[20:22] == h("0301")
    assert st.reachable(40.0)


@pytest.mark.parametrize(
    ("itype", "code"),
    [(3, 3), (3, 5), (5, 1), (12, 0)],  # port unreach., source route, redirect, param. prob.
)
def test_not_relayed(itype: int, code: int) -> None:
    # RFC 2003 §4.1 (port unreachable MUST NOT, source route failed handled locally),
    # §4.3 (redirect MUST NOT), §4.5.
    st = TunnelSoftState(TUNNEL)
    assert st.on_icmp_error(icmp_from_router(itype, code, outer_of(INNER)), now=0.0) is None


def test_source_quench_not_relayed_but_remembered() -> None:
    st = TunnelSoftState(TUNNEL)
    assert st.on_icmp_error(icmp_from_router(4, 0, outer_of(INNER)), now=0.0) is None
    assert st.congested(1.0) and not st.congested(31.0)


def test_error_about_another_tunnel_ignored() -> None:
    st = TunnelSoftState(TUNNEL)
    other = bytes(encapsulate_ipip(INNER, type(TUNNEL)(HA, A("198.51.100.99"))))
    assert st.on_icmp_error(icmp_from_router(3, 1, other), now=0.0) is None
    assert st.reachable(0.0)


def test_relay_through_gre() -> None:
    st = TunnelSoftState(GRE_TUNNEL, overhead=28)
    quoted = bytes(encapsulate_gre(BIG, GRE_TUNNEL))[:548]
    relay = st.on_icmp_error(icmp_from_router(3, 4, quoted, rest=1400), now=0.0)
    assert relay is not None and relay[26:28] == (1372).to_bytes(2, "big")


def test_path_ttl_soft_state() -> None:
    st = TunnelSoftState(TUNNEL, path_ttl=10)
    verdict = st.check(make_inner(ttl=5), now=0.0)
    assert verdict.forward and verdict.icmp is not None and verdict.icmp[20] == 11
    assert st.check(make_inner(ttl=10), now=0.0) == (True, None)


def test_malformed_icmp_input() -> None:
    st = TunnelSoftState(TUNNEL)
    good = icmp_from_router(3, 1, outer_of(INNER))
    bad = bytearray(good)
    bad[21] = 0  # ICMP code changed: ICMP checksum now wrong
    with pytest.raises(DecodeError, match="ICMP checksum"):
        st.on_icmp_error(bytes(bad), now=0.0)
    with pytest.raises(DecodeError):
        st.on_icmp_error(good[:40], now=0.0)
    with pytest.raises(DecodeError, match="not an ICMP"):
        st.on_icmp_error(INNER, now=0.0)


# -- GRE sequence numbers -----------------------------------------------------------------


def test_gre_sequence_window() -> None:
    w = GRESequenceWindow()
    assert w.accept(5)
    assert w.accept(6)
    assert not w.accept(6)  # duplicate
    assert not w.accept(4)  # out of order
    assert w.accept(100)
    assert not w.accept(99)
    w = GRESequenceWindow()
    assert w.accept(0xFFFFFFFF)
    assert w.accept(0)  # wraps (RFC 1982 serial arithmetic)
    assert not w.accept(0x80000000)  # exactly half the space away: not "greater"
    assert w.accept(0x7FFFFFFF)
