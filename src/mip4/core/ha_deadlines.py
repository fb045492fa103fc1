"""The expiry order of the home agent's binding table: one heap of plain integers keyed by
home address (issue 13: a million bindings in little memory, bounded work per timer call).

Theory of operation
-------------------
The in-memory binding table (:class:`~mip4.core.bindings.InMemoryBindingStore`) keys its
bindings by the integer home address; a home address's *deadline* is the earliest expiry
among its bindings (several with simultaneous bindings, RFC 5944 §3.6.1.3; infinity when
they all have an infinite lifetime, RFC 5944 §3.3). This heap orders home addresses by
that deadline. An item is one ``int``, ``key(deadline) << 32 | home address``, where
``key`` maps a float to an integer in the same order (its IEEE 754 bits less those of 1.0, negatives
flipped): a 36-byte object and a list slot per home address, compared in C by ``heapq`` --
not a ``(deadline, key)`` tuple (56 bytes), its key and a dict of live deadlines (another
36 + 52 bytes per binding, the structure this replaces).

Lazy invalidation, as before: a deadline that moves later (a renewal, the usual case)
pushes nothing; the home address's item stays, and when it surfaces it is moved on to the
current deadline (one heap operation per renewed node per lifetime, however many renewals
there were). A deadline moved earlier pushes a new item; a home address that loses its
last binding leaves its item behind. Such a home address then has *stale* items besides
its live one, and only such home addresses (few: deadlines moved earlier,
deregistrations) are written down, in ``_odd``: ``home address -> (key of the live item,
or None; how many stale items)``. Every other home address has exactly one item, live,
when it has a binding, and none when it has not; so an item whose home address is not in
``_odd`` is its live one, and no per-binding map is needed to tell.

Invariants (held by ``tests/core/test_ha_deadlines.py`` against a model):

* a home address with a binding has exactly one live item, at or before its deadline;
* ``peek`` is exact -- a live item at its home address's current deadline -- but moves at
  most ``PEEK_BUDGET`` items on per call (then it answers the earliest item's deadline, a
  time no later than the true next expiry); ``pop_due`` handles at most ``limit`` items
  per call (a due item expires the bindings due at its deadline, and a home address with
  later ones gets an item at the next of them, handled in the same call when due);
* after a push (and the store's :meth:`tidy`), when no drain is under way, the items
  number at most ``2 * (home addresses + those in _odd) + SLACK``; a removal leaves its
  item until it surfaces;
* past that bound the heap is not rebuilt in one call (O(n): 548 ms at a million
  bindings): it is set aside as ``_old``, still a valid heap, and new items go to a new
  ``_heap``; each later push *drains* at most ``DRAIN`` items from the end of ``_old``
  (``list.pop()``: a heap less its last item is a heap) -- a stale one (by the test
  ``_settle`` applies) is dropped and counted off in ``_odd``, any other pushed into
  ``_heap``. The items are the union of the two heaps, both valid: ``peek``, ``pop_due``
  and ``_settle`` take the smaller top, so every invariant above holds on the union and
  the ``PEEK_BUDGET`` and ``limit`` bounds are those of one heap. A push does one heap
  push and at most ``DRAIN`` drained items; a drain ends after ``ceil(T0 / DRAIN)``
  pushes, ``T0`` the items when it began, with every stale item of ``_old`` gone, and
  until then the items number at most ``T0 + ceil(T0 / DRAIN)`` (one more per push,
  ``DRAIN`` fewer in ``_old``); a drain that ends with the bound still passed sets the
  heap aside again.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable
from typing import Final

__all__ = ["HomeAddressDeadlines", "deadline_key"]

_bits = struct.Struct("<q")
_double = struct.Struct("<d")
_pack_double, _unpack_bits = _double.pack, _bits.unpack
_pack_bits, _unpack_double = _bits.pack, _double.unpack
_push, _pop = heapq.heappush, heapq.heappop
_M32: Final = 0xFFFFFFFF
_SIGN: Final = 1 << 63
#: the bits of 1.0: keys count from there, so a deadline from 1 s to 2**64 s has a key
#: under 2**58 and its item fits in 90 bits (a 36-byte int, 40 from 2**90 on)
_ONE: Final = 0x3FF0000000000000
_INFINITY = float("inf")
#: ``_odd`` is this many dicts, a home address in ``_odd[hoa % _SHARDS]``: CPython grows a
#: dict by copying it whole, in the insertion that fills it -- 21.9-30.9 ms on the loop's
#: thread where ``_odd`` passed 699,050 home addresses (a million nodes registering again
#: with a shorter lifetime, each deadline moved earlier); one of 251 dicts copies 1/251 of
#: them. (Prime: an int hashes to itself, and the home addresses of one dict then still
#: differ in their low bits, which pick the slot; by ``hoa & 255`` they would not.)
_SHARDS: Final = 251


def deadline_key(deadline: float | None) -> int:
    """An integer in the order of ``deadline`` (``None``: infinity): the float's bits less
    those of 1.0, negative floats' flipped so that they sort before the positive ones, the
    more negative the smaller. Exact: two deadlines have the same key iff they are equal
    (but ``-0.0``)."""
    if deadline is None:
        deadline = _INFINITY
    bits: int = _unpack_bits(_pack_double(deadline))[0]
    return bits - _ONE if bits >= 0 else -bits - _SIGN - 1 - _ONE


def _deadline(key: int) -> float:
    """The float :func:`deadline_key` made ``key`` from."""
    key += _ONE
    d: float = _unpack_double(_pack_bits(key if key >= 0 else -key - _SIGN - 1))[0]
    return d


#: ``deadline_key(None)``: the key of a home address whose bindings never expire
INFINITE: Final = deadline_key(None)

#: A home address's current deadline, ``None`` when it has no binding, infinity when its
#: bindings never expire.
Current = Callable[[int], "float | None"]
#: Remove the home address's bindings due at the deadline given; its new deadline, as
#: :data:`Current` answers it after.
Expire = Callable[[int, float], "float | None"]


class HomeAddressDeadlines:
    """Home addresses in the order of their deadlines (module docstring)."""

    __slots__ = ("_heap", "_odd", "_odd_n", "_old")

    #: items ``peek`` may move on in one call before it answers a lower bound
    PEEK_BUDGET = 1024
    #: stale items allowed beyond one per home address before :meth:`needs_drain`
    SLACK = 1024
    #: items a push drains from ``_old`` (the heap set aside, module docstring)
    DRAIN = 128

    def __init__(self) -> None:
        #: ``deadline_key(deadline) << 32 | home address``
        self._heap: list[int] = []
        #: home address -> (key of its live item or ``None``, count of its stale items),
        #: for the home addresses that have stale items only, in ``_odd[hoa % _SHARDS]``
        self._odd: tuple[dict[int, tuple[int | None, int]], ...] = tuple({} for _ in range(_SHARDS))
        #: the home addresses in ``_odd``
        self._odd_n = 0
        #: the heap set aside, being drained into ``_heap`` (empty: no drain under way)
        self._old: list[int] = []

    def __len__(self) -> int:
        return len(self._heap) + len(self._old)

    def odd(self) -> dict[int, tuple[int | None, int]]:
        """Every home address that has stale items: (key of its live item or ``None``,
        count of its stale items) -- one dict made of ``_odd``'s (for inspection)."""
        return {hoa: state for shard in self._odd for hoa, state in shard.items()}

    def needs_drain(self, home_addresses: int) -> bool:
        """Whether the items outnumber twice the home addresses that have one -- those
        with a binding (``home_addresses``) and those only stale ones -- by more than
        ``SLACK``: deadlines moved earlier again and again. (Not deregistrations: a node
        gone leaves one item, which drops when it surfaces, at no more cost per call than
        any other; counted as a live one, a mass deregistration does not make the next
        registration start a drain.)"""
        return len(self._heap) + len(self._old) > 2 * (home_addresses + self._odd_n) + self.SLACK

    def draining(self) -> bool:
        """Whether a drain is under way (module docstring)."""
        return bool(self._old)

    def tidy(self, home_addresses: int) -> int:
        """After a push (``home_addresses``: those with a binding): drain at most
        ``DRAIN`` items of the heap set aside; when none is (left) and
        :meth:`needs_drain`, set the heap aside, to be drained from the next push on
        (so that the bound holds whenever no drain is under way). Returns how many
        items were drained: at most ``DRAIN``, however many there are."""
        work = self._drain() if self._old else 0
        if not self._old and self.needs_drain(home_addresses):
            self._set_aside()
        return work

    def _set_aside(self) -> None:
        """Begin a drain: the heap becomes ``_old``, new items go to an empty one."""
        self._old, self._heap = self._heap, []

    def _drain(self) -> int:
        """Move at most ``DRAIN`` items from the end of ``_old`` into ``_heap``, dropping
        the stale ones as ``_settle`` does."""
        old, heap, odds = self._old, self._heap, self._odd
        pop, push, m32 = old.pop, _push, _M32
        n = min(self.DRAIN, len(old))
        for _ in range(n):
            item = pop()
            hoa = item & m32
            odd = odds[hoa % _SHARDS]
            state = odd.get(hoa) if odd else None
            if state is not None:
                live, stale = state
                if item >> 32 != live:  # a stale item
                    if stale > 1:
                        odd[hoa] = (live, stale - 1)
                    else:
                        del odd[hoa]
                        self._odd_n -= 1
                    continue
            push(heap, item)
        return n

    def bound(self, hoa: int, deadline: float | None) -> None:
        """``hoa``, which had no binding, has one now, due at ``deadline``."""
        key = deadline_key(deadline)
        _push(self._heap, key << 32 | hoa)
        odd = self._odd[hoa % _SHARDS]
        if odd:
            state = odd.get(hoa)
            if state is not None:  # stale items of bindings it had before
                odd[hoa] = (key, state[1])

    def moved(self, hoa: int, was: float | None, deadline: float | None) -> None:
        """``hoa``'s deadline, ``was``, is ``deadline`` now (it had a binding, and has)."""
        if deadline is None or (was is not None and deadline >= was):
            return  # the live item is no later than ``was``: it surfaces first
        key = deadline_key(deadline)
        odd = self._odd[hoa % _SHARDS]
        state = odd.get(hoa) if odd else None
        if state is None:
            odd[hoa] = (key, 1)  # the live item, somewhere before ``was``, is stale now
            self._odd_n += 1
        else:
            live, stale = state
            if live is not None and live <= key:
                return  # known: the live item is no later
            odd[hoa] = (key, stale + 1)
        _push(self._heap, key << 32 | hoa)

    def unbound(self, hoa: int) -> None:
        """``hoa`` has no binding any more (removed, not expired by :meth:`pop_due`): its
        live item is stale."""
        odd = self._odd[hoa % _SHARDS]
        state = odd.get(hoa)
        if state is None:
            odd[hoa] = (None, 1)
            self._odd_n += 1
        elif state[0] is not None:
            odd[hoa] = (None, state[1] + 1)

    def _settle(self, current: Current, expire: Expire | None) -> float | None:
        """Pop the earliest item: drop it if stale, move it on to its home address's
        current deadline if that is later, else (``expire`` given) expire what is due at
        it. Returns the deadline expired at, if any. (The earliest of both heaps: a
        drain may be under way; an item pushed goes to ``_heap``.)"""
        heap, old = self._heap, self._old
        item = _pop(old if old and (not heap or old[0] < heap[0]) else heap)
        key, hoa = item >> 32, item & _M32
        odd = self._odd[hoa % _SHARDS]
        state = odd.get(hoa) if odd else None
        stale = 0
        if state is not None:
            live, stale = state
            if key != live:  # a stale item
                if stale > 1:
                    odd[hoa] = (live, stale - 1)
                else:
                    del odd[hoa]  # one live item left (or none, and no binding)
                    self._odd_n -= 1
                return None
        due: float | None = None
        deadline = current(hoa)
        if deadline is None:  # (not reached: a live item's home address has a binding)
            live = None
        else:
            live = deadline_key(deadline)
            if live == key and expire is not None:
                due = deadline
                deadline = expire(hoa, deadline)
                live = None if deadline is None else deadline_key(deadline)
            if live is not None:
                _push(heap, live << 32 | hoa)
        if stale:
            odd[hoa] = (live, stale)
        return due

    def peek(self, current: Current) -> float | None:
        """The earliest deadline (``None``: none, or none finite)."""
        heap, old, odds = self._heap, self._old, self._odd  # (no push starts a drain here)
        budget = self.PEEK_BUDGET
        while True:
            if old and (not heap or old[0] < heap[0]):
                item = old[0]
            elif heap:
                item = heap[0]
            else:
                return None
            key = item >> 32
            if key >= INFINITE:
                return None  # (every item is infinite)
            hoa = item & _M32
            odd = odds[hoa % _SHARDS]
            if not odd or (state := odd.get(hoa)) is None or state[0] == key:
                deadline = current(hoa)
                if deadline is not None and deadline_key(deadline) == key:
                    return deadline
            if budget == 0:
                return _deadline(key)  # no later than the true next expiry
            budget -= 1
            self._settle(current, None)  # stale or moved on: not due (that returned above)

    def pop_due(
        self, now: float, current: Current, expire: Expire, limit: int | None = None
    ) -> None:
        """Expire (through ``expire``) what is due at ``now``; with ``limit``, at most that
        many items are handled (some may be stale or moved on): call again while
        :meth:`peek` answers a time not after ``now``."""
        before = (deadline_key(now) + 1) << 32
        work = 0
        while limit is None or work < limit:
            # (read each time: ``expire`` is the store's, which might push and drain)
            heap, old = self._heap, self._old
            if old and (not heap or old[0] < heap[0]):
                first = old[0]
            elif heap:
                first = heap[0]
            else:
                return
            if first >= before:
                return
            work += 1
            self._settle(current, expire)

    def clear(self) -> None:
        self._heap.clear()
        self._old.clear()
        for odd in self._odd:
            odd.clear()
        self._odd_n = 0
