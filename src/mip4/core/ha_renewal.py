"""The home agent's fast path for the usual renewal and the usual first registration
(issue 13), held against the general code.

Theory of operation
-------------------
Most Registration Requests a home agent sees renew a binding it already holds: the same
home address, home agent, care-of address, flags and lifetime as before, the same MN-HA
association (and, relayed by a foreign agent, the same FA-HA one), a new Identification
and a new authenticator. The general path (:meth:`~mip4.core.home_agent.HomeAgent.handle`:
decode every field, run the eleven checks of :data:`~mip4.core.ha_pipeline.HA_PIPELINE`
over a :class:`~mip4.core.ha_pipeline.HaRequest`, apply, reply) builds a dozen objects
for it. :func:`renew` answers such a request from its bytes instead, doing what the
general path does for it and nothing else:

* the datagram's layout is the usual one -- the 24-byte fixed part, one MN-HA extension
  with a 16-byte authenticator, optionally one FA-HA extension after it (what a foreign
  agent relays, RFC 5944 §3.7.2.2) -- so it decodes, and nothing but these two
  extensions can change a decision;
* every check of the pipeline is made on the integers of the fixed part, in the same
  order, with the same state (the SA store, the replay state, the binding table, the
  configuration): the MN-HA authenticator over the bytes as received (RFC 5944 §3.5.1,
  STYLE.md practice 5) with the SA the request's SPI names, the FA-HA one when the agent
  shares an SA with the sender (§3.8.2.1), the Identification (timestamps, §5.7.1), the
  Home Agent field (this agent, unicast), the capability checks (RFC 3024 §4.2, RFC 5944
  §3.8.2.1 encapsulation) and the administrative ones;
* the node has exactly one binding, at the same care-of address, and S is clear: the
  request replaces it (RFC 5944 §3.8.2.2), with the same actions, records, counters and
  log record the general path gives (``InstallBinding``, the reply -- MN-HA, then FA-HA
  for a foreign agent that shares an SA with this agent, §3.8.3.1 -- and ``Log``).

The usual first registration -- the same layout, checks and state, a node with no binding,
S clear -- is answered the same way (``first_registration_fast_path``): the binding added
and the node from ``HOME`` to ``AWAY`` (:data:`~mip4.core.ha_states.BINDING_TRANSITIONS`),
with the actions, records, counters and log record the general path gives, in its order:
``InstallBinding``, ``ProxyArp`` on and the ``GratuitousArp`` of RFC 5944 §4.6, the reply
and ``Log``. Both share one reading of the request and one run of the checks, so a first
registration is not checked twice (``tests/core/test_ha_first.py`` holds it against the
general path, with a full table, a non-memory store and the SQLite store among its cases).

Anything else returns ``None`` before any state changed, and the general path handles the
request: another layout (an NAI, a challenge, AAA, revocation support, a second
extension), a denial of any kind (the general path builds the reply and the counters), a
deregistration, a move (proxy ARP, gratuitous ARP, the binding removed), a node with
several bindings, a first registration with ``first_registration_fast_path`` off,
simultaneous bindings, nonces (the agent draws a new nonce), an operator's redirection,
NAI assignments for the address, a pipeline other than ``HA_PIPELINE`` (tests add
checks) or the AAA mode. ``tests/core/test_ha_renewal.py`` drives two engines,
one with the fast path and one without, through randomized sequences of renewals,
changes, replays, bad authenticators, clock steps and expiries, and asserts the same
actions (field by field), counters, binding tables and replay state.

No per-binding memory: what the fast path compares a request with is the binding itself,
the SA store and the replay state the general path reads too. An association that is a
subscriber table's row is read as its fields
(:meth:`~mip4.security.sa.SecurityAssociations.get_fields`: a tuple, the key absorbed
once for the check and the reply's signature), not made into an association object; a
denial takes the association itself (``get``). No long-lived object per
renewal either: with the in-memory binding table the node's binding record is renewed in
place, and the in-memory replay table (:class:`~mip4.security.replay.ReplayStates`) holds
the accepted Identification itself, an int the binding holds too (a new record per renewal
stayed in the collector's generation 0 while the frozen one it replaced was freed, and
CPython counts generation 0 down for that free: late, big young collections at a million
bindings). With both tables in memory, a renewed binding holds that Identification for
the replay table (:meth:`~mip4.core.bindings.InMemoryBindingStore.hold_replay`): the
renewal reads and writes the binding's record and not the replay table's slots (three
cache misses fewer per renewal at a million nodes, in a random order).
"""

