"""The routes of expired bindings deleted off the event loop's thread (issue 13,
:mod:`mip4.io.route_deletes`): the loop does not wait for the kernel's delete (which blocks
for most of a second where the FIB trie restructures itself at a million routes), and an
address's requests still reach the kernel in the order they were asked for.

* Unit (a stand-in socket whose ``send_batch`` can be held): ``put`` returns while the
  thread is held in the kernel; ``settle`` sends a queued delete on the caller's socket at
  once, and waits for one in flight; the order, the answers (gone, failed), close and
  abandon.
* Lab (a namespace): an expired binding's route goes through the thread and a deregistered
  one's at once; a node registering again right after its binding expired keeps its route.
"""

from __future__ import annotations

import errno
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

import pytest

from mip4.core.actions import InstallBinding, RemoveBinding
from mip4.io.netns import Netns
from mip4.io.route_deletes import RouteDeletes
from mip4.io.rtnl import NetlinkRequestError, Request, RtnlSocket
from mip4.io.runtime import NodeIO

from .test_executor import COA, TUN, _executor


class HeldSocket:
    """Stands in for :class:`RtnlSocket`: records each batch; ``hold`` keeps the next
    ``send_batch`` inside until ``release`` (a kernel that takes its time); ``answers``
    maps an address's request to the error it gets."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.hold = threading.Event()
        self.inside = threading.Event()
        self.release = threading.Event()
        self.answers: dict[str, Exception] = {}
        self.closed = False

    def send_batch(self, requests: Sequence[Request]) -> list[Exception | None]:
        names = [r[3] for r in requests]
        self.batches.append(names)
        if self.hold.is_set():
            self.hold.clear()
            self.inside.set()
            assert self.release.wait(10)
        return [self.answers.get(n) for n in names]

    def close(self) -> None:
        self.closed = True

    def sent(self) -> list[str]:
        return [n for batch in self.batches for n in batch]


def _req(name: str) -> Request:
    """A request the stand-ins tell apart by its ``what``."""
    return (0, "del", b"", name)


def _deletes(sock: HeldSocket) -> RouteDeletes:
    return RouteDeletes(lambda: sock)  # type: ignore[arg-type,return-value]


def _direct(sock: HeldSocket) -> RtnlSocket:
    return sock  # type: ignore[return-value]


def _one_in_the_kernel(sock: HeldSocket) -> RouteDeletes:
    """Deletes whose thread is held inside its ``send`` of the first one, ``a`` (key 1)."""
    d = _deletes(sock)
    sock.hold.set()
    d.put(1, _req("a"))
    assert sock.inside.wait(10)
    return d


def test_put_returns_while_the_thread_waits_in_the_kernel() -> None:
    thread_sock, loop_sock = HeldSocket(), HeldSocket()
    d = _one_in_the_kernel(thread_sock)  # the thread is inside its send, held there
    for i, name in enumerate("bcd", start=2):
        d.put(i, _req(name))  # the loop goes on: nothing waits for the kernel
    assert d.pending() == 4
    # an address that has nothing queued does not wait either
    d.settle(99, _direct(loop_sock))
    assert loop_sock.batches == []
    thread_sock.release.set()
    assert d.drain(10)
    assert thread_sock.sent() == ["a", "b", "c", "d"]  # in the order they were put
    assert d.stats["sent"] == 4 and d.pending() == 0
    d.close()
    assert thread_sock.closed


def test_settle_sends_a_queued_delete_itself_and_waits_for_one_in_flight() -> None:
    thread_sock, loop_sock = HeldSocket(), HeldSocket()
    d = _one_in_the_kernel(thread_sock)
    d.put(2, _req("b"))
    # b is queued behind the held batch: settle sends it on the caller's socket, now
    d.settle(2, _direct(loop_sock))
    assert loop_sock.sent() == ["b"] and d.stats["settled"] == 1
    # a is in flight: settle waits until the kernel answered its batch
    done = threading.Event()

    def settle() -> None:
        d.settle(1, _direct(loop_sock))
        done.set()

    waiter = threading.Thread(target=settle)
    waiter.start()
    assert not done.wait(0.3)  # still in the kernel: settle has not returned
    thread_sock.release.set()
    assert done.wait(10)
    waiter.join(10)
    assert loop_sock.sent() == ["b"]  # a was sent once, by the thread
    assert thread_sock.sent() == ["a"]
    d.close()


def test_a_batch_fills_before_it_is_sent() -> None:
    """The thread lets a batch fill for ``LINGER`` seconds: a few deletes go together once
    it has passed, and a full batch goes at once, without waiting for it."""
    sock = HeldSocket()
    d = _deletes(sock)
    d.LINGER = 1.0
    t0 = time.monotonic()
    for i in range(3):
        d.put(i, _req(f"x{i}"))
    assert d.drain(10)
    assert time.monotonic() - t0 >= 0.9  # held for the linger
    assert sock.batches == [["x0", "x1", "x2"]]  # and then sent together
    d.LINGER = 30.0  # (a full batch does not wait for it)
    t0 = time.monotonic()
    for i in range(d.BATCH + 5):
        d.put(100 + i, _req(f"y{i}"))
    while sock.sent().count("y0") == 0 and time.monotonic() - t0 < 10:
        time.sleep(0.01)
    assert time.monotonic() - t0 < 10
    assert sock.batches[1] == [f"y{i}" for i in range(d.BATCH)]
    d.abandon()  # (the 5 left: dropped, the thread stopped out of its linger)
    assert len(sock.batches) == 2


def test_an_address_put_twice_is_deleted_once_in_its_new_turn() -> None:
    sock = HeldSocket()
    d = _one_in_the_kernel(sock)
    d.put(2, _req("b"))
    d.put(3, _req("c"))
    d.put(2, _req("b2"))
    sock.release.set()
    assert d.drain(10)
    assert sock.sent() == ["a", "c", "b2"]
    d.close()


def test_random_puts_and_settles_reach_the_kernel_as_a_model_queue_says() -> None:
    """Deletes put, put again and settled in a random order, with many queued at once (the
    thread held in the kernel): each key's last delete not settled reaches the kernel once,
    in the order of the puts that queued it, the settled ones on the caller's socket; the
    most queued at once is counted."""
    rng = random.Random(13)
    for round_ in range(4):
        thread_sock, loop_sock = HeldSocket(), HeldSocket()
        d = _one_in_the_kernel(thread_sock)
        model: dict[int, str] = {1: "a"}  # key -> its queued delete, in the order put
        settled: list[str] = []
        keys = rng.randrange(50, 5000)
        for i in range(rng.randrange(1000, 20000)):
            key = rng.randrange(2, keys)  # (not 1: a's, in flight)
            if rng.random() < 0.2:
                d.settle(key, _direct(loop_sock))
                if key in model:
                    settled.append(model.pop(key))
            else:
                name = f"r{round_}-{i}"
                d.put(key, _req(name))
                model.pop(key, None)
                model[key] = name
        queued = len(model) - 1  # (not a: it is in flight)
        assert d.pending() == queued + 1
        thread_sock.release.set()
        assert d.drain(10)
        assert loop_sock.sent() == settled
        assert thread_sock.sent() == list(model.values())
        assert d.stats["sent"] == len(model) + len(settled) and d.pending() == 0
        assert d.most_queued >= queued
        d.close()


def test_a_route_already_gone_is_counted_and_another_failure_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sock = HeldSocket()
    sock.answers = {
        "gone": NetlinkRequestError(errno.ESRCH, "route del"),
        "refused": NetlinkRequestError(errno.EPERM, "route del"),
    }
    d = _deletes(sock)
    with caplog.at_level(logging.WARNING, logger="mip4.io"):
        d.put(int(IPv4Address("10.1.0.1")), _req("gone"))
        d.put(int(IPv4Address("10.1.0.2")), _req("refused"))
        d.put(int(IPv4Address("10.1.0.3")), _req("fine"))
        assert d.drain(10)
    assert (d.stats["sent"], d.stats["missing"], d.stats["failed"]) == (1, 1, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "10.1.0.2" in warnings[0], warnings
    assert "Operation not permitted" in warnings[0]
    d.close()


def test_close_sends_what_is_queued_and_abandon_does_not() -> None:
    sock = HeldSocket()
    d = _one_in_the_kernel(sock)
    d.put(2, _req("b"))
    closer = threading.Thread(target=d.close)
    closer.start()
    sock.release.set()
    closer.join(10)
    assert not closer.is_alive()
    assert sock.sent() == ["a", "b"] and sock.closed
    with pytest.raises(RuntimeError, match="stopped"):
        d.put(3, _req("c"))

    sock2 = HeldSocket()
    d2 = _one_in_the_kernel(sock2)
    d2.put(2, _req("b"))
    sock2.release.set()  # (the batch in flight is answered; b is dropped)
    d2.abandon()
    assert sock2.sent() in (["a"], ["a", "b"])  # b only if the thread took it first
    assert d2.pending() == 0


def test_nothing_is_started_before_the_first_delete() -> None:
    opened: list[int] = []

    def open_socket() -> RtnlSocket:
        opened.append(1)
        return _direct(HeldSocket())

    d = RouteDeletes(open_socket)
    d.settle(1, _direct(HeldSocket()))
    assert d.drain(0.1) and opened == []
    d.close()
    assert opened == []


@pytest.mark.parametrize("going", [False, True], ids=["tun-stays", "tun-goes"])
def test_the_stop_sends_what_is_queued_unless_the_tun_device_goes(going: bool) -> None:
    """``LinuxExecutor.close`` (a counting stand-in for netlink): the deletes still
    queued are sent, in order, before anything else is undone -- unless the TUN device,
    the device of every queued route, goes in the same stop (``devices_going``): the kernel
    deletes its routes with it, and a stop during a mass expiry does not wait for them."""
    ex, nl = _executor()
    sock = HeldSocket()
    d = _one_in_the_kernel(sock)
    d.put(2, _req("b"))
    d.put(3, _req("c"))
    ex._route_deletes = d
    if going:
        ex.devices_going([nl.links[TUN]])
    release = threading.Timer(0.2, sock.release.set)  # the kernel answers a, later
    release.start()
    try:
        ex.close()
    finally:
        release.cancel()
        sock.release.set()
    assert sock.sent() == (["a"] if going else ["a", "b", "c"])
    assert d.pending() == 0 and ex._route_deletes is None and sock.closed


# -- lab ------------------------------------------------------------------------------


def _routes(ns: Netns, tun: str) -> set[str]:
    out = ns.exec(["ip", "-4", "route", "show", "dev", tun]).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _home_agent_io(make_netns: Callable[[str], Netns], prefix: str) -> tuple[Netns, NodeIO, str]:
    """A home agent's I/O in a namespace of its own (a veth to another): the namespace,
    the ``NodeIO`` and its TUN device's name."""
    ns, peer = make_netns("n"), make_netns("p")
    ns.add_veth("n0", "p0", peer)
    ns.add_address("n0", "10.77.0.1/24")
    ns.set_up("n0")
    peer.set_up("p0")
    tun = f"{prefix}t"
    io = NodeIO.open(
        ns.name, ["n0"], tun_name=tun, tunnel_source=IPv4Address("10.77.0.1"), forwarding=True
    )
    return ns, io, tun


