"""Issue 13: the foreign agent's fast forms give what the general forms gave: the integer
tests of addresses, the records made without ``__init__``, the relayed request and reply
without a copy when nothing is cut, the states the relay path derives."""

from __future__ import annotations

import random
from dataclasses import fields
from ipaddress import IPv4Address

import pytest

import mip4.core.fa_relay as fa_relay_module
import mip4.core.fa_reply as fa_reply_module
import mip4.core.foreign_agent as foreign_agent_module
from mip4.core.actions import InstallVisitor, RemoveVisitor, SendUdp
from mip4.core.events import UdpReceived
from mip4.core.fa_checks import FaRequest, bad_unicast, check_well_formed
from mip4.core.fa_state import (
    VISITOR_TRANSITIONS,
    VisitorInput,
    VisitorList,
    VisitorState,
    make_record,
)
from mip4.core.foreign_agent import ForeignAgent, relayed_request
from mip4.security.auth import (
    MN_HA,
    find_auth_extension,
    sign,
    sign_mn_aaa,
    strip_after,
    strip_for_relay,
    with_raw,
)
from mip4.wire.extensions import (
    Extension,
    ForeignHomeAuthExtension,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RawExtension,
)
from mip4.wire.messages import NO_FLAGS, RegistrationReply, RegistrationRequest

from .test_foreign_agent import (
    FA_ADDR,
    FA_HA_SA,
    HA,
    HOA,
    IDENT,
    MAC,
    MN_FA_SA,
    MN_HA_SA,
    F,
    from_ha,
    from_mn,
    make_fa,
    reply,
    request,
    sas,
    to_mn,
)

A = IPv4Address


def _original(a: IPv4Address) -> bool:
    return a in (A("0.0.0.0"), A("255.255.255.255")) or a.is_multicast


def test_bad_unicast_on_integers() -> None:
    edges = [0, 1, 0xFFFFFFFF, 0xFFFFFFFE, 0xDFFFFFFF, 0xE0000000, 0xEFFFFFFF, 0xF0000000]
    rng = random.Random(13)
    sample = edges + [rng.getrandbits(32) for _ in range(20_000)]
    sample += [(top << 24) | rng.getrandbits(24) for top in range(256)]
    for i in sample:
        a = A(i)
        assert bad_unicast(a) is _original(a), a


# ----------------------------------------------------------------------------------------
# The relay path's shortcuts, each held against the general form (issue 13)
# ----------------------------------------------------------------------------------------


def _relayed_pair(fa: ForeignAgent, payload: bytes, now: float = 1.0) -> SendUdp:
    """Relay ``payload`` (a request from HOA) and its accepted reply; the reply to HOA."""
    fa.handle(from_mn(payload), now)
    return to_mn(fa.handle(from_ha(reply()), now))[0]


def _whole(record: object) -> None:
    """Every field of ``record``'s dataclass in the instance (none falling back to a class
    default), and the constructor given those fields makes an equal record. A slotted
    record (the visitor and the pending entry, ``fa_state.build``) has no class default to
    fall back to: a slot left unset raises ``AttributeError`` when read."""
    names = {f.name for f in fields(type(record))}  # type: ignore[arg-type]
    if hasattr(record, "__dict__"):
        assert set(vars(record)) == names
        given = dict(vars(record))
    else:
        given = {name: getattr(record, name) for name in names}
    assert type(record)(**given) == record


