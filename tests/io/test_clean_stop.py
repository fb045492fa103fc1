"""A clean stop of a home agent with many bindings (issue 12 acceptance 4, issue 13): what
goes with a device deleted in the same stop is left to the kernel, everything else is still
undone record by record, and the journal goes.

* Unit (a counting stand-in for netlink, as ``test_executor.py``): after
  ``devices_going([tun])`` the executor's close sends no route delete through the TUN
  device -- one per binding before -- while a route through another device, a rule and a
  proxy entry are still deleted, and the journal is removed; ``UndoStack.undo(leave)``
  forgets what ``leave`` selects and undoes the rest, newest first.
* Lab (a namespace, the user-space plane): a ``NodeIO`` with bindings and proxy entries
  stops without a route delete per binding, and leaves no TUN device, route, proxy entry,
  sysctl change or journal behind.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from mip4.core.actions import InstallBinding, ProxyArp
from mip4.io.netns import Netns
from mip4.io.rtnl import Request
from mip4.io.runtime import NodeIO
from mip4.io.undo import Journal, RouteRecord, RuleRecord, UndoStack

from .test_executor import COA, TUN, NetlinkError, _executor, _hoa, _install


def _route_deletes(requests: list[tuple[str, str, dict[str, object]]]) -> list[dict[str, object]]:
    return [kw for kind, command, kw in requests if (kind, command) == ("route", "del")]


def test_a_clean_stop_sends_no_route_delete_through_a_device_going_with_it(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "ha.undo.json")
    ex, nl = _executor(journal)
    for i in range(100):
        ex.execute(_install(i, 100.0))
    # a route through a device that stays (eth0, index 2), a rule, a proxy entry
    ex.ns.add_route("10.5.0.0/16", gateway="10.0.0.254", ifname="eth0")
    ex.ns.add_rule(src=_hoa(0), table=434, priority=4340)
    ex.ns.add_proxy_neighbour("eth0", _hoa(1))
    assert journal.path.exists()
    done = len(nl.requests)

    ex.devices_going([nl.links[TUN]])
    ex.close()

    stop = nl.requests[done:]
    deleted = _route_deletes(stop)
    # the bindings' routes (through the TUN device) go with the device: no delete each
    assert [kw for kw in deleted if kw.get("oif") == nl.links[TUN]] == []
    # the route through eth0 is still deleted, and only it
    assert [(kw["dst"], kw["dst_len"], kw.get("oif")) for kw in deleted] == [
        ("10.5.0.0", 16, nl.links["eth0"])
    ]
    assert [kw["priority"] for kind, command, kw in stop if (kind, command) == ("rule", "del")] == [
        4340
    ]
    proxies = [kw for kind, command, kw in stop if (kind, command) == ("neigh", "del")]
    assert [(kw["dst"], kw["ifindex"]) for kw in proxies] == [(str(_hoa(1)), nl.links["eth0"])]
    assert not journal.path.exists()
    assert ex._unsettled == set()  # the only thing the executor kept of a binding


def test_without_devices_going_every_binding_route_is_deleted_at_close() -> None:
    ex, nl = _executor()
    for i in range(10):
        ex.execute(_install(i, 100.0))
    ex.devices_going([nl.links["eth0"]])  # not the TUN device: its routes still go one by one
    done = len(nl.requests)
    ex.close()
    deleted = _route_deletes(nl.requests[done:])
    assert sorted(str(kw["dst"]) for kw in deleted) == sorted(str(_hoa(i)) for i in range(10))
    assert {kw["oif"] for kw in deleted} == {nl.links[TUN]}


def test_undo_with_leave_forgets_what_it_selects_and_undoes_the_rest_newest_first(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.json")
    undone: list[Any] = []
    stack = UndoStack(undone.append, journal, "s")
    through_tun = [RouteRecord(f"10.1.0.{i}", 32, 254, 7) for i in range(3)]
    other = RouteRecord("10.2.0.0", 16, 254, 2, "10.0.0.254")
    rule = RuleRecord(434, 4340, "10.1.0.1", 32)
    calls: list[str] = []
    stack.push(other)
    stack.push(through_tun[0])
    stack.callback("first", lambda: calls.append("first"))
    stack.push(rule)
    stack.push(through_tun[1])
    stack.push(through_tun[2])
    journal.tear_down()

    errors = stack.undo(lambda r: isinstance(r, RouteRecord) and r.oif == 7)

    assert errors == []
    assert undone == [rule, other]  # newest first, the routes through index 7 left
    assert calls == ["first"]
    assert len(stack) == 0
    assert not journal.path.exists()  # every record forgotten: the journal went


def test_a_held_journal_stays_until_released_with_no_record_left(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.json")
    record = RouteRecord("10.1.0.1", 32, 254, 2)
    journal.add(record)
    journal.tear_down()
    journal.hold()
    journal.remove(record)
    assert journal.path.exists()  # a batched delete still to go: the record says what
    journal.release()
    assert not journal.path.exists()


def test_undo_with_leave_reports_a_failure_and_goes_on() -> None:
    def fail(record: Any) -> None:
        raise NetlinkError(errno.EPERM)

    stack = UndoStack(fail, None, "s")
    stack.push(RouteRecord("10.1.0.1", 32, 254, 7))
    stack.push(RouteRecord("10.2.0.1", 32, 254, 2))
    errors = stack.undo(lambda r: isinstance(r, RouteRecord) and r.oif == 7)
    assert errors == ["route 10.2.0.1/32 table 254: netlink error 1"]
    assert len(stack) == 0


# -- lab: a real namespace, the user-space plane ---------------------------------------------


class _CountingRoutes:
    """Wraps the executor's netlink facade's ``route``: every delete is counted."""

    def __init__(self, route: Callable[..., Any]) -> None:
        self.route = route
        self.deletes: list[dict[str, object]] = []

    def __call__(self, command: str, **kw: object) -> Any:
        if command == "del":
            self.deletes.append(kw)
        return self.route(command, **kw)


@pytest.mark.lab
def test_a_node_io_with_bindings_stops_cleanly_without_a_route_delete_each(
    make_netns: Callable[[str], Netns], prefix: str, tmp_path: Path
) -> None:
    ns, peer = make_netns("n"), make_netns("p")
    ns.add_veth("n0", "p0", peer)
    ns.add_address("n0", "10.77.0.1/24")
    ns.set_up("n0")
    peer.set_up("p0")
    ns.sysctl("net.ipv4.ip_forward", 0, restore=False)
    tun = f"{prefix}t"
    path = tmp_path / "ha.undo.json"
    io = NodeIO.open(
        ns.name,
        ["n0"],
        tun_name=tun,
        tunnel_source=IPv4Address("10.77.0.1"),
        forwarding=True,
        journal=Journal(path),
    )
    homes = [IPv4Address(f"10.77.0.{100 + i}") for i in range(50)]
    try:
        ex = io.executor
        for home in homes:
            ex.execute(InstallBinding(home, COA))
            ex.execute(ProxyArp("n0", home, True))
        # a route through a device the daemon does not delete: still deleted by itself
        ex.ns.add_route("10.78.0.0/16", gateway="10.77.0.254", ifname="n0")
        ex.hold_journal_lines(None)
        routes = ns.exec(["ip", "-4", "route", "show"]).stdout
        assert all(f"{h} dev {tun}" in routes for h in homes)
        assert "10.78.0.0/16 via 10.77.0.254" in routes
        assert path.exists()
        counting = _CountingRoutes(ex.ns.ipr.route)
        ex.ns.ipr.route = counting  # type: ignore[method-assign]
        neighbours = _CountingRoutes(ex.ns.ipr.neigh)
        ex.ns.ipr.neigh = neighbours  # type: ignore[method-assign]
        direct = ex.ns.ipr.direct
        batches: list[int] = []
        send_batch = direct.send_batch

        def counting_batches(requests: Sequence[Request]) -> list[Any]:
            batches.append(len(requests))
            return send_batch(requests)

        direct.send_batch = counting_batches  # type: ignore[method-assign]
    finally:
        io.close()
    # no route delete per binding: the TUN device's routes went with it
    assert [kw.get("dst") for kw in counting.deletes] == ["10.78.0.0"]
    # the proxy entries deleted together, not one request each
    assert neighbours.deletes == []
    assert batches == [len(homes)]
    links = ns.exec(["ip", "-o", "link"]).stdout
    assert tun not in links
    left = ns.exec(["ip", "-4", "route", "show", "table", "all"]).stdout
    assert not [h for h in homes if str(h) in left], left
    assert "10.78.0.0" not in left
    assert ns.exec(["ip", "neigh", "show", "proxy"]).stdout.strip() == ""
    assert ns.read_sysctl("net.ipv4.ip_forward") == "0"
    assert not path.exists()
