"""The driver's per-action dispatch (issue 13, the foreign agent's relay path): the
executor and the counters looked up once per list of actions, the loop left only when an
action fails -- every action still runs in order, each counted by type, each failure
logged and counted, and nothing after a failure is skipped or run twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest

from mip4.core.actions import Action, Log, SendUdp
from mip4.core.counters import Counters
from mip4.core.events import Event, UdpReceived
from mip4.io.driver import EngineDriver

A = IPv4Address("10.73.0.1")


def _send(i: int) -> SendUdp:
    return SendUdp(A, bytes([i]))


@dataclass
class ScriptedEngine:
    """Returns the next scripted list of actions for each event."""

    script: list[list[Action]]
    fed: int = 0

    def handle(self, event: Event, now: float) -> list[Action]:
        out = self.script[self.fed]
        self.fed += 1
        return out

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float | None:
        return None

    @property
    def counters(self) -> Counters:
        return Counters()


@dataclass
class FailingOn:
    """Records each action it is given; raises for those in ``fail`` (by identity)."""

    fail: list[Action]
    seen: list[Action] = field(default_factory=list)

    def execute(self, action: Action) -> None:
        self.seen.append(action)
        if any(action is f for f in self.fail):
            raise RuntimeError(f"boom {action!r}")


def _event(i: int) -> UdpReceived:
    return UdpReceived(bytes([i]), A, A, 434, 434, "lo", ttl=64)


def _read_once(driver: EngineDriver, events: Sequence[Event]) -> None:
    """Register a reader producing ``events`` and run its readiness callback once."""
    loop = driver.loop
    readers: dict[int, Callable[[], None]] = {}
    add = loop.add_reader

    def capture(fd: object, cb: Callable[[], None], *args: object) -> None:
        assert isinstance(fd, int)
        readers[fd] = cb

    loop.add_reader = capture  # type: ignore[method-assign,assignment]
    try:
        driver.add_reader(99, lambda: list(events))
    finally:
        loop.add_reader = add  # type: ignore[method-assign]
    readers[99]()
    driver._readers.clear()  # nothing registered with the loop to remove


@pytest.mark.parametrize(
    "failing",
    [(), (0,), (4,), (0, 1), (1, 3), (0, 1, 2, 3, 4), (2, 4)],
)
def test_every_action_runs_once_in_order_counted_and_failures_logged(
    failing: tuple[int, ...], caplog: pytest.LogCaptureFixture
) -> None:
    actions: list[Action] = [_send(0), Log("x", {}), _send(2), _send(3), Log("y", {})]
    executor = FailingOn([actions[i] for i in failing])

    async def main() -> EngineDriver:
        driver = EngineDriver(ScriptedEngine([actions, actions]), executor)
        with caplog.at_level(logging.ERROR, logger="mip4"):
            driver.feed(_event(0))
            driver.run_actions(actions)
        driver.close()
        return driver

    driver = asyncio.run(main())
    assert executor.seen == actions + actions  # none skipped, none twice, in order
    assert driver.stats["SendUdp"] == 6 and driver.stats["Log"] == 4
    assert driver.stats["events"] == 1
    assert driver.stats.get("action_errors", 0) == 2 * len(failing)
    failed = [r for r in caplog.records if r.getMessage().startswith("executing ")]
    assert [r.getMessage() for r in failed] == 2 * [
        f"executing {actions[i]!r} failed" for i in failing
    ]
    assert all(r.exc_info is not None for r in failed)


def test_a_reader_batch_counts_exactly_with_failures_in_the_middle() -> None:
    """A reader's batch (the path a relaying agent's datagrams take): each event's actions
    run before the next event is handled, failures do not stop the batch."""
    lists: list[list[Action]] = [[_send(3 * i), _send(3 * i + 1)] for i in range(20)]
    bad = [lists[3][0], lists[3][1], lists[7][1], lists[19][0]]
    executor = FailingOn(bad)
    engine = ScriptedEngine(lists)
    order: list[tuple[int, int]] = []
    real = executor.execute

    def execute(action: Action) -> None:
        order.append((engine.fed, action.payload[0] if isinstance(action, SendUdp) else -1))
        real(action)

    executor.execute = execute  # type: ignore[method-assign]

    async def main() -> EngineDriver:
        loop = asyncio.get_running_loop()
        driver = EngineDriver(engine, executor, loop=loop)
        _read_once(driver, [_event(i) for i in range(20)])
        driver.close()
        return driver

    driver = asyncio.run(main())
    assert driver.plain_feed()  # the batch took the one-loop path
    assert order == [(i + 1, 3 * i + k) for i in range(20) for k in (0, 1)]
    assert driver.stats["events"] == 20
    assert driver.stats["SendUdp"] == 40
    assert driver.stats["action_errors"] == 4


class FeedWatcher(EngineDriver):
    """A subclass that adds to :meth:`feed`: a reader's events still go through it."""

    watched: list[Event]

    def feed(self, event: Event) -> list[Action]:
        self.watched.append(event)
        return super().feed(event)


def test_a_subclass_that_adds_to_feed_is_fed_each_event_of_a_read() -> None:
    lists: list[list[Action]] = [[_send(i)] for i in range(5)]
    executor = FailingOn([lists[2][0]])
    events = [_event(i) for i in range(5)]

    async def main() -> FeedWatcher:
        driver = FeedWatcher(ScriptedEngine(lists), executor)
        driver.watched = []
        assert not driver.plain_feed()
        _read_once(driver, events)
        driver.close()
        return driver

    driver = asyncio.run(main())
    assert driver.watched == events
    assert executor.seen == [a[0] for a in lists]
    assert driver.stats["events"] == 5 and driver.stats["SendUdp"] == 5
    assert driver.stats["action_errors"] == 1
