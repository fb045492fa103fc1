"""The worker processes of ``mip4 bench forwarding``: the home agent, FA1 and the mobile node
(the lab's engines, each driven by a :class:`mip4.io.runtime.NodeIO`), and the UDP and TCP
senders and receivers.

Each worker is this package run again (``python -m mip4.tools.bench_forwarding --worker
NAME --params JSON``), started by :mod:`.run` in its lab namespace with ``ip netns exec``. It
speaks JSON lines on stdout (``ready``, ``state``, ``stats``, ``result``, ``profile``,
``error``) and takes commands (``go``, ``stats``, ``quit``) on stdin. Every sending loop is
bounded in count and time, and ``max_life`` bounds the process whatever the parent does.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import resource
import select
import signal
import socket
import sys
import time
from typing import Any

from mip4.demo.traffic import StreamConfig, connect, serve
from mip4.io.runtime import NodeIO
from mip4.lab.build import Lab

from .routed import routed_addresses

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


def _node_io(lab: Lab, role: str, dataplane: str) -> NodeIO:
    """:func:`mip4.lab.engines.lab_node_io`, on the data plane ``dataplane`` (issue 12); the
    mobile node's link monitor also ignores the routed baseline's addresses
    (:mod:`.routed`), which are no care-of addresses."""
    io = _open_node_io(lab, role, dataplane)
    if io.linkmon is not None:
        io.linkmon.ignore_addresses = io.linkmon.ignore_addresses | routed_addresses(lab.topology)
    return io


def _open_node_io(lab: Lab, role: str, dataplane: str) -> NodeIO:
    from ipaddress import IPv4Network

    from mip4.io.bpf.agent import Role
    from mip4.lab.engines import lab_node_io

    if dataplane == "userspace":
        return lab_node_io(lab, role)
    tun = _tun_name(lab)
    plane: dict[str, Any] = {"dataplane": dataplane}
    if role == "ha":
        return NodeIO.open(
            lab.ns("ha"), [lab.ifname("ha")], tun_name=tun, tunnel_source=lab.address("ha"),
            link_sources=True, forwarding=True, bpf_role=Role.HOME_AGENT, **plane,
        )  # fmt: skip
    if role == "fa1":
        return NodeIO.open(
            lab.ns(role), [lab.ifname(role)], tun_name=tun, link_sources=True, forwarding=True,
            bpf_role=Role.FOREIGN_AGENT, **plane,
        )  # fmt: skip
    home = lab.topology.network("home")
    return NodeIO.open(
        lab.ns("mn"), [lab.ifname("mn")], tun_name=tun, home_gateway=home.gateway,
        home_network=IPv4Network(home.subnet), icmp_errors=True, watch_links=True,
        ignore_addresses=frozenset({lab.address("mn")}), bpf_role=Role.MOBILE_NODE, **plane,
    )  # fmt: skip


async def _node(
    role: str,
    lab_id: str,
    profile: bool = False,
    dataplane: str = "userspace",
    encapsulation: str = "ipip",
) -> None:
    """Run ``role``'s engine (``ha``, ``fa1``, ``mn``) on the lab until ``quit``/EOF, on the
    data plane ``dataplane``; with ``profile``, under cProfile, and report the functions that
    took the most time."""
    from mip4.core.mobile_node import MobileNode
    from mip4.lab.backend import Settings
    from mip4.lab.engines import lab_engine

    if role not in ("ha", "fa1", "mn"):
        raise ValueError(f"no node worker {role!r}")
    if os.environ.get("MIP4_BENCH_LOG"):  # the engines' and executors' logs, on stderr
        import logging

        logging.basicConfig(
            stream=sys.stderr, level=logging.INFO, format=f"{role} %(asctime)s %(message)s"
        )
    lab = Lab(lab_id)  # names and addresses only: the parent built it
    settings = Settings(lab_id, lifetime=600, encapsulation=encapsulation)
    engine = lab_engine(lab, role, settings)
    mn = engine if isinstance(engine, MobileNode) else None
    io = _node_io(lab, role, dataplane)
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
            "dataplane": io.dataplane,
            "fast_path": io.fast_path.events() if io.fast_path is not None else {},
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
    dst: str,
    port: int,
    size: int,
    duration: float,
    count: int,
    rate: float,
    src: str | None = None,
) -> dict[str, Any]:
    """Send ``size``-byte datagrams to ``dst`` (from ``src``, when given): at most
    ``count``, for at most ``duration`` seconds; ``rate`` > 0 paces to that many per
    second, 0 blasts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if src:
        sock.bind((src, 0))
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


