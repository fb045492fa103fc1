"""Whole packets built and read as bytes (mip4.wire.packets): byte-exact vectors written out
by hand or by scapy, checksums checked by the RFC 1071 word loop, and the one-implementation
rule (the I/O shell and the capture writer use these builders, not copies)."""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from mip4.wire.ip import IPFlags, IPv4Header
from mip4.wire.packets import (
    UnreachableQuote,
    gratuitous_arp,
    icmp_with_checksum,
    ipv4_packet,
    ipv4_udp_packet,
    parse_destination_unreachable,
    set_header_checksum,
    transport_checksum,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def rfc1071(data: bytes) -> int:
    """The RFC 1071 §4.1 word loop (independent of mip4.wire.ip.internet_checksum)."""
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


MN, FA = A("192.0.2.1"), A("198.51.100.2")

#: scapy: IP(src=MN, dst=FA, ttl=1, id=0x1234)/UDP(sport=434, dport=434)/b"mip4"
UDP_MIP4 = h(
    "4500 0020 1234 0000 0111 bb62 c0000201 c6336402"
    "01b2 01b2 000c 329d 6d697034"
)  # fmt: skip
#: scapy: ARP(op=1, hwsrc=02:00:00:00:00:01, psrc=10.1.0.100, pdst=10.1.0.100)
GARP_REQUEST = h("0001 0800 06 04 0001 020000000001 0a010064 000000000000 0a010064")


def test_ipv4_udp_packet_exact() -> None:
    assert ipv4_udp_packet(MN, FA, 434, 434, b"mip4", ttl=1, identification=0x1234) == UDP_MIP4
    assert rfc1071(UDP_MIP4[:20]) == 0
    pseudo = MN.packed + FA.packed + h("0011 000c")
    assert rfc1071(pseudo + UDP_MIP4[20:]) == 0


def test_ipv4_packet_header_and_options() -> None:
    pkt = ipv4_packet(MN, FA, 1, b"\x0a\0\0\0", ttl=1, options=b"\x94\x04\0")  # padded to 4
    hdr = IPv4Header.decode(pkt)  # checks the header checksum
    assert (hdr.header_len, hdr.total_length, hdr.ttl, hdr.protocol) == (24, 28, 1, 1)
    assert hdr.options == b"\x94\x04\0\0" and pkt[24:] == b"\x0a\0\0\0"
    frag = IPv4Header.decode(
        ipv4_packet(MN, FA, 17, bytes(8), flags=IPFlags.MF, fragment_offset=3, identification=7)
    )
    assert (frag.flags, frag.fragment_offset, frag.identification) == (IPFlags.MF, 3, 7)


def test_udp_checksum_zero_is_sent_as_all_ones() -> None:
    # RFC 768: choose the payload word so the sum comes out as zero
    c = transport_checksum(MN.packed, FA.packed, 17, h("0001 0002 000a 0000 0000"))
    segment = h("0001 0002 000a 0000") + c.to_bytes(2, "big")
    assert transport_checksum(MN.packed, FA.packed, 17, segment) == 0xFFFF
    pkt = ipv4_udp_packet(MN, FA, 1, 2, c.to_bytes(2, "big"))
    assert pkt[26:28] == b"\xff\xff"
    # TCP keeps a computed zero
    assert transport_checksum(MN.packed, FA.packed, 6, b"") == rfc1071(
        MN.packed + FA.packed + h("0006 0000")
    )


def test_set_header_checksum_and_icmp_with_checksum() -> None:
    buf = bytearray(UDP_MIP4)
    buf[10:12] = b"\xde\xad"
    set_header_checksum(buf)
    assert bytes(buf) == UDP_MIP4
    solicitation = icmp_with_checksum(h("0a00 1234 00000000"))  # a stale checksum is replaced
    assert solicitation == h("0a00 f5ff 00000000") and rfc1071(solicitation) == 0


def test_gratuitous_arp_exact() -> None:
    mac = h("020000000001")
    assert gratuitous_arp(A("10.1.0.100"), mac) == GARP_REQUEST
    reply = gratuitous_arp(A("10.1.0.100"), mac, reply=True)
    assert reply[6:8] == h("0002") and reply[18:24] == mac  # target hardware address: ours


def _unreachable(code: int, quoted: bytes) -> bytes:
    icmp = icmp_with_checksum(bytes([3, code, 0, 0, 0, 0, 0, 0]) + quoted)
    return ipv4_packet(A("203.0.113.1"), MN, 1, icmp)


def test_destination_unreachable_quote() -> None:
    sent = ipv4_udp_packet(MN, FA, 49152, 434, b"registration request")
    quote = parse_destination_unreachable(_unreachable(3, sent))
    assert quote == UnreachableQuote(
        code=3,
        src=A("203.0.113.1"),
        original_dst=FA,
        original_sport=49152,
        original_dport=434,
        original_payload=b"registration request",
    )
    # RFC 792 minimum: the IP header and 8 bytes -- ports, no payload
    assert parse_destination_unreachable(_unreachable(1, sent[:28])) == quote._replace(
        code=1, original_payload=b""
    )
    # not UDP: no ports
    icmp_quote = parse_destination_unreachable(_unreachable(0, ipv4_packet(MN, FA, 1, bytes(8))))
    assert icmp_quote is not None and icmp_quote.original_sport is None


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        bytes(19),
        _unreachable(3, ipv4_udp_packet(MN, FA, 1, 2, b"")[:27]),  # quotes too little
        ipv4_packet(
            A("203.0.113.1"), MN, 1, icmp_with_checksum(h("0b00 0000 00000000") + UDP_MIP4)
        ),
        _unreachable(3, b"\x60" + UDP_MIP4[1:]),  # the quote is not IPv4
    ],
)
def test_not_a_destination_unreachable(packet: bytes) -> None:
    assert parse_destination_unreachable(packet) is None


def test_one_implementation() -> None:
    """The I/O shell and the capture writer use these builders, not copies of them."""
    from mip4.io import rawsock
    from mip4.tools import pcap
    from mip4.wire import packets

    names = ("ipv4_packet", "ipv4_udp_packet", "gratuitous_arp", "icmp_with_checksum")
    for module in (rawsock, pcap):
        for name in (*names, "parse_destination_unreachable", "_ipv4_header"):
            found = getattr(module, name, None)
            assert found is None or found is getattr(packets, name), (module, name)
    assert pcap.ipv4_udp(MN, FA, b"mip4", ttl=1, ident=0x1234) == UDP_MIP4
    assert pcap.ipv4_icmp(MN, FA, h("0a00 0000 00000000"))[20:] == h("0a00 f5ff 00000000")


@pytest.mark.oracle
def test_scapy_reads_what_we_build() -> None:
    inet = pytest.importorskip("scapy.layers.inet")
    pkt = inet.IP(ipv4_udp_packet(MN, FA, 434, 434, b"x" * 33, ttl=255, identification=9))
    assert (pkt.src, pkt.dst, pkt.ttl, pkt.id) == (str(MN), str(FA), 255, 9)
    udp = pkt[inet.UDP]
    assert (udp.sport, udp.dport, bytes(udp.payload)) == (434, 434, b"x" * 33)
    rebuilt = inet.IP(bytes(pkt))
    del rebuilt.chksum
    del rebuilt[inet.UDP].chksum
    assert bytes(rebuilt) == bytes(pkt)  # scapy's checksums agree with ours
