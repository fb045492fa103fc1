"""A daemon: one engine, its :class:`~mip4.io.runtime.NodeIO`, a control socket, signals.

Theory of operation
-------------------
:func:`main` (``mip4 ha|fa|mn --config FILE``) loads the file (exit 2 on any error, one
line naming the file and key), sets up logging, and then:

1. **Clears leftovers of a crashed predecessor** in its namespace (:func:`clear_leftovers`):
   first every record of the undo journal a killed daemon of this configuration left in
   the run directory (:func:`journal_path`, :mod:`mip4.io.undo`): its routes, rules,
   neighbour and proxy entries, and the sysctls it changed, put back to the values they
   had before mip4 first touched them. Then, for state no journal names, a link named like
   its TUN device, the policy rules pointing at the reverse-tunnel table (434) and that
   table's routes. TUN devices are not persistent, so normally there is no such link;
   rules and routes through other devices survive a SIGKILL.
2. **Opens its I/O** with :meth:`NodeIO.open` in the current namespace (the one ``ip netns
   exec`` put it in), with the options each role needs: home agent ``tun_name``,
   ``tunnel_source``, ``link_sources``, ``forwarding``; foreign agent ``tun_name``,
   ``link_sources``, ``forwarding``; mobile node ``tun_name``, ``watch_links``,
   ``icmp_errors``, ``ignore_addresses={home address}`` (and each home address a home agent
   assigns, from then on: :func:`follow_home_address`), ``home_gateway``,
   ``home_network``; every kernel record goes to the journal. This happens before the event
   loop starts (pyroute2 must not be used
   on a thread that runs a loop; :class:`~mip4.io.netns.Netns` sends its netlink calls to a
   private thread anyway).
3. **Runs** an :class:`~mip4.io.driver.EngineDriver` on asyncio (uvloop when installed). The
   engine's :class:`~mip4.core.actions.Log` actions are rendered as one log line each by
   :class:`DaemonExecutor`; every other action goes to the Linux executor. The control
   socket answers ``status`` from the loop's thread. With ``[snmp] agentx_socket`` an
   AgentX subagent (:class:`~mip4.io.agentx.AgentXSubagent`) serves the status snapshot
   as the RFC 4295 MIB through ``snmpd``, started after the control server, reconnecting
   when ``snmpd`` restarts, closed on the way out. With ``[metrics] listen`` a Prometheus
   endpoint (:mod:`mip4.daemon.metrics`) answers ``GET /metrics`` on the loop.
4. **Reloads** on SIGHUP (:mod:`mip4.daemon.reload`): security associations, the home
   agent's pool and limits change in place; keys that need a restart are refused with a
   log line naming them; an invalid file leaves the daemon on its configuration.
5. **Stops** on SIGTERM or SIGINT: the mobile node deregisters first if it holds a binding
   away from home (bounded wait, :data:`DEREGISTER_WAIT`); then the driver stops, a
   foreign agent with RADIUS accounting sends a Stop (Acct-Terminate-Cause Admin-Reboot)
   with its final counts for every open session (:meth:`AaaShell.stop_sessions`, bounded
   wait), and :meth:`NodeIO.close` removes every route, rule, neighbour, proxy
   neighbour, address and sysctl change it made and the TUN device. Exit status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent
from mip4.core.mobile_node import MobileNode
from mip4.io.agentx import AgentXSubagent
from mip4.io.bpf.agent import Role
from mip4.io.bpf.plane import MapName
from mip4.io.bpf.steer import Steering
from mip4.io.driver import EngineDriver
from mip4.io.executor import REVERSE_TABLE
from mip4.io.netns import Netns
from mip4.io.radius import AaaShell, RadiusClient, Traffic
from mip4.io.runtime import NodeIO
from mip4.io.undo import Journal, load_journal
from mip4.store import SqliteStore, StoreError

from . import logs, status
from .aaa import open_disconnect
from .allocator import keep_large_blocks_mapped
from .config import (
    ConfigError,
    DaemonConfig,
    ForeignAgentFile,
    HomeAgentFile,
    MobileNodeFile,
    load_config,
)
from .control import (
    ControlError,
    ControlServer,
    handover_commands,
    operator_commands,
    socket_alive,
    status_limit,
)
from .driving import DaemonExecutor, TimedDriver
from .reload import reload as reload_config
from .reload import routine_log_level
from .validate import check_local_addresses, check_store  # check_store: the ops hook

if TYPE_CHECKING:  # prometheus_client is imported only when [metrics] is configured
    from .metrics import MetricsServer

Engine = HomeAgent | ForeignAgent | MobileNode

#: Longest wait for the reply to the mobile node's deregistration at shutdown, seconds.
DEREGISTER_WAIT = 2.0

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


# -- perf (issue 13): the garbage collector at a million bindings ---------------------------


def freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """A ``gc.callbacks`` hook: what survived a collection of the older generations is
    long-lived state (bindings, visitors, replay records), moved out of the collector's
    generations (``gc.freeze()``) so that no later collection walks it again. Without it
    a full collection at a million bindings pauses the loop for most of a second
    (``mip4 bench engine``). Frozen objects are still freed by reference counting when
    they are dropped; only a reference cycle among them would never be collected."""
    if phase == "stop" and info.get("generation", 0) >= 1:
        gc.freeze()


def settle_collector() -> None:
    """After loading (configuration, security associations, modules): collect once,
    freeze what is there, and freeze the survivors of every later older-generation
    collection (:func:`freeze_survivors`)."""
    gc.collect()
    gc.freeze()
    if freeze_survivors not in gc.callbacks:
        gc.callbacks.append(freeze_survivors)


#: seconds between the daemon's own young collections (:class:`PacedCollector`)
YOUNG_EVERY = 0.02
#: every this many of them, the middle generation too (then :func:`freeze_survivors`)
MIDDLE_EVERY = 10


class PacedCollector:
    """The collector's young generations collected on a clock as well as by its count.

    CPython 3.11 counts generation 0 up for each tracked object made and down for each one
    freed -- a frozen one too. A binding or visitor record replaced by a new one (a node's
    move, a renewal with a persistent binding store) frees a frozen record and leaves a new
    one in generation 0: the count stays where it was while the generation grows, and the
    collection that finally comes walks all of it at once (26-42 ms at a million bindings,
    benchmarks/README.md, the engine's sixth pass). Collected every :data:`YOUNG_EVERY`
    seconds, generation 0 holds what a few milliseconds of traffic left, and the middle
    generation, collected every :data:`MIDDLE_EVERY` ticks and then frozen
    (:func:`freeze_survivors`), ten times that."""

    def __init__(self) -> None:
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1
        gc.collect(1 if self.ticks % MIDDLE_EVERY == 0 else 0)

    def run(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tick every :data:`YOUNG_EVERY` seconds on ``loop`` while it runs."""

        def again() -> None:
            self.tick()
            loop.call_later(YOUNG_EVERY, again)

        loop.call_later(YOUNG_EVERY, again)


# -- end perf


def build_engine(cfg: DaemonConfig, store: SqliteStore | None = None) -> Engine:
    """The core engine the configuration describes (wall clock offset from now); an
    agent's tables in ``store`` when one is given (``[store] path``)."""
    offset = store.clock_offset if store is not None else clock_offset()
    f = cfg.file
    if isinstance(f, HomeAgentFile):
        bindings = store.bindings if store is not None else None
        return HomeAgent(f.home_agent, cfg.store(), offset, bindings=bindings)
    if isinstance(f, ForeignAgentFile):
        visitors = store.visitors if store is not None else None
        # handovers (issue 14): [handoff], absent: off
        return ForeignAgent(
            f.foreign_agent, cfg.store(), offset, visitors=visitors, handoff=f.handoff
        )
    handover = f.handover.settings() if f.handover is not None else None  # [handover]
    # no MN-HA association configured: the key comes from AAA (RFC 3957)
    sa = cfg.mn_association() if cfg.associations else None
    return MobileNode(f.mobile_node, sa, offset, handover=handover)


# -- [store] (issue 15; the store helper's block) ----------------------------------------


def clock_offset() -> float:
    """Unix time minus the monotonic clock the driver feeds the engines."""
    return time.time() - time.monotonic()


def open_store(cfg: DaemonConfig) -> SqliteStore | None:
    """The agent's store file (``[store] path``), checked; ``None`` when there is none.
    :class:`~mip4.store.StoreError` (one line naming the file) when it cannot be used."""
    section = getattr(cfg.file, "store", None)
    if section is None:
        return None
    path = section.resolved(cfg.source)
    if path is None:
        return None
    return SqliteStore(path, clock_offset(), synchronous=section.synchronous)


# -- end of the store helper's block -----------------------------------------------------


def journal_path(cfg: DaemonConfig) -> Path:
    """Where the daemon of ``cfg`` keeps its undo journal: the run directory (beside its
    control socket), named by role, TUN device and the inode of the current network
    namespace, so that the restarted daemon finds it and daemons of the same
    configuration in other namespaces do not."""
    netns = os.stat("/proc/thread-self/ns/net").st_ino
    directory = cfg.control_socket(os.getpid()).parent
    return directory / f"{cfg.role}-{cfg.tun_name}-netns{netns}.undo.json"


def open_io(cfg: DaemonConfig, engine: Engine, journal: Journal | None = None) -> NodeIO:
    """:meth:`NodeIO.open` in the current namespace with the role's options."""
    io = cfg.io
    common: dict[str, Any] = {
        "journal": journal,
        "tun_name": cfg.tun_name,
        "tun_mtu": io.tun_mtu,
        "tunnel_mtu": io.tunnel_mtu,
        "own_addresses": frozenset(io.own_addresses),
        "link_sources": cfg.link_sources,
        "forwarding": cfg.forwarding,
        "port": io.port,
        "bpf_capacity": io.fast_path_capacity,
        "bpf_forward": io.fast_path_forwarding,
    }
    if isinstance(engine, HomeAgent):
        return NodeIO.open(
            None,
            cfg.interfaces,
            tunnel_source=cfg.tunnel_source,
            dataplane=io.dataplane,
            # the home agent uses a sender's hardware address only for a request the node
            # sent from its home address (RFC 5944 §4.6): the tap copies nothing else
            link_sources_from_home_address=True,
            flood_steering=io.flood_steering,  # issue 13
            **common,
        )
    if isinstance(engine, ForeignAgent):
        return NodeIO.open(
            None,
            cfg.interfaces,
            tunnel_source=cfg.tunnel_source,
            dataplane=io.dataplane,  # issue 12: the foreign agent's bpf plane
            bpf_role=Role.FOREIGN_AGENT,
            # issue 10: RFC 2794 requests from 0.0.0.0 (nodes known by NAI only)
            unaddressed_requests=engine.config.zero_home_address,
            # issue 13: the tap reads requests from visitors, which arrive on the visited
            # links only (the home agents' replies on the other links are not copied)
            link_source_interfaces=tuple(link.interface for link in engine.config.links),
            batch_udp=True,  # issue 13: a read's relays to the home agents in one sendmmsg
            bpf_relay=io.fast_path_relay,  # issue 13: the usual renewal relayed by the kernel
            **common,
        )
    mn = engine.config
    return NodeIO.open(
        None,
        cfg.interfaces,
        tunnel_source=cfg.tunnel_source,
        home_gateway=io.home_gateway,
        home_network=mn.home_subnet or mn.home_network,
        icmp_errors=True,
        watch_links=True,
        ignore_addresses=frozenset({mn.home_address}),
        dataplane=io.dataplane,  # issue 12: the co-located node's bpf plane
        bpf_role=Role.MOBILE_NODE,
        **common,
    )


def follow_home_address(io: NodeIO) -> Callable[[IPv4Address], None] | None:
    """The mobile node's link monitor ignores its home address (``ignore_addresses``: the
    node keeps it on its interface everywhere, so it must not read as a co-located care-of
    address nor as "this link is home"): the configured one from the start, and -- what
    this returns, for :class:`DaemonExecutor` -- each one a home agent assigns (RFC 2794)
    from the moment it is assigned. An address once assigned stays ignored after its
    release: it is never the node's care-of address. ``None``: no link monitor."""
    mon = io.linkmon
    if mon is None:
        return None

    def ignore(address: IPv4Address) -> None:
        if address.is_unspecified or address in mon.ignore_addresses:
            return
        mon.ignore_addresses = mon.ignore_addresses | {address}
        logs.event("daemon.link_monitor_ignores", address=str(address), why="home address")

    return ignore


def trust_bound_sources(steering: Steering, engine: HomeAgent) -> None:
    """Flood steering (issue 13): the sources of the bindings the home agent starts with
    (``[store]``: accepted before a restart, so authenticated) are trusted from the start --
    their renewals do not wait on the general socket for their first reply. At most as
    many as the map holds (a million co-located bindings: not a million map updates)."""
    for binding in engine.bindings:
        if steering.marked >= steering.capacity:
            break
        if binding.source is not None:
            steering.trust(binding.source)


class StartError(RuntimeError):
    """The daemon must not start (another one runs here, a name is taken)."""


IFF_PERSIST = 0x0800


def tun_flags(ifname: str, sys_class_net: Path = Path("/sys/class/net")) -> int | None:
    """The TUN flags of ``ifname`` (``None``: not a TUN/TAP device)."""
    try:
        return int((sys_class_net / ifname / "tun_flags").read_text(), 16)
    except (OSError, ValueError):
        return None


def clear_leftovers(cfg: DaemonConfig) -> list[str]:
    """Remove what a crashed daemon of this configuration may have left in the current
    namespace; returns what was removed, as text.

    A link named ``tun_name`` is removed only if it is a *persistent* TUN device nobody
    needs to have open; our own devices are not persistent, so one that exists belongs to
    a live process: :class:`StartError` (as for any other kind of link with that name),
    and nothing else is touched -- the reverse-tunnel rules may be that daemon's.

    Then every record of the dead daemon's undo journal is undone (:func:`_undo_journal`):
    a home agent's proxy ARP entries, a mobile node's withdrawn home subnet route, the
    sysctls with their original values. Policy rules and routes of the reverse-tunnel
    table no journal names (a daemon of an older version) are removed last."""
    removed: list[str] = []
    ns = Netns(None)
    try:
        idx = ns.link_index(cfg.tun_name, missing_ok=True)
        if idx is not None:
            flags = tun_flags(cfg.tun_name)
            if flags is None:
                raise StartError(f"{cfg.tun_name} exists and is not a TUN device (io.tun_name)")
            if not flags & IFF_PERSIST:
                raise StartError(
                    f"TUN device {cfg.tun_name} is in use: is another daemon running here?"
                )
            ns.ipr.link("del", index=idx)
            removed.append(f"link {cfg.tun_name}")
        removed += _undo_journal(ns, journal_path(cfg))
        for rule in ns.ipr.get_rules(family=2):
            table = rule.get("FRA_TABLE") or rule.get("table")
            if table == REVERSE_TABLE:
                prio = rule.get("FRA_PRIORITY")
                with contextlib.suppress(Exception):
                    ns.ipr.rule("del", table=REVERSE_TABLE, priority=prio, family=2)
                    removed.append(f"rule priority {prio} table {REVERSE_TABLE}")
        n = 0
        for r in ns.ipr.route("dump", family=2, table=REVERSE_TABLE):
            if r.get("RTA_TABLE") != REVERSE_TABLE:
                continue
            spec: dict[str, Any] = {"table": REVERSE_TABLE, "dst_len": r["dst_len"]}
            spec["scope"] = r["scope"]
            spec["dst"] = r.get("RTA_DST") or "0.0.0.0"
            for key, attr in (("oif", "RTA_OIF"), ("gateway", "RTA_GATEWAY")):
                if r.get(attr) is not None:
                    spec[key] = r.get(attr)
            with contextlib.suppress(Exception):
                ns.ipr.route("del", **spec)
                n += 1
        if n:
            removed.append(f"routes of table {REVERSE_TABLE}")
    finally:
        ns.close()
    return removed


def _undo_journal(ns: Netns, path: Path) -> list[str]:
    """Undo, newest first, the records a killed daemon left in its journal ``path`` (what
    its stacks owned when it died: routes, rules, neighbour and proxy entries, withdrawn
    routes, sysctls with the values from before mip4 first changed them); the journal is
    then removed. Returns what was undone (objects already gone are left out)."""
    done: list[str] = []
    for record in reversed(load_journal(path)):
        try:
            if ns.undo_record(record):
                done.append(record.describe())
        except Exception as exc:
            logs.event(
                "daemon.leftover_not_removed",
                logging.WARNING,
                record=record.describe(),
                error=str(exc),
            )
    path.unlink(missing_ok=True)
    return done


def has_default_route(ns: Netns) -> bool:
    return any(r["dst_len"] == 0 for r in ns.ipr.route("dump", family=2, table=254))


def restore_home_default_route(cfg: DaemonConfig) -> str | None:
    """The mobile node replaces its default route while away (via the foreign agent) and
    the executor removes what it made on exit, which would leave the node without one:
    put back ``default via io.home_gateway`` (as at home) when there is no default route.
    Returns what was done, if anything."""
    gw = cfg.io.home_gateway
    if not isinstance(cfg.file, MobileNodeFile) or gw is None:
        return None
    ns = Netns(None)
    try:
        if has_default_route(ns):
            return None
        idx = ns.link_index(cfg.interfaces[0], missing_ok=True)
        if idx is None:
            return None
        ns.ipr.route("replace", dst="0.0.0.0", dst_len=0, gateway=str(gw), oif=idx, proto=4)
        return f"default via {gw} dev {cfg.interfaces[0]}"
    finally:
        ns.close()


@dataclass
class Daemon:
    cfg: DaemonConfig
    engine: Engine
    io: NodeIO
    name: str
    store: SqliteStore | None = None
    started: float = field(default_factory=time.monotonic)
    driver: EngineDriver | None = None
    executor: DaemonExecutor | None = None

    def reload(self) -> None:
        """SIGHUP: read the file again and apply what can change in place
        (:mod:`mip4.daemon.reload`); an invalid file changes nothing."""
        try:
            new = load_config(self.cfg.role, self.cfg.source)
            result = reload_config(self.cfg, self.engine, new)
        except (ConfigError, ValueError, TypeError) as e:
            logs.event(
                "daemon.reload_failed",
                logging.ERROR,
                config=self.cfg.source,
                error=str(e),
                running="previous configuration",
            )
            return
        self.cfg = result.config
        for key in result.refused:
            logs.event("daemon.reload_refused", logging.WARNING, key=key, reason="needs a restart")
        for w in result.config.warnings:
            logs.event("daemon.config_warning", logging.WARNING, warning=w)
        logs.event(
            "daemon.reloaded",
            config=self.cfg.source,
            applied=list(result.applied),
            refused=list(result.refused),
        )
        if self.driver is not None:
            self.driver.start()  # re-arm: a limit may move a deadline

    def status(self, limit: int | None = status.LIMIT) -> dict[str, Any]:
        """The ``status`` object; ``limit``: the most entries of each list (``None``: all)."""
        fwd = self.io.forwarder
        ex = self.executor
        counter_sets = status.counters(
            self.engine,
            mn_replies=ex.replies if ex is not None else None,
            driver=self.driver.stats if self.driver is not None else None,
            executor=self.io.executor.counters(),
            forwarder=fwd.stats if fwd is not None else None,
            tunnel=status.read_tun_stats(self.cfg.tun_name) if self.io.tun is not None else None,
        )
        snap = status.snapshot(
            role=self.cfg.role,
            name=self.name,
            config=self.cfg.source,
            started=self.started,
            now=time.monotonic(),
            interfaces=self.cfg.interfaces,
            tun=self.io.tun.name if self.io.tun is not None else None,
            engine=self.engine,
            counter_sets=counter_sets,
            limit=limit,
        )
        snap["dataplane"] = self.io.dataplane  # issue 12: which plane forwards
        if isinstance(self.engine, HomeAgent):  # issue 13: flood steering
            steer = self.io.steering
            snap["steering"] = status.steering(
                steer.snapshot() if steer is not None else None,
                self.io.steering_off,
                self.driver.stats if self.driver is not None else None,
            )
        if self.store is not None:  # issue 15: the store file and what was written to it
            st = self.store
            snap["store"] = {"path": str(st.path), "writes": st.writes, "commits": st.commits}
        if ex is not None and ex.aaa is not None:
            snap["aaa"] = ex.aaa.snapshot()  # issue 10: per-server RADIUS counters
        if self.io.fast_path is not None:
            fast = self.io.fast_path
            snap["fast_path"] = {
                "bindings": fast.counters(limit),
                "events": fast.events(),
                "capacity": fast.plane.max_entries(MapName.BINDINGS),
                "map_full": dict(fast.full),
                # where the maps are pinned (None: not pinned; a crash stops the fast path)
                "pinned": None if fast.plane.pin_dir is None else str(fast.plane.pin_dir),
            }
        return snap

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] | None = None) -> None:
        """The main loop: like :meth:`NodeIO.run`, with the daemon's executor, the control
        socket and the mobile node's deregistration on the way out."""
        loop = asyncio.get_running_loop()
        self.executor = executor = DaemonExecutor(self.io.executor)
        if isinstance(self.engine, MobileNode):
            executor.home_address_assigned = follow_home_address(self.io)
        if self.io.steering is not None:  # issue 13: accepted sources read first
            executor.trust = self.io.steering.trust
            if isinstance(self.engine, HomeAgent):
                trust_bound_sources(self.io.steering, self.engine)
        driver = TimedDriver(self.engine, self.executor, loop=loop)
        driver.store = self.store
        self.driver = driver
        # issue 10: a foreign agent's accounting records carry its data plane's counts
        traffic = visitor_traffic(self.io) if isinstance(self.engine, ForeignAgent) else None
        executor.aaa = open_aaa(self.cfg, driver, traffic=traffic)
        # issue 11: RADIUS Disconnect-Request -> revocation (RFC 5176, RFC 3543)
        disconnect = await open_disconnect(self.cfg.aaa, self.engine, driver, self.cfg.source)
        server = ControlServer(
            self.cfg.control_socket(os.getpid()),
            {"ping": lambda: {"pong": os.getpid()}},
            # issue 11 (rev): operator revoke/redirect (RFC 3543, RFC 4433)
            commands={
                "status": lambda req: {"status": self.status(status_limit(req))},
                **operator_commands(self.engine, driver),
                # issue 14: link-layer triggers from outside (with [handover]/[handoff])
                **handover_commands(self.engine, driver),
            },
        )
        await server.start()
        metrics_server: MetricsServer | None = None
        listen = self.cfg.file.metrics.address
        if listen is not None:
            from .metrics import Metrics, MetricsServer

            metrics = Metrics(self.status)
            executor.metrics = driver.metrics = metrics
            metrics_server = MetricsServer(metrics, listen)
            try:
                await metrics_server.start()
            except OSError as e:
                await server.close()
                raise StartError(f"metrics.listen: cannot listen on {listen}: {e}") from None
            logs.event("daemon.metrics_listening", listen=self.cfg.file.metrics.listen)
        routine_log_level(self.engine, self.cfg)  # agents' DEBUG records: built if read

        async def summarise_discards() -> None:
            while True:
                await asyncio.sleep(executor.discards.interval)
                executor.discards.log_summary()

        summaries = asyncio.create_task(summarise_discards())
        subagent: AgentXSubagent | None = None
        subagent_task: asyncio.Task[None] | None = None
        try:
            self.io.attach(driver)
            if self.store is not None and not isinstance(self.engine, MobileNode):
                # Before anything is answered (no await since attach: no datagram has
                # been read): re-install what the store kept, drop what expired.
                driver.run_actions(self.engine.restore(driver.clock()))
            driver.start()
            for ev in self.io.current_links():
                driver.feed(ev)
            snmp = self.cfg.file.snmp
            if snmp.agentx_socket is not None:
                subagent = AgentXSubagent(
                    self.status, snmp.agentx_socket, ping_interval=snmp.ping_interval
                )
                subagent_task = asyncio.create_task(subagent.run())
                logs.event("daemon.agentx_started", socket=snmp.agentx_socket)
            logs.event(
                "daemon.started",
                role=self.cfg.role,
                config=self.cfg.source,
                pid=os.getpid(),
                control_socket=str(server.path),
                interfaces=list(self.cfg.interfaces),
                tun=self.cfg.tun_name,
            )
            if ready is not None:
                ready()
            await stop.wait()
            if isinstance(self.engine, MobileNode):
                await self._deregister(driver)
        finally:
            if subagent is not None and subagent_task is not None:
                subagent.stop()
                try:
                    await asyncio.wait_for(subagent_task, 2.0)
                except (TimeoutError, asyncio.CancelledError):
                    subagent_task.cancel()
            if metrics_server is not None:
                await metrics_server.close()
            summaries.cancel()
            executor.discards.log_summary()
            driver.close()
            if disconnect is not None:
                disconnect.close()
            if executor.aaa is not None:
                if stop.is_set():  # a clean stop: every open accounting session ends
                    await executor.aaa.stop_sessions()
                await executor.aaa.close(flush=AAA_FLUSH)
            if self.io.forwarder is not None:
                self.io.forwarder.detach()
            await server.close()

    async def _deregister(self, driver: EngineDriver) -> None:
        mn = self.engine
        assert isinstance(mn, MobileNode)
        if mn.binding is None or mn.at_home or mn.attachment is None:
            return
        logs.event("daemon.deregistering", care_of_address=mn.care_of_address)
        driver.run_actions(mn.deregister(driver.clock()))
        driver.start()  # re-arm the timer: retransmissions
        deadline = time.monotonic() + DEREGISTER_WAIT
        while time.monotonic() < deadline:
            pending = mn.pending_request
            if pending is None or pending.lifetime != 0:
                break
            await asyncio.sleep(0.02)
        done = mn.pending_request is None or mn.pending_request.lifetime != 0
        logs.event(
            "daemon.deregistered" if done else "daemon.deregistration_unanswered",
            level=logging.INFO if done else logging.WARNING,
            state=mn.state.value,
        )


