"""A reusable Mobile IP scenario on the namespace lab: the harness behind ``mip4 lab demo``
and the system tests.

Theory of operation
-------------------
:class:`Scenario` owns one :class:`~mip4.lab.Lab` and the mobility agents running in it::

    with Scenario(Settings("x1", encapsulation="gre")) as sc:   # lab up, agents up, MN home
        rec = sc.move("a")          # a MoveRecord: care-of address, registration RTT, times
        sc.ha_status().bindings     # what the home agent holds now
    # agents stopped, lab torn down: also on an exception or Ctrl-C

Everything is bounded: every wait has a deadline and fails with :class:`ScenarioError`
naming what did not happen (the mobile node's last state, the home agent's bindings).

The agents run behind a :class:`Backend`. :class:`DaemonBackend` (the default) starts the
daemons — ``mip4 ha``, ``mip4 fa`` on FA1 and FA2, ``mip4 mn`` — as processes in the lab's
namespaces, configured by :func:`mip4.lab.configs.lab_configs` (JSON logs and control
sockets in a work directory), reads their status over the control socket (the object
``mip4 status --json`` prints) and the mobile node's registration round trips from its log.
:class:`EngineBackend` drives the same engines through :mod:`mip4.io` on an asyncio loop in a
thread of this process. Both report the same normalised status (:class:`MnStatus`,
:class:`HaStatus`), so the scenario does not care which runs.

Network C has no agent and no DHCP: after moving there the scenario gives the mobile node
the static co-located address (``10.4.0.100/24``, default route via ``10.4.0.1``), and
removes it again before the node leaves.

:class:`Capture` runs ``tshark`` on the lab's bridges (in the switch namespace), bounded
by ``-a duration``, for the control-message checks.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mip4.core.actions import Action, Encapsulation
from mip4.core.events import Event, LinkUp
from mip4.core.foreign_agent import ForeignAgent, ForeignAgentConfig, VisitedLink
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.core.mobile_node import MnState, MobileNode, MobileNodeConfig, ReverseTunnel
from mip4.demo.report import MoveRecord
from mip4.io.loop import EngineDriver
from mip4.io.runtime import NodeIO
from mip4.lab.configs import LAB_KEY, LAB_SPI
from mip4.security.sa import SecurityAssociation, SecurityAssociations

from .build import Lab

T = TypeVar("T")

ENCAPSULATIONS = {
    "ipip": Encapsulation.IPIP,
    "minimal": Encapsulation.MINIMAL,
    "gre": Encapsulation.GRE,
}
#: the agents, in start order
AGENTS = ("ha", "fa1", "fa2", "mn")
#: how the agents run: ``mip4 ha/fa/mn`` processes, or the engines in this process
BACKENDS = ("daemons", "engines")
#: which foreign agent serves which network
AGENT_OF = {"a": "fa1", "b": "fa2"}
#: the mobile node-home agent security association of the lab (RFC 5944 §3.5.1)
MN_HA_SPI = LAB_SPI
MN_HA_KEY = LAB_KEY


class ScenarioError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    """What a scenario runs."""

    lab_id: str
    #: RFC 3024 reverse tunnelling (the MN's T bit); with it the router filters ingress
    reverse_tunnel: bool = True
    #: ``ipip``, ``minimal`` or ``gre``: the encapsulation the mobile node asks for
    encapsulation: str = "ipip"
    #: registration lifetime the mobile node asks for, seconds
    lifetime: int = 300
    #: agent advertisement interval, seconds
    advertisement_interval: float = 1.0
    #: how long a registration may take after a move, seconds
    register_within: float = 15.0
    #: RFC 2827 ingress filtering on the router (default: on when reverse tunnelling)
    ingress_filter: bool | None = None
    #: the mobile node's B bit: home-link broadcasts are forwarded to it (RFC 5944 §4.3)
    broadcast: bool = False

    def __post_init__(self) -> None:
        if self.encapsulation not in ENCAPSULATIONS:
            raise ValueError(
                f"encapsulation {self.encapsulation!r}: one of {', '.join(ENCAPSULATIONS)}"
            )

    @property
    def filtered(self) -> bool:
        return self.reverse_tunnel if self.ingress_filter is None else self.ingress_filter


# -- what the agents report -----------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """One accepted registration (or deregistration: ``care_of_address`` None), as the
    mobile node saw it: ``at`` is ``time.time()`` of the acceptance, ``rtt_ms`` the time
    from sending the request (its last transmission) to accepting the reply."""

    at: float
    care_of_address: str | None
    rtt_ms: float


@dataclass(frozen=True)
class MnStatus:
    state: str
    registered: bool
    at_home: bool
    care_of_address: str | None
    registrations: tuple[Registration, ...] = ()
    failure_reason: str | None = None
    #: ``time.time()`` of every link-up the mobile node saw (the kernel's link detection)
    link_ups: tuple[float, ...] = ()


@dataclass(frozen=True)
class HaBinding:
    home_address: str
    care_of_address: str
    encapsulation: str
    reverse_tunnel: bool


@dataclass(frozen=True)
class HaStatus:
    bindings: tuple[HaBinding, ...]
    #: the tunnel forwarder's counters (``encapsulated``, ``delivered_link``, ...)
    forwarder: dict[str, int] = field(default_factory=dict)


class Backend(Protocol):
    """Runs the mobility agents of a lab."""

    def start(self) -> None: ...

    def mn_status(self) -> MnStatus: ...

    def ha_status(self) -> HaStatus: ...

    def forwarder_stats(self, node: str) -> dict[str, int]: ...

    def restart(self, node: str, sig: int = signal.SIGTERM, *, down_for: float = 0.0) -> None:
        """Stop ``node``'s agent (``SIGKILL``: without any clean-up) and start it again."""

    def close(self) -> None: ...


