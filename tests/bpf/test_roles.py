"""The foreign agent's and the co-located mobile node's bpf fast path behind ``NodeIO`` /
``LinuxExecutor``, with the home agent's (issue 12). Root and namespaces (``lab``).

* Correspondent -> home agent -> foreign agent -> visitor and back, reverse tunnelled:
  ``InstallBinding`` at the home agent and ``InstallVisitor`` at the foreign agent become
  map entries; UDP echoes go both ways with the user-space planes seeing none of it
  (the home agent encapsulates and decapsulates in ``mip4_agent``; the foreign agent
  decapsulates, redirects to the visitor's hardware address and reverse-tunnels), for IP in
  IP, GRE with a key and minimal encapsulation. ``RemoveVisitor`` empties the foreign
  agent's maps; a killed foreign agent (``abandon``) keeps forwarding (pinned maps, filters
  left) and the next one starts from empty maps; a clean close leaves no filter, hook,
  pin or managed neighbour entry.
* Co-located node, reverse tunnelled: ``UseColocatedAddress`` -> tunnels from the home agent
  decapsulated at ingress, the home address's datagrams routed with room for the outer
  header and tunnelled at egress; an echo and a 2 MB TCP upload go through without the
  user-space planes; the home agent's next hop towards the care-of address is a managed
  neighbour entry while the binding lasts. ``AtHome`` and close leave nothing.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from ipaddress import IPv4Address as A
from pathlib import Path

import pytest

from mip4.core.actions import (
    AtHome,
    InstallBinding,
    InstallVisitor,
    RemoveBinding,
    RemoveVisitor,
    UseColocatedAddress,
)
from mip4.dataplane.common import Encapsulation
from mip4.io.bpf.agent import NTF_EXT_MANAGED, Role
from mip4.io.bpf.plane import BpfPlane, Direction, Event, Peer
from mip4.io.executor import BPF_REVERSE_TABLE
from mip4.io.netns import Netns, run_in_netns, write_sysctl
from mip4.io.runtime import NodeIO

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]
CN, HA, COA, HOME = A("10.10.0.2"), A("10.10.0.1"), A("10.30.0.2"), A("10.20.0.50")
FA_VISITOR_SIDE = A("10.40.0.1")


def _addresses(pairs: list[tuple[Netns, str, str]]) -> None:
    for n, dev, addr in pairs:
        n.set_up(dev)
        n.add_address(dev, addr)


def _udp(ns: Netns, bind: tuple[str, int] | None = None) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if bind is not None:
            s.bind(bind)
        s.settimeout(1.0)
        return s

    return run_in_netns(ns.name, make)


def _echo(cn: Netns, mn: Netns, count: int = 3, home: A = HOME) -> bool:
    """``count`` UDP echoes from ``cn`` to ``home`` in ``mn``."""
    with _udp(mn, (str(home), 7777)) as server, _udp(cn) as client:
        for i in range(count):
            msg = f"mip4 {i}".encode()
            client.sendto(msg, (str(home), 7777))
            try:
                data, peer = server.recvfrom(100)
                server.sendto(data, peer)
                back, _ = client.recvfrom(100)
            except TimeoutError:
                return False
            if back != msg:
                return False
    return True


def _open(ns: Netns, ifs: list[str], role: Role, pins: Path | None = None, **kw: object) -> NodeIO:
    return NodeIO.open(
        ns.name,
        ifs,
        tun_name=f"mip4{role.value}-t",
        dataplane="bpf",
        bpf_role=role,
        bpf_pin_dir=pins,
        **kw,  # type: ignore[arg-type]
    )


def _qdiscs(ns: Netns) -> str:
    return ns.exec(["tc", "qdisc", "show"]).stdout


def _user_space_idle(io: NodeIO) -> None:
    assert io.forwarder is not None
    stats = io.forwarder.stats
    for key in ("encapsulated", "raw_read", "delivered_link", "delivered_tun"):
        assert stats.get(key, 0) == 0, stats


def _managed(ns: Netns) -> list[str]:
    return [
        str(n.get("NDA_DST"))
        for n in ns.ipr.neigh("dump", family=2)
        if int(n.get("NDA_FLAGS_EXT") or 0) & NTF_EXT_MANAGED
    ]


def _foreign_topology(make_netns: MakeNetns) -> tuple[Netns, Netns, Netns, Netns]:
    """Correspondent c0 -- h0 home agent h1 -- f0 foreign agent (care-of address) v0 --
    m0 visitor (home address on m0, default route via the agent)."""
    cn, ha, fa, mn = (make_netns(n) for n in ("cn", "ha", "fa", "mn"))
    cn.add_veth("c0", "h0", ha)
    ha.add_veth("h1", "f0", fa)
    fa.add_veth("v0", "m0", mn)
    _addresses(
        [
            (cn, "c0", f"{CN}/24"),
            (ha, "h0", f"{HA}/24"),
            (ha, "h1", "10.30.0.1/24"),
            (fa, "f0", f"{COA}/24"),
            (fa, "v0", f"{FA_VISITOR_SIDE}/24"),
            (mn, "m0", f"{HOME}/32"),
        ]
    )
    cn.add_route("0.0.0.0/0", gateway=str(HA))
    fa.add_route("0.0.0.0/0", gateway="10.30.0.1")
    mn.add_route(f"{FA_VISITOR_SIDE}/32", ifname="m0")
    mn.add_route("0.0.0.0/0", gateway=str(FA_VISITOR_SIDE), ifname="m0", onlink=True)
    mn.add_neighbour("m0", FA_VISITOR_SIDE, fa.link_address("v0"))
    for ns in (ha, fa):
        for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
            write_sysctl(key, 0, ns.name)
    return cn, ha, fa, mn


@pytest.mark.parametrize(
    ("encapsulation", "gre_key"),
    [(Encapsulation.IPIP, None), (Encapsulation.GRE, 5), (Encapsulation.MINIMAL, None)],
    ids=["ipip", "gre-key", "minimal"],
)
def test_foreign_agent_decapsulates_delivers_and_reverse_tunnels(
    make_netns: MakeNetns, bpffs: Path, encapsulation: Encapsulation, gre_key: int | None
) -> None:
    cn, ha, fa, mn = _foreign_topology(make_netns)
    pins = bpffs / "fa"
    visitor = InstallVisitor(
        HOME,
        "v0",
        mn.link_address("m0"),
        HA,
        COA,
        reverse_tunnel=True,
        encapsulation=encapsulation,
    )
    with _open(ha, ["h0", "h1"], Role.HOME_AGENT, tunnel_source=HA, forwarding=True) as hio:
        fio = _open(fa, ["f0", "v0"], Role.FOREIGN_AGENT, pins, forwarding=True)
        try:
            hio.executor.execute(InstallBinding(HOME, COA, encapsulation, gre_key=gre_key))
            fio.executor.execute(visitor)
            assert hio.fast_path is not None and fio.fast_path is not None
            fplane, hplane = fio.fast_path.plane, hio.fast_path.plane
            assert fplane.peers() == [Peer(COA, HA, any_key=True)]
            assert list(fplane.visitors()) == [HOME] and list(fplane.reverse()) == [HOME]
            assert hplane.peers() == [Peer(HA, COA, bound_source=True, forward=True)]
            assert _echo(cn, mn)

            hc, fc = hplane.counters(), fplane.counters()
            assert hc[HOME, Direction.HA].packets >= 3
            assert hc[COA, Direction.DECAP].packets >= 3  # reverse tunnel exit
            assert fc[HA, Direction.DECAP].packets >= 3
            assert fc[HOME, Direction.REVERSE].packets >= 3
            assert fplane.events()[Event.DECAP_VISITOR] >= 3
            # the echoes' replies, forwarded by the home agent's program (not its stack)
            assert hplane.events()[Event.DECAP_FORWARD] >= 3
            _user_space_idle(hio)
            _user_space_idle(fio)
            assert "10.30.0.1" in _managed(fa)  # next hop of the reverse tunnel
            assert str(COA) in _managed(ha)  # next hop of the binding's tunnel

            fio.executor.execute(RemoveVisitor(HOME, "v0"))
            assert (fplane.peers(), fplane.visitors(), fplane.reverse()) == ([], {}, {})
            assert _managed(fa) == []
            fio.executor.execute(visitor)

            fio.abandon()  # SIGKILL: filters and pinned maps keep forwarding
            assert sorted(p.name for p in pins.iterdir())
            assert _echo(cn, mn)
            fio = _open(fa, ["f0", "v0"], Role.FOREIGN_AGENT, pins)
            assert fio.fast_path is not None
            fplane = fio.fast_path.plane
            assert (fplane.peers(), fplane.visitors(), fplane.reverse()) == ([], {}, {})
        finally:
            fio.close()
        assert "clsact" not in _qdiscs(fa)
        assert not pins.exists()  # no pin, nor the directory made for them
        hio.executor.execute(RemoveBinding(HOME, COA))
        assert hplane.peers() == [] and hplane.bindings() == {}
        assert _managed(ha) == []
    assert "clsact" not in _qdiscs(ha)


def _colocated_topology(make_netns: MakeNetns) -> tuple[Netns, Netns, Netns]:
    """Correspondent c0 -- h0 home agent h1 -- (router 10.30.0.1) -- f0 node at the
    co-located care-of address 10.30.0.2, home address on its loopback."""
    cn, ha, mn = make_netns("cn"), make_netns("ha"), make_netns("mn")
    cn.add_veth("c0", "h0", ha)
    ha.add_veth("h1", "f0", mn)
    _addresses(
        [
            (cn, "c0", f"{CN}/24"),
            (ha, "h0", f"{HA}/24"),
            (ha, "h1", "10.30.0.1/24"),
            (mn, "f0", f"{COA}/24"),
        ]
    )
    mn.set_up("lo")
    mn.add_address("lo", f"{HOME}/32")
    cn.add_route("0.0.0.0/0", gateway=str(HA))
    mn.add_route("0.0.0.0/0", gateway="10.30.0.1")
    for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
        write_sysctl(key, 0, ha.name)
    return cn, ha, mn


def _upload(cn: Netns, mn: Netns, size: int, to: A = CN, home: A = HOME) -> int:
    """Send ``size`` bytes from ``home`` in ``mn`` to ``to`` in ``cn`` over TCP; returns
    what arrived (bounded: 20 s)."""
    got: list[int] = []

    def listener() -> socket.socket:
        s = socket.socket()
        s.bind((str(to), 0))
        s.listen(1)
        s.settimeout(20)
        return s

    def client() -> socket.socket:
        s = socket.socket()
        s.bind((str(home), 0))
        s.settimeout(20)
        return s

    with run_in_netns(cn.name, listener) as srv, run_in_netns(mn.name, client) as cli:

        def receive() -> None:
            conn, _ = srv.accept()
            n = 0
            with conn:
                while chunk := conn.recv(1 << 16):
                    n += len(chunk)
            got.append(n)

        t = threading.Thread(target=receive, daemon=True)
        t.start()
        cli.connect(srv.getsockname())
        cli.sendall(bytes(size))
        cli.shutdown(socket.SHUT_WR)
        t.join(20)
    return got[0] if got else -1


@pytest.mark.parametrize(
    ("encapsulation", "forward"),
    [(Encapsulation.IPIP, True), (Encapsulation.GRE, True), (Encapsulation.IPIP, False)],
)
def test_colocated_node_decapsulates_and_reverse_tunnels(
    make_netns: MakeNetns, encapsulation: Encapsulation, forward: bool
) -> None:
    """``forward``: the home agent's ``[io] fast_path_forwarding`` (``bpf_forward``): its
    program forwards what it decapsulates, or hands it to the kernel's forwarding."""
    cn, ha, mn = _colocated_topology(make_netns)
    with _open(
        ha, ["h0", "h1"], Role.HOME_AGENT, tunnel_source=HA, forwarding=True, bpf_forward=forward
    ) as hio:
        with _open(mn, ["f0"], Role.MOBILE_NODE) as mio:
            assert mio.fast_path is not None and hio.fast_path is not None
            f0 = mn.index("f0")
            assert mio.fast_path.program_ids[f0] and mio.fast_path.egress_ids[f0]
            hio.executor.execute(InstallBinding(HOME, COA, encapsulation, colocated=True))
            mio.executor.execute(
                UseColocatedAddress("f0", COA, HA, HOME, encapsulation, reverse_tunnel=True)
            )
            mplane = mio.fast_path.plane
            assert mplane.peers() == [Peer(COA, HA)]
            assert mplane.reverse()[HOME].oif == f0
            mtu = 1500 - (24 if encapsulation is Encapsulation.GRE else 20)
            routes = mn.exec(["ip", "route", "show", "table", str(BPF_REVERSE_TABLE)]).stdout
            assert f"mtu {mtu}" in routes and "via 10.30.0.1" in routes, routes
            assert _echo(cn, mn)
            size = 2_000_000
            assert _upload(cn, mn, size) == size
            mc = mplane.counters()
            assert mc[HA, Direction.DECAP].packets >= 3
            assert mc[HOME, Direction.REVERSE].bytes >= size
            # the replies and the upload, forwarded by the home agent's program -- or,
            # with it off, by its kernel
            hplane = hio.fast_path.plane
            assert hplane.peers() == [Peer(HA, COA, bound_source=True, forward=forward)]
            hev = hplane.events()
            by_program, by_kernel = hev[Event.DECAP_FORWARD], hev[Event.DECAP]
            if forward:
                assert by_program >= 3 and by_kernel == 0, hev
            else:
                assert by_kernel >= 3 and by_program == 0, hev
            # the upload's GSO packets were held to the MTUs, segment by segment, and fit
            assert mplane.events()[Event.SLOW_TOO_BIG] == hev[Event.SLOW_TOO_BIG] == 0
            _user_space_idle(hio)
            _user_space_idle(mio)

            mio.executor.execute(AtHome("f0", HOME))
            assert (mplane.peers(), mplane.reverse()) == ([], {})
            routes = mn.exec(["ip", "route", "show", "table", str(BPF_REVERSE_TABLE)]).stdout
            assert routes.strip() == ""
        assert "clsact" not in _qdiscs(mn)
        assert str(BPF_REVERSE_TABLE) not in mn.exec(["ip", "rule", "show"]).stdout
    assert "clsact" not in _qdiscs(ha)


