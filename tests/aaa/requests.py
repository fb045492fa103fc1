"""Registration requests a mobile node with an NAI and an MN-AAA secret sends (as received)."""

from __future__ import annotations

from ipaddress import IPv4Address

from mip4.security.auth import CHAP_SPI, sign_mn_aaa
from mip4.wire import messages as m
from mip4.wire.ext_auth import MobileForeignChallengeExtension, MobileNodeNAIExtension
from mip4.wire.messages import decode_message

COA = IPv4Address("198.51.100.7")
FA = IPv4Address("198.51.100.1")


def mn_aaa_rrq(
    nai: str, secret: bytes, challenge: bytes, *, identification: int = 0x0102030405060708
) -> m.RegistrationRequest:
    """Sign with MN-AAA (SPI 2), encode, and decode again: the request as the FA receives it."""
    msg = m.RegistrationRequest(
        flags=m.RegistrationFlags(0),
        lifetime=1800,
        home_address=IPv4Address(0),
        home_agent=IPv4Address("192.0.2.1"),
        care_of_address=COA,
        identification=identification,
        extensions=(
            MobileNodeNAIExtension(nai.encode()),
            MobileForeignChallengeExtension(challenge),
        ),
    )
    raw = sign_mn_aaa(msg, CHAP_SPI, secret).raw
    decoded = decode_message(raw)
    assert isinstance(decoded, m.RegistrationRequest)
    return decoded
