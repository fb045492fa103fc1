"""``BatchSender`` -- a read's datagrams sent with one ``sendmmsg`` (issue 13: a foreign
agent relays tens of requests to its home agents per read) -- sends each datagram as
``send_udp`` does (destination, port, source address, TTL), in order, and a failure is the
failing datagram's own, with the error ``send_udp`` raises for it; the executor with
``batch_udp`` sends a held read's datagrams when the hold ends, and at once otherwise.
Traffic goes over loopback only."""

from __future__ import annotations

import errno
import random
import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from mip4.core.actions import SendUdp
from mip4.core.events import UdpReceived
from mip4.io.executor import LinuxExecutor
from mip4.io.mmsg import BatchSender
from mip4.io.rawsock import open_udp_control, recv_udp, send_udp

LO, LO2 = IPv4Address("127.0.0.1"), IPv4Address("127.0.0.2")
TOO_LONG = 65_520  # fits a slot; longer than a UDP datagram over IPv4 can be (EMSGSIZE)


def _received(rx: socket.socket, expected: int) -> list[UdpReceived]:
    got: list[UdpReceived] = []
    deadline = time.monotonic() + 2.0
    while len(got) < expected and time.monotonic() < deadline:
        more = recv_udp(rx)
        got += more
        if not more:
            time.sleep(0.001)
    return got


def _seen(events: list[UdpReceived]) -> list[tuple[object, ...]]:
    return [(e.payload, e.src, e.dst, e.sport, e.dport, e.ttl, e.interface) for e in events]


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, list[socket.socket]]]:
    rx = open_udp_control(address="0.0.0.0", port=0)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    tx = [open_udp_control(address="0.0.0.0", port=0) for _ in range(2)]
    yield rx, tx
    for s in (rx, *tx):
        s.close()


@pytest.mark.parametrize("seed", range(8))
def test_batches_send_what_send_udp_sends_in_order(
    sockets: tuple[socket.socket, list[socket.socket]], seed: int
) -> None:
    rx, tx = sockets
    port = rx.getsockname()[1]
    rng = random.Random(seed)
    batch = BatchSender(slots=rng.choice([1, 4, 64]))
    for _ in range(5):
        sends = [
            (
                rng.randrange(2),
                rng.randbytes(rng.choice([0, 1, 47, 48, 100, 1400, 9000])),
                rng.choice([LO, LO2]),
                rng.choice([None, LO]),
                rng.choice([0, 1]),  # lo is 1
                rng.choice([None, 1, 64, 255]),
            )
            for _ in range(rng.randrange(1, 80))
        ]
        for which, payload, dst, src, ifindex, ttl in sends:
            send_udp(tx[which], payload, dst, port, src=src, ifindex=ifindex, ttl=ttl)
        direct = _received(rx, len(sends))
        failed: list[tuple[object, OSError]] = []
        for n, (which, payload, dst, src, ifindex, ttl) in enumerate(sends):
            kw = {"src": src, "ifindex": ifindex, "ttl": ttl}
            if not batch.add(tx[which], n, payload, dst, port, **kw):  # type: ignore[arg-type]
                assert len(batch) == batch.slots or tx[which] is not batch.sock
                failed += batch.flush()
                assert batch.add(tx[which], n, payload, dst, port, **kw)  # type: ignore[arg-type]
        failed += batch.flush()
        assert failed == [] and len(batch) == 0
        batched = _received(rx, len(sends))
        assert _seen(batched) == _seen(direct)
        assert [e.payload for e in batched] == [s[1] for s in sends]
    assert recv_udp(rx) == []


def test_a_batch_holds_one_socket_and_what_fits() -> None:
    a, b = (open_udp_control(address="127.0.0.1", port=0) for _ in range(2))
    try:
        batch = BatchSender(slots=2)
        assert batch.add(a, 1, b"x", LO, 9)
        assert not batch.add(b, 2, b"x", LO, 9)  # another socket
        assert not batch.add(a, 2, b"x" * 65_536, LO, 9)  # longer than a slot
        assert batch.add(a, 2, b"x", LO, 9)
        assert not batch.add(a, 3, b"x", LO, 9)  # full
        assert batch.items == [1, 2]
    finally:
        a.close()
        b.close()


