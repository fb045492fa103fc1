"""IP in IP encapsulation (RFC 2003)."""

from __future__ import annotations

from mip4.wire.ip import Bytes

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

IPIP_PROTOCOL = 4  # RFC 2003 §3.1: outer Protocol field
IPIP_OVERHEAD = IPV4_HEADER_LEN


def encapsulate_ipip(
    inner: Bytes,
    tunnel: Tunnel,
    *,
    forwarding: bool = True,
    identification: int = 0,
    mtu: int | None = None,
) -> bytearray:
    """Encapsulate ``inner`` (a whole IPv4 packet) in an outer IPv4 header from
    ``tunnel.src`` to ``tunnel.dst`` (RFC 2003 §3.1).

    Outer TTL ``tunnel.ttl``; TOS and DF copied from the inner header; the inner TTL
    decremented when ``forwarding``. ``mtu`` is the tunnel MTU from the soft state (RFC 2003
    §5.1); a DF packet that does not fit raises :class:`PacketTooBig`. ``identification``
    is the outer IP ID: supply a counter when the outer packet may be fragmented.
    Raises :class:`TunnelError` (loop, TTL) or :class:`DecodeError` (malformed inner)."""
    f, inner = check_inner(inner, tunnel, forwarding)
    df = outer_df(f, tunnel, IPIP_OVERHEAD, mtu)
    return build_outer(tunnel, f, inner, IPIP_PROTOCOL, b"", df, identification, forwarding)


def decapsulate_ipip(packet: Bytes) -> Decapsulated:
    """Check an IP-in-IP packet (outer header valid, protocol 4, not a fragment; inner
    packet valid, filling the outer payload, TTL > 0) and return the inner packet as a
    view into ``packet`` (no copy)."""
    f, view = check_outer(packet, IPIP_PROTOCOL, "IP in IP")
    pos = f.header_len
    check_inner_received(view, pos)
    return decapsulated(f.src, f.dst, view[pos:])
