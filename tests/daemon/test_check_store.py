"""``mip4 ha|fa --config FILE --check`` and the store file (issue 15): the file the daemon
would open is checked read-only -- never created, locked, or changed, no ``-wal``/``-shm``
left behind -- and a bad one (truncated, a newer schema, another application's, not a
database) is reported with one line naming the file, exit 2, no traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.store import SCHEMA_VERSION, SqliteStore, StoreError, check_store_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def check(role: str, conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mip4.cli", role, "--config", str(conf), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def configured(tmp_path: Path, role: str = "ha") -> tuple[Path, Path]:
    store = tmp_path / "state" / f"{role}.db"
    store.parent.mkdir(exist_ok=True)
    conf = tmp_path / f"{role}.toml"
    conf.write_text(
        (EXAMPLES / f"{role}.toml").read_text() + f'\n[store]\npath = "state/{role}.db"\n'
    )
    return conf, store


def good_store(path: Path) -> None:
    s = SqliteStore(path, 0.0)
    for i in range(100):
        s.bindings.put_assignment(f"node{i}@example.net", IPv4Address(f"10.0.1.{i + 1}"))
    s.close()


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def assert_refused(r: subprocess.CompletedProcess[str], role: str, path: Path, word: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"mip4 {role}: {path}: "), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert word in r.stderr, r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("role", ["ha", "fa"])
def test_a_missing_store_is_fine_and_is_not_created(tmp_path: Path, role: str) -> None:
    conf, path = configured(tmp_path, role)
    r = check(role, conf)
    assert r.returncode == 0, r.stderr
    assert list(path.parent.iterdir()) == []


def test_a_good_store_passes_untouched(tmp_path: Path) -> None:
    conf, path = configured(tmp_path)
    good_store(path)
    before = snapshot(path.parent)
    assert set(before) == {"ha.db"}
    r = check("ha", conf)
    assert r.returncode == 0, r.stderr
    assert snapshot(path.parent) == before  # nothing written, no -wal/-shm made


@pytest.mark.parametrize("role", ["ha", "fa"])
def test_a_truncated_store_is_reported(tmp_path: Path, role: str) -> None:
    conf, path = configured(tmp_path, role)
    good_store(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = snapshot(path.parent)
    assert_refused(check(role, conf), role, path, "corrupt")
    assert snapshot(path.parent) == before


def test_an_empty_store_is_reported(tmp_path: Path) -> None:
    conf, path = configured(tmp_path)
    path.write_bytes(b"")
    assert_refused(check("ha", conf), "ha", path, "empty file")
    assert snapshot(path.parent) == {"ha.db": b""}


def test_a_newer_schema_is_reported(tmp_path: Path) -> None:
    conf, path = configured(tmp_path)
    good_store(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = snapshot(path.parent)
    assert_refused(check("ha", conf), "ha", path, f"schema version {SCHEMA_VERSION + 1}")
    assert snapshot(path.parent) == before


def test_another_applications_database_is_reported(tmp_path: Path) -> None:
    conf, path = configured(tmp_path)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    before = snapshot(path.parent)
    assert_refused(check("ha", conf), "ha", path, "not a mip4 store")
    assert snapshot(path.parent) == before


def test_garbage_is_reported(tmp_path: Path) -> None:
    conf, path = configured(tmp_path)
    path.write_bytes(os.urandom(4096))
    before = snapshot(path.parent)
    assert_refused(check("ha", conf), "ha", path, "not a database")
    assert snapshot(path.parent) == before


def test_a_killed_daemons_log_is_checked_in_a_copy(tmp_path: Path) -> None:
    """A daemon killed with its write-ahead log not yet in the file: the check reads the
    log through a private copy (the originals stay as they are), and a log that turns the
    store into one of a newer schema is reported."""
    path = tmp_path / "ha.db"
    good_store(path)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: like a daemon killed after a commit
        s = SqliteStore(path, 0.0)
        s.bindings.put_assignment("late@example.net", IPv4Address("10.0.2.1"))
        s.commit()
        s._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0
    before = snapshot(tmp_path)
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        check_store_file(path)
    assert snapshot(tmp_path) == before


def test_a_store_in_use_by_a_running_daemon_is_checked_without_its_lock(tmp_path: Path) -> None:
    path = tmp_path / "ha.db"
    good_store(path)
    running = SqliteStore(path, 0.0)  # holds the file exclusively
    try:
        assert check_store_file(path) is True
    finally:
        running.close()
    assert check_store_file(tmp_path / "none.db") is False
    assert not (tmp_path / "none.db").exists()
