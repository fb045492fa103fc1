"""A clean stop of a home agent on the bpf plane with bindings (issue 12 acceptance 4,
issue 13): no map entry is deleted one by one and no route per binding -- the maps go with
the fast path (filters detached, pins removed, object closed), the bindings' routes with the
TUN device -- and nothing is left behind: no filter, clsact hook, pin, map, route, managed
neighbour entry or sysctl change. A route through a device the daemon keeps is still
deleted by itself."""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import time
from collections.abc import Callable
from ipaddress import IPv4Address as A
from pathlib import Path
from typing import Any

import pytest

from mip4.core.actions import InstallBinding, RemoveBinding
from mip4.io.bpf import libbpf as lb
from mip4.io.bpf.plane import BpfPlane, MapName, _Map
from mip4.io.netns import Netns

from .test_agent import COA, _open_ha, _qdiscs, _topology

MakeNetns = Callable[[str], Netns]


def _map_id(fd: int) -> int:
    """The kernel's id of the map behind ``fd`` (``struct bpf_map_info``: type, id, ...)."""
    info = ctypes.create_string_buffer(128)
    size = ctypes.c_uint32(len(info))
    rc = lb.lib().bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size))
    assert rc == 0, f"bpf_obj_get_info_by_fd: {rc}"
    return int(struct.unpack_from("=II", info.raw)[1])


def _maps_alive(ids: list[int]) -> list[int]:
    alive = []
    for map_id in ids:
        fd = lb.lib().bpf_map_get_fd_by_id(map_id)
        if fd >= 0:
            os.close(fd)
            alive.append(map_id)
    return alive


