"""The handover edge tunnels' ends at an agent (RFC 4881, RFC 4988): the executor's share.

Theory of operation
-------------------
During a low-latency or fast handover the previous and the new foreign agent run a
bi-directional IP-in-IP tunnel between them for one home address (:class:`InstallEdgeTunnel`).
The packets themselves are handled by the user-space forwarder (:mod:`mip4.io.edge`); what
:class:`EdgeEnds` keeps is the kernel's and the tables' side of each end, on one undo stack
per (home address, peer): the peer accepted as a tunnel source, the forwarder's source or
target entry, the policy rules that send an arrived node's datagrams back into the tunnel
(:class:`FlushBuffer`, priorities from :data:`EDGE_RULE_PRIORITY` up), and on the bpf plane
the home agent's tunnel left to the slow path while a source end needs its datagrams.

The environment (forwarder, namespace, fast path, the executor's visitors and reverse-tunnel
route) is read from the :class:`~mip4.io.executor.LinuxExecutor` that owns this object, at
the time of each call: the executor's fields may be set after it was made.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.core.actions import (
    BufferPackets,
    DropBuffer,
    EdgeRole,
    FlushBuffer,
    InstallEdgeTunnel,
    RemoveEdgeTunnel,
)
from mip4.dataplane.common import Tunnel
from mip4.dataplane.table import TunnelEntry

from .bpf.plane import Peer
from .undo import UndoStack

if TYPE_CHECKING:
    from .executor import LinuxExecutor

log = logging.getLogger("mip4")

EDGE_RULE_PRIORITY = 4440  #: first priority used for edge-tunnel rules (handovers)


@dataclass
class EdgeEnds:
    """The edge tunnel ends of ``owner`` (an executor), each with its undo stack."""

    owner: LinuxExecutor
    #: per (home address, peer): the edge tunnel end's action and undo stack
    ends: dict[tuple[IPv4Address, IPv4Address], tuple[InstallEdgeTunnel, UndoStack]] = field(
        default_factory=dict
    )
    #: the policy rule priorities in use
    rules: set[int] = field(default_factory=set)
    #: bpf plane: (care-of address, home agent) peers left to the slow path while a
    #: source edge tunnel needs their datagrams (issue 14), with how many need them
    slow_peers: Counter[tuple[IPv4Address, IPv4Address]] = field(default_factory=Counter)

    def stacks(self) -> Iterator[UndoStack]:
        """The ends' undo stacks, newest first (for the owner's close)."""
        return reversed([stack for _edge, stack in self.ends.values()])

    def clear(self) -> None:
        self.ends.clear()

    def install(self, a: InstallEdgeTunnel) -> None:
        """One end of the bi-directional edge tunnel (IP-in-IP ``local`` ⇄ ``peer``). A
        renewal (same home address and peer) only replaces the entry."""
        owner = self.owner
        fwd = owner._fwd("InstallEdgeTunnel")
        edge = fwd.edge_tunnels()
        key = (a.home_address, a.peer)
        entry = TunnelEntry(Tunnel(a.local, a.peer, own_addresses=owner.own_addresses))
        known = self.ends.get(key)
        if known is not None and known[0].role is not a.role:
            self.remove(RemoveEdgeTunnel(a.home_address, a.peer))
            known = None
        if known is None:
            stack = owner.ns.new_stack(f"edge tunnel {a.home_address} {a.peer}")
            table, home, peer = fwd.table, a.home_address, a.peer
            table.add_peer(peer)  # tunnelled datagrams from the peer agent are accepted
            stack.callback("forget edge peer", lambda: table.remove_peer(peer))
            if a.role is EdgeRole.SOURCE:
                stack.callback("forget edge source", lambda: edge.set_source(home, None))
            else:
                stack.callback("forget edge target", lambda: edge.set_reverse(home, None))
                stack.callback("forget arrival", lambda: edge.forget(home))
        else:
            stack = known[1]
        self.ends[key] = (a, stack)
        if a.role is EdgeRole.SOURCE and known is None:
            self._slow_path(a.home_address, stack)
        if a.role is EdgeRole.SOURCE:
            edge.set_source(a.home_address, entry)
        else:
            edge.set_reverse(a.home_address, entry)

    def _slow_path(self, home: IPv4Address, undo: UndoStack) -> None:
        """bpf plane (issue 14): the fast path decapsulates what the visitor's home agent
        tunnels to us and hands it straight to the visitor's hardware address, so the
        source end of an edge tunnel (:mod:`mip4.io.edge`, in the user-space forwarder)
        would never see a datagram and the node loses everything the home agent sends
        here from its link switch to its binding's move. While the source end is up, the
        tunnel from the home agent is left to the slow path: its peer is taken out of
        the fast path's map (the programs then leave those packets to the kernel, which
        hands them to the forwarder's raw socket) and put back when the edge tunnel goes
        -- if a visitor still uses it. Other visitors of the same home agent take the
        slow path too meanwhile (correct, slower); a visitor of that home agent accepted
        meanwhile puts the peer back early (the fast path's owner bookkeeping)."""
        owner = self.owner
        fast, known = owner.fast_path, owner._visitors.get(int(home))
        if fast is None or known is None:
            return
        pair = (known[0].care_of_address, known[0].home_agent)
        fast.plane.del_peer(*pair)
        self.slow_peers[pair] += 1
        owner.stats["edge_slow_path"] += 1

        def restore() -> None:
            self.slow_peers[pair] -= 1
            if self.slow_peers[pair] > 0:
                return
            del self.slow_peers[pair]
            used = {(v.care_of_address, v.home_agent) for v, _undo in owner._visitors.values()}
            if pair in used:
                fast.plane.set_peer(Peer(pair[0], pair[1], any_key=True))

        undo.callback(f"bpf peer {pair[0]} <- {pair[1]} back", restore)

    def remove(self, a: RemoveEdgeTunnel) -> None:
        known = self.ends.pop((a.home_address, a.peer), None)
        if known is None:
            return
        for err in known[1].undo():
            log.warning("removing edge tunnel %s: %s", a.home_address, err)

    def buffer(self, a: BufferPackets) -> None:
        self.owner._fwd("BufferPackets").edge_tunnels().buffer(a.home_address, a.limit)

    def flush(self, a: FlushBuffer) -> None:
        owner = self.owner
        fwd = owner._fwd("FlushBuffer")
        owner.stats["edge_flushed"] += fwd.edge_tunnels().flush(
            a.home_address, a.interface, a.link_address
        )
        for (home, _peer), (edge, stack) in self.ends.items():
            if home == a.home_address and edge.role is EdgeRole.TARGET:
                # the node's own datagrams, arriving on its new link, go back through
                # the edge tunnel (unless a reverse tunnel to its home agent claims them)
                self._add_rule(a.home_address, a.interface, stack)

    def _add_rule(self, src: IPv4Address, iif: str, undo: UndoStack) -> None:
        owner = self.owner
        owner._ensure_reverse_route()
        prio = EDGE_RULE_PRIORITY
        while prio in self.rules:
            prio += 1
        self.rules.add(prio)
        undo.callback(f"free edge rule priority {prio}", lambda: self.rules.discard(prio))
        owner.ns.add_rule(src=src, iif=iif, table=owner.reverse_table, priority=prio, undo=undo)

    def drop(self, a: DropBuffer) -> None:
        owner = self.owner
        owner.stats["edge_dropped"] += owner._fwd("DropBuffer").edge_tunnels().drop(a.home_address)
