"""The daemons scenario backend: ``mip4 ha``, ``mip4 fa`` and ``mip4 mn`` as processes in the
lab's namespaces, watched over their control sockets and their JSON logs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .backend import AGENTS, HaBinding, HaStatus, MnStatus, Registration, ScenarioError, Settings
from .build import Lab
from .radius import FreeRadius, start_lab_radius

#: How long a daemon may take from its start to its first status answer. A daemon's start
#: is ~1.5 s of CPU (the imports, the bpf object verified twice, tc filters and routes
#: through netlink), and it waits on the kernel's rtnl lock behind whatever else the
#: machine is doing to namespaces; once, with the lab's five daemons starting together at
#: a load of ~10, 20 s were not enough. A daemon that exits fails at once, whatever this is.
START_WITHIN = 60.0


class DaemonBackend:
    """``mip4 ha`` (two of them, ``ha`` and ``ha2``, in the AAA lab), ``mip4 fa`` (FA1,
    FA2) and ``mip4 mn`` as processes in the lab's namespaces (:meth:`Lab.popen`), configured by
    :func:`mip4.lab.configs.lab_configs` (JSON log lines, control sockets in ``workdir``).
    Status comes over the control socket (the object ``mip4 status --json`` prints);
    registration round trips from the mobile node's log: its last
    ``mn.request``/``mn.retransmit`` before each ``mn.registered`` or ``mn.deregistered`` line."""

    def __init__(self, lab: Lab, settings: Settings, workdir: Path) -> None:
        from mip4.lab.configs import LAB_ROLES, write_lab_configs

        self.lab = lab
        self.settings = settings
        self.workdir = workdir
        self.roles = LAB_ROLES
        #: the daemons in start order; the AAA lab has a second home agent (issue 11)
        self.home_agents: tuple[str, ...] = ("ha", "ha2") if settings.aaa else ("ha",)
        self.agents: tuple[str, ...] = (*self.home_agents, *AGENTS[1:])
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
            aaa=settings.aaa,
            handover=settings.handover,
        )
        lab.control_dir = workdir  # issue 14: Lab.move(anticipate=True) asks the daemons
        #: issue 10: the lab's FreeRADIUS (``settings.aaa``), started before the agents
        self.radius: FreeRadius | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}
        #: exit status of each daemon stopped by :meth:`close` (None: was not running)
        self.stopped: dict[str, int | None] = {}

    def socket(self, node: str) -> Path:
        return self.workdir / f"{node}.sock"

    def log_path(self, node: str) -> Path:
        return self.workdir / f"{node}.{self.starts.get(node, 1)}.log"

    def start(self) -> None:
        if self.settings.aaa:
            self.radius = start_lab_radius(self.lab, self.workdir / "radius")
        for node in self.agents:
            self._start(node)
        for node in self.agents:
            self._wait_answering(node, START_WITHIN)

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
        raise ScenarioError(
            f"{node}: no answer on {self.socket(node)} within {within:g} s"
            f" ({where(self.procs[node].pid)}): {self._tail(node)}"
        )

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
                    event = _event_name(rec.get("event"))
                    at = _parse_ts(str(rec.get("ts", "")))
                    if event == "mn.link_up" and at is not None:
                        link_ups.append(at)
                    elif event in ("mn.request", "mn.retransmit"):
                        sent = at
                    elif event in ("mn.registered", "mn.deregistered") and at is not None:
                        coa = rec.get("care_of_address") if event == "mn.registered" else None
                        rtt = (at - sent) * 1000.0 if sent is not None else float("nan")
                        out.append(Registration(at, coa, round(rtt, 3)))
                        sent = None
        return out, link_ups

    def log_events(self, node: str, event: str) -> list[dict[str, Any]]:
        """Every ``event`` line of ``node``'s JSON logs (all its starts), in order."""
        import json

        out: list[dict[str, Any]] = []
        for n in range(1, self.starts.get(node, 0) + 1):
            with contextlib.suppress(OSError):
                for line in (
                    (self.workdir / f"{node}.{n}.log").read_text(errors="replace").splitlines()
                ):
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(rec, dict) and _event_name(rec.get("event")) == event:
                        out.append(rec)
        return out

    def mn_file(self) -> dict[str, Any]:
        """The mobile node's configuration file, parsed (what it was given, not learnt)."""
        import tomllib

        return tomllib.loads(self.paths["mn"].read_text())

    def ha_status(self) -> HaStatus:
        """The bindings of every home agent (``home_agent``: which one holds it) and
        their tunnel forwarders' counters summed."""
        bindings: list[HaBinding] = []
        forwarder: dict[str, int] = {}
        fast: dict[str, int] = {}
        for node in self.home_agents:
            st = self._must(node)
            bindings += [
                HaBinding(
                    str(b["home_address"]),
                    str(b["care_of_address"]),
                    str(b["encapsulation"]),
                    bool(b["reverse_tunnel"]),
                    home_agent=str(self.lab.address(node)),
                )
                for b in st["home_agent"]["bindings"]
            ]
            for k, v in st["counters"].get("forwarder", {}).items():
                forwarder[k] = forwarder.get(k, 0) + int(v)
            for k, v in st.get("fast_path", {}).get("events", {}).items():
                fast[k] = fast.get(k, 0) + int(v)
        return HaStatus(tuple(bindings), forwarder, fast)

    def forwarder_stats(self, node: str) -> dict[str, int]:
        st = self._must(node)
        return {k: int(v) for k, v in st["counters"].get("forwarder", {}).items()}

    def restart(self, node: str, sig: int = signal.SIGTERM, *, down_for: float = 0.0) -> None:
        self._stop(node, sig)
        time.sleep(down_for)
        self._start(node)
        self._wait_answering(node, START_WITHIN)

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
        self.stopped.update({node: self._stop(node) for node in reversed(self.agents)})
        if self.radius is not None:
            self.radius.stop()  # after the agents: their last accounting records


def _event_name(event: object) -> str:
    """A log event's name in one spelling: ``mn.link_up`` (the ``role.snake_case`` scheme)
    and ``mn-link-up`` (the mobile node's older names) both read ``mn.link_up``."""
    return str(event).replace("-", ".", 1).replace("-", "_")


def _parse_ts(ts: str) -> float | None:
    """``2026-11-26T16:31:59.123456Z`` (or ``.123Z``) → ``time.time()`` seconds."""
    import calendar

    try:
        base, frac = ts.rstrip("Z").split(".")
        seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        return seconds + int(frac) / float(10 ** len(frac))
    except ValueError:
        return None


def where(pid: int) -> str:
    """Where a process that does not answer is: its state, the kernel function it sleeps
    in and the CPU it used (from ``/proc``), to tell a busy machine from a hung start."""
    proc = Path("/proc") / str(pid)
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return f"pid {pid} gone"
    try:  # the kernel stack (root), its innermost frames: e.g. waiting for rtnl_lock
        frames = [line.split()[-1] for line in (proc / "stack").read_text().splitlines()]
        wchan = " < ".join(f.split("+")[0] for f in frames[:3]) or "-"
    except (OSError, IndexError):
        wchan = "-"
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return f"pid {pid} state {fields[0]} in {wchan}, {cpu:.2f} s of CPU"
