"""Group commit with the disk's sync off the event loop (issue 15).

Theory of operation
-------------------
With ``synchronous = "full"`` a commit waits for the disk to sync its write-ahead log:
about a millisecond or more, during which a daemon that commits on its event loop does
nothing else. :class:`CommitPipeline` lets the loop run on while the store's writer thread
(:meth:`~mip4.store.SqliteStore.start_commit`) writes and syncs, and still never lets an
action out before the changes of the input that produced it are on disk:

* :meth:`CommitPipeline.submit` takes the actions of one batch of inputs (the datagrams one
  wakeup read, already given to the engine, their changes pending in the store), and
  what to call once they are carried out (the daemon times its replies there). With no
  commit in flight, a commit of everything pending begins and the actions wait for it;
  with one in flight, they wait -- their changes stay pending -- for the next one, which
  begins when the one in flight ends and covers every batch handled meanwhile (the
  longer the disk takes, the more one sync covers).
* When a commit ends, its actions are carried out on the loop, in the order they were
  submitted. A commit that failed was rolled back; its changes are pending again for the
  next commit, and its actions go through ``failed`` first (the driver drops the replies:
  the nodes retransmit).
* Inputs handled outside a batch (a timer, a single event) call :meth:`submit` too when
  the pipeline is busy (:attr:`busy`), so that no action overtakes an earlier one.
* :meth:`close` waits for what is in flight, commits what is pending and carries out
  every action still held, in order (a stopping daemon's last replies still go out).

At most one commit is in flight: the order of commits and of actions is the order of
submission, and a later change of a row always wins over an earlier one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from .sqlite import SqliteStore

__all__ = ["CommitPipeline"]

_A = TypeVar("_A")
_Batch = tuple[Sequence[_A], Callable[[], None] | None]


class CommitPipeline(Generic[_A]):
    """See the module docstring. ``run(actions)`` carries actions out;
    ``failed(error, actions)`` returns what to carry out of a batch whose commit failed."""

    def __init__(
        self,
        store: SqliteStore,
        loop: asyncio.AbstractEventLoop,
        run: Callable[[Sequence[_A]], None],
        failed: Callable[[BaseException, Sequence[_A]], Sequence[_A]],
    ) -> None:
        self.store = store
        self.loop = loop
        self._run = run
        self._failed = failed
        self._inflight: concurrent.futures.Future[None] | None = None
        #: the batches (actions, what to call once they are carried out) waiting for the
        #: commit in flight, and for the next commit
        self._committing: list[_Batch[_A]] = []
        self._waiting: list[_Batch[_A]] = []
        #: commits begun, batches carried out (for tests and status)
        self.commits = 0
        self.batches = 0

    @property
    def busy(self) -> bool:
        """A commit is in flight or batches wait: new actions must queue behind them."""
        return self._inflight is not None or bool(self._waiting)

    def submit(self, actions: Sequence[_A], done: Callable[[], None] | None = None) -> None:
        """Carry out ``actions`` once the changes made so far are on disk, then call
        ``done`` (not when the commit failed)."""
        self._waiting.append((actions, done))
        if self._inflight is None:
            self._begin()

    def _begin(self) -> None:
        """Commit what is pending for the batches waiting (or carry them out at once when
        nothing is pending)."""
        batches, self._waiting = self._waiting, []
        try:
            future = self.store.start_commit()
        except Exception as e:  # could not even begin: as a failed commit
            self._finish(batches, e)
            return
        if future is None:
            self._finish(batches, None)
            return
        self.commits += 1
        self._inflight, self._committing = future, batches
        future.add_done_callback(self._wake)

    def _wake(self, future: concurrent.futures.Future[None]) -> None:
        """In the writer thread: hand the end of ``future`` to the loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: close() did it
            self.loop.call_soon_threadsafe(self._ended, future)

    def _ended(self, future: concurrent.futures.Future[None]) -> None:
        if future is not self._inflight:
            return  # close() got there first
        self._inflight = None
        batches, self._committing = self._committing, []
        self._finish(batches, future.exception())
        if self._waiting:
            self._begin()

    def _finish(self, batches: list[_Batch[_A]], error: BaseException | None) -> None:
        for actions, done in batches:
            self.batches += 1
            self._run(actions if error is None else self._failed(error, actions))
            if done is not None and error is None:
                done()

    def close(self) -> None:
        """Wait for the commit in flight, commit what is pending and carry out every
        batch still held, in order."""
        while self._inflight is not None or self._waiting:
            future = self._inflight
            if future is not None:
                concurrent.futures.wait([future])
                self._ended(future)
            elif self._waiting:
                self._begin()
