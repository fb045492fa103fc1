"""What ``mip4 bench forwarding`` prints: one :class:`Measurement` per path, traffic kind
and payload, the tunnel ÷ direct ratios and, beside them, the tunnel ÷ routed ratios (the
same hops with kernel IP forwarding, :mod:`.routed`), the per-packet CPU cost of the
forwarding processes, the drops, the profiles and the codec timing, as a table
(:func:`format_table`) or as the JSON rows it is made of.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Measurement:
    #: "direct" | "tunnel" | "colocated" ("-bpf" appended on the bpf plane, "-gre" ... for
    #: another encapsulation) | "routed" | "routed-colocated"
    path: str
    #: "udp" | "tcp": the correspondent sends to the mobile node; "udp-up" | "tcp-up": the
    #: mobile node sends to the correspondent (through the reverse tunnel, where it is one)
    traffic: str
    payload: int  # bytes per datagram (UDP), 0 for TCP
    duration: float  # seconds sending
    sent: int  # datagrams (UDP) or bytes (TCP)
    delivered: int  # datagrams (UDP) or bytes (TCP)
    window: float  # seconds between the first and the last arrival
    send_errors: int = 0
    #: per node: CPU seconds and packets over the measurement
    cost: dict[str, dict[str, float]] = field(default_factory=dict)
    #: where datagrams were dropped (kernel counters), by place
    drops: dict[str, int] = field(default_factory=dict)
    #: seconds of CPU the whole machine was busy over the measurement (``/proc/stat``:
    #: sender, receiver, forwarding in softirq and in the forwarding processes)
    cpu_busy_s: float = 0.0
    #: on the routed baseline: datagrams each forwarder's kernel forwarded over the
    #: measurement (``Ip: ForwDatagrams``; the proof that they crossed it)
    forwarded: dict[str, int] = field(default_factory=dict)
    #: CPU seconds the compiled UDP sender used while sending (``getrusage``; 0 where not
    #: known): on veth its softirq runs the whole path, which the kernel's tick accounting
    #: charges to it, so per datagram this is the path's cost, whatever else the machine runs
    sender_cpu_s: float = 0.0
    #: the round of the run this figure came from (0-based; :func:`encapsulation_ratios`)
    round: int = 0

    @property
    def kind(self) -> str:
        """``udp`` or ``tcp``: :attr:`traffic` without its direction."""
        return self.traffic.split("-", 1)[0]

    @property
    def up(self) -> bool:
        """The mobile node sent, the correspondent received."""
        return self.traffic.endswith("-up")

    @property
    def label(self) -> str:
        what = f"UDP {self.payload} B" if self.kind == "udp" else "TCP"
        return f"{what} up" if self.up else what

    @property
    def pps_sent(self) -> float | None:
        return self.sent / self.duration if self.kind == "udp" and self.duration > 0 else None

    @property
    def pps_delivered(self) -> float | None:
        if self.kind != "udp":
            return None
        return self.delivered / self.window if self.window > 0 else 0.0

    @property
    def loss(self) -> float | None:
        if self.kind != "udp" or self.sent == 0:
            return None
        return max(0.0, 1.0 - self.delivered / self.sent)

    @property
    def mbit_s(self) -> float:
        """Delivered payload (UDP) or goodput (TCP), Mbit/s."""
        if self.window <= 0:
            return 0.0
        nbytes = self.delivered * self.payload if self.kind == "udp" else self.delivered
        return nbytes * 8 / self.window / 1e6

    @property
    def cpu_us_per_packet(self) -> float | None:
        """Machine CPU (µs) per delivered datagram (UDP) or per delivered 1500-byte
        segment's worth of bytes (TCP)."""
        units = self.delivered if self.kind == "udp" else self.delivered / 1448
        if units <= 0 or self.cpu_busy_s <= 0:
            return None
        return self.cpu_busy_s / units * 1e6

    @property
    def sender_us_per_datagram(self) -> float | None:
        """The UDP sender's CPU (µs) per delivered datagram: the path's cost, sender
        included, counted on the sender's CPU alone (:attr:`sender_cpu_s`)."""
        if self.kind != "udp" or self.sender_cpu_s <= 0 or self.delivered <= 0:
            return None
        return self.sender_cpu_s / self.delivered * 1e6

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "traffic": self.traffic,
            "payload": self.payload,
            "duration_s": round(self.duration, 4),
            "window_s": round(self.window, 4),
            "sent": self.sent,
            "delivered": self.delivered,
            "send_errors": self.send_errors,
            "pps_sent": _round(self.pps_sent),
            "pps_delivered": _round(self.pps_delivered),
            "loss": None if self.loss is None else round(self.loss, 5),
            "mbit_s": round(self.mbit_s, 2),
            "cost": self.cost,
            "drops": self.drops,
            "cpu_busy_s": self.cpu_busy_s,
            "cpu_us_per_packet": _round(self.cpu_us_per_packet, 3),
            "forwarded": self.forwarded,
            "sender_cpu_s": self.sender_cpu_s,
            "sender_us_per_datagram": _round(self.sender_us_per_datagram, 3),
            "round": self.round,
        }


