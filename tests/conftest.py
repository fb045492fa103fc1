"""Shared fixtures: root / namespace availability, unique name prefixes, leftover checks.

Every test that touches the kernel takes names from :func:`prefix` (``m4`` + a random run
id), so parallel runs and leftovers of crashed runs never collide. The session remembers
every prefix it handed out and, at the end, fails if any namespace, root-namespace link,
nftables table or lab state directory with one of those prefixes still exists
(pyroute2 ``tests/test_linux/fixtures`` style: one namespace set per test, always torn down).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from mip4.io.netns import Netns, delete_by_prefix, netns_available

# Hypothesis' per-example deadline (200 ms) is a timing assertion: on a machine busy with
# other work the first example (which imports scapy, say) exceeds it and the test fails
# for a reason that says nothing about mip4. Speed lives in benchmarks (ground rules), so
# property tests run without it; every property they assert is unchanged.
settings.register_profile("mip4", deadline=None)
settings.load_profile("mip4")

ISSUED: list[str] = []


def new_prefix() -> str:
    """``m4`` + 5 hex digits: short enough to leave room in a 15-byte interface name."""
    p = "m4" + secrets.token_hex(3)[:5]
    ISSUED.append(p)
    return p


def leftovers(prefix: str) -> list[str]:
    """Kernel objects and files whose names start with ``prefix``, as readable strings."""
    import subprocess

    from mip4.io.netns import list_netns

    found = [f"netns {n}" for n in list_netns() if n.startswith(prefix)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefix):
            found.append(f"link {name}")
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [f"nft {t}" for t in nft.splitlines() if prefix in t]
    run = Path("/run")
    found += [f"dir {d}" for d in run.glob(f"mip4-lab-{prefix[2:]}*")]
    return found


_REASON = netns_available()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _REASON is None:
        return
    skip = pytest.mark.skip(reason=f"lab test skipped: {_REASON}")
    for item in items:
        if item.get_closest_marker("lab"):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    """At the end of the session no ``m4`` namespace made by this session may exist: none
    under a prefix it handed out, and none that this process created under any name (the
    check ignores namespaces of concurrent runs, which it did not make)."""
    yield
    from mip4.io.netns import CREATED_HERE, delete_netns, list_netns

    left = [x for p in ISSUED for x in leftovers(p)]
    left += [f"netns {n}" for n in list_netns() if n in CREATED_HERE and f"netns {n}" not in left]
    for p in ISSUED:
        delete_by_prefix(p)
    for n in CREATED_HERE:
        delete_netns(n)
    assert left == [], f"test run left kernel state behind: {left}"


@pytest.fixture
def needs_bpf() -> None:
    """Skips the test where the bpf plane cannot run: without root, or where the kernel
    does not load the object (the reason is the probe's)."""
    from mip4.io.bpf.plane import bpf_plane_unavailable

    reason = "needs root" if os.geteuid() != 0 else bpf_plane_unavailable()
    if reason is not None:
        pytest.skip(f"bpf plane unavailable: {reason}")


@pytest.fixture
def prefix() -> Iterator[str]:
    """A unique name prefix for this test; anything left under it is removed and reported."""
    p = new_prefix()
    yield p
    left = leftovers(p)
    delete_by_prefix(p)
    assert left == [], f"test left kernel state behind: {left}"


@pytest.fixture
def make_netns(prefix: str) -> Iterator[Callable[[str], Netns]]:
    """``make_netns("a")`` creates namespace ``<prefix>-a``; all are deleted at teardown,
    also when the test fails."""
    made: list[Netns] = []

    def make(suffix: str) -> Netns:
        ns = Netns(f"{prefix}-{suffix}", create=True)
        made.append(ns)
        return ns

    yield make
    for ns in reversed(made):
        ns.close()
