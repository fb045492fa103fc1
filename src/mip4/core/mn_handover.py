"""The mobile node's handover part: link-layer anticipation and Fast Binding Updates
(RFC 4881 L2 triggers, RFC 4988 fast handovers).

Theory of operation
-------------------
:class:`MnHandover` is a part of :class:`~mip4.core.mobile_node.MobileNode`, present when the
node is built with :class:`HandoverSettings`. Like the attachment part and the
registration client it returns actions and outcomes and never calls the coordinator.

**Link-layer triggers.** On ``LinkUp`` the node solicits at once and registers on the first
advertisement (:mod:`mip4.core.mn_attachment`, always so). With handover settings, a
``LinkDown`` of the link the node was attached through also emits
:class:`~mip4.core.actions.LeaveForeignAgent`: the routes through the old agent go at once.

**Anticipation** (:class:`~mip4.core.events.MoveAnticipated`, "about to move to network
X": the new agent's advertisement known in advance, as a wireless scan report gives it).
The node keeps it (:meth:`anticipate`); when the link comes up on that interface the
coordinator treats the advertisement as heard there, so the node registers through the new
agent at once instead of waiting for a solicited advertisement, and solicits once more to
confirm. A wrong anticipation (another agent answers) is a move by RFC 5944 §2.4.2.2:
the node registers through the agent actually there; the anticipated agent's record ages out
with its ICMP lifetime.

**Fast handover** (:attr:`HandoverMode.FAST`, RFC 4988). On the anticipation, a node
registered through a foreign agent sends it a Fast Binding Update (type 20) naming the new
agent's care-of address; the old agent sets up the edge tunnel with the new one
(:mod:`mip4.core.fa_handoff`) and answers with a Fast Binding Acknowledgement (type 21).
Unanswered, the update is sent again after ``retransmit_initial`` seconds, doubling, at most
``retransmit_limit`` times; then -- or on a denial, or when the link goes down first -- the node
falls back to the normal registration on arrival (``mn.fast_binding_failed``). Layouts and
field use are mip4's reading (see :mod:`mip4.core.fa_handoff`).

**Low latency** (:attr:`HandoverMode.LOW_LATENCY`, RFC 4881). Pre-registration, mip4's
reading of §3 (mobile-initiated): on the anticipation, a node registered through a
foreign agent registers at once through the new agent -- the request is addressed to the
new agent and handed to the current one (its link-layer address), which relays it and
relays the new agent's reply back (:mod:`mip4.core.fa_handoff`). The node's attachment is
the new agent from then on; the current agent's advertisements do not undo it while the
node is still on that link. At the switch the anticipated advertisement counts as heard
on the new link and the node registers again from there (the new agent learns its
link-layer address and flushes what it buffered). Post-registration edge tunnels are set
up by the agents (source trigger, :class:`~mip4.core.events.HandoffTrigger`); both
together are RFC 4881's combined method.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv4Network

from mip4.security.auth import MN_FA, AuthenticationError, sign, verify
from mip4.security.sa import SecurityAssociation
from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError
from mip4.wire.extensions import MobileForeignAuthExtension
from mip4.wire.icmp import AgentAdvertisement, decode_icmp
from mip4.wire.messages import FastBindingAck, FastBindingUpdate, RegistrationFlags, decode_message

from .actions import MIP_PORT, Action, Log, SendUdp
from .counters import Counters
from .discovery import Agent
from .events import MoveAnticipated

__all__ = ["Anticipation", "HandoverMode", "HandoverSettings", "MnHandover"]


class HandoverMode(Enum):
    """How the node hands over between foreign agents."""

    BASE = "base"  #: RFC 5944 only (the anticipation still speeds up the first request)
    LOW_LATENCY = "low-latency"  #: RFC 4881: the agents tunnel between themselves
    FAST = "fast"  #: RFC 4988: Fast Binding Update to the previous agent


@dataclass(frozen=True)
class HandoverSettings:
    mode: HandoverMode = HandoverMode.FAST
    #: Lifetime asked for in a Fast Binding Update (the edge tunnel's), seconds
    lifetime: int = 10
    #: seconds before an unanswered Fast Binding Update is sent again (then doubling);
    #: with the limit, longer than the previous agent waits for the new one (its
    #: :class:`~mip4.core.fa_handoff.HandoffSettings` defaults: 0.1 s, 3 times), so that
    #: its answer -- also a refusal -- reaches the node
    retransmit_initial: float = 0.2
    #: retransmissions of an unanswered Fast Binding Update before falling back
    retransmit_limit: int = 3
    #: MN-FA security association shared with the foreign agents: Fast Binding Updates
    #: carry a Mobile-Foreign Authentication extension, and acknowledgements must too
    mn_fa_sa: SecurityAssociation | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.lifetime <= 0xFFFF:
            raise ValueError("handover lifetime must be 1..65535")
        if not self.retransmit_initial > 0 or self.retransmit_limit < 0:
            raise ValueError("handover retransmit_initial must be > 0, retransmit_limit >= 0")


@dataclass(frozen=True)
class Anticipation:
    """The advertisement of the agent the node is about to move to."""

    interface: str
    advertisement: AgentAdvertisement
    src: IPv4Address
    link_src: bytes | None

    @property
    def care_of_address(self) -> IPv4Address | None:
        m = self.advertisement.mobility
        return m.care_of_addresses[0] if m is not None and m.care_of_addresses else None

    def contradicted_by(self, address: IPv4Address | None) -> bool:
        """The link came up with ``address``, outside every network the anticipated agent
        advertises (RFC 5944 §2.1.2 Prefix-Lengths): the anticipation was wrong."""
        adv = self.advertisement
        lengths = adv.prefix_lengths
        if address is None or lengths is None:
            return False
        return not any(
            address in IPv4Network((r.address, p), strict=False)
            for r, p in zip(adv.router_addresses, lengths, strict=True)
        )


@dataclass
class _Fbu:
    update: FastBindingUpdate
    agent: Agent
    port: int
    next_send: float
    tries: int = 0


class MnHandover:
    """The handover part of the mobile node (see the module docstring)."""

    def __init__(self, settings: HandoverSettings, counters: Counters, rng: random.Random) -> None:
        self.settings = settings
        self.counters = counters
        self._rng = rng
        self.anticipated: Anticipation | None = None
        self._fbu: _Fbu | None = None
        #: the new care-of address the previous agent acknowledged (RFC 4988), if any
        self.acknowledged: IPv4Address | None = None
        #: (interface, agent) of the agent the node pre-registered away from, while it is
        #: still on that agent's link (RFC 4881 §3)
        self.pre_registering_from: tuple[str, IPv4Address] | None = None

    @property
    def mode(self) -> HandoverMode:
        return self.settings.mode

    @property
    def fbu_outstanding(self) -> bool:
        return self._fbu is not None

    def next_deadline(self) -> float | None:
        return self._fbu.next_send if self._fbu is not None else None

    def anticipate(self, ev: MoveAnticipated, out: list[Action]) -> Anticipation | None:
        """Keep the anticipated agent's advertisement; ``None`` when it is not one."""
        try:
            adv = decode_icmp(ev.advertisement)
        except DecodeError as e:
            self.counters.discard("anticipation_malformed")
            out.append(Log("mn.discard", {"what": "anticipation", "why": str(e)}))
            return None
        if not isinstance(adv, AgentAdvertisement) or adv.mobility is None:
            self.counters.discard("anticipation_not_an_agent")
            out.append(Log("mn.discard", {"what": "anticipation", "why": "not an agent"}))
            return None
        a = Anticipation(ev.interface, adv, ev.src, ev.link_src)
        self.anticipated = a
        self.acknowledged = None
        self.counters.event("anticipations")
        out.append(
            Log(
                "mn.move_anticipated",
                {"interface": ev.interface, "agent": ev.src, "care_of_address": a.care_of_address},
            )
        )
        return a

    def take(self, interface: str) -> Anticipation | None:
        """The anticipation for ``interface``, consumed (the link came up there)."""
        a = self.anticipated
        if a is None or a.interface != interface:
            return None
        self.anticipated = None
        return a

    # -- RFC 4988 -----------------------------------------------------------------------

    def fast_binding_update(
        self,
        agent: Agent,
        home_address: IPv4Address,
        home_agent: IPv4Address,
        new_care_of: IPv4Address,
        port: int,
        now: float,
        out: list[Action],
    ) -> None:
        update = FastBindingUpdate(
            flags=RegistrationFlags(0),
            lifetime=self.settings.lifetime,
            home_address=home_address,
            home_agent=home_agent,
            care_of_address=new_care_of,
            identification=self._rng.getrandbits(64),
        )
        if self.settings.mn_fa_sa is not None:
            update = sign(update, MobileForeignAuthExtension, self.settings.mn_fa_sa)
        self._fbu = _Fbu(update, agent, port, now)
        self._send(now, out)

    def _send(self, now: float, out: list[Action]) -> None:
        f = self._fbu
        assert f is not None
        self.counters.event("fast_binding_retransmissions" if f.tries else "fast_binding_updates")
        f.next_send = now + self.settings.retransmit_initial * (2**f.tries)
        f.tries += 1
        out.append(
            SendUdp(
                dst=f.agent.address,
                payload=f.update.raw or f.update.encode(),
                sport=f.port,
                dport=MIP_PORT,
                interface=f.agent.interface,
                link_dst=f.agent.link_address,
                ttl=1,  # to an agent on the link, as a request to a foreign agent (§3.6.1.1)
            )
        )

    def is_ack(self, payload: bytes) -> bool:
        return bool(payload) and payload[0] == FastBindingAck.TYPE

    def on_ack(self, payload: bytes, src: IPv4Address, out: list[Action]) -> None:
        """A Fast Binding Acknowledgement from the previous agent."""
        f = self._fbu
        try:
            ack = decode_message(payload)
        except DecodeError as e:
            self.counters.discard("fast_binding_ack_malformed")
            out.append(Log("mn.discard", {"what": "fast binding ack", "why": str(e)}))
            return
        if (
            f is None
            or not isinstance(ack, FastBindingAck)
            or ack.identification != f.update.identification
            or ack.home_address != f.update.home_address
            or src != f.agent.address
        ):
            self.counters.discard("fast_binding_ack_unmatched")
            out.append(Log("mn.discard", {"what": "fast binding ack", "why": "unmatched"}))
            return
        sa = self.settings.mn_fa_sa
        if sa is not None:
            try:
                verify(ack, MN_FA, lambda spi: sa if spi == sa.spi else None)
            except AuthenticationError as e:
                self.counters.discard("fast_binding_ack_auth_failed")
                out.append(Log("mn.discard", {"what": "fast binding ack", "why": str(e)}))
                return
        self._fbu = None
        if ack.code == ReplyCode.ACCEPTED:
            self.acknowledged = f.update.care_of_address
            self.counters.event("fast_binding_acked")
            out.append(
                Log(
                    "mn.fast_binding_acked",
                    {"agent": src, "care_of_address": f.update.care_of_address},
                )
            )
        else:
            self.counters.event("fast_binding_denied")
            out.append(
                Log(
                    "mn.fast_binding_failed",
                    {"agent": src, "code": ack.code, "fallback": "registration on arrival"},
                )
            )

    def cancel(self, why: str, out: list[Action]) -> None:
        if self._fbu is not None:
            self._fbu = None
            out.append(
                Log("mn.fast_binding_failed", {"why": why, "fallback": "registration on arrival"})
            )

    def on_timer(self, now: float, out: list[Action]) -> None:
        f = self._fbu
        if f is None or f.next_send > now:
            return
        if f.tries > self.settings.retransmit_limit:
            self._fbu = None
            self.counters.event("fast_binding_unanswered")
            out.append(
                Log(
                    "mn.fast_binding_failed",
                    {
                        "agent": f.agent.address,
                        "why": "no acknowledgement",
                        "tries": f.tries,
                        "fallback": "registration on arrival",
                    },
                )
            )
            return
        self._send(now, out)
