"""The tunnel description and the steps every encapsulation shares (RFC 2003 §3.1, §3.2,
§5.1): the inner-packet check, loop avoidance, the TTL rule, the tunnel-MTU check and the
outer IPv4 header."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address
from typing import NamedTuple

from mip4.wire.addr import ipv4_from_int
from mip4.wire.errors import DecodeError
from mip4.wire.ip import (
    DF_MASK,
    FRAG_OFFSET_MASK,
    HEADER,
    MF_MASK,
    Bytes,
    HeaderFields,
    checksum_adjust,
    peek,
)
from mip4.wire.packets import transport_checksum

from .errors import DropReason, PacketTooBig, TunnelError

#: RFC 2003 §3.1 leaves the outer TTL to the encapsulator ("a value appropriate for delivery
#: of the encapsulated datagram to the tunnel exit point"); 64 is the usual default.
DEFAULT_TTL = 64
IPV4_HEADER_LEN = 20
MAX_PACKET = 0xFFFF


class Encapsulation(IntEnum):
    """Tunnel encapsulations, numbered by the IP protocol of the outer header."""

    IPIP = 4  #: IP in IP, RFC 2003 (the default, RFC 5944 §3.8.3)
    GRE = 47  #: RFC 2784 (G bit)
    MINIMAL = 55  #: RFC 2004 (M bit)


@dataclass(frozen=True)
class Tunnel:
    """One tunnel as seen by its entry point.

    ``src`` is the encapsulator (tunnel entry point, e.g. the home agent) and ``dst`` the
    decapsulator (tunnel exit point, e.g. the care-of address). ``own_addresses`` are the
    encapsulating node's interface addresses, for the loop check of RFC 2003 §3.2.
    ``set_df`` sets DF in the outer header even when the inner header has it clear (RFC 2003
    §3.1 and §5.1 allow it, for tunnel path MTU discovery). ``gre_key`` and
    ``gre_checksum`` apply to GRE (RFC 2890 §2.1, RFC 2784 §2.5). Minimal encapsulation
    has no outer header, so ``ttl`` and ``set_df`` do not apply to it; with UDP tunnelling
    the kernel builds the outer header.
    """

    src: IPv4Address
    dst: IPv4Address
    ttl: int = DEFAULT_TTL
    set_df: bool = False
    own_addresses: frozenset[IPv4Address] = frozenset()
    gre_key: int | None = None
    gre_checksum: bool = False
    # integer forms, computed once
    src_int: int = field(init=False, repr=False, compare=False)
    dst_int: int = field(init=False, repr=False, compare=False)
    own_ints: frozenset[int] = field(init=False, repr=False, compare=False)
    #: the sum of the outer header's 16-bit words that do not vary per packet, by protocol
    _word_sums: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.ttl <= 255:
            raise ValueError(f"tunnel TTL {self.ttl} must be 1..255")
        if self.gre_key is not None and not 0 <= self.gre_key <= 0xFFFFFFFF:
            raise ValueError(f"GRE key {self.gre_key} must fit in 32 bits")
        src, dst = int(self.src), int(self.dst)
        object.__setattr__(self, "src_int", src)
        object.__setattr__(self, "dst_int", dst)
        object.__setattr__(self, "own_ints", frozenset(int(a) for a in self.own_addresses))
        base = 0x4500 + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
        object.__setattr__(self, "_word_sums", {p: base + (self.ttl << 8) + p for p in (4, 47, 55)})

    def outer_word_sum(self, protocol: int) -> int:
        s = self._word_sums.get(protocol)
        if s is None:
            s = self._word_sums[4] - 4 + protocol
        return s


class Decapsulated(NamedTuple):
    """What a decapsulator hands back: the outer addresses (to check that the tunnel comes
    from a peer we have a binding with, RFC 2003 §6.2) and the inner packet. ``inner`` is a
    ``memoryview`` into the received buffer when no bytes had to change (IP in IP, GRE,
    UDP), a new ``bytearray`` otherwise (minimal encapsulation). ``key`` and ``sequence``
    are the GRE fields, when present."""

    outer_src: IPv4Address
    outer_dst: IPv4Address
    inner: memoryview | bytearray
    key: int | None = None
    sequence: int | None = None


_tuple_new = tuple.__new__


def decapsulated(
    src: int,
    dst: int,
    inner: memoryview | bytearray,
    key: int | None = None,
    sequence: int | None = None,
) -> Decapsulated:
    """Build a :class:`Decapsulated` without the NamedTuple constructor's overhead."""
    return _tuple_new(Decapsulated, (ipv4_from_int(src), ipv4_from_int(dst), inner, key, sequence))


