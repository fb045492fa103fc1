"""The foreign agent's fast path for the usual relayed renewal (issue 13), held against
the general code.

Theory of operation
-------------------
Most Registration Requests a foreign agent hears come from its visitors renewing what they
have, and most replies it gets are the home agents accepting them. The general path
(:meth:`~mip4.core.foreign_agent.ForeignAgent.handle`: decode, the nine checks of
:data:`~mip4.core.fa_checks.FA_REQUEST_PIPELINE` over a
:class:`~mip4.core.fa_checks.FaRequest`, the relay; or a
:class:`~mip4.core.fa_reply.ReplyPath` through :func:`~mip4.core.fa_reply.relay_reply`)
builds a dozen objects for each. :func:`relay_request` and :func:`relay_reply` do the
same from the datagram's bytes, and nothing else:

* **A request** (:func:`relay_request`): the layout is the 24-byte fixed part, one MN-HA
  extension with a 16-byte authenticator and optionally one MN-FA extension after it
  (RFC 5944 §3.7.2.2, §3.5.2); the node is a current visitor (registered, or registered
  with a request relayed); every check of the pipeline is made on the fixed part's
  integers in its order (well-formed addresses, 70; no NAI needed, 97; no challenge
  advertised; MN-FA over the bytes as received when present, or not required and no
  association shared, 67; the care-of address offered on the link, D clear, 77; the
  lifetime within ``max_lifetime``, 69; the encapsulation, 72; reverse tunnelling and its
  IP TTL of 255, 74 / 76 / 75; room on the pending list, 66). The request is relayed cut
  after MN-HA, signed with FA-HA when this agent shares an SA with the home agent
  (RFC 5944 §3.7.2.2: one HMAC), and a pending entry records it (§3.7.1) -- the
  ``SendUdp``, the pending record, the counters and the ``fa.request_relayed`` record of
  the general path.
* **A reply** (:func:`relay_reply`): the layout is the 20-byte fixed part, MN-HA and
  optionally FA-HA (each with a 16-byte authenticator); it accepts (code 0 or 1) a
  registration with a non-zero lifetime that is pending under the home address with the
  same low-order Identification (§3.7.3.1), requested without NAI or D; FA-HA verifies
  over the bytes as received when this agent shares an SA with the home agent (68
  otherwise, §3.7.3.1). The reply is relayed cut after MN-HA (§3.7.3.2), with MN-FA when
  the node used one, to the node's address and port at its link-layer address; the
  visitor entry is made or refreshed (``InstallVisitor``) -- the actions, counters,
  records and ``fa.reply_relayed`` record of :func:`~mip4.core.fa_reply.relay_reply`.

Anything else returns ``None`` before any state changed, and the general path handles the
datagram: another layout (NAI, challenge, MN-AAA, delivery style, a second extension), a
denial of any kind (the general path builds the reply and the counters), a deregistration,
a first registration's request, D, handovers, AAA, accounting, revocation, a pipeline
other than ``FA_REQUEST_PIPELINE`` (tests add checks), requests pending under an NAI and
MN-FA keys from AAA. ``tests/core/test_fa_relay.py`` drives two agents, one with the fast
path and one without, through randomized sequences of renewals, changes, denials,
replays, bad authenticators, timeouts, clock steps and expiries, and asserts the same
actions (field by field, the datagrams byte for byte), counters, records and tables.
"""

from __future__ import annotations

import struct
from hmac import compare_digest
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.security.auth import FA_HA, MN_FA, signed_bytes
from mip4.wire.addr import ipv4_from_int as _address
from mip4.wire.addr import ipv4_int as _int
from mip4.wire.codes import ReplyCode
from mip4.wire.msg_base import REG_FLAGS, RRP_HEADER, RRQ_HEADER

from .actions import DEBUG, INFO, MIP_PORT, Action, Encapsulation, InstallVisitor, Log, SendUdp
from .fa_checks import FA_REQUEST_PIPELINE
from .fa_reply import same_visitor
from .fa_state import (
    VISITOR_TRANSITIONS,
    PendingList,
    PendingRegistration,
    VisitorInput,
    VisitorList,
    VisitorState,
    make_record,
    new_pending,
    new_visitor,
)
from .registration import TransitionTable
from .timers import expiry

if TYPE_CHECKING:
    from .events import UdpReceived
    from .fa_config import ForeignAgentConfig, VisitedLink
    from .foreign_agent import ForeignAgent

__all__ = [
    "FastConfig",
    "accept_pending",
    "confirm_request",
    "relay_reply",
    "relay_request",
    "reply_record",
    "request_record",
]

