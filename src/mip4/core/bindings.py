"""Registration tables: the home agent's mobility bindings, the foreign agent's visitor
list and pending list (RFC 5944 §3.7.1, §3.8.1).

Theory of operation
-------------------
The engines keep their tables behind small :class:`typing.Protocol` interfaces
(:class:`BindingStore`, :class:`VisitorStore`, :class:`PendingStore`) so a deployment may
replace the in-memory implementations given here (a shared store for a redundant home
agent, say) without touching the state machines. Entries are frozen dataclasses; a store
replaces an entry wholesale -- with one exception, the home agent's in-memory table, which
renews a node's only binding in place (:meth:`InMemoryBindingStore.renew_in_place`: no new
record per renewal, issue 13) and may hold the node's replay state in it
(:meth:`InMemoryBindingStore.hold_replay`).

Every entry carries an absolute ``expires`` deadline on the engine's clock (``None`` for
an infinite lifetime, RFC 5944 §3.3). Each store answers ``next_expiry()`` (the earliest
deadline, which feeds the engine's ``next_deadline()``) and ``pop_expired(now)`` (remove
and return what is due). The in-memory stores keep a heap of deadlines with lazy
invalidation: replacing or removing an entry leaves a stale heap item that is skipped when
it surfaces, so both calls cost O(log n) amortised.

* Mobility binding (RFC 5944 §3.8.1): home address, care-of address, Identification,
  remaining Lifetime -- plus what this implementation needs to install the tunnel
  (encapsulation, reverse tunnelling, broadcast). Several bindings may exist for one home
  address when simultaneous bindings (S bit) are in use; a binding is identified by
  ``(home address, care-of address)``.
* Visitor list entry (RFC 5944 §3.7.1): link-layer source address of the mobile node, IP
  source address (home address), IP destination address, UDP source port, home agent
  address, Identification, requested Lifetime and remaining Lifetime. The pending list
  holds the same fields for requests relayed but not yet answered, plus the relay time and
  the timeout deadline. This foreign agent keeps at most one pending request per home
  address: a newer request from the mobile node replaces the older one (the mobile node
  only accepts a reply matching its latest request, RFC 5944 §3.6.3).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Address
from typing import Any, Final, Generic, Protocol, TypeVar, cast, runtime_checkable

from mip4.security.replay import ReplayState, ReplayStates
from mip4.security.sa import SecurityAssociation
from mip4.wire.messages import RegistrationFlags

from .actions import Encapsulation
from .fa_state import PendingRegistration, RequestRecord, Visitor
from .ha_deadlines import HomeAddressDeadlines

_T_co = TypeVar("_T_co", covariant=True)

__all__ = [
    "BindingStore",
    "BindingTableView",
    "HomeAddressStore",
    "HomeAgentStateStore",
    "InMemoryBindingStore",
    "InMemoryPendingStore",
    "InMemoryVisitorStore",
    "MobilityBinding",
    "PendingListView",
    "PendingRegistration",
    "PendingStore",
    "RequestRecord",
    "Visitor",
    "VisitorListView",
    "VisitorStore",
    "WriteThroughDict",
    "same_binding",
]


# ----------------------------------------------------------------------------------------
# Entries
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MobilityBinding:
    """One mobility binding at the home agent (RFC 5944 §3.8.1)."""

    home_address: IPv4Address
    care_of_address: IPv4Address
    #: Lifetime granted, seconds (65535 = infinite)
    lifetime: int
    #: when it was accepted (engine clock)
    registered_at: float
    #: absolute expiry (engine clock); ``None`` = never
    expires: float | None
    #: Identification of the accepted request
    identification: int
    flags: RegistrationFlags
    encapsulation: Encapsulation = Encapsulation.IPIP
    reverse_tunnel: bool = False
    #: IP source of the accepted request (foreign agent, or the co-located mobile node)
    source: IPv4Address | None = None
    #: the mobile node's NAI (MN-NAI extension, RFC 2794), when it sent one
    nai: str | None = None
    #: RFC 3543: the foreign agent's revocation clock learnt from its Revocation Support
    #: extension (``None``: revocation not negotiated for this binding)
    revocation_timestamp: int | None = None
    #: RFC 3543: both agents support informing the mobile node ('I' bit)
    revocation_inform: bool = False
    #: the in-memory table's business: this binding's ``identification`` is its node's
    #: replay state (:meth:`InMemoryBindingStore.hold_replay`; one more slot in the same
    #: 144-byte allocation)
    holds_replay: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def key(self) -> tuple[IPv4Address, IPv4Address]:
        return (self.home_address, self.care_of_address)

    @classmethod
    def of(
        cls,
        home_address: IPv4Address,
        care_of_address: IPv4Address,
        lifetime: int,
        registered_at: float,
        expires: float | None,
        identification: int,
        flags: RegistrationFlags,
        encapsulation: Encapsulation,
        reverse_tunnel: bool,
        source: IPv4Address | None,
        nai: str | None,
        revocation_timestamp: int | None,
        revocation_inform: bool,
    ) -> MobilityBinding:
        """The constructor's value, every field given in order, for the home agent's hot
        path (one per accepted registration): the slots are filled through their own
        descriptors instead of a frozen ``__setattr__`` per field (~1-2 us less; issue 13,
        ``tests/core/test_ha_fast_paths.py``)."""
        o = _new(cls)
        _s_home_address(o, home_address)
        _s_care_of_address(o, care_of_address)
        _s_lifetime(o, lifetime)
        _s_registered_at(o, registered_at)
        _s_expires(o, expires)
        _s_identification(o, identification)
        _s_flags(o, flags)
        _s_encapsulation(o, encapsulation)
        _s_reverse_tunnel(o, reverse_tunnel)
        _s_source(o, source)
        _s_nai(o, nai)
        _s_revocation_timestamp(o, revocation_timestamp)
        _s_revocation_inform(o, revocation_inform)
        _s_holds_replay(o, False)
        return o


def same_binding(old: MobilityBinding, new: MobilityBinding) -> bool:
    """``new`` renews ``old`` without changing it: same care-of address, lifetime, flags,
    encapsulation, reverse tunnelling, source, NAI and revocation agreement (the expiry,
    Identification and the foreign agent's revocation clock move on every renewal)."""
    return (
        old.care_of_address == new.care_of_address
        and old.lifetime == new.lifetime
        and old.flags == new.flags
        and old.encapsulation is new.encapsulation
        and old.reverse_tunnel == new.reverse_tunnel
        and old.source == new.source
        and old.nai == new.nai
        and old.revocation_inform == new.revocation_inform
    )


_new = object.__new__
#: granted lifetime -> the one int object a store's bindings of that lifetime hold (a
#: Lifetime is a 16-bit field: at most 65,536 values, and a deployment grants a handful)
_LIFETIMES: dict[int, int] = {}
_LIFETIMES_MAX = 65536
#: the slot descriptors' setters of MobilityBinding's fields, in field order (the
#: dataclass's frozen ``__setattr__`` is for callers; ``MobilityBinding.of`` fills a new
#: record before anyone sees it)
(
    _s_home_address,
    _s_care_of_address,
    _s_lifetime,
    _s_registered_at,
    _s_expires,
    _s_identification,
    _s_flags,
    _s_encapsulation,
    _s_reverse_tunnel,
    _s_source,
    _s_nai,
    _s_revocation_timestamp,
    _s_revocation_inform,
    _s_holds_replay,
) = (MobilityBinding.__dict__[f.name].__set__ for f in fields(MobilityBinding))


# ----------------------------------------------------------------------------------------
# Store interfaces
# ----------------------------------------------------------------------------------------


@runtime_checkable
class BindingStore(Protocol):
    """The home agent's mobility binding table."""

    def bindings_of(self, home_address: IPv4Address) -> tuple[MobilityBinding, ...]: ...

    def put(self, binding: MobilityBinding) -> MobilityBinding | None:
        """Add ``binding``, replacing (and returning) the one with the same key."""
        ...

    def remove(
        self, home_address: IPv4Address, care_of_address: IPv4Address | None = None
    ) -> tuple[MobilityBinding, ...]:
        """Remove one binding, or every binding of ``home_address`` (``None``)."""
        ...

    def next_expiry(self) -> float | None: ...

    def pop_expired(self, now: float, limit: int | None = None) -> list[MobilityBinding]:
        """Remove and return the bindings expired at ``now``; with ``limit``, look at no
        more than that many deadlines (:meth:`next_expiry` stays at or before ``now`` while
        any expired binding is left), so a mass expiry is spread over calls."""
        ...

    def mobile_nodes(self) -> int:
        """How many home addresses have at least one binding."""
        ...

    def __iter__(self) -> Iterator[MobilityBinding]: ...

    def __len__(self) -> int: ...


class _Keyed(Protocol):
    """An entry kept once per home address, with an absolute expiry (``None``: never)."""

    @property
    def home_address(self) -> IPv4Address: ...

    @property
    def expires(self) -> float | None: ...


_E = TypeVar("_E", bound=_Keyed)


@runtime_checkable
class HomeAddressStore(Protocol[_E]):
    """One entry per home address: the shape of the foreign agent's two tables."""

    def get(self, home_address: IPv4Address) -> _E | None: ...

    def put(self, entry: _E) -> _E | None:
        """Add ``entry``, replacing (and returning) the one for the same home address."""
        ...

    def remove(self, home_address: IPv4Address) -> _E | None: ...

    def next_expiry(self) -> float | None: ...

    def pop_expired(self, now: float) -> list[_E]: ...

    def __iter__(self) -> Iterator[_E]: ...

    def __len__(self) -> int: ...


@runtime_checkable
class VisitorStore(HomeAddressStore[Visitor], Protocol):
    """The foreign agent's visitor list (current registrations)."""


@runtime_checkable
class PendingStore(HomeAddressStore[PendingRegistration], Protocol):
    """The foreign agent's pending registrations."""


# ----------------------------------------------------------------------------------------
# In-memory implementations
# ----------------------------------------------------------------------------------------


#: A key's current deadline (``None``: no entry, or it never expires).
_Current = Callable[[Hashable], "float | None"]


class _DeadlineHeap:
    """Deadlines of keyed entries: a heap with at most one live item per key.

    A renewal that moves a deadline later (the usual case) pushes nothing: the key's
    earlier item stays, and when it surfaces it is moved on to the key's current deadline
    (one heap operation per renewed entry per lifetime, however many renewals there were:
    the heap stays the size of the table under a renewal storm). A deadline moved earlier
    pushes a new item and the old one is skipped when it surfaces. ``peek`` is exact but
    moves at most ``PEEK_BUDGET`` items on per call (then it answers the earliest item's
    deadline, a time no later than the true next expiry); ``pop_due`` moves or pops at
    most ``limit`` items per call. ``current`` (given to both) answers a key's deadline
    from the table itself, so no second map of deadlines is kept.

    Superseded items (only a deadline moved earlier leaves one) are dropped when the
    items outnumber twice the keys by more than ``SLACK`` -- not by rebuilding the heap in
    one push (O(n): a pause at a million entries) but as the home agent's expiry order
    does it (:mod:`~mip4.core.ha_deadlines`): the heap is set aside as ``_old``, still a
    valid heap, new items go to a new ``_heap``, and each later push *drains* at most
    ``DRAIN`` items from the end of ``_old`` (``list.pop()``: a heap less its last item is
    a heap), dropping the superseded ones and pushing the others into ``_heap``. The items
    are the union of both heaps; ``peek``, ``pop_due`` and ``_settle`` take the smaller
    top. A push does one heap push and at most ``DRAIN`` drained items; a drain ends after
    ``ceil(T0 / DRAIN)`` pushes (``T0`` the items when it began) with every superseded
    item of ``_old`` gone, and a drain that ends with the bound still passed sets the heap
    aside again."""

    __slots__ = ("_heap", "_old", "_queued")

    #: items ``peek`` may move on in one call before it answers a lower bound
    PEEK_BUDGET = 1024
    #: superseded items allowed beyond one per key before a drain begins
    SLACK = 1024
    #: items a push drains from ``_old`` (the heap set aside)
    DRAIN = 128

    def __init__(self) -> None:
        self._heap: list[tuple[float, Any]] = []
        #: the heap set aside, being drained into ``_heap`` (empty: no drain under way)
        self._old: list[tuple[float, Any]] = []
        #: key -> deadline of the key's one live heap item
        self._queued: dict[Hashable, float] = {}

    def __len__(self) -> int:
        return len(self._heap) + len(self._old)

    def draining(self) -> bool:
        """Whether a drain is under way (class docstring)."""
        return bool(self._old)

    def push(self, deadline: float | None, key: Hashable) -> None:
        """``key``'s deadline is now ``deadline`` (``None``: never)."""
        if deadline is None:
            return
        queued = self._queued.get(key)
        if queued is not None and queued <= deadline:
            return  # the earlier item surfaces first and is moved on then
        self._queued[key] = deadline
        heapq.heappush(self._heap, (deadline, key))
        if self._old:
            self._drain()
        if not self._old and len(self._heap) > 2 * len(self._queued) + self.SLACK:
            self._old, self._heap = self._heap, []  # drained from the next push on

    def _drain(self) -> int:
        """Move at most ``DRAIN`` items from the end of ``_old`` into ``_heap``, dropping
        the ones superseded by an earlier deadline; how many were looked at."""
        old, heap, queued = self._old, self._heap, self._queued
        n = min(self.DRAIN, len(old))
        for _ in range(n):
            item = old.pop()
            if queued.get(item[1]) == item[0]:
                heapq.heappush(heap, item)
        return n

    def _first(self) -> list[tuple[float, Any]] | None:
        """The heap whose top is the earliest item (``None``: no item)."""
        heap, old = self._heap, self._old
        if old and (not heap or old[0] < heap[0]):
            return old
        return heap if heap else None

    def _settle(self, current: _Current) -> Hashable | None:
        """Pop the earliest item; move it on to its key's current deadline if that is
        later. Returns the key if the item was that key's live one and its deadline is the
        current one (the entry is due at it), else ``None``."""
        first = self._first()
        assert first is not None
        item = heapq.heappop(first)
        deadline, key = item[0], cast(Hashable, item[1])
        if self._queued.get(key) != deadline:
            return None  # superseded by an earlier item
        now_due = current(key)
        if now_due is None:  # removed, or its lifetime is infinite now
            del self._queued[key]
            return None
        if now_due > deadline:
            self._queued[key] = now_due
            heapq.heappush(self._heap, (now_due, key))
            return None
        del self._queued[key]
        return key

    def peek(self, current: _Current) -> float | None:
        """Earliest live deadline."""
        budget = self.PEEK_BUDGET
        while (first := self._first()) is not None:
            deadline, key = first[0]
            if self._queued.get(key) == deadline and current(key) == deadline:
                return deadline
            if budget == 0:
                return deadline  # no later than the true next expiry
            budget -= 1
            self._settle(current)  # stale or moved on: never due here (that returned above)
        return None

    def pop_due(self, now: float, current: _Current, limit: int | None = None) -> list[Any]:
        """The keys due at ``now``, taken off the heap; with ``limit``, at most that many
        heap items are handled (some may be moved on, not due): call again while
        :meth:`peek` answers a time not after ``now``."""
        due: list[Any] = []
        work = 0
        while (
            (first := self._first()) is not None
            and first[0][0] <= now
            and (limit is None or work < limit)
        ):
            work += 1
            key = self._settle(current)
            if key is not None:
                due.append(key)
        return due

    def clear(self) -> None:
        self._heap.clear()
        self._old.clear()
        self._queued.clear()


class InMemoryBindingStore:
    """In-memory :class:`BindingStore`.

    Sized for a million bindings: tables are keyed by integer addresses (an
    ``IPv4Address`` hashes through ``hex()``), a home address with one binding (the usual
    case) maps straight to it (a dict per address only with simultaneous bindings), and
    the expiry order is :class:`~mip4.core.ha_deadlines.HomeAddressDeadlines`: one integer
    per home address, keyed by the same ``int`` object as the table, due at the earliest
    of its bindings' deadlines (each binding still expires at its own). Issue 13: 45 bytes
    per binding where a ``(deadline, care-of << 32 | home)`` tuple, its key and a dict of
    live deadlines took 152."""

    __slots__ = ("_by_hoa", "_coas", "_count", "_expiring", "_heap", "holding_for")

    #: how many care-of addresses are shared between bindings (a foreign agent's address
    #: serves many nodes: one address object for all of their bindings)
    SHARED_CARE_OF_ADDRESSES = 4096

    def __init__(self) -> None:
        #: int(home address) -> its binding, or {int(care-of address): binding}
        self._by_hoa: dict[int, MobilityBinding | dict[int, MobilityBinding]] = {}
        self._heap = HomeAddressDeadlines()
        self._count = 0
        #: the home address whose due bindings ``pop_expired`` is removing (-1: none)
        self._expiring = -1
        #: int(care-of address) -> the one address object bindings hold (bounded)
        self._coas: dict[int, IPv4Address] = {}
        #: the replay table whose states this table's bindings may hold (``hold_replay``)
        self.holding_for: ReplayStates | None = None

    def hold_replay(self, replay: ReplayStates) -> bool:
        """Become ``replay``'s holder (:class:`~mip4.security.replay.ReplayStates`): a
        binding renewed with ``holds_replay`` (the home agent's renewal fast path) keeps
        its node's timestamps-only replay state as its own ``identification``, the int it
        holds anyway, instead of ``replay``'s slot -- one record read and written per
        renewal, not two (issue 13: three cache misses fewer at a million nodes). The
        table lets go of a state when ``replay`` is written for the node, and writes it
        back to ``replay`` before it drops or replaces the binding (removal, expiry, a
        new record). One replay table per binding table, for good; whether this table
        holds for ``replay``."""
        if self.holding_for is None and replay.hold_with(self._held, self._let_go):
            self.holding_for = replay
        return self.holding_for is replay

    def _held(self, key: int | str) -> int | None:
        """The replay state (an Identification) the node ``key``'s binding holds."""
        entry = self._by_hoa.get(key) if type(key) is int else None
        if type(entry) is MobilityBinding and entry.holds_replay:
            return entry.identification
        return None

    def _let_go(self, key: int | str) -> None:
        """The replay table is written for ``key``: its binding holds the state no more."""
        entry = self._by_hoa.get(key) if type(key) is int else None
        if type(entry) is MobilityBinding and entry.holds_replay:
            _s_holds_replay(entry, False)

    def _write_back(self, binding: MobilityBinding) -> None:
        """``binding`` leaves the table (or its node's only place in it): the replay state
        it holds goes back to the replay table."""
        if binding.holds_replay:
            _s_holds_replay(binding, False)
            replay = self.holding_for
            assert replay is not None
            replay.raw[int(binding.home_address)] = binding.identification

    def _deadline(self, hoa: int) -> float | None:
        """The home address's deadline: the earliest expiry of its bindings (infinity:
        they never expire; ``None``: it has none)."""
        entry = self._by_hoa.get(hoa)
        if entry is None:
            return None
        d = entry.expires if isinstance(entry, MobilityBinding) else _earliest(entry)
        return _INFINITY if d is None else d

    def _tidy_deadlines(self) -> None:
        """After a push to the expiry heap: stale items past the bound are drained a few
        at a time, ``DRAIN`` per push at most, not rebuilt in one call (O(n): 548 ms at a
        million bindings; :meth:`HomeAddressDeadlines.tidy`)."""
        self._heap.tidy(len(self._by_hoa))

    def bindings_of(self, home_address: IPv4Address) -> tuple[MobilityBinding, ...]:
        entry = self._by_hoa.get(int(home_address))
        if entry is None:
            return ()
        if isinstance(entry, MobilityBinding):
            return (entry,)
        return tuple(entry.values())

    def only_binding(self, home_address: int) -> MobilityBinding | None:
        """The one binding of the home address ``home_address`` (an integer); ``None``
        when it has none, or several (the home agent's renewal fast path: no address
        object, no tuple)."""
        entry = self._by_hoa.get(home_address)
        return entry if type(entry) is MobilityBinding else None

    def put(self, binding: MobilityBinding) -> MobilityBinding | None:
        hoa, coa = int(binding.home_address), int(binding.care_of_address)
        shared = self._coas.get(coa)
        if shared is None:
            if len(self._coas) < self.SHARED_CARE_OF_ADDRESSES:
                self._coas[coa] = binding.care_of_address
        elif shared is not binding.care_of_address:
            # an equal value: the binding holds the shared object, not its own copy (set
            # on the frozen record before anyone else sees it, the store's own business)
            object.__setattr__(binding, "care_of_address", shared)
        # one object per lifetime (a million bindings of 600 s hold one ``600``, not a
        # million of 28 bytes each), set the same way
        lifetime = binding.lifetime
        same = _LIFETIMES.get(lifetime)
        if same is None:
            if len(_LIFETIMES) < _LIFETIMES_MAX:
                _LIFETIMES[lifetime] = lifetime
        elif same is not lifetime:
            _s_lifetime(binding, same)
        entry = self._by_hoa.get(hoa)
        old: MobilityBinding | None
        if entry is None:
            old = None
            self._by_hoa[hoa] = binding
            self._heap.bound(hoa, binding.expires)
        else:
            if isinstance(entry, MobilityBinding):
                was = entry.expires
                self._write_back(entry)
                if int(entry.care_of_address) == coa:
                    old = entry
                    self._by_hoa[hoa] = binding
                else:
                    old = None
                    self._by_hoa[hoa] = {int(entry.care_of_address): entry, coa: binding}
                deadline = binding.expires  # (the earliest of the two, if it moves earlier)
            else:
                was = _earliest(entry)
                old = entry.get(coa)
                entry[coa] = binding
                deadline = _earliest(entry)
            self._heap.moved(hoa, was, deadline)
        if old is None:
            self._count += 1
        self._tidy_deadlines()
        return old

    def renew(self, old: MobilityBinding, binding: MobilityBinding) -> None:
        """Replace ``old``, the only binding of its home address, with ``binding`` (the same
        home address and care-of address object): what ``remove(home)`` then
        ``put(binding)`` do (the home agent's renewal fast path), with no heap operation
        when the deadline does not move earlier -- the key's heap item is no later than
        ``old``'s deadline, and moves on when it surfaces."""
        hoa = int(binding.home_address)
        lifetime = binding.lifetime
        same = _LIFETIMES.get(lifetime)
        if same is None:
            if len(_LIFETIMES) < _LIFETIMES_MAX:
                _LIFETIMES[lifetime] = lifetime
        elif same is not lifetime:
            _s_lifetime(binding, same)
        self._write_back(old)
        self._by_hoa[hoa] = binding
        new, was = binding.expires, old.expires
        if new is not None and (was is None or new < was):
            self._heap.moved(hoa, was, new)
            self._tidy_deadlines()

    def renew_in_place(
        self,
        binding: MobilityBinding,
        lifetime: int,
        registered_at: float,
        expires: float | None,
        identification: int,
        flags: RegistrationFlags,
        encapsulation: Encapsulation,
        reverse_tunnel: bool,
        source: IPv4Address,
        holds_replay: bool = False,
    ) -> bool:
        """Renew ``binding``, the only binding of its home address in this table, in place:
        what :meth:`renew` does with a new record of these fields (no NAI, no revocation;
        the same home address and care-of address), without the new record -- the
        home agent's renewal fast path allocates no long-lived object per renewal, so
        young collections stay small at a million bindings (CPython counts generation 0
        down when the replaced, frozen record is freed: a new record per renewal grew
        generation 0 unseen; issue 13, ``tests/core/test_ha_renewal.py``). The record is
        the table's own: a caller holding it (``bindings_of``) sees it renewed.
        ``holds_replay``: ``identification`` is the node's replay state now, held for the
        replay table (:meth:`hold_replay`; the caller has checked this table holds for
        it). Returns :func:`same_binding` of the record before and after."""
        same = _LIFETIMES.get(lifetime)
        if same is None:
            if len(_LIFETIMES) < _LIFETIMES_MAX:
                _LIFETIMES[lifetime] = lifetime
            same = lifetime
        was = binding.expires
        old_source = binding.source
        # the same object first (receive paths intern addresses, issue 13): an unchanged
        # source costs no IPv4Address.__eq__, a Python call, here nor below
        same_source = old_source is source or old_source == source
        unchanged = (
            binding.lifetime == lifetime
            and binding.flags == flags
            and binding.encapsulation is encapsulation
            and binding.reverse_tunnel == reverse_tunnel
            and same_source
            and binding.nai is None
            and not binding.revocation_inform
        )
        _s_lifetime(binding, same)
        _s_registered_at(binding, registered_at)
        _s_expires(binding, expires)
        _s_identification(binding, identification)
        _s_flags(binding, flags)
        _s_encapsulation(binding, encapsulation)
        _s_reverse_tunnel(binding, reverse_tunnel)
        if not same_source:  # (an equal address: the record keeps its own object)
            _s_source(binding, source)
        _s_nai(binding, None)
        _s_revocation_timestamp(binding, None)
        _s_revocation_inform(binding, False)
        _s_holds_replay(binding, holds_replay)
        if expires is not None and (was is None or expires < was):
            self._heap.moved(int(binding.home_address), was, expires)
            self._tidy_deadlines()
        return unchanged

    def remove(
        self, home_address: IPv4Address, care_of_address: IPv4Address | None = None
    ) -> tuple[MobilityBinding, ...]:
        hoa = int(home_address)
        entry = self._by_hoa.get(hoa)
        if entry is None:
            return ()
        removed: tuple[MobilityBinding, ...]
        if isinstance(entry, MobilityBinding):
            if care_of_address is not None and entry.care_of_address != care_of_address:
                return ()
            self._write_back(entry)
            del self._by_hoa[hoa]
            removed = (entry,)
            if hoa != self._expiring:
                self._heap.unbound(hoa)
        elif care_of_address is None:
            del self._by_hoa[hoa]
            removed = tuple(entry.values())
            if hoa != self._expiring:
                self._heap.unbound(hoa)
        else:
            one = entry.pop(int(care_of_address), None)
            if one is None:
                return ()
            removed = (one,)  # (the deadline can only move later: nothing to push)
            if len(entry) == 1:
                (self._by_hoa[hoa],) = entry.values()
        self._count -= len(removed)
        return removed

    def next_expiry(self) -> float | None:
        return self._heap.peek(self._deadline)

    def pop_expired(self, now: float, limit: int | None = None) -> list[MobilityBinding]:
        """Remove and return the bindings expired at ``now``. With ``limit`` (this store's
        addition to :class:`BindingStore`) the work is bounded: at most ``limit`` deadlines
        are looked at; a mass expiry is spread over calls, and :meth:`next_expiry` stays
        at or before ``now`` while any is left."""
        expired: list[MobilityBinding] = []
        by_hoa = self._by_hoa
        remove = self.remove  # (a subclass sees each expiry as a removal)

        def expire(hoa: int, deadline: float) -> float | None:
            # the bindings of ``hoa`` due at ``deadline``, its earliest: each expires at
            # its own deadline, a later one stays (simultaneous bindings)
            entry = by_hoa[hoa]
            due = [entry] if isinstance(entry, MobilityBinding) else list(entry.values())
            self._expiring = hoa  # (its heap item is spent: not a stale one)
            try:
                for b in due:
                    if b.expires == deadline:
                        expired.extend(remove(b.home_address, b.care_of_address))
            finally:
                self._expiring = -1
            return self._deadline(hoa)

        self._heap.pop_due(now, self._deadline, expire, limit)
        return expired

    def mobile_nodes(self) -> int:
        return len(self._by_hoa)

    def __iter__(self) -> Iterator[MobilityBinding]:
        for entry in list(self._by_hoa.values()):
            if isinstance(entry, MobilityBinding):
                yield entry
            else:
                yield from list(entry.values())

    def __len__(self) -> int:
        return self._count


_INFINITY = float("inf")


def _earliest(bindings: dict[int, MobilityBinding]) -> float | None:
    """The earliest deadline of a home address's simultaneous bindings (``None``: they
    never expire)."""
    return min((b.expires for b in bindings.values() if b.expires is not None), default=None)


class _InMemoryHomeAddressStore(Generic[_E]):
    """In-memory :class:`HomeAddressStore` (one entry per home address)."""

    def __init__(self) -> None:
        self._entries: dict[IPv4Address, _E] = {}
        self._heap = _DeadlineHeap()

    def _deadline(self, key: Hashable) -> float | None:
        assert isinstance(key, IPv4Address)
        entry = self._entries.get(key)
        return None if entry is None else entry.expires

    def get(self, home_address: IPv4Address) -> _E | None:
        return self._entries.get(home_address)

    def put(self, entry: _E) -> _E | None:
        old = self._entries.get(entry.home_address)
        self._entries[entry.home_address] = entry
        self._heap.push(entry.expires, entry.home_address)
        return old

    def remove(self, home_address: IPv4Address) -> _E | None:
        return self._entries.pop(home_address, None)

    def next_expiry(self) -> float | None:
        return self._heap.peek(self._deadline)

    def pop_expired(self, now: float) -> list[_E]:
        out: list[_E] = []
        for key in self._heap.pop_due(now, self._deadline):
            assert isinstance(key, IPv4Address)
            entry = self.remove(key)
            if entry is not None:
                out.append(entry)
        return out

    def __iter__(self) -> Iterator[_E]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)


