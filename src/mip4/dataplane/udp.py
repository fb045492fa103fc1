"""UDP tunnelling of data packets (RFC 3519 §3.3): the UDP payload is the 4-byte MIP tunnel
data header -- Type 4, Next Header (4 IP in IP, 47 GRE), Reserved(2) -- followed by the
tunnelled packet (or a GRE header and the packet). The outer IPv4/UDP headers (port 434)
are built by the kernel's UDP socket, so only the payload is produced and consumed here.

Minimal encapsulation (Next Header 55) is refused: the minimal forwarding header restores
fields into an IP header that the UDP socket does not hand over.

Nothing in the daemons uses this module yet: it is kept, with its tests, for the NAT-traversal
work (RFC 3519 UDP tunnelling behind a NAT), which will carry data packets this way.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from mip4.wire.errors import DecodeError
from mip4.wire.ip import Bytes
from mip4.wire.tunnel import GRE_PROTOCOL, MINIMAL_PROTOCOL

from .common import (
    IPV4_HEADER_LEN,
    Decapsulated,
    Tunnel,
    check_inner,
    check_inner_received,
    decrement_ttl,
    outer_df,
)
from .errors import DropReason, TunnelError
from .gre import decapsulate_gre_payload, gre_header

TUNNEL_DATA_TYPE = 4  # RFC 3519 §3.3, Mobile IP message type 4
NEXT_HEADER_IPIP = 4
UDP_HEADER_LEN = 8
TUNNEL_DATA_HEADER_LEN = 4
#: outer IPv4 + UDP + tunnel data header
UDP_OVERHEAD = IPV4_HEADER_LEN + UDP_HEADER_LEN + TUNNEL_DATA_HEADER_LEN


def encapsulate_udp(
    inner: Bytes,
    tunnel: Tunnel,
    *,
    forwarding: bool = True,
    mtu: int | None = None,
    next_header: int = NEXT_HEADER_IPIP,
    sequence: int | None = None,
) -> bytearray:
    """The UDP payload that tunnels ``inner`` to ``tunnel.dst`` (RFC 3519 §3.3). The RFC
    2003 rules on the inner packet apply (loop check, TTL decrement when ``forwarding``,
    the tunnel-MTU check with ``PacketTooBig``). ``next_header`` 47 inserts a GRE header
    (``tunnel.gre_key``, ``sequence``; no checksum). The outer DF bit is the UDP socket's
    business (IP_MTU_DISCOVER)."""
    if next_header == NEXT_HEADER_IPIP:
        extra = b""
    elif next_header == GRE_PROTOCOL:
        if tunnel.gre_checksum:
            raise TunnelError(DropReason.UNSUPPORTED, "GRE checksum inside UDP tunnelling")
        extra = gre_header(tunnel, sequence)
    else:
        raise TunnelError(DropReason.UNSUPPORTED, f"UDP tunnelling with next header {next_header}")
    f, inner = check_inner(inner, tunnel, forwarding)
    outer_df(f, tunnel, UDP_OVERHEAD + len(extra), mtu)
    start = TUNNEL_DATA_HEADER_LEN + len(extra)
    out = bytearray(start + f.total_length)
    out[0] = TUNNEL_DATA_TYPE
    out[1] = next_header
    # out[2:4]: Reserved, sent as zero
    out[TUNNEL_DATA_HEADER_LEN:start] = extra
    out[start:] = inner
    if forwarding:
        decrement_ttl(out, start, f)
    return out


def decapsulate_udp(payload: Bytes, src: IPv4Address, dst: IPv4Address) -> Decapsulated:
    """Check a UDP tunnel data payload received from ``src`` on our address ``dst`` and
    return the inner packet as a view into ``payload``. The Reserved field is ignored.
    Raises :class:`DecodeError` for a malformed payload or one of another message type,
    :class:`TunnelError` for an unsupported next header or an inner TTL of 0."""
    view = memoryview(payload)
    if len(view) < TUNNEL_DATA_HEADER_LEN:
        raise DecodeError(
            f"tunnel data: {len(view)} byte(s), need {TUNNEL_DATA_HEADER_LEN}", len(view)
        )
    if view[0] != TUNNEL_DATA_TYPE:
        raise DecodeError(f"not a tunnel data message (type {view[0]})", 0)
    nh = view[1]
    if nh == NEXT_HEADER_IPIP:
        check_inner_received(view, TUNNEL_DATA_HEADER_LEN)
        return Decapsulated(src, dst, view[TUNNEL_DATA_HEADER_LEN:])
    if nh == GRE_PROTOCOL:
        gre, start = decapsulate_gre_payload(view, TUNNEL_DATA_HEADER_LEN)
        return Decapsulated(src, dst, view[start:], gre.key, gre.sequence)
    if nh == MINIMAL_PROTOCOL:
        raise TunnelError(DropReason.UNSUPPORTED, "minimal encapsulation inside UDP")
    raise TunnelError(DropReason.PROTOCOL, f"tunnel data next header {nh}")
