"""Throughput over time, with the moves marked.

The upper panel shows, for every direction of every connection, the bytes delivered
(Mbit/s, averaged over :data:`PLOT_INTERVAL`) against seconds since the demo started; each
move is a labelled vertical line at its start, and the time until its registration
completed is shaded. The
lower panel, when the report has probe gaps, shows each UDP probe interruption as a bar
spanning the outage, its height the gap in ms (log scale in the PNG).

PNG through matplotlib (Agg backend) when it is installed; otherwise — or when asked — a
self-contained SVG written by hand. :func:`plot` picks by the file suffix and falls back
to SVG (changing the suffix) when matplotlib is missing.

``python -m mip4.demo.plot REPORT.json OUT.png`` draws a saved report.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from .report import DemoReport

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MOVE_COLOR = "#d62728"
#: the probe-gap bars: not the moves' colour, which marks the same instants
GAP_COLOR = "#3b3b98"
#: the narrowest a gap bar is drawn, as a fraction of the time axis (a 60 ms gap in a 40 s
#: run would be a hair's width, hidden by the move line at the same instant)
GAP_MIN_WIDTH = 0.006


#: the throughput is drawn as averages over this many seconds (or the timeline's own
#: interval when that is longer): a 10 ms timeline is too spiky to read
PLOT_INTERVAL = 0.1


@dataclass(frozen=True)
class Series:
    label: str
    #: ``(seconds since the start, Mbit/s)``
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Marker:
    #: seconds since the start: the move began, and its registration completed (or None)
    at: float
    until: float | None
    label: str


@dataclass(frozen=True)
class PlotData:
    title: str
    series: tuple[Series, ...]
    markers: tuple[Marker, ...]
    #: ``(outage start, outage length)`` in seconds since the start, and the gap in ms
    gaps: tuple[tuple[float, float, float], ...]
    duration: float


def plot_data(report: DemoReport) -> PlotData:
    """What to draw, in seconds since ``report.started_at``."""
    t0 = report.started_at
    series = []
    for c in report.connections:
        for d in c.directions:
            k = max(1, round(PLOT_INTERVAL / d.interval)) if d.interval > 0 else 1
            step = d.interval * k
            sums = [sum(d.counts[i : i + k]) for i in range(0, len(d.counts), k)]
            pts = tuple(
                (d.timeline_start - t0 + (j + 0.5) * step, n * 8 / step / 1e6)
                for j, n in enumerate(sums)
            )
            series.append(Series(f"{c.name}: {d.label}", pts))
    markers = []
    for m in report.moves:
        mv = m.move
        if mv.finished_at is None:
            detail = "  not registered"
        elif mv.care_of_address:
            detail = f"  CoA {mv.care_of_address}"
        else:
            detail = ""
        markers.append(
            Marker(
                mv.started_at - t0,
                None if mv.finished_at is None else mv.finished_at - t0,
                f"→ {mv.to_net}{detail}",
            )
        )
    gaps = tuple((t - g / 1000.0 - t0, g / 1000.0, g) for t, g in report.probe_gaps)
    return PlotData(
        report.title, tuple(series), tuple(markers), gaps, report.finished_at - report.started_at
    )


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot(report: DemoReport, path: str | Path, backend: str = "auto") -> Path:
    """Draw ``report`` to ``path``; return the file written.

    ``backend``: ``"png"`` (matplotlib), ``"svg"`` (hand-written), or ``"auto"``: by the
    suffix, and SVG (suffix changed to ``.svg``) when matplotlib is not installed."""
    path = Path(path)
    data = plot_data(report)
    if backend == "auto":
        backend = "svg" if path.suffix.lower() == ".svg" else "png"
        if backend == "png" and not matplotlib_available():
            backend, path = "svg", path.with_suffix(".svg")
    if backend == "svg":
        path.write_text(render_svg(data))
    elif backend == "png":
        render_png(data, path)
    else:
        raise ValueError(f"unknown plot backend {backend!r}: png, svg or auto")
    return path


def render_png(data: PlotData, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if data.gaps else 1
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(12, 6.5 if rows == 2 else 5),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1][:rows]},
    )
    ax = axes[0][0]
    for i, s in enumerate(data.series):
        if s.points:
            xs, ys = zip(*s.points, strict=True)
            ax.plot(xs, ys, label=s.label, color=COLORS[i % len(COLORS)], linewidth=1.2)
    top = max((y for s in data.series for _x, y in s.points), default=1.0) or 1.0
    ax.set_ylim(0, top * 1.35)
    for row in axes:
        for m in data.markers:
            row[0].axvline(m.at, color=MOVE_COLOR, linestyle="--", linewidth=1, zorder=1)
            if m.until is not None and m.until > m.at:
                row[0].axvspan(m.at, m.until, color=MOVE_COLOR, alpha=0.12, linewidth=0, zorder=0)
    for i, m in enumerate(data.markers):
        ax.text(
            m.at,
            top * (1.3 if i % 2 == 0 else 1.18),
            m.label,
            va="top",
            ha="left",
            fontsize=8,
            color=MOVE_COLOR,
            bbox={"facecolor": "white", "edgecolor": MOVE_COLOR, "pad": 2, "alpha": 0.9},
        )
    ax.set_ylabel("delivered, Mbit/s")
    ax.set_title(data.title)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="lower center", ncol=min(4, len(handles)), fontsize=8,
            frameon=False,
        )  # fmt: skip
    if rows == 2:
        bx = axes[1][0]
        narrowest = max(data.duration, 1.0) * GAP_MIN_WIDTH
        bx.bar(
            [g[0] for g in data.gaps],
            [g[2] for g in data.gaps],
            width=[max(g[1], narrowest) for g in data.gaps],
            align="edge",
            color=GAP_COLOR,
            zorder=3,  # above the move lines drawn at the same instants
        )
        # a log scale: a 30 ms gap stays visible beside a 3 s one
        bx.set_yscale("log")
        bx.set_ylim(10, max(g[2] for g in data.gaps) * 2)
        bx.set_ylabel("UDP probe gap, ms")
        bx.grid(True, alpha=0.3)
    axes[-1][0].set_xlabel("seconds since start")
    axes[-1][0].set_xlim(0, max(data.duration, 1.0))
    fig.tight_layout(rect=(0, 0.05 if handles else 0, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _ticks(top: float, n: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) from 0 to ``top``."""
    if top <= 0:
        return [0.0]
    raw = top / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(k * mag for k in (1, 2, 5, 10) if k * mag >= raw * (1 - 1e-9))
    return [round(i * step, 10) for i in range(int(top / step + 1e-9) + 1)]


