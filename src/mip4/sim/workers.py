"""``mip4 sim --workers N``: the nodes split over ``N`` processes, one report.

Theory of operation
-------------------
Mobile IPv4 nodes do not interact: an agent treats each node on its own (its visitor
entry, its pending request, its binding), and nothing a node does changes what another
node's registration decides. So the population can be cut into ``N`` consecutive shares
(:func:`mip4.sim.model.share`), each simulated by its own process with its own replica of
every foreign and home agent, serving only that share's nodes; the parent sums the
workers' reports (:meth:`mip4.sim.report.Report.merge`) and every worker checks every
invariant over its own nodes and agents.

What makes a split run mean the same thing as one process:

* a node's addresses, link-layer address, switch-on time and path are those of its number
  in the whole population (the mobility draws come from the node's own stream,
  :func:`mip4.sim.mobility.draw`), whichever worker simulates it;
* agent-wide parameters are the whole population's: visitor and pending limits and the
  binding table's size are ``--nodes`` in every replica (no replica refuses what one
  process would accept); the sim gives no agent an address pool;
* reboots are drawn from the same seeded generator in every worker, so each replica of
  an agent reboots at the same instants (a reboot of the agent is a reboot of all its
  replicas); periodic advertisements go out at the same instants from every replica.

What is not the same (docs/simulation.md, "Worker processes"):

* each replica numbers its own advertisements (RFC 5944 §2.3.2: +1 per advertisement, the
  solicited ones included), so sequence numbers differ from one process's -- a node sees
  one replica's, increasing as before, and no decision depends on the values;
* random draws shared by a role (the nodes' Identification low bits and solicitation
  jitter, the links' losses) come from one generator per role and worker, in the order of
  that worker's events: with loss the same seed gives a different, equally likely run;
* simulator events are counted per process: each replica's periodic advertisements and
  timers count once per worker.
"""

from __future__ import annotations

import contextlib
import cProfile
import multiprocessing
import os
import resource
import sys
from pathlib import Path
from typing import TextIO

from .model import Simulator
from .report import Report
from .scenario import Scenario


class _Prefixed:
    """A text stream that prefixes every line written to ``out`` with ``prefix``."""

    def __init__(self, out: TextIO, prefix: str) -> None:
        self._out, self._prefix = out, prefix
        self._at_start = True

    def write(self, text: str) -> int:
        out = []
        for line in text.splitlines(keepends=True):
            out.append(self._prefix + line if self._at_start else line)
            self._at_start = line.endswith("\n")
        return self._out.write("".join(out))

    def flush(self) -> None:
        self._out.flush()


def run_one(
    scenario: Scenario,
    worker: tuple[int, int] = (0, 1),
    *,
    progress: bool = False,
    profile: Path | None = None,
) -> Report:
    """Simulate worker ``worker``'s share (the whole population for ``(0, 1)``)."""
    w, workers = worker
    stream: TextIO | None = None
    if progress:
        stream = _Prefixed(sys.stderr, f"w{w} ") if workers > 1 else sys.stderr  # type: ignore[assignment]
    sim = Simulator(scenario, progress=stream, worker=worker)
    if profile is None:
        return sim.run()
    profiler = cProfile.Profile()
    report: Report = profiler.runcall(sim.run)
    profiler.dump_stats(profile if workers == 1 else profile.with_suffix(f".w{w}"))
    return report


def _own_session() -> None:
    """Make this worker a session of its own. With the kernel's scheduler autogroups
    (``/proc/sys/kernel/sched_autogroup_enabled``, on by default in many distributions),
    the CPU is shared fairly between sessions, not processes: N workers left in the
    ``mip4 sim`` session share one session's part of a busy machine, as if they were one
    process. (Interrupting ``mip4 sim`` still ends them: the pool terminates its workers.)"""
    with contextlib.suppress(OSError):  # already a session or process group leader
        os.setsid()


def _child(args: tuple[Scenario, tuple[int, int], bool, Path | None]) -> Report:
    scenario, worker, progress, profile = args
    return run_one(scenario, worker, progress=progress, profile=profile)


def run_workers(
    scenario: Scenario, workers: int, *, progress: bool = False, profile: Path | None = None
) -> Report:
    """Run ``scenario`` split over ``workers`` processes (forked: nothing is built before
    the split) and merge their reports; ``workers == 1`` runs in this process."""
    if workers == 1:
        return run_one(scenario, progress=progress, profile=profile)
    ctx = multiprocessing.get_context("fork")
    jobs = [(scenario, (w, workers), progress, profile) for w in range(workers)]
    with ctx.Pool(workers, initializer=_own_session, maxtasksperchild=1) as pool:
        parts = pool.map(_child, jobs, chunksize=1)
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return Report.merge(parts, parent_rss=parent)