from __future__ import annotations

import math
import struct
from hmac import compare_digest
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from mip4.security.auth import FA_HA, MN_HA, AuthFailure
from mip4.security.replay import HELD as _HELD
from mip4.security.replay import NTP_UNIX_OFFSET, ReplayState, ReplayStates
from mip4.security.sa import (
    ReplayMethod,
    SecurityAssociation,
    SecurityAssociations,
    SecurityAssociationStore,
)
from mip4.security.sa_rows import RowAssociation
from mip4.wire.addr import ipv4_from_int as _address
from mip4.wire.addr import ipv4_int as _int
from mip4.wire.codes import ReplyCode
from mip4.wire.msg_base import REG_FLAGS, RRQ_HEADER
from mip4.wire.msg_base import RRP_HEADER as _RRP_HEADER
from mip4.wire.records import make_record

from .actions import (
    DEBUG,
    INFO,
    MIP_PORT,
    Action,
    Encapsulation,
    GratuitousArp,
    InstallBinding,
    Log,
    ProxyArp,
    RemoveBinding,
    SendUdp,
)
from .bindings import InMemoryBindingStore, MobilityBinding, same_binding
from .events import UdpReceived
from .ha_pipeline import HA_PIPELINE, _serves
from .timers import expiry

if TYPE_CHECKING:
    from .ha_config import HomeAgentConfig
    from .home_agent import HomeAgent

__all__ = ["usual_registration"]

#: ReplayState's slot setters (the fast path builds a record without ``__setattr__``)
_s_last_accepted = ReplayState.__dict__["last_accepted"].__set__
_s_nonce = ReplayState.__dict__["nonce"].__set__
_new = object.__new__
_floor = math.floor
_NTP_UNIX = NTP_UNIX_OFFSET
_M64 = 0xFFFFFFFFFFFFFFFF
_HALF32, _WRAP32, _HALF64 = 1 << 31, 1 << 32, 1 << 63
_unpack_header = RRQ_HEADER.unpack_from
_U32 = struct.Struct("!I").unpack_from
_AUTH_HDR = struct.Struct("!BBI").pack
_ALL_ONES = 0xFFFFFFFF
_TIMESTAMPS = ReplayMethod.TIMESTAMPS
_ACCEPTED = ReplyCode.ACCEPTED
_IPIP, _GRE, _MINIMAL = Encapsulation.IPIP, Encapsulation.GRE, Encapsulation.MINIMAL
#: RegistrationFlags bits (RFC 5944 §3.3)
_S, _B, _D, _M, _G, _T = 0x80, 0x40, 0x20, 0x10, 0x08, 0x02
#: the usual layouts: fixed part (24) + MN-HA (2 + 4 + 16), and + FA-HA (2 + 4 + 16)
_MN_ONLY, _MN_FA = 24 + 22, 24 + 22 + 22
#: a request's log record's ``decision`` (``BindingInput.REGISTER``'s value)
_REGISTER = "register"


class _ConfigInts:
    """What the fast path reads of a configuration, as integers (once per config)."""

    __slots__ = ("bcast", "config", "directed", "first", "last", "me", "plain", "tiny")

    def __init__(self, cfg: HomeAgentConfig) -> None:
        self.config = cfg
        net = cfg.home_network
        self.me = int(cfg.address)
        #: ``HomeAgentConfig.serves`` on integers (``ha_pipeline._serves``): with no
        #: address pool and no ``home_addresses`` list, every address of the home network
        #: but the agent's own and (below /31) the network and broadcast addresses
        self.plain = not cfg.address_pool and cfg.home_addresses is None
        self.first = int(net.network_address)
        self.last = int(net.broadcast_address)
        self.tiny = net.prefixlen >= 31
        #: the home network's broadcast address (a reply to a request sent there comes
        #: from this agent's own address, RFC 5944 §3.8.3.1)
        self.bcast = int(net.broadcast_address)
        #: a request sent to this address is refused with 136 (RFC 5944 §3.8.2.1)
        self.directed = self.bcast if net.prefixlen < 31 else -1


