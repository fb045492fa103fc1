"""A verified TCP stream in both directions over one connection.

Theory of operation
-------------------
Each direction of the connection carries its own deterministic byte sequence: SHAKE-128 in
counter mode over ``"mip4-demo:<seed>:<direction>:" + block index`` (4 KiB blocks), so
byte *k* of a direction is known without keeping anything. The sender writes the sequence
from offset 0; the receiver compares every byte it reads with the sequence at the same offset
(:class:`StreamVerifier`). A flipped byte shows as a mismatch at its offset; a lost, duplicated
or inserted segment shifts everything after it and shows as mismatches from there on.

The two ends run the same loop (:func:`run_stream`): one non-blocking socket, a selector,
an optional token-bucket rate limit, and a per-interval count of bytes sent and received
(the throughput timeline). A side stops *sending* when it has sent ``max_bytes``, when
``duration`` has passed, when it is told to stop (SIGTERM/SIGINT or a stop file) or, by
default, when the peer has finished sending; it then half-closes (``shutdown(SHUT_WR)``,
a FIN) and keeps reading until the peer's FIN. Stopping either end therefore winds both down
cleanly, and a clean end is: our FIN sent, the peer's FIN received, no error.

Moves freeze the connection for seconds; TCP retransmits and the stream resumes. Nothing
here reconnects (that would hide a broken connection) and keep-alives are off. A dead
connection still fails in bounded time: ``TCP_USER_TIMEOUT`` makes the kernel abort when
sent data stays unacknowledged that long, and an application stall timeout covers the cases
the kernel does not see (a direction still open that delivers nothing, or a send buffer that
never drains).

Outcomes: ``ok``; ``reset`` (ECONNRESET, or EPIPE: the peer aborted the connection);
``timeout`` (ETIMEDOUT from ``TCP_USER_TIMEOUT``); ``stalled`` (an open direction moved no byte
for ``stall_timeout``, or no FIN from the peer within ``drain_timeout`` after ours);
``error`` (any other socket error, named); ``not-connected`` (never established).

Command line (one JSON object per stdout line: ``listening``, ``connected``, ``progress``,
and last ``report``)::

    python -m mip4.demo.traffic server --listen 0.0.0.0 --port 5001 --seed 7 --report s.json
    python -m mip4.demo.traffic client --connect 10.1.0.100 --port 5001 --seed 7 \\
        --rate 200000 --duration 60 --report c.json
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

#: bytes per SHAKE-128 block of the stream
BLOCK = 4096
#: Linux's TCP_USER_TIMEOUT, for Pythons built without the constant
_TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)

OUTCOMES = ("ok", "reset", "timeout", "stalled", "error", "not-connected")

Emit = Callable[[dict[str, Any]], None]


def _no_emit(event: dict[str, Any]) -> None:
    pass


# -- the byte sequence ----------------------------------------------------------------------


class StreamPattern:
    """The byte sequence of one direction: SHAKE-128 in counter mode, keyed by seed and
    direction (``"c2s"``: client to server, ``"s2c"``: server to client)."""

    def __init__(self, seed: int, direction: str) -> None:
        self._key = f"mip4-demo:{seed}:{direction}:".encode()
        self._index = -1
        self._block = b""

    def block(self, index: int) -> bytes:
        if index != self._index:
            digest = hashlib.shake_128(self._key + index.to_bytes(8, "big")).digest(BLOCK)
            self._index, self._block = index, digest
        return self._block

    def chunk(self, offset: int, n: int) -> bytes:
        """Bytes ``offset`` … ``offset + n - 1`` of the sequence."""
        parts: list[bytes] = []
        while n > 0:
            index, start = divmod(offset, BLOCK)
            take = min(n, BLOCK - start)
            parts.append(self.block(index)[start : start + take])
            offset += take
            n -= take
        return b"".join(parts)


class ZeroPattern(StreamPattern):
    """A sequence of zero bytes: what a stream that is counted, not verified, sends (a
    benchmark's, where generating the pattern would cost more than what is measured)."""

    def __init__(self) -> None:
        super().__init__(0, "zero")
        self._zeros = b""

    def chunk(self, offset: int, n: int) -> bytes:
        if len(self._zeros) != n:
            self._zeros = bytes(n)
        return self._zeros


@dataclass
class StreamVerifier:
    """Checks received bytes against the sequence at their offset (with ``check`` false it
    only counts them)."""

    pattern: StreamPattern
    offset: int = 0
    verified: int = 0
    mismatched: int = 0
    first_mismatch: int | None = None
    check: bool = True

    def feed(self, data: bytes) -> int:
        """Check ``data`` (the next bytes of the stream); return how many bytes differed."""
        n = len(data)
        if not self.check:
            self.offset += n
            return 0
        expected = self.pattern.chunk(self.offset, n)
        bad = 0
        if data != expected:
            diff = (int.from_bytes(data, "big") ^ int.from_bytes(expected, "big")).to_bytes(
                n, "big"
            )
            bad = n - diff.count(0)
            if self.first_mismatch is None:
                self.first_mismatch = self.offset + n - len(diff.lstrip(b"\0"))
        self.mismatched += bad
        self.verified += n - bad
        self.offset += n
        return bad


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """Bytes sent and received per ``interval`` seconds, from ``start`` (``time.time()``)."""

    start: float
    interval: float
    sent: tuple[int, ...] = ()
    received: tuple[int, ...] = ()

    def rates(self, which: str) -> list[tuple[float, float]]:
        """``(time, bytes per second)`` at the middle of each interval; ``which`` is
        ``"sent"`` or ``"received"``."""
        counts = self.sent if which == "sent" else self.received
        return [
            (self.start + (i + 0.5) * self.interval, c / self.interval)
            for i, c in enumerate(counts)
        ]

    def idle_runs(self, which: str) -> list[tuple[float, float]]:
        """``(start, end)`` of every run of intervals with no byte (``which``: ``"sent"`` or
        ``"received"``), in ``time.time()`` seconds."""
        counts = self.sent if which == "sent" else self.received
        runs: list[tuple[float, float]] = []
        first: int | None = None
        for i, c in enumerate([*counts, 1]):
            if c == 0 and first is None:
                first = i
            elif c != 0 and first is not None:
                runs.append((self.start + first * self.interval, self.start + i * self.interval))
                first = None
        return runs

    def longest_idle(self, which: str, start: float, end: float) -> float:
        """The longest run of intervals with no byte that *began* in ``[start, end)``, in
        seconds (0.0 if none): the stall an event at ``start`` caused, not one still going
        on from before. A run may begin up to one interval before ``start``: the interval
        holding ``start`` is empty when the event came early in it."""
        return max(
            (b - a for a, b in self.idle_runs(which) if start - self.interval <= a < end),
            default=0.0,
        )


@dataclass(frozen=True)
class TrafficReport:
    """What one end of a stream saw; ``to_dict``/``from_dict`` are its JSON form."""

    name: str
    role: str
    local: str
    peer: str
    seed: int
    #: ``time.time()`` when the end started, got connected (None: never) and finished
    started_at: float
    connected_at: float | None
    finished_at: float
    bytes_sent: int
    bytes_received: int
    bytes_verified: int
    mismatched_bytes: int
    first_mismatch_offset: int | None
    #: one of :data:`OUTCOMES`
    outcome: str
    error: str | None
    #: the peer's FIN arrived (its direction ended cleanly)
    peer_finished: bool
    #: why this end stopped sending: bytes, duration, signal, stop-file, peer-finished, error
    stop_reason: str
    #: the longest time between two reads (or from connecting to the first read), ms
    longest_receive_gap_ms: float
    longest_receive_gap_at: float | None
    timeline: Timeline = field(default_factory=lambda: Timeline(0.0, 0.1))

    @property
    def reset(self) -> bool:
        return self.outcome == "reset"

    @property
    def ok(self) -> bool:
        return self.outcome == "ok" and self.mismatched_bytes == 0 and self.peer_finished

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["timeline"]["sent"] = list(self.timeline.sent)
        d["timeline"]["received"] = list(self.timeline.received)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrafficReport:
        d = dict(d)
        d.pop("event", None)
        tl = d.pop("timeline")
        timeline = Timeline(
            float(tl["start"]),
            float(tl["interval"]),
            tuple(int(x) for x in tl["sent"]),
            tuple(int(x) for x in tl["received"]),
        )
        return cls(**d, timeline=timeline)

    @classmethod
    def load(cls, path: str | Path) -> TrafficReport:
        return cls.from_dict(json.loads(Path(path).read_text()))


# -- control --------------------------------------------------------------------------------


class StopControl:
    """Tells a running instrument to stop: :meth:`stop` (signal handlers call it) or the
    existence of ``stop_file``."""

    def __init__(self, stop_file: str | Path | None = None) -> None:
        self.stop_file = Path(stop_file) if stop_file else None
        self.reason: str | None = None

    def stop(self, reason: str = "signal") -> None:
        self.reason = self.reason or reason

    def requested(self) -> str | None:
        if self.reason is None and self.stop_file is not None and self.stop_file.exists():
            self.reason = "stop-file"
        return self.reason

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop("signal")

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


@dataclass(frozen=True)
class StreamConfig:
    """How one end streams; the defaults suit a demo whose moves stall TCP for seconds."""

    name: str = "stream"
    seed: int = 1
    #: stop sending after this many bytes (None: no limit)
    max_bytes: int | None = None
    #: stop sending after this many seconds (None: no limit; keep one of the two bounded)
    duration: float | None = 30.0
    #: send at most this many bytes per second (None: as fast as possible)
    rate: float | None = None
    #: bytes per send() call at most
    chunk: int = 16384
    #: throughput timeline resolution, seconds
    interval: float = 0.1
    #: TCP_USER_TIMEOUT: the kernel aborts when sent data stays unacknowledged this long
    user_timeout: float = 30.0
    #: give up when a direction still open moves no byte this long, seconds
    stall_timeout: float = 45.0
    #: after our FIN, wait this long for the peer's, seconds
    drain_timeout: float = 45.0
    #: stop sending once the peer has finished sending
    follow_peer: bool = True
    #: emit a progress event every this many seconds (None: never)
    progress: float | None = None
    #: how long a server waits for its client / a client keeps retrying to connect
    connect_timeout: float = 30.0
    #: send the seeded pattern and check every byte received; False: send zeros and only
    #: count what arrives (``mip4 bench forwarding``'s TCP goodput)
    verify: bool = True
    #: bytes per recv() call at most
    recv_size: int = 65536


def _configure(sock: socket.socket, cfg: StreamConfig) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)
    sock.setsockopt(socket.IPPROTO_TCP, _TCP_USER_TIMEOUT, int(cfg.user_timeout * 1000))


