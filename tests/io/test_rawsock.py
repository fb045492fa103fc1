"""Raw, packet and UDP 434 sockets between two namespaces joined by a veth pair."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest

from mip4.core.events import DestinationUnreachable, IcmpReceived, UdpReceived
from mip4.io.icmpsock import open_discovery_capture, open_icmp_socket, ping, recv_discovery
from mip4.io.linktap import LinkSourceTracker
from mip4.io.netns import Netns, entered
from mip4.io.rawsock import (
    ALL_SYSTEMS,
    ETH_P_ARP,
    open_packet_sender,
    open_udp_control,
    recv_udp,
    send_gratuitous_arp,
    send_to_link,
    send_udp,
)
from mip4.wire.packets import icmp_with_checksum, ipv4_udp_packet

pytestmark = pytest.mark.lab

A = IPv4Address("10.70.0.1")
B = IPv4Address("10.70.0.2")


@dataclass
class Pair:
    a: Netns
    b: Netns
    mac_a: bytes
    mac_b: bytes


@pytest.fixture
def pair(make_netns: Callable[[str], Netns]) -> Iterator[Pair]:
    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    for ns, ifname, addr in ((a, "a0", A), (b, "b0", B)):
        ns.add_address(ifname, f"{addr}/24")
        ns.set_up(ifname)
        ns.set_up("lo")
    assert a.wait_up("a0") and b.wait_up("b0")
    yield Pair(a, b, a.link_address("a0"), b.link_address("b0"))


def _drain_udp(sock: socket.socket, want: int, **kw: object) -> list[UdpReceived]:
    got: list[UdpReceived] = []
    deadline = time.monotonic() + 3
    while len(got) < want and time.monotonic() < deadline:
        if select.select([sock], [], [], 0.2)[0]:
            got += recv_udp(sock, **kw)  # type: ignore[arg-type]
    return got


def test_udp_control_reports_interface_destination_and_ttl(pair: Pair) -> None:
    rx = open_udp_control(pair.b.name, port=434)
    tracker = LinkSourceTracker.open("b0", pair.b.name)
    tx = open_udp_control(pair.a.name, port=434, interface="a0")
    try:
        send_udp(tx, b"unicast-ttl1", B, ttl=1)
        send_udp(tx, b"broadcast", IPv4Address("255.255.255.255"), ttl=7)
        send_udp(tx, b"default", B)
        got = _drain_udp(rx, 3, link_src_of=tracker.lookup)
        assert [g.payload for g in got] == [b"unicast-ttl1", b"broadcast", b"default"]
        assert [g.ttl for g in got] == [1, 7, 64]
        assert [str(g.dst) for g in got] == [str(B), "255.255.255.255", str(B)]
        assert {g.interface for g in got} == {"b0"}
        assert {(g.src, g.sport, g.dport) for g in got} == {(A, 434, 434)}
        assert {g.link_src for g in got} == {pair.mac_a}
    finally:
        for s in (rx, tx, tracker.sock):
            s.close()


def test_send_to_link_reaches_a_hardware_address_without_arp(pair: Pair) -> None:
    rx = open_udp_control(pair.b.name, port=434)
    tx = open_packet_sender(pair.a.name)
    try:
        pkt = ipv4_udp_packet(A, B, 434, 434, b"no-arp", ttl=1)
        send_to_link(tx, "a0", pair.mac_b, pkt)
        (got,) = _drain_udp(rx, 1)
        assert (got.payload, got.src, got.dst, got.ttl, got.interface) == (
            b"no-arp",
            A,
            B,
            1,
            "b0",
        )
        # a never asked for b's address
        assert pair.a.neighbour("a0", B) is None
    finally:
        rx.close()
        tx.close()


def test_gratuitous_arp_updates_the_neighbour_and_is_captured(pair: Pair) -> None:
    assert len(ping(B, netns=pair.a.name, timeout=2)) == 1
    assert pair.a.neighbour("a0", B) == pair.mac_b
    with entered(pair.a.name):
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ARP))
    cap.bind(("a0", ETH_P_ARP))
    fake = bytes.fromhex("02000000bb42")
    try:
        assert send_gratuitous_arp("b0", B, fake, count=3, netns=pair.b.name) == 3
        frames: list[tuple[bytes, tuple[object, ...]]] = []
        deadline = time.monotonic() + 3
        while len(frames) < 3 and time.monotonic() < deadline:
            if select.select([cap], [], [], 0.2)[0]:
                data, addr = cap.recvfrom(2048)
                frames.append((data, addr))
        assert len(frames) == 3
        for data, addr in frames:
            assert addr[4] == pair.mac_b  # Ethernet source: the sending interface
            assert data[7] == 1  # ARP request
            assert data[8:14] == fake and data[14:18] == B.packed and data[24:28] == B.packed
        deadline = time.monotonic() + 2
        while pair.a.neighbour("a0", B) != fake and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pair.a.neighbour("a0", B) == fake
    finally:
        cap.close()


def test_router_discovery_capture_sees_advertisements_with_link_source(pair: Pair) -> None:
    cap = open_discovery_capture("b0", pair.b.name)
    tx = open_icmp_socket("a0", pair.a.name)
    try:
        echo = icmp_with_checksum(bytes([8, 0, 0, 0, 0, 1, 0, 1]))
        advert = icmp_with_checksum(bytes([9, 16, 0, 0, 1, 2, 0, 30]) + A.packed + bytes(4))
        tx.sendto(echo, (str(B), 0))  # filtered out by the BPF program
        tx.sendto(advert, (str(ALL_SYSTEMS), 0))
        tx.sendto(icmp_with_checksum(bytes([10, 0, 0, 0, 0, 0, 0, 0])), ("255.255.255.255", 0))
        got: list[IcmpReceived] = []
        deadline = time.monotonic() + 3
        while len(got) < 2 and time.monotonic() < deadline:
            if select.select([cap], [], [], 0.2)[0]:
                got += recv_discovery(cap)
        assert [g.payload[0] for g in got] == [9, 10]
        assert got[0].payload == advert
        assert [str(g.dst) for g in got] == [str(ALL_SYSTEMS), "255.255.255.255"]
        assert {(g.src, g.ttl, g.interface, g.link_src) for g in got} == {(A, 1, "b0", pair.mac_a)}
        time.sleep(0.1)
        assert recv_discovery(cap) == []  # the echo request never showed up
    finally:
        cap.close()
        tx.close()


def test_destination_unreachable_quotes_the_datagram(pair: Pair) -> None:
    from mip4.io.icmpsock import open_icmp_error_socket, recv_destination_unreachable

    errs = open_icmp_error_socket(pair.a.name)
    tx = open_udp_control(pair.a.name, port=434)
    try:
        send_udp(tx, b"registration request", B, 4999)  # nobody listens on 4999
        got: list[DestinationUnreachable] = []
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            if select.select([errs], [], [], 0.2)[0]:
                got += recv_destination_unreachable(errs)
        (ev,) = got
        assert (ev.code, ev.src, ev.original_dst, ev.interface) == (3, B, B, "a0")
        assert (ev.original_sport, ev.original_dport) == (434, 4999)
        assert ev.original_payload == b"registration request"
        # echo replies and other ICMP types are filtered out by the kernel
        assert ping(B, netns=pair.a.name, timeout=2)
        time.sleep(0.05)
        assert recv_destination_unreachable(errs) == []
    finally:
        errs.close()
        tx.close()


def test_udp_without_control_messages_has_ttl_zero_not_a_default() -> None:
    """A socket that was not asked for IP_TTL (not opened by open_udp_control): the TTL is
    unknown and reads 0, which fails the RFC 3024 §4.2.1 check for T requests (TTL 255)
    instead of passing it as the old default of 64 did."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
        tx.sendto(b"x", rx.getsockname())
        got = _drain_udp(rx, 1, ifname_of=lambda index: "lo")
        assert [(g.payload, g.ttl) for g in got] == [(b"x", 0)]
