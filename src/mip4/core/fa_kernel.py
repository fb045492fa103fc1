"""The foreign agent's usual renewal relayed by the kernel, the engine's state kept as if it
had relayed it (issue 13).

Theory of operation
-------------------
A relaying foreign agent spends most of its time on renewals that repeat what a visitor
registered: its request goes on to the home agent as it came (cut after MN-HA, which it
already is), the acceptance comes back and goes on to the visitor. In Python that is two
datagrams in and two out, 55-60 us of CPU per registration on the benchmark host. With
the tc-BPF plane, the agent's program (``mip4_agent`` in ``bpf/mip4_tunnel.bpf.c``)
relays them instead:

* **Which renewals.** After each registration the engine accepts through the Python path,
  :func:`entry_for` decides whether :func:`~mip4.core.fa_relay.relay_request` and
  :func:`~mip4.core.fa_relay.relay_reply` -- the fast paths, themselves held byte for byte
  against the general code -- would relay the visitor's identical renewal unchanged: no
  AAA, NAI, challenge, revocation, accounting or handover part; no MN-FA and no FA-HA
  association (no HMAC the kernel could not compute); a unicast node address and agent
  address; the visitor's hardware address known. If so, a
  :class:`~mip4.core.actions.RelayInKernel` names the request's first 16 bytes (type,
  flags, lifetime, home address, home agent, care-of address), the node's address, port,
  interface and hardware address, the address it used, and where the relay goes from.
  The program relays a request only when all of that repeats (any other datagram comes to
  the engine as before), and an accepting reply only for the request it relayed last
  (the low 32 bits of its Identification, RFC 5944 §3.7.3.1). A renewal the kernel
  relayed is pending whatever the pending list holds: ``max_pending`` (RFC 5944 §3.7.1
  lets an agent bound its pending registrations) bounds the agent's own relays, and the
  kernel's are bounded by the visitor list.
* **The engine's state.** Each datagram the kernel relays comes back, as it came in, in a
  ring buffer the I/O shell reads after each read of the agent's socket (those records
  first), before each timer call and when many wait; the engine applies it as a
  :class:`~mip4.core.events.RelayedByKernel` -- its payload: the kernel matched the rest
  against the entry -- doing what the fast path does for that datagram, without the one
  :class:`~mip4.core.actions.SendUdp` the kernel already made: the pending entry (the
  visitor's own addresses, the new Identification), then the visitor entry and expiry,
  counters, ``InstallVisitor`` and records. ``tests/core/test_fa_kernel.py`` holds an
  agent relaying through a model of the program against one relaying everything itself,
  datagram for datagram, over randomized sequences. So the visitor list, pending timeouts
  (78 to the node), expiries, ``mip4 status`` and the MIB stay what they would be without
  the kernel. A datagram this replay does not cover (the engine learnt something the
  entry could not say) goes through the general path, still without that send, and the
  kernel stops relaying for the node.
* **When it stops.** Before the engine handles any request for a home address the kernel
  relays for (a changed request, a deregistration: it did not repeat the registration),
  a :class:`~mip4.core.actions.StopRelayInKernel` comes first, so the home agent's answer
  to it, and to any request before it, reaches the engine; the visitor's removal (expiry,
  deregistration, revocation) stops it too, and so does a reconfiguration (every node: the
  next input's actions begin with the stops). When the agent answers the node itself (a
  denial, 78 for a request that timed out), the entry is given again: the kernel forgets
  the request it relayed, whose answer the engine no longer waits for.

The shell reads the ring after each read of the socket and applies those records first,
so a request the kernel relayed is applied before a later one the engine reads from the
socket; a record for a node the engine no longer relays for (a changed request overtook
it) is a request superseded, and only counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mip4.wire.addr import ipv4_from_int as _address
from mip4.wire.addr import ipv4_int as _int
from mip4.wire.msg_base import REG_FLAGS, RRQ_HEADER

from .actions import (
    DEBUG,
    INFO,
    MIP_PORT,
    WARNING,
    Action,
    InstallVisitor,
    Log,
    RelayInKernel,
    RemoveVisitor,
    SendUdp,
    StopRelayInKernel,
)
from .engine import error_boundary
from .events import RelayedByKernel, UdpReceived, udp_received
from .fa_checks import FA_REQUEST_PIPELINE
from .fa_relay import (
    _ACCEPTED,
    _LOW32,
    _encapsulation,
    _fast_config,
    accept_pending,
    confirm_request,
    reply_record,
    request_record,
)
from .fa_state import PendingList, VisitorList, new_pending

if TYPE_CHECKING:
    from .events import Event
    from .fa_state import Visitor
    from .foreign_agent import ForeignAgent

__all__ = ["entry_for", "handle", "handle_timer"]

_ALL_ONES = 0xFFFFFFFF
_D, _T = 0x20, 0x02


def _unicast(address: int) -> bool:
    return address != 0 and address != _ALL_ONES and address >> 28 != 0xE


def entry_for(fa: ForeignAgent, v: Visitor) -> RelayInKernel | None:
    """What the kernel may relay for visitor ``v``: its identical renewal, when the fast
    paths would relay it (and its acceptance) unchanged -- see the module docstring;
    ``None`` otherwise."""
    fast = _fast_config(fa)
    if not fast.usable or fa.handoff is not None or fa.pipeline is not FA_REQUEST_PIPELINE:
        return None
    cfg = fast.config
    flags = int(v.flags)
    if flags & _D or v.nai is not None or v.mn_fa_spi is not None or v.link_address is None:
        return None
    if not v.requested_lifetime or v.requested_lifetime > cfg.max_lifetime:
        return None
    entry = fast.links.get(v.interface)
    if entry is None or _int(v.care_of_address) not in entry[1]:
        return None
    if not (_unicast(_int(v.ip_source)) and _unicast(_int(v.ip_destination))):
        return None
    store = fa.security_associations
    if cfg.require_mn_fa_auth:
        return None
    if len(store) and (store.for_peer(v.home_address) or store.for_peer(v.home_agent)):
        return None  # MN-FA or FA-HA: an HMAC per datagram, not the kernel's to make
    src = cfg.relay_source
    request = RRQ_HEADER.pack(
        1,
        flags,
        v.requested_lifetime,
        _int(v.home_address),
        _int(v.home_agent),
        _int(v.care_of_address),
        0,
    )[:16]
    return RelayInKernel(
        home_address=v.home_address,
        request=request,
        node=v.ip_source,
        node_port=v.udp_source_port,
        agent=v.ip_destination,
        interface=v.interface,
        link_address=v.link_address,
        relay_source=src if src is not None else v.care_of_address,
        relay_port=cfg.relay_port,
        ttl_255=bool(flags & _T),
    )


def _stop_all(fa: ForeignAgent, out: list[Action]) -> None:
    fa._kernel_stale = False
    for hoa in fa._kernel:
        out.append(StopRelayInKernel(_address(hoa)))
    fa._kernel.clear()


def _after(fa: ForeignAgent, actions: list[Action], out: list[Action]) -> None:
    """``actions`` into ``out``, each removed visitor's kernel relay stopped after them and
    each accepted one's started (or changed) after them."""
    out.extend(actions)
    kernel = fa._kernel
    given: set[int] = set()  # entries given here (one write of each)
    for a in actions:
        kind = type(a)
        if kind is InstallVisitor:
            hoa = a.home_address  # type: ignore[union-attr]
            v = fa._visitors.get(hoa)
            entry = entry_for(fa, v) if v is not None else None
            key = _int(hoa)
            if entry is not None:
                if kernel.get(key) != entry:
                    kernel[key] = entry
                    out.append(entry)
                    given.add(key)
            elif kernel.pop(key, None) is not None:
                out.append(StopRelayInKernel(hoa))
        elif kind is RemoveVisitor:
            hoa = a.home_address  # type: ignore[union-attr]
            if kernel.pop(_int(hoa), None) is not None:
                out.append(StopRelayInKernel(hoa))
        elif kind is SendUdp:
            p = a.payload  # type: ignore[union-attr]
            if len(p) >= 8 and p[0] == 3 and kernel:
                # the agent answered the node itself (a denial, 78 for a request that
                # timed out, a reply the kernel left to it): the kernel's pending request
                # is no more -- told again, the entry forgets it
                key = int.from_bytes(p[4:8], "big")
                entry = kernel.get(key)
                if entry is not None and key not in given:
                    out.append(entry)
                    given.add(key)


