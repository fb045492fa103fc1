"""A table of mobility security associations for many nodes: CSV text (issue 13).

Theory of operation
-------------------
A home agent serving a million mobile nodes holds a million MN-HA security associations
(RFC 5944 §1.6, §3.5.1). One TOML table each is too slow to load and too large to read
(the daemon reads at most 1 MiB of TOML); this is the format meant for them: comma-separated
values, one association per line, referenced from the configuration
(``[subscribers] file = "subscribers.csv"``)::

    # peer, SPI, key (hex); optional columns after these
    peer,spi,key
    10.0.1.16,65536,00112233445566778899aabbccddeeff
    10.0.1.17,65537,0123456789abcdef0123456789abcdef

The first line that is neither blank nor a ``#`` comment names the columns: ``peer``,
``spi`` and ``key`` are required; ``algorithm`` (``hmac-md5`` or ``keyed-md5``), ``replay``
(``timestamps`` or ``nonces``), ``replay_tolerance`` (seconds) and ``spi_covered``
(``true``/``false``) are optional, as in ``[[security_associations]]``, whose defaults an
absent column takes. ``peer`` is an IPv4 address (a mobile node's home address, an agent's
address), ``spi`` 256..4294967295, ``key`` hexadecimal (``:`` allowed). Every error names
the source and the line: ``subscribers.csv:12: spi: SPI 12 is reserved ...``. This module
parses text; reading the file (with its size limit) is the daemon's part.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from ipaddress import IPv4Address
from typing import overload

from .sa import (
    DEFAULT_REPLAY_TOLERANCE,
    Algorithm,
    ReplayMethod,
    SecurityAssociation,
    SecurityAssociations,
    check_spi,
)
from .sa_rows import TableRows

REQUIRED = ("peer", "spi", "key")
OPTIONAL = ("algorithm", "replay", "replay_tolerance", "spi_covered")
_ALGORITHMS = {"hmac-md5": Algorithm.HMAC_MD5, "keyed-md5": Algorithm.KEYED_MD5}
_REPLAY = {m.value: m for m in ReplayMethod}
_BOOLS = {"true": True, "false": False}
_HEX = frozenset("0123456789abcdefABCDEF")


class TableError(ValueError):
    """A line of the table that is not an association (the message names source and line)."""


def _key(text: str) -> bytes:
    digits = text.replace(":", "").strip()
    if not digits:
        raise ValueError("empty key")
    if not _HEX.issuperset(digits):
        raise ValueError("not hexadecimal")
    if len(digits) % 2:
        raise ValueError(f"odd number of hexadecimal digits ({len(digits)})")
    return bytes.fromhex(digits)


#: a dotted quad as :class:`~ipaddress.IPv4Address` accepts it (decimal octets 0-255, no
#: leading zero)
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED = re.compile(r"\.".join([_OCTET] * 4) + r"\Z", re.ASCII)


def _address(text: str) -> IPv4Address:
    """``IPv4Address(text)``, a usual dotted quad read without the module's per-octet
    parse (a million rows: ~5 -> ~1 us); anything else goes to ``IPv4Address`` itself, for
    its answer or its error."""
    m = _DOTTED.match(text)
    if m is None:
        return IPv4Address(text)
    a, b, c, d = m.groups()
    return IPv4Address(int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d))


def _choice(table: Mapping[str, object], text: str) -> object:
    value = table.get(text.strip().lower())
    if value is None:
        raise ValueError(f"{text.strip()!r} is not one of {', '.join(table)}")
    return value


def _lines(text: str, block: int = 1 << 16) -> Iterator[str]:
    """``text.splitlines()``, a block at a time: a million-line table is not a million
    strings at once (issue 13: the parse's peak stays in the daemon's RSS). Blocks end
    just after a ``\\n``, so the lines are ``splitlines``' own."""
    start, end = 0, len(text)
    while start < end:
        cut = text.find("\n", start + block)
        stop = end if cut < 0 else cut + 1
        yield from text[start:stop].splitlines()
        start = stop