_unpack_request = RRQ_HEADER.unpack_from
_unpack_reply = RRP_HEADER.unpack_from
_U32 = struct.Struct("!I").unpack_from
_ALL_ONES = 0xFFFFFFFF
_LOW32 = 0xFFFFFFFF
#: RegistrationFlags bits (RFC 5944 §3.3)
_D, _M, _G, _T = 0x20, 0x10, 0x08, 0x02
#: the usual layouts: request fixed part (24) + MN-HA (2 + 4 + 16) [+ MN-FA (22)];
#: reply fixed part (20) + MN-HA [+ FA-HA]
_RRQ, _RRQ_MN_FA = 24 + 22, 24 + 22 + 22
_RRP, _RRP_FA_HA = 20 + 22, 20 + 22 + 22
_ACCEPTED = {0: ReplyCode.ACCEPTED, 1: ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS}
_IPIP, _GRE, _MINIMAL = Encapsulation.IPIP, Encapsulation.GRE, Encapsulation.MINIMAL
_REQUEST, _ACCEPT = VisitorInput.REQUEST, VisitorInput.ACCEPTED
_DECISION = _ACCEPT.value
_P, _R, _RR = VisitorState.PENDING, VisitorState.REGISTERED, VisitorState.REREGISTERING
#: every visitor transition the fast paths make (STYLE.md practice 7, RFC 5944 §3.7.1):
#: a relayed request from registered or re-registering to re-registering, an accepted
#: reply from pending or re-registering to registered
FAST_TRANSITIONS = (
    (_R, _REQUEST, _RR),
    (_RR, _REQUEST, _RR),
    (_P, _ACCEPT, _R),
    (_RR, _ACCEPT, _R),
)


def _confirm_all(table: TransitionTable[VisitorState, VisitorInput]) -> None:
    """:class:`ProtocolError` unless ``table`` allows each of :data:`FAST_TRANSITIONS`."""
    for before, inp, after in FAST_TRANSITIONS:
        table.confirm(before, inp, after)


# issue 13: the transitions are confirmed against the engine's table here, once (a
# TransitionTable answers from what it was built with: its answer for a constant triple
# cannot change), instead of once per relayed datagram (~0.25 us each); a module whose
# table is not this one (a test's) confirms each transition as it is made, as before
_CONFIRMED = VISITOR_TRANSITIONS
_confirm_all(_CONFIRMED)


def _encapsulation(flags: int) -> Encapsulation:
    """``foreign_agent._encapsulation``: G before M."""
    if flags & _G:
        return _GRE
    if flags & _M:
        return _MINIMAL
    return _IPIP


class FastConfig:
    """What the fast path reads of a configuration (once per configuration)."""

    __slots__ = ("config", "links", "usable")

    def __init__(self, cfg: ForeignAgentConfig) -> None:
        self.config = cfg
        #: the configuration leaves the usual renewal to the fast path: no AAA, NAI,
        #: challenges, revocation or accounting to take part in it
        self.usable = not (
            cfg.aaa or cfg.require_nai or cfg.challenge_length or cfg.revocation or cfg.accounting
        )
        #: interface -> (the link, its offered care-of addresses as integers); the first
        #: link of a name, as ``ForeignAgentConfig.link`` finds it
        links: dict[str, tuple[VisitedLink, frozenset[int]]] = {}
        for link in cfg.links:
            links.setdefault(link.interface, (link, frozenset(int(a) for a in link.offered)))
        self.links = links


def _fast_config(fa: ForeignAgent) -> FastConfig:
    cfg = fa.config
    cached = fa._fast_config
    if cached is None or cached.config is not cfg:
        cached = fa._fast_config = FastConfig(cfg)
    return cached