def handle(fa: ForeignAgent, event: Event, now: float) -> list[Action]:
    """:meth:`ForeignAgent.handle` while the kernel relays (``fa.kernel_relay``)."""
    out: list[Action] = []
    if fa._kernel_stale:
        _stop_all(fa, out)
    if type(event) is RelayedByKernel:
        try:
            _replay(fa, event.payload, now, out)
        except Exception as exc:  # pragma: no cover - nothing here raises
            failure = exc

            def fail(_actions: list[Action]) -> None:
                raise failure

            return out + error_boundary("fa", fa._counters, fail)
        return out
    if type(event) is UdpReceived:
        p = event.payload
        if len(p) >= 8 and p[0] == 1:  # a request that did not repeat the registration
            hoa = int.from_bytes(p[4:8], "big")
            if fa._kernel.pop(hoa, None) is not None:
                out.append(StopRelayInKernel(_address(hoa)))
    _after(fa, fa._handle(event, now), out)
    return out


def handle_timer(fa: ForeignAgent, now: float) -> list[Action]:
    """:meth:`ForeignAgent.handle_timer` while the kernel relays."""
    out: list[Action] = []
    if fa._kernel_stale:
        _stop_all(fa, out)
    _after(fa, fa._handle_timer(now), out)
    return out


def _replay(fa: ForeignAgent, p: bytes, now: float, out: list[Action]) -> None:
    """Apply the datagram (payload ``p``) the kernel relayed, without the send it made.
    (``max_pending``, RFC 5944 §3.7.1's local bound, holds the agent's own relays: a
    request the kernel relayed is pending whatever the list holds.)"""
    request = p[0] == 1
    hoa = int.from_bytes(p[4:8], "big")
    entry = fa._kernel.get(hoa)
    if request:
        if entry is None:
            # the engine stopped the relay (a changed request, a deregistration, the
            # visitor gone) after the kernel made it: that request is superseded
            fa.kernel_superseded += 1
            return
        fa.kernel_requests += 1
        done = _request(fa, p, entry, now, out)
    else:
        fa.kernel_replies += 1
        done = _reply(fa, p, now, out)
        if not done and entry is None:
            # an answer to a request the engine no longer waits for (it stopped the relay
            # when it took a later one itself): the general path would discard it
            fa.kernel_superseded += 1
            return
    if done:
        return
    assert entry is not None
    # what the fast replay does not cover: the general path applies the datagram as the
    # kernel received it (without the send the kernel made), and the kernel relays no
    # more for the node
    fa.kernel_general += 1
    if request:
        ev = udp_received(
            p,
            entry.node,
            entry.agent,
            entry.node_port,
            MIP_PORT,
            entry.interface,
            entry.link_address,
            255 if entry.ttl_255 else 64,
        )
        sent = (_int_of(p, 8), MIP_PORT)  # to the home agent
    else:
        ha = _address(_int_of(p, 8))
        ev = udp_received(p, ha, entry.relay_source, MIP_PORT, entry.relay_port, "", None, 64)
        sent = (_int(entry.node), entry.node_port)  # to the node
    actions = fa._handle(ev, now)
    for i, a in enumerate(actions):
        if type(a) is SendUdp and (_int(a.dst), a.dport) == sent:
            del actions[i]
            break
    fa._kernel.pop(hoa, None)
    out.append(StopRelayInKernel(_address(hoa)))
    out.append(
        Log(
            "fa.kernel_relay_general",
            {"home_address": _address(hoa), "message": "request" if request else "reply"},
            WARNING,
        )
    )
    _after(fa, actions, out)