# -- AAA (issue 10) ----------------------------------------------------------------------

#: Longest wait at shutdown for RADIUS exchanges under way (accounting records), seconds.
AAA_FLUSH = 2.0


def open_aaa(
    cfg: DaemonConfig,
    driver: EngineDriver,
    *,
    traffic: Callable[[IPv4Address], Traffic | None] | None = None,
) -> AaaShell | None:
    """The RADIUS client of ``[aaa]`` and the shell that feeds its answers to ``driver``
    (``None`` without servers). Secrets stay inside the client's server objects.
    ``traffic``: the data plane's per-visitor counters (:func:`visitor_traffic`)."""
    if cfg.aaa is None:
        return None
    client = RadiusClient(
        list(cfg.aaa.servers), cfg.aaa.policy, nas_identifier=cfg.aaa.nas_identifier
    )
    logs.event("daemon.aaa_servers", servers=[s.name for s in cfg.aaa.servers])
    return AaaShell(client, driver.feed, traffic=traffic)


def visitor_traffic(io: NodeIO) -> Callable[[IPv4Address], Traffic | None] | None:
    """A foreign agent's per-visitor counters for accounting (``None``: no data plane).

    User space: the forwarder's :meth:`~mip4.io.forwarder.Forwarder.visitor_traffic`.
    The bpf plane forwards most datagrams in the kernel and hands the rest to the
    forwarder behind it (its slow path), so a visitor's traffic is the sum of
    ``BpfPlane.visitor_traffic`` and the forwarder's; a plane without that method adds
    nothing."""
    sources: list[Callable[[IPv4Address], Traffic | None]] = []
    if io.forwarder is not None:
        sources.append(io.forwarder.visitor_traffic)
    if io.fast_path is not None:
        fast = getattr(io.fast_path.plane, "visitor_traffic", None)
        if callable(fast):
            sources.append(fast)
    if not sources:
        return None
    if len(sources) == 1:
        return sources[0]

    def summed(home: IPv4Address) -> Traffic | None:
        seen = [c for c in (source(home) for source in sources) if c is not None]
        if not seen:
            return None
        return (
            sum(c[0] for c in seen),
            sum(c[1] for c in seen),
            sum(c[2] for c in seen),
            sum(c[3] for c in seen),
        )

    return summed


