"""Flood steering (issue 13, ``bpf/mip4_steer.bpf.c``, :mod:`mip4.io.bpf.steer`): two
``SO_REUSEPORT`` sockets on one port, the ``SK_REUSEPORT`` program between them. Real
sockets on the loopback of a namespace the test creates; datagrams from 127.0.0.2 and
127.0.0.3 (the whole of 127/8 is on ``lo``)."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.io.bpf import steer
from mip4.io.bpf.steer import (
    TRUSTED_SOURCES,
    Steering,
    open_reuseport_socket,
    socket_drops,
)
from mip4.io.netns import Netns, entered
from mip4.io.runtime import NodeIO

PORT = 434
A, B = IPv4Address("127.0.0.2"), IPv4Address("127.0.0.3")


@pytest.fixture
def ns(make_netns: Callable[[str], Netns]) -> Netns:
    n = make_netns("steer")
    n.set_up("lo")
    return n


@pytest.fixture
def steering(ns: Netns) -> Iterator[Steering]:
    s = Steering.open(ns.name, port=PORT)
    try:
        yield s
    finally:
        s.close()


def send(ns: Netns, src: IPv4Address, payload: bytes, count: int = 1) -> None:
    with entered(ns.name):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.bind((str(src), 0))
        for _ in range(count):
            sock.sendto(payload, ("127.0.0.1", PORT))


def drain(sock: socket.socket) -> list[tuple[bytes, str]]:
    out = []
    for _ in range(10_000):
        try:
            data, (host, _port) = sock.recvfrom(100)
        except BlockingIOError:
            break
        out.append((data, host))
    return out


def test_untrusted_sources_go_to_the_general_socket_and_a_trusted_one_moves(
    ns: Netns, steering: Steering
) -> None:
    send(ns, A, b"a1")
    send(ns, B, b"b1")
    assert drain(steering.trusted) == []
    assert sorted(drain(steering.general)) == [(b"a1", str(A)), (b"b1", str(B))]
    assert not steering.is_trusted(A)

    steering.trust(A)  # A was sent an accepting reply
    assert steering.is_trusted(A) and not steering.is_trusted(B)
    send(ns, A, b"a2", count=3)
    send(ns, B, b"b2", count=2)
    assert drain(steering.trusted) == [(b"a2", str(A))] * 3
    assert drain(steering.general) == [(b"b2", str(B))] * 2
    assert steering.program.hits(A.packed) == 3  # the program counts what it steered


def test_trusting_again_costs_nothing_and_keeps_the_count(ns: Netns, steering: Steering) -> None:
    steering.trust(A)
    send(ns, A, b"a", count=2)
    steering.trust(A)
    assert steering.marked == 1
    assert steering.program.hits(A.packed) == 2  # not reset by a second update
    assert steering.program.trusted_count() == 1
    assert steering.snapshot() == {
        "on": True,
        "trusted_sources": 1,
        "map_size": TRUSTED_SOURCES,
        "trusted_drops": 0,
        "general_drops": 0,
    }


def test_drops_are_counted_per_socket(ns: Netns, steering: Steering) -> None:
    # a small general buffer overflows; the trusted socket loses nothing
    steering.general.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    steering.trust(A)
    send(ns, B, b"b" * 200, count=200)
    send(ns, A, b"a", count=5)
    snap = steering.snapshot()
    kept = len(drain(steering.general))
    assert snap["general_drops"] > 0 and snap["general_drops"] + kept == 200
    assert snap["trusted_drops"] == 0 and len(drain(steering.trusted)) == 5


def test_the_map_and_its_mirror_are_bounded(steering: Steering) -> None:
    # the kernel's LRU map never holds more than its size, and the newest stays
    base = int(IPv4Address("10.0.0.0"))
    extra = 512
    for i in range(TRUSTED_SOURCES + extra):
        steering.program.add_trusted((base + i).to_bytes(4, "big"))
    assert steering.program.trusted_count() <= TRUSTED_SOURCES
    assert steering.program.hits((base + TRUSTED_SOURCES + extra - 1).to_bytes(4, "big")) == 0
    # the Python mirror is cleared when it reaches the map's size
    steering.capacity = 4
    for i in range(6):
        steering.trust(IPv4Address(base + 1_000_000 + i))
    assert len(steering._known) == 2  # cleared at 4, then two more
    assert steering.marked == 6
    assert steering.snapshot()["trusted_sources"] == 4  # at most the map's size


def _bpf_fds() -> list[str]:
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("anon_inode:bpf"):
            fds.append(target)
    return sorted(fds)


def _pins() -> set[Path]:
    root = Path("/sys/fs/bpf")
    return set(root.rglob("*")) if root.is_dir() else set()


def test_a_clean_close_leaves_no_program_map_socket_or_pin(ns: Netns) -> None:
    fds, pins = _bpf_fds(), _pins()
    s = Steering.open(ns.name, port=PORT)
    assert len(_bpf_fds()) > len(fds)  # the program and its maps are open
    s.trust(A)
    s.close()
    assert _bpf_fds() == fds
    assert _pins() == pins
    # the port is free again: a socket without SO_REUSEPORT binds it (no group left)
    with entered(ns.name):
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with plain:
        plain.bind(("0.0.0.0", PORT))


def test_a_third_socket_of_the_group_gets_nothing_steered(ns: Netns, steering: Steering) -> None:
    # only the two sockets of the array are chosen (a stray reuseport socket on the port
    # would otherwise take a share of the trusted traffic)
    stray = open_reuseport_socket(ns.name, port=PORT)
    with stray:
        steering.trust(A)
        send(ns, A, b"a", count=20)
        send(ns, B, b"b", count=20)
        assert drain(stray) == []
        assert len(drain(steering.trusted)) == 20
        assert len(drain(steering.general)) == 20


def test_node_io_opens_the_pair_and_replies_leave_from_the_trusted_socket(ns: Netns) -> None:
    io = NodeIO.open(ns.name, ["lo"], port=PORT, flood_steering=True)
    try:
        assert io.steering is not None and io.steering_off is None
        assert io.udp is io.steering.trusted  # the executor sends from it
        for sock in (io.steering.trusted, io.steering.general):
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 1 << 21
    finally:
        io.close()
    with entered(ns.name):
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with plain:
        plain.bind(("0.0.0.0", PORT))  # both closed: no group left on the port


def test_where_the_program_cannot_load_one_socket_and_one_line_say_why(
    ns: Netns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "missing.bpf.o"
    monkeypatch.setattr(steer, "object_path", lambda: missing)
    fds = _bpf_fds()
    with caplog.at_level(logging.WARNING):
        io = NodeIO.open(ns.name, ["lo"], port=PORT, flood_steering=True)
    try:
        assert io.steering is None
        assert io.steering_off is not None and str(missing) in io.steering_off
        lines = [r.getMessage() for r in caplog.records if "flood steering" in r.getMessage()]
        assert len(lines) == 1 and lines[0].startswith("flood steering off")
        assert "\n" not in lines[0]
        assert io.udp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0  # as without steering
    finally:
        io.close()
    assert _bpf_fds() == fds  # nothing left open by the failed attempt


def test_a_broadcast_request_is_read_once_from_the_trusted_socket(
    make_netns: Callable[[str], Netns],
) -> None:
    # the kernel copies a broadcast to every socket of the port and runs no reuseport
    # program for it: the general socket's filter refuses its copy (dynamic home agent
    # discovery, RFC 5944 §3.6.1.2, must not be handled twice)
    ha, peer = make_netns("h"), make_netns("p")
    ha.add_veth("h0", "p0", peer)
    ha.add_address("h0", "10.76.0.1/24")
    peer.add_address("p0", "10.76.0.2/24")
    ha.set_up("h0")
    peer.set_up("p0")
    assert ha.wait_up("h0") and peer.wait_up("p0")
    s = Steering.open(ha.name, port=PORT)
    try:
        with entered(peer.name):
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            client.bind(("10.76.0.2", 0))
            for dst in ("10.76.0.255", "255.255.255.255", "10.76.0.1"):
                client.sendto(dst.encode(), (dst, PORT))
        received: dict[str, list[bytes]] = {"trusted": [], "general": []}
        for _ in range(200):  # bounded: until the three arrived (veth delivery is async)
            received["trusted"] += [d for d, _h in drain(s.trusted)]
            received["general"] += [d for d, _h in drain(s.general)]
            if len(received["trusted"]) + len(received["general"]) >= 3:
                break
            time.sleep(0.01)
        assert sorted(received["trusted"]) == [b"10.76.0.255", b"255.255.255.255"]
        assert received["general"] == [b"10.76.0.1"]  # unicast, untrusted source
        assert socket_drops(s.general) == 2 and socket_drops(s.trusted) == 0
    finally:
        s.close()


def test_turned_off_one_socket_and_the_reason_for_status(ns: Netns) -> None:
    io = NodeIO.open(ns.name, ["lo"], port=PORT, flood_steering=False)
    try:
        assert io.steering is None and io.steering_off == "[io] flood_steering = false"
        assert io.udp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        io.close()
