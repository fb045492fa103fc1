"""One line per log record: ``key=value`` text or JSON lines, on standard error, to syslog
or to the systemd journal (``[daemon] log_target``).

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

Targets (:func:`setup`): ``stderr`` (default); ``syslog``: one RFC 3164 datagram per line to
``/dev/log`` (facility daemon, ident ``mip4-<role>``); ``journald``: one datagram in the
journal's native protocol to ``/run/systemd/journal/socket`` (:class:`JournalHandler`), the
line as ``MESSAGE`` and every field also as its own ``MIP4_<KEY>`` journal field, so that
``journalctl MIP4_EVENT=ha.registration MIP4_HOME_ADDRESS=10.1.0.100`` finds records. A
socket that cannot be reached at start is an error naming ``daemon.log_socket``.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from enum import Enum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, TextIO, cast

from mip4.io.undo import dotted

from .config import LogFormat, LogLevel

#: The logger of the daemons' own messages and of rendered engine records.
log = logging.getLogger("mip4.daemon")


#: the second :func:`_timestamp` last formatted, and its text (one ``strftime`` per second
#: of log lines, not one per line)
_last_second: list[object] = [None, ""]


def _timestamp(t: float) -> str:
    """ISO 8601 UTC with microseconds: a registration on the home link takes well under a
    millisecond, and its round trip is read from these stamps (milliseconds made it 0)."""
    second, us = divmod(int(t * 1_000_000), 1_000_000)
    cached = _last_second
    if cached[0] != second:
        cached[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        cached[0] = second
    return f"{cached[1]}.{us:06d}Z"


def plain(value: object) -> object:
    """A JSON-friendly version of a log field value."""
    t = type(value)
    if t is str or t is int:
        return value
    if t is IPv4Address:
        return dotted(cast(IPv4Address, value))
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


#: a text value that must be quoted: whitespace (``str.isspace``), a quote or ``=``
_NEEDS_QUOTES = re.compile(r'[\s"=]')


def _text_value(value: object) -> str:
    t = type(value)
    if t is IPv4Address:
        return dotted(cast(IPv4Address, value))  # never quoted (the usual field)
    if t is int:
        return int.__repr__(value)
    v = value if t is str else plain(value)
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    s = str(v)
    if not s or _NEEDS_QUOTES.search(s):
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
    for k, v in fields.items():
        # _text_value(v), its usual cases first (issue 13: a line per first registration)
        t = type(v)
        if t is IPv4Address:
            parts.append(f"{k}={dotted(cast(IPv4Address, v))}")
        elif t is int:
            parts.append(f"{k}={int.__repr__(v)}")
        elif v is None:
            parts.append(f"{k}=-")
        elif t is str:
            text = _STRING_TEXT.get(cast(str, v))
            if text is None:
                if len(_STRING_TEXT) >= 4096:
                    _STRING_TEXT.clear()
                text = _STRING_TEXT[cast(str, v)] = _text_value(v)
            parts.append(f"{k}={text}")
        else:
            parts.append(f"{k}={_text_value(v)}")
    return " ".join(parts)


#: a string field's text (quoted or not): the same few words again and again ("register",
#: "IPIP"); bounded, emptied when full
_STRING_TEXT: dict[str, str] = {}


class LineFormatter(logging.Formatter):
    """Formats :mod:`logging` records as :func:`render` lines. A record may carry
    ``event`` and ``fields`` (``extra=``); otherwise the event is ``"log"`` and the
    message becomes the ``msg`` field."""

    def __init__(self, fmt: LogFormat, role: str, name: str) -> None:
        super().__init__()
        self.fmt, self.role, self.name = fmt, role, name

    def format(self, record: logging.LogRecord) -> str:
        if _held:
            write_held_lines()  # the engine's lines before it, as they were made before it
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


#: default sockets of the log targets
SYSLOG_SOCKET = "/dev/log"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
LOG_TARGETS = ("stderr", "syslog", "journald")


def setup(
    fmt: LogFormat,
    level: LogLevel,
    role: str,
    name: str,
    stream: TextIO | None = None,
    *,
    target: str = "stderr",
    socket_path: str | None = None,
) -> logging.Handler:
    """Send the ``mip4`` loggers (I/O layer and daemon) to ``target``: ``stream`` (standard
    error) by default, one line per record; ``"syslog"`` or ``"journald"`` at
    ``socket_path`` (their default sockets otherwise). ``OSError`` when that socket cannot
    be reached. Returns the handler (for removal in tests)."""
    handler: logging.Handler
    if target == "syslog":
        handler = logging.handlers.SysLogHandler(
            socket_path or SYSLOG_SOCKET, logging.handlers.SysLogHandler.LOG_DAEMON
        )
        handler.ident = f"mip4-{role}[{os.getpid()}]: "
    elif target == "journald":
        handler = JournalHandler(socket_path or JOURNAL_SOCKET, role, name)
    elif target == "stderr":
        handler = logging.StreamHandler(stream or sys.stderr)
    else:
        raise ValueError(f"log target {target!r}: one of {', '.join(LOG_TARGETS)}")
    handler.setFormatter(LineFormatter(fmt, role, name))
    root = logging.getLogger("mip4")
    root.handlers[:] = [handler]
    root.setLevel(level.value.upper())
    root.propagate = False
    return handler


#: syslog(3) priorities of the logging levels (the journal's PRIORITY field)
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}
_FIELD_NAME = re.compile(r"[^A-Z0-9_]")


def journal_field(key: str) -> str:
    """``home_address`` -> ``MIP4_HOME_ADDRESS`` (journal field names: A-Z, 0-9, _)."""
    return ("MIP4_" + _FIELD_NAME.sub("_", key.upper()))[:64]


def journal_datagram(fields: Mapping[str, str]) -> bytes:
    """The journal's native protocol: ``KEY=value`` lines; a value with a newline as
    ``KEY``, newline, its length (64-bit little endian), the bytes, newline."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def _journal_value(value: object) -> str:
    """A field value as the journal keeps it: text as it is (newlines included), lists
    and tables as JSON, the rest as in the text lines."""
    v = plain(value)
    if isinstance(v, str):
        return v
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return _text_value(v)


