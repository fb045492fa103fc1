"""Issue 14 on the bpf plane: the previous agent's edge tunnel must see the datagrams the
home agent still tunnels to it.

With ``[io] dataplane = "bpf"`` the foreign agent's tc program decapsulates what a visitor's
home agent tunnels to it and redirects it to the visitor's hardware address, before the
user-space forwarder -- where the source end of an edge tunnel lives (``io/edge.py``) --
could see it. A fast handover then forwarded nothing to the new agent: every datagram the
home agent sent between the link switch and the binding's move went onto the old link,
where the node no longer was (docs/handovers.md, "Which probes are lost"). The executor
now leaves that home agent's tunnel to the slow path while the source end is up
(``mip4.io.edge_ends.EdgeEnds._slow_path``); this test counts the edge tunnel's datagrams
arriving at the new agent during one anticipated move with probes every millisecond."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from mip4.lab.capture import nft_table
from mip4.lab.configs import LAB_DATAPLANE_ENV
from mip4.lab.demo import start_probes
from mip4.lab.scenario import Scenario, Settings

pytestmark = pytest.mark.lab

MN = "10.1.0.100"
HA, FA1, FA2 = "10.1.0.2", "10.2.0.2", "10.3.0.2"


def tunnel_counter(src: str, dst: str, hook: str = "prerouting") -> str:
    """An nftables chain counting IP-in-IP packets from ``src`` to ``dst`` (at ``hook``)."""
    return (
        "  chain tunnel {\n"
        f"    type filter hook {hook} priority -300; policy accept;\n"
        f"    ip saddr {src} ip daddr {dst} ip protocol 4 counter\n"
        "  }"
    )


def counted(lab_ns: str, table: str) -> int:
    """The packets the one counter of nftables table ``ip table`` in ``lab_ns`` saw."""
    out = subprocess.run(
        ["ip", "netns", "exec", lab_ns, "nft", "list", "table", "ip", table],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    found = re.search(r"counter packets (\d+)", out)
    assert found, out
    return int(found.group(1))


@pytest.mark.usefixtures("needs_bpf")
def test_fast_handover_on_the_bpf_plane_forwards_through_the_edge_tunnel(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LAB_DATAPLANE_ENV, "bpf")
    table = f"{prefix.replace('-', '_')}_edge"
    with Scenario(Settings(prefix[2:], handover="fast"), workdir=tmp_path / "d") as sc:
        assert sc.move("a").registered
        probes = start_probes(sc.lab.popen, MN, 0.001, 20.0)
        try:
            # the home agent's tunnel to FA1 as the router forwards it; the previous
            # agent's edge tunnel as it reaches FA2, before its tc program (which leaves
            # a tunnel from an unregistered peer alone)
            with (
                nft_table(sc.lab, "rtr", table, tunnel_counter(HA, FA1, "forward")),
                nft_table(sc.lab, "fa2", table, tunnel_counter(FA1, FA2)),
            ):
                # the probes flow through FA1 before the move (the sender takes a while
                # to start)
                deadline = time.monotonic() + 10
                while counted(sc.lab.ns("rtr"), table) < 20 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert counted(sc.lab.ns("rtr"), table) >= 20
                move = sc.move("b")
                assert move.registered, move
                edge = counted(sc.lab.ns("fa2"), table)
        finally:
            probes.stop()
            probes.reports(10)
            probes.close()
    # ~100 probes are sent between the Fast Binding Acknowledgement and the switch (the
    # announcement leads by 0.1 s), all tunnelled on by the previous agent; none without
    # the slow path (the fast path delivered them on the old link)
    assert edge >= 20, edge
