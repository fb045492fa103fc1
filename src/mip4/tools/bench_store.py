"""Registrations per second with the binding store on and off, in the same run (issue 15).

``python -m mip4.tools.bench_store [--nodes N] [--rounds R] [--dir DIR]``

The home agent engine processes N mobile nodes' Registration Requests (each signed with
its own MN-HA association, HMAC-MD5, timestamp replay protection), R rounds each (the
first round creates the bindings, the others renew them), in three modes:

=============== ===========================================================================
``memory``      the in-memory binding store (what runs without ``[store]``)
``sqlite-full`` :class:`~mip4.store.SqliteStore`, ``synchronous = "full"`` (the default)
``sqlite-normal`` the same with ``synchronous = "normal"``
=============== ===========================================================================

With a store, each request is handled as the daemon handles it: ``handle(event, now)``,
then the commit of what it wrote (the binding and the replay state) **before** its actions
would be carried out (:class:`mip4.daemon.run.TimedDriver`): one commit per registration,
no batching, a reply never ahead of its commit. ``--batch K`` also shows what committing
once per K requests would give (the daemon does not do that).

The modes are interleaved round by round (memory, full, normal, memory, ...) so that the
load of a shared machine falls on all of them alike; the rate of each mode is its
registrations over its total time, and each store mode's rate is printed with its ratio to
``memory`` (the target: at least 0.8). Requests are signed before the clock starts; what is
timed is the engine (decode, verify, replay check, binding, signed reply) and the store.
The store files go to ``--dir`` (default: a temporary directory, removed at the end): the
file system there decides what a commit costs, and it is printed.

``--daemon`` (root: network namespaces) measures the real thing instead: ``mip4 ha``
without and with ``[store]`` (``synchronous = "full"``, or ``--synchronous normal``),
started one after the other and
alternated ``--rounds`` times, each driven by the compiled load generator of ``mip4 bench
registrations`` (its :class:`~mip4.tools.bench_registrations.Bench`: namespaces, load
generator, measurement), ``first`` registrations and ``renew``-als, best round kept. There
the daemon's commit policy applies: with ``full``, group commit (the datagrams one wakeup
reads, up to 64, committed together, their replies waiting for that commit); with
``normal``, one commit per input.
"""

from __future__ import annotations

import argparse
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
MODES = ("memory", "sqlite-full", "sqlite-normal")


@dataclass
class Result:
    mode: str
    registrations: int = 0
    seconds: float = 0.0
    commits: int = 0

    @property
    def rate(self) -> float:
        return self.registrations / self.seconds if self.seconds else 0.0


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

    def run(self, events: Sequence[UdpReceived], now: float, batch: int) -> None:
        ha, store = self.ha, self.store
        handle = ha.handle
        commit: Callable[[], None] = store.commit if store is not None else (lambda: None)
        t0 = time.perf_counter()
        if batch <= 1:
            for ev in events:
                handle(ev, now)
                commit()
        else:
            for i, ev in enumerate(events, 1):
                handle(ev, now)
                if i % batch == 0:
                    commit()
            commit()
        self.result.seconds += time.perf_counter() - t0
        self.result.registrations += len(events)
        if store is not None:
            self.result.commits = store.commits

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


def bench(nodes: int, rounds: int, d: Path, batch: int = 1) -> dict[str, Result]:
    addrs = home_addresses(nodes)
    sas = associations(addrs)
    modes = {name: Mode(name, addrs, sas, d) for name in MODES}
    try:
        for r in range(rounds):
            now = 1.0 + r
            for name in MODES:
                # fresh requests per mode (an accepted Identification cannot come twice)
                modes[name].run(requests(addrs, sas, now), now, batch)
        for m in modes.values():
            assert len(m.ha.bindings) == nodes, (m.result.mode, len(m.ha.bindings))
    finally:
        for m in modes.values():
            m.close()
    return {name: m.result for name, m in modes.items()}


