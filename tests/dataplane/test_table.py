"""The forwarder's table, now pure (mip4.dataplane.table): bindings, reverse tunnels,
visitors, the peers it accepts tunnelled datagrams from (RFC 2003 §6.2) and broadcasts."""

from __future__ import annotations

from ipaddress import IPv4Address as A

from mip4.core import actions
from mip4.dataplane import Encapsulation, LinkDelivery, Tunnel, TunnelEntry, TunnelTable, codecs

HA, COA1, COA2, FA = A("10.1.0.2"), A("10.2.0.2"), A("10.3.0.2"), A("10.2.0.1")
HOME = A("10.1.0.100")


def test_simultaneous_bindings_and_peer_counts() -> None:
    t = TunnelTable()
    t.add_binding(HOME, TunnelEntry(Tunnel(HA, COA1)))
    t.add_binding(HOME, TunnelEntry(Tunnel(HA, COA2), Encapsulation.GRE))
    assert [e.dst for e in t.bindings[int(HOME)]] == ["10.2.0.2", "10.3.0.2"]
    # replacing a binding keeps one entry and one peer count for its care-of address
    t.add_binding(HOME, TunnelEntry(Tunnel(HA, COA1), Encapsulation.MINIMAL))
    assert len(t.bindings[int(HOME)]) == 2 and t.peers[int(COA1)] == 1
    assert t.remove_binding(HOME, COA2) == 1
    assert int(COA2) not in t.peers
    assert t.remove_binding(HOME) == 0
    assert t.bindings == {} and not t.peers


def test_reverse_tunnels_visitors_and_peers() -> None:
    t = TunnelTable()
    t.set_reverse(HOME, TunnelEntry(Tunnel(FA, HA)))
    t.set_reverse(HOME, TunnelEntry(Tunnel(FA, HA)))  # replaced, counted once
    assert t.peers[int(HA)] == 1
    t.set_reverse(HOME, None)
    assert not t.reverse and not t.peers
    t.set_visitor(HOME, LinkDelivery("fa1-b", b"\x02\0\0\0\0\x01"))
    assert t.visitors[int(HOME)].interface == "fa1-b"
    t.set_visitor(HOME, None)
    assert not t.visitors
    t.add_peer(HA)
    t.add_peer(HA)
    t.remove_peer(HA)
    assert t.peers[int(HA)] == 1


def test_broadcast_subscriptions() -> None:
    t = TunnelTable()
    t.set_broadcast(HOME, COA1, True)
    t.set_broadcast(HOME, COA2, False)
    assert t.broadcast == {int(HOME): {int(COA1): True, int(COA2): False}}
    t.set_broadcast(HOME, COA1, None)
    assert t.broadcast == {int(HOME): {int(COA2): False}}
    t.set_broadcast(HOME, None, None)
    assert t.broadcast == {}


def test_codecs_by_outer_protocol_and_the_enum_home() -> None:
    assert set(codecs()) == {4, 47, 55} == {int(e) for e in Encapsulation}
    assert actions.Encapsulation is Encapsulation  # engines still find it beside the actions


def test_peer_counts_are_the_references_after_any_sequence() -> None:
    """Issue 13: a removal drops only its own peer's count (no rebuild of the whole
    counter); after any sequence of bindings, reverse tunnels and explicit peers the counts
    are exactly the references held, and no peer is left at zero or below."""
    import random
    from collections import Counter

    rng = random.Random(4)
    homes = [A(f"10.1.0.{i}") for i in range(100, 106)]
    coas = [A(f"10.2.0.{i}") for i in range(2, 8)]
    for _ in range(50):
        t = TunnelTable()
        manual: Counter[int] = Counter()
        for _ in range(200):
            op = rng.randrange(5)
            home, coa = rng.choice(homes), rng.choice(coas)
            if op == 0:
                t.add_binding(home, TunnelEntry(Tunnel(HA, coa)))
            elif op == 1:
                t.remove_binding(home, rng.choice([coa, None]))
            elif op == 2:
                t.set_reverse(home, rng.choice([TunnelEntry(Tunnel(HA, coa)), None]))
            elif op == 3:
                t.add_peer(coa)
                manual[int(coa)] += 1
            elif manual[int(coa)] > 0:
                t.remove_peer(coa)
                manual[int(coa)] -= 1
            held = Counter(int(e.tunnel.dst) for es in t.bindings.values() for e in es)
            held.update(int(e.tunnel.dst) for e in t.reverse.values())
            held.update(manual)
            assert t.peers == +held and all(n > 0 for n in t.peers.values())
