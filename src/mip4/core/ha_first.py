"""The home agent's fast path for the usual first registration (issue 13), held against
the general code.

Theory of operation
-------------------
A first registration -- a mobile node with no binding registers a care-of address --
goes through the general path (:meth:`~mip4.core.home_agent.HomeAgent.handle`: decode
every field, run the eleven checks of :data:`~mip4.core.ha_pipeline.HA_PIPELINE` over a
:class:`~mip4.core.ha_pipeline.HaRequest`, apply, reply), which builds a dozen objects for
it. :func:`first_registration` answers the usual one from its bytes instead, doing what
the general path does for it and nothing else, as :mod:`mip4.core.ha_renewal` does for the
usual renewal:

* the datagram's layout is the usual one -- the 24-byte fixed part, one MN-HA extension
  with a 16-byte authenticator, optionally one FA-HA extension after it (RFC 5944
  §3.7.2.2) -- so it decodes, and nothing but these two extensions can change a decision;
* every check of the pipeline is made on the integers of the fixed part, in the same
  order, with the same state: well formed (§3.8.2.1), the MN-HA authenticator over the
  bytes as received (§3.5.1, STYLE.md practice 5) with the SA the request's SPI names,
  the FA-HA one when the agent shares an SA with the sender, the Identification
  (timestamps, §5.7.1), the Home Agent field (this agent, unicast), the capability checks
  (RFC 3024 §4.2, RFC 5944 §3.8.2.1 encapsulation) and the administrative ones (served,
  room in the table);
* the node has no binding and S is clear: the request adds the binding and the node goes
  from ``HOME`` to ``AWAY`` (:data:`~mip4.core.ha_states.BINDING_TRANSITIONS`), with the
  actions, records, counters and log record the general path gives, in its order:
  ``InstallBinding``, ``ProxyArp`` on and the ``GratuitousArp`` of RFC 5944 §4.6, the reply
  (MN-HA, then FA-HA for a foreign agent that shares an SA with this agent, §3.8.3.1) and
  ``Log``.

Anything else returns ``None`` before any state changed, and the general path handles the
request: another layout (an NAI, a challenge, AAA, revocation support, a second
extension), a denial other than a bad authenticator (the general path builds the reply and
the counters), a deregistration, a node that has a binding (the renewal fast path's, or a
move), simultaneous bindings, nonces, an operator's redirection, NAI assignments for the
address, a full table, a pipeline other than ``HA_PIPELINE`` or the AAA mode.
``tests/core/test_ha_first.py`` drives two engines, one with this fast path and one
without, through randomized sequences of first registrations, deregistrations, expiries,
renewals, replays, bad authenticators and configuration changes, and asserts the same
actions field by field, counters, binding tables and replay state; the renewal fast
path's test (``tests/core/test_ha_renewal.py``) holds both fast paths together against the
general path.
"""

from __future__ import annotations

from hmac import compare_digest
from typing import TYPE_CHECKING

from mip4.security.auth import FA_HA, MN_HA, AuthFailure
from mip4.security.replay import ReplayState, check_request
from mip4.wire.codes import ReplyCode
from mip4.wire.msg_base import REG_FLAGS
from mip4.wire.msg_base import RRP_HEADER as _RRP_HEADER

from .actions import (
    INFO,
    MIP_PORT,
    Action,
    GratuitousArp,
    InstallBinding,
    Log,
    ProxyArp,
    SendUdp,
)
from .bindings import InMemoryBindingStore, MobilityBinding
from .events import UdpReceived
from .ha_pipeline import HA_PIPELINE, _serves
from .ha_renewal import (
    _ALL_ONES,
    _AUTH_HDR,
    _B,
    _D,
    _G,
    _GRE,
    _IPIP,
    _M,
    _MINIMAL,
    _MN_FA,
    _MN_ONLY,
    _REGISTER,
    _S,
    _T,
    _TIMESTAMPS,
    _U32,
    _address,
    _config_ints,
    _unpack_header,
)
from .timers import expiry

if TYPE_CHECKING:
    from .home_agent import HomeAgent

__all__ = ["first_registration"]

_ACCEPTED = ReplyCode.ACCEPTED