def _classify(exc: OSError) -> tuple[str, str]:
    name = errno.errorcode.get(exc.errno or 0, "?")
    text = f"{name}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "reset", text
    if exc.errno == errno.ETIMEDOUT:
        return "timeout", text
    return "error", text


def _name(get: Callable[[], Any]) -> str:
    try:
        addr = get()
    except OSError:
        return "?"
    return f"{addr[0]}:{addr[1]}"


def run_stream(
    sock: socket.socket,
    role: str,
    cfg: StreamConfig,
    control: StopControl | None = None,
    emit: Emit = _no_emit,
    started_at: float | None = None,
) -> TrafficReport:
    """Stream both ways over the connected ``sock`` (``role``: ``"client"``/``"server"``)
    until both directions have ended or the connection broke; close ``sock``; report."""
    control = control or StopControl()
    send_dir, recv_dir = ("c2s", "s2c") if role == "client" else ("s2c", "c2s")
    tx = StreamPattern(cfg.seed, send_dir) if cfg.verify else ZeroPattern()
    rx = StreamVerifier(StreamPattern(cfg.seed, recv_dir), check=cfg.verify)
    counted = None if cfg.verify else bytearray(cfg.recv_size)
    local = _name(sock.getsockname)
    peer = _name(sock.getpeername)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    mono0, epoch0 = time.monotonic(), time.time()
    sent_tl: list[int] = []
    recv_tl: list[int] = []

    def count(tl: list[int], now: float, n: int) -> None:
        i = int((now - mono0) / cfg.interval)
        if i >= len(tl):
            tl.extend([0] * (i + 1 - len(tl)))
        tl[i] += n

    sent = 0
    write_open = read_open = True
    outcome, error, stop_reason = "ok", None, ""
    burst = max((cfg.rate or 0) * 0.2, 4096.0)
    tokens, last_fill = burst, mono0
    last_send = last_recv = mono0
    longest_gap, gap_at = 0.0, None
    write_done_at = mono0
    next_progress = mono0 + cfg.progress if cfg.progress else None
    mask = 0

    def progress_event(now: float) -> dict[str, Any]:
        return {
            "event": "progress",
            "name": cfg.name,
            "role": role,
            "t": epoch0 + (now - mono0),
            "sent": sent,
            "received": rx.offset,
            "verified": rx.verified,
            "mismatched": rx.mismatched,
        }

    try:
        while write_open or read_open:
            now = time.monotonic()
            if write_open:
                reason = control.requested()
                if reason is None:
                    if cfg.max_bytes is not None and sent >= cfg.max_bytes:
                        reason = "bytes"
                    elif cfg.duration is not None and now - mono0 >= cfg.duration:
                        reason = "duration"
                    elif cfg.follow_peer and not read_open:
                        reason = "peer-finished"
                if reason:
                    stop_reason = reason
                    write_open = False
                    write_done_at = now
                    sock.shutdown(socket.SHUT_WR)
            if not write_open and read_open and now - write_done_at > cfg.drain_timeout:
                outcome = "stalled"
                error = f"no FIN from the peer {cfg.drain_timeout:g} s after ours"
                break
            if read_open and now - last_recv > cfg.stall_timeout:
                outcome = "stalled"
                error = f"received nothing for {cfg.stall_timeout:g} s"
                break
            if write_open and now - last_send > cfg.stall_timeout:
                outcome = "stalled"
                error = f"could not send for {cfg.stall_timeout:g} s"
                break
            if next_progress is not None and now >= next_progress:
                emit(progress_event(now))
                next_progress = now + (cfg.progress or 1.0)
            want = 0
            timeout = 0.05
            if write_open:
                want = cfg.chunk
                if cfg.max_bytes is not None:
                    want = min(want, cfg.max_bytes - sent)
                if cfg.rate:
                    tokens = min(burst, tokens + (now - last_fill) * cfg.rate)
                    last_fill = now
                    # whole 1 KiB pieces, or smaller ones at a rate below 20 KiB/s
                    need = min(want, 1024, max(1, int(cfg.rate * 0.05)))
                    if tokens < need:
                        timeout = min(timeout, (need - tokens) / cfg.rate)
                        want = 0
                    else:
                        want = min(want, int(tokens))
            new_mask = (selectors.EVENT_READ if read_open else 0) | (
                selectors.EVENT_WRITE if want > 0 else 0
            )
            if new_mask != mask:
                if mask and new_mask:
                    sel.modify(sock, new_mask)
                elif new_mask:
                    sel.register(sock, new_mask)
                else:
                    sel.unregister(sock)
                mask = new_mask
            if not mask:
                time.sleep(timeout)
                continue
            for _key, ev in sel.select(timeout):
                now = time.monotonic()
                if ev & selectors.EVENT_READ:
                    try:
                        if counted is None:
                            data = sock.recv(cfg.recv_size)
                            got = len(data)
                        else:  # only counted: into one buffer, no allocation per read
                            got = sock.recv_into(counted)
                    except BlockingIOError:  # a spurious wake-up: nothing to read after all
                        continue
                    gap = now - last_recv
                    if gap > longest_gap:
                        longest_gap, gap_at = gap, epoch0 + (last_recv - mono0)
                    last_recv = now
                    if got:
                        if counted is None:
                            rx.feed(data)
                        else:
                            rx.offset += got
                        count(recv_tl, now, got)
                    else:
                        read_open = False
                if ev & selectors.EVENT_WRITE and want > 0:
                    try:
                        n = sock.send(tx.chunk(sent, want))
                    except BlockingIOError:
                        continue
                    sent += n
                    tokens -= n
                    count(sent_tl, now, n)
                    last_send = now
    except OSError as exc:
        outcome, error = _classify(exc)
        stop_reason = stop_reason or "error"
    finally:
        sel.close()
        sock.close()
    if next_progress is not None:
        emit(progress_event(time.monotonic()))
    length = max(len(sent_tl), len(recv_tl))
    sent_tl.extend([0] * (length - len(sent_tl)))
    recv_tl.extend([0] * (length - len(recv_tl)))
    return TrafficReport(
        name=cfg.name,
        role=role,
        local=local,
        peer=peer,
        seed=cfg.seed,
        started_at=started_at if started_at is not None else epoch0,
        connected_at=epoch0,
        finished_at=time.time(),
        bytes_sent=sent,
        bytes_received=rx.offset,
        bytes_verified=rx.verified,
        mismatched_bytes=rx.mismatched,
        first_mismatch_offset=rx.first_mismatch,
        outcome=outcome,
        error=error,
        peer_finished=not read_open,
        stop_reason=stop_reason,
        longest_receive_gap_ms=round(longest_gap * 1000, 3),
        longest_receive_gap_at=gap_at,
        timeline=Timeline(epoch0, cfg.interval, tuple(sent_tl), tuple(recv_tl)),
    )


