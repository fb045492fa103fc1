"""The foreign agent engine alone (no I/O): CPU per relayed registration (the request from
the mobile node and the home agent's reply), against the home agent engine's CPU per renewal
measured in the same run on the same requests (issue 13: FA-relayed within 0.8x of direct).

Nodes ``i`` (home address ``10.1.0.16 + i``, one MN-HA association each) register once
through the foreign agent, then renew ``--rounds`` times; the foreign agent has no security
associations, as in ``mip4 bench registrations``. Only ``ForeignAgent.handle`` (request
and reply) and ``HomeAgent.handle`` are timed (process CPU time), the messages are built
beforehand::

    .venv/bin/python benchmarks/fa_relay.py [--nodes 1000] [--rounds 5] [--profile]
        [--log-level info] [--visitor-memory 100000]

``--log-level``: the foreign agent's ``log_level`` (default debug: every record built, as
before; info: an unchanged renewal's two debug lines are not built, as in a daemon at its
default level that reads no record below it).

``--visitor-memory N``: instead, the memory a visitor costs the foreign agent
(``tracemalloc``): N nodes each relayed once and accepted, every datagram's addresses and
hardware address new objects as a socket would hand them; the bytes the agent holds
afterwards (visitor list, its deadlines, what the records keep alive) divided by N.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import sys
import time
import tracemalloc
from ipaddress import IPv4Address, IPv4Network

from mip4.core.actions import DEBUG, INFO, SendUdp
from mip4.core.events import UdpReceived
from mip4.core.fa_config import ForeignAgentConfig, VisitedLink
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.auth import sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import NO_FLAGS, RegistrationRequest

HA = IPv4Address("10.1.0.1")
NET = IPv4Network("10.1.0.0/16")
WIDE = IPv4Network("10.0.0.0/8")  # --visitor-memory: home addresses from 10.2.0.0 on
FA_COA = IPv4Address("10.9.0.1")
FA_UP = IPv4Address("10.8.0.1")
UNIX0 = 1_790_000_000.0
MAC = b"\x02\x00\x00\x00\x00\x10"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile the FA's handle calls")
    ap.add_argument("--log-level", choices=("debug", "info"), default="debug")
    ap.add_argument("--visitor-memory", type=int, metavar="N", help="bytes per visitor at N")
    opts = ap.parse_args(argv)
    if opts.visitor_memory:
        return visitor_memory(opts.visitor_memory)
    n = opts.nodes
    keys = [SecurityAssociation(256 + i, i.to_bytes(4, "big") * 4) for i in range(n)]
    hoas = [IPv4Address(int(NET.network_address) + 16 + i) for i in range(n)]
    ha_sas = SecurityAssociations()
    for hoa, sa in zip(hoas, keys, strict=True):
        ha_sas.add(hoa, sa)
    ha = HomeAgent(
        HomeAgentConfig(address=HA, home_network=NET, interface="home0", max_bindings=n + 1),
        ha_sas,
        UNIX0,
    )
    link = VisitedLink("vis0", FA_COA, 24)
    fa = ForeignAgent(
        ForeignAgentConfig(links=(link,), max_pending=4 * n, max_visitors=4 * n),
        SecurityAssociations(),
        rng=random.Random(1),
    )
    fa.log_level = DEBUG if opts.log_level == "debug" else INFO
    fa.handle_timer(0.0)

    def requests(now: float) -> list[UdpReceived]:
        out = []
        for i, (hoa, sa) in enumerate(zip(hoas, keys, strict=True)):
            ident = ntp_timestamp(UNIX0 + now, low=i)
            req = RegistrationRequest(NO_FLAGS, 600, hoa, HA, FA_COA, ident, ())
            raw = sign(req, MobileHomeAuthExtension, sa).raw
            assert raw is not None
            out.append(UdpReceived(raw, hoa, FA_COA, 5555, 434, "vis0", MAC, ttl=255))
        return out

    fa_cpu = ha_cpu = 0.0
    relayed = 0
    prof = cProfile.Profile() if opts.profile else None
    tick = time.process_time
    for r in range(opts.rounds + 1):
        now = 1.0 + r
        for ev in requests(now):
            t0 = tick()
            if prof:
                prof.enable()
            out = fa.handle(ev, now)
            if prof:
                prof.disable()
            t1 = tick()
            (send,) = [a for a in out if isinstance(a, SendUdp)]
            hev = UdpReceived(send.payload, FA_UP, HA, 434, 434, "wan0", None, ttl=64)
            t2 = tick()
            hout = ha.handle(hev, now)
            t3 = tick()
            (rsend,) = [a for a in hout if isinstance(a, SendUdp)]
            fev = UdpReceived(rsend.payload, HA, FA_UP, 434, 434, "up0", None, ttl=64)
            t4 = tick()
            if prof:
                prof.enable()
            back = fa.handle(fev, now)
            if prof:
                prof.disable()
            t5 = tick()
            (to_mn,) = [a for a in back if isinstance(a, SendUdp)]
            if to_mn.payload[1] != 0:
                raise RuntimeError(f"reply code {to_mn.payload[1]}")
            if r:  # round 0: first registrations, not measured
                fa_cpu += (t1 - t0) + (t5 - t4)
                ha_cpu += t3 - t2
                relayed += 1
    fa_us, ha_us = fa_cpu / relayed * 1e6, ha_cpu / relayed * 1e6
    print(
        f"relayed renewals: {relayed:,} ({n:,} nodes x {opts.rounds} rounds; "
        f"FA log level {opts.log_level})"
    )
    print(f"FA CPU per relayed registration (request + reply): {fa_us:6.1f} us")
    print(f"HA CPU per renewal (same requests):                {ha_us:6.1f} us")
    print(f"FA / HA: {fa_us / ha_us:.2f}x")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    return 0


def visitor_memory(n: int) -> int:
    """Bytes the foreign agent holds per visitor with ``n`` visitors (see the docstring)."""
    keys = [SecurityAssociation(256 + i, i.to_bytes(4, "big") * 4) for i in range(n)]
    hoas = [IPv4Address(int(WIDE.network_address) + 0x20000 + i) for i in range(n)]
    ha_sas = SecurityAssociations()
    for hoa, sa in zip(hoas, keys, strict=True):
        ha_sas.add(hoa, sa)
    ha = HomeAgent(
        HomeAgentConfig(address=HA, home_network=WIDE, interface="home0", max_bindings=n + 1),
        ha_sas,
        UNIX0,
    )
    link = VisitedLink("vis0", FA_COA, 16)

    def agent() -> ForeignAgent:
        fa = ForeignAgent(
            ForeignAgentConfig(links=(link,), max_pending=n + 1, max_visitors=n + 1),
            SecurityAssociations(),
            rng=random.Random(1),
        )
        fa.log_level = INFO
        fa.handle_timer(0.0)
        return fa

    # the requests and the home agent's replies, made first (through another agent)
    warm = agent()
    pairs: list[tuple[bytes, bytes]] = []
    for i, (hoa, sa) in enumerate(zip(hoas, keys, strict=True)):
        ident = ntp_timestamp(UNIX0 + 1.0, low=i)
        raw = sign(
            RegistrationRequest(NO_FLAGS, 600, hoa, HA, FA_COA, ident, ()),
            MobileHomeAuthExtension,
            sa,
        ).raw
        assert raw is not None
        out = warm.handle(UdpReceived(raw, hoa, FA_COA, 5555, 434, "vis0", MAC, ttl=255), 1.0)
        (send,) = [a for a in out if isinstance(a, SendUdp)]
        hout = ha.handle(UdpReceived(send.payload, FA_UP, HA, 434, 434, "wan0", None, ttl=64), 1.0)
        (rsend,) = [a for a in hout if isinstance(a, SendUdp)]
        pairs.append((raw, rsend.payload))
    del warm
    fa = agent()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for (raw, rraw), hoa in zip(pairs, hoas, strict=True):
        ev = UdpReceived(raw, IPv4Address(int(hoa)), FA_COA, 5555, 434, "vis0", bytes(MAC), ttl=255)
        fa.handle(ev, 1.0)
        fa.handle(
            UdpReceived(rraw, IPv4Address(int(HA)), FA_UP, 434, 434, "up0", None, ttl=64), 1.0
        )
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    if len(fa.visitors) != n or len(fa.pending):
        raise RuntimeError(f"{len(fa.visitors)} visitors, {len(fa.pending)} pending")
    print(
        f"visitors: {n:,}; held by the foreign agent: {held / 2**20:.1f} MiB, "
        f"{held / n:.0f} bytes per visitor"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
