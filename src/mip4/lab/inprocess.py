"""The in-process scenario backend: the real engines (:func:`~mip4.lab.engines.lab_engine`),
driven through :mod:`mip4.io` on an asyncio loop in a thread of this process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from mip4.core.actions import Action
from mip4.core.events import Event, LinkUp
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent
from mip4.core.mobile_node import MnState, MobileNode
from mip4.io.driver import EngineDriver
from mip4.io.runtime import NodeIO

from .backend import AGENTS, HaBinding, HaStatus, MnStatus, Registration, Settings
from .build import Lab
from .engines import lab_engine, lab_node_io

T = TypeVar("T")


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
    for closer in (io.tracker, io.linkmon, io.link_changes, io.forwarder, io.tun):
        if closer is not None:
            with contextlib.suppress(Exception):
                closer.close()
