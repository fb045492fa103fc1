"""TransitionTable's identity-keyed fast path (issue 13) decides exactly as the table does."""

from __future__ import annotations

import pytest

from mip4.core.home_agent import BINDING_TRANSITIONS, BindingInput, BindingState
from mip4.core.registration import ProtocolError, TransitionTable


def test_every_pair_and_outcome_matches_the_table() -> None:
    table = BINDING_TRANSITIONS.table
    for s in BindingState:
        for i in BindingInput:
            if (s, i) not in table:
                with pytest.raises(ProtocolError):
                    BINDING_TRANSITIONS.check(s, i)
                continue
            assert BINDING_TRANSITIONS.check(s, i) is table[(s, i)]
            for after in BindingState:
                if after in table[(s, i)]:
                    BINDING_TRANSITIONS.confirm(s, i, after)
                else:
                    with pytest.raises(ProtocolError):
                        BINDING_TRANSITIONS.confirm(s, i, after)


def test_equal_objects_that_are_not_the_tables_own_take_the_general_path() -> None:
    def fresh(text: str) -> str:
        return "".join(list(text))  # equal, not identical

    t: TransitionTable[str, str] = TransitionTable(
        "t", {(fresh("away"), fresh("go")): frozenset({fresh("home")})}
    )
    s, i, after = fresh("away"), fresh("go"), fresh("home")
    assert s is not next(iter(t.table))[0]
    assert t.check(s, i) == frozenset({"home"})
    t.confirm(s, i, after)
    with pytest.raises(ProtocolError):
        t.confirm(s, i, fresh("away"))
    with pytest.raises(ProtocolError):
        t.check(i, s)
