"""The home agent's renewal fast path (issue 13, :mod:`mip4.core.ha_renewal`) held against
the general code: two engines, one answering the usual renewal from its bytes and one
sending every request through the general path, get the same randomized sequences of
inputs -- renewals direct, co-located, from the home link and relayed by foreign agents
(with and without FA-HA, RFC 2002 associations), changes of care-of address, flags and
lifetime, deregistrations, replays, stale and skewed identifications, bad authenticators,
unknown SPIs, extra extensions, odd addressing, clock steps, binding expiries, rekeyed
and removed SAs, the operator's redirections and revocations, configuration changes --
and must return the same actions field by field (the replies byte for byte), and keep the
same counters, binding table, replay state, deadlines and home-link addresses."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from mip4.core.actions import INFO, Action, Log, SendUdp
from mip4.core.bindings import BindingStore, InMemoryBindingStore, MobilityBinding
from mip4.core.events import UdpReceived
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.auth import sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import Algorithm, ReplayMethod, SecurityAssociation, SecurityAssociations
from mip4.security.sa_rows import TableRows
from mip4.store.sqlite import SqliteStore
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RawExtension,
)
from mip4.wire.messages import RegistrationRequest
from mip4.wire.msg_base import REG_FLAGS

from .test_home_agent import HA, NET, UNIX0, _Nonces

A = IPv4Address
NAI = "dave@example.net"

#: mobile nodes: home address -> its MN-HA associations (several: it may change SPI)
NODES: dict[IPv4Address, tuple[SecurityAssociation, ...]] = {
    A("10.0.0.10"): (SecurityAssociation(0x1000, b"a" * 16),),
    A("10.0.0.11"): (SecurityAssociation(0x1001, b"b" * 16, spi_covered=False),),  # RFC 2002
    A("10.0.0.12"): (
        SecurityAssociation(0x1002, b"c" * 16, algorithm=Algorithm.KEYED_MD5, replay_tolerance=3),
    ),
    A("10.0.0.13"): (SecurityAssociation(0x1003, b"d" * 16, replay=ReplayMethod.NONCES),),
    A("10.0.0.14"): (SecurityAssociation(0x1004, b"e" * 16), SecurityAssociation(0x1005, b"E")),
    A("10.0.0.15"): (SecurityAssociation(0x1006, b"f" * 16),),
    A("10.0.0.99"): (SecurityAssociation(0x1007, b"g" * 16),),  # no SA at the home agent
    A("10.9.9.9"): (SecurityAssociation(0x1008, b"h" * 16),),  # not served: 129
}
UNKNOWN = A("10.0.0.99")
#: foreign agents: address -> the FA-HA association (``None``: the home agent has none)
FAS: dict[IPv4Address, SecurityAssociation | None] = {
    A("192.168.1.1"): SecurityAssociation(0x2000, b"F" * 16),
    A("192.168.2.1"): SecurityAssociation(0x2001, b"G" * 16, spi_covered=False),
    A("192.168.3.1"): None,
}
OTHER_FA_SA = SecurityAssociation(0x2999, b"X" * 16)  # an FA-HA SA the home agent lacks
COLOCATED = [A("172.16.0.5"), A("172.16.0.6"), A("198.51.100.7")]
#: the last co-located address is also a foreign agent's (the home agent shares an SA
#: with it): only a request it relays, without D, must carry FA-HA
COLOCATED_FA_SA = SecurityAssociation(0x2002, b"H" * 16)
MAC = b"\x02\x00\x00\x00\x00\x0a"


def _store(rows: bool = False) -> SecurityAssociations:
    """The home agent's associations; ``rows``: every one with an address for its peer
    as a subscriber table's row (issue 13: the fast path reads a row's fields, not an
    association), the NAI's as an object."""
    store = SecurityAssociations()
    add = store.add_row if rows else store.add
    for hoa, sas in NODES.items():
        if hoa != UNKNOWN:
            for sa in sas:
                add(hoa, sa)
    store.add(NAI, NODES[A("10.0.0.15")][0])
    for fa, fa_sa in FAS.items():
        if fa_sa is not None:
            add(fa, fa_sa)
    add(COLOCATED[2], COLOCATED_FA_SA)
    return store


