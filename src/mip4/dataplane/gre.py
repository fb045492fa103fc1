"""GRE encapsulation (RFC 2784, with the key and sequence number of RFC 2890) of IPv4
packets (Protocol Type 0x0800), used by Mobile IP when the G bit is negotiated
(RFC 5944 §3.3; GRE key: RFC 6245)."""

from __future__ import annotations

import struct

from mip4.wire.ip import Bytes, internet_checksum
from mip4.wire.tunnel import GRE_C, GRE_K, GRE_PROTO_IPV4, GRE_PROTOCOL, GRE_S, GREHeader

from .common import (
    IPV4_HEADER_LEN,
    Decapsulated,
    Tunnel,
    build_outer,
    check_inner,
    check_inner_received,
    check_outer,
    decapsulated,
    outer_df,
)
from .errors import DropReason, TunnelError

_U32 = struct.Struct("!I")
_BASE = struct.Struct("!HH")


def gre_header(tunnel: Tunnel, sequence: int | None = None) -> bytes:
    """The GRE header for ``tunnel`` with a zero checksum field (filled in later)."""
    key = tunnel.gre_key
    word = (
        (GRE_C if tunnel.gre_checksum else 0)
        | (0 if key is None else GRE_K)
        | (0 if sequence is None else GRE_S)
    )
    hdr = _BASE.pack(word, GRE_PROTO_IPV4)
    if tunnel.gre_checksum:
        hdr += b"\0\0\0\0"  # Checksum, Reserved1 (RFC 2784 §2.5, §2.6)
    if key is not None:
        hdr += _U32.pack(key)  # RFC 2890 §2.1
    if sequence is not None:
        hdr += _U32.pack(sequence & 0xFFFFFFFF)  # RFC 2890 §2.2
    return hdr


def encapsulate_gre(
    inner: Bytes,
    tunnel: Tunnel,
    *,
    forwarding: bool = True,
    identification: int = 0,
    mtu: int | None = None,
    sequence: int | None = None,
) -> bytearray:
    """Outer IPv4 (protocol 47) + GRE header + ``inner``. The outer header follows the
    RFC 2003 §3.1 rules as for IP in IP (TOS and DF copied, TTL ``tunnel.ttl``; inner TTL
    decremented when ``forwarding``). With ``tunnel.gre_checksum`` the checksum covers the
    GRE header and the payload as sent (RFC 2784 §2.5)."""
    f, inner = check_inner(inner, tunnel, forwarding)
    gre = gre_header(tunnel, sequence)
    df = outer_df(f, tunnel, IPV4_HEADER_LEN + len(gre), mtu)
    out = build_outer(tunnel, f, inner, GRE_PROTOCOL, gre, df, identification, forwarding)
    if tunnel.gre_checksum:
        csum = internet_checksum(memoryview(out)[IPV4_HEADER_LEN:])
        out[IPV4_HEADER_LEN + 4] = csum >> 8
        out[IPV4_HEADER_LEN + 5] = csum & 0xFF
    return out


def decapsulate_gre_payload(view: memoryview, pos: int) -> tuple[GREHeader, int]:
    """Decode the GRE header at ``view[pos:]`` (checksum verified over the rest of
    ``view``), require an IPv4 payload and a valid inner packet; return the header and the
    inner packet's offset."""
    gre = GREHeader.decode(view, pos)
    if gre.protocol_type != GRE_PROTO_IPV4:
        raise TunnelError(
            DropReason.PROTOCOL, f"GRE protocol type {gre.protocol_type:#06x}, expected 0x0800"
        )
    start = pos + gre.header_len
    check_inner_received(view, start)
    return gre, start


def decapsulate_gre(packet: Bytes) -> Decapsulated:
    """Check a GRE packet (outer header, protocol 47, GRE header per RFC 2784 §2.3 and its
    checksum, protocol type IPv4, a valid inner packet with TTL > 0) and return the inner
    packet as a view into ``packet`` with the key and sequence number, if present. Ordering
    by sequence number (RFC 2890 §2.2) would need per-tunnel state; nothing here keeps it
    (RFC 2890 §2.2 makes in-order delivery optional)."""
    f, view = check_outer(packet, GRE_PROTOCOL, "GRE")
    gre, start = decapsulate_gre_payload(view, f.header_len)
    return decapsulated(f.src, f.dst, view[start:], gre.key, gre.sequence)
