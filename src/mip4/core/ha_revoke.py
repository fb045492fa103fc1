"""The home agent's revocation part (RFC 3543): removing a node's bindings on the
operator's word (revocation, or redirection to another home agent, RFC 4433) and answering
a foreign agent's Registration Revocation or Revocation Acknowledgement.

Theory of operation
-------------------
Split out of :mod:`mip4.core.home_agent` (as :mod:`mip4.core.fa_revoke` is out of the
foreign agent), which keeps ``revoke()``, ``redirect()`` and the ``revocations`` view and
calls in here with itself (``ha``) as the first argument; the revocation messages' codec,
authentication, replay checks and retransmissions are
:class:`~mip4.core.revocation.Revocations`.

* :func:`revoke_node` -- every binding of a node removed, each foreign agent that
  negotiated revocation told (A bit; I when the node is to be informed).
* :func:`on_revocation_message` -- a foreign agent's revocation of a binding (fresh, FA-HA
  authenticated) or its acknowledgement of ours.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.core.events import UdpReceived
from mip4.wire.msg_revocation import (
    RegistrationRevocation,
    RevocationAck,
    RevocationAckFlags,
    RevocationFlags,
)

from .actions import Action, Log, RemoveBinding
from .ha_states import BINDING_TRANSITIONS, BindingInput, BindingState
from .registration import Discard

if TYPE_CHECKING:
    from .home_agent import HomeAgent

_A = BindingState.AWAY


def revoke_node(
    ha: HomeAgent, node: IPv4Address | str, now: float, reason: str, out: list[Action]
) -> None:
    hoa = ha.home_address_of(node)
    if hoa is None:
        ha._counters.event("revoke_unknown")
        out.append(Log("ha.revoke_unknown", {"node": str(node), "reason": reason}))
        return
    cfg = ha.config
    removed = ha._bindings.remove(hoa)
    for b in removed:
        out.append(RemoveBinding(hoa, b.care_of_address))
        if b.revocation_timestamp is not None and b.source is not None:
            flags = RevocationFlags.A
            if b.revocation_inform:
                flags |= RevocationFlags.I  # RFC 3543: the FA informs the mobile node
            out.extend(
                ha._revocations.start(
                    peer=b.source,
                    home_address=hoa,
                    flags=flags,
                    home_domain_address=cfg.address,
                    foreign_domain_address=b.care_of_address,
                    now=now,
                    reason=reason,
                    src=cfg.address,
                )
            )
    ha._binding_gone(hoa, out)
    BINDING_TRANSITIONS.confirm(_A, BindingInput.REVOKE, ha.state_of(hoa))
    ha._counters.event("bindings_revoked", len(removed))
    out.append(
        Log(
            "ha.binding_revoked",
            {
                "home_address": hoa,
                "care_of_addresses": [str(b.care_of_address) for b in removed],
                "by": "operator",
                "reason": reason,
            },
        )
    )


def on_revocation_message(
    ha: HomeAgent, msg: RegistrationRevocation | RevocationAck, event: UdpReceived, now: float
) -> list[Action]:
    """A foreign agent's revocation of a binding, or its acknowledgement of ours
    (RFC 3543); authenticated with FA-HA, replays ignored and counted."""
    src = event.src
    ha._revocations.verify(msg, src)
    if isinstance(msg, RevocationAck):
        done = ha._revocations.acknowledged(msg, src)
        return [
            Log(
                "ha.revocation_acknowledged",
                {
                    "peer": src,
                    "home_address": msg.home_address,
                    "informed": bool(msg.flags & RevocationAckFlags.I),
                    "retransmissions": done.retransmissions,
                },
            )
        ]
    if msg.flags & RevocationFlags.A:
        raise Discard("unexpected_revocation", f"A bit set, from {src}")
    hoa = msg.home_address
    matching = [
        b
        for b in ha._bindings.bindings_of(hoa)
        if b.source == src and b.revocation_timestamp is not None
    ]
    floor = max((b.revocation_timestamp or 0 for b in matching), default=None)
    if not ha._revocations.fresh(msg, src, floor):
        raise Discard("revocation_replayed", f"{hoa} identifier {msg.revocation_id} from {src}")
    out: list[Action] = []
    ha._counters.event("revocations_received")
    if matching:
        for b in matching:
            ha._bindings.remove(hoa, b.care_of_address)
            out.append(RemoveBinding(hoa, b.care_of_address))
        ha._binding_gone(hoa, out)
        BINDING_TRANSITIONS.confirm(_A, BindingInput.REVOKE, ha.state_of(hoa))
        ha._counters.event("bindings_revoked", len(matching))
    out.append(
        Log(
            "ha.binding_revoked",
            {
                "home_address": hoa,
                "care_of_addresses": [str(b.care_of_address) for b in matching],
                "by": "foreign_agent",
                "peer": src,
                "identifier": msg.revocation_id,
            },
        )
    )
    out.append(ha._revocations.ack(msg, src, informed=False, local=event.dst))
    return out
