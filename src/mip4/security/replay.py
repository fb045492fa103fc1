"""Replay protection of registrations: the 64-bit Identification (RFC 5944 §5.7, §5.8).

Theory of operation
-------------------
Every Registration Request carries a 64-bit Identification chosen by the mobile node; the
home agent uses it to decide that the request is fresh, and the Registration Reply echoes
it (RFC 5944 §3.3, §3.4, §5.7). Two styles exist, chosen per mobility security association
(:class:`~mip4.security.sa.ReplayMethod`):

* **Timestamps** (§5.7.1, mandatory): the Identification is an NTP timestamp -- high 32 bits
  seconds since 1900, low 32 bits the fraction or, where the clock has no such precision,
  random bits. The home agent accepts it when the seconds are within the association's
  tolerance of its own clock *and* the whole value is greater than the last one it accepted
  for that node. It then copies the whole Identification into the reply. Otherwise it
  answers code 133 (identification mismatch) with its *own* time in the high word and the
  mobile node's low word kept, so that the mobile node can resynchronise its clock.
* **Nonces** (§5.7.2, optional): the high 32 bits are the nonce the home agent handed the
  mobile node in its most recent reply, the low 32 bits a fresh nonce from the mobile node.
  The home agent accepts the request when the high word is the nonce it last issued; every
  reply (accepting, or 133) carries a new home-agent nonce in the high word and the mobile
  node's low word.

In both styles the low 32 bits are copied unchanged from request to reply: the foreign agent
and the mobile node match replies to pending requests by them (§5.7; §3.6.2.1: the mobile
node MUST verify them before using the high word to resynchronise).

State is small and immutable: :class:`ReplayState` is what a home agent keeps per mobile
node (a store maps the node to it), :func:`check_request` is a pure function from
(state, identification, clock) to a :class:`ReplayCheck` that carries the reply's
Identification and the state to store. The mobile node side is :class:`MobileNodeReplay`.
Time enters only as ``now_unix`` parameters (STYLE.md practice 1); random bits enter as
parameters too (:func:`random_u32` is a convenience for the I/O shell and tests).

NTP era: the 32-bit seconds wrap on 2036-02-07. Comparisons are done with serial-number
arithmetic (RFC 1982) on the 32-bit seconds and on the 64-bit value, so the wrap is
handled as long as the values compared are less than 68 years (resp. 2**63) apart.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from typing import Final

from mip4.wire.addr import ipv4_from_int, ipv4_int
from mip4.wire.codes import ReplyCode
from mip4.wire.records import make_record

from .sa import DEFAULT_REPLAY_TOLERANCE, ReplayMethod

#: Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01):
#: 86400 * (365 * 70 + 17).
NTP_UNIX_OFFSET = 2208988800
_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF


def random_u32() -> int:
    """32 random bits from the OS CSPRNG (for low words and home-agent nonces)."""
    return secrets.randbits(32)


def high_word(identification: int) -> int:
    return (identification >> 32) & _M32


def low_word(identification: int) -> int:
    return identification & _M32


def _u32(value: int, what: str) -> int:
    if not 0 <= value <= _M32:
        raise ValueError(f"{what} {value} does not fit in 32 bits")
    return value


def make_identification(high: int, low: int) -> int:
    return (_u32(high, "high word") << 32) | _u32(low, "low word")


def ntp_seconds(unix_seconds: float) -> int:
    """The 32-bit NTP seconds for a Unix time (wrapping in 2036)."""
    return (math.floor(unix_seconds) + NTP_UNIX_OFFSET) & _M32


#: timestamps: the low bits of the Identification that the mobile node fills at random
#: (2**12 units of 2**-32 s is just under a microsecond, finer than the clock it reads)
RANDOM_LOW_BITS = 12
_RANDOM_MASK = (1 << RANDOM_LOW_BITS) - 1


def ntp_timestamp(unix_seconds: float, low: int | None = None) -> int:
    """A 64-bit NTP-format Identification (RFC 5944 §5.7.1): the high 32 bits are seconds
    since 1900; the low 32 bits are the fraction of ``unix_seconds`` or, when given, ``low``
    (RFC 5944 §5.7.1: bits a time source cannot supply SHOULD be random)."""
    if not math.isfinite(unix_seconds):
        raise ValueError(f"not a time: {unix_seconds}")
    secs = math.floor(unix_seconds)
    if low is None:
        low = min(int((unix_seconds - secs) * 4294967296.0), _M32)
    return (((secs + NTP_UNIX_OFFSET) & _M32) << 32) | _u32(low, "low word")


def identification_unix_seconds(identification: int, near_unix: float = 0.0) -> float:
    """The Unix time an NTP-format Identification denotes (fraction included), choosing the
    NTP era closest to ``near_unix`` (default era 0: 1900--2036)."""
    secs = high_word(identification) - NTP_UNIX_OFFSET
    if near_unix:
        secs += round((near_unix - secs) / 2**32) * 2**32
    return secs + low_word(identification) / 4294967296.0


def seconds_diff(a: int, b: int) -> int:
    """``a - b`` for 32-bit NTP seconds, in serial-number arithmetic (RFC 1982)."""
    d = (a - b) & _M32
    return d - 2**32 if d >= 2**31 else d


def is_newer(new: int, old: int) -> bool:
    """``new > old`` for 64-bit Identification values, serial-number arithmetic."""
    d = (new - old) & _M64
    return 0 < d < 2**63


def matches_request(request_identification: int, reply_identification: int) -> bool:
    """Whether a reply answers a request: the low-order 32 bits are equal (RFC 5944 §5.7;
    the foreign agent and mobile node match on them, with the home address)."""
    return (request_identification ^ reply_identification) & _M32 == 0


# ----------------------------------------------------------------------------------------
# Home agent side
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayState:
    """What a home agent remembers per mobile node for replay protection."""

    #: The last Identification accepted from the node (timestamps, and kept for nonces).
    last_accepted: int | None = None
    #: Nonces: the nonce the home agent put in the high word of its last reply, which the
    #: node must echo in its next request; ``None`` before the first reply.
    nonce: int | None = None


@dataclass(frozen=True)
class ReplayCheck:
    """The home agent's verdict on a request's Identification."""

    accepted: bool
    #: The Identification to put in the Registration Reply (whatever its code).
    reply_identification: int
    #: The state to store for the node once the request has been authenticated.
    state: ReplayState
    reason: str = field(default="", compare=False)

    @property
    def code(self) -> ReplyCode | None:
        """``None`` when accepted, else 133 (RFC 5944 §3.8.2.1, §5.7)."""
        return None if self.accepted else ReplyCode.HA_IDENTIFICATION_MISMATCH


_new = object.__new__
#: ReplayState's slots, filled through their own descriptors (no frozen ``__setattr__``)
_s_last_accepted = ReplayState.__dict__["last_accepted"].__set__
_s_nonce = ReplayState.__dict__["nonce"].__set__


def _accepted(identification: int, nonce: int | None) -> ReplayCheck:
    """``ReplayCheck(True, identification, ReplayState(identification, nonce))``, built
    without a frozen ``__setattr__`` per field: a home agent makes one per accepted
    registration (issue 13; ``tests/security/test_fast_paths.py``)."""
    state = _new(ReplayState)  # slotted: one per node lives as long as its binding
    _s_last_accepted(state, identification)
    _s_nonce(state, nonce)
    return make_record(
        ReplayCheck,
        {"accepted": True, "reply_identification": identification, "state": state, "reason": ""},
    )


class ReplayStates(MutableMapping[IPv4Address | str, ReplayState]):
    """A home agent's replay state per mobile node (its home address, or its NAI), holding
    a timestamps-only state -- ``ReplayState(last_accepted=n)``, no nonce, what nearly
    every node has -- as the bare Identification ``n``: the int the node's binding holds
    too, no 48-byte record per node (issue 13). Reads answer :class:`ReplayState` records
    like any mapping. ``raw`` is for the home agent's renewal fast path: keyed by the home
    address as an integer (the address's own int: no ``IPv4Address.__hash__``, a Python
    call, per lookup) or by the NAI, values ``int | ReplayState``.

    A *holder* (:meth:`hold_with`: the home agent's in-memory binding table) may keep a
    node's timestamps-only state in the node's binding instead, the Identification the
    binding holds anyway: the renewal fast path then reads and writes one record, not
    this table's slots too (three cache misses fewer per renewal at a million nodes,
    issue 13). Such a node's key stays in ``raw`` (iteration and length are ``raw``'s),
    its value :data:`HELD` (one shared int, no object per node); the holder's lookup
    answers the held Identification (``None``: not held), and every read here asks it
    first. Every write here --
    :meth:`__setitem__`, :meth:`__delitem__` and all that ``MutableMapping`` builds on
    them -- first has the holder let go (``release(key)``), so what is written is the
    state; a holder that drops or replaces a binding holding the state writes it back to
    ``raw`` first (:class:`~mip4.core.bindings.InMemoryBindingStore`)."""

    __slots__ = ("_held", "_release", "raw")

    def __init__(self, initial: Iterable[tuple[IPv4Address | str, ReplayState]] = ()) -> None:
        self.raw: dict[int | str, int | ReplayState] = {}
        #: the holder's lookup (key -> the Identification it holds, or ``None``) and
        #: release (key -> nothing: it holds the key's state no more); ``None``: no holder
        self._held: Callable[[int | str], int | None] | None = None
        self._release: Callable[[int | str], None] | None = None
        for key, state in initial:
            self[key] = state

    def hold_with(
        self, held: Callable[[int | str], int | None], release: Callable[[int | str], None]
    ) -> bool:
        """Let a holder keep states (class docstring): at most one, for good (``False``:
        this table has one already)."""
        if self._held is not None:
            return False
        self._held, self._release = held, release
        return True

    def _value(self, key: int | str) -> int | ReplayState:
        held = self._held
        if held is not None:
            ident = held(key)
            if ident is not None:
                return ident
        return self.raw[key]

    def __getitem__(self, key: IPv4Address | str) -> ReplayState:
        return _as_state(self._value(_raw_key(key)))

    def get(  # type: ignore[override]
        self, key: IPv4Address | str, default: ReplayState | None = None
    ) -> ReplayState | None:
        k = _raw_key(key)
        if k not in self.raw:
            return default
        return _as_state(self._value(k))

    def __setitem__(self, key: IPv4Address | str, state: ReplayState) -> None:
        k = _raw_key(key)
        if self._release is not None:
            self._release(k)
        last = state.last_accepted
        self.raw[k] = last if last is not None and state.nonce is None else state

    def __delitem__(self, key: IPv4Address | str) -> None:
        k = _raw_key(key)
        if self._release is not None:
            self._release(k)
        del self.raw[k]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, IPv4Address | str) and _raw_key(key) in self.raw

    def __iter__(self) -> Iterator[IPv4Address | str]:
        for key in list(self.raw):
            yield ipv4_from_int(key) if type(key) is int else key  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.raw)


#: ``ReplayStates.raw``'s value for a node whose state its holder holds (never an
#: Identification: those are 0 .. 2**64 - 1)
HELD: Final = -1


def _raw_key(key: IPv4Address | str) -> int | str:
    return key if type(key) is str else ipv4_int(key)  # type: ignore[arg-type]


def _as_state(held: int | ReplayState) -> ReplayState:
    if type(held) is not int:
        assert isinstance(held, ReplayState)
        return held
    state = _new(ReplayState)
    _s_last_accepted(state, held)
    _s_nonce(state, None)
    return state


def check_request(
    state: ReplayState,
    identification: int,
    method: ReplayMethod,
    *,
    now_unix: float,
    tolerance: float = DEFAULT_REPLAY_TOLERANCE,
    new_nonce: int | None = None,
) -> ReplayCheck:
    """Check a request's Identification at the home agent (RFC 5944 §5.7).

    Call it only for a request whose authorization-enabling extension verified (the state
    in the result must not be stored otherwise: an unauthenticated request must not move
    the replay window). ``now_unix`` is the home agent's wall clock. ``new_nonce`` (nonce
    style only, required there) is the fresh 32-bit nonce for the reply.

    * timestamps: accepted iff ``|high word - HA seconds| <= tolerance`` and the value is
      greater than ``state.last_accepted``. Accepted: the reply echoes the whole
      Identification. Rejected: 133 with the HA's NTP seconds in the high word and the
      request's low word (§5.7.1).
    * nonces: accepted iff the high word equals ``state.nonce``. Either way the reply
      carries ``new_nonce`` in the high word and the request's low word (§5.7.2), and the
      new state expects ``new_nonce`` next.
    """
    if not 0 <= identification <= _M64:
        raise ValueError(f"identification {identification} does not fit in 64 bits")
    low = identification & _M32
    high = identification >> 32
    if method is ReplayMethod.TIMESTAMPS:
        ha_secs = ntp_seconds(now_unix)
        skew = seconds_diff(high, ha_secs)
        if abs(skew) > tolerance:
            return ReplayCheck(
                False,
                (ha_secs << 32) | low,
                state,
                f"timestamp {skew:+d} s from the home agent's clock (tolerance {tolerance:g} s)",
            )
        last = state.last_accepted
        if last is not None and not is_newer(identification, last):
            return ReplayCheck(
                False,
                (ha_secs << 32) | low,
                state,
                f"identification {identification:#018x} not greater than the last accepted "
                f"{last:#018x}",
            )
        # (``replace(state, last_accepted=identification)``, built directly: issue 13)
        return _accepted(identification, state.nonce)
    if method is ReplayMethod.NONCES:
        if new_nonce is None:
            raise ValueError("nonce replay protection needs new_nonce for the reply")
        reply_id = (_u32(new_nonce, "nonce") << 32) | low
        expected = state.nonce
        if expected is None or high != expected:
            why = (
                "no nonce issued to this node yet"
                if expected is None
                else f"high word {high:#010x} is not the nonce {expected:#010x} last issued"
            )
            return ReplayCheck(False, reply_id, replace(state, nonce=new_nonce), why)
        return ReplayCheck(
            True, reply_id, ReplayState(last_accepted=identification, nonce=new_nonce)
        )
    raise ValueError(f"unknown replay method {method!r}")


def reply_identification(
    request_identification: int,
    method: ReplayMethod,
    *,
    new_nonce: int | None = None,
) -> int:
    """The Identification of a reply to an accepted request (RFC 5944 §5.7): the request's
    for timestamps; ``new_nonce`` and the request's low word for nonces."""
    if method is ReplayMethod.TIMESTAMPS:
        return request_identification
    if new_nonce is None:
        raise ValueError("nonce replay protection needs new_nonce for the reply")
    return (_u32(new_nonce, "nonce") << 32) | (request_identification & _M32)


