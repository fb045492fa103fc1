"""What a run measured: JSON for machines, a text table for people."""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .scenario import Scenario

if TYPE_CHECKING:
    from .model import Simulator

ROLES = ("mobile node", "foreign agent", "home agent")


def percentiles(
    values: Iterable[float], qs: tuple[float, ...] = (50, 90, 99, 100)
) -> dict[str, float]:
    """Nearest-rank percentiles of ``values`` ({} when empty)."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for q in qs:
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        out[f"p{q:g}"] = ordered[rank - 1]
    return out


@dataclass
class Report:
    scenario: dict[str, Any]
    #: accepted registrations seen by the nodes, per simulated second
    registrations_per_second: list[int] = field(default_factory=list)
    #: InstallBinding actions of the home agents, per simulated second
    home_agent_accepts_per_second: list[int] = field(default_factory=list)
    #: reply code -> replies delivered to nodes
    reply_codes: dict[int, int] = field(default_factory=dict)
    #: seconds from a cell change to the accepted registration through the new agent
    handoff_latency: dict[str, float] = field(default_factory=dict)
    handoffs: int = 0
    #: the same, from switching on
    first_registration_latency: dict[str, float] = field(default_factory=dict)
    #: (simulated time, home agents' bindings, foreign agents' visitors)
    bindings_over_time: list[tuple[float, int, int]] = field(default_factory=list)
    registered_at_end: int = 0
    #: nodes whose last cell change has no accepted registration yet, and the oldest age
    in_handoff_at_end: int = 0
    #: nodes registered (in their own view) for a care-of address their home agent does
    #: not hold a binding for (see ``Simulator.disagreements``)
    disagreements_at_end: int = 0
    oldest_handoff_at_end: float = 0.0
    actions: dict[str, int] = field(default_factory=dict)
    logs: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    reboots: dict[str, int] = field(default_factory=dict)
    invariant_violations: list[str] = field(default_factory=list)
    #: simulator speed
    events: int = 0
    wall_seconds: float = 0.0
    setup_seconds: float = 0.0
    cpu_seconds: float = 0.0
    events_per_wall_second: float = 0.0
    peak_rss_bytes: int = 0
    #: role -> {calls, seconds, us_per_call, us_per_registration}: CPU time of this
    #: process inside the engines' calls (``time.process_time``)
    engine_cost: dict[str, dict[str, float]] = field(default_factory=dict)
    #: "role: input" -> {calls, us_per_call, us_per_registration}
    engine_cost_by_input: dict[str, dict[str, float]] = field(default_factory=dict)
    rss_after_setup_bytes: int = 0
    #: garbage collections during the run (after ``gc.freeze()``)
    gc_collections: int = 0
    gc_seconds: float = 0.0
    gc_longest_pause: float = 0.0
    #: worker processes the run was split over (``mip4 sim --workers``; see
    #: :func:`Report.merge` for how their figures add up)
    workers: int = 1
    handoff_samples: Sequence[float] = field(default_factory=list, repr=False)
    first_registration_samples: Sequence[float] = field(default_factory=list, repr=False)

    @classmethod
    def empty(cls, scenario: Scenario) -> Report:
        return cls(scenario=asdict(scenario))

    def fill(
        self, sim: Simulator, *, wall: float, setup_wall: float, cpu: float, peak_rss: int
    ) -> Report:
        self.registrations_per_second = list(sim.per_second)
        self.home_agent_accepts_per_second = list(sim.ha_accepts)
        self.reply_codes = dict(sorted(sim.codes.items()))
        self.handoff_latency = percentiles(sim.handoff)
        self.handoffs = len(sim.handoff)
        self.handoff_samples = sim.handoff
        self.first_registration_samples = sim.first
        self.first_registration_latency = percentiles(sim.first)
        self.bindings_over_time = sim.samples
        self.registered_at_end = sum(1 for i in range(sim.n) if sim.engines[i].registered)
        open_since = [t for t in sim.attach_times() if t >= 0]
        self.in_handoff_at_end = len(open_since)
        self.disagreements_at_end = sim.disagreements()
        self.oldest_handoff_at_end = sim.now - min(open_since, default=sim.now)
        self.actions = dict(sorted(sim.actions.items()))
        self.logs = dict(sorted(sim.logs.items()))
        self.dropped = dict(sorted(sim.dropped.items()))
        self.reboots = dict(sim.reboots)
        self.invariant_violations = sim.check_invariants()
        self.events = sim.events
        self.wall_seconds = wall
        self.setup_seconds = setup_wall
        self.cpu_seconds = cpu
        self.events_per_wall_second = sim.events / wall if wall > 0 else 0.0
        self.peak_rss_bytes = peak_rss
        self._costs(
            {
                role: (calls, secs)
                for role, secs, calls in zip(ROLES, sim.engine_time, sim.engine_calls, strict=True)
            },
            {f"{ROLES[r]}: {what}": (c, secs) for (r, what), (c, secs) in sim.costs.items()},
        )
        self.rss_after_setup_bytes = sim.rss_after_setup
        self.gc_collections = int(sim.gc_pauses[0])
        self.gc_seconds = round(sim.gc_pauses[1], 3)
        self.gc_longest_pause = round(sim.gc_pauses[2], 4)
        return self

    def _costs(
        self,
        by_role: dict[str, tuple[float, float]],
        by_input: dict[str, tuple[float, float]],
    ) -> None:
        """:attr:`engine_cost` and :attr:`engine_cost_by_input` from (calls, seconds)."""
        accepted = max(1, sum(self.home_agent_accepts_per_second))
        self.engine_cost = {}
        for role, (calls, secs) in by_role.items():
            self.engine_cost[role] = {
                "calls": calls,
                "seconds": round(secs, 3),
                "us_per_call": round(secs / calls * 1e6, 2) if calls else 0.0,
                "us_per_registration": round(secs / accepted * 1e6, 2),
            }
        self.engine_cost_by_input = {}
        for what, (ncalls, secs) in sorted(by_input.items(), key=lambda kv: -kv[1][1]):
            self.engine_cost_by_input[what] = {
                "calls": ncalls,
                "seconds": round(secs, 3),
                "us_per_call": round(secs / ncalls * 1e6, 2) if ncalls else 0.0,
                "us_per_registration": round(secs / accepted * 1e6, 2),
            }

    @classmethod
    def merge(cls, parts: Sequence[Report], *, parent_rss: int = 0) -> Report:
        """One report from the workers' (``parts[w]`` simulated the ``w``-th share of the
        nodes with a replica of every agent; :mod:`mip4.sim.workers`).

        Summed: registrations per second, reply codes, handoffs (their latencies pooled,
        then the percentiles), bindings and visitors over time (every sample time is the
        same in each), nodes registered / in a handoff / disagreeing at the end, actions,
        log events, drops, events, CPU, engine calls and seconds, garbage collections, and
        the peak RSS of every worker plus ``parent_rss`` (a sum of each process's peak:
        an upper bound of the peak of the sum). Reboots are the agents' and happen at the
        same times in every replica: one replica's count. Wall and setup time, the
        oldest handoff and the longest collection: the largest. Invariant violations:
        every worker's, each prefixed with the worker's number."""
        first = parts[0]
        out = cls(scenario=dict(first.scenario))
        out.workers = len(parts)
        out.registrations_per_second = [
            sum(x) for x in zip(*(p.registrations_per_second for p in parts), strict=True)
        ]
        out.home_agent_accepts_per_second = [
            sum(x) for x in zip(*(p.home_agent_accepts_per_second for p in parts), strict=True)
        ]
        codes: Counter[int] = Counter()
        actions: Counter[str] = Counter()
        logs: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        for p in parts:
            codes.update(p.reply_codes)
            actions.update(p.actions)
            logs.update(p.logs)
            dropped.update(p.dropped)
        out.reply_codes = dict(sorted(codes.items()))
        out.actions = dict(sorted(actions.items()))
        out.logs = dict(sorted(logs.items()))
        out.dropped = dict(sorted(dropped.items()))
        out.reboots = dict(first.reboots)
        handoff, firsts = array("d"), array("d")
        for p in parts:
            handoff.extend(p.handoff_samples)
            firsts.extend(p.first_registration_samples)
        out.handoff_samples, out.first_registration_samples = handoff, firsts
        out.handoffs = len(handoff)
        out.handoff_latency = percentiles(handoff)
        out.first_registration_latency = percentiles(firsts)
        out.bindings_over_time = [
            (samples[0][0], sum(x[1] for x in samples), sum(x[2] for x in samples))
            for samples in zip(*(p.bindings_over_time for p in parts), strict=True)
        ]
        out.registered_at_end = sum(p.registered_at_end for p in parts)
        out.in_handoff_at_end = sum(p.in_handoff_at_end for p in parts)
        out.disagreements_at_end = sum(p.disagreements_at_end for p in parts)
        out.oldest_handoff_at_end = max(p.oldest_handoff_at_end for p in parts)
        out.invariant_violations = [
            f"worker {w}: {v}" for w, p in enumerate(parts) for v in p.invariant_violations
        ]
        out.events = sum(p.events for p in parts)
        out.wall_seconds = max(p.wall_seconds for p in parts)
        out.setup_seconds = max(p.setup_seconds for p in parts)
        out.cpu_seconds = sum(p.cpu_seconds for p in parts)
        out.events_per_wall_second = out.events / out.wall_seconds if out.wall_seconds else 0.0
        out.peak_rss_bytes = sum(p.peak_rss_bytes for p in parts) + parent_rss
        out.rss_after_setup_bytes = sum(p.rss_after_setup_bytes for p in parts) + parent_rss
        by_role: dict[str, tuple[float, float]] = {}
        by_input: dict[str, tuple[float, float]] = {}
        for p in parts:
            for table, target in ((p.engine_cost, by_role), (p.engine_cost_by_input, by_input)):
                for what, c in table.items():
                    calls, secs = target.get(what, (0, 0.0))
                    target[what] = (calls + c["calls"], secs + c["seconds"])
        out._costs(by_role, by_input)
        out.gc_collections = sum(p.gc_collections for p in parts)
        out.gc_seconds = round(sum(p.gc_seconds for p in parts), 3)
        out.gc_longest_pause = max(p.gc_longest_pause for p in parts)
        return out

    @property
    def accepted(self) -> int:
        return sum(self.home_agent_accepts_per_second)

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("handoff_samples")
        d.pop("first_registration_samples")
        d["reply_codes"] = {str(c): v for c, v in self.reply_codes.items()}
        return json.dumps(d, indent=1)

    def table(self) -> str:
        s = self.scenario
        duration = s["duration"]
        rows = [
            ("scenario", f"{s['nodes']} nodes, {s['foreign_agents']} FAs, "
             f"{s['home_agents']} HAs, {duration:g} s simulated, seed {s['seed']}"
             + (f", {self.workers} worker processes" if self.workers > 1 else "")),
            ("registrations accepted (HA)", f"{self.accepted}  "
             f"({self.accepted / duration:.1f}/s mean, "
             f"{max(self.home_agent_accepts_per_second, default=0)}/s peak)"),
            ("registered at the end", f"{self.registered_at_end} of {s['nodes']} "
             f"({self.in_handoff_at_end} in handoff, oldest "
             f"{self.oldest_handoff_at_end:.1f} s; {self.disagreements_at_end} disagree "
             "with their home agent)"),
            ("reply codes at the nodes",
             ", ".join(f"{c}: {v}" for c, v in self.reply_codes.items()) or "-"),
            ("handoffs", str(self.handoffs)),
            ("handoff latency (s)", _pct(self.handoff_latency)),
            ("first registration (s)", _pct(self.first_registration_latency)),
            ("bindings at the end",
             str(self.bindings_over_time[-1][1]) if self.bindings_over_time else "-"),
            ("dropped", ", ".join(f"{k}: {v}" for k, v in self.dropped.items()) or "-"),
            ("reboots", ", ".join(f"{k}: {v}" for k, v in self.reboots.items()) or "-"),
            ("invariants", "all hold" if not self.invariant_violations
             else f"{len(self.invariant_violations)} VIOLATED"),
            ("events", f"{self.events} in {self.wall_seconds:.1f} s wall "
             f"({self.events_per_wall_second:,.0f}/s; setup {self.setup_seconds:.1f} s; "
             f"{self.cpu_seconds:.1f} s CPU)"),
            ("peak RSS" + (" (all processes)" if self.workers > 1 else ""),
             f"{self.peak_rss_bytes / 2**20:,.0f} MiB "
             f"({self.rss_after_setup_bytes / 2**20:,.0f} MiB after setup)"),
            ("garbage collection", f"{self.gc_collections} runs, {self.gc_seconds:.2f} s, "
             f"longest {self.gc_longest_pause * 1000:.1f} ms"),
        ]  # fmt: skip
        for role, c in self.engine_cost.items():
            rows.append(
                (
                    f"engine CPU: {role}",
                    f"{c['us_per_call']:.1f} us/call, "
                    f"{c['us_per_registration']:.1f} us/registration ({c['seconds']:.1f} s)",
                )
            )
        for what, c in self.engine_cost_by_input.items():
            rows.append(
                (
                    f"  {what}",
                    f"{c['calls']:.0f} calls, {c['us_per_call']:.1f} us/call, "
                    f"{c['us_per_registration']:.1f} us/registration",
                )
            )
        width = max(len(k) for k, _ in rows)
        lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
        lines += [f"  ! {v}" for v in self.invariant_violations[:20]]
        return "\n".join(lines)


def _pct(p: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in p.items()) or "-"
