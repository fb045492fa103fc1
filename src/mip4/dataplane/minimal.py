"""Minimal encapsulation (RFC 2004 §3).

The original IP header is kept and modified in place (in the copy): Protocol := 55,
Destination := tunnel exit, Source := encapsulator when the encapsulator is not the original
source, Total Length += 8 or 12, checksum recomputed; the minimal forwarding header follows
the (unchanged) options. The TTL is not changed by encapsulation itself (RFC 2004 §3), but a
forwarding encapsulator decrements it as normal forwarding does.
"""

from __future__ import annotations

from mip4.wire.ip import Bytes, internet_checksum
from mip4.wire.packets import set_header_checksum
from mip4.wire.tunnel import (
    MINIMAL,
    MINIMAL_LEN,
    MINIMAL_LEN_WITH_SOURCE,
    MINIMAL_PROTOCOL,
    MinimalForwardingHeader,
)

from .common import (
    Decapsulated,
    Tunnel,
    check_inner,
    check_outer,
    decapsulated,
    is_fragment,
    outer_df,
)
from .errors import DropReason, TunnelError

_S = 0x80


def encapsulate_minimal(
    inner: Bytes,
    tunnel: Tunnel,
    *,
    forwarding: bool = True,
    mtu: int | None = None,
) -> bytearray:
    """Minimally encapsulate ``inner`` towards ``tunnel.dst`` (RFC 2004 §3).

    Raises :class:`TunnelError` for a fragment ("Minimal encapsulation MUST NOT be used when
    an original datagram is already fragmented", RFC 2004 §3), for the RFC 2003 loop and
    TTL rules, or :class:`PacketTooBig` when DF is set and the result exceeds ``mtu``."""
    f, inner = check_inner(inner, tunnel, forwarding)
    if is_fragment(f):
        raise TunnelError(
            DropReason.FRAGMENT, "minimal encapsulation of a fragment (RFC 2004 §3 MUST NOT)"
        )
    # RFC 2004 §3: S set, and the original source carried, only if the encapsulator is not
    # the original source.
    with_source = f.src != tunnel.src_int
    n = MINIMAL_LEN_WITH_SOURCE if with_source else MINIMAL_LEN
    outer_df(f, tunnel, n, mtu)  # MTU and size checks; the DF bit itself is left as it is
    hlen = f.header_len
    total = f.total_length + n
    out = bytearray(total)
    out[:hlen] = inner[:hlen]
    fwd = bytearray(n)
    MINIMAL.pack_into(fwd, 0, f.protocol, _S if with_source else 0, 0, f.dst)
    if with_source:
        fwd[8:12] = inner[12:16]
    csum = internet_checksum(fwd)  # RFC 2004 §3: over the forwarding header only
    fwd[2] = csum >> 8
    fwd[3] = csum & 0xFF
    out[hlen : hlen + n] = fwd
    out[hlen + n :] = inner[hlen:]
    out[2] = total >> 8
    out[3] = total & 0xFF
    if forwarding:
        out[8] = f.ttl - 1
    out[9] = MINIMAL_PROTOCOL
    if with_source:
        out[12:16] = tunnel.src_int.to_bytes(4, "big")
    out[16:20] = tunnel.dst_int.to_bytes(4, "big")
    set_header_checksum(out, hlen)
    return out


def decapsulate_minimal(packet: Bytes) -> Decapsulated:
    """Restore the original datagram from a minimally encapsulated one (RFC 2004 §3): the
    forwarding header's fields go back into the IP header, the header is removed, Total
    Length decremented and the checksum recomputed. Checks the outer header, protocol 55,
    the forwarding header checksum (DecodeError), and an inner TTL > 0."""
    f, view = check_outer(packet, MINIMAL_PROTOCOL, "minimal encapsulation")
    hlen = f.header_len
    fwd = MinimalForwardingHeader.decode(view, hlen)
    n = fwd.header_len
    total = f.total_length - n
    if f.ttl == 0:
        raise TunnelError(DropReason.TTL_EXPIRED, "TTL is 0 after decapsulation")
    out = bytearray(total)
    out[:hlen] = view[:hlen]
    out[hlen:] = view[hlen + n :]
    out[2] = total >> 8
    out[3] = total & 0xFF
    out[9] = fwd.protocol
    if fwd.original_source is not None:
        out[12:16] = view[hlen + 8 : hlen + 12]
    out[16:20] = view[hlen + 4 : hlen + 8]
    set_header_checksum(out, hlen)
    return decapsulated(f.src, f.dst, out)


__all__ = ["decapsulate_minimal", "encapsulate_minimal"]
