"""``recv_udp(link_sources=tracker.table)`` answers each datagram's link source as
``link_src_of=tracker.get`` does (issue 13: the table looked up in line, no call per
datagram): found, missing, the same source on another port, a table changed between
reads. A socket stand-in hands over canned ``recvmsg`` results."""

from __future__ import annotations

import random
import socket
import struct
from ipaddress import IPv4Address
from typing import Any, cast

import pytest

from mip4.io.linktap import LinkSourceTracker
from mip4.io.rawsock import IP_PKTINFO, IP_TTL, PKTINFO, recv_udp


class Canned:
    def __init__(self, items: list[tuple[bytes, list[Any], int, tuple[str, int]]]) -> None:
        self.items = list(items)

    def recvmsg(self, size: int, space: int) -> tuple[bytes, list[Any], int, tuple[str, int]]:
        if not self.items:
            raise BlockingIOError
        return self.items.pop(0)


def _items(rng: random.Random, n: int) -> list[tuple[bytes, list[Any], int, tuple[str, int]]]:
    out = []
    for i in range(n):
        anc = [
            (socket.IPPROTO_IP, IP_PKTINFO, PKTINFO.pack(3, b"\x0a\x4f\0\x01", b"\0" * 4)),
            (socket.IPPROTO_IP, IP_TTL, struct.pack("=i", 64)),
        ]
        host = f"10.79.{rng.randrange(2)}.{rng.randrange(1, 6)}"
        out.append((bytes([i % 256]), anc, 0, (host, rng.choice((434, 435, 60000)))))
    return out


def _tracker(rng: random.Random) -> LinkSourceTracker:
    table: dict[int, tuple[str, bytes]] = {}
    for _ in range(12):
        src = IPv4Address(f"10.79.{rng.randrange(2)}.{rng.randrange(1, 6)}")
        sport = rng.choice((434, 435, 60000))
        table[LinkSourceTracker.key(src, sport)] = ("eth0", rng.randbytes(6))
    return LinkSourceTracker(cast(socket.socket, None), table)


@pytest.mark.parametrize("seed", range(20))
def test_link_sources_answer_as_the_trackers_get(seed: int) -> None:
    rng = random.Random(seed)
    tracker = _tracker(rng)
    for _read in range(3):
        items = _items(rng, 40)
        kw: dict[str, Any] = {"ifname_of": lambda i: f"if{i}", "dport": 434}
        inline = recv_udp(cast(socket.socket, Canned(items)), link_sources=tracker.table, **kw)
        called = recv_udp(cast(socket.socket, Canned(items)), link_src_of=tracker.get, **kw)
        assert inline == called
        assert [e.link_src for e in inline] == [tracker.get(e.src, e.sport) for e in inline]
        assert any(e.link_src is None for e in inline) and any(e.link_src for e in inline)
        # the tracker learns and forgets between reads, in the same dict
        for key in rng.sample(sorted(tracker.table), 3):
            del tracker.table[key]
        tracker.table[LinkSourceTracker.key(IPv4Address("10.79.0.1"), 434)] = ("eth1", b"\1" * 6)


def test_not_both() -> None:
    with pytest.raises(ValueError):
        recv_udp(
            cast(socket.socket, Canned([])),
            dport=434,
            link_src_of=lambda src, sport: None,
            link_sources={},
        )
