"""``mip4 sim``: run a scenario, print the table, write JSON / PNG / a profile."""

from __future__ import annotations

import argparse
import pstats
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from .scenario import Scenario, ScenarioError
from .workers import run_workers

#: option -> Scenario field (every field is an option, with the field's default)
_OPTIONS: dict[str, str] = {
    "--nodes": "nodes",
    "--fas": "foreign_agents",
    "--has": "home_agents",
    "--duration": "duration",
    "--seed": "seed",
    "--cell-size": "cell_size",
    "--speed-min": "speed_min",
    "--speed-max": "speed_max",
    "--dwell": "dwell",
    "--radio-delay": "radio_delay",
    "--radio-loss": "radio_loss",
    "--core-delay": "core_delay",
    "--core-loss": "core_loss",
    "--reboot-rate": "reboot_rate",
    "--lifetime": "lifetime",
    "--adv-interval": "advertisement_interval",
    "--ramp": "ramp",
    "--sample-interval": "sample_interval",
}
_HELP = {
    "nodes": "mobile nodes",
    "foreign_agents": "foreign agents (one per grid cell)",
    "home_agents": "home agents (at most 16)",
    "duration": "simulated seconds",
    "seed": "random seed (same seed, same run)",
    "cell_size": "cell edge, metres",
    "speed_min": "slowest node, m/s",
    "speed_max": "fastest node, m/s",
    "dwell": "longest pause at a waypoint, s",
    "radio_delay": "one-way delay node <-> agent, s",
    "radio_loss": "loss probability node <-> agent",
    "core_delay": "one-way delay foreign <-> home agent, s",
    "core_loss": "loss probability foreign <-> home agent",
    "reboot_rate": "reboots per agent per simulated hour",
    "lifetime": "registration lifetime the nodes ask for, s",
    "advertisement_interval": "foreign agents' advertisement interval, s (0: solicited only)",
    "ramp": "nodes switch on over the first this many seconds",
    "sample_interval": "binding-table sample interval, s",
}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sim",
        help="discrete-event simulation of many nodes and agents (mip4's engines)",
        description="Run N mobile nodes, M foreign agents and K home agents -- mip4's own "
        "engines -- on a virtual clock with random waypoint mobility, loss, delay and "
        "reboots; print registrations, reply codes, handoff latency, the binding table "
        "and the simulator's speed, and check the engines' invariants.",
    )
    types = {f.name: f for f in fields(Scenario)}
    for opt, name in _OPTIONS.items():
        default = types[name].default
        p.add_argument(
            opt,
            dest=name,
            type=type(default),
            default=default,
            help=f"{_HELP[name]} (default {default})",
        )
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    p.add_argument("--plot", type=Path, help="write a PNG plot here (needs matplotlib)")
    p.add_argument(
        "--progress", action="store_true", help="print a line per sample to stderr while running"
    )
    p.add_argument(
        "--profile",
        type=Path,
        help="run under cProfile; write the stats here (with --workers N > 1: one file "
        "per worker, FILE.w0 ... .wN-1, and no listing)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="split the nodes over this many processes, each with a replica of every "
        "agent (default 1; see docs/simulation.md)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        scenario = Scenario(**{name: getattr(args, name) for name in _OPTIONS.values()})
    except ScenarioError as e:
        print(e, file=sys.stderr)
        return 2
    if not 1 <= args.workers <= scenario.nodes:
        print("sim: --workers must be in 1..--nodes", file=sys.stderr)
        return 2
    report = run_workers(scenario, args.workers, progress=args.progress, profile=args.profile)
    if args.profile and args.workers == 1:
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)
    print(report.table())
    if args.json:
        args.json.write_text(report.to_json())
    if args.plot:
        from .plot import PlotUnavailable, plot

        try:
            plot(report, args.plot)
        except PlotUnavailable as e:
            print(e, file=sys.stderr)
            return 1
    return 1 if report.invariant_violations else 0