def first_registration(agent: HomeAgent, ev: UdpReceived, now: float) -> list[Action] | None:
    """The actions of the general path for ``ev`` when it is a usual first registration
    (module docstring), applied; ``None``, with nothing changed, for anything else."""
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
    bindings = agent._bindings
    if isinstance(bindings, InMemoryBindingStore):
        if bindings.only_binding(hoa) is not None:
            return None  # (the renewal fast path's, or a move)
        hoa_addr = _address(hoa)
        if bindings.bindings_of(hoa_addr):
            return None  # several
    else:
        hoa_addr = _address(hoa)
        if bindings.bindings_of(hoa_addr):
            return None
    # check_administrative: served, and room for one more binding
    if len(bindings) + 1 > cfg.max_bindings or not _serves(cfg, hoa_addr):
        return None
    redirects = agent._redirects
    if redirects and hoa_addr in redirects:
        return None  # select_home_agent: the operator moved this node (RFC 4433)
    # check_home_agent_address: not sent to the directed broadcast; this agent's address
    dst = ev.dst
    dst_int = int(dst)
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
    sa = store.get(hoa_addr, _U32(p, 26)[0])
    if sa is None or sa.replay is not _TIMESTAMPS:
        return None  # 131 -- or nonces: the general path draws the next nonce
    # check_identification (RFC 5944 §5.7.1: timestamps); kept only once verified
    replay = agent._replay
    state = replay.get(hoa_addr)
    check = check_request(
        state if state is not None else ReplayState(),
        ident,
        _TIMESTAMPS,
        now_unix=now + agent.clock_offset,
        tolerance=sa.replay_tolerance,
        new_nonce=None,
    )
    if not check.accepted:
        return None
    # check_mn_ha_auth: over the bytes as received through the SPI (RFC 5944 §3.5.1;
    # RFC 2002 coverage without it)
    spi = sa.spi
    if not compare_digest(sa.authenticator(p[:30] if sa.spi_covered else p[:26]), p[30:46]):
        # 131, answered here: the general path would verify it again
        return agent._denied_early(
            ev, now, ReplyCode.HA_MN_FAILED_AUTH, AuthFailure.BAD_AUTHENTICATOR, MN_HA, spi, sa
        )
    # check_fa_ha_auth: relayed by a foreign agent that shares an SA with this agent
    src = ev.src
    src_int = int(src)
    fa_sa = None
    if src_int != hoa and not (flags & _D and src_int == coa):
        peers = store.for_peer(src)
        if peers:
            if n != _MN_FA:
                failure, fa_spi, fa_sa = AuthFailure.MISSING, None, peers[0]
            else:
                fa_spi = _U32(p, 48)[0]
                fa_sa = store.get(src, fa_spi)
                if fa_sa is None:
                    failure, fa_sa = AuthFailure.UNKNOWN_SPI, peers[0]
                elif compare_digest(
                    fa_sa.authenticator(p[:52] if fa_sa.spi_covered else p[:48]), p[52:72]
                ):
                    failure = None
                else:
                    failure = AuthFailure.BAD_AUTHENTICATOR
            if failure is not None:
                code = ReplyCode.HA_FA_FAILED_AUTH
                return agent._denied_early(ev, now, code, failure, FA_HA, fa_spi, sa, fa_sa)

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
    replay[hoa_addr] = check.state
    if ev.interface == cfg.interface and ev.link_src is not None and src_int == hoa:
        agent._home_link_addresses[hoa_addr] = ev.link_src
    reverse_tunnel = bool(flags & _T)
    expires = expiry(now, lifetime)
    coa_addr = _address(coa)
    binding = MobilityBinding.of(
        hoa_addr,
        coa_addr,
        lifetime,
        now,
        expires,
        ident,
        REG_FLAGS[flags],
        encapsulation,
        reverse_tunnel,
        src,
        None,
        None,
        False,
    )
    bindings.put(binding)
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
    actions.append(
        Log(
            "ha.registration",
            {
                "home_address": hoa_addr,
                "care_of_address": coa_addr,
                "source": src,
                "code": 0,
                "lifetime": lifetime,
                "requested_lifetime": life,
                "decision": _REGISTER,
                "encapsulation": encapsulation._name_,
                "nai": None,
            },
            INFO,
        )
    )
    agent.fast_first_registrations += 1
    return actions
