"""The home agent's bpf fast path behind ``NodeIO`` / ``LinuxExecutor`` (issue 12).

* ``resolve_dataplane``: ``auto`` picks bpf where it loads, ``bpf`` insists, ``userspace``
  never probes.
* Lab (root, namespaces): a home agent opened with ``dataplane="bpf"``; an
  ``InstallBinding`` becomes a map entry (and the TUN route, the slow path), datagrams from
  the correspondent to the home address are tunnelled by the program (per-binding counters),
  ``RemoveBinding`` takes the entry out with its undo stack; a clean close leaves no filter
  and no clsact hook; an abandoned one (SIGKILL) leaves the filter forwarding, and the next
  start replaces it and reconciles the pinned bindings against its (empty) table.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address as A
from pathlib import Path
from typing import Any

import pytest

from mip4.core.actions import InstallBinding, RemoveBinding
from mip4.dataplane.common import Encapsulation
from mip4.io.bpf.agent import resolve_dataplane
from mip4.io.bpf.plane import BpfPlane, Direction, Peer, Program
from mip4.io.netns import Netns, run_in_netns, write_sysctl
from mip4.io.runtime import NodeIO

MakeNetns = Callable[[str], Netns]
HOME, HA, COA = A("10.20.0.50"), A("10.30.0.1"), A("10.30.0.2")


def test_resolve_dataplane() -> None:
    assert resolve_dataplane("userspace", lambda: pytest.fail("probed")) == "userspace"
    assert resolve_dataplane("auto", lambda: None) == "bpf"
    assert resolve_dataplane("auto", lambda: "kernel 5.4 < 5.10") == "userspace"
    assert resolve_dataplane("bpf", lambda: None) == "bpf"
    with pytest.raises(RuntimeError, match=r"kernel 5\.4"):
        resolve_dataplane("bpf", lambda: "kernel 5.4 < 5.10")
    with pytest.raises(ValueError, match="xdp"):
        resolve_dataplane("xdp")


def _topology(make_netns: MakeNetns) -> tuple[Netns, Netns, Netns]:
    """Correspondent 10.10.0.2 -- h0 home agent h1 -- f0 node (care-of 10.30.0.2, home
    address on its loopback); the node decapsulates with its own program and answers
    directly (no reverse tunnel)."""
    cn, ha, mn = make_netns("cn"), make_netns("ha"), make_netns("mn")
    cn.add_veth("c0", "h0", ha)
    ha.add_veth("h1", "f0", mn)
    for n, dev, addr in [
        (cn, "c0", "10.10.0.2/24"),
        (ha, "h0", "10.10.0.1/24"),
        (ha, "h1", "10.30.0.1/24"),
        (mn, "f0", "10.30.0.2/24"),
    ]:
        n.set_up(dev)
        n.add_address(dev, addr)
    mn.set_up("lo")
    mn.add_address("lo", f"{HOME}/32")
    cn.add_route("0.0.0.0/0", gateway="10.10.0.1")
    mn.add_route("0.0.0.0/0", gateway="10.30.0.1")
    for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
        write_sysctl(key, 0, ha.name)
    return cn, ha, mn


def _udp(ns: Netns, bind: tuple[str, int] | None = None, timeout: float = 1.0) -> socket.socket:
    """A UDP socket in ``ns`` (bound to ``bind``), with a receive timeout."""

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if bind is not None:
            s.bind(bind)
        s.settimeout(timeout)
        return s

    return run_in_netns(ns.name, make)


def _echo(cn: Netns, mn: Netns, count: int = 3) -> bool:
    with _udp(mn, (str(HOME), 7777)) as server, _udp(cn) as client:
        for i in range(count):
            msg = f"mip4 {i}".encode()
            client.sendto(msg, (str(HOME), 7777))
            try:
                data, peer = server.recvfrom(100)
                server.sendto(data, peer)
                back, _ = client.recvfrom(100)
            except TimeoutError:
                return False
            if back != msg:
                return False
    return True


def _open_ha(ha: Netns, pins: Path | None = None, **kw: Any) -> NodeIO:
    """The home agent's I/O on the bpf plane (``kw``: more of ``NodeIO.open``'s)."""
    return NodeIO.open(
        ha.name,
        ["h0", "h1"],
        tun_name="mip4bpf-t",
        tunnel_source=HA,
        forwarding=True,
        dataplane="bpf",
        bpf_pin_dir=pins,
        **kw,
    )


def _node(mn: Netns) -> BpfPlane:
    plane = BpfPlane()
    plane.set_peer(Peer(COA, HA))
    mn.run(lambda: plane.attach(mn.index("f0"), Program.DECAP))
    return plane


def _qdiscs(ns: Netns) -> str:
    return ns.exec(["tc", "qdisc", "show"]).stdout


@pytest.mark.lab
def test_auto_loads_the_object_once(make_netns: MakeNetns, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dataplane = auto`` on a node with a TUN device: opening the fast path is the probe
    (no test load of every program before it, ~0.2 s of each start), and it is taken."""
    from mip4.io.bpf import agent

    loads: list[int] = []

    class Counted(BpfPlane):
        def __init__(self, *args: Any, **kw: Any) -> None:
            loads.append(1)
            super().__init__(*args, **kw)

    monkeypatch.setattr(agent, "_probed", [])
    monkeypatch.setattr(agent, "bpf_plane_unavailable", lambda *a: pytest.fail("test load"))
    monkeypatch.setattr(agent, "BpfPlane", Counted)
    _cn, ha, _mn = _topology(make_netns)
    with NodeIO.open(
        ha.name, ["h0", "h1"], tun_name="mip4bpf-t", tunnel_source=HA, dataplane="auto"
    ) as io:
        assert io.dataplane == "bpf" and io.fast_path is not None
        assert io.executor.fast_path is io.fast_path
        assert loads == [1]
    assert "clsact" not in _qdiscs(ha)


