"""Issue 13: a binding's route and proxy neighbour entry are requested from the address's
4 bytes (:meth:`RtnlSocket.host_route`, :meth:`RtnlSocket.proxy_neighbour`,
:meth:`Netns.add_host_route`): the bytes on the netlink socket are the ones the general
path (:meth:`RtnlSocket.route`, :meth:`RtnlSocket.neigh`) sends for the same arguments,
and the records pushed are the ones :meth:`Netns.add_route` pushes."""

from __future__ import annotations

import errno
import random
import struct
from ipaddress import IPv4Address
from typing import Any, cast

import pytest

from mip4.io.netns import Netns, netns_exec
from mip4.io.nlthread import NetlinkThread
from mip4.io.rtnl import NetlinkRequestError, RtnlSocket
from mip4.io.undo import RouteRecord, UndoStack

_HDR = struct.Struct("=IHHII")


class FakeSocket:
    """Records what is sent; answers each request with the kernel's acknowledgement
    (``error``: its errno, 0 for success), in pieces of ``chunk`` bytes at most."""

    def __init__(self, error: int = 0) -> None:
        self.sent: list[bytes] = []
        self.error = error
        self._answers: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(bytes(data))
        _, _, _, seq, _ = _HDR.unpack_from(data)
        body = struct.pack("=i", -self.error) + data[:16]
        self._answers.append(_HDR.pack(16 + len(body), 2, 0, seq, 0) + body)
        return len(data)

    def recv(self, size: int) -> bytes:
        return self._answers.pop(0)

    def recv_into(self, buf: bytearray) -> int:
        data = self._answers.pop(0)
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass


def _pair() -> tuple[RtnlSocket, FakeSocket]:
    fake = FakeSocket()
    return RtnlSocket(cast(Any, fake)), fake


@pytest.mark.parametrize("command", ["add", "replace", "del"])
def test_host_route_sends_what_route_sends(command: str) -> None:
    rng = random.Random(13)
    general, g = _pair()
    fast, f = _pair()
    for _ in range(500):
        address = IPv4Address(rng.getrandbits(32))
        oif = rng.choice([1, 2, 7, rng.getrandbits(31)])
        general.route(command, dst=str(address), dst_len=32, oif=oif)
        fast.host_route(command, address.packed, oif)
    assert f.sent == g.sent and len(f.sent) == 500


@pytest.mark.parametrize("command", ["add", "replace", "del"])
def test_proxy_neighbour_sends_what_neigh_sends(command: str) -> None:
    rng = random.Random(14)
    general, g = _pair()
    fast, f = _pair()
    for _ in range(500):
        address = IPv4Address(rng.getrandbits(32))
        index = rng.choice([1, 3, rng.getrandbits(31)])
        general.neigh(command, dst=str(address), ifindex=index, flags=8)
        fast.proxy_neighbour(command, address.packed, index)
    assert f.sent == g.sent and len(f.sent) == 500


def test_errors_of_the_fast_requests_carry_the_errno() -> None:
    fake = FakeSocket(error=19)
    sock = RtnlSocket(cast(Any, fake))
    with pytest.raises(NetlinkRequestError) as e:
        sock.host_route("replace", b"\x0a\x01\x00\x10", 99)
    assert e.value.code == 19
    with pytest.raises(NetlinkRequestError) as e:
        sock.proxy_neighbour("replace", b"\x0a\x01\x00\x10", 99)
    assert e.value.code == 19


class _Facade:
    """A netlink facade with a direct socket (what :class:`NetlinkThread` offers)."""

    def __init__(self) -> None:
        self.fake = FakeSocket()
        self.direct = RtnlSocket(cast(Any, self.fake))
        self.general: list[tuple[str, str, dict[str, object]]] = []

    def link_lookup(self, *, ifname: str) -> list[int]:
        return [{"tun0": 7, "home0": 3}[ifname]]

    def route(self, command: str, **kw: object) -> list[object]:
        self.general.append(("route", command, kw))
        self.direct.route(command, **kw)
        return []

    def neigh(self, command: str, **kw: object) -> list[object]:
        self.general.append(("neigh", command, kw))
        self.direct.neigh(command, **kw)
        return []

    def close(self) -> None:
        pass


def _netns() -> tuple[Netns, _Facade]:
    ns = Netns(None)
    facade = _Facade()
    ns._ipr = cast(NetlinkThread, facade)
    return ns, facade


