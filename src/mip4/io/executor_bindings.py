"""The executor's home agent actions, apart from the rest of
:class:`~mip4.io.executor.LinuxExecutor` (as :mod:`mip4.io.executor_arp` keeps the ARP
actions): ``InstallBinding`` and ``RemoveBinding``. :class:`BindingActions` is a mixin: the
state it uses is the executor's (declared here for the type checker).

What a binding keeps (issue 13: a home agent at a million bindings)
--------------------------------------------------------------------
Nothing of its own in the executor: no undo stack, no record, no journal line, no entry in
a dictionary of the executor's. Its one trace is the tunnel table's entry for its home
address (which the forwarder needs anyway): the shared :class:`TunnelEntry` of its care-of
address, encapsulation, GRE key and flags -- whose ``tag`` holds what the binding asked of
the kernel, so a renewal that changes nothing is recognised from the table -- in the
entry's shared one-tuple (:attr:`TunnelEntry.alone`). What a binding made follows from its
home address, and :meth:`BindingActions._unbind` undoes exactly that: the fast path's
entries for the address, then its /32 route through the daemon's TUN device (its broadcast
entries are the table's). The route needs no journal line for the leftover cleaner: the TUN
device is not persistent (:mod:`mip4.io.tun`: closing its descriptor deletes it, as the
kernel does for a killed daemon; :meth:`NodeIO.close <mip4.io.runtime.NodeIO.close>`
deletes one still there), and the kernel deletes the routes through a device with it --
after a crash no binding route is left to clean. The few bindings whose kernel work did not
complete (a route the kernel refused, a full fast-path map) are in a small set, so that
their next renewal does the work again.
"""

from __future__ import annotations

import logging
from collections import Counter
from ipaddress import IPv4Address

from mip4.core.actions import InstallBinding, RemoveBinding
from mip4.dataplane.common import Tunnel
from mip4.dataplane.table import TunnelEntry

from .bpf.agent import FastPath
from .forwarder import Forwarder
from .held import HeldActions
from .netns import DeleteBatch, Netns
from .route_deletes import RouteDeletes
from .rtnl import RtnlSocket
from .undo import RT_TABLE_MAIN, RouteRecord, dotted

log = logging.getLogger("mip4")


