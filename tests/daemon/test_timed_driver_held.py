"""Issue 13: the daemon's registration latency ("datagram in, reply sent") of an input whose
actions the executor held is taken when they are released -- when its reply leaves -- not
when the engine returned them."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from mip4.core.actions import Action, Log
from mip4.core.counters import Counters
from mip4.core.events import Event
from mip4.daemon.driving import TimedDriver
from mip4.daemon.metrics import Metrics


class Engine:
    def handle(self, event: Event, now: float) -> list[Action]:
        return [Log("ha.registration", {})]

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float | None:
        return None

    @property
    def counters(self) -> Counters:
        return Counters()


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


class Holder:
    """Releasing takes 0.5 s of the clock (the kernel work and the replies)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def execute(self, action: Action) -> None:
        pass

    def hold_actions(self) -> None:
        pass

    def release_actions(self) -> list[tuple[Action, Exception]]:
        self.clock.now += 0.5
        return []


class Observed:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def observe(self, seconds: float) -> None:
        self.seconds.append(seconds)


def test_held_inputs_are_timed_to_their_release(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)

    async def go() -> Observed:
        driver = TimedDriver(Engine(), Holder(clock), loop=asyncio.get_running_loop())
        observed = Observed()
        driver.metrics = cast(Metrics, observed)
        event = cast(Any, object())
        held = driver._hold()
        assert held
        driver.feed(event)
        clock.now += 0.25
        driver.feed(event)
        assert observed.seconds == []  # not yet: the replies have not left
        driver._release()
        driver.feed(event)  # not held: its reply left with its actions
        driver.close()
        return observed

    observed = asyncio.run(go())
    assert observed.seconds == [0.75, 0.5, 0.5]
