"""Issue 13: with ``Journal.defer`` (the daemon's event loop) the journal's lines of one
pass of the loop are held and written by one ``write`` -- the same lines, in the same
order, as when each is written at once; ``flush`` writes them early (the executor before
a reply), a closed loop or ``close`` writes them at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mip4.io.undo import (
    Journal,
    ProxyNeighbourRecord,
    RouteRecord,
    load_journal,
)

RECORDS = [RouteRecord(f"10.1.0.{i}", 32, 254, 7) for i in range(16, 26)] + [
    ProxyNeighbourRecord(f"10.1.0.{i}", 3, "home0") for i in range(16, 26)
]


class Writes:
    """Counts the writes that reach the journal's file."""

    def __init__(self, journal: Journal) -> None:
        self.count = 0
        original = journal._write

        def write(text: str) -> None:
            self.count += 1
            original(text)

        journal._write = write  # type: ignore[method-assign]


def _replay(journal: Journal) -> None:
    for r in RECORDS:
        journal.add(r)
    for r in RECORDS[::3]:
        journal.remove(r)


def test_held_lines_are_the_immediate_ones_in_one_write(tmp_path: Path) -> None:
    immediate = Journal(tmp_path / "a.journal")
    _replay(immediate)
    held = Journal(tmp_path / "b.journal")
    soon: list[Callable[[], None]] = []
    held.defer = soon.append
    writes = Writes(held)
    _replay(held)
    assert writes.count == 0 and held.pending == len(RECORDS) + len(RECORDS[::3])
    assert not held.path.exists() or held.path.read_text() == ""
    assert len(soon) == 1  # one flush asked for, for the whole pass
    soon.pop()()
    assert writes.count == 1 and held.pending == 0
    assert held.path.read_text() == immediate.path.read_text()
    assert load_journal(held.path) == load_journal(immediate.path)
    immediate.close()
    held.close()


def test_flush_writes_early_and_the_next_pass_asks_again(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.journal")
    soon: list[Callable[[], None]] = []
    j.defer = soon.append
    j.add(RECORDS[0])
    j.add(RECORDS[10])
    j.flush()  # e.g. before a reply
    assert load_journal(j.path) == [RECORDS[0], RECORDS[10]]
    soon.pop()()  # the loop's flush: nothing left
    j.add(RECORDS[1])
    assert len(soon) == 1 and load_journal(j.path) == [RECORDS[0], RECORDS[10]]
    j.close()  # close writes what is held
    assert load_journal(j.path) == [RECORDS[0], RECORDS[10], RECORDS[1]]


def test_a_closed_loop_writes_at_once(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.journal")

    def closed(_func: Callable[[], None]) -> None:
        raise RuntimeError("Event loop is closed")

    j.defer = closed
    j.add(RECORDS[0])
    assert load_journal(j.path) == [RECORDS[0]] and j.defer is None
    j.close()


def test_the_last_removal_drops_held_lines_and_the_file(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.journal")
    soon: list[Callable[[], None]] = []
    j.defer = soon.append
    j.add(RECORDS[0])
    j.remove(RECORDS[0])
    assert j.pending == 0 and not j.path.exists()
    for f in soon:
        f()
    assert not j.path.exists()


def test_compaction_keeps_every_live_record(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.journal")
    soon: list[Callable[[], None]] = []
    j.defer = soon.append
    keep = RouteRecord("10.2.0.1", 32)
    j.add(keep)
    for i in range(200):  # enough dead lines for a compaction
        r = RouteRecord(f"10.3.{i // 250}.{i % 250}", 32)
        j.add(r)
        j.remove(r)
    for f in soon:
        f()
    assert load_journal(j.path) == [keep]
    j.close()


def test_a_line_is_what_json_dumps_writes() -> None:
    """Every record kind, with field text that needs escaping, and None fields."""
    import json
    import random

    from mip4.io.undo import (
        KINDS,
        AddressRecord,
        KernelRecord,
        LinkRecord,
        NeighbourRecord,
        RuleRecord,
        SysctlRecord,
        WithdrawnRouteRecord,
        journal_line,
        to_json,
    )

    rng = random.Random(13)
    alphabet = 'ab"\\\n\t\u00e9\u2028\x00/ .:'

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))

    records: list[KernelRecord] = []
    for _ in range(200):
        n = rng.getrandbits(32)
        records += [
            LinkRecord(text()),
            AddressRecord(n, text(), rng.randrange(33)),
            RouteRecord(
                text(), rng.randrange(33), n, rng.choice([None, n]), rng.choice([None, text()])
            ),
            WithdrawnRouteRecord(text(), 24, n, text(), text()),
            RuleRecord(
                n, n, rng.choice([None, text()]), rng.choice([None, 24]), rng.choice([None, text()])
            ),
            NeighbourRecord(text(), n),
            ProxyNeighbourRecord(text(), n, text()),
            SysctlRecord(text(), text()),
        ]
    assert {type(r) for r in records} == set(KINDS.values())
    for r in records:
        for op in ("add", "del"):
            assert journal_line(op, r) == json.dumps({"op": op, **to_json(r)}) + "\n"


def test_a_compacted_file_is_what_json_dumps_writes(tmp_path: Path) -> None:
    """The rewrite holds each live record (as often as stacks hold it) as the line
    ``json.dumps`` writes for it -- what the previous code wrote, escapes and ``null``
    fields included -- in the order the records were first added."""
    import json

    from mip4.io.undo import KernelRecord, ProxyNeighbourRecord, to_json

    j = Journal(tmp_path / "j.journal")
    live: list[KernelRecord] = [
        RouteRecord("10.2.0.1", 32),
        ProxyNeighbourRecord("10.2.0.1", 4, 'ho"me\u00e9'),
        RouteRecord("0.0.0.0", 0, 1000, 7, "10.9.0.5"),
    ]
    for r in live:
        j.add(r)
    j.add(live[0])  # held twice
    for i in range(200):  # enough dead lines for a compaction
        r = RouteRecord(f"10.3.{i // 250}.{i % 250}", 32)
        j.add(r)
        j.remove(r)
    want = [live[0], live[0], live[1], live[2]]
    text = j.path.read_text(encoding="utf-8")
    compacted = "".join(json.dumps({"op": "add", **to_json(r)}) + "\n" for r in want)
    assert text.startswith(compacted)
    assert all(line.startswith('{"op": ') for line in text[len(compacted) :].splitlines())
    assert load_journal(j.path) == live
    j.close()
