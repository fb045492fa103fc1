"""The foreign agent's configuration: its visited links and what it offers there
(RFC 5944 §2.3, §3.7.1; reverse tunnelling RFC 3024; challenges RFC 4721).

Loaded from a TOML table with :meth:`ForeignAgentConfig.from_mapping` (errors name the file
and the key); every field documents its RFC meaning. :meth:`ForeignAgentConfig.advertiser_settings`
and :meth:`ForeignAgentConfig.advertised_links` describe it to the shared
:class:`~mip4.core.advertiser.Advertiser`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from mip4.wire.icmp import AgentFlags
from mip4.wire.messages import INFINITE_LIFETIME

from .actions import MIP_PORT
from .advertiser import ALL_SYSTEMS, AdvertisedLink, AdvertiserSettings, icmp_lifetime
from .registration import ConfigError, config_from_mapping
from .revocation import RevocationSettings, settings_of

__all__ = ["ForeignAgentConfig", "VisitedLink"]


@dataclass(frozen=True)
class VisitedLink:
    """A link on which this agent offers foreign agent service."""

    #: interface name (events' ``interface``)
    interface: str
    #: this agent's address on the link: the advertisement's router address and source
    address: IPv4Address
    #: prefix length of the link (Prefix-Lengths Extension, RFC 5944 §2.1.2)
    prefix_len: int = 24
    #: care-of addresses offered on this link (RFC 5944 §3.7.1: a foreign agent MUST be
    #: configured with a care-of address); empty means ``(address,)``
    care_of_addresses: tuple[IPv4Address, ...] = ()
    #: where periodic advertisements go: 224.0.0.1 or 255.255.255.255 (RFC 1256 §4.1)
    advertisement_destination: IPv4Address = ALL_SYSTEMS

    @property
    def offered(self) -> tuple[IPv4Address, ...]:
        return self.care_of_addresses or (self.address,)


@dataclass(frozen=True)
class ForeignAgentConfig:
    """Foreign agent configuration (RFC 5944 §2.3, §3.7.1)."""

    #: the visited links (at least one)
    links: tuple[VisitedLink, ...]
    #: seconds between unsolicited advertisements; RFC 5944 §2.3.2 asks agents not to
    #: advertise more than about once a second
    advertisement_interval: float = 1.0
    #: ICMP Lifetime of advertisements, seconds; ``None``: 3 x interval (RFC 1256 §4.1)
    advertisement_lifetime: int | None = None
    #: send periodic advertisements at all (solicitations are always answered)
    advertise: bool = True
    #: at most one solicited advertisement per link per this many seconds (0: no limit)
    solicitation_interval: float = 0.0
    #: R flag: registration required even with a co-located care-of address (§2.1.1)
    registration_required: bool = False
    #: H flag: this node is also a home agent on these links
    home_agent: bool = False
    #: ICMP code 16 instead of 0: the agent does not route common traffic (§2.1)
    routes_common_traffic: bool = True
    #: longest Lifetime accepted (advertised as the Registration Lifetime; 69 beyond it)
    max_lifetime: int = 1800
    #: M flag: decapsulates minimal encapsulation (72 otherwise)
    minimal_encapsulation: bool = True
    #: G flag: decapsulates GRE (72 otherwise)
    gre_encapsulation: bool = True
    #: T flag: reverse tunnelling (RFC 3024; 74 otherwise)
    reverse_tunnel: bool = True
    #: reverse tunnelling mandatory (RFC 3024 §3.2; 75 when T is clear)
    reverse_tunnel_required: bool = False
    #: RFC 3024 §3.3 Encapsulating Delivery Style supported (79 otherwise)
    encapsulating_delivery: bool = True
    #: require a valid MN-FA extension in every request (67 otherwise)
    require_mn_fa_auth: bool = False
    #: RFC 4721 challenge length in bytes (0: no challenges); 16 bytes is customary
    challenge_length: int = 0
    #: how many of the most recent advertised challenges a request may answer
    challenge_window: int = 2
    #: RFC 2794: every request must carry the MN-NAI extension (97 otherwise)
    require_nai: bool = False
    #: RFC 2794: relay requests for home address 0.0.0.0 (with an NAI; 96 when False)
    zero_home_address: bool = True
    #: ask the home AAA server (``AaaRequest`` action, ``AaaAnswer`` event) before relaying
    #: a request that carries an MN-AAA extension (RFC 4721 §3.2)
    aaa: bool = False
    #: emit RADIUS accounting records (``AccountingRecord``): Start when a visitor's
    #: registration is accepted, Stop when it ends (RFC 2866)
    accounting: bool = False
    #: seconds between Interim-Update records of each session (``None``: none)
    accounting_interval: float | None = None
    #: seconds a relayed request may stay unanswered before 78 (RFC 5944 §3.7.1: 7 s)
    pending_timeout: float = 7.0
    #: most pending requests at once (RFC 5944 §3.7.1 suggests a limit; 66 beyond it)
    max_pending: int = 5
    #: most visitors at once (66 beyond it; the B flag is advertised while full)
    max_visitors: int = 1024
    #: UDP source port of relayed requests (replies come back to it)
    relay_port: int = MIP_PORT
    #: IP source of relayed requests: this agent's address towards the home agents
    #: (RFC 5944 §3.7.2.2); ``None`` uses the care-of address of the request's link. The
    #: home agent finds its FA-HA security association by this address.
    relay_source: IPv4Address | None = None
    #: Registration revocation (RFC 3543): advertise the X bit, append a Revocation Support
    #: extension to requests relayed to home agents this agent shares an FA-HA SA with, and
    #: send and accept Registration Revocations.
    revocation: bool = False
    #: RFC 3543 'I' bit: this agent informs the mobile node of a revocation when asked
    #: (and when it revokes by operator command).
    revocation_inform: bool = True
    #: Seconds before an unacknowledged revocation is sent again (then doubling).
    revocation_retransmit_initial: float = 1.0
    #: Longest pause between retransmissions of a revocation, seconds.
    revocation_retransmit_max: float = 8.0
    #: Retransmissions of an unacknowledged revocation before giving up.
    revocation_retransmit_limit: int = 4

    def __post_init__(self) -> None:
        if not self.links:
            raise ConfigError("foreign agent: links must name at least one visited link")
        names = [link.interface for link in self.links]
        if len(set(names)) != len(names):
            raise ConfigError(f"foreign agent: links: duplicate interface in {names}")
        if not self.advertisement_interval > 0:
            raise ConfigError("foreign agent: advertisement_interval must be > 0")
        if self.advertisement_lifetime is not None and not (
            1 <= self.advertisement_lifetime <= 0xFFFF
        ):
            raise ConfigError("foreign agent: advertisement_lifetime not in 1..65535")
        if not 1 <= self.max_lifetime <= INFINITE_LIFETIME:
            raise ConfigError(f"foreign agent: max_lifetime {self.max_lifetime} not in 1..65535")
        if not self.pending_timeout > 0:
            raise ConfigError("foreign agent: pending_timeout must be > 0")
        if self.reverse_tunnel_required and not self.reverse_tunnel:
            raise ConfigError("foreign agent: reverse_tunnel_required needs reverse_tunnel")
        if not 0 <= self.challenge_length <= 255:
            raise ConfigError("foreign agent: challenge_length not in 0..255")
        if self.challenge_window < 1:
            raise ConfigError("foreign agent: challenge_window must be >= 1")
        if self.accounting_interval is not None and not self.accounting_interval > 0:
            raise ConfigError("foreign agent: accounting_interval must be > 0")
        if self.max_pending < 1 or self.max_visitors < 1:
            raise ConfigError("foreign agent: max_pending and max_visitors must be >= 1")
        self.revocation_settings()  # RFC 3543 settings: checked here, named by key

    def revocation_settings(self) -> RevocationSettings:
        """The ``revocation*`` keys as :class:`~mip4.core.revocation.RevocationSettings`."""
        return settings_of(self, "foreign agent")

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, object], source: str = "<config>"
    ) -> ForeignAgentConfig:
        """From a parsed TOML table (``links`` an array of tables); errors name ``source``
        and the key."""
        return config_from_mapping(cls, data, source)

    @property
    def icmp_lifetime(self) -> int:
        return icmp_lifetime(self.advertisement_lifetime, self.advertisement_interval)

    def link(self, interface: str) -> VisitedLink | None:
        for link in self.links:
            if link.interface == interface:
                return link
        return None

    def advertiser_settings(self) -> AdvertiserSettings:
        """What this agent's advertisements say (RFC 5944 §2.1.1): F always; R, H, M, G, T
        from the configuration; X when revocation is on (RFC 3543 §3.1); never U (UDP
        tunnelling is not implemented). B is added while the visitor list is full."""
        flags = AgentFlags.F
        if self.registration_required:
            flags |= AgentFlags.R
        if self.home_agent:
            flags |= AgentFlags.H
        if self.minimal_encapsulation:
            flags |= AgentFlags.M
        if self.gre_encapsulation:
            flags |= AgentFlags.G
        if self.reverse_tunnel:
            flags |= AgentFlags.T
        if self.revocation:
            flags |= AgentFlags.X  # RFC 3543 §3.1
        return AdvertiserSettings(
            flags=flags,
            registration_lifetime=self.max_lifetime,
            icmp_lifetime=self.icmp_lifetime,
            code=0 if self.routes_common_traffic else 16,
            interval=self.advertisement_interval if self.advertise else None,
            solicitation_interval=self.solicitation_interval,
            challenge_length=self.challenge_length,
            challenge_window=self.challenge_window,
        )

    def advertised_links(self) -> tuple[AdvertisedLink, ...]:
        return tuple(
            AdvertisedLink(
                link.interface,
                link.address,
                link.prefix_len,
                link.offered,
                link.advertisement_destination,
            )
            for link in self.links
        )
