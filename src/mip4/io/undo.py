"""Who owns each kernel object mip4 makes, and how it is undone -- also after a crash.

Theory of operation
-------------------
Every kernel object the I/O shell creates or changes (a route, a policy rule, a neighbour
or proxy neighbour entry, an address, a link, a sysctl value, a route it withdrew) is
written down as one typed, frozen **record** that says how to undo it. A record belongs to
exactly one :class:`UndoStack`: the daemon's own (what :class:`~mip4.io.netns.Netns` set
up for the process: forwarding, ARP sysctls, the reverse-tunnel route, proxy entries), one
per visitor, one per attachment of a mobile node. Removing a visitor or an attachment is
``stack.undo()``; closing is undoing every stack, newest first. (A home agent's binding
keeps no stack and no record: what it made -- a route through the daemon's TUN device,
which goes with the device also after a crash, and fast-path map entries -- follows from
its home address; :mod:`mip4.io.executor_bindings`.) The same stack also takes in-process
clean-up steps (:class:`Callback`: closing a socket, forgetting a tunnel-table entry) so
that there is one mechanism for everything a node must take down, in order.

The kernel records of all the stacks of one daemon are also kept in a :class:`Journal`:
a file of JSON lines in the run directory, one line appended whenever a record is added
or removed (compacted when it holds more dead lines than live ones). A daemon killed with
SIGKILL leaves its journal behind; the next daemon of the same configuration reads it
before it starts (:func:`load_journal`) and undoes what its predecessor left, with the
same records. A :class:`SysctlRecord` holds the value the key
had before mip4 **first** touched it, so the restored value is the original one even after
a SIGKILL, a restart and a clean stop. A record that is already on a stack is not
recorded twice (a binding renewal replaces its route with the same record: no journal
write).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from ipaddress import IPv4Address
from json.encoder import encode_basestring_ascii as _encode_string
from operator import attrgetter
from pathlib import Path
from typing import TextIO, cast

RT_TABLE_MAIN = 254


def dotted(address: IPv4Address) -> str:
    """``str(address)``, a fifth of its cost (``inet_ntoa`` of the 4 bytes; issue 13: a
    first registration writes its home address as text in its records, its undo stack's
    name and its log line). The text of the last address asked for is kept with it: the
    actions of one registration share one address object, asked for four or five times
    (the object is kept alive by the cache, so ``is`` cannot match another one)."""
    last = _LAST_DOTTED
    if last[0] is address:
        return last[1]  # type: ignore[return-value]
    text = _inet_ntoa(address._ip.to_bytes(4, "big"))  # type: ignore[attr-defined]
    last[0], last[1] = address, text
    return text


_inet_ntoa = socket.inet_ntoa
#: the last address :func:`dotted` wrote, and its text
_LAST_DOTTED: list[object] = [None, ""]


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """A link we added (veth pair, bridge): deleted by name."""

    ifname: str

    def describe(self) -> str:
        return f"link {self.ifname}"


@dataclass(frozen=True, slots=True)
class AddressRecord:
    """An IPv4 address we added to interface ``index``."""

    index: int
    address: str
    prefixlen: int

    def describe(self) -> str:
        return f"address {self.address}/{self.prefixlen} index {self.index}"


@dataclass(frozen=True, slots=True)
class RouteRecord:
    """A route we added (or replaced): deleted by destination, table, output interface and
    gateway (a route someone else put in its place since stays)."""

    dst: str
    dst_len: int
    table: int = RT_TABLE_MAIN
    oif: int | None = None
    gateway: str | None = None

    def describe(self) -> str:
        return f"route {self.dst}/{self.dst_len} table {self.table}"


@dataclass(frozen=True, slots=True)
class WithdrawnRouteRecord:
    """An on-link route (the one an address made) we deleted: put back on undo."""

    dst: str
    dst_len: int
    oif: int
    prefsrc: str
    ifname: str = ""

    def describe(self) -> str:
        return f"restored route {self.dst}/{self.dst_len} dev {self.ifname or self.oif}"


@dataclass(frozen=True, slots=True)
class RuleRecord:
    """An IPv4 policy rule we added."""

    table: int
    priority: int
    src: str | None = None
    src_len: int | None = None
    iifname: str | None = None

    def describe(self) -> str:
        return f"rule priority {self.priority} table {self.table}"


@dataclass(frozen=True, slots=True)
class NeighbourRecord:
    """A permanent neighbour entry we made."""

    dst: str
    ifindex: int

    def describe(self) -> str:
        return f"neighbour {self.dst} index {self.ifindex}"


@dataclass(frozen=True, slots=True)
class ProxyNeighbourRecord:
    """A proxy neighbour entry (``ip neigh add proxy``) we made. pyroute2 0.9.7 returns
    empty proxy-neighbour dumps, so this record is the only list of them there is."""

    dst: str
    ifindex: int
    ifname: str

    def describe(self) -> str:
        return f"proxy neighbour {self.dst} dev {self.ifname}"


@dataclass(frozen=True, slots=True)
class SysctlRecord:
    """A sysctl we changed; ``value`` is what it was before mip4 first touched it."""

    key: str
    value: str

    def describe(self) -> str:
        return f"sysctl {self.key}={self.value}"


KernelRecord = (
    LinkRecord
    | AddressRecord
    | RouteRecord
    | WithdrawnRouteRecord
    | RuleRecord
    | NeighbourRecord
    | ProxyNeighbourRecord
    | SysctlRecord
)

#: record kind (as written in a journal) -> class
KINDS: dict[str, type[KernelRecord]] = {
    "link": LinkRecord,
    "addr": AddressRecord,
    "route": RouteRecord,
    "withdrawn_route": WithdrawnRouteRecord,
    "rule": RuleRecord,
    "neigh": NeighbourRecord,
    "proxy": ProxyNeighbourRecord,
    "sysctl": SysctlRecord,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}


@dataclass(frozen=True, eq=False, slots=True)
class Callback:
    """An in-process clean-up step (close a socket, forget a table entry). Not journalled:
    what it undoes dies with the process. Compared by identity."""

    label: str
    func: Callable[[], object]

    def describe(self) -> str:
        return self.label


Record = KernelRecord | Callback


#: record class -> its field names (every field is a str, an int or None: no nesting)
_FIELD_NAMES: dict[type[KernelRecord], tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls)) for cls in KINDS.values()
}


def to_json(record: KernelRecord) -> dict[str, object]:
    """``{"kind": ..., field: value...}``: what ``dataclasses.asdict`` gives for these flat
    records, without its recursive copy (a journal line per route, issue 13)."""
    cls = type(record)
    out: dict[str, object] = {"kind": _KIND_OF[cls]}
    for name in _FIELD_NAMES[cls]:
        out[name] = getattr(record, name)
    return out


def _line_format(
    cls: type[KernelRecord],
) -> tuple[str, Callable[[KernelRecord], tuple[object, ...]]]:
    """The text of ``cls``'s journal line with a ``%s`` for the op and each field (names,
    kind and separators as ``json.dumps`` writes them), and what reads its fields."""
    names = _FIELD_NAMES[cls]
    text = '{"op": %s, "kind": ' + _encode_string(_KIND_OF[cls])
    text += "".join(f", {_encode_string(n)}: %s" for n in names) + "}\n"
    text = text.replace("%s", "\0").replace("%", "%%").replace("\0", "%s")
    if len(names) == 1:
        one = attrgetter(names[0])
        return text, lambda r: (one(r),)
    return text, attrgetter(*names)


#: record class -> (its line with ``%s`` for the values, its fields' getter)
_LINE_FORMATS = {cls: _line_format(cls) for cls in _FIELD_NAMES}
_OPS = {"add": '"add"', "del": '"del"'}


def journal_line(op: str, record: KernelRecord) -> str:
    """``{"op": op, **to_json(record)}`` as ``json.dumps`` writes it, and a newline,
    without building the dictionary (issue 13: a line per route and proxy entry of every
    first registration; ``tests/io/test_journal_lines.py`` compares them): the class's
    line filled in by one ``%``."""
    text, values = _LINE_FORMATS[type(record)]
    out: list[str] = [_OPS.get(op) or _encode_string(op)]
    for v in values(record):
        t = type(v)
        if t is str:
            out.append(_encode_string(cast(str, v)))
        elif t is int:
            out.append(int.__repr__(cast(int, v)))
        elif v is None:
            out.append("null")
        else:
            out.append(json.dumps(v))
    return text % tuple(out)


def from_json(data: dict[str, object]) -> KernelRecord:
    """The record ``data`` describes; ``ValueError`` for anything else."""
    cls = KINDS.get(str(data.get("kind")))
    if cls is None:
        raise ValueError(f"unknown record kind {data.get('kind')!r}")
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"bad {cls.__name__}: {exc}") from None


class Journal:
    """The kernel records of one daemon's stacks, kept in the file ``path``.

    The file is a log of JSON lines, ``{"op": "add"|"del", "kind": ..., ...}``, appended
    (one small ``write``) when a record is added or removed, so a new binding costs one
    line, not a rewrite of every other record. When dead lines outnumber the live ones the
    file is rewritten with only the live records (atomically: a new file renamed over the
    old one); when no record is left it is removed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: live records, oldest first, with how many stacks hold each
        self._live: dict[KernelRecord, int] = {}
        self._file: TextIO | None = None
        self._lines = 0
        #: ``None``: each line is written (and flushed) as it comes. Else a way to run
        #: :meth:`flush` soon (an event loop's ``call_soon``): the lines of one pass of
        #: the loop are held and written together, by one ``write`` (issue 13) -- or
        #: before that by whoever calls :meth:`flush` first (the executor, before a reply
        #: leaves)
        self.defer: Callable[[Callable[[], None]], object] | None = None
        self._pending: list[str] = []
        #: :meth:`tear_down` called: records are removed without a line each
        self._tearing_down = False
        #: :meth:`hold` minus :meth:`release`: while above 0 the file stays with no record
        self._holds = 0

    @property
    def records(self) -> list[KernelRecord]:
        return list(self._live)

    def add(self, record: KernelRecord) -> None:
        self._live[record] = self._live.get(record, 0) + 1
        self._append("add", record)

    def remove(self, record: KernelRecord) -> None:
        if self._tearing_down:
            self._remove_tearing_down(record)
            return
        n = self._live.get(record)
        if n is None:
            return
        if n > 1:
            self._live[record] = n - 1
        else:
            del self._live[record]
        if not self._live:
            self._pending.clear()  # nothing they say is live any more
            self.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        if self._tearing_down:
            return
        self._append("del", record)
        if self._lines > 2 * len(self._live) + 64:
            self._compact()

    def _remove_tearing_down(self, record: KernelRecord) -> None:
        """:meth:`remove` after :meth:`tear_down`: no line, and one hash of the record (the
        order of the live records no longer matters: nothing is written again)."""
        live = self._live
        n = live.pop(record, None)
        if n is None:
            return
        if n > 1:
            live[record] = n - 1
        elif not live and not self._holds:
            self.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def hold(self) -> None:
        """After :meth:`tear_down`: the file stays, even with no record left, until
        :meth:`release` -- records forgotten before their objects are undone (a clean
        stop's batched deletes) are still in it should the daemon be killed meanwhile."""
        self._holds += 1

    def release(self) -> None:
        """The end of a :meth:`hold`: the file goes if no record is left."""
        self._holds -= 1
        if not self._live and not self._holds:
            self.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def tear_down(self) -> None:
        """Everything is about to be undone (a clean stop): from now on a record removed
        writes no line and compacts nothing; the file goes when the last one is removed.
        Killed half way, the file still names records already undone: the next start's
        clean-up finds them gone and does nothing for them (undoing is idempotent). At a
        million bindings the lines and rewrites were a quarter of a clean stop (issue 13)."""
        self.flush()
        self._tearing_down = True

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
        self._lines = 0

    @property
    def pending(self) -> int:
        """Lines held for the next :meth:`flush`."""
        return len(self._pending)

    def flush(self) -> None:
        """Write the lines held (one ``write``), and flush them to the file."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._write(text)

    def _write(self, text: str) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(text)
        self._file.flush()

    def _append(self, op: str, record: KernelRecord) -> None:
        line = journal_line(op, record)
        self._lines += 1
        if self.defer is None:
            self._write(line)
            return
        if not self._pending:
            try:
                self.defer(self.flush)
            except RuntimeError:  # the loop is closed: no holding any more
                self.defer = None
                self._write(line)
                return
        self._pending.append(line)

    def _compact(self) -> None:
        self._pending.clear()  # the rewrite holds every live record
        self.close()
        tmp = self.path.with_name(self.path.name + ".tmp")
        lines = [journal_line("add", r) for r, n in self._live.items() for _ in range(n)]
        tmp.write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, self.path)
        self._lines = len(lines)


def load_journal(path: Path) -> list[KernelRecord]:
    """The records a previous daemon left live in ``path`` (oldest first; none if no file).
    A last line cut short (the daemon killed while writing it) is ignored; any other
    malformed line raises ``ValueError`` naming the file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    live: dict[KernelRecord, int] = {}
    for number, line in enumerate(lines, 1):
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or item.get("op") not in ("add", "del"):
                raise ValueError("not an add or del entry")
            record = from_json(item)
        except ValueError as exc:
            if number == len(lines):
                break
            raise ValueError(f"{path}: unreadable undo journal, line {number}: {exc}") from None
        if item["op"] == "add":
            live[record] = live.get(record, 0) + 1
        elif live.get(record, 0) > 1:
            live[record] -= 1
        else:
            live.pop(record, None)
    return list(live)