class _Delegating:
    """A binding store that is not the in-memory one (the fast path then reads it through
    the :class:`~mip4.core.bindings.BindingStore` protocol only)."""

    def __init__(self) -> None:
        self._inner = InMemoryBindingStore()

    def bindings_of(self, home_address: IPv4Address) -> tuple[MobilityBinding, ...]:
        return self._inner.bindings_of(home_address)

    def put(self, binding: MobilityBinding) -> MobilityBinding | None:
        return self._inner.put(binding)

    def remove(
        self, home_address: IPv4Address, care_of_address: IPv4Address | None = None
    ) -> tuple[MobilityBinding, ...]:
        return self._inner.remove(home_address, care_of_address)

    def next_expiry(self) -> float | None:
        return self._inner.next_expiry()

    def pop_expired(self, now: float, limit: int | None = None) -> list[MobilityBinding]:
        return self._inner.pop_expired(now, limit)

    def mobile_nodes(self) -> int:
        return self._inner.mobile_nodes()

    def __iter__(self) -> Iterator[MobilityBinding]:
        return iter(self._inner)

    def __len__(self) -> int:
        return len(self._inner)


def _engines(
    store: Callable[[bool], BindingStore | None] = lambda fast: None,
    rows: bool = False,
    **settings: Any,
) -> tuple[HomeAgent, HomeAgent]:
    def one(fast: bool) -> HomeAgent:
        cfg = dict(settings)
        config = HomeAgentConfig(
            address=HA, home_network=cfg.pop("home_network", NET), interface="home0", **cfg
        )
        sas = _store(rows)
        ha = HomeAgent(config, sas, UNIX0, bindings=store(fast), rng=_Nonces(0x7000_0000))
        ha.renewal_fast_path = fast
        ha.restore(0.0)
        return ha

    return one(True), one(False)


@dataclasses.dataclass
class _Node:
    """What a mobile node sends: its current registration's shape and its clock."""

    hoa: IPv4Address
    coa: IPv4Address
    via: str  # "fa:<address>", "colocated", "colocated-no-D", "home"
    flags: int = 0
    lifetime: int = 600
    spi: int = 0  # index into its associations
    skew: float = 0.0  # its clock against the home agent's, seconds
    nonce: int = 0  # nonces: the home agent's last nonce it heard
    sent: list[bytes] = dataclasses.field(default_factory=list)


def _table(ha: HomeAgent) -> list[tuple[object, ...]]:
    # (every field that is the binding's: not ``holds_replay``, where the in-memory table
    # keeps the replay state, compared as ``replay_state`` by ``_same``)
    names = [f.name for f in dataclasses.fields(MobilityBinding) if f.compare]
    rows = [tuple(getattr(b, n) for n in names) for b in ha]
    return sorted(rows, key=lambda r: (str(r[0]), str(r[1])))


def _node_of(action: Action) -> int:
    """The home address an action is about, as an integer (0: none)."""
    if isinstance(action, Log):
        address = action.fields.get("home_address")
    else:
        address = getattr(action, "home_address", None) or getattr(action, "address", None)
    return int(address) if isinstance(address, IPv4Address) else 0


def _same(fast: HomeAgent, general: HomeAgent, got: list[Action], want: list[Action]) -> None:
    assert got == want
    assert [type(a) for a in got] == [type(a) for a in want]
    assert [vars(a) for a in got] == [vars(a) for a in want]
    for a, b in zip(got, want, strict=True):
        if isinstance(a, Log):
            assert isinstance(b, Log)
            assert list(a.fields.items()) == list(b.fields.items())  # the same order too
    assert fast.counters == general.counters
    assert _table(fast) == _table(general)
    assert fast.replay_state == general.replay_state
    assert fast.next_deadline() == general.next_deadline()
    assert fast._home_link_addresses == general._home_link_addresses
    assert fast.assignments == general.assignments


