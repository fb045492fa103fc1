"""A co-located node's first registration through AAA (issue 10), and a home agent that lost
the key AAA gave (issue 11), against a real FreeRADIUS started by the test. The engines run
on the virtual clock of tests/core/netsim.py; every AAA request the home agent (and a
foreign agent) emits is carried out by mip4's RADIUS client against that FreeRADIUS, whose
``chap`` module checks MN-AAA over the challenge the home agent gave the node."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.aaa.freeradius import Subscriber
from mip4.aaa.messages import AaaResult
from mip4.security.aaa_keys import derive_key
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import MobileForeignChallengeExtension
from mip4.wire.messages import RegistrationReply, RegistrationRequest
from tests.core.netsim import MN_COLOCATED, MN_HA_KEY, MN_SPI

from .conftest import (
    FREERADIUS,
    FreeRadius,
    make_freeradius,
    needs_freeradius,
    start_freeradius,
)
from .test_ha_aaa import GIVEN, NAI, SECRET, replies_to_mn
from .test_keys_freeradius import SUBSCRIBER as DERIVED
from .test_keys_freeradius import RadiusWorld

pytestmark = [needs_freeradius, pytest.mark.timeout(180)]

#: the netsim node with a static MN-HA key in the users file (3GPP2-MN-HA-SPI/-Key)
STATIC = Subscriber(
    nai=NAI,
    secret=SECRET,
    home_address=GIVEN,
    home_agent=IPv4Address("10.0.0.1"),
    mn_ha_spi=MN_SPI,
    mn_ha_key=MN_HA_KEY,
)


def start(tmp_path: Path, subscriber: Subscriber) -> FreeRadius:
    assert FREERADIUS is not None, "no freeradius binary: run scripts/setup.sh"
    fr = make_freeradius(tmp_path / "raddb", (subscriber,))
    start_freeradius(fr)
    return fr


@pytest.fixture
def static_radius(tmp_path: Path) -> Iterator[FreeRadius]:
    fr = start(tmp_path, STATIC)
    try:
        yield fr
    finally:
        fr.stop()


@pytest.fixture
def derived_radius(tmp_path: Path) -> Iterator[FreeRadius]:
    # no Session-Timeout: the key lasts as long as the binding, so a renewal after the home
    # agent's restart is signed with it (a key that expired would be asked for anyway)
    fr = start(tmp_path, replace(DERIVED, session_timeout=None))
    try:
        yield fr
    finally:
        fr.stop()


def challenges(w: RadiusWorld) -> tuple[list[bytes], list[bytes]]:
    """Challenges the home agent gave in its replies, and those the node's requests carried."""
    given = [
        e.challenge
        for p in w.net.sent("ha", RegistrationReply)
        for e in p.message.extensions  # type: ignore[attr-defined]
        if isinstance(e, MobileForeignChallengeExtension)
    ]
    used = [
        e.challenge
        for p in w.net.sent("mn", RegistrationRequest)
        for e in p.message.extensions  # type: ignore[attr-defined]
        if isinstance(e, MobileForeignChallengeExtension)
    ]
    return given, used


def test_colocated_first_registration_with_a_static_key_from_freeradius(
    static_radius: FreeRadius,
) -> None:
    w = RadiusWorld(static_radius)
    client = w.mn.client
    client.keys = None
    client.configured_sa = w.mn_sa  # the node has the key the users file gives the HA
    w.move("C")
    w.run_serving(10)
    assert w.mn.registered and w.mn.home_address == GIVEN
    assert [b.care_of_address for b in w.bindings()] == [MN_COLOCATED]
    assert replies_to_mn(w) == [ReplyCode.HA_MN_FAILED_AUTH, ReplyCode.ACCEPTED]
    given, used = challenges(w)
    assert len(given) == 1 and used == given  # answered the home agent's challenge
    (ans,) = w.answers
    assert ans.result is AaaResult.ACCEPT  # FreeRADIUS's chap checked MN-AAA over it
    (sa,) = w.ha.security_associations.for_peer(NAI)
    assert sa.key == MN_HA_KEY and sa.spi == MN_SPI


def test_colocated_first_registration_with_a_key_freeradius_derives(
    derived_radius: FreeRadius,
) -> None:
    w = RadiusWorld(derived_radius)  # the node has no MN-HA key at all
    w.move("C")
    w.run_serving(10)
    assert w.mn.registered and w.mn.home_address == GIVEN
    assert replies_to_mn(w) == [ReplyCode.HA_MN_FAILED_AUTH, ReplyCode.ACCEPTED]
    (ans,) = w.answers
    authz = ans.authorization
    assert authz is not None and authz.key_nonce is not None
    assert authz.mn_ha_key == derive_key(SECRET, authz.key_nonce, NAI.encode())
    keys = w.mn.client.keys
    assert keys is not None and keys.key is not None
    assert keys.key.association.key == authz.mn_ha_key


def test_wrong_mn_aaa_secret_colocated_is_144_and_no_binding(
    static_radius: FreeRadius,
) -> None:
    w = RadiusWorld(static_radius)
    client = w.mn.client
    client.keys = None
    client.configured_sa = w.mn_sa
    w.mn.config = client.config = replace(w.mn.config, mn_aaa_secret=b"not-bobs-secret")
    w.move("C")
    w.run_serving(30)
    assert replies_to_mn(w) == [ReplyCode.HA_MN_FAILED_AUTH, ReplyCode.HA_MN_FAILED_AAA_AUTH]
    assert [a.result for a in w.answers] == [AaaResult.REJECT]
    assert not w.mn.registered and w.bindings() == [] and w.ha.assignments == {}


@pytest.mark.parametrize("where", ["A", "C"])
def test_home_agent_restart_the_node_asks_freeradius_for_a_new_key(
    derived_radius: FreeRadius, where: str
) -> None:
    w = RadiusWorld(derived_radius)
    w.move(where)
    w.run_serving(10)
    assert w.mn.registered
    first = w.answers[-1].authorization
    assert first is not None and first.mn_ha_key is not None
    w.net.reboot("ha")  # the key AAA gave the home agent is gone
    w.forget_configured_key()
    w.run_serving(2000)  # the renewal finds out
    assert w.mn.registered and len(w.bindings()) == 1
    assert ReplyCode.HA_MN_FAILED_AUTH in replies_to_mn(w)
    assert w.mn.counters.snapshot()["events"]["aaa_key_fallbacks"] == 1
    last = w.answers[-1].authorization
    assert last is not None and last.mn_ha_key is not None and last.key_nonce is not None
    assert last.mn_ha_key != first.mn_ha_key
    keys = w.mn.client.keys
    assert keys is not None and keys.key is not None
    assert keys.key.association.key == last.mn_ha_key
    (sa,) = w.ha.security_associations.for_peer(NAI)
    assert sa.key == last.mn_ha_key