class JournalHandler(logging.Handler):
    """Records to the systemd journal over its native datagram socket: the rendered line
    as ``MESSAGE``, ``PRIORITY``, ``SYSLOG_IDENTIFIER`` (``mip4-<role>``), ``SYSLOG_PID``,
    ``MIP4_EVENT``, ``MIP4_NAME`` and each structured field as ``MIP4_<KEY>``."""

    def __init__(self, path: str, role: str, name: str) -> None:
        super().__init__()
        self.path, self.role, self.instance = path, role, name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event_name = getattr(record, "event", None) or "log"
            fields: dict[str, str] = {
                "MESSAGE": self.format(record),
                "PRIORITY": str(_PRIORITY.get(record.levelno, 2)),
                "SYSLOG_IDENTIFIER": f"mip4-{self.role}",
                "SYSLOG_PID": str(os.getpid()),
                "MIP4_EVENT": event_name,
                "MIP4_NAME": self.instance,
            }
            for key, value in (getattr(record, "fields", None) or {}).items():
                fields.setdefault(journal_field(str(key)), _journal_value(value))
            self.sock.send(journal_datagram(fields))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}


def _line_stream(level: int) -> tuple[logging.StreamHandler[TextIO], LineFormatter] | None:
    """The stream handler and its formatter when :mod:`logging` would do no more with a
    record of :data:`log` at ``level`` than format it as a line and write it there: as
    :func:`setup` leaves things for ``stderr`` (the ``mip4`` logger with that one
    handler, nothing propagated past it, no filters). ``None`` otherwise (syslog,
    journald, a test's capture...)."""
    if log.handlers or log.filters or not log.propagate:
        return None
    root = log.parent
    if root is None or root.name != "mip4" or root.propagate or len(root.handlers) != 1:
        return None
    handler = root.handlers[0]
    formatter = handler.formatter
    if (
        type(handler) is not logging.StreamHandler
        or type(formatter) is not LineFormatter
        or handler.filters
        or level < handler.level
    ):
        return None
    return handler, formatter


def engine_event(event: str, level: int, fields: dict[str, object]) -> None:
    """An engine's :class:`~mip4.core.actions.Log` record (its level enabled): with the
    daemon's usual standard-error handler, the line :class:`LineFormatter` makes, written
    as :class:`logging.StreamHandler` writes it -- without a :class:`logging.LogRecord`,
    the caller's frame looked up, or the fields copied twice (issue 13: ~10 -> ~5 us per
    registration, a tenth of a first registration's CPU before); otherwise through
    :mod:`logging` (``tests/daemon/test_log_fast_path.py`` compares the two)."""
    target = _line_stream(level)
    if target is None:
        log.log(level, event, extra={"event": event, "fields": dict(fields)})
        return
    handler, formatter = target
    held = _held
    line = render(
        formatter.fmt,
        role=formatter.role,
        name=formatter.name,
        event=event,
        fields=fields,
        level=_LEVEL_NAMES.get(level) or logging.getLevelName(level).lower(),
        when=time.time(),
    )
    if held is not None and (not held or held[0][0] is handler):
        held.append((handler, line + handler.terminator))
        return
    failed = False
    handler.acquire()
    try:
        stream = handler.stream
        stream.write(line + handler.terminator)
        stream.flush()
    except Exception:
        failed = True
    finally:
        handler.release()
    if failed:  # as logging does: a line that cannot be written is reported, not raised
        log.log(level, event, extra={"event": event, "fields": dict(fields)})


#: while the daemon's executor holds a read's actions (:func:`hold_lines`): the lines
#: :func:`engine_event` made for its stream handler, written together at the end of the
#: read (issue 13: one ``write`` and one flush where each line made its own). A line
#: written through :mod:`logging` meanwhile writes them first (:meth:`LineFormatter.format`),
#: so the file keeps the order in which the lines were made.
_held: list[tuple[logging.StreamHandler[TextIO], str]] | None = None


def hold_lines() -> None:
    """Hold :func:`engine_event`'s lines until :func:`write_held_lines`."""
    global _held
    if _held is None:
        _held = []


def write_held_lines(*, stop: bool = False) -> None:
    """Write the lines held, in one ``write``; with ``stop`` stop holding too."""
    global _held
    held = _held
    if held is None:
        return
    _held = None if stop else []
    if not held:
        return
    handler = held[0][0]
    handler.acquire()
    try:
        stream = handler.stream
        stream.write("".join(line for _h, line in held))
        stream.flush()
    except Exception as e:  # as logging does: reported, not raised
        log.log(
            logging.ERROR,
            "daemon.log_write_failed",
            extra={
                "event": "daemon.log_write_failed",
                "fields": {"lines": len(held), "error": str(e)},
            },
        )
    finally:
        handler.release()


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
