"""An undo stack keeps its first records in a list and the rest in a dict (issue 13: a home
agent has a stack per binding, of two records): whatever the size, and across the switch,
it behaves as one ordered set -- an equal record is not pushed twice, a record is forgotten
wherever it is, undo goes newest first, also when an undo step pushes onto or forgets from
the same stack -- and the journal mirrors it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mip4.io.undo import Journal, Record, RouteRecord, UndoStack, load_journal

SMALL = UndoStack.SMALL


def _route(i: int) -> RouteRecord:
    return RouteRecord(f"10.3.{i // 256}.{i % 256}", 32, 254, 7)


@pytest.mark.parametrize("n", [1, SMALL - 1, SMALL, SMALL + 1, 3 * SMALL])
def test_any_size_is_an_ordered_set_undone_newest_first(n: int, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.json")
    undone: list[Record] = []
    stack = UndoStack(undone.append, journal, "s")
    for i in range(n):
        assert stack.push(_route(i))
        assert not stack.push(_route(i))  # an equal one (another object): not twice
    assert len(stack) == n
    assert stack.records == [_route(i) for i in range(n)]
    assert _route(0) in stack and _route(n) not in stack
    assert load_journal(journal.path) == [_route(i) for i in range(n)]
    middle = _route(n // 2)
    assert stack.forget(middle)
    assert not stack.forget(middle)
    assert middle not in stack
    assert stack.undo() == []
    assert undone == [_route(i) for i in reversed(range(n)) if i != n // 2]
    assert len(stack) == 0
    assert not journal.path.exists()


@pytest.mark.parametrize("n", [2, SMALL, SMALL + 2])
def test_an_undo_step_that_changes_its_own_stack(n: int, tmp_path: Path) -> None:
    """A step pushing a record (past the list's size too) has it undone next; a step
    forgetting an older record has it skipped; the journal ends empty."""
    journal = Journal(tmp_path / "j.json")
    undone: list[Record] = []
    stack = UndoStack(undone.append, journal, "s")
    for i in range(n):
        stack.push(_route(i))
    late = [_route(1000 + i) for i in range(SMALL + 1)]
    calls: list[str] = []

    def push_more() -> None:
        calls.append("push")
        for r in late:
            stack.push(r)

    def forget_first() -> None:
        calls.append("forget")
        stack.forget(_route(0))

    stack.callback("forget first", forget_first)
    stack.callback("push more", push_more)
    assert stack.undo() == []
    assert calls == ["push", "forget"]
    assert undone == [*reversed(late), *(_route(i) for i in reversed(range(1, n)))]
    assert len(stack) == 0
    assert not journal.path.exists()
