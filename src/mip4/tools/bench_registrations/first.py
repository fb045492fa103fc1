"""``python -m mip4.tools.bench_registrations.first``: the home agent's CPU time per first
registration, finer than ``mip4 bench registrations`` gives it (issue 13).

A pass of 1,000 first registrations is a dozen ticks of the 10 ms CPU clock; here a real
``mip4 ha`` (the same namespaces, generator and configuration as the benchmark,
:class:`~.run.Bench`) takes ``--passes`` passes of ``--nodes`` first registrations, each
followed by an unmeasured deregistration of every node, and the figure is the median of
the passes' CPU time over accepted replies. The unmeasured first pass gives the daemon's RSS
growth per binding (its memory for a binding, all layers). With ``--baseline DIR`` (a
``src`` directory of another mip4, e.g. ``git archive`` of a commit) two home agents are
started, one from each tree, and measured in turn, pass for pass (ABAB...): the ratio of
the medians is printed with the load. Every loop is bounded (``--passes``, the
generator's ``--duration`` and ``--max``); the daemons are stopped by process id and the
namespaces deleted on failure
too."""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .build import BuildError, build
from .run import Bench, BenchError, Options, _cpu, _rss_kib, _sigterm_raises


def _passes(bench: Bench, pid: int, nodes: int) -> float:
    """One pass: CPU microseconds of ``pid`` per accepted first registration."""
    c0 = _cpu(pid)
    r = bench.loadgen("first", 434, 60)
    cpu = _cpu(pid) - c0
    bench.loadgen("dereg", 434, 60)  # unmeasured
    if r["accepted"] < nodes:
        raise BenchError(f"only {r['accepted']} of {nodes} first registrations accepted")
    return float(cpu / r["accepted"] * 1e6)


def _warm_up(bench: Bench, pid: int, nodes: int) -> float:
    """The unmeasured first pass; returns the home agent's RSS growth per binding it made
    (bytes): the daemon's whole cost of a binding -- engine, executor records, undo stacks,
    tunnel table, fast-path bookkeeping -- where ``mip4 bench engine`` counts the engine's."""
    before = _rss_kib(pid)
    r = bench.loadgen("first", 434, 60)
    after = _rss_kib(pid)
    bench.loadgen("dereg", 434, 60)
    if r["accepted"] < nodes:
        raise BenchError(f"only {r['accepted']} of {nodes} first registrations accepted")
    if before is None or after is None:
        return float("nan")
    return float((after - before) * 1024 / r["accepted"])


def measure(nodes: int, passes: int, baseline: Path | None, prefix: str = "") -> dict[str, object]:
    """Start a home agent per tree (this one, and ``baseline``'s ``src``), each in its own
    namespaces, then measure them in turn, pass for pass."""
    trees: list[tuple[str, str | None]] = [("this", None)]
    if baseline is not None:
        trees.insert(0, ("baseline", str(baseline)))
    figures: dict[str, list[float]] = {name: [] for name, _ in trees}
    rss: dict[str, float] = {}
    loads = [os.getloadavg()[0]]
    work = Path(tempfile.mkdtemp(prefix="mip4-bench-first-"))
    benches: list[Bench] = []
    old = os.environ.get("PYTHONPATH")
    try:
        with _sigterm_raises():
            running: list[tuple[str, Bench, int]] = []
            tag = prefix or "rf" + secrets.token_hex(2)
            for name, src in trees:
                opts = Options(sas=(nodes,), nodes=nodes, rounds=1, prefix=tag + name[0], fa=False)
                (work / name).mkdir()
                bench = Bench(opts, build(), work / name)
                benches.append(bench)
                bench.setup()
                if src is not None:
                    os.environ["PYTHONPATH"] = src
                try:
                    ha = bench.start_ha(nodes)[0]
                finally:
                    if old is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = old
                rss[name] = _warm_up(bench, ha.pid, nodes)
                running.append((name, bench, ha.pid))
            for _ in range(passes):
                for name, bench, pid in running:
                    figures[name].append(_passes(bench, pid, nodes))
                loads.append(os.getloadavg()[0])
    finally:
        for bench in benches:
            bench.close()
        shutil.rmtree(work, ignore_errors=True)
    out: dict[str, object] = {"nodes": nodes, "passes": passes, "load": loads}
    for name, values in figures.items():
        out[name] = {
            "us": [round(v, 1) for v in values],
            "median_us": statistics.median(values),
            "rss_bytes_per_binding": None if math.isnan(rss[name]) else round(rss[name]),
        }
    base = statistics.median(figures["baseline"]) if baseline is not None else 0.0
    if base > 0:
        out["ratio"] = round(statistics.median(figures["this"]) / base, 3)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mip4.tools.bench_registrations.first")
    p.add_argument("--nodes", type=int, default=5000, help="first registrations per pass")
    p.add_argument("--passes", type=int, default=5, help="measured passes per home agent")
    p.add_argument("--baseline", type=Path, help="the src directory of the mip4 to compare")
    p.add_argument("--prefix", default="", help="namespace prefix (default random)")
    args = p.parse_args(argv)
    name = "bench first registrations"
    if not 1 <= args.nodes <= 100_000 or not 1 <= args.passes <= 50:
        print(f"{name}: --nodes 1..100000, --passes 1..50", file=sys.stderr)
        return 2
    if args.baseline is not None and not (args.baseline / "mip4" / "__init__.py").exists():
        print(f"{name}: --baseline {args.baseline}: no mip4 package there", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(f"{name}: needs root (network namespaces)", file=sys.stderr)
        return 2
    try:
        out = measure(args.nodes, args.passes, args.baseline, args.prefix)
    except (BenchError, BuildError, OSError, subprocess.SubprocessError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    loads = out["load"]
    assert isinstance(loads, list)
    print(
        f"{name}: {args.nodes} nodes, {args.passes} passes, load "
        + " ".join(f"{x:.1f}" for x in loads)
    )
    for key in ("baseline", "this"):
        fig = out.get(key)
        if isinstance(fig, dict):
            each = " ".join(f"{x:.0f}" for x in fig["us"])
            print(
                f"{key:9} HA CPU per first registration: median {fig['median_us']:.0f} us "
                f"({each}); RSS per binding (first pass) {fig['rss_bytes_per_binding']} bytes"
            )
    if "ratio" in out:
        print(f"this / baseline: {out['ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
