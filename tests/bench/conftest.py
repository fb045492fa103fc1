"""Fixtures of the benchmark tests."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture
def _cc_present() -> None:
    """The load generator of ``mip4 bench registrations|bindings`` is compiled at run time;
    a machine without cc fails the tests that use it (scripts/setup.sh installs clang/make
    for the BPF object; Debian's cc comes with gcc)."""
    assert shutil.which("cc") or shutil.which("gcc"), (
        "no C compiler (cc/gcc) for the load generator"
    )
