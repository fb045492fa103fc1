"""ICMP errors the tunnel entry point sends back to the original sender (RFC 2003 §4,
§5.1; RFC 1191; RFC 792), as whole IPv4 packets ready for a raw socket.

Every builder returns ``None`` when RFC 1122 §3.2.2 / RFC 1812 §4.3.2.7 forbid an ICMP
error about the datagram: it is itself an ICMP error, a non-initial fragment, addressed to
a broadcast or multicast address, or from a source that does not name a single host. The
quoted part is the original IP header and as much of its data as fits in 576 bytes
(RFC 1812 §4.3.2.3; at least header + 64 bits, RFC 792).
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from mip4.wire.ip import (
    DF_MASK,
    FRAG_OFFSET_MASK,
    HEADER,
    Bytes,
    HeaderFields,
    internet_checksum,
    peek,
)

from .common import DEFAULT_TTL, IPV4_HEADER_LEN
from .ipip import IPIP_OVERHEAD

ICMP_PROTOCOL = 1
DEST_UNREACHABLE = 3
TIME_EXCEEDED = 11
# Destination Unreachable codes (RFC 792, RFC 1191)
NET_UNREACHABLE = 0
HOST_UNREACHABLE = 1
PROTOCOL_UNREACHABLE = 2
PORT_UNREACHABLE = 3
FRAGMENTATION_NEEDED = 4
SOURCE_ROUTE_FAILED = 5
TTL_EXCEEDED_IN_TRANSIT = 0
#: ICMP types that are error messages (RFC 1122 §3.2.2: never send an error about one)
ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
#: RFC 1812 §4.3.2.3: an ICMP error SHOULD NOT exceed 576 bytes
MAX_ICMP_ERROR_PACKET = 576
_ICMP_HDR = struct.Struct("!BBHI")


def _is_unicast_host(addr: int) -> bool:
    first = addr >> 24
    # not 0.0.0.0/8 ("this network"), 127/8 (loopback), 224/4 (multicast), 240/4 (class E,
    # including 255.255.255.255)
    return first not in (0, 127) and first < 224


def may_send_error(data: Bytes, f: HeaderFields | None = None) -> bool:
    """Whether an ICMP error may be sent about the datagram ``data`` (RFC 1122 §3.2.2,
    RFC 1812 §4.3.2.7)."""
    if f is None:
        f = peek(data, complete=False)
    if f.flags_frag & FRAG_OFFSET_MASK:
        return False  # not the first fragment
    if not _is_unicast_host(f.src):
        return False  # source does not define a single host
    if f.dst >> 28 == 0xE or f.dst == 0xFFFFFFFF:
        return False  # multicast or limited broadcast destination
    if f.protocol == ICMP_PROTOCOL:
        hlen = f.header_len
        if len(data) > hlen and data[hlen] in ICMP_ERROR_TYPES:
            return False  # an ICMP error message
    return True


def icmp_error(
    original: Bytes,
    icmp_type: int,
    code: int,
    src: IPv4Address,
    *,
    rest: int = 0,
    identification: int = 0,
    ttl: int = DEFAULT_TTL,
) -> bytes | None:
    """An IPv4 packet from ``src`` to the original sender carrying an ICMP error of
    ``icmp_type``/``code`` about ``original`` (whose header need not be followed by the
    whole datagram). ``rest`` is the 32-bit word after the checksum. TOS 0 (RFC 1349
    §5.1). ``None`` if no error may be sent."""
    f = peek(original, complete=False)
    if not may_send_error(original, f):
        return None
    quote = bytes(original[: min(len(original), f.total_length, MAX_ICMP_ERROR_PACKET - 28)])
    icmp = bytearray(_ICMP_HDR.pack(icmp_type, code, 0, rest & 0xFFFFFFFF))
    icmp += quote
    csum = internet_checksum(icmp)
    icmp[2] = csum >> 8
    icmp[3] = csum & 0xFF
    total = IPV4_HEADER_LEN + len(icmp)
    hdr = bytearray(
        HEADER.pack(0x45, 0, total, identification, 0, ttl, ICMP_PROTOCOL, 0, int(src), f.src)
    )
    csum = internet_checksum(hdr)
    hdr[10] = csum >> 8
    hdr[11] = csum & 0xFF
    return bytes(hdr + icmp)


def fragmentation_needed(
    inner: Bytes,
    tunnel_mtu: int,
    src: IPv4Address,
    *,
    overhead: int = IPIP_OVERHEAD,
    identification: int = 0,
) -> bytes | None:
    """The ICMP Destination Unreachable / "fragmentation needed and DF set" (type 3,
    code 4) to send back to the source of ``inner`` when it has DF set and, with the
    tunnel ``overhead``, exceeds ``tunnel_mtu``; ``None`` when it fits, DF is clear or no
    error may be sent. The Next-Hop MTU is ``tunnel_mtu - overhead``: "the MTU of the
    tunnel minus the size of the encapsulating IP header" (RFC 2003 §5.1; field per
    RFC 1191 §4)."""
    f = peek(inner, complete=False)
    if not f.flags_frag & DF_MASK or f.total_length + overhead <= tunnel_mtu:
        return None
    next_hop = max(tunnel_mtu - overhead, 0)
    return icmp_error(
        inner,
        DEST_UNREACHABLE,
        FRAGMENTATION_NEEDED,
        src,
        rest=next_hop & 0xFFFF,
        identification=identification,
    )


def time_exceeded(inner: Bytes, src: IPv4Address, *, identification: int = 0) -> bytes | None:
    """ICMP Time Exceeded, TTL exceeded in transit (type 11, code 0), for a datagram whose
    TTL ran out at encapsulation (RFC 2003 §3.1: it "SHOULD be returned to the sender")."""
    return icmp_error(
        inner, TIME_EXCEEDED, TTL_EXCEEDED_IN_TRANSIT, src, identification=identification
    )


def destination_unreachable(
    inner: Bytes, code: int, src: IPv4Address, *, identification: int = 0
) -> bytes | None:
    """ICMP Destination Unreachable (type 3) with ``code`` about ``inner``."""
    return icmp_error(inner, DEST_UNREACHABLE, code, src, identification=identification)
