"""LinkMonitor: carrier and address changes become LinkUp / LinkDown events."""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

from mip4.core.events import LinkDown, LinkUp
from mip4.io.linkmon import Event, LinkMonitor
from mip4.io.netns import Netns

pytestmark = pytest.mark.lab


def _collect(mon: LinkMonitor, want: int, within: float = 3.0) -> list[Event]:
    got: list[Event] = []
    deadline = time.monotonic() + within
    while len(got) < want and time.monotonic() < deadline:
        if select.select([mon], [], [], 0.1)[0]:
            got += mon.events()
    return got


def test_carrier_loss_and_return(make_netns: Callable[[str], Netns]) -> None:
    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    a.add_address("a0", "10.72.0.1/24")
    a.set_up("a0")
    b.set_up("b0")
    with LinkMonitor(a.name, {"a0"}, report_addresses=True) as mon:
        assert mon.is_up("a0")
        assert mon.events() == []  # the initial dump is state, not events
        b.set_up("b0", False)  # the peer goes away: no carrier
        assert _collect(mon, 1) == [LinkDown("a0")]
        b.set_up("b0")
        assert _collect(mon, 1) == [LinkUp("a0", IPv4Address("10.72.0.1"), 24)]
        a.add_address("a0", "10.73.0.9/16")
        assert _collect(mon, 1) == [LinkUp("a0", IPv4Address("10.73.0.9"), 16)]
        # interfaces not watched produce nothing
        a.add_bridge("br9")
        a.set_up("br9")
        time.sleep(0.1)
        assert [e for e in mon.events() if e.interface != "a0"] == []
        a.set_up("a0", False)
        assert _collect(mon, 1) == [LinkDown("a0")]


def test_lost_notifications_are_recovered_by_reading_the_state(
    make_netns: Callable[[str], Netns],
) -> None:
    import socket

    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    a.set_up("a0")
    b.set_up("b0")
    assert a.wait_up("a0")
    with LinkMonitor(a.name, {"a0"}) as mon:
        mon.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
        for _ in range(10):
            a.set_up("a0", False)
            a.set_up("a0")
        a.set_up("a0", False)
        time.sleep(0.2)
        got = _collect(mon, 1)
        time.sleep(0.1)
        got += mon.events()
        assert mon.overruns >= 1
        assert got and got[-1] == LinkDown("a0")
        assert not mon.is_up("a0")


def test_a_quick_carrier_bounce_is_reported_as_down_and_up(
    make_netns: Callable[[str], Netns],
) -> None:
    """A port taken down and up again at once (the lab's move re-plugs the cable that
    fast; a busy machine makes it likelier) reaches the monitor as one "up" message, or as
    nothing before the next one: the kernel's link watcher runs about once a second. The
    carrier change counter tells: each bounce is reported as LinkDown + LinkUp, so a
    mobile node never misses a move (issue 9 item 23: "link up" missing after a move)."""
    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    a.add_address("a0", "10.77.0.1/24")
    a.set_up("a0")
    b.set_up("b0")
    assert a.wait_up("a0")
    up = LinkUp("a0", IPv4Address("10.77.0.1"), 24)
    with LinkMonitor(a.name, {"a0"}) as mon:
        for _ in range(5):
            b.set_up("b0", False)
            b.set_up("b0")
            assert _collect(mon, 2) == [LinkDown("a0"), up]
            time.sleep(0.2)
            assert mon.events() == []  # nothing more for the same bounce


def test_link_notifications_are_read_as_pyroute2_reads_them(
    make_netns: Callable[[str], Netns],
) -> None:
    """The link monitor parses link messages itself (issue 14: the node's reaction):
    index, name, flags and carrier change count as pyroute2's decoder gives them, for the
    kernel's own answer about real links (a veth with a carrier history, a bridge)."""
    import socket
    import struct

    from mip4.io.linkmon import RTM_NEWLINK, _parse_link
    from mip4.io.netns import entered
    from mip4.io.nlthread import RtnlDecoder

    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    a.set_up("a0")
    b.set_up("b0")
    b.set_up("b0", False)
    b.set_up("b0")
    a.add_bridge("br9")
    with entered(a.name):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    try:
        sock.bind((0, 0))
        sock.settimeout(5)  # bounded
        # RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP
        sock.send(struct.pack("=IHHII", 32, 18, 0x301, 1, 0) + bytes(16))
        data = b""
        while b"\x03\x00\x02\x00" not in data[-16:]:  # NLMSG_DONE, multi-part
            data += sock.recv(1 << 16)
    finally:
        sock.close()
    ours: list[tuple[int, str, int, int | None]] = []
    pos = 0
    while pos + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, pos)
        if kind == RTM_NEWLINK:
            link = _parse_link(data, pos, length)
            assert link is not None
            ours.append(link)
        pos += (length + 3) & ~3
    theirs = [
        (
            int(m["index"]),
            str(m.get("IFLA_IFNAME")),
            int(m["flags"]),
            m.get("IFLA_CARRIER_CHANGES"),
        )
        for m in RtnlDecoder().decode(data)
        if int(m["header"]["type"]) == RTM_NEWLINK
    ]
    assert ours == theirs and len(ours) >= 3, (ours, theirs)
    assert {name for _i, name, _f, _c in ours} >= {"lo", "a0", "br9"}
    # a0's carrier went down and up again: the count says so
    (a0_changes,) = [c for _i, name, _f, c in ours if name == "a0"]
    assert a0_changes is not None and a0_changes >= 3
    # a message cut short is not a link message
    assert _parse_link(data, 0, 20) is None