# -- the engines in this process ------------------------------------------------------------


@dataclass
class _Running:
    engine: HomeAgent | ForeignAgent | MobileNode
    io: NodeIO
    stop: asyncio.Event
    task: asyncio.Task[EngineDriver]


class _RttRecorder:
    """Wraps the mobile node engine: every input that turns an outstanding request into an
    accepted registration (or deregistration) is recorded with its round trip."""

    def __init__(self, mn: MobileNode, sink: list[Registration], link_ups: list[float]) -> None:
        self.mn = mn
        self.sink = sink
        self.link_ups = link_ups

    def _watch(self, now: float, step: Callable[[], list[Action]]) -> list[Action]:
        pending = self.mn._pending
        out = step()
        if pending is not None and self.mn._pending is None:
            if self.mn.state is MnState.REGISTERED:
                coa = self.mn.care_of_address
                self._record(now, pending.last_sent, str(coa) if coa else None)
            elif self.mn.state is MnState.AT_HOME:
                self._record(now, pending.last_sent, None)
        return out

    def _record(self, now: float, sent: float, coa: str | None) -> None:
        wall = time.time() - (time.monotonic() - now)
        self.sink.append(Registration(wall, coa, round((now - sent) * 1000.0, 3)))

    def handle(self, event: Event, now: float) -> list[Action]:
        if isinstance(event, LinkUp):
            self.link_ups.append(time.time() - (time.monotonic() - now))
        return self._watch(now, lambda: self.mn.handle(event, now))

    def handle_timer(self, now: float) -> list[Action]:
        return self._watch(now, lambda: self.mn.handle_timer(now))

    def next_deadline(self) -> float | None:
        return self.mn.next_deadline()


def lab_engine(lab: Lab, key: str, s: Settings) -> HomeAgent | ForeignAgent | MobileNode:
    """The engine of lab node ``key`` (``ha``, ``fa1``, ``fa2``, ``mn``) as ``s`` configures
    it, with the lab's mobile node-home agent security association."""
    home = lab.topology.network("home")
    mn_ip, ha_ip = lab.address("mn"), lab.address("ha")
    offset = time.time() - time.monotonic()
    sa = SecurityAssociation(spi=MN_HA_SPI, key=MN_HA_KEY)
    if key == "ha":
        sas = SecurityAssociations()
        sas.add(mn_ip, sa)
        return HomeAgent(
            HomeAgentConfig(
                address=ha_ip,
                home_network=home.subnet,
                interface=lab.ifname("ha"),
                advertisement_interval=s.advertisement_interval,
            ),
            sas,
            offset,
        )
    if key in ("fa1", "fa2"):
        return ForeignAgent(
            ForeignAgentConfig(
                links=(VisitedLink(lab.ifname(key), lab.address(key), 24),),
                advertisement_interval=s.advertisement_interval,
            ),
            SecurityAssociations(),
        )
    encs = [ENCAPSULATIONS[s.encapsulation]]
    if encs[0] is not Encapsulation.IPIP:
        encs.append(Encapsulation.IPIP)
    return MobileNode(
        MobileNodeConfig(
            home_address=mn_ip,
            home_agent=ha_ip,
            reverse_tunnel=ReverseTunnel.PREFER if s.reverse_tunnel else ReverseTunnel.OFF,
            encapsulations=tuple(encs),
            lifetime=s.lifetime,
            broadcast=s.broadcast,
        ),
        sa,
        offset,
    )


