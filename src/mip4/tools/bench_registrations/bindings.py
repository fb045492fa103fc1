"""``mip4 bench bindings``: a real ``mip4 ha`` filled to ``--nodes`` bindings (issue 13).

What is measured
----------------
The namespaces, load generator and home agent configuration of ``mip4 bench registrations``
(:class:`~.run.Bench`: ``<prefix>h`` holds the home agent, ``<prefix>g`` the generator, one
veth pair; one MN-HA security association per node in a subscriber table). The home agent
runs the data plane it chooses by default (``[io] dataplane = "auto"``: the tc-BPF fast
path where the kernel loads it) and, with more nodes than the fast path's maps hold by
default (65,536), ``[io] fast_path_capacity = --nodes`` (written by
:meth:`~.run.Bench.start_ha`). In one run, against one home agent the bench starts itself:

* **startup**: from the start of ``mip4 ha`` with N security associations to its control
  socket answering; its RSS then (``/proc/<pid>/status`` ``VmRSS``);
* **fill**: each of the N nodes registers once, with no binding at the home agent (the
  generator's ``first`` mode, ``--window`` requests outstanding, a lost request sent again
  after 5 s): accepted replies, first registrations per second of wall time, the home
  agent's CPU time per accepted one (its CPU clock); then its RSS and the RSS growth
  per binding (all layers of the daemon: engine, executor, fast path bookkeeping);
* **bound**: from ``mip4 status`` (bounded by its listing limit: the ``*_total`` keys count)
  the bindings, the data plane, the fast path's capacity and any map that refused an entry;
  the kernel's proxy-ARP entries in the home agent's namespace (``ip neigh show proxy``:
  the bpf plane answers ARP for absent nodes from a map, so none), and the routes of its
  main table (the base count plus one per binding);
* **renewals** at N bindings for ``--renew-seconds`` (the generator's ``renew`` mode, cycling
  over the nodes): accepted per second, CPU time per renewal, and the RSS after them (a
  binding that is renewed costs no more memory);
* **deregistrations** (with ``--deregister``): every node deregisters (lifetime 0, the
  generator's ``dereg`` mode): accepted per second, CPU time each, and the routes of the
  main table after them (the base count again: each binding's route deleted). With it the
  stop below is the stop of a home agent with no binding;
* **expiry** (with ``--expire L``, issue 13's "no pause longer than 10 ms ... from expiry
  at 1 M bindings", seen from outside): every node but the first P
  (:func:`probe_nodes`: a tenth, at most 1,000) registers once more with lifetime L and
  then falls silent; the P nodes renew (4 requests outstanding) from then until L plus
  the time that pass took plus 5 s have gone, while the others' bindings expire at the
  home agent (its timer, one route delete each). The probe's longest silence is an upper
  bound of the home agent's longest pause during the mass expiry; the probe also says how
  much of that silence it was itself runnable and waiting for a CPU (its run delay from
  ``schedstat``: the generator shares the CPUs with the home agent's threads). Then the
  bindings (from ``mip4 status``, waited for until they are P, at most 60 s) and the main
  table's routes (the base count plus P); from the home agent's counters, the longest
  one of its timer calls took (since its start: here the expiry's) in wall time, and how
  much of that its loop's thread sat on a run queue, runnable but without a CPU
  (``schedstat``'s run delay: other threads and processes, the softirqs in their own
  threads; time the host took from the running machine, steal, is not in it); the most
  CPU time its loop's thread spent in one (the call's own work, without the time it waited
  for the GIL, a CPU or the host), how many of its timer calls went past 10 ms (in wall
  time; in CPU time; and only for want of a CPU: less than 10 ms once the run-queue wait
  is taken off), and its route deletes off the loop's thread (how many, the
  longest batch in the kernel); and the share of the machine's CPU time the host took
  from it during the probe (``steal`` of ``/proc/stat``: on a virtual machine, time in
  which none of its programs ran, a pause the home agent cannot cause or avoid);
* **stop**: SIGTERM, the time until the process exited, and its exit status; then what is
  left behind in the home agent's namespace against what was there before it started: the
  fast path's maps pinned (``ip netns exec`` mounts a fresh ``/sys`` without a bpffs, so the
  bench binds a bpffs of its own at the home agent's ``/sys/fs/bpf``, where the daemon pins
  its maps as on a host, and counts the pins from outside during the run and after the
  stop), tc filters and ``clsact`` qdiscs, links (the TUN device; the kernel's fallback
  tunnel devices such as ``tunl0``, which appear in every namespace when a module loads,
  are not counted), routes, proxy-ARP entries and ``net.ipv4.ip_forward``.

Every generator loop is bounded (``--fill-seconds``, ``--renew-seconds`` and ``--max``
requests); the stop is bounded too (then SIGKILL, reported as the exit status). The daemon
is stopped by process id, the namespaces deleted and the bpffs unmounted on success,
failure, Ctrl-C and SIGTERM. A human table by default, one JSON object with ``--json``.
Figures depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mip4.io.bpf import CAPACITY
from mip4.tools.procstat import STEAL, cpu_ticks

from .run import Bench, BenchError, Options, _cpu, _rss_kib, _stop, run_bench

NAME = "mip4 bench bindings"
#: The most nodes: the home network (``Nodes.for_count``) stays inside 10.128.0.0/9.
MAX_NODES = 1 << 22
#: Devices the kernel makes in every namespace when a tunnel module loads (not the home
#: agent's: not counted as left behind).
FALLBACK_DEVICES = frozenset(
    {"tunl0", "gre0", "gretap0", "erspan0", "ip_vti0", "sit0", "ip6tnl0", "ip6gre0", "ip6_vti0"}
)
#: The daemon's command, bound to the bench's bpffs at its /sys/fs/bpf first ($0: the
#: bpffs; "$@": the daemon's argv). ``ip netns exec`` gave it a mount namespace of its own.
_WITH_BPFFS = 'mount --bind "$0" /sys/fs/bpf && exec "$@"'


@dataclass(frozen=True)
class BindingsOptions:
    nodes: int
    renew_seconds: float = 10.0
    fill_seconds: float = 1200.0
    window: int = 256
    #: 0: 4 x --nodes, at least 2,000,000 (a bound: the renewals end at --renew-seconds)
    max_requests: int = 0
    prefix: str = ""
    log_level: str = "info"
    seed: int = 1
    #: every node deregisters after the renewals (measured), before the stop
    deregister: bool = False
    #: > 0: the expiry phase, every node but the probe's with this lifetime (seconds)
    expire: int = 0

    def bench_options(self) -> Options:
        """The :class:`~.run.Options` of the namespaces and the home agent: one SA count,
        no foreign agent, no many-sources route, no flood."""
        return Options(
            sas=(self.nodes,),
            nodes=self.nodes,
            duration=self.renew_seconds,
            rounds=1,
            window=self.window,
            max_requests=self.max_requests or max(4 * self.nodes, 2_000_000),
            prefix=self.prefix,
            log_level=self.log_level,
            seed=self.seed,
            fa=False,
            flood=False,
            sources=0,
        )


def _number(name: str, text: str, kind: type[int] | type[float], low: float, high: float) -> Any:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name}: {text!r} is not {what}") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: {text} not in {low:,}..{high:,}")
    return value


def options(args: argparse.Namespace) -> BindingsOptions:
    """The options, or ``ValueError`` with a one-line message."""
    if args.nodes is None:
        raise ValueError("--nodes N is required")
    nodes = _number("--nodes", args.nodes, int, 1, MAX_NODES)
    prefix = args.prefix or "bb" + secrets.token_hex(2)
    if len(prefix) > 12 or not prefix.replace("-", "").isalnum():
        raise ValueError("--prefix: at most 12 letters, digits or '-' (interface names)")
    return BindingsOptions(
        nodes=nodes,
        renew_seconds=_number("--renew-seconds", args.renew_seconds, float, 0.1, 600),
        fill_seconds=_number("--fill-seconds", args.fill_seconds, float, 1, 7200),
        window=_number("--window", args.window, int, 1, 65536),
        max_requests=_number("--max", args.max, int, 0, 1 << 31),
        prefix=prefix,
        log_level=args.log_level,
        seed=_number("--seed", args.seed, int, 0, (1 << 63) - 1),
        deregister=args.deregister,
        expire=_expire(args),
    )


def _expire(args: argparse.Namespace) -> int:
    if args.expire is None:
        return 0
    if args.deregister:
        raise ValueError("--expire: not with --deregister (the nodes are gone by then)")
    value: int = _number("--expire", args.expire, int, 1, 300)
    return value


def probe_nodes(nodes: int) -> int:
    """How many nodes keep renewing in the expiry phase: a tenth, at least 1, at most
    1,000 (the others expire)."""
    return max(1, min(1000, nodes // 10))


class BindingsBench(Bench):
    """:class:`~.run.Bench` with a bpffs of its own (``<workdir>/bpffs``), bound at the home
    agent's ``/sys/fs/bpf``, so the pins the daemon makes can be counted from outside."""

    def __init__(self, opts: BindingsOptions, loadgen: Path, workdir: Path) -> None:
        super().__init__(opts.bench_options(), loadgen, workdir)
        self.options = opts
        self.bpffs = workdir / "bpffs"
        self.mounted = False
        #: what a fresh bpffs holds before the daemon pins anything (the kernel's
        #: ``maps.debug``/``progs.debug`` iterators, where it preloads them)
        self.pins_base: frozenset[str] = frozenset()

    def setup(self) -> None:
        self.bpffs.mkdir(exist_ok=True)
        r = subprocess.run(
            ["mount", "-t", "bpf", "bpf", str(self.bpffs)], capture_output=True, text=True
        )
        if r.returncode != 0:
            raise BenchError(f"mount -t bpf {self.bpffs}: {r.stderr.strip()}")
        self.mounted = True
        self.pins_base = frozenset(self.pins())
        super().setup()

    def popen(self, ns: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        if ns == self.ns_ha and self.mounted:
            argv = ["sh", "-c", _WITH_BPFFS, str(self.bpffs), *argv]
        return super().popen(ns, argv, log)

    def close(self) -> None:
        super().close()
        if self.mounted:  # pins and all: the maps go with the last reference
            subprocess.run(["umount", "-l", str(self.bpffs)], capture_output=True)
            self.mounted = False

    # -- what the home agent's namespace holds --------------------------------------------

    def pins(self) -> list[str]:
        """The files under the bench's bpffs made since it was mounted (pinned maps and
        programs; directories are not pins)."""
        return sorted(
            str(p.relative_to(self.bpffs))
            for p in self.bpffs.rglob("*")
            if not p.is_dir() and str(p.relative_to(self.bpffs)) not in self.pins_base
        )

    def in_ha(self, *argv: str) -> list[str]:
        """``argv``'s output lines, run in the home agent's namespace."""
        r = subprocess.run(
            ["ip", "netns", "exec", self.ns_ha, *argv],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            raise BenchError(f"{' '.join(argv)} in {self.ns_ha}: {r.stderr.strip()}")
        return [line for line in r.stdout.splitlines() if line.strip()]

    def links(self) -> set[str]:
        lines = self.in_ha("ip", "-o", "link", "show")
        names = {line.split(":")[1].strip().split("@")[0] for line in lines}
        return names - FALLBACK_DEVICES

    def routes(self) -> int:
        return len(self.in_ha("ip", "-4", "route", "show", "table", "main"))

    def proxy_entries(self) -> int:
        return len(self.in_ha("ip", "neigh", "show", "proxy"))

    def forwarding(self) -> str:
        return self.in_ha("cat", "/proc/sys/net/ipv4/ip_forward")[0].strip()

    def tc_left(self) -> list[str]:
        """tc filters on either hook and ``clsact`` qdiscs of every link."""
        out = []
        for link in sorted(self.links()):
            for hook in ("ingress", "egress"):
                lines = self.in_ha("tc", "filter", "show", "dev", link, hook)
                out += [f"{link} {hook}: {line.strip()}" for line in lines]
            lines = self.in_ha("tc", "qdisc", "show", "dev", link)
            out += [f"{link}: {line.strip()}" for line in lines if "clsact" in line]
        return out

    def state(self) -> dict[str, Any]:
        return {
            "links": sorted(self.links()),
            "routes": self.routes(),
            "proxy_entries": self.proxy_entries(),
            "ip_forward": self.forwarding(),
        }

    # -- the run ------------------------------------------------------------------------

    def run_bindings(self) -> dict[str, Any]:
        n = self.options.nodes
        out: dict[str, Any] = {"nodes": n}
        base = self.state()
        out["base"] = base
        ha, sock, startup = self.start_ha(n)
        pid = ha.pid
        out["dataplane"] = (self.status(sock) or {}).get("dataplane")
        out["startup_s"] = round(startup, 2)
        rss0 = _rss_kib(pid) or 0
        out["rss_start_mib"] = round(rss0 / 1024, 1)

        out["first"] = first = self.each_node_once("first", pid)
        accepted = first["accepted"]
        rss1 = _rss_kib(pid) or 0
        out["rss_bound_mib"] = round(rss1 / 1024, 1)
        out["rss_per_binding"] = round((rss1 - rss0) * 1024 / accepted) if accepted else None

        status = self.status(sock)
        if status is None:
            raise BenchError("mip4 status: no answer with the nodes bound")
        out["bindings_total"] = status.get("home_agent", {}).get("bindings_total")
        fast = status.get("fast_path")
        out["fast_path"] = (
            None
            if fast is None
            else {"capacity": fast.get("capacity"), "map_full": fast.get("map_full", {})}
        )
        out["kernel_proxy_entries"] = self.proxy_entries()
        out["routes"] = self.routes()
        out["links_bound"] = sorted(self.links())
        out["bpf_pins"] = len(self.pins())

        c0 = _cpu(pid)
        r = self.loadgen("renew", 434, self.options.renew_seconds)
        cpu = _cpu(pid) - c0
        accepted = int(r["accepted"])
        out["renew"] = {
            "seconds": self.options.renew_seconds,
            "rate": r["rate"],
            "accepted": accepted,
            "cpu_us": round(cpu / accepted * 1e6, 1) if accepted else None,
            "codes": r.get("codes"),
            "gap_max_ms": r.get("gap_max_ms"),
        }
        out["rss_after_renew_mib"] = round((_rss_kib(pid) or 0) / 1024, 1)

        if self.options.deregister:
            out["dereg"] = dereg = self.each_node_once("dereg", pid)
            dereg["routes"] = self.routes()
        if self.options.expire:
            out["expire"] = self.expire_all_but_probe(pid, sock)

        out["stop_s"] = round(_stop(ha, timeout=120 + n / 1000), 2)
        self.procs.remove(ha)
        out["exit"] = ha.returncode
        out["after_stop"] = after = self.after_stop()
        out["left_behind"] = left_behind(base, after)
        return out

    def each_node_once(self, mode: str, pid: int, **nodes: Any) -> dict[str, Any]:
        """Every node sends one request of ``mode`` (the generator's ``first`` or
        ``dereg``), bounded by ``--fill-seconds``: accepted, per second of wall time, the
        home agent's CPU each, the longest silence, and the generator's own figures.
        ``nodes``: which nodes and with what lifetime (:meth:`~.run.Bench.loadgen`'s
        ``first``, ``count``, ``lifetime``; default every node, the generator's)."""
        c0, t0 = _cpu(pid), time.monotonic()
        r = self.loadgen(mode, 434, self.options.fill_seconds, **nodes)
        wall, cpu = time.monotonic() - t0, _cpu(pid) - c0
        accepted = int(r["accepted"])
        return {
            "accepted": accepted,
            "rate": round(accepted / wall, 1) if wall > 0 else None,
            "cpu_us": round(cpu / accepted * 1e6, 1) if accepted else None,
            "wall_s": round(wall, 2),
            "gap_max_ms": r.get("gap_max_ms"),
            "loadgen": {k: r.get(k) for k in ("rate", "sent", "timeouts", "codes")},
        }

    def expire_all_but_probe(self, pid: int, sock: Path) -> dict[str, Any]:
        """The expiry phase (``--expire``; the module's docstring says what is measured)."""
        n, life = self.options.nodes, self.options.expire
        probe = probe_nodes(n)
        out: dict[str, Any] = {"lifetime": life, "nodes": n - probe, "probe_nodes": probe}
        short: dict[str, Any] = {}
        if n > probe:
            short = self.each_node_once("first", pid, first=probe, count=n - probe, lifetime=life)
        out["short"] = short
        seconds = min(600.0, life + short.get("wall_s", 0.0) + 5)
        c0, s0 = _cpu(pid), steal_jiffies()
        r = self.loadgen("renew", 434, seconds, count=probe, window=min(4, probe), run_delay=True)
        s1 = steal_jiffies()
        out["probe"] = {
            "seconds": round(seconds, 1),
            "rate": r["rate"],
            "accepted": int(r["accepted"]),
            "codes": r.get("codes"),
            "gap_max_ms": r.get("gap_max_ms"),
            "gap_max_waiting_ms": r.get("gap_max_waiting_ms"),
            "ha_cpu_s": round(_cpu(pid) - c0, 2),
            "steal_pct": steal_pct(s0, s1),
        }
        deadline = time.monotonic() + 60
        while True:
            status = self.status(sock) or {}
            total = (status.get("home_agent") or {}).get("bindings_total")
            if total == probe or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        out["bindings_after"] = total
        counters = status.get("counters") or {}
        # the longest a timer call kept the home agent's loop, since its start (the
        # expiry is the timer's work here)
        driver = counters.get("driver") or {}
        for key in ("timer_longest", "timer_longest_cpu"):
            us = driver.get(f"{key}_us")
            out[f"{key}_ms"] = None if us is None else round(us / 1000, 1)
        if "timer_longest_cpu_us" in driver:  # (a home agent that counts them)
            out["timer_calls"] = driver.get("timers", 0)
            out["timer_over_10ms"] = driver.get("timer_over_10ms", 0)
            out["timer_cpu_over_10ms"] = driver.get("timer_cpu_over_10ms", 0)
        if "timer_longest_queued_us" in driver:  # (a home agent that reads its run delay)
            out["timer_over_10ms_queued"] = driver.get("timer_over_10ms_queued", 0)
            out["timer_longest_queued_ms"] = round(driver["timer_longest_queued_us"] / 1000, 1)
        if "timer_costliest_engine_us" in driver:  # (where the costliest call's CPU went)
            out["timer_costliest"] = {
                "engine_ms": round(driver["timer_costliest_engine_us"] / 1000, 1),
                "system_ms": round(driver.get("timer_costliest_system_us", 0) / 1000, 1),
                "faults": driver.get("timer_costliest_faults", 0),
                "actions": driver.get("timer_costliest_actions", 0),
            }
        executor = counters.get("executor") or {}
        out["route_deletes"] = {
            k.removeprefix("route_"): v
            for k, v in executor.items()
            if k.startswith("route_deletes_") or k == "route_delete_deferred"
        }
        out["routes_after"] = self.routes()
        return out

    def after_stop(self) -> dict[str, Any]:
        """:meth:`state` with the pins under the bench's bpffs and the tc filters and
        ``clsact`` qdiscs: what :func:`left_behind` compares with the state before."""
        after = self.state()
        after["bpf_pins"] = self.pins()
        after["tc"] = self.tc_left()
        return after


def left_behind(base: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What the stopped home agent left in its namespace, readable; ``[]``: nothing."""
    left = [f"bpf pin {p}" for p in after["bpf_pins"]]
    left += [f"tc {t}" for t in after["tc"]]
    left += [f"link {name}" for name in sorted(set(after["links"]) - set(base["links"]))]
    if after["routes"] != base["routes"]:
        left.append(f"routes {after['routes']} (base {base['routes']})")
    if after["proxy_entries"] != base["proxy_entries"]:
        left.append(f"proxy-ARP entries {after['proxy_entries']} (base {base['proxy_entries']})")
    if after["ip_forward"] != base["ip_forward"]:
        left.append(f"ip_forward {after['ip_forward']} (base {base['ip_forward']})")
    return left


def _n(x: Any) -> str:
    return "-" if x is None else f"{round(x):,}" if x >= 100 else f"{x:,}"


def _silence(phase: dict[str, Any]) -> str:
    """The generator's longest wait for a reply with requests outstanding (the loadgen's
    ``gap_max_ms``): an upper bound of the home agent's longest pause in the phase; and,
    where measured (the expiry's probe), how much of it the generator itself sat on a run
    queue (``gap_max_waiting_ms``): that part is not the home agent's."""
    gap = phase.get("gap_max_ms")
    if gap is None:
        return ""
    waiting = phase.get("gap_max_waiting_ms")
    mine = "" if waiting is None else f" ({waiting:,.1f} ms of it the generator waiting for a CPU)"
    return f"; longest silence {gap:,.1f} ms{mine}"


def _off_loop(deletes: dict[str, Any]) -> str:
    """The expired bindings' route deletes off the loop's thread (the home agent's
    ``route_deletes_*`` counters): how many, and the longest batch in the kernel."""
    if "deletes_longest_us" not in deletes:
        return ""
    return (
        f"; {_n(deletes.get('deletes_sent', 0))} route deletes off the loop's thread, the"
        f" longest batch {deletes['deletes_longest_us'] / 1000:,.1f} ms in the kernel"
        + (
            f", at most {_n(deletes['deletes_most_queued'])} queued"
            if "deletes_most_queued" in deletes
            else ""
        )
    )


def steal_jiffies() -> tuple[int, int] | None:
    """The machine's CPU time the host took from it (``steal``) and all its CPU time, in
    clock ticks since boot (``/proc/stat``'s first line); ``None`` where it cannot be read."""
    try:
        ticks = cpu_ticks()
    except OSError:
        return None
    return ticks[STEAL], sum(ticks)


def steal_pct(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Stolen time as a share of all CPU time between two :func:`steal_jiffies`."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 2)


def _timer(expire: dict[str, Any]) -> str:
    wall, cpu = expire.get("timer_longest_ms"), expire.get("timer_longest_cpu_ms")
    text = "" if wall is None else f"; the longest timer call {wall:,.1f} ms"
    queued = expire.get("timer_longest_queued_ms")
    if wall is not None and queued is not None:
        text += f" ({queued:,.1f} ms of it waiting for a CPU)"
    if cpu is not None:
        text += f", the most CPU time in one {cpu:,.1f} ms"
        costliest = expire.get("timer_costliest")
        if costliest:
            text += (
                f" (the engine's {costliest['engine_ms']:,.1f} ms, the kernel's"
                f" {costliest['system_ms']:,.1f} ms, {costliest['faults']:,} page faults,"
                f" {costliest['actions']:,} actions)"
            )
    calls = expire.get("timer_calls")
    if calls is not None:
        which = f"{expire['timer_cpu_over_10ms']:,} in CPU time"
        if "timer_over_10ms_queued" in expire:
            which += f"; {expire['timer_over_10ms_queued']:,} only for want of a CPU"
        text += f"; {expire['timer_over_10ms']:,} of {calls:,} timer calls over 10 ms ({which})"
    return text


def _steal(probe: dict[str, Any]) -> str:
    pct = probe.get("steal_pct")
    return "" if pct is None else f" (host steal {pct:g} % of CPU time)"


def format_report(out: dict[str, Any]) -> str:
    n = out["nodes"]
    first, renew, base = out["first"], out["renew"], out["base"]
    fast = out.get("fast_path")
    if fast is None:
        fp = "no fast path"
    else:
        full = ", ".join(f"{k} {v:,}" for k, v in fast["map_full"].items()) or "no map full"
        fp = f"fast path capacity {_n(fast['capacity'])} per map, {full}"
    left = out["left_behind"]
    rows = [
        ("startup", f"{out['startup_s']:.1f} s with {n:,} SAs, RSS {out['rss_start_mib']} MiB"),
        (
            "fill",
            f"{_n(first['accepted'])} of {n:,} first registrations accepted, "
            f"{_n(first['rate'])}/s, HA CPU {_n(first['cpu_us'])} us each" + _silence(first),
        ),
        ("bound", f"RSS {out['rss_bound_mib']} MiB, {_n(out['rss_per_binding'])} bytes/binding"),
        ("mip4 status", f"{_n(out['bindings_total'])} bindings, {out['dataplane']} plane, {fp}"),
        ("proxy-ARP", f"{out['kernel_proxy_entries']:,} kernel entries"),
        (
            "routes",
            f"{out['routes']:,} in the main table (base {base['routes']}); "
            f"{out['bpf_pins']} bpf pins",
        ),
        (
            "renewals",
            f"{_n(renew['rate'])}/s over {renew['seconds']:g} s at {n:,} bindings, "
            f"HA CPU {_n(renew['cpu_us'])} us each; RSS after {out['rss_after_renew_mib']} MiB"
            + _silence(renew),
        ),
    ]
    dereg = out.get("dereg")
    if dereg is not None:
        rows.append(
            (
                "deregister",
                f"{_n(dereg['accepted'])} of {n:,} deregistrations accepted, {_n(dereg['rate'])}/s,"
                f" HA CPU {_n(dereg['cpu_us'])} us each; routes after {dereg['routes']:,}"
                + _silence(dereg),
            )
        )
    expire = out.get("expire")
    if expire is not None:
        short, probe = expire["short"], expire["probe"]
        rows.append(
            (
                "expiry",
                f"{_n(short.get('accepted'))} of {expire['nodes']:,} nodes registered again with"
                f" lifetime {expire['lifetime']} s ({_n(short.get('rate'))}/s) and let expire;"
                f" {expire['probe_nodes']:,} probe nodes renewed {_n(probe['rate'])}/s over"
                f" {probe['seconds']:g} s" + _steal(probe) + _silence(probe) + f"; bindings"
                f" after {_n(expire['bindings_after'])}, routes {expire['routes_after']:,}"
                + _off_loop(expire.get("route_deletes") or {})
                + _timer(expire),
            )
        )
    rows += [
        ("stop", f"SIGTERM: {out['stop_s']:.1f} s, exit {out['exit']}"),
        ("left behind", "nothing" if not left else "; ".join(left)),
    ]
    head = (
        f"{NAME}: a real mip4 ha filled to {n:,} bindings, prefix {out['prefix']}, python "
        f"{out['python']}, {out['cpus']} CPUs, load {out['load']} -> {out['load_after']}"
    )
    return "\n".join([head, ""] + [f"{k:<12} {v}" for k, v in rows])


def add_arguments(p: argparse.ArgumentParser) -> None:
    # numbers are read as text and checked in options(): a bad one is one line, exit 2
    p.add_argument("--nodes", help="simulated nodes, each bound once (required; 1..4,194,304)")
    p.add_argument(
        "--renew-seconds", default="10", help="seconds of renewals at N bindings (default 10)"
    )
    p.add_argument(
        "--fill-seconds",
        default="1200",
        help="bound on the fill (default 1200 s; it ends when every node is bound)",
    )
    p.add_argument("--window", default="256", help="requests outstanding (default 256)")
    p.add_argument(
        "--max", default="0", help="most requests per generator run (default 4 x N, >= 2M)"
    )
    p.add_argument("--prefix", default="", help="namespace/link name prefix (default random)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="the home agent's log level (default info)",
    )
    p.add_argument("--seed", default="1", help="seed of the nodes' keys")
    p.add_argument(
        "--deregister",
        action="store_true",
        help="every node deregisters after the renewals (measured); the stop then has none",
    )
    p.add_argument(
        "--expire",
        default=None,
        metavar="SECONDS",
        help="after the renewals all but a probe set of nodes register with this lifetime"
        " (1..300) and expire while the probe renews (its longest silence is measured)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_bench(
        NAME,
        args,
        options,
        lambda opts: {"window": opts.window, "fast_path_capacity_set": opts.nodes > CAPACITY},
        BindingsBench,
        BindingsBench.run_bindings,
        format_report,
        workdir_prefix="mip4-bench-bindings-",
        needs="network namespaces, bpffs",
    )


def register(subparsers: Any) -> None:
    """Adds ``bindings`` to ``mip4 bench``'s subcommands."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "bindings",
        help="a real mip4 ha filled to N bindings: startup, fill, RSS, renewals, clean stop",
        description=(__doc__ or "").split("\n\n")[0],
    )
    add_arguments(p)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=NAME)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