def render_svg(data: PlotData, width: int = 1000, height: int = 560) -> str:
    """A self-contained SVG of the same plot (no matplotlib)."""
    left, right, top_m = 70, 20, 40
    lower = 110 if data.gaps else 0
    legend_rows = (len(data.series) + 3) // 4
    bottom_m = 50 + 18 * legend_rows
    plot_h = height - top_m - bottom_m - lower
    plot_w = width - left - right
    duration = max(data.duration, 1.0)
    ymax = max((y for s in data.series for _x, y in s.points), default=1.0) or 1.0
    ymax *= 1.3

    def x(t: float) -> float:
        return left + max(0.0, min(t, duration)) / duration * plot_w

    def y(v: float) -> float:
        return top_m + plot_h - v / ymax * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(data.title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">'
        f"{escape(data.title)}</text>",
    ]
    # axes and ticks
    out.append(
        f'<rect x="{left}" y="{top_m}" width="{plot_w}" height="{plot_h}" fill="none"'
        ' stroke="#444"/>'
    )
    for v in _ticks(ymax / 1.3):
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}"'
            ' stroke="#ddd"/>'
            f'<text x="{left - 5}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
    bottom = top_m + plot_h + lower
    for t in _ticks(duration):
        out.append(f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle">{t:g}</text>')
    out.append(
        f'<text x="{left + plot_w / 2}" y="{bottom + 34}" text-anchor="middle">'
        "seconds since start</text>"
        f'<text x="16" y="{top_m + plot_h / 2}" text-anchor="middle"'
        f' transform="rotate(-90 16 {top_m + plot_h / 2})">delivered, Mbit/s</text>'
    )
    # moves
    for i, m in enumerate(data.markers):
        if m.until is not None and m.until > m.at:
            out.append(
                f'<rect class="move-span" x="{x(m.at):.1f}" y="{top_m}"'
                f' width="{max(x(m.until) - x(m.at), 0.5):.1f}" height="{plot_h + lower}"'
                f' fill="{MOVE_COLOR}" fill-opacity="0.12"/>'
            )
        out.append(
            f'<line class="move" x1="{x(m.at):.1f}" x2="{x(m.at):.1f}" y1="{top_m}"'
            f' y2="{top_m + plot_h + lower}" stroke="{MOVE_COLOR}" stroke-dasharray="5,3"/>'
            f'<text class="move-label" x="{x(m.at) + 4:.1f}" y="{top_m + 14 + 14 * (i % 2)}"'
            f' fill="{MOVE_COLOR}" xml:space="preserve">{escape(m.label)}</text>'
        )
    # throughput
    for i, s in enumerate(data.series):
        color = COLORS[i % len(COLORS)]
        if s.points:
            pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.points)
            out.append(
                f'<polyline class="series" points="{pts}" fill="none" stroke="{color}"'
                ' stroke-width="1.2"/>'
            )
        ly = bottom + 52 + 18 * (i // 4)
        lx = left + (plot_w // 4) * (i % 4)
        out.append(
            f'<line x1="{lx}" x2="{lx + 20}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}"'
            f' stroke-width="2"/><text x="{lx + 25}" y="{ly}">{escape(s.label)}</text>'
        )
    # probe gaps
    if data.gaps:
        g_top = top_m + plot_h + 15
        g_h = lower - 25
        gmax = max(g[2] for g in data.gaps)
        out.append(
            f'<rect x="{left}" y="{g_top}" width="{plot_w}" height="{g_h}" fill="none"'
            f' stroke="#444"/><text x="{left - 5}" y="{g_top + 10}" text-anchor="end">'
            f"{gmax:.0f} ms</text>"
            f'<text x="{left + 4}" y="{g_top + 12}">UDP probe gaps</text>'
        )
        for start, length, ms in data.gaps:
            h = ms / gmax * g_h
            w = max(x(start + length) - x(start), GAP_MIN_WIDTH * plot_w)
            out.append(
                f'<rect class="gap" x="{x(start):.1f}" y="{g_top + g_h - h:.1f}"'
                f' width="{w:.1f}" height="{h:.1f}"'
                f' fill="{GAP_COLOR}"><title>{ms:.0f} ms</title></rect>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mip4.demo.plot",
        description="Draw a saved demo report: throughput over time with the moves marked.",
    )
    p.add_argument("report", help="the demo report JSON")
    p.add_argument("out", help="output file, .png or .svg")
    p.add_argument("--backend", choices=("auto", "png", "svg"), default="auto")
    args = p.parse_args(argv)
    written = plot(DemoReport.load(args.report), args.out, args.backend)
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
