"""The SQLite store (issue 15): what it writes comes back after a restart, through the
engines' restore(); deregistration and expiry delete rows; a file it cannot trust is
refused with one line naming it and is never rewritten."""

from __future__ import annotations

import dataclasses
import os
import random
import sqlite3
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from mip4.core.actions import (
    GratuitousArp,
    InstallBinding,
    InstallVisitor,
    Log,
    ProxyArp,
    RemoveBinding,
)
from mip4.core.bindings import (
    HomeAgentStateStore,
    MobilityBinding,
    Visitor,
    WriteThroughDict,
)
from mip4.core.foreign_agent import ForeignAgent, ForeignAgentConfig
from mip4.core.home_agent import BindingState, HomeAgent, HomeAgentConfig
from mip4.security.replay import ReplayState
from mip4.store import SCHEMA_VERSION, SqliteStore, StoreError
from mip4.wire.codes import ReplyCode
from mip4.wire.messages import RegistrationFlags

from ..core import test_foreign_agent as fat
from ..core import test_home_agent as hat
from ..core import test_nai_pool as nat

A = IPv4Address
OFFSET = hat.UNIX0  # wall time = engine time + OFFSET


def binding(hoa: str = "10.0.0.10", coa: str = "192.168.1.1", **kw: object) -> MobilityBinding:
    values: dict[str, object] = {
        "home_address": A(hoa),
        "care_of_address": A(coa),
        "lifetime": 600,
        "registered_at": 5.0,
        "expires": 605.0,
        "identification": 0xFFFF_FFFF_0000_0001,  # above 2**63: stored as signed
        "flags": RegistrationFlags.T | RegistrationFlags.B,
        "source": A("192.168.1.1"),
        "reverse_tunnel": True,
    }
    values.update(kw)
    return MobilityBinding(**values)  # type: ignore[arg-type]


def visitor(hoa: str = "10.0.0.10", **kw: object) -> Visitor:
    values: dict[str, object] = {
        "home_address": A(hoa),
        "interface": "vis0",
        "link_address": b"\x02\x00\x00\x00\x00\x10",
        "ip_source": A(hoa),
        "ip_destination": A("10.1.0.1"),
        "udp_source_port": 5555,
        "home_agent": A("10.0.0.1"),
        "care_of_address": A("10.1.0.1"),
        "identification": 0x0123_4567_89AB_CDEF,
        "requested_lifetime": 600,
        "lifetime": 600,
        "expires": 600.1,
        "flags": RegistrationFlags.T,
        "reverse_tunnel": True,
        "encapsulating_delivery": True,
        "nai": "alice@example.net",
    }
    values.update(kw)
    return Visitor(**values)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------


def test_everything_written_comes_back_with_times_moved_to_the_new_clock(tmp_path: Path) -> None:
    path = tmp_path / "ha.db"
    s = SqliteStore(path, clock_offset=1000.0)
    b1, b2 = binding(), binding("10.0.0.11", "172.16.0.5", expires=None, source=None)
    s.bindings.put(b1)
    s.bindings.put(b2)
    s.bindings.put_replay(A("10.0.0.10"), ReplayState(last_accepted=0xFFFF_0000_0000_0001))
    s.bindings.put_replay("alice@example.net", ReplayState(last_accepted=None, nonce=7))
    s.bindings.put_assignment("alice@example.net", A("10.0.0.100"))
    s.visitors.put(visitor())
    s.commit()
    s.close()
    # The new process's monotonic clock is 400 s behind: the same Unix times.
    t = SqliteStore(path, clock_offset=1400.0)
    assert sorted(t.bindings, key=lambda b: b.home_address) == [
        dataclasses.replace(b1, registered_at=-395.0, expires=205.0),
        dataclasses.replace(b2, registered_at=-395.0),
    ]
    assert t.bindings.next_expiry() == 205.0
    assert t.bindings.replay_states() == {
        A("10.0.0.10"): ReplayState(last_accepted=0xFFFF_0000_0000_0001),
        "alice@example.net": ReplayState(nonce=7),
    }
    assert t.bindings.assignments() == {"alice@example.net": A("10.0.0.100")}
    (v,) = t.visitors
    assert v.expires == pytest.approx(200.1)
    assert v == dataclasses.replace(visitor(), expires=v.expires)
    assert isinstance(t.bindings, HomeAgentStateStore)
    t.close()


