"""Agent Advertisements: building, scheduling, answering solicitations, the challenge ring
(RFC 5944 §2.1, §2.3; RFC 1256; challenges RFC 4721 §3). Serves the foreign agent and the
home agent alike.

Theory of operation
-------------------
An :class:`Advertiser` speaks for one mobility agent on one or more links
(:class:`AdvertisedLink`). The agent describes what it offers once, in
:class:`AdvertiserSettings` (the flags, the Registration Lifetime, the ICMP Lifetime and
code); the advertiser keeps, per link, the sequence number, the next periodic advertisement,
the last solicited one and whether the link is up.

* **Sequence numbers** (RFC 5944 §2.3.2): 0 in the first advertisement after the agent
  starts, then +1 per advertisement, wrapping from 0xffff to 256 -- never back to 0--255,
  so a mobile node can tell a reboot (a low number) from a wrap (:func:`next_sequence`).
* **Periodic advertisements**: with an ``interval``, every up link advertises at its
  ``destination`` (224.0.0.1 or 255.255.255.255, RFC 1256 §4.1) from the first
  :meth:`Advertiser.on_timer`, then every ``interval`` seconds; a link that comes up
  advertises at once (:meth:`Advertiser.set_link`). IP TTL 1: advertisements stay on the
  link (RFC 1256 §4.1, RFC 5944 §2.3).
* **Solicitations** (RFC 5944 §2.3, RFC 1256 §6.2.6) are answered at once, at most once per
  ``solicitation_interval`` per link: unicast to the solicitor at the link-layer address it
  came from (a mobile node away from home has no on-link address to ARP for, RFC 5944
  §4.2.1), or multicast when the source is 0.0.0.0 -- or when its link-layer address is
  unknown and ARP cannot be relied on (``arp_on_link`` false: a foreign agent's visitors).
* **Challenges** (RFC 4721 §3.1): with ``challenge_length``, every advertisement carries a
  fresh Challenge Extension drawn from the agent's ``rng``; the last ``challenge_window`` per
  link are current, older ones (up to 64) are remembered as stale, and the last 4096 answered
  ones as used, so :meth:`Advertiser.check_challenge` can tell 104 (unknown), 106 (stale or
  replayed) from a good one (RFC 4721 §3.2).

The advertiser counts ``advertisements_sent`` and ``solicitations_answered`` in the agent's
:class:`~mip4.core.counters.Counters` and raises
:class:`~mip4.core.registration.Discard` for a solicitation it will not answer (link down,
rate limited); the agent's error boundary counts it.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError
from mip4.wire.extensions import Extension
from mip4.wire.icmp import (
    AgentAdvertisement,
    AgentFlags,
    AgentSolicitation,
    ChallengeExtension,
    MobilityAgentAdvertisementExtension,
    PrefixLengthsExtension,
    RouterAddress,
    decode_icmp,
)

from .actions import SendIcmp
from .counters import Counters
from .registration import Discard, RegistrationDenied

__all__ = [
    "ALL_SYSTEMS",
    "SEQUENCE_WRAP_TO",
    "AdvertisedLink",
    "Advertiser",
    "AdvertiserSettings",
    "icmp_lifetime",
    "next_sequence",
]

#: All-systems multicast group, the default advertisement destination (RFC 1256 §4.1).
ALL_SYSTEMS = IPv4Address("224.0.0.1")
#: The sequence number after 0xffff (RFC 5944 §2.3.2).
SEQUENCE_WRAP_TO = 256
_ZERO = IPv4Address(0)
#: How many challenges that left the window are still recognised as stale (106, not 104).
_OLD_CHALLENGES = 64
#: How many answered challenges are remembered (106 for a replay).
_USED_CHALLENGES = 4096


def next_sequence(sequence: int) -> int:
    """The advertisement sequence number after ``sequence``: +1, and 0xffff -> 256
    (RFC 5944 §2.3.2: 0--255 are only used right after a reboot)."""
    return SEQUENCE_WRAP_TO if sequence >= 0xFFFF else sequence + 1


def icmp_lifetime(configured: int | None, interval: float) -> int:
    """The ICMP Lifetime of an advertisement: ``configured``, or three intervals
    (RFC 1256 §4.1 default), within 1..65535."""
    if configured is not None:
        return configured
    return min(0xFFFF, max(1, round(3 * interval)))


@dataclass(frozen=True)
class AdvertisedLink:
    """One link an agent advertises on."""

    #: interface name (events' ``interface``)
    interface: str
    #: the agent's address there: the advertisement's router address and IP source
    address: IPv4Address
    #: Prefix-Lengths Extension (RFC 5944 §2.1.2)
    prefix_len: int
    #: care-of addresses offered (a foreign agent); empty for a home agent only
    care_of_addresses: tuple[IPv4Address, ...] = ()
    #: where periodic and unaddressed advertisements go (RFC 1256 §4.1)
    destination: IPv4Address = ALL_SYSTEMS


@dataclass(frozen=True)
class AdvertiserSettings:
    """What an agent's advertisements say and how often it sends them."""

    #: the flags the agent always advertises (B is added while busy, see ``busy``)
    flags: AgentFlags
    #: Registration Lifetime of the Mobility Agent Advertisement Extension
    registration_lifetime: int
    #: ICMP Lifetime of the advertisement (:func:`icmp_lifetime`)
    icmp_lifetime: int
    #: ICMP code: 0, or 16 when the agent does not route common traffic (RFC 5944 §2.1)
    code: int = 0
    #: seconds between periodic advertisements; ``None``: only answer solicitations
    interval: float | None = None
    #: at most one solicited advertisement per link per this many seconds (0: no limit)
    solicitation_interval: float = 0.0
    #: whether an answer may be unicast without the solicitor's link-layer address (the
    #: home link, where the solicitor's address is on-link and ARP works)
    arp_on_link: bool = False
    #: RFC 4721 challenge length in bytes (0: no challenges)
    challenge_length: int = 0
    #: how many of the most recent challenges per link a request may answer
    challenge_window: int = 2


