"""What the home agent's engine keeps per binding (issue 13: a million bindings with their
SAs in under 1 GiB; a real ``mip4 ha`` held 1,448 bytes a binding at 1 M, the engine's share
of it 577). Counted with tracemalloc: everything allocated, and still held, while nodes
first register and then renew, each at its own instant (as in a daemon: a new ``now`` per
datagram, so the registration time and the deadline are two floats per binding). The SAs
and the signed requests are made before counting: they are not the engine's.

Per binding, after (at 20,000 bindings): the binding record (144 asked, since it may hold
the replay state too, ``holds_replay``: the 144-byte block its 136 took before), its home
address (48) and the two integers of the request it keeps (home address, Identification:
64), the registration time and the deadline (48), the expiry order's item (45) and the
binding table's and the replay table's dict entries (2 x 29 at this size; ~52 at a
million) -- 408 bytes (tracemalloc counts what is asked, not the block). Before: 557 (a
``(deadline, care-of << 32 | home)`` heap tuple holding the first deadline, its 64-bit key,
a dict of live deadlines and a ``ReplayState`` per node, instead of the 45-byte item)."""

from __future__ import annotations

import gc
import tracemalloc
from ipaddress import IPv4Address, IPv4Network

from mip4.core.events import UdpReceived
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.auth import sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import NO_FLAGS, RegistrationRequest

#: bytes per binding (measured 408 at 20,000 bindings; 557 before issue 13's rework of the
#: expiry order and the replay table)
BUDGET = 420

HA = IPv4Address("10.0.0.1")
COA = IPv4Address("198.18.0.2")
BASE = int(IPv4Address("10.0.1.0"))
UNIX0 = 1_790_000_000.0


def _requests(n: int, sas: list[SecurityAssociation], at: float, step: float) -> list[UdpReceived]:
    out = []
    for i in range(n):
        now = at + i * step
        ident = ntp_timestamp(UNIX0 + now, low=i)
        req = RegistrationRequest(NO_FLAGS, 600, IPv4Address(BASE + i), HA, COA, ident, ())
        raw = sign(req, MobileHomeAuthExtension, sas[i]).raw
        assert raw is not None
        out.append(UdpReceived(raw, COA, HA, 434, 434, "wan0", None, ttl=64))
    return out


def _home_agent(n: int) -> tuple[HomeAgent, list[SecurityAssociation]]:
    """A home agent for ``n`` nodes, each with its own MN-HA association."""
    sas = [SecurityAssociation(256 + i, (i + 1).to_bytes(16, "big")) for i in range(n)]
    store = SecurityAssociations()
    for i, sa in enumerate(sas):
        store.add(IPv4Address(BASE + i), sa)
    config = HomeAgentConfig(
        address=HA, home_network=IPv4Network("10.0.0.0/8"), interface="home0", max_bindings=n
    )
    return HomeAgent(config, store, UNIX0), sas


def test_the_engine_keeps_under_its_budget_per_binding() -> None:
    n, step = 20_000, 0.001
    ha, sas = _home_agent(n)
    first = _requests(n, sas, 1.0, step)
    renewals = _requests(n, sas, 301.0, step)
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        for i, ev in enumerate(first):
            ha.handle(ev, 1.0 + i * step)
        for i, ev in enumerate(renewals):
            ha.handle(ev, 301.0 + i * step)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert len(ha.bindings) == n and ha.fast_renewals == n
    kept = sum(s.size_diff for s in after.compare_to(before, "filename"))
    per_binding = kept / n
    top = "\n".join(str(s) for s in after.compare_to(before, "lineno")[:8])
    print(f"{per_binding:.1f} bytes a binding")
    assert per_binding <= BUDGET, f"{per_binding:.0f} bytes a binding:\n{top}"
