"""The foreign agent's per-home-address state machine (RFC 5944 §3.7): a visitor is idle,
pending (a request relayed, no current registration), registered (a visitor list entry), or
re-registering (registered, and a newer request relayed). :data:`VISITOR_TRANSITIONS` lists
every allowed ``(state, input)`` pair with its one next state; any other pair is a
:class:`~mip4.errors.ProtocolError` (h11 ``_state.py`` style). The engine in
:mod:`mip4.core.foreign_agent` moves every visitor through this table."""

from __future__ import annotations

from enum import Enum

from mip4.wire.records import make_record as make_record

from .registration import TransitionTable

__all__ = ["VISITOR_TRANSITIONS", "VisitorInput", "VisitorState", "make_record"]


class VisitorState(Enum):
    IDLE = "idle"  #: neither pending nor registered
    PENDING = "pending"  #: a request relayed, no current registration
    REGISTERED = "registered"  #: a current registration (visitor list entry)
    REREGISTERING = "reregistering"  #: registered, and a new request relayed


class VisitorInput(Enum):
    REQUEST = "request_relayed"
    ACCEPTED = "reply_accepted"
    DEREGISTERED = "deregistration_accepted"
    DENIED = "reply_denied"  #: by the home agent, or by this agent on the reply path
    TIMEOUT = "pending_timeout"
    UNREACHABLE = "icmp_unreachable"
    EXPIRED = "lifetime_expired"
    REVOKED = "revoked"  #: RFC 3543: by the home agent, the operator, or the link going


_I, _P, _R, _RR = (
    VisitorState.IDLE,
    VisitorState.PENDING,
    VisitorState.REGISTERED,
    VisitorState.REREGISTERING,
)
_VI = VisitorInput


def _one(s: VisitorState) -> frozenset[VisitorState]:
    return frozenset({s})


#: Every allowed (state, input) pair; anything else is a protocol error.
VISITOR_TRANSITIONS: TransitionTable[VisitorState, VisitorInput] = TransitionTable(
    "visitor",
    {
        (_I, _VI.REQUEST): _one(_P),
        (_P, _VI.REQUEST): _one(_P),  # a newer request replaces the pending one
        (_P, _VI.ACCEPTED): _one(_R),
        (_P, _VI.DEREGISTERED): _one(_I),
        (_P, _VI.DENIED): _one(_I),
        (_P, _VI.TIMEOUT): _one(_I),
        (_P, _VI.UNREACHABLE): _one(_I),
        (_R, _VI.REQUEST): _one(_RR),
        (_R, _VI.EXPIRED): _one(_I),
        (_RR, _VI.REQUEST): _one(_RR),
        (_RR, _VI.ACCEPTED): _one(_R),
        (_RR, _VI.DEREGISTERED): _one(_I),
        (_RR, _VI.DENIED): _one(_R),  # the current registration stands
        (_RR, _VI.TIMEOUT): _one(_R),
        (_RR, _VI.UNREACHABLE): _one(_R),
        (_RR, _VI.EXPIRED): _one(_P),
        # RFC 3543: a revocation ends the registration; a relayed request stays pending.
        (_R, _VI.REVOKED): _one(_I),
        (_RR, _VI.REVOKED): _one(_P),
    },
)
