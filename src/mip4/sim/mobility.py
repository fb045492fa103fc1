"""Random waypoint mobility over a grid of foreign-agent cells.

Each mobile node moves in a ``width`` x ``height`` grid whose unit is one cell (the cell
``(floor(x), floor(y))`` is served by foreign agent ``floor(y) * width + floor(x)``). A node
picks a waypoint uniformly in the grid and a speed uniformly in ``[speed_min, speed_max]``
(cells per second), walks there in a straight line, pauses a dwell time drawn uniformly in
``[0, dwell]``, and starts again (the random waypoint model of Johnson and Maltz, 1996).

Nothing is sampled per tick: :meth:`RandomWaypoint.next_change` computes, in closed form,
the time at which the node next crosses a cell boundary or reaches its waypoint, and the
simulator schedules exactly one event for it. Per-node state is six ``array('d')`` slots
(48 bytes a node).
"""

from __future__ import annotations

import math
import random
from array import array

#: seconds past a boundary crossing at which it is scheduled
_NUDGE = 1e-6


class RandomWaypoint:
    """The positions of ``n`` nodes; all draws come from ``rng`` (seeded: reproducible)."""

    __slots__ = (
        "_t",
        "_ta",
        "_vx",
        "_vy",
        "_x",
        "_y",
        "dwell",
        "height",
        "rng",
        "speed_max",
        "speed_min",
        "width",
    )

    def __init__(
        self,
        n: int,
        width: int,
        height: int,
        *,
        speed_min: float,
        speed_max: float,
        dwell: float,
        rng: random.Random,
    ) -> None:
        if not 0 < speed_min <= speed_max:
            raise ValueError("mobility: need 0 < speed_min <= speed_max")
        self.width, self.height = width, height
        self.speed_min, self.speed_max, self.dwell = speed_min, speed_max, dwell
        self.rng = rng
        u = rng.random
        self._x = array("d", (u() * width for _ in range(n)))
        self._y = array("d", (u() * height for _ in range(n)))
        #: time the position was last updated; velocity; time the waypoint is reached
        #: (while pausing: the velocity is 0 and ``_ta`` is the end of the pause)
        self._t = array("d", bytes(8 * n))
        self._vx = array("d", bytes(8 * n))
        self._vy = array("d", bytes(8 * n))
        self._ta = array("d", (u() * dwell for _ in range(n)))  # start paused, staggered

    def cell(self, i: int) -> int:
        """The cell node ``i`` is in (as of its last update)."""
        x = min(int(self._x[i]), self.width - 1)
        y = min(int(self._y[i]), self.height - 1)
        return y * self.width + x

    def next_change(self, i: int) -> float:
        """When node ``i`` next crosses a cell boundary, or ends its leg or pause."""
        vx, vy, x, y = self._vx[i], self._vy[i], self._x[i], self._y[i]
        t = self._ta[i]
        now = self._t[i]
        # a crossing is scheduled just past the boundary (_NUDGE), so that the position
        # computed then is inside the next cell
        if vx > 0.0:
            t = min(t, now + (math.floor(x) + 1.0 - x) / vx + _NUDGE)
        elif vx < 0.0:
            edge = math.floor(x)
            t = min(t, now + (edge - x) / vx + _NUDGE)
        if vy > 0.0:
            t = min(t, now + (math.floor(y) + 1.0 - y) / vy + _NUDGE)
        elif vy < 0.0:
            edge = math.floor(y)
            t = min(t, now + (edge - y) / vy + _NUDGE)
        return t

    def advance(self, i: int, now: float) -> None:
        """Move node ``i`` to where it is at ``now``; at the waypoint (or at the end of a
        pause) start the next pause (or leg)."""
        dt = now - self._t[i]
        vx, vy = self._vx[i], self._vy[i]
        self._x[i] = min(max(self._x[i] + vx * dt, 0.0), self.width - 1e-9)
        self._y[i] = min(max(self._y[i] + vy * dt, 0.0), self.height - 1e-9)
        self._t[i] = now
        if now < self._ta[i]:
            return
        rng = self.rng
        if vx or vy:  # arrived: pause
            self._vx[i] = self._vy[i] = 0.0
            self._ta[i] = now + rng.random() * self.dwell
            return
        tx, ty = rng.random() * self.width, rng.random() * self.height
        dx, dy = tx - self._x[i], ty - self._y[i]
        dist = math.hypot(dx, dy)
        speed = rng.uniform(self.speed_min, self.speed_max)
        if dist < 1e-9:
            self._ta[i] = now + rng.random() * self.dwell
            return
        self._vx[i], self._vy[i] = dx / dist * speed, dy / dist * speed
        self._ta[i] = now + dist / speed
