"""Builds the bundled sample capture, ``mip4/data/sample.pcap``, with our own encoder.

Run ``python -m mip4.tools.sample [PATH]`` to regenerate it (the default path is the bundled
file). The capture tells one registration through a foreign agent, plus the frames a
decoder must survive:

====  =================================================================================
 1    Agent Solicitation, mobile node -> 224.0.0.2
 2    Agent Advertisement from the FA: mobility extension, prefix lengths, challenge
 3    Registration Request MN -> FA: NAI, MN-FA challenge, MN-HA, MN-FA authentication
 4    the same request relayed FA -> HA: MN-FA stripped, Revocation Support and FA-HA
      appended
 5    Registration Reply HA -> FA: accepted; MN-HA and FA-HA authentication
 6    the reply relayed FA -> MN: FA-HA stripped, MN-FA appended
 7    a tampered copy of frame 3 (lifetime changed in flight): authenticators fail
 8    a request cut inside its MN-FA extension: malformed, reported, decoding goes on
 9    a request carrying unknown non-skippable extension 99: would be discarded
10    Registration Reply, HA denies: identification mismatch (133)
11    Registration Revocation HA -> FA (RFC 3543), FA-HA authentication
12    Revocation Acknowledgement FA -> HA, FA-HA authentication
====  =================================================================================

The keys are :data:`SAMPLE_KEYS` (``SPI=HEX`` strings, as for ``mip4 decode --key``).
"""

from __future__ import annotations

import calendar
import sys
from importlib import resources
from ipaddress import IPv4Address
from pathlib import Path

from mip4.security.auth import append_extensions, sign, strip_auth, strip_for_relay
from mip4.security.sa import SecurityAssociation
from mip4.wire.ext_mobility import RevocationSupportExtension, RevocationSupportFlags
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.icmp import (
    AgentAdvertisement,
    AgentFlags,
    AgentSolicitation,
    ChallengeExtension,
    MobilityAgentAdvertisementExtension,
    PrefixLengthsExtension,
    RouterAddress,
)
from mip4.wire.messages import (
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    RegistrationRevocation,
    RevocationAck,
    RevocationAckFlags,
    RevocationFlags,
)

from . import pcap

MN_HA_SPI, MN_FA_SPI, FA_HA_SPI = 256, 257, 258
MN_HA_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
MN_FA_KEY = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
FA_HA_KEY = bytes.fromhex("6d6970342d66612d68612d6b65792121")
SAMPLE_KEYS: tuple[str, ...] = (
    f"{MN_HA_SPI}={MN_HA_KEY.hex()}",
    f"{MN_FA_SPI}={MN_FA_KEY.hex()}",
    f"{FA_HA_SPI}={FA_HA_KEY.hex()}",
)

MN = IPv4Address("10.1.0.10")  # home address
HA = IPv4Address("10.1.0.1")
FA = IPv4Address("10.2.0.1")  # also the care-of address
T0 = float(calendar.timegm((2026, 11, 26, 12, 0, 0)))  # 2026-11-26T12:00:00Z
NTP_OFFSET = 2_208_988_800
IDENT = ((int(T0) + NTP_OFFSET) << 32) | 0x5EED0001
CHALLENGE = bytes.fromhex("8a1f3c5e7092b4d6f8190a2b3c4d5e6f")


