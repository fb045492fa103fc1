"""A subscriber table's associations as fixed-size records (issue 13: a million MN-HA
associations in ~40 bytes each instead of ~250): every row reads back as the association
that was appended, the index finds every (peer, SPI) and nothing else, and a store holding
rows answers exactly as a store holding the same associations as objects, through any mix
of adds, removals and rekeys."""

from __future__ import annotations

import gc
import os
import pickle
import random
import tracemalloc
from array import array
from ipaddress import IPv4Address
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mip4.security
from mip4.daemon.config import load_config
from mip4.security.sa import (
    DEFAULT_REPLAY_TOLERANCE,
    Algorithm,
    ReplayMethod,
    SecurityAssociation,
    SecurityAssociations,
)
from mip4.security.sa_rows import RowAssociation, TableRows

KEY = bytes(range(16))


def _variety() -> list[tuple[int, SecurityAssociation]]:
    """Rows of every kind: each algorithm, replay method and coverage, a tolerance of its
    own, keys of 1, 16, 20 (records widen), 64 and 65 and 300 bytes (kept aside), and
    peers with several SPIs."""
    out: list[tuple[int, SecurityAssociation]] = []
    lengths = [16, 1, 16, 20, 16, 64, 65, 300, 17]
    for i, n in enumerate(lengths):
        out.append(
            (
                0x0A000010 + i,
                SecurityAssociation(
                    256 + i,
                    bytes((i + j) % 256 for j in range(n)),
                    Algorithm.KEYED_MD5 if i % 3 == 1 else Algorithm.HMAC_MD5,
                    ReplayMethod.NONCES if i % 4 == 2 else ReplayMethod.TIMESTAMPS,
                    2.5 if i == 4 else DEFAULT_REPLAY_TOLERANCE,
                    i % 5 != 3,
                ),
            )
        )
    for spi in (70000, 300, 4294967295):  # one peer, three SPIs
        out.append((0x0A000011, SecurityAssociation(spi, KEY)))
    out.append((0xFFFFFFFF, SecurityAssociation(999, KEY)))
    out.append((0, SecurityAssociation(1000, KEY)))
    return out


def _same(a: SecurityAssociation, b: SecurityAssociation) -> bool:
    return a == b and repr(a) == repr(b) and type(a.key) is bytes and a.key == b.key


def test_every_row_reads_back_as_it_was_appended() -> None:
    rows = _variety()
    table = TableRows.of(rows)
    assert len(table) == len(rows)
    for r, (peer, sa) in enumerate(rows):
        assert table.peer(r) == peer
        assert _same(table.association(r), sa)
        assert table.find(peer, sa.spi) == r
    assert [(p, s) for p, s in table] == rows
    # what an association does with its key: the same authenticator
    for r, (_, sa) in enumerate(rows):
        assert table.association(r).authenticator(b"covered bytes") == sa.authenticator(
            b"covered bytes"
        )
        # the row as its fields (a renewal checks and signs with them): the association's
        # fields, by name, and its authenticator
        fields = table.fields(r)
        assert type(fields) is RowAssociation
        assert _fields_of(fields) == _fields_of(sa) and type(fields.key) is bytes
        # the key absorbed once, as it was read (HMAC-MD5; keyed MD5 has no states)
        assert (fields.keyed is None) == (sa.algorithm is Algorithm.KEYED_MD5)
        assert table.fields(r, keyed=False).keyed is None
        assert table.fields(r, keyed=False).authenticator(b"x") == sa.authenticator(b"x")
        assert fields.algorithm is sa.algorithm and fields.replay is sa.replay
        for data in (b"covered bytes", b"", bytes(200)):
            assert fields.authenticator(data) == sa.authenticator(data)
    assert table.lowest == 0 and table.highest == 0xFFFFFFFF


def _fields_of(sa: SecurityAssociation | RowAssociation) -> tuple[object, ...]:
    return (sa.spi, sa.key, sa.algorithm, sa.replay, sa.replay_tolerance, sa.spi_covered)


def test_the_index_finds_nothing_it_was_not_given() -> None:
    table = TableRows.of(_variety())
    assert table.find(0x0A000010, 257) == -1  # a peer's other SPI
    assert table.find(0x0A000099, 256) == -1  # an unknown peer
    assert table.find(0x0A000011, 70001) == -1
    assert table.rows_of(0x0A000011) == [1, 9, 10, 11]
    assert table.rows_of(0x0A000099) == []


