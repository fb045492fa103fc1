"""An in-memory network for the sans-IO engines (aioquic ``tests/test_connection.py`` style).

Part 1 (builders): hand-made agent advertisements and home-agent replies for unit tests.
Part 2 (network): links, a virtual clock, delivery of actions between engines.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from mip4.security.auth import sign
from mip4.security.sa import SecurityAssociation
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.icmp import (
    AgentAdvertisement,
    AgentFlags,
    ChallengeExtension,
    MobilityAgentAdvertisementExtension,
    PrefixLengthsExtension,
    RouterAddress,
)
from mip4.wire.messages import RegistrationReply, RegistrationRequest

A = IPv4Address

# ----------------------------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------------------------


def advertisement(
    address: IPv4Address,
    *,
    sequence: int = 0,
    lifetime: int = 30,
    registration_lifetime: int = 600,
    flags: AgentFlags = AgentFlags.F,
    care_of_addresses: tuple[IPv4Address, ...] | None = None,
    prefix_len: int | None = None,
    challenge: bytes | None = None,
) -> bytes:
    """An encoded agent advertisement from ``address`` (RFC 5944 §2.1)."""
    coas = (address,) if care_of_addresses is None else care_of_addresses
    exts: list[object] = [
        MobilityAgentAdvertisementExtension(sequence, registration_lifetime, flags, coas)
    ]
    if prefix_len is not None:
        exts.append(PrefixLengthsExtension((prefix_len,)))
    if challenge is not None:
        exts.append(ChallengeExtension(challenge))
    adv = AgentAdvertisement(
        code=0,
        lifetime=lifetime,
        router_addresses=(RouterAddress(address, 0),),
        extensions=tuple(exts),  # type: ignore[arg-type]
    )
    return adv.encode()


def reply_for(
    request: bytes | RegistrationRequest,
    code: int = 0,
    *,
    sa: SecurityAssociation | None,
    lifetime: int | None = None,
    identification: int | None = None,
    home_agent: IPv4Address | None = None,
) -> bytes:
    """A Registration Reply answering ``request`` as a home agent would (signed with
    ``sa``; ``sa=None``: unsigned, as a foreign agent's denial)."""
    req = request
    if not isinstance(req, RegistrationRequest):
        req = RegistrationRequest.decode(req)
    rep = RegistrationReply(
        code=code,
        lifetime=req.lifetime if lifetime is None else lifetime,
        home_address=req.home_address,
        home_agent=req.home_agent if home_agent is None else home_agent,
        identification=req.identification if identification is None else identification,
    )
    if sa is None:
        return rep.encode()
    return sign(rep, MobileHomeAuthExtension, sa).raw
