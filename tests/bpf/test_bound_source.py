"""The home agent's decapsulation of reverse tunnels (RFC 3024 §4.3), through
BPF_PROG_TEST_RUN: a tunnel packet from a registered care-of address (a peer with
``bound_source``, as the home agent's fast path registers them) is decapsulated only when
its inner source is a home address whose binding is that very tunnel (care-of address =
outer source, home agent = outer destination). Anything else -- a source with no binding,
bound to another care-of address or through another agent address, or a home address with
simultaneous bindings (not in the map) -- goes on untouched (``TC_ACT_OK``, the frame as it
came) to the slow path, counted as ``decap_not_bound``."""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from mip4.dataplane import Tunnel as PyTunnel
from mip4.dataplane import encapsulate_gre, encapsulate_ipip, encapsulate_minimal
from mip4.dataplane.common import Encapsulation
from mip4.dataplane.table import TunnelEntry
from mip4.io.bpf.agent import FastPath, Role
from mip4.io.bpf.plane import (
    TC_ACT_OK,
    BpfPlane,
    Direction,
    Encap,
    Event,
    Peer,
    Program,
    Traffic,
    Tunnel,
)
from mip4.io.netns import read_sysctl

from .frames import CN, COA, HA, HOME, frame, in_private_netns, inner, ip_of

LO = 1
OTHER_COA = A("198.51.100.21")
OTHER_HOME = A("10.0.0.6")
ENCAPS = {
    "ipip": lambda p: encapsulate_ipip(p, PyTunnel(COA, HA), forwarding=False),
    "gre": lambda p: encapsulate_gre(p, PyTunnel(COA, HA), forwarding=False),
    "gre-key": lambda p: encapsulate_gre(p, PyTunnel(COA, HA, gre_key=5), forwarding=False),
    "minimal": lambda p: encapsulate_minimal(p, PyTunnel(COA, HA), forwarding=False),
}


def _reverse(case: str, src: A = HOME) -> bytes:
    """What the care-of address reverse-tunnels to the home agent for ``src``."""
    return bytes(ENCAPS[case](inner(src=src, dst=CN)))


def _ha(plane: BpfPlane, case: str) -> None:
    key = 5 if case == "gre-key" else None
    encap = Encap.GRE if key is not None else Encap.IPIP
    plane.set_binding(HOME, Tunnel(HA, COA, encap, key=key, oif=LO, mtu=1500))
    plane.set_peer(Peer(HA, COA, key=key, bound_source=True))


@pytest.mark.parametrize("program", [Program.AGENT, Program.DECAP])
@pytest.mark.parametrize("case", sorted(ENCAPS))
def test_a_bound_home_address_is_decapsulated(plane: BpfPlane, program: Program, case: str) -> None:
    _ha(plane, case)
    r = plane.test_run(program, frame(_reverse(case)))
    assert r.retval == TC_ACT_OK
    assert ip_of(r.data) == inner(src=HOME, dst=CN)
    ev = plane.events()
    assert ev[Event.DECAP] == 1 and ev[Event.DECAP_NOT_BOUND] == 0
    assert plane.counters()[COA, Direction.DECAP] == Traffic(1, len(inner(src=HOME, dst=CN)))


def _untouched(plane: BpfPlane, packet: bytes, program: Program = Program.AGENT) -> None:
    f = frame(packet)
    r = plane.test_run(program, f)
    assert (r.retval, r.data) == (TC_ACT_OK, f)
    ev = plane.events()
    assert ev[Event.DECAP_NOT_BOUND] == 1
    assert ev[Event.DECAP] == ev[Event.ENCAP] == 0
    assert (COA, Direction.DECAP) not in plane.counters()


@pytest.mark.parametrize("program", [Program.AGENT, Program.DECAP])
@pytest.mark.parametrize("case", sorted(ENCAPS))
def test_a_source_without_binding_is_left_untouched(
    plane: BpfPlane, program: Program, case: str
) -> None:
    _ha(plane, case)
    _untouched(plane, _reverse(case, src=CN), program)


