"""A synthetic but realistic demo run: 4 moves over 24 s, two connections whose timelines
have a hole at each move, and a probe stream with a matching outage per move."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mip4.demo.report import ConnectionSpec, DemoReport, MoveRecord, build_report
from mip4.demo.traffic import Timeline, TrafficReport

T0 = 1_700_000_000.0
IV = 0.1
DURATION = 24.0
#: (from, to, start offset, registration took s, care-of address, RTT ms, via, outage s)
MOVES = [
    ("home", "a", 4.0, 0.35, "10.2.0.2", 3.2, "FA1", 0.6),
    ("a", "b", 9.0, 0.30, "10.3.0.2", 2.9, "FA2", 0.5),
    ("b", "c", 14.0, 0.80, "10.4.0.100", 4.1, "co-located", 1.2),
    ("c", "home", 19.0, 0.25, None, 2.5, "home", 0.4),
]
RATE = 200_000  # bytes per second per direction


def moves() -> list[MoveRecord]:
    return [
        MoveRecord(f, t, T0 + s, T0 + s + reg, coa, rtt, via)
        for f, t, s, reg, coa, rtt, via, _o in MOVES
    ]


def _counts(phase: float = 0.0) -> tuple[int, ...]:
    """Bytes per interval at RATE, zero during each outage, a catch-up burst after it."""
    n = int(DURATION / IV)
    counts = [int(RATE * IV)] * n
    for _f, _t, start, _r, _c, _rtt, _v, outage in MOVES:
        first = int((start + phase) / IV)
        last = int((start + phase + outage) / IV)
        for i in range(first, last + 1):
            counts[i] = 0
        counts[last + 1] += int(RATE * outage * 0.5)
    return tuple(counts)


def end(name: str, role: str, sent: int, received: tuple[int, ...], **kw: Any) -> TrafficReport:
    total = sum(received)
    r = TrafficReport(
        name=name,
        role=role,
        local="10.1.0.100:5001" if role == "server" else "198.51.100.10:40000",
        peer="198.51.100.10:40000" if role == "server" else "10.1.0.100:5001",
        seed=7,
        started_at=T0,
        connected_at=T0 + 0.01,
        finished_at=T0 + DURATION,
        bytes_sent=sent,
        bytes_received=total,
        bytes_verified=total,
        mismatched_bytes=0,
        first_mismatch_offset=None,
        outcome="ok",
        error=None,
        peer_finished=True,
        stop_reason="signal" if role == "client" else "peer-finished",
        longest_receive_gap_ms=700.0,
        longest_receive_gap_at=T0 + 4.0,
        timeline=Timeline(T0 + 0.01, IV, received, received),
    )
    return replace(r, **kw)


def connections() -> list[tuple[ConnectionSpec, TrafficReport | None, TrafficReport | None]]:
    out: list[tuple[ConnectionSpec, TrafficReport | None, TrafficReport | None]] = []
    for spec, phase in ((ConnectionSpec("cn dials mn", "cn", "mn"), 0.0),
                        (ConnectionSpec("mn dials cn", "mn", "cn"), 0.05)):  # fmt: skip
        c2s, s2c = _counts(phase), _counts(phase + 0.1)
        client = end(spec.name, "client", sum(c2s), s2c)
        server = end(spec.name, "server", sum(s2c), c2s)
        out.append((spec, client, server))
    return out


def probes() -> tuple[dict[str, Any], dict[str, Any]]:
    interval = 0.01
    sent_at = [T0 + 0.5 + i * interval for i in range(int((DURATION - 1) / interval))]
    lost = set()
    for _f, _t, start, _r, _c, _rtt, _v, outage in MOVES:
        lost |= {i for i, t in enumerate(sent_at) if T0 + start <= t < T0 + start + outage}
    sender = {"interval": interval, "sent_at": sent_at, "send_errors": [], "echoes": []}
    receiver = {
        "received": [[i, t, t + 0.001] for i, t in enumerate(sent_at) if i not in lost],
    }
    return sender, receiver


def sample_report(**kw: Any) -> DemoReport:
    sender, receiver = probes()
    args: dict[str, Any] = {
        "probe_sender": sender,
        "probe_receiver": receiver,
        "probe_path": "cn → mn",
        "started_at": T0,
        "finished_at": T0 + DURATION,
        "notes": ("synthetic run",),
    }
    args.update(kw)
    conns = args.pop("connections", connections())
    mv = args.pop("moves", moves())
    return build_report(mv, conns, **args)
