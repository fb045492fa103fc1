"""Status snapshots of real engines for the MIB tests: the in-memory triangle
(``tests/core/netsim.py``) registers a mobile node through a foreign agent, and
``mip4.daemon.status`` renders each role's ``mip4 status --json`` object."""

from __future__ import annotations

from typing import Any

from mip4.daemon.status import counters, snapshot

from ..core.netsim import World
from ..core.test_home_agent import COA, COA2, HOA, HOA2, MN_SA, F, make_ha, request, udp


def snap(engine: Any, role: str, now: float, **kw: Any) -> dict[str, Any]:
    return snapshot(
        role=role,
        name=f"test-{role}",
        config=f"{role}.toml",
        started=now - 5,
        now=now,
        interfaces=["e0"],
        tun="t0",
        engine=engine,
        counter_sets=counters(engine, **kw),
    )


def registered_world() -> World:
    w = World()
    w.move("A")
    w.advance(3)
    assert w.mn.registered
    return w


def home_agent_snapshot() -> dict[str, Any]:
    """A home agent driven through ``handle()``: three bindings (two simultaneous ones of
    one node, with the S flag; one with GRE), one request denied (131: bad authenticator)."""
    from mip4.security.sa import SecurityAssociation

    ha = make_ha(max_simultaneous_bindings=2)
    for now, (hoa, coa, flags) in enumerate([(HOA, COA, F.S), (HOA, COA2, F.S), (HOA2, COA, F.G)]):
        ha.handle(udp(request(now=now, hoa=hoa, coa=coa, flags=flags)), float(now))
    wrong = SecurityAssociation(spi=MN_SA.spi, key=b"x" * 16)
    ha.handle(udp(request(now=4, hoa=HOA2, mn_sa=wrong)), 4.0)
    assert len(ha.bindings) == 3
    return snap(ha, "ha", 10.0)


def role_snapshots() -> dict[str, dict[str, Any]]:
    """``{"ha": ..., "fa": ..., "mn": ...}`` after one registration through FA 1, and the
    home agent of :func:`home_agent_snapshot` as ``"ha3"``."""
    w = registered_world()
    return {
        "ha3": home_agent_snapshot(),
        "ha": snap(w.ha, "ha", w.now),
        "fa": snap(w.fa1, "fa", w.now),
        "mn": snap(w.mn, "mn", w.now, mn_replies={0: 1, 133: 2, 66: 1}),
    }
