"""Issue 14: the handover modes side by side from one run on the namespace lab.

Runs the demo (:func:`mip4.lab.demo.run_demo`, daemons backend, route home → A → B → A →
B → home, the same dwell) four times in this process: plain RFC 5944 with nothing
announced (the baseline), then ``--handover base``, ``low-latency`` and ``fast``. Prints,
per mode, the median interruption (longest gap in the 10 ms UDP probes) and probes lost
over the moves between the two foreign agents, each move's figures, TCP resets, and the
interruption's ratio against the baseline::

    sudo .venv/bin/python benchmarks/handover.py [--dwell S] [--json]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from mip4.lab.demo import HANDOVER_ROUTE, handover_summary, run_demo
from mip4.lab.scenario import Settings, is_root

MODES: tuple[str | None, ...] = (None, "base", "low-latency", "fast")


def measure(dwell: float, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    for mode in MODES:
        name = mode or "none"
        settings = Settings("b" + secrets.token_hex(2), handover=mode)
        run = run_demo(
            settings, workdir / name, log=lambda line: None, dwell=dwell, route=HANDOVER_ROUTE
        )
        summary = handover_summary(run)
        summary["mode"] = name
        summary["ok"] = run.ok
        summary["resets"] = run.report.resets
        rows.append(summary)
        print(f"  {name}: done ({'ok' if run.ok else 'FAILED'})", file=sys.stderr, flush=True)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    base = rows[0]["median_interruption_ms"]
    lines = [
        f"{'mode':<12} {'median gap ms':>13} {'vs none':>8} {'median lost':>11} {'resets':>6}"
        "  per move (gap ms / lost)",
    ]
    for r in rows:
        gap = r["median_interruption_ms"]
        ratio = f"{gap / base:.2f}x" if gap is not None and base else "-"
        moves = ", ".join(
            f"{m['move']} {m['interruption_ms']:.1f}/{m['probes_lost']}"
            for m in r["between_foreign_agents"]
            if m["interruption_ms"] is not None
        )
        lines.append(
            f"{r['mode']:<12} {gap if gap is None else round(gap, 1)!s:>13} {ratio:>8}"
            f" {r['median_probes_lost']!s:>11} {r['resets']:>6}  {moves}"
        )
    lines.append(
        "targets (issue 14): base <= 30 ms; low-latency, fast <= 10 ms and <= 1 probe lost"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dwell", type=float, default=2.0, help="seconds per stop (default: 2)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = p.parse_args(argv)
    if not is_root():
        print("benchmarks/handover.py: needs root (network namespaces)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mip4-bench-handover-") as d:
        rows = measure(args.dwell, Path(d))
    if args.json:
        print(json.dumps({"modes": rows}, indent=2, default=str))
    else:
        print(render(rows))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