class InMemoryVisitorStore(_InMemoryHomeAddressStore[Visitor]):
    """In-memory :class:`VisitorStore`."""


class InMemoryPendingStore(_InMemoryHomeAddressStore[PendingRegistration]):
    """In-memory :class:`PendingStore`."""


# ----------------------------------------------------------------------------------------
# Read-only views (what the engines expose for status pages and tests)
# ----------------------------------------------------------------------------------------


class _ExpiringStore(Protocol[_T_co]):
    def next_expiry(self) -> float | None: ...
    def __iter__(self) -> Iterator[_T_co]: ...
    def __len__(self) -> int: ...


class _StoreView(Generic[_T_co]):
    """What every read-only view offers: the next expiry, iteration over a snapshot, size."""

    __slots__ = ("_store",)

    def __init__(self, store: _ExpiringStore[_T_co]) -> None:
        self._store = store

    def next_expiry(self) -> float | None:
        return self._store.next_expiry()

    def __iter__(self) -> Iterator[_T_co]:
        return iter(list(self._store))

    def __len__(self) -> int:
        return len(self._store)


class BindingTableView(_StoreView[MobilityBinding]):
    """Read-only view of a :class:`BindingStore`."""

    __slots__ = ()
    _store: BindingStore

    def __init__(self, store: BindingStore) -> None:
        self._store = store

    def bindings_of(self, home_address: IPv4Address) -> tuple[MobilityBinding, ...]:
        return self._store.bindings_of(home_address)

    def mobile_nodes(self) -> int:
        return self._store.mobile_nodes()