def test_add_host_route_is_add_route() -> None:
    """The same bytes to the kernel and the same record on the stack as ``add_route``;
    nothing goes through the keyword-argument path."""
    ours, fast = _netns()
    theirs, general = _netns()
    rng = random.Random(15)
    for _ in range(200):
        address = IPv4Address(rng.getrandbits(32))
        s1 = UndoStack(lambda r: True, None, "a")
        s2 = UndoStack(lambda r: True, None, "b")
        ours.add_host_route(address, "tun0", undo=s1)
        theirs.add_route(f"{address}/32", ifname="tun0", replace=True, undo=s2)
        assert s1.records == s2.records == [RouteRecord(str(address), 32, 254, 7, None)]
    assert fast.fake.sent == general.fake.sent
    assert fast.general == [] and len(general.general) == 200


def test_add_proxy_neighbour_from_an_address_is_the_general_request() -> None:
    ours, fast = _netns()
    theirs, general = _netns()
    for i in range(50):
        address = IPv4Address(0x0A010010 + i)
        ours.add_proxy_neighbour("home0", address)
        theirs.add_proxy_neighbour("home0", str(address))  # a string: the general path
        ours.add_proxy_neighbour("home0", address)  # already there: no request
    assert fast.fake.sent == general.fake.sent and len(fast.fake.sent) == 50
    assert fast.general == [] and len(general.general) == 50
    assert ours.created == theirs.created
    assert ours.proxy_neighbours == theirs.proxy_neighbours


@pytest.mark.lab
def test_in_the_kernel_the_host_route_is_the_same(make_netns: Any) -> None:
    ns: Netns = make_netns("a")
    ns.add_veth("v0", "v1")
    ns.set_up("v0")
    address = IPv4Address("10.1.0.16")
    stack = ns.new_stack("binding")
    ns.add_route(f"{address}/32", ifname="v0", replace=True, undo=stack)
    theirs = netns_exec(ns.name, ["ip", "-d", "route", "show", "table", "254"]).stdout
    assert stack.undo() == []
    assert str(address) not in netns_exec(ns.name, ["ip", "route"]).stdout
    ns.add_host_route(address, "v0", undo=stack)
    ours = netns_exec(ns.name, ["ip", "-d", "route", "show", "table", "254"]).stdout
    assert ours == theirs and str(address) in ours
    ns.add_proxy_neighbour("v0", address)
    shown = netns_exec(ns.name, ["ip", "neigh", "show", "proxy"]).stdout
    assert f"{address} dev v0" in shown
    assert stack.undo() == [] and ns.undo() == []
    assert str(address) not in netns_exec(ns.name, ["ip", "route"]).stdout
    assert str(address) not in netns_exec(ns.name, ["ip", "neigh", "show", "proxy"]).stdout


@pytest.mark.lab
def test_route_get_answers_what_pyroute2_answers(make_netns: Any) -> None:
    """Issue 13: the direct ``RTM_GETROUTE`` (a home agent asks it once per new care-of
    address, for the neighbour its fast path needs) gives the type, output interface and
    gateway pyroute2's ``route("get")`` gives: on a link, via a gateway, local, and none."""
    ns: Netns = make_netns("g")
    ns.add_veth("v0", "v1")
    ns.set_up("v0")
    netns_exec(ns.name, ["ip", "addr", "add", "10.7.0.1/24", "dev", "v0"])
    netns_exec(ns.name, ["ip", "route", "add", "10.9.0.0/16", "via", "10.7.0.254"])
    direct = ns.ipr.direct
    for dst in ("10.7.0.20", "10.9.3.4", "10.7.0.1"):
        (theirs,) = ns.ipr.route("get", dst=dst)
        gateway = theirs.get("RTA_GATEWAY")
        assert direct.route_get(IPv4Address(dst).packed) == (
            theirs["type"],
            theirs.get("RTA_OIF"),
            None if gateway is None else IPv4Address(gateway).packed,
        ), dst
    via = direct.route_get(IPv4Address("10.9.3.4").packed)
    assert via is not None and via[2] == IPv4Address("10.7.0.254").packed
    with pytest.raises(NetlinkRequestError) as e:
        direct.route_get(IPv4Address("192.0.2.9").packed)  # no default route here
    assert e.value.code == errno.ENETUNREACH
