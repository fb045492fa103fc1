"""Issue 13: bindings behind one care-of address share one tunnel-table entry (equal to
the one the executor built per binding before), and a different care-of address,
encapsulation, GRE key, tunnel source or set of own addresses gets its own."""

from __future__ import annotations

from ipaddress import IPv4Address

from mip4.core.actions import Encapsulation, InstallBinding
from mip4.dataplane.common import Tunnel
from mip4.dataplane.table import TunnelEntry

from .test_executor import HA, _executor, _hoa

COA = IPv4Address("10.9.0.2")
COA2 = IPv4Address("10.9.0.3")


def _entry(ex: object, i: int) -> TunnelEntry:
    forwarder = ex.forwarder  # type: ignore[attr-defined]
    (entry,) = forwarder.table.bindings[int(_hoa(i))]
    assert isinstance(entry, TunnelEntry)
    return entry


def _built(a: InstallBinding, own: frozenset[IPv4Address] = frozenset()) -> TunnelEntry:
    """What the executor made per binding before."""
    tunnel = Tunnel(HA, a.care_of_address, own_addresses=own, gre_key=a.gre_key)
    return TunnelEntry(tunnel, a.encapsulation)


def test_shared_behind_one_care_of_address_and_equal_to_a_fresh_one() -> None:
    ex, _ = _executor()
    actions = [
        InstallBinding(_hoa(0), COA, expires=1.0),
        InstallBinding(_hoa(1), COA, expires=1.0),
        InstallBinding(_hoa(2), COA2, expires=1.0),
        InstallBinding(_hoa(3), COA, Encapsulation.GRE, expires=1.0),
        InstallBinding(_hoa(4), COA, Encapsulation.GRE, gre_key=7, expires=1.0),
        InstallBinding(_hoa(5), COA, Encapsulation.GRE, gre_key=7, expires=1.0),
    ]
    for a in actions:
        ex.execute(a)
    entries = [_entry(ex, i) for i in range(6)]
    for a, e in zip(actions, entries, strict=True):
        assert e == _built(a)
        assert e.tunnel.dst_int == int(a.care_of_address) and e.dst == str(a.care_of_address)
    assert entries[0] is entries[1] and entries[4] is entries[5]
    assert len({id(e) for e in entries}) == 4


def test_new_own_addresses_or_source_make_new_entries() -> None:
    ex, _ = _executor()
    ex.execute(InstallBinding(_hoa(0), COA, expires=1.0))
    first = _entry(ex, 0)
    own = frozenset({HA, IPv4Address("10.0.0.2")})
    ex.own_addresses = own
    a = InstallBinding(_hoa(1), COA, expires=1.0)
    ex.execute(a)
    assert _entry(ex, 1) == _built(a, own) and _entry(ex, 1) is not first
    assert _entry(ex, 1).tunnel.own_ints == frozenset(map(int, own))


def test_the_table_of_entries_is_bounded() -> None:
    ex, _ = _executor()
    ex.TUNNEL_ENTRIES_MAX = 8
    for i in range(50):
        ex.execute(InstallBinding(_hoa(i), IPv4Address(0x0A090000 + i), expires=1.0))
        assert len(ex._tunnel_entries) <= 8
    for i in range(50):
        assert _entry(ex, i) == _built(InstallBinding(_hoa(i), IPv4Address(0x0A090000 + i)))
