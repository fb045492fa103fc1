"""InterfaceNames: an arrival interface's name asked of the kernel once, kept across reads
until a link notification is read (issue 13: one SIOCGIFNAME per read before)."""

from __future__ import annotations

import socket

import pytest

from mip4.io import rawsock
from mip4.io.rawsock import InterfaceNames


def test_names_are_asked_once_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = {3: "eth0", 4: "eth1"}
    asked: list[int] = []

    def if_name(sock: socket.socket, index: int) -> str:
        asked.append(index)
        return kernel[index]

    monkeypatch.setattr(rawsock, "if_name", if_name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        names = InterfaceNames(sock)
        assert [names(3), names(4), names(3), names(4), names(3)] == [
            "eth0",
            "eth1",
            "eth0",
            "eth1",
            "eth0",
        ]
        assert asked == [3, 4]
        kernel[3] = "renamed"  # a link notification comes: the owner clears
        names.clear()
        assert names(3) == "renamed" and names(4) == "eth1"
        assert asked == [3, 4, 3, 4]


def test_at_most_limit_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rawsock, "if_name", lambda sock, index: f"if{index}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        names = InterfaceNames(sock, limit=8)
        for i in range(100):
            assert names(i) == f"if{i}"
            assert len(names.names) <= 8


def test_the_real_name_of_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        names = InterfaceNames(sock)
        index = socket.if_nametoindex("lo")
        assert names(index) == "lo" == rawsock.if_name(sock, index)
