"""Issue 14, what is left of the interruption, on the mobile node's executor (against the
counting stand-in for netlink of ``test_executor.py``): ``AwayFromHome`` on an interface
whose home subnet route is already withdrawn does no netlink work (no address dump on the
way to the first request after a move between foreign links), and is a full check again
once the node was home."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from mip4.core.actions import AwayFromHome

from .test_executor import CountingNetlink, _executor

HOME = IPv4Address("10.1.0.100")
IFACE = "eth0"


class AddressNetlink(CountingNetlink):
    """Also answers address dumps: the home address, /24, on every interface asked."""

    def addr(self, command: str, **kw: object) -> list[Any]:
        super().addr(command, **kw)
        return [{"IFA_ADDRESS": str(HOME), "prefixlen": 24}] if command == "dump" else []


def test_away_from_home_twice_on_one_interface_dumps_addresses_once() -> None:
    ex, _ = _executor()
    nl = AddressNetlink()
    ex.ns._ipr = nl  # type: ignore[assignment]
    ex._arp_quiet.add(IFACE)  # the sysctls are not the point here (and not this namespace's)
    ex.execute(AwayFromHome(IFACE, HOME))
    assert nl.calls["addr dump"] == 1 and nl.calls["route del"] == 1
    first = nl.total()
    # the node moves on to another foreign link on the same interface
    ex.execute(AwayFromHome(IFACE, HOME))
    assert nl.total() == first  # nothing to do: no address dump, no deletion
    assert ex.stats["away_already"] == 1
    # home again: the route is put back, and the next foreign link checks again
    ex._restore_home_routes()
    assert nl.calls["route add"] + nl.calls["route replace"] == 1
    ex.execute(AwayFromHome(IFACE, HOME))
    assert nl.calls["addr dump"] == 2 and nl.calls["route del"] == 2


def test_away_from_home_on_another_interface_still_checks() -> None:
    ex, _ = _executor()
    nl = AddressNetlink()
    nl.links["eth1"] = 3
    ex.ns._ipr = nl  # type: ignore[assignment]
    ex._arp_quiet.update({IFACE, "eth1"})
    ex.execute(AwayFromHome(IFACE, HOME))
    ex.execute(AwayFromHome("eth1", HOME))
    assert nl.calls["addr dump"] == 2 and nl.calls["route del"] == 2