class VisitorListView(_StoreView[Visitor]):
    """Read-only view of a :class:`VisitorStore`."""

    __slots__ = ()
    _store: VisitorStore

    def __init__(self, store: VisitorStore) -> None:
        self._store = store

    def get(self, home_address: IPv4Address) -> Visitor | None:
        return self._store.get(home_address)


class PendingListView(_StoreView[PendingRegistration]):
    """Read-only view of a :class:`PendingStore`."""

    __slots__ = ()
    _store: PendingStore

    def __init__(self, store: PendingStore) -> None:
        self._store = store

    def get(self, home_address: IPv4Address) -> PendingRegistration | None:
        return self._store.get(home_address)


# ----------------------------------------------------------------------------------------
# Persistence hooks (issue 15: bindings that survive restarts; the store helper's block)
# ----------------------------------------------------------------------------------------

_K = TypeVar("_K")
_V = TypeVar("_V")


@runtime_checkable
class HomeAgentStateStore(Protocol):
    """What a persistent home agent store keeps besides the mobility bindings: the replay
    state of each mobile node (RFC 5944 §5.7: the last accepted Identification, or the
    nonce last issued) and the home addresses assigned to NAIs (RFC 2794 §2). A
    :class:`BindingStore` that also has these methods is handed both by
    :meth:`~mip4.core.home_agent.HomeAgent.restore`; the in-memory store needs neither."""

    def replay_states(self) -> dict[IPv4Address | str, ReplayState]:
        """Every mobile node's replay state, as last written."""
        ...

    def put_replay(self, identity: IPv4Address | str, state: ReplayState) -> None: ...

    def remove_replay(self, identity: IPv4Address | str) -> None: ...

    def assignments(self) -> dict[str, IPv4Address]:
        """NAI -> assigned home address, as last written."""
        ...

    def put_assignment(self, nai: str, home_address: IPv4Address) -> None: ...

    def remove_assignment(self, nai: str) -> None: ...


