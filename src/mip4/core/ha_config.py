"""The home agent's configuration (RFC 5944 §3.8.1): its address, home network and the
home addresses it serves, lifetimes and limits, what it offers (simultaneous bindings,
reverse tunnelling, encapsulations), its advertisements on the home link and the address
pool for mobile nodes known by NAI (RFC 2794). Loaded from a TOML table by
:meth:`HomeAgentConfig.from_mapping`; every check names the key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Network

from mip4.wire.icmp import AgentFlags
from mip4.wire.messages import INFINITE_LIFETIME

from .advertiser import AdvertiserSettings, icmp_lifetime
from .registration import ConfigError, config_from_mapping
from .revocation import RevocationSettings, settings_of

__all__ = ["HomeAgentConfig", "HomeAgentPick", "bad_unicast"]

_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_ZERO = IPv4Address(0)


def bad_unicast(a: IPv4Address) -> bool:
    """0.0.0.0, the limited broadcast or a multicast address: never a host's address."""
    return a in (_ZERO, _LIMITED_BROADCAST) or a.is_multicast


class HomeAgentPick(Enum):
    """How the home agents of ``home_agents`` pick the one for a dynamic request (RFC 4433)."""

    #: the Requested HA when it is listed, else by the node's identity
    REQUESTED = "requested"
    #: by the node's identity (NAI or home address) whatever it requested: nodes spread
    #: over the home agents, each always on the same one
    SPREAD = "spread"


