"""Log lines: one per record, text ``key=value`` or JSON."""

from __future__ import annotations

import io
import json
import logging
from ipaddress import IPv4Address

from mip4.core.actions import Encapsulation, Log
from mip4.daemon import logs
from mip4.daemon.config import LogFormat, LogLevel
from mip4.daemon.run import DaemonExecutor
from mip4.wire.codes import ReplyCode

FIELDS: dict[str, object] = {
    "home_address": IPv4Address("10.1.0.100"),
    "care_of_address": IPv4Address("10.2.0.2"),
    "code": ReplyCode(0),
    "lifetime": 300,
    "why": "two words",
    "link": b"\x02\x00\x00\x00\x00\x01",
    "encapsulation": Encapsulation.GRE,
    "none": None,
}


def test_text_line() -> None:
    line = logs.render(
        LogFormat.TEXT, role="ha", name="h", event="ha.registration", fields=FIELDS, when=0.5
    )
    assert line == (
        "1970-01-01T00:00:00.500Z ha[h] ha.registration home_address=10.1.0.100 "
        'care_of_address=10.2.0.2 code=0 lifetime=300 why="two words" '
        "link=02:00:00:00:00:01 encapsulation=47 none=-"
    )


def test_json_line() -> None:
    line = logs.render(LogFormat.JSON, role="fa", name="f", event="fa.x", fields=FIELDS)
    rec = json.loads(line)
    assert "\n" not in line
    assert rec["event"] == "fa.x" and rec["role"] == "fa" and rec["level"] == "info"
    assert rec["home_address"] == "10.1.0.100" and rec["code"] == 0 and rec["none"] is None


class Sink:
    def __init__(self) -> None:
        self.actions: list[object] = []

    def execute(self, action: object) -> None:
        self.actions.append(action)


def test_engine_logs_become_lines_and_other_actions_pass_through() -> None:
    stream = io.StringIO()
    handler = logs.setup(LogFormat.JSON, LogLevel.INFO, "mn", "m", stream)
    try:
        sink = Sink()
        ex = DaemonExecutor(sink)
        ex.execute(Log("mn-reply", {"code": ReplyCode(133), "lifetime": 0}))
        ex.execute(Log("mn-reply", {"code": 0, "lifetime": 300}))
        other = object()
        ex.execute(other)  # type: ignore[arg-type]
        logging.getLogger("mip4").warning("clean-up: %s", "gone")
        logs.event("daemon.started", pid=1)
    finally:
        logging.getLogger("mip4").removeHandler(handler)
    assert sink.actions == [other]
    assert ex.replies == {133: 1, 0: 1}
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["mn-reply", "mn-reply", "log", "daemon.started"]
    assert lines[0]["code"] == 133
    assert lines[2] == {**lines[2], "level": "warning", "msg": "clean-up: gone"}
    assert lines[3]["pid"] == 1
