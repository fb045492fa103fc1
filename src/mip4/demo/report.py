"""The demo's report: per-move and per-connection results, the verdict, text and JSON.

The orchestrator fills in one :class:`MoveRecord` per move (what it did and what the mobile
node said), keeps the instruments' reports (:class:`~mip4.demo.traffic.TrafficReport` from
both ends of every connection, the probe sender's and receiver's JSON), and calls
:func:`build_report`. The result, a :class:`DemoReport`, renders the tables
(:meth:`DemoReport.render_text`), serialises to JSON and back
(:meth:`DemoReport.to_dict`/:meth:`DemoReport.from_dict`), and gives the exit status:
non-zero when any connection broke (reset, timeout, stall, error, never connected), any
byte mismatched or went missing, or a move never completed its registration.

``python -m mip4.demo.report REPORT.json`` prints the tables of a saved report and exits
with its status.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .probe import ProbeLog, WindowStats, analyze, move_windows
from .traffic import Timeline, TrafficReport, write_json

# -- what the orchestrator fills in ---------------------------------------------------------


@dataclass(frozen=True)
class MoveRecord:
    """One move of the mobile node, as the orchestrator saw it. Times are ``time.time()``."""

    #: network keys, e.g. ``"home"`` → ``"a"``
    from_net: str
    to_net: str
    #: just before the mobile node's link left ``from_net``
    started_at: float
    #: when the mobile node reported the registration (or deregistration, at home) accepted;
    #: None if it never did
    finished_at: float | None
    #: the care-of address registered (None at home)
    care_of_address: str | None
    #: Registration Request → Reply round trip the mobile node measured, ms
    registration_rtt_ms: float | None
    #: how the mobile node is attached, e.g. ``"FA1"``, ``"co-located"``, ``"home"``
    via: str = ""
    note: str = ""

    @property
    def registered(self) -> bool:
        return self.finished_at is not None

    @property
    def handover_ms(self) -> float | None:
        """From the link change to the accepted registration, ms."""
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at) * 1000.0, 3)


@dataclass(frozen=True)
class ConnectionSpec:
    """Which TCP stream a pair of traffic reports belongs to: ``client`` and ``server`` are
    node names (``"cn"``, ``"mn"``) used to label the directions."""

    name: str
    client: str
    server: str


# -- what the report computes ---------------------------------------------------------------


@dataclass(frozen=True)
class MoveResult:
    move: MoveRecord
    #: longest gap in probe arrivals around the move, ms (None: no probe near it)
    interruption_ms: float | None
    #: False when the probe stream never resumed after this move
    recovered: bool
    probes_sent: int
    probes_lost: int
    #: the longest time a TCP direction delivered nothing, among the stalls that began in
    #: the move's window (from a little before the move to a little before the next), ms:
    #: the longest run of empty timeline intervals, or the receiver's exact longest gap when
    #: that began there (so a gap shorter than an interval is not lost between two
    #: intervals that each received something)
    tcp_stall_ms: float
    #: the direction of that stall, e.g. ``"mn → cn"`` ("" when none)
    tcp_stall_direction: str = ""
    #: the same from the echoed probes (there and back again), when the report has them
    echo_interruption_ms: float | None = None
    echo_probes_lost: int | None = None


@dataclass(frozen=True)
class DirectionResult:
    """One direction of one connection: what the sender sent, what the receiver got."""

    label: str
    sent: int
    received: int
    verified: int
    mismatched: int
    first_mismatch_offset: int | None
    longest_gap_ms: float
    #: when that gap began (``time.time()``; None: unknown)
    longest_gap_at: float | None = None
    #: the receiver's throughput timeline (``time.time()`` start, seconds, byte counts)
    timeline_start: float = 0.0
    interval: float = 0.1
    counts: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        return self.mismatched == 0 and self.received == self.sent == self.verified


@dataclass(frozen=True)
class ConnectionResult:
    name: str
    client: str
    server: str
    #: client → server, then server → client
    directions: tuple[DirectionResult, ...]
    #: outcome at each end (``ok``, ``reset``, ``timeout``, ``stalled``, ``error``,
    #: ``not-connected``, or ``missing`` when an end left no report)
    client_outcome: str
    server_outcome: str
    errors: tuple[str, ...] = ()

    @property
    def resets(self) -> int:
        return [self.client_outcome, self.server_outcome].count("reset")

    @property
    def broken(self) -> bool:
        return self.client_outcome != "ok" or self.server_outcome != "ok"

    @property
    def ok(self) -> bool:
        return not self.broken and all(d.complete for d in self.directions)

    def problems(self) -> list[str]:
        out = []
        for end, outcome in (
            (self.client, self.client_outcome),
            (self.server, self.server_outcome),
        ):
            if outcome != "ok":
                out.append(f"{self.name}: the {end} end saw {outcome}")
        for d in self.directions:
            if d.mismatched:
                out.append(
                    f"{self.name} {d.label}: {d.mismatched} bytes mismatched,"
                    f" first at offset {d.first_mismatch_offset}"
                )
            elif d.received != d.sent:
                out.append(f"{self.name} {d.label}: sent {d.sent} bytes, received {d.received}")
        out += [f"{self.name}: {e}" for e in self.errors]
        return out


@dataclass(frozen=True)
class ProbeSummary:
    path: str
    interval: float
    sent: int
    received: int
    send_errors: int = 0

    @property
    def lost(self) -> int:
        return self.sent - self.received


@dataclass(frozen=True)
class DemoReport:
    title: str
    started_at: float
    finished_at: float
    moves: tuple[MoveResult, ...]
    connections: tuple[ConnectionResult, ...]
    probe: ProbeSummary | None = None
    #: ``(time, gap ms)`` for every probe arrival more than 3 intervals after the previous one
    probe_gaps: tuple[tuple[float, float], ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def resets(self) -> int:
        return sum(c.resets for c in self.connections)

    def failures(self) -> list[str]:
        out = [p for c in self.connections for p in c.problems()]
        if not self.connections:
            out.append("no connection was measured")
        out += [
            f"move {m.move.from_net} → {m.move.to_net}: the registration never completed"
            for m in self.moves
            if not m.move.registered
        ]
        return out

    @property
    def ok(self) -> bool:
        return not self.failures()

    def exit_status(self) -> int:
        return 0 if self.ok else 1

    # -- JSON ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["resets"] = self.resets
        d["failures"] = self.failures()
        for m, md in zip(self.moves, d["moves"], strict=True):
            md["move"]["handover_ms"] = m.move.handover_ms
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DemoReport:
        moves = tuple(MoveResult(**{**m, "move": _record(m["move"])}) for m in d.get("moves", ()))
        connections = tuple(
            ConnectionResult(
                **{
                    **c,
                    "directions": tuple(
                        DirectionResult(**{**x, "counts": tuple(x["counts"])})
                        for x in c["directions"]
                    ),
                    "errors": tuple(c.get("errors", ())),
                }
            )
            for c in d.get("connections", ())
        )
        probe = ProbeSummary(**d["probe"]) if d.get("probe") else None
        return cls(
            title=d["title"],
            started_at=d["started_at"],
            finished_at=d["finished_at"],
            moves=moves,
            connections=connections,
            probe=probe,
            probe_gaps=tuple((float(t), float(g)) for t, g in d.get("probe_gaps", ())),
            notes=tuple(d.get("notes", ())),
        )

    def write_json(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> DemoReport:
        return cls.from_dict(json.loads(Path(path).read_text()))

    # -- text ---------------------------------------------------------------------------

    def render_text(self) -> str:
        lines = [self.title, "=" * len(self.title), ""]
        lines.append("Moves")
        echo = any(m.echo_interruption_ms is not None for m in self.moves)
        columns: list[tuple[str, str]] = [
            ("#", "r"), ("move", "l"), ("via", "l"), ("care-of address", "l"),
            ("reg. RTT ms", "r"), ("handover ms", "r"), ("interruption ms", "r"),
            ("probes lost", "r"),
        ]  # fmt: skip
        if echo:
            columns += [("echo gap ms", "r")]
        columns += [("TCP stall ms", "r"), ("in", "l")]
        rows = []
        for i, m in enumerate(self.moves, 1):
            mv = m.move
            interruption = _num(m.interruption_ms)
            if not m.recovered:
                interruption += " (not recovered)"
            row = [
                str(i),
                f"{mv.from_net} → {mv.to_net}",
                mv.via or "-",
                mv.care_of_address or "-",
                _num(mv.registration_rtt_ms, 1),
                _num(mv.handover_ms, 0) if mv.registered else "never",
                interruption,
                f"{m.probes_lost}/{m.probes_sent}",
            ]
            if echo:
                row.append(_num(m.echo_interruption_ms))
            row += [_num(m.tcp_stall_ms, 0), m.tcp_stall_direction if m.tcp_stall_ms else ""]
            rows.append(row)
        lines += format_table([h for h, _a in columns], rows, "".join(a for _h, a in columns))
        if self.probe is not None:
            p = self.probe
            lines.append(
                f"  probes {p.path}: every {p.interval * 1000:g} ms, {p.sent} sent,"
                f" {p.received} received, {p.lost} lost"
                + (f" ({p.send_errors} send errors)" if p.send_errors else "")
                + ("; echo: the same probes there and back" if echo else "")
            )
            lines.append(
                "  TCP stall: the longest time a TCP direction delivered nothing, starting"
                " in the move's window (a run of empty timeline intervals, or the exact longest"
                " gap of that direction when it began there)"
            )
        lines += ["", "Connections"]
        rows = []
        for c in self.connections:
            for j, d in enumerate(c.directions):
                outcome = (c.client_outcome, c.server_outcome)[j] if j < 2 else ""
                rows.append(
                    [
                        c.name if j == 0 else "",
                        d.label,
                        str(d.sent),
                        str(d.received),
                        str(d.verified),
                        str(d.mismatched),
                        _num(d.longest_gap_ms, 0),
                        "complete" if d.complete else "INCOMPLETE",
                        outcome,
                    ]
                )
        lines += format_table(
            [
                "connection",
                "direction",
                "bytes sent",
                "received",
                "verified",
                "mismatched",
                "longest gap ms",
                "stream",
                "sender end",
            ],
            rows,
            "llrrrrrll",
        )
        lines.append(f"  TCP resets: {self.resets}")
        lines += ["", *(f"note: {n}" for n in self.notes)] if self.notes else []
        failures = self.failures()
        lines.append("")
        if failures:
            lines.append(f"FAIL: {len(failures)} problem(s)")
            lines += [f"  - {f}" for f in failures]
        else:
            total = sum(d.verified for c in self.connections for d in c.directions)
            lines.append(
                f"PASS: {len(self.connections)} connection(s) survived {len(self.moves)}"
                f" move(s); {total} bytes verified, 0 resets"
            )
        return "\n".join(lines) + "\n"


def _record(d: Mapping[str, Any]) -> MoveRecord:
    d = dict(d)
    d.pop("handover_ms", None)
    return MoveRecord(**d)


def _num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Plain-text table, two-space indent; ``align`` has one ``l``/``r`` per column."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if a == "r" else cell.ljust(w)
            for cell, w, a in zip(cells, widths, align, strict=True)
        ]
        return ("  " + "  ".join(parts)).rstrip()

    return [line(headers), "  " + "  ".join("-" * w for w in widths), *map(line, rows)]


# -- building it ----------------------------------------------------------------------------


def _direction(
    label: str, sender: TrafficReport | None, receiver: TrafficReport | None
) -> DirectionResult:
    return DirectionResult(
        label=label,
        sent=sender.bytes_sent if sender else 0,
        received=receiver.bytes_received if receiver else 0,
        verified=receiver.bytes_verified if receiver else 0,
        mismatched=receiver.mismatched_bytes if receiver else 0,
        first_mismatch_offset=receiver.first_mismatch_offset if receiver else None,
        longest_gap_ms=receiver.longest_receive_gap_ms if receiver else 0.0,
        longest_gap_at=receiver.longest_receive_gap_at if receiver else None,
        timeline_start=receiver.timeline.start if receiver else 0.0,
        interval=receiver.timeline.interval if receiver else 0.1,
        counts=receiver.timeline.received if receiver else (),
    )


def connection_result(
    spec: ConnectionSpec, client: TrafficReport | None, server: TrafficReport | None
) -> ConnectionResult:
    """Combine both ends' reports (None: that end left none, which breaks the connection)."""
    errors = []
    for end, r in ((spec.client, client), (spec.server, server)):
        if r is None:
            errors.append(f"no report from the {end} end")
        elif r.error:
            errors.append(f"{end} end: {r.error}")
    return ConnectionResult(
        name=spec.name,
        client=spec.client,
        server=spec.server,
        directions=(
            _direction(f"{spec.client} → {spec.server}", client, server),
            _direction(f"{spec.server} → {spec.client}", server, client),
        ),
        client_outcome=client.outcome if client else "missing",
        server_outcome=server.outcome if server else "missing",
        errors=tuple(errors),
    )


