"""The driver serves flood steering's trusted socket first (issue 13,
:meth:`EngineDriver.add_steered_readers`): every reader callback drains the trusted socket
(up to its batch) before it reads at most ``general_batch`` datagrams of the general one,
whichever socket's readiness ran it. Real UDP sockets on 127.0.0.1; the readiness
callbacks are called by the test (counts, not times)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from mip4.core.actions import Action
from mip4.core.counters import Counters
from mip4.core.events import Event, UdpReceived
from mip4.io.driver import GENERAL_BATCH, TRUSTED_BATCH, EngineDriver
from mip4.io.rawsock import recv_udp


class Engine:
    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def handle(self, event: Event, now: float) -> list[Action]:
        assert isinstance(event, UdpReceived)
        self.seen.append(event.payload)
        return []

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float | None:
        return None

    @property
    def counters(self) -> Counters:
        return Counters()


class Loop:
    """What the driver asks of its loop here: readers, kept for the test to call."""

    def __init__(self) -> None:
        self.readers: dict[int, Callable[[], None]] = {}

    def add_reader(self, fd: int, cb: Callable[[], None]) -> None:
        self.readers[fd] = cb

    def remove_reader(self, fd: int) -> None:
        self.readers.pop(fd, None)


class Nothing:
    def execute(self, action: Action) -> None:
        pass


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    socks = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.setblocking(False)
        socks.append(s)
    yield socks[0], socks[1], socks[2]
    for s in socks:
        s.close()


def _read(sock: socket.socket, limit: int) -> list[Event]:
    return list(recv_udp(sock, ifname_of=lambda i: "lo", limit=limit))


def test_the_trusted_socket_is_drained_first_and_the_general_one_by_its_batch(
    pair: tuple[socket.socket, socket.socket, socket.socket],
) -> None:
    trusted, general, sender = pair
    n_trusted, n_general = TRUSTED_BATCH + 36, 3 * GENERAL_BATCH + 5
    for i in range(n_general):
        sender.sendto(b"g%d" % i, general.getsockname())
    for i in range(n_trusted):
        sender.sendto(b"t%d" % i, trusted.getsockname())
    engine, loop = Engine(), Loop()
    driver = EngineDriver(engine, Nothing(), loop=loop)  # type: ignore[arg-type]
    driver.add_steered_readers(trusted, general, _read)
    on_trusted, on_general = loop.readers[trusted.fileno()], loop.readers[general.fileno()]

    # the general socket's readiness first: the trusted socket is read before it
    on_general()
    assert engine.seen == [b"t%d" % i for i in range(TRUSTED_BATCH)] + [
        b"g%d" % i for i in range(GENERAL_BATCH)
    ]
    assert driver.stats["read_trusted"] == TRUSTED_BATCH
    assert driver.stats["read_general"] == GENERAL_BATCH

    # again: the rest of the trusted ones, then one more general batch, never more
    engine.seen.clear()
    on_general()
    assert engine.seen == [b"t%d" % i for i in range(TRUSTED_BATCH, n_trusted)] + [
        b"g%d" % i for i in range(GENERAL_BATCH, 2 * GENERAL_BATCH)
    ]

    # the trusted socket's own reader reads nothing of the general one
    engine.seen.clear()
    on_trusted()
    assert engine.seen == []
    assert driver.stats["read_trusted"] == n_trusted

    # a trusted datagram that arrives while the general socket is full waits for at most
    # one general batch
    sender.sendto(b"late", trusted.getsockname())
    on_general()
    assert engine.seen[0] == b"late"
    assert len(engine.seen) == 1 + GENERAL_BATCH
    on_general()
    assert driver.stats["read_general"] == n_general
    assert driver.stats["events"] == n_trusted + 1 + n_general


def test_the_batches_are_the_callers(
    pair: tuple[socket.socket, socket.socket, socket.socket],
) -> None:
    trusted, general, sender = pair
    for i in range(10):
        sender.sendto(b"t%d" % i, trusted.getsockname())
        sender.sendto(b"g%d" % i, general.getsockname())
    engine, loop = Engine(), Loop()
    driver = EngineDriver(engine, Nothing(), loop=loop)  # type: ignore[arg-type]
    driver.add_steered_readers(trusted, general, _read, trusted_batch=3, general_batch=2)
    loop.readers[general.fileno()]()
    assert engine.seen == [b"t0", b"t1", b"t2", b"g0", b"g1"]
    loop.readers[trusted.fileno()]()
    assert engine.seen[5:] == [b"t3", b"t4", b"t5"]