def check_inner(inner: Bytes, tunnel: Tunnel, forwarding: bool) -> tuple[HeaderFields, Bytes]:
    """Validate the packet to be tunnelled and apply the rules that do not depend on the
    encapsulation. Returns its header fields and the packet trimmed to Total Length."""
    f = peek(inner)  # version, IHL, lengths, checksum (RFC 1812 §5.2.2)
    if f.total_length != len(inner):
        inner = memoryview(inner)[: f.total_length]
    # RFC 2003 §3.2: "If the IP Source Address of the datagram matches ... the tunnel
    # destination ..., the router MUST NOT tunnel the datagram".
    if f.src == tunnel.dst_int:
        raise TunnelError(
            DropReason.LOOP, f"source {ipv4_from_int(f.src)} is the tunnel exit point"
        )
    # RFC 2003 §3.2: "If the IP Source Address of the datagram matches the router's own IP
    # address on any of its network interfaces, the router MUST NOT tunnel the datagram".
    # Only when forwarding: a datagram the node originates itself carries its own address.
    if forwarding and f.src in tunnel.own_ints:
        raise TunnelError(
            DropReason.LOOP, f"forwarded datagram has our own source {ipv4_from_int(f.src)}"
        )
    # RFC 2003 §3.1: the inner TTL is decremented when tunnelling as part of forwarding; if
    # it becomes 0 the datagram is discarded (Time Exceeded SHOULD be returned), and "an
    # encapsulator MUST NOT encapsulate a datagram with TTL = 0".
    if f.ttl <= (1 if forwarding else 0):
        raise TunnelError(
            DropReason.TTL_EXPIRED,
            f"inner TTL {f.ttl} {'would reach' if forwarding else 'is'} 0 (RFC 2003 §3.1)",
        )
    return f, inner


def outer_df(f: HeaderFields, tunnel: Tunnel, overhead: int, mtu: int | None) -> int:
    """The outer DF bit (as the flags word) after the tunnel-MTU check (RFC 2003 §3.1, §5.1).
    Raises :class:`PacketTooBig` for a DF packet that does not fit."""
    inner_df = f.flags_frag & DF_MASK
    size = f.total_length + overhead
    if size > MAX_PACKET:
        raise TunnelError(DropReason.TOO_LONG, f"encapsulated size {size} > 65535")
    if mtu is not None and size > mtu:
        if inner_df:
            # RFC 2003 §5.1: the sender learns "the MTU of the tunnel minus the size of the
            # encapsulating IP header".
            raise PacketTooBig(f.total_length, mtu, mtu - overhead)
        return 0  # let the outer packet be fragmented: the sender allowed fragmentation
    # RFC 2003 §3.1: DF copied from the inner header (MUST when set; MAY when clear).
    return DF_MASK if (inner_df or tunnel.set_df) else 0


def is_fragment(f: HeaderFields) -> bool:
    return bool(f.flags_frag & (MF_MASK | FRAG_OFFSET_MASK))


def decrement_ttl(buf: bytearray, pos: int, f: HeaderFields) -> None:
    """Decrement the TTL of the IPv4 header copied to ``buf[pos:]`` and patch its checksum
    incrementally (RFC 1624; RFC 2003 §3.1 / RFC 1812 §5.3.1)."""
    ttl = f.ttl
    buf[pos + 8] = ttl - 1
    old = (buf[pos + 10] << 8) | buf[pos + 11]
    new = checksum_adjust(old, (ttl << 8) | f.protocol, ((ttl - 1) << 8) | f.protocol)
    buf[pos + 10] = new >> 8
    buf[pos + 11] = new & 0xFF