# ----------------------------------------------------------------------------------------
# Mobile node side
# ----------------------------------------------------------------------------------------


def resync_identification(
    method: ReplayMethod,
    request_identification: int,
    reply_identification: int,
    *,
    new_low: int,
    last_sent: int | None = None,
) -> int:
    """The Identification for the next request after a code-133 reply (RFC 5944 §5.7).

    Raises ``ValueError`` when the reply's low word is not the request's: RFC 5944 §5.7 /
    §3.6.2.1, the high bits of a reply that does not match must not be used.

    * timestamps: the home agent's seconds (the reply's high word) with ``new_low``; if that
      would not be greater than ``last_sent``, ``last_sent + 1`` (the smallest step: never
      whole seconds, which would run ahead of the home agent's clock).
    * nonces: the home agent's new nonce (the reply's high word) with ``new_low``.
    """
    if not matches_request(request_identification, reply_identification):
        raise ValueError(
            f"reply identification {reply_identification:#018x} does not match the request "
            f"{request_identification:#018x} (low 32 bits differ, RFC 5944 §5.7)"
        )
    high = high_word(reply_identification)
    ident = make_identification(high, new_low)
    if (
        method is ReplayMethod.TIMESTAMPS
        and last_sent is not None
        and not is_newer(ident, last_sent)
    ):
        ident = (last_sent + 1) & _M64
    return ident