@dataclass(frozen=True)
class HomeAgentConfig:
    """Home agent configuration (RFC 5944 §3.8.1)."""

    #: This agent's unicast address on the home network: the only Home Agent field it
    #: accepts and the one it returns with code 136.
    address: IPv4Address
    #: The home network; its directed broadcast address is the dynamic home agent
    #: discovery destination (RFC 5944 §3.6.1.2 / §3.8.2.2).
    home_network: IPv4Network
    #: The interface on the home link (where proxy and gratuitous ARP happen, §4.6).
    interface: str = "eth0"
    #: Home addresses this agent serves (RFC 5944 §3.8.1: "the home address of each mobile
    #: node"); ``None`` serves every host address of ``home_network`` except its own.
    home_addresses: frozenset[IPv4Address] | None = None
    #: Longest Lifetime granted, seconds; longer requests get this (RFC 5944 §3.8.3.2: the
    #: reply's Lifetime MUST NOT exceed the request's). 65535 allows an infinite lifetime.
    max_lifetime: int = 1800
    #: Capacity of the binding table (all bindings of all nodes): past it, code 130.
    max_bindings: int = 65536
    #: Whether simultaneous bindings (S bit) are offered; when not, code 1 (RFC 5944 §3.4).
    simultaneous_bindings: bool = True
    #: Most care-of addresses one node may have at once with S (more: code 135).
    max_simultaneous_bindings: int = 4
    #: Reverse tunnelling offered (RFC 3024 §4.2; 137 when requested and not offered).
    reverse_tunnel: bool = True
    #: Reverse tunnelling mandatory (RFC 3024 §4.2; 138 when T is clear).
    reverse_tunnel_required: bool = False
    #: Minimal encapsulation (RFC 2004) offered for the M bit (139 otherwise).
    minimal_encapsulation: bool = True
    #: GRE (RFC 2784) offered for the G bit (139 otherwise).
    gre_encapsulation: bool = True
    #: Registration revocation (RFC 3543): answer a foreign agent's Revocation Support
    #: extension with ours, and send and accept Registration Revocations (FA-HA needed).
    revocation: bool = False
    #: RFC 3543 'I' bit: ask foreign agents that support it to inform the mobile node.
    revocation_inform: bool = True
    #: Seconds before an unacknowledged revocation is sent again (then doubling).
    revocation_retransmit_initial: float = 1.0
    #: Longest pause between retransmissions of a revocation, seconds.
    revocation_retransmit_max: float = 8.0
    #: Retransmissions of an unacknowledged revocation before giving up.
    revocation_retransmit_limit: int = 4
    #: Dynamic home agent assignment (RFC 4433): the home agents serving this home network,
    #: this one included. A request with Home Agent 0.0.0.0 or 255.255.255.255 and a
    #: Requested HA extension is accepted by the one picked -- the requested one when it is
    #: listed, else one chosen by the node's identity -- and redirected (143) by the others.
    #: Empty: not offered (such a request gets 136, RFC 5944 home agent discovery).
    home_agents: tuple[IPv4Address, ...] = ()
    #: How the home agent for a dynamic request is picked among ``home_agents``.
    home_agent_pick: HomeAgentPick = HomeAgentPick.REQUESTED
    #: How many gratuitous ARPs to send each time (RFC 5944 §4.6: "a small number").
    gratuitous_arp_count: int = 3
    #: Seconds between Agent Advertisements (H flag) on the home link, by which mobile
    #: nodes detect they are home (RFC 5944 §2.3, §2.4.2); ``None``: do not advertise and
    #: do not answer solicitations (another router or a co-located FA does it).
    advertisement_interval: float | None = None
    #: ICMP Lifetime of those advertisements; ``None``: 3 x the interval (RFC 1256 §4.1).
    advertisement_lifetime: int | None = None
    #: Home addresses assigned to mobile nodes that name themselves with an NAI and ask for
    #: 0.0.0.0 (RFC 2794 §2); empty: no assignment (such a request gets 130).
    address_pool: frozenset[IPv4Address] = frozenset()
    #: Ask the home AAA server (``[aaa]`` servers; an ``AaaRequest`` action, the
    #: ``AaaAnswer`` event) about a node that names itself with an NAI, authenticates with
    #: MN-AAA and has no MN-HA association here: the Access-Accept gives the MN-HA SPI and
    #: key and the home address (Framed-IP-Address); a reject is 144 (RFC 4721), silence 130.
    aaa: bool = False

    def __post_init__(self) -> None:
        if self.address not in self.home_network:
            raise ConfigError(
                f"home agent: address {self.address} is not in home_network {self.home_network}"
            )
        if not 1 <= self.max_lifetime <= INFINITE_LIFETIME:
            raise ConfigError(f"home agent: max_lifetime {self.max_lifetime} not in 1..65535")
        if self.max_bindings < 0:
            raise ConfigError(f"home agent: max_bindings {self.max_bindings} < 0")
        if self.max_simultaneous_bindings < 1:
            raise ConfigError(
                f"home agent: max_simultaneous_bindings {self.max_simultaneous_bindings} < 1"
            )
        if self.reverse_tunnel_required and not self.reverse_tunnel:
            raise ConfigError("home agent: reverse_tunnel_required needs reverse_tunnel")
        if self.gratuitous_arp_count < 1:
            raise ConfigError("home agent: gratuitous_arp_count must be >= 1")
        if self.advertisement_interval is not None and not self.advertisement_interval > 0:
            raise ConfigError("home agent: advertisement_interval must be > 0")
        if self.advertisement_lifetime is not None and not (
            1 <= self.advertisement_lifetime <= 0xFFFF
        ):
            raise ConfigError("home agent: advertisement_lifetime not in 1..65535")
        for a in self.address_pool:
            if a not in self.home_network or a == self.address or bad_unicast(a):
                raise ConfigError(f"home agent: address_pool entry {a} not a home network host")
        self.revocation_settings()  # RFC 3543 settings: checked here, named by key
        if self.home_agents and self.address not in self.home_agents:
            raise ConfigError(f"home agent: home_agents must include address {self.address}")
        for a in self.home_agents:
            if bad_unicast(a):
                raise ConfigError(f"home agent: home_agents entry {a} not unicast")

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], source: str = "<config>") -> HomeAgentConfig:
        """From a parsed TOML table; errors name ``source`` and the key."""
        return config_from_mapping(cls, data, source)

    def advertiser_settings(self) -> AdvertiserSettings:
        """What this agent's advertisements on the home link say (RFC 5944 §2.1.1): H, and
        M, G, T as offered; answers go unicast (the home link's addresses are on-link)."""
        flags = AgentFlags.H
        if self.minimal_encapsulation:
            flags |= AgentFlags.M
        if self.gre_encapsulation:
            flags |= AgentFlags.G
        if self.reverse_tunnel:
            flags |= AgentFlags.T
        interval = self.advertisement_interval
        return AdvertiserSettings(
            flags=flags,
            registration_lifetime=self.max_lifetime,
            icmp_lifetime=icmp_lifetime(self.advertisement_lifetime, interval or 1.0),
            interval=interval,
            arp_on_link=True,
        )

    def revocation_settings(self) -> RevocationSettings:
        """The ``revocation*`` keys as :class:`~mip4.core.revocation.RevocationSettings`."""
        return settings_of(self, "home agent")

    def serves(self, home_address: IPv4Address) -> bool:
        """Whether ``home_address`` is a mobile node this agent serves."""
        if home_address in self.address_pool:
            return True
        if self.home_addresses is not None:
            return home_address in self.home_addresses
        net = self.home_network
        return (
            home_address in net
            and home_address != self.address
            and (
                net.prefixlen >= 31
                or home_address not in (net.network_address, net.broadcast_address)
            )
        )