def build_outer(
    tunnel: Tunnel,
    f: HeaderFields,
    inner: Bytes,
    protocol: int,
    extra: Bytes,
    df: int,
    identification: int,
    forwarding: bool,
) -> bytearray:
    """Outer IPv4 header + ``extra`` (a tunnel header) + a copy of ``inner`` -- the one copy
    an encapsulation makes. TOS is copied from the inner header (RFC 2003 §3.1). The
    identification is taken modulo 2**16, so a caller may pass a running counter."""
    n = len(extra)
    start = IPV4_HEADER_LEN + n
    size = start + f.total_length
    identification &= 0xFFFF
    out = bytearray(size)
    # The outer header checksum from the words' sum (RFC 1071), without reading it back.
    csum = tunnel.outer_word_sum(protocol) + f.tos + size + identification + df
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = (csum & 0xFFFF) + (csum >> 16)
    HEADER.pack_into(
        out,
        0,
        0x45,
        f.tos,
        size,
        identification,
        df,
        tunnel.ttl,
        protocol,
        ~csum & 0xFFFF,
        tunnel.src_int,
        tunnel.dst_int,
    )
    if n:
        out[IPV4_HEADER_LEN:start] = extra
    out[start:] = inner
    if forwarding:
        decrement_ttl(out, start, f)
    return out


def check_outer(packet: Bytes, protocol: int, name: str) -> tuple[HeaderFields, memoryview]:
    """Validate a received tunnel packet's outer header: well formed, checksum correct,
    the expected protocol, not a fragment. Returns its fields and a view bounded by its
    Total Length."""
    f = peek(packet)
    if f.protocol != protocol:
        raise TunnelError(
            DropReason.PROTOCOL, f"outer protocol {f.protocol}, expected {protocol} ({name})"
        )
    if is_fragment(f):
        raise TunnelError(
            DropReason.FRAGMENT, "outer packet is a fragment: reassemble before decapsulating"
        )
    return f, memoryview(packet)[: f.total_length]


def check_inner_received(view: memoryview, pos: int) -> HeaderFields:
    """The inner packet at ``view[pos:]`` of a decapsulated packet: a whole, valid IPv4
    packet exactly filling the rest, with TTL > 0 (RFC 2003 §3.1: "If, after decapsulation,
    the inner datagram has TTL = 0, the decapsulator MUST discard the datagram")."""
    f = peek(view, pos)
    if f.total_length != len(view) - pos:
        raise DecodeError(
            f"inner packet: total length {f.total_length}, {len(view) - pos} byte(s) carried",
            pos + 2,
        )
    if f.ttl == 0:
        raise TunnelError(DropReason.TTL_EXPIRED, "inner TTL is 0 after decapsulation")
    return f


#: transport protocols whose checksum covers a pseudo-header (RFC 768, RFC 9293 §3.1)
_PSEUDO_HEADER_PROTOCOLS = (6, 17)


def complete_transport_checksum(packet: bytearray) -> bool:
    """Fill in the UDP or TCP checksum of the IPv4 datagram ``packet`` from scratch.

    A datagram picked up from the link inside the sending host (AF_PACKET on a veth, with
    checksum offload) may carry only the pseudo-header part that the hardware was to
    complete; before such a datagram is tunnelled somewhere else it needs the real one.
    Returns False (and changes nothing) for another protocol, a fragment or a datagram too
    short for its header."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return False
    ihl = (packet[0] & 0x0F) * 4
    total = int.from_bytes(packet[2:4], "big")
    proto = packet[9]
    frag = int.from_bytes(packet[6:8], "big") & 0x3FFF
    if proto not in _PSEUDO_HEADER_PROTOCOLS or frag or ihl < 20 or total > len(packet):
        return False
    segment = packet[ihl:total]
    field = 6 if proto == 17 else 16
    if len(segment) < field + 2:
        return False
    segment[field : field + 2] = b"\0\0"
    csum = transport_checksum(packet[12:16], packet[16:20], proto, segment)
    packet[ihl + field : ihl + field + 2] = csum.to_bytes(2, "big")
    return True
