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

The agents run behind a :class:`~mip4.lab.backend.Backend`.
:class:`~mip4.lab.daemons.DaemonBackend` (the default) starts the daemons — ``mip4 ha``,
``mip4 fa`` on FA1 and FA2, ``mip4 mn`` — as processes in the lab's namespaces, configured by
:func:`mip4.lab.configs.lab_configs` (JSON logs and control sockets in a work directory),
reads their status over the control socket (the object ``mip4 status --json`` prints) and
the mobile node's registration round trips from its log.
:class:`~mip4.lab.inprocess.EngineBackend` drives the same engines through :mod:`mip4.io` on
an asyncio loop in a thread of this process. Both report the same normalised status
(:class:`MnStatus`, :class:`HaStatus`), so the scenario does not care which runs.

Network C has no agent and no DHCP server: the scenario moves the node with
``Lab.move(net, dhcp=True)``, which gives it the static co-located address
(``10.4.0.100/24``, default route via ``10.4.0.1``) there, and removes it again before the
node leaves.

The pieces live beside this module: :mod:`mip4.lab.backend` (:class:`Settings`, the
:class:`Backend` protocol and the status types), :mod:`mip4.lab.daemons` and
:mod:`mip4.lab.inprocess` (the two backends), :mod:`mip4.lab.engines` (the engine factory the
benchmarks share) and :mod:`mip4.lab.capture` (``tshark`` and nftables helpers).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

from mip4.demo.report import MoveRecord

from .backend import (
    ENCAPSULATIONS,
    Backend,
    HaBinding,
    HaStatus,
    MnStatus,
    Registration,
    ScenarioError,
    Settings,
)
from .build import Lab
from .daemons import DaemonBackend
from .handover import AnnounceError, agent_of, announce
from .inprocess import EngineBackend
from .switch import replug
from .topology import AAA, DEFAULT

#: how the agents run: ``mip4 ha/fa/mn`` processes, or the engines in this process
BACKENDS = ("daemons", "engines")
#: which foreign agent serves which network
AGENT_OF = {"a": "fa1", "b": "fa2"}


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
        if settings.aaa and backend != "daemons":
            raise ValueError("the AAA lab (issue 10) runs the daemons backend only")
        self.settings = settings
        # issue 11: the AAA lab has a second home agent on the home network
        topology = AAA if settings.aaa else DEFAULT
        self.lab = Lab(settings.lab_id, topology, ingress_filter=settings.filtered)
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
            has = "mip4 ha (ha, ha2)" if self.settings.aaa else "mip4 ha"
            self.log(
                f"starting the daemons: {has}, mip4 fa (FA1, FA2), mip4 mn"
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

    def detach(self) -> None:
        """Leave the lab and the daemons running past this process (``mip4 lab demo
        --keep``): forget them and take back the exit-time clean-up, so nothing stops them
        when the interpreter exits; ``mip4 lab down`` removes them. In-process agents
        cannot outlive the process: they are stopped."""
        atexit.unregister(self.close)
        if self.backend is not None and not isinstance(self.backend, DaemonBackend):
            self.backend.close()
        self.backend = None
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
        self.announce(net)
        started = time.time()
        # on network C: its co-located address, as DHCP would; the re-plug on rtnetlink
        # notifications (issue 14: mip4.lab.switch)
        replug(lab, net, dhcp=True)
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

    def announce(self, net: str) -> None:
        """Issue 14: with a handover mode, announce a move to a foreign agent's network
        ``settings.anticipation_lead`` seconds before it (the daemons backend: over the
        control sockets; low-latency mode also tells the current agent). A failed
        announcement is logged; the move goes on unannounced."""
        s = self.settings
        if s.handover is None or self.backend_kind != "daemons" or agent_of(self.lab, net) is None:
            return
        try:
            said = announce(self.lab, net, source_trigger=s.handover == "low-latency")
        except AnnounceError as exc:
            self.log(f"announcing the move to {net!r} failed: {exc}")
            return
        refused = said.get("handoff", {}).get("refused")
        if refused:
            self.log(f"source trigger refused: {refused}")
        time.sleep(max(0.0, s.anticipation_lead))

    def _registration_since(self, since: float, coa: str | None) -> Registration | None:
        regs = [
            r for r in self.mn_status().registrations if r.at >= since and r.care_of_address == coa
        ]
        return regs[0] if regs else None


def is_root() -> bool:
    return os.geteuid() == 0


__all__ = [
    "AGENT_OF",
    "BACKENDS",
    "ENCAPSULATIONS",
    "VIA",
    "HaBinding",
    "HaStatus",
    "MnStatus",
    "Registration",
    "Scenario",
    "ScenarioError",
    "Settings",
    "is_root",
]
