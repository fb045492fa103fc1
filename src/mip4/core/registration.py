"""The registration pipeline and the error boundary shared by the agents.

Theory of operation
-------------------
An agent processes a Registration Request as a *pipeline*: a tuple of check functions run
in the order the RFC lays down (RFC 5944 §3.7.2.1 for the foreign agent, §3.8.2.1 for the
home agent). A check either returns, possibly after recording something in the per-request
context (the security association it found, the lifetime it grants...), or raises:

* :class:`RegistrationDenied` -- the request must be answered with a Registration Reply
  carrying ``code`` (a :class:`~mip4.wire.codes.ReplyCode`). Optional fields override what
  the reply carries: the lifetime (RFC 5944 §3.7.2.2 code 69 carries the FA's maximum), the
  identification (RFC 5944 §3.8.3.1 code 133 carries the resynchronisation value) and the
  home agent address (code 136 carries the home agent's unicast address).
* :class:`Discard` -- RFC 5944 says "silently discard": no reply, only a counted reason.

Nothing deep in the engines builds replies or counts decisions: ``handle`` runs inside the
one error boundary, :func:`mip4.core.engine.error_boundary`, which turns these exceptions
into a reply or a counted discard (STYLE.md practice 6, the h2 ``exceptions.py`` pattern).
The boundary also catches :class:`ProtocolError` (an input that has no transition from the
current state) and, as a last resort, any other exception, so that no engine ever raises on
any input. All of them derive from :class:`mip4.errors.Mip4Error`.

State machines (STYLE.md practice 7, the h11 ``_state.py`` pattern): a
:class:`TransitionTable` maps every allowed ``(state, input)`` pair to the set of states
that may follow. :meth:`TransitionTable.check` raises :class:`ProtocolError` for a missing
pair; :meth:`TransitionTable.confirm` raises when the engine ended up in a state the table
does not allow. Tables are data: tests enumerate them.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Generic, TypeVar

from mip4.errors import Mip4Error
from mip4.wire.codes import ReplyCode

__all__ = [
    "Check",
    "ConfigError",
    "Discard",
    "Pipeline",
    "ProtocolError",
    "RegistrationDenied",
    "TransitionTable",
    "config_from_mapping",
]


class RegistrationDenied(Mip4Error):
    """Deny the registration being processed with ``code``; ``reason`` is for the log."""

    def __init__(
        self,
        code: ReplyCode,
        reason: str,
        *,
        lifetime: int | None = None,
        identification: int | None = None,
        home_agent: IPv4Address | None = None,
    ) -> None:
        super().__init__(f"{int(code)} {code.name.lower()}: {reason}")
        self.code = code
        self.reason = reason
        #: Lifetime to put in the reply instead of the default (RFC 5944 §3.7.2.2, 69)
        self.lifetime = lifetime
        #: Identification to put in the reply instead of the request's (§3.8.3.1, 133)
        self.identification = identification
        #: Home Agent field of the reply instead of the request's (§3.8.3.1, 136)
        self.home_agent = home_agent


class Discard(Mip4Error):
    """Silently discard the input being processed; ``reason`` names the counter."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ProtocolError(Mip4Error):
    """An input with no transition from the current state (h11 ``LocalProtocolError``)."""


C = TypeVar("C")
S = TypeVar("S", bound=Hashable)
I = TypeVar("I", bound=Hashable)  # noqa: E741

#: One stage of a pipeline: inspects (and may annotate) the context, or raises.
Check = Callable[[C], None]


@dataclass(frozen=True)
class Pipeline(Generic[C]):
    """Checks run in order over a per-request context of type ``C``."""

    checks: tuple[Callable[[C], None], ...]

    def run(self, ctx: C) -> None:
        for check in self.checks:
            check(ctx)

    @property
    def names(self) -> tuple[str, ...]:
        """The checks' names, in order (tests assert the RFC order with it)."""
        return tuple(getattr(c, "__name__", repr(c)) for c in self.checks)