def _request(
    fa: ForeignAgent, p: bytes, entry: RelayInKernel, now: float, out: list[Action]
) -> bool:
    """What :func:`~mip4.core.fa_relay.relay_request` does for the visitor's renewal ``p``,
    which the kernel relayed because it repeats ``entry`` -- made from the visitor as it
    is (a changed visitor is given a new entry or none) -- from the node's address, port,
    interface and hardware address to the address it registered through: the visitor's
    own objects for them, the pending entry, the counter and the record, without the send.
    ``False``, with nothing changed, when the visitor is not the entry's."""
    hoa = _int_of(p, 4)
    visitors, pendings = fa._visitors, fa._pending
    v = visitors._entries.get(hoa) if type(visitors) is VisitorList else visitors.get(_address(hoa))
    if v is None or p[:16] != entry.request:
        return False
    if type(pendings) is PendingList:
        pending = pendings._entries.get(hoa)
    else:
        pending = pendings.get(v.home_address)
    flags, life = p[1], (p[2] << 8) | p[3]
    ident = int.from_bytes(p[16:24], "big")
    cfg = fa.config
    pendings.put(
        new_pending(
            v.home_address,  # home_address
            v.interface,  # interface
            v.link_address,  # link_address
            v.ip_source,  # ip_source
            v.ip_destination,  # ip_destination
            v.udp_source_port,  # udp_source_port
            v.home_agent,  # home_agent
            v.care_of_address,  # care_of_address
            ident,  # identification
            life,  # requested_lifetime
            REG_FLAGS[flags],  # flags
            now,  # relayed_at
            now + cfg.pending_timeout,  # expires
            bool(flags & _T),  # reverse_tunnel
            _encapsulation(flags),  # encapsulation
            False,  # encapsulating_delivery
            None,  # mn_fa_spi
            None,  # nai
        )
    )
    # the visitor's state: registered (or re-registering) -> re-registering
    confirm_request(pending)
    fa._counters.events["relayed_requests"] += 1
    # a renewal that repeats the registration: routine (relay_request's DEBUG) unless
    # the visitor was re-registering already
    level = DEBUG if pending is None else INFO
    if level >= fa.log_level:
        out.append(
            request_record(v.home_address, v.home_agent, v.care_of_address, life, ident, level)
        )
    return True


