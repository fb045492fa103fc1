"""Home agent engine (RFC 5944 §3.8, §4.6; RFC 3024 §4.2), driven with raw bytes and a
virtual clock. Requests are built with the codec and signed with :func:`security.sign`;
replies are decoded and their authenticators checked with :func:`security.verify`."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mip4.core.actions import (
    Action,
    Encapsulation,
    GratuitousArp,
    InstallBinding,
    Log,
    ProxyArp,
    RemoveBinding,
    SendIcmp,
    SendUdp,
)
from mip4.core.events import IcmpReceived, LinkDown, LinkUp, UdpReceived
from mip4.core.home_agent import (
    BINDING_TRANSITIONS,
    HA_PIPELINE,
    BindingInput,
    BindingState,
    HomeAgent,
    HomeAgentConfig,
)
from mip4.core.registration import ProtocolError
from mip4.security.auth import FA_HA, MN_HA, verify
from mip4.security.replay import ntp_seconds, ntp_timestamp
from mip4.security.sa import ReplayMethod, SecurityAssociation, SecurityAssociations, lookup_for
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    MobileHomeAuthExtension,
    RawExtension,
)
from mip4.wire.messages import (
    NO_FLAGS,
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
)

A = IPv4Address
HA = A("10.0.0.1")
NET = IPv4Network("10.0.0.0/24")
HOA = A("10.0.0.10")
HOA2 = A("10.0.0.11")
FA = A("192.168.1.1")
COA = A("192.168.1.1")
COA2 = A("172.16.0.5")
COA3 = A("172.16.0.6")
UNIX0 = 1_790_000_000.0  # wall time at now == 0
F = RegistrationFlags

MN_SA = SecurityAssociation(spi=0x1000, key=b"k" * 16)
FA_SA = SecurityAssociation(spi=0x2000, key=b"f" * 16)


def sas(*, fa: bool = False, nonces: bool = False) -> SecurityAssociations:
    store = SecurityAssociations()
    mn = dataclasses.replace(MN_SA, replay=ReplayMethod.NONCES) if nonces else MN_SA
    store.add(HOA, mn)
    store.add(HOA2, mn)
    store.add(A("10.9.9.9"), mn)  # outside the home network: 129
    if fa:
        store.add(FA, FA_SA)
    return store


class _Nonces(random.Random):
    """An ``rng`` whose ``getrandbits`` counts up from ``start``: the home agent's nonces
    (its only draw) are predictable in tests."""

    def __init__(self, start: int) -> None:
        super().__init__(0)
        self._next = start

    def getrandbits(self, k: int, /) -> int:
        n = self._next
        self._next += 1
        return n & ((1 << k) - 1)


def make_ha(store: SecurityAssociations | None = None, **cfg: object) -> HomeAgent:
    config = HomeAgentConfig(address=HA, home_network=NET, interface="home0", **cfg)  # type: ignore[arg-type]
    return HomeAgent(config, store or sas(), UNIX0, rng=_Nonces(0x5000))


def request(
    *,
    now: float = 0.0,
    lifetime: int = 600,
    hoa: IPv4Address = HOA,
    ha: IPv4Address = HA,
    coa: IPv4Address = COA,
    flags: RegistrationFlags = NO_FLAGS,
    ident: int | None = None,
    mn_sa: SecurityAssociation | None = MN_SA,
    fa_sa: SecurityAssociation | None = None,
    extra: tuple[RawExtension, ...] = (),
) -> bytes:
    from mip4.security.auth import sign

    if ident is None:
        ident = ntp_timestamp(UNIX0 + now, low=0xABCD)
    req = RegistrationRequest(flags, lifetime, hoa, ha, coa, ident, extra)
    if mn_sa is not None:
        req = sign(req, MobileHomeAuthExtension, mn_sa)
    if fa_sa is not None:
        req = sign(req, ForeignHomeAuthExtension, fa_sa)
    return req.raw or req.encode()


def udp(
    payload: bytes,
    *,
    src: IPv4Address = FA,
    dst: IPv4Address = HA,
    sport: int = 4321,
    interface: str = "wan0",
    link_src: bytes | None = None,
    ttl: int = 64,
) -> UdpReceived:
    return UdpReceived(payload, src, dst, sport, 434, interface, link_src, ttl=ttl)


T = TypeVar("T")


def sends(actions: Sequence[Action]) -> list[SendUdp]:
    return [a for a in actions if isinstance(a, SendUdp)]


def reply_of(
    actions: Sequence[Action], mn_sa: SecurityAssociation | None = MN_SA
) -> RegistrationReply:
    (send,) = sends(actions)
    reply = RegistrationReply.decode(send.payload)
    if mn_sa is not None:
        verify(reply, MN_HA, lambda spi: mn_sa if spi == mn_sa.spi else None)
    return reply


def of(actions: Sequence[Action], cls: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, cls)]


# ----------------------------------------------------------------------------------------
# Acceptance, addressing, ARP
# ----------------------------------------------------------------------------------------


def test_accept_installs_binding_and_replies_to_source_port() -> None:
    ha = make_ha()
    actions = ha.handle(udp(request(lifetime=600), sport=4321), 0.0)
    reply = reply_of(actions)
    assert reply.code == ReplyCode.ACCEPTED
    assert reply.lifetime == 600
    assert reply.home_address == HOA and reply.home_agent == HA
    assert reply.identification == ntp_timestamp(UNIX0, low=0xABCD)
    (send,) = sends(actions)
    # RFC 5944 §3.8.3.1: to the request's source, UDP source port echoed, from our address.
    assert (send.dst, send.dport, send.sport, send.src) == (FA, 4321, 434, HA)
    assert of(actions, InstallBinding) == [
        InstallBinding(HOA, COA, Encapsulation.IPIP, expires=600.0)
    ]
    # RFC 5944 §4.6: proxy ARP on, gratuitous ARP for the home address on the home link.
    assert of(actions, ProxyArp) == [ProxyArp("home0", HOA, True)]
    assert of(actions, GratuitousArp) == [GratuitousArp("home0", HOA, None, 3)]
    (log,) = of(actions, Log)
    assert isinstance(log, Log) and log.fields["code"] == 0 and log.fields["lifetime"] == 600
    assert ha.state_of(HOA) is BindingState.AWAY
    assert ha.counters.accepted[ReplyCode.ACCEPTED] == 1
    assert ha.next_deadline() == 600.0


def test_renewal_does_not_repeat_proxy_arp() -> None:
    ha = make_ha()
    ha.handle(udp(request(now=0)), 0.0)
    actions = ha.handle(udp(request(now=100)), 100.0)
    assert reply_of(actions).code == 0
    assert of(actions, ProxyArp) == [] and of(actions, GratuitousArp) == []
    assert ha.next_deadline() == 700.0
    assert len(ha.bindings) == 1


def test_lifetime_capped_by_config() -> None:
    ha = make_ha(max_lifetime=300)
    actions = ha.handle(udp(request(now=10, lifetime=5000)), 10.0)
    reply = reply_of(actions)
    assert reply.code == 0 and reply.lifetime == 300
    (binding,) = ha.bindings.bindings_of(HOA)
    assert binding.lifetime == 300 and binding.expires == 310.0
    assert ha.next_deadline() == 310.0


def test_infinite_lifetime_only_when_allowed() -> None:
    capped = make_ha()
    assert reply_of(capped.handle(udp(request(lifetime=0xFFFF)), 0.0)).lifetime == 1800
    ha = make_ha(max_lifetime=0xFFFF)
    assert reply_of(ha.handle(udp(request(lifetime=0xFFFF)), 0.0)).lifetime == 0xFFFF
    assert ha.next_deadline() is None
    assert ha.handle_timer(1e9) == []


def test_expiry_by_deadline() -> None:
    ha = make_ha()
    ha.handle(udp(request(lifetime=60)), 0.0)
    assert ha.next_deadline() == 60.0
    assert ha.handle_timer(59.9) == []
    actions = ha.handle_timer(60.0)
    # an expiry: no reply follows, nothing waits for the kernel work (issue 13)
    assert of(actions, RemoveBinding) == [RemoveBinding(HOA, COA, expired=True)]
    assert of(actions, ProxyArp) == [ProxyArp("home0", HOA, False)]
    assert ha.next_deadline() is None
    assert len(ha.bindings) == 0
    assert ha.state_of(HOA) is BindingState.HOME
    assert ha.counters.events["binding_expired"] == 1


def test_renewal_moves_the_deadline_and_old_deadline_is_ignored() -> None:
    ha = make_ha()
    ha.handle(udp(request(now=0, lifetime=60)), 0.0)
    ha.handle(udp(request(now=50, lifetime=60)), 50.0)
    assert ha.next_deadline() == 110.0
    assert ha.handle_timer(60.0) == []
    assert len(ha.bindings) == 1
    assert of(ha.handle_timer(110.0), RemoveBinding) == [RemoveBinding(HOA, COA, expired=True)]


def test_new_coa_without_s_replaces_binding() -> None:
    ha = make_ha()
    ha.handle(udp(request(now=0, coa=COA)), 0.0)
    actions = ha.handle(udp(request(now=1, coa=COA2), src=COA2), 1.0)
    assert reply_of(actions).code == 0
    # replaced, not expired: a reply follows
    assert of(actions, RemoveBinding) == [RemoveBinding(HOA, COA, expired=False)]
    assert [b.care_of_address for b in ha.bindings.bindings_of(HOA)] == [COA2]
    (send,) = sends(actions)
    assert send.dst == COA2  # co-located care-of address: reply to the mobile node itself


def test_a_moved_binding_is_made_before_the_old_one_is_broken() -> None:
    """The new care-of address's binding is installed before the replaced one is removed
    (make before break): a datagram for the node arriving between the two actions is
    tunnelled to one care-of address or the other, never dropped at the home agent (issue
    14: the last lost probe of a fast handover)."""
    ha = make_ha()
    ha.handle(udp(request(now=0, coa=COA)), 0.0)
    actions = ha.handle(udp(request(now=1, coa=COA2), src=COA2), 1.0)
    kinds = [type(a) for a in actions]
    install = kinds.index(InstallBinding)
    remove = kinds.index(RemoveBinding)
    assert install < remove
    installed = actions[install]
    assert isinstance(installed, InstallBinding) and installed.care_of_address == COA2
    assert actions[remove] == RemoveBinding(HOA, COA)


def test_encapsulation_choice() -> None:
    ha = make_ha()
    a = ha.handle(udp(request(now=0, flags=F.M)), 0.0)
    assert [i.encapsulation for i in of(a, InstallBinding)] == [Encapsulation.MINIMAL]
    a = ha.handle(udp(request(now=1, flags=F.G)), 1.0)
    assert [i.encapsulation for i in of(a, InstallBinding)] == [Encapsulation.GRE]
    a = ha.handle(udp(request(now=2, flags=F.T | F.B)), 2.0)
    (inst,) = of(a, InstallBinding)
    # B: the broadcasts of the home link go to the binding, nested (no D: via an agent)
    assert inst == InstallBinding(
        HOA, COA, Encapsulation.IPIP, True, None, 602.0, True, "home0", colocated=False
    )
    a = ha.handle(udp(request(now=3, flags=F.B | F.D)), 3.0)
    (inst,) = of(a, InstallBinding)
    assert inst.broadcast and inst.home_interface == "home0" and inst.colocated
    a = ha.handle(udp(request(now=4, flags=F.D)), 4.0)
    (inst,) = of(a, InstallBinding)
    assert not inst.broadcast and inst.home_interface is None


# ----------------------------------------------------------------------------------------
# Deregistration
# ----------------------------------------------------------------------------------------


def test_deregister_all_from_home_link() -> None:
    ha = make_ha()
    ha.handle(udp(request(now=0)), 0.0)
    mac = b"\x02\x00\x00\x00\x00\x10"
    ev = udp(request(now=5, lifetime=0, coa=HOA), src=HOA, interface="home0", link_src=mac)
    actions = ha.handle(ev, 5.0)
    reply = reply_of(actions)
    assert reply.code == 0 and reply.lifetime == 0
    assert of(actions, RemoveBinding) == [RemoveBinding(HOA, COA)]
    assert of(actions, ProxyArp) == [ProxyArp("home0", HOA, False)]
    # RFC 5944 §4.6: neighbours learn the node's own link-layer address again.
    assert of(actions, GratuitousArp) == [GratuitousArp("home0", HOA, mac, 3)]
    assert ha.next_deadline() is None and len(ha.bindings) == 0


def test_deregister_without_binding_is_accepted() -> None:
    ha = make_ha()
    actions = ha.handle(udp(request(lifetime=0, coa=HOA), src=HOA), 0.0)
    assert reply_of(actions).code == 0
    assert of(actions, ProxyArp) == [] and of(actions, RemoveBinding) == []


def test_simultaneous_bindings_and_deregister_one() -> None:
    ha = make_ha(max_simultaneous_bindings=2)
    for i, coa in enumerate((COA, COA2)):
        r = reply_of(ha.handle(udp(request(now=i, coa=coa, flags=F.S)), float(i)))
        assert r.code == ReplyCode.ACCEPTED
    assert {b.care_of_address for b in ha.bindings.bindings_of(HOA)} == {COA, COA2}
    # A third care-of address is one too many: 135, table unchanged.
    actions = ha.handle(udp(request(now=3, coa=COA3, flags=F.S)), 3.0)
    assert reply_of(actions).code == ReplyCode.HA_TOO_MANY_BINDINGS
    assert of(actions, InstallBinding) == []
    assert len(ha.bindings) == 2
    # Re-registering one of the existing two is fine.
    assert reply_of(ha.handle(udp(request(now=4, coa=COA2, flags=F.S)), 4.0)).code == 0
    # Deregister one care-of address: the other binding stays, proxy ARP stays on.
    actions = ha.handle(udp(request(now=5, coa=COA, lifetime=0, flags=F.S)), 5.0)
    assert reply_of(actions).code == 0
    assert of(actions, RemoveBinding) == [RemoveBinding(HOA, COA)]
    assert of(actions, ProxyArp) == []
    assert [b.care_of_address for b in ha.bindings.bindings_of(HOA)] == [COA2]
    # Deregister all (care-of address = home address).
    actions = ha.handle(udp(request(now=6, coa=HOA, lifetime=0)), 6.0)
    assert of(actions, RemoveBinding) == [RemoveBinding(HOA, COA2)]
    assert of(actions, ProxyArp) == [ProxyArp("home0", HOA, False)]


def test_simultaneous_bindings_unsupported_code_1() -> None:
    ha = make_ha(simultaneous_bindings=False)
    ha.handle(udp(request(now=0, coa=COA, flags=F.S)), 0.0)
    actions = ha.handle(udp(request(now=1, coa=COA2, flags=F.S)), 1.0)
    reply = reply_of(actions)
    assert reply.code == ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS
    assert [b.care_of_address for b in ha.bindings.bindings_of(HOA)] == [COA2]
    assert ha.counters.accepted[ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS] == 2


# ----------------------------------------------------------------------------------------
# Denials: every home agent code from a real cause
# ----------------------------------------------------------------------------------------


def deny(ha: HomeAgent, payload: bytes, code: ReplyCode, **kw: object) -> RegistrationReply:
    actions = ha.handle(udp(payload, **kw), 0.0)  # type: ignore[arg-type]
    reply = reply_of(actions, mn_sa=None)
    assert reply.code == code, (ReplyCode(reply.code).name, code.name)
    assert of(actions, InstallBinding) == [] and of(actions, ProxyArp) == []
    assert ha.counters.denied[code] == 1
    (log,) = of(actions, Log)
    assert log.fields["code"] == int(code)
    return reply


def test_131_bad_authenticator_reply_still_signed() -> None:
    ha = make_ha()
    wrong = SecurityAssociation(spi=MN_SA.spi, key=b"x" * 16)
    reply = deny(ha, request(mn_sa=wrong), ReplyCode.HA_MN_FAILED_AUTH)
    verify(reply, MN_HA, lambda spi: MN_SA)  # RFC 5944 §3.8.3.2: signed with the MN's SA
    assert len(ha.bindings) == 0


def test_131_missing_extension_and_unknown_spi() -> None:
    ha = make_ha()
    reply = deny(ha, request(mn_sa=None), ReplyCode.HA_MN_FAILED_AUTH)
    assert reply.extensions == ()
    other = SecurityAssociation(spi=0x9999, key=b"k" * 16)
    ha2 = make_ha()
    reply = deny(ha2, request(mn_sa=other), ReplyCode.HA_MN_FAILED_AUTH)
    assert reply.extensions == ()  # no SA for that SPI: nothing to sign with


def test_132_fa_ha_missing_when_sa_exists() -> None:
    ha = make_ha(sas(fa=True))
    reply = deny(ha, request(), ReplyCode.HA_FA_FAILED_AUTH)
    verify(reply, MN_HA, lambda spi: MN_SA)
    verify(reply, FA_HA, lambda spi: FA_SA)


def test_132_fa_ha_bad_and_good() -> None:
    ha = make_ha(sas(fa=True))
    wrong = SecurityAssociation(spi=FA_SA.spi, key=b"y" * 16)
    deny(ha, request(fa_sa=wrong), ReplyCode.HA_FA_FAILED_AUTH)
    actions = ha.handle(udp(request(fa_sa=FA_SA)), 0.0)
    reply = reply_of(actions)
    assert reply.code == 0
    verify(reply, FA_HA, lookup_for(sas(fa=True), FA))
    assert isinstance(reply.extensions[-1], ForeignHomeAuthExtension)  # FA-HA last


def test_133_timestamp_out_of_window_resync() -> None:
    ha = make_ha()
    ident = ntp_timestamp(UNIX0 - 3600, low=0x1234)
    actions = ha.handle(udp(request(ident=ident)), 100.0)
    reply = reply_of(actions)
    assert reply.code == ReplyCode.HA_IDENTIFICATION_MISMATCH
    # RFC 5944 §5.7.1: HA's time in the high word, the MN's low word kept.
    assert reply.identification >> 32 == ntp_seconds(UNIX0 + 100.0)
    assert reply.identification & 0xFFFFFFFF == 0x1234
    assert len(ha.bindings) == 0


def test_133_replayed_identification() -> None:
    ha = make_ha()
    payload = request(now=0)
    assert reply_of(ha.handle(udp(payload), 0.0)).code == 0
    reply = reply_of(ha.handle(udp(payload), 1.0))
    assert reply.code == ReplyCode.HA_IDENTIFICATION_MISMATCH
    assert ha.counters.denied[ReplyCode.HA_IDENTIFICATION_MISMATCH] == 1


def test_133_nonces_resync_then_accept() -> None:
    store = sas(nonces=True)
    ha = make_ha(store)
    nonce_sa = store.get(HOA, MN_SA.spi)
    assert nonce_sa is not None
    first = reply_of(ha.handle(udp(request(ident=0xDEAD_0000_0000_0001, mn_sa=nonce_sa)), 0.0))
    assert first.code == ReplyCode.HA_IDENTIFICATION_MISMATCH
    assert first.identification & 0xFFFFFFFF == 1
    nonce = first.identification >> 32
    assert nonce == 0x5000  # the injected nonce source
    ok = reply_of(ha.handle(udp(request(ident=(nonce << 32) | 2, mn_sa=nonce_sa)), 1.0))
    assert ok.code == 0
    assert ok.identification & 0xFFFFFFFF == 2 and ok.identification >> 32 != nonce
    # The old nonce is spent.
    again = ha.handle(udp(request(ident=(nonce << 32) | 3, mn_sa=nonce_sa)), 2.0)
    assert reply_of(again).code == ReplyCode.HA_IDENTIFICATION_MISMATCH


def test_134_poorly_formed() -> None:
    deny(make_ha(), request(coa=A("0.0.0.0")), ReplyCode.HA_POORLY_FORMED_REQUEST)
    deny(make_ha(), request(coa=HOA), ReplyCode.HA_POORLY_FORMED_REQUEST)
    deny(make_ha(), request(coa=A("224.0.0.11")), ReplyCode.HA_POORLY_FORMED_REQUEST)


def test_136_directed_broadcast_home_agent_discovery() -> None:
    ha = make_ha()
    bcast = NET.broadcast_address
    actions = ha.handle(udp(request(ha=bcast), dst=bcast), 0.0)
    reply = reply_of(actions)
    assert reply.code == ReplyCode.HA_UNKNOWN_HA_ADDRESS
    assert reply.home_agent == HA  # RFC 5944 §3.8.3.2: our unicast address
    (send,) = sends(actions)
    assert send.src == HA  # not the broadcast the request was sent to


def test_136_sent_to_the_directed_broadcast_even_when_naming_this_agent() -> None:
    """RFC 5944 §3.8.2.1: a request sent to the home network's subnet-directed broadcast
    address is denied with 136 even when its Home Agent field is this agent's address; the
    reply names our unicast address (§3.8.3.1) and comes from it."""
    ha = make_ha()
    bcast = NET.broadcast_address
    actions = ha.handle(udp(request(ha=HA), src=HOA, dst=bcast, interface="home0"), 0.0)
    reply = reply_of(actions)
    assert reply.code == ReplyCode.HA_UNKNOWN_HA_ADDRESS
    assert reply.home_agent == HA
    (send,) = sends(actions)
    assert (send.dst, send.src) == (HOA, HA)
    assert not of(actions, InstallBinding) and len(ha.bindings) == 0
    # The same request unicast to this agent is accepted.
    ok = reply_of(ha.handle(udp(request(ha=HA, now=1.0), src=HOA, interface="home0"), 1.0))
    assert ok.code == ReplyCode.ACCEPTED


def test_136_other_unicast_home_agent() -> None:
    reply = deny(make_ha(), request(ha=A("10.0.0.2")), ReplyCode.HA_UNKNOWN_HA_ADDRESS)
    assert reply.home_agent == HA


def test_137_138_reverse_tunnel() -> None:
    deny(make_ha(reverse_tunnel=False), request(flags=F.T), ReplyCode.HA_REVERSE_TUNNEL_UNAVAILABLE)
    deny(make_ha(reverse_tunnel_required=True), request(), ReplyCode.HA_REVERSE_TUNNEL_MANDATORY)
    ok = make_ha(reverse_tunnel_required=True).handle(udp(request(flags=F.T)), 0.0)
    assert reply_of(ok).code == 0


def test_139_encapsulation_unavailable() -> None:
    deny(
        make_ha(minimal_encapsulation=False),
        request(flags=F.M),
        ReplyCode.HA_ENCAPSULATION_UNAVAILABLE,
    )
    deny(
        make_ha(gre_encapsulation=False), request(flags=F.G), ReplyCode.HA_ENCAPSULATION_UNAVAILABLE
    )


def test_129_home_address_not_served() -> None:
    deny(make_ha(), request(hoa=A("10.9.9.9")), ReplyCode.HA_ADMIN_PROHIBITED)
    only = make_ha(home_addresses=frozenset({HOA2}))
    deny(only, request(hoa=HOA), ReplyCode.HA_ADMIN_PROHIBITED)


def test_130_binding_table_full() -> None:
    ha = make_ha(max_bindings=1)
    assert reply_of(ha.handle(udp(request(hoa=HOA)), 0.0)).code == 0
    deny(ha, request(hoa=HOA2), ReplyCode.HA_INSUFFICIENT_RESOURCES)
    # Renewing the existing binding is still possible when full.
    assert reply_of(ha.handle(udp(request(now=1, hoa=HOA)), 1.0)).code == 0


def test_denial_keeps_existing_binding() -> None:
    ha = make_ha(reverse_tunnel=False)
    ha.handle(udp(request(now=0)), 0.0)
    actions = ha.handle(udp(request(now=1, coa=COA2, flags=F.T)), 1.0)
    assert reply_of(actions).code == ReplyCode.HA_REVERSE_TUNNEL_UNAVAILABLE
    assert [b.care_of_address for b in ha.bindings.bindings_of(HOA)] == [COA]
    assert ha.next_deadline() == 600.0


def test_pipeline_order_is_rfc_order() -> None:
    assert HA_PIPELINE.names == (
        "check_well_formed",
        "check_mn_ha_auth",
        "check_fa_ha_auth",
        "check_identification",
        "grant_lifetime",
        "check_home_agent_address",
        "check_reverse_tunnel",
        "check_encapsulation",
        "assign_home_address",
        "check_simultaneous_bindings",
        "check_administrative",
    )
    # Authentication comes before the home agent address: a forged discovery request
    # gets 131, not this agent's address.
    bad = SecurityAssociation(spi=MN_SA.spi, key=b"z" * 16)
    deny(make_ha(), request(ha=NET.broadcast_address, mn_sa=bad), ReplyCode.HA_MN_FAILED_AUTH)


# ----------------------------------------------------------------------------------------
# Discards and robustness
# ----------------------------------------------------------------------------------------


def test_silent_discards_are_counted() -> None:
    ha = make_ha()
    assert sends(ha.handle(udp(b"\x01\x00"), 0.0)) == []
    assert ha.counters.discarded["decode_error"] == 1
    # RFC 5944 §1.9: unknown non-skippable extension type (100) -> silent discard.
    raw = RegistrationRequest(F(0), 600, HOA, HA, COA, 1).encode() + bytes([100, 0])
    assert sends(ha.handle(udp(raw), 0.0)) == []
    assert ha.counters.discarded["unknown_extension"] == 1
    rep = RegistrationReply(0, 0, HOA, HA, 1).encode()
    assert sends(ha.handle(udp(rep), 0.0)) == []
    assert ha.counters.discarded["unexpected_message"] == 1
    assert ha.handle(IcmpReceived(b"", FA, HA, "wan0", ttl=1), 0.0) == []
    assert ha.handle(LinkUp("wan0"), 0.0) == [] and ha.handle(LinkDown("wan0"), 0.0) == []


def test_skippable_unknown_extension_is_ignored() -> None:
    ha = make_ha()
    payload = request(extra=(RawExtension(200, b"abc"),))
    assert reply_of(ha.handle(udp(payload), 0.0)).code == 0


def test_reboot_starts_with_an_empty_table() -> None:
    ha = make_ha()
    ha.handle(udp(request(now=0)), 0.0)
    rebooted = make_ha()
    assert len(rebooted.bindings) == 0 and rebooted.next_deadline() is None
    assert reply_of(rebooted.handle(udp(request(now=10)), 10.0)).code == 0


_AWAY = BindingState.AWAY


def test_binding_transition_table_is_enforced() -> None:
    with pytest.raises(ProtocolError):
        BINDING_TRANSITIONS.check(BindingState.HOME, BindingInput.EXPIRE)
    with pytest.raises(ProtocolError):
        BINDING_TRANSITIONS.confirm(
            BindingState.AWAY, BindingInput.DEREGISTER_ALL, BindingState.AWAY
        )
    BINDING_TRANSITIONS.confirm(BindingState.HOME, BindingInput.REGISTER, BindingState.AWAY)


def test_config_validation_names_the_key() -> None:
    with pytest.raises(ValueError, match="max_lifetime"):
        HomeAgentConfig(address=HA, home_network=NET, max_lifetime=0)
    with pytest.raises(ValueError, match="home_network"):
        HomeAgentConfig(address=A("10.1.0.1"), home_network=NET)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120))
def test_random_bytes_never_raise(data: bytes) -> None:
    ha = make_ha()
    actions = ha.handle(udp(data), 0.0)
    assert isinstance(actions, list)
    assert ha.counters.total_discarded + ha.counters.total_denied + ha.counters.total_accepted == 1


def _valid_payloads() -> Iterator[bytes]:
    yield request()
    yield request(flags=F.S | F.T | F.G, lifetime=0)
    yield request(fa_sa=FA_SA)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(list(_valid_payloads())),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    st.integers(0, 200),
)
def test_mutated_requests_never_raise(base: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(base)
    for pos, val in edits:
        if pos < len(data):
            data[pos] = val
    ha = make_ha(sas(fa=True))
    actions = ha.handle(udp(bytes(data[: len(data) - cut % 8])), 0.0)
    assert isinstance(actions, list)
    assert ha.counters.discarded["internal_error"] == 0
    assert ha.counters.discarded["protocol_error"] == 0


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["reg", "reg_s", "dereg_one", "dereg_all", "timer"]),
            st.sampled_from([COA, COA2, COA3]),
            st.integers(1, 120),
        ),
        max_size=25,
    )
)
def test_random_sequences_keep_table_and_deadline_consistent(
    steps: list[tuple[str, IPv4Address, int]],
) -> None:
    ha = make_ha(max_simultaneous_bindings=2)
    now = 0.0
    installed: set[IPv4Address] = set()  # what the executor would have, from the actions
    proxy = False
    for kind, coa, dt in steps:
        now += dt
        if kind == "timer":
            actions = ha.handle_timer(now)
        else:
            flags = F.S if kind in ("reg_s", "dereg_one") else F(0)
            lifetime = 0 if kind.startswith("dereg") else 90
            target = HOA if kind == "dereg_all" else coa
            actions = ha.handle(
                udp(request(now=now, coa=target, lifetime=lifetime, flags=flags)), now
            )
        for a in actions:
            if isinstance(a, InstallBinding):
                installed.add(a.care_of_address)
            elif isinstance(a, RemoveBinding):
                if a.care_of_address is None:
                    installed.clear()
                else:
                    installed.discard(a.care_of_address)
            elif isinstance(a, ProxyArp):
                assert a.enable != proxy  # never enabled twice or disabled when off
                proxy = a.enable
        # The actions replay to exactly the table; proxy ARP is on iff the node is away.
        assert installed == {b.care_of_address for b in ha.bindings.bindings_of(HOA)}
        assert proxy == bool(installed)
        assert ha.counters.discarded["internal_error"] == 0
        assert ha.counters.discarded["protocol_error"] == 0
        bindings = ha.bindings.bindings_of(HOA)
        assert len(bindings) <= 2
        expected = min((b.expires for b in bindings if b.expires is not None), default=None)
        # next_deadline never lies about the earliest live binding
        assert ha.next_deadline() == expected


def test_denial_before_fa_check_still_carries_fa_ha() -> None:
    # 131 is decided before the FA-HA check; the reply goes back through the foreign agent,
    # which needs FA-HA to trust it (RFC 5944 §3.7.3.1) -- else it would report 68.
    ha = make_ha(sas(fa=True))
    wrong = SecurityAssociation(spi=MN_SA.spi, key=b"x" * 16)
    reply = deny(ha, request(mn_sa=wrong, fa_sa=FA_SA), ReplyCode.HA_MN_FAILED_AUTH)
    verify(reply, FA_HA, lambda spi: FA_SA)
    # ...but not when the mobile node itself sent it (co-located care-of address).
    ha2 = make_ha(sas(fa=True))
    colo = request(coa=FA, flags=F.D, mn_sa=wrong)
    reply = reply_of(ha2.handle(udp(colo, src=FA), 0.0), mn_sa=None)
    assert reply.code == ReplyCode.HA_MN_FAILED_AUTH
    assert not any(isinstance(e, ForeignHomeAuthExtension) for e in reply.extensions)


def test_home_agent_advertises_only_when_configured() -> None:
    from mip4.wire.icmp import AgentAdvertisement, AgentFlags, AgentSolicitation, decode_icmp

    quiet = make_ha()
    assert quiet.next_deadline() is None and quiet.handle_timer(100.0) == []
    sol = AgentSolicitation().encode()
    assert quiet.handle(IcmpReceived(sol, HOA, A("224.0.0.2"), "home0", ttl=1), 0.0) == []

    ha = make_ha(advertisement_interval=2.0, reverse_tunnel=False)
    assert ha.next_deadline() == 0.0
    (send,) = of(ha.handle_timer(0.0), SendIcmp)
    adv = decode_icmp(send.payload)
    assert isinstance(adv, AgentAdvertisement) and adv.mobility is not None
    assert adv.mobility.flags == AgentFlags.H | AgentFlags.M | AgentFlags.G
    assert adv.mobility.sequence == 0 and adv.mobility.care_of_addresses == ()
    assert adv.lifetime == 6 and adv.prefix_lengths == (24,)
    assert (send.dst, send.interface, send.src, send.ttl) == (A("224.0.0.1"), "home0", HA, 1)
    assert ha.next_deadline() == 2.0
    # A solicitation on the home link is answered at once, unicast at the link layer.
    mac = b"\x02\x00\x00\x00\x00\x10"
    (ans,) = of(
        ha.handle(IcmpReceived(sol, HOA, A("224.0.0.2"), "home0", mac, ttl=1), 1.0), SendIcmp
    )
    reply = decode_icmp(ans.payload)
    assert isinstance(reply, AgentAdvertisement) and reply.mobility is not None
    assert (ans.dst, ans.link_dst, reply.mobility.sequence) == (HOA, mac, 1)
    # Not on the home link: ignored.
    assert ha.handle(IcmpReceived(sol, HOA, A("224.0.0.2"), "wan0", ttl=1), 1.0) == []


def test_config_from_toml() -> None:
    import tomllib

    from mip4.core.registration import ConfigError

    text = """
    address = "10.0.0.1"
    home_network = "10.0.0.0/24"
    interface = "home0"
    home_addresses = ["10.0.0.10", "10.0.0.11"]
    max_lifetime = 600
    simultaneous_bindings = false
    advertisement_interval = 1.5
    """
    cfg = HomeAgentConfig.from_mapping(tomllib.loads(text), "ha.toml")
    assert cfg.address == HA and cfg.home_network == NET
    assert cfg.home_addresses == frozenset({HOA, HOA2})
    assert cfg.max_lifetime == 600 and not cfg.simultaneous_bindings
    assert cfg.advertisement_interval == 1.5
    with pytest.raises(ConfigError, match=r"ha\.toml: home_network"):
        HomeAgentConfig.from_mapping(
            {"address": "10.0.0.1", "home_network": "10.0.0.1/33"}, "ha.toml"
        )
    with pytest.raises(ConfigError, match=r"ha\.toml: .*max_lifetime 0"):
        HomeAgentConfig.from_mapping(
            {"address": "10.0.0.1", "home_network": "10.0.0.0/24", "max_lifetime": 0}, "ha.toml"
        )
    with pytest.raises(ConfigError, match=r"ha\.toml: reverse_tunnel: expected true or false"):
        HomeAgentConfig.from_mapping(
            {"address": "10.0.0.1", "home_network": "10.0.0.0/24", "reverse_tunnel": 1}, "ha.toml"
        )
    with pytest.raises(ConfigError, match=r"ha\.toml: .*address"):
        HomeAgentConfig.from_mapping({"home_network": "10.0.0.0/24"}, "ha.toml")


def test_simultaneous_bindings_expiring_together_turn_proxy_arp_off_once() -> None:
    ha = make_ha()
    ha.handle(udp(request(now=0, coa=COA, lifetime=60, flags=F.S)), 0.0)
    ha.handle(udp(request(now=1, coa=COA2, lifetime=59, flags=F.S)), 1.0)
    assert ha.next_deadline() == 60.0
    actions = ha.handle_timer(60.0)
    assert {a.care_of_address for a in of(actions, RemoveBinding)} == {COA, COA2}
    assert of(actions, ProxyArp) == [ProxyArp("home0", HOA, False)]


def test_expiry_reannounces_a_link_address_learnt_on_the_home_link() -> None:
    ha = make_ha()
    mac = b"\x02\x00\x00\x00\x00\x10"
    # The node deregistered once from home (authenticated), so its address is known...
    home = udp(request(now=0, lifetime=0, coa=HOA), src=HOA, interface="home0", link_src=mac)
    assert reply_of(ha.handle(home, 0.0)).code == 0
    ha.handle(udp(request(now=10, lifetime=30)), 10.0)
    actions = ha.handle_timer(40.0)
    assert of(actions, ProxyArp) == [ProxyArp("home0", HOA, False)]
    assert of(actions, GratuitousArp) == [GratuitousArp("home0", HOA, mac, 3)]
    # ...an unauthenticated request from the home link teaches nothing.
    other = make_ha()
    forged = udp(
        request(
            now=0, lifetime=0, coa=HOA2, hoa=HOA2, mn_sa=SecurityAssociation(0x1000, b"z" * 16)
        ),
        src=HOA2,
        interface="home0",
        link_src=b"\x66" * 6,
    )
    assert reply_of(other.handle(forged, 0.0), mn_sa=None).code == ReplyCode.HA_MN_FAILED_AUTH
    other.handle(udp(request(now=1, hoa=HOA2, lifetime=30)), 1.0)
    assert of(other.handle_timer(31.0), GratuitousArp) == []
