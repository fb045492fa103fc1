"""The daemon's driver feeds a read's events in one loop only when it adds nothing to
``feed`` and ``run_actions`` (issue 13, a foreign agent's relays): with metrics, a store
or a commit pipeline each event still goes through its own ``feed`` / ``run_actions``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from types import SimpleNamespace
from typing import Any, cast

from mip4.core.actions import Action, Log, SendUdp
from mip4.core.counters import Counters
from mip4.core.events import Event, UdpReceived
from mip4.daemon.driving import DaemonExecutor, TimedDriver
from mip4.daemon.metrics import Metrics
from mip4.store import SqliteStore

A = IPv4Address("10.75.0.1")


@dataclass
class Engine:
    fed: int = 0

    def handle(self, event: Event, now: float) -> list[Action]:
        self.fed += 1
        return [SendUdp(A, bytes([self.fed])), Log("ha.registration", {}, 10)]

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float | None:
        return None

    @property
    def counters(self) -> Counters:
        return Counters()


@dataclass
class Inner:
    seen: list[Action] = field(default_factory=list)

    def execute(self, action: Action) -> None:
        self.seen.append(action)


@dataclass
class FakeMetrics:
    observed: list[float] = field(default_factory=list)

    def observe(self, took: float) -> None:
        self.observed.append(took)

    def on_log(self, *args: Any) -> None:
        pass


def _read(setup: Callable[[TimedDriver], None]) -> tuple[TimedDriver, Inner, bool]:
    inner = Inner()
    events = [UdpReceived(bytes([i]), A, A, 434, 434, "lo", ttl=64) for i in range(6)]

    async def main() -> tuple[TimedDriver, bool]:
        loop = asyncio.get_running_loop()
        driver = TimedDriver(Engine(), DaemonExecutor(inner), loop=loop)
        setup(driver)
        plain = driver.plain_feed()
        readers: list[Callable[[], None]] = []
        add = loop.add_reader
        loop.add_reader = lambda fd, cb, *a: readers.append(cb)  # type: ignore[method-assign]
        try:
            driver.add_reader(99, lambda: list(events))
        finally:
            loop.add_reader = add  # type: ignore[method-assign]
        readers[0]()
        driver._readers.clear()
        driver.close()
        return driver, plain

    driver, plain = asyncio.run(main())
    return driver, inner, plain


def _counts_exact(driver: TimedDriver, inner: Inner) -> None:
    assert [a.payload for a in inner.seen if isinstance(a, SendUdp)] == [
        bytes([i]) for i in range(1, 7)
    ]
    assert driver.stats["events"] == 6
    assert driver.stats["SendUdp"] == 6 and driver.stats["Log"] == 6
    assert "action_errors" not in driver.stats


def test_without_metrics_or_store_a_read_takes_the_one_loop_path() -> None:
    driver, inner, plain = _read(lambda d: None)
    assert plain
    _counts_exact(driver, inner)


def test_with_metrics_each_registration_is_still_timed() -> None:
    metrics = FakeMetrics()

    def setup(d: TimedDriver) -> None:
        d.metrics = cast(Metrics, metrics)

    driver, inner, plain = _read(setup)
    assert not plain
    _counts_exact(driver, inner)
    assert len(metrics.observed) == 6  # one per ha.registration, timed to the release


def test_with_a_store_each_input_is_still_committed() -> None:
    commits: list[int] = []
    store = SimpleNamespace(group_commit=False, dirty=True, commit=lambda: commits.append(1))

    def setup(d: TimedDriver) -> None:
        d.store = cast(SqliteStore, store)

    driver, inner, plain = _read(setup)
    assert not plain
    _counts_exact(driver, inner)
    assert len(commits) == 6  # each input's writes committed before its actions
