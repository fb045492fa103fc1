"""The foreign agent's revocation part (RFC 3543): revoking a visitor and answering a
home agent's Registration Revocation or Revocation Acknowledgement.

Theory of operation
-------------------
Split out of :mod:`mip4.core.foreign_agent`, which keeps ``revoke()`` and the
``revocations`` view and calls in here with itself (``fa``) as the first argument; the
revocation messages' codec, authentication, replay checks and retransmissions are
:class:`~mip4.core.revocation.Revocations`.

* :func:`revoke_visitor` -- remove a revoked visitor, stop its accounting (ADMIN_RESET),
  inform the mobile node when asked (a reply with a denial code and Lifetime 0) and tell
  its home agent when it negotiated revocation.
* :func:`on_revocation_message` -- a home agent's revocation (A bit set, fresh) or its
  acknowledgement of ours.
* :func:`relay_source` -- the address the home agent knows this agent by.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.aaa.messages import (
    TerminateCause,
)
from mip4.wire.codes import ReplyCode
from mip4.wire.messages import (
    RegistrationReply,
)
from mip4.wire.msg_revocation import (
    RegistrationRevocation,
    RevocationAck,
    RevocationFlags,
)

from . import fa_aaa, fa_reply
from .actions import (
    Action,
    Log,
    RemoveVisitor,
)
from .bindings import (
    Visitor,
)
from .events import (
    UdpReceived,
)
from .fa_state import VISITOR_TRANSITIONS, VisitorInput, VisitorState
from .registration import Discard

if TYPE_CHECKING:
    from .foreign_agent import ForeignAgent

_P, _R, _RR = VisitorState.PENDING, VisitorState.REGISTERED, VisitorState.REREGISTERING
_ZERO_ADDRESS = IPv4Address(0)


def relay_source(fa: ForeignAgent, v: Visitor) -> IPv4Address | None:
    """The address this agent relayed the visitor's requests from (the home agent
    knows this agent by it)."""
    if fa.config.relay_source is not None:
        return fa.config.relay_source
    link = fa.config.link(v.interface)
    if link is None:
        return None
    return v.care_of_address if v.care_of_address in link.offered else link.offered[0]


def revoke_visitor(
    fa: ForeignAgent,
    v: Visitor,
    now: float,
    reason: str,
    out: list[Action],
    *,
    inform: bool,
    tell_home_agent: bool,
    code: ReplyCode = ReplyCode.FA_ADMIN_PROHIBITED,
) -> bool:
    """Remove a visitor that is revoked; whether the mobile node was informed."""
    hoa = v.home_address
    before = _RR if fa._pending.get(hoa) is not None else _R
    fa._visitors.remove(hoa)
    if not v.colocated:
        out.append(RemoveVisitor(hoa, v.interface))
    out.extend(fa_aaa.accounting_stop(fa, v, now, TerminateCause.ADMIN_RESET))
    informed = False
    if inform and fa._advertiser.is_up(v.interface):
        # RFC 3543 (the I bit): the node learns of it by a Registration Reply with a
        # denial code, Lifetime 0 and its registration's Identification; MN-FA when it
        # authenticated to us with one (we have no MN-HA key).
        notice = RegistrationReply(
            code=int(code),
            lifetime=0,
            home_address=hoa,
            home_agent=v.home_agent,
            identification=v.identification,
        )
        out.append(fa_reply.send_to_mobile_node(fa, v, notice))
        fa._counters.event("mobile_nodes_informed")
        informed = True
    if tell_home_agent and v.revocation_timestamp is not None:
        out.extend(
            fa._revocations.start(
                peer=v.home_agent,
                home_address=hoa,
                flags=RevocationFlags(0),  # A clear: sent by the foreign agent
                home_domain_address=v.home_agent,
                foreign_domain_address=v.care_of_address,
                now=now,
                reason=reason,
                src=relay_source(fa, v),
            )
        )
    VISITOR_TRANSITIONS.confirm(before, VisitorInput.REVOKED, fa.state_of(hoa))
    fa._counters.event("visitors_revoked")
    out.append(
        Log(
            "fa.visitor_revoked",
            {
                "home_address": hoa,
                "home_agent": v.home_agent,
                "care_of_address": v.care_of_address,
                "reason": reason,
                "informed": informed,
            },
        )
    )
    fa_aaa.forget_mn_fa_key(fa, v)  # RFC 3957: a key learnt from AAA goes with the visitor
    return informed


def on_revocation_message(
    fa: ForeignAgent, msg: RegistrationRevocation | RevocationAck, event: UdpReceived, now: float
) -> list[Action]:
    """A home agent's revocation of a registration, or its acknowledgement of ours
    (RFC 3543); authenticated with FA-HA, replays ignored and counted."""
    src = event.src
    fa._revocations.verify(msg, src)
    if isinstance(msg, RevocationAck):
        done = fa._revocations.acknowledged(msg, src)
        return [
            Log(
                "fa.revocation_acknowledged",
                {
                    "peer": src,
                    "home_address": msg.home_address,
                    "retransmissions": done.retransmissions,
                },
            )
        ]
    if not msg.flags & RevocationFlags.A:
        raise Discard("unexpected_revocation", f"A bit clear, from {src}")
    hoa = msg.home_address
    v = fa._visitors.get(hoa)
    if v is not None and v.home_agent != src:
        v = None  # not that home agent's visitor
    floor = v.revocation_timestamp if v is not None else None
    if not fa._revocations.fresh(msg, src, floor):
        raise Discard("revocation_replayed", f"{hoa} identifier {msg.revocation_id} from {src}")
    fa._counters.event("revocations_received")
    out: list[Action] = []
    informed = False
    if v is not None:
        informed = revoke_visitor(
            fa,
            v,
            now,
            "revoked by the home agent",
            out,
            inform=bool(msg.flags & RevocationFlags.I) and v.revocation_inform,
            tell_home_agent=False,
            code=ReplyCode.HA_ADMIN_PROHIBITED,
        )
    else:
        out.append(Log("fa.revocation_no_visitor", {"home_address": hoa, "home_agent": src}))
    out.append(fa._revocations.ack(msg, src, informed=informed, local=event.dst))
    return out
