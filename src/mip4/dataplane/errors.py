"""Why the data plane refused a packet.

Malformed bytes raise the codec's :class:`~mip4.wire.errors.DecodeError` (with the offset
into the packet handed in). A well-formed packet that the tunnelling rules forbid to
encapsulate or deliver raises :class:`TunnelError`, whose :attr:`~TunnelError.reason` lets
the I/O shell count drops by cause; :class:`PacketTooBig` carries the next-hop MTU to put
in the ICMP "fragmentation needed" message (see :func:`mip4.dataplane.icmp.fragmentation_needed`).
"""

from __future__ import annotations

from enum import Enum

from mip4.errors import Mip4Error


class DropReason(Enum):
    LOOP = "loop"  #: RFC 2003 §3.2: source is the tunnel exit or one of our addresses
    TTL_EXPIRED = "ttl-expired"  #: RFC 2003 §3.1: TTL would reach 0 / inner TTL is 0
    FRAGMENT = "fragment"  #: RFC 2004 §3: minimal encapsulation of a fragment; or an
    #: outer fragment handed to the decapsulator (reassemble first)
    TOO_BIG = "too-big"  #: RFC 2003 §5.1: larger than the tunnel MTU with DF set
    PROTOCOL = "protocol"  #: the outer protocol / next header is not the expected one
    UNSUPPORTED = "unsupported"  #: a combination this data plane does not implement
    TOO_LONG = "too-long"  #: the result would exceed 65535 bytes
    UNREACHABLE = "unreachable"  #: RFC 2003 §5: tunnel exit currently unreachable


class TunnelError(Mip4Error, ValueError):
    """A well-formed packet the tunnelling rules refuse."""

    def __init__(self, reason: DropReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason


class PacketTooBig(TunnelError):
    """RFC 2003 §5.1: the inner packet plus the tunnel overhead exceeds the tunnel MTU and
    its DF bit is set. ``next_hop_mtu`` = tunnel MTU - encapsulation overhead, the value for
    the ICMP "fragmentation needed" message sent back to the source."""

    def __init__(self, length: int, tunnel_mtu: int, next_hop_mtu: int) -> None:
        super().__init__(
            DropReason.TOO_BIG,
            f"{length}-byte packet with DF set does not fit the tunnel MTU {tunnel_mtu} "
            f"(next-hop MTU {next_hop_mtu})",
        )
        self.tunnel_mtu = tunnel_mtu
        self.next_hop_mtu = next_hop_mtu
