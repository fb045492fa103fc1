"""Edge tunnels between foreign agents and per-home-address buffers (RFC 4881, RFC 4988):
the forwarder's side of :mod:`mip4.core.fa_handoff`.

Theory of operation
-------------------
:class:`EdgeTunnels` hangs off a :class:`~mip4.io.forwarder.Forwarder` (``forwarder.edge``);
the forwarder asks it about every datagram it has decapsulated
(:meth:`EdgeTunnels.intercept`) before its own visitor delivery, and about every datagram
from the TUN device that no reverse tunnel claims (:meth:`EdgeTunnels.reverse_entry`). The
executor fills it from the engine's actions
(:class:`~mip4.core.actions.InstallEdgeTunnel` ... :class:`~mip4.core.actions.DropBuffer`).

* **Source end** (the previous agent). A datagram for the home address -- the home agent
  still tunnels to us -- is encapsulated once more (IP-in-IP, our care-of address → the
  new agent). With ``bicast`` (the default; mip4's choice, in the spirit of RFC 4881's
  simultaneous bindings) it also still goes onto our link while the visitor entry is
  there: the node keeps receiving here until its link actually switches, and the new
  agent's buffer holds what it misses during the switch. Without it the datagram goes
  only into the edge tunnel, and the node hears nothing from the Fast Binding
  Acknowledgement until its arrival at the new agent. A datagram *from* the home address that
  comes out of the edge tunnel (the node, already on the new link, sending back through
  it) goes on as the node's own datagrams would have here: into its reverse tunnel to the
  home agent when it has one (RFC 3024), otherwise to the kernel, which forwards it.
* **Target end** (the new agent). Datagrams for the home address -- out of the edge tunnel,
  or from the home agent after a pre-registration -- are held in a bounded buffer while the
  node is not on our link (:meth:`buffer`; at most ``limit``; dropped whole after
  ``max_age`` seconds as a safety net under the engine's own ``buffer_timeout``). Without
  ``bicast`` the oldest are kept and later ones counted and dropped (the
  :class:`~mip4.core.actions.BufferPackets` contract); with it the newest are kept, since
  the oldest are copies the node already received on its old link. They are delivered
  in order to the node's hardware address when it arrives (:meth:`flush`), and after
  that straight to it until a visitor entry with a hardware address takes over or the
  tunnel goes. The node's own datagrams
  go back to the previous agent (:meth:`reverse_entry`) while no reverse tunnel to the
  home agent exists for it.
* **Delivering and holding** (issue 14). When the new agent learns the node's hardware
  address with the Handoff Request (RFC 4881's Generalized Link-Layer Address extension),
  the engine asks for delivery before the node is here (a :meth:`flush` of the still empty
  buffer) and then for a buffer (:meth:`buffer` after :meth:`flush`): every datagram out of
  the edge tunnel goes straight to the node's hardware address -- the first ones after
  the link switch reach it as soon as its port is up, not after its Registration Request
  -- and a copy is held (the newest ``limit``), which the flush at the node's first
  request delivers to fill what the switch itself lost (duplicates of what arrived are
  possible, as with the previous agent's bicasting). While copies are held no visitor
  entry takes over (one left from an earlier visit would end the holding early).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mip4.dataplane.table import TunnelEntry, TunnelTable

#: (datagram, tunnel entry): encapsulate and send (the forwarder's ``_send``)
SendFn = Callable[[memoryview, TunnelEntry], None]
#: (interface, hardware address or None, datagram): deliver on the link / to the kernel
DeliverFn = Callable[[str, bytes | None, memoryview], None]
#: a datagram to the kernel (written into the TUN device)
KernelFn = Callable[[memoryview], None]


@dataclass
class Arrival:
    """What the target end does with datagrams for one home address."""

    #: buffered datagrams (copies), ``None``: not buffering
    buffer: deque[bytes] | None = None
    limit: int = 0
    #: monotonic time after which the buffer is dropped (safety net)
    deadline: float = 0.0
    #: (interface, hardware address) once the node arrived (flushed)
    delivery: tuple[str, bytes | None] | None = None


@dataclass
class EdgeTunnels:
    """Edge tunnel ends and arrival buffers of one agent, keyed by home address (int)."""

    table: TunnelTable
    send: SendFn
    deliver: DeliverFn
    to_kernel: KernelFn
    #: seconds a buffer lives at most here (the engine drops it earlier with DropBuffer)
    max_age: float = 10.0
    #: source end: deliver on the old link as well; target end: keep the newest
    bicast: bool = True
    clock: Callable[[], float] = time.monotonic
    #: source end: home address → tunnel to the new agent
    sources: dict[int, TunnelEntry] = field(default_factory=dict)
    #: target end: home address → tunnel back to the previous agent
    reverse: dict[int, TunnelEntry] = field(default_factory=dict)
    arrivals: dict[int, Arrival] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)

    # -- configuration (the executor) ----------------------------------------------------

    def set_source(self, home: IPv4Address, entry: TunnelEntry | None) -> None:
        if entry is None:
            self.sources.pop(int(home), None)
        else:
            self.sources[int(home)] = entry

    def set_reverse(self, home: IPv4Address, entry: TunnelEntry | None) -> None:
        if entry is None:
            self.reverse.pop(int(home), None)
        else:
            self.reverse[int(home)] = entry

    def buffer(self, home: IPv4Address, limit: int) -> None:
        """Start buffering for ``home`` (kept if already buffering); when datagrams for it
        are already delivered (:meth:`flush` came first), hold a copy of each as well until
        the next :meth:`flush`."""
        arrival = self.arrivals.setdefault(int(home), Arrival())
        if arrival.buffer is None:
            arrival.buffer = deque()
        arrival.limit = max(0, limit)
        arrival.deadline = self.clock() + self.max_age

    def flush(self, home: IPv4Address, interface: str, link_address: bytes | None) -> int:
        """The node arrived: deliver the buffer in order, then every later datagram for
        ``home`` straight to it. Returns how many were delivered from the buffer."""
        arrival = self.arrivals.setdefault(int(home), Arrival())
        arrival.delivery = (interface, link_address)
        held, arrival.buffer = arrival.buffer, None
        n = 0
        for pkt in held or ():
            self.deliver(interface, link_address, memoryview(pkt))
            n += 1
        self.stats["edge_flushed"] += n
        return n

    def drop(self, home: IPv4Address) -> int:
        """Discard the buffer for ``home`` and stop buffering; returns how many went."""
        arrival = self.arrivals.get(int(home))
        if arrival is None:
            return 0
        n = len(arrival.buffer or ())
        arrival.buffer = None
        if arrival.delivery is None:
            del self.arrivals[int(home)]
        self.stats["edge_buffer_dropped"] += n
        return n

    def forget(self, home: IPv4Address) -> None:
        """The edge tunnel for ``home`` is gone: no more special delivery."""
        self.drop(home)
        self.arrivals.pop(int(home), None)

    # -- the datapath (the forwarder) -----------------------------------------------------

    def intercept(self, pkt: memoryview | bytes | bytearray, outer_src: int) -> bool:
        """Whether the edge took the decapsulated datagram ``pkt`` (from ``outer_src``)."""
        inner = pkt if isinstance(pkt, memoryview) else memoryview(pkt)
        if len(inner) < 20:
            return False
        dst = int.from_bytes(inner[16:20], "big")
        entry = self.sources.get(dst)
        if entry is not None:
            self.send(inner, entry)
            self.stats["edge_forwarded"] += 1
            if self.bicast:
                visitor = self.table.visitors.get(dst)
                if visitor is not None and visitor.link_address is not None:
                    self.deliver(visitor.interface, visitor.link_address, inner)
                    self.stats["edge_bicast"] += 1
            return True
        arrival = self.arrivals.get(dst)
        if arrival is not None and self._arrive(dst, arrival, inner):
            return True
        if dst in self.reverse:
            visitor = self.table.visitors.get(dst)
            if visitor is None or visitor.link_address is None:
                # target end, node not here yet and no buffer asked for: dropped here
                # rather than handed to the kernel (which would route it back home)
                self.stats["edge_not_arrived"] += 1
                return True
        src = int.from_bytes(inner[12:16], "big")
        back = self.sources.get(src)
        if back is None or back.tunnel.dst_int != outer_src:
            return False
        # the node's own datagram, back from the new agent: as if it came from our link
        reverse = self.table.reverse.get(src)
        if reverse is not None:
            self.send(inner, reverse)
        else:
            self.to_kernel(inner)
        self.stats["edge_returned"] += 1
        return True

    def _arrive(self, dst: int, arrival: Arrival, inner: memoryview) -> bool:
        if arrival.delivery is not None:
            if arrival.buffer is None:
                visitor = self.table.visitors.get(dst)
                if visitor is not None and visitor.link_address is not None:
                    del self.arrivals[dst]  # the visitor entry delivers from now on
                    return False
            self.deliver(arrival.delivery[0], arrival.delivery[1], inner)
            self.stats["edge_delivered"] += 1
            if arrival.buffer is not None:  # delivering and holding (issue 14)
                if self.clock() > arrival.deadline:
                    self.stats["edge_buffer_expired"] += len(arrival.buffer)
                    arrival.buffer = None
                    return True
                self._hold(arrival, arrival.buffer, inner, newest=True)
            return True
        held = arrival.buffer
        if held is None:
            return False
        if self.clock() > arrival.deadline:
            self.stats["edge_buffer_expired"] += len(held)
            del self.arrivals[dst]
            return False
        return self._hold(arrival, held, inner, newest=self.bicast)

    def _hold(
        self, arrival: Arrival, held: deque[bytes], inner: memoryview, *, newest: bool
    ) -> bool:
        if len(held) >= arrival.limit:
            self.stats["edge_buffer_full"] += 1
            if not newest or not held:
                return True
            held.popleft()  # the oldest: the node had it on its old link
        held.append(bytes(inner))
        self.stats["edge_buffered"] += 1
        return True

    def reverse_entry(self, src: int) -> TunnelEntry | None:
        """Target end: the tunnel back to the previous agent for the node ``src``."""
        return self.reverse.get(src)
