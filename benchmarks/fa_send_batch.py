"""A foreign agent's relays to its home agent: ``LinuxExecutor`` carrying out a read's
``SendUdp`` actions (source address in ``IP_PKTINFO``, as the relay fast path makes them)
between ``hold_actions`` and ``release_actions``, one ``sendmsg`` each (``batch_udp``
off) against one ``sendmmsg`` for the read (``batch_udp`` on, issue 13), alternately in one
process, over loopback (the receiver drained between passes, not timed): microseconds per
datagram for the executor's work and the system calls, best of ``--passes``.

    .venv/bin/python benchmarks/fa_send_batch.py [--batches 1,2,8,32] [--passes 7]
"""

from __future__ import annotations

import argparse
import socket
import time
from ipaddress import IPv4Address

from mip4.core.actions import SendUdp
from mip4.io.executor import LinuxExecutor
from mip4.io.rawsock import open_udp_control

LO, HA = IPv4Address("127.0.0.1"), IPv4Address("127.0.0.2")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="1,2,8,32", help="relays per read")
    p.add_argument("--passes", type=int, default=7)
    p.add_argument("--reads", type=int, default=300, help="reads per pass")
    args = p.parse_args()
    rx = open_udp_control(address=str(HA), port=0)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    port = rx.getsockname()[1]
    tx = open_udp_control(address="0.0.0.0", port=0)
    sport = tx.getsockname()[1]
    relay = [
        SendUdp(dst=HA, payload=bytes(range(i, i + 86)), dport=port, sport=sport, src=LO)
        for i in range(64)
    ]
    executors = {on: LinuxExecutor(udp=tx, batch_udp=on) for on in (False, True)}

    def drain() -> int:
        n = 0
        while True:
            try:
                rx.recv(2048)
            except BlockingIOError:
                return n
            n += 1

    def per_datagram(batch: int, on: bool) -> float:
        ex = executors[on]
        execute = ex.execute
        actions = relay[:batch]
        spent = 0.0
        for r in range(args.reads):
            t0 = time.perf_counter()
            ex.hold_actions()
            for a in actions:
                execute(a)
            failed = ex.release_actions()
            spent += time.perf_counter() - t0
            if failed:
                raise SystemExit(f"failed: {failed[0][1]}")
            if r % 64 == 63:
                drain()
        drain()
        return spent / (args.reads * batch) * 1e6

    print(f"{'relays per read':>16} {'sendmsg each':>14} {'sendmmsg':>10} {'ratio':>7}")
    for batch in (int(b) for b in args.batches.split(",")):
        one = best = float("inf")
        for _ in range(args.passes):
            one = min(one, per_datagram(batch, False))
            best = min(best, per_datagram(batch, True))
        print(f"{batch:>16} {one:>11.2f} us {best:>7.2f} us {best / one:>6.2f}x")


if __name__ == "__main__":
    main()
