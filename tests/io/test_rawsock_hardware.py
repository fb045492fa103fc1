"""Issue 13: a gratuitous ARP for the interface's own hardware address asks the kernel for
that address once per socket and interface, not once per frame -- and never announces a
stale one: the link notifications (:class:`LinkChanges` for the agents, the mobile
node's :class:`LinkMonitor`) make it ask again after the address changed."""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address

import pytest

import mip4.io.rawsock as rawsock
from mip4.io.linkmon import LinkMonitor
from mip4.io.netns import Netns, entered, netns_exec
from mip4.io.rawsock import (
    ETH_P_ARP,
    LinkChanges,
    keep_hardware_addresses,
    open_packet_sender,
    send_gratuitous_arp,
)

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]
ADDRESS = IPv4Address("10.1.0.16")
MAC_A = "02:00:00:00:0a:01"
MAC_B = "02:00:00:00:0b:02"


@pytest.fixture
def link(make_netns: MakeNetns) -> Iterator[tuple[Netns, socket.socket]]:
    """Namespace with v0 (the sender's) and v1 (a capture of the ARP frames on it)."""
    ns = make_netns("hw")
    ns.add_veth("v0", "v1")
    netns_exec(ns.name, ["ip", "link", "set", "v0", "address", MAC_A])
    ns.set_up("v0")
    ns.set_up("v1")
    with entered(ns.name):
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ARP))
    cap.bind(("v1", ETH_P_ARP))
    yield ns, cap
    cap.close()


def _announced(cap: socket.socket) -> str:
    """The sender hardware address of the next ARP frame captured (bounded wait)."""
    ready, _, _ = select.select([cap], [], [], 2.0)
    assert ready, "no ARP frame"
    frame = cap.recv(2048)
    return frame[8:14].hex(":")


def _count_ioctls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []
    real = rawsock.hardware_address

    def counting(sock: socket.socket, interface: str) -> bytes:
        asked.append(interface)
        return real(sock, interface)

    monkeypatch.setattr(rawsock, "hardware_address", counting)
    return asked


def _change_address(ns: Netns, mac: str) -> None:
    netns_exec(ns.name, ["ip", "link", "set", "v0", "address", mac])


def test_kept_and_forgotten_on_link_notifications(
    link: tuple[Netns, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    ns, cap = link
    asked = _count_ioctls(monkeypatch)
    sock = open_packet_sender(ns.name)
    changes = LinkChanges(ns.name)
    try:
        keep_hardware_addresses(sock)
        for _ in range(3):
            send_gratuitous_arp("v0", ADDRESS, count=1, sock=sock)
            assert _announced(cap) == MAC_A
        assert asked == ["v0"]  # asked once for three frames
        changes.read()
        _change_address(ns, MAC_B)
        deadline = 50
        while "v0" not in changes.read() and deadline:  # the notification, bounded
            select.select([changes.sock], [], [], 0.1)
            deadline -= 1
        send_gratuitous_arp("v0", ADDRESS, count=1, sock=sock)
        assert _announced(cap) == MAC_B
        assert asked == ["v0", "v0"]
    finally:
        changes.close()
        sock.close()


def test_a_socket_that_does_not_keep_them_asks_each_time(
    link: tuple[Netns, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    ns, cap = link
    asked = _count_ioctls(monkeypatch)
    sock = open_packet_sender(ns.name)
    try:
        send_gratuitous_arp("v0", ADDRESS, count=1, sock=sock)
        assert _announced(cap) == MAC_A
        _change_address(ns, MAC_B)  # no notification read: not needed without keeping
        send_gratuitous_arp("v0", ADDRESS, count=1, sock=sock)
        assert _announced(cap) == MAC_B
        assert asked == ["v0", "v0"]
    finally:
        sock.close()


def test_the_link_monitor_forgets_them_too(
    link: tuple[Netns, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    ns, cap = link
    asked = _count_ioctls(monkeypatch)
    sock = open_packet_sender(ns.name)
    mon = LinkMonitor(ns.name, {"v0"})
    try:
        keep_hardware_addresses(sock)
        send_gratuitous_arp("v0", ADDRESS, count=1, sock=sock)
        send_gratuitous_arp("v0", ADDRESS, count=1, sock=sock)
        assert [_announced(cap), _announced(cap)] == [MAC_A, MAC_A] and asked == ["v0"]
        mon.events()
        _change_address(ns, MAC_B)
        select.select([mon.sock], [], [], 2.0)
        mon.events()
        send_gratuitous_arp("v0", ADDRESS, count=1, sock=sock)
        assert _announced(cap) == MAC_B and asked == ["v0", "v0"]
    finally:
        mon.close()
        sock.close()


def test_the_bound_arp_sender_sends_the_same_frames_in_one_system_call_each(
    link: tuple[Netns, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """:class:`ArpSender` (issue 13): the frame ``send_gratuitous_arp`` sends, Ethernet
    header included, from a socket bound to the interface (no ``sendto`` naming it); an
    announcement's repeats reuse its frame while the address is kept, and announce the new
    one once the link notification made it forgotten; a frame for another hardware address
    (the node's) announces that one."""
    ns, _cap = link
    with entered(ns.name):
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    raw.bind(("v1", ETH_P_ARP))
    sock = open_packet_sender(ns.name)
    changes = LinkChanges(ns.name)
    sender = rawsock.ArpSender(ns.name, lambda: sock, keep=True)
    try:

        def frame() -> bytes:
            ready, _, _ = select.select([raw], [], [], 2.0)
            assert ready, "no ARP frame"
            return raw.recv(2048)

        send_gratuitous_arp("v0", ADDRESS, count=1, sock=sock)
        theirs = frame()
        asked = _count_ioctls(monkeypatch)
        announce = sender.announcement("v0", ADDRESS)
        for _ in range(3):
            announce()
            assert frame() == theirs
        assert asked == ["v0"]  # the own address asked once for the three
        assert sender._links["v0"] is not None  # through the bound socket
        node = bytes.fromhex("020000000c03")
        sender.announcement("v0", ADDRESS, node)()
        send_gratuitous_arp("v0", ADDRESS, node, count=1, sock=sock)
        assert frame() == frame()
        changes.read()
        _change_address(ns, MAC_B)
        deadline = 50
        while "v0" not in changes.read() and deadline:  # the notification, bounded
            select.select([changes.sock], [], [], 0.1)
            deadline -= 1
        announce()  # a repeat after the change: the new address
        assert frame()[22:28].hex(":") == MAC_B
    finally:
        sender.close()
        changes.close()
        sock.close()
        raw.close()
