"""The daemons backend reads the mobile node's JSON log: round trips and link-ups, whichever
spelling the log events use (``mn-registered`` or the ``role.snake_case`` ``mn.registered``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mip4.lab.backend import Settings
from mip4.lab.build import Lab
from mip4.lab.daemons import DaemonBackend


@pytest.mark.parametrize("dash", [True, False], ids=["mn-link-up", "mn.link_up"])
def test_mn_log_round_trips_and_link_ups(tmp_path: Path, dash: bool) -> None:
    backend = DaemonBackend(Lab("t1"), Settings("t1"), tmp_path)

    def name(event: str) -> str:
        return event if dash else event.replace("-", ".", 1).replace("-", "_")

    lines = [
        ("12:00:00.000", "mn-link-up", {}),
        ("12:00:00.100", "mn-request", {}),
        ("12:00:00.150", "mn-retransmit", {}),
        ("12:00:00.160", "mn-registered", {"care_of_address": "10.2.0.2"}),
        ("12:00:05.000", "mn-link-up", {}),
        ("12:00:05.010", "mn-request", {}),
        ("12:00:05.030", "mn-deregistered", {}),
        ("12:00:06.000", "mn-registered", {"care_of_address": "10.3.0.2"}),  # no request seen
    ]
    log = [
        json.dumps({"ts": f"2026-12-05T{ts}Z", "event": name(event), **fields})
        for ts, event, fields in lines
    ]
    backend.starts["mn"] = 1
    (tmp_path / "mn.1.log").write_text("\n".join(["not json", *log]) + "\n")
    registrations, link_ups = backend.mn_log()
    assert [r.care_of_address for r in registrations] == ["10.2.0.2", None, "10.3.0.2"]
    assert [r.rtt_ms for r in registrations[:2]] == [10.0, 20.0]
    assert math.isnan(registrations[2].rtt_ms)
    assert [round(t - link_ups[0], 3) for t in link_ups] == [0.0, 5.0]
