"""Random waypoint mobility over a grid of foreign-agent cells.

Each mobile node moves in a ``width`` x ``height`` grid whose unit is one cell (the cell
``(floor(x), floor(y))`` is served by foreign agent ``floor(y) * width + floor(x)``). A node
picks a waypoint uniformly in the grid and a speed uniformly in ``[speed_min, speed_max]``
(cells per second), walks there in a straight line, pauses a dwell time drawn uniformly in
``[0, dwell]``, and starts again (the random waypoint model of Johnson and Maltz, 1996).

Nothing is sampled per tick: :meth:`RandomWaypoint.next_change` computes, in closed form,
the time at which the node next crosses a cell boundary or reaches its waypoint, and the
simulator schedules exactly one event for it. Per-node state is six ``array('d')`` slots
and a draw counter (52 bytes a node).

Every node draws from its own stream (:func:`draw`: a counter-based generator, SplitMix64
over the seed, the node's number and the draw's number), not from one shared generator:
a node's path depends on the seed and its number only, never on the order in which the
nodes' events happen or on which other nodes are simulated -- so a run split over
worker processes (``mip4 sim --workers``), each moving its own share of the nodes, moves
every node exactly as one process does. No per-node generator object is kept (a Mersenne
Twister state is 2.5 KB).
"""

from __future__ import annotations

import math
from array import array

#: seconds past a boundary crossing at which it is scheduled
_NUDGE = 1e-6
_M64 = (1 << 64) - 1
_2_53 = 1.0 / (1 << 53)


def draw(key: int, node: int, count: int) -> float:
    """The ``count``-th number in ``[0, 1)`` of node ``node``'s stream under ``key``
    (SplitMix64's output function over ``key + node * 2**32 + count``; Steele, Lea and
    Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014)."""
    z = (key + (node << 32) + count + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return ((z ^ (z >> 31)) >> 11) * _2_53


class RandomWaypoint:
    """The positions of ``n`` nodes, numbered ``first .. first + n - 1`` in the whole
    population (a worker's share); every draw comes from the node's own stream under
    ``key`` (:func:`draw`): the same key and node number, the same path."""

    __slots__ = (
        "_c",
        "_t",
        "_ta",
        "_vx",
        "_vy",
        "_x",
        "_y",
        "dwell",
        "first",
        "height",
        "key",
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
        key: int,
        first: int = 0,
    ) -> None:
        if not 0 < speed_min <= speed_max:
            raise ValueError("mobility: need 0 < speed_min <= speed_max")
        self.width, self.height = width, height
        self.speed_min, self.speed_max, self.dwell = speed_min, speed_max, dwell
        self.key, self.first = key & _M64, first
        k = self.key
        # draws 0, 1, 2 of each node: where it starts, and how long it first pauses
        self._x = array("d", (draw(k, first + i, 0) * width for i in range(n)))
        self._y = array("d", (draw(k, first + i, 1) * height for i in range(n)))
        #: time the position was last updated; velocity; time the waypoint is reached
        #: (while pausing: the velocity is 0 and ``_ta`` is the end of the pause)
        self._t = array("d", bytes(8 * n))
        self._vx = array("d", bytes(8 * n))
        self._vy = array("d", bytes(8 * n))
        self._ta = array("d", (draw(k, first + i, 2) * dwell for i in range(n)))
        #: the number of each node's next draw
        self._c = array("I", [3]) * n

    def _draw(self, i: int) -> float:
        c = self._c[i]
        self._c[i] = c + 1
        return draw(self.key, self.first + i, c)

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
        u = self._draw
        if vx or vy:  # arrived: pause
            self._vx[i] = self._vy[i] = 0.0
            self._ta[i] = now + u(i) * self.dwell
            return
        tx, ty = u(i) * self.width, u(i) * self.height
        dx, dy = tx - self._x[i], ty - self._y[i]
        dist = math.hypot(dx, dy)
        speed = self.speed_min + (self.speed_max - self.speed_min) * u(i)
        if dist < 1e-9:
            self._ta[i] = now + u(i) * self.dwell
            return
        self._vx[i], self._vy[i] = dx / dist * speed, dy / dist * speed
        self._ta[i] = now + dist / speed
