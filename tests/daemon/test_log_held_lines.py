"""Issue 13: while the daemon's executor holds a read's actions, the engine's log lines
(:func:`mip4.daemon.logs.engine_event`) are held and written by one ``write`` at the end of
the read -- the same bytes as one by one, in the order they were made, also when a line
goes through :mod:`logging` meanwhile (it writes the held ones first)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from enum import Enum
from ipaddress import IPv4Address, IPv4Network

import pytest

from mip4.core.actions import Action, Log
from mip4.daemon import logs
from mip4.daemon.config import LogFormat, LogLevel
from mip4.daemon.driving import DaemonExecutor


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger("mip4")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    logs._held = None


def _records(n: int) -> list[Action]:
    return [
        Log("ha.registration", {"home_address": IPv4Address(0x0A010010 + i), "code": 0})
        for i in range(n)
    ]


class Inner:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def execute(self, action: Action) -> None:
        self.calls.append("execute")

    def hold_actions(self) -> None:
        self.calls.append("hold")

    def release_actions(self) -> list[tuple[Action, Exception]]:
        self.calls.append("release")
        return []


def _run(held: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    monkeypatch.setattr(time, "time", lambda: 1_765_000_000.5)
    stream = CountingStream()
    logs.setup(LogFormat.TEXT, LogLevel.INFO, "ha", "bench", stream)
    inner = Inner()
    ex = DaemonExecutor(inner)
    if held:
        ex.hold_actions()
    for action in _records(3):
        ex.execute(action)
    logs.log.warning("in between")  # through logging: the held lines go first
    for action in _records(6)[3:]:
        ex.execute(action)
    if held:
        assert stream.getvalue().count("\n") == 4  # three written before the warning, with it
        assert ex.release_actions() == []
        assert inner.calls == ["hold", "release"]
    return stream.getvalue(), stream.writes


def test_held_lines_are_the_same_bytes_in_the_same_order_in_fewer_writes(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    one_by_one, writes_alone = _run(False, monkeypatch)
    together, writes_held = _run(True, monkeypatch)
    assert together == one_by_one
    assert one_by_one.count("\n") == 7
    assert writes_alone == 7 and writes_held == 3  # three held, the warning, three held
    assert logs._held is None  # released: written as they come again


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        IPv4Address("10.1.0.16"),
        0,
        -7,
        600,
        True,
        False,
        None,
        "register",
        "",
        'quo"te',
        "a b",
        "a=b",
        "é ü",
        1.5,
        [1, IPv4Address("10.0.0.1")],
        {"a": None},
        b"\x01\x02",
        IPv4Network("10.0.0.0/24"),
        Colour.RED,
    ],
)
def test_a_text_line_writes_each_field_as_text_value_does(value: object) -> None:
    """The text line's fields with their usual cases first (addresses, integers, None,
    strings kept): ``k=_text_value(v)`` for every kind, the same string twice too."""
    for _ in range(2):
        line = logs.render(
            LogFormat.TEXT, role="ha", name="n", event="e", fields={"k": value}, when=0.0
        )
        assert line.split(" ", 3)[3] == f"k={logs._text_value(value)}"