@pytest.mark.lab
def test_a_clean_stop_with_bindings_deletes_no_entry_and_leaves_nothing(
    make_netns: MakeNetns, bpffs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cn, ha, _mn = _topology(make_netns)
    pins = bpffs / "ha"
    homes = [A(f"10.20.0.{100 + i}") for i in range(50)]
    h0, h1 = ha.index("h0"), ha.index("h1")
    redirects = [ha.read_sysctl(f"net.ipv4.conf.{n}.send_redirects") for n in ("h0", "h1")]
    deletes: list[tuple[str, bytes]] = []
    delete = _Map.delete

    def counting(self: _Map, key: bytes) -> bool:
        deletes.append((self.name, key))
        return delete(self, key)

    io = _open_ha(ha, pins)
    try:
        fast = io.fast_path
        assert fast is not None
        ex = io.executor
        for home in homes:
            ex.execute(InstallBinding(home, COA))
        # a route through a device the daemon keeps: deleted by itself at the stop
        ex.ns.add_route("10.66.0.0/16", gateway="10.10.0.2", ifname="h0")
        assert set(fast.plane.bindings()) == set(homes)
        routes = ha.exec(["ip", "-4", "route", "show"]).stdout
        assert all(f"{h} dev mip4bpf-t" in routes for h in homes)
        assert "managed" in ha.exec(["ip", "neigh", "show", "dev", "h1"]).stdout
        ids = [_map_id(m.fd) for m in fast.plane._maps.values()]
        assert sorted(p.name for p in pins.iterdir()) == sorted(m.value for m in MapName)
        route_deletes: list[dict[str, object]] = []
        route = ex.ns.ipr.route

        def counting_routes(command: str, **kw: object) -> Any:
            if command == "del":
                route_deletes.append(kw)
            return route(command, **kw)

        ex.ns.ipr.route = counting_routes  # type: ignore[method-assign]
        monkeypatch.setattr(_Map, "delete", counting)
    finally:
        io.close()
    monkeypatch.undo()

    # no delete per entry, no route delete per binding; the kept device's route by itself
    assert deletes == []
    assert [(kw["dst"], kw.get("oif")) for kw in route_deletes] == [("10.66.0.0", h0)]
    # nothing left behind
    assert "mip4bpf-t" not in ha.exec(["ip", "-o", "link"]).stdout
    left = ha.exec(["ip", "-4", "route", "show", "table", "all"]).stdout
    assert not [h for h in homes if str(h) in left], left
    assert "10.66.0.0" not in left
    assert ha.run(lambda: BpfPlane.attached(h0)) == ha.run(lambda: BpfPlane.attached(h1)) == 0
    assert "clsact" not in _qdiscs(ha)
    assert not pins.exists()  # no pin, nor the directory made for them
    assert "managed" not in ha.exec(["ip", "neigh", "show", "dev", "h1"]).stdout
    assert [ha.read_sysctl(f"net.ipv4.conf.{n}.send_redirects") for n in ("h0", "h1")] == redirects
    # the maps themselves are freed (after the programs, which the kernel frees later)
    deadline = time.monotonic() + 10
    while _maps_alive(ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _maps_alive(ids) == []


@pytest.mark.lab
def test_the_hosts_own_neighbour_entry_is_given_back_plain_not_deleted(
    make_netns: MakeNetns, bpffs: Path
) -> None:
    """The next hop towards a care-of address already had an entry (the kernel learnt it,
    or an operator made it: a gateway's, say). The fast path makes it managed while a
    binding needs it; when the binding goes, and at a clean stop, the entry is the host's
    again -- the same hardware address, no longer managed -- not deleted from under it.
    An entry the fast path made itself still goes."""
    _cn, ha, mn = _topology(make_netns)
    mac = mn.link_address("f0").hex(":")
    ha.exec(["ip", "neigh", "replace", str(COA), "dev", "h1", "lladdr", mac, "nud", "stale"])

    def entry() -> str:
        return ha.exec(["ip", "neigh", "show", str(COA), "dev", "h1"]).stdout.strip()

    home = A("10.20.0.100")
    io = _open_ha(ha, bpffs / "ha")
    try:
        ex = io.executor
        ex.execute(InstallBinding(home, COA))
        assert "managed" in entry() and mac in entry()
        ex.execute(RemoveBinding(home, COA))  # the binding goes: the entry stays, plain
        assert mac in entry() and "managed" not in entry()
        ex.execute(InstallBinding(home, COA))
        assert "managed" in entry()
    finally:
        io.close()
    assert mac in entry() and "managed" not in entry()  # the clean stop: the same
    # an operator's permanent entry is never touched, nor deleted when the binding goes
    ha.exec(["ip", "neigh", "replace", str(COA), "dev", "h1", "lladdr", mac, "nud", "permanent"])
    io = _open_ha(ha, bpffs / "ha")
    try:
        io.executor.execute(InstallBinding(home, COA))
        io.executor.execute(RemoveBinding(home, COA))
        assert mac in entry() and "PERMANENT" in entry()
    finally:
        io.close()
    assert mac in entry() and "PERMANENT" in entry()
    # without an entry before, the one the fast path made goes with the binding
    ha.exec(["ip", "neigh", "del", str(COA), "dev", "h1"])
    io = _open_ha(ha, bpffs / "ha")
    try:
        io.executor.execute(InstallBinding(home, COA))
        assert "managed" in entry()
        io.executor.execute(RemoveBinding(home, COA))
        assert entry() == ""
    finally:
        io.close()


@pytest.mark.lab
def test_maps_that_cannot_be_pinned_are_said_at_start(
    make_netns: MakeNetns, bpffs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a bpffs (a daemon under ``ip netns exec``, whose /sys is its own) the maps
    are not pinned, and a crash stops fast-path forwarding until the restart (issue 12
    acceptance 4 needs the pins): the start says so, with what to do; with pins, nothing."""
    _cn, ha, _mn = _topology(make_netns)
    with caplog.at_level(logging.WARNING):
        _open_ha(ha, None).close()
    (said,) = [r.getMessage() for r in caplog.records if "bpf.unpinned" in r.getMessage()]
    assert "a crash of this daemon stops fast-path forwarding" in said
    assert "mount -t bpf bpf /sys/fs/bpf" in said
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _open_ha(ha, bpffs / "ha").close()
    assert not [r for r in caplog.records if "bpf.unpinned" in r.getMessage()]
