"""The daemon executor's fast hand-on (issue 13, the foreign agent's relay path): with no
AAA configured, the usual actions go to the inner executor after one test; log records,
AAA actions, a visitor's removal with AAA, and subclasses still take the general path."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, cast

from mip4.core.actions import (
    AaaRequest,
    AccountingRecord,
    Action,
    InstallVisitor,
    Log,
    RemoveVisitor,
    SendUdp,
)
from mip4.daemon import driving
from mip4.daemon.driving import DaemonExecutor
from mip4.io.radius import AaaShell

A = IPv4Address("10.74.0.1")
H = IPv4Address("10.74.1.5")


@dataclass
class Inner:
    seen: list[Action] = field(default_factory=list)

    def execute(self, action: Action) -> None:
        self.seen.append(action)


@dataclass
class FakeAaa:
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def execute(self, action: Any) -> None:
        self.calls.append(("execute", action))

    def visitor_leaving(self, home: IPv4Address) -> None:
        self.calls.append(("leaving", home))


@dataclass(frozen=True)
class QuietSend(SendUdp):
    """A subclass: not in the fast set, handed on by the general path."""


def _actions() -> list[Action]:
    return [
        SendUdp(A, b"\x03"),
        InstallVisitor(H, "eth0", b"\x02" * 6, A, A),
        Log("mn.reply", {"code": 0}, 10),
        RemoveVisitor(H, "eth0"),
        QuietSend(A, b"\x04"),
        Log("fa.request_relayed", {}, 10),
    ]


def test_without_aaa_every_action_but_the_log_records_goes_on_in_order() -> None:
    inner = Inner()
    ex = DaemonExecutor(inner)
    actions = _actions()
    for a in actions:
        ex.execute(a)
    assert inner.seen == [a for a in actions if not isinstance(a, Log)]
    assert ex.replies[0] == 1  # the log record was read, not handed on


def test_with_aaa_its_actions_and_a_visitors_removal_take_the_general_path() -> None:
    inner, aaa = Inner(), FakeAaa()
    ex = DaemonExecutor(inner)
    ex.aaa = cast(AaaShell, aaa)  # set after construction, as the daemon does
    request = object.__new__(AaaRequest)
    record = object.__new__(AccountingRecord)
    actions = [*_actions(), request, record]
    order: list[str] = []
    inner_execute = inner.execute

    def watched(action: Action) -> None:
        order.append(type(action).__name__)
        inner_execute(action)

    inner.execute = watched  # type: ignore[method-assign]
    for a in actions:
        if isinstance(a, RemoveVisitor):
            order.append("remove?")
        ex.execute(a)
    assert aaa.calls == [("leaving", H), ("execute", request), ("execute", record)]
    assert inner.seen == [a for a in _actions() if not isinstance(a, Log)]
    # the visitor's final counts are kept before the removal is carried out
    i = order.index("remove?")
    assert order[i : i + 2] == ["remove?", "RemoveVisitor"]


def test_the_fast_set_holds_no_type_the_daemon_reads() -> None:
    for kind in (Log, AaaRequest, AccountingRecord):
        assert kind not in driving._PASSED_ON
