"""``recv_udp(receiver=BatchReceiver(sock))`` -- one ``recvmmsg`` per read (issue 13: a
relaying foreign agent reads two datagrams per registration) -- gives what the ``recvmsg``
loop gives: the same events for the same datagrams (bytes, sources, ports, arrival
interface, destination, TTL), the same bound per read, what a socket without the control
messages gives, and the same errors. Each burst is sent twice and read once by each.
Traffic goes over loopback only."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from mip4.core.events import UdpReceived
from mip4.io.mmsg import BatchReceiver
from mip4.io.rawsock import (
    IP_PKTINFO,
    IP_RECVTTL,
    open_udp_control,
    recv_udp,
    send_udp,
)

LO = IPv4Address("127.0.0.1")


def _send_all(tx: list[socket.socket], burst: list[tuple[int, bytes, int]], port: int) -> None:
    for which, payload, ttl in burst:
        send_udp(tx[which], payload, LO, port, src=LO, ttl=ttl)


def _read_all(
    sock: socket.socket, expected: int, limit: int = 64, receiver: BatchReceiver | None = None
) -> list[list[UdpReceived]]:
    """``recv_udp`` until ``expected`` events came (bounded), each read's events apart."""
    reads: list[list[UdpReceived]] = []
    deadline = time.monotonic() + 2.0
    while sum(map(len, reads)) < expected and time.monotonic() < deadline:
        got = recv_udp(sock, limit=limit, receiver=receiver)
        if got:
            reads.append(got)
        else:
            time.sleep(0.001)
    return reads


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, list[socket.socket]]]:
    rx = open_udp_control(address="127.0.0.1", port=0)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    tx = [open_udp_control(address="127.0.0.1", port=0) for _ in range(3)]
    yield rx, tx
    for s in (rx, *tx):
        s.close()


@pytest.mark.parametrize("seed", range(8))
def test_batch_reads_give_the_events_of_the_recvmsg_loop(
    sockets: tuple[socket.socket, list[socket.socket]], seed: int
) -> None:
    rx, tx = sockets
    port = rx.getsockname()[1]
    rng = random.Random(seed)
    receiver = BatchReceiver(rx, slots=rng.choice([1, 3, 16, 64]))
    for _ in range(6):
        burst = [
            (
                rng.randrange(3),
                rng.randbytes(rng.choice([0, 1, 2, 47, 48, 100, 1400, 9000, 65000])),
                rng.randrange(1, 256),
            )
            for _ in range(rng.randrange(1, 90))
        ]
        limit = rng.choice([1, 2, 7, 64, 100])
        _send_all(tx, burst, port)
        loop = _read_all(rx, len(burst), limit)
        _send_all(tx, burst, port)
        batch = _read_all(rx, len(burst), limit, receiver)
        events = [e for r in batch for e in r]
        assert [vars(e) for e in events] == [vars(e) for r in loop for e in r]
        assert [(e.payload, e.ttl, e.sport) for e in events] == [
            (p, t, tx[w].getsockname()[1]) for w, p, t in burst
        ]
        assert {(e.src, e.dst, e.dport, e.interface) for e in events} == {(LO, LO, port, "lo")}
        # no read holds more than the limit or the receiver's slots
        assert max(map(len, batch)) <= min(limit, receiver.slots)
    assert recv_udp(rx, receiver=receiver) == []


@pytest.mark.parametrize("options", [(), (IP_PKTINFO,), (IP_RECVTTL,)])
def test_a_socket_without_the_control_messages_reads_as_the_recvmsg_loop(
    options: tuple[int, ...],
) -> None:
    """Without IP_PKTINFO: interface "" and destination 0.0.0.0; without IP_RECVTTL: TTL 0
    (the control messages read one by one where they are not the usual pair)."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = open_udp_control(address="127.0.0.1", port=0)
    try:
        for option in options:
            rx.setsockopt(socket.IPPROTO_IP, option, 1)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        port = rx.getsockname()[1]
        receiver = BatchReceiver(rx)
        burst = [(0, b"m%d" % i, 10 + i) for i in range(5)]
        _send_all([tx], burst, port)
        loop = [e for r in _read_all(rx, 5) for e in r]
        _send_all([tx], burst, port)
        batch = [e for r in _read_all(rx, 5, receiver=receiver) for e in r]
        assert [vars(e) for e in batch] == [vars(e) for e in loop]
        expect_ttl = [10 + i for i in range(5)] if IP_RECVTTL in options else [0] * 5
        assert [e.ttl for e in batch] == expect_ttl
        if IP_PKTINFO in options:
            assert {(e.dst, e.interface) for e in batch} == {(LO, "lo")}
        else:
            assert {(e.dst, e.interface) for e in batch} == {(IPv4Address(0), "")}
    finally:
        rx.close()
        tx.close()


def test_an_error_is_raised_as_recvmsg_raises_it() -> None:
    """A connected socket whose datagram met a closed port: the ICMP error is the next
    read's, ``ConnectionRefusedError`` from both readers; then the socket reads empty."""
    for batch in (False, True):
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.bind(("127.0.0.1", 0))
        gone = closed.getsockname()[1]
        closed.close()
        sock = open_udp_control(address="127.0.0.1", port=0)
        try:
            sock.connect(("127.0.0.1", gone))
            receiver = BatchReceiver(sock) if batch else None
            sock.send(b"x")
            deadline = time.monotonic() + 2.0
            with pytest.raises(ConnectionRefusedError):
                while time.monotonic() < deadline:
                    recv_udp(sock, receiver=receiver)
                    time.sleep(0.001)
            assert recv_udp(sock, receiver=receiver) == []
        finally:
            sock.close()


def test_the_datagram_buffers_are_resident_only_where_written() -> None:
    """64 slots of 65,535 bytes each are 4 MiB of address space: made zeroed (a bytearray)
    all of it would be resident in every daemon, for every control socket; anonymous
    memory is backed only where the kernel writes a datagram."""

    def rss_kib() -> int:
        with open("/proc/self/status") as f:
            return int(f.read().split("VmRSS:")[1].split()[0])

    sock = open_udp_control(address="127.0.0.1", port=0)
    try:
        before = rss_kib()
        receivers = [BatchReceiver(sock, slots=64) for _ in range(16)]  # 64 MiB of slots
        grown = rss_kib() - before
        assert grown < 16 * 1024, f"{grown} KiB resident for {len(receivers)} receivers"
    finally:
        sock.close()