@pytest.mark.lab
def test_an_expired_binding_route_goes_through_the_thread(
    make_netns: Callable[[str], Netns], prefix: str
) -> None:
    ns, io, tun = _home_agent_io(make_netns, prefix)
    homes = [IPv4Address(f"10.77.1.{i}") for i in range(1, 201)]
    deletes: RouteDeletes | None = None
    try:
        ex = io.executor
        for home in homes:
            ex.execute(InstallBinding(home, COA))
        assert _routes(ns, tun) == {str(h) for h in homes}
        # a deregistration: the route is gone when execute returns (its reply follows)
        ex.execute(RemoveBinding(homes[0], COA))
        assert str(homes[0]) not in _routes(ns, tun)
        assert ex.stats["route_delete_deferred"] == 0
        # expiries: handed to the thread
        for home in homes[1:150]:
            ex.execute(RemoveBinding(home, COA, expired=True))
        assert ex.stats["route_delete_deferred"] == 149
        # a node whose binding just expired registers again: its route stays
        again = homes[149]
        ex.execute(InstallBinding(again, COA))
        deletes = ex._route_deletes
        assert deletes is not None and deletes.drain(30)
        assert _routes(ns, tun) == {str(h) for h in homes[149:]}
        assert (deletes.stats["sent"], deletes.stats["failed"]) == (149, 0)
        counters = ex.counters()  # what mip4 status shows
        assert counters["route_deletes_sent"] == 149 and counters["route_deletes_pending"] == 0
        assert counters["route_delete_deferred"] == 149
        assert counters["route_deletes_longest_us"] > 0
        # the daemon's stop: its TUN device goes, and with it every route through it --
        # what is still queued need not be sent (the unit test above: which)
        for home in homes[150:160]:
            ex.execute(RemoveBinding(home, COA, expired=True))
    finally:
        io.close()
    assert deletes is not None
    assert deletes.pending() == 0 and 149 <= deletes.stats["sent"] <= 159
    assert deletes.stats["failed"] == 0
    left = ns.exec(["ip", "-4", "route", "show", "table", "all"]).stdout
    assert not [h for h in homes if f"{h} " in left], left
    assert io.executor._route_deletes is None
    assert not [t for t in threading.enumerate() if t.name.startswith("route-deletes-")]


@pytest.mark.lab
def test_when_the_thread_cannot_take_a_delete_it_is_done_at_once(
    make_netns: Callable[[str], Netns],
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ns, io, tun = _home_agent_io(make_netns, prefix)

    def refuse(self: RouteDeletes, key: int, request: Request) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(RouteDeletes, "put", refuse)
    home = IPv4Address("10.77.1.1")
    try:
        ex = io.executor
        ex.execute(InstallBinding(home, COA))
        assert _routes(ns, tun) == {str(home)}
        with caplog.at_level(logging.WARNING, logger="mip4"):
            ex.execute(RemoveBinding(home, COA, expired=True))
        assert _routes(ns, tun) == set()  # deleted before execute returned
        assert ex.stats["route_delete_deferred"] == 0
        assert any("deleted at once" in r.getMessage() for r in caplog.records)
    finally:
        io.close()