def _reply(fa: ForeignAgent, p: bytes, now: float, out: list[Action]) -> bool:
    """What :func:`~mip4.core.fa_relay.relay_reply` does for the acceptance ``p`` (code 0
    or 1, a lifetime, MN-HA and nothing else: what the kernel relays) of the pending
    request it answers, without the send; ``False``, with nothing changed, when no such
    request is pending."""
    hoa = _int_of(p, 4)
    pendings = fa._pending
    if type(pendings) is PendingList:
        pending = pendings._entries.get(hoa)
    else:
        pending = pendings.get(_address(hoa))
    ident = int.from_bytes(p[12:20], "big")
    if (
        pending is None
        or pending.identification & _LOW32 != ident & _LOW32
        or pending.nai is not None
        or pending.mn_fa_spi is not None
        or not pending.requested_lifetime
        or int(pending.flags) & _D
    ):
        return False
    code, life = p[1], (p[2] << 8) | p[3]
    install, home_agent, level = accept_pending(
        fa, pending, _ACCEPTED[code], life, _int_of(p, 8), None
    )
    out.append(install)
    if level >= fa.log_level:
        out.append(reply_record(pending, home_agent, code, life, level))
    return True


def _int_of(p: bytes, offset: int) -> int:
    return int.from_bytes(p[offset : offset + 4], "big")