@pytest.mark.parametrize("expected", [0, 10, 5000])
def test_many_rows_with_or_without_a_size_given(expected: int) -> None:
    """The index grows (rehashing every row) when no size was given, or holds them all
    at once; peers that hash close together, several SPIs a peer."""
    rng = random.Random(expected)
    table = TableRows(expected)
    made: dict[tuple[int, int], int] = {}
    for r in range(5000):
        peer = rng.choice([rng.getrandbits(32), 0x0A400000 + r, 0x0A400000 + (r << 12)])
        spi = 256 + rng.randrange(4)
        if (peer, spi) in made:
            continue
        made[(peer, spi)] = table.append(peer, SecurityAssociation(spi, KEY))
    for (peer, spi), r in made.items():
        assert table.find(peer, spi) == r
        assert r in table.rows_of(peer)
    assert sorted(made.values()) == list(range(len(table)))


def test_tables_compare_by_what_they_hold() -> None:
    rows = _variety()
    assert TableRows.of(rows) == TableRows.of(rows)
    assert TableRows.of(rows) != TableRows.of(rows[:-1])
    rekeyed = list(rows)
    rekeyed[0] = (rows[0][0], SecurityAssociation(rows[0][1].spi, b"\xff" * 16))
    assert TableRows.of(rows) != TableRows.of(rekeyed)
    tolerant = list(rows)
    tolerant[0] = (rows[0][0], SecurityAssociation(rows[0][1].spi, rows[0][1].key,
                                                   replay_tolerance=9.0))  # fmt: skip
    assert TableRows.of(rows) != TableRows.of(tolerant)
    again = pickle.loads(pickle.dumps(TableRows.of(rows)))
    assert again == TableRows.of(rows) and list(again) == rows


def _address(peer: int) -> IPv4Address:
    return IPv4Address(peer)


def test_a_store_with_rows_answers_as_a_store_with_objects() -> None:
    """The same associations -- some from TOML (the dict), the rest as rows -- against a
    store holding all of them as objects, through random adds, removals and rekeys of
    both kinds (a reload's operations)."""
    rng = random.Random(7)
    peers = [0x0A010000 + i for i in range(40)]
    plain, rows = SecurityAssociations(), SecurityAssociations()
    for i, peer in enumerate(peers):
        for spi in (256, 257)[: 1 + i % 2]:
            sa = SecurityAssociation(spi, bytes([i, spi % 256]) * 8)
            plain.add(_address(peer), sa)
            if i % 3 == 0:
                rows.add(_address(peer), sa)  # a TOML association
            else:
                rows.add_row(_address(peer), sa)
    table = rows.table
    assert table is not None and len(table) > 0

    def check() -> None:
        assert len(rows) == len(plain)
        assert sorted((str(p), s.spi, s.key) for p, s in rows) == sorted(
            (str(p), s.spi, s.key) for p, s in plain
        )
        for peer in [*peers, 0x0A0100FF]:
            a = _address(peer)
            assert sorted(s.spi for s in rows.for_peer(a)) == sorted(
                s.spi for s in plain.for_peer(a)
            )
            # the first of the rows store's own order, by address or by its integer
            listed = rows.for_peer(a)
            assert rows.first_for(a) == rows.first_for(peer) == (listed[0] if listed else None)
            for spi in (256, 257, 258):
                assert rows.get(a, spi) == plain.get(a, spi)
                # get_fields: the association itself from the dict, a row's fields else
                fields, sa = rows.get_fields(a, spi), plain.get(a, spi)
                by_int = rows.get_fields(peer, spi)
                if sa is None:
                    assert fields is None and by_int is None
                else:
                    assert fields is not None and by_int is not None
                    assert _fields_of(fields) == _fields_of(by_int) == _fields_of(sa)
                    assert fields.authenticator(b"x" * 30) == sa.authenticator(b"x" * 30)
                assert ((a, spi) in rows) == ((a, spi) in plain)

    check()
    for _ in range(300):
        at, spi = _address(rng.choice(peers)), rng.choice((256, 257, 258))
        what = rng.randrange(3)
        if what == 0:
            assert rows.remove(at, spi) == plain.remove(at, spi)
        elif what == 1:
            sa = SecurityAssociation(spi, os.urandom(16))
            rows.replace(at, sa)
            plain.replace(at, sa)
        else:
            sa = SecurityAssociation(spi, os.urandom(16))
            if plain.get(at, spi) is None:
                rows.add(at, sa)
                plain.add(at, sa)
            else:
                with pytest.raises(ValueError, match="already has"):
                    rows.add(at, sa)
                with pytest.raises(ValueError, match="already has"):
                    rows.add_row(at, sa)
        check()
    # the rows themselves were never changed (the configuration shares them)
    assert rows.table is table and len(table) == len(TableRows.of(list(table)))