class _Run:
    """One randomized sequence over a pair of engines."""

    def __init__(self, seed: int, fast: HomeAgent, general: HomeAgent) -> None:
        self.rng = random.Random(seed)
        self.fast, self.general = fast, general
        self.now = 0.0
        self.nodes = [self._fresh(hoa) for hoa in NODES]
        self.steps = 0

    # -- the mobile node's side -----------------------------------------------------------

    def _fresh(self, hoa: IPv4Address) -> _Node:
        node = _Node(hoa, COLOCATED[0], "colocated", flags=0x20)
        self._reshape(node)
        return node

    def _reshape(self, node: _Node) -> None:
        r = self.rng
        kind = r.choice(["fa", "fa", "fa", "colocated", "colocated", "colocated-no-D", "home"])
        if r.random() < 0.3:  # the same care-of address, other flags or lifetime
            kind = "keep"
            node.flags &= 0x20  # D
        elif kind == "fa":
            fa = r.choice(list(FAS))
            node.via, node.coa = f"fa:{fa}", fa
            node.flags = 0
        elif kind != "keep":
            node.via, node.coa = kind, r.choice(COLOCATED)
            node.flags = 0x20 if kind == "colocated" else 0
        if r.random() < 0.4:  # B, M, G, T, and the ignored r and x bits
            node.flags |= r.choice([0x40, 0x10, 0x08, 0x02, 0x04, 0x01, 0x0A, 0x12, 0x18, 0x50])
        if r.random() < 0.1:
            node.flags |= 0x80  # S
        node.lifetime = r.choice([600, 600, 600, 30, 300, 1800, 3600, 0xFFFF])
        node.spi = r.randrange(len(NODES[node.hoa]))
        node.skew = r.choice([0.0, 0.0, 0.0, 2.5, -4.0, 9.0])

    def _ident(self, node: _Node) -> int:
        sa = NODES[node.hoa][node.spi]
        low = self.rng.getrandbits(32)
        if sa.replay is ReplayMethod.NONCES and self.rng.random() < 0.8:
            return (node.nonce << 32) | low  # (else a timestamp: the home agent refuses)
        return ntp_timestamp(self.fast.clock_offset + self.now + node.skew, low=low)

    def _request(
        self,
        node: _Node,
        *,
        lifetime: int | None = None,
        coa: IPv4Address | None = None,
        ha: IPv4Address = HA,
        ident: int | None = None,
        extra: tuple[Any, ...] = (),
        fa_sa: SecurityAssociation | bool | None = True,
    ) -> bytes:
        req = RegistrationRequest(
            REG_FLAGS[node.flags],
            node.lifetime if lifetime is None else lifetime,
            node.hoa,
            ha,
            node.coa if coa is None else coa,
            self._ident(node) if ident is None else ident,
            extra,
        )
        req = sign(req, MobileHomeAuthExtension, NODES[node.hoa][node.spi])
        if node.via.startswith("fa:"):
            sa = FAS[A(node.via[3:])] if fa_sa is True else fa_sa
            if sa is not None and sa is not False:
                assert isinstance(sa, SecurityAssociation)
                req = sign(req, ForeignHomeAuthExtension, sa)
        node.sent.append(req.raw)
        return req.raw

    def _event(self, node: _Node, payload: bytes, *, dst: IPv4Address = HA) -> UdpReceived:
        r = self.rng
        if node.via.startswith("fa:"):
            src, interface, link = A(node.via[3:]), "wan0", None
        elif node.via == "home":
            src, interface, link = node.hoa, "home0", r.choice([MAC, None])
        else:
            src, interface, link = node.coa, "wan0", None
        sport = r.choice([434, 434, 4321])
        dport = r.choice([434, 434, 434, 0])
        return UdpReceived(payload, src, dst, sport, dport, interface, link, ttl=64)

    # -- the steps ------------------------------------------------------------------------

    def both(self, call: Callable[[HomeAgent], list[Action]]) -> list[Action]:
        got, want = call(self.fast), call(self.general)
        _same(self.fast, self.general, got, want)
        self.steps += 1
        return got

    def timer(self) -> None:
        """The timer at ``now`` as the driver runs it: called again while a deadline is
        due. A mass expiry is spread over calls that each look at a bounded number of
        deadlines (``HomeAgent.EXPIRY_BATCH``), the superseded ones of renewed bindings
        included -- and the fast path leaves those in its heap differently from the
        general path. So the two may split one expiry differently between calls, and a
        call's per-node transitions (proxy ARP) come after that call's removals: what they
        do at the instant is compared node by node (each node's actions in their order,
        every action the same), and their tables after it in full."""
        now = self.now

        def drained(ha: HomeAgent) -> list[Action]:
            out: list[Action] = []
            for _ in range(1000):  # (bounded)
                out += ha.handle_timer(now)
                deadline = ha.next_deadline()
                if deadline is None or deadline > now:
                    break
            return sorted(out, key=_node_of)  # (stable: each node's order kept)

        self.both(drained)

    def send(self, node: _Node, payload: bytes, **kw: Any) -> None:
        event = self._event(node, payload, **kw)
        now = self.now
        out = self.both(lambda ha: ha.handle(event, now))
        for a in out:  # a nonce-protected node learns the home agent's next nonce
            if isinstance(a, SendUdp) and len(a.payload) >= 20 and a.payload[0] == 3:
                node.nonce = int.from_bytes(a.payload[12:16], "big")

    def step(self) -> None:
        r = self.rng
        node = r.choice(self.nodes)
        self.now += r.choice([0.0, 0.001, 0.2, 1.0, 1.0, 3.0])
        roll = r.random()
        if roll < 0.45:  # renew as before
            self.send(node, self._request(node))
        elif roll < 0.55:  # something changed
            self._reshape(node)
            self.send(node, self._request(node))
        elif roll < 0.59 and node.sent:  # a replay, byte for byte
            self.send(node, r.choice(node.sent[-4:]))
        elif roll < 0.62:  # an old identification, signed anew
            self.send(node, self._request(node, ident=(self._ident(node) - (5 << 32)) % (1 << 64)))
        elif roll < 0.66:  # a bad MN-HA or FA-HA authenticator, or an unknown SPI
            flipped = bytearray(self._request(node))
            at = r.choice([30, 45, len(flipped) - 1, 27])
            flipped[at] ^= 1 << r.randrange(8)
            self.send(node, bytes(flipped))
        elif roll < 0.68:  # relayed without FA-HA, or with one the home agent lacks
            self.send(node, self._request(node, fa_sa=r.choice([None, OTHER_FA_SA])))
        elif roll < 0.72:  # deregistration of this care-of address, or of all
            all_ = r.random() < 0.5
            self.send(node, self._request(node, lifetime=0, coa=node.hoa if all_ else None))
        elif roll < 0.74:  # an extension more: an NAI, a skippable one
            extra = r.choice(
                [(MobileNodeNAIExtension(NAI.encode()),), (RawExtension(200, b"xyz"),)]
            )
            self.send(node, self._request(node, extra=extra))
        elif roll < 0.77:  # odd addressing: broadcasts, multicast, another home agent
            dst = r.choice([NET.broadcast_address, A("255.255.255.255"), A("224.0.0.11"), HA])
            ha = r.choice([HA, HA, A("10.0.0.2"), A("0.0.0.0")])
            self.send(node, self._request(node, ha=ha), dst=dst)
        elif roll < 0.79:  # garbage
            payload = self._request(node)
            self.send(node, payload[: r.randrange(len(payload))])
        elif roll < 0.86:  # time passes; timers run
            self.now += r.choice([5.0, 29.0, 31.0, 300.0, 601.0, 1900.0])
            self.timer()
        elif roll < 0.90:
            self.timer()
        elif roll < 0.92:  # the wall clock steps (NTP timestamps: RFC 5944 §5.7.1)
            step = r.choice([-20.0, -3.0, 4.0, 30.0])
            for agent in (self.fast, self.general):
                agent.clock_offset += step
        elif roll < 0.95:  # the operator rekeys a node or a foreign agent, or removes one
            self._rekey()
        elif roll < 0.97:  # the operator moves a node away and back (RFC 4433), revokes one
            what = r.random()
            now = self.now
            if what < 0.4:
                self.both(lambda ha: ha.redirect(node.hoa, A("10.0.0.2"), now))
            elif what < 0.8:
                self.both(lambda ha: ha.redirect(node.hoa, HA, now))
            else:
                self.both(lambda ha: ha.revoke(node.hoa, now))
        else:  # the configuration is replaced (a reload)
            changes: dict[str, Any] = r.choice(
                [
                    {"max_lifetime": 300},
                    {"max_lifetime": 1800},
                    {"reverse_tunnel_required": True, "reverse_tunnel": True},
                    {"reverse_tunnel_required": False},
                    {"max_bindings": 3},
                    {"max_bindings": 65536},
                    {"gre_encapsulation": False},
                    {"gre_encapsulation": True},
                    {"minimal_encapsulation": False},
                    {"minimal_encapsulation": True},
                    {"reverse_tunnel": False, "reverse_tunnel_required": False},
                    {"reverse_tunnel": True},
                    {"home_addresses": frozenset(list(NODES)[2:5])},
                    {"home_addresses": None},
                ]
            )
            for agent in (self.fast, self.general):
                agent.config = dataclasses.replace(agent.config, **changes)

    def _rekey(self) -> None:
        r = self.rng
        if r.random() < 0.5:
            hoa = r.choice([h for h in NODES if h != UNKNOWN])
            i = r.randrange(len(NODES[hoa]))
            old = NODES[hoa][i]
            new = dataclasses.replace(old, key=bytes(r.getrandbits(8) for _ in range(16)))
            NODES[hoa] = (*NODES[hoa][:i], new, *NODES[hoa][i + 1 :])
            for agent in (self.fast, self.general):
                store = agent.security_associations
                assert isinstance(store, SecurityAssociations)
                store.replace(hoa, new)
            return
        fa = r.choice([f for f in FAS if f != A("192.168.3.1")])
        sa = FAS[fa]
        for ha in (self.fast, self.general):
            store = ha.security_associations
            if sa is not None and store.get(fa, sa.spi) is not None:
                store.remove(fa, sa.spi)
            elif sa is not None:
                store.add(fa, sa)


