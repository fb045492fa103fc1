"""Deadlines: the only notion of time inside :mod:`mip4.core` (STYLE.md practice 1).

Theory of operation
-------------------
Engines never read a clock. Every input carries ``now`` (monotonic seconds, chosen by the
caller), every engine answers ``next_deadline()`` with the earliest instant at which it
wants ``handle_timer(now)`` to be called, and state that expires stores an absolute
deadline computed here. A Registration Lifetime of 65535 means infinity (RFC 5944 §3.3,
§3.4), represented by ``None``: it never expires and never contributes a deadline.
"""

from __future__ import annotations

from collections.abc import Iterable

from mip4.wire.messages import INFINITE_LIFETIME

__all__ = ["INFINITE_LIFETIME", "earliest", "expiry", "remaining"]


def expiry(now: float, lifetime: int) -> float | None:
    """The absolute deadline of a registration granted ``lifetime`` seconds at ``now``;
    ``None`` for an infinite lifetime (65535, RFC 5944 §3.3)."""
    if lifetime >= INFINITE_LIFETIME:
        return None
    return now + lifetime


def remaining(now: float, deadline: float | None) -> int:
    """Whole seconds left before ``deadline`` (never negative); 65535 for ``None``."""
    if deadline is None:
        return INFINITE_LIFETIME
    left = deadline - now
    if left <= 0:
        return 0
    return min(int(left), INFINITE_LIFETIME - 1)


def earliest(deadlines: Iterable[float | None]) -> float | None:
    """The smallest of ``deadlines``, ignoring ``None``; ``None`` when there is none."""
    best: float | None = None
    for d in deadlines:
        if d is not None and (best is None or d < best):
            best = d
    return best
