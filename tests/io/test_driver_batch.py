"""EngineDriver feeds the events of one reader callback and re-arms its timer once (issue 13:
one ``next_deadline`` per readiness event, not one per datagram)."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest

from mip4.core.actions import Action, Log
from mip4.core.counters import Counters
from mip4.core.events import Event, UdpReceived
from mip4.io.driver import EngineDriver


@dataclass
class CountingEngine:
    """Wants its timer ``period`` after each input; counts ``next_deadline`` calls."""

    period: float
    handled: int = 0
    deadline_calls: int = 0
    timers: list[float] = field(default_factory=list)
    deadline: float | None = None

    def handle(self, event: Event, now: float) -> list[Action]:
        self.handled += 1
        self.deadline = now + self.period
        return [Log("x", {})]

    def handle_timer(self, now: float) -> list[Action]:
        self.timers.append(now)
        self.deadline = None
        return []

    def next_deadline(self) -> float | None:
        self.deadline_calls += 1
        return self.deadline

    @property
    def counters(self) -> Counters:
        return Counters()


class Recorder:
    def __init__(self) -> None:
        self.actions: list[Action] = []

    def execute(self, action: Action) -> None:
        self.actions.append(action)


def _event(i: int) -> UdpReceived:
    a = IPv4Address("10.72.0.1")
    return UdpReceived(bytes([i]), a, a, 434, 434, "lo", ttl=64)


def test_one_rearm_per_reader_callback_and_the_timer_still_fires() -> None:
    async def go() -> tuple[CountingEngine, EngineDriver, Recorder]:
        engine = CountingEngine(period=0.05)
        rec = Recorder()
        driver = EngineDriver(engine, rec, loop=asyncio.get_running_loop())
        driver.start()
        r, w = socket.socketpair()
        r.setblocking(False)
        done = asyncio.Event()

        def produce() -> list[Event]:
            r.recv(100)
            done.set()
            return [_event(i) for i in range(50)]

        driver.add_reader(r, produce)
        engine.deadline_calls = 0
        w.send(b"go")
        await done.wait()
        await asyncio.sleep(0)
        calls = engine.deadline_calls
        assert engine.handled == 50
        assert calls == 1, calls  # once after the batch, not once per event
        assert driver.deadline is not None
        await asyncio.sleep(0.2)  # the timer armed after the batch fires
        driver.close()
        r.close()
        w.close()
        return engine, driver, rec

    engine, _driver, rec = asyncio.run(go())
    assert len(engine.timers) == 1
    assert len(rec.actions) == 50


def test_feed_outside_a_reader_rearms_at_once() -> None:
    async def go() -> int:
        engine = CountingEngine(period=10.0)
        driver = EngineDriver(engine, Recorder(), loop=asyncio.get_running_loop())
        for i in range(3):
            driver.feed(_event(i))
        driver.close()
        return engine.deadline_calls

    assert asyncio.run(go()) == 3


class Holder(Recorder):
    """An executor that holds actions (issue 13): records when it is told to hold and to
    release, and fails every third action it held at release."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def execute(self, action: Action) -> None:
        self.calls.append("execute")
        super().execute(action)

    def hold_actions(self) -> None:
        self.calls.append("hold")

    def release_actions(self) -> list[tuple[Action, Exception]]:
        self.calls.append("release")
        return [(a, RuntimeError(f"no {i}")) for i, a in enumerate(self.actions) if i % 3 == 2]


def test_a_holding_executor_holds_one_reader_callback_and_failures_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> tuple[EngineDriver, Holder]:
        engine = CountingEngine(period=10.0)
        holder = Holder()
        driver = EngineDriver(engine, holder, loop=asyncio.get_running_loop())
        r, w = socket.socketpair()
        r.setblocking(False)
        done = asyncio.Event()

        def produce() -> list[Event]:
            r.recv(100)
            done.set()
            return [_event(i) for i in range(6)]

        driver.add_reader(r, produce)
        w.send(b"go")
        await done.wait()
        await asyncio.sleep(0)
        driver.run_actions([Log("y", {})])  # outside a reader: held and released itself
        driver.close()
        r.close()
        w.close()
        return driver, holder

    with caplog.at_level(logging.ERROR, logger="mip4"):
        driver, holder = asyncio.run(go())
    # one hold and one release around the six events' actions, not one per event
    assert holder.calls == ["hold", *["execute"] * 6, "release", "hold", "execute", "release"]
    # failures reported at release: counted and logged as when execute raised
    assert driver.stats["action_errors"] == 2 + 2
    failed = [r for r in caplog.records if r.getMessage().startswith("executing")]
    assert len(failed) == 4 and all(r.exc_info is not None for r in failed)
