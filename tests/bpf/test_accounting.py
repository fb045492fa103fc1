"""Per-visitor traffic counters for RADIUS accounting (RFC 2866 Acct-Input/Output-Octets and
-Packets), through BPF_PROG_TEST_RUN: a foreign agent's fast path counts, per visitor's home
address, the datagrams it reverse-tunnels FROM the visitor (input) and the datagrams it
decapsulates FOR the visitor (output), octets being the inner datagram's Total Length, as
the user-space plane counts them. Only visitors the daemon made an entry for are counted;
``BpfPlane.visitor_traffic`` sums the per-CPU entry as (input octets, output octets, input
packets, output packets), None for a home address never accounted."""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from mip4.dataplane import Tunnel as PyTunnel
from mip4.dataplane import encapsulate_gre, encapsulate_ipip, encapsulate_minimal
from mip4.dataplane.common import Encapsulation
from mip4.io.bpf.agent import FastPath, Role
from mip4.io.bpf.plane import (
    TC_ACT_OK,
    TC_ACT_REDIRECT,
    BpfPlane,
    Event,
    Peer,
    Program,
    Tunnel,
    Visitor,
)

from .frames import CN, COA, HA, HOME, frame, in_private_netns, inner, ip_of

LO = 1  # oif mode through the loopback: test runs never transmit
VISITOR_MAC = bytes.fromhex("02000000abcd")
OWN_MAC = bytes.fromhex("020000001234")
OTHER = A("10.0.0.6")


def _to_visitor(payload_len: int, encap: str = "ipip") -> tuple[bytes, int]:
    """A datagram from a correspondent to the visitor as its home agent tunnels it to the
    foreign agent, and the inner datagram's length."""
    pkt = inner(src=CN, dst=HOME, payload_len=payload_len)
    t = PyTunnel(HA, COA)
    enc = {"ipip": encapsulate_ipip, "gre": encapsulate_gre, "minimal": encapsulate_minimal}
    return bytes(enc[encap](pkt, t, forwarding=False)), len(pkt)


@pytest.mark.parametrize("program", [Program.AGENT, Program.REVERSE_ENCAP])
def test_input_is_what_the_visitor_reverse_tunnels(plane: BpfPlane, program: Program) -> None:
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO, mtu=1500))
    assert plane.account_visitor(HOME)
    sizes = [2, 100, 1000]
    for n in sizes:
        pkt = inner(src=HOME, dst=CN, payload_len=n)
        assert plane.test_run(program, frame(pkt)).retval == TC_ACT_REDIRECT
    octets = sum(len(inner(src=HOME, dst=CN, payload_len=n)) for n in sizes)
    assert octets == sum(20 + 8 + n for n in sizes)
    assert plane.visitor_traffic(HOME) == (octets, 0, 3, 0)


@pytest.mark.parametrize("encap", ["ipip", "gre", "minimal"])
@pytest.mark.parametrize("delivery", [True, False], ids=["to-mac", "to-stack"])
def test_output_is_what_is_decapsulated_for_the_visitor(
    plane: BpfPlane, encap: str, delivery: bool
) -> None:
    """Counted whether the program redirects it to the visitor's hardware address or hands
    it to the stack (a visitor whose request came without one)."""
    plane.set_peer(Peer(COA, HA, any_key=True))
    if delivery:
        plane.set_visitor(HOME, Visitor(LO, VISITOR_MAC, OWN_MAC))
    plane.account_visitor(HOME)
    total = 0
    for n in (10, 500):
        tunnelled, length = _to_visitor(n, encap)
        r = plane.test_run(Program.AGENT, frame(tunnelled))
        assert r.retval == (TC_ACT_REDIRECT if delivery else TC_ACT_OK)
        assert len(ip_of(r.data)) == length  # decapsulated: the inner datagram
        total += length
    assert plane.visitor_traffic(HOME) == (0, total, 0, 2)


