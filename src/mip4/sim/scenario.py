"""The parameters of one simulation run (``mip4 sim`` options map 1:1 onto them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mip4.errors import Mip4Error


class ScenarioError(Mip4Error, ValueError):
    """A scenario parameter is out of range."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A seeded, reproducible simulation: the same scenario gives the same figures."""

    #: mobile nodes (``N``)
    nodes: int = 200
    #: foreign agents (``M``), one per cell of a near-square grid
    foreign_agents: int = 10
    #: home agents (``K``); node ``i`` belongs to home agent ``i % K``
    home_agents: int = 2
    #: simulated seconds
    duration: float = 600.0
    seed: int = 1
    #: cell edge, metres (speeds are given in metres per second)
    cell_size: float = 500.0
    #: random waypoint speed range, metres per second
    speed_min: float = 0.5
    speed_max: float = 15.0
    #: longest pause at a waypoint, seconds (drawn uniformly from ``[0, dwell]``)
    dwell: float = 300.0
    #: one-way delay (seconds) and loss probability on the radio link (node <-> agent)
    radio_delay: float = 0.005
    radio_loss: float = 0.0
    #: one-way delay and loss between foreign and home agents
    core_delay: float = 0.020
    core_loss: float = 0.0
    #: reboots per agent per simulated hour (Poisson), foreign and home agents
    reboot_rate: float = 0.0
    #: registration lifetime the nodes ask for (seconds)
    lifetime: int = 600
    #: foreign agents' advertisement interval (seconds; 0: answer solicitations only)
    advertisement_interval: float = 60.0
    #: nodes are switched on uniformly over the first this many seconds
    ramp: float = 10.0
    #: binding-table samples every this many simulated seconds
    sample_interval: float = 10.0

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.foreign_agents < 1 or self.home_agents < 1:
            raise ScenarioError("sim: nodes, foreign agents and home agents must be >= 1")
        if self.home_agents > 16:
            raise ScenarioError("sim: at most 16 home agents (one 10.x/12 home network each)")
        if self.nodes > self.home_agents * ((1 << 20) - 3):
            raise ScenarioError("sim: too many nodes for the home networks")
        if self.foreign_agents > 16384:
            raise ScenarioError("sim: at most 16384 foreign agents (100.64.0.0/10 in /24s)")
        if self.duration <= 0 or self.sample_interval <= 0:
            raise ScenarioError("sim: duration and sample interval must be > 0")
        if not 0 < self.speed_min <= self.speed_max:
            raise ScenarioError("sim: need 0 < speed_min <= speed_max")
        for name in ("radio_loss", "core_loss"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ScenarioError(f"sim: {name} must be in [0, 1)")
        if self.lifetime < 2 or self.lifetime > 65534:
            raise ScenarioError("sim: lifetime must be in 2..65534 seconds")

    @property
    def grid(self) -> tuple[int, int]:
        """(width, height) of the cell grid, one cell per foreign agent (filled row by
        row): the most nearly square ``width x height == foreign_agents`` (a prime number
        of agents makes a single row)."""
        m = self.foreign_agents
        width = next(d for d in range(math.isqrt(m), 0, -1) if m % d == 0)
        return width, m // width
