"""Stateful property test: random moves, losses, reboots, clock jumps and garbage against the
mobile node, two foreign agents and the home agent in the in-memory network.

Invariants (checked after every step):

* the home agent never holds a binding whose lifetime has passed;
* every home agent binding is the one its last accepted registration installed
  (same care-of address, expiry, encapsulation, reverse tunnelling), and nothing removed
  it since;
* a foreign agent never has a visitor (never delivers to a home address) it has not
  accepted: each visitor entry and each ``InstallVisitor`` follows an accepting reply the
  home agent sent to that agent for that home address, and has not expired;
* the mobile node is registered only after an authenticated success reply for its current
  care-of address: the reply that made it so was delivered to it, verifies with the MN-HA
  key, matches (low 32 bits of the Identification) a request it sent for that care-of
  address, and the binding it believes in has not expired (nor outlives the home agent's);
* no engine raises, and none reports an internal or protocol error.

With revocation on (RFC 3543: FA-HA between the agents), the home agent and either foreign
agent may also revoke the node's registration at any step, and the node may re-register or
stop; the invariants are the same.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from mip4.core.actions import (
    Encapsulation,
    InstallBinding,
    InstallVisitor,
    Log,
    RemoveBinding,
    RemoveVisitor,
)
from mip4.core.events import IcmpReceived, UdpReceived
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgentConfig
from mip4.core.mn_config import RevocationReaction
from mip4.core.mobile_node import MobileNodeConfig, ReverseTunnel
from mip4.security.auth import AuthenticationError, verify
from mip4.security.replay import low_word
from mip4.security.sa import ReplayMethod
from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError
from mip4.wire.messages import RegistrationReply, RegistrationRequest, decode_message

from .netsim import HA_ADDR, HOME_NET, MN_HOME, Packet, World

NODES = ("mn", "ha", "fa1", "fa2")
PLACES = ("home", "A", "B", "C", "A", "B", "C", None)


class MobilityMachine(RuleBasedStateMachine):
    @initialize(
        replay=st.sampled_from(list(ReplayMethod)),
        simultaneous=st.booleans(),
        seed=st.integers(0, 2**16),
        start=st.sampled_from(("home", "A", "B", "C")),
        reverse=st.sampled_from(list(ReverseTunnel)),
        gre=st.booleans(),
        challenges=st.booleans(),
        revocation=st.booleans(),
        on_revocation=st.sampled_from(list(RevocationReaction)),
    )
    def setup(
        self,
        replay: ReplayMethod,
        simultaneous: bool,
        seed: int,
        start: str,
        reverse: ReverseTunnel,
        gre: bool,
        challenges: bool,
        revocation: bool,
        on_revocation: RevocationReaction,
    ) -> None:
        self.w = World(
            replay=replay,
            seed=seed,
            fa_ha_sa=revocation,
            ha_config=HomeAgentConfig(
                address=HA_ADDR, home_network=HOME_NET, interface="ha0", revocation=revocation
            ),
            mn_config=MobileNodeConfig(
                home_address=MN_HOME,
                home_agent=HA_ADDR,
                lifetime=40,
                simultaneous_bindings=simultaneous,
                reverse_tunnel=reverse,
                encapsulating_delivery=True,
                encapsulations=(Encapsulation.GRE, Encapsulation.IPIP)
                if gre
                else (Encapsulation.IPIP,),
                denial_backoff=5.0,
                denial_backoff_max=60.0,
                on_revocation=on_revocation,
            ),
            fa_options={
                "advertisement_interval": 5.0,
                "max_lifetime": 60,
                "challenge_length": 16 if challenges else 0,
                "revocation": revocation,
            },
        )
        self.loss: object | None = None
        self.seen = 0  # packets already inspected
        #: (fa, home address) -> times the home agent sent that agent an accepting reply
        self.accepted_at: dict[tuple[str, IPv4Address], list[float]] = {}
        self.w.move(start)

    # -- rules ---------------------------------------------------------------------------

    @rule(where=st.sampled_from(PLACES), signal=st.booleans())
    def move(self, where: str | None, signal: bool) -> None:
        self.w.move(where, signal=signal)

    @rule(dt=st.floats(0.05, 120.0))
    def advance(self, dt: float) -> None:
        self.w.advance(dt)

    @rule(dt=st.floats(200.0, 5000.0))
    def clock_jump(self, dt: float) -> None:
        self.w.advance(dt)

    @rule(p=st.sampled_from([0.0, 0.0, 0.3, 1.0]))
    def set_loss(self, p: float) -> None:
        self.w.net.loss_probability = p

    @rule(node=st.sampled_from(NODES))
    def reboot(self, node: str) -> None:
        self.w.net.reboot(node)

    @rule(up=st.booleans())
    def power_home_agent(self, up: bool) -> None:
        self.w.net.set_up("ha", up)

    @rule()
    def deregister(self) -> None:
        net = self.w.net
        net._apply(net.nodes["mn"], self.w.mn.deregister(self.w.now))
        net.transfer()

    @rule()
    def revoke_at_home_agent(self) -> None:
        self.w.net.operate("ha", lambda ha, now: ha.revoke(MN_HOME, now))

    @rule(fa=st.sampled_from(("fa1", "fa2")))
    def revoke_at_foreign_agent(self, fa: str) -> None:
        self.w.net.operate(fa, lambda agent, now: agent.revoke(MN_HOME, now))

    @rule(node=st.sampled_from(NODES), payload=st.binary(max_size=64), icmp=st.booleans())
    def garbage(self, node: str, payload: bytes, icmp: bool) -> None:
        n = self.w.net.nodes[node]
        iface = next(iter(n.interfaces))
        src = IPv4Address("192.0.2.1")
        if icmp:
            ev: UdpReceived | IcmpReceived = IcmpReceived(payload, src, MN_HOME, iface, ttl=1)
        else:
            ev = UdpReceived(payload, src, MN_HOME, 434, 434, iface, ttl=64)
        self.w.net.inject(node, ev)
        self.w.net.transfer()

    @rule(node=st.sampled_from(NODES), flip=st.integers(0, 200))
    def corrupted_replay(self, node: str, flip: int) -> None:
        """Replay a datagram seen earlier, with one byte flipped, to ``node``."""
        pkts = [p for p in self.w.net.packets if isinstance(p.action.payload, bytes)]
        if not pkts:
            return
        p = pkts[flip % len(pkts)]
        data = bytearray(p.payload)
        if data:
            data[flip % len(data)] ^= 0x5A
        iface = next(iter(self.w.net.nodes[node].interfaces))
        self.w.net.inject(node, UdpReceived(bytes(data), HA_ADDR, MN_HOME, 434, 434, iface, ttl=64))
        self.w.net.transfer()

    # -- bookkeeping ---------------------------------------------------------------------

    def _scan(self) -> None:
        net = self.w.net
        for p in net.packets[self.seen :]:
            if p.sender == "ha" and p.receiver in ("fa1", "fa2") and not p.dropped:
                m = _reply(p)
                if m is not None and m.code in (0, 1) and m.lifetime > 0:
                    self.accepted_at.setdefault((p.receiver, m.home_address), []).append(p.time)
        self.seen = len(net.packets)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def no_engine_error(self) -> None:
        if not hasattr(self, "w"):
            return
        mn = self.w.mn
        assert mn.counters.discarded["internal_error"] == 0, self.w.net.logs(
            "mn", "mn.internal_error"
        )
        assert mn.counters.discarded["protocol_error"] == 0, self.w.net.logs(
            "mn", "mn.protocol_error"
        )
        for name in ("ha", "fa1", "fa2"):
            c = self.w.net.nodes[name].engine.counters  # type: ignore[attr-defined]
            assert c.discarded["internal_error"] == 0, name
            assert c.discarded["protocol_error"] == 0, name

    @invariant()
    def ha_bindings_alive_and_match_last_registration(self) -> None:
        if not hasattr(self, "w"):
            return
        w = self.w
        now = w.now
        last: dict[tuple[IPv4Address, IPv4Address], InstallBinding | None] = {}
        for _, a in w.net.nodes["ha"].actions:
            if isinstance(a, Log) and a.event == "netsim-reboot":
                last.clear()  # a rebooted home agent starts with an empty table
            elif isinstance(a, InstallBinding):
                last[(a.home_address, a.care_of_address)] = a
            elif isinstance(a, RemoveBinding):
                for key in list(last):
                    if key[0] == a.home_address and a.care_of_address in (None, key[1]):
                        last[key] = None
        for b in w.ha.bindings:
            # never a binding whose lifetime has passed
            assert b.expires is None or b.expires > now, (b, now)
            inst = last.get(b.key)
            assert inst is not None, f"binding {b.key} without a live installation"
            assert inst.expires == b.expires
            assert inst.encapsulation is b.encapsulation
            assert inst.reverse_tunnel == b.reverse_tunnel
        live = {k for k, v in last.items() if v is not None}
        assert live == {b.key for b in w.ha.bindings}

    @invariant()
    def fa_visitors_were_accepted(self) -> None:
        if not hasattr(self, "w"):
            return
        self._scan()
        w = self.w
        for name in ("fa1", "fa2"):
            fa = w.net.nodes[name].engine
            assert isinstance(fa, ForeignAgent)
            node = w.net.nodes[name]
            for t, a in node.actions:
                if isinstance(a, InstallVisitor):
                    times = self.accepted_at.get((name, a.home_address), [])
                    assert t in times, f"{name} installed {a.home_address} at {t} unaccepted"
            installed: dict[IPv4Address, InstallVisitor] = {}
            for _, a in node.actions:
                if isinstance(a, Log) and a.event == "netsim-reboot":
                    installed.clear()
                elif isinstance(a, InstallVisitor):
                    installed[a.home_address] = a
                elif isinstance(a, RemoveVisitor):
                    installed.pop(a.home_address, None)
            for v in fa.visitors:
                assert v.expires is None or v.expires > w.now
                assert self.accepted_at.get((name, v.home_address)), v
                assert v.home_address in installed

    @invariant()
    def mn_registered_only_after_authenticated_acceptance(self) -> None:
        if not hasattr(self, "w"):
            return
        w = self.w
        mn = w.mn
        if not mn.registered:
            return
        b = mn.binding
        coa = mn.care_of_address
        assert b is not None and coa is not None and b.care_of_address == coa
        assert b.expires is None or b.expires > w.now
        sent = {
            low_word(q.identification)
            for p in w.net.sent("mn")
            if (q := _request(p)) is not None and q.care_of_address == coa and q.lifetime > 0
        }
        # the node's idea of its binding never outlives the home agent's
        for hb in w.ha.bindings:
            if hb.care_of_address == coa and hb.expires is not None and b.expires is not None:
                assert b.expires <= hb.expires + 1e-9, (b, hb)
        ok = False
        for p in w.net.packets:
            if p.receiver != "mn" or p.dropped or p.time != b.registered_at:
                continue
            r = _reply(p)
            if r is None or r.code not in (0, 1) or low_word(r.identification) not in sent:
                continue
            try:
                verify(r, 32, lambda spi: w.mn_sa if spi == w.mn_sa.spi else None)
            except AuthenticationError:
                continue
            ok = True
        assert ok, f"registered with {coa} without an authenticated acceptance"


def _reply(p: Packet) -> RegistrationReply | None:
    try:
        m = decode_message(p.payload)
    except DecodeError:
        return None
    return m if isinstance(m, RegistrationReply) else None


def _request(p: Packet) -> RegistrationRequest | None:
    try:
        m = decode_message(p.payload)
    except DecodeError:
        return None
    return m if isinstance(m, RegistrationRequest) else None


_ = ReplyCode  # (codes referenced in docs)

MobilityMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMobility = MobilityMachine.TestCase