@pytest.mark.lab
def test_bindings_are_map_entries_and_a_clean_stop_leaves_nothing(
    make_netns: MakeNetns,
) -> None:
    cn, ha, mn = _topology(make_netns)
    with _node(mn), _open_ha(ha) as io:
        assert io.dataplane == "bpf" and io.fast_path is not None
        fast = io.fast_path
        h0 = ha.index("h0")
        assert ha.run(lambda: BpfPlane.attached(h0)) == fast.program_ids[h0] != 0
        assert not _echo(cn, mn, 1)  # nothing bound

        io.executor.execute(InstallBinding(HOME, COA, Encapsulation.GRE, gre_key=7))
        bound = fast.plane.bindings()[HOME]
        assert (bound.local, bound.remote, bound.key) == (HA, COA, 7)
        io.executor.execute(InstallBinding(HOME, COA))  # renewal as IP in IP
        assert fast.plane.bindings()[HOME].key is None
        assert _echo(cn, mn)
        traffic = fast.plane.counters()[HOME, Direction.HA]
        assert traffic.packets >= 3
        assert fast.counters()[str(HOME)]["packets"] == traffic.packets
        # the user-space plane saw none of it: the fast path took it
        assert io.forwarder is not None
        assert io.forwarder.stats.get("encapsulated", 0) == 0, io.forwarder.stats

        io.executor.execute(RemoveBinding(HOME, COA))
        assert fast.plane.bindings() == {}
        assert not _echo(cn, mn, 1)
        io.executor.execute(InstallBinding(HOME, COA))
        assert HOME in fast.plane.bindings()
    # close: the binding's stack went, and the filters and hooks with it
    assert ha.run(lambda: BpfPlane.attached(h0)) == 0
    assert "clsact" not in _qdiscs(ha)


@pytest.mark.lab
def test_a_killed_agent_keeps_forwarding_and_the_next_one_reconciles(
    make_netns: MakeNetns, bpffs: Path
) -> None:
    cn, ha, mn = _topology(make_netns)
    pins = bpffs / "ha"
    h0 = ha.index("h0")
    with _node(mn):
        first = _open_ha(ha, pins)
        first.executor.execute(InstallBinding(HOME, COA))
        assert _echo(cn, mn)
        old_id = ha.run(lambda: BpfPlane.attached(h0))
        first.abandon()  # SIGKILL: filters and pinned maps stay
        assert ha.run(lambda: BpfPlane.attached(h0)) == old_id
        assert sorted(p.name for p in pins.iterdir())
        assert _echo(cn, mn)  # forwarding goes on without a daemon
        # the leftover route into the dead TUN device is the journal's business; the
        # restarted agent's table is empty: the pinned binding goes, the filter is replaced
        with _open_ha(ha, pins) as again:
            assert again.fast_path is not None
            assert again.fast_path.reconciled == [HOME]
            assert again.fast_path.plane.bindings() == {}
            assert ha.run(lambda: BpfPlane.attached(h0)) not in (0, old_id)
            again.executor.execute(InstallBinding(HOME, COA))
            assert _echo(cn, mn)
        assert ha.run(lambda: BpfPlane.attached(h0)) == 0
        assert not pins.exists()  # no pin, nor the directory made for them