def _not_connected(
    cfg: StreamConfig, role: str, local: str, peer: str, started: float, error: str
) -> TrafficReport:
    return TrafficReport(
        name=cfg.name,
        role=role,
        local=local,
        peer=peer,
        seed=cfg.seed,
        started_at=started,
        connected_at=None,
        finished_at=time.time(),
        bytes_sent=0,
        bytes_received=0,
        bytes_verified=0,
        mismatched_bytes=0,
        first_mismatch_offset=None,
        outcome="not-connected",
        error=error,
        peer_finished=False,
        stop_reason="error",
        longest_receive_gap_ms=0.0,
        longest_receive_gap_at=None,
        timeline=Timeline(started, cfg.interval),
    )


def serve(
    host: str,
    port: int,
    cfg: StreamConfig,
    control: StopControl | None = None,
    emit: Emit = _no_emit,
) -> TrafficReport:
    """Listen on ``host:port`` (0: any free port, announced in the ``listening`` event),
    accept one connection within ``cfg.connect_timeout`` and stream over it."""
    control = control or StopControl()
    started = time.time()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as ls:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _configure(ls, cfg)
        ls.bind((host, port))
        ls.listen(1)
        ls.settimeout(0.1)
        bound = ls.getsockname()
        local = f"{bound[0]}:{bound[1]}"
        emit({"event": "listening", "name": cfg.name, "host": bound[0], "port": bound[1]})
        deadline = time.monotonic() + cfg.connect_timeout
        while True:
            if control.requested():
                return _not_connected(cfg, "server", local, "", started, "stopped before a client")
            if time.monotonic() > deadline:
                return _not_connected(
                    cfg, "server", local, "", started, f"no client in {cfg.connect_timeout:g} s"
                )
            try:
                conn, addr = ls.accept()
                break
            except TimeoutError:
                continue
    _configure(conn, cfg)
    emit({"event": "connected", "name": cfg.name, "role": "server", "peer": f"{addr[0]}:{addr[1]}"})
    return run_stream(conn, "server", cfg, control, emit, started)


