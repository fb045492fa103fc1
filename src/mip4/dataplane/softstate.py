"""Per-tunnel soft state kept by the encapsulator (RFC 2003 §5), and GRE sequence-number
ordering (RFC 2890 §2.2).

Theory of operation
-------------------
:class:`TunnelSoftState` holds what RFC 2003 §5 asks an encapsulator to remember about a
tunnel -- its MTU, its path length (TTL) and whether its exit is reachable -- and is driven
sans-IO: ``now`` is a parameter of every call and :meth:`~TunnelSoftState.next_deadline`
says when something expires.

* :meth:`~TunnelSoftState.on_icmp_error` takes an ICMP error received from inside the tunnel
  (a whole IPv4 packet), updates the state, and returns the ICMP error to relay to the
  original sender, when RFC 2003 §4 says to relay one and the router quoted enough of the
  datagram to rebuild it (the inner header and 8 bytes; RFC 2003 §5 notes that RFC 792
  routers quote too little).
* :meth:`~TunnelSoftState.check` runs before each encapsulation. A DF datagram larger than
  the tunnel MTU allows is dropped with a "fragmentation needed" reply (RFC 2003 §5.1).
  Otherwise, "if the datagram would violate the state of the tunnel ... the encapsulator
  sends an ICMP error message back to the sender of the original datagram, but also
  encapsulates the datagram and forwards it into the tunnel" (RFC 2003 §5): Host
  Unreachable while the exit is marked unreachable, Time Exceeded when the datagram's TTL is
  below the tunnel's path length.

A learnt MTU is forgotten after ``mtu_lifetime`` (RFC 1191 §6.3: not sooner than 10
minutes), and reachability after ``unreachable_lifetime``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from mip4.wire.errors import DecodeError
from mip4.wire.ip import DF_MASK, Bytes, internet_checksum, peek
from mip4.wire.tunnel import GRE_PROTOCOL, GREHeader

from .common import Tunnel
from .icmp import (
    DEST_UNREACHABLE,
    FRAGMENTATION_NEEDED,
    HOST_UNREACHABLE,
    ICMP_PROTOCOL,
    NET_UNREACHABLE,
    PROTOCOL_UNREACHABLE,
    TIME_EXCEEDED,
    fragmentation_needed,
    icmp_error,
    time_exceeded,
)
from .ipip import IPIP_OVERHEAD, IPIP_PROTOCOL

SOURCE_QUENCH = 4
REDIRECT = 5
PARAMETER_PROBLEM = 12
MIN_MTU = 68  # RFC 791: every IPv4 link carries 68 bytes
#: RFC 1191 §7 plateau table, for routers that report a next-hop MTU of 0
PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)


def _plateau_below(length: int) -> int:
    for p in PLATEAUS:
        if p < length:
            return p
    return MIN_MTU


class Verdict(NamedTuple):
    """The soft-state check's answer: whether to encapsulate, and an ICMP error (a whole
    IPv4 packet) to send to the original sender, if any."""

    forward: bool
    icmp: bytes | None = None


FORWARD = Verdict(True)


@dataclass
class TunnelSoftState:
    """RFC 2003 §5 soft state of one tunnel. ``link_mtu`` is the MTU assumed while nothing
    has been learnt; ``overhead`` the encapsulation's header bytes (20 for IP in IP)."""

    tunnel: Tunnel
    link_mtu: int = 1500
    overhead: int = IPIP_OVERHEAD
    mtu_lifetime: float = 600.0
    unreachable_lifetime: float = 30.0
    #: path length of the tunnel (RFC 2003 §5), if known
    path_ttl: int | None = None
    mtu: int = field(init=False)
    mtu_expires: float | None = field(default=None, init=False)
    unreachable_until: float | None = field(default=None, init=False)
    congested_until: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.mtu = self.link_mtu

    # -- time ------------------------------------------------------------------------------
    def _expire(self, now: float) -> None:
        if self.mtu_expires is not None and now >= self.mtu_expires:
            self.mtu = self.link_mtu
            self.mtu_expires = None
        if self.unreachable_until is not None and now >= self.unreachable_until:
            self.unreachable_until = None
        if self.congested_until is not None and now >= self.congested_until:
            self.congested_until = None

    def next_deadline(self) -> float | None:
        times = [
            t
            for t in (self.mtu_expires, self.unreachable_until, self.congested_until)
            if t is not None
        ]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._expire(now)

    def reachable(self, now: float) -> bool:
        self._expire(now)
        return self.unreachable_until is None

    def congested(self, now: float) -> bool:
        self._expire(now)
        return self.congested_until is not None

    def current_mtu(self, now: float) -> int:
        self._expire(now)
        return self.mtu

    # -- before encapsulating --------------------------------------------------------------
    def check(self, inner: Bytes, now: float, *, identification: int = 0) -> Verdict:
        """Apply the soft state to a datagram about to enter the tunnel (RFC 2003 §5,
        §5.1)."""
        self._expire(now)
        f = peek(inner)
        src = self.tunnel.src
        if f.total_length + self.overhead > self.mtu and f.flags_frag & DF_MASK:
            return Verdict(
                False,
                fragmentation_needed(
                    inner, self.mtu, src, overhead=self.overhead, identification=identification
                ),
            )
        if self.unreachable_until is not None:
            return Verdict(
                True,
                icmp_error(
                    inner, DEST_UNREACHABLE, HOST_UNREACHABLE, src, identification=identification
                ),
            )
        if self.path_ttl is not None and f.ttl < self.path_ttl:
            return Verdict(True, time_exceeded(inner, src, identification=identification))
        return FORWARD

    # -- ICMP from inside the tunnel -------------------------------------------------------
    def on_icmp_error(self, packet: Bytes, now: float, *, identification: int = 0) -> bytes | None:
        """Process an ICMP error (a whole IPv4 packet) received by the encapsulator. If it
        concerns a datagram this tunnel sent (the quoted header is from ``tunnel.src`` to
        ``tunnel.dst``), update the soft state and return the ICMP error to relay to the
        original sender, or ``None``. Raises :class:`DecodeError` for malformed input."""
        self._expire(now)
        f = peek(packet)
        if f.protocol != ICMP_PROTOCOL:
            raise DecodeError(f"not an ICMP packet (protocol {f.protocol})", 9)
        pos = f.header_len
        icmp = memoryview(packet)[pos : f.total_length]
        if len(icmp) < 8 + 20:
            raise DecodeError(f"ICMP error: {len(icmp)} byte(s), need 28", pos)
        if internet_checksum(icmp) != 0:
            raise DecodeError("ICMP checksum mismatch", pos + 2)
        itype, code = icmp[0], icmp[1]
        quoted = icmp[8:]
        q = peek(quoted, verify=False, complete=False)
        if q.src != self.tunnel.src_int or q.dst != self.tunnel.dst_int:
            return None  # not about this tunnel
        src = self.tunnel.src
        if itype == DEST_UNREACHABLE:
            if code == FRAGMENTATION_NEEDED:
                reported = (icmp[6] << 8) | icmp[7]  # RFC 1191 §4: Next-Hop MTU
                mtu = reported if reported >= MIN_MTU else _plateau_below(q.total_length)
                if mtu < self.mtu:
                    self.mtu = mtu
                    self.mtu_expires = now + self.mtu_lifetime
                inner = self._quoted_inner(quoted, q.protocol, q.header_len)
                if inner is None:
                    return None
                # RFC 2003 §4.1: Datagram Too Big MUST be relayed; RFC 2003 §5.1: with the
                # tunnel MTU minus the encapsulating header.
                return fragmentation_needed(
                    inner, self.mtu, src, overhead=self.overhead, identification=identification
                )
            self.unreachable_until = now + self.unreachable_lifetime
            if code == HOST_UNREACHABLE:
                relay = HOST_UNREACHABLE  # RFC 2003 §4.1: SHOULD relay Host Unreachable
            elif code in (NET_UNREACHABLE, PROTOCOL_UNREACHABLE):
                relay = NET_UNREACHABLE  # RFC 2003 §4.1: Code MUST be 0 (we do not know
                # that the original destination is on our network)
            else:
                # Port Unreachable MUST NOT be relayed, Source Route Failed is ours to
                # handle (RFC 2003 §4.1); other codes are not relayed.
                return None
            inner = self._quoted_inner(quoted, q.protocol, q.header_len)
            if inner is None:
                return None
            return icmp_error(inner, DEST_UNREACHABLE, relay, src, identification=identification)
        if itype == TIME_EXCEEDED:
            # RFC 2003 §4.4: MUST be reported to the original sender as Host Unreachable.
            self.unreachable_until = now + self.unreachable_lifetime
            inner = self._quoted_inner(quoted, q.protocol, q.header_len)
            if inner is None:
                return None
            return icmp_error(
                inner, DEST_UNREACHABLE, HOST_UNREACHABLE, src, identification=identification
            )
        if itype == SOURCE_QUENCH:
            # RFC 2003 §4.2 / §5.2: not relayed; reflected in the soft state.
            self.congested_until = now + self.unreachable_lifetime
            return None
        # Redirect: MUST NOT be relayed (RFC 2003 §4.3). Parameter Problem: not relayed
        # (RFC 2003 §4.5 only allows it for fields copied from the original). Others: not
        # errors about the tunnel.
        return None

    @staticmethod
    def _quoted_inner(quoted: memoryview, protocol: int, hlen: int) -> memoryview | None:
        """The inner datagram inside the quoted outer one, if the router quoted its header
        and at least 8 bytes of its data."""
        if protocol == IPIP_PROTOCOL:
            start = hlen
        elif protocol == GRE_PROTOCOL:
            try:
                gre = GREHeader.decode(quoted, hlen, verify=False)
            except DecodeError:
                return None
            start = hlen + gre.header_len
        else:  # minimal encapsulation (55) or something else: not rebuilt
            return None
        try:
            inner = peek(quoted, start, verify=False, complete=False)
        except DecodeError:
            return None
        if len(quoted) - start < inner.header_len + 8:
            return None
        return quoted[start:]


class GRESequenceWindow:
    """In-order delivery for a GRE tunnel with sequence numbers (RFC 2890 §2.2): a packet
    is accepted when its sequence number is greater than the last one accepted in
    sequence-number arithmetic modulo 2**32 (RFC 1982); duplicates and out-of-order packets
    are discarded. Packets are not buffered (the optional OUTOFORDER_TIMER buffering of
    RFC 2890 §2.2 is not implemented)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: int | None = None

    def accept(self, sequence: int) -> bool:
        last = self.last
        if last is None or 0 < ((sequence - last) & 0xFFFFFFFF) < 0x80000000:
            self.last = sequence
            return True
        return False
