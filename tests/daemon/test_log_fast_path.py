"""Issue 13: an engine's log record with the daemon's standard-error handler is written
without a ``logging.LogRecord`` (:func:`mip4.daemon.logs.engine_event`): the same line,
byte for byte, as through :mod:`logging`; any other arrangement (a filter, another
handler, a handler level above the record's, a capture) goes through :mod:`logging`."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

import pytest

from mip4.core.actions import Log
from mip4.daemon import logs
from mip4.daemon.config import LogFormat, LogLevel
from mip4.daemon.driving import DaemonExecutor

FIELDS: list[dict[str, object]] = [
    {
        "home_address": IPv4Address("10.1.0.16"),
        "care_of_address": IPv4Address("198.18.0.2"),
        "source": IPv4Address("198.18.0.2"),
        "code": 0,
        "lifetime": 600,
        "requested_lifetime": 600,
        "decision": "register",
        "encapsulation": "IPIP",
        "nai": None,
    },
    {"reason": "bad auth", "what": 'quo"te', "empty": "", "flag": True, "x": 1.5},
    {"list": [1, IPv4Address("10.0.0.1")], "net": IPv4Network("10.0.0.0/24"), "b": b"\x01\x02"},
    {"nested": {"a": {"b": None}}, "unicode": "é ü", "eq": "a=b"},
    {},
]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger("mip4")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


def _both(fmt: LogFormat, level: int, fields: dict[str, object]) -> tuple[str, str]:
    """(the fast line, logging's line) for one record at a fixed time."""
    out = []
    for fast in (True, False):
        stream = io.StringIO()
        logs.setup(fmt, LogLevel.DEBUG, "ha", "bench", stream)
        if fast:
            assert logs._line_stream(level) is not None
            logs.engine_event("ha.registration", level, fields)
        else:
            logs.log.log(
                level, "ha.registration", extra={"event": "ha.registration", "fields": dict(fields)}
            )
        out.append(stream.getvalue())
    return out[0], out[1]


@pytest.mark.parametrize("fmt", [LogFormat.TEXT, LogFormat.JSON])
def test_the_same_line_as_logging(
    fmt: LogFormat, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_765_000_000.123456)
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
        for fields in FIELDS:
            fast, slow = _both(fmt, level, fields)
            assert fast == slow and fast.endswith("\n") and fast.count("\n") == 1


def test_other_arrangements_go_through_logging(restore_logging: None) -> None:
    stream = io.StringIO()
    handler = logs.setup(LogFormat.TEXT, LogLevel.DEBUG, "ha", "bench", stream)
    assert logs._line_stream(logging.INFO) is not None
    handler.setLevel(logging.WARNING)
    assert logs._line_stream(logging.INFO) is None  # the handler would drop it
    assert logs._line_stream(logging.WARNING) is not None
    handler.setLevel(logging.NOTSET)
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return True

    handler.addFilter(keep)
    assert logs._line_stream(logging.INFO) is None
    logs.engine_event("ha.registration", logging.INFO, FIELDS[0])
    assert len(seen) == 1 and seen[0].fields == FIELDS[0]  # type: ignore[attr-defined]
    handler.removeFilter(keep)
    logs.log.addFilter(keep)
    assert logs._line_stream(logging.INFO) is None
    logs.log.removeFilter(keep)
    logging.getLogger("mip4").propagate = True  # e.g. a test's capture at the root
    assert logs._line_stream(logging.INFO) is None
    logging.getLogger("mip4").propagate = False
    logging.getLogger("mip4").addHandler(logging.NullHandler())
    assert logs._line_stream(logging.INFO) is None


def test_the_daemon_executor_writes_through_it(restore_logging: None) -> None:
    stream = io.StringIO()
    logs.setup(LogFormat.TEXT, LogLevel.INFO, "ha", "bench", stream)
    ex = DaemonExecutor(inner=None)  # type: ignore[arg-type]  # only Log actions here
    ex.execute(Log("ha.registration", FIELDS[0], logging.INFO))
    ex.execute(Log("ha.registration", FIELDS[0], logging.DEBUG))  # below the level
    (line,) = stream.getvalue().splitlines()
    assert "ha[bench] ha.registration home_address=10.1.0.16" in line
    assert line.endswith("encapsulation=IPIP nai=-")
