"""The link-source tap read from a receive ring (issue 13): what ``poll`` records from the
ring is what the ``recvfrom`` loop it replaces records from the same frames -- counts and
table, over more frames than the ring has slots (so it wraps), short datagrams included --
and a drained ring answers at once. Two namespaces joined by a veth pair."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address

import pytest

from mip4.io.linktap import LinkSourceTracker
from mip4.io.netns import Netns, entered
from mip4.io.rawsock import (
    ETH_P_IP,
    attach_filter,
    bpf_udp_dport,
    open_udp_control,
    send_udp,
)

A = IPv4Address("10.72.0.1")
A2 = IPv4Address("10.72.0.3")
key = LinkSourceTracker.key
B = IPv4Address("10.72.0.2")


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


def _recvfrom_tracker(netns: str | None) -> LinkSourceTracker:
    """The tap as :meth:`LinkSourceTracker.open` made it before the ring: same filter,
    read with ``recvfrom``."""
    with entered(netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    attach_filter(sock, bpf_udp_dport(434))
    sock.setblocking(False)
    return LinkSourceTracker(sock, {})


@pytest.mark.lab
def test_the_ring_records_what_recvfrom_records(pair: tuple[Netns, Netns, bytes]) -> None:
    a, b, mac_a = pair
    ring = LinkSourceTracker.open(None, b.name)
    old = _recvfrom_tracker(b.name)
    rx = open_udp_control(b.name, port=434)
    senders = [
        open_udp_control(a.name, address=addr, port=port)
        for addr in (A, A2)
        for port in (434, 4343, 5000)
    ]
    try:
        assert ring.ring is not None and old.ring is None
        assert ring.poll() == old.poll() == 0  # nothing yet: the ring answers at once
        frames = ring.ring.frames
        total_ring = total_old = 0
        batch, batches = 150, 8  # 1,200 frames: the ring's 512 slots wrap twice
        assert batch * batches > 2 * frames
        deadline = time.monotonic() + 20  # bounded in time as well as in count
        for k in range(batches):
            for j in range(batch):
                tx = senders[(k + j) % len(senders)]
                payload = b"" if j % 50 == 0 else bytes([1]) + bytes(j % 40)  # 28 bytes up
                send_udp(tx, payload, B)
            time.sleep(0.05)
            got_ring = ring.poll(limit=batch // 2) + ring.poll(limit=batch)  # in two parts
            got_old = old.poll(limit=batch // 2) + old.poll(limit=batch)
            assert got_ring == got_old == batch
            total_ring += got_ring
            total_old += got_old
            assert ring.table == old.table
            assert time.monotonic() < deadline
        assert total_ring == total_old == batch * batches
        assert ring.table == {
            key(addr, port): ("b0", mac_a) for addr in (A, A2) for port in (434, 4343, 5000)
        }
        assert list(ring.names.values()) == ["b0"]  # one interface, asked once
        assert ring.poll() == old.poll() == 0
        assert ring.get(A2, 5000) == old.get(A2, 5000) == mac_a
    finally:
        for s in (rx, *senders):
            s.close()
        ring.close()
        old.close()
    assert ring.ring is None
