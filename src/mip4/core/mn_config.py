"""Configuration of a mobile node (:class:`MobileNodeConfig`, :class:`ReverseTunnel`).

Theory of operation
-------------------
A frozen dataclass whose attribute docstrings are the reference documentation
(``daemon/docgen.py`` renders them); ``__post_init__`` refuses values the engine cannot work
with, and the daemon's loader names the file and key. The engine
(:mod:`mip4.core.mobile_node`) re-exports both names, so existing imports keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv4Network

from mip4.wire.messages import INFINITE_LIFETIME

from .actions import MIP_PORT, Encapsulation

ALL_ROUTERS = IPv4Address("224.0.0.2")  #: RFC 1256 §5.1 solicitation destination


class ReverseTunnel(Enum):
    """Reverse tunnelling preference (RFC 3024)."""

    OFF = "off"  #: never set T
    PREFER = "prefer"  #: set T when the agent offers it (or co-located); fine without
    REQUIRE = "require"  #: only register where T can be set


class RevocationReaction(Enum):
    """What a mobile node does when told its registration was revoked (RFC 3543)."""

    REREGISTER = "reregister"  #: register again at once
    STOP = "stop"  #: give up, as for a denial it cannot fix (``failed_retry`` applies)


_DYNAMIC_HOME_AGENT = (IPv4Address(0), IPv4Address("255.255.255.255"))


@dataclass(frozen=True, slots=True)
class MobileNodeConfig:
    """Configuration of one mobile node (slotted: a simulator holds one per node)."""

    home_address: IPv4Address
    """The node's permanent address on its home network (RFC 5944 §1.6)."""

    home_agent: IPv4Address
    """The home agent's address. The home network's directed-broadcast address asks for
    dynamic home agent discovery: the 136 reply names the real one (RFC 5944 §3.6.1.2)."""

    home_prefix_len: int = 24
    """Prefix length of the home network (decides "at home" and the broadcast address)."""

    lifetime: int = 1800
    """Requested registration lifetime, seconds (capped by the agent's advertised one)."""

    reverse_tunnel: ReverseTunnel = ReverseTunnel.OFF
    """Reverse tunnelling preference (RFC 3024): the T bit."""

    encapsulations: tuple[Encapsulation, ...] = (Encapsulation.IPIP,)
    """Tunnel encapsulations in order of preference. M and G are requested only when the
    agent advertises them (RFC 5944 §3.6.1.2); IP-in-IP is the fallback."""

    encapsulating_delivery: bool = False
    """When reverse tunnelling through a foreign agent, ask for the Encapsulating Delivery
    Style (RFC 3024 §3.3, extension 130) instead of Direct Delivery."""

    simultaneous_bindings: bool = False
    """Set S: ask the home agent to keep earlier bindings (RFC 5944 §3.3)."""

    broadcast: bool = False
    """Set B: ask for broadcast datagrams from the home network (RFC 5944 §3.3)."""

    colocated_allowed: bool = True
    """Register a co-located care-of address (D bit) on links without a foreign agent."""

    retransmit_initial: float = 1.0
    """First retransmission timeout, seconds; at least 1 (RFC 5944 §3.6.3)."""

    retransmit_max: float = 16.0
    """Bound on the doubling retransmission timeout (RFC 5944 §3.6.3)."""

    retransmit_limit: int = 5
    """Retransmissions of one registration before the attempt is abandoned (then the node
    backs off like a transient denial)."""

    renew_fraction: float = 0.8
    """Re-register when this fraction of the granted lifetime has passed."""

    denial_backoff: float = 10.0
    """First pause after a transient denial or an unanswered attempt; doubles each time."""

    denial_backoff_max: float = 300.0
    """Bound on that pause."""

    correction_limit: int = 4
    """Consecutive corrective retries (133 resync, 69, 136, T/encapsulation changes,
    challenges) before giving up: a peer that denies every correction is not retried
    forever."""

    failed_retry: float | None = None
    """After giving up, try again this many seconds later (``None``: only when the node
    attaches elsewhere, hears its agent reboot, or the link changes)."""

    solicit_initial_count: int = 3
    """Solicitations sent at one per second before backing off (RFC 5944 §2.4)."""

    solicit_max_interval: float = 60.0
    """Bound on the solicitation back-off interval (RFC 5944 §2.4)."""

    solicit_limit: int | None = None
    """Stop soliciting after this many (``None``: continue at the maximum interval)."""

    solicit_jitter: float = 0.1
    """Solicitation times are randomised (RFC 5944 §2.4 MUST): each interval is lengthened
    by up to this fraction."""

    solicitation_address: IPv4Address = ALL_ROUTERS
    """Where solicitations go: 224.0.0.2 or 255.255.255.255 (RFC 1256 §5.1)."""

    port: int = MIP_PORT
    """UDP source port of our requests (replies come back to it)."""
    nai: str | None = None
    """The node's NAI (RFC 2794, e.g. ``alice@example.net``), sent in the MN-NAI extension
    of every request. With it, ``home_address`` may be 0.0.0.0: the home agent assigns one,
    which the node keeps across moves and re-registrations and releases when it
    deregisters."""
    mn_aaa_secret: bytes | None = field(default=None, repr=False)
    """The MN-AAA shared secret (RFC 4721 §5): with it, a request to an agent that
    advertises a challenge carries the MN-FA Challenge extension and the MN-AAA
    authentication extension (after MN-HA) for the home AAA server. Never printed."""
    mn_aaa_spi: int = 2
    """SPI of the MN-AAA extension: 2 is the CHAP-style computation RFC 4721 §7 maps onto
    RADIUS CHAP (what FreeRADIUS's ``chap`` module verifies)."""
    requested_home_agent: IPv4Address | None = None
    """Dynamic home agent assignment (RFC 4433): with ``home_agent`` 0.0.0.0 or
    255.255.255.255, requests carry a Requested HA extension (139 subtype 1) naming this
    home agent and are sent to it (through the foreign agent); the home agent that accepts
    names itself in the reply, and the node keeps using it."""
    redirect_limit: int = 3
    """Redirections (code 143 with a Redirected HA extension, RFC 4433) followed in a row:
    past it the node gives up, so home agents sending it back and forth cannot keep it
    busy forever."""
    home_subnet: IPv4Network | None = None
    """The home network, for a node given neither its home address nor its home agent
    (``home_address`` 0.0.0.0, RFC 2794; ``home_agent`` 0.0.0.0 or 255.255.255.255, RFC 4433:
    the home AAA server picks one): how it recognises its home link before its first
    registration (say ``"10.1.0.0/24"``). Left out, a node with an assigned home address
    takes the home network to be that address with ``home_prefix_len`` once assigned, and
    before that the one of ``home_agent`` (or ``requested_home_agent``); with neither, it
    knows no home network until a home agent assigns it an address."""
    on_revocation: RevocationReaction = RevocationReaction.REREGISTER
    """What the node does when its foreign agent tells it the registration was revoked
    (RFC 3543): ``reregister`` at once, or ``stop`` (give up until it attaches elsewhere,
    or ``failed_retry``)."""

    def __post_init__(self) -> None:
        if not 0 <= self.home_prefix_len <= 32:
            raise ValueError(f"home_prefix_len {self.home_prefix_len}: must be 0..32")
        if not 1 <= self.lifetime <= INFINITE_LIFETIME:
            raise ValueError(f"lifetime {self.lifetime}: must be 1..65535 seconds")
        if self.retransmit_initial < 1.0:
            raise ValueError("retransmit_initial must be at least 1 second (RFC 5944 §3.6.3)")
        if self.retransmit_max < self.retransmit_initial:
            raise ValueError("retransmit_max must be >= retransmit_initial")
        if self.retransmit_limit < 0 or self.correction_limit < 0:
            raise ValueError("retransmit_limit and correction_limit must be >= 0")
        if not 0.0 < self.renew_fraction < 1.0:
            raise ValueError("renew_fraction must be strictly between 0 and 1")
        if self.failed_retry is not None and self.failed_retry <= 0:
            raise ValueError("failed_retry must be > 0 seconds (or None)")
        if self.denial_backoff <= 0 or self.denial_backoff_max < self.denial_backoff:
            raise ValueError("denial_backoff must be > 0 and <= denial_backoff_max")
        if not 0.0 <= self.solicit_jitter <= 1.0:
            raise ValueError("solicit_jitter must be within 0..1")
        if not self.encapsulations:
            raise ValueError("encapsulations must name at least one encapsulation")
        if self.nai is not None and not 0 < len(self.nai.encode()) <= 255:
            raise ValueError("nai must be 1..255 bytes of UTF-8")
        if self.mn_aaa_secret is not None and (not self.mn_aaa_secret or self.nai is None):
            raise ValueError("mn_aaa_secret must be non-empty and needs an nai (RFC 4721)")
        if self.home_address == IPv4Address(0) and self.nai is None:
            raise ValueError("home_address 0.0.0.0 (assigned) needs an nai (RFC 2794)")
        if (
            self.home_subnet is not None
            and not self.assigned_address
            and self.home_address not in self.home_subnet
        ):
            raise ValueError(
                f"home_subnet {self.home_subnet} does not hold home_address {self.home_address}"
            )
        if self.redirect_limit < 0:
            raise ValueError("redirect_limit must be >= 0")
        if self.requested_home_agent is not None and (
            self.requested_home_agent in _DYNAMIC_HOME_AGENT
            or self.requested_home_agent.is_multicast
        ):
            raise ValueError("requested_home_agent must be a unicast address (RFC 4433)")

    @property
    def home_network(self) -> IPv4Network:
        """The home network the configuration implies (``home_address`` or, for an
        address still to be assigned, the home agent's, with ``home_prefix_len``). The
        engine's own view, which also knows ``home_subnet`` and what was assigned, is
        :attr:`mip4.core.mn_client.RegistrationClient.home_network`."""
        # an address still to be assigned lives on the home agent's network
        base = self.home_address
        if base == IPv4Address(0):
            base = self.requested_home_agent or self.home_agent
        return IPv4Network((base, self.home_prefix_len), strict=False)

    @property
    def assigned_address(self) -> bool:
        """The home address is assigned by the home agent (RFC 2794 §2)."""
        return self.home_address == IPv4Address(0)

    @property
    def dynamic_home_agent(self) -> bool:
        """Home Agent 0.0.0.0 or 255.255.255.255 with a Requested HA extension (RFC 4433)."""
        return self.home_agent in _DYNAMIC_HOME_AGENT and self.requested_home_agent is not None

    @property
    def discovers_home_agent(self) -> bool:
        """The home agent address is the home network's directed broadcast
        (RFC 5944 §3.6.1.2)."""
        net = self.home_network
        return self.home_prefix_len < 31 and self.home_agent == net.broadcast_address


__all__ = ["ALL_ROUTERS", "MobileNodeConfig", "ReverseTunnel", "RevocationReaction"]
