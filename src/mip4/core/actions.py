"""Outputs of the engines: side effects described as data (STYLE.md practice 2).

An engine returns a list of these from ``handle`` and ``handle_timer``; one executor in
:mod:`mip4.io` carries them out on Linux, and the in-memory test network interprets them
directly. Nothing here is executed inside :mod:`mip4.core`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address

# The enum lives with the data plane; engines and their callers also find it here.
from mip4.aaa.messages import AaaRequest as AaaRequest
from mip4.aaa.messages import AccountingRecord as AccountingRecord
from mip4.dataplane.common import Encapsulation as Encapsulation
from mip4.wire.records import make_record

MIP_PORT = 434  #: RFC 5944 §3.1, IANA


# ----------------------------------------------------------------------------------------
# Sending
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendUdp:
    """Send a Mobile IP control message over UDP."""

    dst: IPv4Address
    payload: bytes
    dport: int = MIP_PORT
    sport: int = MIP_PORT
    src: IPv4Address | None = None
    interface: str | None = None
    #: deliver to this link-layer address without ARP (FA relaying a reply to a visitor,
    #: RFC 5944 §3.7.3.2 / §4.2.2)
    link_dst: bytes | None = None
    #: IP TTL; RFC 5944 §3.6.1.1 sets 1 for requests to a foreign agent
    ttl: int | None = None

    @classmethod
    def of(
        cls,
        dst: IPv4Address,
        payload: bytes,
        dport: int,
        sport: int,
        src: IPv4Address | None,
    ) -> SendUdp:
        """``SendUdp(dst, payload, dport, sport, src)`` for an engine's hot path (a home
        agent's reply): one ``__dict__`` assignment instead of a frozen ``__setattr__``
        per field, the same value (``tests/core/test_ha_fast_paths.py``)."""
        return make_record(
            cls,
            {
                "dst": dst,
                "payload": payload,
                "dport": dport,
                "sport": sport,
                "src": src,
                "interface": None,
                "link_dst": None,
                "ttl": None,
            },
        )


@dataclass(frozen=True)
class SendIcmp:
    """Send an ICMP router discovery message (advertisement or solicitation)."""

    dst: IPv4Address
    payload: bytes
    interface: str
    src: IPv4Address | None = None
    ttl: int = 1  #: RFC 1256 / RFC 5944 §2.4.1: TTL 1
    link_dst: bytes | None = None


# ----------------------------------------------------------------------------------------
# Home agent (RFC 5944 §4.2.3, §4.6)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallBinding:
    """Tunnel datagrams for ``home_address`` to ``care_of_address``. Replaces an existing
    binding for the same (home address, care-of address)."""

    home_address: IPv4Address
    care_of_address: IPv4Address
    encapsulation: Encapsulation = Encapsulation.IPIP
    #: accept reverse-tunnelled packets from this care-of address (RFC 3024)
    reverse_tunnel: bool = False
    #: RFC 6245 GRE key, when one was negotiated
    gre_key: int | None = None
    #: absolute expiry time (engine clock), for the executor's information only
    expires: float | None = None
    #: deliver broadcast datagrams too (B bit)
    broadcast: bool = False
    #: with ``broadcast``: the home link, where the broadcasts are picked up
    home_interface: str | None = None
    #: D bit: the care-of address is the node's own, so broadcasts are tunnelled to it as
    #: they are; otherwise each goes first into a unicast IP-in-IP datagram to the home
    #: address, which the foreign agent delivers to the node (RFC 5944 §4.3)
    colocated: bool = False

    @classmethod
    def of(
        cls,
        home_address: IPv4Address,
        care_of_address: IPv4Address,
        encapsulation: Encapsulation,
        reverse_tunnel: bool,
        expires: float | None,
        broadcast: bool,
        home_interface: str | None,
        colocated: bool,
    ) -> InstallBinding:
        """The constructor's value for an engine's hot path (a home agent's registration),
        without a frozen ``__setattr__`` per field (``tests/core/test_ha_fast_paths.py``);
        ``gre_key`` is ``None``."""
        return make_record(
            cls,
            {
                "home_address": home_address,
                "care_of_address": care_of_address,
                "encapsulation": encapsulation,
                "reverse_tunnel": reverse_tunnel,
                "gre_key": None,
                "expires": expires,
                "broadcast": broadcast,
                "home_interface": home_interface,
                "colocated": colocated,
            },
        )


@dataclass(frozen=True)
class RemoveBinding:
    """Stop tunnelling to ``care_of_address`` (``None``: every binding of the home address).
    ``expired``: the binding's lifetime ran out (RFC 5944 §3.8.1) -- no reply follows the
    removal, so nothing waits for its kernel work (the executor may do it off the event
    loop's thread, issue 13)."""

    home_address: IPv4Address
    care_of_address: IPv4Address | None = None
    expired: bool = False


@dataclass(frozen=True)
class ProxyArp:
    """Answer ARP for ``address`` on ``interface`` with our own hardware address
    (``enable=True``), or stop (RFC 5944 §4.6)."""

    interface: str
    address: IPv4Address
    enable: bool


@dataclass(frozen=True)
class GratuitousArp:
    """Broadcast gratuitous ARP for ``address`` on ``interface`` mapping it to
    ``link_address`` (``None``: the interface's own address). RFC 5944 §4.6 asks for it to be
    repeated a small number of times."""

    interface: str
    address: IPv4Address
    link_address: bytes | None = None
    count: int = 3


# ----------------------------------------------------------------------------------------
# Foreign agent (RFC 5944 §3.7, §4.2.2, RFC 3024)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallVisitor:
    """Deliver decapsulated datagrams for ``home_address`` on ``interface`` to
    ``link_address`` (no ARP); with ``reverse_tunnel``, tunnel the visitor's own datagrams
    to ``home_agent`` from ``care_of_address``."""

    home_address: IPv4Address
    interface: str
    link_address: bytes | None
    home_agent: IPv4Address
    care_of_address: IPv4Address
    reverse_tunnel: bool = False
    encapsulation: Encapsulation = Encapsulation.IPIP
    expires: float | None = None
    #: RFC 3024 §3.3 Encapsulating Delivery Style: the visitor tunnels its datagrams to
    #: the foreign agent, which decapsulates them and reverse-tunnels them to the home
    #: agent (``False``: Direct Delivery Style, plain datagrams from the visitor)
    encapsulating_delivery: bool = False


@dataclass(frozen=True)
class RemoveVisitor:
    home_address: IPv4Address
    interface: str


@dataclass(frozen=True)
class RelayInKernel:
    """Issue 13: let the kernel relay the visitor's usual renewal (the foreign agent's
    tc-BPF program, :mod:`mip4.core.fa_kernel`): a Registration Request that repeats
    ``request`` -- the registered request's first 16 bytes (type, flags, lifetime, home
    address, home agent, care-of address; RFC 5944 §3.3) -- with one MN-HA extension and
    nothing after it, from ``node``:``node_port`` at ``link_address`` on ``interface`` to
    ``agent`` (with IP TTL 255 when ``ttl_255``), is sent on to the home agent from
    ``relay_source``:``relay_port``; the home agent's acceptance of it goes back to the
    node from ``agent``:434 at ``link_address``. Each datagram so relayed comes back to the
    engine as a :class:`~mip4.core.events.RelayedByKernel`. Replaces an earlier one for
    the home address."""

    home_address: IPv4Address
    request: bytes
    node: IPv4Address
    node_port: int
    agent: IPv4Address
    interface: str
    link_address: bytes
    relay_source: IPv4Address
    relay_port: int
    ttl_255: bool


@dataclass(frozen=True)
class StopRelayInKernel:
    """Issue 13: the kernel no longer relays anything for ``home_address`` (every datagram
    of it comes to the engine)."""

    home_address: IPv4Address


# ----------------------------------------------------------------------------------------
# Mobile node (RFC 5944 §4.2.1, §4.6)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwayFromHome:
    """The node is on a foreign link on ``interface`` (before it registers there): never
    ARP for home-network addresses on it (RFC 5944 §4.6), so the home subnet is not
    on-link there any more and the home agent is reached through the visited network's
    router -- a co-located node's first Registration Request goes straight to it."""

    interface: str
    home_address: IPv4Address


@dataclass(frozen=True)
class UseForeignAgent:
    """Use the foreign agent as default router on ``interface``, reaching it by the
    link-layer address from its advertisement, never by ARP (RFC 5944 §4.2.1). The home
    address stays configured; no decapsulation on the node."""

    interface: str
    agent_address: IPv4Address
    agent_link_address: bytes | None
    home_address: IPv4Address
    #: accept datagrams tunnelled to the home address by this home agent: the broadcasts
    #: asked for with B arrive so (RFC 5944 §4.3); ``None`` without B
    home_agent: IPv4Address | None = None


@dataclass(frozen=True)
class UseColocatedAddress:
    """Decapsulate on the node at the co-located care-of address; with ``reverse_tunnel``
    tunnel outgoing datagrams to ``home_agent`` (RFC 3024)."""

    interface: str
    care_of_address: IPv4Address
    home_agent: IPv4Address
    home_address: IPv4Address
    encapsulation: Encapsulation = Encapsulation.IPIP
    reverse_tunnel: bool = False


@dataclass(frozen=True)
class AtHome:
    """Behave as an ordinary host on the home link: no tunnel, no mobility routes."""

    interface: str
    home_address: IPv4Address


# ----------------------------------------------------------------------------------------
# Handovers between foreign agents (RFC 4881, RFC 4988; see mip4.core.fa_handoff)
# ----------------------------------------------------------------------------------------


class EdgeRole(Enum):
    """Which end of a bi-directional edge tunnel (RFC 4881) this agent holds."""

    #: the previous (old) foreign agent: datagrams the home agent still tunnels to it for
    #: the visitor go on through the edge tunnel to the new agent, not onto its link
    SOURCE = "source"
    #: the new foreign agent: datagrams from the edge tunnel are delivered to the mobile
    #: node on its link (or buffered until it arrives); the node's own datagrams go back
    #: through the edge tunnel to the previous agent until its registration completes
    TARGET = "target"


@dataclass(frozen=True)
class InstallEdgeTunnel:
    """Set up this agent's end of a bi-directional edge tunnel for ``home_address`` with
    the foreign agent ``peer`` (IP-in-IP between ``local`` and ``peer``). At the
    :attr:`EdgeRole.SOURCE` end it replaces local delivery to the visitor; at the
    :attr:`EdgeRole.TARGET` end it adds a delivery path that starts with
    :class:`BufferPackets` / :class:`FlushBuffer` when asked for."""

    home_address: IPv4Address
    peer: IPv4Address
    local: IPv4Address
    role: EdgeRole
    #: absolute expiry (engine clock): the tunnel's granted lifetime, for information
    expires: float | None = None


@dataclass(frozen=True)
class RemoveEdgeTunnel:
    """Tear down this agent's end of the edge tunnel for ``home_address`` with ``peer``
    (the registration with the home agent completed, or the tunnel's lifetime ended)."""

    home_address: IPv4Address
    peer: IPv4Address


@dataclass(frozen=True)
class BufferPackets:
    """Hold datagrams for ``home_address`` that arrive through the edge tunnel while the
    mobile node is not yet on this agent's link (RFC 4988: packets in flight during the
    switch are delivered, not lost): at most ``limit`` datagrams, the oldest kept; the
    engine flushes them (:class:`FlushBuffer`) or drops them (:class:`DropBuffer`)."""

    home_address: IPv4Address
    limit: int


@dataclass(frozen=True)
class FlushBuffer:
    """The mobile node arrived: deliver the buffered datagrams for ``home_address`` in
    order, then every later one from the edge tunnel, to ``link_address`` on
    ``interface`` (no ARP, RFC 5944 §4.2.2)."""

    home_address: IPv4Address
    interface: str
    link_address: bytes | None


@dataclass(frozen=True)
class DropBuffer:
    """Discard the buffered datagrams for ``home_address`` and stop buffering (the node
    did not arrive in time: a wrong anticipation, or the tunnel ended)."""

    home_address: IPv4Address


@dataclass(frozen=True)
class LeaveForeignAgent:
    """Link-layer trigger on the mobile node: the link on ``interface`` is gone, stop
    using the routes through its foreign agent at once (do not wait for a lifetime); the
    home address stays configured. Emitted only when a handover mode is configured
    (:class:`~mip4.core.mn_config.HandoverMode`)."""

    interface: str
    home_address: IPv4Address


# ----------------------------------------------------------------------------------------
# Observability
# ----------------------------------------------------------------------------------------


#: log levels of :class:`Log` records: the numbers of the standard ``logging`` module (the
#: core does not import it)
DEBUG = 10
INFO = 20
WARNING = 30


@dataclass(frozen=True)
class Log:
    """A structured log record: ``event`` names it, ``fields`` carries who, care-of address,
    code, lifetime... Every registration decision produces one. ``level`` is a ``logging``
    level: :data:`INFO` unless the engine marks the record as routine (:data:`DEBUG`, e.g. a
    home agent's renewal that leaves the binding as it was); an executor may skip a record
    below its threshold without building anything from ``fields``."""

    event: str
    fields: dict[str, object] = field(default_factory=dict)
    level: int = INFO


Action = (
    AaaRequest
    | AccountingRecord
    | SendUdp
    | SendIcmp
    | InstallBinding
    | RemoveBinding
    | ProxyArp
    | GratuitousArp
    | InstallVisitor
    | RemoveVisitor
    | RelayInKernel
    | StopRelayInKernel
    | AwayFromHome
    | UseForeignAgent
    | UseColocatedAddress
    | AtHome
    | InstallEdgeTunnel
    | RemoveEdgeTunnel
    | BufferPackets
    | FlushBuffer
    | DropBuffer
    | LeaveForeignAgent
    | Log
)
