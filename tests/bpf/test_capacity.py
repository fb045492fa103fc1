"""The fast path's map capacity (issue 13's scale, ``[io] fast_path_capacity``).

The object declares 65,536 entries per address map (three counters per address): a home
agent with more bindings than that needs bigger maps. ``BpfPlane(capacity=N)`` sizes every
per-address hash map at N (the counters at 3N) before the load, allocated as entries are
made rather than all at once; the events array keeps its size. Past N an update fails with
``E2BIG`` (the agent then leaves the entry to the user-space plane: test_map_full.py). Pinned
maps of the same capacity are reused across a restart; of another capacity they are not
(libbpf refuses them) and the plane starts with new maps."""

from __future__ import annotations

import errno
from collections.abc import Callable
from ipaddress import IPv4Address as A
from pathlib import Path

import pytest

from mip4.io.bpf import CAPACITY, MAX_CAPACITY, MIN_CAPACITY
from mip4.io.bpf.libbpf import BpfError
from mip4.io.bpf.plane import BpfPlane, MapName, Tunnel
from mip4.io.netns import Netns

from .test_agent import _open_ha, _topology

MakeNetns = Callable[[str], Netns]
PER_ADDRESS = (MapName.BINDINGS, MapName.REVERSE, MapName.PEERS, MapName.VISITORS, MapName.ACCT)
TUNNEL = Tunnel(A("10.0.0.1"), A("10.9.0.1"))
BASE = int(A("100.64.0.0"))


def _sizes(plane: BpfPlane) -> dict[MapName, int]:
    return {m: plane.max_entries(m) for m in MapName}


def test_the_objects_sizes_unless_a_capacity_is_given() -> None:
    with BpfPlane() as default, BpfPlane(capacity=4096) as small:
        d, s = _sizes(default), _sizes(small)
    for m in PER_ADDRESS:
        assert d[m] == CAPACITY and s[m] == 4096, m
    assert (d[MapName.STATS], s[MapName.STATS]) == (3 * CAPACITY, 3 * 4096)
    assert s[MapName.EVENTS] == d[MapName.EVENTS] < 64  # one slot per event, not sized


def test_a_map_holds_its_capacity_and_refuses_one_more() -> None:
    with BpfPlane(capacity=MIN_CAPACITY) as plane:
        for i in range(MIN_CAPACITY):
            plane.set_binding(A(BASE + i), TUNNEL)
        with pytest.raises(BpfError) as e:
            plane.set_binding(A(BASE + MIN_CAPACITY), TUNNEL)
        assert e.value.errno == errno.E2BIG
        plane.set_binding(A(BASE), Tunnel(A("10.0.0.1"), A("10.9.0.2")))  # a change fits
        assert len(plane.bindings()) == MIN_CAPACITY


@pytest.mark.parametrize("capacity", [0, MIN_CAPACITY - 1, MAX_CAPACITY + 1])
def test_a_capacity_out_of_bounds_is_refused(capacity: int) -> None:
    with pytest.raises(ValueError, match=f"capacity {capacity} not in"):
        BpfPlane(capacity=capacity)


def test_pinned_maps_are_reused_at_the_same_capacity_and_not_at_another(bpffs: Path) -> None:
    pins = bpffs / "cap"
    pins.mkdir()
    home = A(BASE)
    with BpfPlane(pin_dir=pins, capacity=2048) as first:
        first.set_binding(home, TUNNEL)
    with BpfPlane(pin_dir=pins, capacity=2048) as again:  # a restart: the same maps
        assert again.bindings() == {home: TUNNEL}
        assert again.max_entries(MapName.BINDINGS) == 2048
    with BpfPlane(pin_dir=pins, capacity=4096) as bigger:  # another size: new maps
        assert bigger.bindings() == {}
        assert bigger.max_entries(MapName.BINDINGS) == 4096
        bigger.unpin()


@pytest.mark.lab
def test_the_home_agents_fast_path_has_the_capacity_it_was_opened_with(
    make_netns: MakeNetns,
) -> None:
    _cn, ha, _mn = _topology(make_netns)
    with _open_ha(ha, bpf_capacity=2048) as io:
        assert io.fast_path is not None
        assert io.fast_path.plane.max_entries(MapName.BINDINGS) == 2048
        assert io.fast_path.plane.max_entries(MapName.STATS) == 3 * 2048