def relay_request(fa: ForeignAgent, ev: UdpReceived, now: float) -> list[Action] | None:
    """The actions of the general path for the request ``ev`` when it is a visitor's usual
    renewal (module docstring), applied; ``None``, with nothing changed, otherwise."""
    p = ev.payload
    n = len(p)
    if n == _RRQ_MN_FA:
        if p[46] != MN_FA or p[47] != 20:
            return None
    elif n != _RRQ:
        return None
    if p[24] != 32 or p[25] != 20:  # MN-HA, 4 + 16 bytes
        return None
    t, flags, life, hoa, ha, coa, ident = _unpack_request(p)
    if t != 1 or life == 0 or flags & _D:
        return None  # not a request (the caller sees type 1); a deregistration; D
    if fa.handoff is not None or fa._aaa_waiting or fa.pipeline is not FA_REQUEST_PIPELINE:
        return None
    fast = _fast_config(fa)
    if not fast.usable:
        return None
    cfg = fast.config
    entry = fast.links.get(ev.interface)
    if entry is None:
        return None  # request_on_unknown_interface
    link, offered = entry
    if not fa._advertiser.is_up(link.interface):
        return None  # link_down
    # check_well_formed: the addresses (no NAI, no Requested HA: the fixed part says all)
    if hoa == 0 or hoa == _ALL_ONES or hoa >> 28 == 0xE:
        return None
    if ha == 0 or ha == _ALL_ONES or ha >> 28 == 0xE or coa == 0:
        return None
    # check_care_of_address (D clear): one this agent offers on the link
    if coa not in offered:
        return None
    # check_lifetime, check_encapsulation, check_reverse_tunnel
    if life > cfg.max_lifetime:
        return None
    if (flags & _M and not cfg.minimal_encapsulation) or (flags & _G and not cfg.gre_encapsulation):
        return None
    if flags & _T:
        if not cfg.reverse_tunnel or ev.ttl != 255:
            return None
    elif cfg.reverse_tunnel_required:
        return None
    # the visitor this request renews (a first registration stops here); the tables
    # by their integer key when they are the agent's own (one call less each)
    visitors, pendings = fa._visitors, fa._pending
    own = type(visitors) is VisitorList
    v = visitors._entries.get(hoa) if own else visitors.get(_address(hoa))  # type: ignore[attr-defined]
    if v is None:
        return None
    if type(pendings) is PendingList:
        pending = pendings._entries.get(hoa)
    else:
        pending = pendings.get(_address(hoa))
    # check_resources: the visitor keeps its place; a full pending list (66)
    if pending is None and len(pendings) >= cfg.max_pending:
        return None
    hoa_addr = v.home_address
    # check_mn_fa_auth (RFC 5944 §3.7.2.1): MN-FA over the bytes as received
    store = fa.security_associations
    has_sas = len(store) != 0
    mn_fa_spi = None
    if n == _RRQ_MN_FA:
        if not has_sas:
            return None  # 67: no association for the SPI
        sa = store.get(hoa_addr, _U32(p, 48)[0])
        if sa is None or not compare_digest(
            sa.authenticator(p[:52] if sa.spi_covered else p[:48]), p[52:68]
        ):
            return None  # 67
        mn_fa_spi = sa.spi
    elif cfg.require_mn_fa_auth or (has_sas and store.for_peer(hoa_addr)):
        return None  # 67: MN-FA missing
    # -- relayed: what ForeignAgent._relay_request does, in its order --------------------
    home_agent = v.home_agent
    if _int(home_agent) != ha:
        home_agent = _address(ha)
    coa_addr = v.care_of_address
    if _int(coa_addr) != coa:
        coa_addr = _address(coa)
    # the datagram's addresses, as the visitor's objects when equal (issue 13: the
    # accepted reply's visitor then holds the objects of the one it replaces, and
    # VisitorList.put and same_visitor see the same objects -- no sharing, no __eq__;
    # the I/O shell hands each datagram its own or a table's address objects, never
    # those the first request was decoded into)
    ip_source = ev.src
    same_source = _int(ip_source) == _int(v.ip_source)
    if same_source:
        ip_source = v.ip_source
    ip_destination = ev.dst
    if ip_destination is not v.ip_destination and _int(ip_destination) == _int(v.ip_destination):
        ip_destination = v.ip_destination
    payload = p if n == _RRQ else p[:_RRQ]  # cut after MN-HA (RFC 5944 §3.7.2.2)
    if has_sas:
        fa_sas = store.for_peer(home_agent)
        if fa_sas:
            payload = signed_bytes(payload, FA_HA, fa_sas[0])  # RFC 5944 §3.7.2.2
    reg_flags = REG_FLAGS[flags]
    pendings.put(
        new_pending(
            hoa_addr,  # home_address
            link.interface,  # interface
            ev.link_src,  # link_address
            ip_source,  # ip_source
            ip_destination,  # ip_destination
            ev.sport,  # udp_source_port
            home_agent,  # home_agent
            coa_addr,  # care_of_address
            ident,  # identification
            life,  # requested_lifetime
            reg_flags,  # flags
            now,  # relayed_at
            now + cfg.pending_timeout,  # expires
            bool(flags & _T),  # reverse_tunnel
            _encapsulation(flags),  # encapsulation
            False,  # encapsulating_delivery
            mn_fa_spi,  # mn_fa_spi
            None,  # nai
        )
    )
    confirm_request(pending)
    fa._counters.events["relayed_requests"] += 1  # Counters.event, without the call
    src = cfg.relay_source
    if src is None:
        src = coa_addr  # offered on the link (checked above)
    send = make_record(
        SendUdp,
        {
            "dst": home_agent,
            "payload": payload,
            "dport": MIP_PORT,
            "sport": cfg.relay_port,
            "src": src,
            "interface": None,
            "link_dst": None,
            "ttl": None,
        },
    )
    fa.fast_requests += 1
    level = INFO
    if (
        pending is None  # registered, not re-registering
        and _int(v.care_of_address) == coa
        and _int(v.home_agent) == ha
        and v.requested_lifetime == life
        and int(v.flags) == flags
        and v.interface == link.interface
        and v.link_address == ev.link_src
        and same_source
        and v.nai is None
    ):
        level = DEBUG
    if level < fa.log_level:  # a line nobody writes: not built (ForeignAgent.log_level)
        return [send]
    return [send, request_record(hoa_addr, home_agent, coa_addr, life, ident, level)]


