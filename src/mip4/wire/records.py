"""Frozen records built on a hot path: one ``__dict__`` assignment instead of the dataclass
``__init__``, which sets each field with ``object.__setattr__`` (~0.1 us a field). Used
where an engine or the I/O shell makes one record per datagram (issue 13); each use has a
test comparing the record with the constructor's, field set included."""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["make_record"]

_Rec = TypeVar("_Rec")
_new = object.__new__
_setattr = object.__setattr__


def make_record(cls: type[_Rec], fields: dict[str, Any]) -> _Rec:
    """An instance of the frozen dataclass ``cls`` holding ``fields`` (every field, by
    name, in declaration order; the dictionary becomes the instance's own)."""
    record: _Rec = _new(cls)
    _setattr(record, "__dict__", fields)
    return record
