"""The link-layer delivery of UDP datagrams to a hardware address (a foreign agent's replies
to its visitors) with a header template per destination: the very bytes
:func:`mip4.wire.packets.ipv4_udp_packet` builds, for every length, address, port and TTL,
the checksum edge cases included (issue 13); and, in namespaces, such a datagram reaching
a UDP socket without ARP."""

from __future__ import annotations

import random
import select
import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import cast

import pytest

from mip4.core.events import UdpReceived
from mip4.io.netns import Netns
from mip4.io.rawsock import ETH_P_IP, LinkUdpSender, open_packet_sender, open_udp_control, recv_udp
from mip4.wire.ip import internet_checksum
from mip4.wire.packets import ipv4_udp_packet, transport_checksum

MAC = b"\x02\x00\x00\x00\x00\x10"


class RecordingSocket:
    """Stands in for the AF_PACKET socket: keeps what would have been sent, and where."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[object, ...]]] = []

    def sendto(self, data: bytes | bytearray, address: tuple[object, ...]) -> int:
        self.sent.append((bytes(data), address))
        return len(data)


def _sender(max_templates: int = 65536) -> tuple[LinkUdpSender, RecordingSocket]:
    sock = RecordingSocket()
    return LinkUdpSender(cast(socket.socket, sock), max_templates=max_templates), sock


def test_the_bytes_are_those_of_ipv4_udp_packet() -> None:
    rng = random.Random(13)
    sender, sock = _sender()
    cases = 0
    for _ in range(3000):
        src, dst = IPv4Address(rng.getrandbits(32)), IPv4Address(rng.getrandbits(32))
        sport, dport = rng.choice([434, 5555, 0, 65535, rng.getrandbits(16)]), 434
        ttl = rng.choice([64, 1, 255, 0])
        n = rng.choice([0, 1, 2, 3, 46, 47, rng.randrange(0, 1473)])
        payload = rng.randbytes(n) if rng.random() < 0.8 else bytes(n)
        iface = rng.choice(["vis0", "vis1"])
        sender.send(iface, MAC, src, dst, sport, dport, payload, ttl)
        want = ipv4_udp_packet(src, dst, sport, dport, payload, ttl=ttl)
        assert sock.sent[-1] == (want, (iface, ETH_P_IP, 0, 0, MAC)), (src, dst, n, ttl)
        cases += 1
    # the same destinations again: templates reused, same bytes
    for src_i in range(20):
        src = IPv4Address(0x0A090001)
        dst = IPv4Address(0x0A010010 + src_i % 3)
        payload = rng.randbytes(rng.randrange(0, 200))
        sender.send("vis0", MAC, src, dst, 434, 5555, payload)
        assert sock.sent[-1][0] == ipv4_udp_packet(src, dst, 434, 5555, payload)
    assert cases == 3000


@pytest.mark.parametrize("n", [2, 3])
def test_a_udp_checksum_computing_to_zero_is_sent_as_all_ones(n: int) -> None:
    """RFC 768: the payload is chosen so that the sum is 0xFFFF (checksum 0), sent as
    0xFFFF; the IPv4 header checksum stays right."""
    src, dst = IPv4Address("10.9.0.1"), IPv4Address("10.1.0.16")
    length = 8 + n
    pseudo_and_header = (
        src.packed + dst.packed + bytes((0, 17)) + length.to_bytes(2, "big")
        + (434).to_bytes(2, "big") + (5555).to_bytes(2, "big") + length.to_bytes(2, "big")
    )  # fmt: skip
    rest = int.from_bytes(pseudo_and_header, "big") % 0xFFFF
    word = (0xFFFF - rest) % 0xFFFF or 0xFFFF  # the payload's words bring the sum to 0xFFFF
    payload = word.to_bytes(2, "big") + bytes(n - 2)
    segment = bytearray(pseudo_and_header[12:] + b"\0\0" + payload)
    assert transport_checksum(src.packed, dst.packed, 17, segment) == 0xFFFF
    sender, sock = _sender()
    sender.send("vis0", MAC, src, dst, 434, 5555, payload)
    pkt = sock.sent[-1][0]
    assert pkt == ipv4_udp_packet(src, dst, 434, 5555, payload)
    assert pkt[26:28] == b"\xff\xff"
    assert internet_checksum(pkt[:20]) == 0


def test_one_template_per_destination_and_a_bounded_number() -> None:
    sender, _sock = _sender(max_templates=4)
    src = IPv4Address("10.9.0.1")
    for i in range(4):
        for _ in range(3):  # renewals: the same destination
            sender.send("vis0", MAC, src, IPv4Address(0x0A010010 + i), 434, 5555, b"x")
    assert len(sender) == 4
    sender.send("vis0", MAC, src, IPv4Address("10.1.0.99"), 434, 5555, b"x")
    assert len(sender) == 1  # full: forgotten, then the new one made


@pytest.mark.lab
def test_a_templated_datagram_reaches_a_hardware_address_without_arp(
    make_netns: Callable[[str], Netns],
) -> None:
    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    addr_a, addr_b = IPv4Address("10.71.0.1"), IPv4Address("10.71.0.2")
    for ns, ifname, addr in ((a, "a0", addr_a), (b, "b0", addr_b)):
        ns.add_address(ifname, f"{addr}/24")
        ns.set_up(ifname)
    assert a.wait_up("a0") and b.wait_up("b0")
    rx = open_udp_control(b.name, port=434)
    tx = open_packet_sender(a.name)
    try:
        sender = LinkUdpSender(tx)
        payloads = [b"odd", b"even", b"", b"odd"]
        for p in payloads:
            sender.send("a0", b.link_address("b0"), addr_a, addr_b, 434, 434, p, ttl=255)
        got: list[UdpReceived] = []
        deadline = time.monotonic() + 3
        while len(got) < len(payloads) and time.monotonic() < deadline:
            if select.select([rx], [], [], 0.2)[0]:
                got += recv_udp(rx)
        # (the kernel checks the IPv4 header checksum; veth spares the UDP one its check:
        # the bytes are held against ipv4_udp_packet above)
        assert [g.payload for g in got] == payloads
        assert {(g.src, g.dst, g.ttl, g.interface) for g in got} == {(addr_a, addr_b, 255, "b0")}
        assert a.neighbour("a0", addr_b) is None  # no ARP
    finally:
        rx.close()
        tx.close()


SRC_MAC = b"\x02\x00\x00\x00\x00\x01"


class RecordingLink:
    """Stands in for a packet socket bound to an interface: keeps each frame sent."""

    def __init__(self, error: int | None = None) -> None:
        self.frames: list[bytes] = []
        self.error = error
        self.closed = False

    def send(self, data: bytes | bytearray) -> int:
        if self.error is not None:
            raise OSError(self.error, "recorded")
        self.frames.append(bytes(data))
        return len(data)

    def close(self) -> None:
        self.closed = True


def _bound_sender(link: RecordingLink) -> tuple[LinkUdpSender, RecordingSocket]:
    sender, sock = _sender()
    sender.bind_links = True
    sender._links["vis0"] = (cast(socket.socket, link), SRC_MAC)
    return sender, sock


def test_a_bound_link_sends_the_ethernet_frame_the_kernel_would_build() -> None:
    """``bind_links``: the frame is the Ethernet header ``eth_header`` writes (destination,
    the interface's address, 0x0800) and the very datagram the unbound sender sends."""
    rng = random.Random(17)
    link = RecordingLink()
    bound, bound_sock = _bound_sender(link)
    plain, plain_sock = _sender()
    for _ in range(2000):
        src, dst = IPv4Address(rng.getrandbits(32)), IPv4Address(rng.getrandbits(32))
        sport, ttl = rng.choice([434, 5555, rng.getrandbits(16)]), rng.choice([64, 255, 1])
        payload = rng.randbytes(rng.choice([0, 1, 2, 47, rng.randrange(0, 1473)]))
        n = bound.send("vis0", MAC, src, dst, sport, 434, payload, ttl)
        plain.send("vis0", MAC, src, dst, sport, 434, payload, ttl)
        want = ipv4_udp_packet(src, dst, sport, 434, payload, ttl=ttl)
        assert link.frames[-1] == MAC + SRC_MAC + b"\x08\x00" + want
        assert plain_sock.sent[-1][0] == want and n == len(want)
        assert bytes(bound.packet("vis0", MAC, src, dst, sport, 434, payload, ttl)[0]) == want
    assert bound_sock.sent == []  # not one sendto with an interface name


def test_a_bound_link_whose_interface_is_gone_falls_back_to_sendto() -> None:
    import errno

    link = RecordingLink(errno.ENXIO)
    sender, sock = _bound_sender(link)
    src, dst = IPv4Address("10.9.0.1"), IPv4Address("10.1.0.16")
    sender._links["vis1"] = None  # vis1: not Ethernet, as _link would have found
    n = sender.send("vis0", MAC, src, dst, 434, 5555, b"reply")
    want = ipv4_udp_packet(src, dst, 434, 5555, b"reply")
    assert sock.sent == [(want, ("vis0", ETH_P_IP, 0, 0, MAC))] and n == len(want)
    # closed, and asked again for the retry: no vis0 here, so no bound socket for it
    assert link.closed and sender._links["vis0"] is None
    down = RecordingLink(errno.ENETDOWN)
    sender._links["vis0"] = (cast(socket.socket, down), SRC_MAC)
    sender._templates.clear()
    with pytest.raises(OSError):  # what sendto answers on a link that is down, too
        sender.send("vis0", MAC, src, dst, 434, 5555, b"reply")
    assert not down.closed and sender._links["vis0"] is not None  # kept for when it is up


@pytest.mark.lab
def test_a_bound_link_puts_the_same_frames_on_the_wire(
    make_netns: Callable[[str], Netns],
) -> None:
    """Through a veth: the frames of the bound sender and of ``sendto`` with the name,
    as a tap on the other end reads them, are the same bytes, Ethernet header included."""
    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    addr_a, addr_b = IPv4Address("10.73.0.1"), IPv4Address("10.73.0.2")
    for ns, ifname, addr in ((a, "a0", addr_a), (b, "b0", addr_b)):
        ns.add_address(ifname, f"{addr}/24")
        ns.set_up(ifname)
    assert a.wait_up("a0") and b.wait_up("b0")
    from mip4.io.netns import entered

    with entered(b.name):
        tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    tap.bind(("b0", ETH_P_IP))
    tap.settimeout(2)
    tx = open_packet_sender(a.name)
    bound = LinkUdpSender(tx, bind_links=True, netns=a.name)
    plain = LinkUdpSender(tx)
    mac_b = b.link_address("b0")
    try:
        frames: list[list[bytes]] = [[], []]
        for p in (b"odd", b"even", b""):
            for k, sender in enumerate((bound, plain)):
                sender.send("a0", mac_b, addr_a, addr_b, 434, 5555, p, ttl=255)
                data = tap.recv(2048)
                frames[k].append(data)
        assert frames[0] == frames[1]
        assert frames[0][0][:14] == mac_b + a.link_address("a0") + b"\x08\x00"
        assert bound._links["a0"] is not None
        assert frames[0][0][14:] == ipv4_udp_packet(addr_a, addr_b, 434, 5555, b"odd", ttl=255)
    finally:
        bound.close()
        tap.close()
        tx.close()