@pytest.mark.parametrize("case", sorted(ENCAPS))
def test_a_home_address_bound_to_another_care_of_address_is_left_untouched(
    plane: BpfPlane, case: str
) -> None:
    _ha(plane, case)
    plane.set_binding(OTHER_HOME, Tunnel(HA, OTHER_COA, oif=LO, mtu=1500))
    _untouched(plane, _reverse(case, src=OTHER_HOME))


def test_a_binding_through_another_agent_address_is_left_untouched(plane: BpfPlane) -> None:
    """The binding's tunnel starts at another address of the home agent's: the tunnel
    the packet came through is not that binding's."""
    plane.set_binding(HOME, Tunnel(A("10.0.0.2"), COA, oif=LO, mtu=1500))
    plane.set_peer(Peer(HA, COA, bound_source=True, forward=True))
    _untouched(plane, _reverse("ipip"))


def test_without_the_flag_any_source_is_decapsulated(plane: BpfPlane) -> None:
    """A foreign agent's or a co-located node's peer (a home agent tunnelling to it):
    the inner source is any correspondent."""
    plane.set_peer(Peer(HA, COA))
    r = plane.test_run(Program.AGENT, frame(_reverse("ipip", src=CN)))
    assert (r.retval, ip_of(r.data)) == (TC_ACT_OK, inner(src=CN, dst=CN))
    assert plane.events()[Event.DECAP] == 1


def test_the_home_agents_fast_path_registers_care_of_addresses_with_the_check(
    plane: BpfPlane,
) -> None:
    """FastPath.sync: the binding in the map and its care-of address as a peer whose
    inner sources are checked; with simultaneous bindings the home address is not in the
    map, so its reverse-tunnelled datagrams go to the slow path. (In a private namespace:
    the fast path makes neighbour entries where it runs.)"""

    def body() -> None:
        fast = FastPath(plane, None, [], Role.HOME_AGENT)
        try:
            entry = TunnelEntry(PyTunnel(HA, COA), Encapsulation.IPIP)
            fast.sync(HOME, [entry])
            assert plane.peers() == [Peer(HA, COA, bound_source=True, forward=True)]
            r = plane.test_run(Program.AGENT, frame(_reverse("ipip")))
            assert (r.retval, ip_of(r.data)) == (TC_ACT_OK, inner(src=HOME, dst=CN))
            fast.sync(HOME, [entry, TunnelEntry(PyTunnel(HA, OTHER_COA), Encapsulation.IPIP)])
            assert plane.bindings() == {}
            f = frame(_reverse("ipip"))
            r = plane.test_run(Program.AGENT, f)
            assert (r.retval, r.data) == (TC_ACT_OK, f)
            assert plane.events()[Event.DECAP_NOT_BOUND] == 1
            fast.remove(HOME)
            assert plane.peers() == []
        finally:
            fast._close_ns()

    in_private_netns(body, forwarding=True)


def test_the_home_agent_sends_no_icmp_redirect_while_attached() -> None:
    """After decapsulation a reverse-tunnelled datagram is forwarded out of the interface
    the tunnel came in on, towards a router on its source's link: the kernel would send
    the mobile node an ICMP redirect (seen in the capture of the bpf demo), which the home
    agent would tunnel to it. The home agent's fast path turns send_redirects off (the
    interface and ``all``) while attached and puts the values back on a clean stop."""

    def body() -> tuple[list[str], list[str], list[str]]:
        def values() -> list[str]:
            return [read_sysctl(f"net.ipv4.conf.{n}.send_redirects") for n in ("all", "lo")]

        before = values()
        fast = FastPath.open(None, [1], role=Role.HOME_AGENT)  # the loopback
        try:
            during = values()
        finally:
            fast.close()
        return before, during, values()

    before, during, after = in_private_netns(body, forwarding=True)
    assert before == ["1", "1"]
    assert during == ["0", "0"]
    assert after == before
