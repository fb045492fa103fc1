"""Issue 13: the journal writes each line without ``dataclasses.asdict``; the lines are the
ones the previous code wrote (``json.dumps({"op": op, "kind": kind, **asdict(record)})``)
and they load back as the same records."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

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
    WithdrawnRouteRecord,
    from_json,
    load_journal,
    to_json,
)

RECORDS: list[KernelRecord] = [
    LinkRecord('we"ird\\name\u00e9'),
    AddressRecord(3, "10.0.0.1", 24),
    RouteRecord("10.1.0.16", 32),
    RouteRecord("0.0.0.0", 0, 1000, 7, "10.9.0.5"),
    WithdrawnRouteRecord("10.9.0.0", 24, 4, "10.9.0.1", "v0"),
    RuleRecord(100, 1000),
    RuleRecord(100, 1001, "10.1.0.16", 32, "tun0"),
    NeighbourRecord("10.9.0.7", 4),
    ProxyNeighbourRecord("10.1.0.16", 4, "home0"),
    SysctlRecord("net.ipv4.ip_forward", "0"),
]


def _old_line(op: str, record: KernelRecord) -> str:
    kind = {cls: k for k, cls in KINDS.items()}[type(record)]
    return json.dumps({"op": op, **{"kind": kind, **asdict(record)}}) + "\n"


def test_every_kind_is_covered() -> None:
    assert {type(r) for r in RECORDS} == set(KINDS.values())


def test_to_json_is_asdict_with_the_kind() -> None:
    for r in RECORDS:
        kind = {cls: k for k, cls in KINDS.items()}[type(r)]
        assert to_json(r) == {"kind": kind, **asdict(r)}
        assert list(to_json(r)) == ["kind", *asdict(r)]
        assert from_json(to_json(r)) == r


def test_lines_are_the_previous_ones(tmp_path: Path) -> None:
    path = tmp_path / "undo.journal"
    j = Journal(path)
    for r in RECORDS:
        j.add(r)
    j.remove(RECORDS[2])
    want = [_old_line("add", r) for r in RECORDS] + [_old_line("del", RECORDS[2])]
    assert path.read_text(encoding="utf-8") == "".join(want)
    assert load_journal(path) == [r for r in RECORDS if r != RECORDS[2]]
    j.close()