@pytest.fixture(autouse=True)
def _keys_restored() -> Any:
    """``_rekey`` changes the module's keys; every test starts from the same ones."""
    nodes, fas = dict(NODES), dict(FAS)
    yield
    NODES.clear()
    NODES.update(nodes)
    FAS.clear()
    FAS.update(fas)


CONFIGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "capped": {"max_lifetime": 300},
    "no-simultaneous": {"simultaneous_bindings": False},
    "reverse-required": {"reverse_tunnel_required": True},
    "no-capabilities": {
        "reverse_tunnel": False,
        "gre_encapsulation": False,
        "minimal_encapsulation": False,
    },
    "revocation": {"revocation": True},
    "small-table": {"max_bindings": 3},
    "wider-network": {"home_network": NET.supernet(new_prefix=16)},
    "listed-addresses": {"home_addresses": frozenset(list(NODES)[:4])},
    # RFC 2794: the NAI's node gets its address from the pool; renewals without the NAI
    # are then refused (129: assigned to another node)
    "pool": {"address_pool": frozenset({A("10.0.0.15"), A("10.0.0.10")})},
}


def _compared(name: str, seeds: range, rows: bool = False) -> None:
    """Both engines through ``seeds``' sequences with the configuration ``name``, the
    associations as objects or (``rows``) as a subscriber table's rows."""
    fast_total = accepted = 0
    for seed in seeds:
        fast, general = _engines(rows=rows, **CONFIGS[name])
        table = fast.security_associations.table  # type: ignore[attr-defined]
        assert (table is not None and len(table) > 5) is rows
        run = _Run(seed * 7919 + len(name), fast, general)
        for _ in range(120):
            run.step()
        assert general.fast_renewals == 0
        fast_total += fast.fast_renewals
        accepted += fast.counters.total_accepted
    # the sequences exercise the fast path, and not only it (changes, first registrations)
    assert 0.2 * accepted < fast_total < accepted, (fast_total, accepted)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_fast_path_acts_as_the_general_path(name: str) -> None:
    _compared(name, range(40))


