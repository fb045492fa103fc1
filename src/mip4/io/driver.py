"""The asyncio driver of an engine: events in, one timer, actions out to an executor.

Theory of operation
-------------------
An engine (``HomeAgent``, ``ForeignAgent``, ``MobileNode`` in :mod:`mip4.core`) is a pure
state machine: ``handle(event, now)`` and ``handle_timer(now)`` return lists of actions, and
``next_deadline()`` says when it next wants ``handle_timer``. :class:`EngineDriver` is the
only place where time and sockets meet it (as aioquic's ``asyncio/protocol.py`` drives a
``QuicConnection``):

* every input is fed with ``now = time.monotonic()`` (the clock asyncio's loop uses too);
* after every input **one** timer is armed at ``next_deadline()`` (re-armed, never
  stacked); a timer that fires early (clock granularity) is simply re-armed. A deadline
  that moved later keeps the armed timer, which wakes at the earlier time and re-arms
  then (an agent's next deadline moves later with nearly every read: a pending request
  answered, a visitor or binding renewed -- no new timer per read);
* readers registered with :meth:`EngineDriver.add_reader` drain their socket and turn what
  they read into events (:func:`mip4.io.rawsock.recv_udp`, ``recv_discovery``); the events
  of one readiness callback are fed one after the other and the timer is re-armed once,
  after the last (nothing else runs on the loop in between, so no timer can be missed);
* every returned action goes to an :class:`Executor` (on Linux
  :class:`mip4.io.executor.LinuxExecutor`), in order. An action that fails is logged and
  counted and does not stop the ones after it. An executor that can hold actions
  (:class:`HoldingExecutor`) holds those of one reader callback, or of one list of
  actions, and carries out their kernel work together when they are all given
  (issue 13: the routes and proxy entries of a read's first registrations in one netlink
  message); what fails then is logged and counted the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from mip4.core.actions import Action
from mip4.core.engine import Engine
from mip4.core.events import Event

log = logging.getLogger("mip4")

#: flood steering (issue 13): datagrams read per call from the trusted socket (as from the
#: one control socket without steering) and from the general socket: a pass of the loop
#: handles at most GENERAL_BATCH requests from untrusted sources (their authentication and
#: their replies) before the trusted socket is read again. 8, measured with ``mip4 bench
#: registrations`` (forged flood ~230,000/s, 1,000 nodes, 2 shared cores, alternating runs,
#: noisy): renewals served under the flood 14,000/s (0.64x alone, 5 runs) with 8 against
#: 11,700/s (0.61x) with 16, 13,300/s with 4, 8,000-10,500/s with 32 and 64; the forgeries
#: answered (131) per second, what a new source competes with, about the same for 8 and 16
TRUSTED_BATCH = 64
GENERAL_BATCH = 8


__all__ = [
    "CoalescedTimers",
    "Engine",
    "EngineDriver",
    "Executor",
    "HoldingExecutor",
    "TimerToken",
]

#: the calling thread's resource usage (user and system time, by the kernel's clock ticks;
#: page faults): one system call
_thread_usage, _THREAD = resource.getrusage, resource.RUSAGE_THREAD


def _open_schedstat() -> int:
    """A descriptor of the calling thread's ``schedstat`` (-1 where the kernel has none):
    read with :func:`_run_delay_ns`, it stays the thread's that opened it."""
    try:
        return os.open("/proc/thread-self/schedstat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


def _run_delay_ns(fd: int) -> int:
    """The thread's time on a run queue so far -- runnable, waiting for a CPU -- in ns
    (``schedstat``'s second field, ``sched_info.run_delay``); 0 without ``fd``."""
    if fd < 0:
        return 0
    try:
        return int(os.pread(fd, 64, 0).split()[1])
    except (OSError, IndexError, ValueError):
        return 0


class Executor(Protocol):
    def execute(self, action: Action) -> None: ...


class HoldingExecutor(Executor, Protocol):
    """An executor that can gather the actions of one input batch and carry their kernel
    work out together (:meth:`mip4.io.executor.LinuxExecutor.hold_actions`)."""

    def hold_actions(self) -> None: ...

    def release_actions(self) -> list[tuple[Action, Exception]]: ...


class TimerToken:
    """A callback of :class:`CoalescedTimers` still to run; :meth:`cancel` drops it."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[], object] | None) -> None:
        self.func = func

    def cancel(self) -> None:
        self.func = None


class CoalescedTimers:
    """``call_later`` for many short-lived callbacks (issue 13: the two repeats of a first
    registration's gratuitous ARP): the callbacks due within one ``resolution`` share one
    loop timer, run in the order they were asked for, never before their delay and at
    most ``resolution`` after it -- not one ``TimerHandle`` (its context copy and its place
    in the loop's heap) per callback. A callback that raises is reported to the loop's
    exception handler, as the loop does for its own timers, and the others still run."""

    def __init__(self, loop: asyncio.AbstractEventLoop, resolution: float = 0.005) -> None:
        self.loop = loop
        self.resolution = resolution
        self._buckets: dict[int, list[TimerToken]] = {}

    def call_later(self, delay: float, func: Callable[[], object]) -> TimerToken:
        slot = math.ceil((self.loop.time() + delay) / self.resolution)
        token = TimerToken(func)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = []
            self.loop.call_at(slot * self.resolution, self._fire, slot)
        bucket.append(token)
        return token

    def __len__(self) -> int:
        """Callbacks waiting (cancelled ones included until their time)."""
        return sum(len(b) for b in self._buckets.values())

    def _fire(self, slot: int) -> None:
        for token in self._buckets.pop(slot, ()):
            func, token.func = token.func, None
            if func is None:
                continue
            try:
                func()
            except Exception as exc:
                self.loop.call_exception_handler(
                    {"message": f"exception in timer callback {func!r}", "exception": exc}
                )


class EngineDriver:
    """Runs ``engine`` on an asyncio loop, handing its actions to ``executor``."""

    def __init__(
        self,
        engine: Engine,
        executor: Executor,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.executor = executor
        self.loop = loop or asyncio.get_running_loop()
        self.clock = clock
        self.stats: Counter[str] = Counter()
        #: the loop thread's schedstat (opened by the first timer call, on that thread)
        self._schedstat: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        #: the deadline the armed timer was started for: at most :attr:`_deadline` (a
        #: later deadline keeps the timer, which then wakes early and re-arms)
        self._armed = 0.0
        self._readers: list[int] = []
        #: issue 13: events to feed before each timer call (the foreign agent: what its
        #: kernel relayed since the last read)
        self.before_timer: Callable[[], list[Event]] | None = None
        self.closed = False
        #: feeding the events of one reader callback: re-arm once, after the last
        self._batch = False
        #: the executor holds the actions of one reader callback (or one run of
        #: actions) and carries their kernel work out together (issue 13)
        self._holding = False
        holds = hasattr(executor, "hold_actions") and hasattr(executor, "release_actions")
        self._holder = cast(HoldingExecutor, executor) if holds else None

    def start(self) -> None:
        """Arm the first timer (an engine may want to act at once, e.g. solicit)."""
        self._rearm()

    def feed(self, event: Event) -> list[Action]:
        """Give ``event`` to the engine now; run its actions; re-arm the timer."""
        self.stats["events"] += 1
        actions = self.engine.handle(event, self.clock())
        self.run_actions(actions)
        if not self._batch:  # in a reader's batch: re-armed once, after the last event
            self._rearm()
        return actions

    def run_actions(self, actions: Sequence[Action]) -> None:
        """Each action to the executor, in order, counted by type; one that raises is
        logged and counted (``action_errors``) and the ones after it still run. The
        executor's ``execute`` and the counters are looked up once per list, and the loop
        is left only when an action fails (issue 13: a relaying agent's two or three
        actions per datagram)."""
        outer = self._hold()
        stats, execute = self.stats, self.executor.execute
        pending = iter(actions)
        action: Action | None = None
        try:
            while True:
                try:
                    for action in pending:
                        stats[type(action).__name__] += 1
                        execute(action)
                except Exception:
                    stats["action_errors"] += 1
                    log.exception("executing %r failed", action)
                    continue  # with the action after it
                break
        finally:
            if outer:
                self._release()

    def plain_feed(self) -> bool:
        """``True`` when :meth:`feed` and :meth:`run_actions` are this class's own (a
        subclass that adds to them says when they do nothing more): a reader's events are
        then fed by :meth:`_feed_read`."""
        return type(self).feed is EngineDriver.feed and (
            type(self).run_actions is EngineDriver.run_actions
        )

    def _feed_read(self, events: Sequence[Event]) -> None:
        """What :meth:`feed` does for each event of one reader callback (the actions held
        and the timer re-armed by the caller), in one loop: no call per event into
        ``feed``, ``run_actions`` and the hold test (issue 13: a relaying agent handles
        ~50 datagrams per wakeup under load). The counts, the order of the actions, and
        an action's failure (logged, counted, the next one runs) are :meth:`feed`'s."""
        stats, clock = self.stats, self.clock
        handle, execute = self.engine.handle, self.executor.execute
        action: Action | None = None
        for event in events:
            stats["events"] += 1
            pending = iter(handle(event, clock()))
            while True:
                try:
                    for action in pending:
                        stats[type(action).__name__] += 1
                        execute(action)
                except Exception:
                    stats["action_errors"] += 1
                    log.exception("executing %r failed", action)
                    continue  # with the action after it
                break

    def _hold(self) -> bool:
        """Let the executor hold actions, if it can and does not already; ``True`` when
        this call started holding (and must :meth:`_release`)."""
        if self._holding or self._holder is None:
            return False
        self._holder.hold_actions()
        self._holding = True
        return True

    def _release(self) -> None:
        """The executor carries out what it held; a failed action is logged and counted
        as when it failed at once."""
        self._holding = False
        assert self._holder is not None
        for action, exc in self._holder.release_actions():
            self.stats["action_errors"] += 1
            log.error("executing %r failed", action, exc_info=exc)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.clock()
        if self._deadline is not None and now < self._deadline:
            self._rearm()  # woke early
            return
        if self.before_timer is not None:
            # issue 13: what the foreign agent's kernel relayed reaches the engine before
            # its timeouts and expiries run (a renewal it holds must not expire)
            try:
                early = self.before_timer()
            except Exception:
                self.stats["reader_errors"] += 1
                log.exception("reading before the timer failed")
                early = []
            if early:
                self._feed_events(early)
                now = self.clock()
        stats = self.stats
        stats["timers"] += 1
        sched = self._schedstat
        if sched is None:
            sched = self._schedstat = _open_schedstat()
        q0 = _run_delay_ns(sched)
        r0 = _thread_usage(_THREAD)
        t0, c0 = time.perf_counter(), time.thread_time()
        actions = self.engine.handle_timer(now)
        c1 = time.thread_time()
        self.run_actions(actions)
        c2 = time.thread_time()
        r2 = _thread_usage(_THREAD)
        q2 = _run_delay_ns(sched)
        # the longest a timer call kept the loop (expiry bounds its work per call, issue
        # 13: a mass expiry is spread over calls), in microseconds; and the most CPU time
        # the loop's thread spent in one: the call's own work, without the time it waited
        # (for the GIL, for a CPU, or -- on a virtual machine -- for the host to run it)
        took = round((time.perf_counter() - t0) * 1e6)
        cpu = round((c2 - c0) * 1e6)
        # of that wait, the time the thread was runnable but had no CPU (the run queue:
        # other threads and processes, softirqs in their own threads); the rest it waited
        # for something else (the GIL, a lock, a system call) or the host took the
        # machine from under it (steal: the thread was running, as far as the kernel saw)
        queued = (q2 - q0) // 1000
        if took > stats["timer_longest_us"]:
            stats["timer_longest_us"] = took
            stats["timer_longest_queued_us"] = queued
        if cpu > stats["timer_longest_cpu_us"]:
            stats["timer_longest_cpu_us"] = cpu
            # where that call's CPU time went: the engine's part (the rest is carrying
            # out its actions), the kernel's part, the page faults, the actions. (The
            # thread's CPU time is the scheduler's, exact; getrusage's user and system
            # times may be a clock tick off -- here up to 3.9 ms more than the wall time
            # of a 0.1 ms call -- so they only split it: the kernel's part may count up to
            # a tick from before or after the call.)
            stats["timer_costliest_engine_us"] = round((c1 - c0) * 1e6)
            stats["timer_costliest_system_us"] = round((r2.ru_stime - r0.ru_stime) * 1e6)
            stats["timer_costliest_faults"] = (
                r2.ru_minflt + r2.ru_majflt - r0.ru_minflt - r0.ru_majflt
            )
            stats["timer_costliest_actions"] = len(actions)
        # how many went past issue 13's 10 ms, in wall time and in the thread's CPU time
        if took > 10_000:
            stats["timer_over_10ms"] += 1
            if cpu > 10_000:
                stats["timer_cpu_over_10ms"] += 1
            if took - queued <= 10_000:  # past 10 ms only for want of a CPU
                stats["timer_over_10ms_queued"] += 1
        self._rearm()

    def _rearm(self) -> None:
        if self.closed or self._batch:
            return
        deadline = self.engine.next_deadline()
        timer = self._timer
        if timer is not None:
            if deadline == self._deadline:
                return
            if deadline is not None and deadline >= self._armed:
                # Later than the armed timer (a pending request answered, a visitor or
                # binding renewed: the usual case after a read): the timer stays, wakes
                # early at the earlier time and re-arms for this one (_on_timer) -- no
                # cancel and new timer per read (issue 13).
                self._deadline = deadline
                return
            timer.cancel()
            self._timer = None
        self._deadline = deadline
        if deadline is not None:
            self._armed = deadline
            self._timer = self.loop.call_later(max(0.0, deadline - self.clock()), self._on_timer)

    @property
    def deadline(self) -> float | None:
        """The deadline the armed timer is for (``None``: no timer)."""
        return self._deadline if self._timer is not None else None

    def add_reader(self, fd: int | socket.socket, produce: Callable[[], list[Event]]) -> None:
        """When ``fd`` is readable call ``produce()`` (which drains it) and feed each event."""
        fileno = fd if isinstance(fd, int) else fd.fileno()

        def ready() -> None:
            try:
                events = produce()
            except Exception:
                self.stats["reader_errors"] += 1
                log.exception("reading fd %d failed", fileno)
                return
            if events:
                self._feed_events(events)

        self.loop.add_reader(fileno, ready)
        self._readers.append(fileno)

    def _feed_events(self, events: Sequence[Event]) -> None:
        """One reader callback's ``events``: fed in one batch, the actions held, the timer
        re-armed once after the last."""
        self._batch = True
        outer = self._hold()
        try:
            if self.plain_feed():
                self._feed_read(events)
            else:
                for ev in events:
                    self.feed(ev)
        finally:
            if outer:
                self._release()
            self._batch = False
            self._rearm()

    def add_steered_readers(
        self,
        trusted: socket.socket,
        general: socket.socket,
        read: Callable[[socket.socket, int], list[Event]],
        *,
        trusted_batch: int = TRUSTED_BATCH,
        general_batch: int = GENERAL_BATCH,
    ) -> None:
        """The two sockets of flood steering (:mod:`mip4.io.bpf.steer`, issue 13), the
        trusted one served first: ``read(sock, limit)`` reads at most ``limit`` datagrams.
        The trusted socket's reader reads up to ``trusted_batch``; the general socket's
        reader first drains the trusted socket the same way, then reads at most
        ``general_batch`` from the general one, and its events come after the trusted
        ones. However the loop orders the two readiness callbacks, a trusted datagram
        waits for at most ``general_batch`` general ones per pass of the loop, and a flood
        on the general socket takes at most that share of it. Counted in ``stats``:
        ``read_trusted``, ``read_general`` (datagrams read from each)."""
        stats = self.stats

        def from_trusted() -> list[Event]:
            events = read(trusted, trusted_batch)
            if events:
                stats["read_trusted"] += len(events)
            return events

        def from_general() -> list[Event]:
            events = from_trusted()
            more = read(general, general_batch)
            if more:
                stats["read_general"] += len(more)
                events += more
            return events

        self.add_reader(trusted, from_trusted)
        self.add_reader(general, from_general)

    def close(self) -> None:
        self.closed = True
        if self._schedstat is not None and self._schedstat >= 0:
            with contextlib.suppress(OSError):
                os.close(self._schedstat)
        self._schedstat = -1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for fd in self._readers:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(fd)
        self._readers.clear()
