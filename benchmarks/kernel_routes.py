"""The kernel's own pauses at a million host routes (issue 13: "no pause longer than 10 ms
... at 1 M bindings"): a home agent adds one ``/32`` route per binding and deletes it when
the binding goes, in batches of ``RtnlSocket.BATCH_MAX`` (64) per ``send``, on its event
loop's thread. This adds ``--routes`` such routes in a fresh namespace (a veth pair, no
mip4 daemon) with the same calls, then switches each to the other device (a ``replace``
of a route that is there: what a binding would cost if every subscriber's route stayed in
the table, on the home link while at home), then deletes them, and prints the longest
batches of each phase: the time one ``send_batch`` blocks the caller. Figures only::

    sudo .venv/bin/python benchmarks/kernel_routes.py [--routes 1000000]

The namespace (``krt<pid>``) is deleted at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import time

from mip4.io.nsops import entered
from mip4.io.rtnl import RtnlSocket

BASE = (10 << 24) | (1 << 16)  # 10.1.0.0, as the benches' home addresses


def _phase(
    rtnl: RtnlSocket, command: str, n: int, oif: int
) -> tuple[float, list[tuple[float, int]]]:
    batch = RtnlSocket.BATCH_MAX
    slow: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        requests = [
            rtnl.host_route_request(command, (BASE + i).to_bytes(4, "big"), oif)
            for i in range(start, min(n, start + batch))
        ]
        t = time.perf_counter()
        errors = rtnl.send_batch(requests)
        spent = time.perf_counter() - t
        if any(errors):
            raise SystemExit(f"route {command} at {start}: {next(e for e in errors if e)}")
        if spent > 0.005:
            slow.append((spent * 1e3, start))
    return time.perf_counter() - t0, sorted(slow, reverse=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--routes", type=int, default=1_000_000)
    args = p.parse_args()
    ns = f"krt{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ip = ["ip", "-n", ns, "link"]
        subprocess.run([*ip, "add", "krta", "type", "veth", "peer", "name", "krtb"], check=True)
        for dev in ("krta", "krtb"):
            subprocess.run([*ip, "set", dev, "up"], check=True)
        with entered(ns):
            rtnl = RtnlSocket.open()
            devices = [socket.if_nametoindex(d) for d in ("krta", "krtb")]
        print(f"{args.routes:,} /32 routes, {RtnlSocket.BATCH_MAX} per send, namespace {ns}")
        phases = (("add", "replace", 0), ("switch", "replace", 1), ("delete", "del", 1))
        for name, command, device in phases:
            total, slow = _phase(rtnl, command, args.routes, devices[device])
            worst = ", ".join(f"{ms:,.1f} ms at {at:,}" for ms, at in slow[:6]) or "none"
            print(
                f"{name:<8} {total:5.1f} s, {args.routes / total:,.0f} routes/s;"
                f" {len(slow)} batches over 5 ms; longest: {worst}"
            )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    main()