def test_records_made_without_init_equal_the_constructors() -> None:
    """The pending entry, the visitor and the relay path's actions (the requests to the
    home agent, the replies to the node, InstallVisitor) come from ``make_record``: every
    field in the instance, equal to the constructor's record, whichever optional fields a
    request sets."""
    for flags, mn_fa in ((NO_FLAGS, None), (F.T, None), (F.G | F.T, MN_FA_SA)):
        fa = make_fa(sas(mn_fa=mn_fa is not None), gre_encapsulation=True)
        out = fa.handle(from_mn(request(flags=flags, mn_fa=mn_fa)), 1.0)
        (to_ha,) = [a for a in out if isinstance(a, SendUdp)]
        _whole(to_ha)
        assert (to_ha.dst, to_ha.dport, to_ha.interface, to_ha.link_dst) == (HA, 434, None, None)
        p = fa.pending.get(HOA)
        assert p is not None
        _whole(p)
        back = fa.handle(from_ha(reply()), 1.1)
        (install,) = [a for a in back if isinstance(a, InstallVisitor)]
        _whole(install)
        _whole(to_mn(back)[0])
        v = fa.visitors.get(HOA)
        assert v is not None
        _whole(v)
        assert install.expires == v.expires and install.reverse_tunnel is v.reverse_tunnel
        assert v.colocated is False and v.reverse_tunnel is bool(flags & F.T)
    made = make_record(RemoveVisitor, {"home_address": HOA, "interface": "vis0"})
    assert made == RemoveVisitor(HOA, "vis0") and vars(made) == vars(RemoveVisitor(HOA, "vis0"))


CHALLENGE = MobileForeignChallengeExtension(b"c" * 16)
SKIPPABLE = RawExtension(200, b"\x01\x02")  # 128-255: skipped but kept (RFC 5944 §1.9)


@pytest.mark.parametrize(
    "layout",
    [
        "mn_ha",
        "nai, mn_ha",
        "mn_ha, mn_fa",
        "mn_ha, challenge, mn_fa",
        "mn_ha, skippable",
        "nai, challenge, mn_ha, mn_aaa",
        "nai, mn_ha, challenge, mn_aaa",
        "nai, challenge, mn_aaa",
        "mn_ha, mn_ha",
    ],
)
def test_the_relayed_request_is_strip_for_relay(layout: str) -> None:
    """``relayed_request`` gives what ``strip_for_relay`` gives, byte for byte, and the
    request itself only when nothing follows its authorization extension."""
    exts: list[Extension] = []
    req = RegistrationRequest(NO_FLAGS, 600, HOA, HA, FA_ADDR, IDENT)
    for part in layout.split(", "):
        if part in ("mn_ha", "mn_fa"):
            base = RegistrationRequest(NO_FLAGS, 600, HOA, HA, FA_ADDR, IDENT, tuple(exts))
            cls = MobileHomeAuthExtension if part == "mn_ha" else MobileForeignAuthExtension
            exts = list(sign(base, cls, MN_HA_SA).extensions)
        elif part == "mn_aaa":
            base = RegistrationRequest(NO_FLAGS, 600, HOA, HA, FA_ADDR, IDENT, tuple(exts))
            exts = list(sign_mn_aaa(base, 7, b"secret").extensions)
        else:
            exts.append(
                {
                    "nai": MobileNodeNAIExtension(b"mn@example.org"),
                    "challenge": CHALLENGE,
                    "skippable": SKIPPABLE,
                }[part]
            )
    req = RegistrationRequest(NO_FLAGS, 600, HOA, HA, FA_ADDR, IDENT, tuple(exts))
    fa = make_fa(sas(fa_ha=False))
    ctx = fa._classify(from_mn(req.encode()), 1.0)
    assert isinstance(ctx, FaRequest)
    check_well_formed(ctx)
    fast, slow = relayed_request(ctx), strip_for_relay(ctx.request)
    assert fast == slow and fast.raw == slow.raw
    if fast is ctx.request:
        assert len(slow.extensions) == len(ctx.request.extensions)  # nothing was cut
    # the shortcut: the authorization extension (MN-HA, else MN-AAA) is the last one
    assert (fast is ctx.request) is (layout in ("mn_ha", "nai, mn_ha", "nai, challenge, mn_aaa"))