def sample_packets() -> list[tuple[float, bytes]]:
    """The IPv4 packets of the sample capture with their timestamps."""
    mn_ha = SecurityAssociation(MN_HA_SPI, MN_HA_KEY)
    mn_fa = SecurityAssociation(MN_FA_SPI, MN_FA_KEY)
    fa_ha = SecurityAssociation(FA_HA_SPI, FA_HA_KEY)
    pkts: list[tuple[float, bytes]] = []

    def add(dt: float, pkt: bytes) -> None:
        pkts.append((T0 + dt, pkt))

    add(0.0, pcap.ipv4_icmp(MN, "224.0.0.2", AgentSolicitation().encode()))
    adv = AgentAdvertisement(
        code=0,
        lifetime=9000,
        router_addresses=(RouterAddress(FA, 0),),
        extensions=(
            MobilityAgentAdvertisementExtension(
                sequence=1,
                registration_lifetime=1800,
                flags=AgentFlags.R | AgentFlags.F | AgentFlags.G | AgentFlags.T,
                care_of_addresses=(FA,),
            ),
            PrefixLengthsExtension((24,)),
            ChallengeExtension(CHALLENGE),
        ),
    )
    add(0.012, pcap.ipv4_icmp(FA, "224.0.0.1", adv.encode(), fix_checksum=False))

    rrq = RegistrationRequest(
        flags=RegistrationFlags.T,
        lifetime=1800,
        home_address=MN,
        home_agent=HA,
        care_of_address=FA,
        identification=IDENT,
        extensions=(
            MobileNodeNAIExtension(b"mn1@example.net"),
            MobileForeignChallengeExtension(CHALLENGE),
        ),
    )
    rrq = sign(sign(rrq, MobileHomeAuthExtension, mn_ha), MobileForeignAuthExtension, mn_fa)
    add(0.100, pcap.ipv4_udp(MN, FA, rrq.raw, sport=49152))
    relayed = append_extensions(
        strip_for_relay(rrq), RevocationSupportExtension(0x0001F000, RevocationSupportFlags.I)
    )
    relayed = sign(relayed, ForeignHomeAuthExtension, fa_ha)
    add(0.101, pcap.ipv4_udp(FA, HA, relayed.raw, sport=434))

    rrp = RegistrationReply(
        code=0,
        lifetime=1800,
        home_address=MN,
        home_agent=HA,
        identification=IDENT,
    )
    rrp = sign(sign(rrp, MobileHomeAuthExtension, mn_ha), ForeignHomeAuthExtension, fa_ha)
    add(0.110, pcap.ipv4_udp(HA, FA, rrp.raw, sport=434))
    to_mn = sign(strip_auth(rrp, ForeignHomeAuthExtension.TYPE), MobileForeignAuthExtension, mn_fa)
    add(0.111, pcap.ipv4_udp(FA, MN, to_mn.raw, sport=434, dport=49152))

    tampered = bytearray(rrq.raw)
    tampered[2:4] = (0xFFFF).to_bytes(2, "big")  # lifetime: 1800 -> infinite
    add(0.200, pcap.ipv4_udp(MN, FA, bytes(tampered), sport=49152))
    add(0.300, pcap.ipv4_udp(MN, FA, rrq.raw[:-6], sport=49152))
    unknown = rrq.raw[:24] + bytes((99, 2, 0xAB, 0xCD)) + rrq.raw[24:]
    add(0.400, pcap.ipv4_udp(MN, FA, unknown, sport=49152))

    denied = RegistrationReply(
        code=133,
        lifetime=0,
        home_address=MN,
        home_agent=HA,
        identification=((int(T0) + 3 + NTP_OFFSET) << 32) | (IDENT & 0xFFFFFFFF),
    )
    denied = sign(denied, MobileHomeAuthExtension, mn_ha)
    add(0.500, pcap.ipv4_udp(HA, FA, denied.raw, sport=434))

    revocation = RegistrationRevocation(
        flags=RevocationFlags.A | RevocationFlags.I,
        home_address=MN,
        home_domain_address=HA,
        foreign_domain_address=FA,
        revocation_id=0x0001F001,
    )
    add(0.600, pcap.ipv4_udp(HA, FA, sign(revocation, ForeignHomeAuthExtension, fa_ha).raw))
    ack = RevocationAck(flags=RevocationAckFlags.I, home_address=MN, revocation_id=0x0001F001)
    add(0.601, pcap.ipv4_udp(FA, HA, sign(ack, ForeignHomeAuthExtension, fa_ha).raw))
    return pkts


def sample_path() -> Path:
    """The bundled capture (inside the installed package)."""
    return Path(str(resources.files("mip4") / "data" / "sample.pcap"))


def write_sample(path: Path) -> None:
    with path.open("wb") as f:
        pcap.write_pcap(f, sample_packets())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else sample_path()
    write_sample(path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
