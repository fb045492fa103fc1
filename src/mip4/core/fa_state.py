"""The foreign agent's per-home-address state machine (RFC 5944 §3.7): a visitor is idle,
pending (a request relayed, no current registration), registered (a visitor list entry), or
re-registering (registered, and a newer request relayed). :data:`VISITOR_TRANSITIONS` lists
every allowed ``(state, input)`` pair with its one next state; any other pair is a
:class:`~mip4.errors.ProtocolError` (h11 ``_state.py`` style). The engine in
:mod:`mip4.core.foreign_agent` moves every visitor through this table.

The records of that state live here too: a visitor list entry (:class:`Visitor`) and a
pending registration (:class:`PendingRegistration`), both :class:`RequestRecord` s
(RFC 5944 §3.7.1; re-exported by :mod:`mip4.core.bindings`, whose store interfaces hold
them), and the foreign agent's own in-memory tables of them, :class:`VisitorList` and
:class:`PendingList`. The records are slotted (no per-record dictionary: a visitor is
~0.2 KB of slots); the tables are keyed by the integer home address (an ``IPv4Address``
hashes through ``hex()``), keep one deadline heap each without a second map (an item is
``(deadline, key)``, checked against the table when it surfaces) and share the addresses
that many visitors repeat (home agent, care-of address, the request's destination) --
sized for the million-node simulation's 2.4 M visitors (issue 13)."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from enum import Enum
from ipaddress import IPv4Address
from typing import Any, Generic, TypeVar

from mip4.wire.addr import ipv4_int as _ip
from mip4.wire.messages import RegistrationFlags
from mip4.wire.records import make_record as make_record

from .actions import Encapsulation
from .registration import TransitionTable

__all__ = [
    "VISITOR_TRANSITIONS",
    "PendingList",
    "PendingRegistration",
    "RequestRecord",
    "Visitor",
    "VisitorInput",
    "VisitorList",
    "VisitorState",
    "make_record",
    "new_pending",
    "new_visitor",
]


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


# ----------------------------------------------------------------------------------------
# The records (RFC 5944 §3.7.1)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the foreign agent keeps of a mobile node's request, for a visitor list entry
    and a pending registration alike (RFC 5944 §3.7.1)."""

    home_address: IPv4Address
    #: the visitor's interface (the link it was heard on)
    interface: str
    #: link-layer source address of the mobile node (RFC 5944 §3.7.1)
    link_address: bytes | None
    #: IP source address of the request (the home address, normally)
    ip_source: IPv4Address
    #: IP destination address of the request (this agent, or 224.0.0.11)
    ip_destination: IPv4Address
    #: UDP source port of the request
    udp_source_port: int
    home_agent: IPv4Address
    care_of_address: IPv4Address
    #: Identification of the request (RFC 5944 §3.7.1)
    identification: int
    #: requested Lifetime (RFC 5944 §3.7.1)
    requested_lifetime: int


@dataclass(frozen=True, slots=True)
class Visitor(RequestRecord):
    """A current registration at the foreign agent: a visitor list entry (RFC 5944
    §3.7.1)."""

    #: Lifetime granted by the home agent
    lifetime: int
    #: absolute expiry: the remaining Lifetime is ``expires - now`` (``None`` = never)
    expires: float | None
    flags: RegistrationFlags
    reverse_tunnel: bool = False
    encapsulation: Encapsulation = Encapsulation.IPIP
    #: RFC 3024 §3.3: encapsulating delivery style requested
    encapsulating_delivery: bool = False
    #: the mobile node's NAI (MN-NAI extension, RFC 2794), when it sent one
    nai: str | None = None
    #: the MN-FA SPI the mobile node used (to authenticate what we send it)
    mn_fa_spi: int | None = None
    #: RFC 3543: the home agent's revocation clock learnt from the reply's Revocation
    #: Support extension (``None``: revocation not negotiated for this visitor)
    revocation_timestamp: int | None = None
    #: RFC 3543: both agents support informing the mobile node ('I' bit)
    revocation_inform: bool = False

    @property
    def colocated(self) -> bool:
        """Registered a co-located care-of address (D bit) through this agent."""
        return bool(self.flags & RegistrationFlags.D)


