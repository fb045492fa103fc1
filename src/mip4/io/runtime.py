"""One node's I/O, assembled: the sockets, TUN device, tunnel forwarder, link monitor and
executor an engine talks through, opened in one namespace and attached to one
:class:`~mip4.io.driver.EngineDriver`.

A daemon is then: build the engine from its configuration, ``NodeIO.open(...)``, create the
driver, ``io.attach(driver)``, ``driver.start()``, feed ``io.current_links()``, run the loop,
and ``io.close()`` on the way out (which also removes every route, rule and neighbour entry
the executor made). Everything opened is owned by one :class:`~mip4.io.undo.UndoStack`
(``resources``), closed newest first, also when opening fails half-way; the executor's
kernel records are mirrored in ``journal`` when one is given.

What is opened, by option:

* always: the UDP 434 socket (``IP_PKTINFO``/``IP_RECVTTL``) and, per control interface,
  an AF_PACKET router discovery capture (ICMP 9/10 with the sender's hardware address);
* ``flood_steering`` (home agent, issue 13): two UDP 434 sockets instead of one, trusted
  and general, with the ``SK_REUSEPORT`` program between them
  (:class:`~mip4.io.bpf.steer.Steering`); ``udp`` is the trusted one (replies leave from
  it). Where the program cannot load, one socket as without the option, and one log line
  saying why (``steering_off``);
* ``tun_name``: a TUN device and a :class:`~mip4.io.forwarder.Forwarder` (home agent,
  foreign agent, co-located mobile node);
* ``link_sources``: a :class:`~mip4.io.linktap.LinkSourceTracker`, so ``UdpReceived``
  carries the sender's hardware address (foreign agent: to reply without ARP; home agent:
  to announce the node's own address by gratuitous ARP when it deregisters at home --
  with ``link_sources_from_home_address`` only for datagrams sent from the Home Address
  they carry, the only ones it uses: the tap then copies nothing else); with
  ``link_source_interfaces``, only frames arriving on those interfaces (foreign agent: its
  visited links -- issue 13, the home agent's replies on its other links are not copied
  to the tap; the link notifications below refresh the interfaces' indexes);
* ``icmp_errors``: ``DestinationUnreachable`` events (mobile node);
* ``forwarding``: ``net.ipv4.ip_forward`` on while the node runs (home and foreign agents:
  they route, and the kernel answers proxy ARP only when forwarding);
* ``watch_links``: a :class:`~mip4.io.linkmon.LinkMonitor` on the control interfaces
  (mobile node), which never reports ``ignore_addresses`` (the home address); without it
  a :class:`~mip4.io.rawsock.LinkChanges` (the agents): either one's link notifications
  make the executor forget the hardware addresses it keeps for gratuitous ARPs;
* ``dataplane`` ``"bpf"`` (or ``"auto"`` where the kernel allows it) with ``tun_name``: the
  tc-BPF fast path of ``bpf_role`` (:class:`~mip4.io.bpf.agent.FastPath`: home agent,
  foreign agent or mobile node) on the control interfaces, in front of the user-space
  plane, which stays its slow path. Its maps
  are pinned under ``bpf_pin_dir`` (default: ``/sys/fs/bpf/mip4/<tun_name>`` when a bpffs
  is mounted there and ``netns`` is the current namespace; else not pinned). With
  ``"auto"``, a fast path the host refuses when it is opened (after the probe loaded the
  object: an attach, a map, a pin) leaves the user-space plane alone, logged; with
  ``"bpf"`` that is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from mip4.core.events import Event, LinkUp, RelayedByKernel

from .bpf.agent import FastPath, Role, resolve_dataplane
from .bpf.libbpf import BpfUnavailable
from .bpf.plane import kernel_unfit
from .bpf.steer import Steering
from .driver import GENERAL_BATCH, TRUSTED_BATCH, CoalescedTimers, Engine, EngineDriver
from .executor import LinuxExecutor
from .forwarder import Forwarder
from .icmpsock import (
    open_discovery_capture,
    open_icmp_error_socket,
    recv_destination_unreachable,
    recv_discovery,
)
from .linkmon import LinkMonitor
from .linktap import LinkSourceTracker
from .mmsg import BatchReceiver
from .netns import Netns, run_in_netns
from .rawsock import (
    InterfaceNames,
    LinkChanges,
    open_udp_control,
    recv_udp,
)
from .tun import DEFAULT_MTU, Tun, rp_filter_problem
from .unaddressed import open_unaddressed_capture, recv_unaddressed
from .undo import Journal, UndoStack, resource_stack

log = logging.getLogger(__name__)
#: datagrams read at once from which a read's sends are gathered (LinuxExecutor.batch_udp)
BATCH_READ_MIN = 4

#: Receive buffer asked for the UDP 434 control socket, bytes: as the raw tunnel sockets.
#: The kernel's default (~208 KiB) holds only a few hundred small datagrams; a burst of
#: forged requests then pushes valid ones out before the loop reads them.
CONTROL_RCVBUF = 1 << 21
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

#: where the fast path's maps are pinned by default (when a bpffs is mounted here)
BPFFS = Path("/sys/fs/bpf")
_FAST_PATH = "close bpf fast path"


def default_pin_dir(tun_name: str, bpffs: Path = BPFFS) -> Path | None:
    """``<bpffs>/mip4/<tun_name>`` when a bpffs is mounted at ``bpffs`` (not under ``ip
    netns exec``, which mounts a fresh /sys), else ``None``."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[1] == str(bpffs) and fields[2] == "bpf":
            return bpffs / "mip4" / tun_name
    return None