@pytest.mark.parametrize("name", ["plain", "small-table", "wider-network", "no-simultaneous"])
def test_with_a_subscriber_table_the_fast_path_acts_as_the_general_path(name: str) -> None:
    """The associations as a subscriber table's rows in both engines: the fast path
    checks and signs with a row's fields (``get_fields``), the general path with the
    row's association; rekeys and removals leave rows gone and objects in their place."""
    _compared(name, range(40, 65), rows=True)


def test_a_renewal_makes_no_association_from_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path checks and signs with a row's fields (issue 13: no association object
    a renewal, the key absorbed once): with ``TableRows.association`` gone, renewals of a
    node whose association is a row are still answered, and accepted."""
    fast, general = _engines(rows=True)
    node = _Node(A("10.0.0.10"), COLOCATED[0], "colocated", flags=0x20)
    run = _Run(3, fast, general)
    run.send(node, run._request(node))  # first registration: the general path in both
    assert fast.counters.total_accepted == 1

    def made(self: TableRows, row: int) -> SecurityAssociation:
        raise AssertionError(f"row {row} made into an association")

    monkeypatch.setattr(TableRows, "association", made)
    for _ in range(3):
        run.now += 1.0
        fast.handle(run._event(node, run._request(node)), run.now)
    assert fast.fast_renewals == 3 and fast.counters.total_accepted == 4


def test_a_raised_log_level_acts_as_the_general_path() -> None:
    """With ``log_level`` INFO on both engines (the routine DEBUG lines not built), the
    fast path still returns what the general path returns, field by field."""
    fast_total = 0
    for seed in range(12):
        fast, general = _engines()
        fast.log_level = general.log_level = INFO
        run = _Run(seed * 31 + 7, fast, general)
        for _ in range(120):
            run.step()
        fast_total += fast.fast_renewals
    assert fast_total > 50


def test_other_binding_stores(tmp_path: Path) -> None:
    """With the persistent store (issue 15: bindings, replay state written through) the
    same rows are written; with a store that is not the in-memory one, the same table."""
    fast_total = {"sqlite": 0, "delegating": 0}
    for seed in range(12):
        for name in fast_total:
            sqlite = {
                fast: SqliteStore(tmp_path / f"{seed}-{fast}.db", UNIX0) for fast in (True, False)
            }
            try:
                if name == "sqlite":
                    fast, general = _engines(lambda f, db=sqlite: db[f].bindings)  # type: ignore[misc]
                else:
                    fast, general = _engines(lambda f: _Delegating())
                run = _Run(seed, fast, general)
                for _ in range(120):
                    run.step()
                    assert sqlite[True]._pending == sqlite[False]._pending
                    assert sqlite[True].writes == sqlite[False].writes
                fast_total[name] += fast.fast_renewals
            finally:
                for store in sqlite.values():
                    store.close()
    assert min(fast_total.values()) > 50, fast_total


def test_a_long_run_of_renewals_and_expiries() -> None:
    """Fewer nodes, many renewals each, through lifetimes that run out."""
    fast, general = _engines()
    run = _Run(12345, fast, general)
    run.nodes = run.nodes[:3]
    for _ in range(3000):
        run.step()
    assert fast.fast_renewals > 100


def test_the_comparison_sees_a_difference() -> None:
    """The pair of engines is not blind: a fast path that counted nothing is caught."""
    fast, general = _engines()
    node = _Node(A("10.0.0.10"), COLOCATED[0], "colocated", flags=0x20)
    run = _Run(1, fast, general)
    run.send(node, run._request(node))  # first registration: the general path in both
    run.now += 1.0
    payload = run._request(node)
    event = run._event(node, payload)
    got = fast.handle(event, run.now)
    assert fast.fast_renewals == 1
    want = general.handle(event, run.now)
    _same(fast, general, got, want)
    fast._counters.accepted.clear()
    with pytest.raises(AssertionError):
        _same(fast, general, got, want)


def test_identification_edges_decide_as_the_general_path() -> None:
    """The fast path's timestamp check (RFC 5944 §5.7.1, on the integers) at its edges:
    the high word exactly at and one past the tolerance on either side, across the
    32-bit serial-number wrap (RFC 1982: 2**31 - 1 ahead, 2**31 ahead, which counts as
    behind), with fractional tolerances and a fractional clock; and the Identification
    equal to, one below, one above, 2**63 - 1 and 2**63 past the last accepted one. Each
    renewal is answered as the general path answers it (accepted or 133), state and all,
    and every accepted one by the fast path."""
    hoa = A("10.0.0.10")
    m32, m64 = (1 << 32) - 1, (1 << 64) - 1
    for tolerance in (7.0, 7.5, 0.0):
        # (the node signs with it too; the module's keys are put back after the test)
        NODES[hoa] = (SecurityAssociation(0x1000, b"a" * 16, replay_tolerance=tolerance),)
        fast, general = _engines()
        run = _Run(5, fast, general)
        node = _Node(hoa, COLOCATED[0], "colocated", flags=0x20)
        accepted = 0
        for fraction, era_end in ((0.0, False), (0.25, False), (0.99, False), (0.5, True)):
            run.now = float(int(run.now) + 10) + fraction
            if era_end:  # NTP seconds 3 short of 2**32 (February 2036): the high word wraps
                for agent in (fast, general):
                    agent.clock_offset = float(2085978496 - 3 - int(run.now))
            secs = ntp_timestamp(fast.clock_offset + run.now) >> 32
            for d in (-8, -7, 7, 8, 0, (1 << 31) - 1, 1 << 31, -(1 << 31), 1):
                run.now += 0.001
                high = (secs + d) & m32
                before = fast.counters.total_accepted
                run.send(node, run._request(node, ident=(high << 32) | 0x1234))
                accepted += fast.counters.total_accepted - before
            (last,) = {s.last_accepted for s in fast.replay_state.values()}
            assert last is not None
            for ident in (last, last - 1, last + 1, last + (1 << 63) - 1, last + (1 << 63)):
                run.send(node, run._request(node, ident=ident & m64))
        # and each accepted renewal was the fast path's (a needless refusal shows here)
        assert fast.fast_renewals > 0 and accepted > 0
        assert fast.fast_renewals + fast.fast_first_registrations == fast.counters.total_accepted


@pytest.mark.parametrize("prefix", [24, 30, 31])
def test_the_served_addresses_edges_decide_as_the_general_path(prefix: int) -> None:
    """Which home addresses this agent serves (``HomeAgentConfig.serves``, checked on the
    integers in the fast path): the home network's first and last addresses (its network
    and broadcast addresses below /31, hosts at /31), their neighbours inside and outside,
    and the agent's own address; first registrations and renewals of each are
    answered as the general path answers them (accepted, or 129)."""
    net = IPv4Network(f"10.0.0.0/{prefix}")
    first, last = int(net.network_address), int(net.broadcast_address)
    edges = [A(a) for a in (first - 1, first, first + 1, last - 1, last, last + 1)]
    edges = sorted(set(edges) | {HA}, key=int)
    for i, hoa in enumerate(edges):  # (the module's keys are put back after the test)
        NODES[hoa] = (SecurityAssociation(0x3000 + i, bytes([i + 1]) * 16),)
    fast, general = _engines(home_network=net)
    run = _Run(11, fast, general)
    for hoa in edges:
        node = _Node(hoa, COLOCATED[0], "colocated", flags=0x20)
        for _ in range(3):  # a first registration, then renewals
            run.now += 1.0
            run.send(node, run._request(node))
    served = [
        h for h in edges if h != HA and h in net and (prefix >= 31 or int(h) not in (first, last))
    ]
    assert {b.home_address for b in fast} == set(served)
    assert fast.fast_renewals == 2 * len(served)


def test_no_authenticator_is_computed_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path checks everything that costs no authenticator first: a request it
    leaves to the general path was not verified yet (a first registration, a replay), and
    a bad authenticator it finds is denied there and then. Each request costs one check
    per authenticator it carries and one per authenticator of the reply, as in the
    general path (issue 9: a flood of forgeries for a bound node costs no more)."""
    count = [0]
    real = SecurityAssociation.authenticator

    def counted(self: SecurityAssociation, data: bytes) -> bytes:
        count[0] += 1
        return real(self, data)

    monkeypatch.setattr(SecurityAssociation, "authenticator", counted)
    for fast in (True, False):
        ha = _engines()[0 if fast else 1]
        run = _Run(3, ha, ha)  # (one engine: the steps below are sent by hand)
        direct = _Node(A("10.0.0.10"), COLOCATED[0], "colocated", flags=0x20)
        relayed = _Node(A("10.0.0.11"), A("192.168.1.1"), "fa:192.168.1.1")
        costs = []
        for node, payload in [
            (direct, None),  # first registration
            (direct, None),  # renewal
            (direct, "replay"),  # the renewal again: 133
            (direct, "forged"),  # a forgery for the bound node: 131
            (relayed, None),  # first registration through the foreign agent (FA-HA)
            (relayed, None),  # its renewal
            (relayed, "forged-fa"),  # a bad FA-HA: 132
        ]:
            run.now += 1.0
            if payload == "replay":
                raw = node.sent[-1]
            else:
                raw = run._request(node)
                if payload is not None:
                    flipped = bytearray(raw)
                    flipped[45 if payload == "forged" else -1] ^= 1
                    raw = bytes(flipped)
            before = count[0]
            ha.handle(run._event(node, raw), run.now)
            costs.append(count[0] - before)
        assert costs == [2, 2, 2, 2, 4, 4, 4], (fast, costs)
        assert ha.fast_renewals == (2 if fast else 0)