def _config_ints(agent: HomeAgent) -> _ConfigInts:
    cfg = agent.config
    cached = agent._renewal_config
    if cached is None or cached.config is not cfg:
        cached = agent._renewal_config = _ConfigInts(cfg)
    return cached


def usual_registration(agent: HomeAgent, ev: UdpReceived, now: float) -> list[Action] | None:
    """The actions of the general path for ``ev`` when it is a usual renewal or (with
    ``first_registration_fast_path``) a usual first registration (module docstring),
    applied; ``None``, with nothing changed, for anything else."""
    p = ev.payload
    n = len(p)
    if n == _MN_FA:
        if p[46] != 34 or p[47] != 20:  # FA-HA, 4 + 16 bytes
            return None
    elif n != _MN_ONLY:
        return None
    if p[24] != 32 or p[25] != 20:  # MN-HA, 4 + 16 bytes
        return None
    t, flags, life, hoa, ha, coa, ident = _unpack_header(p)
    if t != 1 or life == 0 or flags & _S:
        return None  # not a request; a deregistration; simultaneous bindings
    cfg = agent.config
    if agent.pipeline is not HA_PIPELINE or cfg.aaa:
        return None
    ints = _config_ints(agent)
    # check_well_formed (no MN-NAI extension: the home address is the request's)
    if hoa in (0, _ALL_ONES) or hoa >> 28 == 0xE:
        return None
    if coa in (0, _ALL_ONES, hoa) or coa >> 28 == 0xE:
        return None
    # First what costs no authenticator (a request that fails any of it goes to the
    # general path unverified; it verifies once), then the authenticators.
    # A renewal: the node's only binding, at the same care-of address (anything else
    # changes proxy ARP or removes a binding). A first registration: no binding.
    bindings = agent._bindings
    if isinstance(bindings, InMemoryBindingStore):
        bound = bindings.only_binding(hoa)
        if bound is not None:
            hoa_addr = bound.home_address  # (an equal address: no new object)
        else:
            hoa_addr = _address(hoa)
            if bindings.bindings_of(hoa_addr):
                return None  # several
    else:
        hoa_addr = _address(hoa)
        current = bindings.bindings_of(hoa_addr)
        if len(current) > 1:
            return None
        bound = current[0] if current else None
    # check_administrative: served, and room in the table (for one more binding)
    if bound is not None:
        if _int(bound.care_of_address) != coa or len(bindings) > cfg.max_bindings:
            return None
    elif not agent.first_registration_fast_path or len(bindings) + 1 > cfg.max_bindings:
        return None
    if ints.plain:  # _serves, in line
        net_first, net_last = ints.first, ints.last
        if not net_first <= hoa <= net_last or hoa == ints.me:
            return None
        if not ints.tiny and hoa in (net_first, net_last):
            return None
    elif not _serves(cfg, hoa_addr):
        return None
    redirects = agent._redirects
    if redirects and hoa_addr in redirects:
        return None  # select_home_agent: the operator moved this node (RFC 4433)
    # check_home_agent_address: not sent to the directed broadcast; this agent's address
    # (then select_home_agent has nothing to pick: no redirection, not 0.0.0.0)
    dst = ev.dst
    dst_int = _int(dst)
    if dst_int == ints.directed or ha != ints.me:
        return None
    # check_reverse_tunnel (RFC 3024 §4.2), check_encapsulation
    if flags & _T:
        if not cfg.reverse_tunnel:
            return None
    elif cfg.reverse_tunnel_required:
        return None
    encapsulation = _IPIP
    if flags & _G:
        if not cfg.gre_encapsulation:
            return None
        encapsulation = _GRE
    if flags & _M:
        if not cfg.minimal_encapsulation:
            return None
        if encapsulation is _IPIP:
            encapsulation = _MINIMAL
    # assign_home_address: the address is not assigned to an NAI
    assigned_to = agent._assigned_to
    if assigned_to and assigned_to.get(hoa_addr) is not None:
        return None
    # grant_lifetime
    lifetime = min(life, cfg.max_lifetime)
    # check_mn_ha_auth's association: the one the SPI names for the home address
    store = agent.security_associations
    # (the in-memory store by the home address's int: the address object left alone)
    plain_store = type(store) is SecurityAssociations
    # (a subscriber table's row as its fields, no association object: get_fields)
    sa = (
        store.get_fields(hoa, _U32(p, 26)[0])  # type: ignore[attr-defined]
        if plain_store
        else store.get(hoa_addr, _U32(p, 26)[0])
    )
    if sa is None or sa.replay is not _TIMESTAMPS:
        return None  # 131 -- or nonces: the general path draws the next nonce
    # check_identification (RFC 5944 §5.7.1: timestamps): what check_request decides for
    # timestamps, on the integers (no ReplayCheck, no new ReplayState for a renewal); the
    # state is kept only once verified. The high word within the tolerance of the agent's
    # NTP seconds (serial-number arithmetic, RFC 1982), and greater than the last accepted
    # Identification (64-bit serial arithmetic). A rejected one goes to the general path.
    replay = agent._replay
    # (the in-memory table holds a timestamps-only state as the bare Identification; the
    # in-memory binding table may hold it in the node's binding, ReplayStates.hold_with)
    raw = replay.raw if type(replay) is ReplayStates else None
    holding = (
        raw is not None
        and bound is not None
        and type(bindings) is InMemoryBindingStore
        and bindings.holding_for is replay
    )
    if holding and bound.holds_replay:  # type: ignore[union-attr]
        held: int | ReplayState | None = bound.identification  # type: ignore[union-attr]
    else:
        held = raw.get(hoa) if raw is not None else replay.get(hoa_addr)
    if held is None or type(held) is int:
        last, nonce = held, None
    else:
        assert isinstance(held, ReplayState)
        last, nonce = held.last_accepted, held.nonce
    ha_secs = (_floor(now + agent.clock_offset) + _NTP_UNIX) & _ALL_ONES
    skew = ((ident >> 32) - ha_secs) & _ALL_ONES
    if skew >= _HALF32:
        skew -= _WRAP32
    if abs(skew) > sa.replay_tolerance:
        return None
    if last is not None and not 0 < (ident - last) & _M64 < _HALF64:
        return None
    # check_mn_ha_auth: over the bytes as received through the SPI (RFC 5944 §3.5.1;
    # RFC 2002 coverage without it)
    spi = sa.spi
    if not compare_digest(sa.authenticator(p[:30] if sa.spi_covered else p[:26]), p[30:46]):
        # 131, answered here: the general path would verify it again (a forgery must
        # cost no more than one check and the signed reply, issue 9's flood)
        mn_sa = _association(store, hoa_addr, sa)
        bad = AuthFailure.BAD_AUTHENTICATOR
        return agent._denied_early(ev, now, ReplyCode.HA_MN_FAILED_AUTH, bad, MN_HA, spi, mn_sa)
    # check_fa_ha_auth: relayed by a foreign agent that shares an SA with this agent
    src = ev.src
    src_int = _int(src)
    fa_sa: SecurityAssociation | RowAssociation | None = None
    if src_int != hoa and not (flags & _D and src_int == coa):
        if plain_store:
            first = store.first_for(src_int)  # type: ignore[attr-defined]
        else:
            peers = store.for_peer(src)
            first = peers[0] if peers else None
        if first is not None:
            failure: AuthFailure | None
            # 132 for a missing FA-HA, an unknown SPI or a bad authenticator: answered
            # here too, with the FA-HA SA the general path signs the reply with (the
            # peer's first)
            if n != _MN_FA:
                failure, fa_spi, fa_sa = AuthFailure.MISSING, None, first
            else:
                fa_spi = _U32(p, 48)[0]
                fa_sa = (
                    store.get_fields(src_int, fa_spi)  # type: ignore[attr-defined]
                    if plain_store
                    else store.get(src, fa_spi)
                )
                if fa_sa is None:
                    failure, fa_sa = AuthFailure.UNKNOWN_SPI, first
                elif compare_digest(
                    fa_sa.authenticator(p[:52] if fa_sa.spi_covered else p[:48]), p[52:72]
                ):
                    failure = None
                else:
                    failure = AuthFailure.BAD_AUTHENTICATOR
            if failure is not None:
                code = ReplyCode.HA_FA_FAILED_AUTH
                mn_sa = _association(store, hoa_addr, sa)
                fa_kept = _association(store, src, fa_sa)
                return agent._denied_early(ev, now, code, failure, FA_HA, fa_spi, mn_sa, fa_kept)

    # -- accepted: what HomeAgent._accept does for it, in its order -----------------------
    # the reply (RFC 5944 §3.8.3): MN-HA, then FA-HA (§3.8.3.1)
    covered = _RRP_HEADER.pack(3, 0, lifetime, hoa, ha, ident) + _AUTH_HDR(32, 20, spi)
    payload = covered + sa.authenticator(covered if sa.spi_covered else covered[:-4])
    if fa_sa is not None:
        covered = payload + _AUTH_HDR(34, 20, fa_sa.spi)
        payload = covered + fa_sa.authenticator(covered if fa_sa.spi_covered else covered[:-4])
    if dst_int == 0 or dst_int == _ALL_ONES or dst_int == ints.bcast or dst_int >> 28 == 0xE:
        dst = cfg.address
    reply = SendUdp.of(src, payload, ev.sport, ev.dport if ev.dport else MIP_PORT, dst)
    # check_request's new state: ``ReplayState(ident, nonce)`` -- with no nonce, in the
    # in-memory table, the Identification itself (no long-lived object per renewal: below),
    # held by the renewed binding when the binding table holds for the replay table (the
    # node's key in ``raw`` all the same)
    if raw is not None and nonce is None:
        if not holding:
            raw[hoa] = ident
        elif not bound.holds_replay:  # type: ignore[union-attr]
            raw[hoa] = _HELD  # (the slot just read: the key stays, the binding holds it)
    else:
        holding = False
        replay[hoa_addr] = _replay_state(ident, nonce)
    if bound is None:
        return _accept_first(
            agent, ev, now, reply, hoa_addr, _address(coa), flags, life, lifetime, ident,
            encapsulation, src, src_int, hoa,
        )  # fmt: skip
    coa_addr = bound.care_of_address
    if ev.interface == cfg.interface and ev.link_src is not None and src_int == hoa:
        agent._home_link_addresses[hoa_addr] = ev.link_src
    # RFC 5944 §3.8.2.2 (S clear): the new binding replaces the old one (the node's only
    # one, ``bound``: the in-memory table renews that record in place, no new record)
    # (exactly that class: a subclass, a persistent store, sees its remove and put)
    reverse_tunnel = bool(flags & _T)
    expires = expiry(now, lifetime)
    if type(bindings) is InMemoryBindingStore:
        replaced: tuple[MobilityBinding, ...] = ()
        unchanged = bindings.renew_in_place(
            bound, lifetime, now, expires, ident, REG_FLAGS[flags], encapsulation,
            reverse_tunnel, src, holding,
        )  # fmt: skip
    else:
        replaced = bindings.remove(hoa_addr)
        binding = _new_binding(
            hoa_addr, coa_addr, lifetime, now, expires, ident, flags, encapsulation,
            reverse_tunnel, src,
        )  # fmt: skip
        old = bindings.put(binding)
        if old is None and len(replaced) == 1:
            old = replaced[0]
        unchanged = old is not None and len(replaced) <= 1 and same_binding(old, binding)
    counters = agent._counters
    level = INFO
    if unchanged:
        level = DEBUG
        counters.events["renewal_unchanged"] += 1  # Counters.event, without the call
    broadcast = bool(flags & _B)
    actions: list[Action] = [
        InstallBinding.of(
            hoa_addr,
            coa_addr,
            encapsulation,
            reverse_tunnel,
            expires,
            broadcast,
            cfg.interface if broadcast else None,
            bool(flags & _D),
        )
    ]
    for b in replaced:
        if _int(b.care_of_address) != coa:
            actions.append(RemoveBinding(hoa_addr, b.care_of_address))
    counters.accepted[_ACCEPTED] += 1  # Counters.accept, without the call
    actions.append(reply)
    agent.fast_renewals += 1
    if level < agent.log_level:  # a line nobody writes: not built (HomeAgent.log_level)
        return actions
    actions.append(_accepted_log(hoa_addr, coa_addr, src, lifetime, life, encapsulation, level))
    return actions