def confirm_request(pending: PendingRegistration | None) -> None:
    """A request relayed for a visitor: registered (``pending`` None) or re-registering ->
    re-registering (RFC 5944 §3.7.1; confirmed at import against the engine's table, each
    time against any other)."""
    if VISITOR_TRANSITIONS is not _CONFIRMED:
        VISITOR_TRANSITIONS.confirm(_R if pending is None else _RR, _REQUEST, _RR)


def request_record(
    home_address: IPv4Address,
    home_agent: IPv4Address,
    care_of_address: IPv4Address,
    lifetime: int,
    identification: int,
    level: int,
) -> Log:
    """The ``fa.request_relayed`` record of a relayed request (no NAI)."""
    return Log(
        "fa.request_relayed",
        {
            "home_address": home_address,
            "nai": None,
            "home_agent": home_agent,
            "care_of_address": care_of_address,
            "lifetime": lifetime,
            "identification": identification,
        },
        level,
    )


def relay_reply(fa: ForeignAgent, ev: UdpReceived, now: float) -> list[Action] | None:
    """The actions of the general path for the reply ``ev`` when it accepts a pending
    registration (module docstring), applied; ``None``, with nothing changed, otherwise."""
    p = ev.payload
    n = len(p)
    if n == _RRP_FA_HA:
        if p[42] != FA_HA or p[43] != 20:
            return None
    elif n != _RRP:
        return None
    if p[20] != 32 or p[21] != 20:  # MN-HA, 4 + 16 bytes
        return None
    t, code, life, hoa, ha, ident = _unpack_reply(p)
    accepted = _ACCEPTED.get(code)
    if t != 3 or accepted is None or life == 0:
        return None  # a denial; a deregistration's acceptance
    if fa.handoff is not None or fa._nai_pending or fa._mn_fa_offers:
        return None
    fast = _fast_config(fa)
    if not fast.usable:
        return None
    # the pending request it answers (RFC 5944 §3.7.3.1: home address, low 32 bits)
    pendings = fa._pending
    if type(pendings) is PendingList:
        pending = pendings._entries.get(hoa)
    else:
        pending = pendings.get(_address(hoa))
    if (
        pending is None
        or pending.identification & _LOW32 != ident & _LOW32
        or pending.nai is not None
        or not pending.requested_lifetime
        or int(pending.flags) & _D
    ):
        return None
    # FA-HA (RFC 5944 §3.7.3.1): the SA of the reply's source, else of the home agent the
    # request went to; with one, the reply MUST carry a valid FA-HA (68 otherwise)
    store = fa.security_associations
    if len(store):
        peer: IPv4Address = ev.src
        fa_sas = store.for_peer(peer)
        if not fa_sas and _int(pending.home_agent) != _int(peer):
            peer = pending.home_agent
            fa_sas = store.for_peer(peer)
        if fa_sas:
            if n != _RRP_FA_HA:
                return None  # 68: missing
            sa = store.get(peer, _U32(p, 44)[0])
            if sa is None or not compare_digest(
                sa.authenticator(p[:48] if sa.spi_covered else p[:44]), p[48:64]
            ):
                return None  # 68
    # RFC 5944 §3.7.3.2: cut after MN-HA (FA-HA removed)
    out = p if n == _RRP else p[:_RRP]
    hoa_addr = pending.home_address
    spi = pending.mn_fa_spi
    if spi is not None:
        sa = store.get(hoa_addr, spi)
        if sa is not None:
            out = signed_bytes(out, MN_FA, sa)
    # -- accepted: what fa_reply.relay_reply does, in its order ---------------------------
    src = pending.ip_destination
    i = _int(src)
    if i == 0 or i == _ALL_ONES or i >> 28 == 0xE:
        link = fa.config.link(pending.interface)
        if link is not None:
            src = link.address
    dst = pending.ip_source
    i = _int(dst)
    if i == 0 or i == _ALL_ONES or i >> 28 == 0xE:
        dst = hoa_addr  # RFC 2794 §2 (the home address is not 0.0.0.0 here)
    sent = make_record(
        SendUdp,
        {
            "dst": dst,
            "payload": out,
            "dport": pending.udp_source_port,
            "sport": MIP_PORT,
            "src": src,
            "interface": pending.interface,
            "link_dst": pending.link_address,
            "ttl": None,
        },
    )
    install, home_agent, level = accept_pending(fa, pending, accepted, life, ha, spi)
    actions: list[Action] = [install, sent]
    fa.fast_replies += 1
    if level >= fa.log_level:  # else a line nobody writes: not built (fa.log_level)
        actions.append(reply_record(pending, home_agent, code, life, level))
    return actions


