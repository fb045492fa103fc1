"""The Linux executor: the kernel recipe for each action an engine returns.

Theory of operation
-------------------
:class:`LinuxExecutor` carries the actions out with sockets, netlink
(:class:`mip4.io.netns.Netns`) and the user-space tunnel
(:class:`mip4.io.forwarder.Forwarder`). Every kernel object it makes is recorded on exactly
one undo stack (:mod:`mip4.io.undo`): one per visitor, one for the mobile node's current
attachment, one for what it withdrew while away from home, and the namespace's own stack
for what the node set up once (sysctls, the reverse-tunnel route, proxy ARP entries) --
except a home agent's bindings, which keep no record at all: what one made follows from
its home address (:meth:`LinuxExecutor.install_binding`). Removing a binding, a visitor or
an attachment undoes what it made; :meth:`LinuxExecutor.close` undoes it all. With a
journal the kernel records also go to a file that the next daemon's leftover cleaner reads
after a crash.

Between :meth:`LinuxExecutor.hold_actions` and :meth:`LinuxExecutor.release_actions` (the
driver: one read of a socket) the kernel work of first registrations waits and is done
together -- the routes and proxy entries in one netlink message, then the first gratuitous
ARPs, the journal's lines, then the replies -- so that a reply still leaves only once what
its registration asked of the kernel is there (issue 13). The handover edge tunnels' ends
are kept by :class:`mip4.io.edge_ends.EdgeEnds` (the executor's ``edges``).

==========================  ==============================================================
``SendUdp``                  UDP 434 socket (``IP_PKTINFO`` for source/interface,
                             ``IP_TTL`` per message); with ``link_dst`` an IPv4/UDP
                             datagram sent by AF_PACKET to that hardware address (no ARP)
``SendIcmp``                 raw ICMP socket bound to the interface (TTL from the action)
``ProxyArp``                 ``ip neigh add proxy`` (own records; the kernel answers only with
                             forwarding on and a route to the address via another device);
                             with a bpf fast path on the interface its map entry instead
                             (the program answers; no kernel entry)
``GratuitousArp``            AF_PACKET ARP requests, ``count`` times, ``garp_interval``
                             apart (RFC 5944 §4.6)
``InstallBinding``           tunnel table entry + host route to the TUN device (home agent);
                             with B the home link's broadcasts are tunnelled too (§4.3);
                             with a bpf fast path also its map entry (the TUN route is
                             then the slow path), undone with the binding
``RemoveBinding``            the reverse
``InstallVisitor``           decapsulated datagrams for the home address go to the
                             visitor's hardware address; with ``reverse_tunnel`` a policy
                             rule sends the visitor's own datagrams into the TUN device,
                             and they are tunnelled to the home agent (RFC 3024)
``RemoveVisitor``            the reverse
``RelayInKernel``            the bpf fast path's ``mip4_relay`` entry: the program relays the
                             visitor's usual renewal (issue 13, :mod:`mip4.core.fa_kernel`);
                             without a fast path (or a full map) nothing: every datagram
                             then comes to the engine, as without it
``StopRelayInKernel``        that entry deleted
``AwayFromHome``             the home subnet's on-link route withdrawn from the interface
                             and ARP kept quiet about the home address (RFC 5944 §4.6),
                             before the node registers (until ``AtHome``)
``UseForeignAgent``          permanent neighbour entry for the agent (its advertised
                             hardware address, never ARP), host route to it and the default
                             route via it; the home subnet's on-link route is withdrawn and
                             ARP kept quiet about the home address (RFC 5944 §4.6)
``UseColocatedAddress``      accept tunnels from the home agent at the care-of address;
                             with ``reverse_tunnel`` a policy rule for the home address
``AtHome``                   all of the above undone; home subnet route and home default
                             route restored
``InstallEdgeTunnel``        the peer agent accepted as a tunnel source; SOURCE: the
                             visitor's datagrams re-tunnelled to the new agent
                             (:mod:`mip4.io.edge`); TARGET: the node's own datagrams
                             tunnelled back to the previous agent once it arrived
``RemoveEdgeTunnel``         the reverse (with any buffer and arrival delivery)
``BufferPackets``            datagrams for the home address held (bounded) until ...
``FlushBuffer``              ... delivered in order to the node's hardware address; with a
                             TARGET edge tunnel a policy rule sends the node's datagrams
                             into the TUN device (then back to the previous agent)
``DropBuffer``               the held datagrams discarded
``LeaveForeignAgent``        the attachment's routes and neighbour entry undone at once
                             (the home address and the away-from-home state stay)
``Log``                      the ``mip4`` logger, structured fields in ``extra``
==========================  ==============================================================
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, cast  # Any: see _HANDLERS below

from mip4.core.actions import (
    Action,
    AtHome,
    AwayFromHome,
    BufferPackets,
    DropBuffer,
    FlushBuffer,
    GratuitousArp,
    InstallBinding,
    InstallEdgeTunnel,
    InstallVisitor,
    LeaveForeignAgent,
    Log,
    ProxyArp,
    RelayInKernel,
    RemoveBinding,
    RemoveEdgeTunnel,
    RemoveVisitor,
    SendIcmp,
    SendUdp,
    StopRelayInKernel,
    UseColocatedAddress,
    UseForeignAgent,
)
from mip4.dataplane.common import Tunnel
from mip4.dataplane.table import LinkDelivery, TunnelEntry
from mip4.wire.packets import ipv4_packet

from .bpf.agent import FastPath, overhead
from .bpf.plane import Visitor
from .bpf.relay import Relay
from .edge_ends import EdgeEnds
from .executor_arp import ArpActions, _Repeats
from .executor_bindings import BindingActions
from .forwarder import Forwarder
from .held import HOLDABLE, HeldActions
from .icmpsock import open_icmp_socket
from .mmsg import BatchSender
from .netns import Netns
from .rawsock import (
    IP_MULTICAST_TTL,
    IP_PKTINFO,
    IP_TTL,
    PKTINFO,
    ArpSender,
    LinkUdpSender,
    keep_hardware_addresses,
    open_packet_sender,
    open_udp_control,
    send_to_link,
    send_udp,
)
from .route_deletes import RouteDeletes
from .undo import Journal, RouteRecord, UndoStack

log = logging.getLogger("mip4")


REVERSE_TABLE = 434  #: routing table holding "default dev <tun>" for reverse tunnelling
#: bpf plane, co-located node: "default via <router> dev <if> mtu <MTU - outer header>" for
#: the home address's datagrams, which mip4_host_encap tunnels at egress of <if>
BPF_REVERSE_TABLE = 435
RULE_PRIORITY = 4340  #: first priority used for reverse-tunnel rules


@dataclass
class LinuxExecutor(ArpActions, BindingActions):
    """Carries out actions in namespace ``netns`` (``None``: the current one).

    ``forwarder`` is needed for bindings, visitors and co-located operation;
    ``tunnel_source`` is this node's address as tunnel entry point (home agent: its
    address; foreign agent and co-located node take it from the action). For a mobile node,
    ``home_gateway`` and ``home_network`` let :class:`AtHome` restore the home
    configuration. ``call_later`` spaces gratuitous ARPs (default: sent back to back).
    ``journal`` mirrors every kernel record (for the leftover cleaner after a crash); a
    binding's route through the TUN device has none (it goes with the device).
    """

    netns: str | None = None
    udp: socket.socket | None = None
    forwarder: Forwarder | None = None
    tunnel_source: IPv4Address | None = None
    own_addresses: frozenset[IPv4Address] = frozenset()
    home_gateway: IPv4Address | None = None
    home_network: IPv4Network | None = None
    garp_interval: float = 0.2
    call_later: Callable[[float, Callable[[], None]], object] | None = None
    reverse_table: int = REVERSE_TABLE
    journal: Journal | None = None
    #: the home agent's tc-BPF fast path: bindings become map entries too
    fast_path: FastPath | None = None
    #: issue 13 (a foreign agent relays tens of requests per read): between
    #: :meth:`hold_actions` and :meth:`release_actions` the datagrams sent without a
    #: hardware address, when nothing waits before them, are gathered and sent together
    #: with one ``sendmmsg`` (:class:`~mip4.io.mmsg.BatchSender`) when the hold ends or
    #: before anything held is carried out -- each as :func:`send_udp` sends it, in their
    #: order; a failed one is a failure of its action, as when it fails at once
    batch_udp: bool = False
    #: per hold: whether :attr:`batch_udp` gathers this hold's datagrams; the daemon's
    #: reader (:meth:`NodeIO.attach <mip4.io.runtime.NodeIO.attach>`) sets it for each
    #: read, off for reads too small for a batch to pay. The setting itself is left alone:
    #: it goes off for good only when libc has no ``sendmmsg``
    gather_udp: bool = field(default=True, init=False)
    stats: Counter[str] = field(default_factory=Counter)
    ns: Netns = field(init=False)
    _packet: socket.socket | None = field(default=None, init=False)
    _keep_hardware: bool = field(default=False, init=False)
    _link_sender: LinkUdpSender | None = field(default=None, init=False)
    _arp_sender: ArpSender | None = field(default=None, init=False)
    _icmp: dict[str, socket.socket] = field(default_factory=dict, init=False)
    _udp_by_port: dict[int, socket.socket] = field(default_factory=dict, init=False)
    _rules: dict[tuple[IPv4Address, str | None], int] = field(default_factory=dict, init=False)
    _reverse_route: bool = field(default=False, init=False)
    #: what the current UseForeignAgent / UseColocatedAddress made (the attachment)
    _attachment: UndoStack = field(init=False)
    #: the home subnet's on-link routes withdrawn while away (put back by AtHome, close)
    _away: UndoStack = field(init=False)
    _arp_quiet: set[str] = field(default_factory=set, init=False)
    _proxy_immediate: set[str] = field(default_factory=set, init=False)
    #: per (interface, address as an integer): the repeats of the last gratuitous ARP
    #: still to go out
    _garp_repeats: dict[tuple[str, int], _Repeats] = field(default_factory=dict, init=False)
    #: per home address (as an integer: no ``IPv4Address`` hash per relayed reply, issue
    #: 13): the InstallVisitor that made the visitor's kernel objects, and their undo stack
    _visitors: dict[int, tuple[InstallVisitor, UndoStack]] = field(default_factory=dict, init=False)
    #: ``home << 32 | care-of`` of the bindings whose kernel work did not complete: the
    #: executor keeps nothing else per binding (:mod:`mip4.io.executor_bindings`)
    _unsettled: set[int] = field(default_factory=set, init=False)
    #: the handover edge tunnels' ends (RFC 4881, RFC 4988), each with its undo stack
    edges: EdgeEnds = field(init=False)
    #: interface index -> the interface's hardware address (the source of the fast path's
    #: deliveries to visitors): asked of netlink once per interface, not per visitor (a
    #: round trip through the netlink thread for every first registration); by index, so
    #: an interface made again under the same name is asked again
    _own_link: dict[int, bytes] = field(default_factory=dict, init=False)
    #: (care-of address, what the binding asks of the kernel) -> the bindings' shared
    #: tunnel entry, for the tunnel source and own addresses in ``_tunnel_entries_for``
    _tunnel_entries: dict[tuple[IPv4Address, tuple[object, ...]], TunnelEntry] = field(
        default_factory=dict, init=False
    )
    _tunnel_entries_for: tuple[object, ...] = field(default=(), init=False)
    #: between :meth:`hold_actions` and :meth:`release_actions`: what waits to be done
    #: together (issue 13); ``None``: every action is carried out at once
    _held: HeldActions | None = field(default=None, init=False)
    #: the datagrams gathered while holding (:attr:`batch_udp`)
    _udp_batch: BatchSender | None = field(default=None, init=False)
    #: interface indexes of the devices deleted after :meth:`close` in the same stop
    #: (:meth:`devices_going`): routes through them are left to the kernel
    _going: frozenset[int] = field(default=frozenset(), init=False)
    #: the expired bindings' route deletes, sent off the loop's thread
    #: (:mod:`mip4.io.route_deletes`; made on the first expiry)
    _route_deletes: RouteDeletes | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.ns = Netns(self.netns, journal=self.journal)
        self._attachment = self.ns.new_stack("attachment")
        self._away = self.ns.new_stack("away from home")
        self.edges = EdgeEnds(self)
        if self.udp is not None:
            self._udp_by_port[self.udp.getsockname()[1]] = self.udp

    # -- plumbing ---------------------------------------------------------------------

    def hold_journal_lines(self, defer: Callable[[Callable[[], None]], object] | None) -> None:
        """With ``defer`` (an event loop's ``call_soon``) the journal's lines of one pass of
        the loop are written together (:attr:`Journal.defer`), and before any reply leaves
        (:meth:`send_udp`); ``None``: written as they come again (the held ones now)."""
        if self.journal is not None:
            self.journal.flush()
            self.journal.defer = defer

    def devices_going(self, ifindexes: Iterable[int]) -> None:
        """The devices ``ifindexes`` (the TUN device: its owner closes it) are deleted
        after :meth:`close`, in the same stop: :meth:`close` sends no delete for a route
        through one of them -- the kernel flushes a device's routes, in every table, as it
        unregisters it (at a million bindings, one ``RTM_DELROUTE`` each was a third of a
        clean stop). Whoever says so deletes the devices (:meth:`NodeIO.close
        <mip4.io.runtime.NodeIO.close>` checks that its TUN device went). Every other
        record -- routes through other devices, rules (a rule naming a device outlives
        it), neighbour and proxy entries, sysctls -- is still undone one by one."""
        self._going = frozenset(ifindexes)

    def close(self) -> None:
        """Undo every route, rule, neighbour and proxy entry made, close our sockets (a
        route through a device going in the same stop is left to the kernel:
        :meth:`devices_going`)."""
        for action, exc in self.release_actions():
            log.warning("executing %r failed: %s", action, exc)
        deletes = self._route_deletes
        if deletes is not None:
            # what is queued goes first, in its order -- unless the TUN device, every
            # queued route's device, goes in this stop: the kernel deletes them with it
            fwd = self.forwarder
            if fwd is not None and self.ns.index_if_there(fwd.tun.name) in self._going:
                deletes.abandon()
            else:
                deletes.close()
            self._route_deletes = None
        self.hold_journal_lines(None)
        if self.journal is not None:
            self.journal.tear_down()
        stacks: list[UndoStack | None] = [
            self._attachment,
            self._away,
            *self.edges.stacks(),
            *reversed([stack for _visitor, stack in self._visitors.values()]),
            None,  # the bindings (newest first), which keep no stack
            self.ns.stack,
        ]
        fwd = self.forwarder
        homes = [] if fwd is None else list(reversed(fwd.table.bindings))
        self._visitors.clear()
        self.edges.clear()
        self._unsettled.clear()
        going = self._going
        # the proxy entries (one per node away, user-space plane) deleted together, in
        # their turn: anything else undone first sends what is queued
        batch = self.ns.delete_batch()
        leave: Callable[[object], bool] | None = None
        if going or batch is not None:

            def leave(record: object) -> bool:
                if type(record) is RouteRecord and record.oif in going:
                    return True
                if batch is None:
                    return False
                if batch.take(record):
                    return True
                batch.flush()
                return False

        journal = self.journal
        if batch is not None and journal is not None:
            journal.hold()  # (what is queued is forgotten already)
        try:
            for stack in stacks:
                if stack is None:
                    if fwd is not None and homes:
                        self._unbind_all(homes, fwd, batch)
                    continue
                for err in stack.undo(leave):
                    log.warning("clean-up (%s): %s", stack.name, err)
        finally:
            if batch is not None:
                try:
                    batch.flush()
                except Exception as exc:
                    log.warning("clean-up (%s): %s", self.ns.stack.name, exc)
                for err in batch.errors:
                    log.warning("clean-up (%s): %s", self.ns.stack.name, err)
                if journal is not None:
                    journal.release()
        self.abandon()

    def abandon(self) -> None:
        """Close our sockets and leave every kernel object (and the journal) as it is: what
        a killed process leaves behind (the lab's crash simulations)."""
        self._held = None  # what waited dies with the process
        if self._route_deletes is not None:
            self._route_deletes.abandon()
            self._route_deletes = None
        self.hold_journal_lines(None)
        self.ns.close()
        for sock in [*self._icmp.values(), *self._udp_by_port.values()]:
            if sock is not self.udp:
                sock.close()
        self._icmp.clear()
        if self._arp_sender is not None:
            self._arp_sender.close()
            self._arp_sender = None
        if self._link_sender is not None:
            self._link_sender.close()
        if self._packet is not None:
            self._packet.close()
            self._packet = None
        self._link_sender = None

    def counters(self) -> dict[str, int]:
        """:attr:`stats`, and the expired bindings' route deletes off the loop's thread
        (:mod:`mip4.io.route_deletes`: ``route_deletes_`` sent, missing, failed, settled,
        batches, pending, the most queued at once, and the longest one batch took in the
        kernel, in microseconds)."""
        out = dict(self.stats)
        deletes = self._route_deletes
        if deletes is not None:
            for key, value in deletes.stats.items():
                out[f"route_deletes_{key}"] = value
            out["route_deletes_pending"] = deletes.pending()
            out["route_deletes_longest_us"] = round(deletes.longest * 1e6)
            out["route_deletes_most_queued"] = deletes.most_queued
        return out

    def __enter__(self) -> LinuxExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def packet(self) -> socket.socket:
        if self._packet is None:
            self._packet = open_packet_sender(self.netns)
            if self._keep_hardware:
                keep_hardware_addresses(self._packet)
        return self._packet

    def keep_hardware_addresses(self) -> None:
        """Keep the interfaces' own hardware addresses (gratuitous ARPs) instead of asking
        the kernel for each: for an executor whose owner forgets them when a link changes
        (:class:`~mip4.io.runtime.NodeIO`: :func:`~mip4.io.rawsock.forget_hardware_addresses`
        on the namespace's link notifications)."""
        self._keep_hardware = True
        if self._packet is not None:
            keep_hardware_addresses(self._packet)
        if self._arp_sender is not None:
            self._arp_sender.keep_hardware_addresses()

    @property
    def arp_sender(self) -> ArpSender:
        """Gratuitous ARPs on packet sockets bound to their interface (issue 13), each
        announcement's frame made once for its repeats (:class:`~mip4.io.rawsock.ArpSender`;
        :attr:`packet` where an interface has no bound socket)."""
        sender = self._arp_sender
        if sender is None:
            sender = self._arp_sender = ArpSender(
                self.netns, lambda: self.packet, keep=self._keep_hardware
            )
        return sender

    @property
    def link_sender(self) -> LinkUdpSender:
        """UDP datagrams to hardware addresses (a foreign agent's replies to its
        visitors), with a header template per visitor, on :attr:`packet` -- or, on an
        Ethernet link, on a packet socket bound to it (no interface index asked per
        datagram; :class:`~mip4.io.rawsock.LinkUdpSender`)."""
        sender = self._link_sender
        if sender is None:
            sender = self._link_sender = LinkUdpSender(
                self.packet, bind_links=True, netns=self.netns
            )
        return sender

    def _fwd(self, what: str) -> Forwarder:
        if self.forwarder is None:
            raise RuntimeError(f"{what} needs a Forwarder (a TUN device and raw sockets)")
        return self.forwarder

    def _interface_address(self, interface: str) -> IPv4Address:
        addrs = self.ns.addresses(interface)
        if not addrs:
            raise RuntimeError(f"{interface} has no IPv4 address to send from")
        return addrs[0].ip

    def execute(self, action: Action) -> None:
        kind = type(action)
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise NotImplementedError(f"no Linux executor for {kind.__name__}")
        self.stats[kind.__name__] += 1
        held = self._held
        # the type first: a send (held itself, or not) asks nothing of what waits here
        # (HeldActions.waiting, without the property call)
        if held is not None and kind not in HOLDABLE and (held.kernel or held.arps or held.sends):
            self._carry_out_held()  # what came before is done before it, as without holding
        handler(self, action)

    # -- a read's actions together (issue 13) ------------------------------------------

    def hold_actions(self) -> None:
        """From now until :meth:`release_actions` (the driver: one read of the control
        socket, one timer) the kernel work of first registrations is gathered and done
        together (:mod:`mip4.io.held` says how, and what still holds when a reply leaves).
        Any other action first carries out what waits (a barrier), as does a second request
        for the same address; a reply with nothing waiting leaves at once."""
        if self._held is None:
            self._held = HeldActions()

    def release_actions(self) -> list[tuple[Action, Exception]]:
        """Carry out what waits and stop holding. Returns the actions that failed, each
        with its exception (what :meth:`execute` would have raised for it: a route that
        fails is its binding's failure, and the others of the message are done)."""
        held = self._held
        if held is None:
            return []
        try:
            self._carry_out_held()
        finally:
            self._held = None
        return held.failed

    def _carry_out_held(self) -> None:
        held = self._held
        assert held is not None
        batch = self._udp_batch
        if batch is not None and batch.items:  # gathered before anything waited: first
            held.failed.extend(self._flush_udp(batch))
        held.carry_out(self.ns.send_requests, self._send_udp)

    def _gather_udp(self, a: SendUdp) -> bool:
        """Gather ``a`` (no hardware address, nothing waiting) for the batch; ``False``:
        send it now (what was gathered before it has gone)."""
        batch = self._udp_batch
        if batch is None:
            try:
                batch = self._udp_batch = BatchSender()
            except OSError:  # (no sendmmsg in this libc: one by one from now on)
                self.batch_udp = False
                return False
        sock = self._udp_by_port.get(a.sport) or self._udp_socket(a.sport)
        ifindex = self.ns.index(a.interface) if a.interface else 0
        add = batch.add
        if add(sock, a, a.payload, a.dst, a.dport, a.src, ifindex, a.ttl):
            return True
        if not batch.items:
            return False  # too long for a slot
        held = self._held
        assert held is not None
        held.failed.extend(self._flush_udp(batch))  # full, or for another socket
        return add(sock, a, a.payload, a.dst, a.dport, a.src, ifindex, a.ttl)

    def _flush_udp(self, batch: BatchSender) -> list[tuple[Action, Exception]]:
        journal = self.journal
        if journal is not None and journal._pending:  # as _send_udp: the journal first
            journal.flush()
        failed = batch.flush()
        return [(cast(Action, item), exc) for item, exc in failed] if failed else []

    # -- sending ----------------------------------------------------------------------

    def _udp_socket(self, sport: int) -> socket.socket:
        sock = self._udp_by_port.get(sport)
        if sock is None:
            sock = open_udp_control(self.netns, port=sport)
            self._udp_by_port[sport] = sock
        return sock

    def send_udp(self, a: SendUdp) -> None:
        held = self._held
        # (HeldActions.waiting, without the property call: issue 13, one test per reply)
        if held is not None:
            if held.kernel or held.arps or held.sends:
                if a.link_dst is None:
                    held.sends.append(a)  # after what the actions before it asked for
                    return
                self._carry_out_held()
            elif a.link_dst is None and self.batch_udp and self.gather_udp and self._gather_udp(a):
                return  # sent with the read's others (issue 13)
        self._send_udp(a)

    def _send_udp(self, a: SendUdp) -> None:
        journal = self.journal
        if journal is not None and journal._pending:  # (Journal.pending, in line)
            # what the kernel holds for this registration is in the journal before the
            # reply announcing it leaves (as when each line was written at once)
            journal.flush()
        if a.link_dst is not None:
            if a.interface is None:
                raise ValueError("SendUdp with link_dst needs an interface")
            src = a.src or self._interface_address(a.interface)
            ttl = a.ttl if a.ttl is not None else 64
            sender = self._link_sender
            if sender is None:
                sender = self.link_sender
            sender.send(a.interface, a.link_dst, src, a.dst, a.sport, a.dport, a.payload, ttl)
            return
        ifindex = self.ns.index(a.interface) if a.interface else 0
        sock = self._udp_by_port.get(a.sport) or self._udp_socket(a.sport)
        send_udp(sock, a.payload, a.dst, a.dport, src=a.src, ifindex=ifindex, ttl=a.ttl)

    def send_icmp(self, a: SendIcmp) -> None:
        if a.link_dst is not None:
            # e.g. an advertisement answering a visitor's solicitation: no ARP for it
            src = a.src or self._interface_address(a.interface)
            pkt = ipv4_packet(src, a.dst, 1, a.payload, ttl=a.ttl)
            send_to_link(self.packet, a.interface, a.link_dst, pkt)
            return
        sock = self._icmp.get(a.interface)
        if sock is None:
            sock = open_icmp_socket(a.interface, self.netns, ttl=a.ttl)
            self._icmp[a.interface] = sock
        sock.setsockopt(socket.IPPROTO_IP, IP_TTL, a.ttl)
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_TTL, a.ttl)
        if a.src is not None:
            anc = [(socket.IPPROTO_IP, IP_PKTINFO, PKTINFO.pack(0, a.src.packed, b"\0" * 4))]
            sock.sendmsg([a.payload], anc, 0, (str(a.dst), 0))
        else:
            sock.sendto(a.payload, (str(a.dst), 0))

    # -- home agent: InstallBinding, RemoveBinding (mip4.io.executor_bindings) ----------

    # -- reverse tunnelling rules -----------------------------------------------------

    def _ensure_reverse_route(self) -> None:
        if not self._reverse_route:
            fwd = self._fwd("reverse tunnelling")
            self.ns.add_route(
                "0.0.0.0/0", ifname=fwd.tun.name, table=self.reverse_table, replace=True
            )
            self._reverse_route = True

    def _add_reverse_rule(
        self, src: IPv4Address, iif: str | None, undo: UndoStack, table: int | None = None
    ) -> None:
        """A policy rule sending ``src``'s datagrams (arriving on ``iif``) into the reverse
        tunnel (``table``: another table than the TUN device's), owned by ``undo`` (which
        also frees its priority)."""
        key = (src, iif)
        if key in self._rules:
            return
        if table is None:
            self._ensure_reverse_route()
        prio = RULE_PRIORITY + len(self._rules)
        used = set(self._rules.values())
        while prio in used:
            prio += 1
        undo.callback(f"free rule priority {prio}", lambda: self._rules.pop(key, None))
        self._rules[key] = prio
        rule_table = self.reverse_table if table is None else table
        self.ns.add_rule(src=src, iif=iif, table=rule_table, priority=prio, undo=undo)

    # -- foreign agent ----------------------------------------------------------------

    def install_visitor(self, a: InstallVisitor) -> None:
        """Replaces an earlier entry for the same home address. A renewal (the same entry
        with a new expiry) leaves the kernel objects alone: deleting and re-adding them
        would leave a moment in which the visitor's datagrams miss the reverse tunnel, and
        the visitor's path-MTU state with it. Such a renewal does no work at all -- no
        copy of the action, no kernel request, nothing stored (the entry keeps the action
        that installed it; the expiry is for information only) -- and is counted:
        ``visitor_unchanged`` against ``visitor_installed`` (issue 13)."""
        fwd = self.forwarder
        if fwd is None:
            fwd = self._fwd("InstallVisitor")  # (raises)
        known = self._visitors.get(int(a.home_address))
        if known is not None and _same_visitor(known[0], a):
            self.stats["visitor_unchanged"] += 1
            return
        self.stats["visitor_installed"] += 1
        if known is not None:
            self.remove_visitor(RemoveVisitor(a.home_address, a.interface))
        stack = self.ns.new_stack(f"visitor {a.home_address}")
        self._visitors[int(a.home_address)] = (a, stack)
        table = fwd.table
        table.set_visitor(a.home_address, LinkDelivery(a.interface, a.link_address))
        stack.callback("forget visitor", lambda: table.set_visitor(a.home_address, None))
        if a.link_address is None:
            # no hardware address from the request: let the kernel deliver on the link
            # (it will ARP for the visitor)
            self.ns.add_route(f"{a.home_address}/32", ifname=a.interface, replace=True, undo=stack)
        else:
            # The agent's own datagrams to the visitor (ICMP "fragmentation needed" for a
            # datagram too big for the reverse tunnel, RFC 2003 §5.1) go to it on the link;
            # otherwise they would go to the home agent, which never tunnels a datagram
            # from the tunnel's exit point (§4). Its hardware address came with the request
            # (never ARP for it, RFC 5944 §4.6). A route via the visitor as on-link gateway,
            # not a device route: that would make it a directly connected source, and the
            # kernel would redirect its traffic to the router, past the reverse tunnel.
            self.ns.add_neighbour(a.interface, a.home_address, a.link_address, undo=stack)
            self.ns.add_route(
                f"{a.home_address}/32",
                gateway=a.home_address,
                ifname=a.interface,
                onlink=True,
                replace=True,
                undo=stack,
            )
        table.add_peer(a.home_agent)  # tunnels from the home agent are accepted
        stack.callback("forget home agent peer", lambda: table.remove_peer(a.home_agent))
        if a.reverse_tunnel:
            tunnel = Tunnel(a.care_of_address, a.home_agent, own_addresses=self.own_addresses)
            table.set_reverse(a.home_address, TunnelEntry(tunnel, a.encapsulation))
            stack.callback("forget reverse tunnel", lambda: table.set_reverse(a.home_address, None))
            self._add_reverse_rule(a.home_address, a.interface, stack)
            if a.encapsulating_delivery:
                # RFC 3024 §3.3: the visitor's datagrams arrive tunnelled to us; once
                # decapsulated (into the TUN device) they are reverse-tunnelled too
                table.add_peer(a.home_address)
                stack.callback("forget visitor peer", lambda: table.remove_peer(a.home_address))
                self._add_reverse_rule(a.home_address, fwd.tun.name, stack)
        # ---- bpf plane (issue 12): the visitor in the fast path's maps (undone first) ----
        fast = self.fast_path
        if fast is not None:
            delivery = None
            if a.link_address is not None:
                index, own = self._own_link_of(a.interface)
                delivery = Visitor(index, a.link_address, own)
            undo_fast = fast.visitor(
                a.home_address,
                a.care_of_address,
                a.home_agent,
                delivery=delivery,
                reverse=a.encapsulation if a.reverse_tunnel else None,
            )
            stack.callback(f"bpf visitor {a.home_address}", undo_fast)
        # ---- end bpf plane ----

    def _own_link_of(self, interface: str) -> tuple[int, bytes]:
        """``interface``'s index and its own hardware address (kept per index)."""
        index = self.ns.index(interface)
        own = self._own_link.get(index)
        if own is None:
            own = self._own_link[index] = self.ns.link_address(interface)
        return index, own

    def relay_in_kernel(self, a: RelayInKernel) -> None:
        """The fast path relays the visitor's usual renewal (issue 13); without one, or with
        its map full, nothing (counted: ``relay_not_in_kernel``) -- the datagrams then
        come to the engine, which relays them itself."""
        fast = self.fast_path
        if fast is None:
            self.stats["relay_not_in_kernel"] += 1
            return
        index, own = self._own_link_of(a.interface)
        relay = Relay(
            request=a.request,
            node=a.node,
            agent=a.agent,
            relay_source=a.relay_source,
            ifindex=index,
            node_port=a.node_port,
            relay_port=a.relay_port,
            node_mac=a.link_address,
            own_mac=own,
            ttl_255=a.ttl_255,
        )
        if not fast.relay(a.home_address, relay):
            self.stats["relay_not_in_kernel"] += 1

    def stop_relay_in_kernel(self, a: StopRelayInKernel) -> None:
        if self.fast_path is not None:
            self.fast_path.stop_relay(a.home_address)

    def remove_visitor(self, a: RemoveVisitor) -> None:
        self._fwd("RemoveVisitor")
        known = self._visitors.pop(int(a.home_address), None)
        if known is None:
            return
        for err in known[1].undo():
            log.warning("removing visitor %s: %s", a.home_address, err)

    # -- mobile node ------------------------------------------------------------------

    def _leave_home_subnet(self, interface: str, home: IPv4Address) -> None:
        """Withdraw the home subnet's on-link route from ``interface`` so the node never
        ARPs for home-network neighbours on a foreign link (RFC 5944 §4.6)."""
        for addr in self.ns.addresses(interface):
            if addr.ip == home and addr.network.prefixlen < 32:
                # put back by AtHome and close (and by the leftover cleaner after a crash)
                self.ns.withdraw_route(addr.network, interface, home, undo=self._away)

    def _quiet_arp(self, interface: str) -> None:
        """RFC 5944 §4.6 away from home: never announce the home address in ARP requests
        (``arp_announce`` 2: the sender address is the best one for the target's subnet,
        e.g. the co-located care-of address), and answer ARP only for an address whose
        subnet the asker is on (``arp_ignore`` 2: the home address is not answered on a
        foreign link, a co-located care-of address still is). Both are harmless at home;
        :meth:`close` restores the previous values."""
        if interface in self._arp_quiet:
            return
        self.ns.sysctl(f"net.ipv4.conf.{interface}.arp_ignore", 2)
        self.ns.sysctl(f"net.ipv4.conf.{interface}.arp_announce", 2)
        self._arp_quiet.add(interface)

    def _reset_mobility(self) -> None:
        """Undo what the previous UseForeignAgent / UseColocatedAddress did."""
        self._attachment.undo()

    def _forget_neighbours(self, interface: str) -> None:
        """After a move the node's dynamic neighbour entries belong to the previous link.
        Worse, datagrams sent between the link change and this set-up (by the previous
        routes, e.g. towards the home router) wait on an unresolved entry for up to a
        second, and TCP does not retransmit a segment while a copy of it is still queued
        in the host -- so the connection stalls that long. Deleting the entries frees
        them."""
        with contextlib.suppress(Exception):
            self.stats["neighbours_flushed"] += self.ns.flush_neighbours(interface)

    def away_from_home(self, a: AwayFromHome) -> None:
        from .undo import WithdrawnRouteRecord  # (here: a separate hunk from the imports)

        self._quiet_arp(a.interface)
        home = str(a.home_address)
        if any(
            isinstance(r, WithdrawnRouteRecord) and r.ifname == a.interface and r.prefsrc == home
            for r in self._away
        ):
            # withdrawn already (a move between foreign links on the same interface): no
            # address dump on the way to the first request (issue 14); UseForeignAgent
            # checks the addresses again once registered
            self.stats["away_already"] += 1
            return
        self._leave_home_subnet(a.interface, a.home_address)

    def _restore_home_routes(self) -> None:
        self._away.undo()

    def use_foreign_agent(self, a: UseForeignAgent) -> None:
        # (The engine hands this over once per attachment, not at each renewal: rebuilding
        # the routes drops the kernel's path-MTU state for them. Once more after the link
        # went away and came back, when the kernel may have dropped them itself.)
        self._reset_mobility()
        ns, iface, agent, stack = self.ns, a.interface, a.agent_address, self._attachment
        self._forget_neighbours(iface)
        self._quiet_arp(iface)
        self._leave_home_subnet(iface, a.home_address)
        if a.agent_link_address is not None:
            ns.add_neighbour(iface, agent, a.agent_link_address, undo=stack)
        ns.add_route(f"{agent}/32", ifname=iface, replace=True, src=a.home_address, undo=stack)
        ns.add_route(
            "0.0.0.0/0",
            gateway=agent,
            ifname=iface,
            onlink=True,
            replace=True,
            src=a.home_address,
            undo=stack,
        )
        if a.home_agent is not None:
            # the broadcasts asked for with B come tunnelled from the home agent (§4.3)
            table = self._fwd("UseForeignAgent with broadcasts").table
            ha = a.home_agent
            table.add_peer(ha)
            stack.callback("forget home agent peer", lambda: table.remove_peer(ha))

    def use_colocated_address(self, a: UseColocatedAddress) -> None:
        self._reset_mobility()
        fwd = self._fwd("UseColocatedAddress")
        self._forget_neighbours(a.interface)
        self._quiet_arp(a.interface)
        self._leave_home_subnet(a.interface, a.home_address)
        table, stack = fwd.table, self._attachment
        table.add_peer(a.home_agent)
        stack.callback("forget home agent peer", lambda: table.remove_peer(a.home_agent))
        if self.fast_path is not None:  # bpf plane (issue 12)
            self._colocated_fast_path(a, self.fast_path, stack)
        elif a.reverse_tunnel:
            tunnel = Tunnel(a.care_of_address, a.home_agent)
            table.set_reverse(a.home_address, TunnelEntry(tunnel, a.encapsulation))
            stack.callback("forget reverse tunnel", lambda: table.set_reverse(a.home_address, None))
            self._add_reverse_rule(a.home_address, None, stack)

    # ---- bpf plane (issue 12): co-located node -----------------------------------------

    def _colocated_fast_path(
        self, a: UseColocatedAddress, fast: FastPath, stack: UndoStack
    ) -> None:
        """Tunnels from the home agent are decapsulated at ingress of the interface; with
        reverse tunnelling the home address's datagrams are routed out of the interface
        (via the router towards the home agent) with a route MTU that leaves room for the
        outer header -- so the kernel sizes them (fragmentation needed, TCP's MSS) -- and
        ``mip4_host_encap`` tunnels them at its egress."""
        ifindex = self.ns.index(a.interface)
        mtu = int(self.ns.ipr.link("get", index=ifindex)[0].get("IFLA_MTU") or 1500)
        undo_fast = fast.colocated(
            a.home_address,
            a.care_of_address,
            a.home_agent,
            reverse=a.encapsulation if a.reverse_tunnel else None,
            oif=ifindex,
            mtu=mtu,
        )
        stack.callback(f"bpf co-located {a.home_address}", undo_fast)
        if not a.reverse_tunnel:
            return
        found = self.ns.ipr.route("get", dst=str(a.home_agent))
        gateway = found[0].get("RTA_GATEWAY") if found else None
        spec: dict[str, object] = {
            "dst": "0.0.0.0",
            "dst_len": 0,
            "gateway": str(gateway or a.home_agent),
            "oif": ifindex,
            "table": BPF_REVERSE_TABLE,
            "metrics": {"mtu": mtu - overhead(a.encapsulation)},
        }
        if gateway is None:
            spec["flags"] = 4  # RTNH_F_ONLINK: the home agent is on this link
        self.ns.ipr.route("replace", **spec)
        stack.push(RouteRecord("0.0.0.0", 0, BPF_REVERSE_TABLE, ifindex, str(spec["gateway"])))
        self._add_reverse_rule(a.home_address, None, stack, table=BPF_REVERSE_TABLE)

    # ---- end bpf plane ------------------------------------------------------------------

    def at_home(self, a: AtHome) -> None:
        self._reset_mobility()
        self._restore_home_routes()
        self._forget_neighbours(a.interface)
        if self.home_gateway is not None:
            self.ns.add_route(
                "0.0.0.0/0", gateway=self.home_gateway, ifname=a.interface, replace=True
            )

    # -- handovers (RFC 4881, RFC 4988) -----------------------------------------------

    def install_edge_tunnel(self, a: InstallEdgeTunnel) -> None:
        self.edges.install(a)

    def remove_edge_tunnel(self, a: RemoveEdgeTunnel) -> None:
        self.edges.remove(a)

    def buffer_packets(self, a: BufferPackets) -> None:
        self.edges.buffer(a)

    def flush_buffer(self, a: FlushBuffer) -> None:
        self.edges.flush(a)

    def drop_buffer(self, a: DropBuffer) -> None:
        self.edges.drop(a)

    def leave_foreign_agent(self, a: LeaveForeignAgent) -> None:
        """The link is gone: the routes through its agent go now, not at a lifetime."""
        self._reset_mobility()

    def log(self, a: Log) -> None:
        log.info("%s %s", a.event, " ".join(f"{k}={v}" for k, v in a.fields.items()))


def _same_visitor(old: InstallVisitor, new: InstallVisitor) -> bool:
    """``new`` asks of the kernel, the tunnel table and the fast path exactly what ``old``
    made (every field but the expiry; the home address is the key ``old`` was found
    under), compared field by field: no copy of either. The addresses are usually the
    same objects (the foreign agent's visitor list shares them): identity first."""
    ha, coa = old.home_agent, old.care_of_address
    return (
        old.interface == new.interface
        and old.link_address == new.link_address
        and (ha is new.home_agent or ha == new.home_agent)
        and (coa is new.care_of_address or coa == new.care_of_address)
        and old.reverse_tunnel == new.reverse_tunnel
        and old.encapsulation is new.encapsulation
        and old.encapsulating_delivery == new.encapsulating_delivery
    )


# Any: each handler takes the one action class it is filed under (a dict cannot say that
# per key); execute() looks the handler up by type(action), so the pairing holds.
_HANDLERS: dict[type, Callable[[LinuxExecutor, Any], None]] = {
    SendUdp: LinuxExecutor.send_udp,
    SendIcmp: LinuxExecutor.send_icmp,
    ProxyArp: LinuxExecutor.proxy_arp,
    GratuitousArp: LinuxExecutor.gratuitous_arp,
    InstallBinding: LinuxExecutor.install_binding,
    RemoveBinding: LinuxExecutor.remove_binding,
    InstallVisitor: LinuxExecutor.install_visitor,
    RemoveVisitor: LinuxExecutor.remove_visitor,
    RelayInKernel: LinuxExecutor.relay_in_kernel,
    StopRelayInKernel: LinuxExecutor.stop_relay_in_kernel,
    AwayFromHome: LinuxExecutor.away_from_home,
    UseForeignAgent: LinuxExecutor.use_foreign_agent,
    UseColocatedAddress: LinuxExecutor.use_colocated_address,
    AtHome: LinuxExecutor.at_home,
    InstallEdgeTunnel: LinuxExecutor.install_edge_tunnel,
    RemoveEdgeTunnel: LinuxExecutor.remove_edge_tunnel,
    BufferPackets: LinuxExecutor.buffer_packets,
    FlushBuffer: LinuxExecutor.flush_buffer,
    DropBuffer: LinuxExecutor.drop_buffer,
    LeaveForeignAgent: LinuxExecutor.leave_foreign_agent,
    Log: LinuxExecutor.log,
}


def interface_network(ns: Netns, interface: str) -> IPv4Interface | None:
    """The first IPv4 address/prefix on ``interface`` (helper for daemons)."""
    addrs = ns.addresses(interface)
    return addrs[0] if addrs else None