def _association(
    store: SecurityAssociationStore, peer: IPv4Address, fields: SecurityAssociation | RowAssociation
) -> SecurityAssociation:
    """The association ``fields`` are of (a denial keeps it: ``get`` for a table row's
    fields, :meth:`~mip4.security.sa.SecurityAssociations.get_fields`)."""
    if isinstance(fields, SecurityAssociation):
        return fields
    sa = store.get(peer, fields.spi)
    assert sa is not None  # (read just before, in the same call)
    return sa


def _accepted_log(
    hoa_addr: IPv4Address,
    coa_addr: IPv4Address,
    src: IPv4Address,
    lifetime: int,
    life: int,
    encapsulation: Encapsulation,
    level: int,
) -> Log:
    """The ``ha.registration`` record of an accepted registration (code 0, no NAI), as the
    general path writes it, built as one record (:func:`mip4.wire.records.make_record`: no
    frozen ``__setattr__`` per field; the tests compare the records field by field)."""
    fields: dict[str, object] = {
        "home_address": hoa_addr,
        "care_of_address": coa_addr,
        "source": src,
        "code": 0,
        "lifetime": lifetime,
        "requested_lifetime": life,
        "decision": _REGISTER,
        "encapsulation": encapsulation._name_,
        "nai": None,
    }
    return make_record(Log, {"event": "ha.registration", "fields": fields, "level": level})


