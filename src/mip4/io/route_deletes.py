"""The routes of expired bindings deleted off the event loop's thread (issue 13).

With a million routes in a table the kernel's FIB trie restructures itself inside the
request that crosses a size: one batch of deletes blocked its ``send`` for 0.67-0.85 s in
``benchmarks/kernel_routes.py``. A home agent that deletes each expired binding's route on
its event loop's thread stops with it -- for every renewal of every other node -- during a
mass expiry. Nobody waits for an expired binding's route to go (no reply follows it), so
:class:`RouteDeletes` sends those deletes from a thread of its own, on a netlink socket of
its own, in batches (:meth:`RtnlSocket.send_batch <mip4.io.rtnl.RtnlSocket.send_batch>`),
while the loop goes on; the kernel does the rest of its work the same way.

What still holds: before the caller touches an address's route itself (a new binding's
route, any delete), :meth:`RouteDeletes.settle` makes that address's queued delete happen
first -- it sends it on the caller's socket there and then, or waits for the batch it is in
-- so the kernel sees the requests of one address in the order they were asked for. A
deletion the node asked for (its deregistration) is not handed here: its reply follows it,
as before. What is queued when the executor stops is sent first (:meth:`close`) -- unless
the TUN device goes in the same stop, which takes its routes with it
(:meth:`LinuxExecutor.devices_going <mip4.io.executor.LinuxExecutor.devices_going>`: then
:meth:`abandon`); a process that dies leaves it, as it leaves the routes themselves.

A route already gone is no error (counted in ``missing``); any other failure is logged, as
a delete on the loop's thread was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address
from itertools import islice

from .netns import missing
from .rtnl import Request, RtnlSocket

log = logging.getLogger("mip4.io")


class RouteDeletes:
    """Route deletes sent from a thread of their own (the module's docstring says why and
    what holds). ``open_socket`` makes the thread's netlink socket (in the namespace of the
    routes), on the first :meth:`put`."""

    #: the most deletes one ``send`` carries (:data:`RtnlSocket.BATCH_MAX`): also the most
    #: a :meth:`settle` may wait for
    BATCH = RtnlSocket.BATCH_MAX
    #: how long (seconds) the thread lets a batch fill before it sends less than a full
    #: one: a mass expiry's deletes go :data:`BATCH` to a send, the thread woken twice a
    #: batch (by the first delete and by the one that fills it) rather than for every few
    #: -- each wake-up a system call on the loop's thread and, beside a busy loop, a
    #: contest for the GIL (issue 13). Nothing waits for these deletes (``settle`` takes
    #: an address's own out of the queue).
    LINGER = 0.02

    def __init__(self, open_socket: Callable[[], RtnlSocket], name: str = "route-deletes") -> None:
        self._open = open_socket
        self._name = name
        self._cond = threading.Condition()
        #: key (the home address as an integer) -> its delete, oldest first
        self._queued: dict[int, Request] = {}
        #: the keys of the batch the thread is sending
        self._flying: frozenset[int] = frozenset()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._sock: RtnlSocket | None = None
        #: sent, missing (already gone), failed, batches, settled (sent by :meth:`settle`)
        self.stats: Counter[str] = Counter()
        #: the longest one batch took to be answered (seconds)
        self.longest = 0.0
        #: the most deletes queued at once
        self.most_queued = 0

    def put(self, key: int, request: Request) -> None:
        """Queue ``request`` (a route delete for ``key``'s address); returns at once."""
        with self._cond:
            if self._stopping:
                raise RuntimeError("route deletes: stopped")
            if self._thread is None:
                self._sock = self._open()
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            queued = self._queued
            queued.pop(key, None)  # (asked again: it goes in its new turn)
            queued[key] = request
            if len(queued) > self.most_queued:
                self.most_queued = len(queued)
            if len(queued) == 1 or len(queued) >= self.BATCH:  # (the thread's wake-ups)
                self._cond.notify()

    def settle(self, key: int, direct: RtnlSocket) -> None:
        """Before the caller asks anything else of ``key``'s route: its queued delete is
        sent now on ``direct`` (the caller's socket), or the batch it is in is waited for
        (at most :data:`BATCH` deletes); nothing queued for it: returns at once."""
        with self._cond:
            request = self._queued.pop(key, None)
            if request is not None:
                self.stats["settled"] += 1
            while request is None and key in self._flying:
                self._cond.wait()
        if request is not None:
            self._answered([key], [request], list(direct.send_batch([request])))

    def pending(self) -> int:
        """Deletes queued or being sent."""
        with self._cond:
            return len(self._queued) + len(self._flying)

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every queued delete was answered; ``False`` if ``timeout`` seconds
        went first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queued or self._flying:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Send what is queued (bounded by ``timeout``), stop the thread, close its socket."""
        if not self.drain(timeout):
            log.warning("route deletes: %d not sent at the stop", self.pending())
        self.abandon()

    def abandon(self) -> None:
        """Stop the thread; what is queued is not sent (what a killed process leaves)."""
        with self._cond:
            self._stopping = True
            self._queued.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(30)
        if self._sock is not None and (thread is None or not thread.is_alive()):
            self._sock.close()
            self._sock = None

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        cond = self._cond
        while True:
            with cond:
                while not self._queued and not self._stopping:
                    cond.wait()
                if len(self._queued) < self.BATCH and not self._stopping:
                    cond.wait(self.LINGER)  # (woken early by a full batch or the stop)
                if self._stopping:  # (nothing in flight: it is emptied after each batch)
                    return
                if not self._queued:  # (settled meanwhile, every one of them)
                    continue
                keys = list(islice(self._queued, self.BATCH))
                self._flying = frozenset(keys)
                requests = [self._queued.pop(k) for k in keys]
            t0 = time.monotonic()
            try:
                answers: list[Exception | None] = list(sock.send_batch(requests))
            except Exception as exc:  # the socket itself: each of them failed with it
                answers = [exc] * len(requests)
            self.longest = max(self.longest, time.monotonic() - t0)
            self._answered(keys, requests, answers)
            with cond:
                self.stats["batches"] += 1
                self._flying = frozenset()
                cond.notify_all()

    def _answered(
        self, keys: list[int], requests: list[Request], answers: list[Exception | None]
    ) -> None:
        counts: Counter[str] = Counter()
        for key, request, err in zip(keys, requests, answers, strict=True):
            if err is None:
                counts["sent"] += 1
            elif missing(err):
                counts["missing"] += 1
            else:
                counts["failed"] += 1
                log.warning("%s %s: %s", request[3], IPv4Address(key), err)
        with self._cond:  # (both threads count)
            self.stats.update(counts)