class UndoStack:
    """The undo records of one owner, undone newest first by ``undo_one``. Kernel records
    are mirrored in ``journal`` (if any).

    Past :attr:`SMALL` records they are an insertion-ordered dict (a record is its own key;
    a :class:`Callback` compares by identity), so "already here?", forgetting one record
    and undoing the newest are O(1) whatever the size: the daemon's own stack holds a proxy
    neighbour entry per mobile node away from home, a million of them at scale. Up to it,
    a list (searched: as cheap at that size, and smaller -- a stack per binding)."""

    # the home agent keeps one per binding: no instance dict (issue 13)
    __slots__ = ("_records", "_undo_one", "journal", "name")

    #: up to this many records a stack keeps them in a list, searched (a binding's stack
    #: holds two: a dictionary's table was 160 bytes, the list's 32, issue 13); past it,
    #: in the insertion-ordered dict
    SMALL = 8

    def __init__(
        self,
        undo_one: Callable[[KernelRecord], object],
        journal: Journal | None = None,
        name: str = "",
    ) -> None:
        self._undo_one = undo_one
        self.journal = journal
        self.name = name
        self._records: list[Record] | dict[Record, None] = []

    @property
    def records(self) -> list[Record]:
        """The records, oldest first (a copy)."""
        return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(list(self._records))

    def __repr__(self) -> str:
        return f"UndoStack({self.name!r}, {len(self._records)} records)"

    def __contains__(self, record: object) -> bool:
        return not isinstance(record, Callback) and record in self._records

    def push(self, record: Record) -> bool:
        """Own ``record``; ``False`` (nothing done) when an equal one is already here."""
        records = self._records
        if record in records:
            return False
        if isinstance(records, dict):
            records[record] = None
        elif len(records) < self.SMALL:
            records.append(record)
        else:
            self._records = dict.fromkeys(records)
            self._records[record] = None
        if self.journal is not None and not isinstance(record, Callback):
            self.journal.add(record)
        return True

    def callback(self, label: str, func: Callable[[], object]) -> None:
        self.push(Callback(label, func))

    def discard(self, match: Callable[[Record], bool]) -> list[Record]:
        """Forget (without undoing) the records ``match`` selects: the object was removed
        another way. Returns them."""
        gone = [r for r in self._records if match(r)]
        for r in gone:
            self.forget(r)
        return gone

    def forget(self, record: Record) -> bool:
        """Forget (without undoing) ``record``, in O(1); ``False`` if it was not here."""
        records = self._records
        if record not in records:
            return False
        if isinstance(records, dict):
            del records[record]
        else:
            records.remove(record)
        if self.journal is not None and not isinstance(record, Callback):
            self.journal.remove(record)
        return True

    def undo(self, leave: Callable[[Record], bool] | None = None) -> list[str]:
        """Undo every record, newest first; returns the failures as text, without stopping
        at the first. With ``leave``, the records it selects are forgotten without being
        undone: a clean stop whose kernel objects go another way in the same stop (a route
        through a device deleted after it, :meth:`LinuxExecutor.close
        <mip4.io.executor.LinuxExecutor.close>`)."""
        errors: list[str] = []
        while records := self._records:  # (a push while undoing may make it a dict)
            record = next(reversed(records)) if isinstance(records, dict) else records[-1]
            try:
                if leave is not None and leave(record):
                    pass
                elif isinstance(record, Callback):
                    record.func()
                else:
                    self._undo_one(record)
            except Exception as exc:
                errors.append(f"{record.describe()}: {exc}")
            finally:
                # forget(record), in line (a clean stop undoes a stack per binding): the
                # list's last one is the record, unless the undo changed the stack
                records = self._records
                tell = False  # the journal, of a kernel record forgotten here
                if isinstance(records, dict):
                    tell = records.pop(record, _GONE) is None
                elif records and records[-1] is record:
                    records.pop()
                    tell = True
                else:
                    self.forget(record)  # (which tells the journal)
                if tell and not isinstance(record, Callback):
                    journal = self.journal
                    if journal is not None:
                        journal.remove(record)
        return errors


#: what ``dict.pop`` answers for a record not (or no longer) on a stack (a stack's values
#: are all ``None``)
_GONE = object()


def _no_kernel_records(record: KernelRecord) -> bool:
    raise TypeError(f"this stack holds no kernel records: {record.describe()}")


def resource_stack(name: str) -> UndoStack:
    """A stack of in-process clean-up steps only (sockets, devices held open)."""
    return UndoStack(_no_kernel_records, None, name)
