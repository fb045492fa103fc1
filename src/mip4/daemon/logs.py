"""One line per log record: ``key=value`` text or JSON lines, on standard error.

The engines' :class:`~mip4.core.actions.Log` actions are rendered by :func:`render`
(event name + structured fields); everything else that goes through :mod:`logging` (the
``mip4`` logger of the I/O layer, the daemon's own messages) is rendered by
:class:`LineFormatter` in the same shape, with the message as the ``msg`` field.

Discarded datagrams are logged through a :class:`DiscardLimiter`: at most ``burst`` lines
per ``(event, reason)`` in each ``interval``; the rest are counted, and
:meth:`DiscardLimiter.summary` (called periodically by the daemon, and at its stop) gives
one ``daemon.discards_suppressed`` line with the count per reason. A flood of forged or
malformed datagrams then costs a few lines, not one each; the engines' counters, which
count every discard, are not affected.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from enum import Enum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, TextIO

from .config import LogFormat, LogLevel

#: The logger of the daemons' own messages and of rendered engine records.
log = logging.getLogger("mip4.daemon")


def _timestamp(t: float) -> str:
    """ISO 8601 UTC with microseconds: a registration on the home link takes well under a
    millisecond, and its round trip is read from these stamps (milliseconds made it 0)."""
    us = int(t * 1_000_000) % 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{us:06d}Z"


def plain(value: object) -> object:
    """A JSON-friendly version of a log field value."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, Enum):
        v = value.value
        return v if isinstance(v, int | str) else value.name.lower()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, IPv4Address | IPv4Network | IPv4Interface):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex(":")
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


def _text_value(value: object) -> str:
    v = plain(value)
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    s = str(v)
    if not s or any(c.isspace() or c in '"=' for c in s):
        return json.dumps(s, ensure_ascii=False)
    return s


def render(
    fmt: LogFormat,
    *,
    role: str,
    name: str,
    event: str,
    fields: dict[str, object],
    level: str = "info",
    when: float | None = None,
) -> str:
    """One line (no newline) for ``event`` with ``fields``."""
    ts = _timestamp(time.time() if when is None else when)
    if fmt is LogFormat.JSON:
        record: dict[str, Any] = {"ts": ts, "role": role, "name": name, "level": level}
        record["event"] = event
        for k, v in fields.items():
            value = plain(v)
            if k in record and record[k] == value:
                continue  # the record says it already (a daemon's role)
            record[k if k not in record else f"field_{k}"] = value
        return json.dumps(record, ensure_ascii=False)
    parts = [ts, f"{role}[{name}]"]
    if level != "info":
        parts.append(level.upper())
    parts.append(event)
    parts += [f"{k}={_text_value(v)}" for k, v in fields.items()]
    return " ".join(parts)


class LineFormatter(logging.Formatter):
    """Formats :mod:`logging` records as :func:`render` lines. A record may carry
    ``event`` and ``fields`` (``extra=``); otherwise the event is ``"log"`` and the
    message becomes the ``msg`` field."""

    def __init__(self, fmt: LogFormat, role: str, name: str) -> None:
        super().__init__()
        self.fmt, self.role, self.name = fmt, role, name

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None) or "log"
        fields = dict(getattr(record, "fields", None) or {})
        if event == "log":
            fields = {"msg": record.getMessage(), **fields}
            if record.name not in ("mip4", "mip4.daemon"):
                fields["logger"] = record.name
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return render(
            self.fmt,
            role=self.role,
            name=self.name,
            event=event,
            fields=fields,
            level=record.levelname.lower(),
            when=record.created,
        )


def setup(
    fmt: LogFormat, level: LogLevel, role: str, name: str, stream: TextIO | None = None
) -> logging.Handler:
    """Send the ``mip4`` loggers (I/O layer and daemon) to ``stream`` (standard error),
    one line per record. Returns the handler (for removal in tests)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LineFormatter(fmt, role, name))
    root = logging.getLogger("mip4")
    root.handlers[:] = [handler]
    root.setLevel(level.value.upper())
    root.propagate = False
    return handler


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log a daemon event (``daemon.started``...) with structured fields."""
    log.log(level, name, extra={"event": name, "fields": fields})


def is_discard(event: str) -> bool:
    """``fa.discard``, ``ha.discard``, ``mn.discard`` (and the older ``mn-discard``)."""
    return event.replace("-", ".").rsplit(".", 1)[-1] == "discard"


def discard_reason(fields: Mapping[str, object]) -> str:
    for key in ("reason", "why", "what"):
        if key in fields:
            return str(plain(fields[key]))
    return "-"


class DiscardLimiter:
    """Lets at most ``burst`` discard lines per ``(event, reason)`` through in each
    ``interval`` seconds and counts the ones it holds back."""

    def __init__(
        self, burst: int = 10, interval: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self.suppressed: Counter[str] = Counter()

    def allow(self, event: str, fields: Mapping[str, object]) -> bool:
        key = f"{event} {discard_reason(fields)}"
        now = self.clock()
        start, n = self._windows.get(key, (now, 0))
        if now - start >= self.interval:
            start, n = now, 0
        self._windows[key] = (start, n + 1)
        if n < self.burst:
            return True
        self.suppressed[key] += 1
        return False

    def summary(self) -> dict[str, int]:
        """The lines held back since the last summary, per ``"event reason"`` (then reset)."""
        out = dict(self.suppressed)
        self.suppressed.clear()
        return out

    def log_summary(self) -> None:
        """One ``daemon.discards_suppressed`` line, if anything was held back."""
        held = self.summary()
        if held:
            event(
                "daemon.discards_suppressed",
                logging.WARNING,
                interval=self.interval,
                total=sum(held.values()),
                suppressed=held,
            )