@dataclass(frozen=True, slots=True)
class PendingRegistration(RequestRecord):
    """A request relayed to the home agent and not yet answered (RFC 5944 §3.7.1)."""

    flags: RegistrationFlags
    #: when it was relayed (engine clock)
    relayed_at: float
    #: when it times out (RFC 5944 §3.7.1 allows deleting it, code 78)
    expires: float
    reverse_tunnel: bool = False
    encapsulation: Encapsulation = Encapsulation.IPIP
    encapsulating_delivery: bool = False
    #: our own authentication of the reply towards the MN: the MN-FA SPI it used, if any
    mn_fa_spi: int | None = None
    #: the mobile node's NAI (MN-NAI extension, RFC 2794), when it sent one; a request for
    #: home address 0.0.0.0 is pending under it (its reply is matched by it)
    nai: str | None = None

    @property
    def low_identification(self) -> int:
        """The low-order 32 bits, which a reply must echo (RFC 5944 §3.7.3.1)."""
        return self.identification & 0xFFFFFFFF


_Rec = TypeVar("_Rec", Visitor, PendingRegistration)
_new = object.__new__


def _maker(cls: type[_Rec]) -> Callable[..., _Rec]:
    """A function ``(*values) -> cls(*values)`` -- every field given, in declaration
    order -- that fills the slots through their own descriptors (one call each, written
    out as the dataclass writes its ``__init__``) instead of a frozen ``__setattr__`` per
    field: ~1 us instead of ~3 for a visitor. The record is filled before anyone sees it."""
    names = [f.name for f in fields(cls)]
    scope: dict[str, Any] = {"_new": _new, "_cls": cls}
    for name in names:
        scope[f"_set_{name}"] = getattr(cls, name).__set__
    body = "".join(f"    _set_{n}(o, {n})\n" for n in names)
    code = f"def make({', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n"
    exec(code, scope)  # our own field names, as dataclasses writes its __init__
    make: Callable[..., _Rec] = scope["make"]
    make.__qualname__ = make.__name__ = f"new_{cls.__name__}"
    return make


#: ``Visitor(*values)`` on the relay path (the accepted reply makes one);
#: ``tests/core/test_fa_fast_paths.py`` holds it against the constructor
new_visitor: Callable[..., Visitor] = _maker(Visitor)
#: ``PendingRegistration(*values)`` on the relay path (each relayed request makes one)
new_pending: Callable[..., PendingRegistration] = _maker(PendingRegistration)

_MAKERS: dict[type[Any], Callable[..., Any]] = {
    Visitor: new_visitor,
    PendingRegistration: new_pending,
}


def build(cls: type[_Rec], *values: Any) -> _Rec:
    """``cls(*values)`` made as :data:`new_visitor` / :data:`new_pending` make it."""
    record: _Rec = _MAKERS[cls](*values)
    return record


# ----------------------------------------------------------------------------------------
# The tables
# ----------------------------------------------------------------------------------------

_set_ip_source = RequestRecord.__dict__["ip_source"].__set__
_set_ip_destination = RequestRecord.__dict__["ip_destination"].__set__
_set_home_agent = RequestRecord.__dict__["home_agent"].__set__
_set_care_of_address = RequestRecord.__dict__["care_of_address"].__set__


