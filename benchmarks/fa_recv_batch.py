"""Reading the UDP 434 socket: ``recv_udp`` with one ``recvmsg`` per datagram against
``recv_udp(receiver=BatchReceiver(sock))``, one ``recvmmsg`` per read (issue 13: a relaying
foreign agent reads two datagrams per registration, ~64 per wakeup when it is the
bottleneck), alternately in one process, over loopback: microseconds per datagram for the
whole read -- the system calls and the events built -- best of ``--passes``.

    .venv/bin/python benchmarks/fa_recv_batch.py [--batches 1,2,8,64] [--passes 7]
"""

from __future__ import annotations

import argparse
import socket
import time
from ipaddress import IPv4Address

from mip4.io.mmsg import BatchReceiver
from mip4.io.rawsock import open_udp_control, recv_udp, send_udp

LO = IPv4Address("127.0.0.1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="1,2,8,64", help="datagrams per read")
    p.add_argument("--passes", type=int, default=7)
    p.add_argument("--reads", type=int, default=300, help="reads per pass")
    args = p.parse_args()
    rx = open_udp_control(address=str(LO), port=0)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    port = rx.getsockname()[1]
    tx = open_udp_control(address=str(LO), port=0)
    receiver = BatchReceiver(rx)
    payload = bytes(range(70))  # about a relayed renewal (fixed part + MN-HA)

    def per_datagram(batch: int, with_receiver: bool) -> float:
        spent, count = 0.0, 0
        r = receiver if with_receiver else None
        for _ in range(args.reads):
            for _ in range(batch):
                send_udp(tx, payload, LO, port, src=LO, ttl=64)
            t0 = time.perf_counter()
            got = recv_udp(rx, limit=64, dport=port, ifname_of=str, receiver=r)
            spent += time.perf_counter() - t0
            count += len(got)
            if len(got) != batch:
                raise SystemExit(f"read {len(got)} of {batch}")
        return spent / count * 1e6

    print(f"{'datagrams per read':>20} {'recvmsg loop':>14} {'recvmmsg':>10} {'ratio':>7}")
    for batch in (int(b) for b in args.batches.split(",")):
        loop = best = float("inf")
        for _ in range(args.passes):
            loop = min(loop, per_datagram(batch, False))
            best = min(best, per_datagram(batch, True))
        print(f"{batch:>20} {loop:>11.2f} us {best:>7.2f} us {best / loop:>6.2f}x")


if __name__ == "__main__":
    main()
