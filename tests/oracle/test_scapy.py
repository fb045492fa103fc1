"""Oracle: scapy's ``scapy.layers.mobileip`` agrees with our codec on the fixed headers.

Both directions: messages built with our encoder are dissected by scapy (``MobileIP(bytes)``
-> ``MobileIPRRQ`` / ``MobileIPRRP`` / ``MobileIPTunnelData``), and packets built by scapy are
decoded by ours. scapy knows no extensions: what follows the fixed part is its ``Raw`` layer,
which must be exactly our extension area. Scapy's RRQ ``flags`` is the whole flags byte.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mip4.security.auth import sign
from mip4.wire import messages as m
from mip4.wire.extensions import MobileHomeAuthExtension, MobileNodeNAIExtension

from .cases import SA_MN_HA

mobileip = pytest.importorskip("scapy.layers.mobileip")
packet = pytest.importorskip("scapy.packet")

pytestmark = pytest.mark.oracle

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
addr = u32.map(IPv4Address)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(flags=u8, lifetime=u16, hoa=addr, ha=addr, coa=addr, ident=u64, nai=st.binary(max_size=40))
def test_our_request_dissected_by_scapy(
    flags: int, lifetime: int, hoa: IPv4Address, ha: IPv4Address, coa: IPv4Address,
    ident: int, nai: bytes,
) -> None:  # fmt: skip
    req = m.RegistrationRequest(
        flags=m.RegistrationFlags(flags),
        lifetime=lifetime,
        home_address=hoa,
        home_agent=ha,
        care_of_address=coa,
        identification=ident,
        extensions=(MobileNodeNAIExtension(nai),),
    )
    raw = sign(req, MobileHomeAuthExtension, SA_MN_HA).raw
    p = mobileip.MobileIP(raw)
    assert p.type == 1
    rrq = p[mobileip.MobileIPRRQ]
    assert (rrq.flags, rrq.lifetime, rrq.id) == (flags, lifetime, ident)
    assert (rrq.homeaddr, rrq.haaddr, rrq.coaddr) == (str(hoa), str(ha), str(coa))
    assert bytes(rrq.payload) == raw[24:]  # the extension area, untouched
    assert isinstance(rrq.payload, packet.Raw)


@SETTINGS
@given(code=u8, lifetime=u16, hoa=addr, ha=addr, ident=u64)
def test_our_reply_dissected_by_scapy(
    code: int, lifetime: int, hoa: IPv4Address, ha: IPv4Address, ident: int
) -> None:
    rep = m.RegistrationReply(
        code=code, lifetime=lifetime, home_address=hoa, home_agent=ha, identification=ident
    )
    raw = sign(rep, MobileHomeAuthExtension, SA_MN_HA).raw
    p = mobileip.MobileIP(raw)
    assert p.type == 3
    rrp = p[mobileip.MobileIPRRP]
    assert (rrp.code, rrp.lifetime, rrp.id) == (code, lifetime, ident)
    assert (rrp.homeaddr, rrp.haaddr) == (str(hoa), str(ha))
    assert bytes(rrp.payload) == raw[20:]


@SETTINGS
@given(flags=u8, lifetime=u16, hoa=addr, ha=addr, coa=addr, ident=u64, tail=st.binary(max_size=30))
def test_scapy_request_decoded_by_us(
    flags: int, lifetime: int, hoa: IPv4Address, ha: IPv4Address, coa: IPv4Address,
    ident: int, tail: bytes,
) -> None:  # fmt: skip
    ext = MobileNodeNAIExtension(tail).encode()
    pkt = mobileip.MobileIP(type=1) / mobileip.MobileIPRRQ(
        flags=flags, lifetime=lifetime, homeaddr=str(hoa), haaddr=str(ha), coaddr=str(coa), id=ident
    ) / packet.Raw(ext)  # fmt: skip
    msg = m.decode_message(bytes(pkt))
    assert isinstance(msg, m.RegistrationRequest)
    assert (int(msg.flags), msg.lifetime, msg.identification) == (flags, lifetime, ident)
    assert (msg.home_address, msg.home_agent, msg.care_of_address) == (hoa, ha, coa)
    assert msg.extensions == (MobileNodeNAIExtension(tail),)
    assert msg.encode() == bytes(pkt)


@SETTINGS
@given(code=u8, lifetime=u16, hoa=addr, ha=addr, ident=u64)
def test_scapy_reply_decoded_by_us(
    code: int, lifetime: int, hoa: IPv4Address, ha: IPv4Address, ident: int
) -> None:
    pkt = mobileip.MobileIP(type=3) / mobileip.MobileIPRRP(
        code=code, lifetime=lifetime, homeaddr=str(hoa), haaddr=str(ha), id=ident
    )
    msg = m.decode_message(bytes(pkt))
    assert isinstance(msg, m.RegistrationReply)
    assert (msg.code, msg.lifetime, msg.identification) == (code, lifetime, ident)
    assert (msg.home_address, msg.home_agent) == (hoa, ha)
    assert msg.extensions == ()
    assert msg.encode() == bytes(pkt)


def test_scapy_defaults_decoded_by_us() -> None:
    """scapy's own defaults (lifetime 180, all-zero addresses) decode to the same values."""
    msg = m.decode_message(bytes(mobileip.MobileIP() / mobileip.MobileIPRRQ()))
    assert isinstance(msg, m.RegistrationRequest)
    assert (msg.lifetime, msg.home_address, int(msg.flags)) == (180, IPv4Address(0), 0)


@pytest.mark.parametrize("next_header", [4, 47, 55])
def test_tunnel_data_both_ways(next_header: int) -> None:
    inner = bytes(range(40))
    ours = m.TunnelData(next_header=next_header, payload=inner).encode()
    p = mobileip.MobileIP(ours)
    td = p[mobileip.MobileIPTunnelData]
    assert (p.type, td.nexthdr, td.res) == (4, next_header, 0)
    theirs = bytes(
        mobileip.MobileIP(type=4) / mobileip.MobileIPTunnelData(nexthdr=next_header, res=0)
    )
    msg = m.decode_message(theirs + inner)
    assert isinstance(msg, m.TunnelData)
    assert (msg.next_header, msg.reserved, msg.payload) == (next_header, 0, inner)