class _Table(Generic[_Rec]):
    """One record per home address, keyed by ``int(home_address)``, with the earliest
    expiry answered exactly in O(1) amortised.

    The deadlines are a heap of ``(expires, key)`` items (the record's own float and the
    table's own key: nothing more per entry) with no map beside it; an item is checked
    against the table when it reaches the top. Invariant: every record with an expiry has
    an item at or before it. A put that moves a deadline later (a renewal) pushes nothing
    -- the earlier item stands for it; one moved earlier, or a new record, pushes one. At
    the top, an item whose key has no record, or whose record expires earlier (another
    item stands for it), is dropped; one whose record expires later is moved on to it; one
    equal to its record's expiry is the answer (every other record's item is at or after
    it, and so is its expiry). Each item is pushed and popped once, so ``next_expiry`` is
    O(1) amortised over the puts; when duplicates (a record moved on by two items) make the
    heap more than twice the table, it is rebuilt from the table."""

    __slots__ = ("_entries", "_heap", "_shared")

    #: how many distinct addresses the records share (home agents, care-of addresses and
    #: request destinations repeat across visitors: one address object each; bounded)
    SHARED_ADDRESSES = 4096

    def __init__(self) -> None:
        self._entries: dict[int, _Rec] = {}
        self._heap: list[tuple[float, int]] = []
        #: int(address) -> the one object records hold for it
        self._shared: dict[int, IPv4Address] = {}

    def get(self, home_address: IPv4Address) -> _Rec | None:
        return self._entries.get(int(home_address))

    def _share(self, address: IPv4Address) -> IPv4Address:
        key = int(address)
        shared = self._shared.get(key)
        if shared is None:
            if len(self._shared) < self.SHARED_ADDRESSES:
                self._shared[key] = address
            return address
        return shared

    def put(self, entry: _Rec) -> _Rec | None:
        """Add ``entry``, replacing (and returning) the one for the same home address."""
        key = _ip(entry.home_address)
        return self._store(key, entry, self._entries.get(key))

    def _store(self, key: int, entry: _Rec, old: _Rec | None) -> _Rec | None:
        """``entry`` in place of ``old`` (the entry at ``key``, or ``None``), its deadline
        queued when earlier than ``old``'s; returns ``old``."""
        entries = self._entries
        entries[key] = entry
        expires = entry.expires
        if expires is not None:
            was = old.expires if old is not None else None
            if was is None or expires < was:
                heap = self._heap
                heapq.heappush(heap, (expires, key))
                if len(heap) > 2 * len(entries) + 1024:
                    self._rebuild()
        return old

    def _rebuild(self) -> None:
        self._heap = [(e.expires, k) for k, e in self._entries.items() if e.expires is not None]
        heapq.heapify(self._heap)

    def remove(self, home_address: IPv4Address) -> _Rec | None:
        return self._entries.pop(_ip(home_address), None)

    def next_expiry(self) -> float | None:
        heap = self._heap
        entries = self._entries
        while heap:
            deadline, key = heap[0]
            entry = entries.get(key)
            if entry is not None:
                expires = entry.expires
                if expires == deadline:
                    return deadline
                if expires is not None and expires > deadline:
                    heapq.heapreplace(heap, (expires, key))  # moved on: renewed
                    continue
            heapq.heappop(heap)  # no record, or another item stands for it
        return None

    def pop_expired(self, now: float) -> list[_Rec]:
        out: list[_Rec] = []
        heap = self._heap
        entries = self._entries
        while heap:
            deadline = self.next_expiry()
            if deadline is None or deadline > now:
                break
            key = heapq.heappop(heap)[1]
            out.append(entries.pop(key))
        return out

    def __iter__(self) -> Iterator[_Rec]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)