def test_a_failed_datagram_fails_alone_with_the_error_send_udp_raises(
    sockets: tuple[socket.socket, list[socket.socket]],
) -> None:
    rx, (tx, _other) = sockets
    port = rx.getsockname()[1]
    with pytest.raises(OSError) as direct:
        send_udp(tx, b"y" * TOO_LONG, LO, port)
    batch = BatchSender()
    for n, payload in enumerate([b"a", b"y" * TOO_LONG, b"b", b"y" * TOO_LONG, b"c"]):
        assert batch.add(tx, n, payload, LO, port)
    failed = batch.flush()
    assert [(item, type(e), e.errno) for item, e in failed] == [
        (1, type(direct.value), direct.value.errno),
        (3, type(direct.value), direct.value.errno),
    ]
    assert [e.payload for e in _received(rx, 3)] == [b"a", b"b", b"c"]
    # a batch of one goes out through send_udp itself: the same error
    assert batch.add(tx, "alone", b"y" * TOO_LONG, LO, port)
    ((item, alone),) = batch.flush()
    assert (item, type(alone), alone.errno) == ("alone", type(direct.value), direct.value.errno)
    assert recv_udp(rx) == []


def test_the_executor_sends_a_held_reads_datagrams_when_the_hold_ends(
    sockets: tuple[socket.socket, list[socket.socket]],
) -> None:
    rx, (tx, _other) = sockets
    port, sport = rx.getsockname()[1], tx.getsockname()[1]
    sends = [
        SendUdp(dst=LO, payload=p, dport=port, sport=sport, src=LO, ttl=t)
        for p, t in ((b"one", None), (b"y" * TOO_LONG, None), (b"two", 9), (b"three", 255))
    ]
    for batch_udp in (True, False):
        ex = LinuxExecutor(udp=tx, batch_udp=batch_udp)
        ex.hold_actions()
        errors: list[OSError] = []
        for a in sends:
            try:
                ex.execute(a)
            except OSError as e:
                errors.append(e)
        # loopback delivers while sendmsg runs: a datagram sent at once is there already
        early = recv_udp(rx)
        failed = ex.release_actions()
        late = _received(rx, 3 - len(early))
        if batch_udp:
            assert early == [] and errors == []
            assert [(a, getattr(e, "errno", None)) for a, e in failed] == [
                (sends[1], errno.EMSGSIZE)
            ]
        else:
            assert late == [] and failed == [] and [e.errno for e in errors] == [errno.EMSGSIZE]
        assert [(e.payload, e.ttl) for e in early + late] == [
            (b"one", 64),
            (b"two", 9),
            (b"three", 255),
        ]
        # not holding: at once
        ex.execute(sends[0])
        assert [e.payload for e in recv_udp(rx)] == [b"one"]


def test_a_small_read_sends_at_once_and_leaves_the_setting_alone(
    sockets: tuple[socket.socket, list[socket.socket]],
) -> None:
    rx, (tx, _other) = sockets
    port, sport = rx.getsockname()[1], tx.getsockname()[1]
    ex = LinuxExecutor(udp=tx, batch_udp=True)
    for gather in (False, True, False):
        ex.gather_udp = gather  # what the reader sets for each read
        ex.hold_actions()
        ex.execute(SendUdp(dst=LO, payload=b"%d" % gather, dport=port, sport=sport, src=LO))
        early = recv_udp(rx)
        assert ex.release_actions() == []
        late = _received(rx, 1 - len(early))
        assert ([e.payload for e in early], [e.payload for e in late]) == (
            ([], [b"1"]) if gather else ([b"0"], [])
        )
        assert ex.batch_udp  # the daemon's setting is not the per-read switch


def test_without_sendmmsg_the_executor_sends_one_by_one_and_asks_once(
    sockets: tuple[socket.socket, list[socket.socket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mip4.io.executor as executor_module

    made: list[int] = []

    def no_sendmmsg() -> BatchSender:
        made.append(1)
        raise OSError(errno.ENOSYS, "no sendmmsg in this libc")

    monkeypatch.setattr(executor_module, "BatchSender", no_sendmmsg)
    rx, (tx, _other) = sockets
    port, sport = rx.getsockname()[1], tx.getsockname()[1]
    ex = LinuxExecutor(udp=tx, batch_udp=True)
    for n in range(3):  # three large reads
        ex.gather_udp = True
        ex.hold_actions()
        for k in range(2):
            ex.execute(SendUdp(dst=LO, payload=b"%d.%d" % (n, k), dport=port, sport=sport))
            assert [e.payload for e in recv_udp(rx)] == [b"%d.%d" % (n, k)]  # at once
        assert ex.release_actions() == []
    assert made == [1] and not ex.batch_udp
