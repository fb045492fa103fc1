"""The messages the oracle tests encode with our codec and hand to tshark and scapy.

Each :class:`Case` is one frame of the oracle capture: a UDP-434 message or an ICMP agent
discovery message, built with our classes (and signed with our security code where it
carries an authenticator). Field values are chosen so that no two fields share a value
and every flag word mixes set and clear bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from mip4.security.auth import sign, sign_mn_aaa
from mip4.security.sa import Algorithm, SecurityAssociation
from mip4.tools import pcap
from mip4.wire import ext_keys, ext_mobility, ext_tunnel, ext_vendor
from mip4.wire import messages as m
from mip4.wire.extensions import (
    Extension,
    ForeignHomeAuthExtension,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RawExtension,
)
from mip4.wire.icmp import (
    PAD,
    AgentAdvertisement,
    AgentFlags,
    AgentSolicitation,
    ChallengeExtension,
    MobilityAgentAdvertisementExtension,
    PrefixLengthsExtension,
    RouterAddress,
)

HOA = IPv4Address("10.20.30.40")
HA = IPv4Address("10.20.30.1")
COA = IPv4Address("192.0.2.77")
FA = IPv4Address("192.0.2.1")
IDENT = 0xEEB29DC0_5EED0A0B
SA_MN_HA = SecurityAssociation(0x1234, bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0"))
SA_MN_FA = SecurityAssociation(0x10000, b"mn-fa secret key", Algorithm.KEYED_MD5)
SA_FA_HA = SecurityAssociation(0xFFFFFF01, b"fa-ha", Algorithm.HMAC_MD5)


@dataclass(frozen=True)
class Case:
    id: str
    protocol: str  # "udp" or "icmp"
    build: Callable[[], bytes]
    #: what tshark decodes differently from the RFC for this case (see test_tshark.py)
    quirk: str = ""


def rrq(*extensions: Extension, flags: int = 0x92, lifetime: int = 0x1C20) -> m.RegistrationRequest:
    return m.RegistrationRequest(
        flags=m.RegistrationFlags(flags),
        lifetime=lifetime,
        home_address=HOA,
        home_agent=HA,
        care_of_address=COA,
        identification=IDENT,
        extensions=extensions,
    )


def signed_rrq(*extensions: Extension) -> bytes:
    return sign(rrq(*extensions), MobileHomeAuthExtension, SA_MN_HA).raw


def _rrq_all_auth() -> bytes:
    msg = rrq(MobileNodeNAIExtension(b"alice@visited.example"))
    msg = sign(msg, MobileHomeAuthExtension, SA_MN_HA)
    msg = sign(msg, MobileForeignAuthExtension, SA_MN_FA)
    return sign(msg, ForeignHomeAuthExtension, SA_FA_HA).raw


def _rrq_mn_aaa() -> bytes:
    msg = rrq(
        MobileNodeNAIExtension(b"bob@aaa.example"),
        MobileForeignChallengeExtension(bytes(range(0xA0, 0xB0))),
    )
    return sign_mn_aaa(msg, 2, b"chap-secret").raw


def _rrp(code: int) -> Callable[[], bytes]:
    def build() -> bytes:
        msg = m.RegistrationReply(
            code=code,
            lifetime=0x0E10 if code < 2 else 0,
            home_address=HOA,
            home_agent=HA,
            identification=IDENT + 1,
        )
        return sign(
            sign(msg, MobileHomeAuthExtension, SA_MN_HA), ForeignHomeAuthExtension, SA_FA_HA
        ).raw

    return build


def _ext(*exts: Extension) -> Callable[[], bytes]:
    return lambda: signed_rrq(*exts)


def _revocation() -> bytes:
    msg = m.RegistrationRevocation(
        flags=m.RevocationFlags.A | m.RevocationFlags.I,
        home_address=HOA,
        home_domain_address=HA,
        foreign_domain_address=FA,
        revocation_id=0x51525354,
    )
    return sign(msg, ForeignHomeAuthExtension, SA_FA_HA).raw


def _revocation_ack() -> bytes:
    msg = m.RevocationAck(flags=m.RevocationAckFlags.I, home_address=HOA, revocation_id=0x51525354)
    return sign(msg, ForeignHomeAuthExtension, SA_FA_HA).raw


def _tunnel_data() -> bytes:
    inner = pcap.ipv4_udp(HOA, "198.51.100.20", b"inner payload", sport=7, dport=9)
    return m.TunnelData(next_header=4, payload=inner, reserved=0).encode()


def _advertisement(with_pad: bool = False) -> Callable[[], bytes]:
    def build() -> bytes:
        exts: tuple[Extension, ...] = (
            MobilityAgentAdvertisementExtension(
                sequence=0xBEEF,
                registration_lifetime=0x0384,
                flags=AgentFlags.R | AgentFlags.F | AgentFlags.M | AgentFlags.T | AgentFlags.X,
                care_of_addresses=(COA, IPv4Address("198.51.100.9")),
            ),
            PrefixLengthsExtension((24, 28)),
            ChallengeExtension(bytes.fromhex("00112233445566778899aabbccddeeff")),
        )
        if with_pad:
            exts = (*exts, PAD)
        return AgentAdvertisement(
            code=16 if with_pad else 0,
            lifetime=1800,
            router_addresses=(RouterAddress(FA, 7), RouterAddress(COA, -0x80000000)),
            extensions=exts,
        ).encode()

    return build


def _advertisement_flags(flags: AgentFlags) -> Callable[[], bytes]:
    return lambda: AgentAdvertisement(
        code=0,
        lifetime=600,
        router_addresses=(RouterAddress(FA, 0),),
        extensions=(MobilityAgentAdvertisementExtension(1, 600, flags, (FA,)),),
    ).encode()


def _others() -> tuple[m.Message, ...]:
    """One message of each type tshark names but does not dissect (16--23, 255)."""
    flags = m.RegistrationFlags.T
    return (
        m.HandoffRequest(0x02, 30, HOA, HA, COA, IDENT),
        m.HandoffReply(0, 30, HOA, HA, IDENT),
        m.RegionalRegistrationRequest(flags, 30, HOA, FA, COA, IDENT),
        m.RegionalRegistrationReply(0, 30, HOA, HA, IDENT),
        m.FastBindingUpdate(flags, 30, HOA, HA, COA, IDENT),
        m.FastBindingAck(0, 30, HOA, HA, IDENT),
        m.GenericNotification(1, 0, HOA, HA, COA, IDENT),
        m.GenericNotificationAck(1, 0, 0, HOA, HA, COA, IDENT),
        m.ExperimentalMessage(b"experiment"),
    )


def _other(i: int) -> Callable[[], bytes]:
    return lambda: _others()[i].encode()


CASES: tuple[Case, ...] = (
    Case("rrq-plain", "udp", lambda: rrq(flags=0x00, lifetime=0).encode()),
    Case("rrq-all-flags", "udp", lambda: rrq(flags=0xFF, lifetime=0xFFFF).encode()),
    Case("rrq-sbdmg", "udp", lambda: rrq(flags=0xF8).encode()),
    Case("rrq-mn-ha-mn-fa-fa-ha", "udp", _rrq_all_auth),
    Case("rrq-mn-aaa", "udp", _rrq_mn_aaa),
    Case("rrp-accepted", "udp", _rrp(0)),
    Case("rrp-denied-133", "udp", _rrp(133)),
    Case("rrp-denied-fa-70", "udp", _rrp(70)),
    Case("revocation", "udp", _revocation),
    Case("revocation-ack", "udp", _revocation_ack),
    Case("tunnel-data", "udp", _tunnel_data),
    Case("ext-131-nai", "udp", _ext(MobileNodeNAIExtension(b"carol@home.example"))),
    Case(
        "ext-132-challenge", "udp", _ext(MobileForeignChallengeExtension(b"\x01\x02\x03\x04\x05"))
    ),
    Case(
        "ext-38-cvse",
        "udp",
        _ext(
            ext_vendor.CriticalVendorExtension(
                vendor_id=9, vendor_type=0x0102, value=b"\xca\xfe\xba"
            )
        ),
    ),
    Case(
        "ext-37-cvse-old",
        "udp",
        _ext(
            ext_vendor.CriticalVendorExtensionOld(
                vendor_id=9, vendor_type=0x0102, value=b"\xca\xfe"
            )
        ),
        quirk="37",
    ),
    Case(
        "ext-134-nvse",
        "udp",
        _ext(
            ext_vendor.NormalVendorExtension(vendor_id=0x0001F00D, vendor_type=0x0A0B, value=b"xyz")
        ),
    ),
    Case(
        "ext-133-nvse-old",
        "udp",
        _ext(
            ext_vendor.NormalVendorExtensionOld(vendor_id=0x0001F00D, vendor_type=0x0A0C, value=b"")
        ),
    ),
    Case(
        "ext-137-revocation-support",
        "udp",
        _ext(
            ext_mobility.RevocationSupportExtension(
                0x61626364, ext_mobility.RevocationSupportFlags.I
            )
        ),
    ),
    Case(
        "ext-137-revocation-support-no-i",
        "udp",
        _ext(ext_mobility.RevocationSupportExtension(0x01020304, 0)),
    ),
    Case(
        "ext-139-dynamic-ha",
        "udp",
        _ext(ext_mobility.DynamicHAExtension(2, IPv4Address("10.20.30.2"))),
    ),
    Case(
        "ext-145-message-string",
        "udp",
        _ext(ext_mobility.MessageStringExtension(1, b"Welcome home")),
    ),
    Case(
        "ext-144-udp-tunnel-request",
        "udp",
        _ext(ext_tunnel.UDPTunnelRequestExtension(ext_tunnel.UDPTunnelRequestFlags.F, 47)),
    ),
    Case(
        "ext-144-udp-tunnel-request-r",
        "udp",
        _ext(ext_tunnel.UDPTunnelRequestExtension(ext_tunnel.UDPTunnelRequestFlags.R, 4)),
    ),
    Case(
        "ext-44-udp-tunnel-reply",
        "udp",
        _ext(ext_tunnel.UDPTunnelReplyExtension(0, ext_tunnel.UDPTunnelReplyFlags.F, 110)),
    ),
    Case(
        "ext-44-udp-tunnel-reply-declined",
        "udp",
        _ext(ext_tunnel.UDPTunnelReplyExtension(64, 0, 0)),
    ),
    Case(
        "ext-148-mobile-network-request",
        "udp",
        _ext(ext_mobility.MobileNetworkRequestExtension(26, IPv4Address("172.16.5.64"))),
    ),
    Case(
        "ext-148-mobile-network-ack",
        "udp",
        _ext(ext_mobility.MobileNetworkAckExtension(1, 2, 26, IPv4Address("172.16.5.64"))),
    ),
    Case(
        "ext-130-encapsulating-delivery", "udp", _ext(ext_tunnel.EncapsulatingDeliveryExtension())
    ),
    Case("ext-255-experimental", "udp", _ext(ext_vendor.ExperimentalExtension(b"\x07\x08"))),
    Case("ext-200-unknown-skippable", "udp", _ext(RawExtension(200, b"\x99\x98\x97"))),
    # PMIPv4 skippable (RFC 5563): no codec class yet, so it travels as a RawExtension
    Case("ext-147-interface-id", "udp", _ext(RawExtension(147, b"\x01eth0"))),
    Case("ext-147-device-id-mac", "udp", _ext(RawExtension(147, b"\x02\x01\x02\0\0\xaa\xbb\xcc"))),
    Case("ext-147-subscriber-imsi", "udp", _ext(RawExtension(147, b"\x03\x01310150123456789"))),
    Case("ext-147-access-technology", "udp", _ext(RawExtension(147, b"\x04\x05"))),
    Case("ext-48-gre-key", "udp", _ext(ext_tunnel.GREKeyExtension(0xC0FFEE01)), quirk="48"),
    Case(
        "ext-40-keygen-request",
        "udp",
        _ext(ext_keys.MNFAKeyGenNonceRequest(1, 0x0101)),
        quirk="40-43",
    ),
    Case(
        "ext-43-keygen-reply",
        "udp",
        _ext(
            ext_keys.MNHAKeyGenNonceReply(
                1, 3600, ext_keys.AAAKeyGenNonce(0x200, 0x300, 3, 2, b"nonce-nonce-nonce")
            )
        ),
        quirk="40-43",
    ),
    Case(
        "ext-kitchen-sink",
        "udp",
        _ext(
            MobileNodeNAIExtension(b"dave@example.net"),
            ext_tunnel.UDPTunnelRequestExtension(0, 55),
            ext_mobility.RevocationSupportExtension(7, 0),
            ext_vendor.NormalVendorExtension(5535, 1, b"v"),
            ext_vendor.CriticalVendorExtension(5535, 2, b"w"),
            ext_mobility.MobileNetworkRequestExtension(24, IPv4Address("172.16.9.0")),
            ext_mobility.DynamicHAExtension(1, IPv4Address("0.0.0.0")),
        ),
    ),
    *(
        Case(f"msg-{type(msg).TYPE}-not-dissected", "udp", _other(i), quirk="no-body")
        for i, msg in enumerate(_others())
    ),
    Case("icmp-solicitation", "icmp", lambda: AgentSolicitation().encode()),
    Case("icmp-advertisement", "icmp", _advertisement()),
    Case("icmp-advertisement-code16-pad", "icmp", _advertisement(with_pad=True)),
    Case(
        "icmp-advertisement-flags-bhgu",
        "icmp",
        _advertisement_flags(AgentFlags.B | AgentFlags.H | AgentFlags.G | AgentFlags.U),
    ),
    Case(
        "icmp-advertisement-flags-r-bit",
        "icmp",
        _advertisement_flags(AgentFlags.r | AgentFlags(0x0021)),
    ),
)
