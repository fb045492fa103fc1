"""Bindings that survive a restart: the engines' tables in one SQLite file (WAL mode).

Theory of operation
-------------------
:class:`SqliteStore` opens (or creates) one database file and offers the engines the
stores they already take (:mod:`mip4.core.bindings`):

* :attr:`SqliteStore.bindings` -- the home agent's :class:`~mip4.core.bindings.BindingStore`,
  which is also a :class:`~mip4.core.bindings.HomeAgentStateStore`: the replay state of
  each mobile node and the NAI assignments (RFC 5944 §5.7, RFC 2794 §2); and (schema 2)
  the MN-HA keys the home AAA server gave to nodes known by their NAI (RFC 3957, table
  ``mn_ha_keys``: :meth:`SqliteBindingStore.put_mn_ha_key` and the rest -- the home
  agent engine does not write or restore them yet);
* :attr:`SqliteStore.visitors` -- the foreign agent's
  :class:`~mip4.core.bindings.VisitorStore`.

Each is a write-through cache: reads and expiry come from the in-memory store of
:mod:`mip4.core.bindings` (the engines' speed does not change), every change is also
written to the file. A change is first kept as the row it will write (or the key it
will delete), one per row key, so that a binding renewed twice before a commit is
written once; :meth:`SqliteStore.commit` writes what is pending in one transaction (one
multi-row statement per table and kind: one SQLite step each) and ends it.
:meth:`SqliteStore.start_commit` does the same in the store's writer thread and returns
at once (the daemon's group commit, :mod:`mip4.store.pipeline`): SQLite leaves Python's
lock while it writes and syncs, so the event loop runs on. The daemon commits after the engine
calls of one wakeup and **before** it carries out their actions (the replies among
them), so a reply never announces a registration that is not on disk (group commit:
:class:`mip4.daemon.driving.TimedDriver`). ``synchronous = "full"`` (the default) syncs the
write-ahead log at each commit (a power loss keeps it); ``"normal"`` leaves that to the
kernel (a killed daemon keeps it, a power loss may not).

Addresses are stored as 32-bit integers and the tables are ``WITHOUT ROWID`` (one B-tree
per table, keyed by what the engines key them by): half the cost per write of text keys.

Times: the engines' deadlines are on the monotonic clock of one process; the file holds
Unix times (``monotonic + clock_offset``, the engines' own ``clock_offset``), turned back
with the new process's offset when loaded. Nothing is dropped at load time: expired rows
come back and the engine's ``restore(now)`` removes them (and deletes their rows).

The file is checked before anything else: a file SQLite cannot read (truncated, not a
database), one that fails ``PRAGMA quick_check``, one of another application
(``application_id``) or of a newer schema version (``user_version`` above
:data:`SCHEMA_VERSION`) raises :class:`StoreError` naming the file, and the file is left
as it is. A file of an older schema passes the checks of its own version and is then
brought up to :data:`SCHEMA_VERSION` in one transaction (tables added, no row dropped).
A missing file is created complete under a temporary name and then linked into place,
so a crash during creation leaves no half-made store behind. The database is
opened in exclusive locking mode: a second daemon on the same file fails to start.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

from mip4.core.actions import Encapsulation
from mip4.core.bindings import (
    InMemoryBindingStore,
    InMemoryVisitorStore,
    MobilityBinding,
    Visitor,
)
from mip4.errors import Mip4Error
from mip4.security.replay import ReplayState
from mip4.security.sa import Algorithm, ReplayMethod, SecurityAssociation
from mip4.wire.messages import RegistrationFlags

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "SYNCHRONOUS",
    "SqliteBindingStore",
    "SqliteStore",
    "SqliteVisitorStore",
    "StoreError",
    "check_store_file",
]

#: ``PRAGMA application_id`` of a mip4 store: "mip4" in ASCII.
APPLICATION_ID = 0x6D697034
#: ``PRAGMA user_version``: the schema this code writes. A file with a higher number was
#: written by a newer mip4 and is refused (never rewritten); one with a lower number is
#: brought up to this one when the daemon opens it (:data:`_MIGRATIONS`), rows kept.
#: 1: bindings, replay, assignments, visitors; 2: + mn_ha_keys.
SCHEMA_VERSION = 2
#: accepted values of ``[store] synchronous``
SYNCHRONOUS = ("full", "normal")

_SCHEMA_1 = (
    """CREATE TABLE bindings (
        home_address INTEGER NOT NULL,
        care_of_address INTEGER NOT NULL,
        lifetime INTEGER NOT NULL,
        registered_at REAL NOT NULL,
        expires REAL,
        identification INTEGER NOT NULL,
        flags INTEGER NOT NULL,
        encapsulation INTEGER NOT NULL,
        reverse_tunnel INTEGER NOT NULL,
        source INTEGER,
        PRIMARY KEY (home_address, care_of_address)
    ) WITHOUT ROWID""",
    """CREATE TABLE replay (
        kind TEXT NOT NULL CHECK (kind IN ('address', 'nai')),
        identity TEXT NOT NULL,
        last_accepted INTEGER,
        nonce INTEGER,
        PRIMARY KEY (kind, identity)
    ) WITHOUT ROWID""",
    """CREATE TABLE assignments (
        nai TEXT PRIMARY KEY,
        home_address INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE visitors (
        home_address INTEGER PRIMARY KEY,
        interface TEXT NOT NULL,
        link_address BLOB,
        ip_source INTEGER NOT NULL,
        ip_destination INTEGER NOT NULL,
        udp_source_port INTEGER NOT NULL,
        home_agent INTEGER NOT NULL,
        care_of_address INTEGER NOT NULL,
        identification INTEGER NOT NULL,
        requested_lifetime INTEGER NOT NULL,
        lifetime INTEGER NOT NULL,
        expires REAL,
        flags INTEGER NOT NULL,
        reverse_tunnel INTEGER NOT NULL,
        encapsulation INTEGER NOT NULL,
        encapsulating_delivery INTEGER NOT NULL,
        nai TEXT
    ) WITHOUT ROWID""",
)
_MN_HA_KEYS = """CREATE TABLE mn_ha_keys (
        nai TEXT PRIMARY KEY,
        spi INTEGER NOT NULL,
        key BLOB NOT NULL,
        algorithm INTEGER NOT NULL,
        replay TEXT NOT NULL,
        replay_tolerance REAL NOT NULL,
        spi_covered INTEGER NOT NULL
    ) WITHOUT ROWID"""
_SCHEMA = (*_SCHEMA_1, _MN_HA_KEYS)
#: the statements that bring a file of schema version ``v`` to ``v + 1`` (in one
#: transaction with the new ``user_version``; nothing is dropped)
_MIGRATIONS: dict[int, tuple[str, ...]] = {1: (_MN_HA_KEYS,)}
#: the tables a file of each schema version has
_TABLES_OF = {
    1: frozenset({"bindings", "replay", "assignments", "visitors"}),
    2: frozenset({"bindings", "replay", "assignments", "visitors", "mn_ha_keys"}),
}
_TABLES = _TABLES_OF[SCHEMA_VERSION]

#: per table: its columns, and how many leading ones make a row's key
_COLUMNS: dict[str, tuple[int, tuple[str, ...]]] = {
    "bindings": (10, ("home_address", "care_of_address")),
    "replay": (4, ("kind", "identity")),
    "assignments": (2, ("nai",)),
    "visitors": (17, ("home_address",)),
    "mn_ha_keys": (7, ("nai",)),
}
_KEY_LENGTH = {table: len(key) for table, (_, key) in _COLUMNS.items()}
#: rows per statement at most (and no more parameters than the SQLite library allows:
#: 32,766 since 3.32, 999 before)
_ROWS_PER_STATEMENT = 256


@functools.lru_cache(maxsize=512)
def _put_sql(table: str, rows: int) -> str:
    """One statement that writes ``rows`` rows of ``table``: one step for SQLite, and one
    release of Python's lock for the writer thread, instead of one per row."""
    columns, _ = _COLUMNS[table]
    one = "(" + ",".join("?" * columns) + ")"
    return f"INSERT OR REPLACE INTO {table} VALUES " + ",".join([one] * rows)


@functools.lru_cache(maxsize=512)
def _delete_sql(table: str, rows: int) -> str:
    _, key = _COLUMNS[table]
    if len(key) == 1:
        return f"DELETE FROM {table} WHERE {key[0]} IN ({','.join('?' * rows)})"
    one = "(" + ",".join("?" * len(key)) + ")"
    return f"DELETE FROM {table} WHERE ({','.join(key)}) IN (VALUES {','.join([one] * rows)})"


def _chunks(
    rows: list[tuple[object, ...]], max_parameters: int
) -> Iterator[tuple[int, list[object]]]:
    """(row count, their values in one flat list) per statement."""
    per = max(1, min(_ROWS_PER_STATEMENT, max_parameters // max(1, len(rows[0])))) if rows else 1
    for i in range(0, len(rows), per):
        part = rows[i : i + per]
        yield len(part), [v for row in part for v in row]


_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1


def _to_i64(value: int) -> int:
    """A 64-bit unsigned Identification as SQLite's signed INTEGER."""
    return value - _U64 if value > _I64_MAX else value


def _from_i64(value: int) -> int:
    return value + _U64 if value < 0 else value


class StoreError(Mip4Error, OSError):
    """The store file cannot be used; the message names the file (one line)."""


class SqliteStore:
    """One store file; see the module docstring. ``clock_offset``: Unix time = the
    engines' ``now`` + ``clock_offset``."""

    def __init__(
        self, path: str | os.PathLike[str], clock_offset: float, *, synchronous: str = "full"
    ) -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous: {synchronous!r} is not one of {SYNCHRONOUS}")
        self.path = Path(path)
        self.clock_offset = clock_offset
        self.synchronous = synchronous
        if not self.path.exists():
            _create(self.path)
        self._db = _open_checked(self.path, synchronous)
        self._max_parameters = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._in_transaction = False
        #: per table: row key -> the row to write, or None to delete it, at the next commit
        self._pending: dict[str, dict[tuple[object, ...], tuple[object, ...] | None]] = {
            table: {} for table in _COLUMNS
        }
        #: what failed commits of :meth:`start_commit` held, to be pending again
        self._failed: list[dict[str, dict[tuple[object, ...], tuple[object, ...] | None]]] = []
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._inflight: concurrent.futures.Future[None] | None = None
        #: rows written since the store was opened (for the benchmark and status)
        self.writes = 0
        #: commits made since the store was opened
        self.commits = 0
        try:
            self.bindings = SqliteBindingStore(self)
            self.visitors = SqliteVisitorStore(self)
        except (sqlite3.DatabaseError, ValueError, TypeError) as e:
            self._db.close()
            raise StoreError(f"{self.path}: unreadable row: {e}") from None

    # -- transactions ---------------------------------------------------------------------

    def put(self, table: str, row: tuple[object, ...]) -> None:
        """Write ``row`` at the next commit (replacing the row of the same key, and any
        change of that key still pending)."""
        self._pending[table][row[: _KEY_LENGTH[table]]] = row
        self.writes += 1

    def delete(self, table: str, key: tuple[object, ...]) -> None:
        """Delete the row of ``key`` at the next commit."""
        self._pending[table][key] = None
        self.writes += 1

    def _flush(
        self, pending: dict[str, dict[tuple[object, ...], tuple[object, ...] | None]]
    ) -> None:
        """Write ``pending`` into the open transaction (begun here if none is); it stays
        pending until the commit succeeds (writing it again is harmless: each row replaces
        or deletes the row of its key)."""
        if not any(pending.values()):
            return
        db = self._db
        if not self._in_transaction:
            db.execute("BEGIN")
            self._in_transaction = True
        for table, rows in pending.items():
            if not rows:
                continue
            deletes = [key for key, row in rows.items() if row is None]
            for n, values in _chunks(deletes, self._max_parameters):
                db.execute(_delete_sql(table, n), values)
            if len(deletes) < len(rows):
                puts = [row for row in rows.values() if row is not None]
                for n, values in _chunks(puts, self._max_parameters):
                    db.execute(_put_sql(table, n), values)

    def _commit(
        self, pending: dict[str, dict[tuple[object, ...], tuple[object, ...] | None]]
    ) -> None:
        """Write ``pending`` and end the transaction; on an error roll back and raise."""
        try:
            self._flush(pending)
            if self._in_transaction:
                self._db.execute("COMMIT")
                self._in_transaction = False
                self.commits += 1
        except BaseException:
            if self._in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._in_transaction = False
            raise

    def commit(self) -> None:
        """Write what is pending and end the transaction (nothing to do when nothing was
        written), after any commit :meth:`start_commit` began. When that fails the
        transaction is rolled back and what was pending stays pending, for the next
        commit: the file keeps what the last commit wrote."""
        self.wait()
        self._take_back_failed()
        self._commit(self._pending)
        for pending in self._pending.values():
            pending.clear()

    # -- commits off the caller's thread (the daemon's group commit) ----------------------

    def start_commit(self) -> concurrent.futures.Future[None] | None:
        """Begin committing what is pending in the store's writer thread and return at
        once (``None``: nothing to commit); the future is done when it is on disk, or
        holds the error. Changes made meanwhile are pending for the next commit. Commits
        end in the order they began; a failed one's changes are pending again for the
        next (where a later change of the same row wins). SQLite leaves Python's lock
        while it writes and syncs: the caller's thread runs on."""
        self._take_back_failed()
        if not self.dirty:
            return None
        snapshot = self._pending
        self._pending = {table: {} for table in _COLUMNS}
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, "mip4-store")
        self._inflight = self._writer.submit(self._commit_in_background, snapshot)
        return self._inflight

    def _commit_in_background(
        self, snapshot: dict[str, dict[tuple[object, ...], tuple[object, ...] | None]]
    ) -> None:
        try:
            self._commit(snapshot)
        except BaseException:
            self._failed.append(snapshot)  # taken back by the next commit
            raise

    def _take_back_failed(self) -> None:
        while self._failed:
            snapshot = self._failed.pop(0)
            for table, rows in snapshot.items():
                pending = self._pending[table]
                for key, row in rows.items():
                    pending.setdefault(key, row)

    def wait(self) -> None:
        """Wait until the commits :meth:`start_commit` began are done (their errors are
        their futures')."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            concurrent.futures.wait([inflight])

    @property
    def group_commit(self) -> bool:
        """Whether the daemon should commit what one wakeup reads together: when a commit
        syncs the disk (``full``), one sync per registration would bound the rate by the
        disk's flush time; with ``normal`` a commit is cheap and each reply leaves as soon
        as its own registration is committed."""
        return self.synchronous == "full"

    @property
    def dirty(self) -> bool:
        """Writes are waiting for a commit (not counting those a commit in flight has)."""
        if self._failed or any(self._pending.values()):
            return True
        inflight = self._inflight  # its transaction is the writer thread's
        return self._in_transaction and (inflight is None or inflight.done())

    def close(self) -> None:
        """Commit what is pending and close the file."""
        try:
            self.commit()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            self._db.close()

    def rows(self, table: str) -> list[tuple[object, ...]]:
        """Every row of ``table`` (tests, diagnostics)."""
        if table not in _TABLES:
            raise ValueError(f"no table {table!r}")
        return self.query(f"SELECT * FROM {table}")

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Rows of ``sql``, pending writes included (they join the open transaction)."""
        self.wait()
        self._flush(self._pending)
        return list(self._db.execute(sql))

    # -- times ----------------------------------------------------------------------------

    def to_unix(self, t: float | None) -> float | None:
        return None if t is None else t + self.clock_offset

    def from_unix(self, t: float | None) -> float | None:
        return None if t is None else float(t) - self.clock_offset


def _create(path: Path) -> None:
    """A new, empty store at ``path`` (mode 0600): made complete under a temporary name,
    then linked into place (``os.link`` refuses to replace a file that appeared
    meanwhile)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        # readable by the daemon's user only: the file holds keys AAA gave (mn_ha_keys);
        # SQLite gives its -wal and -shm files the same mode
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN")
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        finally:
            db.close()
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"{path}: cannot create the store: {e}") from None
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{tmp}{suffix}")


def _check_file(path: Path) -> None:
    """What is checked before SQLite opens ``path`` (:class:`StoreError`)."""
    try:
        if not path.is_file():
            raise StoreError(f"{path}: not a regular file")
        if path.stat().st_size == 0 and not Path(f"{path}-wal").exists():
            raise StoreError(f"{path}: empty file (truncated?): not a mip4 store")
    except OSError as e:
        raise StoreError(f"{path}: cannot open: {e.strerror or e}") from None


def _check_contents(db: sqlite3.Connection, path: Path) -> None:
    """The read-only checks of an open store (:class:`StoreError` naming ``path``;
    SQLite's own errors pass through)."""
    app = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if app != APPLICATION_ID:
        raise StoreError(
            f"{path}: not a mip4 store (SQLite application_id {app:#x}, "
            f"expected {APPLICATION_ID:#x})"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this mip4 understands "
            f"({SCHEMA_VERSION}); refusing to use or overwrite it"
        )
    if version < 1:
        raise StoreError(f"{path}: schema version {version}: not a complete mip4 store")
    problems = [r[0] for r in db.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise StoreError(f"{path}: corrupt: {problems[0]}")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = _TABLES_OF.get(version, _TABLES) - tables
    if missing:
        raise StoreError(f"{path}: missing tables {sorted(missing)}")


def _sqlite_error(path: Path, e: sqlite3.Error) -> StoreError:
    if isinstance(e, sqlite3.OperationalError):
        if "locked" in str(e):
            return StoreError(f"{path}: in use by another process ({e})")
        return StoreError(f"{path}: cannot read: {e}")
    return StoreError(f"{path}: corrupt or not a database: {e}")


def _open_checked(path: Path, synchronous: str) -> sqlite3.Connection:
    """Open ``path`` and check it is a mip4 store this code can use (:class:`StoreError`
    otherwise; nothing is written to a file that fails a check)."""
    _check_file(path)
    try:
        db = sqlite3.connect(path, timeout=1.0, isolation_level=None, check_same_thread=False)
    except OSError as e:
        raise StoreError(f"{path}: cannot open: {e.strerror or e}") from None
    try:
        # Read-only checks first: nothing below writes before the file is known good.
        _check_contents(db, path)
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{path}: cannot use write-ahead logging (journal mode {mode})")
        db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        # Take the exclusive lock now: a second daemon on this file fails here, at start;
        # a file of an older schema is brought up to this one in the same transaction.
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for v in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[v]:
                db.execute(statement)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except StoreError:
        db.close()
        raise
    except sqlite3.Error as e:
        db.close()
        raise _sqlite_error(path, e) from None
    return db


def check_store_file(path: str | os.PathLike[str]) -> bool:
    """``mip4 <role> --check``: the checks :class:`SqliteStore` makes at start, without
    creating, locking or changing anything (:class:`StoreError` naming the file when the
    daemon would refuse it). ``False`` when there is no file (the daemon will create
    one), ``True`` when it is good.

    The file is read with SQLite's ``immutable`` flag: no lock is taken (a running daemon
    holds its store exclusively) and no ``-wal``/``-shm`` file is made. Changes still in
    the write-ahead log of a daemon that was killed are not in the file itself; when
    there is such a log, a copy of the file and its log in a private temporary directory
    is opened and checked too (SQLite replays the log into the copy)."""
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        return False
    _check_file(p)
    try:
        _check_readonly(p, p.absolute().as_uri() + "?immutable=1")
        wal = Path(f"{p}-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            with tempfile.TemporaryDirectory(prefix="mip4-store-check-") as tmp:
                copy = Path(tmp) / "store.db"
                shutil.copyfile(p, copy)
                shutil.copyfile(wal, f"{copy}-wal")
                _check_readonly(p, copy.as_uri())
    except OSError as e:
        raise StoreError(f"{p}: cannot read: {e.strerror or e}") from None
    return True


def _check_readonly(path: Path, uri: str) -> None:
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as e:
        raise _sqlite_error(path, e) from None
    try:
        _check_contents(db, path)
    except sqlite3.Error as e:
        raise _sqlite_error(path, e) from None
    finally:
        db.close()


# ----------------------------------------------------------------------------------------
# The home agent's tables
# ----------------------------------------------------------------------------------------


class SqliteBindingStore(InMemoryBindingStore):
    """The home agent's mobility bindings, replay state and NAI assignments, written
    through to :class:`SqliteStore` (a :class:`~mip4.core.bindings.BindingStore` and a
    :class:`~mip4.core.bindings.HomeAgentStateStore`). It is the in-memory store itself
    (reads cost what they cost without a file) whose changes are also written."""

    def __init__(self, owner: SqliteStore) -> None:
        super().__init__()
        self._owner = owner
        for row in owner.query("SELECT * FROM bindings"):
            InMemoryBindingStore.put(self, self._decode(row))

    def _decode(self, row: tuple[object, ...]) -> MobilityBinding:
        (hoa, coa, lifetime, registered, expires, ident, flags, encap, rev, source) = row
        o = self._owner
        at = o.from_unix(_real(registered))
        assert at is not None
        return MobilityBinding(
            home_address=_addr(hoa),
            care_of_address=_addr(coa),
            lifetime=_int(lifetime),
            registered_at=at,
            expires=o.from_unix(None if expires is None else _real(expires)),
            identification=_from_i64(_int(ident)),
            flags=RegistrationFlags(_int(flags)),
            encapsulation=Encapsulation(_int(encap)),
            reverse_tunnel=bool(rev),
            source=None if source is None else _addr(source),
        )

    def _write(self, b: MobilityBinding) -> None:
        # (on every registration: the row is built and queued inline, as SqliteStore.put
        # would, without its generic slicing)
        o = self._owner
        offset = o.clock_offset
        hoa, coa = int(b.home_address), int(b.care_of_address)
        expires, ident, source = b.expires, b.identification, b.source
        o._pending["bindings"][(hoa, coa)] = (
            hoa,
            coa,
            b.lifetime,
            b.registered_at + offset,
            None if expires is None else expires + offset,
            ident - _U64 if ident > _I64_MAX else ident,
            int(b.flags),
            int(b.encapsulation),
            int(b.reverse_tunnel),
            None if source is None else int(source),
        )
        o.writes += 1

    # -- BindingStore: the changes (reads and pop_expired, which removes through
    # remove(), are the in-memory store's) ------------------------------------------------

    def put(self, binding: MobilityBinding) -> MobilityBinding | None:
        old = super().put(binding)
        self._write(binding)
        return old

    def remove(
        self, home_address: IPv4Address, care_of_address: IPv4Address | None = None
    ) -> tuple[MobilityBinding, ...]:
        removed = super().remove(home_address, care_of_address)
        delete = self._owner.delete
        for b in removed:
            delete("bindings", (int(b.home_address), int(b.care_of_address)))
        return removed

    # -- HomeAgentStateStore --------------------------------------------------------------

    def replay_states(self) -> dict[IPv4Address | str, ReplayState]:
        out: dict[IPv4Address | str, ReplayState] = {}
        for kind, identity, last, nonce in self._owner.query("SELECT * FROM replay"):
            key: IPv4Address | str = (
                IPv4Address(_text(identity)) if kind == "address" else _text(identity)
            )
            out[key] = ReplayState(
                last_accepted=None if last is None else _from_i64(_int(last)),
                nonce=None if nonce is None else _int(nonce),
            )
        return out

    def put_replay(self, identity: IPv4Address | str, state: ReplayState) -> None:
        key = _identity(identity)
        last = state.last_accepted
        if last is not None and last > _I64_MAX:
            last -= _U64
        o = self._owner
        o._pending["replay"][key] = (*key, last, state.nonce)
        o.writes += 1

    def remove_replay(self, identity: IPv4Address | str) -> None:
        self._owner.delete("replay", _identity(identity))

    def assignments(self) -> dict[str, IPv4Address]:
        return {
            _text(nai): _addr(hoa) for nai, hoa in self._owner.query("SELECT * FROM assignments")
        }

    def put_assignment(self, nai: str, home_address: IPv4Address) -> None:
        self._owner.put("assignments", (nai, int(home_address)))

    def remove_assignment(self, nai: str) -> None:
        self._owner.delete("assignments", (nai,))

    # -- MN-HA keys learnt from the home AAA server (schema 2) ------------------------------

    def mn_ha_keys(self) -> dict[str, SecurityAssociation]:
        """NAI -> the MN-HA association the home AAA server gave it (RFC 3957, issue 10),
        as last written."""
        out = {}
        for nai, spi, key, alg, replay, tolerance, covered in self._owner.query(
            "SELECT * FROM mn_ha_keys"
        ):
            if not isinstance(key, bytes):
                raise ValueError(f"key of {nai!r} is not bytes")
            out[_text(nai)] = SecurityAssociation(
                spi=_int(spi),
                key=key,
                algorithm=Algorithm(_int(alg)),
                replay=ReplayMethod(_text(replay)),
                replay_tolerance=_real(tolerance),
                spi_covered=bool(covered),
            )
        return out

    def put_mn_ha_key(self, nai: str, sa: SecurityAssociation) -> None:
        self._owner.put(
            "mn_ha_keys",
            (
                nai,
                sa.spi,
                sa.key,
                int(sa.algorithm),
                sa.replay.value,
                sa.replay_tolerance,
                int(sa.spi_covered),
            ),
        )

    def remove_mn_ha_key(self, nai: str) -> None:
        self._owner.delete("mn_ha_keys", (nai,))


def _identity(identity: IPv4Address | str) -> tuple[str, str]:
    if isinstance(identity, IPv4Address):
        a = int(identity)  # str(IPv4Address) costs several times this
        return ("address", f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}")
    return ("nai", identity)


# ----------------------------------------------------------------------------------------
# The foreign agent's visitor list
# ----------------------------------------------------------------------------------------


class SqliteVisitorStore:
    """The foreign agent's visitor list written through to :class:`SqliteStore` (a
    :class:`~mip4.core.bindings.VisitorStore`)."""

    def __init__(self, owner: SqliteStore) -> None:
        self._owner = owner
        self._memory = InMemoryVisitorStore()
        for row in owner.query("SELECT * FROM visitors"):
            self._memory.put(self._decode(row))

    def _decode(self, row: tuple[object, ...]) -> Visitor:
        (
            hoa,
            interface,
            link,
            ip_src,
            ip_dst,
            sport,
            ha,
            coa,
            ident,
            requested,
            lifetime,
            expires,
            flags,
            rev,
            encap,
            enc_delivery,
            nai,
        ) = row
        if link is not None and not isinstance(link, bytes):
            raise ValueError(f"link_address {link!r} is not bytes")
        return Visitor(
            home_address=_addr(hoa),
            interface=_text(interface),
            link_address=link,
            ip_source=_addr(ip_src),
            ip_destination=_addr(ip_dst),
            udp_source_port=_int(sport),
            home_agent=_addr(ha),
            care_of_address=_addr(coa),
            identification=_from_i64(_int(ident)),
            requested_lifetime=_int(requested),
            lifetime=_int(lifetime),
            expires=self._owner.from_unix(None if expires is None else _real(expires)),
            flags=RegistrationFlags(_int(flags)),
            reverse_tunnel=bool(rev),
            encapsulation=Encapsulation(_int(encap)),
            encapsulating_delivery=bool(enc_delivery),
            nai=None if nai is None else _text(nai),
        )

    def get(self, home_address: IPv4Address) -> Visitor | None:
        return self._memory.get(home_address)

    def put(self, entry: Visitor) -> Visitor | None:
        old = self._memory.put(entry)
        o = self._owner
        o.put(
            "visitors",
            (
                int(entry.home_address),
                entry.interface,
                entry.link_address,
                int(entry.ip_source),
                int(entry.ip_destination),
                entry.udp_source_port,
                int(entry.home_agent),
                int(entry.care_of_address),
                _to_i64(entry.identification),
                entry.requested_lifetime,
                entry.lifetime,
                o.to_unix(entry.expires),
                int(entry.flags),
                int(entry.reverse_tunnel),
                int(entry.encapsulation),
                int(entry.encapsulating_delivery),
                entry.nai,
            ),
        )
        return old

    def remove(self, home_address: IPv4Address) -> Visitor | None:
        old = self._memory.remove(home_address)
        if old is not None:
            self._owner.delete("visitors", (int(home_address),))
        return old

    def next_expiry(self) -> float | None:
        return self._memory.next_expiry()

    def pop_expired(self, now: float) -> list[Visitor]:
        expired = self._memory.pop_expired(now)
        for v in expired:
            self._owner.delete("visitors", (int(v.home_address),))
        return expired

    def __iter__(self) -> Iterator[Visitor]:
        return iter(self._memory)

    def __len__(self) -> int:
        return len(self._memory)


# ----------------------------------------------------------------------------------------
# Typed reads of row values (a value of the wrong type is a corrupt row)
# ----------------------------------------------------------------------------------------


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, found {value!r}")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise ValueError(f"expected an integer, found {value!r}")
    return value


def _addr(value: object) -> IPv4Address:
    """An IPv4 address stored as its 32-bit integer."""
    return IPv4Address(_int(value))


def _real(value: object) -> float:
    if not isinstance(value, int | float):
        raise ValueError(f"expected a number, found {value!r}")
    return float(value)
