"""Handovers between foreign agents: bi-directional edge tunnels (RFC 4881
post-registration), Fast Binding Updates (RFC 4988) and buffering at the new agent.

Theory of operation
-------------------
:class:`FaHandoff` is a part of :class:`~mip4.core.foreign_agent.ForeignAgent`, present when
the agent is built with :class:`HandoffSettings` (without them the agent discards types 16,
17, 20 and 21 as one that does not implement RFC 4881/4988 would, and the other side falls
back to a normal registration). Like the other parts it returns actions and never calls
back into the coordinator.

**Which reading.** The RFC 4881 and RFC 4988 body texts were not reachable when this was
written (only their contents pages); the message layouts are the codec's
(:mod:`mip4.wire.msg_handover`, marked UNVERIFIED), and the behaviour below is mip4's reading
of the two designs, not a checked transcription. In particular:

* one FA-FA exchange serves both RFCs: a Handoff Request (type 16) from the previous agent
  to the new one sets up the edge tunnel and a Handoff Reply (type 17) answers it. RFC 4988
  names its own previous/new access router messages; mip4 uses 16/17 for them.
* Handoff Request fields: Home Address = the mobile node's, Home Agent = its home agent,
  Care-of Address = the previous agent's care-of address (where the home agent still
  tunnels), Lifetime = the tunnel's requested lifetime (0 tears the tunnel down),
  Identification = 64 random bits the reply echoes. Flag :data:`BUFFER_FLAG` (mip4's choice
  of bit) asks the new agent to buffer until the node arrives (RFC 4988).
* Handoff Reply Code: 0 accepted; otherwise a Registration Reply foreign-agent code
  (IANA's "Code Values for Mobile IP Handoff Reply Messages" were not checked). Lifetime =
  the lifetime granted.
* Handoff Request extension: a Generalized Link-Layer Address extension (type 138,
  RFC 4881; sub-type :data:`GLLA_IEEE_802`, mip4's choice) carries the node's hardware
  address from the previous agent's visitor entry when it has one, so that the new
  agent can deliver to the node before it hears from it (below).
* Fast Binding Update (type 20) from the visitor to its current agent: Care-of Address =
  the new agent's care-of address, which is also the new agent's address (foreign-agent
  care-of addresses). The agent accepts it only from a current visitor, on the
  visitor's link, from the visitor's link-layer address, and -- when it shares an MN-FA
  security association with the node, or the update carries one -- with a Mobile-Foreign
  Authentication extension that verifies (the acknowledgement is then signed with it).
  The Fast Binding Acknowledgement (type 21) answers with the Handoff Reply's code, or 78
  when the new agent never answered.

**Post-registration** (RFC 4881). A link-layer source trigger
(:class:`~mip4.core.events.HandoffTrigger`) or a Fast Binding Update makes the previous
agent (*source*) send a Handoff Request to the new one (*target*), retransmitted after
``retransmit_initial`` seconds, doubling, at most ``retransmit_limit`` times. The target
installs its end (:class:`~mip4.core.actions.InstallEdgeTunnel`, role TARGET, with
:class:`~mip4.core.actions.BufferPackets` when asked) and answers; the source installs
its end (role SOURCE: the visitor's datagrams go on to the target). When the node arrives
at the target -- its first Registration Request there -- the target delivers the buffer and
the tunnel's datagrams to it (:class:`~mip4.core.actions.FlushBuffer`). When the request
named the node's hardware address and the target knows on which link the node will arrive
(:attr:`FaHandoff.links`: the care-of address the request came to → the interface it is
offered on), the target does not wait for that request (issue 14): it delivers what the
tunnel brings straight to the node from the Handoff Request on (a first ``FlushBuffer``,
of a buffer still empty) while also buffering it (``BufferPackets`` after it: copies, the
newest kept -- also without the buffer flag, mip4's choice); the ``FlushBuffer`` at the
node's first request then delivers the copies, filling what the link switch itself lost.
When the target relays the arrived node's Registration Request, it first installs the
node's delivery (:meth:`FaHandoff.relayed`: an ``InstallVisitor`` without the reverse
tunnel; issue 14, mip4's choice): the home agent moves its binding before its reply
reaches the target, and a foreign agent accepts a home agent's tunnel only for a visitor;
the reply's ``InstallVisitor`` replaces it. When the home agent accepts the node's
registration through the target, the target removes its end and sends a Handoff Request
with Lifetime 0; the source removes its end on it. Otherwise each end removes itself
when the tunnel's lifetime ends. A buffer the node never collects (a wrong anticipation)
is dropped after ``buffer_timeout`` (:class:`~mip4.core.actions.DropBuffer`).

**Pre-registration** (RFC 4881 §3, mobile-initiated; mip4's reading). A visitor's
Registration Request addressed to another agent (the new one) and handed to us is relayed
to it byte for byte from our address (:meth:`FaHandoff.relay_pre_registration`); the new
agent's reply, which comes back to us, is relayed to the visitor on its link. The new agent
treats the request as any other; when it accepts a registration for a node whose
link-layer address it does not know (the node is not on its link yet) it buffers what the
home agent now tunnels to it (:meth:`FaHandoff.expect`) until the node's first request on
its link, or drops it after ``buffer_timeout``. With a source trigger as well, this is the
combined method: the edge tunnel covers a switch that comes before the pre-registration
completed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from ipaddress import IPv4Address

from mip4.security.auth import sign
from mip4.security.sa import SecurityAssociation
from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError
from mip4.wire.ext_mobility import GeneralizedLLAExtension
from mip4.wire.extensions import MobileForeignAuthExtension
from mip4.wire.messages import (
    FastBindingAck,
    FastBindingUpdate,
    HandoffReply,
    HandoffRequest,
    RegistrationRequest,
    decode_message,
)

from .actions import (
    Action,
    BufferPackets,
    DropBuffer,
    EdgeRole,
    FlushBuffer,
    InstallEdgeTunnel,
    InstallVisitor,
    Log,
    RemoveEdgeTunnel,
    RemoveVisitor,
    SendUdp,
)
from .counters import Counters
from .registration import ConfigError, Discard

#: Handoff Request flag asking the new agent to buffer until the node arrives (mip4's
#: choice of bit; RFC 4881's flag layout could not be checked).
BUFFER_FLAG = 0x01

#: Generalized Link-Layer Address sub-type for an IEEE 802 (Ethernet) hardware address in a
#: Handoff Request (mip4's choice: IANA's sub-type registry could not be read, see
#: docs/handovers.md)
GLLA_IEEE_802 = 2

#: message types this part handles at a foreign agent
HANDOFF_MESSAGE_TYPES = (HandoffRequest.TYPE, HandoffReply.TYPE, FastBindingUpdate.TYPE)


@dataclass(frozen=True)
class HandoffSettings:
    """What a foreign agent offers for handovers (RFC 4881, RFC 4988)."""

    #: seconds an edge tunnel lives unless the registration completes first
    lifetime: int = 10
    #: seconds before an unanswered Handoff Request is sent again (then doubling)
    retransmit_initial: float = 0.1
    #: retransmissions of an unanswered Handoff Request before giving up
    retransmit_limit: int = 3
    #: most datagrams buffered per arriving mobile node at the new agent
    buffer_limit: int = 64
    #: seconds the new agent keeps a buffer for a node that has not arrived
    buffer_timeout: float = 2.0
    #: most edge tunnels at once (the target answers 66 beyond it)
    max_tunnels: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.lifetime <= 0xFFFF:
            raise ConfigError("lifetime not in 1..65535")
        if not self.retransmit_initial > 0 or self.retransmit_limit < 0:
            raise ConfigError("retransmit_initial must be > 0, retransmit_limit >= 0")
        if self.buffer_limit < 0 or not self.buffer_timeout > 0:
            raise ConfigError("buffer_limit must be >= 0 and buffer_timeout > 0")
        if self.max_tunnels < 1:
            raise ConfigError("max_tunnels must be >= 1")


@dataclass
class EdgeTunnel:
    """One end of a bi-directional edge tunnel held by this agent."""

    home_address: IPv4Address
    peer: IPv4Address
    local: IPv4Address
    role: EdgeRole
    expires: float
    #: TARGET with buffering: when the buffer is dropped if the node has not arrived
    buffer_until: float | None = None
    #: TARGET: the node arrived on our link (buffer flushed)
    arrived: bool = False
    #: TARGET: (interface, hardware address) the tunnel's datagrams are delivered to
    #: before the node arrived (from the Handoff Request's Generalized Link-Layer Address)
    early: tuple[str, bytes] | None = None


@dataclass(frozen=True)
class FbuOrigin:
    """Where to send the Fast Binding Acknowledgement for a Fast Binding Update."""

    update: FastBindingUpdate
    interface: str
    link_address: bytes | None
    local: IPv4Address
    port: int
    #: the MN-FA security association the update verified with: the acknowledgement is
    #: signed with it
    mn_fa: SecurityAssociation | None = None


@dataclass
class Proxied:
    """A pre-registration relayed from a visitor to the new agent (RFC 4881 §3, mip4's
    reading): the reply comes back through us."""

    home_address: IPv4Address
    new_agent: IPv4Address
    low_identification: int
    interface: str
    link_address: bytes | None
    local: IPv4Address
    port: int
    expires: float


@dataclass
class Outgoing:
    """A Handoff Request sent and not yet answered."""

    request: HandoffRequest
    peer: IPv4Address
    local: IPv4Address
    next_send: float
    tries: int = 0
    fbu: FbuOrigin | None = None


class FaHandoff:
    """The handover part of a foreign agent (see the module docstring)."""

    def __init__(self, settings: HandoffSettings, counters: Counters, rng: random.Random) -> None:
        self.settings = settings
        self.counters = counters
        self._rng = rng
        #: edge tunnels by home address
        self.tunnels: dict[IPv4Address, EdgeTunnel] = {}
        #: Handoff Requests awaiting a reply, by Identification
        self.outgoing: dict[int, Outgoing] = {}
        #: pre-registrations relayed to new agents (previous agent), by home address
        self.proxied: dict[IPv4Address, Proxied] = {}
        #: pre-registered nodes not yet on our link (new agent): buffer kept until then
        self.awaiting: dict[IPv4Address, float] = {}
        #: nodes handed over to us whose registration is relayed and not yet accepted:
        #: home address → interface of the delivery installed for them (:meth:`relayed`)
        self.provisional: dict[IPv4Address, str] = {}
        #: our care-of addresses → the interface of the link each is offered on, where a
        #: node handed over to that address will arrive (set by the agent; without an
        #: entry the new agent delivers only once the node's first request came)
        self.links: dict[IPv4Address, str] = {}

    # -- deadlines ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        times = [o.next_send for o in self.outgoing.values()]
        times += [p.expires for p in self.proxied.values()]
        times += list(self.awaiting.values())
        for t in self.tunnels.values():
            times.append(t.expires)
            if t.buffer_until is not None and not t.arrived:
                times.append(t.buffer_until)
        return min(times) if times else None

    # -- starting a handoff (source side) -----------------------------------------------

    def start(
        self,
        home_address: IPv4Address,
        home_agent: IPv4Address,
        care_of_address: IPv4Address,
        new_agent: IPv4Address,
        now: float,
        *,
        buffer: bool,
        lifetime: int | None = None,
        fbu: FbuOrigin | None = None,
        link_address: bytes | None = None,
    ) -> list[Action]:
        """Ask ``new_agent`` for an edge tunnel for the visitor ``home_address`` (RFC 4881
        post-registration; RFC 4988 when ``fbu`` says a Fast Binding Update asked). The
        visitor's hardware address (``link_address``, or the one the update came from)
        goes with the request (Generalized Link-Layer Address extension)."""
        if new_agent == care_of_address:
            raise Discard("handoff_to_self", str(new_agent))
        t = self.tunnels.get(home_address)
        if t is not None and t.role is EdgeRole.SOURCE and t.peer == new_agent:
            # already set up (the node's acknowledgement was lost): answer again
            remaining = max(0, int(t.expires - now))
            return [self._fast_binding_ack(fbu, 0, remaining)] if fbu else []
        for o in self.outgoing.values():
            if o.request.home_address == home_address and o.peer == new_agent:
                if fbu is not None and o.request.lifetime:
                    o.fbu = fbu  # the reply will answer the latest update
                return []  # already asking
        granted = min(lifetime or self.settings.lifetime, self.settings.lifetime)
        mac = link_address or (fbu.link_address if fbu is not None else None)
        request = HandoffRequest(
            flags=BUFFER_FLAG if buffer else 0,
            lifetime=granted,
            home_address=home_address,
            home_agent=home_agent,
            care_of_address=care_of_address,
            identification=self._rng.getrandbits(64),
            extensions=(GeneralizedLLAExtension(GLLA_IEEE_802, mac),) if mac else (),
        )
        out: list[Action] = [
            Log(
                "fa.handoff_start",
                {
                    "home_address": home_address,
                    "new_agent": new_agent,
                    "buffer": buffer,
                    "fast": fbu is not None,
                },
            )
        ]
        self._send(
            Outgoing(request, new_agent, care_of_address, now, fbu=fbu),
            now,
            out,
        )
        return out

    def _send(self, o: Outgoing, now: float, out: list[Action]) -> None:
        self.outgoing[o.request.identification] = o
        if o.tries:
            self.counters.event("handoff_retransmissions")
        else:
            self.counters.event("handoff_requests")
        o.next_send = now + self.settings.retransmit_initial * (2**o.tries)
        o.tries += 1
        out.append(SendUdp(dst=o.peer, payload=o.request.encode(), src=o.local))

    def _teardown(
        self, tunnel: EdgeTunnel, now: float, why: str, out: list[Action], *, tell_peer: bool
    ) -> None:
        self.tunnels.pop(tunnel.home_address, None)
        interface = self.provisional.pop(tunnel.home_address, None)
        if interface is not None:  # no registration came of the handover (relayed)
            out.append(RemoveVisitor(tunnel.home_address, interface))
        if tunnel.role is EdgeRole.TARGET and not tunnel.arrived and tunnel.buffer_until:
            out.append(DropBuffer(tunnel.home_address))
        out.append(RemoveEdgeTunnel(tunnel.home_address, tunnel.peer))
        self.counters.event("edge_tunnels_removed")
        out.append(
            Log(
                "fa.edge_tunnel_down",
                {"home_address": tunnel.home_address, "peer": tunnel.peer, "why": why},
            )
        )
        if tell_peer:
            request = HandoffRequest(
                flags=0,
                lifetime=0,
                home_address=tunnel.home_address,
                home_agent=IPv4Address(0),
                care_of_address=tunnel.local,
                identification=self._rng.getrandbits(64),
            )
            self._send(Outgoing(request, tunnel.peer, tunnel.local, now), now, out)

    # -- messages -----------------------------------------------------------------------

    @staticmethod
    def decode(payload: bytes) -> HandoffRequest | HandoffReply | FastBindingUpdate:
        try:
            msg = decode_message(payload)
        except DecodeError as e:
            raise Discard("decode_error", str(e)) from None
        assert isinstance(msg, HandoffRequest | HandoffReply | FastBindingUpdate)
        return msg

    def on_request(
        self, msg: HandoffRequest, src: IPv4Address, local: IPv4Address, sport: int, now: float
    ) -> list[Action]:
        """A Handoff Request from another foreign agent: set up (target side) or tear down
        (either side) an edge tunnel, and answer."""
        out: list[Action] = []
        hoa = msg.home_address
        existing = self.tunnels.get(hoa)
        code = ReplyCode.ACCEPTED
        lifetime = 0
        if msg.lifetime == 0:
            if existing is not None and existing.peer == src:
                self._teardown(existing, now, "peer tore it down", out, tell_peer=False)
        elif existing is not None and existing.peer != src:
            code = ReplyCode.FA_ADMIN_PROHIBITED  # another agent's tunnel for this node
        elif existing is None and len(self.tunnels) >= self.settings.max_tunnels:
            code = ReplyCode.FA_INSUFFICIENT_RESOURCES
        else:
            lifetime = min(msg.lifetime, self.settings.lifetime)
            buffer = bool(msg.flags & BUFFER_FLAG) and self.settings.buffer_limit > 0
            if existing is None:
                tunnel = EdgeTunnel(hoa, src, local, EdgeRole.TARGET, now + lifetime)
                self.tunnels[hoa] = tunnel
                out.append(InstallEdgeTunnel(hoa, src, local, EdgeRole.TARGET, tunnel.expires))
                self.counters.event("edge_tunnels_installed")
                mac = node_link_address(msg)
                interface = self.links.get(local)
                if mac is not None and interface is not None and hoa not in self.awaiting:
                    # issue 14: deliver before the node's first request (module docstring);
                    # not when a pre-registration's buffer is held for the node already
                    # (the combined method): delivery now would empty it into a link the
                    # node is not on yet
                    tunnel.early = (interface, mac)
                    out.append(FlushBuffer(hoa, interface, mac))
                    self.counters.event("handoff_early_deliveries")
                # delivering early, the copies fill what the switch loses even when the
                # request did not ask for a buffer (post-registration): mip4's choice
                hold = buffer or (tunnel.early is not None and self.settings.buffer_limit > 0)
                if hold:
                    tunnel.buffer_until = now + self.settings.buffer_timeout
                    out.append(BufferPackets(hoa, self.settings.buffer_limit))
                out.append(
                    Log(
                        "fa.edge_tunnel_up",
                        {
                            "home_address": hoa,
                            "peer": src,
                            "role": "target",
                            "buffer": buffer,
                            "early": tunnel.early is not None,
                        },
                    )
                )
            # else: a retransmission of a request already granted: answer it again
        if code is not ReplyCode.ACCEPTED:
            self.counters.deny(code)
            out.append(Log("fa.handoff_denied", {"home_address": hoa, "peer": src, "code": code}))
        reply = HandoffReply(int(code), lifetime, hoa, msg.home_agent, msg.identification)
        out.append(SendUdp(dst=src, payload=reply.encode(), src=local, dport=sport))
        return out

    def on_reply(self, msg: HandoffReply, src: IPv4Address, now: float) -> list[Action]:
        """A Handoff Reply: install the source end (or fall back) and answer the node's
        Fast Binding Update if one asked."""
        o = self.outgoing.get(msg.identification)
        if o is None or o.peer != src or o.request.home_address != msg.home_address:
            raise Discard("unmatched_handoff_reply", str(msg.home_address))
        del self.outgoing[msg.identification]
        out: list[Action] = []
        if o.request.lifetime == 0:
            out.append(Log("fa.handoff_teardown_acked", {"home_address": msg.home_address}))
            return out
        hoa = msg.home_address
        if msg.code == ReplyCode.ACCEPTED and msg.lifetime > 0:
            old = self.tunnels.get(hoa)
            if old is not None:
                self._teardown(old, now, "replaced", out, tell_peer=False)
            tunnel = EdgeTunnel(hoa, src, o.local, EdgeRole.SOURCE, now + msg.lifetime)
            self.tunnels[hoa] = tunnel
            out.append(InstallEdgeTunnel(hoa, src, o.local, EdgeRole.SOURCE, tunnel.expires))
            self.counters.event("edge_tunnels_installed")
            out.append(
                Log("fa.edge_tunnel_up", {"home_address": hoa, "peer": src, "role": "source"})
            )
        else:
            out.append(
                Log("fa.handoff_refused", {"home_address": hoa, "peer": src, "code": msg.code})
            )
        if o.fbu is not None:
            out.append(self._fast_binding_ack(o.fbu, msg.code, msg.lifetime))
        return out

    def _fast_binding_ack(self, origin: FbuOrigin, code: int, lifetime: int) -> SendUdp:
        u = origin.update
        ack = FastBindingAck(code, lifetime, u.home_address, u.home_agent, u.identification)
        if origin.mn_fa is not None:
            ack = sign(ack, MobileForeignAuthExtension, origin.mn_fa)
        self.counters.event("fast_binding_acks")
        return SendUdp(
            dst=u.home_address,
            payload=ack.raw or ack.encode(),
            src=origin.local,
            dport=origin.port,
            interface=origin.interface,
            link_dst=origin.link_address,
        )

    # -- pre-registration (RFC 4881 §3): relayed by the previous agent ------------------

    def relay_pre_registration(
        self,
        payload: bytes,
        home_address: IPv4Address,
        identification: int,
        new_agent: IPv4Address,
        interface: str,
        link_address: bytes | None,
        local: IPv4Address,
        port: int,
        now: float,
        timeout: float,
    ) -> list[Action]:
        """A visitor's Registration Request addressed to another agent: relay it, byte for
        byte, from our address; the new agent's reply comes back to us."""
        self.proxied[home_address] = Proxied(
            home_address,
            new_agent,
            identification & 0xFFFFFFFF,
            interface,
            link_address,
            local,
            port,
            now + timeout,
        )
        self.counters.event("pre_registrations_relayed")
        return [
            SendUdp(dst=new_agent, payload=payload, src=local),
            Log("fa.pre_registration_relayed", {"home_address": home_address, "to": new_agent}),
        ]

    def relay_pre_registration_reply(
        self, payload: bytes, home_address: IPv4Address, identification: int, src: IPv4Address
    ) -> list[Action] | None:
        """The new agent's reply to a relayed pre-registration: on to the node (``None``:
        not one of ours)."""
        p = self.proxied.get(home_address)
        if p is None or p.new_agent != src or p.low_identification != identification & 0xFFFFFFFF:
            return None
        del self.proxied[home_address]
        return [
            SendUdp(
                dst=home_address,
                payload=payload,
                src=p.local,
                dport=p.port,
                interface=p.interface,
                link_dst=p.link_address,
            ),
            Log("fa.pre_registration_reply_relayed", {"home_address": home_address, "from": src}),
        ]

    def expect(self, home_address: IPv4Address, now: float) -> list[Action]:
        """New agent: a registration for a node not yet on our link was accepted (a
        pre-registration): buffer what the home agent now tunnels to us until it arrives."""
        if self.settings.buffer_limit == 0 or home_address in self.awaiting:
            return []
        self.awaiting[home_address] = now + self.settings.buffer_timeout
        return [
            BufferPackets(home_address, self.settings.buffer_limit),
            Log("fa.pre_registered", {"home_address": home_address}),
        ]

    # -- the node arrives; its registration completes (target side) ----------------------

    def arrived(
        self, home_address: IPv4Address, interface: str, link_address: bytes | None
    ) -> list[Action]:
        """A Registration Request from ``home_address`` on our link: the node is here."""
        if self.awaiting.pop(home_address, None) is not None:
            self.counters.event("handoff_arrivals")
            return [
                FlushBuffer(home_address, interface, link_address),
                Log("fa.handoff_arrived", {"home_address": home_address, "peer": None}),
            ]
        t = self.tunnels.get(home_address)
        if t is None or t.role is not EdgeRole.TARGET or t.arrived:
            return []
        t.arrived = True
        self.counters.event("handoff_arrivals")
        return [
            FlushBuffer(home_address, interface, link_address),
            Log("fa.handoff_arrived", {"home_address": home_address, "peer": t.peer}),
        ]

    def relayed(
        self,
        request: RegistrationRequest,
        interface: str,
        link_address: bytes | None,
        now: float,
        *,
        visiting: bool,
    ) -> list[Action]:
        """The node's Registration Request, after it arrived through an edge tunnel (the
        target end), was relayed to its home agent (issue 14; mip4's choice). The home
        agent moves its binding to us before its reply reaches us, and from then on tunnels
        the node's datagrams here -- which, without a visitor entry (made on the reply,
        RFC 5944 §3.7.3.2), a foreign agent does not accept from it: each one until the
        reply would be lost (docs/handovers.md). So the delivery a visitor gets is
        installed now, as the reply will install it but without the reverse tunnel (the
        node's datagrams keep going back through the edge tunnel until the home agent has
        the binding); the visitor list gets its entry on the reply as always. It goes
        with the tunnel when no registration came of it (a denial, a timeout: the tunnel's
        lifetime, at most). Not when the agent already delivers to the node (``visiting``:
        an entry of an earlier visit), nor for a deregistration or a node whose hardware
        address is not known."""
        hoa = request.home_address
        t = self.tunnels.get(hoa)
        if (
            visiting
            or link_address is None
            or request.lifetime == 0
            or t is None
            or t.role is not EdgeRole.TARGET
            or hoa in self.provisional
        ):
            return []
        self.provisional[hoa] = interface
        self.counters.event("handoff_early_visitors")
        return [
            InstallVisitor(
                home_address=hoa,
                interface=interface,
                link_address=link_address,
                home_agent=request.home_agent,
                care_of_address=request.care_of_address,
                reverse_tunnel=False,
                expires=t.expires,
            ),
            Log("fa.handoff_delivering", {"home_address": hoa, "home_agent": request.home_agent}),
        ]

    def registered(self, home_address: IPv4Address, now: float) -> list[Action]:
        """The home agent accepted the node's registration through us: the edge tunnel has
        done its work (RFC 4881: torn down when the registration completes)."""
        self.provisional.pop(home_address, None)  # the visitor entry replaces it
        t = self.tunnels.get(home_address)
        if t is None or t.role is not EdgeRole.TARGET:
            return []
        out: list[Action] = []
        self._teardown(t, now, "registration complete", out, tell_peer=True)
        return out

    # -- timers -------------------------------------------------------------------------

    def on_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        for ident, o in list(self.outgoing.items()):
            if o.next_send > now:
                continue
            if o.tries > self.settings.retransmit_limit:
                del self.outgoing[ident]
                self.counters.event("handoff_failures")
                out.append(
                    Log(
                        "fa.handoff_failed",
                        {
                            "home_address": o.request.home_address,
                            "peer": o.peer,
                            "teardown": o.request.lifetime == 0,
                            "tries": o.tries,
                        },
                    )
                )
                if o.fbu is not None:
                    out.append(self._fast_binding_ack(o.fbu, ReplyCode.FA_REGISTRATION_TIMEOUT, 0))
                continue
            self._send(o, now, out)
        for hoa, p in list(self.proxied.items()):
            if p.expires <= now:
                del self.proxied[hoa]
                out.append(Log("fa.pre_registration_unanswered", {"home_address": hoa}))
        for hoa, until in list(self.awaiting.items()):
            if until <= now:
                del self.awaiting[hoa]
                self.counters.event("handoff_buffers_dropped")
                out.append(DropBuffer(hoa))
                out.append(Log("fa.handoff_buffer_dropped", {"home_address": hoa, "peer": None}))
        for t in list(self.tunnels.values()):
            if t.expires <= now:
                self._teardown(t, now, "lifetime ended", out, tell_peer=False)
            elif t.buffer_until is not None and not t.arrived and t.buffer_until <= now:
                t.buffer_until = None
                self.counters.event("handoff_buffers_dropped")
                out.append(DropBuffer(t.home_address))
                out.append(
                    Log(
                        "fa.handoff_buffer_dropped",
                        {"home_address": t.home_address, "peer": t.peer},
                    )
                )
        return out


def node_link_address(msg: HandoffRequest) -> bytes | None:
    """The node's hardware address a Handoff Request carries (its Generalized Link-Layer
    Address extension of sub-type :data:`GLLA_IEEE_802`, six octets), or None."""
    for ext in msg.extensions:
        if (
            isinstance(ext, GeneralizedLLAExtension)
            and ext.subtype == GLLA_IEEE_802
            and len(ext.address) == 6
        ):
            return ext.address
    return None


__all__ = [
    "BUFFER_FLAG",
    "GLLA_IEEE_802",
    "HANDOFF_MESSAGE_TYPES",
    "EdgeTunnel",
    "FaHandoff",
    "FbuOrigin",
    "HandoffSettings",
    "node_link_address",
]
