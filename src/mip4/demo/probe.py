"""A UDP probe stream, and what it says about each move.

Theory of operation
-------------------
The sender sends datagram *i* at ``t0 + i * interval`` (an absolute schedule, so late wake-ups
do not stretch it), carrying a magic, the sequence number *i* and its send time. The
receiver logs ``(seq, sent_at, received_at)`` for every probe and, with ``--echo``, returns
it; the sender then logs the echoes too (a round-trip view from one process). A send that
fails (no route while the mobile node is between links) is logged as a send error: the probe
counts as sent and lost.

Everything after that is pure functions over the logs (:class:`ProbeLog`):

* :func:`longest_gap` — the traffic interruption around a move: the longest time between two
  consecutive *arrivals* that belongs to the move's window: its middle lies in the window.
  (An outage starts a little before the middle of its gap is reached and the window starts
  just before the link changes, so the gap a move causes lands in that move's window even
  when the last probe before it arrived a few milliseconds earlier — and the gap the *next*
  move causes, which starts just before this window ends, does not.) When probes sent after
  the last arrival never arrived, the stream did not recover: the open gap, from the last
  arrival to the last send, counts for every window after that arrival, with
  ``recovered=False``.
* :func:`count_lost` — probes sent inside a window whose sequence number never arrived.
* :func:`analyze` — both, for a list of windows (the orchestrator passes one per move, from
  the move's start to the next move's start, so every probe belongs to exactly one move).

Command line (stdout: a ``listening`` event, then a ``report`` event)::

    python -m mip4.demo.probe recv --listen 0.0.0.0 --port 5003 --echo --report r.json
    python -m mip4.demo.probe send --to 10.1.0.100 --port 5003 --interval 0.01 \\
        --duration 60 --report s.json
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .traffic import StopControl, print_event, write_json

MAGIC = b"M4PR"
#: magic, sequence number, send time (time.time())
HEADER = struct.Struct("!4sId")
#: a sender never sends more probes than this, whatever it is asked
MAX_PROBES = 1_000_000


# -- the logs and the pure analysis ---------------------------------------------------------


@dataclass(frozen=True)
class ProbeLog:
    """One direction (or the round trip) of a probe stream.

    ``sent_at[i]`` is when probe *i* was sent (``time.time()``); ``arrivals`` holds
    ``(seq, received_at)`` in any order, duplicates allowed."""

    sent_at: tuple[float, ...]
    arrivals: tuple[tuple[int, float], ...]
    interval: float = 0.01

    @classmethod
    def one_way(cls, sender: dict[str, Any], receiver: dict[str, Any]) -> ProbeLog:
        """Sender → receiver, from the two ``report`` JSON objects."""
        return cls(
            tuple(float(t) for t in sender["sent_at"]),
            tuple((int(r[0]), float(r[2])) for r in receiver["received"]),
            float(sender["interval"]),
        )

    @classmethod
    def round_trip(cls, sender: dict[str, Any]) -> ProbeLog:
        """Sender → echo → sender, from the sender's report alone."""
        return cls(
            tuple(float(t) for t in sender["sent_at"]),
            tuple((int(e[0]), float(e[1])) for e in sender["echoes"]),
            float(sender["interval"]),
        )

    def first_arrivals(self) -> list[tuple[int, float]]:
        """``(seq, received_at)`` of each probe's first copy, by arrival time; sequence
        numbers the sender never sent are ignored."""
        first: dict[int, float] = {}
        for seq, t in self.arrivals:
            if 0 <= seq < len(self.sent_at) and (seq not in first or t < first[seq]):
                first[seq] = t
        return sorted(first.items(), key=lambda x: x[1])

    def arrival_times(self) -> list[float]:
        return [t for _seq, t in self.first_arrivals()]

    def gaps(self, threshold: float = 0.0) -> list[tuple[float, float]]:
        """``(time, gap seconds)`` at each arrival that came more than ``threshold`` after
        the one before it (for plots)."""
        times = self.arrival_times()
        return [(b, b - a) for a, b in itertools.pairwise(times) if b - a > threshold]


@dataclass(frozen=True)
class Gap:
    """An interruption: no probe arrived from ``start`` to ``end`` (``time.time()``)."""

    start: float
    end: float
    #: False when the stream never resumed (``end`` is then the last send)
    recovered: bool = True

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000.0


