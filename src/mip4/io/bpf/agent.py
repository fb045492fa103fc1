"""The tc-BPF fast path of each role beside the user-space plane (issue 12).

Theory of operation
-------------------
The user-space plane (TUN device, :class:`~mip4.io.forwarder.Forwarder`) stays what it
was: every binding still has its host route into the TUN device and its entry in the
forwarder's table. The fast path sits in front of it, one program per hook (:data:`HOOKS`):

* home agent: ``mip4_agent`` at tc ingress of its interfaces decapsulates what the care-of
  addresses of its bindings reverse-tunnel to it (registered (agent, care-of address)
  pairs only, and only datagrams whose source is a home address bound to that care-of
  address, RFC 3024 §4.3) and encapsulates datagrams for a bound home address before the
  kernel routes them, so they never reach the TUN device; it also answers ARP on the home
  link for the home addresses of the nodes away (proxy ARP, RFC 5944 §4.6,
  :meth:`FastPath.proxy_arp`) instead of the kernel's proxy neighbour entries, whose
  16-bucket table the kernel scans on every insert, delete and ARP request;
* foreign agent: ``mip4_agent`` at ingress of its interfaces decapsulates what its
  visitors' home agents tunnel to it and redirects it to the visitor's hardware address
  (``mip4_visitors``), and reverse-tunnels the visitors' own datagrams (RFC 3024); it
  counts each visitor's datagrams both ways for RADIUS accounting (``mip4_acct``,
  :meth:`FastPath.visitor_traffic`);
* co-located mobile node: ``mip4_decap`` at ingress of its interfaces (tunnels from its
  home agent to the care-of address), ``mip4_host_encap`` at egress (reverse tunnel); its
  datagrams from the home address leave by a route whose MTU leaves room for the outer
  header (set up by the executor), so the kernel sizes them.

Next hops the programs resolve with ``bpf_fib_lookup`` (the agents' tunnels) get a
*managed* neighbour entry (``NTF_EXT_MANAGED``): the kernel keeps it resolved, re-probing it
(the fast path alone never would, and a STALE entry is used as it is).

Whatever the agents' programs leave untouched (too big once encapsulated, TTL expiring, no
route to the care-of address, minimal encapsulation it cannot do, a home address with
simultaneous bindings, broadcasts, a tunnel from an unregistered peer) goes on to the
kernel, which routes it into the TUN device (or hands it to the raw tunnel sockets): the
user-space plane is the slow path and answers "fragmentation needed" / "time exceeded" as
it always did (RFC 2003 §4-5).

==========================  ===============================================================
start (:meth:`open`)         load the shipped object (maps pinned under ``pin_dir`` when
                             given), reconcile the pinned bindings against the agent's
                             binding table (empty at start: the home agent keeps no
                             bindings across a restart, so every pinned entry goes --
                             proxy ARP entries too; a restored binding store's nodes
                             come back through the engine's actions), attach
                             the role's programs to each interface *with replace* (a
                             restart swaps programs atomically)
a binding (home agent)       :meth:`sync`: the map entry follows the forwarder's table for
                             that home address (one care-of address: in the map; none,
                             several or a GRE checksum: not, the user-space plane
                             handles them); each care-of address is a registered peer
proxy ARP (home agent)       :meth:`proxy_arp` / :meth:`unproxy_arp`: the program answers
                             ARP for the home address on an interface it is attached to
                             (``mip4_proxy``); a full map: the executor falls back to a
                             kernel proxy entry
a visitor (foreign agent)    :meth:`visitor`: peer (care-of address, home agent), the
                             visitor's hardware address, the reverse tunnel, its accounting
                             counters (kept when the visitor goes: the Stop record may
                             come after it; dropped at the next start)
a visitor's usual renewal     :meth:`relay` / :meth:`stop_relay` (``mip4_relay``): the
(foreign agent, issue 13)    program relays it and its acceptance; what it relayed comes
                             back from :meth:`relay_records` (``mip4_relayed``) for the
                             engine (:mod:`mip4.core.fa_kernel`)
co-located node              :meth:`colocated`: peer (care-of address, home agent), the
                             reverse tunnel out of the interface
clean stop (:meth:`close`)   detach the filters, remove the clsact hooks and the pins
crash (:meth:`abandon`)      close our handle only: the attached programs keep the maps
                             alive and bound nodes keep their forwarding until a restart
==========================  ===============================================================

Every entry is owned (a binding, a visitor, the attachment): the undo callable each of
those methods returns removes what that owner holds, and a peer shared by several owners
stays until the last one lets it go.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from enum import StrEnum
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path
from typing import TypeVar

from mip4.dataplane.common import Encapsulation
from mip4.dataplane.table import TunnelEntry

from ..netns import Netns, run_in_netns, write_sysctl
from ..rtnl import RtnlSocket
from .libbpf import BpfError
from .plane import (
    BpfPlane,
    Direction,
    Encap,
    Event,
    MapName,
    Peer,
    Program,
    Tunnel,
    Visitor,
    bpf_plane_unavailable,
)
from .relay import Relay, RelayRecords

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

#: ``NDA_FLAGS_EXT`` bit: the kernel keeps the entry resolved (Linux 5.16)
NTF_EXT_MANAGED = 0x01


class Role(StrEnum):
    """Whose fast path: which programs go on which hooks (:data:`HOOKS`)."""

    HOME_AGENT = "ha"
    FOREIGN_AGENT = "fa"
    MOBILE_NODE = "mn"


#: per role: (program, at ingress?) attached to every interface
#: roles whose decapsulated datagrams the kernel forwards out of the interface they came in
#: on, to a gateway on the link of their source: the home agent's reverse-tunnelled
#: datagrams (from a home address) towards the router. ICMP redirects go off on its
#: interfaces while the fast path is attached (:meth:`FastPath.quiet_redirects`). The
#: user-space plane hands such datagrams in through its TUN device: never the same
#: interface.
QUIET_REDIRECTS = (Role.HOME_AGENT,)

HOOKS: dict[Role, tuple[tuple[Program, bool], ...]] = {
    Role.HOME_AGENT: ((Program.AGENT, True),),
    Role.FOREIGN_AGENT: ((Program.AGENT, True),),
    Role.MOBILE_NODE: ((Program.DECAP, True), (Program.HOST_ENCAP, False)),
}


#: the probe's answer in this process (:func:`probe_once`): unset until the first start
#: that asks (``bpf``; ``auto`` in :meth:`~mip4.io.runtime.NodeIO.open` loads the object
#: once, opening the fast path, and asks only the kernel's version before)
_probed: list[str | None] = []
#: the fallback reasons already logged in this process: a daemon (or a lab that opens
#: several nodes in one process) says once why it runs the user-space plane
_fallbacks_logged: set[str] = set()


def probe_once() -> str | None:
    """:func:`~mip4.io.bpf.plane.bpf_plane_unavailable`, asked once per process (a test
    load of every program costs ~0.2 s of kernel time): the kernel and the privileges do not
    change under a running daemon."""
    if not _probed:
        _probed.append(bpf_plane_unavailable())
    return _probed[0]


def resolve_dataplane(choice: str, unavailable: Callable[[], str | None] = probe_once) -> str:
    """``"bpf"`` or ``"userspace"`` for ``[io] dataplane``: ``auto`` (the default) takes
    the bpf plane when the kernel and privileges allow it, else the user-space plane, and
    logs why once per process and reason; ``bpf`` insists on it (``RuntimeError`` with
    the reason otherwise); ``userspace`` never probes."""
    if choice not in DATAPLANES:
        raise ValueError(f"dataplane: {choice!r} is not one of {', '.join(DATAPLANES)}")
    if choice == "userspace":
        return "userspace"
    reason = unavailable()
    if reason is None:
        return "bpf"
    if choice == "bpf":
        raise RuntimeError(f"dataplane = bpf: the bpf plane is unavailable here: {reason}")
    if reason not in _fallbacks_logged:
        _fallbacks_logged.add(reason)
        log.warning("dataplane = auto: the bpf plane is unavailable (%s): user-space plane", reason)
    return "userspace"


def overhead(encapsulation: Encapsulation, *, gre_key: bool = False) -> int:
    """Bytes the fast path's encapsulation adds (minimal: with the original source)."""
    key = 0 if encapsulation is Encapsulation.GRE and gre_key else None
    return Tunnel(IPv4Address(0), IPv4Address(0), _ENCAP[encapsulation], key=key).overhead