@pytest.mark.parametrize("fa_ha", [True, False])
@pytest.mark.parametrize("after", [(), (SKIPPABLE,)])
def test_the_relayed_reply_is_cut_after_mn_ha(fa_ha: bool, after: tuple[Extension, ...]) -> None:
    """The reply sent to the mobile node: everything through MN-HA as received, nothing
    after it (FA-HA, or an extension after MN-HA) -- the reply itself when MN-HA is last."""
    rep = sign(RegistrationReply(0, 600, HOA, HA, IDENT), MobileHomeAuthExtension, MN_HA_SA)
    rep = RegistrationReply(0, 600, HOA, HA, IDENT, (*rep.extensions, *after))
    if fa_ha:
        rep = sign(with_raw(rep), ForeignHomeAuthExtension, FA_HA_SA)
    raw = rep.raw or rep.encode()
    fa = make_fa(sas(fa_ha=fa_ha))
    fa.handle(from_mn(request()), 1.0)
    send, sent = to_mn(fa.handle(from_ha(raw), 1.1))
    decoded = RegistrationReply.decode(raw)
    slow = strip_after(decoded, find_auth_extension(decoded, MN_HA))
    assert send.payload == slow.raw == raw[: len(send.payload)]
    assert sent.extensions == slow.extensions
    assert len(sent.extensions) == 1


class _CheckedTable:
    """VISITOR_TRANSITIONS, with each ``after`` the relay path computes held against
    ``state_of`` read from the tables at that moment (what the engine used to pass)."""

    def __init__(self, fa: ForeignAgent, hoa: IPv4Address) -> None:
        self.fa, self.hoa = fa, hoa
        self.seen: list[tuple[VisitorState, VisitorInput, VisitorState]] = []

    def check(self, before: VisitorState, inp: VisitorInput) -> frozenset[VisitorState]:
        return VISITOR_TRANSITIONS.check(before, inp)

    def confirm(self, before: VisitorState, inp: VisitorInput, after: VisitorState) -> None:
        assert after is self.fa.state_of(self.hoa), (before, inp, after)
        self.seen.append((before, inp, after))
        VISITOR_TRANSITIONS.confirm(before, inp, after)


def test_the_states_the_relay_path_derives_are_the_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fa = make_fa()
    table = _CheckedTable(fa, HOA)
    monkeypatch.setattr(fa_reply_module, "VISITOR_TRANSITIONS", table)
    monkeypatch.setattr(foreign_agent_module, "VISITOR_TRANSITIONS", table)
    monkeypatch.setattr(fa_relay_module, "VISITOR_TRANSITIONS", table)  # the fast path
    steps = [
        (request(), reply()),  # first registration: I -> P -> R
        (request(ident=IDENT + 1), reply(ident=IDENT + 1)),  # renewal: R -> RR -> R
        (request(ident=IDENT + 2), reply(133, ident=IDENT + 2)),  # denied: RR -> R
        (request(ident=IDENT + 3, lifetime=0), reply(0, 0, ident=IDENT + 3)),  # RR -> I
        (request(ident=IDENT + 4), reply(131, ident=IDENT + 4)),  # denied: P -> I
    ]
    for now, (req, rep) in enumerate(steps, start=1):
        fa.handle(from_mn(req), float(now))
        fa.handle(from_ha(rep), now + 0.1)
    I, P, R, RR = (  # noqa: E741
        VisitorState.IDLE,
        VisitorState.PENDING,
        VisitorState.REGISTERED,
        VisitorState.REREGISTERING,
    )
    VI = VisitorInput
    assert table.seen == [
        (I, VI.REQUEST, P),
        (P, VI.ACCEPTED, R),
        (R, VI.REQUEST, RR),
        (RR, VI.ACCEPTED, R),
        (R, VI.REQUEST, RR),
        (RR, VI.DENIED, R),
        (R, VI.REQUEST, RR),
        (RR, VI.DEREGISTERED, I),
        (I, VI.REQUEST, P),
        (P, VI.DENIED, I),
    ]