def report(results: dict[str, Result], title: str) -> list[str]:
    base = results["memory"].rate
    lines = [title, f"{'mode':<15} {'registrations/s':>16} {'commits':>8} {'x memory':>9}"]
    for name, r in results.items():
        ratio = r.rate / base if base else 0.0
        lines.append(f"{name:<15} {r.rate:>16,.0f} {r.commits:>8} {ratio:>9.2f}")
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
) -> dict[str, dict[str, float]]:
    """Best accepted-replies rate of ``first`` and ``renew`` per mode (``off``/``on``)."""
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

    best: dict[str, dict[str, float]] = {"off": {}, "on": {}}
    try:
        bench.setup()
        for i in range(rounds):
            for mode in ("off", "on"):
                proc, _sock = start(mode, i)
                try:
                    for what in ("first", "renew"):
                        r = bench.measure(what, proc.pid, 434)
                        if what == "first" and r["accepted"] < nodes:
                            bench.loadgen("first", 434, 60)  # bind the rest, unmeasured
                        best[mode][what] = max(best[mode].get(what, 0.0), float(r["rate"]))
                    bench.loadgen("dereg", 434, 60)
                finally:
                    proc.send_signal(2)
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(10)
                    bench.procs.remove(proc)
    finally:
        bench.close()
    return best


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mip4.tools.bench_store", description=__doc__)
    p.add_argument("--nodes", type=int, default=2000, help="mobile nodes (default 2000)")
    p.add_argument("--rounds", type=int, default=5, help="registrations per node (default 5)")
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
    if args.nodes < 1 or args.rounds < 1:
        p.error("--nodes and --rounds must be at least 1")
    if args.daemon:
        if not 0 < args.duration <= 60 or args.window < 1:
            p.error("--duration 0..60 s, --window >= 1")
        if os.geteuid() != 0:
            print("bench_store --daemon: needs root (network namespaces)", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory(prefix="mip4-bench-store-", dir=args.dir) as tmp:
            d = Path(tmp)
            fs = filesystem(d)
            best = daemon_bench(
                args.nodes,
                args.rounds,
                args.duration,
                args.window,
                args.log_level,
                d,
                args.synchronous,
            )
        ratios = {w: best["on"][w] / best["off"][w] for w in ("first", "renew")}
        if args.json:
            print(json.dumps({"daemon": best, "ratios": ratios, "filesystem": fs}))
            return 0
        print(
            f"mip4 ha, {args.nodes} nodes, window {args.window}, log level {args.log_level},"
            f" best of {args.rounds} alternating rounds, store on {fs}"
            f" (synchronous = {args.synchronous})"
        )
        print(f"{'measure':<8} {'no store /s':>12} {'store /s':>10} {'ratio':>6}")
        for w in ("first", "renew"):
            print(f"{w:<8} {best['off'][w]:>12,.0f} {best['on'][w]:>10,.0f} {ratios[w]:>6.2f}")
        worst = min(ratios.values())
        verdict = "meets" if worst >= TARGET else "MISSES"
        print(f"\nworst ratio {worst:.2f}: {verdict} the target of {TARGET}x")
        return 0
    with tempfile.TemporaryDirectory(prefix="mip4-bench-store-", dir=args.dir) as tmp:
        d = Path(tmp)
        results = bench(args.nodes, args.rounds, d)
        batched = None
        if args.batch > 1:
            (d / "b").mkdir()
            batched = bench(args.nodes, args.rounds, d / "b", args.batch)
        fs = filesystem(d)
    base = results["memory"].rate
    ratios = {name: r.rate / base for name, r in results.items()}
    if args.json:
        out = {
            "nodes": args.nodes,
            "rounds": args.rounds,
            "filesystem": fs,
            "rates": {n: r.rate for n, r in results.items()},
            "ratios": ratios,
            "target": TARGET,
        }
        if batched is not None:
            out["batched"] = {n: r.rate for n, r in batched.items()}
        print(json.dumps(out))
    else:
        title = (
            f"home agent registrations, {args.nodes} nodes x {args.rounds} rounds, one commit "
            f"per registration, store on {fs} (pid {os.getpid()})"
        )
        print("\n".join(report(results, title)))
        if batched is not None:
            print("\n".join(report(batched, f"\nfor comparison: one commit per {args.batch}")))
        worst = min(ratios["sqlite-full"], ratios["sqlite-normal"])
        verdict = "meets" if worst >= TARGET else "MISSES"
        print(f"\nworst ratio {worst:.2f}: {verdict} the target of {TARGET}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
