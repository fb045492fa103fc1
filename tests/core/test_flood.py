"""A flood of forged Registration Requests must not starve valid ones (issue 9 item 5, the
engines' side): each agent rejects a forgery by its cheapest check -- authentication --
before it allocates anything (replay state, a binding, a pending entry) or looks anything
up that would, and the work per forgery is bounded by a couple of authenticator
computations, counted here."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

import pytest

from mip4.core.actions import InstallBinding, InstallVisitor, ProxyArp, SendUdp
from mip4.core.events import UdpReceived
from mip4.core.foreign_agent import ForeignAgent, ForeignAgentConfig, VisitedLink, VisitorState
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.auth import sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    MobileForeignAuthExtension,
    MobileHomeAuthExtension,
)
from mip4.wire.messages import NO_FLAGS, RegistrationReply, RegistrationRequest

A = IPv4Address
HA, HOA, FA_ADDR = A("10.0.0.1"), A("10.0.0.10"), A("10.1.0.1")
NET = IPv4Network("10.0.0.0/24")
UNIX0 = 1_700_000_000.0
MN_HA_SA = SecurityAssociation(spi=0x1000, key=b"k" * 16)
MN_FA_SA = SecurityAssociation(spi=0x3000, key=b"m" * 16)
FA_HA_SA = SecurityAssociation(spi=0x2000, key=b"f" * 16)
FORGED_KEY = b"x" * 16
FLOOD = 2000
MAC = b"\x02\x00\x00\x00\x00\x10"


@pytest.fixture
def macs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts authenticator computations (verifying and signing alike)."""
    count = [0]
    real = SecurityAssociation.authenticator

    def counted(self: SecurityAssociation, data: bytes) -> bytes:
        count[0] += 1
        return real(self, data)

    monkeypatch.setattr(SecurityAssociation, "authenticator", counted)
    yield count


def _request(
    ident: int, *, hoa: IPv4Address = HOA, mn_ha_key: bytes = MN_HA_SA.key, mn_fa: bytes | None
) -> bytes:
    req = RegistrationRequest(NO_FLAGS, 600, hoa, HA, FA_ADDR, ident)
    req = sign(req, MobileHomeAuthExtension, SecurityAssociation(MN_HA_SA.spi, mn_ha_key))
    if mn_fa is not None:
        req = sign(req, MobileForeignAuthExtension, SecurityAssociation(MN_FA_SA.spi, mn_fa))
    return req.raw or req.encode()


def test_home_agent_rejects_forgeries_before_any_state_and_serves_the_valid_one(
    macs: list[int],
) -> None:
    sas = SecurityAssociations()
    sas.add(HOA, MN_HA_SA)
    ha = HomeAgent(HomeAgentConfig(address=HA, home_network=NET, interface="home0"), sas, UNIX0)
    src = A("192.0.2.7")  # a co-located-looking sender: no foreign agent to sign for

    def forged(i: int, hoa: IPv4Address = HOA) -> UdpReceived:
        ident = ntp_timestamp(UNIX0, low=i)
        payload = _request(ident, hoa=hoa, mn_ha_key=FORGED_KEY, mn_fa=None)
        return UdpReceived(payload, src, HA, 4000 + i % 1000, 434, "wan0", ttl=60)

    flood = [forged(i) for i in range(FLOOD)]  # built (and signed) before counting
    before = macs[0]
    for i, ev in enumerate(flood):
        actions = ha.handle(ev, 0.001 * i)
        assert not any(isinstance(a, InstallBinding | ProxyArp) for a in actions)
    # one verification, and the 131 reply signed for the mobile node (RFC 5944 §3.8.3.1)
    assert macs[0] - before == 2 * FLOOD
    assert ha.counters.denied[ReplyCode.HA_MN_FAILED_AUTH] == FLOOD
    assert ha.replay_state == {} and len(ha.bindings) == 0  # nothing kept for a forgery
    # Forgeries for home addresses with no security association cost no MAC at all.
    flood = [forged(i, A("10.0.0.200")) for i in range(FLOOD)]
    before = macs[0]
    for ev in flood:
        ha.handle(ev, 2.0)
    assert macs[0] == before and ha.replay_state == {}
    # The valid request right behind the flood is served.
    valid = _request(ntp_timestamp(UNIX0 + 3.0, low=1), mn_fa=None)
    actions = ha.handle(UdpReceived(valid, src, HA, 4321, 434, "wan0", ttl=60), 3.0)
    (send,) = [a for a in actions if isinstance(a, SendUdp)]
    assert RegistrationReply.decode(send.payload).code == ReplyCode.ACCEPTED
    assert len(ha.bindings) == 1 and list(ha.replay_state) == [HOA]


def test_foreign_agent_sharing_an_sa_keeps_the_valid_pending_request(macs: list[int]) -> None:
    """With an MN-FA security association, forgeries (no MN-FA, or a wrong one) are denied
    with 67 before they could replace the valid pending request (RFC 5944 §3.7.2.1), so
    the home agent's reply to the valid one still reaches the mobile node."""
    sas = SecurityAssociations()
    sas.add(HOA, MN_FA_SA)
    sas.add(HA, FA_HA_SA)
    link = VisitedLink("vis0", FA_ADDR, 24)
    fa = ForeignAgent(ForeignAgentConfig(links=(link,), advertise=False), sas)

    def from_mn(payload: bytes) -> UdpReceived:
        return UdpReceived(payload, HOA, FA_ADDR, 5555, 434, "vis0", MAC, ttl=255)

    ident = ntp_timestamp(UNIX0, low=7)
    relayed = [a for a in fa.handle(from_mn(_request(ident, mn_fa=MN_FA_SA.key)), 0.0)]
    assert [a.dst for a in relayed if isinstance(a, SendUdp)] == [HA]
    flood = [
        from_mn(_request(ident + 1 + i, mn_fa=None if i % 2 else FORGED_KEY)) for i in range(FLOOD)
    ]
    before = macs[0]
    for ev in flood:
        actions = fa.handle(ev, 0.1)
        assert all(a.dst != HA for a in actions if isinstance(a, SendUdp))  # never relayed
    # a verification when MN-FA is present, and the 67 reply signed when its SPI is known
    assert macs[0] - before <= 2 * FLOOD
    assert fa.counters.denied[ReplyCode.FA_MN_FAILED_AUTH] == FLOOD
    (pending,) = list(fa.pending)
    assert pending.identification == ident  # the valid request is still the pending one
    reply = RegistrationReply(0, 600, HOA, HA, ident)
    reply = sign(sign(reply, MobileHomeAuthExtension, MN_HA_SA), ForeignHomeAuthExtension, FA_HA_SA)
    actions = fa.handle(UdpReceived(reply.raw, HA, FA_ADDR, 434, 434, "up0", ttl=60), 0.2)
    (to_mn,) = [a for a in actions if isinstance(a, SendUdp)]
    assert RegistrationReply.decode(to_mn.payload).code == 0 and to_mn.dst == HOA
    assert len([a for a in actions if isinstance(a, InstallVisitor)]) == 1
    assert fa.state_of(HOA) is VisitorState.REGISTERED
