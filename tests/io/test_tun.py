"""A TUN device inside a namespace: the kernel's packets come out of it, ours go in."""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest

from mip4.io.icmpsock import ping
from mip4.io.netns import Netns, entered, netns_exec
from mip4.io.tun import Tun, rp_filter_problem
from mip4.wire.ip import internet_checksum
from mip4.wire.packets import icmp_with_checksum

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]


def _wait_readable(fd: int, timeout: float = 2.0) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def test_tun_is_created_in_the_namespace_without_ipv6(make_netns: MakeNetns, prefix: str) -> None:
    ns = make_netns("a")
    name = f"{prefix}t"
    with Tun(name, ns.name, address="10.77.0.1/24") as tun:
        links = netns_exec(ns.name, ["ip", "-o", "link", "show", name]).stdout
        assert "UP" in links and "mtu 1472" in links
        assert "inet 10.77.0.1/24" in netns_exec(ns.name, ["ip", "-o", "addr"]).stdout
        assert netns_exec(ns.name, ["ip", "-6", "-o", "addr", "show", "dev", name]).stdout == ""
        assert ns.read_sysctl(f"net.ipv6.conf.{name}.disable_ipv6") == "1"
        # not in the namespace this process runs in
        assert name not in [n for _, n in socket.if_nameindex()]
        assert tun.read() is None  # non-blocking, nothing queued
    # closing the descriptor removes the device
    assert name not in netns_exec(ns.name, ["ip", "-o", "link"]).stdout


def test_tun_reads_requests_and_writes_replies(make_netns: MakeNetns, prefix: str) -> None:
    """The kernel routes an echo request into the TUN device; we answer by writing an echo
    reply into it, and the kernel's ping socket receives it."""
    ns = make_netns("a")
    with Tun(f"{prefix}t", ns.name, address="10.77.0.1/24") as tun:
        result: list[list[float]] = []
        pinger = threading.Thread(
            target=lambda: result.append(ping("10.77.0.2", netns=ns.name, count=1, timeout=3))
        )
        pinger.start()
        answered = 0
        deadline = time.monotonic() + 5
        while not answered and time.monotonic() < deadline:
            if not _wait_readable(tun.fd, 0.5):
                continue
            for pkt in tun.read_batch():
                if pkt[9] != 1 or pkt[20] != 8:
                    continue
                reply = bytearray(pkt)
                reply[12:16], reply[16:20] = pkt[16:20], pkt[12:16]
                reply[10:12] = b"\0\0"
                reply[10:12] = internet_checksum(reply[:20]).to_bytes(2, "big")
                reply[20:] = icmp_with_checksum(b"\0" + bytes(reply[21:]))
                assert tun.write(reply) == len(reply)
                answered += 1
        pinger.join(5)
        assert answered == 1
        assert len(result) == 1 and len(result[0]) == 1


def test_read_batch_drains_every_queued_datagram(make_netns: MakeNetns, prefix: str) -> None:
    ns = make_netns("a")
    with Tun(f"{prefix}t", ns.name, address="10.77.0.1/24") as tun:
        with entered(ns.name):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            for i in range(20):
                s.sendto(struct.pack("!I", i), ("10.77.0.9", 9999))
        assert _wait_readable(tun.fd)
        time.sleep(0.05)
        got = tun.read_batch(limit=256)
        assert [struct.unpack("!I", p[28:32])[0] for p in got] == list(range(20))
        assert all(p[0] >> 4 == 4 for p in got)
        assert tun.read_batch() == []
        # a limit bounds one drain
        with entered(ns.name):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            for _ in range(5):
                s.sendto(b"x", ("10.77.0.9", 9999))
        time.sleep(0.05)
        assert len(tun.read_batch(limit=3)) == 3
        assert len(tun.read_batch(limit=3)) == 2


def _echo_request(src: str, dst: str, ident: int) -> bytes:
    icmp = icmp_with_checksum(struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"mip4-rpf")
    hdr = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(icmp),
            ident,
            0,
            64,
            1,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
    )
    hdr[10:12] = internet_checksum(hdr).to_bytes(2, "big")
    return bytes(hdr) + icmp


def test_decapsulated_datagram_from_a_source_routed_elsewhere_is_delivered(
    make_netns: MakeNetns, prefix: str
) -> None:
    """The mobile node with a co-located care-of address and no reverse tunnel: its TUN
    device has no address, the correspondent's address is routed by the link, and a
    datagram decapsulated into the TUN device must still reach the local stack (the kernel
    drops it under rp_filter 1 or 2 on an addressless device). The echo reply the kernel
    makes leaves by the link and is caught in the peer namespace."""
    ns, peer = make_netns("m"), make_netns("p")
    ns.add_veth("m0", "p0", peer)
    ns.add_address("m0", "10.78.0.1/24")
    peer.add_address("p0", "10.78.0.2/24")
    peer.add_address("p0", "198.51.100.7/32")  # the correspondent, local in the peer
    ns.set_up("m0")
    peer.set_up("p0")
    assert ns.wait_up("m0") and peer.wait_up("p0")
    ns.add_route("0.0.0.0/0", gateway="10.78.0.2", ifname="m0")
    assert rp_filter_problem(ns.name) is None  # "all" is 0 in a new namespace
    with entered(peer.name):
        catcher = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with catcher, Tun(f"{prefix}t", ns.name) as tun:
        assert ns.read_sysctl(f"net.ipv4.conf.{tun.name}.rp_filter") == "0"
        catcher.settimeout(0.2)
        replies = 0
        deadline = time.monotonic() + 5
        sent = 0
        while not replies and sent < 10 and time.monotonic() < deadline:
            tun.write(_echo_request("198.51.100.7", "10.78.0.1", 0x4D34))
            sent += 1
            try:
                while True:
                    data, _ = catcher.recvfrom(2048)
                    if data[20] == 0 and struct.unpack("!H", data[24:26])[0] == 0x4D34:
                        replies += 1
                        break
            except TimeoutError:
                continue
        assert replies == 1, f"no echo reply to {sent} requests written into the TUN device"


def test_rp_filter_problem_names_the_host_setting(make_netns: MakeNetns) -> None:
    ns = make_netns("r")
    ns.sysctl("net.ipv4.conf.all.rp_filter", 2)
    problem = rp_filter_problem(ns.name)
    assert problem is not None and "net.ipv4.conf.all.rp_filter is 2" in problem


def test_interface_name_length_is_checked() -> None:
    with pytest.raises(ValueError, match="longer than 15"):
        Tun("x" * 16)
