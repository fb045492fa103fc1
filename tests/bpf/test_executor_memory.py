"""What a home agent's executor keeps per binding on the bpf plane (issue 13: a real daemon
held ~2,330 bytes a binding at 20,000 bindings, of which the I/O shell's own structures --
the binding's undo stack and records, its fast-path undo, the peers it holds, what a renewal
is compared with -- were ~1,170). Counted with tracemalloc, only what is allocated in
``mip4/io`` and in ``mip4/dataplane/table.py`` (the executor's tunnel table; the engine's
share is not the executor's), against a real loaded object's maps; netlink is the counting
stand-in of ``tests/io``, and the next hop's neighbour entry is not asked of the kernel (no
namespace here)."""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections.abc import Hashable
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import mip4.dataplane.table
import mip4.io
from mip4.core.actions import InstallBinding
from mip4.dataplane.table import TunnelTable
from mip4.io.bpf.agent import FastPath
from mip4.io.bpf.plane import BpfPlane
from mip4.io.executor import LinuxExecutor
from mip4.io.forwarder import Forwarder
from mip4.io.nlthread import NetlinkThread
from mip4.io.undo import Journal

from ..io.test_executor import HA, TUN, CountingNetlink

#: the budget per binding, bytes, ``mip4/io`` and the tunnel table (was ~1,170 for
#: ``mip4/io`` alone; ~500 since the stacks are lists, the fast-path undo a slotted object,
#: the compared values and the peers' tuples shared: ~630 with the table; 146 since a
#: binding keeps no undo stack, record or journal line and the table a shared tuple for a
#: home address with one binding, not a list each; 76 since what a renewal is compared
#: with is the table entry's tag, not an entry of the executor's own per binding -- the
#: table's dictionary entry and the fast path's peers-of entry are what is left)
BUDGET = 100


class _QuietNetlink(CountingNetlink):
    """Counts requests without keeping them (their list is the test's memory, not the
    executor's)."""

    def _request(self, kind: str, command: str, **kw: object) -> list[object]:
        self.calls[f"{kind} {command}"] += 1
        return []


def test_the_executor_keeps_under_its_budget_per_binding(tmp_path: Path) -> None:
    n, warm = 4000, 100
    with BpfPlane(capacity=8192) as plane:
        fast = FastPath(plane, None, [])
        next_hop: set[Hashable] = set()

        def keep_neighbour(owner: Hashable, remote: IPv4Address) -> None:
            next_hop.add(owner)  # (what the real one keeps, without the kernel)

        fast.keep_neighbour = keep_neighbour  # type: ignore[method-assign]
        journal = Journal(tmp_path / "ha.undo.json")
        forwarder = SimpleNamespace(table=TunnelTable(), tun=SimpleNamespace(name=TUN))
        ex = LinuxExecutor(
            forwarder=cast(Forwarder, forwarder),
            tunnel_source=HA,
            journal=journal,
            fast_path=fast,
        )
        nl = _QuietNetlink()
        ex.ns._ipr = cast(NetlinkThread, nl)
        coas = [IPv4Address(0x0A090002 + k) for k in range(16)]
        actions = [
            InstallBinding(IPv4Address(0x0A400000 + i), coas[i % 16], expires=100.0)
            for i in range(n)
        ]
        for a in actions[:warm]:
            ex.execute(a)
        mine = [
            tracemalloc.Filter(True, os.path.dirname(mip4.io.__file__) + os.sep + "*"),
            tracemalloc.Filter(True, mip4.dataplane.table.__file__),
        ]
        gc.collect()
        tracemalloc.start(1)
        try:
            before = tracemalloc.take_snapshot().filter_traces(mine)
            for a in actions[warm:]:
                ex.execute(a)
            journal.flush()
            gc.collect()
            after = tracemalloc.take_snapshot().filter_traces(mine)
        finally:
            tracemalloc.stop()
        grown = sum(s.size_diff for s in after.compare_to(before, "lineno"))
        per_binding = grown / (n - warm)
        assert len(plane.bindings()) == n and nl.calls["route replace"] == n
        assert per_binding < BUDGET, f"{per_binding:.0f} bytes a binding"
        ex.close()
        assert plane.bindings() == {}