class VisitorList(_Table[Visitor]):
    """The foreign agent's visitor list in memory: a :class:`~mip4.core.bindings.VisitorStore`.
    A visitor put holds one object per address: its IP source is its home address object
    when they are equal, and the home agent, care-of address and request destination are
    the ones the list already holds (or the ones of the entry it replaces)."""

    __slots__ = ()

    def put(self, entry: Visitor) -> Visitor | None:
        hoa = entry.home_address
        # issue 13, a renewal's put (the relay fast path builds the new record from the
        # old one's objects): when the record it replaces holds the same objects, they
        # are already the shared ones -- a put leaves each address A with _share(A) is A
        # for the table's life (the shared map only grows) and the source its home
        # address when equal -- so the sharing below would change nothing
        key = _ip(hoa)
        old = self._entries.get(key)
        if (
            old is not None
            and old.home_address is hoa
            and old.ip_source is entry.ip_source
            and old.ip_destination is entry.ip_destination
            and old.home_agent is entry.home_agent
            and old.care_of_address is entry.care_of_address
        ):
            return self._store(key, entry, old)
        # Equal values, one object: the record is the list's once put (set on the frozen
        # record through its slots, before anyone reads it from the list).
        src = entry.ip_source
        if src is not hoa and src == hoa:
            _set_ip_source(entry, hoa)
        address = entry.ip_destination
        shared = self._share(address)
        if shared is not address:
            _set_ip_destination(entry, shared)
        address = entry.home_agent
        shared = self._share(address)
        if shared is not address:
            _set_home_agent(entry, shared)
        address = entry.care_of_address
        shared = self._share(address)
        if shared is not address:
            _set_care_of_address(entry, shared)
        return super().put(entry)


class PendingList(_Table[PendingRegistration]):
    """The foreign agent's pending registrations in memory: a
    :class:`~mip4.core.bindings.PendingStore`.

    A pending entry expires ``pending_timeout`` after it was relayed, so the deadlines
    come in order: an item no earlier than the last one queued goes to the end of a FIFO
    (``deque.append``, and ``popleft`` when it surfaces: no heap operation per relayed
    request), one out of order (a clock step, a changed timeout, a caller's own
    deadlines) into the heap. The earliest item is the earlier of the two fronts; every
    other rule of :class:`_Table` holds as it is (the invariant, dropping, moving on,
    rebuilding when the items outnumber twice the table)."""

    __slots__ = ("_fifo",)

    def __init__(self) -> None:
        super().__init__()
        self._fifo: deque[tuple[float, int]] = deque()

    def put(self, entry: PendingRegistration) -> PendingRegistration | None:
        """Add ``entry``, replacing (and returning) the one for the same home address."""
        key = int(entry.home_address)
        entries = self._entries
        old = entries.get(key)
        entries[key] = entry
        expires = entry.expires
        if old is None or expires < old.expires:
            self._push(expires, key)
        return old

    def _push(self, expires: float, key: int) -> None:
        fifo = self._fifo
        if not fifo or expires >= fifo[-1][0]:
            fifo.append((expires, key))
        else:
            heapq.heappush(self._heap, (expires, key))
        if len(fifo) + len(self._heap) > 2 * len(self._entries) + 1024:
            self._rebuild()

    def _rebuild(self) -> None:
        self._fifo.clear()
        super()._rebuild()

    def _front(self) -> tuple[float, int] | None:
        """The earliest item and, removed from its queue, nothing else: ``None`` when the
        table has no deadline. Stale items are dropped and moved on as :class:`_Table`
        does."""
        fifo, entries = self._fifo, self._entries
        while True:
            heap = self._heap  # (a move below may rebuild it)
            if not heap and not fifo:
                return None
            from_fifo = not heap or (fifo and fifo[0] <= heap[0])
            deadline, key = fifo[0] if from_fifo else heap[0]
            entry = entries.get(key)
            if entry is not None and entry.expires == deadline:
                return deadline, key
            if from_fifo:
                fifo.popleft()
            else:
                heapq.heappop(heap)
            if entry is not None and entry.expires > deadline:
                self._push(entry.expires, key)  # moved on: renewed

    def next_expiry(self) -> float | None:
        front = self._front()
        return front[0] if front is not None else None

    def pop_expired(self, now: float) -> list[PendingRegistration]:
        out: list[PendingRegistration] = []
        entries = self._entries
        while True:
            front = self._front()
            if front is None or front[0] > now:
                break
            key = front[1]
            fifo = self._fifo
            if fifo and fifo[0] == front:
                fifo.popleft()
            else:
                heapq.heappop(self._heap)
            out.append(entries.pop(key))
        return out
