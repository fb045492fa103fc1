"""``mip4 sim``: a discrete-event simulation of many mobile nodes, foreign agents and home
agents -- mip4's own engines (``mip4.core``), not models of them -- on a virtual clock.

* :mod:`~mip4.sim.scenario` -- the parameters of a run;
* :mod:`~mip4.sim.links` -- address plan, link-layer addresses, the subscriber SA store;
* :mod:`~mip4.sim.mobility` -- random waypoint over the grid of foreign-agent cells;
* :mod:`~mip4.sim.model` -- the event heap, lazy timers, delivery, reboots, invariants;
* :mod:`~mip4.sim.report` / :mod:`~mip4.sim.plot` -- JSON, text table, PNG;
* :mod:`~mip4.sim.cli` -- the ``mip4 sim`` subcommand.
"""

from .model import Simulator
from .report import Report
from .scenario import Scenario

__all__ = ["Report", "Scenario", "Simulator"]
