"""Every move there is: the mobile node goes along all twelve directed edges between home,
A (FA1), B (FA2) and C (co-located) -- home→C and C→A included, which the demo's route
never takes -- with a verified TCP stream each way on each of two connections. After every
move the node must be registered where it is (at home: deregistered, no binding), and all
four TCP directions must deliver again within a few seconds; at the end every byte is
verified and no connection was reset."""

from __future__ import annotations

import time

import pytest

from mip4.demo.runner import StreamPair
from mip4.lab.scenario import Scenario, Settings

from .helpers import MN, delivered, lab_id, start_both_ways

pytestmark = [pytest.mark.lab, pytest.mark.slow]

#: an Euler circuit of the complete directed graph on the four networks
ROUTE = ("a", "home", "b", "home", "c", "a", "b", "a", "c", "b", "c", "home")
#: how long all four TCP directions may take to deliver again after a registration
RESUME_WITHIN = 5.0


@pytest.mark.parametrize("reverse_tunnel", [True, False], ids=["reverse", "direct"])
def test_every_move_keeps_both_connections(lab_prefix: str, reverse_tunnel: bool) -> None:
    edges = set(zip(("home", *ROUTE), ROUTE, strict=False))
    assert len(edges) == 12  # every ordered pair of distinct networks, once
    with Scenario(Settings(lab_id(lab_prefix), reverse_tunnel=reverse_tunnel)) as sc:
        lab = sc.lab
        pairs: list[StreamPair] = []
        try:
            start_both_ways(lab, 120, pairs)
            sc.wait(lambda: min(delivered(pairs)) > 20_000, 10, "the streams to flow")
            resumed: list[float] = []
            for net in ROUTE:
                before = delivered(pairs)
                rec = sc.move(net)
                assert rec.registered, (sc.net, rec.note)
                bindings = sc.ha_status().bindings
                if net == "home":
                    assert bindings == (), bindings
                else:
                    assert [b.care_of_address for b in bindings] == [rec.care_of_address]

                def flowing(before: list[int] = before) -> bool:
                    after = delivered(pairs)
                    return all(a > b + 10_000 for a, b in zip(after, before, strict=True))

                took = sc.wait(
                    flowing,
                    RESUME_WITHIN,
                    f"all four TCP directions to deliver again after the move to {net!r}",
                )
                resumed.append(took)
                time.sleep(0.3)
            print(f"\nTCP resumed after each move (s): {', '.join(f'{t:.2f}' for t in resumed)}")
            for p in pairs:
                p.stop()
            reports = [p.reports(60) for p in pairs]
        finally:
            for p in pairs:
                p.close()
    for spec, client, server in reports:
        assert client is not None and server is not None, spec
        assert client.outcome == server.outcome == "ok", (spec, client.error, server.error)
        assert server.bytes_verified == client.bytes_sent and server.mismatched_bytes == 0
        assert client.bytes_verified == server.bytes_sent and client.mismatched_bytes == 0
        assert client.bytes_sent > 100_000 and server.bytes_sent > 100_000


def test_rapid_moves_all_register(lab_prefix: str) -> None:
    """Thirty-six moves back to back (a registration every ~50 ms): every one registers.
    The node's timestamp identifications once ran ahead of its clock when it sent several
    requests a second, until the home agent refused them all with 133."""
    with Scenario(Settings(lab_id(lab_prefix), reverse_tunnel=False)) as sc:
        for net in ROUTE * 3:
            rec = sc.move(net)
            assert rec.registered, (net, rec.note)
        assert sc.net == "home" and sc.ha_status().bindings == ()
        assert sc.lab.wait_reachable("cn", MN, within=5)
