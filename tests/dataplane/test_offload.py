"""mip4.dataplane.offload: datagrams left unfinished by a sender's offloads (checksum to be
completed, GSO super-packets), repaired as the wire would carry them -- checked against
scapy's own checksums and fields."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scapy.layers.inet import IP, TCP, UDP

from mip4.dataplane.offload import looks_partial, needs_repair, repair_offloaded


def _partial(packet: bytes) -> bytes:
    """``packet`` with its TCP/UDP checksum replaced by the folded pseudo-header sum: what
    a stack hands to a device with checksum offload (``CHECKSUM_PARTIAL``)."""
    b = bytearray(packet)
    ihl = (b[0] & 0x0F) * 4
    total = int.from_bytes(b[2:4], "big")
    field = ihl + (16 if b[9] == 6 else 6)
    s = b[9] + (total - ihl) + sum(int.from_bytes(b[i : i + 2], "big") for i in range(12, 20, 2))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    b[field : field + 2] = s.to_bytes(2, "big")
    return bytes(b)


def _tcp(payload: bytes, flags: str = "PA", seq: int = 1000) -> bytes:
    pkt = IP(src="192.0.2.10", dst="10.1.0.100", id=77, flags="DF") / TCP(
        sport=5001, dport=40000, seq=seq, ack=5, flags=flags, window=512
    )
    return bytes(pkt / payload)


def _udp(payload: bytes) -> bytes:
    return bytes(IP(src="192.0.2.10", dst="10.1.0.100") / UDP(sport=1, dport=2) / payload)


@pytest.mark.parametrize("make", [_tcp, _udp], ids=["tcp", "udp"])
def test_partial_checksum_is_completed(make: Callable[[bytes], bytes]) -> None:
    good = make(bytes(range(200)))
    part = _partial(good)
    assert part != good and looks_partial(part) and not looks_partial(good)
    assert needs_repair(part, 1500)
    assert repair_offloaded(part, 1500) == [good]


def test_a_correct_datagram_is_never_touched() -> None:
    good = _tcp(b"x" * 100)
    assert not needs_repair(good, 1500)
    assert repair_offloaded(good, 1500) == [good]
    other = bytes(IP(src="192.0.2.10", dst="10.1.0.100", proto=47) / (b"\0" * 40))
    assert repair_offloaded(other, 1500) == [other]


def test_gso_super_packet_is_segmented_like_the_kernel() -> None:
    payload = bytes(i % 251 for i in range(5000))
    superpkt = _partial(_tcp(payload, flags="FPAC"))
    assert needs_repair(superpkt, 1500)
    segs = repair_offloaded(superpkt, 1500)
    assert [len(s) for s in segs] == [1500, 1500, 1500, 40 + 5000 - 3 * 1460]
    got = b""
    for i, raw in enumerate(segs):
        p = IP(raw)
        # scapy recomputes both checksums from a copy with the fields removed: equal
        fresh = IP(raw)
        del fresh.chksum
        del fresh[TCP].chksum
        fresh = IP(bytes(fresh))
        assert (p.chksum, p[TCP].chksum) == (fresh.chksum, fresh[TCP].chksum)
        assert p.id == 77 + i and p.flags == "DF"
        assert p[TCP].seq == 1000 + len(got)
        flags = str(p[TCP].flags)
        assert ("F" in flags) == ("P" in flags) == (i == len(segs) - 1), (i, flags)
        assert ("C" in flags) == (i == 0)
        got += bytes(p[TCP].payload)
    assert got == payload


def test_a_udp_super_packet_is_left_to_its_sender() -> None:
    big = _udp(b"y" * 3000)
    assert repair_offloaded(big, 1500) == [big]


@pytest.mark.parametrize("data", [b"", b"\x45", bytes(27), b"\x60" + bytes(60)])
def test_short_or_not_ipv4_passes(data: bytes) -> None:
    assert not looks_partial(data)
    assert repair_offloaded(data, 1500) == [data]
