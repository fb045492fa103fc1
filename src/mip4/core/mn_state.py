"""The mobile node's state machine: states, the outcomes that move it, and its table.

Theory of operation
-------------------
The mobile node (:mod:`mip4.core.mobile_node`) is a coordinator: its attachment part
(:mod:`mip4.core.mn_attachment`) and its registration client (:mod:`mip4.core.mn_client`)
return *outcomes*, and the coordinator feeds the ones that change where the node stands to
:data:`MN_TRANSITIONS` (as h2's ``H2StreamStateMachine`` and h11's ``_state.py`` do). The
table maps ``(state, input) -> (side effect, next state)``: exactly one next state per pair,
and a pair that is not in the table is a :class:`~mip4.core.registration.ProtocolError`
(the engine's boundary logs it as ``mn.protocol_error`` and counts it; the engine never
raises). Nothing else assigns the node's state.

The inputs are what happened, in the RFC's words:

* a Registration Request went out -- a first registration for the current care-of address
  (``REQUEST_SENT``), a re-registration while a binding is held for it (``RENEWAL_SENT``,
  RFC 5944 §3.6.1.2 "re-registration"), a deregistration from home (``DEREGISTRATION_SENT``,
  §3.6.1.2, Lifetime 0, Care-of Address = home address);
* a reply accepted it (``ACCEPTED``, §3.6.2.2) or accepted a deregistration
  (``DEREGISTERED_AT_HOME``; away from home ``DEREGISTERED_AWAY`` when no binding is left,
  ``DEREGISTERED_KEEPING`` when the one for the current care-of address stays);
* the node must wait (``BACKED_OFF``: a transient denial, an unanswered request, §3.6.3) or
  gave up (``GAVE_UP``: a denial it cannot fix by itself);
* the attachment changed: no usable agent or address on a link yet (``NO_AGENT``, §2.4),
  the current agent's advertisements stopped (``AGENT_LOST``, §2.4.2.1), the agent refused the
  care-of address and no other is usable (``CARE_OF_REFUSED``, code 77), a fresh challenge is
  needed (``AWAIT_CHALLENGE``, RFC 4721 §3.2), the last link went down (``LINKS_DOWN``);
* the node is home with nothing to deregister: no MN-HA key to sign a request with and no
  binding it could have made (its key comes from AAA, RFC 3957; ``NOTHING_TO_DEREGISTER``);
* a timer fired: the binding expired while a re-registration was outstanding
  (``BINDING_EXPIRED``), a deregistration from home was never answered
  (``DEREGISTRATION_UNANSWERED``).

The pairs are those that can occur; :func:`legal_pairs` lists them and
``tests/core/test_mn_state.py`` reaches each one and checks every other pair is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import Enum

from mip4.wire.records import make_record

from .actions import INFO, Log
from .registration import ProtocolError


class MnState(Enum):
    DETACHED = "detached"  #: no link up
    DISCOVERING = "discovering"  #: link up, no usable agent or address yet
    REGISTERING = "registering"  #: a request is outstanding
    REGISTERED = "registered"  #: authenticated acceptance for the current care-of address
    BACKING_OFF = "backing off"  #: transient failure; a new attempt is scheduled
    DEREGISTERING = "deregistering"  #: at home, deregistration outstanding
    AT_HOME = "at home"
    FAILED = "failed"  #: gave up; waits for another agent, link or home


class MnInput(Enum):
    """The outcomes that move the mobile node (see the module docstring)."""

    REQUEST_SENT = "request sent"
    RENEWAL_SENT = "re-registration sent"
    DEREGISTRATION_SENT = "deregistration sent"
    ACCEPTED = "accepted"
    DEREGISTERED_AT_HOME = "deregistered at home"
    DEREGISTERED_AWAY = "deregistered away"
    DEREGISTERED_KEEPING = "other binding deregistered"
    BACKED_OFF = "backed off"
    GAVE_UP = "gave up"
    NO_AGENT = "no agent"
    AGENT_LOST = "agent lost"
    CARE_OF_REFUSED = "care-of address refused"
    AWAIT_CHALLENGE = "await challenge"
    LINKS_DOWN = "links down"
    BINDING_EXPIRED = "binding expired"
    DEREGISTRATION_UNANSWERED = "deregistration unanswered"
    NOTHING_TO_DEREGISTER = "at home, nothing to deregister"


class MnEffect(Enum):
    """Side effects the coordinator runs after a transition (h2 ``stream.py`` style)."""

    BACK_OFF = "schedule the next attempt"  #: doubling pause, ``mn.back_off``
    GIVE_UP = "give up"  #: record the reason, maybe schedule ``failed_retry``, ``mn.gave_up``
    REGISTERED = "clear the failure reason"
    #: RFC 5944 §4.6: gratuitous ARP for the home address again, now that the home agent
    #: has stopped answering ARP for it (its proxy replies may have reached neighbours
    #: after the ones sent on arrival)
    ANNOUNCE_HOME = "announce the home address on the home link"


Transition = tuple[MnEffect | None, MnState]

_S = MnState
_I = MnInput
_ALL = tuple(MnState)
#: states in which a Registration Request is outstanding
_PENDING = (_S.REGISTERING, _S.REGISTERED, _S.DEREGISTERING)
#: states in which a request for a care-of address (not a home deregistration) is outstanding
_AWAY_PENDING = (_S.REGISTERING, _S.REGISTERED)


def _build() -> dict[tuple[MnState, MnInput], Transition]:
    t: dict[tuple[MnState, MnInput], Transition] = {}

    def add(
        states: tuple[MnState, ...], inp: MnInput, end: MnState, eff: MnEffect | None = None
    ) -> None:
        for s in states:
            assert (s, inp) not in t
            t[(s, inp)] = (eff, end)

    # Requests: a new attachment (or a retry) may come from anywhere; a link with the home
    # address or the home agent's advertisement may bring the node home from anywhere.
    add(_ALL, _I.REQUEST_SENT, _S.REGISTERING)
    add(_ALL, _I.DEREGISTRATION_SENT, _S.DEREGISTERING)
    # At home with no key to sign a deregistration and no binding it could have made (keys
    # from AAA, RFC 3957): home at once, nothing sent.
    add(_ALL, _I.NOTHING_TO_DEREGISTER, _S.AT_HOME)
    # A re-registration needs a binding for the current care-of address: held while
    # registered, backing off or failed after a denied renewal, or waiting for a challenge.
    add(
        (_S.REGISTERED, _S.BACKING_OFF, _S.FAILED, _S.DISCOVERING),
        _I.RENEWAL_SENT,
        _S.REGISTERED,
    )
    # Replies answer the outstanding request only.
    add(_AWAY_PENDING, _I.ACCEPTED, _S.REGISTERED, MnEffect.REGISTERED)
    add((_S.DEREGISTERING,), _I.DEREGISTERED_AT_HOME, _S.AT_HOME, MnEffect.ANNOUNCE_HOME)
    add(_AWAY_PENDING, _I.DEREGISTERED_AWAY, _S.DISCOVERING)
    add((_S.REGISTERED,), _I.DEREGISTERED_KEEPING, _S.REGISTERED)
    add(_PENDING, _I.BACKED_OFF, _S.BACKING_OFF, MnEffect.BACK_OFF)
    add(_PENDING, _I.GAVE_UP, _S.FAILED, MnEffect.GIVE_UP)
    add(_AWAY_PENDING, _I.CARE_OF_REFUSED, _S.DISCOVERING)
    add(_AWAY_PENDING, _I.AWAIT_CHALLENGE, _S.DISCOVERING)
    # Links and agents.
    add(_ALL, _I.NO_AGENT, _S.DISCOVERING)
    add(
        (_S.DISCOVERING, _S.REGISTERING, _S.REGISTERED, _S.BACKING_OFF, _S.FAILED),
        _I.AGENT_LOST,
        _S.DISCOVERING,
    )
    add(tuple(s for s in _ALL if s is not _S.DETACHED), _I.LINKS_DOWN, _S.DETACHED)
    # Timers.
    add((_S.REGISTERED,), _I.BINDING_EXPIRED, _S.REGISTERING)
    add((_S.DEREGISTERING,), _I.DEREGISTRATION_UNANSWERED, _S.AT_HOME)
    return t


class MnTransitions:
    """``(state, input) -> (side effect, next state)``; a missing pair is a protocol error."""

    def __init__(self, table: Mapping[tuple[MnState, MnInput], Transition]) -> None:
        self.table = dict(table)

    def lookup(self, state: MnState, inp: MnInput) -> Transition:
        try:
            return self.table[(state, inp)]
        except KeyError:
            raise ProtocolError(
                f"mobile node: no transition for {inp.value!r} in state {state.value!r}"
            ) from None

    def legal_pairs(self) -> Iterator[tuple[MnState, MnInput]]:
        return iter(sorted(self.table, key=lambda p: (p[0].name, p[1].name)))


#: The mobile node's transitions, the only way its state changes.
MN_TRANSITIONS = MnTransitions(_build())


def legal_pairs() -> list[tuple[MnState, MnInput]]:
    """Every ``(state, input)`` pair the table allows."""
    return list(MN_TRANSITIONS.legal_pairs())


def log(event: str, fields: dict[str, object]) -> Log:
    """``Log(event, fields)`` built as one record (:func:`mip4.wire.records.make_record`,
    about half the constructor's cost): the node emits about a dozen per registration
    (link down and up, state changes, attach, request, reply, registered; issue 13).
    ``tests/core/test_mn_fast_paths.py`` compares it with the constructor."""
    return make_record(Log, {"event": event, "fields": fields, "level": INFO})


__all__ = [
    "MN_TRANSITIONS",
    "MnEffect",
    "MnInput",
    "MnState",
    "MnTransitions",
    "legal_pairs",
    "log",
]
