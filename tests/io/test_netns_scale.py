"""Netns and its undo stacks at scale (issue 13), against the counting netlink stand-in of
``test_executor``: a proxy neighbour entry per mobile node away from home is found,
removed and undone without walking the others."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import cast

import pytest

from mip4.io.netns import Netns
from mip4.io.nlthread import NetlinkThread
from mip4.io.undo import ProxyNeighbourRecord, UndoStack

from .test_executor import CountingNetlink


def _netns() -> tuple[Netns, CountingNetlink]:
    ns = Netns(None)
    nl = CountingNetlink()
    ns._ipr = cast(NetlinkThread, nl)
    return ns, nl


def test_proxy_entries_are_indexed_not_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    ns, nl = _netns()
    scans: list[int] = []
    real = UndoStack.discard

    def counted(self: UndoStack, match: object) -> object:
        scans.append(len(self))
        return real(self, match)  # type: ignore[arg-type]

    monkeypatch.setattr(UndoStack, "discard", counted)
    n = 20_000
    for i in range(n):
        ns.add_proxy_neighbour("eth0", IPv4Address(0x0A000000 + i))
    ns.add_proxy_neighbour("eth0", IPv4Address(0x0A000000))  # already answered for
    assert nl.calls["neigh replace"] == n
    assert len(ns.stack) == n
    for i in range(0, n, 2):
        ns.del_proxy_neighbour("eth0", IPv4Address(0x0A000000 + i))
    assert nl.calls["neigh del"] == n // 2
    assert scans == []  # no walk over the other entries
    assert len(ns.proxy_neighbours) == n // 2
    # undo takes the rest newest first, and the index forgets them
    errors = ns.undo()
    assert errors == [] and len(ns.stack) == 0
    dels = [kw["dst"] for kind, cmd, kw in nl.requests if (kind, cmd) == ("neigh", "del")]
    assert dels[n // 2 :] == [str(IPv4Address(0x0A000000 + i)) for i in range(n - 1, 0, -2)]
    ns.add_proxy_neighbour("eth0", IPv4Address(0x0A000001))  # made again after the undo
    assert nl.calls["neigh replace"] == n + 1


def test_an_undo_stack_forgets_and_undoes_in_constant_time_per_record() -> None:
    undone: list[object] = []
    stack = UndoStack(undone.append, None, "big")
    records = [ProxyNeighbourRecord(str(IPv4Address(i)), 2, "eth0") for i in range(1, 50_001)]
    for r in records:
        assert stack.push(r)
    assert not stack.push(ProxyNeighbourRecord("0.0.0.1", 2, "eth0"))
    for r in records[::2]:
        assert stack.forget(r)
    assert not stack.forget(records[0])
    assert stack.records == records[1::2]
    stack.callback("last", lambda: undone.append("callback"))
    assert stack.undo() == []
    assert undone == ["callback", *reversed(records[1::2])]
