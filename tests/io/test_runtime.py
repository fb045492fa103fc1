"""NodeIO opens one node's I/O in a namespace and gives every change back on close."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from mip4.core.actions import Action, ProxyArp
from mip4.core.counters import Counters
from mip4.core.events import Event, LinkUp
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.io.netns import Netns, entered
from mip4.io.runtime import SO_RCVBUFFORCE, NodeIO
from mip4.io.undo import Journal, SysctlRecord, load_journal
from mip4.security.auth import sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import (
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    decode_message,
)

pytestmark = pytest.mark.lab


@dataclass
class Once:
    """Asks for proxy ARP on the first LinkUp, records every event."""

    events: list[Event] = field(default_factory=list)

    def handle(self, event: Event, now: float) -> list[Action]:
        self.events.append(event)
        if isinstance(event, LinkUp) and len(self.events) == 1:
            return [ProxyArp(event.interface, IPv4Address("10.74.0.99"), True)]
        return []

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float | None:
        return None

    @property
    def counters(self) -> Counters:
        return Counters()


def test_open_run_close(make_netns: Callable[[str], Netns], prefix: str) -> None:
    ns, peer = make_netns("n"), make_netns("p")
    ns.add_veth("n0", "p0", peer)
    ns.add_address("n0", "10.74.0.1/24")
    ns.set_up("n0")
    peer.set_up("p0")
    assert ns.wait_up("n0")
    tun = f"{prefix}t"
    io = NodeIO.open(
        ns.name,
        ["n0"],
        tun_name=tun,
        tunnel_source=IPv4Address("10.74.0.1"),
        link_sources=True,
        forwarding=True,
        icmp_errors=True,
        watch_links=True,
    )
    try:
        assert ns.read_sysctl("net.ipv4.ip_forward") == "1"
        assert ns.read_sysctl(f"net.ipv4.conf.{tun}.rp_filter") == "0"
        assert io.current_links() == [LinkUp("n0", IPv4Address("10.74.0.1"), 24)]
        engine = Once()

        async def main() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(io.run(engine, stop))
            for _ in range(100):
                await asyncio.sleep(0.01)
                if engine.events:
                    break
            stop.set()
            await task

        asyncio.run(main())
        assert engine.events[0] == LinkUp("n0", IPv4Address("10.74.0.1"), 24)
        assert "10.74.0.99 dev n0 proxy" in ns.exec(["ip", "neigh", "show", "proxy"]).stdout
    finally:
        io.close()
    # everything given back: forwarding off again, proxy entry gone, TUN device gone
    assert ns.read_sysctl("net.ipv4.ip_forward") == "0"
    assert ns.exec(["ip", "neigh", "show", "proxy"]).stdout.strip() == ""
    assert tun not in ns.exec(["ip", "-o", "link"]).stdout


def test_a_valid_request_after_a_burst_of_forged_ones_is_answered(
    make_netns: Callable[[str], Netns], prefix: str
) -> None:
    """Issue 9 item 5: 2,000 forged Registration Requests (a wrong key) reach a home agent
    before it reads its UDP 434 socket, then one valid request. The control socket's
    receive buffer is sized (2 MiB, like the raw sockets') so the valid one is still
    queued: it is read and answered with code 0 (the forged ones with 131)."""
    ns, peer = make_netns("n"), make_netns("p")
    ns.add_veth("n0", "p0", peer)
    ns.add_address("n0", "10.75.0.1/24")
    peer.add_address("p0", "10.75.0.2/24")  # relays the node's requests, as an FA would
    ns.set_up("n0")
    peer.set_up("p0")
    assert ns.wait_up("n0") and peer.wait_up("p0")
    home, ha, coa = IPv4Address("10.75.0.100"), IPv4Address("10.75.0.1"), IPv4Address("10.9.9.9")
    key = SecurityAssociation(spi=256, key=bytes(range(16)))
    engine = HomeAgent(
        HomeAgentConfig(address=ha, home_network=IPv4Network("10.75.0.0/24"), interface="n0"),
        SecurityAssociations([(home, key)]),
        time.time() - time.monotonic(),
    )
    io = NodeIO.open(ns.name, ["n0"], tun_name=f"{prefix}t", tunnel_source=ha)
    try:
        assert io.udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 1 << 21

        def request(n: int) -> RegistrationRequest:
            ident = ntp_timestamp(time.time()) + n
            return RegistrationRequest(RegistrationFlags.T, 300, home, ha, coa, ident)

        wrong = SecurityAssociation(spi=256, key=b"not the right key")
        valid = request(0)
        with entered(peer.name):
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with client:
            client.bind(("10.75.0.2", 4435))
            client.settimeout(5)
            # room for the 2,001 replies on our side too
            client.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 22)
            for n in range(1, 2_001):
                client.sendto(sign(request(n), MobileHomeAuthExtension, wrong).raw, (str(ha), 434))
            client.sendto(sign(valid, MobileHomeAuthExtension, key).raw, (str(ha), 434))

            async def main() -> None:
                stop = asyncio.Event()
                task = asyncio.create_task(io.run(engine, stop))
                for _ in range(1_000):
                    await asyncio.sleep(0.01)
                    if engine.bindings:
                        break
                stop.set()
                await task

            asyncio.run(main())
            codes: dict[int, int] = {}
            while True:
                try:
                    payload = client.recv(2048)
                except (TimeoutError, BlockingIOError):
                    break
                client.settimeout(0.5)
                reply = decode_message(payload)
                assert isinstance(reply, RegistrationReply)
                codes[reply.identification] = int(reply.code)
            assert codes.get(valid.identification) == 0, (len(codes), engine.counters)
            assert len(codes) == 2_001 and sorted(set(codes.values())) == [0, 131]
            assert [b.care_of_address for b in engine.bindings.bindings_of(home)] == [coa]
    finally:
        io.close()


def test_abandon_leaves_the_kernel_state_and_its_journal(
    make_netns: Callable[[str], Netns], prefix: str, tmp_path: Path
) -> None:
    """A crash as the lab simulates it: sockets and TUN device close, the kernel state and
    the journal stay; the journal's records then undo it (the leftover cleaner's way), and
    forwarding gets back the value it had before."""
    ns, peer = make_netns("n"), make_netns("p")
    ns.add_veth("n0", "p0", peer)
    ns.add_address("n0", "10.76.0.1/24")
    ns.set_up("n0")
    ns.sysctl("net.ipv4.ip_forward", 0, restore=False)
    tun = f"{prefix}t"
    path = tmp_path / "fa.undo.json"
    io = NodeIO.open(ns.name, ["n0"], tun_name=tun, forwarding=True, journal=Journal(path))
    io.executor.execute(ProxyArp("n0", IPv4Address("10.76.0.99"), True))
    io.abandon()
    assert tun not in ns.exec(["ip", "-o", "link"]).stdout
    assert ns.read_sysctl("net.ipv4.ip_forward") == "1"
    assert "10.76.0.99" in ns.exec(["ip", "neigh", "show", "proxy"]).stdout
    records = load_journal(path)
    assert SysctlRecord("net.ipv4.ip_forward", "0") in records
    with Netns(ns.name) as cleaner:
        done = [r.describe() for r in reversed(records) if cleaner.undo_record(r)]
    assert "proxy neighbour 10.76.0.99 dev n0" in done
    assert ns.read_sysctl("net.ipv4.ip_forward") == "0"
    assert ns.exec(["ip", "neigh", "show", "proxy"]).stdout.strip() == ""


@pytest.mark.parametrize("refusal", ["attach", "no libbpf"])
@pytest.mark.parametrize("choice", ["auto", "bpf"])
def test_a_fast_path_the_host_refuses_at_open(
    make_netns: Callable[[str], Netns],
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    choice: str,
    refusal: str,
) -> None:
    """Opening the fast path failed (an attach or a map the host refused, or no libbpf:
    with ``auto`` that open is the probe): with ``auto`` the node runs on the user-space
    plane, said in the log; with ``bpf`` the open fails and gives back what it made (no
    TUN device left)."""
    from mip4.io import runtime
    from mip4.io.bpf import agent
    from mip4.io.bpf.libbpf import BpfError, BpfUnavailable

    error: Exception = (
        BpfError(1, "bpf_tc_attach")
        if refusal == "attach"
        else BpfUnavailable("bpf_tc_attach: libbpf.so.1 not found")
    )

    def refused(*args: object, **kw: object) -> agent.FastPath:
        raise error

    # the kernel passed (whatever this host says)
    monkeypatch.setattr(runtime, "resolve_dataplane", lambda choice, *unavailable: "bpf")
    monkeypatch.setattr(agent.FastPath, "open", refused)
    ns, peer = make_netns("n"), make_netns("p")
    ns.add_veth("n0", "p0", peer)
    ns.add_address("n0", "10.74.0.1/24")
    ns.set_up("n0")
    peer.set_up("p0")
    tun = f"{prefix}t"
    if choice == "bpf":
        with pytest.raises(type(error), match="bpf_tc_attach"):
            NodeIO.open(ns.name, ["n0"], tun_name=tun, dataplane="bpf")
        assert tun not in ns.exec(["ip", "-o", "link"]).stdout
        return
    caplog.set_level("WARNING", logger="mip4")
    io = NodeIO.open(ns.name, ["n0"], tun_name=tun, dataplane="auto")
    try:
        assert io.dataplane == "userspace" and io.fast_path is None
        assert io.executor.fast_path is None
        assert tun in ns.exec(["ip", "-o", "link"]).stdout  # the user-space plane's device
        (line,) = [r.getMessage() for r in caplog.records if "could not start" in r.getMessage()]
        assert "bpf_tc_attach" in line and "user-space plane" in line
    finally:
        io.close()
    assert tun not in ns.exec(["ip", "-o", "link"]).stdout