@dataclass
class MobileNodeReplay:
    """The mobile node's side of replay protection with one home agent.

    ``next_identification(now_unix, low)`` builds the Identification of a new request;
    ``on_reply(request_id, reply_id, code, now_unix)`` takes a reply (already authenticated
    with MN-HA) and learns from it: the HA nonce (nonces), or the clock offset after a 133
    (timestamps). Identifications are strictly increasing for timestamps, and a new request
    never reuses the previous one (RFC 5944 §5.7).

    Timestamps: the low word is the clock's fraction of a second; only its lowest
    :data:`RANDOM_LOW_BITS` bits (below a microsecond, finer than the clock) are random
    (§5.7.1: bits a time source cannot supply SHOULD be random). A request that would not
    be newer than the previous one is the previous one plus the smallest step -- never
    plus a second: a node registering many times a second would otherwise run ahead of
    the home agent's clock until it is outside the tolerance and every request gets 133.
    After a 133 the node takes the home agent's time and forgets the identifications the
    agent refused (they were never accepted, so they bind nothing)."""

    method: ReplayMethod = ReplayMethod.TIMESTAMPS
    #: timestamps: seconds to add to the local clock to get the home agent's (learnt from 133)
    clock_offset: int = 0
    #: nonces: the home agent nonce to echo in the high word; ``None`` before any reply
    ha_nonce: int | None = None
    #: the Identification of the last request built
    last_sent: int | None = None
    #: timestamps: the Identification of the last request the home agent accepted
    last_accepted: int | None = None

    def next_identification(self, now_unix: float, low: int | None = None) -> int:
        """The Identification for a new request. ``low`` is the 32-bit low word: for nonces
        a fresh random value (required); for timestamps random bits or, when ``None``, the
        NTP fraction of ``now_unix``."""
        if self.method is ReplayMethod.NONCES:
            if low is None:
                raise ValueError("nonce replay protection needs a fresh random low word")
            ident = make_identification(self.ha_nonce or 0, low)
            if ident == self.last_sent:
                raise ValueError("the low word repeats the previous request's; use a new one")
        else:
            ident = ntp_timestamp(now_unix + self.clock_offset)
            if low is not None:
                ident = (ident & ~_RANDOM_MASK) | (low & _RANDOM_MASK)
            last = self.last_sent
            if last is not None and not is_newer(ident, last):
                # Clock stepped back or two requests within a microsecond: stay increasing
                # by the smallest step.
                ident = (last + 1) & _M64
        self.last_sent = ident
        return ident

    def on_reply(
        self, request_identification: int, reply_identification: int, code: int, now_unix: float
    ) -> bool:
        """Learn from a reply to ``request_identification``. Returns ``False`` (and learns
        nothing) when the reply does not match the request (low 32 bits, §5.7)."""
        if not matches_request(request_identification, reply_identification):
            return False
        high = high_word(reply_identification)
        if self.method is ReplayMethod.NONCES:
            # §5.7.2: every reply, accepting or 133, carries the nonce for the next request.
            self.ha_nonce = high
        elif code == ReplyCode.HA_IDENTIFICATION_MISMATCH:
            # §5.7.1: the high word is the home agent's time; resynchronise to it. The
            # refused identifications bind nothing: the next must only pass the last the
            # agent accepted.
            self.clock_offset = seconds_diff(high, ntp_seconds(now_unix))
            self.last_sent = self.last_accepted
        elif code in (ReplyCode.ACCEPTED, ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS):
            self.last_accepted = request_identification
        return True


__all__ = [
    "NTP_UNIX_OFFSET",
    "RANDOM_LOW_BITS",
    "MobileNodeReplay",
    "ReplayCheck",
    "ReplayState",
    "ReplayStates",
    "check_request",
    "high_word",
    "identification_unix_seconds",
    "is_newer",
    "low_word",
    "make_identification",
    "matches_request",
    "ntp_seconds",
    "ntp_timestamp",
    "random_u32",
    "reply_identification",
    "resync_identification",
    "seconds_diff",
]