@pytest.mark.lab
def test_auto_runs_bpf_where_it_loads_and_user_space_on_an_older_kernel(
    make_netns: MakeNetns, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mip4.io import runtime
    from mip4.io.bpf import agent

    cn, ha, mn = _topology(make_netns)

    def open_auto() -> NodeIO:
        return NodeIO.open(
            ha.name,
            ["h0", "h1"],
            tun_name="mip4bpf-t",
            tunnel_source=HA,
            forwarding=True,
            dataplane="auto",
        )

    monkeypatch.setattr(agent, "_probed", [])  # the real probe (this kernel loads it)
    with _node(mn), open_auto() as io:
        assert io.dataplane == "bpf" and io.fast_path is not None
        assert "clsact" in _qdiscs(ha)
    # as on an older kernel: with a TUN device, auto looks at the version only (the open
    # is the probe), and falls back before loading anything
    monkeypatch.setattr(runtime, "kernel_unfit", lambda: "kernel 5.4 < 5.10")
    monkeypatch.setattr(agent, "BpfPlane", lambda *a, **kw: pytest.fail("loaded"))
    with _node(mn), open_auto() as io:
        assert io.dataplane == "userspace" and io.fast_path is None
        assert "clsact" not in _qdiscs(ha)
        # and the user-space plane forwards: the correspondent's datagram goes into the
        # TUN device, the forwarder tunnels it, the node's program decapsulates it
        io.executor.execute(InstallBinding(HOME, COA))
        fwd = io.forwarder
        assert fwd is not None

        def udp(ns: Netns, bind: tuple[str, int] | None = None) -> socket.socket:
            def make() -> socket.socket:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                if bind is not None:
                    s.bind(bind)
                s.settimeout(1.0)
                return s

            return run_in_netns(ns.name, make)

        with udp(mn, (str(HOME), 7777)) as server, udp(cn) as client:
            client.sendto(b"mip4 auto", (str(HOME), 7777))
            deadline = time.monotonic() + 2.0
            while fwd.stats.get("encapsulated", 0) == 0 and time.monotonic() < deadline:
                fwd.pump_tun()
                time.sleep(0.01)
            assert server.recvfrom(100)[0] == b"mip4 auto", fwd.stats


@pytest.mark.lab
def test_lab_daemons_with_no_dataplane_key_run_bpf_and_status_says_so(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default (``auto``) on a kernel that loads the object: every daemon of the lab
    (configuration files without ``dataplane``) forwards on the bpf plane, and ``mip4
    status`` says which plane runs."""
    from mip4.daemon.status import render_text
    from mip4.lab.daemons import DaemonBackend
    from mip4.lab.scenario import Scenario, Settings

    monkeypatch.delenv("MIP4_LAB_DATAPLANE", raising=False)
    with Scenario(Settings(prefix[2:])) as sc:
        agents = sc.agents
        assert isinstance(agents, DaemonBackend)
        for node, text in agents.paths.items():
            assert "dataplane" not in text.read_text(), node
        assert sc.move("a").registered
        for node in ("ha", "fa1", "mn"):
            st = agents.status(node)
            assert st is not None and st["dataplane"] == "bpf", (node, st)
            assert "data plane: bpf" in render_text(st), node
        # and the home agent's fast path carries the correspondent's pings to the node
        assert sc.lab.wait_reachable("cn", str(sc.lab.address("mn")), within=10)
        st = agents.status("ha")
        assert st is not None and st["fast_path"]["events"].get("encap", 0) > 0, st
