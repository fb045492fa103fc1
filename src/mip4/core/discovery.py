"""Agent discovery on the mobile node (RFC 5944 §2.4): advertisements, solicitation, moves.

Theory of operation
-------------------
:class:`AgentDiscovery` is the mobile node's record of the mobility agents it can hear. It
is pure bookkeeping driven by the mobile node engine (:mod:`mip4.core.mobile_node`), which
decides what to do with what it reports:

* :meth:`AgentDiscovery.advertisement` records an Agent Advertisement (ICMP type 9 with a
  Mobility Agent Advertisement Extension, RFC 5944 §2.1.1) under the agent's source address
  and interface. The agent stays *heard* for the advertisement's ICMP Lifetime
  (RFC 5944 §2.4.2.1, algorithm 1). The result says whether the agent is new and whether its
  sequence number shows that it rebooted: the sequence number after 0xffff is 256, so a
  number that goes *down* to a value in 0..255 means the agent restarted and lost its
  visitor list (RFC 5944 §2.3.2 for the agent, §2.4.4 for the mobile node, which SHOULD
  register again). The same advertisement again but for its sequence number (an agent's
  periodic ones) refreshes the agent's record in place: only the sequence number (reboot
  detection) and the lifetime are news. The record holds the decoded advertisement shared
  by every receiver of the same content (:class:`~mip4.wire.icmp.AdvertisementMemo`).
* :meth:`AgentDiscovery.expire` drops the agents whose advertisement lifetime passed; the
  mobile node treats losing its current agent as a move (RFC 5944 §2.4.2.1).
* :func:`prefix_moved` is algorithm 2 (RFC 5944 §2.4.2.2): compare network prefixes taken
  from Prefix-Lengths Extensions; it answers only when both advertisements carry one.
* Solicitation (RFC 5944 §2.4): while searching for an agent the node MAY send up to
  ``initial_solicitations`` solicitations at most one per second, then MUST back off
  exponentially, doubling the interval up to ``max_interval`` (which SHOULD be at least a
  minute), and MUST randomise the times around these nominal values: each interval is
  stretched by a random fraction up to ``jitter`` (only ever longer, so the one-per-second
  bound holds).
  :meth:`AgentDiscovery.start_soliciting` arms the schedule; :meth:`AgentDiscovery.poll`
  says when one is due and advances it; :meth:`AgentDiscovery.stop_soliciting` disarms it
  (an advertisement was heard).

No clock is read here: every input carries ``now``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from mip4.wire.icmp import ADVERTISEMENTS, AgentAdvertisement, AgentFlags, same_but_sequence

from .engine import make_rng
from .registration import ConfigError

#: Sequence numbers below this are only used after a (re)boot: the number after 0xffff is
#: 256 (RFC 5944 §2.3.2).
REBOOT_SEQUENCE_LIMIT = 256

_F, _H, _B, _R = (int(f) for f in (AgentFlags.F, AgentFlags.H, AgentFlags.B, AgentFlags.R))


@dataclass(slots=True)
class Agent:
    """A mobility agent the node has heard (one per source address and interface).

    Slotted, and the advertisement is the decoded object shared by every node that heard
    the same bytes (:class:`~mip4.wire.icmp.AdvertisementMemo`): what a node keeps per agent
    is this record, its flags as an integer and references."""

    #: the advertisement's IP source address: where registration requests go (RFC 5944
    #: §3.6.1.1)
    address: IPv4Address
    interface: str
    #: the link-layer source of the advertisement: the node reaches a foreign agent by it,
    #: never by ARP (RFC 5944 §4.2.1)
    link_address: bytes | None
    #: what the agent advertises: the decoded object shared by every node that heard the
    #: same content (:class:`~mip4.wire.icmp.AdvertisementMemo`); its sequence number may
    #: be an earlier one of the agent's -- the last one heard is :attr:`sequence`
    advertisement: AgentAdvertisement
    #: when the advertisement's ICMP Lifetime runs out (RFC 5944 §2.4.2.1)
    expires: float
    sequence: int
    heard: float
    #: the Mobility Agent Advertisement Extension's flags, as an integer (no enum
    #: arithmetic on the hot path)
    flag_bits: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        m = self.advertisement.mobility
        self.flag_bits = int(m.flags) if m is not None else 0

    @property
    def flags(self) -> AgentFlags:
        m = self.advertisement.mobility
        return m.flags if m is not None else AgentFlags(0)

    @property
    def registration_lifetime(self) -> int:
        m = self.advertisement.mobility
        return m.registration_lifetime if m is not None else 0

    @property
    def care_of_addresses(self) -> tuple[IPv4Address, ...]:
        m = self.advertisement.mobility
        return m.care_of_addresses if m is not None else ()

    @property
    def is_foreign_agent(self) -> bool:
        return bool(self.flag_bits & _F)

    @property
    def is_home_agent(self) -> bool:
        return bool(self.flag_bits & _H)

    @property
    def busy(self) -> bool:
        return bool(self.flag_bits & _B)

    @property
    def registration_required(self) -> bool:
        return bool(self.flag_bits & _R)

    @property
    def prefixes(self) -> tuple[IPv4Network, ...] | None:
        """The networks of the advertised router addresses, from the Prefix-Lengths
        Extension (RFC 5944 §2.1.2); ``None`` when the advertisement has none."""
        lengths = self.advertisement.prefix_lengths
        if lengths is None:
            return None
        return tuple(
            IPv4Network((r.address, p), strict=False)
            for r, p in zip(self.advertisement.router_addresses, lengths, strict=True)
        )


@dataclass(frozen=True)
class AdvertisementResult:
    agent: Agent
    #: first advertisement from this agent (on this interface) since it was last forgotten
    new: bool
    #: the sequence number went down into 0..255: the agent rebooted (RFC 5944 §2.4.4)
    rebooted: bool
    previous_sequence: int | None


def sequence_shows_reboot(previous: int, current: int) -> bool:
    """RFC 5944 §2.4.4: two successive sequence numbers from an agent, the second less than
    the first and in 0..255, mean the agent rebooted. (0xffff is followed by 256, so a
    rollover never lands below 256, RFC 5944 §2.3.2.)"""
    return current < previous and current < REBOOT_SEQUENCE_LIMIT


def prefix_moved(current: Agent, new: Agent) -> bool | None:
    """RFC 5944 §2.4.2.2 (algorithm 2): ``True`` if the two agents' advertised network
    prefixes differ (the node has moved), ``False`` if they share one, ``None`` when the
    method SHOULD NOT be used because either advertisement lacks a Prefix-Lengths
    Extension."""
    a = current.prefixes
    b = new.prefixes
    if a is None or b is None or not a or not b:
        return None
    return not set(a) & set(b)


def address_moved(network: IPv4Network | None, new: Agent) -> bool | None:
    """RFC 5944 §2.4.2.2 for a co-located care-of address: ``True`` if none of the agent's
    advertised prefixes is ``network`` (the co-located address's subnet); ``None`` when the
    subnet or the agent's prefixes are unknown."""
    b = new.prefixes
    if network is None or not b:
        return None
    return network not in b


class AgentDiscovery:
    """The agents a mobile node hears, and its solicitation schedule (RFC 5944 §2.4).
    Slotted: one per node (a simulation holds a million)."""

    __slots__ = (
        "_first",
        "_more",
        "_rng",
        "_solicit_count",
        "_solicit_interface",
        "_solicit_next",
        "initial_interval",
        "initial_solicitations",
        "jitter",
        "max_interval",
        "max_solicitations",
    )

    def __init__(
        self,
        *,
        initial_solicitations: int = 3,
        initial_interval: float = 1.0,
        max_interval: float = 60.0,
        max_solicitations: int | None = None,
        jitter: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if initial_interval < 1.0:
            # RFC 5944 §2.4: "at a maximum rate of one per second"
            raise ConfigError("initial solicitation interval must be at least 1 second")
        if max_interval < initial_interval:
            raise ConfigError("max solicitation interval must be >= the initial interval")
        self.initial_solicitations = max(1, initial_solicitations)
        self.initial_interval = initial_interval
        self.max_interval = max_interval
        self.max_solicitations = max_solicitations
        if not 0.0 <= jitter <= 1.0:
            raise ConfigError("solicitation jitter must be within 0..1")
        self.jitter = jitter
        self._rng = make_rng(rng)
        #: the agents heard, in the order first heard: the first one in a slot of its own
        #: (a node usually hears one agent at a time: no dict and key per node for it),
        #: the others by (interface, address); ``_first`` is ``None`` only when none is
        self._first: Agent | None = None
        self._more: dict[tuple[str, IPv4Address], Agent] | None = None
        self._solicit_interface: str | None = None
        self._solicit_next: float | None = None
        self._solicit_count = 0

    # -- advertisements -----------------------------------------------------------------

    def advertisement(
        self,
        adv: AgentAdvertisement,
        src: IPv4Address,
        interface: str,
        link_src: bytes | None,
        now: float,
    ) -> AdvertisementResult | None:
        """Record an agent advertisement; ``None`` if it is a plain router advertisement
        (no Mobility Agent Advertisement Extension, RFC 5944 §2.1)."""
        mobility = adv.mobility
        if mobility is None:
            return None
        key = (interface, src)
        old = self._get(interface, src)
        seq = mobility.sequence
        if (
            old is not None
            and old.link_address == link_src
            and (
                old.advertisement is ADVERTISEMENTS.shared(adv)
                or same_but_sequence(old.advertisement.raw, adv.raw)
            )
        ):
            # The same advertisement again but for its sequence number (RFC 5944 §2.3.2: an
            # agent whose state did not change): only the sequence number and the lifetime
            # are news (RFC 5944 §2.4.2.1, §2.4.4); the record is refreshed in place.
            previous = old.sequence
            old.expires = now + adv.lifetime
            old.sequence = seq
            old.heard = now
            return AdvertisementResult(old, False, sequence_shows_reboot(previous, seq), previous)
        agent = Agent(
            address=src,
            interface=interface,
            link_address=link_src,
            advertisement=ADVERTISEMENTS.shared(adv),
            expires=now + adv.lifetime,
            sequence=seq,
            heard=now,
        )
        self._put(key, agent)
        if old is None:
            return AdvertisementResult(agent, True, False, None)
        return AdvertisementResult(
            agent, False, sequence_shows_reboot(old.sequence, seq), old.sequence
        )

    def agents(self, interface: str | None = None) -> list[Agent]:
        return [a for a in self._all() if interface is None or a.interface == interface]

    def get(self, interface: str, address: IPv4Address) -> Agent | None:
        return self._get(interface, address)

    def forget(self, interface: str, address: IPv4Address) -> Agent | None:
        return self._pop(interface, address)

    def expire(self, now: float) -> list[Agent]:
        """Drop and return the agents whose advertisement lifetime has passed
        (RFC 5944 §2.4.2.1: the node SHOULD assume it lost contact with them)."""
        if self._first is None:
            return []
        gone = [a for a in self._all() if a.expires <= now]
        for a in gone:
            self._pop(a.interface, a.address)
        return gone

    def link_down(self, interface: str) -> list[Agent]:
        """Forget every agent heard on ``interface``."""
        gone = [a for a in self._all() if a.interface == interface]
        if self._solicit_interface == interface:
            self.stop_soliciting()
        for a in gone:
            self._pop(a.interface, a.address)
        return gone

    def _all(self) -> list[Agent]:
        first = self._first
        if first is None:
            return []
        if not self._more:
            return [first]
        return [first, *self._more.values()]

    def _get(self, interface: str, address: IPv4Address) -> Agent | None:
        a = self._first
        if a is not None and a.address == address and a.interface == interface:
            return a
        return self._more.get((interface, address)) if self._more else None

    def _put(self, key: tuple[str, IPv4Address], agent: Agent) -> None:
        a = self._first
        if a is None or (a.interface, a.address) == key:
            self._first = agent
            return
        if self._more is None:
            self._more = {}
        self._more[key] = agent

    def _pop(self, interface: str, address: IPv4Address) -> Agent | None:
        a = self._first
        if a is not None and a.address == address and a.interface == interface:
            more = self._more
            if more:  # the next one heard takes its place (the order is kept)
                self._first = more.pop(next(iter(more)))
            else:
                self._first = None
            return a
        return self._more.pop((interface, address), None) if self._more else None

    # -- solicitation (RFC 5944 §2.4) ---------------------------------------------------

    @property
    def soliciting(self) -> bool:
        return self._solicit_next is not None

    @property
    def solicitations_sent(self) -> int:
        return self._solicit_count

    def start_soliciting(self, interface: str, now: float) -> None:
        """Arm the schedule: first solicitation due at ``now``. Restarting on the same
        interface while already soliciting keeps the current back-off (no burst)."""
        if self._solicit_next is not None and self._solicit_interface == interface:
            return
        self._solicit_interface = interface
        self._solicit_next = now
        self._solicit_count = 0

    def stop_soliciting(self) -> None:
        self._solicit_interface = None
        self._solicit_next = None
        self._solicit_count = 0

    def interval_after(self, count: int) -> float:
        """Time between solicitation number ``count`` (1-based) and the next: the initial
        interval for the first ``initial_solicitations``, then doubling, bounded."""
        if count < self.initial_solicitations:
            return self.initial_interval
        doublings = count - self.initial_solicitations + 1
        return min(self.initial_interval * 2.0 ** min(doublings, 64), self.max_interval)

    def poll(self, now: float) -> str | None:
        """If a solicitation is due at ``now``, advance the schedule and return the
        interface to send it on."""
        if self._solicit_next is None or now < self._solicit_next:
            return None
        interface = self._solicit_interface
        self._solicit_count += 1
        if self.max_solicitations is not None and self._solicit_count >= self.max_solicitations:
            self._solicit_next = None
        else:
            interval = self.interval_after(self._solicit_count)
            if self.jitter:
                interval *= 1.0 + self._rng.uniform(0.0, self.jitter)
            self._solicit_next = now + interval
        return interface

    def next_deadline(self) -> float | None:
        # (read after every call into the node: no list built)
        d = self._solicit_next
        a = self._first
        if a is not None and (d is None or a.expires < d):
            d = a.expires
        if self._more:
            for a in self._more.values():
                e = a.expires
                if d is None or e < d:
                    d = e
        return d


__all__ = [
    "REBOOT_SEQUENCE_LIMIT",
    "AdvertisementResult",
    "Agent",
    "AgentDiscovery",
    "address_moved",
    "prefix_moved",
    "sequence_shows_reboot",
]