def parse_table(text: str, source: str) -> Iterator[tuple[int, IPv4Address, SecurityAssociation]]:
    """(line number, peer, association) for each association of the CSV ``text``;
    :class:`TableError` (``"<source>:<line>: <column>: ..."``) for the first bad line."""
    columns: list[str] | None = None
    usual = False
    for number, line in enumerate(_lines(text), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        cells = [c.strip() for c in stripped.split(",")]
        if columns is None:
            columns = [c.lower() for c in cells]
            unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
            missing = [c for c in REQUIRED if c not in columns]
            if unknown or missing or len(set(columns)) != len(columns):
                why = (
                    f"unknown column {unknown[0]!r}"
                    if unknown
                    else f"missing column {missing[0]!r}"
                    if missing
                    else "a column named twice"
                )
                raise TableError(
                    f"{source}:{number}: header: {why} (columns: {', '.join(REQUIRED)}, "
                    f"optionally {', '.join(OPTIONAL)})"
                )
            usual = columns == list(REQUIRED)
            continue
        if len(cells) != len(columns):
            raise TableError(
                f"{source}:{number}: {len(cells)} values for {len(columns)} columns "
                f"({', '.join(columns)})"
            )
        if usual:  # peer,spi,key: the defaults for the rest (a million rows: no dict each)
            column = "peer"
            try:
                peer = _address(cells[0])
                column = "spi"
                if not cells[1].isdigit():
                    raise ValueError(f"{cells[1]!r} is not a number")
                spi = check_spi(int(cells[1]))
                column = "key"
                key = _key(cells[2])
                column = "spi"
                sa = SecurityAssociation(spi, key)
            except ValueError as e:
                raise TableError(f"{source}:{number}: {column}: {e}") from None
            yield number, peer, sa
            continue
        row = dict(zip(columns, cells, strict=True))
        column = "peer"
        try:
            peer = _address(row["peer"])
            column = "spi"
            if not row["spi"].isdigit():
                raise ValueError(f"{row['spi']!r} is not a number")
            spi = check_spi(int(row["spi"]))
            column = "key"
            key = _key(row["key"])
            column = "algorithm"
            algorithm = _choice(_ALGORITHMS, row["algorithm"]) if "algorithm" in row else None
            column = "replay"
            replay = _choice(_REPLAY, row["replay"]) if "replay" in row else None
            column = "replay_tolerance"
            tolerance = (
                float(row["replay_tolerance"])
                if "replay_tolerance" in row
                else DEFAULT_REPLAY_TOLERANCE
            )
            if not tolerance >= 0:  # also NaN
                raise ValueError(f"{tolerance} must be >= 0")
            column = "spi_covered"
            covered = _choice(_BOOLS, row["spi_covered"]) if "spi_covered" in row else True
            column = "spi"
            sa = SecurityAssociation(
                spi,
                key,
                algorithm if isinstance(algorithm, Algorithm) else Algorithm.HMAC_MD5,
                replay if isinstance(replay, ReplayMethod) else ReplayMethod.TIMESTAMPS,
                tolerance,
                covered is True,
            )
        except ValueError as e:
            raise TableError(f"{source}:{number}: {column}: {e}") from None
        yield number, peer, sa
    if columns is None:
        raise TableError(f"{source}: no header line ({', '.join(REQUIRED)}, ...)")


def add_rows(
    text: str, source: str, store: SecurityAssociations
) -> Iterator[tuple[int, IPv4Address, SecurityAssociation]]:
    """Add each association of ``text`` to ``store`` as it is read -- a row of its
    :class:`~mip4.security.sa_rows.TableRows` (columns, ~40 bytes a row; made here, sized
    for the lines of ``text``, when the store has none) -- and give it with its line
    number; a (peer, SPI) already there is a :class:`TableError` naming the line. Nothing
    is kept per row here (a million rows: no list of them beside the store)."""
    if store.table is None:
        store.attach(TableRows(expected=text.count("\n") + 1))
    for number, peer, sa in parse_table(text, source):
        try:
            store.add_row(peer, sa)
        except ValueError as e:
            raise TableError(f"{source}:{number}: {e}") from None
        yield number, peer, sa


def load_table(
    text: str, source: str, store: SecurityAssociations
) -> list[tuple[int, IPv4Address, SecurityAssociation]]:
    """Add every association of ``text`` to ``store`` (:func:`add_rows`); returns what was
    added, with line numbers."""
    return list(add_rows(text, source, store))


Pair = tuple[IPv4Address, SecurityAssociation]


class Associations(Sequence[Pair]):
    """A configuration's (peer, association) pairs in file order: the TOML ones as pairs,
    then a subscriber table's rows as the :class:`~mip4.security.sa_rows.TableRows` the
    store was given (shared, never changed: ~40 bytes a row rather than a pair, an address
    and an association, ~360 bytes; issue 13: a million rows). Reading a row makes its
    address and association. Compares equal to any sequence of the same pairs (a tuple
    included). ``peers`` and ``sas`` (two columns of equal length) make the table."""

    __slots__ = ("_pairs", "_table")

    def __init__(
        self,
        pairs: Iterable[Pair] = (),
        peers: array[int] | None = None,
        sas: list[SecurityAssociation] | None = None,
        *,
        table: TableRows | None = None,
    ) -> None:
        self._pairs: tuple[Pair, ...] = tuple(pairs)
        if peers is not None or sas is not None:
            if table is not None:
                raise ValueError("either peers and associations or a table")
            peers = peers if peers is not None else array("I")
            sas = sas if sas is not None else []
            if len(peers) != len(sas):
                raise ValueError("peers and associations differ in length")
            table = TableRows.of(zip(peers, sas, strict=True))
        self._table: TableRows = table if table is not None else TableRows()

    @property
    def pairs(self) -> tuple[Pair, ...]:
        """The TOML associations (not the table's)."""
        return self._pairs

    @property
    def table(self) -> TableRows | None:
        """The subscriber table's rows (``None``: none)."""
        return self._table if len(self._table) else None

    def __len__(self) -> int:
        return len(self._pairs) + len(self._table)

    @overload
    def __getitem__(self, index: int) -> Pair: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Pair, ...]: ...

    def __getitem__(self, index: int | slice) -> Pair | tuple[Pair, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("association index out of range")
        first = len(self._pairs)
        if index < first:
            return self._pairs[index]
        row = index - first
        return IPv4Address(self._table.peer(row)), self._table.association(row)

    def __iter__(self) -> Iterator[Pair]:
        yield from self._pairs
        for peer, sa in self._table:
            yield IPv4Address(peer), sa

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Associations):
            return self._pairs == other._pairs and self._table == other._table
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._pairs, len(self._table)))

    def __repr__(self) -> str:
        return f"Associations({len(self._pairs)} pairs, {len(self._table)} table rows)"


__all__ = [
    "OPTIONAL",
    "REQUIRED",
    "Associations",
    "Pair",
    "TableError",
    "add_rows",
    "load_table",
    "parse_table",
]
