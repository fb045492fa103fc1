"""The ``[store]`` keys of the agents' files, the daemon's refusal of an unusable store
file (exit 2, one line naming it, the file untouched), SIGHUP refusing a store change,
and the driver committing before it carries out a reply (issue 15)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from mip4.core.actions import Action, Log, SendUdp
from mip4.core.home_agent import HomeAgent
from mip4.daemon.config import ConfigError, parse_config
from mip4.daemon.driving import TimedDriver
from mip4.daemon.reload import reload
from mip4.daemon.run import build_engine, open_store
from mip4.store import SCHEMA_VERSION, SqliteStore

from ..core import test_home_agent as hat

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEY = "11" * 16


def ha_data(**store: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "home_agent": {"address": "10.0.0.1", "home_network": "10.0.0.0/24", "interface": "e0"},
        "security_associations": [{"peer": "10.0.0.10", "spi": 256, "key": KEY}],
    }
    if store:
        data["store"] = store
    return data


def test_store_keys_are_checked_and_named() -> None:
    assert parse_config("ha", ha_data(), "ha.toml").file.store.path is None  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"^ha\.toml: store: synchronous: 'off' is not"):
        parse_config("ha", ha_data(path="s.db", synchronous="off"), "ha.toml")
    with pytest.raises(ConfigError, match=r"^ha\.toml: store: path: must not be empty"):
        parse_config("ha", ha_data(path=" "), "ha.toml")
    with pytest.raises(ConfigError, match=r"store\.path.*string"):
        parse_config("ha", ha_data(path=3), "ha.toml")
    with pytest.raises(ConfigError, match=r"unknown key"):
        parse_config("ha", ha_data(path="s.db", sync="full"), "ha.toml")
    mn = {
        "mobile_node": {
            "home_address": "10.0.0.10",
            "home_agent": "10.0.0.1",
            "home_prefix_len": 24,
        },
        "io": {"interfaces": ["e0"]},
        "security_associations": [{"peer": "10.0.0.1", "spi": 256, "key": KEY}],
        "store": {"path": "s.db"},
    }
    with pytest.raises(ConfigError, match=r"unknown key store"):
        parse_config("mn", mn, "mn.toml")


def test_a_relative_path_is_taken_from_the_configuration_files_directory(tmp_path: Path) -> None:
    cfg = parse_config("ha", ha_data(path="state/ha.db"), str(tmp_path / "etc" / "ha.toml"))
    (tmp_path / "etc" / "state").mkdir(parents=True)
    store = open_store(cfg)
    assert store is not None and store.path == tmp_path / "etc" / "state" / "ha.db"
    assert store.path.exists()
    engine = build_engine(cfg, store)
    assert isinstance(engine, HomeAgent) and engine.clock_offset == store.clock_offset
    store.close()
    assert open_store(parse_config("ha", ha_data(), "ha.toml")) is None


def test_sighup_refuses_a_store_change(tmp_path: Path) -> None:
    running = parse_config("ha", ha_data(path="a.db"), "ha.toml")
    engine = build_engine(running)
    r = reload(running, engine, parse_config("ha", ha_data(path="b.db"), "ha.toml"))
    assert r.refused == ("store.path",) and r.config.file.store.path == "a.db"  # type: ignore[union-attr]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mip4.cli", *args], capture_output=True, text=True, timeout=60
    )


def _config_with_store(tmp_path: Path, role: str) -> tuple[Path, Path]:
    store = tmp_path / f"{role}.db"
    conf = tmp_path / f"{role}.toml"
    conf.write_text((EXAMPLES / f"{role}.toml").read_text() + f'\n[store]\npath = "{store.name}"\n')
    return conf, store


@pytest.mark.parametrize("role", ["ha", "fa"])
def test_a_truncated_store_stops_the_daemon_with_exit_2(tmp_path: Path, role: str) -> None:
    conf, path = _config_with_store(tmp_path, role)
    s = SqliteStore(path, 0.0)
    for i in range(100):
        s.bindings.put_assignment(f"node{i}@example.net", IPv4Address(f"10.0.1.{i + 1}"))
    s.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    r = _run(role, "--config", str(conf))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"mip4 {role}: {path}: ") and r.stderr.count("\n") == 1
    assert "corrupt" in r.stderr and "Traceback" not in r.stderr
    assert path.read_bytes() == data[: len(data) // 2]


def test_a_newer_store_stops_the_daemon_with_exit_2(tmp_path: Path) -> None:
    import sqlite3

    conf, path = _config_with_store(tmp_path, "ha")
    SqliteStore(path, 0.0).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = path.read_bytes()
    r = _run("ha", "--config", str(conf))
    assert r.returncode == 2
    assert r.stderr == (
        f"mip4 ha: {path}: schema version {SCHEMA_VERSION + 1} is newer than this mip4 "
        f"understands ({SCHEMA_VERSION}); refusing to use or overwrite it\n"
    )
    assert path.read_bytes() == before


class _Recorder:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.seen: list[tuple[type[Action], bool, int]] = []

    def execute(self, action: Action) -> None:
        # what the file holds when the action is carried out (a second connection
        # cannot read it: exclusive lock; the store's own connection sees committed and
        # uncommitted alike, so dirty is the test)
        self.seen.append((type(action), self.store.dirty, len(self.store.rows("bindings"))))


def test_the_reply_is_sent_only_after_the_commit(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ha.db", hat.UNIX0)
    ha = hat.make_ha()
    ha = HomeAgent(ha.config, ha.security_associations, hat.UNIX0, bindings=store.bindings)
    ha.restore(0.0)
    rec = _Recorder(store)

    async def go() -> Sequence[Action]:
        driver = TimedDriver(ha, rec, clock=lambda: 1.0)
        driver.store = store
        out = driver.feed(hat.udp(hat.request(now=1.0)))
        driver.close()
        return out

    actions = asyncio.run(go())
    assert any(isinstance(a, SendUdp) for a in actions)
    sends = [s for s in rec.seen if s[0] is SendUdp]
    assert sends == [(SendUdp, False, 1)]  # committed, and the row is there
    assert store.commits == 1
    assert all(not dirty for _, dirty, _ in rec.seen)
    assert [t for t, _, _ in rec.seen if t is Log]


def test_a_failed_commit_holds_the_reply_back(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ha.db", hat.UNIX0)
    base = hat.make_ha()
    ha = HomeAgent(base.config, base.security_associations, hat.UNIX0, bindings=store.bindings)
    ha.restore(0.0)
    rec = _Recorder(store)

    def broken() -> None:
        raise OSError("disk full")

    store.commit = broken  # type: ignore[method-assign]

    async def go() -> TimedDriver:
        driver = TimedDriver(ha, rec, clock=lambda: 1.0)
        driver.store = store
        driver.feed(hat.udp(hat.request(now=1.0)))
        driver.close()
        return driver

    driver = asyncio.run(go())
    assert [t for t, _, _ in rec.seen if t is SendUdp] == []
    assert driver.stats["store_commit_errors"] == 1


def test_what_one_wakeup_drains_is_committed_once_before_any_reply(tmp_path: Path) -> None:
    """Group commit: three requests read together, one commit, and every reply goes out
    after it with all three bindings in the file."""
    import socket

    store = SqliteStore(tmp_path / "ha.db", hat.UNIX0)
    base = hat.make_ha()
    ha = HomeAgent(base.config, base.security_associations, hat.UNIX0, bindings=store.bindings)
    ha.restore(0.0)
    rec = _Recorder(store)
    events = [
        hat.udp(hat.request(now=1.0, hoa=hoa, lifetime=60)) for hoa in (hat.HOA, hat.HOA2)
    ] + [hat.udp(hat.request(now=2.0, lifetime=0, coa=hat.HOA))]

    async def go() -> TimedDriver:
        driver = TimedDriver(ha, rec, clock=lambda: 1.0)
        driver.store = store
        a, b = socket.socketpair()
        batches = [events]

        def produce() -> list[Any]:
            a.recv(16)
            return batches.pop() if batches else []

        driver.add_reader(a, produce)
        b.send(b"x")
        for _ in range(50):
            await asyncio.sleep(0.01)
            if not batches:
                break
        driver.close()
        a.close()
        b.close()
        return driver

    driver = asyncio.run(go())
    assert store.commits == 1 and driver.stats["events"] == 3
    sends = [s for s in rec.seen if s[0] is SendUdp]
    # HOA registered then deregistered in the same batch: HOA2's row remains; every reply
    # after the one commit
    assert sends == [(SendUdp, False, 1)] * 3
    assert [r[0] for r in store.rows("bindings")] == [int(hat.HOA2)]


def test_with_synchronous_normal_each_input_is_committed_on_its_own(tmp_path: Path) -> None:
    import socket

    store = SqliteStore(tmp_path / "ha.db", hat.UNIX0, synchronous="normal")
    assert not store.group_commit
    base = hat.make_ha()
    ha = HomeAgent(base.config, base.security_associations, hat.UNIX0, bindings=store.bindings)
    ha.restore(0.0)
    rec = _Recorder(store)
    events = [hat.udp(hat.request(now=1.0, hoa=hoa, lifetime=60)) for hoa in (hat.HOA, hat.HOA2)]

    async def go() -> None:
        driver = TimedDriver(ha, rec, clock=lambda: 1.0)
        driver.store = store
        a, b = socket.socketpair()
        batches = [events]

        def produce() -> list[Any]:
            a.recv(16)
            return batches.pop() if batches else []

        driver.add_reader(a, produce)
        b.send(b"x")
        for _ in range(50):
            await asyncio.sleep(0.01)
            if not batches:
                break
        driver.close()
        a.close()
        b.close()

    asyncio.run(go())
    assert store.commits == 2
    # the first reply left with only its own binding committed
    assert [s for s in rec.seen if s[0] is SendUdp] == [(SendUdp, False, 1), (SendUdp, False, 2)]
