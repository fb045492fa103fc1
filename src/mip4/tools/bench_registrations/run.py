"""Orchestration and command line of ``mip4 bench registrations`` (what is measured: the
package's docstring).

Two namespaces, ``<prefix>h`` (the home agent and the echo server) and ``<prefix>g`` (the
load generator), joined by one veth pair; the generator's address is the co-located
care-of address of every simulated node, except in the many-sources measurements, where
node j sends from, and registers, an address of ``SOURCE_NET`` (local to the generator's
namespace as a whole: ``ip route add local SOURCE_NET dev lo``; routed back by the home
agent's namespace via the generator's link). Everything is created with ``ip`` (argument lists,
no shell) and deleted in ``finally``; the daemon and the echo server are stopped by process
id first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mip4.io.bpf import CAPACITY

from .build import BuildError, build
from .nodes import Nodes, ha_config, write_subscriber_table
from .report import format_report

#: The veth link: the home agent's side and the generator's (the care-of address).
LINK_HA = IPv4Address("198.18.0.1")
LINK_GEN = IPv4Address("198.18.0.2")
#: The foreign agent's visited link (the generator's second leg) and its link to the HA.
FA_VISITED = IPv4Address("198.18.1.1")
GEN_VISITING = IPv4Address("198.18.1.2")
HA_TO_FA = IPv4Address("198.18.2.1")
FA_TO_HA = IPv4Address("198.18.2.2")
#: The forged flood's own source address (a second address of the generator's veth end).
FLOOD_SRC = IPv4Address("198.18.0.3")
#: The flood starts this long before the renewals it is measured against, and ends this
#: long after them.
FLOOD_LEAD_S = 0.3
FLOOD_TAIL_S = 0.5
#: Under the flood a valid request whose reply has not come back in this long is sent
#: again (alone: 5 s, never reached). Without it the window of --window outstanding
#: requests is lost in the first milliseconds of a flood that fills the home agent's socket
#: buffer, and nothing more is sent: a figure of the generator, not of the home agent.
FLOOD_RETRY_S = 0.2
#: The many-sources measurements' co-located care-of addresses (issue 13): each takes a
#: fresh block of ``--sources`` addresses from here (``source_base``), never accepted by the
#: home agent before, so that flood steering reads the first request of each from its
#: general socket. 198.18.0.0/15 is the benchmarking range (RFC 2544), like the links.
SOURCE_NET = IPv4Network("198.19.0.0/16")
ECHO_PORT = 7
MEASURED = ("echo", "first", "renew")


class BenchError(RuntimeError):
    pass


@dataclass
class Options:
    sas: tuple[int, ...] = (1000, 1_000_000)
    nodes: int = 1000
    duration: float = 2.0
    rounds: int = 3
    window: int = 128
    max_requests: int = 2_000_000
    prefix: str = ""
    log_level: str = "info"
    seed: int = 1
    #: also measure requests relayed by a real ``mip4 fa`` in a third namespace
    fa: bool = True
    #: also measure renewals under a flood of forged requests
    flood: bool = True
    #: forged requests per second (0: as fast as sendmmsg goes) and at most how many
    flood_rate: float = 0.0
    max_flood: int = 20_000_000
    #: first registrations from this many source addresses (node j from the
    #: ``j % sources``-th), alone and under the flood; 0: not measured
    sources: int = 1000
    #: the home agent's ``[io] flood_steering`` (off: one socket, for comparison)
    steering: bool = True
    #: the foreign agent's ``[io] fast_path_relay`` (issue 13; off: its daemon relays
    #: every datagram, for comparison)
    fa_kernel_relay: bool = True


def _ip(*argv: str) -> None:
    r = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise BenchError(f"ip {' '.join(argv)}: {r.stderr.strip()}")


def _cpu(pid: int) -> float:
    """CPU seconds process ``pid`` has used, all its threads, the exited ones too.

    Read from the process's own CPU clock (``clock_getcpuclockid(3)``: the clock id is
    ``(~pid << 3) | CPUCLOCK_SCHED``), which counts nanoseconds; ``/proc/<pid>/stat``'s
    utime + stime count 10 ms ticks, too coarse for a short pass (50 registrations take
    about 5 ms). Falls back to those ticks where the clock cannot be read."""
    try:
        return time.clock_gettime((~pid << 3) | 2)
    except OSError:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> float:
    """SIGTERM, then SIGKILL, by process id; returns how long the process took to exit."""
    t0 = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return time.monotonic() - t0


class Bench:
    def __init__(self, opts: Options, loadgen: Path, workdir: Path) -> None:
        self.opts = opts
        self.exe = loadgen
        self.dir = workdir
        p = opts.prefix
        self.ns_ha, self.ns_gen, self.ns_fa = f"{p}h", f"{p}g", f"{p}f"
        self.link_ha, self.link_gen, self.tun = f"{p}h0", f"{p}g0", f"{p}t"
        self.netns: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.nodes = Nodes.for_count(max(opts.sas), seed=opts.seed)
        #: blocks of ``--sources`` addresses of SOURCE_NET handed out since the home
        #: agent started (a new one has never been trusted)
        self.source_blocks = 0

    # -- namespaces ---------------------------------------------------------------------

    def setup(self) -> None:
        for ns in (self.ns_ha, self.ns_gen):
            _ip("netns", "add", ns)
            self.netns.append(ns)
        _ip(
            *("-n", self.ns_ha, "link", "add", self.link_ha, "type", "veth"),
            *("peer", "name", self.link_gen, "netns", self.ns_gen),
        )
        net = self.nodes.home_network
        _ip("-n", self.ns_ha, "addr", "add", f"{self.nodes.home_agent}/{net.prefixlen}", "dev",
            self.link_ha)  # fmt: skip
        _ip("-n", self.ns_ha, "addr", "add", f"{LINK_HA}/24", "dev", self.link_ha)
        _ip("-n", self.ns_gen, "addr", "add", f"{LINK_GEN}/24", "dev", self.link_gen)
        _ip("-n", self.ns_gen, "addr", "add", f"{FLOOD_SRC}/24", "dev", self.link_gen)
        for ns, link in ((self.ns_ha, self.link_ha), (self.ns_gen, self.link_gen)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", link, "up")
        _ip("-n", self.ns_gen, "route", "add", str(net), "via", str(LINK_HA))
        if self.opts.sources:  # AnyIP: every address of SOURCE_NET is the generator's
            _ip("-n", self.ns_gen, "route", "add", "local", str(SOURCE_NET), "dev", "lo")
            _ip("-n", self.ns_ha, "route", "add", str(SOURCE_NET), "via", str(LINK_GEN))
        if self.opts.fa:
            self.setup_fa()

    def setup_fa(self) -> None:
        """``<prefix>f``: the foreign agent, between the generator (visited link) and the
        home agent (its own link; it relays requests from its care-of address)."""
        p, fa, ha, gen = self.opts.prefix, self.ns_fa, self.ns_ha, self.ns_gen
        _ip("netns", "add", fa)
        self.netns.append(fa)
        _ip("-n", fa, "link", "add", f"{p}f0", "type", "veth", "peer", "name", f"{p}g1",
            "netns", gen)  # fmt: skip
        _ip("-n", fa, "link", "add", f"{p}f1", "type", "veth", "peer", "name", f"{p}h1",
            "netns", ha)  # fmt: skip
        _ip("-n", fa, "addr", "add", f"{FA_VISITED}/24", "dev", f"{p}f0")
        _ip("-n", fa, "addr", "add", f"{FA_TO_HA}/24", "dev", f"{p}f1")
        _ip("-n", gen, "addr", "add", f"{GEN_VISITING}/24", "dev", f"{p}g1")
        _ip("-n", ha, "addr", "add", f"{HA_TO_FA}/24", "dev", f"{p}h1")
        for ns, link in ((fa, f"{p}f0"), (fa, f"{p}f1"), (gen, f"{p}g1"), (ha, f"{p}h1")):
            _ip("-n", ns, "link", "set", link, "up")
        _ip("-n", fa, "link", "set", "lo", "up")
        _ip("-n", fa, "route", "add", str(self.nodes.home_network), "via", str(HA_TO_FA))
        _ip("-n", ha, "route", "add", f"{FA_VISITED}/32", "via", str(FA_TO_HA))

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                _stop(proc, 10)
        for ns in reversed(self.netns):
            with contextlib.suppress(Exception):
                _ip("netns", "del", ns)
        self.netns.clear()

    def popen(self, ns: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it
            )
        self.procs.append(proc)
        return proc

    # -- the processes ------------------------------------------------------------------

    def start_echo(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "mip4.tools.bench_registrations", "--echo-server"]
        argv.append(f"{self.nodes.home_agent}:{ECHO_PORT}")
        proc = self.popen(self.ns_ha, argv, self.dir / "echo.log")
        deadline = time.monotonic() + 20
        while "ready" not in (self.dir / "echo.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"echo server did not start: {self._tail('echo.log')}")
            time.sleep(0.05)
        return proc

    def _tail(self, name: str) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / name).read_text()[-2000:]
        return ""

    def status(self, sock: Path) -> dict[str, Any] | None:
        r = subprocess.run(
            [sys.executable, "-m", "mip4.cli", "status", "--socket", str(sock), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if r.returncode != 0:
            return None
        result: dict[str, Any] = json.loads(r.stdout)
        return result

    def start_ha(self, count: int) -> tuple[subprocess.Popen[bytes], Path, float]:
        nodes = Nodes(
            count,
            self.nodes.home_network,
            self.nodes.home_agent,
            self.nodes.home_base,
            self.nodes.seed,
            self.nodes.spi_base,
        )
        sock = self.dir / f"ha-{count}.sock"
        conf = self.dir / f"ha-{count}.toml"
        table = self.dir / f"subscribers-{count}.csv"
        write_subscriber_table(nodes, table)
        conf.write_text(
            ha_config(
                nodes,
                interface=self.link_ha,
                tun_name=self.tun,
                control_socket=sock,
                log_level=self.opts.log_level,
                subscribers=table,
                flood_steering=self.opts.steering,
                # more nodes than the bpf plane's maps hold by default: room for all
                fast_path_capacity=self.opts.nodes if self.opts.nodes > CAPACITY else None,
            )
        )
        t0 = time.monotonic()
        self.source_blocks = 0  # a new home agent: no source trusted yet
        argv = [sys.executable, "-m", "mip4.cli", "ha", "--config", str(conf)]
        proc = self.popen(self.ns_ha, argv, self.dir / f"ha-{count}.log")
        deadline = t0 + 120 + count / 1000
        while True:
            if proc.poll() is not None:
                log = self._tail(f"{conf.stem}.log")
                raise BenchError(f"mip4 ha exited ({proc.returncode}): {log}")
            if time.monotonic() > deadline:
                raise BenchError("mip4 ha: control socket not answering")
            if sock.exists() and self.status(sock) is not None:
                return proc, sock, time.monotonic() - t0
            time.sleep(0.1)

    def start_fa(self) -> tuple[subprocess.Popen[bytes], Path]:
        p = self.opts.prefix
        sock, conf = self.dir / "fa.sock", self.dir / "fa.toml"
        pending = 4 * max(self.opts.nodes, self.opts.window)
        conf.write_text(
            "[foreign_agent]\n"
            "advertisement_interval = 1.0\n"
            f"max_pending = {pending}\n"
            f"max_visitors = {pending}\n\n"
            "[[foreign_agent.links]]\n"
            f'interface = "{p}f0"\n'
            f'address = "{FA_VISITED}"\n'
            "prefix_len = 24\n\n"
            "[io]\n"
            # the visited link and the link to the home agent: the bpf plane's program on
            # both relays the usual renewal and its acceptance (issue 13)
            f'interfaces = ["{p}f0", "{p}f1"]\n'
            f"fast_path_relay = {'true' if self.opts.fa_kernel_relay else 'false'}\n"
            f'tun_name = "{p}u"\n\n'
            "[daemon]\n"
            'name = "bench"\n'
            f'control_socket = "{sock}"\n'
            f'log_level = "{self.opts.log_level}"\n'
        )
        argv = [sys.executable, "-m", "mip4.cli", "fa", "--config", str(conf)]
        proc = self.popen(self.ns_fa, argv, self.dir / "fa.log")
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise BenchError(f"mip4 fa exited ({proc.returncode}): {self._tail('fa.log')}")
            if time.monotonic() > deadline:
                raise BenchError("mip4 fa: control socket not answering")
            if sock.exists() and self.status(sock) is not None:
                return proc, sock
            time.sleep(0.1)

    def loadgen(
        self,
        mode: str,
        port: int,
        duration: float,
        max_requests: int | None = None,
        via_fa: bool = False,
        timeout: float = 5.0,
        sources: IPv4Address | None = None,
        first: int = 0,
        count: int | None = None,
        lifetime: int | None = None,
        window: int | None = None,
        run_delay: bool = False,
    ) -> dict[str, Any]:
        """One generator run; with ``sources``, node j sends from and registers
        ``sources + j % --sources`` (its socket bound to 0.0.0.0: it receives the replies to
        all of them). ``first``, ``count``: the nodes ``first`` .. ``first + count - 1``
        only (default all); ``lifetime``: the requests' (default the generator's 1800 s);
        ``window``: requests outstanding (default ``--window``); ``run_delay``: the
        generator also reports how long it waited for a CPU within its longest silence
        (``gap_max_waiting_ms``)."""
        n = self.nodes
        server, coa, local = (
            (FA_VISITED, FA_VISITED, GEN_VISITING) if via_fa else (n.home_agent, LINK_GEN, LINK_GEN)
        )
        argv = [str(self.exe), "--server", str(server), "--port", str(port)]
        argv += ["--home-base", str(n.home_base), "--ha", str(n.home_agent)]
        argv += ["--coa", str(coa)]
        if sources is None:
            argv += ["--bind", str(local)]
        else:
            argv += ["--sources", str(self.opts.sources), "--source-base", str(sources)]
        argv += ["--mode", mode]
        argv += ["--flags", "0" if via_fa else "0x20"]
        argv += ["--nodes", str(self.opts.nodes if count is None else count)]
        argv += ["--first", str(first), "--seed", str(n.seed)]
        if lifetime is not None:
            argv += ["--lifetime", str(lifetime)]
        argv += ["--spi-base", str(n.spi_base), "--duration", f"{duration:g}"]
        argv += ["--window", str(window or self.opts.window), "--timeout", f"{timeout:g}"]
        argv += ["--max", str(max_requests or self.opts.max_requests)]
        if run_delay:
            argv.append("--run-delay")
        r = subprocess.run(
            ["ip", "netns", "exec", self.ns_gen, *argv],
            capture_output=True,
            text=True,
            timeout=duration + 30,
        )
        if r.returncode != 0:
            raise BenchError(f"loadgen {mode}: status {r.returncode}: {r.stderr.strip()}")
        result: dict[str, Any] = json.loads(r.stdout)
        return result

    def measure(
        self,
        mode: str,
        server: int,
        port: int,
        relay: int | None = None,
        timeout: float = 5.0,
        sources: IPv4Address | None = None,
    ) -> dict[str, Any]:
        c0 = _cpu(server)
        f0 = _cpu(relay) if relay is not None else 0.0
        r = self.loadgen(
            mode,
            port,
            self.opts.duration,
            via_fa=relay is not None,
            timeout=timeout,
            sources=sources,
        )
        cpu = _cpu(server) - c0
        r["server_cpu_s"] = round(cpu, 3)
        r["cpu_us"] = round(cpu / r["accepted"] * 1e6, 1) if r["accepted"] else None
        if relay is not None:
            fa_cpu = _cpu(relay) - f0
            r["fa_cpu_s"] = round(fa_cpu, 3)
            r["fa_cpu_us"] = round(fa_cpu / r["accepted"] * 1e6, 1) if r["accepted"] else None
        return r

    def _kernel_relayed(self, sock: Path | None) -> dict[str, int]:
        """The foreign agent's counters of what its kernel relayed (issue 13)."""
        counters = ((self.status(sock) if sock is not None else None) or {}).get("counters", {})
        return {
            "requests": int(counters.get("kernel_relayed_requests", 0)),
            "replies": int(counters.get("kernel_relayed_replies", 0)),
            "general": int(counters.get("kernel_relayed_general", 0)),
        }

    def measure_flood(self, server: int, sock: Path, alone: dict[str, Any]) -> dict[str, Any]:
        """Renewals under a flood of forged requests (:meth:`flooded`), their lost requests
        sent again after ``FLOOD_RETRY_S``. ``alone`` is the renewals measured without the
        flood in the same round."""
        r = self.flooded(
            server, sock, lambda: self.measure("renew", server, 434, timeout=FLOOD_RETRY_S)
        )
        # over the whole --duration the generator ran (its elapsed_s ends at the last reply
        # it matched, early when the flood starves it)
        span = r["elapsed_s"] if r["sent"] >= self.opts.max_requests else self.opts.duration
        r["served_rate"] = round((r["accepted"] + r.get("late_accepted", 0)) / span, 1)
        r["alone_rate"] = alone["rate"]
        r["x_alone"] = round(r["served_rate"] / alone["rate"], 3) if alone["rate"] else None
        return r

    def flooded(
        self, server: int, sock: Path, body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """``body()`` (a measurement) under a flood of forged requests: the forge generator
        (its own process, its own source address ``FLOOD_SRC`` and port, the same nodes with
        keys from another seed) starts first and runs open loop for the whole measurement
        (``FLOOD_LEAD_S`` + ``--duration`` + ``FLOOD_TAIL_S``). The home agent's
        namespace's UDP counters (``/proc/net/snmp``) tell whether datagrams were lost in
        its socket buffer; its status, what it accepted and read from each socket."""
        n = self.nodes
        duration = FLOOD_LEAD_S + self.opts.duration + FLOOD_TAIL_S
        argv = [str(self.exe), "--server", str(n.home_agent), "--port", "434"]
        argv += ["--home-base", str(n.home_base), "--ha", str(n.home_agent)]
        argv += ["--coa", str(LINK_GEN), "--bind", str(FLOOD_SRC), "--mode", "forge"]
        argv += ["--nodes", str(self.opts.nodes), "--seed", str(n.seed)]
        argv += ["--spi-base", str(n.spi_base), "--duration", f"{duration:g}"]
        argv += ["--max", str(self.opts.max_flood)]
        if self.opts.flood_rate:
            argv += ["--rate", f"{self.opts.flood_rate:g}"]
        status0 = self.status(sock)
        served0 = _accepted(status0)
        udp0 = _udp_counters(self.ns_ha)
        log = self.dir / "forge.json"
        forge = self.popen(self.ns_gen, argv, log)
        try:
            time.sleep(FLOOD_LEAD_S)
            if forge.poll() is not None:
                raise BenchError(
                    f"loadgen forge exited ({forge.returncode}): {self._tail(log.name)}"
                )
            s0, w0 = _sched(server), time.monotonic()
            r = body()
            s1, wall = _sched(server), time.monotonic() - w0
            forge.wait(duration + 30)
        finally:
            _stop(forge, 10)
            self.procs.remove(forge)
        if forge.returncode != 0:
            raise BenchError(f"loadgen forge: status {forge.returncode}: {self._tail(log.name)}")
        time.sleep(FLOOD_TAIL_S)  # the HA drains its socket of forgeries before what follows
        udp1 = _udp_counters(self.ns_ha)
        status1 = self.status(sock)
        # the home agent's own count of accepting replies (forgeries are never accepted):
        # the valid requests it served, late replies the generator had given up on included
        r["ha_accepted"] = _accepted(status1) - served0
        r["reads"] = _reads(status0, status1)
        # the home agent's main thread over the measurement: on a CPU, and runnable but
        # waiting for one (/proc/<pid>/schedstat), as shares of the wall time
        r["ha_wall_s"] = round(wall, 3)
        r["ha_run_share"] = round((s1[0] - s0[0]) / 1e9 / wall, 3)
        r["ha_wait_share"] = round((s1[1] - s0[1]) / 1e9 / wall, 3)
        flood: dict[str, Any] = json.loads(log.read_text().strip().splitlines()[-1])
        flood["source"] = f"{FLOOD_SRC} (own process, own socket)"
        flood["answered_131"] = int(flood["codes"].get("131", 0))
        for key in ("RcvbufErrors", "InDatagrams", "InErrors"):
            flood[f"ha_udp_{key}"] = udp1.get(key, 0) - udp0.get(key, 0)
        r["flood"] = flood
        r["retry_s"] = FLOOD_RETRY_S
        return r

    def next_sources(self) -> IPv4Address:
        """The first address of a fresh block of ``--sources`` addresses of SOURCE_NET,
        none of them sent an accepting reply by this home agent yet."""
        base = SOURCE_NET.network_address + 1 + self.source_blocks * self.opts.sources
        if int(base) + self.opts.sources > int(SOURCE_NET.broadcast_address):
            raise BenchError(f"--sources {self.opts.sources}: {SOURCE_NET} exhausted")
        self.source_blocks += 1
        return base

    def measure_sources(self, server: int, sock: Path, one: dict[str, Any]) -> dict[str, Any]:
        """First registrations from ``--sources`` never-seen source addresses (node j's
        co-located care-of address and source: a fresh block's ``j % --sources``-th), with
        the bindings of the round gone; then every node deregisters from the same address,
        unmeasured. ``one`` is the same round's first registrations from one source."""
        base = self.next_sources()
        status0 = self.status(sock)
        r = self.measure("first", server, 434, sources=base)
        r["reads"] = _reads(status0, self.status(sock))
        r["source_base"] = str(base)
        _x_one(r, r["rate"], one)
        self.loadgen("dereg", 434, 60, sources=base)  # unmeasured: unbound again
        return r

    def measure_sources_flood(
        self, server: int, sock: Path, one: dict[str, Any], alone: dict[str, Any]
    ) -> dict[str, Any]:
        """:meth:`measure_sources` (another fresh block) under the forged flood
        (:meth:`flooded`), a lost request sent again after ``FLOOD_RETRY_S``. Served rate:
        nodes accepted over the time it took all of them, or over ``--duration``."""
        base = self.next_sources()

        def body() -> dict[str, Any]:
            return self.measure("first", server, 434, timeout=FLOOD_RETRY_S, sources=base)

        r = self.flooded(server, sock, body)
        r["source_base"] = str(base)
        span = r["elapsed_s"] if r["accepted"] >= self.opts.nodes else self.opts.duration
        r["served_rate"] = round(r["accepted"] / span, 1)
        r["alone_rate"] = alone["rate"]
        r["x_alone"] = round(r["served_rate"] / alone["rate"], 3) if alone["rate"] else None
        _x_one(r, r["served_rate"], one)
        self.loadgen("dereg", 434, 60, sources=base)  # unmeasured: unbound again
        return r

    # -- the run ------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        echo = self.start_echo()
        fa, fa_sock = self.start_fa() if self.opts.fa else (None, None)
        best: dict[str, Any] = {"echo": None}
        blocks = []
        for count in self.opts.sas:
            ha, sock, startup = self.start_ha(count)
            results: dict[str, dict[str, Any]] = {}
            for _ in range(self.opts.rounds):
                r = self.measure("echo", echo.pid, ECHO_PORT)
                if best["echo"] is None or r["rate"] > best["echo"]["rate"]:
                    best["echo"] = r
                status0 = self.status(sock)
                r = one = self.measure("first", ha.pid, 434)
                r["reads"] = _reads(status0, self.status(sock))
                if r["accepted"] < self.opts.nodes:  # bind the rest, unmeasured
                    self.loadgen("first", 434, 60)
                if "first" not in results or r["rate"] > results["first"]["rate"]:
                    results["first"] = r
                r = self.measure("renew", ha.pid, 434)
                if "renew" not in results or r["rate"] > results["renew"]["rate"]:
                    results["renew"] = r
                if self.opts.flood:  # the same bindings, the same round's renewals alone
                    f = self.measure_flood(ha.pid, sock, alone=r)
                    best_f = results.get("flood_renew")
                    if best_f is None or f["served_rate"] > best_f["served_rate"]:
                        results["flood_renew"] = f
                self.loadgen("dereg", 434, 60)  # unmeasured: every node unbound again
                if self.opts.sources:  # first registrations from many sources (issue 13)
                    r = self.measure_sources(ha.pid, sock, one=one)
                    best_s = results.get("first_sources")
                    if best_s is None or r["rate"] > best_s["rate"]:
                        results["first_sources"] = r
                    if self.opts.flood:
                        f = self.measure_sources_flood(ha.pid, sock, one=one, alone=r)
                        best_f = results.get("flood_first_sources")
                        if best_f is None or f["served_rate"] > best_f["served_rate"]:
                            results["flood_first_sources"] = f
                if fa is not None:
                    self.loadgen("first", 434, 60, via_fa=True)  # the moves, unmeasured
                    k0 = self._kernel_relayed(fa_sock)
                    r = self.measure("renew", ha.pid, 434, relay=fa.pid)
                    k1 = self._kernel_relayed(fa_sock)
                    # issue 13: of the renewals relayed, the FA's kernel relayed these
                    r["kernel_relayed"] = {k: k1.get(k, 0) - k0.get(k, 0) for k in k1}
                    if "fa_renew" not in results or r["rate"] > results["fa_renew"]["rate"]:
                        results["fa_renew"] = r
                    self.loadgen("dereg", 434, 60, via_fa=True)
            status = self.status(sock) or {}
            accepted = status.get("counters", {}).get("accepted", {})
            rss_kib = _rss_kib(ha.pid)
            shutdown = _stop(ha)
            self.procs.remove(ha)
            blocks.append(
                {
                    "sas": count,
                    "startup_s": round(startup, 2),
                    "shutdown_s": round(shutdown, 2),
                    "ha_exit": ha.returncode,
                    "ha_rss_kib": rss_kib,
                    "ha_accepted": sum(int(v) for v in accepted.values()),
                    "results": results,
                }
            )
        best["sas"] = blocks
        return best


def _x_one(r: dict[str, Any], rate: float, one: dict[str, Any]) -> None:
    """``r``'s rate against the same round's first registrations from one source."""
    r["one_source_rate"] = one["rate"]
    r["x_one_source"] = round(rate / one["rate"], 3) if one["rate"] else None


def _reads(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """What flood steering read from each socket between two ``mip4 status`` snapshots
    (``steering.read_trusted``/``read_general``); ``on`` false: steering was off."""
    st0 = (before or {}).get("steering", {})
    st1 = (after or {}).get("steering", {})
    out: dict[str, Any] = {"on": bool(st1.get("on"))}
    if not st1.get("on"):
        out["why"] = st1.get("why", "no status")
        return out
    for key in ("read_trusted", "read_general", "trusted_drops", "general_drops"):
        out[key] = int(st1.get(key, 0)) - int(st0.get(key, 0))
    out["trusted_sources"] = int(st1.get("trusted_sources", 0))
    return out


def _sched(pid: int) -> tuple[int, int]:
    """Nanoseconds process ``pid``'s main thread has run, and waited runnable for a CPU."""
    fields = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(fields[0]), int(fields[1])


def _accepted(status: dict[str, Any] | None) -> int:
    """The home agent's accepting replies so far (``counters.accepted``, all codes)."""
    if status is None:
        raise BenchError("mip4 ha: control socket not answering")
    return sum(int(v) for v in status.get("counters", {}).get("accepted", {}).values())


def _udp_counters(ns: str) -> dict[str, int]:
    """The ``Udp:`` line of ``/proc/net/snmp`` in namespace ``ns`` (what ``nstat`` reports
    as ``UdpRcvbufErrors`` etc.)."""
    r = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if r.returncode != 0:
        raise BenchError(f"/proc/net/snmp in {ns}: {r.stderr.strip()}")
    return parse_udp_snmp(r.stdout)


def parse_udp_snmp(text: str) -> dict[str, int]:
    """``{"InDatagrams": n, "RcvbufErrors": n, ...}`` from ``/proc/net/snmp``'s two ``Udp:``
    lines (names, then values)."""
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2:
        return {}
    return {k: int(v) for k, v in zip(rows[0], rows[1], strict=False)}


def _rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the namespaces are torn down."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def options(args: argparse.Namespace) -> Options:
    sas = tuple(int(x) for x in args.sas.split(",") if x)
    if not sas or min(sas) < 1:
        raise ValueError("--sas: one or more counts >= 1")
    if args.nodes < 1 or args.nodes > min(sas):
        raise ValueError(f"--nodes: 1..{min(sas)} (the smallest --sas)")
    if not 0 < args.duration <= 60 or args.rounds < 1 or args.window < 1 or args.max < 1:
        raise ValueError("--duration 0..60 s, --rounds, --window and --max >= 1")
    if args.flood_rate < 0 or args.max_flood < 1:
        raise ValueError("--flood-rate >= 0, --max-flood >= 1")
    sources = args.nodes if args.sources is None else args.sources
    # a fresh block of source addresses per measurement, two per round per home agent
    blocks = 2 * args.rounds
    if not 0 <= sources <= args.nodes or blocks * sources > SOURCE_NET.num_addresses - 2:
        raise ValueError(
            f"--sources: 0..{args.nodes} (--nodes), and {blocks} blocks of them "
            f"(2 per round) fit in {SOURCE_NET}"
        )
    prefix = args.prefix or "rb" + secrets.token_hex(2)
    if len(prefix) > 12:
        raise ValueError("--prefix: at most 12 characters (interface names)")
    return Options(
        sas=sas,
        nodes=args.nodes,
        duration=args.duration,
        rounds=args.rounds,
        window=args.window,
        max_requests=args.max,
        prefix=prefix,
        log_level=args.log_level,
        seed=args.seed,
        fa=not args.no_fa,
        flood=not args.no_flood,
        flood_rate=args.flood_rate,
        max_flood=args.max_flood,
        sources=sources,
        steering=not args.no_steering,
        fa_kernel_relay=not args.no_fa_kernel_relay,
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--sas",
        default="1000,1000000",
        help="security associations configured (a subscriber table, CSV), one home agent "
        "start per count (comma-separated; default 1000,1000000)",
    )
    p.add_argument(
        "--nodes", type=int, default=1000, help="simulated nodes that register (default 1000)"
    )
    p.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds, best kept")
    p.add_argument("--window", type=int, default=128, help="requests outstanding")
    p.add_argument("--max", type=int, default=2_000_000, help="most requests per measurement")
    p.add_argument("--prefix", default="", help="namespace/link name prefix (default random)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="the home agent's log level (default info, the daemon's default)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the nodes' keys")
    p.add_argument(
        "--no-fa-kernel-relay",
        action="store_true",
        help="the foreign agent's daemon relays every datagram ([io] fast_path_relay = false)",
    )
    p.add_argument("--no-fa", action="store_true", help="do not measure FA-relayed requests")
    p.add_argument(
        "--no-flood", action="store_true", help="do not measure renewals under a forged flood"
    )
    p.add_argument(
        "--flood-rate",
        type=float,
        default=0.0,
        help="forged requests per second (default 0: as fast as sendmmsg goes)",
    )
    p.add_argument(
        "--max-flood",
        type=int,
        default=20_000_000,
        help="most forged requests per flood (default 20,000,000)",
    )
    p.add_argument(
        "--sources",
        type=int,
        default=None,
        help="first registrations from this many never-seen source addresses (co-located "
        "care-of addresses; node j from the (j %% N)-th), alone and under the flood "
        "(default: --nodes; 0: not measured)",
    )
    p.add_argument(
        "--no-steering",
        action="store_true",
        help="the home agent without flood steering ([io] flood_steering = false: one "
        "socket), to compare",
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    p.set_defaults(func=run)


class _Closing(Protocol):
    def setup(self) -> None: ...

    def close(self) -> None: ...


Opts = TypeVar("Opts")
B = TypeVar("B", bound=_Closing)


def run(args: argparse.Namespace) -> int:
    return run_bench(
        "mip4 bench registrations",
        args,
        options,
        lambda opts: {
            "nodes": opts.nodes,
            "duration_s": opts.duration,
            "rounds": opts.rounds,
            "window": opts.window,
            "log_level": opts.log_level,
            "sources": opts.sources,
            "steering": opts.steering,
        },
        Bench,
        Bench.run,
        format_report,
        workdir_prefix="mip4-bench-reg-",
        indent=2,
    )


def run_bench(
    name: str,
    args: argparse.Namespace,
    parse: Callable[[argparse.Namespace], Opts],
    describe: Callable[[Opts], dict[str, Any]],
    make: Callable[[Opts, Path, Path], B],
    body: Callable[[B], dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
    *,
    workdir_prefix: str,
    needs: str = "network namespaces",
    indent: int | None = None,
) -> int:
    """A real-daemon benchmark's command, one shape for each (``mip4 bench registrations``,
    ``bindings``): options (a bad one: one line, exit 2), root, the load generator built,
    a work directory, the bench set up and run and closed -- also on SIGTERM or a failure
    (one line naming the work directory, exit 1) -- and the report (JSON with ``--json``),
    headed by the machine's and the options' figures. ``make`` makes the bench (from the
    options, the load generator and the work directory), ``body`` runs it."""
    try:
        opts = parse(args)
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(f"{name}: needs root ({needs})", file=sys.stderr)
        return 2
    try:
        loadgen = build()
    except BuildError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix))
    header: dict[str, Any] = {
        "prefix": getattr(opts, "prefix", None),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
        **describe(opts),
    }
    bench = make(opts, loadgen, workdir)
    try:
        with _sigterm_raises():
            try:
                bench.setup()
                result = body(bench)
            finally:
                bench.close()
    except (BenchError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        why = repr(exc) if isinstance(exc, KeyError) else str(exc)
        print(f"{name}: {why} (work directory {workdir})", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    header["load_after"] = round(os.getloadavg()[0], 2)
    out = {**header, **result}
    print(json.dumps(out, indent=indent) if args.json else report(out))
    return 0


def register(subparsers: Any) -> None:
    """Adds ``registrations`` to ``mip4 bench``'s subcommands."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "registrations",
        help="registrations/s of a real mip4 ha against a compiled load generator",
        description="Accepted renewals and first registrations per second of a real "
        "`mip4 ha` in a namespace, driven by a compiled load generator, against an "
        "asyncio UDP echo server between the same namespaces, in one run.",
    )
    add_arguments(p)
    from . import engine

    engine.register(subparsers)  # ``mip4 bench engine``: the engine alone, a sibling


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mip4 bench registrations")
    add_arguments(p)
    p.add_argument("--echo-server", metavar="ADDR:PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.echo_server:
        from .echo import serve

        host, port = args.echo_server.rsplit(":", 1)
        return serve(host, int(port))
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return status