def connect(
    host: str,
    port: int,
    cfg: StreamConfig,
    control: StopControl | None = None,
    emit: Emit = _no_emit,
    bind: str | None = None,
) -> TrafficReport:
    """Connect to ``host:port`` (retrying refused/unreachable attempts, never an established
    connection, until ``cfg.connect_timeout``) and stream over the connection."""
    control = control or StopControl()
    started = time.time()
    deadline = time.monotonic() + cfg.connect_timeout
    last_error = "not tried"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or control.requested():
            return _not_connected(cfg, "client", bind or "", f"{host}:{port}", started, last_error)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            _configure(sock, cfg)
            if bind:
                sock.bind((bind, 0))
            sock.settimeout(min(remaining, 5.0))
            sock.connect((host, port))
            break
        except OSError as exc:
            sock.close()
            last_error = _classify(exc)[1]
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    emit({"event": "connected", "name": cfg.name, "role": "client", "peer": f"{host}:{port}"})
    return run_stream(sock, "client", cfg, control, emit, started)


# -- command line ---------------------------------------------------------------------------


def print_event(event: dict[str, Any]) -> None:
    """One JSON object per line on stdout, flushed (the orchestrator reads it live)."""
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def _optional(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text in ("", "0", "none") else kind(text)

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mip4.demo.traffic",
        description="Verified bidirectional TCP stream (one end of it).",
    )
    sub = p.add_subparsers(dest="role", required=True)
    server = sub.add_parser("server", help="accept one connection and stream over it")
    server.add_argument("--listen", default="0.0.0.0", help="address to listen on")
    client = sub.add_parser("client", help="connect and stream")
    client.add_argument("--connect", required=True, help="server address")
    client.add_argument("--bind", default=None, help="source address")
    for sp in (server, client):
        sp.add_argument("--port", type=int, default=0 if sp is server else None, required=False)
        sp.add_argument("--name", default="stream", help="label in events and the report")
        sp.add_argument("--seed", type=int, default=1, help="both ends must agree")
        sp.add_argument("--bytes", type=_optional(int), default=None, help="send at most this")
        sp.add_argument("--duration", type=_optional(float), default=30.0, help="seconds")
        sp.add_argument("--rate", type=_optional(float), default=None, help="bytes/s (cap)")
        sp.add_argument("--interval", type=float, default=0.1, help="timeline resolution, s")
        sp.add_argument("--user-timeout", type=float, default=30.0, help="TCP_USER_TIMEOUT, s")
        sp.add_argument("--stall-timeout", type=float, default=45.0, help="seconds")
        sp.add_argument("--drain-timeout", type=float, default=45.0, help="seconds")
        sp.add_argument("--connect-timeout", type=float, default=30.0, help="seconds")
        sp.add_argument(
            "--no-follow", action="store_true", help="keep sending after the peer finished"
        )
        sp.add_argument("--progress", type=_optional(float), default=None, help="seconds")
        sp.add_argument("--stop-file", default=None, help="stop cleanly once this file exists")
        sp.add_argument("--report", default=None, help="also write the report JSON here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the stream ended cleanly with every byte verified, 1 otherwise."""
    args = build_parser().parse_args(argv)
    if args.role == "client" and args.port is None:
        build_parser().error("client needs --port")
    cfg = StreamConfig(
        name=args.name,
        seed=args.seed,
        max_bytes=args.bytes,
        duration=args.duration,
        rate=args.rate,
        interval=args.interval,
        user_timeout=args.user_timeout,
        stall_timeout=args.stall_timeout,
        drain_timeout=args.drain_timeout,
        follow_peer=not args.no_follow,
        progress=args.progress,
        connect_timeout=args.connect_timeout,
    )
    if cfg.max_bytes is None and cfg.duration is None:
        build_parser().error("give --bytes or --duration (a stream must be bounded)")
    control = StopControl(args.stop_file)
    control.install_signal_handlers()
    if args.role == "server":
        report = serve(args.listen, args.port, cfg, control, print_event)
    else:
        report = connect(args.connect, args.port, cfg, control, print_event, args.bind)
    data = report.to_dict()
    if args.report:
        write_json(args.report, data)
    print_event({"event": "report", **data})
    return 0 if report.ok else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
