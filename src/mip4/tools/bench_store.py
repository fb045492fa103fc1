"""Registrations per second with the binding store on and off, in the same run (issue 15).

``python -m mip4.tools.bench_store [--nodes N] [--rounds P] [--group G] [--dir DIR]``

The home agent engine processes N mobile nodes' Registration Requests (each signed with
its own MN-HA association, HMAC-MD5, timestamp replay protection) in three modes:

=============== ===========================================================================
``memory``      the in-memory binding store (what runs without ``[store]``)
``sqlite-full`` :class:`~mip4.store.SqliteStore`, ``synchronous = "full"`` (the default)
``sqlite-normal`` the same with ``synchronous = "normal"``
=============== ===========================================================================

With a store, requests are handled and committed as the daemon handles them under load
(:class:`mip4.daemon.driving.TimedDriver`, :meth:`Mode.run`): with ``full``, the datagrams
one wakeup reads -- ``--group``, default 64, the most one read drains -- go through
``handle(event, now)`` and what they wrote is committed in the store's writer thread
while the next wakeups are handled (group commit off the loop,
:class:`mip4.store.pipeline.CommitPipeline`), no reply before its commit; with
``normal``, one commit per request. ``--batch K`` also runs the whole benchmark again with
one commit per K requests on the loop's thread, for comparison.

A machine shared with other jobs makes one long measurement per mode meaningless (its
load changes between them), so the modes are interleaved: one unmeasured round per mode
first (the first registrations, which create the bindings and warm the file), then
``--rounds`` groups of renewal rounds, one round (each node once) per mode, in the order
memory, full, normal, then normal, full, memory (ABC CBA ...). Each group gives each store
mode's ratio to the ``memory`` round of the same group; the figure that counts is the
**median** of those ratios (target: at least 0.8). Requests are signed before the clock
starts; what is timed is the engine (decode, verify, replay check, binding, signed reply)
and the store. The store files go to ``--dir`` (default: a temporary directory, removed
at the end): the file system there decides what a commit costs, and it is printed.

``--daemon`` (root: network namespaces) measures the real thing instead: ``mip4 ha``
without and with ``[store]`` (``synchronous = "full"``, or ``--synchronous normal``),
started one after the other, ``--rounds`` pairs (off, on, then on, off, ...), each driven
by the compiled load generator of ``mip4 bench registrations`` (its
:class:`~mip4.tools.bench_registrations.Bench`: namespaces, load generator, measurement),
``first`` registrations and ``renew``-als; each pair's ratio and their median are
printed. There the daemon's commit policy applies: with ``full``, group commit (the
datagrams one wakeup reads, up to 64, committed together, their replies waiting for that
commit); with ``normal``, one commit per input.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from mip4.core.bindings import BindingStore
from mip4.core.events import UdpReceived
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.auth import sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.store import SqliteStore
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import NO_FLAGS, RegistrationRequest

HA = IPv4Address("10.0.0.1")
NET = IPv4Network("10.0.0.0/16")
FA = IPv4Address("192.168.1.1")
UNIX0 = 1_790_000_000.0
TARGET = 0.8
#: requests outstanding at most (``mip4 bench registrations``' default window)
WINDOW = 128
MODES = ("memory", "sqlite-full", "sqlite-normal")


@dataclass
class Result:
    mode: str
    registrations: int = 0
    seconds: float = 0.0
    busy: float = 0.0
    commits: int = 0

    @property
    def rate(self) -> float:
        """Registrations per second of wall-clock time."""
        return self.registrations / self.seconds if self.seconds else 0.0

    @property
    def busy_rate(self) -> float:
        """Registrations per second of busy time (see :meth:`Mode.run`)."""
        return self.registrations / self.busy if self.busy else 0.0


def home_addresses(n: int) -> list[IPv4Address]:
    base = int(NET.network_address)
    return [IPv4Address(base + 10 + i) for i in range(n)]


def associations(nodes: Sequence[IPv4Address]) -> SecurityAssociations:
    sas = SecurityAssociations()
    for i, hoa in enumerate(nodes):
        sas.add(hoa, SecurityAssociation(spi=0x1000, key=i.to_bytes(4, "big") * 4))
    return sas


def requests(
    nodes: Sequence[IPv4Address], sas: SecurityAssociations, now: float
) -> list[UdpReceived]:
    """One signed Registration Request per node, Identification = the time ``now``."""
    out = []
    for i, hoa in enumerate(nodes):
        sa = sas.get(hoa, 0x1000)
        assert sa is not None
        ident = ntp_timestamp(UNIX0 + now, low=i)
        req = sign(
            RegistrationRequest(NO_FLAGS, 600, hoa, HA, FA, ident), MobileHomeAuthExtension, sa
        )
        payload = req.raw or req.encode()
        out.append(UdpReceived(payload, FA, HA, 434, 434, "wan0", None, ttl=64))
    return out


class Mode:
    """One home agent and its store, kept across rounds."""

    def __init__(
        self, name: str, nodes: Sequence[IPv4Address], sas: SecurityAssociations, d: Path
    ) -> None:
        self.result = Result(name)
        self.store: SqliteStore | None = None
        bindings: BindingStore | None = None
        if name != "memory":
            sync = name.split("-", 1)[1]
            self.store = SqliteStore(d / f"{name}.db", UNIX0, synchronous=sync)
            bindings = self.store.bindings
        config = HomeAgentConfig(
            address=HA, home_network=NET, interface="home0", max_bindings=len(nodes) + 1
        )
        self.ha = HomeAgent(config, sas, UNIX0, bindings=bindings)
        self.ha.restore(0.0)

    def run(
        self, events: Sequence[UdpReceived], now: float, group: int, daemon: bool = True
    ) -> tuple[float, float]:
        """Handle ``events`` ``group`` at a time (one wakeup's datagrams) and commit as
        the daemon does (``daemon``): with ``synchronous = "full"`` through the store's
        writer thread, the next groups handled while a commit syncs and committed by the
        next one (:class:`mip4.store.pipeline.CommitPipeline`), at most :data:`WINDOW`
        requests waiting for a commit (the load generator's window: its nodes wait for
        their replies); with ``"normal"`` one commit per request. Otherwise (``--batch``)
        one commit per ``group`` requests, on this thread. Returns this round's rates per
        second of wall-clock time and per second of busy time.

        Busy time is the CPU time of the process (both threads) plus the time this thread
        is kept waiting for a commit beyond that (the disk's sync). It leaves out the time
        other processes of a shared machine take the CPU away -- except while waiting for
        a commit, where it counts against the store."""
        ha, store = self.ha, self.store
        handle = ha.handle
        group = max(1, group)
        pipelined = daemon and store is not None and store.group_commit
        per = group if pipelined or not daemon else 1
        clock, cpu = time.perf_counter, time.process_time
        waited = 0.0

        def wait(f: Callable[[], object]) -> None:
            nonlocal waited
            w, c = clock(), cpu()
            f()
            waited += max(0.0, (clock() - w) - (cpu() - c))

        inflight: concurrent.futures.Future[None] | None = None
        held = 0  # requests waiting for a commit (in flight or next)
        t0, c0 = clock(), cpu()
        for i in range(0, len(events), per):
            chunk = events[i : i + per]
            for ev in chunk:
                handle(ev, now)
            if store is None:
                continue
            if not pipelined:
                wait(store.commit)
                continue
            held += len(chunk)
            if inflight is not None and not inflight.done() and held > WINDOW:
                wait(inflight.result)
            if inflight is None or inflight.done():
                if inflight is not None:
                    inflight.result()
                inflight = store.start_commit()
                held = len(chunk) if inflight is not None else 0
        if store is not None:
            wait(store.commit)  # what is in flight, then the rest
        took = clock() - t0
        busy = cpu() - c0 + waited
        r = self.result
        r.seconds += took
        r.busy += busy
        r.registrations += len(events)
        if store is not None:
            r.commits = store.commits
        n = len(events)
        return (n / took if took else 0.0, n / busy if busy else 0.0)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def filesystem(d: Path) -> str:
    try:
        out = subprocess.run(
            ["stat", "-f", "-c", "%T", str(d)], capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def median(values: Sequence[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


@dataclass
class Run:
    """One benchmark: the totals per mode and, per group of interleaved rounds, each
    mode's rate."""

    results: dict[str, Result]
    #: per round group, mode -> (wall-clock rate, busy rate)
    rounds: list[dict[str, tuple[float, float]]]

    def ratios(self, mode: str, busy: bool = True) -> list[float]:
        """``mode``'s rate over ``memory``'s, round group by round group (busy time, or
        wall-clock time)."""
        i = 1 if busy else 0
        return [r[mode][i] / r["memory"][i] if r["memory"][i] else 0.0 for r in self.rounds]

    def median_ratio(self, mode: str, busy: bool = True) -> float:
        return median(self.ratios(mode, busy))


def bench(nodes: int, rounds: int, d: Path, group: int = 64, daemon: bool = True) -> Run:
    """``rounds`` interleaved round groups (see the module docstring); ``daemon``: the
    daemon's commit policy (:meth:`Mode.run`), else one commit per ``group``."""
    addrs = home_addresses(nodes)
    sas = associations(addrs)
    modes = {name: Mode(name, addrs, sas, d) for name in MODES}
    per_round: list[dict[str, tuple[float, float]]] = []
    try:
        for name in MODES:  # unmeasured: the first registrations create the bindings
            modes[name].run(requests(addrs, sas, 1.0), 1.0, group, daemon)
            modes[name].result = Result(name)
        for r in range(rounds):
            now = 2.0 + r
            rates: dict[str, tuple[float, float]] = {}
            for name in MODES if r % 2 == 0 else MODES[::-1]:
                # fresh requests per mode (an accepted Identification cannot come twice)
                rates[name] = modes[name].run(requests(addrs, sas, now), now, group, daemon)
            per_round.append(rates)
        for m in modes.values():
            assert len(m.ha.bindings) == nodes, (m.result.mode, len(m.ha.bindings))
    finally:
        for m in modes.values():
            m.close()
    return Run({name: m.result for name, m in modes.items()}, per_round)


def report(run: Run, title: str) -> list[str]:
    stores = MODES[1:]
    lines = [
        title,
        "per second of busy time (CPU + commit waits), and in brackets of wall-clock time",
        f"{'round':<6} {'memory /s':>17} "
        + " ".join(f"{m + ' /s':>17} {'x memory':>11}" for m in stores),
    ]

    def cell(rates: tuple[float, float]) -> str:
        return f"{rates[1]:>7,.0f} ({rates[0]:>7,.0f})"

    for i, r in enumerate(run.rounds, 1):
        mem = r["memory"]
        cells = " ".join(
            f"{cell(r[m])} {r[m][1] / mem[1]:>4.2f} ({r[m][0] / mem[0]:>4.2f})" for m in stores
        )
        lines.append(f"{i:<6} {cell(mem)} {cells}")
    totals = {m: (res.rate, res.busy_rate) for m, res in run.results.items()}
    cells = " ".join(f"{cell(totals[m])} {'':>11}" for m in stores)
    lines.append(f"{'all':<6} {cell(totals['memory'])} {cells}")
    medians = ", ".join(
        f"{m} {run.median_ratio(m):.2f} ({run.median_ratio(m, busy=False):.2f})" for m in stores
    )
    commits = ", ".join(f"{m} {run.results[m].commits}" for m in stores)
    lines.append(f"median ratio to memory: {medians}; commits: {commits}")
    return lines


# ----------------------------------------------------------------------------------------
# --daemon: mip4 ha with and without [store], driven by mip4 bench registrations' generator
# ----------------------------------------------------------------------------------------


def daemon_bench(
    nodes: int,
    rounds: int,
    duration: float,
    window: int,
    log_level: str,
    d: Path,
    synchronous: str = "full",
) -> list[dict[str, dict[str, float]]]:
    """Per pair of rounds: the accepted-replies rate of ``first`` and ``renew`` of each
    mode (``off``/``on``)."""
    import secrets

    from mip4.tools.bench_registrations import Bench, Options, build
    from mip4.tools.bench_registrations.nodes import Nodes, ha_config

    opts = Options(
        sas=(nodes,),
        nodes=nodes,
        duration=duration,
        rounds=rounds,
        window=window,
        prefix="bs" + secrets.token_hex(2),
        log_level=log_level,
        fa=False,
    )
    bench = Bench(opts, build(), d)

    def start(mode: str, i: int) -> tuple[subprocess.Popen[bytes], Path]:
        n = bench.nodes
        sock, conf = d / f"ha-{mode}-{i}.sock", d / f"ha-{mode}-{i}.toml"
        text = ha_config(
            Nodes(nodes, n.home_network, n.home_agent, n.home_base, n.seed, n.spi_base),
            interface=bench.link_ha,
            tun_name=bench.tun,
            control_socket=sock,
            log_level=log_level,
        )
        if mode == "on":
            text += f'\n[store]\npath = "{d / f"ha-{i}.db"}"\nsynchronous = "{synchronous}"\n'
        conf.write_text(text)
        argv = [sys.executable, "-m", "mip4.cli", "ha", "--config", str(conf)]
        proc = bench.popen(bench.ns_ha, argv, d / f"{conf.stem}.log")
        deadline = time.monotonic() + 120 + nodes / 1000
        while not (sock.exists() and bench.status(sock) is not None):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (d / f"{conf.stem}.log").read_text()[-2000:]
                raise RuntimeError(f"mip4 ha ({mode}) did not start: {log}")
            time.sleep(0.1)
        return proc, sock

    pairs: list[dict[str, dict[str, float]]] = []
    try:
        bench.setup()
        for i in range(rounds):
            pair: dict[str, dict[str, float]] = {}
            for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                proc, _sock = start(mode, i)
                try:
                    rates: dict[str, float] = {}
                    for what in ("first", "renew"):
                        r = bench.measure(what, proc.pid, 434)
                        if what == "first" and r["accepted"] < nodes:
                            bench.loadgen("first", 434, 60)  # bind the rest, unmeasured
                        rates[what] = float(r["rate"])
                    pair[mode] = rates
                    bench.loadgen("dereg", 434, 60)
                finally:
                    proc.send_signal(2)
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(10)
                    bench.procs.remove(proc)
            pairs.append(pair)
    finally:
        bench.close()
    return pairs


def pair_ratios(pairs: Sequence[dict[str, dict[str, float]]], what: str) -> list[float]:
    return [p["on"][what] / p["off"][what] if p["off"][what] else 0.0 for p in pairs]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mip4.tools.bench_store", description=__doc__)
    p.add_argument("--nodes", type=int, default=2000, help="mobile nodes (default 2000)")
    p.add_argument(
        "--rounds", type=int, default=5, help="interleaved round groups / pairs (default 5)"
    )
    p.add_argument("--group", type=int, default=64, help="requests per commit (default 64)")
    p.add_argument("--dir", type=Path, default=None, help="where the store files go")
    p.add_argument("--batch", type=int, default=0, help="also show one commit per K requests")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--daemon", action="store_true", help="real mip4 ha, namespaces (root)")
    p.add_argument("--duration", type=float, default=2.0, help="--daemon: s per measurement")
    p.add_argument("--window", type=int, default=128, help="--daemon: requests outstanding")
    p.add_argument("--log-level", default="info", help="--daemon: the home agent's log level")
    p.add_argument(
        "--synchronous", default="full", choices=("full", "normal"), help="--daemon: [store]"
    )
    args = p.parse_args(argv)
    if args.nodes < 1 or args.rounds < 1 or args.group < 1:
        p.error("--nodes, --rounds and --group must be at least 1")
    if args.daemon:
        if not 0 < args.duration <= 60 or args.window < 1:
            p.error("--duration 0..60 s, --window >= 1")
        if os.geteuid() != 0:
            print("bench_store --daemon: needs root (network namespaces)", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory(prefix="mip4-bench-store-", dir=args.dir) as tmp:
            d = Path(tmp)
            fs = filesystem(d)
            pairs = daemon_bench(
                args.nodes,
                args.rounds,
                args.duration,
                args.window,
                args.log_level,
                d,
                args.synchronous,
            )
        ratios = {w: pair_ratios(pairs, w) for w in ("first", "renew")}
        medians = {w: median(r) for w, r in ratios.items()}
        if args.json:
            print(
                json.dumps({"pairs": pairs, "ratios": ratios, "medians": medians, "filesystem": fs})
            )
            return 0
        print(
            f"mip4 ha, {args.nodes} nodes, window {args.window}, log level {args.log_level},"
            f" {args.rounds} pairs of rounds (off/on, on/off, ...), store on {fs}"
            f" (synchronous = {args.synchronous})"
        )
        print(
            f"{'pair':<5} {'first off/s':>11} {'on/s':>8} {'ratio':>6}"
            f" {'renew off/s':>12} {'on/s':>8} {'ratio':>6}"
        )
        for i, pr in enumerate(pairs, 1):
            print(
                f"{i:<5} {pr['off']['first']:>11,.0f} {pr['on']['first']:>8,.0f}"
                f" {ratios['first'][i - 1]:>6.2f} {pr['off']['renew']:>12,.0f}"
                f" {pr['on']['renew']:>8,.0f} {ratios['renew'][i - 1]:>6.2f}"
            )
        worst = min(medians.values())
        verdict = "meets" if worst >= TARGET else "MISSES"
        print(
            f"\nmedian ratio: first {medians['first']:.2f}, renew {medians['renew']:.2f}:"
            f" {verdict} the target of {TARGET}x"
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="mip4-bench-store-", dir=args.dir) as tmp:
        d = Path(tmp)
        run = bench(args.nodes, args.rounds, d, args.group)
        batched = None
        if args.batch > 0:
            (d / "b").mkdir()
            batched = bench(args.nodes, args.rounds, d / "b", args.batch, daemon=False)
        fs = filesystem(d)
    median_of = {name: 1.0 if name == "memory" else run.median_ratio(name) for name in MODES}
    if args.json:
        out = {
            "nodes": args.nodes,
            "rounds": args.rounds,
            "group": args.group,
            "filesystem": fs,
            "rates": {n: r.busy_rate for n, r in run.results.items()},
            "wall_rates": {n: r.rate for n, r in run.results.items()},
            "ratios": median_of,
            "wall_ratios": {n: run.median_ratio(n, busy=False) for n in MODES[1:]},
            "round_ratios": {n: run.ratios(n) for n in MODES[1:]},
            "round_wall_ratios": {n: run.ratios(n, busy=False) for n in MODES[1:]},
            "target": TARGET,
        }
        if batched is not None:
            out["batched"] = {n: r.busy_rate for n, r in batched.results.items()}
        print(json.dumps(out))
    else:
        title = (
            f"home agent registrations, {args.nodes} nodes, {args.rounds} interleaved renewal"
            f" rounds per mode, the daemon's commits (full: {args.group} per wakeup, off the"
            f" loop; normal: one per request), store on {fs} (pid {os.getpid()})"
        )
        print("\n".join(report(run, title)))
        if batched is not None:
            title = f"\nfor comparison: one commit per {args.batch} requests, on the loop's thread"
            print("\n".join(report(batched, title)))
        full = median_of["sqlite-full"]
        wall = run.median_ratio("sqlite-full", busy=False)
        verdict = "meets" if full >= TARGET else "MISSES"
        print(
            f"\nmedian ratio with the default (synchronous = full) {full:.2f} busy time,"
            f" {wall:.2f} wall clock: {verdict} the target of {TARGET}x"
            f" (normal: {median_of['sqlite-normal']:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