def _new_binding(
    hoa_addr: IPv4Address,
    coa_addr: IPv4Address,
    lifetime: int,
    now: float,
    expires: float | None,
    ident: int,
    flags: int,
    encapsulation: Encapsulation,
    reverse_tunnel: bool,
    src: IPv4Address,
) -> MobilityBinding:
    """The binding the general path makes for an accepted request (no NAI, no revocation
    support), as one record."""
    return MobilityBinding.of(
        hoa_addr, coa_addr, lifetime, now, expires, ident, REG_FLAGS[flags], encapsulation,
        reverse_tunnel, src, None, None, False,
    )  # fmt: skip


def _replay_state(identification: int, nonce: int | None) -> ReplayState:
    """``ReplayState(identification, nonce)``, the state check_request accepts a
    timestamped request with, built through the slots (no frozen ``__setattr__`` per
    field)."""
    new = _new(ReplayState)
    _s_last_accepted(new, identification)
    _s_nonce(new, nonce)
    return new


def _accept_first(
    agent: HomeAgent,
    ev: UdpReceived,
    now: float,
    reply: SendUdp,
    hoa_addr: IPv4Address,
    coa_addr: IPv4Address,
    flags: int,
    life: int,
    lifetime: int,
    ident: int,
    encapsulation: Encapsulation,
    src: IPv4Address,
    src_int: int,
    hoa: int,
) -> list[Action]:
    """A first registration accepted (its replay state kept already): what
    ``HomeAgent._accept`` does for it, in its order -- the binding added and the node from
    ``HOME`` to ``AWAY``, ``InstallBinding``, proxy ARP and the gratuitous ARP of RFC 5944
    §4.6, the reply, the log record."""
    cfg = agent.config
    if ev.interface == cfg.interface and ev.link_src is not None and src_int == hoa:
        agent._home_link_addresses[hoa_addr] = ev.link_src
    reverse_tunnel = bool(flags & _T)
    expires = expiry(now, lifetime)
    binding = _new_binding(
        hoa_addr, coa_addr, lifetime, now, expires, ident, flags, encapsulation,
        reverse_tunnel, src,
    )  # fmt: skip
    agent._bindings.put(binding)
    broadcast = bool(flags & _B)
    interface = cfg.interface
    actions: list[Action] = [
        InstallBinding.of(
            hoa_addr,
            coa_addr,
            encapsulation,
            reverse_tunnel,
            expires,
            broadcast,
            interface if broadcast else None,
            bool(flags & _D),
        ),
        # RFC 5944 §4.6: while the node is away the home agent answers ARP for it and MUST
        # first broadcast a gratuitous ARP so neighbours update their caches.
        ProxyArp(interface, hoa_addr, True),
        GratuitousArp(interface, hoa_addr, None, cfg.gratuitous_arp_count),
    ]
    agent._counters.accept(_ACCEPTED)
    actions.append(reply)
    agent.fast_first_registrations += 1
    if agent.log_level > INFO:  # a line nobody writes: not built (HomeAgent.log_level)
        return actions
    actions.append(_accepted_log(hoa_addr, coa_addr, src, lifetime, life, encapsulation, INFO))
    return actions
