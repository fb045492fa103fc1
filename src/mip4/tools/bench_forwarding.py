"""``mip4 bench forwarding``: the user-space tunnel data plane on the namespace lab.

What is measured
----------------
One lab (:class:`mip4.lab.Lab`, router ingress filter on), the real engines in their own
processes (home agent, FA1, mobile node, each a :class:`mip4.io.runtime.NodeIO` driven by
its engine; reverse tunnelling preferred, as in ``tests/lab/test_engines.py``), and, in the
same run:

* **direct**: the mobile node at home; CN → router → MN, no tunnel;
* **tunnel**: the mobile node registered through FA1; CN → router → HA (intercepts the home
  address, encapsulates IP in IP) → router → FA1 (decapsulates, delivers to the visitor's
  hardware address) → MN. With reverse tunnelling the MN's replies (TCP ACKs) come back
  MN → FA1 → HA → CN.

On each path: UDP with 64- and 1400-byte payloads (a sender in the CN namespace blasts, or
paces with ``--rate``, for ``--duration`` seconds and at most ``--count`` datagrams; a
receiver in the MN namespace counts what arrives), and TCP goodput (kernel TCP on both
ends, ``--tcp-duration`` seconds or ``--tcp-bytes``, whichever comes first). Senders and
receivers are separate processes, so no Python process carries two jobs.

The table gives, per path and payload: datagrams per second sent and delivered, loss, and
delivered payload Mbit/s; then tunnel ÷ direct ratios; then the per-packet cost the process
CPU counters show (``getrusage`` of the HA and FA1 processes over the measurement ÷ the
datagrams their forwarders handled), where datagrams were dropped (HA TUN queue, raw socket
receive queues, the receiver's socket buffer), and the pure encapsulation/decapsulation
cost of :mod:`mip4.dataplane` timed in this process.

Everything runs inside the lab's namespaces (unique id ``q`` + 4 hex digits, which no test
prefix, all hex, can be); every sending loop is bounded in count and time; the lab is torn
down on success, failure, Ctrl-C and SIGTERM. Not a unit test: the numbers depend on the
machine (2 shared cores here: four busy processes — sender, HA, FA1, receiver — share them).

Worker processes are this module again (``--worker ha|fa1|mn|udp-recv|udp-send|tcp-recv|
tcp-send``), started in their namespace with ``ip netns exec``; they speak JSON lines on
stdout and take commands (``stats``, ``quit``) on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import platform
import pstats
import queue
import resource
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from mip4.lab.build import Lab, LabError

UDP_PORT = 5201
TCP_PORT = 5202
WORKERS = ("ha", "fa1", "mn", "udp-recv", "udp-send", "tcp-recv", "tcp-send")


def emit(obj: dict[str, Any]) -> None:
    """One JSON line on stdout (the worker → parent channel)."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------------
# workers: the agents and the mobile node
# ----------------------------------------------------------------------------------------


def _tun_name(lab: Lab) -> str:
    return f"{lab.prefix}t"