def test_a_row_is_refused_twice_and_the_store_is_left_as_it_was() -> None:
    store = SecurityAssociations()
    store.add_row(IPv4Address("10.1.0.16"), SecurityAssociation(300, KEY))
    with pytest.raises(ValueError, match=r"peer 10\.1\.0\.16: SPI 300 already has"):
        store.add_row(IPv4Address("10.1.0.16"), SecurityAssociation(300, b"\x01" * 16))
    with pytest.raises(ValueError, match="already has"):
        store.add(IPv4Address("10.1.0.16"), SecurityAssociation(300, b"\x01" * 16))
    assert len(store) == 1 and store.get(IPv4Address("10.1.0.16"), 300) == (
        SecurityAssociation(300, KEY)
    )
    with pytest.raises(ValueError, match="already"):
        store.attach(TableRows())


def test_a_subscriber_table_costs_tens_of_bytes_a_row(tmp_path: Path) -> None:
    """What a configuration's subscriber table and its store hold per row, with
    tracemalloc, 20,000 rows: under 64 bytes (42 with records; 227 with an association
    object, its key, its SPI, the peer's integer and a dict entry a row)."""
    n = 20000
    table = tmp_path / "subs.csv"
    table.write_text(
        "peer,spi,key\n"
        + "".join(f"10.65.{i >> 8}.{i & 255},{65536 + i},{i:032x}\n" for i in range(n))
    )
    conf = tmp_path / "ha.toml"
    conf.write_text(
        '[home_agent]\naddress = "10.64.0.1"\nhome_network = "10.64.0.0/10"\n'
        'interface = "eth0"\n[subscribers]\nfile = "subs.csv"\n'
    )
    mine = [tracemalloc.Filter(True, os.path.dirname(mip4.security.__file__) + os.sep + "*")]
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot().filter_traces(mine)
        cfg = load_config("ha", conf)
        store = cfg.store()
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(mine)
    finally:
        tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert len(store) == n and store.get(IPv4Address("10.65.0.5"), 65541) is not None
    assert held / n < 64, f"{held / n:.0f} bytes a row"


def _ha_files(tmp_path: Path, rows: str, toml_key: str) -> Path:
    (tmp_path / "subs.csv").write_text("peer,spi,key\n" + rows)
    conf = tmp_path / "ha.toml"
    conf.write_text(
        '[home_agent]\naddress = "10.1.0.2"\nhome_network = "10.1.0.0/24"\n'
        '[subscribers]\nfile = "subs.csv"\n'
        f'[[security_associations]]\npeer = "10.1.0.9"\nspi = 256\nkey = "{toml_key}"\n'
    )
    return conf


def test_a_reload_takes_the_new_table_whole(tmp_path: Path) -> None:
    """SIGHUP with a changed subscriber table: the store holds the new configuration's
    rows themselves (no association object made per row, nothing of the old rows left --
    a row the daemon had removed is back if the new table has it) and the TOML
    association changed beside it is rekeyed."""
    from mip4.core.home_agent import HomeAgent
    from mip4.daemon.reload import reload
    from mip4.daemon.run import build_engine

    key, other = "00" * 16, "ff" * 16
    rows = "".join(f"10.1.0.{16 + i},{65536 + i},{key}\n" for i in range(3))
    running = load_config("ha", _ha_files(tmp_path, rows, key))
    engine = build_engine(running)
    assert isinstance(engine, HomeAgent)
    store = engine.security_associations
    assert isinstance(store, SecurityAssociations)
    assert store.remove(IPv4Address("10.1.0.16"), 65536) is not None
    changed = rows.replace(f"10.1.0.17,65537,{key}", f"10.1.0.17,65537,{other}")
    new = load_config("ha", _ha_files(tmp_path, changed + f"10.1.0.30,70000,{key}\n", other))
    r = reload(running, engine, new)
    assert r.applied == ("security_associations",)
    assert engine.security_associations is store and len(store) == 5
    assert store.table is new.associations.table  # type: ignore[attr-defined]
    assert [(str(p), sa.spi) for p, sa in store.objects()] == [("10.1.0.9", 256)]
    toml = store.get(IPv4Address("10.1.0.9"), 256)
    assert toml is not None and toml.key == bytes.fromhex(other)
    rekeyed = store.get(IPv4Address("10.1.0.17"), 65537)
    assert rekeyed is not None and rekeyed.key == bytes.fromhex(other)
    assert store.get(IPv4Address("10.1.0.16"), 65536) is not None  # back, as the file says
    assert store.get(IPv4Address("10.1.0.30"), 70000) is not None


# -- runs of consecutive peers: the row computed, only the record read (issue 13) --------