@dataclass
class _LinkState:
    sequence: int = 0
    next_advertisement: float | None = None
    last_solicited: float | None = None
    up: bool = True


class Advertiser:
    """Agent Advertisements of one agent on its links. See the module docstring."""

    def __init__(
        self,
        links: Iterable[AdvertisedLink],
        settings: AdvertiserSettings,
        counters: Counters,
        rng: random.Random,
    ) -> None:
        self.settings = settings
        self._links = {link.interface: link for link in links}
        self._counters = counters
        self._rng = rng
        first = 0.0 if settings.interval is not None else None
        self._state = {name: _LinkState(next_advertisement=first) for name in self._links}
        n = settings.challenge_window
        self._challenges: dict[str, deque[bytes]] = {name: deque(maxlen=n) for name in self._links}
        self._old_challenges: dict[str, deque[bytes]] = {
            name: deque(maxlen=_OLD_CHALLENGES) for name in self._links
        }
        self._used_challenges: deque[bytes] = deque(maxlen=_USED_CHALLENGES)

    # -- state ----------------------------------------------------------------------------

    @property
    def sequences(self) -> Mapping[str, int]:
        """Per link, the sequence number the next advertisement will carry."""
        return {name: st.sequence for name, st in self._state.items()}

    def link(self, interface: str) -> AdvertisedLink | None:
        return self._links.get(interface)

    def is_up(self, interface: str) -> bool:
        st = self._state.get(interface)
        return st is not None and st.up

    def next_deadline(self) -> float | None:
        """The earliest periodic advertisement due on an up link. Asked after every read
        an agent handles: one pass over the links, no list built (issue 13)."""
        best: float | None = None
        for st in self._state.values():
            due = st.next_advertisement
            if st.up and due is not None and (best is None or due < best):
                best = due
        return best

    def set_link(self, interface: str, up: bool, now: float) -> bool:
        """Record a link going up or down; a link that comes up advertises at once.
        ``False`` when the interface is not one of ours."""
        st = self._state.get(interface)
        if st is None:
            return False
        st.up = up
        if up and self.settings.interval is not None:
            st.next_advertisement = now
        return True

    # -- advertisements -------------------------------------------------------------------

    def advertisement(self, interface: str, *, busy: bool = False) -> AgentAdvertisement:
        """The advertisement the agent would send now on ``interface`` (does not advance
        the sequence number, draws no challenge). ``busy`` adds B (RFC 5944 §2.1.1)."""
        s = self.settings
        link = self._links[interface]
        flags = s.flags | AgentFlags.B if busy else s.flags
        exts: list[Extension] = [
            MobilityAgentAdvertisementExtension(
                self._state[interface].sequence,
                s.registration_lifetime,
                flags,
                link.care_of_addresses,
            ),
            PrefixLengthsExtension((link.prefix_len,)),
        ]
        return AgentAdvertisement(
            code=s.code,
            lifetime=s.icmp_lifetime,
            router_addresses=(RouterAddress(link.address, 0),),
            extensions=tuple(exts),
        )

    def advertise(
        self,
        interface: str,
        dst: IPv4Address,
        link_dst: bytes | None = None,
        *,
        busy: bool = False,
    ) -> SendIcmp:
        """Send one advertisement on ``interface`` to ``dst``: a fresh challenge when
        configured, then the sequence number advances."""
        adv = self.advertisement(interface, busy=busy)
        if self.settings.challenge_length:
            # RFC 4721 §3.1: a fresh challenge in every advertisement.
            challenge = self._rng.randbytes(self.settings.challenge_length)
            recent = self._challenges[interface]
            if len(recent) == recent.maxlen:
                self._old_challenges[interface].append(recent[0])
            recent.append(challenge)
            adv = AgentAdvertisement(
                adv.code,
                adv.lifetime,
                adv.router_addresses,
                (*adv.extensions, ChallengeExtension(challenge)),
            )
        st = self._state[interface]
        # RFC 5944 §2.3.2: 0 first, then +1, wrapping to 256.
        st.sequence = next_sequence(st.sequence)
        self._counters.event("advertisements_sent")
        return SendIcmp(
            dst=dst,
            payload=adv.encode(),
            interface=interface,
            src=self._links[interface].address,
            ttl=1,  # RFC 1256 §4.1 / RFC 5944 §2.3: advertisements stay on the link
            link_dst=link_dst,
        )

    def on_timer(self, now: float, *, busy: bool = False) -> list[SendIcmp]:
        """The periodic advertisements due at ``now``."""
        interval = self.settings.interval
        out: list[SendIcmp] = []
        if interval is None:
            return out
        for name, st in self._state.items():
            if st.up and st.next_advertisement is not None and st.next_advertisement <= now:
                out.append(self.advertise(name, self._links[name].destination, busy=busy))
                st.next_advertisement = now + interval
        return out

    # -- solicitations --------------------------------------------------------------------

    @staticmethod
    def is_solicitation(payload: bytes) -> bool:
        """Whether an ICMP router discovery message is an Agent Solicitation (``False``:
        another agent's advertisement). Undecodable bytes are a
        :class:`~mip4.core.registration.Discard` (``icmp_decode_error``)."""
        try:
            msg = decode_icmp(payload)
        except DecodeError as e:
            raise Discard("icmp_decode_error", str(e)) from None
        return isinstance(msg, AgentSolicitation)

    def answer(
        self,
        interface: str,
        src: IPv4Address,
        link_src: bytes | None,
        now: float,
        *,
        busy: bool = False,
    ) -> SendIcmp:
        """Answer a solicitation from ``src`` heard on ``interface`` (see the module
        docstring); :class:`Discard` when the link is down or the answer rate-limited."""
        st = self._state[interface]
        if not st.up:
            raise Discard("link_down", interface)
        limit = self.settings.solicitation_interval
        if limit and st.last_solicited is not None and now - st.last_solicited < limit:
            raise Discard("solicitation_rate_limited", str(src))
        st.last_solicited = now
        self._counters.event("solicitations_answered")
        if src == _ZERO or (link_src is None and not self.settings.arp_on_link):
            # No address to answer, or no link-layer address to reach it without ARP.
            return self.advertise(interface, self._links[interface].destination, busy=busy)
        # Unicast to the solicitor, at its link-layer address: a mobile node away from home
        # has no on-link address to ARP for (RFC 5944 §4.2.1 / §2.3).
        return self.advertise(interface, src, link_src, busy=busy)

    # -- challenges (RFC 4721 §3.2) ---------------------------------------------------------

    def check_challenge(self, interface: str, challenge: bytes | None) -> None:
        """A request heard on ``interface`` must answer one of the current challenges
        advertised there: :class:`RegistrationDenied` 105 (none), 106 (used or no longer
        current), 104 (never advertised)."""
        if challenge is None:
            raise RegistrationDenied(ReplyCode.FA_MISSING_CHALLENGE, "no MN-FA Challenge extension")
        if challenge in self._used_challenges:
            raise RegistrationDenied(ReplyCode.FA_STALE_CHALLENGE, "challenge already used")
        if challenge not in self._challenges.get(interface, ()):
            if challenge in self._old_challenges.get(interface, ()):
                raise RegistrationDenied(ReplyCode.FA_STALE_CHALLENGE, "challenge no longer valid")
            raise RegistrationDenied(ReplyCode.FA_UNKNOWN_CHALLENGE, "challenge not advertised")

    def spend_challenge(self, challenge: bytes) -> None:
        """A challenge answered by a relayed request may not be answered again."""
        self._used_challenges.append(challenge)
