"""Counters an agent keeps about its decisions, for status pages and tests.

Theory of operation
-------------------
Each engine owns one :class:`Counters`. The error boundary of ``handle`` is the only place
that counts a registration decision: an accepted request (by reply code 0 or 1), a denied
one (by :class:`~mip4.wire.codes.ReplyCode`) or a silent discard (by a short reason string
such as ``"decode_error"`` or ``"unknown_extension"``). Other activity (relays,
advertisements, expiries) goes into :attr:`Counters.events`. Engines expose the object
read-only through their ``counters`` property; callers must not mutate it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mip4.wire.codes import ReplyCode

__all__ = ["Counters"]


@dataclass
class Counters:
    """Decision counters of one engine."""

    #: accepted registrations, by reply code (0, or 1 when simultaneous bindings are
    #: unsupported)
    accepted: Counter[ReplyCode] = field(default_factory=Counter)
    #: denied registrations, by reply code
    denied: Counter[ReplyCode] = field(default_factory=Counter)
    #: inputs silently discarded, by reason
    discarded: Counter[str] = field(default_factory=Counter)
    #: everything else worth counting (``"relayed_request"``, ``"binding_expired"``...)
    events: Counter[str] = field(default_factory=Counter)

    def accept(self, code: ReplyCode) -> None:
        self.accepted[code] += 1

    def deny(self, code: ReplyCode) -> None:
        self.denied[code] += 1

    def discard(self, reason: str) -> None:
        self.discarded[reason] += 1

    def event(self, name: str, n: int = 1) -> None:
        self.events[name] += n

    @property
    def total_accepted(self) -> int:
        return sum(self.accepted.values())

    @property
    def total_denied(self) -> int:
        return sum(self.denied.values())

    @property
    def total_discarded(self) -> int:
        return sum(self.discarded.values())

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A plain copy for display (codes rendered as ``"133 ha_identification_mismatch"``)."""
        return {
            "accepted": {f"{int(c)} {c.name.lower()}": n for c, n in self.accepted.items()},
            "denied": {f"{int(c)} {c.name.lower()}": n for c, n in self.denied.items()},
            "discarded": dict(self.discarded),
            "events": dict(self.events),
        }