# -- end AAA ------------------------------------------------------------------------------


def _loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not use_uvloop:
        return None
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


#: The signals that stop a daemon cleanly.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: The signal that reloads the configuration (:meth:`Daemon.reload`).
RELOAD_SIGNAL = signal.SIGHUP


class _Stopped(BaseException):
    """A stop signal before the event loop runs (start-up)."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


class _HupDuringStart:
    """SIGHUP before the loop runs: remembered, and the reload done once it runs."""

    pending = False

    @classmethod
    def handler(cls, signum: int, frame: object) -> None:
        cls.pending = True


def _set_signals(handler: Any, hup: Any = None) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    signal.signal(RELOAD_SIGNAL, handler if hup is None else hup)


def serve(cfg: DaemonConfig, store: SqliteStore | None = None) -> int:
    """Run the daemon of ``cfg`` until SIGTERM/SIGINT; the exit status. SIGHUP reloads
    the configuration once the daemon runs (one during start-up is done then).

    A stop signal during start-up stops it cleanly too (whatever was opened is closed);
    once the loop runs, its handlers set the stop event; clean-up runs with the signals
    ignored, so a second SIGTERM cannot cut it short."""
    name = cfg.daemon.name or str(os.getpid())
    _set_signals(_raise_stopped, _HupDuringStart.handler)
    io: NodeIO | None = None
    status_code = EXIT_OK
    stage = "clear leftovers"
    try:
        path = cfg.control_socket(os.getpid())
        if socket_alive(path):
            raise StartError(f"{path}: another daemon is running and answers there")
        removed = clear_leftovers(cfg)
        if removed:
            logs.event("daemon.leftovers_cleared", logging.WARNING, removed=removed)
        keep_large_blocks_mapped()  # perf (issue 13): tables grow without a copy
        engine = build_engine(cfg, store)
        stage = "open I/O"
        io = open_io(cfg, engine, Journal(journal_path(cfg)))
        daemon = Daemon(cfg, engine, io, name, store=store)
        # -- perf (issue 13): what loading made (configuration, security associations,
        # imported modules) lives as long as the daemon: moved out of the collector's
        # generations, so no full collection walks it again; so is what lives on
        settle_collector()
        # -- end perf
        stage = "run"
        with asyncio.Runner(loop_factory=_loop_factory(cfg.daemon.uvloop)) as runner:
            stop = asyncio.Event()

            async def main() -> None:
                loop = asyncio.get_running_loop()
                for sig in STOP_SIGNALS:
                    loop.add_signal_handler(sig, stop.set)
                PacedCollector().run(loop)  # perf (issue 13)

                def ready() -> None:
                    loop.add_signal_handler(RELOAD_SIGNAL, daemon.reload)
                    if _HupDuringStart.pending:
                        _HupDuringStart.pending = False
                        daemon.reload()

                await daemon.run(stop, ready)

            runner.run(main())
    except _Stopped:
        logs.event("daemon.stopping", stage=stage)
    except (ControlError, StartError) as e:
        logs.event("daemon.failed", logging.ERROR, stage=stage, error=str(e))
        status_code = EXIT_FAILURE
    except Exception as e:
        if stage == "run":
            logs.log.exception("daemon failed", extra={"event": "daemon.failed"})
        logs.event("daemon.failed", logging.ERROR, stage=stage, error=str(e) or repr(e))
        status_code = EXIT_FAILURE
    finally:
        _set_signals(signal.SIG_IGN)
        if io is not None:
            try:
                io.close()
            except Exception as e:
                logs.event("daemon.cleanup_failed", logging.ERROR, error=repr(e))
                status_code = EXIT_FAILURE
        try:
            restored = restore_home_default_route(cfg)
            if restored:
                logs.event("daemon.default_route_restored", route=restored)
        except Exception as e:
            logs.event("daemon.default_route_not_restored", logging.WARNING, error=repr(e))
        if store is not None:
            try:
                store.close()
            except Exception as e:
                logs.event("daemon.store_close_failed", logging.ERROR, error=repr(e))
                status_code = EXIT_FAILURE
    logs.event("daemon.stopped", status=status_code)
    return status_code


def main(role: str, config_path: str, *, check_only: bool = False) -> int:
    """``mip4 <role> --config <config_path>``."""
    try:
        cfg = load_config(role, config_path)
    except ConfigError as e:
        print(f"mip4 {role}: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if check_only:
        # -- issue 15 (the ops helper's hook): the store file, read-only ----------------
        try:
            check_store(cfg)
        except StoreError as e:
            print(f"mip4 {role}: {e}", file=sys.stderr)
            return EXIT_CONFIG
        # -- end of the ops helper's hook -------------------------------------------------
        for w in cfg.warnings:
            print(f"mip4 {role}: warning: {w}", file=sys.stderr)
        print(f"{config_path}: ok ({role}, control socket {cfg.control_socket(os.getpid())})")
        return EXIT_OK
    # The store file first (issue 15): one that cannot be used stops the daemon, exit 2.
    try:
        store = open_store(cfg)
    except StoreError as e:
        print(f"mip4 {role}: {e}", file=sys.stderr)
        return EXIT_CONFIG
    # Not under --check, which may run outside the daemon's namespace: the agent's own
    # addresses must be on an interface here (a home agent address on none cannot work).
    try:
        warnings = [*cfg.warnings, *check_local_addresses(cfg)]
    except ConfigError as e:
        if store is not None:
            store.close()
        print(f"mip4 {role}: {e}", file=sys.stderr)
        return EXIT_CONFIG
    d = cfg.daemon
    try:
        logs.setup(
            d.log_format,
            d.log_level,
            role,
            d.name or str(os.getpid()),
            target=d.log_target,
            socket_path=d.log_socket,
        )
    except OSError as e:
        if store is not None:
            store.close()
        where = d.log_socket or (logs.SYSLOG_SOCKET if d.log_target == "syslog" else
                                 logs.JOURNAL_SOCKET)  # fmt: skip
        print(
            f"mip4 {role}: {cfg.source}: daemon.log_socket: cannot log to {d.log_target} at "
            f"{where}: {e.strerror or e}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    for w in warnings:
        logs.event("daemon.config_warning", logging.WARNING, warning=w)
    if store is not None:
        logs.event(
            "daemon.store_opened",
            path=str(store.path),
            bindings=len(store.bindings),
            visitors=len(store.visitors),
        )
    return serve(cfg, store)
