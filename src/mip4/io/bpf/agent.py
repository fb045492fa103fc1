"""The home agent's tc-BPF fast path beside the user-space plane (issue 12).

Theory of operation
-------------------
The user-space plane (TUN device, :class:`~mip4.io.forwarder.Forwarder`) stays what it
was: every binding still has its host route into the TUN device and its entry in the
forwarder's table. The fast path sits in front of it: ``mip4_ha_encap`` at tc ingress of
the agent's interfaces encapsulates datagrams for a bound home address before the kernel
routes them, so they never reach the TUN device. Whatever the program leaves untouched
(too big once encapsulated, TTL expiring, no route to the care-of address, minimal
encapsulation it cannot do, a home address with simultaneous bindings, broadcasts) goes on
to the kernel, which routes it into the TUN device: the user-space plane is the slow path
and answers "fragmentation needed" / "time exceeded" as it always did (RFC 2003 §4-5).

==========================  ===============================================================
start (:meth:`open`)         load the shipped object (maps pinned under ``pin_dir`` when
                             given), reconcile the pinned bindings against the agent's
                             binding table (empty at start: the home agent keeps no
                             bindings across a restart, so every pinned entry goes), attach
                             ``mip4_ha_encap`` at ingress of each interface *with replace*
                             (a restart swaps programs atomically)
a binding                    :meth:`sync`: the map entry follows the forwarder's table for
                             that home address (one care-of address: in the map; none,
                             several or a GRE checksum: not, the user-space plane
                             handles them)
clean stop (:meth:`close`)   detach the filters, remove the clsact hooks and the pins
crash (:meth:`abandon`)      close our handle only: the attached programs keep the maps
                             alive and bound nodes keep their forwarding until a restart
==========================  ===============================================================

Reverse-tunnelled datagrams reaching the home agent are still decapsulated by the
user-space plane (``mip4_decap`` and ``mip4_ha_encap`` cannot share one ingress hook: the
first ``TC_ACT_OK`` ends classification).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path
from typing import TypeVar

from mip4.dataplane.common import Encapsulation
from mip4.dataplane.table import TunnelEntry

from ..netns import run_in_netns
from .plane import BpfPlane, Direction, Encap, Event, Program, Tunnel, bpf_plane_unavailable

log = logging.getLogger("mip4")

T = TypeVar("T")

#: the values of ``[io] dataplane``
DATAPLANES = ("auto", "bpf", "userspace")

_ENCAP = {
    Encapsulation.IPIP: Encap.IPIP,
    Encapsulation.GRE: Encap.GRE,
    Encapsulation.MINIMAL: Encap.MINIMAL,
}

#: tc filter position of the fast path (priority, handle) on each interface
PRIORITY = 1
HANDLE = 1


def resolve_dataplane(
    choice: str, unavailable: Callable[[], str | None] = bpf_plane_unavailable
) -> str:
    """``"bpf"`` or ``"userspace"`` for ``[io] dataplane``: ``auto`` takes the bpf plane
    when the kernel and privileges allow it; ``bpf`` insists on it (``RuntimeError`` with
    the reason otherwise)."""
    if choice not in DATAPLANES:
        raise ValueError(f"dataplane: {choice!r} is not one of {', '.join(DATAPLANES)}")
    if choice == "userspace":
        return "userspace"
    reason = unavailable()
    if reason is None:
        return "bpf"
    if choice == "bpf":
        raise RuntimeError(f"dataplane = bpf: the bpf plane is unavailable here: {reason}")
    log.info("bpf plane unavailable (%s): user-space plane", reason)
    return "userspace"


def bpf_tunnel(entry: TunnelEntry) -> Tunnel:
    """The program's view of one user-space tunnel table entry."""
    t = entry.tunnel
    gre = entry.encapsulation is Encapsulation.GRE
    return Tunnel(t.src, t.dst, _ENCAP[entry.encapsulation], key=t.gre_key if gre else None)


class FastPath:
    """``mip4_ha_encap`` attached to ``interfaces`` of namespace ``netns``."""

    def __init__(self, plane: BpfPlane, netns: str | None, ifindexes: Sequence[int]) -> None:
        self.plane = plane
        self.netns = netns
        self.ifindexes = tuple(ifindexes)
        self.program_ids: dict[int, int] = {}
        self.reconciled: list[IPv4Address] = []

    def _in_ns(self, func: Callable[[], T]) -> T:
        return func() if self.netns is None else run_in_netns(self.netns, func)

    @classmethod
    def open(
        cls,
        netns: str | None,
        ifindexes: Iterable[int],
        *,
        pin_dir: Path | None = None,
        bound: Iterable[IPv4Address] = (),
    ) -> FastPath:
        if pin_dir is not None:
            pin_dir.mkdir(parents=True, exist_ok=True)
        plane = BpfPlane(pin_dir=pin_dir)
        fast = cls(plane, netns, list(ifindexes))
        try:
            fast.reconcile(bound)
            for ifindex in fast.ifindexes:
                attach = partial(
                    plane.attach, ifindex, Program.HA_ENCAP, priority=PRIORITY, handle=HANDLE
                )
                fast.program_ids[ifindex] = fast._in_ns(attach)
        except BaseException:
            fast.close()
            raise
        return fast

    def reconcile(self, bound: Iterable[IPv4Address]) -> list[IPv4Address]:
        """Drop the pinned bindings that are not in ``bound`` (what the binding table holds):
        left by a daemon that was killed. Returns them."""
        keep = set(bound)
        gone = [home for home in self.plane.bindings() if home not in keep]
        for home in gone:
            self.plane.del_binding(home)
            self.plane.forget_counters(home)
        if gone:
            log.info("bpf.reconciled removed=%s", ",".join(map(str, gone)))
        self.reconciled = gone
        return gone

    def sync(self, home: IPv4Address, entries: Sequence[TunnelEntry]) -> None:
        """Make the map entry of ``home`` follow the user-space table's ``entries``."""
        if len(entries) == 1 and not entries[0].tunnel.gre_checksum:
            self.plane.set_binding(home, bpf_tunnel(entries[0]))
        else:
            self.remove(home)

    def remove(self, home: IPv4Address) -> None:
        self.plane.del_binding(home)

    def counters(self) -> dict[str, dict[str, int]]:
        """Per home address: packets and bytes the fast path tunnelled (per-CPU map)."""
        out: dict[str, dict[str, int]] = {}
        for (addr, direction), traffic in sorted(self.plane.counters().items()):
            if direction is Direction.HA:
                out[str(addr)] = {"packets": traffic.packets, "bytes": traffic.bytes}
        return out

    def events(self) -> dict[str, int]:
        return {e.name.lower(): n for e, n in self.plane.events().items() if n}

    def close(self) -> None:
        """A clean stop: no filter, clsact hook, pin or map left behind."""
        for ifindex in self.ifindexes:
            try:
                detach = partial(
                    BpfPlane.detach, ifindex, priority=PRIORITY, handle=HANDLE, destroy_hook=True
                )
                self._in_ns(detach)
            except OSError as e:  # the device may be gone already
                log.warning("bpf.detach ifindex=%s error=%r", ifindex, e)
        self.ifindexes = ()
        if self.plane.pin_dir is not None:
            self.plane.unpin()
        self.plane.close()

    def abandon(self) -> None:
        """What a killed daemon leaves: filters attached, maps pinned and forwarding."""
        self.plane.close()


__all__ = [
    "DATAPLANES",
    "Event",
    "FastPath",
    "bpf_tunnel",
    "resolve_dataplane",
]