def test_a_renewal_allocates_no_long_lived_object() -> None:
    """Issue 13, no collector pause over 10 ms at 1 M bindings: a renewal through the fast
    path renews the node's binding record and replay record in place. A new record per
    renewal would land in generation 0 while the replaced one, frozen by the daemon's
    ``settle_collector``, is freed -- and CPython counts generation 0 down for that free, so
    young collections came late and big (26-42 ms at 1 M in a shuffled order). After
    ``settle_collector``, 10,000 renewals leave generation 0 as it was (with the collector
    off, so that nothing is collected while it is counted)."""
    import gc

    from mip4.daemon.run import freeze_survivors, settle_collector
    from mip4.security.sa import SecurityAssociations as Store
    from mip4.wire.messages import NO_FLAGS

    nodes, rounds, coa = 2500, 4, A("198.18.0.2")
    config = HomeAgentConfig(address=HA, home_network=IPv4Network("10.0.0.0/16"), interface="home0")
    store = Store()
    sas = [SecurityAssociation(0x100 + i, i.to_bytes(16, "big")) for i in range(nodes)]
    hoas = [A(int(A("10.0.1.0")) + i) for i in range(nodes)]
    for hoa, sa in zip(hoas, sas, strict=True):
        store.add(hoa, sa)
    ha = HomeAgent(config, store, UNIX0)

    def events(now: float) -> list[UdpReceived]:
        out = []
        for i, (hoa, sa) in enumerate(zip(hoas, sas, strict=True)):
            ident = ntp_timestamp(UNIX0 + now, low=i)
            req = RegistrationRequest(NO_FLAGS, 600, hoa, HA, coa, ident, ())
            raw = sign(req, MobileHomeAuthExtension, sa).raw
            assert raw is not None
            out.append(UdpReceived(raw, coa, HA, 434, 434, "wan0", None, ttl=64))
        return out

    for ev in events(0.0):
        ha.handle(ev, 0.0)
    assert len(ha.bindings) == nodes
    batches = [events(float(r)) for r in range(1, rounds + 1)]
    records = {id(b) for b in ha.bindings}
    was = gc.isenabled()
    gc.disable()
    try:
        settle_collector()
        young = len(gc.get_objects(0))
        for r, batch in enumerate(batches, 1):
            for ev in batch:
                ha.handle(ev, float(r))
        grown = len(gc.get_objects(0)) - young
    finally:
        gc.callbacks.remove(freeze_survivors)
        gc.unfreeze()
        if was:
            gc.enable()
    assert ha.fast_renewals == nodes * rounds
    assert all(b.registered_at == float(rounds) for b in ha.bindings)
    assert grown < 100, f"generation 0 grew by {grown} objects in {nodes * rounds} renewals"
    assert {id(b) for b in ha.bindings} == records  # the same records, renewed
