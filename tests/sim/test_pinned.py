"""The same seed gives the same run *across changes to the engines' speed*.

``test_sim.py::test_same_seed_same_run`` compares two runs of the code as it is; this file
pins what three small scenarios gave on main before the mobile node's fast paths (issue
13, 2026-12-05, f48247b): every registration per simulated second (at the home agents and
at the nodes), the reply codes, each handoff and first-registration latency, the binding
table and visitor lists at every sample, the drops, the reboots, the mobile nodes' log
events and the simulator's event count. A speed-up that changes any decision -- a
registration at another instant, a lost datagram more or less (the loss draws follow the
order of the events), a log event more or less -- fails here.

When a change is *meant* to alter the engines' behaviour, the pins are updated in the
same commit, and the commit says why."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from mip4.sim import Scenario, Simulator
from mip4.sim.report import Report

SCENARIOS = {
    # loss on both links, reboots of both kinds of agent, renewals (300 s lifetime),
    # retransmissions, the default speeds (0.5-15 m/s)
    "loss-reboots": Scenario(
        nodes=150, foreign_agents=9, home_agents=2, duration=900.0, seed=11, lifetime=300,
        radio_loss=0.02, core_loss=0.02, reboot_rate=4.0,
    ),
    # pedestrians, periodic advertisements heard again and again, renewals
    "pedestrian": Scenario(
        nodes=200, foreign_agents=12, home_agents=3, duration=900.0, seed=5, lifetime=300,
        speed_min=0.5, speed_max=2.0,
    ),
    # no periodic advertisements: every attachment by solicitation; radio loss, reboots
    "solicited": Scenario(
        nodes=120, foreign_agents=9, home_agents=2, duration=600.0, seed=4,
        advertisement_interval=0.0, radio_loss=0.03, reboot_rate=3.0,
    ),
}  # fmt: skip


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


def fingerprint(r: Report) -> dict[str, Any]:
    """What the run decided, series as digests, totals as they are."""
    return {
        "ha": digest(r.home_agent_accepts_per_second),
        "mn": digest(r.registrations_per_second),
        "handoffs": digest([round(x, 9) for x in r.handoff_samples]),
        "first": digest([round(x, 9) for x in r.first_registration_samples]),
        "bt": digest([list(x) for x in r.bindings_over_time]),
        "codes": {str(k): v for k, v in r.reply_codes.items()},
        "dropped": r.dropped,
        "reboots": r.reboots,
        "mnlogs": {k: v for k, v in r.logs.items() if k.startswith("mn.")},
        "regend": r.registered_at_end,
        "events": r.events,
    }


PINNED: dict[str, dict[str, Any]] = {
    "loss-reboots": {
        "bt": "5dcaa600f5b41423", "codes": {"0": 1239},
        "dropped": {"core loss": 45, "moved away": 1, "radio loss": 138}, "events": 11835,
        "first": "ebba1b7bd826df3d", "ha": "2df3b5796eb8caf6", "handoffs": "d5e4432a20fad1e5",
        "mn": "040d879c2def89d9",
        "mnlogs": {
            "mn.agent_rebooted": 141, "mn.attach": 893, "mn.detached": 743,
            "mn.link_down": 743, "mn.link_up": 893, "mn.register": 1240,
            "mn.registered": 1239, "mn.reply": 1239, "mn.request": 1240,
            "mn.retransmit": 104, "mn.state": 3421,
        },
        "reboots": {"foreign agent": 11, "home agent": 2}, "regend": 150,
    },
    "pedestrian": {
        "bt": "3866d7bfa23a3b77", "codes": {"0": 1050}, "dropped": {}, "events": 10336,
        "first": "476b54652f918324", "ha": "7426fe3470ec6408", "handoffs": "b8138567919de77a",
        "mn": "b0393b9269413809",
        "mnlogs": {
            "mn.attach": 565, "mn.detached": 365, "mn.link_down": 365, "mn.link_up": 565,
            "mn.register": 1050, "mn.registered": 1050, "mn.reply": 1050,
            "mn.request": 1050, "mn.state": 2060,
        },
        "reboots": {}, "regend": 200,
    },
    "solicited": {
        "bt": "60cef230658261cf", "codes": {"0": 504}, "dropped": {"radio loss": 55},
        "events": 4101, "first": "76a322c3045771a5", "ha": "94f69daffd506fe3",
        "handoffs": "42b5c8cd2f9f5847", "mn": "43b1367eda9fcf20",
        "mnlogs": {
            "mn.attach": 495, "mn.detached": 375, "mn.link_down": 375, "mn.link_up": 495,
            "mn.register": 504, "mn.registered": 504, "mn.reply": 504, "mn.request": 504,
            "mn.retransmit": 28, "mn.state": 1860,
        },
        "reboots": {"foreign agent": 2, "home agent": 1}, "regend": 120,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_small_scenarios_give_the_pinned_run(name: str) -> None:
    r = Simulator(SCENARIOS[name]).run()
    assert r.invariant_violations == []
    assert fingerprint(r) == PINNED[name]
