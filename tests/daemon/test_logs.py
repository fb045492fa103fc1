"""Log lines: one per record, text ``key=value`` or JSON."""

from __future__ import annotations

import io
import json
import logging
from ipaddress import IPv4Address

from mip4.core.actions import Encapsulation, Log
from mip4.daemon import logs
from mip4.daemon.config import LogFormat, LogLevel
from mip4.daemon.driving import DaemonExecutor
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
        "1970-01-01T00:00:00.500000Z ha[h] ha.registration home_address=10.1.0.100 "
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


def test_json_started_line_calls_its_role_role() -> None:
    """Issue 9 item 9: ``daemon.started`` passes the daemon's role as a field; the JSON
    line has it once, as ``role`` (not a ``field_role`` copy)."""
    line = logs.render(
        LogFormat.JSON, role="ha", name="h", event="daemon.started", fields={"role": "ha", "pid": 7}
    )
    rec = json.loads(line)
    assert rec["role"] == "ha" and rec["pid"] == 7
    assert "field_role" not in rec
    # a field that differs from the record's own value is still kept, not lost
    other = json.loads(
        logs.render(LogFormat.JSON, role="ha", name="h", event="x", fields={"level": "odd"})
    )
    assert other["level"] == "info" and other["field_level"] == "odd"


def test_discard_lines_are_rate_limited_per_reason_with_a_summary() -> None:
    """Issue 9 item 6: a flood of discarded datagrams writes a few lines per reason, then
    one summary with exactly how many lines were held back per reason; the engine's
    counters are not the logger's business (every Log action still reaches the
    executor)."""
    stream = io.StringIO()
    handler = logs.setup(LogFormat.JSON, LogLevel.INFO, "fa", "f", stream)
    now = [0.0]
    try:
        ex = DaemonExecutor(Sink(), discards=logs.DiscardLimiter(burst=5, clock=lambda: now[0]))
        for i in range(2_000):
            ex.execute(Log("fa.discard", {"reason": "malformed", "detail": str(i)}))
        for _ in range(3):
            ex.execute(Log("fa.discard", {"reason": "bad_authenticator"}))
        ex.execute(Log("mn-discard", {"why": "unknown_reply"}))
        ex.execute(Log("fa.registration", {"code": 0}))  # not a discard: never limited
        ex.discards.log_summary()
        now[0] = 11.0  # the next interval: lines again
        ex.execute(Log("fa.discard", {"reason": "malformed", "detail": "late"}))
        ex.discards.log_summary()  # nothing held back since the last summary: no line
    finally:
        logging.getLogger("mip4").removeHandler(handler)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    events = [x["event"] for x in lines]
    assert events == [
        *["fa.discard"] * 5,
        *["fa.discard"] * 3,
        "mn-discard",
        "fa.registration",
        "daemon.discards_suppressed",
        "fa.discard",
    ]
    summary = lines[10]
    assert summary["suppressed"] == {"fa.discard malformed": 1_995}
    assert summary["total"] == 1_995 and summary["level"] == "warning"
    assert lines[-1]["detail"] == "late"


def test_unauthenticated_denials_are_rate_limited_like_discards() -> None:
    """Issue 13: a flood of forged requests earns a denial each (131 at the home agent;
    67/68 at a foreign agent, 132, and 133 for replays); their lines go through the discard
    limiter per code, then one summary. Other denials and accepted registrations are never
    held back."""
    stream = io.StringIO()
    handler = logs.setup(LogFormat.JSON, LogLevel.INFO, "ha", "h", stream)
    try:
        ex = DaemonExecutor(Sink(), discards=logs.DiscardLimiter(burst=3, clock=lambda: 0.0))
        for i in range(500):
            ex.execute(Log("ha.registration", {"code": 131, "reason": f"spi {i}"}))
        for _ in range(5):
            ex.execute(Log("fa.registration_denied", {"code": 68}))
        for _ in range(5):
            ex.execute(Log("ha.registration", {"code": 130}))  # resources: never limited
        for _ in range(5):
            ex.execute(Log("ha.registration", {"code": 0}))  # accepted: never limited
        ex.discards.log_summary()
    finally:
        logging.getLogger("mip4").removeHandler(handler)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    codes = [(x["event"], x.get("code")) for x in lines[:-1]]
    assert codes == [
        *[("ha.registration", 131)] * 3,
        *[("fa.registration_denied", 68)] * 3,
        *[("ha.registration", 130)] * 5,
        *[("ha.registration", 0)] * 5,
    ]
    assert lines[-1]["event"] == "daemon.discards_suppressed"
    assert lines[-1]["suppressed"] == {
        "ha.registration code=131": 497,
        "fa.registration_denied code=68": 2,
    }
