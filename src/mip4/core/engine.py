"""The one shape of a mip4 engine, and the one error boundary every engine uses.

Theory of operation
-------------------
Every protocol engine (mobile node, foreign agent, home agent) has the same interface,
:class:`Engine`: the I/O shell feeds it inputs with ``handle(event, now)``, wakes it with
``handle_timer(now)`` at ``next_deadline()``, and carries out the typed
:mod:`~mip4.core.actions` both return (the aioquic ``QuicConnection`` shape). Its decisions are
counted in one :class:`~mip4.core.counters.Counters` (``counters``).

No engine ever raises on any input. Each public entry point runs its work inside
:func:`error_boundary`, which speaks the exceptions of :mod:`mip4.core.registration` (STYLE.md
practice 6, the h2 ``exceptions.py`` pattern):

* :class:`~mip4.core.registration.RegistrationDenied` goes to the role's ``on_denied`` callback,
  which builds the Registration Reply (the agents; the mobile node has none, so a denial
  there is an internal error);
* :class:`~mip4.core.registration.Discard` becomes a counted discard (by its reason) and a
  ``<role>.discard`` :class:`~mip4.core.actions.Log`;
* :class:`~mip4.core.registration.ProtocolError` (an input with no transition) becomes a
  counted ``protocol_error`` and a ``<role>.protocol_error`` log;
* anything else -- a bug -- becomes a counted ``internal_error`` and a
  ``<role>.internal_error`` log.

The body writes its actions into the list it is handed, so actions produced before a failure
are kept (the mobile node relies on it); an engine that wants all-or-nothing builds its
actions first and extends the list at the end. A state-machine check belongs inside the body:
the mobile node's guard is ``check(state, input)``, the work, ``confirm(before, input,
state)`` -- a :class:`~mip4.core.registration.ProtocolError` from either is reported the same.

Conventions shared by the engines (the coordinator's, see ``docs/architecture.md``):

* log events are named ``<role>.<snake_case>``: ``fa.discard``, ``ha.binding_expired``,
  ``mn.state`` (:func:`log_event` builds and checks such a name);
* randomness comes from one ``rng: random.Random | None`` constructor argument, defaulting to
  :class:`random.SystemRandom` (:func:`make_rng`): challenges ``rng.randbytes(n)``, nonces
  ``rng.getrandbits(32)``, identification low bits, solicitation jitter. Tests pass a seeded
  :class:`random.Random`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

from .actions import Action, Log
from .counters import Counters
from .events import Event
from .registration import Discard, ProtocolError, RegistrationDenied

__all__ = [
    "Body",
    "DeniedHandler",
    "Engine",
    "error_boundary",
    "log_event",
    "make_rng",
]


class Engine(Protocol):
    """What the I/O shell drives: the mobile node, the foreign agent and the home agent."""

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one input received at monotonic time ``now``; never raises."""
        ...

    def handle_timer(self, now: float) -> list[Action]:
        """Do what is due at ``now`` (call it at :meth:`next_deadline`); never raises."""
        ...

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called (``None``: nothing to wait for)."""
        ...

    @property
    def counters(self) -> Counters:
        """The engine's decision counters (read-only for callers)."""
        ...


#: The work run inside the boundary: it appends its actions to the list it is handed.
Body = Callable[[list[Action]], None]
#: Turns a denial into the actions that answer it (a Registration Reply, counters, a log).
DeniedHandler = Callable[[RegistrationDenied], list[Action]]

_ROLE = re.compile(r"[a-z][a-z0-9]*\Z")
_EVENT = re.compile(r"[a-z][a-z0-9_]*\Z")


def log_event(role: str, name: str) -> str:
    """The log event name ``role.name`` (``"fa"``, ``"visitor_expired"`` ->
    ``"fa.visitor_expired"``); both parts must be lower-case snake_case."""
    if not _ROLE.match(role) or not _EVENT.match(name):
        raise ValueError(f"log event {role!r}.{name!r} is not role.snake_case")
    return f"{role}.{name}"


def make_rng(rng: random.Random | None) -> random.Random:
    """The engine's source of randomness: ``rng``, or the system's (``SystemRandom``)."""
    return rng if rng is not None else random.SystemRandom()


def error_boundary(
    role: str,
    counters: Counters,
    body: Body,
    *,
    who: Mapping[str, object] | None = None,
    on_denied: DeniedHandler | None = None,
) -> list[Action]:
    """Run ``body`` and return the actions it produced; never raises.

    ``role`` prefixes the log events (``"mn"``, ``"fa"``, ``"ha"``); ``who`` adds fields that
    identify the input (source, interface...) to the error logs; ``on_denied`` answers a
    :class:`RegistrationDenied` (its actions follow those the body produced). See the module
    docstring for what each exception becomes."""
    out: list[Action] = []
    # read only when something goes wrong: the log records below copy it then
    extra: Mapping[str, object] = who if who is not None else _NO_FIELDS
    try:
        body(out)
    except RegistrationDenied as denial:
        if on_denied is None:
            _internal(role, counters, out, denial, extra)
        else:
            try:
                out.extend(on_denied(denial))
            except Exception as e:  # the reply itself failed: still never raise
                _internal(role, counters, out, e, extra)
    except Discard as d:
        counters.discard(d.reason)
        out.append(Log(f"{role}.discard", {"reason": d.reason, "detail": d.detail, **extra}))
    except ProtocolError as e:
        counters.discard("protocol_error")
        out.append(Log(f"{role}.protocol_error", {"detail": str(e), **extra}))
    except Exception as e:  # last resort: no input may crash an engine
        _internal(role, counters, out, e, extra)
    return out


#: ``who`` when the caller gave none (never written)
_NO_FIELDS: Mapping[str, object] = MappingProxyType({})


def _internal(
    role: str, counters: Counters, out: list[Action], e: Exception, extra: Mapping[str, object]
) -> None:
    counters.discard("internal_error")
    out.append(Log(f"{role}.internal_error", {"detail": repr(e), **extra}))
