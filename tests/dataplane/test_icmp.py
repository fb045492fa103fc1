"""ICMP errors toward the original sender (RFC 2003 §4, §5; RFC 1191; RFC 1122 §3.2.2)."""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from mip4.dataplane import (
    fragmentation_needed,
    may_send_error,
    time_exceeded,
)
from mip4.dataplane.icmp import destination_unreachable

from .vectors import HA, INNER, h, make_inner, rfc1071

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
