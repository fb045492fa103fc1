"""The home agent's link-source tap (issue 13): only datagrams sent from the Home Address
they carry reach it, and for those it reports what the full tap reports; the full tap (the
foreign agent's) still sees everything. Two namespaces joined by a veth pair."""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address

import pytest

from mip4.core.events import UdpReceived
from mip4.io.linktap import LinkSourceTracker
from mip4.io.netns import Netns
from mip4.io.rawsock import open_udp_control, recv_udp, send_udp
from mip4.wire.messages import NO_FLAGS, RegistrationRequest

A = IPv4Address("10.71.0.1")
A2 = IPv4Address("10.71.0.3")
key = LinkSourceTracker.key
B = IPv4Address("10.71.0.2")
HA_TOML = '[home_agent]\naddress = "10.1.0.2"\nhome_network = "10.1.0.0/24"\n'
FA_TOML = '[foreign_agent]\n[[foreign_agent.links]]\ninterface = "e0"\naddress = "10.2.0.2"\n'


@pytest.fixture
def pair(make_netns: Callable[[str], Netns]) -> Iterator[tuple[Netns, Netns, bytes]]:
    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    a.add_address("a0", f"{A}/24")
    a.add_address("a0", f"{A2}/24")
    b.add_address("b0", f"{B}/24")
    for ns, ifname in ((a, "a0"), (b, "b0")):
        ns.set_up(ifname)
        ns.set_up("lo")
    assert a.wait_up("a0") and b.wait_up("b0")
    yield a, b, a.link_address("a0")


def _request(home_address: IPv4Address) -> bytes:
    return RegistrationRequest(NO_FLAGS, 600, home_address, B, A, 1).encode()


@pytest.mark.lab
def test_home_address_tap_keeps_only_requests_sent_from_their_home_address(
    pair: tuple[Netns, Netns, bytes],
) -> None:
    a, b, mac_a = pair
    rx = open_udp_control(b.name, port=434)
    home = LinkSourceTracker.open(None, b.name, from_home_address=True)
    full = LinkSourceTracker.open(None, b.name)
    # from A: one naming A (sent from its home address), one naming another address (a
    # foreign agent relaying, a co-located node), a short datagram; from A2, one naming A2
    tx_a = open_udp_control(a.name, address=A, port=434)
    tx_a2 = open_udp_control(a.name, address=A2, port=4343)
    try:
        send_udp(tx_a, _request(A), B)
        send_udp(tx_a, _request(IPv4Address("10.9.9.9")), B)
        send_udp(tx_a, b"\x01\x00", B)
        send_udp(tx_a2, _request(A2), B)
        got: list[UdpReceived] = []
        deadline = time.monotonic() + 3
        while len(got) < 4 and time.monotonic() < deadline:
            if select.select([rx], [], [], 0.2)[0]:
                got += recv_udp(rx)
        assert len(got) == 4
        time.sleep(0.05)
        assert home.poll() == 2  # the two sent from their Home Address
        assert full.poll() == 4
        assert home.table == {key(A, 434): ("b0", mac_a), key(A2, 4343): ("b0", mac_a)}
        # the full tap saw all of them; for the ones both keep, the same
        assert full.table == {key(A, 434): ("b0", mac_a), key(A2, 4343): ("b0", mac_a)}
        assert home.get(A, 434) == full.get(A, 434) == mac_a
        # a relayed request (its source is not its Home Address) never reached the tap
        assert home.poll() == 0
        send_udp(tx_a, _request(IPv4Address("10.9.9.9")), B)
        time.sleep(0.1)
        assert home.poll() == 0
        assert full.poll() == 1
    finally:
        for s in (rx, tx_a, tx_a2, home.sock, full.sock):
            s.close()


def test_the_filter_is_the_port_filter_plus_one_comparison() -> None:
    from mip4.io.rawsock import bpf_udp_dport, bpf_udp_dport_from_home_address

    plain, home = bpf_udp_dport(434), bpf_udp_dport_from_home_address(434)
    # the same checks first (protocol, fragments, header length, port), jumps aside
    assert [(c, k) for c, _t, _f, k in home[:7]] == [(c, k) for c, _t, _f, k in plain[:7]]
    # every jump lands inside the program and every path ends in a return
    for i, (code, jt, jf, _k) in enumerate(home):
        if code & 0x07 == 0x05:  # BPF_JMP
            assert i + 1 + max(jt, jf) < len(home)
    assert home[-2] == (0x06, 0, 0, 0xFFFF) and home[-1] == (0x06, 0, 0, 0)


@pytest.mark.parametrize(("role", "text"), [("ha", HA_TOML), ("fa", FA_TOML)])
def test_only_the_home_agent_daemon_asks_for_the_home_address_tap(
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
        seen.update(kw)
        return "io"

    monkeypatch.setattr(NodeIO, "open", fake_open)
    assert run.open_io(cfg, engine) == "io"  # type: ignore[comparison-overlap]
    assert seen["link_sources"] is True  # an agent learns senders' hardware addresses
    assert seen.get("link_sources_from_home_address", False) is (role == "ha")
    # issue 13: the foreign agent's relays of a read leave together (sendmmsg)
    assert seen.get("batch_udp", False) is (role == "fa")
