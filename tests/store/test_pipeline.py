"""Group commit off the event loop (issue 15, mip4.store.pipeline): the loop runs on while
a commit syncs; no action leaves before the changes of its batch are committed; actions
leave in the order they were submitted; a failed commit's replies are dropped and its
changes committed by the next; close() carries out what is still held."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from mip4.security.replay import ReplayState
from mip4.store import SqliteStore
from mip4.store.pipeline import CommitPipeline

A = IPv4Address


class _HeldCommit:
    """The store's connection, whose COMMITs wait for :attr:`go` (and the first of which
    can be made to fail)."""

    def __init__(self, db: sqlite3.Connection, fail: bool = False) -> None:
        self.db = db
        self.go = threading.Event()
        self.entered = threading.Event()
        self.fail = fail

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            self.entered.set()
            assert self.go.wait(10)
            if self.fail:
                self.fail = False
                raise sqlite3.OperationalError("disk I/O error")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def _store(tmp_path: Path, fail: bool = False) -> tuple[SqliteStore, _HeldCommit]:
    s = SqliteStore(tmp_path / "s.db", 0.0)
    held = _HeldCommit(s._db, fail)
    s._db = held  # type: ignore[assignment]
    return s, held


def _write(s: SqliteStore, i: int) -> None:
    s.bindings.put_replay(A(f"10.0.0.{i}"), ReplayState(last_accepted=i))


def _committed(path: Path) -> dict[Any, ReplayState]:
    t = SqliteStore(path, 0.0)
    try:
        return dict(t.bindings.replay_states())
    finally:
        t.close()


async def _until(pred: Any, what: str) -> None:
    for _ in range(500):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


def test_the_loop_runs_on_while_a_commit_syncs_and_actions_wait_for_theirs(
    tmp_path: Path,
) -> None:
    s, held = _store(tmp_path)
    ran: list[tuple[str, int]] = []  # (action, commits done when it was carried out)

    def run(actions: Sequence[str]) -> None:
        ran.extend((a, s.commits) for a in actions)

    def failed(e: BaseException, actions: Sequence[str]) -> Sequence[str]:
        raise AssertionError(e)

    async def go() -> CommitPipeline[str]:
        p = CommitPipeline(s, asyncio.get_running_loop(), run, failed)
        _write(s, 1)
        p.submit(["reply-1"])
        await asyncio.to_thread(held.entered.wait, 5)  # the first commit is syncing ...
        assert p.busy and ran == []
        _write(s, 2)  # ... and the loop goes on: the next batch is handled
        _write(s, 3)
        p.submit(["reply-2", "reply-3"])
        p.submit(["timer"])  # no change of its own: still after the others
        assert ran == [] and s.commits == 0
        held.go.set()
        await _until(lambda: len(ran) == 4, "all carried out")
        return p

    p = asyncio.run(go())
    assert ran == [("reply-1", 1), ("reply-2", 2), ("reply-3", 2), ("timer", 2)]
    assert p.commits == 2 and p.batches == 3 and not p.busy  # one commit for batches 2+3
    s._db = held.db
    s.close()
    assert set(_committed(tmp_path / "s.db")) == {A("10.0.0.1"), A("10.0.0.2"), A("10.0.0.3")}


def test_a_failed_commit_drops_its_replies_and_the_next_commit_writes_its_changes(
    tmp_path: Path,
) -> None:
    s, held = _store(tmp_path, fail=True)
    held.go.set()
    ran: list[str] = []
    errors: list[str] = []

    def failed(e: BaseException, actions: Sequence[str]) -> Sequence[str]:
        errors.append(str(e))
        return [a for a in actions if not a.startswith("reply")]

    async def go() -> None:
        p: CommitPipeline[str] = CommitPipeline(s, asyncio.get_running_loop(), ran.extend, failed)
        _write(s, 1)
        p.submit(["reply-1", "log-1"])
        await _until(lambda: ran, "first batch")
        assert ran == ["log-1"] and errors == ["disk I/O error"]
        assert s.dirty and s.commits == 0  # rolled back, pending again
        _write(s, 2)
        p.submit(["reply-2"])
        await _until(lambda: len(ran) == 2, "second batch")
        assert ran == ["log-1", "reply-2"] and s.commits == 1 and not s.dirty

    asyncio.run(go())
    s._db = held.db
    s.close()
    assert set(_committed(tmp_path / "s.db")) == {A("10.0.0.1"), A("10.0.0.2")}


def test_close_commits_and_carries_out_what_is_held(tmp_path: Path) -> None:
    s, held = _store(tmp_path)
    ran: list[str] = []

    async def go() -> None:
        p: CommitPipeline[str] = CommitPipeline(
            s, asyncio.get_running_loop(), ran.extend, lambda e, a: []
        )
        _write(s, 1)
        p.submit(["reply-1"])
        _write(s, 2)
        p.submit(["reply-2"])
        threading.Timer(0.2, held.go.set).start()
        p.close()  # blocks the loop: the loop's callbacks cannot run, close does it
        assert ran == ["reply-1", "reply-2"] and not p.busy and s.commits == 2

    asyncio.run(go())
    s._db = held.db
    s.close()


def test_a_batch_without_changes_is_carried_out_at_once(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.db", 0.0)
    ran: list[str] = []

    async def go() -> None:
        p: CommitPipeline[str] = CommitPipeline(
            s, asyncio.get_running_loop(), ran.extend, lambda e, a: []
        )
        p.submit(["discard-log"])
        assert ran == ["discard-log"] and p.commits == 0 and not p.busy

    asyncio.run(go())
    s.close()


def test_a_sync_commit_waits_for_the_one_in_flight(tmp_path: Path) -> None:
    n = 3
    s, held = _store(tmp_path)
    for i in range(n):
        _write(s, i + 1)
    future = s.start_commit()
    assert future is not None and not s.dirty
    _write(s, 9)
    threading.Timer(0.2, held.go.set).start()
    s.commit()  # after the background one, in order
    assert future.done() and future.exception() is None and s.commits == 2
    s._db = held.db
    s.close()
    assert len(_committed(tmp_path / "s.db")) == n + 1


def test_the_daemons_driver_handles_the_next_wakeup_while_a_commit_syncs(
    tmp_path: Path,
) -> None:
    """TimedDriver with a ``full`` store: the second wakeup's request is handled while the
    first wakeup's commit is still syncing; no reply leaves before the commit holding its
    binding; the replies leave in order."""
    import socket

    from mip4.core.actions import Action, SendUdp
    from mip4.core.home_agent import HomeAgent
    from mip4.daemon.driving import TimedDriver

    from ..core import test_home_agent as hat

    s, held = _store(tmp_path)
    base = hat.make_ha()
    ha = HomeAgent(base.config, base.security_associations, hat.UNIX0, bindings=s.bindings)
    ha.restore(0.0)
    sent: list[tuple[int, int]] = []  # (commits done, engine inputs handled) at each reply

    class Executor:
        def execute(self, action: Action) -> None:
            if isinstance(action, SendUdp):
                sent.append((s.commits, driver.stats["events"]))

    batches = [
        [hat.udp(hat.request(now=1.0, hoa=hat.HOA2, lifetime=60))],
        [hat.udp(hat.request(now=1.0, hoa=hat.HOA, lifetime=60))],
    ]

    observed: list[float] = []

    class Latency:
        def observe(self, seconds: float) -> None:
            observed.append(seconds)

    driver: Any = None

    async def go() -> None:
        nonlocal driver
        driver = TimedDriver(ha, Executor(), clock=lambda: 1.0)
        driver.store = s
        driver.metrics = Latency()
        a, b = socket.socketpair()

        def produce() -> list[Any]:
            a.recv(16)
            return batches.pop() if batches else []

        driver.add_reader(a, produce)
        b.send(b"x")
        await asyncio.to_thread(held.entered.wait, 5)  # wakeup 1 committing ...
        b.send(b"x")
        await _until(lambda: not batches, "wakeup 2 read")
        assert driver.stats["events"] == 2 and sent == []  # ... wakeup 2 handled, no reply
        assert len(ha.bindings) == 2
        assert observed == []  # the latency is taken when the reply leaves
        await asyncio.sleep(0.1)
        held.go.set()
        await _until(lambda: len(sent) == 2, "both replies")
        driver.close()
        a.close()
        b.close()

    asyncio.run(go())
    assert sent == [(1, 2), (2, 2)]  # reply 1 after commit 1, reply 2 after commit 2
    assert len(observed) == 2 and min(observed) >= 0.1  # each includes its commit's wait
    s._db = held.db
    s.close()
    t = SqliteStore(tmp_path / "s.db", 0.0)
    assert len(t.bindings) == 2
    t.close()
