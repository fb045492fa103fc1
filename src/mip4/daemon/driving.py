"""The daemon's side of driving an engine: :class:`DaemonExecutor` renders the engine's
log actions as the daemon's log lines (and counts what the status shows) around the I/O
shell's executor; :class:`TimedDriver` is the engine driver with the daemon's clock, its
binding store's commits and its metrics (split from :mod:`mip4.daemon.run`)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.core.actions import (
    AaaRequest,
    AccountingRecord,
    Action,
    GratuitousArp,
    InstallBinding,
    InstallVisitor,
    Log,
    ProxyArp,
    RelayInKernel,
    RemoveBinding,
    RemoveVisitor,
    SendIcmp,
    SendUdp,
    StopRelayInKernel,
)
from mip4.core.events import Event
from mip4.io.driver import Engine as DrivenEngine
from mip4.io.driver import EngineDriver, Executor
from mip4.io.radius import AaaShell
from mip4.store import SqliteStore
from mip4.store.pipeline import CommitPipeline  # issue 15 (ops hook)
from mip4.wire.codes import MessageType

from . import logs

if TYPE_CHECKING:  # prometheus_client is imported only when [metrics] is configured
    from .metrics import Metrics

#: RFC 5944 §3.4: the type of a Registration Reply (codes 0 and 1 accept), as an int
REGISTRATION_REPLY = int(MessageType.REGISTRATION_REPLY)

#: issue 13: the denials anyone can earn without a key -- a request or reply whose
#: authenticator fails (RFC 5944 §3.7.2 67 and 68 at a foreign agent, §3.8.2 131 and 132
#: at a home agent) or a replayed request (133) -- are logged as discards are, a few lines
#: per code and interval and then one summary: a flood of forgeries writes a few lines,
#: not one each (the engines' counters still count every one)
_DENIALS = frozenset({"ha.registration", "fa.registration_denied"})
_UNAUTHENTICATED = frozenset({67, 68, 131, 132, 133})

#: actions :meth:`DaemonExecutor.execute` hands to its inner executor as they are when no
#: AAA is configured (exact types: a subclass takes the general tests)
_PASSED_ON: frozenset[type[Action]] = frozenset(
    {
        SendUdp,
        SendIcmp,
        InstallVisitor,
        RemoveVisitor,
        RelayInKernel,
        StopRelayInKernel,
        InstallBinding,
        RemoveBinding,
        ProxyArp,
        GratuitousArp,
    }
)


@dataclass
class DaemonExecutor:
    """Renders :class:`Log` actions as log lines; hands every other action to ``inner``.
    Counts the mobile node's replies by code (``mn.reply`` records). Discard lines go
    through ``discards`` (rate-limited per reason, see :mod:`mip4.daemon.logs`)."""

    inner: Executor
    replies: Counter[int] = field(default_factory=Counter)
    discards: logs.DiscardLimiter = field(default_factory=logs.DiscardLimiter)
    metrics: Metrics | None = None
    #: AAA (issue 10): carries out AaaRequest / AccountingRecord actions (``None``: no
    #: ``[aaa]`` servers configured)
    aaa: AaaShell | None = None
    #: issue 11: told the home address a home agent assigned (``mn.home_address_assigned``,
    #: RFC 2794) -- the link monitor ignores it from then on (:func:`follow_home_address`)
    home_address_assigned: Callable[[IPv4Address], None] | None = None
    #: issue 13 (flood steering, :meth:`mip4.io.bpf.steer.Steering.trust`): told the
    #: destination of every accepting Registration Reply (type 3, code 0 or 1) the home
    #: agent sends -- only an authenticated request gets one (RFC 5944 §3.8)
    trust: Callable[[IPv4Address], None] | None = None

    def execute(self, action: Action) -> None:
        trust = self.trust
        if trust is not None and type(action) is SendUdp:
            payload = action.payload
            if len(payload) > 1 and payload[0] == REGISTRATION_REPLY and payload[1] <= 1:
                trust(action.dst)
        if self.aaa is None and type(action) in _PASSED_ON:
            # issue 13: a relaying agent's sends and visitor entries go on with one test
            self.inner.execute(action)
            return
        if self.aaa is not None and isinstance(action, AaaRequest | AccountingRecord):
            self.aaa.execute(action)
            return
        if self.aaa is not None and isinstance(action, RemoveVisitor):
            # the engine's Stop follows the removal: keep the visitor's final counts
            self.aaa.visitor_leaving(action.home_address)
        if isinstance(action, Log):
            if self.metrics is not None:
                self.metrics.on_log(action.event, action.fields, time.monotonic())
            if action.event == "mn.home_address_assigned" and self.home_address_assigned:
                address = action.fields.get("home_address")
                if isinstance(address, IPv4Address):
                    self.home_address_assigned(address)
            if action.event in ("mn-reply", "mn.reply"):
                code = action.fields.get("code")
                if isinstance(code, int):
                    self.replies[int(code)] += 1
            level = action.level
            if not logs.log.isEnabledFor(level):
                # e.g. a renewal that left its binding as it was (debug): nothing is copied
                # or built for a line nobody writes; the engine's counters still count it
                return
            if logs.is_discard(action.event):
                if not self.discards.allow(action.event, action.fields):
                    return
            elif action.event in _DENIALS:
                code = action.fields.get("code")
                if code in _UNAUTHENTICATED and not self.discards.allow(
                    action.event, {"reason": f"code={code}"}
                ):
                    return
            logs.engine_event(action.event, level, action.fields)
            return
        self.inner.execute(action)

    def hold_actions(self) -> None:
        """The inner executor's (issue 13: a read's kernel work together), if it has it;
        the log lines of the read are held too, and written together when it is released
        (:func:`logs.hold_lines`)."""
        hold = getattr(self.inner, "hold_actions", None)
        if hold is not None:
            hold()
        logs.hold_lines()

    def release_actions(self) -> list[tuple[Action, Exception]]:
        release = getattr(self.inner, "release_actions", None)
        try:
            failed: list[tuple[Action, Exception]] = release() if release is not None else []
        finally:
            logs.write_held_lines(stop=True)
        return failed


class TimedDriver(EngineDriver):
    """An :class:`EngineDriver` that times each input whose actions include a home
    agent's registration decision (``ha.registration``): datagram in, reply sent.

    With a ``store``, what the engine wrote is committed before any of its actions is
    carried out: a reply never leaves before the registration it announces is in the
    file. A commit that fails is logged and the replies of that input are not sent (the
    mobile node retransmits); its other actions still run. With ``synchronous = "full"``
    (a commit syncs the disk) the datagrams one reader wakeup drains (up to 64) are
    handled together and committed once (group commit): under load one disk sync covers
    many registrations, and each reply still waits for the commit that holds it; the
    commit runs in the store's writer thread (:class:`mip4.store.pipeline.CommitPipeline`,
    issue 15) while the loop handles the next datagrams, whose replies wait for the next
    commit. With ``"normal"`` each input is committed on its own (cheap), so no reply
    waits for the others of its batch. Set ``store`` before readers are added."""

    metrics: Metrics | None = None
    store: SqliteStore | None = None
    _pipeline: CommitPipeline[Action] | None = None  # issue 15 (ops hook)

    def __init__(
        self,
        engine: DrivenEngine,
        executor: Executor,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(engine, executor, loop=loop, clock=clock)
        #: when each input of the read being held arrived (issue 13: timed to its release)
        self._replies_held: list[float] = []

    def add_reader(self, fd: int | socket.socket, produce: Callable[[], list[Event]]) -> None:
        if self.store is None or not self.store.group_commit:
            super().add_reader(fd, produce)
            return

        def produce_and_handle() -> list[Event]:
            events = produce()
            if events:
                self.feed_all(events)
            return []  # all handled: nothing left for the base class to feed

        super().add_reader(fd, produce_and_handle)

    def plain_feed(self) -> bool:
        """With no metrics, no store and no commit pipeline, :meth:`feed` and
        :meth:`run_actions` do what the base class's do (a foreign agent's relays)."""
        return self.metrics is None and self.store is None and self._pipeline is None

    def feed_all(self, events: Sequence[Event]) -> list[Action]:
        """Give every event to the engine, then carry out all their actions after one
        commit (:meth:`run_actions`); re-arm the timer."""
        t0 = time.monotonic()
        actions: list[Action] = []
        decided = 0
        for event in events:
            self.stats["events"] += 1
            out = self.engine.handle(event, self.clock())
            actions.extend(out)
            decided += sum(1 for a in out if isinstance(a, Log) and a.event == "ha.registration")
        # -- issue 15 (the ops helper's hook): the commit's sync off the event loop -------
        if self.store is not None:
            if self._pipeline is None:
                self._pipeline = CommitPipeline(
                    self.store, self.loop, super().run_actions, self._commit_failed
                )
            metrics, n = self.metrics, decided

            def replied() -> None:  # datagram in, reply sent: after the commit
                if metrics is not None:
                    took = time.monotonic() - t0
                    for _ in range(n):
                        metrics.observe(took)

            self._pipeline.submit(actions, replied)
            actions, decided = [], 0
        # -- end of the ops helper's hook -------------------------------------------------
        self.run_actions(actions)
        self.start()  # re-arm
        if self.metrics is not None:
            took = time.monotonic() - t0
            for _ in range(decided):
                self.metrics.observe(took)
        return actions

    def run_actions(self, actions: Sequence[Action]) -> None:
        store = self.store
        # -- issue 15 (the ops helper's hook): behind the batches waiting for a commit ----
        if self._pipeline is not None and self._pipeline.busy:
            if actions:
                self._pipeline.submit(actions)
            return
        # -- end of the ops helper's hook -------------------------------------------------
        if store is not None and store.dirty:
            try:
                store.commit()
            except Exception as e:
                actions = self._commit_failed(e, actions)
        super().run_actions(actions)

    def _commit_failed(self, e: BaseException, actions: Sequence[Action]) -> list[Action]:
        self.stats["store_commit_errors"] += 1
        logs.event("daemon.store_commit_failed", logging.ERROR, error=str(e))
        return [a for a in actions if not isinstance(a, SendUdp)]

    def close(self) -> None:
        if self._pipeline is not None:  # issue 15 (ops hook): what waits for a commit
            self._pipeline.close()
        super().close()

    def feed(self, event: Event) -> list[Action]:
        if self.metrics is None:  # nothing to time (a foreign agent's relays, issue 13)
            return super().feed(event)
        t0 = time.monotonic()
        actions = super().feed(event)
        if self.metrics is not None and any(
            isinstance(a, Log) and a.event == "ha.registration" for a in actions
        ):
            if self._holding:  # its reply leaves when the read's actions are released
                self._replies_held.append(t0)
            else:
                self.metrics.observe(time.monotonic() - t0)
        return actions

    def _release(self) -> None:
        super()._release()
        held, self._replies_held = self._replies_held, []
        if held and self.metrics is not None:
            now = time.monotonic()
            for t0 in held:
                self.metrics.observe(now - t0)