#: the goodput timeline's resolution: the window is first to last arrival, to 1 ms
_TCP_BIN = 0.001


def _tcp_stream(**kw: Any) -> StreamConfig:
    """The demo's stream (:mod:`mip4.demo.traffic`), counted and not verified: the sender
    writes zeros, 256 KiB at a time, and the receiver only counts (generating and checking
    the demo's pattern would cost more CPU than the direct path's goodput leaves)."""
    return StreamConfig(
        name="bench-tcp", verify=False, chunk=1 << 18, recv_size=1 << 18, interval=_TCP_BIN,
        follow_peer=False, **kw,
    )  # fmt: skip


def tcp_recv(port: int, deadline_s: float) -> dict[str, Any]:
    """Accept one connection on ``port`` and read it to EOF (bounded by ``deadline_s``)."""

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "listening":
            emit({"event": "ready"})

    cfg = _tcp_stream(
        max_bytes=0, duration=None, connect_timeout=deadline_s, stall_timeout=deadline_s,
        drain_timeout=deadline_s,
    )  # fmt: skip
    report = serve("0.0.0.0", port, cfg, emit=on_event)
    if report.connected_at is None:
        raise TimeoutError(f"no connection: {report.error}")
    got = [i for i, n in enumerate(report.timeline.received) if n]
    window = (got[-1] - got[0] + 1) * _TCP_BIN if got else 0.0
    elapsed = (got[-1] + 1) * _TCP_BIN if got else 0.0
    return {"event": "result", "bytes": report.bytes_received, "window": window, "elapsed": elapsed}


def tcp_send(
    dst: str, port: int, duration: float, limit: int, src: str | None = None
) -> dict[str, Any]:
    """Send to ``dst`` (from ``src``, when given) for ``duration`` seconds or ``limit``
    bytes, whichever first."""
    _ready_then_go()
    cfg = _tcp_stream(
        max_bytes=limit, duration=duration, connect_timeout=5.0,
        stall_timeout=max(duration, 1.0), drain_timeout=5.0,
    )  # fmt: skip
    report = connect(dst, port, cfg, bind=src)
    if report.connected_at is None:
        raise ConnectionError(f"no connection to {dst}:{port}: {report.error}")
    elapsed = report.finished_at - report.connected_at
    return {"event": "result", "sent": report.bytes_sent, "elapsed": elapsed}


def run_worker(name: str, params: dict[str, Any]) -> int:
    """Entry point of a worker process (already in its namespace)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # a hard bound on any worker's life, whatever happens to the parent
    signal.alarm(int(params.get("max_life", 600)))
    cpu = int(params.get("cpu", -1))
    if cpu >= 0:  # a traffic worker on a CPU of its own (:func:`.run.blaster_cpus`)
        os.sched_setaffinity(0, {cpu})
    try:
        if name in ("ha", "fa1", "mn"):
            asyncio.run(
                _node(
                    name,
                    params["lab"],
                    bool(params.get("profile")),
                    str(params.get("dataplane", "userspace")),
                    str(params.get("encapsulation", "ipip")),
                )
            )
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
                    params.get("src"),
                )
            )
        elif name == "tcp-recv":
            emit(tcp_recv(TCP_PORT, params["deadline"]))
        elif name == "tcp-send":
            emit(
                tcp_send(
                    params["dst"], TCP_PORT, params["duration"], params["limit"], params.get("src")
                )
            )
        else:
            raise ValueError(f"no worker {name!r}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        emit({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0
