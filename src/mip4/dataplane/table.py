"""Which tunnel each datagram takes: the forwarder's table (:class:`TunnelTable`) and the
encapsulation functions by outer IP protocol (:func:`codecs`).

Theory of operation
-------------------
The executor in :mod:`mip4.io` keeps the table in step with the engines' actions (a binding
installed or removed, a reverse tunnel, a visitor); :class:`mip4.io.forwarder.Forwarder`
looks each datagram up in it: the inner **destination** in ``bindings`` (home agent, one
copy per simultaneous binding, RFC 5944 §3.6.1.3), else the inner **source** in ``reverse``
(RFC 3024), and after decapsulation the inner destination in ``visitors`` (foreign agent,
RFC 5944 §4.2.2). ``peers`` counts the tunnel exits we accept datagrams from (RFC 2003 §6.2).
Addresses are keys as integers, so a lookup costs one ``int.from_bytes``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mip4.wire.ip import Bytes

from .common import Decapsulated, Encapsulation, Tunnel
from .gre import decapsulate_gre, encapsulate_gre
from .ipip import decapsulate_ipip, encapsulate_ipip
from .minimal import decapsulate_minimal, encapsulate_minimal

Encap = Callable[[Bytes, Tunnel, int | None], bytearray]
Decap = Callable[[Bytes], Decapsulated]


def codecs() -> dict[int, tuple[Encap, Decap]]:
    """Encapsulation functions by outer IP protocol."""
    table: dict[int, tuple[Encap, Decap]] = {
        Encapsulation.IPIP: (
            lambda inner, t, mtu: encapsulate_ipip(inner, t, forwarding=False, mtu=mtu),
            decapsulate_ipip,
        ),
        Encapsulation.MINIMAL: (
            lambda inner, t, mtu: encapsulate_minimal(inner, t, forwarding=False, mtu=mtu),
            decapsulate_minimal,
        ),
        Encapsulation.GRE: (
            lambda inner, t, mtu: encapsulate_gre(inner, t, forwarding=False, mtu=mtu),
            decapsulate_gre,
        ),
    }
    return table


@dataclass(frozen=True)
class TunnelEntry:
    """One way into the tunnel: the dataplane :class:`Tunnel` and its encapsulation."""

    tunnel: Tunnel
    encapsulation: Encapsulation = Encapsulation.IPIP
    #: what the entry's maker recognises it by, not compared (the executor: everything a
    #: binding asked of the kernel but its care-of address, issue 13)
    tag: object = field(default=None, compare=False, repr=False)
    #: ``str(tunnel.dst)``, the raw socket's destination (computed once)
    dst: str = field(init=False, compare=False)
    #: ``(self,)``: what :attr:`TunnelTable.bindings` holds for a home address whose only
    #: binding this entry is -- one tuple shared by every binding behind the entry, not a
    #: list each (~125 bytes a binding less, issue 13)
    alone: tuple[TunnelEntry] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dst", str(self.tunnel.dst))
        object.__setattr__(self, "alone", (self,))


@dataclass(frozen=True)
class LinkDelivery:
    """Deliver to ``link_address`` on ``interface`` without ARP (a foreign agent's
    visitor). ``link_address`` ``None``: hand the datagram to the kernel instead."""

    interface: str
    link_address: bytes | None


@dataclass
class TunnelTable:
    """What the forwarder does with each datagram, keyed by addresses as integers.

    * ``bindings``: inner destination → tunnels (home agent; more than one with
      simultaneous bindings, RFC 5944 §3.6.1.3: each gets a copy); a tuple, for a home
      address with one binding its entry's shared :attr:`TunnelEntry.alone`;
    * ``reverse``: inner source → tunnel (reverse tunnelling at a foreign agent or a
      co-located mobile node, RFC 3024);
    * ``visitors``: inner destination → link delivery after decapsulation (foreign agent);
    * ``peers``: outer sources we accept tunnelled datagrams from (RFC 2003 §6.2).
    """

    bindings: dict[int, tuple[TunnelEntry, ...]] = field(default_factory=dict)
    reverse: dict[int, TunnelEntry] = field(default_factory=dict)
    visitors: dict[int, LinkDelivery] = field(default_factory=dict)
    peers: Counter[int] = field(default_factory=Counter)
    #: home address → {care-of address: nested} for the bindings that asked for broadcasts
    #: (``nested``: inside a unicast datagram to the home address first, RFC 5944 §4.3)
    broadcast: dict[int, dict[int, bool]] = field(default_factory=dict)

    def set_broadcast(
        self, home: IPv4Address, care_of: IPv4Address | None, nested: bool | None
    ) -> None:
        """Forward broadcasts to (``home``, ``care_of``), nested or not; ``nested`` None:
        stop (``care_of`` None: for every care-of address of ``home``)."""
        coas = self.broadcast.setdefault(int(home), {})
        if nested is not None and care_of is not None:
            coas[int(care_of)] = nested
        elif care_of is None:
            coas.clear()
        else:
            coas.pop(int(care_of), None)
        if not coas:
            del self.broadcast[int(home)]

    def add_binding(self, home: IPv4Address | int, entry: TunnelEntry) -> None:
        """Add or replace the binding (``home``, ``entry.tunnel.dst``). ``home`` may be
        given as its integer: that very object is then the key (the executor keys its own
        record of the binding with it, issue 13)."""
        key = int(home)  # (an int's own object)
        bindings = self.bindings
        dst = entry.tunnel.dst_int
        entries = bindings.get(key)
        if entries is None:
            bindings[key] = entry.alone
        else:
            for i, e in enumerate(entries):
                if e.tunnel.dst_int == dst:
                    self._drop_peer(dst)
                    entries = (*entries[:i], entry, *entries[i + 1 :])
                    break
            else:
                entries = (*entries, entry)
            bindings[key] = entry.alone if len(entries) == 1 else entries
        # keyed by the tunnel's own integer (shared by the bindings behind it)
        self.peers[dst] += 1

    def remove_binding(self, home: IPv4Address | int, care_of: IPv4Address | None = None) -> int:
        """Remove one binding, or all of ``home``'s (``care_of`` None); returns how many
        are left for ``home``."""
        key = int(home)
        entries = self.bindings.get(key, ())
        keep = tuple(e for e in entries if care_of is not None and e.tunnel.dst != care_of)
        for e in entries:
            if e not in keep:
                self._drop_peer(e.tunnel.dst_int)
        if keep:
            self.bindings[key] = keep[0].alone if len(keep) == 1 else keep
        else:
            self.bindings.pop(key, None)
        return len(keep)

    def set_reverse(self, src: IPv4Address, entry: TunnelEntry | None) -> None:
        old = self.reverse.pop(int(src), None)
        if old is not None:
            self._drop_peer(int(old.tunnel.dst))
        if entry is not None:
            self.reverse[int(src)] = entry
            self.peers[int(entry.tunnel.dst)] += 1

    def set_visitor(self, home: IPv4Address, delivery: LinkDelivery | None) -> None:
        if delivery is None:
            self.visitors.pop(int(home), None)
        else:
            self.visitors[int(home)] = delivery

    def add_peer(self, address: IPv4Address) -> None:
        self.peers[int(address)] += 1

    def remove_peer(self, address: IPv4Address) -> None:
        self._drop_peer(int(address))

    def _drop_peer(self, key: int) -> None:
        """One reference to peer ``key`` fewer; gone at none. Only this key: ``peers +=
        Counter()`` (what this did before) rebuilt the whole counter, O(peers) per removal:
        ~55 us each with 1,000 co-located care-of addresses (issue 13)."""
        peers = self.peers
        left = peers[key] - 1
        if left > 0:
            peers[key] = left
        else:
            peers.pop(key, None)