def _read_int(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def raw_socket_drops() -> int:
    """Datagrams the kernel dropped on raw sockets of this namespace (``/proc/net/raw``)."""
    total = 0
    with contextlib.suppress(OSError), open("/proc/net/raw") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols:
                total += int(cols[-1])
    return total


def udp_rcvbuf_errors() -> int:
    """``Udp: RcvbufErrors`` of this namespace (``/proc/net/snmp``)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
        if len(rows) >= 2 and "RcvbufErrors" in rows[0]:
            return int(rows[1][rows[0].index("RcvbufErrors")])
    return 0


async def _node(role: str, lab_id: str, profile: bool = False) -> None:
    """Run ``role``'s engine (``ha``, ``fa1``, ``mn``) on the lab until ``quit``/EOF; with
    ``profile``, under cProfile, and report the functions that took the most time."""
    from mip4.core.mobile_node import MobileNode
    from mip4.lab.backend import Settings
    from mip4.lab.engines import lab_engine, lab_node_io

    if role not in ("ha", "fa1", "mn"):
        raise ValueError(f"no node worker {role!r}")
    lab = Lab(lab_id)  # names and addresses only: the parent built it
    engine = lab_engine(lab, role, Settings(lab_id, lifetime=600))
    mn = engine if isinstance(engine, MobileNode) else None
    io = lab_node_io(lab, role)
    tun = _tun_name(lab)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pending = bytearray()

    def stats() -> dict[str, Any]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        fwd = io.forwarder
        return {
            "event": "stats",
            "role": role,
            "wall": time.monotonic(),
            "cpu_user": ru.ru_utime,
            "cpu_sys": ru.ru_stime,
            "forwarder": dict(fwd.stats) if fwd is not None else {},
            "tun_tx_dropped": _read_int(f"/sys/class/net/{tun}/statistics/tx_dropped"),
            "raw_drops": raw_socket_drops(),
        }

    def on_stdin() -> None:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        if not data:
            stop.set()
            return
        pending.extend(data)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            cmd = line.decode().strip()
            if cmd == "stats":
                emit(stats())
            elif cmd == "quit":
                stop.set()

    os.set_blocking(0, False)
    loop.add_reader(0, on_stdin)
    # thread CPU time: waiting in epoll does not count, being preempted does not either
    prof = cProfile.Profile(time.thread_time) if profile else None
    if prof is not None:
        prof.enable()
    task = asyncio.create_task(io.run(engine, stop))
    try:
        emit({"event": "ready", "role": role, "pid": os.getpid()})
        last: tuple[str, str, bool] | None = None
        while not stop.is_set():
            if mn is not None:
                now = (mn.state.name, str(mn.care_of_address), mn.registered)
                if now != last:
                    last = now
                    emit({"event": "state", "state": now[0], "coa": now[1], "registered": now[2]})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
        await task
        if prof is not None:
            prof.disable()
            emit({"event": "profile", "role": role, "top": _profile_top(prof)})
        emit(stats())
    finally:
        loop.remove_reader(0)
        io.close()


def _profile_top(prof: cProfile.Profile, n: int = 14) -> list[dict[str, Any]]:
    """The ``n`` functions with the most own time: name, calls, own seconds."""
    st = pstats.Stats(prof)
    rows = []
    raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    for (filename, line, func), (_cc, ncalls, tottime, _ct, _callers) in raw.items():
        short = filename.rsplit("/src/", 1)[-1].rsplit("/lib/python3", 1)[-1]
        rows.append({"function": f"{short}:{line}({func})", "calls": ncalls, "own_s": tottime})
    rows.sort(key=lambda r: -float(r["own_s"]))
    return rows[:n]


# ----------------------------------------------------------------------------------------
# workers: traffic
# ----------------------------------------------------------------------------------------


def udp_recv(port: int, deadline_s: float, idle_s: float = 0.5) -> dict[str, Any]:
    """Count UDP datagrams on ``port`` until ``idle_s`` without one after the first, or
    ``deadline_s`` in all."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
    sock.bind(("0.0.0.0", port))
    sock.setblocking(False)
    buf = bytearray(65536)
    errors0 = udp_rcvbuf_errors()
    emit({"event": "ready"})
    start = time.monotonic()
    deadline = start + deadline_s
    packets = nbytes = 0
    first = last = 0.0
    recv_into = sock.recv_into
    while True:
        now = time.monotonic()
        wait = (last + idle_s if packets else deadline) - now
        wait = min(wait, deadline - now)
        if wait <= 0:
            break
        r, _, _ = select.select([sock], [], [], wait)
        if not r:
            continue
        got = 0
        try:
            while True:
                nbytes += recv_into(buf)
                got += 1
        except BlockingIOError:
            pass
        if got:
            last = time.monotonic()
            if not packets:
                first = last
            packets += got
    sock.close()
    return {
        "event": "result",
        "packets": packets,
        "bytes": nbytes,
        "window": last - first,
        "rcvbuf_errors": udp_rcvbuf_errors() - errors0,
    }


def _ready_then_go(timeout: float = 30.0) -> None:
    """Say ``ready`` and wait for a line on stdin (the parent's ``go``, sent once it has
    read the agents' counters), so start-up is not counted in the measurement."""
    emit({"event": "ready"})
    r, _, _ = select.select([sys.stdin], [], [], timeout)
    if not r or not sys.stdin.readline():
        raise TimeoutError("no 'go' from the parent")


def udp_send(
    dst: str, port: int, size: int, duration: float, count: int, rate: float
) -> dict[str, Any]:
    """Send ``size``-byte datagrams to ``dst``: at most ``count``, for at most ``duration``
    seconds; ``rate`` > 0 paces to that many per second, 0 blasts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((dst, port))
    payload = bytes(size)
    send = sock.send
    burst = 32
    sent = errors = 0
    _ready_then_go()
    start = time.monotonic()
    deadline = start + duration
    now = start
    while sent < count and now < deadline:
        n = min(burst, count - sent)
        for _ in range(n):
            try:
                send(payload)
                sent += 1
            except OSError:  # ENOBUFS, or ECONNREFUSED from an ICMP error
                errors += 1
        now = time.monotonic()
        if rate > 0:
            ahead = start + sent / rate - now
            if ahead > 0:
                time.sleep(ahead)
                now = time.monotonic()
    elapsed = time.monotonic() - start
    sock.close()
    return {"event": "result", "sent": sent, "errors": errors, "elapsed": elapsed}


def tcp_recv(port: int, deadline_s: float) -> dict[str, Any]:
    """Accept one connection on ``port`` and read it to EOF (bounded by ``deadline_s``)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(deadline_s)
    emit({"event": "ready"})
    deadline = time.monotonic() + deadline_s
    conn, _ = srv.accept()
    srv.close()
    buf = bytearray(1 << 18)
    nbytes = 0
    start = time.monotonic()
    first = last = start
    with conn:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            conn.settimeout(remaining)
            try:
                n = conn.recv_into(buf)
            except TimeoutError:
                break
            if n == 0:
                break
            last = time.monotonic()
            if not nbytes:
                first = last
            nbytes += n
    return {"event": "result", "bytes": nbytes, "window": last - first, "elapsed": last - start}


def tcp_send(dst: str, port: int, duration: float, limit: int) -> dict[str, Any]:
    """Send to ``dst`` for ``duration`` seconds or ``limit`` bytes, whichever first."""
    sock = socket.create_connection((dst, port), timeout=5.0)
    chunk = bytes(1 << 16)
    sent = 0
    _ready_then_go()
    start = time.monotonic()
    deadline = start + duration
    sock.settimeout(max(duration, 1.0))
    with sock:
        with contextlib.suppress(TimeoutError):
            while sent < limit and time.monotonic() < deadline:
                sent += sock.send(chunk[: min(len(chunk), limit - sent)])
        sock.shutdown(socket.SHUT_WR)
        # wait for the receiver to close: then everything sent has been read
        sock.settimeout(5.0)
        with contextlib.suppress(OSError):
            while sock.recv(4096):
                pass
    return {"event": "result", "sent": sent, "elapsed": time.monotonic() - start}


def run_worker(name: str, params: dict[str, Any]) -> int:
    """Entry point of a worker process (already in its namespace)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # a hard bound on any worker's life, whatever happens to the parent
    signal.alarm(int(params.get("max_life", 600)))
    try:
        if name in ("ha", "fa1", "mn"):
            asyncio.run(_node(name, params["lab"], bool(params.get("profile"))))
        elif name == "udp-recv":
            emit(udp_recv(UDP_PORT, params["deadline"]))
        elif name == "udp-send":
            emit(
                udp_send(
                    params["dst"],
                    UDP_PORT,
                    params["size"],
                    params["duration"],
                    params["count"],
                    params["rate"],
                )
            )
        elif name == "tcp-recv":
            emit(tcp_recv(TCP_PORT, params["deadline"]))
        elif name == "tcp-send":
            emit(tcp_send(params["dst"], TCP_PORT, params["duration"], params["limit"]))
        else:
            raise ValueError(f"no worker {name!r}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        emit({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0


# ----------------------------------------------------------------------------------------
# the parent: processes, measurements, table
# ----------------------------------------------------------------------------------------


class BenchError(RuntimeError):
    pass


class Worker:
    """A worker process in a lab namespace; its JSON lines arrive on a queue."""

    def __init__(self, lab: Lab, node: str, name: str, params: dict[str, Any]) -> None:
        self.name = name
        argv = [
            sys.executable,
            "-m",
            "mip4.tools.bench_forwarding",
            "--worker",
            name,
            "--params",
            json.dumps(params),
        ]
        # own session: a Ctrl-C at the terminal reaches the parent only, which stops us
        self.proc = lab.popen(
            node,
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.put(json.loads(raw))
        self.lines.put(None)

    def expect(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"{self.name}: timed out waiting for {what}")
            try:
                msg = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg is None:
                self.lines.put(None)  # stays at end of stream
                raise BenchError(f"{self.name}: exited (status {self.proc.wait()}) before {what}")
            if msg.get("event") == "error":
                raise BenchError(f"{self.name}: {msg['error']}")
            if pred(msg):
                return msg

    def event(self, event: str, timeout: float) -> dict[str, Any]:
        return self.expect(lambda m: m.get("event") == event, timeout, event)

    def command(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(cmd.encode() + b"\n")
            self.proc.stdin.flush()

    def stats(self, timeout: float = 5.0) -> dict[str, Any]:
        self.command("stats")
        return self.event("stats", timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask, then terminate, then kill (by process id)."""
        if self.proc.poll() is None:
            self.command("quit")
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(2)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(2)
        self._reader.join(2)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class Measurement:
    path: str  # "direct" | "tunnel"
    traffic: str  # "udp" | "tcp"
    payload: int  # bytes per datagram (UDP), 0 for TCP
    duration: float  # seconds sending
    sent: int  # datagrams (UDP) or bytes (TCP)
    delivered: int  # datagrams (UDP) or bytes (TCP)
    window: float  # seconds between the first and the last arrival
    send_errors: int = 0
    #: per node: CPU seconds and packets over the measurement
    cost: dict[str, dict[str, float]] = field(default_factory=dict)
    #: where datagrams were dropped (kernel counters), by place
    drops: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"UDP {self.payload} B" if self.traffic == "udp" else "TCP"

    @property
    def pps_sent(self) -> float | None:
        return self.sent / self.duration if self.traffic == "udp" and self.duration > 0 else None

    @property
    def pps_delivered(self) -> float | None:
        if self.traffic != "udp":
            return None
        return self.delivered / self.window if self.window > 0 else 0.0

    @property
    def loss(self) -> float | None:
        if self.traffic != "udp" or self.sent == 0:
            return None
        return max(0.0, 1.0 - self.delivered / self.sent)

    @property
    def mbit_s(self) -> float:
        """Delivered payload (UDP) or goodput (TCP), Mbit/s."""
        if self.window <= 0:
            return 0.0
        nbytes = self.delivered * self.payload if self.traffic == "udp" else self.delivered
        return nbytes * 8 / self.window / 1e6

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "traffic": self.traffic,
            "payload": self.payload,
            "duration_s": round(self.duration, 4),
            "window_s": round(self.window, 4),
            "sent": self.sent,
            "delivered": self.delivered,
            "send_errors": self.send_errors,
            "pps_sent": _round(self.pps_sent),
            "pps_delivered": _round(self.pps_delivered),
            "loss": None if self.loss is None else round(self.loss, 5),
            "mbit_s": round(self.mbit_s, 2),
            "cost": self.cost,
            "drops": self.drops,
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


@dataclass
class Options:
    duration: float = 3.0
    count: int = 1_000_000
    rate: float = 0.0
    payloads: tuple[int, ...] = (64, 1400)
    tcp: bool = True
    tcp_duration: float = 5.0
    tcp_bytes: int = 256 << 20
    lab_id: str = ""
    #: nodes ("ha", "fa1") run under cProfile
    profile: tuple[str, ...] = ()


class Bench:
    """The lab, the node workers, and one measurement after another."""

    def __init__(self, lab: Lab, opts: Options) -> None:
        self.lab = lab
        self.opts = opts
        self.nodes: dict[str, Worker] = {}
        self.traffic: list[Worker] = []
        self.mn_ip = str(lab.address("mn"))
        self.profiles: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        for w in [*self.traffic, *self.nodes.values()]:
            with contextlib.suppress(Exception):
                w.stop()

    def start_nodes(self) -> None:
        for key in ("ha", "fa1", "mn"):
            params = {"lab": self.lab.lab_id, "profile": key in self.opts.profile, "max_life": 1800}
            self.nodes[key] = Worker(self.lab, key, key, params)
        for w in self.nodes.values():
            w.event("ready", 20)

    def wait_mn(self, pred: Callable[[dict[str, Any]], bool], what: str, timeout: float) -> None:
        self.nodes["mn"].expect(lambda m: m.get("event") == "state" and pred(m), timeout, what)

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        return {k: w.stats() for k, w in self.nodes.items() if k in ("ha", "fa1")}

    @staticmethod
    def _cost(
        before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
        cost: dict[str, dict[str, float]] = {}
        drops: dict[str, int] = {}
        for key, b in before.items():
            a = after[key]
            fb, fa = b["forwarder"], a["forwarder"]

            def d(name: str, fb: dict[str, int] = fb, fa: dict[str, int] = fa) -> int:
                return int(fa.get(name, 0)) - int(fb.get(name, 0))

            packets = d("tun_read") + d("raw_read")
            cost[key] = {
                "cpu_user_s": round(a["cpu_user"] - b["cpu_user"], 4),
                "cpu_sys_s": round(a["cpu_sys"] - b["cpu_sys"], 4),
                "wall_s": round(a["wall"] - b["wall"], 4),
                "packets": packets,
                "encapsulated": d("encapsulated"),
                "decapsulated": d("delivered_link") + d("delivered_tun"),
            }
            drops[f"{key}_tun_queue"] = a["tun_tx_dropped"] - b["tun_tx_dropped"]
            drops[f"{key}_raw_socket"] = a["raw_drops"] - b["raw_drops"]
            for k in set(fa) | set(fb):
                if ("drop" in k or "full" in k or "deliver_E" in k) and d(k):
                    drops[f"{key}_{k}"] = d(k)
        return cost, drops

    def _transfer(
        self, kind: str, recv_args: dict[str, Any], send_args: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Run ``<kind>-recv`` on the mobile node and ``<kind>-send`` on the correspondent
        towards it; returns (sender result, receiver result, snapshot before, after)."""
        recv = Worker(self.lab, "mn", f"{kind}-recv", recv_args)
        self.traffic.append(recv)
        try:
            recv.event("ready", 10)
            send = Worker(self.lab, "cn", f"{kind}-send", {"dst": self.mn_ip, **send_args})
            self.traffic.append(send)
            send.event("ready", 15)
            before = self._snapshot()
            send.command("go")
            s = send.event("result", timeout)
            r = recv.event("result", timeout)
            after = self._snapshot()
            send.stop()
        finally:
            recv.stop()
        return s, r, before, after

    def udp(self, path: str, size: int) -> Measurement:
        o = self.opts
        life = int(o.duration + 30)
        s, r, before, after = self._transfer(
            "udp",
            {"deadline": o.duration + 5.0, "max_life": life},
            {
                "size": size,
                "duration": o.duration,
                "count": o.count,
                "rate": o.rate,
                "max_life": life,
            },
            o.duration + 15,
        )
        cost, drops = self._cost(before, after)
        drops["mn_udp_rcvbuf"] = int(r["rcvbuf_errors"])
        return Measurement(
            path,
            "udp",
            size,
            float(s["elapsed"]),
            int(s["sent"]),
            int(r["packets"]),
            float(r["window"]),
            int(s["errors"]),
            cost if path == "tunnel" else {},
            drops,
        )

    def tcp(self, path: str) -> Measurement:
        o = self.opts
        life = int(o.tcp_duration + 40)
        s, r, before, after = self._transfer(
            "tcp",
            {"deadline": o.tcp_duration + 20.0, "max_life": life},
            {"duration": o.tcp_duration, "limit": o.tcp_bytes, "max_life": life},
            o.tcp_duration + 30,
        )
        cost, _drops = self._cost(before, after)
        return Measurement(
            path,
            "tcp",
            0,
            float(s["elapsed"]),
            int(s["sent"]),
            int(r["bytes"]),
            float(r["window"]),
            0,
            cost if path == "tunnel" else {},
        )

    def measure(self, path: str) -> list[Measurement]:
        out = [self.udp(path, size) for size in self.opts.payloads]
        if self.opts.tcp:
            out.append(self.tcp(path))
        return out

    def run(self) -> list[Measurement]:
        lab = self.lab
        self.start_nodes()
        self.wait_mn(lambda m: m["state"] == "AT_HOME", "the mobile node at home", 15)
        if not lab.wait_reachable("cn", self.mn_ip, within=10):
            raise BenchError("CN cannot reach the mobile node at home")
        results = self.measure("direct")
        lab.move("a")
        coa = str(lab.address("fa1"))
        self.wait_mn(lambda m: m["registered"] and m["coa"] == coa, "registration through FA1", 20)
        if not lab.wait_reachable("cn", self.mn_ip, within=10):
            raise BenchError("CN cannot reach the mobile node through FA1")
        results += self.measure("tunnel")
        for key in self.opts.profile:
            w = self.nodes[key]
            w.command("quit")
            prof = w.event("profile", 30)
            final = w.event("stats", 30)
            fs = final["forwarder"]
            packets = int(fs.get("tun_read", 0)) + int(fs.get("raw_read", 0))
            self.profiles[key] = {"packets": packets, "top": prof["top"]}
        return results


# ----------------------------------------------------------------------------------------
# the pure data-plane cost, in this process
# ----------------------------------------------------------------------------------------


def codec_cost(sizes: Sequence[int], number: int = 20000) -> dict[str, float]:
    """Microseconds of process CPU per call of the forwarder's IP-in-IP encapsulation and
    decapsulation (best of 5), for inner datagrams carrying ``sizes`` bytes of UDP payload."""
    from mip4.core.actions import Encapsulation
    from mip4.dataplane.common import Tunnel
    from mip4.io.forwarder import codecs

    encap, decap = codecs()[Encapsulation.IPIP]
    tunnel = Tunnel(IPv4Address("10.1.0.2"), IPv4Address("10.2.0.2"))
    out: dict[str, float] = {}
    for size in sizes:
        total = 28 + size
        inner = bytearray(total)
        inner[0], inner[8], inner[9] = 0x45, 63, 17
        inner[2:4] = total.to_bytes(2, "big")
        inner[12:16] = IPv4Address("198.51.100.10").packed
        inner[16:20] = IPv4Address("10.1.0.100").packed
        csum = _checksum(inner[:20])
        inner[10:12] = csum.to_bytes(2, "big")
        view = memoryview(inner)
        outer = encap(view, tunnel, None)
        outer_view = memoryview(bytes(outer))
        for name, fn in (
            (f"encapsulate_{size}", lambda v=view: encap(v, tunnel, None)),
            (f"decapsulate_{size}", lambda v=outer_view: decap(v)),
        ):
            best = min(timeit.repeat(fn, number=number, repeat=5, timer=time.process_time))
            out[name] = round(best / number * 1e6, 3)
    return out


def _checksum(header: bytes | bytearray) -> int:
    s = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, len(header), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# ----------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------

PATHS = {
    "direct": "direct  CN->MN (at home)",
    "tunnel": "tunnel  CN->HA->FA1->MN",
}


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def ratios(results: Sequence[Measurement]) -> list[dict[str, Any]]:
    """tunnel ÷ direct, per traffic kind and payload."""
    by = {(m.path, m.traffic, m.payload): m for m in results}
    out = []
    for (path, traffic, payload), t in by.items():
        d = by.get(("direct", traffic, payload))
        if path != "tunnel" or d is None:
            continue
        row: dict[str, Any] = {"traffic": traffic, "payload": payload, "label": t.label}
        td, dd = t.pps_delivered, d.pps_delivered
        row["pps_ratio"] = round(td / dd, 4) if td is not None and dd else None
        row["mbit_ratio"] = round(t.mbit_s / d.mbit_s, 4) if d.mbit_s else None
        out.append(row)
    return out


def per_packet(results: Sequence[Measurement]) -> list[dict[str, Any]]:
    """Process CPU per datagram handled by each forwarder, per tunnelled measurement."""
    rows = []
    for m in results:
        for node, c in m.cost.items():
            pk = c["packets"]
            if not pk:
                continue
            cpu = c["cpu_user_s"] + c["cpu_sys_s"]
            rows.append(
                {
                    "measurement": m.label,
                    "node": node,
                    "packets": int(pk),
                    "user_us": round(c["cpu_user_s"] / pk * 1e6, 2),
                    "sys_us": round(c["cpu_sys_s"] / pk * 1e6, 2),
                    "total_us": round(cpu / pk * 1e6, 2),
                    #: the share of one CPU the process got over the measurement (from the
                    #: sender's start to the receiver's last datagram + its 0.5 s idle wait)
                    "cpu_share": round(cpu / c["wall_s"], 3) if c.get("wall_s") else None,
                    #: datagrams/s it could forward with a whole CPU at this cost
                    "pps_one_cpu": round(pk / cpu) if cpu > 0 else None,
                }
            )
    return rows


def format_table(
    results: Sequence[Measurement],
    header: dict[str, Any],
    codec: dict[str, float],
    profiles: dict[str, dict[str, Any]] | None = None,
) -> str:
    lines = [
        "mip4 bench forwarding: "
        + ", ".join(f"{k} {v}" for k, v in header.items() if k not in ("paths",)),
        "",
        f"{'path':<26} {'payload':<11} {'pps sent':>10} {'pps delivered':>14} "
        f"{'loss':>7} {'Mbit/s':>9}",
    ]
    for m in results:
        loss = "-" if m.loss is None else f"{m.loss * 100:.1f}%"
        lines.append(
            f"{PATHS[m.path]:<26} {m.label:<11} {_fmt(m.pps_sent, ',.0f'):>10} "
            f"{_fmt(m.pps_delivered, ',.0f'):>14} {loss:>7} "
            f"{m.mbit_s:>9,.1f}"
        )
    lines += ["", "tunnel / direct:"]
    for r in ratios(results):
        pps = "" if r["pps_ratio"] is None else f"delivered pps x{r['pps_ratio']:.3f}, "
        mbit = "-" if r["mbit_ratio"] is None else f"x{r['mbit_ratio']:.3f}"
        lines.append(f"  {r['label']:<11} {pps}Mbit/s {mbit}")
    pp = per_packet(results)
    if pp:
        lines += [
            "",
            "per-packet process CPU in the forwarding processes (getrusage / datagrams read"
            " from TUN + raw sockets):",
            f"  {'measurement':<11} {'node':<5} {'packets':>10} {'user us':>8} {'sys us':>8} "
            f"{'total us':>9} {'CPU share':>9} {'pps at 1 CPU':>12}",
        ]
        for r in pp:
            lines.append(
                f"  {r['measurement']:<11} {r['node']:<5} {r['packets']:>10,} {r['user_us']:>8.2f} "
                f"{r['sys_us']:>8.2f} {r['total_us']:>9.2f} "
                f"{_fmt(r['cpu_share'] and r['cpu_share'] * 100, '.0f') + '%':>9} "
                f"{_fmt(r['pps_one_cpu'], ',.0f'):>12}"
            )
    drops = [(m.label, m.path, k, v) for m in results for k, v in m.drops.items() if v]
    if drops:
        lines += ["", "drops (kernel and forwarder counters):"]
        lines += [f"  {p:<6} {lbl:<11} {k:<28} {v:>10,}" for lbl, p, k, v in drops]
    for node, prof in (profiles or {}).items():
        pk = max(1, int(prof["packets"]))
        lines += [
            "",
            f"cProfile of {node} over its whole run ({pk:,} datagrams forwarded; own time per"
            " forwarded datagram, thread CPU time, inflated by the profiler):",
        ]
        for r in prof["top"]:
            lines.append(
                f"  {r['own_s'] / pk * 1e6:7.2f} us  {r['calls']:>10,} calls  {r['function']}"
            )
    if codec:
        lines += ["", "pure IP-in-IP codec in this process (us CPU per datagram, best of 5):"]
        lines.append("  " + ", ".join(f"{k} {v:.2f}" for k, v in codec.items()))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per UDP run (3)")
    p.add_argument(
        "--count", type=int, default=1_000_000, help="at most this many datagrams per UDP run"
    )
    p.add_argument("--rate", type=float, default=0.0, help="UDP datagrams/s (0: blast)")
    p.add_argument(
        "--payloads",
        default="64,1400",
        help="UDP payload sizes, comma-separated (default 64,1400; at most 1400)",
    )
    p.add_argument("--tcp-duration", type=float, default=5.0, help="seconds of TCP (5)")
    p.add_argument("--tcp-mib", type=int, default=256, help="at most this many MiB of TCP (256)")
    p.add_argument("--no-tcp", action="store_true", help="skip the TCP goodput runs")
    p.add_argument("--no-codec", action="store_true", help="skip the in-process codec timing")
    p.add_argument(
        "--profile",
        action="append",
        choices=["ha", "fa1"],
        default=[],
        help="run this node's engine and forwarder under cProfile and print where the time"
        " goes (repeatable; slows that node down)",
    )
    p.add_argument("--lab-id", default="", help="lab id (default: q + 4 random hex digits)")
    p.set_defaults(func=run)


def options(args: argparse.Namespace) -> Options:
    payloads = tuple(int(x) for x in str(args.payloads).split(",") if x.strip())
    if not payloads or any(not 8 <= s <= 1400 for s in payloads):
        raise ValueError("--payloads: sizes between 8 and 1400")
    if not 0 < args.duration <= 60 or not 0 < args.tcp_duration <= 60:
        raise ValueError("--duration and --tcp-duration: more than 0, at most 60 s")
    if not 0 < args.count <= 10_000_000 or not 0 < args.tcp_mib <= 4096:
        raise ValueError("--count at most 10,000,000; --tcp-mib at most 4096")
    return Options(
        duration=args.duration,
        count=args.count,
        rate=args.rate,
        payloads=payloads,
        tcp=not args.no_tcp,
        tcp_duration=args.tcp_duration,
        tcp_bytes=args.tcp_mib << 20,
        lab_id=args.lab_id or "q" + secrets.token_hex(2),
        profile=tuple(dict.fromkeys(args.profile)),
    )


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the lab is torn down."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(args: argparse.Namespace) -> int:
    try:
        opts = options(args)
    except ValueError as exc:
        print(f"mip4 bench forwarding: {exc}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("mip4 bench forwarding: needs root (network namespaces)", file=sys.stderr)
        return 2
    header: dict[str, Any] = {
        "lab": opts.lab_id,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
        "udp": f"{opts.duration:g} s / <= {opts.count:,} datagrams, "
        + (f"{opts.rate:,.0f}/s" if opts.rate else "blast"),
        "tcp": f"{opts.tcp_duration:g} s / <= {opts.tcp_bytes >> 20} MiB" if opts.tcp else "off",
        **({"profiled": ",".join(opts.profile)} if opts.profile else {}),
    }
    codec = {} if args.no_codec else codec_cost(opts.payloads)
    try:
        with _sigterm_raises(), Lab(opts.lab_id, ingress_filter=True) as lab:
            bench = Bench(lab, opts)
            try:
                results = bench.run()
                profiles = bench.profiles
            finally:
                bench.close()
    except (BenchError, LabError) as exc:
        print(f"mip4 bench forwarding: {exc}", file=sys.stderr)
        return 1
    header["load_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        out = dict(header)
        out["results"] = [m.as_dict() for m in results]
        out["ratios"] = ratios(results)
        out["per_packet"] = per_packet(results)
        out["codec_us"] = codec
        if profiles:
            out["profiles"] = profiles
        print(json.dumps(out, indent=2))
    else:
        print(format_table(results, header, codec, profiles))
    return 0


def register(subparsers: Any) -> None:
    """Adds ``forwarding`` to a subparsers object (e.g. ``mip4 bench``'s, if it grows
    subcommands)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "forwarding",
        help="tunnel forwarding rate and TCP goodput on the namespace lab",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_arguments(p)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="mip4 bench forwarding",
        description="The tunnel data plane on the namespace lab: UDP rate and TCP goodput, "
        "tunnelled (CN -> HA -> FA1 -> MN) against direct, in the same run.",
    )
    add_arguments(p)
    p.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    p.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return run_worker(args.worker, json.loads(args.params))
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