def test_the_fast_paths_transitions_are_the_ones_confirmed_at_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13: the relay fast path confirms its visitor transitions against the engine's
    table once, at import (``fa_relay.FAST_TRANSITIONS``), not per datagram. Every
    transition it makes -- a first registration's reply, renewals, a renewal relayed while
    one is pending -- is one of them (seen through a table of the test's, which the fast
    path confirms as it goes), and a table without one of them is refused."""
    from mip4.core.registration import ProtocolError, TransitionTable

    fa = make_fa()
    table = _CheckedTable(fa, HOA)
    monkeypatch.setattr(fa_relay_module, "VISITOR_TRANSITIONS", table)
    fa.handle(from_mn(request()), 1.0)  # a first request: the general path (I -> P)
    fa.handle(from_ha(reply()), 1.1)  # P -> R
    fa.handle(from_mn(request(ident=IDENT + 1)), 2.0)  # R -> RR
    fa.handle(from_mn(request(ident=IDENT + 2)), 2.1)  # RR -> RR (retransmitted anew)
    fa.handle(from_ha(reply(ident=IDENT + 2)), 2.2)  # RR -> R
    fa.handle(from_mn(request(ident=IDENT + 3)), 3.0)
    fa.handle(from_ha(reply(ident=IDENT + 3)), 3.1)
    assert fa.fast_requests == 3 and fa.fast_replies == 3
    seen = set(table.seen)
    assert seen == set(fa_relay_module.FAST_TRANSITIONS)
    # the import-time check has teeth: a table without one of them is refused
    for dropped in fa_relay_module.FAST_TRANSITIONS:
        before, inp, _after = dropped
        rows = dict(VISITOR_TRANSITIONS.table)
        rows[(before, inp)] = rows[(before, inp)] - {dropped[2]}
        with pytest.raises(ProtocolError):
            fa_relay_module._confirm_all(TransitionTable("without one", rows))
    fa_relay_module._confirm_all(VISITOR_TRANSITIONS)
    assert fa_relay_module._CONFIRMED is VISITOR_TRANSITIONS


@pytest.mark.parametrize("source", [HOA, A("10.0.0.99")])
def test_a_renewal_keeps_the_visitors_address_objects(
    source: IPv4Address, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: a datagram's addresses are new objects (or the I/O shell's), never the
    ones the visitor's first request was decoded into. The relayed renewal's pending entry
    holds the visitor's objects where the values are equal, so the accepted reply's
    visitor replaces the old one with the same objects: the visitor list has nothing to
    share again (``_share`` is not called) and the records equal the general path's."""
    fa, general = make_fa(), make_fa()
    general.relay_fast_path = False
    for agent in (fa, general):
        agent.handle(from_mn(request(), src=A(int(source))), 1.0)
        agent.handle(from_ha(reply()), 1.1)
    first = fa.visitors.get(HOA)
    assert first is not None

    def no_sharing(self: object, address: IPv4Address) -> IPv4Address:
        raise AssertionError(f"shared again: {address}")

    for n in range(1, 4):
        req, rep = request(ident=IDENT + n), reply(ident=IDENT + n)
        src, dst = A(int(source)), A(int(FA_ADDR))  # as the I/O shell hands them over
        ev = UdpReceived(req, src, dst, 5555, 434, "vis0", MAC, ttl=255)
        expected = general.handle(ev, 1.0 + n)
        with monkeypatch.context() as m:
            m.setattr(VisitorList, "_share", no_sharing)
            out = fa.handle(ev, 1.0 + n)
            p = fa.pending.get(HOA)
            assert p is not None and p == general.pending.get(HOA)
            assert p.ip_source is first.ip_source and p.ip_destination is first.ip_destination
            assert out == expected
            back = fa.handle(from_ha(rep), 1.1 + n)
        assert back == general.handle(from_ha(rep), 1.1 + n)
        v = fa.visitors.get(HOA)
        assert v is not None and v == general.visitors.get(HOA)
        for name in ("home_address", "ip_source", "ip_destination", "home_agent"):
            assert getattr(v, name) is getattr(first, name), name
    assert (fa.fast_requests, fa.fast_replies) == (3, 4)  # the first reply too
    assert fa.counters.events["renewal_unchanged"] == 3
