"""Status snapshots of real engines for the MIB tests: the in-memory triangle
(``tests/core/netsim.py``) registers a mobile node through a foreign agent, and
``mip4.daemon.status`` renders each role's ``mip4 status --json`` object."""

from __future__ import annotations

from typing import Any

from mip4.daemon.status import counters, snapshot

from ..core.netsim import World


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


def role_snapshots() -> dict[str, dict[str, Any]]:
    """``{"ha": ..., "fa": ..., "mn": ...}`` after one registration through FA 1."""
    w = registered_world()
    return {
        "ha": snap(w.ha, "ha", w.now),
        "fa": snap(w.fa1, "fa", w.now),
        "mn": snap(w.mn, "mn", w.now, mn_replies={0: 1, 133: 2, 66: 1}),
    }