def longest_gap(log: ProbeLog, start: float, end: float) -> Gap | None:
    """The longest gap between consecutive arrivals whose middle lies in ``[start, end]``,
    or the open gap of a stream that never resumed (``recovered=False``) if that is longer.

    None when no gap qualifies (no arrivals around the window at all)."""
    first = log.first_arrivals()
    times = [t for _s, t in first]
    best: Gap | None = None
    for a, b in itertools.pairwise(times):
        if start <= (a + b) / 2 <= end and (best is None or b - a > best.end - best.start):
            best = Gap(a, b)
    # Probes sent after the last arrival that never came: the stream is still down.
    if times and log.sent_at:
        arrived = {s for s, _t in first}
        last = times[-1]
        pending = [
            t for seq, t in enumerate(log.sent_at) if seq not in arrived and t > last - log.interval
        ]
        if pending and last <= end and log.sent_at[-1] - last > 5 * log.interval:
            open_gap = Gap(last, max(log.sent_at[-1], last), recovered=False)
            if best is None or open_gap.end - open_gap.start >= best.end - best.start:
                best = open_gap
    if not times and log.sent_at:
        sends = [t for t in log.sent_at if start <= t <= end]
        if sends:
            return Gap(log.sent_at[0], log.sent_at[-1], recovered=False)
    return best


def count_lost(log: ProbeLog, start: float, end: float) -> tuple[int, int]:
    """``(sent, lost)``: probes sent in ``[start, end)`` and those of them that never
    arrived."""
    arrived = {seq for seq, _t in log.arrivals}
    sent = [seq for seq, t in enumerate(log.sent_at) if start <= t < end]
    return len(sent), sum(1 for seq in sent if seq not in arrived)


@dataclass(frozen=True)
class WindowStats:
    start: float
    end: float
    probes_sent: int
    probes_lost: int
    #: the longest gap around the window; None when no probe was sent or arrived near it
    gap: Gap | None

    @property
    def interruption_ms(self) -> float | None:
        return None if self.gap is None else round(self.gap.ms, 3)

    @property
    def recovered(self) -> bool:
        return self.gap is None or self.gap.recovered


def analyze(log: ProbeLog, windows: Iterable[tuple[float, float]]) -> list[WindowStats]:
    """Loss and interruption per window ``(start, end)``."""
    out = []
    for start, end in windows:
        sent, lost = count_lost(log, start, end)
        out.append(WindowStats(start, end, sent, lost, longest_gap(log, start, end)))
    return out


def move_windows(starts: Sequence[float], end: float) -> list[tuple[float, float]]:
    """One window per move: from its start to the next move's start (the last to ``end``)."""
    return [(s, starts[i + 1] if i + 1 < len(starts) else end) for i, s in enumerate(starts)]


# -- the sockets ----------------------------------------------------------------------------


def encode_probe(seq: int, sent_at: float, size: int = 64) -> bytes:
    head = HEADER.pack(MAGIC, seq, sent_at)
    return head + bytes(max(0, size - len(head)))


def decode_probe(data: bytes) -> tuple[int, float] | None:
    """``(seq, sent_at)``, or None for anything that is not a probe."""
    if len(data) < HEADER.size:
        return None
    magic, seq, sent_at = HEADER.unpack_from(data)
    return (seq, sent_at) if magic == MAGIC else None


