"""The programs with real routes, devices and traffic (root, network namespaces: ``lab``).

* ``bpf_fib_lookup`` finding a route: a test run on a device of a namespace with a route and
  a neighbour -- MACs from the lookup and ``bpf_redirect``; no neighbour entry yet --
  ``bpf_redirect_neigh``; the route's MTU too small -- untouched.
* Traffic: correspondent -> home agent (encapsulation at tc ingress, fib mode) -> care-of
  namespace (decapsulation at ingress; its replies reverse-tunnelled at egress, oif mode)
  -> home agent (decapsulation, the kernel forwards) -> correspondent. Pings go through both
  ways; a second load with the same pinned maps replaces the programs (BPF_TC_F_REPLACE)
  and forwarding goes on with the bindings the first load wrote; a clean stop (detach,
  unpin) leaves no filter, no qdisc and no pin.
* TCP transfers: GSO packets take the fast path; full-size packets that are not GSO (a
  retransmission) are too big once encapsulated and get "fragmentation needed" from the
  home agent's slow path (the route into an MTU-limited tunnel device). Without that
  route they vanished and a transfer that needed a retransmission stalled for good.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address as A
from pathlib import Path
from typing import NamedTuple

import pytest

from mip4.io.bpf.plane import (
    TC_ACT_OK,
    TC_ACT_REDIRECT,
    BpfPlane,
    Direction,
    Encap,
    Event,
    Peer,
    Program,
    Tunnel,
)
from mip4.io.netns import Netns, run_in_netns, write_sysctl
from mip4.wire.ip import IPv4Header

from .frames import HA, HOME, frame, inner, ip_of

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]
NEIGH_MAC = bytes.fromhex("020000000099")


def test_fib_lookup_route_found_no_neighbour_and_too_big(make_netns: MakeNetns) -> None:
    ns = make_netns("fib")
    ns.add_veth("v0", "v1")
    ns.set_up("v0")
    ns.set_up("v1")
    ns.add_address("v0", "10.9.0.1/24")
    ns.add_route("198.51.100.0/24", gateway="10.9.0.2")
    ns.add_route("203.0.113.0/24", gateway="10.9.0.3")  # 10.9.0.3: no neighbour entry
    ns.add_neighbour("v0", "10.9.0.2", NEIGH_MAC)
    write_sysctl("net.ipv4.conf.all.forwarding", 1, ns.name)
    v0 = ns.index("v0")
    v0_mac = ns.link_address("v0")

    with BpfPlane() as plane:

        def run(packet: bytes) -> tuple[int, bytes]:
            r = run_in_netns(
                ns.name, lambda: plane.test_run(Program.HA_ENCAP, frame(packet), ifindex=v0)
            )
            return r.retval, r.data

        plane.set_binding(HOME, Tunnel(HA, A("198.51.100.20")))
        retval, data = run(inner())
        assert retval == TC_ACT_REDIRECT
        assert data[:6] == NEIGH_MAC and data[6:12] == v0_mac  # from bpf_fib_lookup
        outer = IPv4Header.decode(ip_of(data))
        assert (outer.src, outer.dst, outer.protocol) == (HA, A("198.51.100.20"), 4)

        plane.set_binding(HOME, Tunnel(HA, A("203.0.113.9")))
        retval, data = run(inner())
        assert retval == TC_ACT_REDIRECT  # bpf_redirect_neigh: the kernel resolves it
        assert data[:12] == frame(b"")[:12]  # MACs left for the neighbour code
        assert IPv4Header.decode(ip_of(data)).dst == A("203.0.113.9")

        ns.set_mtu("v0", 1400)
        plane.set_binding(HOME, Tunnel(HA, A("198.51.100.20")))
        big = inner(payload_len=1400 - 20 - 28 + 1)
        assert run(big) == (TC_ACT_OK, frame(big))
        assert plane.events()[Event.SLOW_TOO_BIG] == 1
        assert run(inner(payload_len=1400 - 20 - 28))[0] == TC_ACT_REDIRECT


def _udp(ns: Netns, bind: tuple[str, int] | None = None) -> socket.socket:
    """A UDP socket made inside ``ns`` (it stays there whatever thread uses it)."""

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if bind is not None:
            s.bind(bind)
        s.settimeout(1.0)
        return s

    return run_in_netns(ns.name, make)


def _echo(cn: Netns, mn: Netns, home: A, count: int = 3) -> bool:
    """``count`` datagrams correspondent -> home address and each echoed back: True when
    every one made the round trip (no ping in this image; UDP is enough)."""
    with _udp(mn, (str(home), 7777)) as server, _udp(cn) as client:
        for i in range(count):
            msg = f"mip4 {i}".encode()
            client.sendto(msg, (str(home), 7777))
            try:
                data, peer = server.recvfrom(100)
                server.sendto(data, peer)
                back, src = client.recvfrom(100)
            except TimeoutError:
                return False
            if back != msg or src != (str(home), 7777):
                return False
    return True


class Path3(NamedTuple):
    """Correspondent -- home agent -- co-located node (care-of address 10.30.0.2, home
    address 10.20.0.50 on its loopback: the node is away from home)."""

    cn: Netns
    ha: Netns
    coa: Netns
    h0: int  # the home agent's device towards the correspondent (HA program at ingress)
    h1: int  # the home agent's device towards the care-of address (decapsulation)
    f0: int  # the node's device (decapsulation at ingress, reverse tunnel at egress)


HOME_ADDR, HA_ADDR, COA_ADDR = A("10.20.0.50"), A("10.30.0.1"), A("10.30.0.2")


def _path3(make_netns: MakeNetns) -> Path3:
    cn, ha, coa = make_netns("cn"), make_netns("ha"), make_netns("co")
    cn.add_veth("c0", "h0", ha)
    ha.add_veth("h1", "f0", coa)
    for n, dev, addr in [
        (cn, "c0", "10.10.0.2/24"),
        (ha, "h0", "10.10.0.1/24"),
        (ha, "h1", "10.30.0.1/24"),
        (coa, "f0", "10.30.0.2/24"),
    ]:
        n.set_up(dev)
        n.add_address(dev, addr)
    coa.set_up("lo")
    coa.add_address("lo", f"{HOME_ADDR}/32")
    cn.add_route("0.0.0.0/0", gateway="10.10.0.1")
    coa.add_route("0.0.0.0/0", gateway="10.30.0.1")
    write_sysctl("net.ipv4.ip_forward", 1, ha.name)
    for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.h1.rp_filter"):
        write_sysctl(key, 0, ha.name)
    return Path3(cn, ha, coa, ha.index("h0"), ha.index("h1"), coa.index("f0"))


def _node_side(p: Path3, plane: BpfPlane, key: int | None = None) -> None:
    """The co-located node: decapsulate from its home agent, reverse-tunnel its replies."""
    plane.set_peer(Peer(COA_ADDR, HA_ADDR, key))
    plane.set_reverse(HOME_ADDR, Tunnel(COA_ADDR, HA_ADDR, oif=p.f0, mtu=1500))
    p.coa.run(lambda: plane.attach(p.f0, Program.DECAP))
    p.coa.run(lambda: plane.attach(p.f0, Program.HOST_ENCAP, ingress=False))


def _slow_path(p: Path3, tunnel: Tunnel) -> None:
    """The home agent's slow path (bpf-dataplane.md): the home address routed into an
    ARP-less device whose MTU is 1500 minus the encapsulation's overhead, so what the fast
    path leaves to the kernel because it is too big is answered with "fragmentation needed"
    (RFC 2003 §4) instead of vanishing for want of a route. One end of a veth pair (no dummy
    module here); its peer stays down, so nothing sent into it comes back."""
    p.ha.add_veth("t0", "t1")
    p.ha.exec(["ip", "link", "set", "t0", "arp", "off", "mtu", str(1500 - tunnel.overhead)])
    p.ha.set_up("t0")
    p.ha.add_route(f"{HOME_ADDR}/32", ifname="t0")


def test_tunnel_both_ways_restart_and_clean_stop(make_netns: MakeNetns, bpffs: Path) -> None:
    p = _path3(make_netns)
    cn, ha, coa, h0, h1 = p.cn, p.ha, p.coa, p.h0, p.h1
    home, ha_addr, coa_addr = HOME_ADDR, HA_ADDR, COA_ADDR
    assert not _echo(cn, coa, home, 1)  # no tunnel, no route: unreachable

    ha_pins = bpffs / "ha"
    ha_pins.mkdir()
    ha_plane = BpfPlane(pin_dir=ha_pins)
    mn_plane = BpfPlane()
    try:
        # home agent: bound home address -> care-of address; accept the reverse tunnel
        ha_plane.set_binding(home, Tunnel(ha_addr, coa_addr))
        ha_plane.set_peer(Peer(ha_addr, coa_addr))
        first = ha.run(lambda: ha_plane.attach(h0, Program.HA_ENCAP))
        ha.run(lambda: ha_plane.attach(h1, Program.DECAP))
        _node_side(p, mn_plane)

        assert _echo(cn, coa, home)
        ev_ha, ev_mn = ha_plane.events(), mn_plane.events()
        assert ev_ha[Event.ENCAP] >= 3 and ev_ha[Event.DECAP] >= 3
        assert ev_mn[Event.ENCAP] >= 3 and ev_mn[Event.DECAP] >= 3
        counters = ha_plane.counters()
        assert counters[home, Direction.HA].packets >= 3
        assert counters[coa_addr, Direction.DECAP].packets >= 3
        assert mn_plane.counters()[home, Direction.REVERSE].packets >= 3

        # a restart: the new load reuses the pinned maps (the binding is there) and
        # replaces the filter in place
        with BpfPlane(pin_dir=ha_pins) as again:
            assert again.bindings() == {home: Tunnel(ha_addr, coa_addr)}
            second = ha.run(lambda: again.attach(h0, Program.HA_ENCAP))
            ha.run(lambda: again.attach(h1, Program.DECAP))
            assert second != first
            assert ha.run(lambda: BpfPlane.attached(h0)) == second
            ha_plane.close()  # the old daemon's object goes; forwarding does not
            assert _echo(cn, coa, home)

            # a clean stop: filters, qdiscs and pins go
            for ifindex in (h0, h1):
                assert ha.run(lambda i=ifindex: BpfPlane.detach(i, destroy_hook=True))
            again.unpin()
        assert ha.run(lambda: BpfPlane.attached(h0)) == 0
        assert sorted(p.name for p in ha_pins.iterdir()) == []
        qdiscs = subprocess.run(
            ["ip", "netns", "exec", str(ha.name), "tc", "qdisc", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "clsact" not in qdiscs
        assert not _echo(cn, coa, home, 1)
    finally:
        ha_plane.close()
        mn_plane.close()


def _tcp_transfer(p: Path3, size: int) -> tuple[bytes, bytes, float]:
    """``size`` random bytes correspondent -> home address over TCP; the SHA-256 of what
    was sent and of what arrived, and the seconds it took."""
    payload = os.urandom(size)

    def listen() -> socket.socket:
        s = socket.socket()
        s.bind((str(HOME_ADDR), 7778))
        s.listen(1)
        s.settimeout(10)
        return s

    def connect() -> socket.socket:
        s = socket.socket()
        s.settimeout(10)
        s.connect((str(HOME_ADDR), 7778))
        return s

    got: list[bytes] = []

    def serve(srv: socket.socket) -> None:
        try:
            conn, _ = srv.accept()
            with conn:
                h = hashlib.sha256()
                while chunk := conn.recv(1 << 16):
                    h.update(chunk)
                got.append(h.digest())
        except OSError as e:  # reported through the digest
            got.append(f"server: {e!r}".encode())

    with run_in_netns(p.coa.name, listen) as srv:
        t = threading.Thread(target=serve, args=(srv,), daemon=True)
        t.start()
        start = time.monotonic()
        with run_in_netns(p.cn.name, connect) as c:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            t.join(30)
        took = time.monotonic() - start
    return hashlib.sha256(payload).digest(), got[0] if got else b"", took


@pytest.mark.parametrize(
    ("encap", "key"),
    [(Encap.IPIP, None), (Encap.GRE, None), (Encap.GRE, 42), (Encap.MINIMAL, None)],
    ids=["ipip", "gre", "gre-key", "minimal"],
)
def test_tcp_with_gso_through_the_fast_path(
    make_netns: MakeNetns, encap: Encap, key: int | None
) -> None:
    """A TCP transfer from the correspondent: its TSO super-packets reach the home agent's
    ingress as GSO packets, are encapsulated as a unit (ENCAP flags: the kernel segments
    them as IPIP/GRE; minimal falls back to IP in IP for them), and the node strips them with
    FIXED_GSO. Every byte arrives; fewer packets were encapsulated than the transfer has
    segments (so GSO packets did take the fast path); the ACKs come back reverse-tunnelled."""
    p = _path3(make_netns)
    size = 8 << 20
    with BpfPlane() as ha_plane, BpfPlane() as mn_plane:
        tunnel = Tunnel(HA_ADDR, COA_ADDR, encap, key=key)
        ha_plane.set_binding(HOME_ADDR, tunnel)
        ha_plane.set_peer(Peer(HA_ADDR, COA_ADDR))
        _slow_path(p, tunnel)  # a full-size retransmission is not a GSO packet
        p.ha.run(lambda: ha_plane.attach(p.h0, Program.HA_ENCAP))
        p.ha.run(lambda: ha_plane.attach(p.h1, Program.DECAP))
        _node_side(p, mn_plane, key)

        sent, got, took = _tcp_transfer(p, size)
        ev = ha_plane.events()
        assert got == sent, (got, ev, mn_plane.events())
        segments = size // 1448
        assert 0 < ev[Event.ENCAP] < segments, ev
        assert ev[Event.SLOW_ADJUST] == 0 and ev[Event.ERROR] == 0
        assert mn_plane.events()[Event.DECAP] > 0
        assert mn_plane.events()[Event.ENCAP] > 0  # ACKs, reverse tunnel
        if encap is Encap.MINIMAL:
            assert ev[Event.MINIMAL_FALLBACK] > 0
        print(
            f"{encap.name} key={key}: {size * 8 / took / 1e9:.2f} Gbit/s, "
            f"{ev[Event.ENCAP]} encapsulations for {segments} segments"
        )


@pytest.mark.parametrize(
    ("encap", "key"),
    [(Encap.IPIP, None), (Encap.GRE, 42), (Encap.MINIMAL, None)],
    ids=["ipip", "gre-key", "minimal"],
)
def test_full_size_segments_get_fragmentation_needed(
    make_netns: MakeNetns, encap: Encap, key: int | None
) -> None:
    """Full-size segments that are not GSO packets (a retransmission, a single segment, a
    sender without TSO: here the correspondent's device allows one segment per packet) do
    not fit once encapsulated: the fast path leaves them to the kernel, whose route into the
    MTU-limited tunnel device answers "fragmentation needed" (RFC 2003 §4); the
    correspondent lowers its path MTU and every byte arrives through the fast path."""
    p = _path3(make_netns)
    p.cn.exec(["ip", "link", "set", "c0", "gso_max_segs", "1"])
    size = 1 << 20
    with BpfPlane() as ha_plane, BpfPlane() as mn_plane:
        tunnel = Tunnel(HA_ADDR, COA_ADDR, encap, key=key)
        ha_plane.set_binding(HOME_ADDR, tunnel)
        ha_plane.set_peer(Peer(HA_ADDR, COA_ADDR))
        _slow_path(p, tunnel)
        p.ha.run(lambda: ha_plane.attach(p.h0, Program.HA_ENCAP))
        p.ha.run(lambda: ha_plane.attach(p.h1, Program.DECAP))
        _node_side(p, mn_plane, key)

        sent, got, _ = _tcp_transfer(p, size)
        ev = ha_plane.events()
        assert got == sent, (got, ev, mn_plane.events())
        assert ev[Event.SLOW_TOO_BIG] > 0, ev
        assert ev[Event.ENCAP] >= size // 1500, ev
