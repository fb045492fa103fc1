"""The foreign agent's link-source tap on its visited links only (issue 13): it learns the
hardware address of a request that arrives on a visited link as the full tap does, and
no longer reads the frames that arrive on its other interfaces (the home agent's
replies); a visited link created after the tap opened is taken once the link
notifications say so. Three namespaces: ``v`` (a visitor, on the visited link ``b0``),
``h`` (a home agent, on ``b1``) and ``b`` (the agent)."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address

import pytest

from mip4.core.events import UdpReceived
from mip4.io.linktap import LinkSourceTracker
from mip4.io.netns import Netns
from mip4.io.rawsock import bpf_on_interfaces, bpf_udp_dport, open_udp_control, recv_udp, send_udp
from mip4.wire.messages import NO_FLAGS, RegistrationRequest

V, B0 = IPv4Address("10.72.0.1"), IPv4Address("10.72.0.2")
H, B1 = IPv4Address("10.72.1.1"), IPv4Address("10.72.1.2")
W, B9 = IPv4Address("10.72.9.1"), IPv4Address("10.72.9.2")
key = LinkSourceTracker.key
FA_TOML = (
    '[foreign_agent]\n[[foreign_agent.links]]\ninterface = "e0"\naddress = "10.2.0.2"\n'
    '[[foreign_agent.links]]\ninterface = "e1"\naddress = "10.3.0.2"\n'
    '[io]\ninterfaces = ["e0", "e1", "e2"]\n'
)
HA_TOML = '[home_agent]\naddress = "10.1.0.2"\nhome_network = "10.1.0.0/24"\n'


def _link(b: Netns, peer: Netns, here: str, there: str, mine: str, theirs: str) -> None:
    b.add_veth(here, there, peer)
    b.add_address(here, f"{mine}/24")
    peer.add_address(there, f"{theirs}/24")
    for ns, ifname in ((b, here), (peer, there)):
        ns.set_up(ifname)
        ns.set_up("lo")
    assert b.wait_up(here) and peer.wait_up(there)


@pytest.fixture
def agent(
    make_netns: Callable[[str], Netns],
) -> Iterator[tuple[Netns, Netns, Netns, Callable[[str], Netns]]]:
    b, v, h = make_netns("b"), make_netns("v"), make_netns("h")
    _link(b, v, "b0", "v0", str(B0), str(V))  # the visited link
    _link(b, h, "b1", "h0", str(B1), str(H))  # towards the home agent
    yield b, v, h, make_netns


def _request(home_address: IPv4Address, dst: IPv4Address) -> bytes:
    return RegistrationRequest(NO_FLAGS, 600, home_address, dst, home_address, 1).encode()


def _receive(rx: socket.socket, count: int) -> list[UdpReceived]:
    got: list[UdpReceived] = []
    deadline = time.monotonic() + 3
    while len(got) < count and time.monotonic() < deadline:
        if select.select([rx], [], [], 0.2)[0]:
            got += recv_udp(rx)
    return got


@pytest.mark.lab
def test_the_visited_links_tap_learns_visitors_and_reads_nothing_from_other_links(
    agent: tuple[Netns, Netns, Netns, Callable[[str], Netns]],
) -> None:
    b, v, h, make_netns = agent
    mac_v, mac_h = v.link_address("v0"), h.link_address("h0")
    rx = open_udp_control(b.name, port=434)
    visited = LinkSourceTracker.open(None, b.name, interfaces=("b0", "b9"))  # b9: not yet
    full = LinkSourceTracker.open(None, b.name)  # every interface (the mobile node's)
    tx_v = open_udp_control(v.name, address=V, port=434)
    tx_h = open_udp_control(h.name, address=H, port=434)
    socks = [rx, tx_v, tx_h, visited.sock, full.sock]
    try:
        send_udp(tx_v, _request(V, B0), B0)  # a visitor's request, on the visited link
        send_udp(tx_h, _request(V, B1), B1)  # a home agent's datagram, on the other link
        assert len(_receive(rx, 2)) == 2
        time.sleep(0.05)
        # the full tap read both; the visited links' tap the visitor's only, the same
        assert full.poll() == 2
        assert full.table == {key(V, 434): ("b0", mac_v), key(H, 434): ("b1", mac_h)}
        assert visited.poll() == 1
        assert visited.table == {key(V, 434): ("b0", mac_v)}
        assert visited.get(V, 434) == full.get(V, 434) == mac_v
        # the other link's frames never reach the tap: nothing left to read after more
        for _ in range(3):
            send_udp(tx_h, _request(V, B1), B1)
        assert len(_receive(rx, 3)) == 3
        time.sleep(0.05)
        assert visited.poll() == 0
        assert full.poll() == 3
        # not read from the socket either: what is ready on it is the visited link's
        assert not select.select([visited.sock], [], [], 0)[0]
        # a visited link created after open: taken once link notifications say so
        w = make_netns("w")
        _link(b, w, "b9", "w0", str(B9), str(W))
        tx_w = open_udp_control(w.name, address=W, port=434)
        socks.append(tx_w)
        assert visited.links_changed(["b1"]) is False  # not one of its links
        assert visited.links_changed(["b9"]) is True
        assert visited.links_changed(["b9"]) is False  # the same indexes: kept
        send_udp(tx_w, _request(W, B9), B9)
        send_udp(tx_h, _request(V, B1), B1)
        assert len(_receive(rx, 2)) == 2
        time.sleep(0.05)
        assert visited.poll() == 1
        assert visited.get(W, 434) == w.link_address("w0")
        assert visited.get(H, 434) is None
    finally:
        for s in socks:
            s.close()


def test_the_interface_prefix_runs_the_program_unchanged_behind_it() -> None:
    plain = bpf_udp_dport(434)
    prog = bpf_on_interfaces([7, 3, 7], plain)
    # ld ifidx; one jeq per distinct index, each to the program's first instruction; drop
    assert prog[0] == (0x20, 0, 0, 0xFFFFF008)
    assert prog[1:3] == [(0x15, 2, 0, 3), (0x15, 1, 0, 7)]
    for i, (_code, jt, _jf, _k) in enumerate(prog[1:3], start=1):
        assert i + 1 + jt == 4
    assert prog[3] == (0x06, 0, 0, 0)
    assert prog[4:] == plain
    # no interface: every frame dropped before the program
    assert bpf_on_interfaces([], plain)[:2] == [(0x20, 0, 0, 0xFFFFF008), (0x06, 0, 0, 0)]
    with pytest.raises(ValueError, match="interfaces"):
        bpf_on_interfaces(range(1, 300), plain)


@pytest.mark.parametrize(("role", "text"), [("ha", HA_TOML), ("fa", FA_TOML)])
def test_the_foreign_agent_daemon_taps_its_visited_links_only(
    role: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    from mip4.daemon import run
    from mip4.daemon.config import parse_config
    from mip4.io.runtime import NodeIO

    cfg = parse_config(role, tomllib.loads(text), f"{role}.toml")
    engine = run.build_engine(cfg)
    seen: dict[str, object] = {}

    def fake_open(netns: object, interfaces: object, **kw: object) -> str:
        seen.update(kw, interfaces=interfaces)
        return "io"

    monkeypatch.setattr(NodeIO, "open", fake_open)
    assert run.open_io(cfg, engine) == "io"  # type: ignore[comparison-overlap]
    assert seen["link_sources"] is True
    if role == "fa":
        # its visited links, not every control interface ([io] interfaces names e2 too)
        assert seen["interfaces"] == ("e0", "e1", "e2")
        assert seen["link_source_interfaces"] == ("e0", "e1")
    else:  # the home agent's tap: every interface, as before
        assert seen.get("link_source_interfaces") is None
