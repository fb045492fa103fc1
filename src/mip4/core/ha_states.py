"""The home agent's binding state machine, per home address: HOME (no binding) and AWAY
(at least one: proxy ARP on, RFC 5944 §4.6), the inputs that change it and the transitions
allowed (checked on every change by :mod:`mip4.core.home_agent` and
:mod:`mip4.core.ha_revoke`)."""

from __future__ import annotations

from enum import Enum

from .registration import TransitionTable


class BindingState(Enum):
    HOME = "home"  #: no mobility binding: the node is at home or unknown
    AWAY = "away"  #: at least one binding: proxy ARP on (RFC 5944 §4.6)


class BindingInput(Enum):
    REGISTER = "register"  #: accepted registration, non-zero lifetime
    DEREGISTER_ONE = "deregister_one"  #: lifetime 0, care-of address != home address
    DEREGISTER_ALL = "deregister_all"  #: lifetime 0, care-of address == home address
    EXPIRE = "expire"  #: a binding's lifetime ran out
    REVOKE = "revoke"  #: revoked: by the operator, or by the foreign agent (RFC 3543)


_H, _A = BindingState.HOME, BindingState.AWAY
#: Allowed transitions of a home address's binding state (enforced on every change).
BINDING_TRANSITIONS: TransitionTable[BindingState, BindingInput] = TransitionTable(
    "mobility binding",
    {
        (_H, BindingInput.REGISTER): frozenset({_A}),
        (_A, BindingInput.REGISTER): frozenset({_A}),
        # RFC 5944 §3.8.2.2: deregistering without a binding is accepted (code 0).
        (_H, BindingInput.DEREGISTER_ONE): frozenset({_H}),
        (_H, BindingInput.DEREGISTER_ALL): frozenset({_H}),
        (_A, BindingInput.DEREGISTER_ONE): frozenset({_A, _H}),
        (_A, BindingInput.DEREGISTER_ALL): frozenset({_H}),
        (_A, BindingInput.EXPIRE): frozenset({_A, _H}),
        # RFC 3543: a revocation removes one binding (by the FA) or all (by the operator).
        (_A, BindingInput.REVOKE): frozenset({_A, _H}),
        # (_H, EXPIRE) is missing on purpose: nothing can expire without a binding.
    },
)