def test_remove_and_expiry_delete_rows(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.db", 0.0)
    s.bindings.put(binding(expires=10.0))
    s.bindings.put(binding("10.0.0.11", expires=20.0))
    s.bindings.put(binding("10.0.0.11", "172.16.0.9", expires=30.0))
    s.visitors.put(visitor(expires=10.0))
    s.visitors.put(visitor("10.0.0.11", expires=20.0))
    s.commit()
    assert len(s.rows("bindings")) == 3 and len(s.rows("visitors")) == 2
    assert [b.home_address for b in s.bindings.pop_expired(10.0)] == [A("10.0.0.10")]
    assert [v.home_address for v in s.visitors.pop_expired(10.0)] == [A("10.0.0.10")]
    s.bindings.remove(A("10.0.0.11"), A("172.16.0.9"))
    assert s.visitors.remove(A("10.0.0.11")) is not None
    assert s.visitors.remove(A("10.0.0.99")) is None
    s.bindings.put_assignment("x@y", A("10.0.0.100"))
    s.bindings.remove_assignment("x@y")
    s.bindings.put_replay("x@y", ReplayState(nonce=1))
    s.bindings.remove_replay("x@y")
    s.commit()
    assert [(r[0], r[1]) for r in s.rows("bindings")] == [
        (int(A("10.0.0.11")), int(A("192.168.1.1")))
    ]
    assert s.rows("visitors") == [] and s.rows("assignments") == [] and s.rows("replay") == []
    s.bindings.remove(A("10.0.0.11"))
    s.close()
    assert SqliteStore(tmp_path / "s.db", 0.0).rows("bindings") == []


def test_uncommitted_writes_are_in_one_transaction_that_commit_ends(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.db", 0.0)
    assert not s.dirty
    s.bindings.put(binding())
    s.bindings.put_replay(A("10.0.0.10"), ReplayState(last_accepted=1))
    assert s.dirty and s.writes == 2 and s.commits == 0
    s.commit()
    assert not s.dirty and s.commits == 1
    s.commit()  # nothing written: no empty transaction
    assert s.commits == 1
    s.close()


def test_changes_to_one_row_before_a_commit_are_written_once(tmp_path: Path) -> None:
    """A binding renewed (and its replay state moved) several times between two commits
    costs one row write each at the commit, and the last value is what the file holds."""
    s = SqliteStore(tmp_path / "s.db", 0.0)
    statements: list[str] = []
    s._db.set_trace_callback(statements.append)
    for i in range(5):
        s.bindings.put(binding(identification=i))
        s.bindings.put_replay(A("10.0.0.10"), ReplayState(last_accepted=i))
    s.bindings.put(binding("10.0.0.11"))
    s.bindings.remove(A("10.0.0.11"))  # put then removed: one delete, no insert
    assert s.writes == 12 and s.dirty
    s.commit()
    inserts = [q for q in statements if q.startswith("INSERT")]
    deletes = [q for q in statements if q.startswith("DELETE")]
    assert len(inserts) == 2 and len(deletes) == 1, statements
    s.close()
    t = SqliteStore(tmp_path / "s.db", 0.0)
    assert [b.identification for b in t.bindings] == [4]
    assert t.bindings.replay_states() == {A("10.0.0.10"): ReplayState(last_accepted=4)}
    t.close()


class _FailingCommit:
    """The store's connection, whose next COMMIT fails (as a full disk makes it)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.fail = True

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.fail:
            self.fail = False
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_a_failed_commit_rolls_back_and_keeps_the_writes_for_the_next(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = SqliteStore(path, 0.0)
    s.bindings.put(binding())
    s.commit()
    real = s._db
    s._db = _FailingCommit(real)  # type: ignore[assignment]
    s.bindings.put(binding("10.0.0.11"))
    s.bindings.remove(A("10.0.0.10"))
    with pytest.raises(sqlite3.OperationalError):
        s.commit()
    assert s.dirty and s.commits == 1
    assert not real.in_transaction  # rolled back: the file holds the last commit
    assert [r[0] for r in real.execute("SELECT home_address FROM bindings")] == [
        int(A("10.0.0.10"))
    ]
    s.commit()  # the next commit writes what the failed one did not
    assert not s.dirty and s.commits == 2
    s._db = real
    s.close()
    t = SqliteStore(path, 0.0)
    assert [b.home_address for b in t.bindings] == [A("10.0.0.11")]
    t.close()


def test_an_uncommitted_write_is_not_in_the_file_after_a_crash(tmp_path: Path) -> None:
    """What the daemon relies on: a write is durable at commit, and only then (the reply
    waits for the commit). The crash is simulated by dropping the connection unclosed in
    a child process."""
    path = tmp_path / "s.db"
    SqliteStore(path, 0.0).close()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        s = SqliteStore(path, 0.0)
        s.bindings.put(binding())
        s.commit()
        s.bindings.put(binding("10.0.0.11"))
        os._exit(0)  # like SIGKILL: no close, no commit
    assert os.waitpid(pid, 0)[1] == 0
    t = SqliteStore(path, 0.0)
    assert [b.home_address for b in t.bindings] == [A("10.0.0.10")]
    t.close()


# ----------------------------------------------------------------------------------------
# Files that are refused, and never rewritten
# ----------------------------------------------------------------------------------------


def _refused(path: Path, *words: str) -> None:
    before = path.read_bytes()
    with pytest.raises(StoreError) as e:
        SqliteStore(path, 0.0)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    for w in words:
        assert w in msg
    assert path.read_bytes() == before  # never overwritten
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


def _good_file(path: Path) -> bytes:
    s = SqliteStore(path, 0.0)
    for i in range(200):  # several pages
        s.bindings.put(binding(f"10.0.{i // 250}.{i % 250 + 1}", identification=i))
    s.close()
    return path.read_bytes()


@pytest.mark.parametrize("keep", [0.5, 0.05, 100, 20])
def test_a_truncated_file_is_refused(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "s.db"
    data = _good_file(path)
    path.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    _refused(path, "corrupt")


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"")
    _refused(path, "empty")


def test_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"not a database at all, just text\n" * 200)
    _refused(path, "not a database")


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _good_file(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    _refused(path, f"schema version {SCHEMA_VERSION + 1}", "newer")


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    _refused(path, "not a mip4 store")


def test_a_row_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _good_file(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE bindings SET care_of_address = 'ten.0.0.1'")
    db.commit()
    db.close()
    _refused(path, "unreadable row")


def test_a_second_user_of_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = SqliteStore(path, 0.0)
    with pytest.raises(StoreError, match="in use"):
        SqliteStore(path, 0.0)
    s.close()
    SqliteStore(path, 0.0).close()


def test_a_new_file_is_created_complete(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SqliteStore(path, 0.0).close()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "new.db"
    ]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot create"):
        SqliteStore(tmp_path / "no" / "s.db", 0.0)


# ----------------------------------------------------------------------------------------
# The engines across a restart
# ----------------------------------------------------------------------------------------


def test_a_mass_expiry_in_the_sqlite_store_is_spread_over_timer_calls(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.db", 0.0)
    n = 3 * HomeAgent.EXPIRY_BATCH + 5
    for i in range(n):
        s.bindings.put(binding(str(A("10.0.0.10") + i), expires=10.0))
    s.commit()
    ha = _ha(s)
    removed: list[int] = []
    now = 10.0
    while (deadline := ha.next_deadline()) is not None and deadline <= now and len(removed) < n:
        removed.append(len([a for a in ha.handle_timer(now) if isinstance(a, RemoveBinding)]))
    assert sum(removed) == n and max(removed) <= HomeAgent.EXPIRY_BATCH and len(removed) >= 4
    s.commit()
    assert s.rows("bindings") == []


def _killed(store: SqliteStore) -> None:
    """The process died (SIGKILL): its connection goes away, nothing more is committed."""
    store._db.close()


def _ha(store: SqliteStore, **cfg: object) -> HomeAgent:
    config = HomeAgentConfig(address=hat.HA, home_network=hat.NET, interface="home0", **cfg)  # type: ignore[arg-type]
    return HomeAgent(config, hat.sas(), OFFSET, bindings=store.bindings, rng=hat._Nonces(0x5000))


def test_home_agent_restores_bindings_and_reinstalls_them(tmp_path: Path) -> None:
    path = tmp_path / "ha.db"
    s = SqliteStore(path, OFFSET)
    ha = _ha(s, simultaneous_bindings=True)
    assert hat.of(ha.restore(0.0), InstallBinding) == []  # a new store: nothing
    F = RegistrationFlags
    ha.handle(hat.udp(hat.request(now=1, lifetime=100)), 1.0)
    ha.handle(hat.udp(hat.request(now=2, hoa=hat.HOA2, flags=F.S | F.B, lifetime=600)), 2.0)
    coa2 = hat.request(now=3, hoa=hat.HOA2, coa=hat.COA2, flags=F.S, lifetime=65535)
    ha.handle(hat.udp(coa2), 3.0)
    s.commit()
    assert len(s.rows("bindings")) == 3 and len(s.rows("replay")) == 2
    _killed(s)
    # SIGKILL: the store is not closed. A new process, whose clock reads 50 s later for
    # the same wall time, and which starts 200 s after the first one stopped.
    s2 = SqliteStore(path, OFFSET - 50.0)
    ha2 = _ha(s2, simultaneous_bindings=True)
    actions = ha2.restore(250.0)
    # The first binding expired while the agent was down: dropped, nothing installed.
    assert sorted(hat.of(actions, InstallBinding), key=lambda a: a.care_of_address) == [
        InstallBinding(hat.HOA2, hat.COA2, expires=1853.0),  # capped: max_lifetime 1800
        InstallBinding(
            hat.HOA2,
            hat.COA,
            expires=652.0,
            broadcast=True,
            home_interface="home0",
        ),
    ]
    assert hat.of(actions, ProxyArp) == [ProxyArp("home0", hat.HOA2, True)]
    assert hat.of(actions, GratuitousArp) == [GratuitousArp("home0", hat.HOA2, None, 3)]
    assert actions.index(hat.of(actions, ProxyArp)[0]) < actions.index(
        hat.of(actions, InstallBinding)[0]
    )
    (log,) = hat.of(actions, Log)
    assert log.event == "ha.restored"
    assert (log.fields["bindings"], log.fields["expired"]) == (2, 1)
    assert ha2.state_of(hat.HOA) is BindingState.HOME
    assert ha2.state_of(hat.HOA2) is BindingState.AWAY
    assert ha2.counters.events["binding_restored"] == 2
    assert ha2.counters.events["binding_expired_while_down"] == 1
    assert ha2.next_deadline() == 652.0
    s2.commit()
    assert {(r[0], r[1]) for r in s2.rows("bindings")} == {
        (int(hat.HOA2), int(hat.COA)),
        (int(hat.HOA2), int(hat.COA2)),
    }


def test_replay_state_survives_a_restart(tmp_path: Path) -> None:
    """RFC 5944 §5.7: a request the agent accepted before the restart is a replay after
    it (133), and a fresh one is accepted."""
    path = tmp_path / "ha.db"
    s = SqliteStore(path, OFFSET)
    ha = _ha(s)
    ha.restore(0.0)
    first = hat.request(now=10)
    assert hat.reply_of(ha.handle(hat.udp(first), 10.0)).code == ReplyCode.ACCEPTED
    s.commit()
    _killed(s)
    s2 = SqliteStore(path, OFFSET)
    ha2 = _ha(s2)
    ha2.restore(11.0)
    assert ha2.replay_state == ha.replay_state != {}
    again = hat.reply_of(ha2.handle(hat.udp(first), 12.0))
    assert again.code == ReplyCode.HA_IDENTIFICATION_MISMATCH
    fresh = hat.reply_of(ha2.handle(hat.udp(hat.request(now=13)), 13.0))
    assert fresh.code == ReplyCode.ACCEPTED
    s2.commit()
    (row,) = s2.rows("replay")
    assert row[:2] == ("address", str(hat.HOA))


def test_replay_state_without_restore_is_not_in_the_store(tmp_path: Path) -> None:
    """The write-through begins with restore(): the hook is what persists it."""
    s = SqliteStore(tmp_path / "ha.db", OFFSET)
    ha = _ha(s)
    ha.handle(hat.udp(hat.request(now=10)), 10.0)
    s.commit()
    assert s.rows("replay") == [] and len(s.rows("bindings")) == 1


def test_deregistration_and_expiry_remove_the_rows_through_the_engine(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "ha.db", OFFSET)
    ha = _ha(s)
    ha.restore(0.0)
    ha.handle(hat.udp(hat.request(now=1, lifetime=100)), 1.0)
    ha.handle(hat.udp(hat.request(now=1, hoa=hat.HOA2, lifetime=50)), 1.0)
    s.commit()
    assert len(s.rows("bindings")) == 2
    dereg = hat.request(now=2, lifetime=0, coa=hat.HOA)
    assert hat.reply_of(ha.handle(hat.udp(dereg), 2.0)).code == 0
    s.commit()
    assert [r[0] for r in s.rows("bindings")] == [int(hat.HOA2)]
    ha.handle_timer(51.0)
    s.commit()
    assert s.rows("bindings") == []


def test_nai_assignments_survive_a_restart_and_expiry_releases_them(tmp_path: Path) -> None:
    path = tmp_path / "ha.db"
    s = SqliteStore(path, OFFSET)
    cfg = HomeAgentConfig(
        address=hat.HA, home_network=hat.NET, interface="home0", address_pool=nat.POOL
    )
    sas = nat.make_ha().security_associations

    def make(store: SqliteStore) -> HomeAgent:
        return HomeAgent(cfg, sas, OFFSET, bindings=store.bindings, rng=hat._Nonces(1))

    ha = make(s)
    ha.restore(0.0)
    assert nat.register(ha, nat.NAIS[0], lifetime=100).home_address == A("10.0.0.100")
    assert nat.register(ha, nat.NAIS[1], now=1.0, lifetime=1000).home_address == A("10.0.0.101")
    s.commit()
    assert sorted(str(r[0]) for r in s.rows("assignments")) == sorted(nat.NAIS[:2])
    _killed(s)
    s2 = SqliteStore(path, OFFSET)
    ha2 = make(s2)
    actions = ha2.restore(500.0)  # NAIS[0]'s binding expired while down: address released
    assert [a.home_address for a in hat.of(actions, InstallBinding)] == [A("10.0.0.101")]
    assert ha2.assignments == {nat.NAIS[1]: A("10.0.0.101")}
    s2.commit()
    assert [r[0] for r in s2.rows("assignments")] == [nat.NAIS[1]]
    # The pool knows what is taken: a third node gets the freed address, not .101.
    reply = nat.register(ha2, nat.NAIS[2], now=501.0)
    assert reply.home_address == A("10.0.0.100")
    # ... and the second node re-registering keeps its own.
    assert nat.register(ha2, nat.NAIS[1], now=502.0).home_address == A("10.0.0.101")


def _fa(store: SqliteStore) -> ForeignAgent:
    return ForeignAgent(
        ForeignAgentConfig(links=(fat.LINK,)),
        fat.sas(),
        OFFSET,
        visitors=store.visitors,
        rng=random.Random(7),
    )


def test_foreign_agent_restores_visitors_and_does_not_announce_a_reboot(tmp_path: Path) -> None:
    path = tmp_path / "fa.db"
    s = SqliteStore(path, OFFSET)
    fa = _fa(s)
    fa.restore(0.0)
    fa.handle_timer(0.0)  # sequence 0
    fat.registered(fa, 0.0)
    fa.handle(fat.from_mn(fat.request(hoa=fat.HOA2, lifetime=20), src=fat.HOA2, mac=fat.MAC2), 1)
    fa.handle(fat.from_ha(fat.reply(hoa=fat.HOA2, lifetime=20)), 1.1)
    s.commit()
    assert len(s.rows("visitors")) == 2
    _killed(s)
    s2 = SqliteStore(path, OFFSET)
    fa2 = _fa(s2)
    actions = fa2.restore(100.0)
    assert hat.of(actions, InstallVisitor) == [
        InstallVisitor(
            home_address=fat.HOA,
            interface="vis0",
            link_address=fat.MAC,
            home_agent=fat.HA,
            care_of_address=fat.FA_ADDR,
            expires=600.0,
        )
    ]
    (log,) = hat.of(actions, Log)
    assert (log.event, log.fields["visitors"], log.fields["expired"]) == ("fa.restored", 1, 1)
    s2.commit()
    assert [r[0] for r in s2.rows("visitors")] == [int(fat.HOA)]
    # RFC 5944 §2.4.4: a number below 256 would tell the visitor the agent rebooted.
    _, adv = fat.adv_of(fa2.handle_timer(100.0))
    assert adv.mobility is not None and adv.mobility.sequence == 256
    # A deregistration relayed after the restart removes the row.
    fa2.handle(fat.from_mn(fat.request(ident=fat.IDENT + 1, lifetime=0)), 101.0)
    fa2.handle(fat.from_ha(fat.reply(ident=fat.IDENT + 1, lifetime=0)), 101.1)
    s2.commit()
    assert s2.rows("visitors") == []


def test_foreign_agent_without_visitors_restarts_its_sequence_at_zero(tmp_path: Path) -> None:
    fa = _fa(SqliteStore(tmp_path / "fa.db", OFFSET))
    fa.restore(0.0)
    _, adv = fat.adv_of(fa.handle_timer(0.0))
    assert adv.mobility is not None and adv.mobility.sequence == 0


# ----------------------------------------------------------------------------------------
# WriteThroughDict
# ----------------------------------------------------------------------------------------


def test_write_through_dict_reports_every_change() -> None:
    log: list[tuple[str, object, object]] = []
    d: WriteThroughDict[str, int] = WriteThroughDict(
        {"a": 1}, lambda k, v: log.append(("set", k, v)), lambda k: log.append(("del", k, None))
    )
    d["a"] = 1  # unchanged: nothing
    d["b"] = 2
    d.update({"c": 3}, d=4)
    d.setdefault("e", 5)
    d.setdefault("e", 6)
    assert d.pop("zz", None) is None
    with pytest.raises(KeyError):
        d.pop("zz")
    assert d.pop("b") == 2
    del d["c"]
    d |= {"f": 7}
    k, _ = d.popitem()
    d.clear()
    assert d == {}
    assert log == [
        ("set", "b", 2),
        ("set", "c", 3),
        ("set", "d", 4),
        ("set", "e", 5),
        ("del", "b", None),
        ("del", "c", None),
        ("set", "f", 7),
        ("del", k, None),
        *[("del", key, None) for key in ("a", "d", "e")],
    ]


def test_many_rows_are_written_within_the_librarys_parameter_limit(tmp_path: Path) -> None:
    """One commit of more rows than one statement may carry (an SQLite older than 3.32
    allows 999 parameters): written in several statements, every row there."""
    s = SqliteStore(tmp_path / "s.db", 0.0)
    s._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # as an old library
    s._max_parameters = s._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    assert s._max_parameters == 999
    for i in range(700):
        s.bindings.put(binding(f"10.0.{i // 250}.{i % 250 + 1}", identification=i))
        s.visitors.put(visitor(f"10.1.{i // 250}.{i % 250 + 1}"))
    s.commit()
    for i in range(0, 700, 2):
        s.bindings.remove(A(f"10.0.{i // 250}.{i % 250 + 1}"))
    s.commit()
    s.close()
    t = SqliteStore(tmp_path / "s.db", 0.0)
    assert len(t.bindings) == 350 and len(t.visitors) == 700
    t.close()
