"""A TUN device inside a namespace: the kernel's packets come out of it, ours go in."""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest

from mip4.io.netns import Netns, entered, netns_exec
from mip4.io.rawsock import icmp_with_checksum, ping
from mip4.io.tun import Tun
from mip4.wire.ip import internet_checksum

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]


def _wait_readable(fd: int, timeout: float = 2.0) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def test_tun_is_created_in_the_namespace_without_ipv6(make_netns: MakeNetns, prefix: str) -> None:
    ns = make_netns("a")
    name = f"{prefix}t"
    with Tun(name, ns.name, address="10.77.0.1/24") as tun:
        links = netns_exec(ns.name, ["ip", "-o", "link", "show", name]).stdout
        assert "UP" in links and "mtu 1472" in links
        assert "inet 10.77.0.1/24" in netns_exec(ns.name, ["ip", "-o", "addr"]).stdout
        assert netns_exec(ns.name, ["ip", "-6", "-o", "addr", "show", "dev", name]).stdout == ""
        assert ns.read_sysctl(f"net.ipv6.conf.{name}.disable_ipv6") == "1"
        # not in the namespace this process runs in
        assert name not in [n for _, n in socket.if_nameindex()]
        assert tun.read() is None  # non-blocking, nothing queued
    # closing the descriptor removes the device
    assert name not in netns_exec(ns.name, ["ip", "-o", "link"]).stdout


def test_tun_reads_requests_and_writes_replies(make_netns: MakeNetns, prefix: str) -> None:
    """The kernel routes an echo request into the TUN device; we answer by writing an echo
    reply into it, and the kernel's ping socket receives it."""
    ns = make_netns("a")
    with Tun(f"{prefix}t", ns.name, address="10.77.0.1/24") as tun:
        result: list[list[float]] = []
        pinger = threading.Thread(
            target=lambda: result.append(ping("10.77.0.2", netns=ns.name, count=1, timeout=3))
        )
        pinger.start()
        answered = 0
        deadline = time.monotonic() + 5
        while not answered and time.monotonic() < deadline:
            if not _wait_readable(tun.fd, 0.5):
                continue
            for pkt in tun.read_batch():
                if pkt[9] != 1 or pkt[20] != 8:
                    continue
                reply = bytearray(pkt)
                reply[12:16], reply[16:20] = pkt[16:20], pkt[12:16]
                reply[10:12] = b"\0\0"
                reply[10:12] = internet_checksum(reply[:20]).to_bytes(2, "big")
                reply[20:] = icmp_with_checksum(b"\0" + bytes(reply[21:]))
                assert tun.write(reply) == len(reply)
                answered += 1
        pinger.join(5)
        assert answered == 1
        assert len(result) == 1 and len(result[0]) == 1


def test_read_batch_drains_every_queued_datagram(make_netns: MakeNetns, prefix: str) -> None:
    ns = make_netns("a")
    with Tun(f"{prefix}t", ns.name, address="10.77.0.1/24") as tun:
        with entered(ns.name):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            for i in range(20):
                s.sendto(struct.pack("!I", i), ("10.77.0.9", 9999))
        assert _wait_readable(tun.fd)
        time.sleep(0.05)
        got = tun.read_batch(limit=256)
        assert [struct.unpack("!I", p[28:32])[0] for p in got] == list(range(20))
        assert all(p[0] >> 4 == 4 for p in got)
        assert tun.read_batch() == []
        # a limit bounds one drain
        with entered(ns.name):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            for _ in range(5):
                s.sendto(b"x", ("10.77.0.9", 9999))
        time.sleep(0.05)
        assert len(tun.read_batch(limit=3)) == 3
        assert len(tun.read_batch(limit=3)) == 2


def test_interface_name_length_is_checked() -> None:
    with pytest.raises(ValueError, match="longer than 15"):
        Tun("x" * 16)