def lab_node_io(lab: Lab, key: str) -> NodeIO:
    """:meth:`NodeIO.open` for lab node ``key`` with the options its role needs (TUN device
    ``<prefix>t`` in every node)."""
    tun = f"{lab.prefix}t"
    if key == "ha":
        return NodeIO.open(
            lab.ns("ha"),
            [lab.ifname("ha")],
            tun_name=tun,
            tunnel_source=lab.address("ha"),
            link_sources=True,
            forwarding=True,
        )
    if key in ("fa1", "fa2"):
        return NodeIO.open(
            lab.ns(key), [lab.ifname(key)], tun_name=tun, link_sources=True, forwarding=True
        )
    home = lab.topology.network("home")
    return NodeIO.open(
        lab.ns("mn"),
        [lab.ifname("mn")],
        tun_name=tun,
        home_gateway=home.gateway,
        home_network=IPv4Network(home.subnet),
        icmp_errors=True,
        watch_links=True,
        ignore_addresses=frozenset({lab.address("mn")}),
    )


class EngineBackend:
    """The real engines, driven through :mod:`mip4.io` on an asyncio loop in a thread."""

    def __init__(self, lab: Lab, settings: Settings) -> None:
        self.lab = lab
        self.settings = settings
        self.registrations: list[Registration] = []
        self.link_ups: list[float] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"mip4-agents-{lab.lab_id}", daemon=True
        )
        self._nodes: dict[str, _Running] = {}

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        for key in AGENTS:
            self._call(self._start(key))

    def _engine(self, key: str) -> HomeAgent | ForeignAgent | MobileNode:
        return lab_engine(self.lab, key, self.settings)

    def _open(self, key: str) -> NodeIO:
        return lab_node_io(self.lab, key)

    async def _start(self, key: str) -> None:
        engine = self._engine(key)
        io = self._open(key)
        stop = asyncio.Event()
        driven: Any = engine
        if isinstance(engine, MobileNode):
            driven = _RttRecorder(engine, self.registrations, self.link_ups)
        task = asyncio.create_task(io.run(driven, stop))
        self._nodes[key] = _Running(engine, io, stop, task)
        await asyncio.sleep(0)

    async def _stop(self, key: str, clean: bool = True) -> None:
        r = self._nodes.pop(key, None)
        if r is None:
            return
        r.stop.set()
        try:
            await asyncio.wait_for(r.task, 5)
        finally:
            if clean:
                r.io.close()
            else:
                _abandon(r.io)

    def mn_status(self) -> MnStatus:
        async def read() -> MnStatus:
            mn = self._nodes["mn"].engine
            assert isinstance(mn, MobileNode)
            coa = mn.care_of_address
            return MnStatus(
                state=mn.state.value,
                registered=mn.registered,
                at_home=mn.state is MnState.AT_HOME,
                care_of_address=str(coa) if coa is not None else None,
                registrations=tuple(self.registrations),
                failure_reason=mn.failure_reason,
                link_ups=tuple(self.link_ups),
            )

        return self._call(read())

    def ha_status(self) -> HaStatus:
        async def read() -> HaStatus:
            ha = self._nodes["ha"].engine
            assert isinstance(ha, HomeAgent)
            return HaStatus(
                tuple(
                    HaBinding(
                        str(b.home_address),
                        str(b.care_of_address),
                        b.encapsulation.name.lower(),
                        b.reverse_tunnel,
                    )
                    for b in ha.bindings
                ),
                self._stats("ha"),
            )

        return self._call(read())

    def _stats(self, node: str) -> dict[str, int]:
        fwd = self._nodes[node].io.forwarder
        return dict(fwd.stats) if fwd is not None else {}

    def forwarder_stats(self, node: str) -> dict[str, int]:
        async def read() -> dict[str, int]:
            return self._stats(node)

        return self._call(read())

    def restart(self, node: str, sig: int = signal.SIGTERM, *, down_for: float = 0.0) -> None:
        self._call(self._stop(node, clean=sig != signal.SIGKILL))
        time.sleep(down_for)
        self._call(self._start(node))

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        for key in reversed(AGENTS):
            with contextlib.suppress(Exception):
                self._call(self._stop(key), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


def _abandon(io: NodeIO) -> None:
    """What a killed daemon leaves: its sockets and TUN close (the kernel does that for a
    dead process), its routes, rules and neighbour entries stay."""
    if io.forwarder is not None:
        io.forwarder.detach()
    for sock in [*io.captures.values(), io.icmp_errors, io.udp]:
        if sock is not None:
            sock.close()
    for closer in (io.tracker, io.linkmon, io.forwarder, io.tun):
        if closer is not None:
            with contextlib.suppress(Exception):
                closer.close()


# -- the daemons, as processes in the lab's namespaces --------------------------------------


class DaemonBackend:
    """``mip4 ha``, ``mip4 fa`` (FA1, FA2) and ``mip4 mn`` as processes in the lab's
    namespaces (:meth:`Lab.popen`), configured by :func:`mip4.lab.configs.lab_configs`
    (JSON log lines, control sockets in ``workdir``). Status comes over the control socket
    (the object ``mip4 status --json`` prints); registration round trips from the mobile
    node's log: its last ``mn-request``/``mn-retransmit`` before each ``mn-registered`` or
    ``mn-deregistered`` line."""

    def __init__(self, lab: Lab, settings: Settings, workdir: Path) -> None:
        from mip4.lab.configs import LAB_ROLES, write_lab_configs

        self.lab = lab
        self.settings = settings
        self.workdir = workdir
        self.roles = LAB_ROLES
        encs = [settings.encapsulation] + (["ipip"] if settings.encapsulation != "ipip" else [])
        self.paths = write_lab_configs(
            lab,
            workdir,
            socket_dir=workdir,
            log_format="json",
            lifetime=settings.lifetime,
            reverse_tunnel="prefer" if settings.reverse_tunnel else "off",
            advertisement_interval=settings.advertisement_interval,
            encapsulations=encs,
            broadcast=settings.broadcast,
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}
        #: exit status of each daemon stopped by :meth:`close` (None: was not running)
        self.stopped: dict[str, int | None] = {}

    def socket(self, node: str) -> Path:
        return self.workdir / f"{node}.sock"

    def log_path(self, node: str) -> Path:
        return self.workdir / f"{node}.{self.starts.get(node, 1)}.log"

    def start(self) -> None:
        for node in AGENTS:
            self._start(node)
        for node in AGENTS:
            self._wait_answering(node, 20)

    def _start(self, node: str) -> None:
        import sys

        self.starts[node] = self.starts.get(node, 0) + 1
        argv = [sys.executable, "-m", "mip4.cli", self.roles[node], "--config"]
        with self.log_path(node).open("wb") as log:
            self.procs[node] = self.lab.popen(
                node,
                [*argv, str(self.paths[node])],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def _wait_answering(self, node: str, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            proc = self.procs[node]
            if proc.poll() is not None:
                raise ScenarioError(
                    f"mip4 {self.roles[node]} on {node} exited with {proc.returncode}:"
                    f" {self._tail(node)}"
                )
            with contextlib.suppress(OSError, ValueError):
                if self.status(node) is not None:
                    return
            time.sleep(0.1)
        raise ScenarioError(f"{node}: no answer on {self.socket(node)}: {self._tail(node)}")

    def _tail(self, node: str) -> str:
        try:
            return self.log_path(node).read_text(errors="replace")[-800:]
        except OSError:
            return "(no log)"

    def status(self, node: str) -> dict[str, Any] | None:
        """The daemon's status object (what ``mip4 status --json`` prints); None when it
        does not answer."""
        from mip4.daemon.control import request

        try:
            answer = request(self.socket(node), "status", timeout=2.0)
        except (OSError, ValueError):
            return None
        st = answer.get("status")
        return st if answer.get("ok") and isinstance(st, dict) else None

    def _must(self, node: str) -> dict[str, Any]:
        st = self.status(node)
        if st is None:
            proc = self.procs.get(node)
            code = proc.poll() if proc is not None else None
            raise ScenarioError(f"{node} does not answer (exit status {code}): {self._tail(node)}")
        return st

    def mn_status(self) -> MnStatus:
        mn = self._must("mn")["mobile_node"]
        registrations, link_ups = self.mn_log()
        return MnStatus(
            state=str(mn["state"]),
            registered=bool(mn["registered"]),
            at_home=bool(mn["at_home"]),
            care_of_address=mn.get("care_of_address"),
            registrations=tuple(registrations),
            failure_reason=mn.get("failure_reason"),
            link_ups=tuple(link_ups),
        )

    def mn_log(self) -> tuple[list[Registration], list[float]]:
        """Accepted (de)registrations with their round trips, and link-ups, from the mobile
        node's logs."""
        import json

        out: list[Registration] = []
        link_ups: list[float] = []
        for n in range(1, self.starts.get("mn", 0) + 1):
            sent: float | None = None
            path = self.workdir / f"mn.{n}.log"
            with contextlib.suppress(OSError):
                for line in path.read_text(errors="replace").splitlines():
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if not isinstance(rec, dict):
                        continue
                    event = rec.get("event")
                    at = _parse_ts(str(rec.get("ts", "")))
                    if event == "mn-link-up" and at is not None:
                        link_ups.append(at)
                    elif event in ("mn-request", "mn-retransmit"):
                        sent = at
                    elif event in ("mn-registered", "mn-deregistered") and at is not None:
                        coa = rec.get("care_of_address") if event == "mn-registered" else None
                        rtt = (at - sent) * 1000.0 if sent is not None else float("nan")
                        out.append(Registration(at, coa, round(rtt, 3)))
                        sent = None
        return out, link_ups

    def ha_status(self) -> HaStatus:
        st = self._must("ha")
        return HaStatus(
            tuple(
                HaBinding(
                    str(b["home_address"]),
                    str(b["care_of_address"]),
                    str(b["encapsulation"]),
                    bool(b["reverse_tunnel"]),
                )
                for b in st["home_agent"]["bindings"]
            ),
            {k: int(v) for k, v in st["counters"].get("forwarder", {}).items()},
        )

    def forwarder_stats(self, node: str) -> dict[str, int]:
        st = self._must(node)
        return {k: int(v) for k, v in st["counters"].get("forwarder", {}).items()}

    def restart(self, node: str, sig: int = signal.SIGTERM, *, down_for: float = 0.0) -> None:
        self._stop(node, sig)
        time.sleep(down_for)
        self._start(node)
        self._wait_answering(node, 20)

    def _stop(self, node: str, sig: int = signal.SIGTERM) -> int | None:
        proc = self.procs.pop(node, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=5)

    def exit_codes(self) -> dict[str, int | None]:
        return {k: p.poll() for k, p in self.procs.items()}

    def close(self) -> None:
        """SIGTERM every daemon (the mobile node first: it deregisters), bounded; their exit
        statuses are in :attr:`stopped`."""
        self.stopped.update({node: self._stop(node) for node in reversed(AGENTS)})


def _parse_ts(ts: str) -> float | None:
    """``2026-11-26T16:31:59.123Z`` → ``time.time()`` seconds."""
    import calendar

    try:
        base, ms = ts.rstrip("Z").split(".")
        return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000.0
    except ValueError:
        return None


# -- the scenario ---------------------------------------------------------------------------


VIA = {"home": "home", "a": "FA1", "b": "FA2", "c": "co-located"}


class Scenario:
    """A lab with its agents running and the mobile node at home; see the module doc."""

    def __init__(
        self,
        settings: Settings,
        *,
        log: Callable[[str], None] = lambda line: None,
        backend: str = "daemons",
        workdir: Path | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: one of {', '.join(BACKENDS)}")
        self.settings = settings
        self.lab = Lab(settings.lab_id, ingress_filter=settings.filtered)
        self.log = log
        self.backend_kind = backend
        #: daemon configurations, control sockets and logs (a temporary directory, removed
        #: at the end, unless given)
        self.workdir = workdir
        self._own_workdir = False
        self.backend: Backend | None = None
        #: the daemons' exit statuses once :meth:`close` stopped them
        self.exit_codes: dict[str, int | None] = {}
        self.net = self.lab.topology.mobile_home

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Scenario:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.log(f"building lab {self.lab.lab_id} (namespaces {self.lab.prefix}-*)")
        atexit.register(self.close)  # a safety net for an interpreter leaving another way
        self.lab.up()
        if self.backend_kind == "daemons":
            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix=f"mip4-{self.lab.prefix}-"))
                self._own_workdir = True
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.log(
                "starting the daemons: mip4 ha, mip4 fa (FA1, FA2), mip4 mn"
                f" (configurations and logs in {self.workdir})"
            )
            self.backend = DaemonBackend(self.lab, self.settings, self.workdir)
        else:
            self.log("starting the home agent, FA1, FA2 and the mobile node (in-process engines)")
            self.backend = EngineBackend(self.lab, self.settings)
        self.backend.start()
        self.wait(lambda: self.mn_status().at_home, 30, "the mobile node to find itself at home")
        self.log("mobile node at home")

    def close(self) -> None:
        """Stop the agents and tear the lab down (idempotent)."""
        atexit.unregister(self.close)
        try:
            if self.backend is not None:
                self.backend.close()
                if isinstance(self.backend, DaemonBackend):
                    self.exit_codes = dict(self.backend.stopped)
        finally:
            self.backend = None
            self.lab.down()
            if self._own_workdir and self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self._own_workdir = False

    @property
    def agents(self) -> Backend:
        if self.backend is None:
            raise ScenarioError("the scenario is not running")
        return self.backend

    # -- status -------------------------------------------------------------------------

    def mn_status(self) -> MnStatus:
        return self.agents.mn_status()

    def ha_status(self) -> HaStatus:
        return self.agents.ha_status()

    def wait(self, pred: Callable[[], bool], within: float, what: str) -> float:
        """Poll ``pred`` every 20 ms for at most ``within`` seconds; returns the time it
        took, raises :class:`ScenarioError` naming ``what`` when it never held."""
        start = time.monotonic()
        while True:
            if pred():
                return time.monotonic() - start
            if time.monotonic() - start > within:
                break
            time.sleep(0.02)
        raise ScenarioError(f"timed out after {within:g} s waiting for {what}; {self._state()}")

    def _state(self) -> str:
        try:
            mn, ha = self.mn_status(), self.ha_status()
        except Exception as exc:
            return f"(status unavailable: {exc})"
        bindings = [f"{b.home_address}->{b.care_of_address}" for b in ha.bindings]
        return (
            f"mobile node {mn.state!r} care-of {mn.care_of_address}"
            f" ({mn.failure_reason or 'no failure'}); home agent bindings {bindings}"
        )

    # -- moving -------------------------------------------------------------------------

    def expected_care_of(self, net: str) -> IPv4Address | None:
        if net == self.lab.topology.mobile_home:
            return None
        if net in AGENT_OF:
            return self.lab.address(AGENT_OF[net])
        colocated = self.lab.topology.network(net).colocated
        if colocated is None:
            raise ScenarioError(f"network {net!r} has neither an agent nor a static address")
        return colocated.ip

    def registered_at(self, net: str) -> bool:
        coa = self.expected_care_of(net)
        mn = self.mn_status()
        if coa is None:
            return mn.at_home and not self.ha_status().bindings
        return mn.registered and mn.care_of_address == str(coa)

    def move(self, net: str, *, within: float | None = None) -> MoveRecord:
        """Move the mobile node to ``net`` and wait (bounded) for its registration there
        (at home: for its deregistration, and for the home agent to hold no binding)."""
        lab, src = self.lab, self.net
        within = self.settings.register_within if within is None else within
        if src == net:
            raise ScenarioError(f"the mobile node is already on {net!r}")
        started = time.time()
        self._leave(src)
        if lab.topology.network(net).colocated is None:
            lab.move(net)
        else:
            # Lab.move returns once the kernel reports the link operationally up, which can
            # take a second; a DHCP server would answer as soon as frames flow, so the
            # static address goes on as soon as the port is on the new bridge and up
            mover = threading.Thread(target=lab.move, args=(net,), name="mip4-move")
            mover.start()
            try:
                self._wait_port(net, 5.0)
                self._arrive(net)
            finally:
                mover.join(15)
        self.net = net
        coa = self.expected_care_of(net)
        try:
            self.wait(lambda: self.registered_at(net), within, f"registration on {net!r}")
        except ScenarioError as exc:
            return MoveRecord(
                src,
                net,
                started,
                None,
                str(coa) if coa else None,
                None,
                VIA.get(net, net),
                str(exc),
            )
        status = self.mn_status()
        reg = self._registration_since(started, str(coa) if coa else None)
        ups = [t for t in status.link_ups if t >= started]
        note = f"link up after {(ups[0] - started) * 1000:.0f} ms" if ups else ""
        return MoveRecord(
            from_net=src,
            to_net=net,
            started_at=started,
            finished_at=reg.at if reg else time.time(),
            care_of_address=str(coa) if coa else None,
            registration_rtt_ms=reg.rtt_ms if reg else None,
            via=VIA.get(net, net),
            note=note,
        )

    def _registration_since(self, since: float, coa: str | None) -> Registration | None:
        regs = [
            r for r in self.mn_status().registrations if r.at >= since and r.care_of_address == coa
        ]
        return regs[0] if regs else None

    def _wait_port(self, net: str, within: float) -> None:
        """Until the mobile node's switch port is up on ``net``'s bridge (bounded)."""
        lab = self.lab
        port, bridge = lab.port(lab.topology.mobile, net), lab.bridge(net)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            line = lab.exec(lab.topology.switch, ["ip", "-o", "link", "show", "dev", port]).stdout
            flags = line.split("<", 1)[-1].split(">", 1)[0].split(",")
            if f"master {bridge} " in line and "UP" in flags:
                return
            time.sleep(0.005)
        raise ScenarioError(f"the mobile node's port never came up on {bridge}")

    def _leave(self, net: str) -> None:
        colocated = self.lab.topology.network(net).colocated
        if colocated is not None:
            self.lab.exec(
                "mn",
                ["ip", "addr", "del", str(colocated), "dev", self.lab.ifname("mn")],
                check=True,
            )

    def _arrive(self, net: str) -> None:
        """The static configuration of a network without an agent: the default route
        first (on-link, so it may precede the address), then the address, which the mobile
        node registers at once; the other way round, its first request would leave by
        the previous network's route and be lost."""
        network = self.lab.topology.network(net)
        if network.colocated is not None:
            ifname = self.lab.ifname("mn")
            gateway = str(network.gateway)
            route = ["ip", "route", "replace", "default", "via", gateway, "dev", ifname, "onlink"]
            self.lab.exec("mn", route, check=True)
            self.lab.exec(
                "mn", ["ip", "addr", "add", str(network.colocated), "dev", ifname], check=True
            )


# -- packet capture -------------------------------------------------------------------------


class Capture:
    """``tshark`` on every bridge of the lab (in the switch namespace), writing a pcapng;
    bounded by ``duration`` seconds. ``with Capture(lab, path, 60): ...`` stops it (SIGINT,
    then kill) on the way out."""

    def __init__(self, lab: Lab, path: Path, duration: float = 120.0) -> None:
        self.lab = lab
        self.path = path
        argv = ["tshark", "-q", "-n"]
        for net in lab.topology.net_keys():
            argv += ["-i", lab.bridge(net)]
        argv += ["-w", str(path), "-a", f"duration:{int(duration)}"]
        self.proc = lab.popen(
            lab.topology.switch,
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        self.stderr = b""
        # tshark says "Capturing on ..." once every interface is open
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not _capturing(path):
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=5)
        self.stderr = err or b""

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _capturing(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return path.stat().st_size > 0
    return False


@contextlib.contextmanager
def nft_table(lab: Lab, node: str, name: str, body: str, family: str = "ip") -> Iterator[None]:
    """An nftables table ``family name { body }`` in ``node`` (``sw``: the switch, whose
    ``bridge`` family sees every frame on a link) for the block; always deleted."""
    subprocess.run(
        ["ip", "netns", "exec", lab.ns(node), "nft", "-f", "-"],
        input=f"table {family} {name} {{\n{body}\n}}\n",
        text=True,
        check=True,
        timeout=10,
    )
    try:
        yield
    finally:
        subprocess.run(
            ["ip", "netns", "exec", lab.ns(node), "nft", "delete", "table", family, name],
            check=False,
            timeout=10,
            capture_output=True,
        )


def is_root() -> bool:
    return os.geteuid() == 0