def _round(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


# ----------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------

PATHS = {
    "direct": "direct  CN->MN (at home)",
    "routed": "routed  CN->HA->FA1->MN",
    "routed-colocated": "routed  CN->HA->MN (C)",
    "tunnel": "tunnel  CN->HA->FA1->MN",
    "tunnel-bpf": "bpf     CN->HA->FA1->MN",
    "colocated": "tunnel  CN->HA->MN (C)",
    "colocated-bpf": "bpf     CN->HA->MN (C)",
}


def path_label(path: str) -> str:
    """The table's name of ``path`` (``tunnel-bpf-gre``: "bpf/gre CN->HA->FA1->MN")."""
    if path in PATHS:
        return PATHS[path]
    if path.startswith("routed"):
        return path
    base, *rest = path.split("-")
    route = PATHS.get(base, base).split(None, 1)[-1]
    return f"{'/'.join(rest):<7} {route}"


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def routed_baseline(path: str) -> str | None:
    """The routed baseline with ``path``'s hops: ``routed`` for the paths through FA1,
    ``routed-colocated`` for the co-located ones, None for the baselines themselves."""
    if path.startswith("tunnel"):
        return "routed"
    if path.startswith("colocated"):
        return "routed-colocated"
    return None


def _ratio(t: Measurement, d: Measurement) -> tuple[float | None, float | None]:
    """(delivered pps ratio (UDP), Mbit/s ratio) of ``t`` against ``d``."""
    td, dd = t.pps_delivered, d.pps_delivered
    pps = round(td / dd, 4) if td is not None and dd else None
    return pps, round(t.mbit_s / d.mbit_s, 4) if d.mbit_s else None


def ratios(results: Sequence[Measurement]) -> list[dict[str, Any]]:
    """Each path ÷ direct, per traffic kind and payload (``pps_ratio``, ``mbit_ratio``);
    for a tunnelled path also ÷ its routed baseline, the same hops without Mobile IP
    (``routed_path``, ``routed_pps_ratio``, ``routed_mbit_ratio``; None where it was not
    measured)."""
    by = {(m.path, m.traffic, m.payload): m for m in results}
    out = []
    for (path, traffic, payload), t in by.items():
        d = by.get(("direct", traffic, payload))
        if path == "direct" or d is None:
            continue
        row: dict[str, Any] = {
            "path": path,
            "traffic": traffic,
            "payload": payload,
            "label": t.label,
        }
        row["pps_ratio"], row["mbit_ratio"] = _ratio(t, d)
        base = routed_baseline(path)
        if base is not None:
            r = by.get((base, traffic, payload))
            row["routed_path"] = base if r is not None else None
            row["routed_pps_ratio"], row["routed_mbit_ratio"] = (
                _ratio(t, r) if r is not None else (None, None)
            )
        out.append(row)
    return out


#: the encapsulations besides IP in IP, as path suffixes (:func:`..run.path_name`)
OTHER_ENCAPSULATIONS = ("gre", "minimal")


def ipip_path(path: str) -> str | None:
    """The same path with IP in IP (``tunnel-bpf`` for ``tunnel-bpf-gre``); None for an
    IP-in-IP path or a baseline."""
    for e in OTHER_ENCAPSULATIONS:
        if path.endswith(f"-{e}"):
            return path[: -len(e) - 1]
    return None


def score(m: Measurement) -> float:
    """What a run delivered: datagrams per second (UDP), goodput (TCP)."""
    return m.pps_delivered if m.pps_delivered is not None else m.mbit_s


def encapsulation_ratios(
    results: Sequence[Measurement], runs: Sequence[Measurement] = ()
) -> list[dict[str, Any]]:
    """Each GRE (or minimal) path ÷ the same path with IP in IP, per traffic kind and
    payload (issue 12: "GRE within 5 % of IP-in-IP"):

    * ``ratio``: of the best figures (delivered pps for UDP, Mbit/s for TCP);
    * ``round_ratios`` / ``median_round_ratio``: from ``runs`` (every run, with its round),
      the two blocks of each round against each other -- measured minutes apart, where the
      best figures may come from different rounds;
    * ``sender_us`` / ``ipip_sender_us`` / ``sender_cost_ratio``: the UDP sender's CPU per
      delivered datagram on each, over every round in ``runs`` (the best figures' without
      them), the path's cost whatever else the machine ran: above 1, the encapsulation
      costs more per datagram."""
    by = {(m.path, m.traffic, m.payload): m for m in results}
    rounds: dict[tuple[str, str, int, int], Measurement] = {}
    cpu: dict[tuple[str, str, int], list[float]] = {}
    for m in runs:
        rounds[m.path, m.traffic, m.payload, m.round] = m
        if m.sender_us_per_datagram is not None:
            total = cpu.setdefault((m.path, m.traffic, m.payload), [0.0, 0.0])
            total[0] += m.sender_cpu_s
            total[1] += m.delivered

    def sender_us(key: tuple[str, str, int]) -> float | None:
        if key in cpu:
            return cpu[key][0] / cpu[key][1] * 1e6
        return by[key].sender_us_per_datagram

    rows = []
    for (path, traffic, payload), t in by.items():
        base = ipip_path(path)
        if base is None:
            continue
        b = by.get((base, traffic, payload))
        if b is None or not score(b):
            continue
        paired = []
        for (p, tr, pl, r), m in sorted(rounds.items(), key=lambda kv: kv[0][3]):
            o = rounds.get((base, tr, pl, r))
            if (p, tr, pl) == (path, traffic, payload) and o is not None and score(o):
                paired.append(round(score(m) / score(o), 4))
        su, bu = sender_us((path, traffic, payload)), sender_us((base, traffic, payload))
        rows.append(
            {
                "path": path,
                "ipip_path": base,
                "traffic": traffic,
                "payload": payload,
                "label": t.label,
                "ratio": round(score(t) / score(b), 4),
                "round_ratios": paired,
                "median_round_ratio": round(statistics.median(paired), 4) if paired else None,
                "sender_us": _round(su, 3),
                "ipip_sender_us": _round(bu, 3),
                "sender_cost_ratio": round(su / bu, 4) if su and bu else None,
            }
        )
    return rows


def plane_cost(results: Sequence[Measurement]) -> list[dict[str, Any]]:
    """The data plane's own machine CPU per delivered datagram (TCP: per 1448 bytes): each
    tunnelled path's figure minus its routed baseline's, which crossed the same hops; for
    UDP also the same from the sender's own CPU (``sender_us``, ``routed_sender_us``,
    ``sender_plane_us``; None where not known), which other load on the machine does not
    count in."""
    by = {(m.path, m.traffic, m.payload): m for m in results}
    rows = []
    for (path, traffic, payload), t in by.items():
        base = routed_baseline(path)
        r = by.get((base, traffic, payload)) if base is not None else None
        if r is None or t.cpu_us_per_packet is None or r.cpu_us_per_packet is None:
            continue
        rows.append(
            {
                "path": path,
                "label": t.label,
                "routed_path": base,
                "us": round(t.cpu_us_per_packet, 3),
                "routed_us": round(r.cpu_us_per_packet, 3),
                "plane_us": round(t.cpu_us_per_packet - r.cpu_us_per_packet, 3),
            }
        )
        su, ru = t.sender_us_per_datagram, r.sender_us_per_datagram
        rows[-1]["sender_us"], rows[-1]["routed_sender_us"] = _round(su, 3), _round(ru, 3)
        rows[-1]["sender_plane_us"] = round(su - ru, 3) if su and ru else None
    return rows


def per_packet(results: Sequence[Measurement]) -> list[dict[str, Any]]:
    """Process CPU per datagram handled by each forwarder, per tunnelled measurement."""
    rows = []
    for m in results:
        for node, c in m.cost.items():
            pk = c["packets"]
            if not pk:
                continue
            cpu = c["cpu_user_s"] + c["cpu_sys_s"]
            rows.append(
                {
                    "measurement": m.label,
                    "node": node,
                    "packets": int(pk),
                    "user_us": round(c["cpu_user_s"] / pk * 1e6, 2),
                    "sys_us": round(c["cpu_sys_s"] / pk * 1e6, 2),
                    "total_us": round(cpu / pk * 1e6, 2),
                    #: the share of one CPU the process got over the measurement (from the
                    #: sender's start to the receiver's last datagram + its 0.5 s idle wait)
                    "cpu_share": round(cpu / c["wall_s"], 3) if c.get("wall_s") else None,
                    #: datagrams/s it could forward with a whole CPU at this cost
                    "pps_one_cpu": round(pk / cpu) if cpu > 0 else None,
                }
            )
    return rows


def format_table(
    results: Sequence[Measurement],
    header: dict[str, Any],
    codec: dict[str, float],
    profiles: dict[str, dict[str, Any]] | None = None,
    runs: Sequence[Measurement] = (),
) -> str:
    lines = [
        "mip4 bench forwarding: "
        + ", ".join(f"{k} {v}" for k, v in header.items() if k not in ("paths",)),
        "",
        f"{'path':<26} {'payload':<13} {'pps sent':>10} {'pps delivered':>14} "
        f"{'loss':>7} {'Mbit/s':>9}",
    ]
    for m in results:
        loss = "-" if m.loss is None else f"{m.loss * 100:.1f}%"
        lines.append(
            f"{path_label(m.path):<26} {m.label:<13} {_fmt(m.pps_sent, ',.0f'):>10} "
            f"{_fmt(m.pps_delivered, ',.0f'):>14} {loss:>7} "
            f"{m.mbit_s:>9,.1f}"
        )
    rows = ratios(results)
    routed = any(r.get("routed_path") for r in rows)
    lines += [
        "",
        "tunnel / direct (at home)"
        + (
            "   || tunnel / routed (the same hops: kernel IP forwarding, no Mobile IP):"
            if routed
            else ":"
        ),
    ]
    several = len({r["path"] for r in rows}) > 1
    for r in rows:
        pps = "" if r["pps_ratio"] is None else f"delivered pps x{r['pps_ratio']:.3f}, "
        mbit = "-" if r["mbit_ratio"] is None else f"x{r['mbit_ratio']:.3f}"
        where = f"{r['path']:<18} " if several else ""
        line = f"  {where}{r['label']:<13} {pps}Mbit/s {mbit}"
        if r.get("routed_path"):
            rp, rm = r["routed_pps_ratio"], r["routed_mbit_ratio"]
            line = f"{line:<70} || " + ("" if rp is None else f"pps x{rp:.3f}, ")
            line += "Mbit/s " + ("-" if rm is None else f"x{rm:.3f}")
        lines.append(line)
    enc = encapsulation_ratios(results, runs)
    if enc:
        lines += [
            "",
            "encapsulation / IP in IP on the same path: best figures || each round's two"
            " blocks (median) || sender CPU per datagram, us (the path's cost):",
        ]
        for e in enc:
            line = f"  {e['path']:<18} {e['label']:<13} x{e['ratio']:.3f}"
            if e["round_ratios"]:
                each = " ".join(f"x{x:.3f}" for x in e["round_ratios"])
                line += f" || {each} (median x{e['median_round_ratio']:.3f})"
            if e["sender_cost_ratio"] is not None:
                line += (
                    f" || {e['sender_us']:.2f} / {e['ipip_sender_us']:.2f}"
                    f" = x{e['sender_cost_ratio']:.3f}"
                )
            lines.append(line)
    if any(m.cpu_us_per_packet is not None for m in results):
        lines += [
            "",
            "machine CPU per delivered datagram (TCP: per 1448 bytes), us -- all CPUs busy"
            " over the measurement (/proc/stat), sender and receiver included; UDP: || the"
            " sender's own CPU (getrusage), which on veth runs the whole path:",
        ]
        for m in results:
            if m.cpu_us_per_packet is not None:
                line = f"  {m.path:<18} {m.label:<13} {m.cpu_us_per_packet:8.2f}"
                if m.sender_us_per_datagram is not None:
                    line += f" || {m.sender_us_per_datagram:6.2f}"
                lines.append(line)
        own = plane_cost(results)
        if own:
            lines += [
                "",
                "the data plane's own cost: machine CPU per datagram, tunnelled minus routed"
                " (the same hops), us || the same from the sender's CPU:",
            ]
            for c in own:
                line = (
                    f"  {c['path']:<18} {c['label']:<13} {c['us']:8.2f} - {c['routed_us']:6.2f}"
                    f" = {c['plane_us']:6.2f}"
                )
                if c["sender_plane_us"] is not None:
                    line += (
                        f" || {c['sender_us']:6.2f} - {c['routed_sender_us']:6.2f}"
                        f" = {c['sender_plane_us']:6.2f}"
                    )
                lines.append(line)
    fwd = [m for m in results if m.forwarded]
    if fwd:
        lines += [
            "",
            "routed baseline: datagrams forwarded by the kernels on its path (Ip: ForwDatagrams;"
            " UDP: at least every datagram delivered) -- the proof that it crossed them:",
        ]
        for m in fwd:
            counts = ", ".join(f"{node} {n:,}" for node, n in m.forwarded.items())
            unit = "datagrams" if m.kind == "udp" else "bytes"
            lines.append(f"  {m.path:<18} {m.label:<13} {m.delivered:>13,} {unit}: {counts}")
    pp = per_packet(results)
    if pp:
        lines += [
            "",
            "per-packet process CPU in the forwarding processes (getrusage / datagrams read"
            " from TUN + raw sockets):",
            f"  {'measurement':<13} {'node':<5} {'packets':>10} {'user us':>8} {'sys us':>8} "
            f"{'total us':>9} {'CPU share':>9} {'pps at 1 CPU':>12}",
        ]
        for r in pp:
            lines.append(
                f"  {r['measurement']:<13} {r['node']:<5} {r['packets']:>10,} {r['user_us']:>8.2f} "
                f"{r['sys_us']:>8.2f} {r['total_us']:>9.2f} "
                f"{_fmt(r['cpu_share'] and r['cpu_share'] * 100, '.0f') + '%':>9} "
                f"{_fmt(r['pps_one_cpu'], ',.0f'):>12}"
            )
    drops = [(m.label, m.path, k, v) for m in results for k, v in m.drops.items() if v]
    if drops:
        lines += ["", "drops (kernel and forwarder counters):"]
        lines += [f"  {p:<6} {lbl:<13} {k:<28} {v:>10,}" for lbl, p, k, v in drops]
    for node, prof in (profiles or {}).items():
        pk = max(1, int(prof["packets"]))
        lines += [
            "",
            f"cProfile of {node} over its whole run ({pk:,} datagrams forwarded; own time per"
            " forwarded datagram, thread CPU time, inflated by the profiler):",
        ]
        for r in prof["top"]:
            lines.append(
                f"  {r['own_s'] / pk * 1e6:7.2f} us  {r['calls']:>10,} calls  {r['function']}"
            )
    if codec:
        lines += ["", "pure IP-in-IP codec in this process (us CPU per datagram, best of 5):"]
        lines.append("  " + ", ".join(f"{k} {v:.2f}" for k, v in codec.items()))
    return "\n".join(lines)
