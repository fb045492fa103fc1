"""System tests: real agents in the namespace lab, one lab per test (its id from the
session's unique ``prefix``), always torn down; each test also checks that its lab left
nothing behind, processes included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import lab_id, leftovers


@pytest.fixture
def lab_prefix(prefix: str) -> Iterator[str]:
    """The test's unique lab prefix; after the test, nothing of it may be left."""
    yield prefix
    left = leftovers(prefix)
    assert left == [], f"the lab {lab_id(prefix)} left things behind: {left}"
