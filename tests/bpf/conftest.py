"""Fixtures for the tc-BPF plane tests: a loaded object per test (fresh maps and counters),
skipped where the kernel or privileges do not allow loading BPF."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mip4.io.bpf.plane import BpfPlane, bpf_plane_unavailable

_REASON = "needs root (CAP_BPF, CAP_NET_ADMIN)" if os.geteuid() != 0 else bpf_plane_unavailable()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _REASON is None:
        return
    skip = pytest.mark.skip(reason=f"bpf plane unavailable: {_REASON}")
    here = os.path.dirname(__file__)
    for item in items:
        # the object/source checks need no kernel; everything else here loads programs
        if str(item.path).startswith(here) and item.path.name != "test_object.py":
            item.add_marker(skip)


@pytest.fixture
def plane() -> Iterator[BpfPlane]:
    with BpfPlane() as p:
        yield p


@pytest.fixture
def bpffs(tmp_path: Path) -> Iterator[Path]:
    """A private bpffs mount for pins (unique under the test's tmp dir), unmounted -- pins
    and all -- at teardown."""
    mnt = tmp_path / "bpffs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
