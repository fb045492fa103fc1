"""Packets written by hand from the RFC layouts for the data-plane tests. Every checksum
here was computed with ``scapy.utils.checksum`` over the bytes shown (checksum zeroed), not
by mip4.

The inner packet: UDP 192.0.2.10:1234 -> 10.0.0.5:53 (a mobile node's home address),
TOS 0x10, ID 0x1c46, DF, TTL 64, payload "hi". The tunnel: home agent 10.0.0.1 to
care-of address 198.51.100.20, outer TTL 64.
"""

from __future__ import annotations

from ipaddress import IPv4Address as A

from mip4.dataplane import Tunnel


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


HA = A("10.0.0.1")
COA = A("198.51.100.20")
CN = A("192.0.2.10")
HOME = A("10.0.0.5")
TUNNEL = Tunnel(HA, COA)

UDP = "04d2 0035 000a 0000 6869"
INNER = h("45 10 001e 1c46 4000 40 11 526a c000020a 0a000005" + UDP)
#: the inner packet after forwarding: TTL 63, checksum 536a
INNER_FORWARDED = h("45 10 001e 1c46 4000 3f 11 536a c000020a 0a000005" + UDP)

#: RFC 2003 §3.1: outer 10.0.0.1 -> 198.51.100.20, TOS 0x10 and DF copied, TTL 64, proto 4
IPIP = h("45 10 0032 0000 4000 40 04 0670 0a000001 c6336414") + INNER_FORWARDED

#: RFC 2004 §3 with S set (the home agent is not the original source): the original header
#: with protocol 55, TTL 63 (forwarded), src/dst replaced, total length + 12; then
#: Protocol 17 | S | checksum 2270 | original dst 10.0.0.5 | original src 192.0.2.10.
MINIMAL = h("45 10 002a 1c46 4000 3f 37 eafe 0a000001 c633641411 80 2270 0a000005 c000020a" + UDP)

#: RFC 2004 §3 without S: the encapsulator is the original source (not forwarding, TTL
#: unchanged); total length + 8; forwarding header 11 00 e4fa 0a000005.
TUNNEL_FROM_CN = Tunnel(CN, COA)
MINIMAL_NO_S = h("45 10 0026 1c46 4000 40 37 31f9 c000020a c633641411 00 e4fa 0a000005" + UDP)

#: GRE (RFC 2784/2890) with key 0xabcd and sequence 1, no checksum; outer protocol 47.
GRE_TUNNEL = Tunnel(HA, COA, gre_key=0xABCD)
GRE = h("45 10 003e 0000 4000 40 2f 0639 0a000001 c63364143000 0800 0000abcd 00000001") + (
    INNER_FORWARDED
)

#: RFC 3519 §3.3 tunnel data: type 4, next header 4, reserved 0, then the packet.
UDP_TUNNEL = h("04 04 0000") + INNER_FORWARDED


def rfc1071(data: bytes) -> int:
    """The RFC 1071 §4.1 word loop (independent of mip4.wire.ip.internet_checksum)."""
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def make_inner(
    src: A = CN,
    dst: A = HOME,
    *,
    ttl: int = 64,
    tos: int = 0,
    flags_frag: int = 0x4000,
    proto: int = 17,
    payload: bytes = b"x" * 12,
    ident: int = 7,
    options: bytes = b"",
) -> bytes:
    """An IPv4 packet with its checksum from :func:`rfc1071`."""
    hl = 20 + len(options)
    total = hl + len(payload)
    hdr = bytearray(
        bytes([0x40 | (hl // 4), tos])
        + total.to_bytes(2, "big")
        + ident.to_bytes(2, "big")
        + flags_frag.to_bytes(2, "big")
        + bytes([ttl, proto, 0, 0])
        + src.packed
        + dst.packed
        + options
    )
    hdr[10:12] = rfc1071(bytes(hdr)).to_bytes(2, "big")
    return bytes(hdr) + payload
