"""Issue 13: the routes and proxy entries of several bindings in one netlink message
(:meth:`RtnlSocket.send_batch`, :meth:`Netns.send_requests`), against the kernel: every
request acknowledged, a failed one answered with its own error while the others are made,
and the kernel objects those :meth:`Netns.add_host_route` and
:meth:`Netns.add_proxy_neighbour` make one by one (``ip -d`` is the oracle)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

import pytest

from mip4.io.netns import Netns, netns_exec
from mip4.io.rtnl import NetlinkRequestError
from mip4.io.undo import ProxyNeighbourRecord, RouteRecord

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]


def _ip(ns: Netns, *args: str) -> str:
    return netns_exec(ns.name, ["ip", *args]).stdout


def _routes(ns: Netns) -> str:
    return "".join(
        line + "\n" for line in _ip(ns, "-d", "route", "show").splitlines() if "10.7." in line
    )


class CountingSocket:
    """The direct path's socket, counting its ``send`` calls."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sends = 0

    def send(self, data: bytes) -> int:
        self.sends += 1
        return self.sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def test_one_message_many_requests_and_one_failure(make_netns: MakeNetns) -> None:
    ns = make_netns("b")
    ns.add_veth("v0", "v1")
    ns.set_up("v0")
    ns.add_address("v0", "10.9.0.1/24")
    direct = ns.ipr.direct
    counting = CountingSocket(direct._sock)
    direct._sock = counting  # type: ignore[assignment]
    homes = [IPv4Address(f"10.7.0.{i}") for i in range(1, 101)]
    stack = ns.new_stack("bindings")
    pending = []
    for home in homes:
        pending.append(ns.host_route_request(home, "v0", undo=stack))
        request = ns.proxy_neighbour_request("v1", home)
        assert request is not None
        pending.append(request)
    # one route whose interface index does not exist (any more): the kernel refuses it
    bad = ns.host_route_request(IPv4Address("10.7.1.1"), "v0", undo=stack)
    bad_request = bad.request
    assert bad_request is not None
    kind, command, body, what = bad_request
    missing = body[:-4] + (999_999).to_bytes(4, "little")
    pending.insert(51, type(bad)((kind, command, missing, what), "v0", False, bad.alone, bad.done))
    answers = ns.send_requests(pending)
    assert counting.sends == -(-len(pending) // direct.BATCH_MAX)  # one per 64 requests
    assert [i for i, a in enumerate(answers) if a is not None] == [51]
    err = answers[51]
    assert isinstance(err, NetlinkRequestError) and err.code == errno.ENODEV
    routes = _routes(ns)
    proxies = _ip(ns, "neigh", "show", "proxy")
    for home in homes:
        assert f"{home} dev v0 proto static scope global" in routes
        assert f"{home} dev v1" in proxies
    assert "10.7.1.1" not in routes
    # the records of what was made, and only those
    index = ns.index("v0")
    assert [r for r in stack if isinstance(r, RouteRecord)] == [
        RouteRecord(str(home), 32, 254, index, None) for home in homes
    ]
    assert {r.dst for r in ns.stack if isinstance(r, ProxyNeighbourRecord)} == set(map(str, homes))
    # the same objects as one by one
    one_by_one = make_netns("c")
    one_by_one.add_veth("v0", "v1")
    one_by_one.set_up("v0")
    one_by_one.add_address("v0", "10.9.0.1/24")
    for home in homes:
        one_by_one.add_host_route(home, "v0")
        one_by_one.add_proxy_neighbour("v1", home)
    assert _ip(one_by_one, "-d", "route", "show", "root", "10.7.0.0/16") == routes
    assert _ip(one_by_one, "neigh", "show", "proxy") == proxies
