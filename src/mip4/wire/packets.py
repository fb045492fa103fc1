"""Whole packets, built and taken apart as bytes: IPv4 datagrams (UDP, ICMP), the checksums
that go with them, gratuitous ARP and the ICMP Destination Unreachable quote.

Theory of operation
-------------------
One implementation of each: the I/O shell (:mod:`mip4.io.rawsock`, :mod:`mip4.io.executor`)
sends what these functions build, the capture writer (:mod:`mip4.tools.pcap`) and the
benchmarks write or time them, and the data plane fills its checksums with them. Nothing here
does I/O.

* :func:`ipv4_packet` puts a payload behind an IPv4 header (RFC 791 §3.1) encoded by
  :class:`mip4.wire.ip.IPv4Header` (options padded with End-of-Options to a multiple of 4);
  :func:`ipv4_udp_packet` adds a UDP header whose checksum covers the pseudo-header
  (RFC 768, :func:`transport_checksum`), :func:`icmp_with_checksum` fills an ICMP
  checksum (RFC 792).
* :func:`gratuitous_arp` is the ARP packet a home agent broadcasts for a home address
  (RFC 5944 §4.6, RFC 5227 §3), without the Ethernet header (the kernel adds it).
* :func:`parse_destination_unreachable` reads an ICMP Destination Unreachable (RFC 792) and
  the IP/UDP headers it quotes into an :class:`UnreachableQuote`; the I/O shell turns that
  into the engines' event.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address
from typing import NamedTuple

from .addr import ipv4_from_bytes
from .ip import NO_IP_FLAGS, Bytes, IPFlags, IPProtocol, IPv4Header, internet_checksum

__all__ = [
    "ETHERTYPE_ARP",
    "ETHERTYPE_IPV4",
    "ICMP_DEST_UNREACH",
    "UnreachableQuote",
    "gratuitous_arp",
    "icmp_with_checksum",
    "ipv4_packet",
    "ipv4_udp_packet",
    "parse_destination_unreachable",
    "set_header_checksum",
    "transport_checksum",
]

ETHERTYPE_IPV4 = 0x0800  #: IANA EtherType of IPv4 (also ARP's protocol type)
ETHERTYPE_ARP = 0x0806  #: IANA EtherType of ARP
ICMP_DEST_UNREACH = 3  #: ICMP type (RFC 792)

_UDP = struct.Struct("!HHHH")
_ARP = struct.Struct("!HHBBH")


# -- checksums ------------------------------------------------------------------------------


def set_header_checksum(buf: bytearray, header_len: int = 20, offset: int = 0) -> None:
    """Fill in the header checksum of the IPv4 header of ``header_len`` bytes at ``offset``
    of ``buf`` (RFC 791 §3.1: computed with the field zero)."""
    buf[offset + 10] = buf[offset + 11] = 0
    csum = internet_checksum(buf[offset : offset + header_len])
    buf[offset + 10] = csum >> 8
    buf[offset + 11] = csum & 0xFF


def transport_checksum(src: Bytes, dst: Bytes, protocol: int, segment: Bytes) -> int:
    """The UDP or TCP checksum of ``segment`` (its checksum field zero) sent from ``src`` to
    ``dst`` (4-byte addresses): over the pseudo-header and the segment (RFC 768, RFC 9293
    §3.1). A UDP checksum that computes to zero is sent as all ones (RFC 768)."""
    pseudo = bytes(src) + bytes(dst) + bytes((0, protocol)) + len(segment).to_bytes(2, "big")
    csum = internet_checksum(pseudo + bytes(segment))
    if protocol == IPProtocol.UDP and csum == 0:
        csum = 0xFFFF
    return csum


def icmp_with_checksum(message: Bytes) -> bytes:
    """``message`` (an ICMP message) with its checksum field (bytes 2-3) filled in
    (RFC 792: over the whole message, computed with the field zero)."""
    b = bytearray(message)
    b[2:4] = b"\0\0"
    b[2:4] = internet_checksum(b).to_bytes(2, "big")
    return bytes(b)


# -- IPv4 datagrams -------------------------------------------------------------------------


def ipv4_packet(
    src: IPv4Address,
    dst: IPv4Address,
    protocol: int,
    payload: bytes,
    *,
    ttl: int = 64,
    identification: int = 0,
    options: bytes = b"",
    flags: IPFlags = NO_IP_FLAGS,
    fragment_offset: int = 0,
) -> bytes:
    """``payload`` behind an IPv4 header (checksum filled; ``options`` padded with
    End-of-Options to a multiple of 4 bytes, RFC 791 §3.1; ``fragment_offset`` in 8-byte
    units)."""
    if len(options) % 4:
        options += b"\0" * (4 - len(options) % 4)
    header = IPv4Header(
        src=src,
        dst=dst,
        protocol=protocol,
        total_length=20 + len(options) + len(payload),
        ttl=ttl,
        identification=identification,
        flags=flags,
        fragment_offset=fragment_offset,
        options=options,
    )
    return header.encode() + payload


def ipv4_udp_packet(
    src: IPv4Address,
    dst: IPv4Address,
    sport: int,
    dport: int,
    payload: bytes,
    *,
    ttl: int = 64,
    identification: int = 0,
    options: bytes = b"",
) -> bytes:
    """A complete IPv4/UDP datagram, both checksums filled (RFC 768, RFC 791)."""
    udp = bytearray(_UDP.pack(sport, dport, 8 + len(payload), 0) + payload)
    csum = transport_checksum(src.packed, dst.packed, IPProtocol.UDP, udp)
    udp[6:8] = csum.to_bytes(2, "big")
    return ipv4_packet(
        src, dst, IPProtocol.UDP, bytes(udp), ttl=ttl, identification=identification,
        options=options,
    )  # fmt: skip


# -- ARP ------------------------------------------------------------------------------------


def gratuitous_arp(address: IPv4Address, link_address: bytes, *, reply: bool = False) -> bytes:
    """An ARP packet announcing ``address`` at ``link_address``: sender and target protocol
    address both ``address`` (RFC 5944 §4.6, RFC 5227 §3). A request by default; with
    ``reply`` an ARP reply, which some stacks prefer."""
    op = 2 if reply else 1
    target_hw = link_address if reply else b"\0" * 6
    return (
        _ARP.pack(1, ETHERTYPE_IPV4, 6, 4, op)
        + link_address
        + address.packed
        + target_hw
        + address.packed
    )


# -- ICMP Destination Unreachable -----------------------------------------------------------


class UnreachableQuote(NamedTuple):
    """What an ICMP Destination Unreachable says about a datagram we sent."""

    #: ICMP code: 0 net, 1 host, 3 port unreachable... (RFC 792, RFC 1122, RFC 1812)
    code: int
    #: who sent the ICMP error
    src: IPv4Address
    #: destination of the datagram that could not be delivered
    original_dst: IPv4Address
    #: the quoted datagram's UDP source / destination ports (``None`` when not UDP)
    original_sport: int | None
    original_dport: int | None
    #: the quoted UDP payload, as much as the error carried (may be empty or truncated)
    original_payload: bytes


def parse_destination_unreachable(packet: bytes) -> UnreachableQuote | None:
    """The quote of one received IP packet carrying an ICMP Destination Unreachable, or
    ``None`` if it is not one or quotes too little (RFC 792: the original IP header and at
    least 8 bytes of its payload)."""
    if len(packet) < 20:
        return None
    hlen = (packet[0] & 0xF) * 4
    icmp = packet[hlen:]
    if len(icmp) < 8 + 20 or icmp[0] != ICMP_DEST_UNREACH:
        return None
    quoted = icmp[8:]
    qhlen = (quoted[0] & 0xF) * 4
    if quoted[0] >> 4 != 4 or len(quoted) < qhlen + 8:
        return None
    sport = dport = None
    payload = b""
    if quoted[9] == IPProtocol.UDP:
        sport = int.from_bytes(quoted[qhlen : qhlen + 2], "big")
        dport = int.from_bytes(quoted[qhlen + 2 : qhlen + 4], "big")
        payload = bytes(quoted[qhlen + 8 :])
    return UnreachableQuote(
        code=icmp[1],
        src=ipv4_from_bytes(packet, 12),
        original_dst=ipv4_from_bytes(quoted, 16),
        original_sport=sport,
        original_dport=dport,
        original_payload=payload,
    )