COA2, HOME2 = A("10.31.0.2"), A("10.20.0.51")


@pytest.mark.parametrize("encapsulation", [Encapsulation.IPIP, Encapsulation.GRE])
def test_node_to_node_through_the_home_agent(
    make_netns: MakeNetns, bpffs: Path, encapsulation: Encapsulation
) -> None:
    """A visitor of the foreign agent and a co-located node, both away from the same home
    agent and reverse tunnelled: what one sends the other reaches the home agent in a
    tunnel and leaves it in the other node's (RFC 5944 §4.2.3), rewritten by its program
    without being decapsulated -- UDP echoes and a 2 MB TCP upload (GSO packets) both
    ways, none of it through either user-space plane."""
    cn, ha, fa, mn = _foreign_topology(make_netns)
    mn2 = make_netns("mn2")
    ha.add_veth("h2", "g0", mn2)
    _addresses([(ha, "h2", "10.31.0.1/24"), (mn2, "g0", f"{COA2}/24")])
    mn2.set_up("lo")
    mn2.add_address("lo", f"{HOME2}/32")
    mn2.add_route("0.0.0.0/0", gateway="10.31.0.1")
    visitor = InstallVisitor(
        HOME, "v0", mn.link_address("m0"), HA, COA, reverse_tunnel=True,
        encapsulation=encapsulation,
    )  # fmt: skip
    ifs = ["h0", "h1", "h2"]
    with (
        _open(ha, ifs, Role.HOME_AGENT, tunnel_source=HA, forwarding=True) as hio,
        _open(fa, ["f0", "v0"], Role.FOREIGN_AGENT, bpffs / "fa", forwarding=True) as fio,
        _open(mn2, ["g0"], Role.MOBILE_NODE) as mio,
    ):
        hio.executor.execute(InstallBinding(HOME, COA, encapsulation))
        hio.executor.execute(InstallBinding(HOME2, COA2, encapsulation, colocated=True))
        fio.executor.execute(visitor)
        mio.executor.execute(
            UseColocatedAddress("g0", COA2, HA, HOME2, encapsulation, reverse_tunnel=True)
        )
        assert hio.fast_path and fio.fast_path and mio.fast_path
        hplane = hio.fast_path.plane
        assert _echo(mn, mn2, home=HOME2)
        assert _echo(mn2, mn, home=HOME)
        size = 2_000_000
        assert _upload(mn2, mn, size, to=HOME2, home=HOME) == size
        assert _upload(mn, mn2, size, to=HOME, home=HOME2) == size
        hc, hev = hplane.counters(), hplane.events()
        for home, coa in ((HOME, COA), (HOME2, COA2)):
            assert hc[home, Direction.HA].bytes >= size, (home, hc)
            assert hc[coa, Direction.DECAP].bytes >= size, (coa, hc)
        # every datagram between the two nodes sent on by the program, none to the stack
        assert hev[Event.ENCAP] == hev[Event.DECAP_FORWARD] > 2 * size // 65536, hev
        assert hev[Event.DECAP] == 0, hev
        for plane in (hplane, mio.fast_path.plane, fio.fast_path.plane):  # segments fit
            assert plane.events()[Event.SLOW_TOO_BIG] == 0
        for io in (hio, fio, mio):
            _user_space_idle(io)
        # and each node still talks with the correspondent
        assert _echo(cn, mn) and _echo(cn, mn2, home=HOME2)


def test_no_plane_is_left_by_a_clean_stop_of_each_role(make_netns: MakeNetns) -> None:
    """The three roles opened on the bpf plane and closed again: no program attached."""
    ns = make_netns("x")
    ns.add_veth("x0", "x1")
    _addresses([(ns, "x0", "10.50.0.1/24"), (ns, "x1", "10.50.0.2/24")])
    x0 = ns.index("x0")
    for role in Role:
        with _open(ns, ["x0"], role, tunnel_source=A("10.50.0.1")) as io:
            assert ns.run(lambda: BpfPlane.attached(x0)) != 0
            assert io.dataplane == "bpf"
        assert ns.run(lambda: BpfPlane.attached(x0)) == 0
        assert ns.run(lambda: BpfPlane.attached(x0, ingress=False)) == 0
        assert "clsact" not in _qdiscs(ns)
