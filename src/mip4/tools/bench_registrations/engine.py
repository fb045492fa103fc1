"""``mip4 bench engine``: the home agent engine alone, no I/O, at 1,000 and 1,000,000 bindings.

What is measured
----------------
Each table size runs in a fresh child process (so its RSS is its own): ``N`` mobile nodes,
each with its own MN-HA security association (SPI ``256 + i``, a distinct HMAC-MD5 key,
timestamps), are loaded into a :class:`~mip4.security.sa.SecurityAssociations` store as
the rows of a subscriber table (:meth:`~mip4.security.sa.SecurityAssociations.add_row`: the
records the daemon keeps for a table's rows; ``--store objects`` loads association
objects, as ``[[security_associations]]`` does) (then
the collector is set up as the daemon does it, :func:`mip4.daemon.run.settle_collector`:
what was loaded is frozen, and so are the survivors of every older-generation collection;
``--gc default`` leaves Python's collector as it is) and register once with
:meth:`HomeAgent.handle` (**first**). Then ``--renew-nodes`` of them renew, ``--rounds``
times, best kept (**renew**): the first ones, in the order they registered, or with
``--order random`` as many picked over the whole table, in a shuffled order (at 1 M
bindings the node order walks the integer-keyed tables slot after slot; a population
renews in no such order). The Registration Requests are signed before each timed batch
(the signing is the mobile node's work, not the agent's); the timed loop is
``ha.handle(UdpReceived(...), now)`` and nothing else. Then every binding expires at once and
``handle_timer`` is called until none is left: the longest single call is reported (issue
13: no pause over 10 ms). A full ``gc.collect()`` with the table loaded is timed too.

The baseline, measured in the same run in the smallest child: **decode+verify**, what any
agent must do per request (``RegistrationRequest.decode`` and the MN-HA check through
:func:`mip4.security.auth.verify`) and nothing else. The report gives each rate as a ratio to
it and the renewal rate at each size as a ratio to the smallest size (issue 13's targets:
engine >= 60,000 registrations/s; at 1 M bindings within 10 % of an empty engine; 1 M
bindings with their SAs in < 1 GiB RSS).

Times are process CPU time (``time.process_time``) by default, the pauses too (the longest
``handle_timer`` call, the longest collection): the machine is shared, and wall time would
count other processes' slices; ``--clock wall`` gives elapsed time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import Any

#: the home network: room for 16 M nodes (node i has home address BASE + i)
NETWORK = IPv4Network("10.0.0.0/8")
HOME_AGENT = IPv4Address("10.0.0.1")
BASE = int(IPv4Address("10.0.1.0"))
COA = IPv4Address("198.18.0.2")
UNIX0 = 1_790_000_000.0
LIFETIME = 600
BATCH = 10_000


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _key(i: int) -> bytes:
    """Node ``i``'s 16-byte key (distinct per node; derived, not secret)."""
    x = (i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & (2**64 - 1)
    return x.to_bytes(8, "big") + (x ^ 0xD1B54A32D192ED03).to_bytes(8, "big")


def child(
    n: int,
    renew_nodes: int,
    rounds: int,
    clock: str,
    baseline: bool,
    gc_policy: str = "daemon",
    order: str = "nodes",
    sa_store: str = "table",
) -> dict[str, Any]:
    """Everything measured for one table size (run in a child process)."""
    from mip4.core.events import UdpReceived
    from mip4.core.home_agent import HomeAgent, HomeAgentConfig
    from mip4.security.auth import MN_HA, sign, verify
    from mip4.security.replay import ntp_timestamp
    from mip4.security.sa import SecurityAssociation, SecurityAssociations
    from mip4.wire.extensions import MobileHomeAuthExtension
    from mip4.wire.messages import NO_FLAGS, RegistrationRequest

    tick: Callable[[], float] = time.process_time if clock == "cpu" else time.perf_counter
    out: dict[str, Any] = {"bindings": n}
    # every automatic collection while the table is built, renewed and expired: the
    # longest pause and how many were full (generation 2) ones
    pauses: dict[str, float] = {"longest_ms": 0.0, "full": 0, "start": 0.0}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            pauses["start"] = tick()
            return
        pauses["longest_ms"] = max(pauses["longest_ms"], (tick() - pauses["start"]) * 1000)
        pauses["full"] += info["generation"] == 2

    from mip4.daemon.allocator import keep_large_blocks_mapped
    from mip4.daemon.run import freeze_survivors, settle_collector  # (before rss0)

    keep_large_blocks_mapped()  # as the daemon sets the C allocator up before loading
    rss0 = _rss_kib()
    t0 = time.perf_counter()
    store = SecurityAssociations()
    add = store.add_row if sa_store == "table" else store.add
    for i in range(n):
        add(IPv4Address(BASE + i), SecurityAssociation(256 + i, _key(i)))
    out["load_s"] = time.perf_counter() - t0
    if gc_policy == "daemon":
        settle_collector()  # as the daemon does after loading, and then on
    out["gc_policy"] = gc_policy
    out["sa_store"] = sa_store
    rss1 = _rss_kib()
    out["sa_bytes"] = (rss1 - rss0) * 1024 / n
    config = HomeAgentConfig(
        address=HOME_AGENT, home_network=NETWORK, interface="home0", max_bindings=n + 1
    )
    ha = HomeAgent(config, store, UNIX0)
    gc.callbacks.append(on_gc)

    def requests(nodes: Sequence[int], now: float, lifetime: int = LIFETIME) -> list[UdpReceived]:
        events = []
        for i in nodes:
            hoa = IPv4Address(BASE + i)
            ident = ntp_timestamp(UNIX0 + now, low=i & 0xFFFFFFFF)
            req = RegistrationRequest(NO_FLAGS, lifetime, hoa, HOME_AGENT, COA, ident, ())
            raw = sign(req, MobileHomeAuthExtension, SecurityAssociation(256 + i, _key(i))).raw
            assert raw is not None
            events.append(UdpReceived(raw, COA, HOME_AGENT, 434, 434, "wan0", None, ttl=64))
        return events

    def timed(events: list[UdpReceived], now: float) -> float:
        handle = ha.handle
        t = tick()
        for ev in events:
            handle(ev, now)
        return tick() - t

    # first registrations of every node
    spent = 0.0
    for start in range(0, n, BATCH):
        batch = requests(range(start, min(n, start + BATCH)), 0.0)
        spent += timed(batch, 0.0)
    if len(ha.bindings) != n:
        raise RuntimeError(f"{len(ha.bindings)} bindings after {n} first registrations")
    out["first_rate"] = n / spent
    rss2 = _rss_kib()
    out["binding_bytes"] = (rss2 - rss1) * 1024 / n
    out["rss_mib"] = rss2 / 1024

    # renewals, best of rounds: the first m nodes, in node order (the order they
    # registered in) or, --order random, spread over the whole table in a shuffled order
    # (a population renews when its lifetimes say, not in the order it was loaded)
    m = min(n, renew_nodes)
    renewing: Sequence[int] = range(m)
    if order == "random":
        import random

        renewing = random.Random(13).sample(range(n), m)
    out["order"] = order
    best = 0.0
    for r in range(1, rounds + 1):
        batch = requests(renewing, float(r))
        best = max(best, m / timed(batch, float(r)))
        for i in (renewing[0], renewing[-1]):
            (b,) = ha.bindings.bindings_of(IPv4Address(BASE + i))
            if b.registered_at != float(r):
                raise RuntimeError(f"node {i}'s renewal in round {r} was not accepted")
    if len(ha.bindings) != n:
        raise RuntimeError("renewals lost bindings")
    out["renew_rate"] = best
    out["renew_nodes"] = m

    # a full collection with the table loaded (what a gen-2 pause costs)
    gc.callbacks.remove(on_gc)
    t = tick()
    gc.collect()
    out["gc_full_ms"] = (tick() - t) * 1000
    gc.callbacks.append(on_gc)

    # mass expiry: every binding at once (the renewed ones a little later)
    now = float(rounds + LIFETIME + 1)
    calls, longest = 0, 0.0
    while (deadline := ha.next_deadline()) is not None and deadline <= now:
        t = tick()
        ha.handle_timer(now)
        longest = max(longest, tick() - t)
        calls += 1
    if len(ha.bindings):
        raise RuntimeError(f"{len(ha.bindings)} bindings left after the mass expiry")
    gc.callbacks.remove(on_gc)
    out["gc_longest_pause_ms"] = pauses["longest_ms"]
    out["gc_automatic_full"] = int(pauses["full"])
    out["expiry_calls"] = calls
    out["expiry_longest_ms"] = longest * 1000
    out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if baseline:
        batch = requests(renewing, float(rounds + 1))
        decode = RegistrationRequest.decode
        best = 0.0
        for _ in range(rounds):
            t = tick()
            for ev in batch:
                msg = decode(ev.payload)
                verify(msg, MN_HA, store.lookup(msg.home_address))
            best = max(best, m / (tick() - t))
        out["decode_verify_rate"] = best
    if gc_policy == "daemon":  # (a child exits next; a caller in-process gets it back)
        gc.callbacks.remove(freeze_survivors)
        gc.unfreeze()
    return out


def _run_child(n: int, args: argparse.Namespace, baseline: bool) -> dict[str, Any]:
    argv = [sys.executable, "-m", "mip4.tools.bench_registrations.engine", "--child", str(n)]
    argv += ["--renew-nodes", str(args.renew_nodes), "--rounds", str(args.rounds)]
    argv += ["--clock", args.clock, "--gc", args.gc, "--order", args.order]
    argv += ["--store", args.store]
    argv += ["--baseline"] if baseline else []
    r = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{n} bindings: {r.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(r.stdout)
    return result


def format_report(out: dict[str, Any]) -> str:
    sizes = out["sizes"]
    base = sizes[0]
    dv = base.get("decode_verify_rate") or 0.0
    head = f"python {out['python']}, cpus {out['cpus']}, load {out['load']}, clock {out['clock']}"
    head += f", gc {base.get('gc_policy', 'daemon')}, order {base.get('order', 'nodes')}"
    head += f", SAs as {base.get('sa_store', 'objects')}"
    lines = [f"mip4 bench engine ({head})", ""]
    lines.append(
        f"{'bindings':>10} {'first/s':>9} {'renew/s':>9} {'x empty':>8} {'x d+v':>6} "
        f"{'B/SA':>6} {'B/bind':>7} {'RSS MiB':>8} {'gc ms':>7} {'pause ms':>8} "
        f"{'expiry ms':>9}"
    )
    for s in sizes:
        ratio = s["renew_rate"] / base["renew_rate"]
        xdv = s["renew_rate"] / dv if dv else 0.0
        lines.append(
            f"{s['bindings']:>10,} {s['first_rate']:>9,.0f} {s['renew_rate']:>9,.0f} "
            f"{ratio:>7.2f}x {xdv:>5.2f}x {s['sa_bytes']:>6,.0f} {s['binding_bytes']:>7,.0f} "
            f"{s['rss_mib']:>8,.0f} {s['gc_full_ms']:>7,.1f} "
            f"{s.get('gc_longest_pause_ms', 0):>8,.1f} {s['expiry_longest_ms']:>9,.2f}"
        )
    lines += [
        "",
        f"baseline decode+verify (MN-HA, no engine): {dv:,.0f}/s",
        "renew/s: renewals of the first --renew-nodes nodes, best of the rounds; x empty: "
        "against the smallest table; B/SA, B/bind: RSS growth per SA loaded and per binding "
        "made; gc ms: one full gc.collect() with the table loaded; pause ms: the longest "
        "automatic collection during the run; expiry ms: the longest handle_timer call "
        "while every binding expires at once (a collection inside it included)",
    ]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--bindings",
        default="1000,1000000",
        help="table sizes, one child process each (default 1000,1000000)",
    )
    p.add_argument("--renew-nodes", type=int, default=20_000, help="nodes renewing per round")
    p.add_argument("--rounds", type=int, default=3, help="renewal rounds, best kept")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    p.add_argument(
        "--gc",
        choices=("daemon", "default"),
        default="daemon",
        help="the collector as mip4's daemons set it up (freeze after loading and the "
        "survivors of older-generation collections; default) or Python's default",
    )
    p.add_argument(
        "--order",
        choices=("nodes", "random"),
        default="nodes",
        help="which nodes renew: the first --renew-nodes in the order they registered "
        "(default), or as many picked over the whole table in a shuffled order",
    )
    p.add_argument(
        "--store",
        choices=("table", "objects"),
        default="table",
        help="the SAs as a subscriber table's rows, as the daemon keeps them (default), or "
        "as association objects ([[security_associations]])",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per table size")


def run(args: argparse.Namespace) -> int:
    name = "mip4 bench engine"
    try:
        sizes = sorted(int(x) for x in args.bindings.split(",") if x)
        if not sizes or sizes[0] < 1 or args.renew_nodes < 1 or args.rounds < 1:
            raise ValueError("--bindings: counts >= 1; --renew-nodes, --rounds >= 1")
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
        "clock": args.clock,
        "renew_nodes": args.renew_nodes,
    }
    try:
        out["sizes"] = [_run_child(n, args, i == 0) for i, n in enumerate(sizes)]
    except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    out["load_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2) if args.json else format_report(out))
    return 0


def register(subparsers: Any) -> None:
    """Adds ``engine`` to ``mip4 bench``'s subcommands."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "engine",
        help="the home agent engine alone: registrations/s and memory at 1 k and 1 M bindings",
        description=(__doc__ or "").split("\n\n")[0],
    )
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mip4 bench engine")
    add_arguments(p)
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        result = child(
            args.child,
            args.renew_nodes,
            args.rounds,
            args.clock,
            args.baseline,
            args.gc,
            args.order,
            args.store,
        )
        print(json.dumps(result))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
