"""RADIUS retransmission and failover as a sans-IO state machine driven by ``now``.

Theory of operation. One :class:`Exchange` is one RADIUS request (Access-Request or
Accounting-Request) across the configured servers, in their configured order. It starts by
transmitting to the first server; each time the timer of :attr:`Policy.timeout` seconds runs
out with no valid answer, it retransmits the same packet to the same server (RFC 5080 §2.2.1:
same Identifier and Request Authenticator) until that server has had
``1 + Policy.retries`` transmissions, then moves on to the next server (a new packet: its
secret differs), and when the last server is exhausted it gives up (:class:`GiveUp`). An
answer from the server it is talking to ends the exchange; a late answer from a server it has
left is still accepted (it is a valid answer to a request we sent).

The shell (:mod:`mip4.io.radius`) calls :meth:`Exchange.start`, :meth:`Exchange.handle_timer`
at :meth:`Exchange.next_deadline`, and :meth:`Exchange.handle_answer`; each returns what to
do as data. Per-server counters (:class:`ServerCounters`) follow the RADIUS client MIBs
(RFC 4668 and RFC 4670: requests, retransmissions, accepts, rejects, timeouts, round-trip
time).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address


@dataclass(frozen=True)
class RadiusServer:
    """One configured RADIUS server. The shared secret never appears in a ``repr``."""

    name: str
    address: IPv4Address
    #: the authentication port (1812 by IANA)
    port: int
    secret: bytes = field(repr=False)
    #: the accounting port; 0 means ``port + 1`` (1813 for 1812)
    acct_port: int = 0

    def __post_init__(self) -> None:
        for what, port in (("port", self.port), ("acct_port", self.acct_port or 1)):
            if not 0 < port < 65536:
                raise ValueError(f"RADIUS server {self.name}: {what} {port} out of range")
        if not self.secret:
            raise ValueError(f"RADIUS server {self.name}: empty shared secret")

    @property
    def accounting_port(self) -> int:
        return self.acct_port or self.port + 1


@dataclass(frozen=True)
class Policy:
    """Retransmission bounds (RFC 5080 §2.2.1 leaves them to the client)."""

    #: seconds to wait for an answer before retransmitting
    timeout: float = 3.0
    #: retransmissions to one server after the first transmission
    retries: int = 2

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, not {self.timeout}")
        if self.retries < 0:
            raise ValueError(f"retries must not be negative, not {self.retries}")


@dataclass
class ServerCounters:
    """Per-server counters (RFC 4668 radiusAuthClientExt*, RFC 4670 radiusAccClientExt*)."""

    #: requests sent, first transmissions only
    requests: int = 0
    retransmissions: int = 0
    #: Access-Accept / Accounting-Response
    accepts: int = 0
    #: Access-Reject
    rejects: int = 0
    #: timer expiries with no answer (each one: RFC 4668 radiusAuthClientExtTimeouts)
    timeouts: int = 0
    #: answers dropped: bad authenticator, unknown identifier, malformed
    bad_answers: int = 0
    #: round-trip time of the last answer, seconds (from the transmission it answers)
    rtt_last: float | None = None
    rtt_total: float = 0.0
    rtt_count: int = 0

    @property
    def rtt_mean(self) -> float | None:
        return self.rtt_total / self.rtt_count if self.rtt_count else None

    def as_dict(self) -> dict[str, float | int | None]:
        """For ``mip4 status`` and logs (contains no secret)."""
        return {
            "requests": self.requests,
            "retransmissions": self.retransmissions,
            "accepts": self.accepts,
            "rejects": self.rejects,
            "timeouts": self.timeouts,
            "bad_answers": self.bad_answers,
            "rtt_last": self.rtt_last,
            "rtt_mean": self.rtt_mean,
        }


@dataclass(frozen=True)
class Transmit:
    """Send the exchange's packet to server number ``server``; ``fresh`` when it is a new
    packet for that server (build it: new Identifier and authenticator), else resend the
    same bytes."""

    server: int
    fresh: bool


@dataclass(frozen=True)
class GiveUp:
    """Every server had its transmissions and none answered."""


class Answer(enum.Enum):
    """A valid answer's kind, for the counters."""

    ACCEPT = "accept"
    REJECT = "reject"


class Exchange:
    """One request across the servers (see the module docstring). Not reusable."""

    def __init__(
        self, servers: list[str], policy: Policy, counters: dict[str, ServerCounters]
    ) -> None:
        if not servers:
            raise ValueError("no RADIUS server configured")
        self._servers = servers
        self._policy = policy
        self._counters = counters
        for name in servers:
            counters.setdefault(name, ServerCounters())
        self._server = -1
        self._sent = 0  # transmissions to the current server
        self._last_sent: dict[int, float] = {}  # server -> time of its last transmission
        self._deadline: float | None = None
        self.done = False
        #: set when the exchange ended with an answer: the index of the server
        self.answered_by: int | None = None

    @property
    def server(self) -> int:
        """Index of the server the exchange is talking to now."""
        return self._server

    def next_deadline(self) -> float | None:
        return None if self.done else self._deadline

    def _transmit(self, now: float, fresh: bool) -> Transmit:
        c = self._counters[self._servers[self._server]]
        if fresh:
            c.requests += 1
            self._sent = 0
        else:
            c.retransmissions += 1
        self._sent += 1
        self._last_sent[self._server] = now
        self._deadline = now + self._policy.timeout
        return Transmit(self._server, fresh)

    def start(self, now: float) -> Transmit:
        if self._server != -1:
            raise RuntimeError("exchange already started")
        self._server = 0
        return self._transmit(now, fresh=True)

    def handle_timer(self, now: float) -> Transmit | GiveUp | None:
        """Call at :meth:`next_deadline`: retransmit, fail over, or give up."""
        if self.done or self._deadline is None or now < self._deadline:
            return None
        self._counters[self._servers[self._server]].timeouts += 1
        if self._sent <= self._policy.retries:
            return self._transmit(now, fresh=False)
        if self._server + 1 < len(self._servers):
            self._server += 1
            return self._transmit(now, fresh=True)
        self.done = True
        self._deadline = None
        return GiveUp()

    def handle_answer(self, server: int, answer: Answer, now: float) -> bool:
        """A valid (authenticated) answer from server number ``server``. Returns whether it
        ends the exchange (``False`` once it is already over, or for a server never asked)."""
        if self.done or server not in self._last_sent:
            return False
        c = self._counters[self._servers[server]]
        if answer is Answer.ACCEPT:
            c.accepts += 1
        else:
            c.rejects += 1
        rtt = max(0.0, now - self._last_sent[server])
        c.rtt_last = rtt
        c.rtt_total += rtt
        c.rtt_count += 1
        self.done = True
        self._deadline = None
        self.answered_by = server
        return True

    def bad_answer(self, server: int) -> None:
        """An answer that failed validation (counted, otherwise ignored: RFC 2865 §3)."""
        self._counters[self._servers[server]].bad_answers += 1
