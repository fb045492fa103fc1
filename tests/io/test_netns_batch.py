"""Issue 13: the routes and proxy entries of several bindings in one netlink message
(:meth:`RtnlSocket.send_batch`, :meth:`Netns.send_requests`), against the kernel: every
request answered -- a failed one with its own error while the others are made, from one
read per failure and per chunk rather than one per request --
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
    """The direct path's socket, counting its ``send`` and ``recv_into`` calls."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sends = 0
        self.recvs = 0

    def send(self, data: bytes) -> int:
        self.sends += 1
        return self.sock.send(data)

    def recv_into(self, buf: Any) -> int:
        self.recvs += 1
        return self.sock.recv_into(buf)

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
    chunks = -(-len(pending) // direct.BATCH_MAX)
    assert counting.sends == chunks  # one per 64 requests
    # one read per chunk (its last request's acknowledgement) and one per failure
    assert counting.recvs == chunks + 1
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


def test_only_failures_and_each_chunks_last_request_are_answered(make_netns: MakeNetns) -> None:
    """Route deletes of 130 addresses, 118 of them routed: each of the 12 without a route
    gets its own ESRCH -- in the middle of a chunk, at a chunk's end, at the very end --
    and the others ``None``, from one ``send`` per chunk and one read per failure, plus
    one for a chunk whose last request succeeded (the kernel answers a failed message
    whatever its flags; only the last asks to be answered when it succeeds:
    ``RtnlSocket.send_batch``)."""
    ns = make_netns("d")
    ns.add_veth("v0", "v1")
    ns.set_up("v0")
    ns.add_address("v0", "10.9.0.1/24")
    direct = ns.ipr.direct
    oif = ns.index("v0")
    # chunks end at 64 (no route), 128 (routed) and 130 (no route)
    routed = [i for i in range(1, 131) if i % 13 and i not in (64, 129)]
    assert len(routed) == 118
    adds = [direct.host_route_request("add", bytes([10, 7, 0, i]), oif) for i in routed]
    assert direct.send_batch(adds) == [None] * 118
    counting = CountingSocket(direct._sock)
    direct._sock = counting  # type: ignore[assignment]
    deletes = [direct.host_route_request("del", bytes([10, 7, 0, i]), oif) for i in range(1, 131)]
    answers = direct.send_batch(deletes)
    failed = [i for i, a in zip(range(1, 131), answers, strict=True) if a is not None]
    assert failed == [i for i in range(1, 131) if i not in routed]
    assert all(isinstance(a, NetlinkRequestError) and a.code == errno.ESRCH for a in answers if a)
    assert counting.sends == 3  # 64 + 64 + 2
    assert len(failed) == 12 and counting.recvs == 12 + 1  # (the second chunk's last)
    assert "10.7.0." not in _routes(ns)
    # the socket is left with no answer unread: the next request's is its own
    assert direct.send_batch([direct.host_route_request("add", bytes([10, 7, 0, 1]), oif)]) == [
        None
    ]
    assert "10.7.0.1 dev v0" in _routes(ns)
