"""The pure data plane: encapsulation and decapsulation of IPv4 packets for Mobile IP
tunnels -- IP in IP (RFC 2003), minimal encapsulation (RFC 2004), GRE (RFC 2784/2890) and
UDP tunnelling (RFC 3519) -- plus the ICMP errors of RFC 2003 §4--§5 and the table that says
which tunnel a datagram takes (:mod:`mip4.dataplane.table`).

Theory of operation
-------------------
Functions take bytes and return bytes; nothing here does I/O or reads a clock. A
:class:`Tunnel` names the entry point (``src``), the exit point (``dst``), the outer TTL
(default 64) and the options. ``encapsulate_*(inner, tunnel,
forwarding=True, mtu=None, ...)`` apply, in this order:

1. the inner packet is checked (version, lengths, header checksum) -> ``DecodeError``;
2. loop avoidance, RFC 2003 §3.2: never tunnel a datagram whose source is the tunnel exit
   point, nor (when forwarding) one whose source is one of ``tunnel.own_addresses``
   -> ``TunnelError(LOOP)``;
3. TTL, RFC 2003 §3.1: when forwarding, the inner TTL is decremented in the copy and a
   datagram whose TTL would reach 0 is refused; a TTL-0 datagram is never encapsulated
   -> ``TunnelError(TTL_EXPIRED)`` (send :func:`time_exceeded`);
4. tunnel MTU, RFC 2003 §5.1: a DF datagram that does not fit ``mtu`` raises
   :class:`PacketTooBig` carrying the next-hop MTU (send :func:`fragmentation_needed`); a
   non-DF one goes out with DF clear in the outer header so it can be fragmented;
5. the outer header: TOS copied, DF copied from the inner header (or forced with
   ``tunnel.set_df``), TTL ``tunnel.ttl``, ID ``identification`` (RFC 2003 §3.1).

``decapsulate_*`` check the outer header (checksum, protocol, not a fragment), the tunnel
header (minimal header checksum, GRE flags/version/checksum) and the inner packet (valid,
exactly filling the payload, TTL > 0 -- RFC 2003 §3.1 MUST discard) and return
:class:`Decapsulated`. Whether the outer source is a peer we accept (RFC 2003 §6.2) is the
caller's decision.

Copies (per packet; the hot path)
---------------------------------
* IP in IP, GRE, UDP encapsulation: exactly one copy of the inner packet, into the
  ``bytearray`` returned (outer header + tunnel header + inner written in place; the TTL
  decrement and checksum update are done in that buffer, RFC 1624). The 20-byte header
  is additionally sliced once for its checksum. A GRE checksum reads the payload once more.
* Minimal encapsulation and decapsulation: one copy (the header changes and a header is
  inserted or removed), plus small header slices.
* IP in IP, GRE, UDP decapsulation: no copy; ``inner`` is a ``memoryview`` into the buffer
  given (valid while that buffer is not reused -- copy it with ``bytes()`` if the receive
  buffer is recycled). The inner header checksum is verified over a 20--60-byte slice.
* Input may be ``bytes``, ``bytearray`` or ``memoryview``; a packet longer than its Total
  Length is trimmed by a zero-copy ``memoryview`` slice.
"""

from .common import DEFAULT_TTL, Decapsulated, Encapsulation, Tunnel
from .errors import DropReason, PacketTooBig, TunnelError
from .gre import decapsulate_gre, encapsulate_gre
from .icmp import (
    destination_unreachable,
    fragmentation_needed,
    icmp_error,
    may_send_error,
    time_exceeded,
)
from .ipip import IPIP_OVERHEAD, decapsulate_ipip, encapsulate_ipip
from .minimal import decapsulate_minimal, encapsulate_minimal
from .table import LinkDelivery, TunnelEntry, TunnelTable, codecs
from .udp import UDP_OVERHEAD, decapsulate_udp, encapsulate_udp

__all__ = [
    "DEFAULT_TTL",
    "IPIP_OVERHEAD",
    "UDP_OVERHEAD",
    "Decapsulated",
    "DropReason",
    "Encapsulation",
    "LinkDelivery",
    "PacketTooBig",
    "Tunnel",
    "TunnelEntry",
    "TunnelError",
    "TunnelTable",
    "codecs",
    "decapsulate_gre",
    "decapsulate_ipip",
    "decapsulate_minimal",
    "decapsulate_udp",
    "destination_unreachable",
    "encapsulate_gre",
    "encapsulate_ipip",
    "encapsulate_minimal",
    "encapsulate_udp",
    "fragmentation_needed",
    "icmp_error",
    "may_send_error",
    "time_exceeded",
]
