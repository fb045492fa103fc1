"""The control side without devices: the kernel probe, pinned maps surviving a reload (a
daemon restart) and removed on a clean stop, and libbpf errors that say what failed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mip4.io.bpf.libbpf import BpfError
from mip4.io.bpf.plane import (
    BpfPlane,
    Encap,
    Event,
    MapName,
    Peer,
    Tunnel,
    bpf_plane_unavailable,
    supports_bpf_plane,
)

from .frames import COA, HA, HOME


def pins(mnt: Path) -> list[str]:
    """Our pins (a fresh bpffs may also hold the kernel's maps.debug/progs.debug)."""
    return sorted(p.name for p in mnt.iterdir() if p.name.startswith("mip4_"))


def test_probe_accepts_this_kernel() -> None:
    assert bpf_plane_unavailable() is None
    assert supports_bpf_plane()


def test_probe_refuses_an_old_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.uname()

    class Old:
        release = "5.4.0-150-generic"

    monkeypatch.setattr(os, "uname", lambda: Old)
    assert bpf_plane_unavailable() == "kernel 5.4 < 5.10"
    assert not supports_bpf_plane()
    assert real.release  # the real one is untouched


def test_probe_reports_a_failed_load(tmp_path: Path) -> None:
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an ELF object")
    reason = bpf_plane_unavailable(junk)
    assert reason is not None and reason.startswith("test load failed")


def test_pinned_maps_survive_a_reload_and_go_on_unpin(bpffs: Path) -> None:
    t = Tunnel(HA, COA, Encap.GRE, key=3)
    with BpfPlane(pin_dir=bpffs) as first:
        first.set_binding(HOME, t)
        first.set_peer(Peer(HA, COA))
    assert pins(bpffs) == sorted(m.value for m in MapName)
    with BpfPlane(pin_dir=bpffs) as second:  # a restarted daemon: reconcile from here
        assert second.bindings() == {HOME: t}
        assert second.peers() == [Peer(HA, COA)]
        second.unpin()
    assert pins(bpffs) == []
    with BpfPlane(pin_dir=bpffs) as third:  # after a clean stop: empty maps
        assert third.bindings() == {}
        third.unpin()


def test_pin_dir_not_on_bpffs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BpfError) as e:
        BpfPlane(pin_dir=tmp_path)
    assert "bpf_object__load" in str(e.value)


def test_pins_of_another_layout_are_replaced(bpffs: Path) -> None:
    """An upgrade that changed a map (here ``mip4_events`` pinned with 3 entries, as no
    version of the object has it): libbpf refuses to reuse such a pin; the plane unpins
    what is there and loads with new maps (a restarted daemon reconciles them from an
    empty binding table anyway)."""
    import ctypes

    from mip4.io.bpf import libbpf as lb

    bpf = lb.lib()
    create, pin = bpf.bpf_map_create, bpf.bpf_obj_pin
    create.restype, pin.restype = ctypes.c_int, ctypes.c_int
    u32 = ctypes.c_uint32
    create.argtypes = [ctypes.c_int, ctypes.c_char_p, u32, u32, u32, ctypes.c_void_p]
    pin.argtypes = [ctypes.c_int, ctypes.c_char_p]
    fd = lb.check(create(2, b"mip4_events", 4, 8, 3, None), "bpf_map_create")  # ARRAY
    try:
        lb.check(pin(fd, str(bpffs / MapName.EVENTS).encode()), "bpf_obj_pin")
    finally:
        os.close(fd)
    with BpfPlane(pin_dir=bpffs) as plane:
        plane.set_binding(HOME, Tunnel(HA, COA))
        assert set(plane.events()) == set(Event) and not any(plane.events().values())
        assert pins(bpffs) == sorted(m.value for m in MapName)
    with BpfPlane(pin_dir=bpffs) as again:  # the new pins are reused as they are
        assert again.bindings() == {HOME: Tunnel(HA, COA)}
        again.unpin()