@runtime_checkable
class HomeAgentKeyStore(Protocol):
    """A persistent home agent store that also keeps the MN-HA keys the home AAA server
    gave (RFC 3957): a restarted home agent then still verifies a node whose key came from
    AAA instead of answering 131 until it asks for a new one. Handed to
    :meth:`~mip4.core.home_agent.HomeAgent.restore` like :class:`HomeAgentStateStore`."""

    def mn_ha_keys(self) -> dict[str, SecurityAssociation]:
        """NAI -> the MN-HA association AAA gave it, as last written."""
        ...

    def put_mn_ha_key(self, nai: str, sa: SecurityAssociation) -> None: ...

    def remove_mn_ha_key(self, nai: str) -> None: ...


class WriteThroughDict(dict[_K, _V]):
    """A ``dict`` that reports every change to ``on_set(key, value)`` / ``on_delete(key)``:
    how an engine's own tables (the home agent's replay state and NAI assignments) reach a
    persistent store without the engine code that changes them knowing about it. Setting
    a key to an equal value reports nothing. Every mutating method of ``dict`` is covered."""

    __slots__ = ("_on_delete", "_on_set")

    def __init__(
        self,
        initial: Mapping[_K, _V],
        on_set: Callable[[_K, _V], None],
        on_delete: Callable[[_K], None],
    ) -> None:
        super().__init__(initial)
        self._on_set = on_set
        self._on_delete = on_delete

    def __setitem__(self, key: _K, value: _V) -> None:
        if key in self and dict.__getitem__(self, key) == value:
            return
        super().__setitem__(key, value)
        self._on_set(key, value)

    def __delitem__(self, key: _K) -> None:
        super().__delitem__(key)
        self._on_delete(key)

    _MISSING: Final = object()

    def pop(self, key: _K, default: Any = _MISSING) -> Any:
        if key in self:
            value = super().pop(key)
            self._on_delete(key)
            return value
        if default is WriteThroughDict._MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[_K, _V]:
        key, value = super().popitem()
        self._on_delete(key)
        return key, value

    def setdefault(self, key: _K, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def __ior__(self, other: Any) -> WriteThroughDict[_K, _V]:  # type: ignore[override,misc]
        self.update(other)
        return self
