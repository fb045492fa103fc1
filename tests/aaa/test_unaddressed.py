"""Registration Requests from 0.0.0.0 (RFC 2794: a node known by NAI, no address yet), which
Linux drops as martians before the UDP socket: :mod:`mip4.io.unaddressed` picks them up
with a filtered packet socket. A veth pair in a namespace of the test carries real frames."""

from __future__ import annotations

import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface

import pytest

from mip4.core.events import UdpReceived
from mip4.io.netns import Netns
from mip4.io.rawsock import open_packet_sender, send_to_link
from mip4.io.unaddressed import open_unaddressed_capture, parse_unaddressed, recv_unaddressed
from mip4.wire.packets import ipv4_udp_packet

A = IPv4Address
ZERO = A(0)
AGENT = A("10.2.0.2")
MAC = b"\x02\x00\x00\x00\x00\x07"


def test_parse_gives_the_event_the_udp_socket_would() -> None:
    pkt = ipv4_udp_packet(ZERO, AGENT, 5555, 434, b"request", ttl=255)
    ev = parse_unaddressed(pkt, "vis0", MAC)
    assert ev == UdpReceived(b"request", ZERO, AGENT, 5555, 434, "vis0", MAC, ttl=255)
    assert parse_unaddressed(ipv4_udp_packet(A("10.1.0.5"), AGENT, 1, 434, b"x"), "v", MAC) is None
    assert parse_unaddressed(pkt[:27], "vis0", MAC) is None  # truncated
    for dst in ("255.255.255.255", "224.0.0.11"):  # the kernel delivers these itself
        assert parse_unaddressed(ipv4_udp_packet(ZERO, A(dst), 1, 434, b"x"), "v", MAC) is None
    bad_len = bytearray(pkt)
    bad_len[24:26] = (500).to_bytes(2, "big")  # UDP length past the datagram
    assert parse_unaddressed(bytes(bad_len), "vis0", MAC) is None


@pytest.mark.lab
def test_only_udp_434_from_zero_passes_the_filter(make_netns: Callable[[str], Netns]) -> None:
    ns = make_netns("u")
    assert ns.name is not None
    ns.add_veth("u-fa", "u-mn")
    for ifname in ("u-fa", "u-mn"):
        ns.set_up(ifname)
    ns.add_address("u-fa", IPv4Interface("10.2.0.2/24"))
    cap = open_unaddressed_capture(ns.name)
    sender = open_packet_sender(ns.name)
    (link,) = ns.ipr.link("get", index=ns.index("u-fa"))
    fa_mac = bytes.fromhex(str(link.get("IFLA_ADDRESS")).replace(":", ""))
    try:
        sent = [
            ipv4_udp_packet(ZERO, AGENT, 5555, 434, b"from nowhere", ttl=255),  # passes
            ipv4_udp_packet(A("10.2.0.9"), AGENT, 5555, 434, b"addressed"),  # UDP socket's
            ipv4_udp_packet(ZERO, AGENT, 5555, 435, b"other port"),
            ipv4_udp_packet(ZERO, A("255.255.255.255"), 68, 67, b"dhcp"),
        ]
        for pkt in sent:
            send_to_link(sender, "u-mn", fa_mac, pkt)
        got: list[UdpReceived] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not got:
            got += recv_unaddressed(cap)
            time.sleep(0.05)
        time.sleep(0.2)
        got += recv_unaddressed(cap)
        assert [(e.payload, e.src, e.dst, e.dport, e.interface, e.ttl) for e in got] == [
            (b"from nowhere", ZERO, AGENT, 434, "u-fa", 255)
        ]
        assert got[0].link_src is not None and len(got[0].link_src) == 6
    finally:
        cap.close()
        sender.close()