def send_probes(
    to: tuple[str, int],
    *,
    interval: float = 0.01,
    count: int | None = None,
    duration: float | None = 30.0,
    size: int = 64,
    bind: str | None = None,
    linger: float = 1.0,
    control: StopControl | None = None,
) -> dict[str, Any]:
    """Send probes on schedule until ``count`` or ``duration`` (at most :data:`MAX_PROBES`),
    collecting echoes, then wait ``linger`` seconds for late echoes; return the report."""
    control = control or StopControl()
    limit = min(count if count is not None else MAX_PROBES, MAX_PROBES)
    if duration is not None:
        limit = min(limit, int(duration / interval) + 1)
    sent_at: list[float] = []
    send_errors: list[tuple[int, str]] = []
    echoes: list[tuple[int, float]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if bind:
            sock.bind((bind, 0))
        sock.setblocking(False)
        mono0 = time.monotonic()
        next_send = mono0
        stop_at: float | None = None
        while True:
            now = time.monotonic()
            if stop_at is None and (len(sent_at) >= limit or control.requested()):
                stop_at = now + linger
            if stop_at is not None and now >= stop_at:
                break
            if stop_at is None and now >= next_send:
                seq = len(sent_at)
                t = time.time()
                sent_at.append(t)
                try:
                    sock.sendto(encode_probe(seq, t, size), to)
                except OSError as exc:
                    send_errors.append((seq, errno.errorcode.get(exc.errno or 0, str(exc))))
                next_send = mono0 + len(sent_at) * interval
                continue
            wake = stop_at if stop_at is not None else next_send
            readable, _, _ = select.select([sock], [], [], max(0.0, min(wake - now, 0.05)))
            while readable:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                except OSError:
                    continue  # ICMP errors surface here; the probe is simply lost
                probe = decode_probe(data)
                if probe is not None:
                    echoes.append((probe[0], time.time()))
    return {
        "role": "sender",
        "to": f"{to[0]}:{to[1]}",
        "interval": interval,
        "size": size,
        "sent_at": sent_at,
        "send_errors": send_errors,
        "echoes": echoes,
    }


def receive_probes(
    listen: tuple[str, int],
    *,
    echo: bool = False,
    duration: float | None = 60.0,
    idle_timeout: float | None = None,
    control: StopControl | None = None,
    on_listening: Any = None,
) -> dict[str, Any]:
    """Log every probe arriving on ``listen`` (and echo it back) until stopped, ``duration``
    has passed, or (once probes started) none came for ``idle_timeout``; return the report."""
    control = control or StopControl()
    received: list[tuple[int, float, float]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(listen)
        sock.setblocking(False)
        host, port = sock.getsockname()[:2]
        if on_listening is not None:
            on_listening(host, port)
        mono0 = time.monotonic()
        last = None
        while not control.requested():
            now = time.monotonic()
            if duration is not None and now - mono0 >= duration:
                break
            if idle_timeout is not None and last is not None and now - last >= idle_timeout:
                break
            readable, _, _ = select.select([sock], [], [], 0.05)
            while readable:
                try:
                    data, addr = sock.recvfrom(2048)
                except BlockingIOError:
                    break
                except OSError:
                    continue
                probe = decode_probe(data)
                if probe is None:
                    continue
                received.append((probe[0], probe[1], time.time()))
                last = time.monotonic()
                if echo:
                    with contextlib.suppress(OSError):
                        sock.sendto(data, addr)
    return {"role": "receiver", "listen": f"{host}:{port}", "received": received}


# -- command line ---------------------------------------------------------------------------


def _optional(kind: Any) -> Any:
    def parse(text: str) -> Any:
        return None if text in ("", "0", "none") else kind(text)

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mip4.demo.probe", description="UDP probes.")
    sub = p.add_subparsers(dest="role", required=True)
    s = sub.add_parser("send", help="send probes on a fixed schedule")
    s.add_argument("--to", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bind", default=None, help="source address")
    s.add_argument("--interval", type=float, default=0.01, help="seconds between probes")
    s.add_argument("--count", type=_optional(int), default=None)
    s.add_argument("--duration", type=_optional(float), default=30.0, help="seconds")
    s.add_argument("--size", type=int, default=64, help="datagram bytes")
    s.add_argument("--linger", type=float, default=1.0, help="wait for echoes after, s")
    r = sub.add_parser("recv", help="log (and echo) probes")
    r.add_argument("--listen", default="0.0.0.0")
    r.add_argument("--port", type=int, default=0)
    r.add_argument("--echo", action="store_true", help="send each probe back")
    r.add_argument("--duration", type=_optional(float), default=120.0, help="seconds")
    r.add_argument("--idle-timeout", type=_optional(float), default=None, help="seconds")
    for sp in (s, r):
        sp.add_argument("--stop-file", default=None, help="stop once this file exists")
        sp.add_argument("--report", default=None, help="also write the report JSON here")
        sp.add_argument(
            "--realtime",
            action="store_true",
            help="run under SCHED_FIFO when permitted, so a busy CPU does not show as an"
            " interruption (the report says whether it did)",
        )
    return p


#: SCHED_FIFO priority of a ``--realtime`` probe: above every ordinary task, far below the
#: kernel's own real-time threads (1..99); the probe sleeps between datagrams, so it holds a
#: CPU only for microseconds at a time.
REALTIME_PRIORITY = 10


def enter_realtime(priority: int = REALTIME_PRIORITY) -> bool:
    """Run this process under SCHED_FIFO ``priority``; False when not permitted (not root,
    no CAP_SYS_NICE, no real-time budget). The probes measure a path's interruption; under
    the ordinary scheduler a CPU-bound neighbour delays the sender or the receiver by tens
    of milliseconds, which the probes cannot tell from a network outage."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    realtime = enter_realtime() if args.realtime else False
    control = StopControl(args.stop_file)
    control.install_signal_handlers()
    if args.role == "send":
        if args.count is None and args.duration is None:
            build_parser().error("give --count or --duration (probing must be bounded)")
        report = send_probes(
            (args.to, args.port),
            interval=args.interval,
            count=args.count,
            duration=args.duration,
            size=args.size,
            bind=args.bind,
            linger=args.linger,
            control=control,
        )
    else:

        def listening(host: str, port: int) -> None:
            print_event({"event": "listening", "host": host, "port": port})

        report = receive_probes(
            (args.listen, args.port),
            echo=args.echo,
            duration=args.duration,
            idle_timeout=args.idle_timeout,
            control=control,
            on_listening=listening,
        )
    report["realtime"] = realtime
    if args.report:
        write_json(args.report, report)
    print_event({"event": "report", **report})
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