def accept_pending(
    fa: ForeignAgent,
    pending: PendingRegistration,
    accepted: ReplyCode,
    life: int,
    ha: int,
    spi: int | None,
) -> tuple[InstallVisitor, IPv4Address, int]:
    """The home agent accepted the relayed request ``pending`` (code ``accepted``,
    Lifetime ``life``, Home Agent field ``ha``; ``spi``: the node's MN-FA SPI): what
    ``fa_reply.relay_reply`` does to the tables, in its order -- the pending entry dropped,
    the visitor entry made or refreshed (RFC 5944 §3.7.3.2: the lifetime the shorter of
    the granted and the requested), the counters. Returns its ``InstallVisitor``, the
    visitor's home agent and the level of the record (DEBUG for a renewal that changed
    nothing)."""
    hoa_addr = pending.home_address
    fa._pending.remove(hoa_addr)
    lifetime = min(life, pending.requested_lifetime)
    home_agent = pending.home_agent
    if _int(home_agent) != ha:
        home_agent = _address(ha)
    visitor = new_visitor(
        hoa_addr,  # home_address
        pending.interface,  # interface
        pending.link_address,  # link_address
        pending.ip_source,  # ip_source
        pending.ip_destination,  # ip_destination
        pending.udp_source_port,  # udp_source_port
        home_agent,  # home_agent
        pending.care_of_address,  # care_of_address
        pending.identification,  # identification
        pending.requested_lifetime,  # requested_lifetime
        lifetime,  # lifetime
        expiry(pending.relayed_at, lifetime),  # expires
        pending.flags,  # flags
        pending.reverse_tunnel,  # reverse_tunnel
        pending.encapsulation,  # encapsulation
        pending.encapsulating_delivery,  # encapsulating_delivery
        None,  # nai
        spi,  # mn_fa_spi
        None,  # revocation_timestamp
        False,  # revocation_inform
    )
    old = fa._visitors.put(visitor)
    counters = fa._counters
    events = counters.events  # Counters.event / accept, without the calls
    level = INFO
    if old is not None and same_visitor(old, visitor):
        level = DEBUG
        events["renewal_unchanged"] += 1
    install = make_record(
        InstallVisitor,
        {
            "home_address": hoa_addr,
            "interface": visitor.interface,
            "link_address": visitor.link_address,
            "home_agent": visitor.home_agent,
            "care_of_address": visitor.care_of_address,
            "reverse_tunnel": visitor.reverse_tunnel,
            "encapsulation": visitor.encapsulation,
            "expires": visitor.expires,
            "encapsulating_delivery": visitor.encapsulating_delivery,
        },
    )
    counters.accepted[accepted] += 1
    events["relayed_replies"] += 1
    # pending (or re-registering) -> registered: the visitor put, its pending entry dropped
    if VISITOR_TRANSITIONS is not _CONFIRMED:  # (else confirmed at import)
        VISITOR_TRANSITIONS.confirm(_P if old is None else _RR, _ACCEPT, _R)
    return install, home_agent, level


def reply_record(
    pending: PendingRegistration, home_agent: IPv4Address, code: int, life: int, level: int
) -> Log:
    """The ``fa.reply_relayed`` record of an accepted reply to ``pending``."""
    return Log(
        "fa.reply_relayed",
        {
            "home_address": pending.home_address,
            "home_agent": home_agent,
            "care_of_address": pending.care_of_address,
            "code": code,
            "lifetime": life,
            "decision": _DECISION,
        },
        level,
    )
