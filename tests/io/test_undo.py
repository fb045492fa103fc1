"""Undo stacks and their journal: one owner per record, newest first, a record kept once,
the journal mirrors the kernel records and reads back the same."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.io.undo import (
    KINDS,
    AddressRecord,
    Journal,
    KernelRecord,
    LinkRecord,
    NeighbourRecord,
    ProxyNeighbourRecord,
    RouteRecord,
    RuleRecord,
    SysctlRecord,
    UndoStack,
    WithdrawnRouteRecord,
    from_json,
    load_journal,
    resource_stack,
    to_json,
)

EVERY_KIND: list[KernelRecord] = [
    LinkRecord("v0"),
    AddressRecord(3, "10.0.0.1", 24),
    RouteRecord("10.1.0.100", 32, 254, 7, None),
    RouteRecord("0.0.0.0", 0, 434, None, "10.2.0.1"),
    WithdrawnRouteRecord("10.1.0.0", 24, 3, "10.1.0.100", "eth0"),
    RuleRecord(434, 4340, "10.1.0.100", 32, "eth0"),
    NeighbourRecord("10.2.0.2", 3),
    ProxyNeighbourRecord("10.1.0.100", 3, "eth0"),
    SysctlRecord("net.ipv4.ip_forward", "0"),
]


def test_every_kind_round_trips_through_json() -> None:
    assert {type(r) for r in EVERY_KIND} == set(KINDS.values())
    for record in EVERY_KIND:
        assert from_json(json.loads(json.dumps(to_json(record)))) == record
    with pytest.raises(ValueError, match="unknown record kind"):
        from_json({"kind": "teapot"})
    with pytest.raises(ValueError, match="bad RouteRecord"):
        from_json({"kind": "route", "dst": "10.0.0.0"})


def test_stack_undoes_newest_first_once_and_mirrors_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "run" / "fa-t-netns1.undo.json"
    journal = Journal(path)
    undone: list[object] = []
    a = UndoStack(undone.append, journal, "daemon")
    b = UndoStack(undone.append, journal, "visitor")
    assert a.push(EVERY_KIND[0]) and b.push(EVERY_KIND[2])
    assert not b.push(RouteRecord("10.1.0.100", 32, 254, 7))  # a renewal: kept once
    b.callback("forget the visitor", lambda: undone.append("callback"))
    a.push(EVERY_KIND[-1])
    assert load_journal(path) == [EVERY_KIND[0], EVERY_KIND[2], EVERY_KIND[-1]]
    assert b.undo() == []
    assert undone == ["callback", EVERY_KIND[2]]
    assert load_journal(path) == [EVERY_KIND[0], EVERY_KIND[-1]]
    assert a.discard(lambda r: r == EVERY_KIND[0]) == [EVERY_KIND[0]]
    assert load_journal(path) == [EVERY_KIND[-1]]
    assert a.undo() == [] and not path.exists()  # nothing owned: no journal left
    assert undone[-1] == EVERY_KIND[-1]


def test_a_failing_undo_is_reported_and_the_rest_still_run(tmp_path: Path) -> None:
    def undo_one(record: KernelRecord) -> None:
        if isinstance(record, RuleRecord):
            raise OSError("gone")

    stack = UndoStack(undo_one, Journal(tmp_path / "j.json"), "x")
    for record in EVERY_KIND:
        stack.push(record)
    assert stack.undo() == ["rule priority 4340 table 434: gone"]
    assert len(stack) == 0 and not (tmp_path / "j.json").exists()


def test_resource_stack_takes_only_clean_up_steps() -> None:
    stack = resource_stack("node I/O")
    closed: list[str] = []
    stack.callback("close a", lambda: closed.append("a"))
    stack.callback("close b", lambda: closed.append("b"))
    stack.push(LinkRecord("v0"))
    assert stack.undo() == ["link v0: this stack holds no kernel records: link v0"]
    assert closed == ["b", "a"]


def test_unreadable_journal_names_the_file_and_a_cut_last_line_is_ignored(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.json"
    assert load_journal(path) == []
    journal = Journal(path)
    journal.add(EVERY_KIND[0])
    journal.add(EVERY_KIND[1])
    journal.close()
    good = path.read_text()
    path.write_text(good + '{"op": "add", "kind": "rou')  # killed while writing
    assert load_journal(path) == [EVERY_KIND[0], EVERY_KIND[1]]
    path.write_text("{not json\n" + good)
    with pytest.raises(ValueError, match=r"j\.json: unreadable undo journal, line 1"):
        load_journal(path)


def test_the_journal_appends_one_line_per_change_and_stays_small(tmp_path: Path) -> None:
    """A new binding costs one appended line, not a rewrite; churn is compacted."""
    path = tmp_path / "ha.undo.json"
    journal = Journal(path)
    stack = UndoStack(lambda r: None, journal, "daemon")
    stack.push(SysctlRecord("net.ipv4.ip_forward", "0"))
    for i in range(1_000):
        binding = UndoStack(lambda r: None, journal, f"binding {i}")
        binding.push(RouteRecord(f"10.1.{i // 250}.{i % 250}", 32, 254, 7))
        assert len(path.read_text().splitlines()) <= 2 * 2 + 64 + 1
        binding.undo()
    assert load_journal(path) == [SysctlRecord("net.ipv4.ip_forward", "0")]
    lines = len(path.read_text().splitlines())
    stack.push(RouteRecord("10.9.0.0", 16, 254, 7))
    assert len(path.read_text().splitlines()) == lines + 1
    stack.undo()
    assert not path.exists()


def test_dotted_is_str_of_the_address_whatever_came_before() -> None:
    """``dotted`` keeps the last address's text: the same object again, an equal one, a
    different one, in any order, always give ``str(address)``."""
    import random

    from mip4.io.undo import dotted

    rng = random.Random(13)
    pool = [IPv4Address(rng.getrandbits(32)) for _ in range(20)]
    pool += [IPv4Address(int(a)) for a in pool[:5]]  # equal, other objects
    pool += [IPv4Address(0), IPv4Address("255.255.255.255"), IPv4Address("10.0.0.1")]
    for _ in range(2000):
        a = rng.choice(pool)
        for _ in range(rng.randrange(1, 4)):
            assert dotted(a) == str(a)


def test_a_torn_down_journal_writes_no_line_per_removal_and_goes_with_the_last(
    tmp_path: Path,
) -> None:
    """A clean stop undoes everything (issue 13: a million bindings): after
    :meth:`Journal.tear_down` a removal writes nothing and compacts nothing -- the file still
    names every record until the last is removed, then it goes. Killed half way, the next
    start finds a superset of what is left, and undoing a record already gone does
    nothing."""
    path = tmp_path / "ha.undo.json"
    journal = Journal(path)
    daemon = UndoStack(lambda r: None, journal, "daemon")
    daemon.push(SysctlRecord("net.ipv4.ip_forward", "0"))
    bindings = []
    for i in range(300):
        b = UndoStack(lambda r: None, journal, f"binding {i}")
        b.push(RouteRecord(f"10.1.{i // 250}.{i % 250}", 32, 254, 7))
        bindings.append(b)
    before = path.read_text()
    everything = load_journal(path)
    assert len(everything) == 301
    journal.tear_down()
    for b in bindings[:200]:
        b.undo()
    assert path.read_text() == before  # not a line written, nothing rewritten
    assert load_journal(path) == everything  # a crash now: a superset of what is left
    for b in bindings[200:]:
        b.undo()
    daemon.undo()
    assert not path.exists()
