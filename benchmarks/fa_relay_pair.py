"""The foreign agent engine alone (no I/O), this tree against a baseline tree's, alternately
in the same run (issue 13, FA-relayed renewals within 0.8x of direct): CPU per relayed
request (``ForeignAgent.handle`` of a visitor's renewal) and per relayed reply (``handle``
of the home agent's acceptance), each timed over a whole round of ``--nodes`` datagrams --
one clock read per round, not per call (``benchmarks/fa_relay.py`` reads the process CPU
clock around every call, a system call each) -- and optionally ``next_deadline()`` after
each datagram, as a daemon reading one datagram per wakeup asks it.

Nodes ``i`` (home address ``10.1.0.16 + i``, one MN-HA association each) register once
through the agent, then renew ``--rounds`` times; the home agent engine answers (not
timed). The agent has no security associations and its log level is info, as the
``mip4 fa`` of ``mip4 bench registrations``. Best round per pass, best pass per tree::

    .venv/bin/python benchmarks/fa_relay_pair.py --baseline /work/main/src [--pairs 5]
        [--nodes 1000] [--rounds 10] [--deadline]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import gc, json, random, sys, time
from ipaddress import IPv4Address, IPv4Network
from mip4.core.actions import INFO, SendUdp
from mip4.core.events import UdpReceived
from mip4.core.fa_config import ForeignAgentConfig, VisitedLink
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.auth import sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import NO_FLAGS, RegistrationRequest

n, rounds, deadline = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
HA, NET = IPv4Address("10.1.0.1"), IPv4Network("10.1.0.0/16")
COA, UP = IPv4Address("10.9.0.1"), IPv4Address("10.8.0.1")
UNIX0, MAC = 1_790_000_000.0, b"\x02\x00\x00\x00\x00\x10"
keys = [SecurityAssociation(256 + i, i.to_bytes(4, "big") * 4) for i in range(n)]
hoas = [IPv4Address(int(NET.network_address) + 16 + i) for i in range(n)]
ha_sas = SecurityAssociations()
for hoa, sa in zip(hoas, keys):
    ha_sas.add(hoa, sa)
ha = HomeAgent(HomeAgentConfig(address=HA, home_network=NET, interface="home0",
                               max_bindings=n + 1), ha_sas, UNIX0)
fa = ForeignAgent(ForeignAgentConfig(links=(VisitedLink("vis0", COA, 24),), max_pending=4 * n,
                                     max_visitors=4 * n), SecurityAssociations(),
                  rng=random.Random(1))
fa.log_level = INFO
fa.handle_timer(0.0)


def handle_all(events, now):
    out = []
    append, handle, next_deadline = out.append, fa.handle, fa.next_deadline
    gc.disable()
    t0 = time.process_time()
    if deadline:
        for ev in events:
            append(handle(ev, now))
            next_deadline()
    else:
        for ev in events:
            append(handle(ev, now))
    t1 = time.process_time()
    gc.enable()
    return out, (t1 - t0) / len(events)


best_q = best_p = float("inf")
for r in range(rounds + 1):
    now = 1.0 + r
    requests = []
    for i, (hoa, sa) in enumerate(zip(hoas, keys)):
        req = RegistrationRequest(NO_FLAGS, 600, hoa, HA, COA, ntp_timestamp(UNIX0 + now, low=i))
        raw = sign(req, MobileHomeAuthExtension, sa).raw
        # a new address object per datagram, as a socket hands them over
        requests.append(UdpReceived(raw, IPv4Address(int(hoa)), COA, 5555, 434, "vis0", MAC,
                                    ttl=255))
    relayed, q = handle_all(requests, now)
    replies = []
    for out in relayed:
        (send,) = [a for a in out if isinstance(a, SendUdp)]
        ev = UdpReceived(send.payload, UP, HA, 434, 434, "wan0", None, ttl=64)
        (back,) = [a for a in ha.handle(ev, now) if isinstance(a, SendUdp)]
        replies.append(UdpReceived(back.payload, HA, UP, 434, 434, "up0", None, ttl=64))
    answered, p = handle_all(replies, now)
    for out in answered:
        (to_mn,) = [a for a in out if isinstance(a, SendUdp)]
        if to_mn.payload[1] != 0 or to_mn.link_dst != MAC:
            raise SystemExit(f"reply code {to_mn.payload[1]}")
    if r:  # round 0: first registrations (the general path), not measured
        best_q, best_p = min(best_q, q), min(best_p, p)
print(json.dumps({"request": best_q, "reply": best_p,
                  "fast": [fa.fast_requests, fa.fast_replies]}))
"""


def measure(src: Path, nodes: int, rounds: int, deadline: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    argv = [sys.executable, "-c", CHILD, str(nodes), str(rounds), "1" if deadline else "0"]
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    row: dict[str, float] = json.loads(out)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", type=Path, required=True, help="the baseline tree's src")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--deadline", action="store_true", help="next_deadline() after each")
    args = p.parse_args()
    here = Path(__file__).resolve().parent.parent / "src"
    rows: dict[str, list[dict[str, float]]] = {"baseline": [], "this": []}
    for _ in range(args.pairs):
        rows["baseline"].append(measure(args.baseline, args.nodes, args.rounds, args.deadline))
        rows["this"].append(measure(here, args.nodes, args.rounds, args.deadline))
    load = os.getloadavg()[0]
    print(
        f"fa_relay_pair: {args.pairs} pairs, {args.nodes} nodes x {args.rounds} rounds, "
        f"best kept, next_deadline after each: {args.deadline}, load {load:.2f}"
    )
    print(f"{'':<10} {'baseline us':>12} {'this us':>9} {'ratio':>6}")
    for what in ("request", "reply"):
        b = min(r[what] for r in rows["baseline"]) * 1e6
        t = min(r[what] for r in rows["this"]) * 1e6
        print(f"{what:<10} {b:>12.2f} {t:>9.2f} {t / b:>6.2f}x")
    b = min(r["request"] + r["reply"] for r in rows["baseline"]) * 1e6
    t = min(r["request"] + r["reply"] for r in rows["this"]) * 1e6
    print(f"{'per relay':<10} {b:>12.2f} {t:>9.2f} {t / b:>6.2f}x  (request + reply)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
