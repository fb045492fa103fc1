"""A home agent with more bindings than the fast path's maps hold (issue 13's scale: the
maps are sized at load, ``max_entries``): a binding that does not fit is left to the slow
path -- the user-space plane forwards it through its route into the TUN device -- instead of
failing the registration's kernel work with a traceback; the refusal is counted.

Lab (root, namespaces): the bindings map is filled to its ``max_entries`` with other
addresses, then a binding is installed: no exception, not in the map, counted in
``FastPath.full``, and datagrams from the correspondent still reach the node (tunnelled by
the user-space plane, whose counter moves). Once an entry is free, the next binding goes into
the map again.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address as A

import pytest

from mip4.core.actions import InstallBinding, RemoveBinding
from mip4.dataplane.common import Encapsulation
from mip4.io.bpf import MIN_CAPACITY
from mip4.io.bpf import libbpf as lb
from mip4.io.bpf.agent import FastPath, Role
from mip4.io.bpf.plane import BpfPlane, MapName, Tunnel, Visitor
from mip4.io.forwarder import Forwarder
from mip4.io.netns import Netns

from .test_agent import COA, HA, HOME, _echo, _node, _open_ha, _topology, _udp

MakeNetns = Callable[[str], Netns]
BASE = int(A("100.64.0.0"))


def _through_user_space(cn: Netns, mn: Netns, fwd: Forwarder) -> bool:
    """One datagram from the correspondent to the home address, carried by the user-space
    plane: nobody runs its event loop here, so its TUN device is pumped by hand (bounded:
    50 tries of 20 ms)."""
    with _udp(mn, (str(HOME), 7778), timeout=0.02) as server, _udp(cn, timeout=0.02) as client:
        client.sendto(b"slow path", (str(HOME), 7778))
        for _ in range(50):
            fwd.pump_tun()
            try:
                return server.recv(100) == b"slow path"
            except TimeoutError:
                continue
    return False


@pytest.mark.lab
def test_bindings_beyond_the_map_take_the_slow_path_and_are_counted(
    make_netns: MakeNetns,
) -> None:
    cn, ha, mn = _topology(make_netns)
    with _node(mn), _open_ha(ha) as io:
        fast = io.fast_path
        assert fast is not None and io.forwarder is not None
        bindings = fast.plane._maps[MapName.BINDINGS]
        capacity = int(lb.lib().bpf_map__max_entries(bindings.ptr))
        assert capacity > 0
        filler = Tunnel(HA, A("10.99.0.1"))
        base = BASE
        for i in range(capacity):
            fast.plane.set_binding(A(base + i), filler)
        assert len(fast.plane.bindings()) == capacity

        io.executor.execute(InstallBinding(HOME, COA))  # raises nothing
        assert HOME not in fast.plane.bindings()
        assert fast.full == {"mip4_bindings": 1}
        assert not _echo(cn, mn, 1)  # the program does not tunnel it...
        io.forwarder.pump_tun()  # (that datagram waited in the TUN device: gone now)
        before = io.forwarder.stats.get("encapsulated", 0)
        assert _through_user_space(cn, mn, io.forwarder)  # ...the user-space plane does
        assert io.forwarder.stats.get("encapsulated", 0) - before == 1

        # the node renews (nothing changed): still no room, still the slow path -- and
        # not taken for an unchanged renewal, whose kernel work would be skipped
        io.executor.execute(InstallBinding(HOME, COA))
        assert HOME not in fast.plane.bindings()
        assert fast.full == {"mip4_bindings": 2}
        assert io.executor.stats["binding_unchanged"] == 0
        # room again (another binding went): the next renewal puts it in the map
        assert fast.plane.del_binding(A(base))
        io.executor.execute(InstallBinding(HOME, COA))
        assert fast.plane.bindings()[HOME].remote == COA
        assert _echo(cn, mn)
        io.executor.execute(InstallBinding(HOME, COA))  # from now on: unchanged
        assert io.executor.stats["binding_unchanged"] == 1

        io.executor.execute(RemoveBinding(HOME, COA))
        assert fast.plane.del_binding(A(base + 1))  # one entry free
        io.executor.execute(InstallBinding(HOME, COA))
        assert fast.plane.bindings()[HOME].remote == COA
        assert fast.full == {"mip4_bindings": 2}
        assert _echo(cn, mn)


def test_a_visitor_beyond_full_maps_is_left_to_the_slow_path_and_counted() -> None:
    """A foreign agent's visitor when its delivery and reverse-tunnel maps are full: no
    exception half way (the peer made before it would never be released), both refusals
    counted, and the undo releases the peer."""
    home, coa, ha = A("10.20.0.60"), A("10.30.0.9"), A("10.10.0.1")
    with BpfPlane(capacity=MIN_CAPACITY) as plane:
        fast = FastPath(plane, None, [], Role.FOREIGN_AGENT)
        delivery = Visitor(3, b"\x02" * 6, b"\x04" * 6)
        filler = Tunnel(coa, ha)
        for i in range(MIN_CAPACITY):
            plane.set_visitor(A(BASE + i), delivery)
            plane.set_reverse(A(BASE + i), filler)
        undo = fast.visitor(home, coa, ha, delivery=delivery, reverse=Encapsulation.IPIP)
        assert fast.full == {"mip4_visitors": 1, "mip4_reverse": 1}
        assert home not in plane.visitors() and home not in plane.reverse()
        assert [(p.local, p.remote) for p in plane.peers()] == [(coa, ha)]  # decapsulated
        assert home in plane.accounted()  # counted (kept after the undo, for accounting)
        undo()
        assert plane.peers() == []
