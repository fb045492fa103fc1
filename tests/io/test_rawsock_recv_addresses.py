"""``recv_udp`` looks its addresses up in the shared table before calling ``_address``
(issue 13): every datagram's source and destination are the addresses it carries, whether
they were in the table or not (``0.0.0.0`` included), one object per address, and the
table stays bounded. A socket stand-in hands over canned ``recvmsg`` results."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address
from typing import Any, cast

import pytest

from mip4.io import rawsock
from mip4.io.rawsock import IP_PKTINFO, IP_TTL, PKTINFO, recv_udp


class Canned:
    def __init__(self, items: list[tuple[bytes, list[Any], int, tuple[str, int]]]) -> None:
        self.items = list(items)

    def recvmsg(self, size: int, space: int) -> tuple[bytes, list[Any], int, tuple[str, int]]:
        if not self.items:
            raise BlockingIOError
        return self.items.pop(0)


def _item(i: int, host: str, dst: bytes) -> tuple[bytes, list[Any], int, tuple[str, int]]:
    anc = [
        (socket.IPPROTO_IP, IP_PKTINFO, PKTINFO.pack(3, dst, dst)),
        (socket.IPPROTO_IP, IP_TTL, struct.pack("=i", 60 + i % 5)),
    ]
    return bytes([i % 256]) * 3, anc, 0, (host, 1000 + i)


def _read(items: list[Any]) -> list[Any]:
    sock = cast(socket.socket, Canned(items))
    return recv_udp(sock, ifname_of=lambda i: f"if{i}", limit=1000, dport=434)


@pytest.mark.parametrize("fill_first", [False, True])
def test_sources_and_destinations_are_the_datagrams_own(
    fill_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rawsock, "_ADDRESSES", {})
    monkeypatch.setattr(rawsock, "_ADDRESSES_MAX", 16)  # cleared when full, mid-read
    hosts = ["0.0.0.0", "10.78.0.1", "10.78.0.2"] + [f"10.78.1.{k}" for k in range(30)]
    dsts = [b"\0\0\0\0", bytes([10, 78, 0, 9]), bytes([255, 255, 255, 255])]
    items = [_item(i, hosts[i % len(hosts)], dsts[i % 3]) for i in range(200)]
    if fill_first:
        _read(items[:40])
    events = _read(items)
    assert len(events) == 200
    for i, ev in enumerate(events):
        assert ev.src == IPv4Address(hosts[i % len(hosts)])
        assert ev.dst == IPv4Address(dsts[i % 3])
        assert (ev.sport, ev.dport, ev.interface, ev.ttl) == (1000 + i, 434, "if3", 60 + i % 5)
        assert ev.payload == bytes([i % 256]) * 3
    assert len(rawsock._ADDRESSES) <= 16