#: how long before a move's recorded start a stall it caused may begin, s: the last bytes
#: before the outage are read a few ms before the link goes (the reads come in bursts)
STALL_LEAD = 0.05


def _stall(d: DirectionResult, start: float, end: float) -> float:
    """The longest time direction ``d`` delivered nothing that began in the move window
    ``[start, end)`` moved :data:`STALL_LEAD` (at least one timeline interval) earlier,
    seconds: the longest run of the timeline's empty intervals, or the exact longest gap.
    The windows of consecutive moves stay a partition, so a stall counts for one move."""
    lead = max(STALL_LEAD, d.interval)
    lo, hi = start - lead, end - lead
    idle = 0.0
    if d.counts:
        runs = Timeline(d.timeline_start, d.interval, (), d.counts).idle_runs("received")
        idle = max((b - a for a, b in runs if lo <= a < hi), default=0.0)
    if d.longest_gap_at is not None and lo <= d.longest_gap_at < hi:
        idle = max(idle, d.longest_gap_ms / 1000.0)
    return idle


def build_report(
    moves: Sequence[MoveRecord],
    connections: Iterable[tuple[ConnectionSpec, TrafficReport | None, TrafficReport | None]],
    *,
    probe_sender: Mapping[str, Any] | None = None,
    probe_receiver: Mapping[str, Any] | None = None,
    probe_path: str = "",
    started_at: float,
    finished_at: float,
    title: str = "mip4 lab demo",
    notes: Sequence[str] = (),
) -> DemoReport:
    """Everything the demo measured, analysed, per move: the window of a move runs from its
    start to the next move's start (the last to ``finished_at``).

    With ``probe_receiver`` the probe analysis is one way (sender → receiver), and the
    sender's echoes, if any, give the round trip as well; without it, the round trip is the
    only view."""
    conns = tuple(connection_result(spec, c, s) for spec, c, s in connections)
    log: ProbeLog | None = None
    summary: ProbeSummary | None = None
    if probe_sender is not None:
        if probe_receiver is not None:
            log = ProbeLog.one_way(dict(probe_sender), dict(probe_receiver))
        else:
            log = ProbeLog.round_trip(dict(probe_sender))
        summary = ProbeSummary(
            path=probe_path,
            interval=log.interval,
            sent=len(log.sent_at),
            received=len(log.first_arrivals()),
            send_errors=len(probe_sender.get("send_errors", ())),
        )
    windows = move_windows([m.started_at for m in moves], finished_at)
    stats = analyze(log, windows) if log is not None else [None] * len(moves)
    echo_stats: list[WindowStats | None] = [None] * len(moves)
    if probe_sender is not None and probe_receiver is not None and probe_sender.get("echoes"):
        echo_stats = list(analyze(ProbeLog.round_trip(dict(probe_sender)), windows))
    results = []
    for m, (start, end), st, echo in zip(moves, windows, stats, echo_stats, strict=True):
        stall, stall_dir = 0.0, ""
        for c in conns:
            for d in c.directions:
                idle = _stall(d, start, end)
                if idle > stall:
                    stall, stall_dir = idle, d.label
        results.append(
            MoveResult(
                move=m,
                interruption_ms=st.interruption_ms if st else None,
                recovered=st.recovered if st else True,
                probes_sent=st.probes_sent if st else 0,
                probes_lost=st.probes_lost if st else 0,
                tcp_stall_ms=round(stall * 1000.0, 3),
                tcp_stall_direction=stall_dir,
                echo_interruption_ms=echo.interruption_ms if echo else None,
                echo_probes_lost=echo.probes_lost if echo else None,
            )
        )
    gaps: tuple[tuple[float, float], ...] = ()
    if log is not None:
        gaps = tuple((t, round(g * 1000.0, 3)) for t, g in log.gaps(3 * log.interval))
    return DemoReport(
        title=title,
        started_at=started_at,
        finished_at=finished_at,
        moves=tuple(results),
        connections=conns,
        probe=summary,
        probe_gaps=gaps,
        notes=tuple(notes),
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mip4.demo.report", description="Print a saved demo report."
    )
    p.add_argument("report", help="the report JSON")
    args = p.parse_args(argv)
    report = DemoReport.load(args.report)
    sys.stdout.write(report.render_text())
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
