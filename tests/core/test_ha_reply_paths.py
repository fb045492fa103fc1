"""The home agent's reply built directly as bytes (issue 13: a reply with MN-HA and FA-HA
at most, the usual one) against the general construction it replaced (a ``RegistrationReply``
object signed with :func:`mip4.security.auth.sign`, extension by extension, and the
``SendUdp`` constructor): two engines, one with the reply code as it was before, get the
same inputs and must return the same actions, byte for byte -- acceptances, renewals,
deregistrations and every denial, with and without an MN-HA SA, an MN-NAI extension, an
RFC 2002 (SPI not covered) association, nonces, a foreign agent's FA-HA, revocation
support and a redirection's extension (an accepted registration with revocation support
takes the general path in both)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

from mip4.core.actions import MIP_PORT, Action, InstallBinding, SendUdp
from mip4.core.ha_pipeline import HaRequest
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.auth import append_extensions, sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import ReplayMethod, SecurityAssociation, SecurityAssociations
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_mobility import RevocationSupportExtension, RevocationSupportFlags
from mip4.wire.extensions import (
    ForeignHomeAuthExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.messages import NO_FLAGS, RegistrationFlags, RegistrationReply, RegistrationRequest

from .test_home_agent import COA, COA2, FA, FA_SA, HA, HOA, HOA2, MN_SA, NET, UNIX0, _Nonces, udp
from .test_home_agent import request as signed_request

A = IPv4Address
F = RegistrationFlags
OLD_SA = SecurityAssociation(spi=0x3000, key=b"o" * 16, spi_covered=False)  # RFC 2002
NONCE_SA = SecurityAssociation(spi=0x4000, key=b"n" * 16, replay=ReplayMethod.NONCES)
HOA3, HOA4 = A("10.0.0.12"), A("10.0.0.13")
NAI = "carol@example.net"


class _GeneralReply(HomeAgent):
    """A home agent whose reply is built as before issue 13's direct bytes (every request
    through the general path: the renewal fast path builds its reply directly too)."""

    renewal_fast_path = False

    def _reply(
        self,
        ctx: HaRequest,
        code: ReplyCode,
        lifetime: int,
        *,
        identification: int | None = None,
        home_agent: IPv4Address | None = None,
    ) -> SendUdp:
        from mip4.core.revocation import support_extension

        req, ev = ctx.request, ctx.event
        if identification is None:
            identification = (
                ctx.reply_identification
                if ctx.reply_identification is not None
                else req.identification
            )
        extensions = ctx.reply_extensions
        for e in req.extensions:
            if isinstance(e, MobileNodeNAIExtension):
                extensions = (e, *extensions)
                break
        if home_agent is None:
            home_agent = ctx.reply_home_agent or req.home_agent
        reply = RegistrationReply.of(
            int(code), lifetime, ctx.home_address, home_agent, identification, extensions
        )
        if ctx.mn_sa is not None:
            reply = sign(reply, MobileHomeAuthExtension, ctx.mn_sa)
        if ctx.revocation is not None and code.accepted:
            ours = support_extension(
                self._revocations.timestamp(ctx.now), self._inform(ctx.revocation)
            )
            reply = append_extensions(reply, ours)
        if ctx.fa_sa is not None:
            reply = sign(reply, ForeignHomeAuthExtension, ctx.fa_sa)
        payload = reply.raw or reply.encode()
        src = ev.dst
        d = int(src)
        bcast = int(self.config.home_network.broadcast_address)
        if d in (0, 0xFFFFFFFF, bcast) or d >> 28 == 0xE:
            src = self.config.address
        return SendUdp(
            dst=ev.src,
            payload=payload,
            dport=ev.sport,
            sport=ev.dport if ev.dport else MIP_PORT,
            src=src,
        )


def _store() -> SecurityAssociations:
    store = SecurityAssociations()
    store.add(HOA, MN_SA)
    store.add(HOA2, OLD_SA)
    store.add(HOA3, NONCE_SA)
    store.add(NAI, MN_SA)
    store.add(A("10.9.9.9"), MN_SA)  # outside the home network: 129
    store.add(FA, FA_SA)
    return store


def _pair(**cfg: object) -> tuple[HomeAgent, HomeAgent]:
    def one(cls: type[HomeAgent]) -> HomeAgent:
        config = HomeAgentConfig(address=HA, home_network=NET, interface="home0", **cfg)  # type: ignore[arg-type]
        return cls(config, _store(), UNIX0, rng=_Nonces(0x5000))

    return one(HomeAgent), one(_GeneralReply)


def _revocation_request(now: float) -> bytes:
    """Relayed by a foreign agent that supports revocation (RFC 3543: its Revocation
    Support extension after MN-HA, then FA-HA)."""
    ident = ntp_timestamp(UNIX0 + now, low=0x77)
    req = RegistrationRequest(NO_FLAGS, 600, HOA, HA, COA, ident, ())
    req = sign(req, MobileHomeAuthExtension, MN_SA)
    req = append_extensions(req, RevocationSupportExtension(1234, RevocationSupportFlags.I))
    return sign(req, ForeignHomeAuthExtension, FA_SA).raw


def _nai_request(now: float, lifetime: int = 600) -> bytes:
    return signed_request(
        now=now,
        lifetime=lifetime,
        extra=(MobileNodeNAIExtension(NAI.encode()),),  # type: ignore[arg-type]
    )


Step = Callable[[HomeAgent, float], list[Action]]
Make = Callable[[float], Step]


def _send(payload: bytes, **kw: object) -> Step:
    return lambda ha, now: ha.handle(udp(payload, **kw), now)  # type: ignore[arg-type]


def _steps() -> list[tuple[float, Step]]:
    """One input per simulated second (timestamps must move on: RFC 5944 §5.7.1)."""
    d = F.D  # co-located: the reply goes to the node itself
    bad_key = dataclasses.replace(MN_SA, key=b"x" * 16)
    nonce = (0x5000 << 32) | 0x11  # the first nonce the home agent issues (_Nonces)
    steps: list[Make] = [
        # direct, co-located: first registration, renewal, replay (133), deregistration
        lambda t: _send(signed_request(now=t, coa=COA2, flags=d), src=COA2),
        lambda t: _send(signed_request(now=t, coa=COA2, flags=d), src=COA2),
        lambda t: _send(signed_request(now=t - 1, coa=COA2, flags=d), src=COA2),
        lambda t: _send(signed_request(now=t, coa=COA2, lifetime=0, flags=d), src=COA2),
        # through the foreign agent: FA-HA (the general path), FA-HA missing (132)
        lambda t: _send(signed_request(now=t, fa_sa=FA_SA)),
        lambda t: _send(signed_request(now=t, fa_sa=None)),
        # an RFC 2002 association; nonces: 133 first, then the nonce echoed
        lambda t: _send(signed_request(now=t, hoa=HOA2, mn_sa=OLD_SA, coa=COA2), src=COA2),
        lambda t: _send(signed_request(now=t, hoa=HOA3, mn_sa=NONCE_SA, coa=COA2), src=COA2),
        lambda t: _send(signed_request(hoa=HOA3, mn_sa=NONCE_SA, coa=COA2, ident=nonce), src=COA2),
        # denials: a bad authenticator (signed), an unknown SPI and no MN-HA (unsigned),
        # 134, 136 (another home agent; sent to the directed broadcast), 129
        lambda t: _send(signed_request(now=t, mn_sa=bad_key), src=COA2),
        lambda t: _send(signed_request(now=t, mn_sa=SecurityAssociation(0x9999, b"z")), src=COA2),
        lambda t: _send(signed_request(now=t, mn_sa=None), src=COA2),
        lambda t: _send(signed_request(now=t, coa=A("224.0.0.1")), src=COA2),
        lambda t: _send(signed_request(now=t, ha=A("10.0.0.2")), src=COA2),
        lambda t: _send(signed_request(now=t), src=COA2, dst=NET.broadcast_address),
        lambda t: _send(signed_request(now=t, hoa=A("10.9.9.9")), src=COA2),
        # a long lifetime (capped by max_lifetime in one configuration)
        lambda t: _send(signed_request(now=t, lifetime=0xFFFF, coa=COA2), src=COA2),
        # an MN-NAI extension comes back in the reply; deregistered from the home link
        lambda t: _send(_nai_request(t), src=COA2),
        lambda t: _send(_nai_request(t, lifetime=0), src=HOA, interface="home0"),
        # sent to 255.255.255.255: answered from this agent's own address
        lambda t: _send(signed_request(now=t, coa=COA2), src=COA2, dst=A("255.255.255.255")),
        # revocation support (the general path), then a redirection's extension (143)
        lambda t: _send(_revocation_request(t)),
        lambda t: lambda ha, now: ha.redirect(HOA, A("10.0.0.2"), now),
        lambda t: _send(signed_request(now=t, coa=COA2), src=COA2),
    ]
    return [(float(i), make(float(i))) for i, make in enumerate(steps)]


@pytest.mark.parametrize(
    "cfg", [{}, {"revocation": True}, {"max_lifetime": 300}], ids=["plain", "rev", "cap"]
)
def test_direct_reply_bytes_equal_the_general_construction(cfg: dict[str, object]) -> None:
    fast, general = _pair(**cfg)
    replies = 0
    for now, step in _steps():
        got, want = step(fast, now), step(general, now)
        assert got == want, now
        assert [vars(a) for a in got] == [vars(a) for a in want], now
        replies += sum(isinstance(a, SendUdp) for a in got)
    assert replies >= 20
    assert fast.counters == general.counters


def test_action_fast_constructors_equal_the_dataclasses() -> None:
    dst, src = A("10.0.0.5"), A("10.0.0.1")
    assert vars(SendUdp.of(dst, b"p", 4321, 434, src)) == vars(SendUdp(dst, b"p", 4321, 434, src))
    assert vars(SendUdp.of(dst, b"p", 434, 434, None)) == vars(SendUdp(dst, b"p"))
    assert set(vars(SendUdp.of(dst, b"p", 1, 2, None))) == {
        f.name for f in dataclasses.fields(SendUdp)
    }
    from mip4.core.actions import Encapsulation

    for enc in Encapsulation:
        for flags in range(8):
            b, c, r = bool(flags & 1), bool(flags & 2), bool(flags & 4)
            iface = "home0" if b else None
            fast = InstallBinding.of(dst, src, enc, r, 12.5, b, iface, c)
            slow = InstallBinding(
                dst,
                src,
                enc,
                reverse_tunnel=r,
                expires=12.5,
                broadcast=b,
                home_interface=iface,
                colocated=c,
            )
            assert fast == slow and vars(fast) == vars(slow)
    assert set(vars(InstallBinding.of(dst, src, enc, False, None, False, None, False))) == {
        f.name for f in dataclasses.fields(InstallBinding)
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        SendUdp.of(dst, b"p", 1, 2, None).ttl = 3  # type: ignore[misc]
