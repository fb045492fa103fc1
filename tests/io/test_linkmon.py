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
