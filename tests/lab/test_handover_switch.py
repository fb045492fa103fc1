"""Issue 14, the handover floor: the lab's link switch on rtnetlink notifications
(:mod:`mip4.lab.switch`). The re-plug must stay a re-plug -- the node's namespace is told
the carrier went down, then that it is up again, on the new network -- while taking a
fraction of what ``Lab.move`` takes (the figures: ``benchmarks/handover.py --switch``)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from mip4.io.netns import Netns, entered
from mip4.lab.build import Lab, LabError
from mip4.lab.switch import (
    IF_OPER_UP,
    IFF_LOWER_UP,
    IFF_UP,
    IFLA_OPERSTATE,
    RTM_NEWLINK,
    RTMGRP_LINK,
    ifindex,
    is_up,
    parse_links,
    replug,
)

IF_OPER_LOWERLAYERDOWN = 5


def newlink(index: int, flags: int, operstate: int | None, extra: bytes = b"") -> bytes:
    attrs = extra
    if operstate is not None:
        attrs += struct.pack("=HHB3x", 5, IFLA_OPERSTATE, operstate)
    body = struct.pack("=BxHiII", 0, 1, index, flags, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, 0, 0, 0) + body


def test_parse_links_reads_index_carrier_and_operstate() -> None:
    name = b"eth0\0"
    ifname = struct.pack("=HH", 4 + len(name), 3) + name + b"\0" * (-len(name) % 4)
    data = (
        newlink(7, IFF_UP | IFF_LOWER_UP, IF_OPER_UP, ifname)
        + newlink(8, IFF_UP, IF_OPER_LOWERLAYERDOWN)
        + newlink(9, IFF_UP | IFF_LOWER_UP, None)
    )
    assert parse_links(data) == [(7, True, IF_OPER_UP), (8, False, 5), (9, True, None)]
    # a truncated message ends the walk without an error
    assert parse_links(data[:-3]) == [(7, True, IF_OPER_UP), (8, False, 5)]
    assert parse_links(b"") == []


@pytest.fixture
def lab(prefix: str) -> Iterator[Lab]:
    with Lab(prefix[2:]) as lab:
        yield lab


class Watch:
    """The node's link notifications, as ``(carrier, operstate)`` for one interface."""

    def __init__(self, netns: str, index: int) -> None:
        with entered(netns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        self.sock.bind((0, RTMGRP_LINK))
        self.sock.setblocking(False)
        self.index = index

    def drain(self) -> list[tuple[bool, int | None]]:
        out: list[tuple[bool, int | None]] = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return out
            out += [(c, s) for i, c, s in parse_links(data) if i == self.index]


@pytest.mark.lab
def test_replug_is_a_replug_the_node_sees(lab: Lab) -> None:
    mn, sw = lab.topology.mobile, lab.ns(lab.topology.switch)
    node_if = ifindex(lab.ns(mn), lab.ifname(mn))
    watch = Watch(lab.ns(mn), node_if)
    try:
        for net in ("a", "b", "home", "a"):
            replug(lab, net)
            seen = watch.drain()
            # the node was told the carrier went (before the port came back) and that
            # the link is up again, in that order
            downs = [k for k, (c, s) in enumerate(seen) if s != IF_OPER_UP or not c]
            ups = [k for k, (c, s) in enumerate(seen) if c and s == IF_OPER_UP]
            assert downs and ups and downs[0] < ups[-1], (net, seen)
            assert seen[-1] == (True, IF_OPER_UP), (net, seen)
            assert is_up(lab.ns(mn), node_if)
            # the port is on the new bridge only, and up
            port = lab.port(mn, net)
            assert is_up(sw, ifindex(sw, port))
            for other in ("home", "a", "b", "c"):
                members = lab.exec("sw", ["ip", "-o", "link", "show", "master", lab.bridge(other)])
                assert (port in members.stdout) == (other == net), (other, members.stdout)
            assert lab.mobile_net == net
    finally:
        watch.sock.close()
    # frames flow on the new link: the node resolves FA1's hardware address there (FA1's
    # echo reply goes towards the home network, so the link layer is what is checked)
    mn_if, fa1 = lab.ifname(mn), lab.address("fa1")
    lab.exec(mn, ["ip", "route", "add", str(fa1), "dev", mn_if], check=True)
    lab.ping(mn, fa1, timeout=0.5)
    with Netns(lab.ns("fa1")) as fa1_ns, Netns(lab.ns(mn)) as mn_ns:
        assert mn_ns.neighbour(mn_if, fa1) == fa1_ns.link_address(lab.ifname("fa1"))


@pytest.mark.lab
def test_replug_on_network_c_gives_and_takes_the_colocated_address(lab: Lab) -> None:
    mn = lab.topology.mobile
    colocated = lab.topology.network("c").colocated
    assert colocated is not None
    replug(lab, "c", dhcp=True)
    addrs = lab.exec(mn, ["ip", "-o", "-4", "addr", "show", "dev", lab.ifname(mn)]).stdout
    assert str(colocated) in addrs
    assert lab.wait_reachable(mn, lab.address("cn"))
    replug(lab, "a", dhcp=True)
    addrs = lab.exec(mn, ["ip", "-o", "-4", "addr", "show", "dev", lab.ifname(mn)]).stdout
    assert str(colocated) not in addrs


def test_replug_refuses_a_network_the_node_cannot_visit(prefix: str) -> None:
    lab = Lab(prefix[2:])  # nothing built: the check comes first
    with pytest.raises(LabError, match="cannot move to network 'cn'"):
        replug(lab, "cn")
