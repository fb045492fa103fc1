"""Issue 13: the daemon's executor asks the logger before it builds a record: a ``Log``
below the threshold (an unchanged renewal's ``ha.registration``, debug) costs no copy of
its fields and writes no line, yet still reaches the metrics and the reply counters."""

from __future__ import annotations

import io
import json
import logging

from mip4.core.actions import DEBUG, Log
from mip4.daemon import logs
from mip4.daemon.config import LogFormat, LogLevel
from mip4.daemon.driving import DaemonExecutor


class _Fields(dict[str, object]):
    """Counts the copies made of it (``dict(fields)``) and the reads of its items."""

    copies = 0

    def keys(self):  # type: ignore[no-untyped-def]
        _Fields.copies += 1
        return super().keys()

    def __iter__(self):  # type: ignore[no-untyped-def]
        _Fields.copies += 1
        return super().__iter__()


class _Metrics:
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_log(self, event: str, fields: object, now: float) -> None:
        self.events.append(event)


def _run(level: LogLevel) -> tuple[list[dict[str, object]], DaemonExecutor, _Metrics]:
    stream = io.StringIO()
    handler = logs.setup(LogFormat.JSON, level, "ha", "h", stream)
    metrics = _Metrics()
    try:
        ex = DaemonExecutor(inner=None, metrics=metrics)  # type: ignore[arg-type]
        _Fields.copies = 0
        ex.execute(Log("ha.registration", _Fields(code=0, decision="register"), DEBUG))
        ex.execute(Log("mn.reply", _Fields(code=0), DEBUG))
        ex.execute(Log("ha.registration", {"code": 0, "decision": "register"}))
    finally:
        logging.getLogger("mip4").removeHandler(handler)
    return [json.loads(x) for x in stream.getvalue().splitlines()], ex, metrics


def test_debug_log_skipped_at_info_without_building_anything() -> None:
    lines, ex, metrics = _run(LogLevel.INFO)
    assert [(x["event"], x["level"]) for x in lines] == [("ha.registration", "info")]
    assert _Fields.copies == 0
    # still seen by the metrics and the reply counter
    assert metrics.events == ["ha.registration", "mn.reply", "ha.registration"]
    assert ex.replies == {0: 1}


def test_debug_log_written_at_debug() -> None:
    lines, _, _ = _run(LogLevel.DEBUG)
    assert [(x["event"], x["level"]) for x in lines] == [
        ("ha.registration", "debug"),
        ("mn.reply", "debug"),
        ("ha.registration", "info"),
    ]
    assert lines[0]["decision"] == "register"