class BindingActions:
    """``install_binding`` and ``remove_binding`` of
    :class:`~mip4.io.executor.LinuxExecutor` (home agent)."""

    # the executor's, set by its dataclass fields
    ns: Netns
    forwarder: Forwarder | None
    tunnel_source: IPv4Address | None
    own_addresses: frozenset[IPv4Address]
    fast_path: FastPath | None
    stats: Counter[str]
    _held: HeldActions | None
    _going: frozenset[int]
    #: ``home << 32 | care-of`` of the bindings whose kernel work did not complete (see
    #: the module's docstring): their next renewal is not "unchanged"
    _unsettled: set[int]
    #: (care-of address, what the binding asks of the kernel) -> the bindings' shared
    #: tunnel entry, for the tunnel source and own addresses in ``_tunnel_entries_for``
    _tunnel_entries: dict[tuple[IPv4Address, tuple[object, ...]], TunnelEntry]
    _tunnel_entries_for: tuple[object, ...]
    #: the expired bindings' route deletes, off the loop's thread (:meth:`_deletes`)
    _route_deletes: RouteDeletes | None

    def _fwd(self, what: str) -> Forwarder:
        raise NotImplementedError  # the executor's

    def _carry_out_held(self) -> None:
        raise NotImplementedError  # the executor's

    def _deletes(self) -> RouteDeletes | None:
        """The expired bindings' route deletes (made on first use); ``None`` without the
        direct netlink socket (a stand-in for netlink: deleted at once)."""
        deletes = self._route_deletes
        if deletes is None:
            ipr = self.ns.ipr
            if getattr(ipr, "direct", None) is None:
                return None
            ns = self.ns
            deletes = self._route_deletes = RouteDeletes(
                lambda: ns.run(RtnlSocket.open), name=f"route-deletes-{ns.name}"
            )
        return deletes

    def _defer_delete(self, home: IPv4Address, oif: int) -> bool:
        """Hand the delete of ``home``'s route through ``oif`` to the thread
        (:meth:`_deletes`); ``False``: not done (no direct socket, or the thread's socket
        could not be opened: logged), the caller deletes it at once."""
        try:
            deletes = self._deletes()
            if deletes is None:
                return False
            deletes.put(int(home), self.ns.ipr.direct.host_route_request("del", home.packed, oif))
        except Exception as exc:
            log.warning("route deletes off the loop's thread: %s (deleted at once)", exc)
            return False
        self.stats["route_delete_deferred"] += 1
        return True

    def installed_keys(self) -> set[int]:
        """``home << 32 | care-of`` of every binding installed in full (its renewals are
        "unchanged")."""
        fwd = self.forwarder
        if fwd is None:
            return set()
        keys = {h << 32 | e.tunnel.dst_int for h, es in fwd.table.bindings.items() for e in es}
        return keys - self._unsettled

    def install_binding(self, a: InstallBinding) -> None:
        """A renewal that changes nothing (the same care-of address, encapsulation, key
        and flags; only the expiry moves) does no kernel work at all: the route, the
        tunnel-table entry and the fast-path entry are already what it asks for
        (counted: ``binding_unchanged`` against ``binding_installed``)."""
        held = self._held
        # the home address's integer: one object, the key of the tunnel table's entry
        home = int(a.home_address)
        if held is not None and held.keys and ("binding", home) in held.keys:
            self._carry_out_held()
        fwd = self.forwarder
        if fwd is None:
            fwd = self._fwd("InstallBinding")  # (raises)
        # what it asks of the kernel and the tunnel table: every field but the care-of
        # address (the tunnel's) and the expiry (which is for information only)
        wanted = (
            a.encapsulation,
            a.reverse_tunnel,
            a.gre_key,
            a.broadcast,
            a.home_interface,
            a.colocated,
        )
        entries = fwd.table.bindings.get(home)
        if entries is not None:
            coa = int(a.care_of_address)
            for e in entries:
                if e.tunnel.dst_int == coa:
                    unsettled = self._unsettled
                    if e.tag == wanted and not (unsettled and home << 32 | coa in unsettled):
                        self.stats["binding_unchanged"] += 1
                        return
                    break
        self.stats["binding_installed"] += 1
        if self._route_deletes is not None:  # an expired binding's route still to go: first
            self._route_deletes.settle(home, self.ns.ipr.direct)
        fwd.table.add_binding(home, self._tunnel_entry(a, wanted))
        key = home << 32 | int(a.care_of_address)
        self._unsettled.add(key)  # until its kernel work is done (_binding_routed)
        # no record of the route (see the module's docstring: _unbind knows it)
        if held is None:
            self.ns.add_host_route(a.home_address, fwd.tun.name, keep=False)
            self._binding_routed(a, fwd, key)
            return
        request = self.ns.host_route_request(a.home_address, fwd.tun.name, keep=False)
        held.kernel.append((a, request, lambda: self._binding_routed(a, fwd, key)))
        held.keys.add(("binding", home))

    def _binding_routed(self, a: InstallBinding, fwd: Forwarder, key: int) -> None:
        """The rest of :meth:`install_binding` once the binding's route is there."""
        fast = self.fast_path
        if fast is not None:
            home = a.home_address
            if not fast.sync(home, fwd.table.bindings.get(int(home), ())):
                # a full map refused it: the user-space plane forwards it, and its next
                # renewal is not "unchanged" -- it asks the fast path again, and takes it
                # once there is room (it stays unsettled)
                self.stats["binding_not_on_fast_path"] += 1
                return self._binding_broadcasts(a, fwd)
        self._binding_broadcasts(a, fwd)
        self._unsettled.discard(key)

    def _binding_broadcasts(self, a: InstallBinding, fwd: Forwarder) -> None:
        if a.broadcast and a.home_interface is not None:
            # B bit (RFC 5944 §4.3): the home link's broadcasts go to this binding too
            fwd.watch_broadcasts(a.home_interface)
            fwd.table.set_broadcast(a.home_address, a.care_of_address, not a.colocated)
        else:
            fwd.table.set_broadcast(a.home_address, a.care_of_address, None)
            if a.broadcast:
                # no home link named: nowhere to pick the broadcasts up (counted)
                self.stats["broadcast_not_forwarded"] += 1
                log.warning("binding for %s asks for broadcasts; no home link", a.home_address)

    #: the most tunnel entries kept for reuse (one per care-of address, encapsulation,
    #: GRE key and flags in use; a full table is simply emptied)
    TUNNEL_ENTRIES_MAX = 4096

    def _tunnel_entry(self, a: InstallBinding, wanted: tuple[object, ...]) -> TunnelEntry:
        """The tunnel-table entry for ``a``'s care-of address and ``wanted`` (its
        encapsulation, key and flags; the entry's ``tag``): one frozen entry shared by
        every binding behind the same care-of address that asks the same (issue 13: not a
        :class:`Tunnel` with its integer forms and header sums per first registration;
        ``tests/io/test_executor_tunnel_entries.py``)."""
        source = self.tunnel_source
        if source is None:
            raise RuntimeError("InstallBinding needs tunnel_source (the home agent address)")
        key = (a.care_of_address, wanted)
        entries = self._tunnel_entries
        if self._tunnel_entries_for != (source, self.own_addresses):
            entries.clear()
            self._tunnel_entries_for = (source, self.own_addresses)
        entry = entries.get(key)
        if entry is None:
            if len(entries) >= self.TUNNEL_ENTRIES_MAX:
                entries.clear()  # (compared by value: a new entry will do)
            tunnel = Tunnel(
                source, a.care_of_address, own_addresses=self.own_addresses, gre_key=a.gre_key
            )
            entry = entries[key] = TunnelEntry(tunnel, a.encapsulation, tag=wanted)
        return entry

    def remove_binding(self, a: RemoveBinding) -> None:
        fwd = self._fwd("RemoveBinding")
        home = int(a.home_address)
        entries = fwd.table.bindings.get(home)
        unsettled = self._unsettled
        if unsettled and entries is not None:
            for e in entries:
                if a.care_of_address is None or e.tunnel.dst == a.care_of_address:
                    unsettled.discard(home << 32 | e.tunnel.dst_int)
        fwd.table.set_broadcast(a.home_address, a.care_of_address, None)
        left = fwd.table.remove_binding(home, a.care_of_address)
        if left and self.fast_path is not None:
            self.fast_path.sync(a.home_address, fwd.table.bindings.get(home, ()))
        if left == 0:
            if self._route_deletes is not None:
                self._route_deletes.settle(home, self.ns.ipr.direct)
            if entries is None:  # none of ours: whatever route the address has
                self.ns.del_route(f"{a.home_address}/32")
                return
            oif = self.ns.index_if_there(fwd.tun.name)
            for err in self._unbind(a.home_address, oif, a.expired):
                log.warning("removing binding %s: %s", a.home_address, err)

    def _unbind(self, home: IPv4Address, oif: int | None, expired: bool = False) -> list[str]:
        """Undo what a binding of ``home`` made (:meth:`install_binding`), as its undo
        stack did: the fast path's entries, then the route through the TUN device (index
        ``oif``; ``None``: the device is gone, and the route with it) unless the device
        goes in this stop (:meth:`~mip4.io.executor.LinuxExecutor.devices_going`). The
        route of a binding that ``expired`` is deleted off the loop's thread
        (:mod:`mip4.io.route_deletes`: nothing waits for it). Returns the failures as
        text."""
        errors: list[str] = []
        fast = self.fast_path
        if fast is not None:
            try:
                fast.remove(home)
            except Exception as exc:
                errors.append(f"bpf binding: {exc}")
        if oif is not None and oif not in self._going:
            if expired and self._defer_delete(home, oif):
                return errors
            route = RouteRecord(dotted(home), 32, RT_TABLE_MAIN, oif, None)
            try:
                self.ns.undo_record(route)
            except Exception as exc:
                errors.append(f"{route.describe()}: {exc}")
        return errors

    def _unbind_all(self, homes: list[int], fwd: Forwarder, batch: DeleteBatch | None) -> None:
        """A clean stop: :meth:`_unbind` for each binding (``homes``: newest first); the
        proxy entries queued in ``batch`` are deleted first, as when each binding's
        records came out of its undo stack."""
        if batch is not None:
            batch.flush()
        try:
            oif = self.ns.index_if_there(fwd.tun.name)
        except Exception as exc:
            log.warning("clean-up (binding routes): %s", exc)
            oif = None
        for home in homes:
            address = IPv4Address(home)
            for err in self._unbind(address, oif):
                log.warning("clean-up (binding %s): %s", address, err)
        self._unsettled.clear()