def bpf_tunnel(entry: TunnelEntry) -> Tunnel:
    """The program's view of one user-space tunnel table entry."""
    t = entry.tunnel
    gre = entry.encapsulation is Encapsulation.GRE
    return Tunnel(t.src, t.dst, _ENCAP[entry.encapsulation], key=t.gre_key if gre else None)


class FastPath:
    """The programs of ``role`` (:data:`HOOKS`) attached to ``ifindexes`` of namespace
    ``netns``."""

    def __init__(
        self,
        plane: BpfPlane,
        netns: str | None,
        ifindexes: Sequence[int],
        role: Role = Role.HOME_AGENT,
        *,
        forward: bool = True,
    ) -> None:
        self.plane = plane
        #: home agent: the programs forward what they decapsulate from reverse tunnels
        #: (``Peer.forward``); off: the kernel does (``[io] fast_path_forwarding``)
        self.forward = forward
        self.netns = netns
        self.ifindexes = tuple(ifindexes)
        self.role = role
        #: per interface: the id of the program at its ingress hook
        self.program_ids: dict[int, int] = {}
        #: per interface: the id of the program at its egress hook (mobile node)
        self.egress_ids: dict[int, int] = {}
        self.reconciled: list[IPv4Address] = []
        #: per map: entries it refused because it was full (``E2BIG``: its ``max_entries``,
        #: ``[io] fast_path_capacity``); what it could not take is left to the slow path,
        #: the user-space plane, which forwards it through the binding's route (``mip4
        #: status``)
        self.full: Counter[str] = Counter()
        #: what each owner (a binding: its home address; a visitor, the attachment: a tuple)
        #: holds (a tuple, not a set: a home agent keeps one per binding, ~170 bytes less
        #: each; the very tuple the binding's shared tunnel entry keeps, issue 13)
        self._peers_of: dict[Hashable, tuple[Peer, ...]] = {}
        self._peer_refs: Counter[tuple[IPv4Address, IPv4Address]] = Counter()
        #: the value last written to the map for each peer held (see :meth:`_hold_peers`)
        self._peer_written: dict[tuple[IPv4Address, IPv4Address], Peer] = {}
        #: per shared tunnel-table entry (the executor keeps one per care-of address): its
        #: program view, made once (:func:`bpf_tunnel`), and the peers its bindings hold
        self._bpf_tunnels: dict[int, tuple[TunnelEntry, Tunnel, tuple[Peer]]] = {}
        #: managed neighbour entries made: (ifindex, address) -> owners
        self._neighbours: dict[tuple[int, str], set[Hashable]] = {}
        #: those of them that were there before (made managed, not made): given back plain
        self._found_neighbours: set[tuple[int, str]] = set()
        #: the next hop found for a tunnel exit while an entry made for it is held: a
        #: second binding behind the same care-of address asks the kernel nothing
        #: (a route lookup through pyroute2 costs ~0.3 ms, most of a first registration)
        self._next_hop: dict[IPv4Address, tuple[int, str]] = {}
        self._ns: Netns | None = None
        #: sysctls changed: (key, value before), put back on a clean stop
        self._sysctls: list[tuple[str, str]] = []
        #: :meth:`entries_go_with_close` said: the owners' undos touch no map
        self._closing = False

    def _in_ns(self, func: Callable[[], T]) -> T:
        return func() if self.netns is None else run_in_netns(self.netns, func)

    @classmethod
    def open(
        cls,
        netns: str | None,
        ifindexes: Iterable[int],
        *,
        role: Role = Role.HOME_AGENT,
        pin_dir: Path | None = None,
        bound: Iterable[IPv4Address] = (),
        capacity: int | None = None,
        forward: bool = True,
    ) -> FastPath:
        if pin_dir is not None:
            pin_dir.mkdir(parents=True, exist_ok=True)
        plane = BpfPlane(pin_dir=pin_dir, capacity=capacity)
        fast = cls(plane, netns, list(ifindexes), role, forward=forward)
        try:
            fast.reconcile(bound)
            for ifindex in fast.ifindexes:
                for program, ingress in HOOKS[role]:
                    attach = partial(
                        plane.attach,
                        ifindex,
                        program,
                        ingress=ingress,
                        priority=PRIORITY,
                        handle=HANDLE,
                    )
                    ids = fast.program_ids if ingress else fast.egress_ids
                    ids[ifindex] = fast._in_ns(attach)
            if role in QUIET_REDIRECTS:
                fast.quiet_redirects()
        except BaseException:
            fast.close()
            raise
        return fast

    def reconcile(self, bound: Iterable[IPv4Address]) -> list[IPv4Address]:
        """Drop the pinned bindings that are not in ``bound`` (what the binding table holds):
        left by a daemon that was killed. Returns them. The peers, reverse tunnels and
        visitors pinned go too: no daemon keeps those across a restart (the agents'
        registrations are made again), and the ones still wanted are written again as
        the engine hands its state over."""
        keep = set(bound)
        gone = [home for home in self.plane.bindings() if home not in keep]
        for home in gone:
            self.plane.del_binding(home)
            self.plane.forget_counters(home)
        rest = 0
        for home in self.plane.reverse():
            self.plane.del_reverse(home)
            self.plane.forget_counters(home)
            rest += 1
        for home in self.plane.visitors():
            self.plane.del_visitor(home)
            rest += 1
        for home in self.plane.relays():  # the engine gives its kernel relays again
            self.plane.del_relay(home)
            rest += 1
        if self.role is Role.FOREIGN_AGENT:
            # what the program relayed for a daemon that is gone (a pinned ring): its
            # engine is gone with it, and this one starts without those visitors
            rest += len(self.plane.relay_records().drain())
        for home in self.plane.accounted():  # no accounting session survives a restart
            self.plane.forget_visitor_traffic(home)
            rest += 1
        for peer in self.plane.peers():
            if peer.remote not in keep:
                self.plane.del_peer(peer.local, peer.remote)
                self.plane.forget_counters(peer.remote)
                rest += 1
        # proxy ARP for an address not bound: a killed daemon's (RFC 5944 §4.6: the home
        # agent answers for a node only while it is away)
        for address, ifindex in self.plane.proxies():
            if address not in keep:
                self.plane.del_proxy(address, ifindex)
                rest += 1
        if gone or rest:
            log.info("bpf.reconciled removed=%s other_entries=%d", ",".join(map(str, gone)), rest)
        self.reconciled = gone
        return gone

    # -- ICMP redirects --------------------------------------------------------------------

    def quiet_redirects(self) -> None:
        """No ICMP redirect from the agent's interfaces (``send_redirects`` 0 on each and on
        ``all``: the kernel sends them when either is on). A datagram the programs
        decapsulated is handed to the stack as received on the interface the tunnel came
        in on; when the kernel forwards it out of that same interface (the home agent's
        reverse-tunnelled datagrams towards the router, RFC 3024) it would send the mobile
        node a redirect (RFC 1812 §5.2.7.2), which the home agent would then tunnel to it.
        The values before are put back by :meth:`close`."""
        ns = self._netns()
        names = []
        for ifindex in self.ifindexes:
            links = ns.ipr.link("get", index=ifindex)
            names.append(str(links[0].get("IFLA_IFNAME")))
        for name in ["all", *names]:
            key = f"net.ipv4.conf.{name}.send_redirects"
            old = write_sysctl(key, 0, self.netns)
            if old != "0":
                self._sysctls.append((key, old))

    def _restore_sysctls(self) -> None:
        while self._sysctls:
            key, old = self._sysctls.pop()
            try:
                write_sysctl(key, old, self.netns)
            except OSError as e:  # the device may be gone already
                log.warning("bpf.sysctl key=%s error=%r", key, e)

    # -- peers and neighbours, owned -------------------------------------------------------

    def _hold_peers(self, owner: Hashable, peers: Iterable[Peer], *, rewrite: bool = True) -> bool:
        """``owner`` now holds exactly ``peers`` (a peer stays while anyone holds it).
        Without ``rewrite`` a peer already held with the same value is not written to the
        map again (the home agent's bindings: every first registration behind one
        care-of address holds the same peer, issue 13); with it, it is -- a visitor puts
        back a peer the edge tunnels took out of the map behind this object's back."""
        held = self._peers_of.pop(owner, None)
        old = None if held is None else set(held)
        new = set(peers)
        written = self._peer_written
        fitted = True
        for p in new:
            key = (p.local, p.remote)
            if old is None or p not in old:
                self._peer_refs[key] += 1
            elif written.get(key) == p:
                continue  # held and in the map: nothing to do
            # new here, or held but not in the map (a full map refused it: again)
            if rewrite or written.get(key) != p:
                if self._fits(MapName.PEERS, p.remote, partial(self.plane.set_peer, p)):
                    written[key] = p
                else:
                    fitted = False
        for p in () if old is None else old - new:
            key = (p.local, p.remote)
            self._peer_refs[key] -= 1
            if self._peer_refs[key] <= 0:
                del self._peer_refs[key]
                written.pop(key, None)
                self.plane.del_peer(p.local, p.remote)
        if new:
            # the caller's tuple when it names each peer once (a binding's: shared)
            kept = peers if type(peers) is tuple and len(peers) == len(new) else tuple(new)
            self._peers_of[owner] = kept
        return fitted

    def _fits(self, name: MapName, about: IPv4Address, write: Callable[[], None]) -> bool:
        """``write`` an entry of the map ``name``; ``False`` when the map is full. Its
        datagrams then take the slow path -- the user-space plane forwards a binding through
        its route into the TUN device, and decapsulates what the program passes up -- so
        a home agent with more bindings than ``max_entries`` keeps serving every one. Counted
        in :attr:`full`; logged the first time and at every thousandth refusal after."""
        try:
            write()
        except BpfError as e:
            if e.errno != errno.E2BIG:
                raise
            self.full[name.value] += 1
            n = self.full[name.value]
            if n == 1 or n % 1000 == 0:
                log.warning(
                    "bpf.map_full map=%s refused=%d last=%s: the user-space plane forwards "
                    "what does not fit",
                    name.value,
                    n,
                    about,
                )
            return False
        return True

    def _netns(self) -> Netns:
        if self._ns is None:
            self._ns = Netns(self.netns)
        return self._ns

    def keep_neighbour(self, owner: Hashable, remote: IPv4Address) -> None:
        """The next hop towards ``remote`` (a tunnel exit the programs find with
        ``bpf_fib_lookup``) gets a managed neighbour entry: the kernel resolves it and
        keeps it fresh. Best effort: without a route nothing is made (the program then
        leaves the datagrams to the slow path)."""
        key = self._next_hop.get(remote)
        if key is not None and key in self._neighbours:
            self._neighbours[key].add(owner)
            return
        try:
            ns = self._netns()
            direct: RtnlSocket | None = getattr(ns.ipr, "direct", None)
            if direct is not None:  # issue 13: ~0.7 ms through pyroute2 per new remote
                found = direct.route_get(remote.packed)
                if found is None:
                    return
                rtype, oif, gateway = found
                hop = str(remote if gateway is None else IPv4Address(gateway))
            else:
                routes = ns.ipr.route("get", dst=str(remote))
                if not routes:
                    return
                r = routes[0]
                rtype, oif = r["type"], int(r.get("RTA_OIF") or 0)
                hop = str(r.get("RTA_GATEWAY") or remote)
            if not oif or rtype != 1:  # RTN_UNICAST only (not local)
                return
            key = (oif, hop)
            owners = self._neighbours.setdefault(key, set())
            if not owners:
                self._managed(ns, oif, hop)
            owners.add(owner)
            self._next_hop[remote] = key
        except Exception as e:  # the fast path works without it, only less well
            log.warning("bpf.neighbour remote=%s error=%r", remote, e)

    def _managed(self, ns: Netns, oif: int, hop: str) -> None:
        known = {
            str(n.get("NDA_DST")): n
            for n in ns.ipr.neigh("dump", family=2, ifindex=oif)
            if n.get("NDA_DST") is not None
        }
        n = known.get(hop)
        if n is not None and int(n.get("state", 0)) & 0x80:  # NUD_PERMANENT: leave it
            self._found_neighbours.add((oif, hop))  # (and leave it when let go)
            return
        spec: dict[str, object] = {"dst": hop, "ifindex": oif, "NDA_FLAGS_EXT": NTF_EXT_MANAGED}
        if n is not None and n.get("NDA_LLADDR"):
            spec["lladdr"] = n.get("NDA_LLADDR")
            spec["state"] = 0x08  # NUD_STALE: the kernel confirms it
            if not int(n.get("NDA_FLAGS_EXT") or 0) & NTF_EXT_MANAGED:
                # the host's own entry (a gateway's, say), not one a killed daemon left
                # managed: made plain again, not deleted, when the fast path lets it go
                self._found_neighbours.add((oif, hop))
        else:
            spec["state"] = 0x00  # NUD_NONE: the kernel resolves it
        ns.ipr.neigh("replace", **spec)

    def _let_go(self, oif: int, hop: str) -> None:
        """The managed entry for ``hop`` on ``oif`` is no longer wanted: deleted if this
        object made it; if it was there before (learnt by the kernel, or an operator's),
        made a plain one again -- the same hardware address, stale, no longer managed (an
        administrative replace without ``NTF_EXT_MANAGED`` clears it) -- rather than taken
        from the host."""
        ns = self._netns()
        if (oif, hop) in self._found_neighbours:
            self._found_neighbours.discard((oif, hop))
            for n in ns.ipr.neigh("dump", family=2, ifindex=oif):
                if str(n.get("NDA_DST")) == hop and int(n.get("state", 0)) & 0x80:
                    return  # an operator's permanent entry: never touched
                if str(n.get("NDA_DST")) == hop and n.get("NDA_LLADDR"):
                    lladdr = n.get("NDA_LLADDR")
                    ns.ipr.neigh("replace", dst=hop, ifindex=oif, lladdr=lladdr, state=0x08)
                    return
        ns.ipr.neigh("del", dst=hop, ifindex=oif)

    def _release_neighbours(self, owner: Hashable) -> None:
        for key, owners in list(self._neighbours.items()):
            owners.discard(owner)
            if not owners:
                del self._neighbours[key]
                for remote in [r for r, k in self._next_hop.items() if k == key]:
                    del self._next_hop[remote]
                oif, hop = key
                with contextlib.suppress(Exception):
                    self._let_go(oif, hop)

    def _release(self, owner: Hashable) -> None:
        self._hold_peers(owner, ())
        self._release_neighbours(owner)

    # -- home agent ------------------------------------------------------------------------

    def sync(self, home: IPv4Address, entries: Sequence[TunnelEntry]) -> bool:
        """Make the map entries of ``home`` follow the user-space table's ``entries``: the
        binding (one care-of address without GRE checksum) and, for each care-of address,
        a peer whose reverse-tunnelled datagrams are decapsulated (RFC 3024). ``False``
        when a full map refused one of them (:meth:`_fits`): the caller asks again later
        (the executor, at the binding's next renewal), and it goes in once there is room."""
        owner = home  # (not a tuple with it: 56 bytes a binding less, issue 13)
        peers: Sequence[Peer]
        fitted = True
        if len(entries) == 1 and not entries[0].tunnel.gre_checksum:
            entry = entries[0]
            known = self._bpf_tunnels.get(id(entry))
            if known is None or known[0] is not entry:
                if len(self._bpf_tunnels) >= 4096:
                    self._bpf_tunnels.clear()
                peer = Peer(
                    entry.tunnel.src, entry.tunnel.dst, bound_source=True, forward=self.forward
                )
                known = self._bpf_tunnels[id(entry)] = (entry, bpf_tunnel(entry), (peer,))
            if self._fits(MapName.BINDINGS, home, lambda: self.plane.set_binding(home, known[1])):
                self.keep_neighbour(owner, entry.tunnel.dst)
            else:
                fitted = False
            peers = known[2]
        else:
            self.plane.del_binding(home)
            self._release_neighbours(owner)
            peers = [
                Peer(e.tunnel.src, e.tunnel.dst, bound_source=True, forward=self.forward)
                for e in entries
            ]
        # RFC 3024 §4.3: what a care-of address reverse-tunnels must come from a home
        # address bound to it (the program checks mip4_bindings)
        return self._hold_peers(owner, peers, rewrite=False) and fitted

    def remove(self, home: IPv4Address) -> None:
        if self._closing:
            return  # the entries go with the maps (entries_go_with_close)
        self.plane.del_binding(home)
        self._release(home)

    # -- proxy ARP (home agent, RFC 5944 §4.6) ----------------------------------------------

    def answers_arp(self, ifindex: int) -> bool:
        """Whether ``mip4_agent`` is attached at ingress of ``ifindex``: it answers ARP
        there for the addresses :meth:`proxy_arp` names."""
        return ifindex in self.ifindexes and (Program.AGENT, True) in HOOKS[self.role]

    def proxy_arp(self, address: IPv4Address, ifindex: int, mac: bytes) -> bool:
        """Answer ARP requests for ``address`` arriving on ``ifindex`` with ``mac`` (its
        own hardware address): the program replies at once, as the kernel for a proxy
        entry with ``proxy_delay`` 0. False if the map is full (nothing made)."""
        return self.plane.set_proxy(address, ifindex, mac)

    def unproxy_arp(self, address: IPv4Address, ifindex: int) -> bool:
        """Stop answering for ``address`` on ``ifindex``; False if it was not answered."""
        return self.plane.del_proxy(address, ifindex)

    # -- foreign agent ---------------------------------------------------------------------

    def visitor(
        self,
        home: IPv4Address,
        care_of_address: IPv4Address,
        home_agent: IPv4Address,
        *,
        delivery: Visitor | None,
        reverse: Encapsulation | None,
    ) -> Callable[[], None]:
        """A visitor accepted: tunnels from ``home_agent`` to ``care_of_address`` are
        decapsulated (any GRE key: the agent is not told it), datagrams for ``home`` go to
        ``delivery`` (its hardware address; ``None``: to the stack, which ARPs), and with
        ``reverse`` the visitor's datagrams are tunnelled to ``home_agent``. Its traffic
        is counted both ways (:meth:`visitor_traffic`); the undo keeps the counters, which
        accounting reads after the visitor is gone. Returns the undo."""
        owner = ("visitor", home)
        self._hold_peers(owner, [Peer(care_of_address, home_agent, any_key=True)])
        if not self.plane.account_visitor(home):
            log.warning("bpf.acct_full home=%s: its fast-path traffic is not counted", home)
        # a full map leaves the visitor to the slow path: delivered by the stack, reverse
        # tunnelled by the user-space plane (its rule into the TUN device)
        if delivery is not None:
            self._fits(MapName.VISITORS, home, partial(self.plane.set_visitor, home, delivery))
        if reverse is not None:
            tunnel = Tunnel(care_of_address, home_agent, _ENCAP[reverse])
            if self._fits(MapName.REVERSE, home, partial(self.plane.set_reverse, home, tunnel)):
                self.keep_neighbour(owner, home_agent)

        def undo() -> None:
            if self._closing:
                return  # the entries go with the maps (entries_go_with_close)
            self.plane.del_visitor(home)
            self.plane.del_reverse(home)
            self.plane.forget_counters(home)
            self._release(owner)

        return undo

    def relay(self, home: IPv4Address, relay: Relay) -> bool:
        """The program relays the usual renewal of the visitor ``home`` (issue 13,
        :mod:`mip4.core.fa_kernel`); ``False`` if the map is full (the engine relays it)."""
        return self._fits(MapName.RELAY, home, partial(self.plane.set_relay, home, relay))

    def stop_relay(self, home: IPv4Address) -> None:
        """The program relays nothing more for ``home``."""
        if not self._closing:
            self.plane.del_relay(home)

    def relay_records(self) -> RelayRecords:
        """The datagrams the program relayed, to give back to the engine
        (``RelayedByKernel``), in the order it relayed them."""
        return self.plane.relay_records()

    def visitor_traffic(self, home: IPv4Address) -> tuple[int, int, int, int] | None:
        """(input octets, output octets, input packets, output packets) of the visitor
        ``home`` through the fast path (see :meth:`BpfPlane.visitor_traffic`); None if this
        agent never accepted it since it started. What the fast path leaves to the slow
        path is counted by the user-space plane."""
        return self.plane.visitor_traffic(home)

    # -- co-located mobile node ------------------------------------------------------------

    def colocated(
        self,
        home: IPv4Address,
        care_of_address: IPv4Address,
        home_agent: IPv4Address,
        *,
        reverse: Encapsulation | None,
        oif: int,
        mtu: int,
    ) -> Callable[[], None]:
        """The node at a co-located care-of address: tunnels from ``home_agent`` are
        decapsulated; with ``reverse`` its datagrams from ``home`` are tunnelled to
        ``home_agent`` out of ``oif`` (MTU ``mtu``; the kernel resolves the next hop: a
        host's fib lookups answer "forwarding disabled"). Returns the undo."""
        owner = ("colocated", home)
        self._hold_peers(owner, [Peer(care_of_address, home_agent)])
        if reverse is not None:
            tunnel = Tunnel(care_of_address, home_agent, _ENCAP[reverse], oif=oif, mtu=mtu)
            self._fits(MapName.REVERSE, home, partial(self.plane.set_reverse, home, tunnel))

        def undo() -> None:
            if self._closing:
                return  # the entries go with the maps (entries_go_with_close)
            self.plane.del_reverse(home)
            self.plane.forget_counters(home)
            self._release(owner)

        return undo

    # -- status ----------------------------------------------------------------------------

    def counters(self, limit: int | None = None) -> dict[str, dict[str, int]]:
        """Packets and bytes the fast path carried, from the per-CPU map: per home address
        tunnelled to (home agent, key: the address), per home address reverse-tunnelled
        (``"<home> reverse"``) and per tunnel peer decapsulated from
        (``"<peer> decapsulated"``); with ``limit``, from the first that many entries of
        the counters' map."""
        label = {Direction.HA: "", Direction.REVERSE: " reverse", Direction.DECAP: " decapsulated"}
        out: dict[str, dict[str, int]] = {}
        for (addr, direction), traffic in sorted(self.plane.counters(limit).items()):
            out[f"{addr}{label[direction]}"] = {
                "packets": traffic.packets,
                "bytes": traffic.bytes,
            }
        return out

    def events(self) -> dict[str, int]:
        return {e.name.lower(): n for e, n in self.plane.events().items() if n}

    # -- lifetime --------------------------------------------------------------------------

    def entries_go_with_close(self) -> None:
        """A clean stop is under way and :meth:`close` follows: from now on the owners'
        undos (a binding's, a visitor's, the attachment's) delete no map entry and release
        no neighbour entry. The maps go at :meth:`close` with every entry in them: their
        filters are detached, their pins removed and the object closed -- nothing else
        holds them (a daemon's maps are its own: pinned under its TUN device's name, or
        not pinned at all; no map survives a clean stop by design) -- and :meth:`close`
        deletes the managed neighbour entries, the only kernel objects the owners hold
        outside the maps. At a million bindings a delete per entry (and the peers' and
        neighbours' bookkeeping per owner) was a fifth of a clean stop."""
        self._closing = True

    def _delete_neighbours(self) -> None:
        """Every managed neighbour entry made goes, whoever holds it (a clean stop)."""
        for oif, hop in self._neighbours:
            with contextlib.suppress(Exception):
                self._let_go(oif, hop)
        self._neighbours.clear()
        self._next_hop.clear()

    def close(self) -> None:
        """A clean stop: no filter, clsact hook, pin, map or managed neighbour left. The
        maps' entries are not deleted one by one: the maps go with their last holder, this
        object, once the filters and pins are gone (a pin that could not be removed keeps
        its map: that map is emptied, entry by entry)."""
        self._closing = True
        self._delete_neighbours()
        self._peers_of.clear()
        self._peer_refs.clear()
        self._peer_written.clear()
        for ifindex in self.ifindexes:
            try:
                detach = partial(
                    BpfPlane.detach, ifindex, priority=PRIORITY, handle=HANDLE, destroy_hook=True
                )
                self._in_ns(detach)
            except OSError as e:  # the device may be gone already
                log.warning("bpf.detach ifindex=%s error=%r", ifindex, e)
        self.ifindexes = ()
        self._restore_sysctls()
        pin_dir = self.plane.pin_dir
        if pin_dir is not None:
            self.plane.unpin()
            for name in MapName:
                if (pin_dir / name).exists():
                    log.warning("bpf.unpin map=%s: pin left, its entries deleted", name.value)
                    self.plane.clear(name)
            # the directory open() made for the pins, once empty, and the default layout's
            # ``mip4/`` above it if no other daemon's is in it: nothing left in the bpffs
            with contextlib.suppress(OSError):
                pin_dir.rmdir()
                if pin_dir.parent.name == "mip4":
                    pin_dir.parent.rmdir()
        self.plane.close()
        self._close_ns()

    def _close_ns(self) -> None:
        if self._ns is not None:
            self._ns.close()
            self._ns = None

    def abandon(self) -> None:
        """What a killed daemon leaves: filters attached, maps pinned and forwarding (and
        the managed neighbour entries, which the kernel keeps fresh)."""
        self.plane.close()
        self._close_ns()


__all__ = [
    "DATAPLANES",
    "HOOKS",
    "Event",
    "FastPath",
    "Role",
    "bpf_tunnel",
    "overhead",
    "probe_once",
    "resolve_dataplane",
]
