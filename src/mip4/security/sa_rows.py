"""A subscriber table's security associations kept as fixed-size records (issue 13).

Theory of operation
-------------------
A home agent serving a million mobile nodes holds a million MN-HA associations, nearly all
from one subscriber table (:mod:`mip4.security.sa_table`). As objects -- an association
(88 bytes), its key (49), its SPI (28), the peer's integer (32) and a dict entry (52) --
they cost ~250 bytes each, a quarter of a gigabyte for the table alone. :class:`TableRows`
keeps them as records of one byte string instead: peer and SPI as 32-bit integers, the
algorithm, replay method and SPI coverage as bits of one byte, the key's length and the key
itself, padded to the longest key up to 64 bytes (a longer key is kept aside, as is a replay
tolerance other than the default) -- and an open-addressing index by peer of 32-bit row
numbers. About 40 bytes a row with 16-byte keys, nothing for the garbage collector to walk,
and a lookup reads two places in memory (the index slot and the record), not six columns.

A row is read back as a :class:`~mip4.security.sa.SecurityAssociation` made when it is
asked for (``association(row)``: equal to the one parsed, filled through the slots with no
second check, ~0.5 us); the last one made is given again while the same row is asked for
(a home agent checks a request and signs its reply with one association). The home
agent's renewal fast path reads a row as its fields instead (``fields(row)``, a
:class:`RowAssociation`: a tuple made in one call, read by the same names, its HMAC-MD5 key
absorbed into the keyed states as it is read, for the request's check and the reply's
signature): no seven slots filled and no lookup in the table of the last keys used, ~2.5 us
less a renewal (issue 13: 1 M bindings in a random order, 55-56 k -> 63-64 k renewals/s in
``mip4 bench engine``). Rows are only ever appended: the table is a parse's result,
compared as a whole by a reload, and shared between the configuration and the store it
built. What a store later removes or replaces it records on its own side
(:class:`~mip4.security.sa.SecurityAssociations`), never here.

The index hashes the peer alone (Fibonacci hashing of the 32-bit address), so every row of
a peer -- one per SPI -- is on one probe run: ``find`` (peer, SPI) and ``rows_of`` (peer)
walk it to the first empty slot. It holds at most half its slots, and is sized from the
expected row count when one is given (a parse counts the lines first), so a million rows
are indexed without rehashing.

A table appended in increasing peer order (one SPI a peer: a subscriber table sorted by
home address, the usual way one is made) is also kept as *runs* of consecutive peers in
consecutive rows -- the first peer and the first row of each, two small arrays -- while
its runs are few (at most ``RUNS_FREE``, or ``RUNS_ROWS`` rows a run on average): then
``find`` computes the row (a bisection over the runs' first peers, in cache) and reads
only the record, not the index slot first -- one place in memory instead of two, a cache
and TLB miss fewer at a million rows in a random order (issue 13: ~0.4 us a lookup); and
``first_row`` (a peer's first row, which a home agent asks of every relaying agent's
address) computes it too, and walks no probe run. The first append out of that order (a
peer not above the last, a second SPI of a peer) or past that bound drops the runs for
good; the index answers alone, as before.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import fields
from operator import itemgetter
from typing import Any, NamedTuple

from .sa import (
    DEFAULT_REPLAY_TOLERANCE,
    Algorithm,
    ReplayMethod,
    SecurityAssociation,
    _authenticator,
    _keyed_hmac_md5,
)

__all__ = ["RowAssociation", "TableRows"]

_new = object.__new__
#: the slot setters of SecurityAssociation's fields, in field order (a row read back is
#: filled before anyone sees it; its values were checked when the row was parsed)
(
    _s_spi,
    _s_key,
    _s_algorithm,
    _s_replay,
    _s_tolerance,
    _s_covered,
    _s_keyed,
) = (SecurityAssociation.__dict__[f.name].__set__ for f in fields(SecurityAssociation))

#: bits of a row's flags byte
_KEYED_MD5 = 1
_NONCES = 2
_SPI_NOT_COVERED = 4
_HMAC_MD5, _KEYED = Algorithm.HMAC_MD5, Algorithm.KEYED_MD5
_TIMESTAMPS, _NONCE_REPLAY = ReplayMethod.TIMESTAMPS, ReplayMethod.NONCES
#: a record's head: peer, SPI, flags, (pad), key length; the key follows, padded
_HEAD = struct.Struct("<IIBxH")
_PEER_SPI = struct.Struct("<II").unpack_from
_SPI_AT = struct.Struct("<I").unpack_from
_HEAD_AT = _HEAD.unpack_from
#: keys up to this long are in the record (the record grows to the longest); longer ones
#: are kept aside
_KEY_IN_RECORD = 64
#: Fibonacci hashing's multiplier for 32 bits (2**32 / golden ratio)
_GOLDEN = 0x9E3779B1
_U32 = 0xFFFFFFFF


class _RowFields(NamedTuple):
    spi: int
    key: bytes
    algorithm: Algorithm
    replay: ReplayMethod
    replay_tolerance: float
    spi_covered: bool
    #: HMAC-MD5's keyed states (:func:`mip4.security.sa._keyed_hmac_md5`), absorbed as
    #: the row was read (``None``: keyed MD5, or read without them)
    keyed: Any


class RowAssociation(_RowFields):
    """A row's association as a tuple of its fields, for one check and one signature
    (:meth:`TableRows.fields`): made in one call where a
    :class:`~mip4.security.sa.SecurityAssociation` has seven slots filled, and read
    the same way (the fields by name, :meth:`authenticator`). Not an association: it is
    not kept, stored or compared (a tuple: its keyed states compare by identity;
    :meth:`TableRows.association` gives what is)."""

    __slots__ = ()

    #: (what ``authenticator`` reads, as of an association)
    _keyed = property(itemgetter(6))
    #: the authenticator of ``data`` (the exact covered bytes), as the association's
    authenticator = _authenticator


_row_association = tuple.__new__


class TableRows:
    """Security associations as fixed-size records, in the order they were appended,
    indexed by peer (module docstring). Peers are IPv4 addresses as integers."""

    __slots__ = (
        "_index",
        "_last",
        "_last_peer",
        "_long",
        "_mask",
        "_records",
        "_rows",
        "_run_peers",
        "_run_rows",
        "_shift",
        "_stride",
        "_tolerances",
        "_width",
        "highest",
        "lowest",
    )

    #: runs kept whatever the rows (module docstring)
    RUNS_FREE = 16
    #: beyond ``RUNS_FREE``, the fewest rows a run on average for the runs to be kept
    RUNS_ROWS = 64

    def __init__(self, expected: int = 0) -> None:
        #: the records end to end (bytes once read, so a key is a slice of them)
        self._records: bytearray | bytes = bytearray()
        self._rows = 0
        #: key room in a record, and a record's size
        self._width = 16
        self._stride = _HEAD.size + 16
        #: the keys longer than a record holds, and replay tolerances other than the
        #: default, by row
        self._long: dict[int, bytes] = {}
        self._tolerances: dict[int, float] = {}
        #: (row, association) last made by :meth:`association`
        self._last: tuple[int, SecurityAssociation] | None = None
        #: the runs (module docstring): first peer and first row of each, in row order and
        #: so in peer order; ``None`` once the rows left increasing peer order
        self._run_peers: array[int] | None = array("I")
        self._run_rows: array[int] = array("I")
        #: the peer last appended (-1: none yet)
        self._last_peer = -1
        #: the lowest and the highest peer of the rows (none: no peer is within them), for
        #: a caller to skip a lookup cheaply (SecurityAssociations.first_for: a care-of
        #: address outside the subscribers' range, in every renewal)
        self.lowest = 1 << 32
        self.highest = -1
        bits = 3
        while (1 << bits) < 2 * expected:
            bits += 1
        self._size(bits)

    def _size(self, bits: int) -> None:
        self._index = array("I", bytes(4 << bits))  # 0: empty; else row + 1
        self._mask = (1 << bits) - 1
        self._shift = 32 - bits

    def __len__(self) -> int:
        return self._rows

    def _writable(self) -> bytearray:
        records = self._records
        if type(records) is bytes:  # (read since the last append: one copy back)
            records = self._records = bytearray(records)
        return records  # type: ignore[return-value]

    def _widen(self, width: int) -> None:
        """Records with room for keys of ``width`` bytes (the rows copied over)."""
        old, stride = self._records, self._stride
        new_stride = _HEAD.size + width
        pad = bytes(width - self._width)
        records = bytearray()
        for row in range(self._rows):
            records += old[row * stride : (row + 1) * stride]
            records += pad
        self._records, self._width, self._stride = records, width, new_stride
        self._last = None

    def append(self, peer: int, sa: SecurityAssociation) -> int:
        """Add ``sa`` as the association of ``peer`` (not checked against the rows
        already here: the caller knows whether ``(peer, sa.spi)`` is new); its row."""
        row = self._rows
        key = sa.key
        n = len(key)
        if self._width < n <= _KEY_IN_RECORD:
            self._widen(n)
        records = self._writable()
        flags = (
            (_KEYED_MD5 if sa.algorithm is Algorithm.KEYED_MD5 else 0)
            | (_NONCES if sa.replay is ReplayMethod.NONCES else 0)
            | (0 if sa.spi_covered else _SPI_NOT_COVERED)
        )
        records += _HEAD.pack(peer, sa.spi, flags, n)
        if n > _KEY_IN_RECORD:
            self._long[row] = key
            records += bytes(self._width)
        else:
            records += key
            if n < self._width:
                records += bytes(self._width - n)
        if sa.replay_tolerance != DEFAULT_REPLAY_TOLERANCE:
            self._tolerances[row] = sa.replay_tolerance
        self._rows = row + 1
        if peer < self.lowest:
            self.lowest = peer
        if peer > self.highest:
            self.highest = peer
        runs = self._run_peers
        if runs is not None:
            if peer <= self._last_peer:  # out of order, or a peer's second SPI
                self._drop_runs()
            elif not runs or peer != self._last_peer + 1:  # a new run
                if len(runs) >= self.RUNS_FREE and (len(runs) + 1) * self.RUNS_ROWS > row + 1:
                    self._drop_runs()
                else:
                    runs.append(peer)
                    self._run_rows.append(row)
            self._last_peer = peer
        if 2 * (row + 1) > len(self._index):
            self._size(33 - self._shift)
            for r in range(row + 1):
                self._place(r, self.peer(r))
        else:
            self._place(row, peer)
        return row

    def _drop_runs(self) -> None:
        """The rows are not (or no longer few) runs of consecutive peers: the index alone
        finds them from now on."""
        self._run_peers = None
        self._run_rows = array("I")

    @property
    def runs(self) -> int | None:
        """How many runs of consecutive peers the rows are (``None``: not kept, the index
        alone finds rows; module docstring)."""
        return None if self._run_peers is None else len(self._run_peers)

    def _place(self, row: int, peer: int) -> None:
        index, mask = self._index, self._mask
        slot = ((peer * _GOLDEN) & _U32) >> self._shift
        while index[slot]:
            slot = (slot + 1) & mask
        index[slot] = row + 1

    def peer(self, row: int) -> int:
        """Row ``row``'s peer."""
        return _PEER_SPI(self._records, row * self._stride)[0]  # type: ignore[no-any-return]

    def _run_row(self, runs: array[int], peer: int) -> int:
        """The row ``peer`` has by the runs (``runs`` is ``_run_peers``, kept); -1 when it is
        in none of them. Only row of the peer: peers strictly increase while runs are kept."""
        k = bisect_right(runs, peer) - 1
        if k < 0:
            return -1
        run_rows = self._run_rows
        r = run_rows[k] + (peer - runs[k])
        # past the run's end: no row has this peer
        return r if r < (run_rows[k + 1] if k + 1 < len(run_rows) else self._rows) else -1

    def find(self, peer: int, spi: int) -> int:
        """The row of ``(peer, spi)``; -1 when there is none."""
        runs = self._run_peers
        if runs is not None:  # the row computed from the runs: only the record is read
            r = self._run_row(runs, peer)
            return r if r >= 0 and _SPI_AT(self._records, r * self._stride + 4)[0] == spi else -1
        index, records, stride, mask = self._index, self._records, self._stride, self._mask
        slot = ((peer * _GOLDEN) & _U32) >> self._shift
        while True:
            r = index[slot]
            if not r:
                return -1
            r -= 1
            if _PEER_SPI(records, r * stride) == (peer, spi):
                return r
            slot = (slot + 1) & mask

    def first_row(self, peer: int) -> int:
        """The first row of ``peer`` (the one appended first); -1 when there is none:
        ``rows_of(peer)[0]``, from the runs when they are kept (a bisection, no list)."""
        runs = self._run_peers
        if runs is not None:
            return self._run_row(runs, peer)
        rows = self.rows_of(peer)
        return rows[0] if rows else -1

    def rows_of(self, peer: int) -> list[int]:
        """The rows of ``peer``, in the order they were appended."""
        index, mask = self._index, self._mask
        slot = ((peer * _GOLDEN) & _U32) >> self._shift
        out: list[int] = []
        while True:
            r = index[slot]
            if not r:
                return sorted(out)
            if self.peer(r - 1) == peer:
                out.append(r - 1)
            slot = (slot + 1) & mask

    def association(self, row: int) -> SecurityAssociation:
        """Row ``row`` as an association (equal to the one appended)."""
        last = self._last
        if last is not None and last[0] == row:
            return last[1]
        spi, key, algorithm, replay, tolerance, covered, _ = self.fields(row, keyed=False)
        sa = _new(SecurityAssociation)
        _s_spi(sa, spi)
        _s_key(sa, key)
        _s_algorithm(sa, algorithm)
        _s_replay(sa, replay)
        _s_tolerance(sa, tolerance)
        _s_covered(sa, covered)
        _s_keyed(sa, None)
        self._last = (row, sa)
        return sa

    def fields(self, row: int, keyed: bool = True) -> RowAssociation:
        """Row ``row``'s fields (:class:`RowAssociation`): equal, field by field, to
        ``association(row)``'s; with an HMAC-MD5 key absorbed into its keyed states
        unless ``keyed`` is false. A home agent computes two authenticators with a
        renewal's row, the request's and the reply's: absorbing the key here once costs
        ~1.5 us less a renewal than the table of the last keys used (issue 13)."""
        records = self._records
        if type(records) is not bytes:  # appended to since the last read: one copy, to bytes
            records = self._records = bytes(records)
        at = row * self._stride
        _, spi, flags, n = _HEAD_AT(records, at)
        key = self._long[row] if n > _KEY_IN_RECORD else records[at + 12 : at + 12 + n]
        tolerances = self._tolerances
        tolerance = DEFAULT_REPLAY_TOLERANCE
        if tolerances:
            tolerance = tolerances.get(row, tolerance)
        states = _keyed_hmac_md5(key) if keyed and not flags & _KEYED_MD5 else None
        if not flags:
            return _row_association(
                RowAssociation, (spi, key, _HMAC_MD5, _TIMESTAMPS, tolerance, True, states)
            )
        return _row_association(
            RowAssociation,
            (
                spi,
                key,
                _KEYED if flags & _KEYED_MD5 else _HMAC_MD5,
                _NONCE_REPLAY if flags & _NONCES else _TIMESTAMPS,
                tolerance,
                not flags & _SPI_NOT_COVERED,
                states,
            ),
        )

    def __iter__(self) -> Iterator[tuple[int, SecurityAssociation]]:
        """(peer, association) of every row, in order."""
        for row in range(self._rows):
            yield self.peer(row), self.association(row)

    @classmethod
    def of(cls, pairs: Iterable[tuple[int, SecurityAssociation]]) -> TableRows:
        """The rows of ``pairs`` ((peer, association)), in order."""
        rows = cls()
        for peer, sa in pairs:
            rows.append(peer, sa)
        return rows

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableRows):
            return NotImplemented
        return (
            self._rows == other._rows
            and self._width == other._width
            and self._records == other._records
            and self._long == other._long
            and self._tolerances == other._tolerances
        )

    def __hash__(self) -> int:
        return hash(self._rows)

    def __repr__(self) -> str:
        return f"TableRows({self._rows} rows)"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self).of, (list(self),))
