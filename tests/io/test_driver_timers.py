"""Issue 13: the repeats of gratuitous ARPs share loop timers (:class:`CoalescedTimers`):
each callback runs once, never before its delay and at most one resolution after it, in
the order asked for; a cancelled one does not run; one that raises is reported to the
loop and the others still run; many callbacks make few loop timers; and a node's I/O
hands them to its executor."""

from __future__ import annotations

import asyncio
import functools
import itertools
from typing import Any

import pytest

from mip4.io.driver import CoalescedTimers, EngineDriver


def test_each_runs_once_not_early_and_in_order() -> None:
    ran: list[tuple[int, float]] = []
    asked: dict[int, float] = {}

    async def go() -> int:
        loop = asyncio.get_running_loop()
        timers = CoalescedTimers(loop, resolution=0.01)

        def record(i: int) -> None:
            ran.append((i, loop.time()))

        for i in range(300):
            delay = 0.02 + (i % 3) * 0.01
            asked[i] = loop.time() + delay
            timers.call_later(delay, functools.partial(record, i))
        calls = len(timers._buckets)  # one loop timer each
        await asyncio.sleep(0.2)
        assert len(timers) == 0
        return calls

    calls = asyncio.run(go())
    assert sorted(i for i, _ in ran) == list(range(300))
    for i, when in ran:
        assert asked[i] <= when + 1e-9  # never early
    # ordered by due time; equal due times in the order asked for
    due = {i: asked[i] for i in range(300)}
    order = [i for i, _ in ran]
    assert all(due[a] <= due[b] + 0.01 for a, b in itertools.pairwise(order))
    assert calls <= 10  # a few loop timers for 300 callbacks


def test_cancelled_ones_do_not_run_and_errors_are_reported() -> None:
    ran: list[str] = []
    reported: list[dict[str, Any]] = []

    async def go() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        timers = CoalescedTimers(loop)

        def boom() -> None:
            raise RuntimeError("boom")

        timers.call_later(0.01, lambda: ran.append("a"))
        token = timers.call_later(0.01, lambda: ran.append("cancelled"))
        timers.call_later(0.01, boom)
        timers.call_later(0.01, lambda: ran.append("c"))
        token.cancel()
        await asyncio.sleep(0.05)

    asyncio.run(go())
    assert ran == ["a", "c"]
    (context,) = reported
    assert isinstance(context["exception"], RuntimeError)


def test_a_node_hands_them_to_its_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    """``NodeIO.attach`` gives the executor coalesced timers (no sockets needed: the
    attach step is called on a stand-in)."""
    from types import SimpleNamespace

    from mip4.io.runtime import NodeIO

    executor = SimpleNamespace(
        call_later=None, hold_journal_lines=lambda _d: None, keep_hardware_addresses=lambda: None
    )

    class Sock:
        def getsockname(self) -> tuple[str, int]:
            return ("0.0.0.0", 434)

        def fileno(self) -> int:
            return 0

    async def go() -> None:
        loop = asyncio.get_running_loop()
        io = NodeIO.__new__(NodeIO)
        io.executor = executor  # type: ignore[assignment]
        io.forwarder = io.tracker = io.unaddressed = io.icmp_errors = None
        io.linkmon = io.link_changes = None
        io.captures = {}
        io.udp = Sock()  # type: ignore[assignment]
        driver = EngineDriver.__new__(EngineDriver)
        driver.loop = loop
        monkeypatch.setattr(EngineDriver, "add_reader", lambda *_a: None)
        io.attach(driver)

    asyncio.run(go())
    bound = executor.call_later
    assert getattr(bound, "__self__", None).__class__ is CoalescedTimers