_PEERS = st.one_of(
    # sorted and dense (one run), sorted with gaps (a few runs), anything (no runs)
    st.integers(1, 300).map(lambda n: [0x0A000100 + i for i in range(n)]),
    st.lists(st.integers(1, 40), min_size=1, max_size=60).map(
        lambda gaps: [0x0A000100 + sum(gaps[: i + 1]) for i in range(len(gaps))]
    ),
    st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=60),
    st.lists(st.sampled_from([0, 1, 2, 5, 6, 7, 0xFFFFFFFE, 0xFFFFFFFF]), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(_PEERS, st.integers(0, 3), st.randoms(use_true_random=False))
def test_find_answers_as_a_dict_of_the_rows_with_runs_or_without(
    peers: list[int], extra_spis: int, rng: random.Random
) -> None:
    """Whatever the order of the peers -- runs kept or dropped -- ``find`` answers what a
    dict of (peer, SPI) -> row answers, for every row and for peers around and between
    them (before the first, after the last, in a gap, past a run's end, another SPI)."""
    table = TableRows()
    model: dict[tuple[int, int], int] = {}
    appended: list[int] = []
    for peer in peers:
        for spi in [256] + [300 + rng.randrange(3) for _ in range(rng.randrange(extra_spis + 1))]:
            if (peer, spi) not in model:
                model[(peer, spi)] = table.append(peer, SecurityAssociation(spi, KEY))
                appended.append(peer)
    probes = set(model) | {
        (p + d, s) for (p, s) in model for d in (-2, -1, 1, 2) if 0 <= p + d <= 0xFFFFFFFF
    }
    probes |= {(p, s + 1) for (p, s) in model} | {(0, 256), (0xFFFFFFFF, 256)}
    if appended:  # the bounds first_for skips a lookup outside of
        assert (table.lowest, table.highest) == (min(appended), max(appended))
    for peer, spi in probes:
        assert table.find(peer, spi) == model.get((peer, spi), -1), (peer, spi)
        # the peer's first row: the one appended first, as rows_of lists them
        first = min((r for (p, _), r in model.items() if p == peer), default=-1)
        assert table.first_row(peer) == first == (table.rows_of(peer) or [-1])[0], peer
    pairs = list(pairwise(appended))
    if table.runs is not None:  # kept only for rows in increasing peer order
        assert all(a < b for a, b in pairs)
        assert table.runs == (1 if appended else 0) + sum(b != a + 1 for a, b in pairs)
    elif all(a < b for a, b in pairs):  # dropped in order: too many runs for the rows
        assert sum(b != a + 1 for a, b in pairs) + 1 > TableRows.RUNS_FREE


def test_runs_are_kept_for_a_sorted_table_and_dropped_otherwise() -> None:
    dense = TableRows.of((0x0A000100 + i, SecurityAssociation(256 + i, KEY)) for i in range(500))
    assert dense.runs == 1
    # computed from the runs, only the record read: an emptied index changes no answer
    dense._index = array("I", bytes(4 * len(dense._index)))
    assert [dense.find(0x0A000100 + i, 256 + i) for i in range(500)] == list(range(500))
    assert [dense.first_row(0x0A000100 + i) for i in range(500)] == list(range(500))
    assert dense.first_row(0x0A000100 - 1) == dense.first_row(0x0A000100 + 500) == -1
    assert dense.find(0x0A000100 + 500, 756) == -1 and dense.find(0x0A000100, 257) == -1
    gaps = TableRows.of(
        (0x0A000100 + i + (i // 100) * 7, SecurityAssociation(256, KEY)) for i in range(500)
    )
    assert gaps.runs == 5
    unsorted = TableRows.of(
        [(5, SecurityAssociation(256, KEY)), (4, SecurityAssociation(256, KEY))]
    )
    assert unsorted.runs is None
    two_spis = TableRows.of(
        [(5, SecurityAssociation(256, KEY)), (5, SecurityAssociation(257, KEY))]
    )
    assert two_spis.runs is None and two_spis.find(5, 257) == 1 and two_spis.find(5, 256) == 0
    # many short runs (every other address): the index alone, once past the free runs
    sparse = TableRows.of((2 * i, SecurityAssociation(256, KEY)) for i in range(200))
    assert sparse.runs is None
    assert [sparse.find(2 * i, 256) for i in range(200)] == list(range(200))
    assert sparse.find(3, 256) == -1
    few = TableRows.of((2 * i, SecurityAssociation(256, KEY)) for i in range(TableRows.RUNS_FREE))
    assert few.runs == TableRows.RUNS_FREE
    # a table read back from a pickle keeps its runs (rebuilt by appending)
    again = pickle.loads(pickle.dumps(gaps))
    assert again.runs == 5 and again == gaps
