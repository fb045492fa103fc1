"""The foreign agent's handover inputs (RFC 4881, RFC 4988): which visitor a Handoff
Request or Reply, a Fast Binding Update, a pre-registration or a link-layer trigger
concerns, checked against the visitor list and the agent's associations before the handoff
part (:class:`~mip4.core.fa_handoff.FaHandoff`) acts on it. Functions of the agent
(:class:`~mip4.core.foreign_agent.ForeignAgent` calls them from ``handle``), as
:mod:`mip4.core.fa_relay` is; a visitor that does not match is a :class:`Discard`."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.security.auth import MN_FA, AuthenticationError, verify
from mip4.security.sa import SecurityAssociation, lookup_for
from mip4.wire.errors import DecodeError
from mip4.wire.messages import (
    HandoffReply,
    HandoffRequest,
    RegistrationReply,
    RegistrationRequest,
)

from .actions import Action
from .events import HandoffTrigger, UdpReceived
from .fa_checks import bad_unicast
from .fa_handoff import FaHandoff, FbuOrigin
from .registration import Discard

if TYPE_CHECKING:
    from .foreign_agent import ForeignAgent

__all__ = ["on_handoff_message", "on_handoff_trigger", "pre_registration"]


def on_handoff_message(
    fa: ForeignAgent, handoff: FaHandoff, event: UdpReceived, now: float
) -> list[Action]:
    msg = handoff.decode(event.payload)
    if isinstance(msg, HandoffRequest):
        return handoff.on_request(msg, event.src, event.dst, event.sport, now)
    if isinstance(msg, HandoffReply):
        return handoff.on_reply(msg, event.src, now)
    # A Fast Binding Update: only from a current visitor, on its link, from its
    # link-layer address; with an MN-FA extension (required when we share an MN-FA
    # security association with the node) that verifies.
    v = fa._visitors.get(msg.home_address)
    if v is None or v.colocated:
        raise Discard("fast_binding_unknown_visitor", str(msg.home_address))
    if event.interface != v.interface or (
        v.link_address is not None and event.link_src != v.link_address
    ):
        raise Discard("fast_binding_not_from_visitor", str(msg.home_address))
    mn_fa: SecurityAssociation | None = None
    if fa.security_associations.for_peer(msg.home_address) or any(
        e.ext_type == MN_FA for e in msg.extensions
    ):
        try:
            result = verify(msg, MN_FA, lookup_for(fa.security_associations, msg.home_address))
        except AuthenticationError as e:
            raise Discard("fast_binding_auth_failed", str(e)) from None
        mn_fa = result.sa
    origin = FbuOrigin(
        msg,
        v.interface,
        v.link_address,
        fa._link_address(v.interface) or v.care_of_address,
        event.sport,
        mn_fa,
    )
    fa._counters.event("fast_binding_updates")
    return handoff.start(
        v.home_address,
        v.home_agent,
        v.care_of_address,
        msg.care_of_address,
        now,
        buffer=True,
        lifetime=msg.lifetime,
        fbu=origin,
    )


def _own_addresses(fa: ForeignAgent) -> set[IPv4Address]:
    own = {a for link in fa.config.links for a in (link.address, *link.offered)}
    if fa.config.relay_source is not None:
        own.add(fa.config.relay_source)
    return own


def pre_registration(
    fa: ForeignAgent, handoff: FaHandoff, event: UdpReceived, now: float
) -> list[Action] | None:
    """RFC 4881 §3 pre-registration, mip4's reading: a visitor's Registration Request
    addressed to another agent is relayed to it from us, and that agent's reply
    relayed back to the visitor. ``None``: not such a message."""
    kind = event.payload[:1]
    if kind == bytes((RegistrationReply.TYPE,)) and handoff.proxied:
        try:
            reply = RegistrationReply.decode(event.payload)
        except DecodeError:
            return None
        return handoff.relay_pre_registration_reply(
            event.payload, reply.home_address, reply.identification, event.src
        )
    if kind != bytes((RegistrationRequest.TYPE,)) or event.dst in _own_addresses(fa):
        return None
    if bad_unicast(event.dst) or fa.config.link(event.interface) is None:
        return None
    try:
        req = RegistrationRequest.decode(event.payload)
    except DecodeError:
        return None
    v = fa._visitors.get(req.home_address)
    if (
        v is None
        or v.colocated
        or v.interface != event.interface
        or (v.link_address is not None and event.link_src != v.link_address)
    ):
        raise Discard("pre_registration_not_from_visitor", str(req.home_address))
    return handoff.relay_pre_registration(
        event.payload,
        req.home_address,
        req.identification,
        event.dst,
        v.interface,
        v.link_address,
        fa._link_address(v.interface) or v.care_of_address,
        event.sport,
        now,
        fa.config.pending_timeout,
    )


def on_handoff_trigger(
    fa: ForeignAgent, handoff: FaHandoff, event: HandoffTrigger, now: float
) -> list[Action]:
    v = fa._visitors.get(event.home_address)
    if v is None or v.colocated:
        raise Discard("handoff_unknown_visitor", str(event.home_address))
    # RFC 4881 post-registration, source trigger: no buffer asked for; the node's
    # hardware address goes with the request, so that the new agent delivers from the
    # tunnel at once (and holds copies for the switch: FaHandoff.on_request)
    return handoff.start(
        v.home_address,
        v.home_agent,
        v.care_of_address,
        event.new_agent,
        now,
        buffer=False,
        link_address=v.link_address,
    )