def test_only_accounted_visitors_are_counted(plane: BpfPlane) -> None:
    """No entry is ever made by the programs: a home address the daemon did not ask for
    stays unknown (None), and another visitor's traffic is not added to this one's."""
    plane.set_peer(Peer(COA, HA, any_key=True))
    plane.set_reverse(OTHER, Tunnel(COA, HA, oif=LO, mtu=1500))
    plane.account_visitor(HOME)
    tunnelled, _ = _to_visitor(20)
    plane.test_run(Program.AGENT, frame(tunnelled))  # for HOME
    other = inner(src=OTHER, dst=CN)
    assert plane.test_run(Program.AGENT, frame(other)).retval == TC_ACT_REDIRECT
    assert plane.visitor_traffic(OTHER) is None
    assert plane.accounted() == [HOME]
    assert plane.visitor_traffic(HOME) == (0, len(inner(src=CN, dst=HOME, payload_len=20)), 0, 1)


def test_slow_path_and_co_located_encapsulation_are_not_counted_here(plane: BpfPlane) -> None:
    """What the fast path leaves untouched (too big: the user-space plane counts it) and a
    co-located node's own reverse tunnel (not a foreign agent's visitor) add nothing."""
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO, mtu=100))
    plane.account_visitor(HOME)
    big = inner(src=HOME, dst=CN, payload_len=200)
    r = plane.test_run(Program.AGENT, frame(big))
    assert (r.retval, r.data) == (TC_ACT_OK, frame(big))
    assert plane.events()[Event.SLOW_TOO_BIG] == 1
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO, mtu=1500))
    assert plane.test_run(Program.HOST_ENCAP, frame(big)).retval == TC_ACT_OK  # sent on
    assert plane.events()[Event.ENCAP] == 1
    assert plane.visitor_traffic(HOME) == (0, 0, 0, 0)


def test_counts_are_cumulative_and_forgotten_on_request(plane: BpfPlane) -> None:
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO, mtu=1500))
    plane.account_visitor(HOME)
    pkt = inner(src=HOME, dst=CN)
    for _ in range(5):
        plane.test_run(Program.AGENT, frame(pkt))
    assert plane.visitor_traffic(HOME) == (5 * len(pkt), 0, 5, 0)
    assert plane.account_visitor(HOME)  # a re-registration: the counts stay
    assert plane.visitor_traffic(HOME) == (5 * len(pkt), 0, 5, 0)
    assert plane.forget_visitor_traffic(HOME)
    assert plane.visitor_traffic(HOME) is None
    assert not plane.forget_visitor_traffic(HOME)


def test_the_foreign_agents_fast_path_accounts_its_visitors(plane: BpfPlane) -> None:
    """FastPath.visitor makes the entry; the undo (RemoveVisitor) keeps it, since the
    accounting Stop may be built after the visitor is removed; a restart (reconcile)
    drops every entry."""

    def body() -> None:
        fast = FastPath(plane, None, [], Role.FOREIGN_AGENT)
        try:
            _visitor_comes_and_goes(plane, fast)
        finally:
            fast._close_ns()

    # in a private namespace: the fast path makes neighbour entries where it runs
    in_private_netns(body, forwarding=True)


def _visitor_comes_and_goes(plane: BpfPlane, fast: FastPath) -> None:
    undo = fast.visitor(
        HOME, COA, HA, delivery=Visitor(LO, VISITOR_MAC, OWN_MAC), reverse=Encapsulation.IPIP
    )
    plane.set_reverse(HOME, Tunnel(COA, HA, oif=LO, mtu=1500))  # no route here: oif mode
    up = inner(src=HOME, dst=CN, payload_len=40)
    assert plane.test_run(Program.AGENT, frame(up)).retval == TC_ACT_REDIRECT
    tunnelled, down = _to_visitor(60)
    assert plane.test_run(Program.AGENT, frame(tunnelled)).retval == TC_ACT_REDIRECT
    assert fast.visitor_traffic(HOME) == (len(up), down, 1, 1)
    undo()
    assert plane.visitors() == {} and plane.reverse() == {}
    assert fast.visitor_traffic(HOME) == (len(up), down, 1, 1)
    assert fast.visitor_traffic(OTHER) is None
    fast.reconcile(())
    assert fast.visitor_traffic(HOME) is None