class TransitionTable(Generic[S, I]):
    """Allowed transitions: ``(state, input) -> frozenset of possible next states``."""

    def __init__(self, name: str, table: Mapping[tuple[S, I], frozenset[S]]) -> None:
        self.name = name
        self.table = dict(table)
        # The same table keyed by object identity, for the hot path (an engine checks a
        # transition or two per request): states and inputs are enum members, singletons
        # the table keeps alive, and hashing them costs a Python-level ``Enum.__hash__``
        # each. An equal object that is not the one in the table takes the general path.
        self._by_id: dict[tuple[int, int], tuple[frozenset[S], frozenset[int]]] = {
            (id(s), id(i)): (after, frozenset(map(id, after)))
            for (s, i), after in self.table.items()
        }

    def check(self, state: S, event: I) -> frozenset[S]:
        """The states that may follow; :class:`ProtocolError` when the pair is missing."""
        hit = self._by_id.get((id(state), id(event)))
        if hit is not None:
            return hit[0]
        try:
            return self.table[(state, event)]
        except KeyError:
            raise ProtocolError(
                f"{self.name}: no transition for {event} in state {state}"
            ) from None

    def confirm(self, before: S, event: I, after: S) -> None:
        """Raise :class:`ProtocolError` unless ``before --event--> after`` is in the table."""
        hit = self._by_id.get((id(before), id(event)))
        if hit is not None and id(after) in hit[1]:
            return
        allowed = self.check(before, event)
        if after not in allowed:
            raise ProtocolError(
                f"{self.name}: {event} took state {before} to {after}, "
                f"allowed {sorted(map(str, allowed))}"
            )


# ----------------------------------------------------------------------------------------
# Configuration loading shared by the agents (STYLE.md practice 8)
# ----------------------------------------------------------------------------------------


class ConfigError(Mip4Error, ValueError):
    """A configuration value that cannot be used; the message names the file and key."""


T = TypeVar("T")


def config_from_mapping(cls: type[T], data: Mapping[str, object], source: str = "<config>") -> T:
    """Build the frozen config dataclass ``cls`` from ``data`` (a parsed TOML table),
    converting strings to addresses and networks, lists to tuples and frozensets, and
    tables to nested config dataclasses, by the field annotations. Unknown keys and values
    of the wrong type raise :class:`ConfigError` naming ``source`` and the key; so do the
    dataclass's own checks (``__post_init__``)."""
    return _build(cls, data, source, "")


def _build(cls: type[T], data: object, source: str, prefix: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, object] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(
                f"{source}: unknown key {prefix}{key} (known: {', '.join(sorted(names))})"
            )
        kwargs[key] = _convert(hints[key], value, source, f"{prefix}{key}")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.init and required and f.name not in kwargs:
            raise ConfigError(f"{source}: {prefix}{f.name}: missing (required)")
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{source}: {prefix.rstrip('.') or cls.__name__}: {e}") from None
    except ValueError as e:
        where = f"{prefix.rstrip('.')}: " if prefix else ""
        raise ConfigError(f"{source}: {where}{e}") from None


def _convert(tp: object, value: object, source: str, key: str) -> object:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, source, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{source}: {key}: no value allowed")
    if origin in (tuple, frozenset):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: {key}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)[:1]
        items = [_convert(item, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else frozenset(items)
    if tp is IPv4Address or tp is IPv4Network:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key}: expected an address string, got {value!r}")
        try:
            return tp(value)
        except ValueError as e:
            raise ConfigError(f"{source}: {key}: {e}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        # by value ("off", 47) or by name, any case, "-" for "_" ("hmac-md5", "gre")
        for member in tp:
            if not isinstance(value, bool) and value == member.value:
                return member
            if isinstance(value, str) and value.upper().replace("-", "_") == member.name:
                return member
        known = ", ".join(
            repr(m.value) if isinstance(m.value, str) else m.name.lower().replace("_", "-")
            for m in tp
        )
        raise ConfigError(f"{source}: {key}: expected one of {known}, got {value!r}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, source, f"{key}.")
    raise ConfigError(f"{source}: {key}: unsupported type {tp!r}")  # pragma: no cover
