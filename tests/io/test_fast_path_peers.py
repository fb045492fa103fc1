"""Issue 13: a home agent's first registrations behind one care-of address write the
fast path's peer (care-of address, home agent) once, not once each
(:meth:`FastPath.sync`); the peer still leaves the map with its last binding and comes back
with the next, a changed value is written, and a visitor (foreign agent) still writes its
peer each time (the edge tunnels take peers out behind the fast path's back). The program
view of a shared tunnel entry is made once. No kernel: the plane and the namespace are
recording stand-ins."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from mip4.dataplane.common import Encapsulation, Tunnel
from mip4.dataplane.table import TunnelEntry
from mip4.io.bpf import agent
from mip4.io.bpf.agent import FastPath
from mip4.io.bpf.plane import Peer

HA = IPv4Address("10.1.0.1")
COA = IPv4Address("10.2.0.2")
HOMES = [IPv4Address(0x0A010100 + i) for i in range(50)]


class RecordingPlane:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def set_peer(self, peer: Peer) -> None:
        self.calls.append(("set_peer", peer))

    def del_peer(self, local: IPv4Address, remote: IPv4Address) -> bool:
        self.calls.append(("del_peer", (local, remote)))
        return True

    def set_binding(self, home: IPv4Address, tunnel: object) -> None:
        self.calls.append(("set_binding", (home, tunnel)))

    def del_binding(self, home: IPv4Address) -> bool:
        self.calls.append(("del_binding", home))
        return True

    def account_visitor(self, home: IPv4Address) -> bool:
        return True

    def del_visitor(self, home: IPv4Address) -> None:
        pass

    def del_reverse(self, home: IPv4Address) -> None:
        pass

    def forget_counters(self, home: IPv4Address) -> None:
        pass

    def of(self, name: str) -> list[object]:
        return [arg for call, arg in self.calls if call == name]


class Ipr:
    def route(self, cmd: str, **kw: Any) -> list[dict[str, Any]]:
        return [{"RTA_OIF": 7, "RTA_GATEWAY": None, "type": 1}]

    def neigh(self, cmd: str, **kw: Any) -> list[dict[str, Any]]:
        return []


class Ns:
    ipr = Ipr()


def fast_path() -> tuple[FastPath, RecordingPlane]:
    plane = RecordingPlane()
    fp = FastPath(plane=plane, netns=None, ifindexes=())  # type: ignore[arg-type]
    fp._ns = Ns()  # type: ignore[assignment]
    return fp, plane


def test_bindings_behind_one_care_of_address_write_their_peer_once(monkeypatch: Any) -> None:
    views = []
    real = agent.bpf_tunnel

    def counting(entry: TunnelEntry) -> object:
        views.append(entry)
        return real(entry)

    monkeypatch.setattr(agent, "bpf_tunnel", counting)
    fp, plane = fast_path()
    entry = TunnelEntry(Tunnel(HA, COA), Encapsulation.IPIP)
    peer = Peer(HA, COA, bound_source=True, forward=True)
    for home in HOMES:
        fp.sync(home, [entry])
    assert plane.of("set_peer") == [peer]
    assert len(plane.of("set_binding")) == len(HOMES)
    assert views == [entry]  # the program's view of the shared entry: made once
    # the peer stays while any binding holds it; goes with the last; back with the next
    for home in HOMES[:-1]:
        fp.remove(home)
    assert plane.of("del_peer") == []
    fp.remove(HOMES[-1])
    assert plane.of("del_peer") == [(HA, COA)]
    fp.sync(HOMES[0], [entry])
    assert plane.of("set_peer") == [peer, peer]


def test_a_peer_held_with_another_value_is_written_and_visitors_rewrite() -> None:
    fp, plane = fast_path()
    entry = TunnelEntry(Tunnel(HA, COA), Encapsulation.IPIP)
    fp.sync(HOMES[0], [entry])
    other = Peer(HA, COA, any_key=True)
    fp._hold_peers(("colocated", HOMES[1]), [other])  # another owner, another value
    fp.sync(HOMES[2], [entry])  # written again: the map holds the other value now
    assert plane.of("set_peer") == [
        Peer(HA, COA, bound_source=True, forward=True),
        other,
        Peer(HA, COA, bound_source=True, forward=True),
    ]
    plane.calls.clear()
    for home in HOMES[:3]:
        fp.visitor(home, COA, HA, delivery=None, reverse=None)
    assert plane.of("set_peer") == [Peer(COA, HA, any_key=True)] * 3
