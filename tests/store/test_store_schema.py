"""Schema version 2 of the store (issue 15): the MN-HA keys a home AAA server gave
(``mn_ha_keys``) are kept with the bindings, and a file of version 1 is brought up to 2
when the daemon opens it -- in one transaction, no row lost -- while ``--check`` reads it
as it is and leaves it untouched."""

from __future__ import annotations

import sqlite3
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.core.actions import Encapsulation
from mip4.security.replay import ReplayState
from mip4.security.sa import Algorithm, ReplayMethod, SecurityAssociation
from mip4.store import SCHEMA_VERSION, SqliteStore, StoreError, check_store_file
from mip4.store.sqlite import _SCHEMA_1, APPLICATION_ID

from .test_sqlite import binding, visitor

A = IPv4Address
IPIP = int(Encapsulation.IPIP)


def version_1_file(path: Path) -> None:
    """A store as mip4 with schema version 1 wrote it, with a row in every table."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("BEGIN")
    for statement in _SCHEMA_1:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("COMMIT")
    db.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.execute(
        "INSERT INTO bindings VALUES (?,?,?,?,?,?,?,?,?,?)",
        (int(A("10.0.0.10")), int(A("192.168.1.1")), 600, 5.0, 605.0, 7, 0, IPIP, 0, None),
    )
    db.execute("INSERT INTO replay VALUES ('address', '10.0.0.10', 7, NULL)")
    db.execute("INSERT INTO assignments VALUES ('alice@example.net', ?)", (int(A("10.0.0.100")),))
    db.execute("COMMIT")
    db.close()


def test_a_version_1_file_is_migrated_keeping_every_row(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 2
    path = tmp_path / "s.db"
    version_1_file(path)
    s = SqliteStore(path, 0.0)
    assert [b.home_address for b in s.bindings] == [A("10.0.0.10")]
    assert s.bindings.replay_states() == {A("10.0.0.10"): ReplayState(last_accepted=7)}
    assert s.bindings.assignments() == {"alice@example.net": A("10.0.0.100")}
    assert s.bindings.mn_ha_keys() == {}
    assert s.query("PRAGMA user_version") == [(2,)]
    s.visitors.put(visitor())
    s.close()
    again = SqliteStore(path, 0.0)  # a migrated file opens as any version 2 file
    assert len(again.bindings) == 1 and len(again.visitors) == 1
    again.close()


def test_check_reads_a_version_1_file_without_migrating_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    version_1_file(path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert check_store_file(path) is True
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    db = sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.close()


def test_a_version_1_file_missing_one_of_its_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    version_1_file(path)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE visitors")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"missing tables \['visitors'\]"):
        SqliteStore(path, 0.0)
    assert path.read_bytes() == before


def test_mn_ha_keys_survive_a_restart_and_removal_deletes_them(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = SqliteStore(path, 0.0)
    aaa = SecurityAssociation(spi=0x100, key=b"k" * 16)
    other = SecurityAssociation(
        spi=0x1234,
        key=b"\x00\xff" * 10,
        algorithm=Algorithm.KEYED_MD5,
        replay=ReplayMethod.NONCES,
        replay_tolerance=3.5,
        spi_covered=False,
    )
    s.bindings.put(binding())
    s.bindings.put_mn_ha_key("alice@example.net", aaa)
    s.bindings.put_mn_ha_key("bob@example.net", other)
    s.commit()
    s.close()
    t = SqliteStore(path, 0.0)
    assert t.bindings.mn_ha_keys() == {"alice@example.net": aaa, "bob@example.net": other}
    t.bindings.remove_mn_ha_key("alice@example.net")
    t.close()
    u = SqliteStore(path, 0.0)
    assert list(u.bindings.mn_ha_keys()) == ["bob@example.net"]
    assert len(u.bindings) == 1
    u.close()


def test_a_new_store_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """The file holds MN-HA keys the home AAA server gave: mode 0600, whatever the umask,
    for the database and the write-ahead log SQLite makes beside it."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        s = SqliteStore(tmp_path / "ha.db", 0.0)
        s.bindings.put_mn_ha_key("n@example.net", SecurityAssociation(spi=300, key=b"k" * 16))
        s.commit()
    finally:
        os.umask(old)
    for name in ("ha.db", "ha.db-wal"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode & 0o077 == 0, f"{name}: {oct(mode)}"