def open_steering(netns: str | None, port: int) -> tuple[Steering | None, str | None]:
    """Flood steering's two sockets (issue 13), or ``None`` and why not (logged once: the
    daemon then runs with one socket, as without the option)."""
    try:
        return Steering.open(netns, port=port), None
    except (BpfUnavailable, OSError) as e:
        why = str(e).splitlines()[0]
        log.warning("flood steering off (one UDP %d socket): %s", port, why)
        return None, why


def size_receive_buffer(sock: socket.socket, size: int = CONTROL_RCVBUF) -> int:
    """Give ``sock`` a receive buffer of ``size`` bytes: ``SO_RCVBUFFORCE`` (root may go
    past ``net.core.rmem_max``), else ``SO_RCVBUF``. Logs a warning when the kernel caps
    it below ``size``; returns what the kernel reports (twice what it accounts for the
    data, as ``socket(7)`` says)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:  # no CAP_NET_ADMIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if got < size:
        log.warning(
            "UDP control socket receive buffer capped at %d bytes (asked %d):"
            " raise net.core.rmem_max",
            got,
            size,
        )
    return got


@dataclass
class NodeIO:
    netns: str | None
    interfaces: tuple[str, ...]
    udp: socket.socket
    executor: LinuxExecutor
    captures: dict[str, socket.socket] = field(default_factory=dict)
    tracker: LinkSourceTracker | None = None
    icmp_errors: socket.socket | None = None
    linkmon: LinkMonitor | None = None
    tun: Tun | None = None
    forwarder: Forwarder | None = None
    #: the home agent's tc-BPF fast path (``dataplane`` bpf), None: user space only
    fast_path: FastPath | None = None
    #: issue 10: requests from 0.0.0.0 (RFC 2794 nodes with no address yet), which the
    #: kernel drops as martians before the UDP socket (:mod:`mip4.io.unaddressed`)
    unaddressed: socket.socket | None = None
    #: without a link monitor: the link notifications that make the executor forget an
    #: interface's kept hardware address (issue 13)
    link_changes: LinkChanges | None = None
    #: issue 13: the trusted and general sockets of flood steering (``udp`` is the trusted
    #: one); None: one socket, and ``steering_off`` says why
    steering: Steering | None = None
    steering_off: str | None = None
    #: issue 13: the foreign agent's fast path relays its visitors' usual renewals and
    #: gives them back to the engine (:meth:`attach`, :mod:`mip4.core.fa_kernel`)
    relay_in_kernel: bool = False
    resources: UndoStack = field(default_factory=lambda: resource_stack("node I/O"))

    @classmethod
    def open(
        cls,
        netns: str | None,
        interfaces: tuple[str, ...] | list[str],
        *,
        tun_name: str | None = None,
        tun_mtu: int = DEFAULT_MTU,
        tunnel_mtu: int | None = None,
        tunnel_source: IPv4Address | None = None,
        own_addresses: frozenset[IPv4Address] = frozenset(),
        home_gateway: IPv4Address | None = None,
        home_network: IPv4Network | None = None,
        link_sources: bool = False,
        link_sources_from_home_address: bool = False,
        link_source_interfaces: tuple[str, ...] | None = None,
        forwarding: bool = False,
        icmp_errors: bool = False,
        watch_links: bool = False,
        ignore_addresses: frozenset[IPv4Address] = frozenset(),
        port: int = 434,
        journal: Journal | None = None,
        dataplane: str = "userspace",
        bpf_pin_dir: Path | None = None,
        bpf_role: Role = Role.HOME_AGENT,
        bpf_capacity: int | None = None,
        bpf_forward: bool = True,
        unaddressed_requests: bool = False,
        flood_steering: bool = False,
        batch_udp: bool = False,
        bpf_relay: bool = False,
    ) -> NodeIO:
        res = resource_stack("node I/O")
        # ``auto`` loads the object once: opening the fast path below (a node with a TUN
        # device; no other uses the plane) is the probe, its failure the fallback; a test
        # load first would add ~0.2 s of verifier time to every start (a restarted agent
        # is back within 1 s, issue 15). Only the kernel's version is looked at before.
        if dataplane == "auto":
            plane = resolve_dataplane(dataplane, kernel_unfit)
        else:
            plane = resolve_dataplane(dataplane)
        try:
            steering: Steering | None = None
            steering_off: str | None = "[io] flood_steering = false"
            if flood_steering:
                steering, steering_off = open_steering(netns, port)
            if steering is not None:
                udp = steering.trusted
                res.callback("close flood steering", steering.close)
                size_receive_buffer(steering.general)
            else:
                udp = open_udp_control(netns, port=port)
                res.callback("close UDP socket", udp.close)
            size_receive_buffer(udp)
            tun = fwd = None
            if tun_name is not None:
                with naming(tun_name):
                    tun = Tun(tun_name, netns, mtu=tun_mtu)
                res.callback(f"close TUN device {tun_name}", tun.close)
                problem = rp_filter_problem(netns)
                if problem is not None:
                    log.warning("%s", problem)
                fwd = Forwarder(tun, netns=netns, tunnel_mtu=tunnel_mtu)
                res.callback("close forwarder", fwd.close)
            fast = None
            if plane == "bpf" and tun_name is not None:
                names = tuple(interfaces)

                def indexes() -> list[int]:
                    return [socket.if_nametoindex(name) for name in names]

                if bpf_pin_dir is None and netns is None:
                    bpf_pin_dir = default_pin_dir(tun_name)
                ifindexes = indexes() if netns is None else run_in_netns(netns, indexes)
                try:
                    fast = FastPath.open(
                        netns,
                        ifindexes,
                        role=bpf_role,
                        pin_dir=bpf_pin_dir,
                        capacity=bpf_capacity,
                        forward=bpf_forward,
                    )
                except (OSError, BpfUnavailable) as e:
                    # the host refused the fast path (no libbpf, the object's load, an
                    # attach, a map, a pin): with auto, the user-space plane forwards
                    # everything (FastPath.open gave back what it had made)
                    if dataplane != "auto":
                        raise
                    log.warning(
                        "dataplane = auto: the bpf plane could not start here (%s): "
                        "user-space plane",
                        str(e).splitlines()[0],
                    )
                    fast = None
                if fast is not None:
                    # before the executor's stacks: they remove map entries on the way out
                    res.callback(_FAST_PATH, fast.close)
                if fast is not None and bpf_pin_dir is None:
                    log.warning(
                        "bpf.unpinned: the fast path's maps are not pinned (%s): a crash of "
                        "this daemon stops fast-path forwarding until it restarts; mount a "
                        "bpffs (mount -t bpf bpf %s) -- under ip netns exec, /sys is the "
                        "command's own: nsenter --net=/run/netns/NAME keeps the host's",
                        f"no bpffs at {BPFFS}" if netns is None else f"namespace {netns}",
                        BPFFS,
                    )
            executor = LinuxExecutor(
                netns,
                udp=udp,
                forwarder=fwd,
                tunnel_source=tunnel_source,
                own_addresses=own_addresses,
                home_gateway=home_gateway,
                home_network=home_network,
                journal=journal,
                fast_path=fast,
            )
            res.callback("close executor sockets", executor.abandon)
            res.callback("undo kernel state", executor.close)
            # issue 13: a read's datagrams without a hardware address sent together
            # (LinuxExecutor.batch_udp: a foreign agent's relays to its home agents)
            executor.batch_udp = batch_udp
            if forwarding:
                # agents forward (and the kernel answers proxy ARP only when forwarding);
                # the executor's undo stack restores the old value on close
                executor.ns.set_forwarding(True)
            io = cls(
                netns, tuple(interfaces), udp, executor, tun=tun, forwarder=fwd, fast_path=fast
            )
            io.resources = res
            io.steering, io.steering_off = steering, steering_off
            # issue 13: a foreign agent's fast path relays the usual renewal
            io.relay_in_kernel = bpf_relay and fast is not None and bpf_role is Role.FOREIGN_AGENT
            for ifname in interfaces:
                with naming(ifname):
                    cap = io.captures[ifname] = open_discovery_capture(ifname, netns)
                res.callback(f"close discovery capture {ifname}", cap.close)
            if link_sources:
                io.tracker = LinkSourceTracker.open(
                    None,
                    netns,
                    port=port,
                    from_home_address=link_sources_from_home_address,
                    interfaces=link_source_interfaces,
                )
                res.callback("close link source tracker", io.tracker.close)
            if unaddressed_requests:  # issue 10 (foreign agent): RFC 2794 requests
                io.unaddressed = open_unaddressed_capture(netns, port=port)
                res.callback("close unaddressed request capture", io.unaddressed.close)
            if icmp_errors:
                io.icmp_errors = open_icmp_error_socket(netns)
                res.callback("close ICMP error socket", io.icmp_errors.close)
            if watch_links:
                io.linkmon = LinkMonitor(
                    netns,
                    set(interfaces),
                    report_addresses=True,
                    ignore_addresses=ignore_addresses,
                )
                res.callback("close link monitor", io.linkmon.close)
            else:
                io.link_changes = LinkChanges(netns)
                res.callback("close link notifications", io.link_changes.close)
            return io
        except BaseException:
            for err in res.undo():
                log.warning("clean-up after a failed open: %s", err)
            raise

    def attach(self, driver: EngineDriver) -> None:
        """Register every source with ``driver`` (and its loop)."""
        loop = driver.loop
        # the repeats of gratuitous ARPs: one loop timer per few milliseconds (issue 13)
        self.executor.call_later = CoalescedTimers(loop).call_later
        # the undo journal's lines of one pass of the loop in one write (issue 13)
        self.executor.hold_journal_lines(loop.call_soon)
        if self.forwarder is not None:
            self.forwarder.attach(loop)
        tracker = self.tracker
        udp = self.udp

        port = udp.getsockname()[1]  # bound at open: asked once, not per batch
        # arrival interfaces' names kept across reads while no link notification came (both
        # readers below clear them); without a notification reader: asked once per read
        names = (
            InterfaceNames(udp)
            if self.linkmon is not None or self.link_changes is not None
            else None
        )

        # issue 13: a wakeup's datagrams read with one recvmmsg per socket (no receiver
        # where the C library has none: one recvmsg per datagram, as before)
        receivers: dict[int, BatchReceiver | None] = {}

        def receiver_of(sock: socket.socket) -> BatchReceiver | None:
            fd = sock.fileno()
            if fd not in receivers:
                try:
                    receivers[fd] = BatchReceiver(sock, max(TRUSTED_BATCH, GENERAL_BATCH))
                except OSError as e:
                    log.info("reading datagrams one by one on fd %d: %s", fd, e)
                    receivers[fd] = None
            return receivers[fd]

        executor = self.executor
        # issue 13: the executor gathers a read's datagrams for one sendmmsg only when the
        # read is large enough for it to pay (benchmarks/fa_send_batch.py: about even at
        # two datagrams sent per read, dearer at one); the actions are the same either way
        batching = getattr(executor, "batch_udp", False)  # (a stand-in may have none)

        kernel_events = self._relayed_by_kernel(driver)

        def read_udp(sock: socket.socket, limit: int) -> list[Event]:
            receiver = receiver_of(sock)
            if tracker is None:
                events = recv_udp(sock, ifname_of=names, dport=port, limit=limit, receiver=receiver)
            else:
                # packet taps see a frame before the UDP socket does: one drain of the tap
                # after the batch is read covers every datagram of it
                events = recv_udp(
                    sock,
                    ifname_of=names,
                    link_sources=tracker.table,  # what tracker.get answers
                    after_read=tracker.poll,
                    dport=port,
                    limit=limit,
                    receiver=receiver,
                )
            if batching:
                executor.gather_udp = len(events) >= BATCH_READ_MIN
            if kernel_events is not None:
                # issue 13: what the kernel relayed, read after the socket (so every record
                # of a datagram that came before one read here is in it) and applied first
                relayed = kernel_events()
                if relayed:
                    relayed.extend(events)
                    return relayed
            return list(events)

        steering = self.steering
        if steering is not None:  # issue 13: the trusted socket read first
            driver.add_steered_readers(steering.trusted, steering.general, read_udp)
        else:

            def udp_events() -> list[Event]:
                return read_udp(udp, TRUSTED_BATCH)

            driver.add_reader(udp, udp_events)
        if tracker is not None:
            driver.add_reader(tracker.sock, lambda: (tracker.poll(), [])[1])
        for cap in self.captures.values():
            driver.add_reader(cap, _discovery_reader(cap))
        if self.unaddressed is not None:  # issue 10
            zero = self.unaddressed
            driver.add_reader(zero, lambda: list(recv_unaddressed(zero)))
        if self.icmp_errors is not None:
            errs = self.icmp_errors
            driver.add_reader(errs, lambda: list(recv_destination_unreachable(errs)))

        def links_changed() -> None:
            """A link changed (or an address): the interfaces' names are asked again, and
            the tap's interfaces' indexes, if it has some (any link: a lost notification
            names none; the filter is replaced if one changed)."""
            if names is not None:
                names.clear()
            if tracker is not None:
                tracker.links_changed()

        if self.linkmon is not None:
            mon = self.linkmon

            def link_events() -> list[Event]:
                links_changed()
                return list(mon.events())

            driver.add_reader(mon.sock, link_events)
        if self.link_changes is not None:
            changes = self.link_changes

            def link_notifications() -> list[Event]:
                links_changed()
                changes.read()
                return []

            driver.add_reader(changes.sock, link_notifications)
        # the hardware addresses of gratuitous ARPs kept from now on: the link
        # notifications that make the executor forget them are read (the link monitor's,
        # or the ones above)
        self.executor.keep_hardware_addresses()

    def _relayed_by_kernel(self, driver: EngineDriver) -> Callable[[], list[Event]] | None:
        """Issue 13: with :attr:`relay_in_kernel`, the engine told to let the kernel relay
        (``kernel_relay``) and a reader of what it relayed (``RelayedByKernel`` events, in
        the order it relayed them); returns that reader, which the UDP reader also calls
        after each read of the socket, its events first: a request the kernel relayed is
        applied before a later one read from the socket. ``None`` without."""
        fast = self.fast_path
        if not self.relay_in_kernel or fast is None:
            return None
        engine = driver.engine
        if not hasattr(engine, "kernel_relay"):
            return None
        records = fast.relay_records()

        def kernel_events() -> list[Event]:
            return [RelayedByKernel(p) for p in records.payloads()]

        engine.kernel_relay = True
        # the program wakes the reader once 64 records wait (MIP4_RELAYED_WAKE); fewer
        # wait for the next read of the socket or the next timer
        driver.add_reader(records.fileno(), kernel_events)
        driver.before_timer = kernel_events
        return kernel_events

    async def run(self, engine: Engine, stop: asyncio.Event) -> EngineDriver:
        """Drive ``engine`` until ``stop`` is set: a daemon's main loop. Feeds the links
        that are up at start; the driver (with its counters) is returned."""
        driver = EngineDriver(engine, self.executor, loop=asyncio.get_running_loop())
        self.attach(driver)
        driver.start()
        try:
            for ev in self.current_links():
                driver.feed(ev)
            await stop.wait()
        finally:
            driver.close()
            if self.forwarder is not None:
                self.forwarder.detach()
        return driver

    @property
    def dataplane(self) -> str:
        """Which plane forwards: ``"bpf"`` (fast path, user space behind it) or
        ``"userspace"``."""
        return "bpf" if self.fast_path is not None else "userspace"

    def current_links(self) -> list[LinkUp]:
        """``LinkUp`` for the control interfaces that are up now (watched ones only)."""
        return self.linkmon.current() if self.linkmon is not None else []

    def close(self) -> None:
        """Undo the executor's kernel state, then close everything, newest first (the
        forwarder detached first, the TUN device and the UDP socket last).

        A clean stop at scale (a home agent with a million bindings): what goes with the
        TUN device and with the fast path's maps is not undone one record at a time --
        the kernel flushes the routes through the TUN device as closing it deletes it
        (:meth:`LinuxExecutor.devices_going`; checked below: a device still there is
        deleted), and the maps go with every entry as the fast path closes
        (:meth:`FastPath.entries_go_with_close`)."""
        if self.forwarder is not None:
            self.forwarder.detach()
        self.executor.hold_journal_lines(None)
        tun = self.tun
        if tun is not None and not tun.closed:
            self.executor.devices_going([tun.index])
        if self.fast_path is not None:
            self.fast_path.entries_go_with_close()
        for err in self.resources.undo():
            log.warning("clean-up: %s", err)
        if tun is not None:
            self._delete_if_there(tun)

    def _delete_if_there(self, tun: Tun) -> None:
        """The TUN device goes when its descriptor closes (it is not persistent); should
        it still be there (a descriptor held elsewhere), it is deleted, and the routes
        the executor left to it with it."""
        try:
            with Netns(self.netns) as ns:
                index = ns.link_index(tun.name, missing_ok=True)
                if index == tun.index:
                    log.warning("clean-up: TUN device %s still there: deleted", tun.name)
                    ns.ipr.link("del", index=index)
        except Exception as exc:
            log.warning("clean-up: TUN device %s: %s", tun.name, exc)

    def abandon(self) -> None:
        """What a killed daemon leaves: its sockets and TUN device close (the kernel does
        that for a dead process), its routes, rules, neighbour entries, sysctls and journal
        stay, and so do the fast path's tc filters and pinned maps (bound nodes keep their
        forwarding)."""
        if self.forwarder is not None:
            self.forwarder.detach()
        self.executor.hold_journal_lines(None)
        self.resources.discard(lambda r: r.describe() in ("undo kernel state", _FAST_PATH))
        if self.fast_path is not None:
            self.fast_path.abandon()
        for err in self.resources.undo():
            log.warning("abandon: %s", err)

    def __enter__(self) -> NodeIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def naming(ifname: str) -> Iterator[None]:
    """An ``OSError`` raised in the block names ``ifname`` (``[Errno 19] No such device``
    alone does not say which interface)."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or ifname in str(exc):
            raise
        raise OSError(exc.errno, f"{ifname}: {exc.strerror or exc}") from exc


def _discovery_reader(cap: socket.socket) -> Callable[[], list[Event]]:
    def read() -> list[Event]:
        return list(recv_discovery(cap))

    return read
