"""Mobile nodes known by NAI at the home agent (RFC 2794 §2): an MN-HA SA configured for an
NAI, a home address of 0.0.0.0 assigned from the pool and returned in the reply with the
MN-NAI extension, kept across re-registrations, released on deregistration or expiry,
130 when the pool is empty, and never given to two nodes at once."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.core.actions import InstallBinding, RemoveBinding
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import MobileNodeNAIExtension
from mip4.wire.messages import RegistrationReply

from .test_home_agent import HA, MN_SA, NET, UNIX0, _Nonces, of, reply_of, request, udp

A = IPv4Address
ZERO = A(0)
POOL = frozenset({A("10.0.0.100"), A("10.0.0.101")})
COA = A("192.168.1.1")
NAIS = ("alice@example.net", "bob@example.net", "carol@example.net")


def make_ha(pool: frozenset[IPv4Address] = POOL) -> HomeAgent:
    store = SecurityAssociations()
    for nai in NAIS:
        store.add(nai, MN_SA)  # RFC 2794 §2: an MN-HA SA configured for an NAI
    config = HomeAgentConfig(address=HA, home_network=NET, interface="home0", address_pool=pool)
    return HomeAgent(config, store, UNIX0, rng=_Nonces(0x5000))


def nai_request(
    nai: str, *, hoa: IPv4Address = ZERO, now: float = 0.0, lifetime: int = 600
) -> bytes:
    return request(
        hoa=hoa,
        now=now,
        lifetime=lifetime,
        extra=(MobileNodeNAIExtension(nai.encode()),),  # type: ignore[arg-type]
    )


def register(ha: HomeAgent, nai: str, now: float = 0.0, **kw: object) -> RegistrationReply:
    return reply_of(ha.handle(udp(nai_request(nai, now=now, **kw)), now))  # type: ignore[arg-type]


def test_zero_home_address_gets_one_from_the_pool_with_the_nai_in_the_reply() -> None:
    ha = make_ha()
    actions = ha.handle(udp(nai_request(NAIS[0])), 0.0)
    reply = reply_of(actions)
    assert reply.code == ReplyCode.ACCEPTED
    assert reply.home_address == A("10.0.0.100")
    # RFC 2794 §2: the MN-NAI extension comes back, covered by the MN-HA authenticator.
    assert MobileNodeNAIExtension(NAIS[0].encode()) in reply.extensions
    assert of(actions, InstallBinding)[0].home_address == A("10.0.0.100")
    assert ha.assignments == {NAIS[0]: A("10.0.0.100")}


def test_address_kept_across_reregistrations_with_zero_or_the_assigned_address() -> None:
    ha = make_ha()
    first = register(ha, NAIS[0], now=0.0).home_address
    assert register(ha, NAIS[0], now=10.0).home_address == first
    assert register(ha, NAIS[0], now=20.0, hoa=first).home_address == first
    assert len(ha.bindings) == 1


def test_deregistration_releases_the_address() -> None:
    ha = make_ha()
    hoa = register(ha, NAIS[0]).home_address
    actions = ha.handle(udp(nai_request(NAIS[0], hoa=hoa, now=5.0, lifetime=0)), 5.0)
    assert reply_of(actions).code == ReplyCode.ACCEPTED
    assert of(actions, RemoveBinding) == [RemoveBinding(hoa, COA)]
    assert ha.assignments == {}
    # the next node gets it
    assert register(ha, NAIS[1], now=6.0).home_address == hoa


def test_expiry_releases_the_address() -> None:
    ha = make_ha()
    register(ha, NAIS[0], lifetime=100)
    assert ha.assignments
    ha.handle_timer(100.0)
    assert ha.assignments == {} and len(ha.bindings) == 0


def test_empty_pool_gives_130() -> None:
    ha = make_ha(frozenset({A("10.0.0.100")}))
    assert register(ha, NAIS[0]).code == ReplyCode.ACCEPTED
    reply = register(ha, NAIS[1])
    assert reply.code == ReplyCode.HA_INSUFFICIENT_RESOURCES
    assert ha.assignments == {NAIS[0]: A("10.0.0.100")}


def test_an_address_held_by_another_nai_is_refused_129() -> None:
    ha = make_ha()
    hoa = register(ha, NAIS[0]).home_address
    assert register(ha, NAIS[1], hoa=hoa).code == ReplyCode.HA_ADMIN_PROHIBITED
    assert ha.assignments == {NAIS[0]: hoa}


def test_zero_home_address_without_nai_is_still_poorly_formed() -> None:
    ha = make_ha()
    reply = reply_of(ha.handle(udp(request(hoa=ZERO)), 0.0), mn_sa=None)
    assert reply.code == ReplyCode.HA_POORLY_FORMED_REQUEST


def test_wrong_key_for_the_nai_is_131_and_assigns_nothing() -> None:
    ha = make_ha()
    bad = SecurityAssociation(spi=MN_SA.spi, key=b"z" * 16)
    raw = request(hoa=ZERO, mn_sa=bad, extra=(MobileNodeNAIExtension(NAIS[0].encode()),))  # type: ignore[arg-type]
    reply = reply_of(ha.handle(udp(raw), 0.0))
    assert reply.code == ReplyCode.HA_MN_FAILED_AUTH
    assert ha.assignments == {} and len(ha.bindings) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(NAIS), st.sampled_from(("reg", "dereg", "expire"))),
        max_size=25,
    )
)
def test_two_nodes_never_hold_the_same_address(steps: list[tuple[str, str]]) -> None:
    ha = make_ha()
    now = 0.0
    for nai, what in steps:
        now += 1.0
        if what == "reg":
            reply = register(ha, nai, now=now, lifetime=30)
            assert reply.code in (ReplyCode.ACCEPTED, ReplyCode.HA_INSUFFICIENT_RESOURCES)
            if reply.code == ReplyCode.ACCEPTED:
                assert ha.assignments[nai] == reply.home_address
        elif what == "dereg" and nai in ha.assignments:
            hoa = ha.assignments[nai]
            assert register(ha, nai, now=now, hoa=hoa, lifetime=0).code == ReplyCode.ACCEPTED
            assert nai not in ha.assignments
        else:
            now += 15.0
            ha.handle_timer(now)
        held = list(ha.assignments.values())
        assert len(held) == len(set(held))
        assert set(held) <= POOL
        # an address is held exactly while its binding lives
        assert {b.home_address for b in ha.bindings} == set(held)
