"""RFC 3957 key distribution against a real FreeRADIUS (issue 11, acceptance 2: "the node has
no MN-HA key in its configuration and registers"). The engines run on the virtual clock of
tests/core/netsim.py; every AAA request the foreign agent and the home agent emit is carried
out by mip4's RADIUS client against the FreeRADIUS the test starts, which checks MN-AAA with
its ``chap`` module and derives the MN-HA key itself (``unlang``)."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.aaa.freeradius import Subscriber
from mip4.aaa.messages import AaaAnswer, AaaRequest
from mip4.core.actions import Log
from mip4.core.mn_keys import AaaKeys
from mip4.core.mobile_node import MobileNode
from mip4.daemon.config import parse_config
from mip4.daemon.run import build_engine
from mip4.io.radius import RadiusClient
from mip4.security.aaa_keys import derive_key
from mip4.wire.ext_keys import MNHAKeyGenNonceReply
from mip4.wire.messages import RegistrationReply, RegistrationRequest
from tests.core.netsim import HA_ADDR

from .conftest import (
    FREERADIUS,
    LOOPBACK,
    FreeRadius,
    make_freeradius,
    needs_freeradius,
    start_freeradius,
)
from .test_freeradius import FAST
from .test_ha_aaa import GIVEN, NAI, SECRET, HaAaaWorld
from .test_keys_engine import KEY_SPI

pytestmark = [needs_freeradius, pytest.mark.timeout(180)]

#: the netsim world's node as a FreeRADIUS subscriber: no static key, the server derives it
SUBSCRIBER = Subscriber(
    nai=NAI,
    secret=SECRET,
    home_address=GIVEN,
    home_agent=IPv4Address("10.0.0.1"),
    mn_ha_spi=KEY_SPI,
    derive_mn_ha_key=True,
    session_timeout=900,
)


@pytest.fixture
def keys_radius(tmp_path: Path) -> Iterator[FreeRadius]:
    assert FREERADIUS is not None, "no freeradius binary: run scripts/setup.sh"
    fr = make_freeradius(tmp_path / "raddb", (SUBSCRIBER,))
    try:
        start_freeradius(fr)
        yield fr
    finally:
        fr.stop()


class RadiusWorld(HaAaaWorld):
    """The AAA requests of every agent go to the real FreeRADIUS."""

    def __init__(self, fr: FreeRadius, mn_home_agent: IPv4Address = HA_ADDR) -> None:
        super().__init__(mn_home_agent=mn_home_agent)
        self.fr = fr
        client = self.mn.client
        client.configured_sa = None  # as build_engine makes it from a file without one
        client.keys = AaaKeys(NAI, SECRET)
        self.answers: list[AaaAnswer] = []

    def serve_aaa(self) -> None:
        for node in self.served:
            reqs = self.net.actions_of(node, AaaRequest)
            for req in reqs[self.served[node] :]:
                self.served[node] += 1
                self.asked[node].append(req)
                # NAS-IP-Address must be one FreeRADIUS's client entry allows: the agents'
                # requests leave from loopback here
                c = RadiusClient([self.fr.server], FAST)

                async def call(c: RadiusClient = c, req: AaaRequest = req) -> AaaAnswer:
                    try:
                        return await c.authenticate(req)
                    finally:
                        await c.close()

                ans = asyncio.run(call())
                if node == "ha":
                    self.answers.append(ans)
                self.net.inject(node, ans)


def test_node_without_mn_ha_key_in_its_configuration_registers(
    keys_radius: FreeRadius, tmp_path: Path
) -> None:
    # the configuration: NAI and MN-AAA secret, no [[security_associations]]
    text = f"""
[mobile_node]
home_agent = "10.0.0.1"
home_address = "0.0.0.0"
nai = "{NAI}"
mn_aaa_secret = "{SECRET.decode()}"
[io]
interfaces = ["mn0"]
"""
    cfg = parse_config("mn", tomllib.loads(text), "mn.toml", tmp_path)
    assert cfg.associations == ()
    engine = build_engine(cfg)
    assert isinstance(engine, MobileNode)
    assert engine.client.configured_sa is None and engine.client.keys is not None

    w = RadiusWorld(keys_radius)
    w.move("A")
    w.run_serving(8)
    assert w.mn.registered and w.mn.home_address == GIVEN
    (ans,) = w.answers
    authz = ans.authorization
    assert authz is not None and authz.key_nonce is not None and authz.mn_ha_key is not None
    # FreeRADIUS derived it; the node derived the same from the reply's nonce
    assert authz.mn_ha_key == derive_key(SECRET, authz.key_nonce, NAI.encode())
    keys = w.mn.client.keys
    assert keys is not None and keys.key is not None
    assert keys.key.association.key == authz.mn_ha_key and keys.key.spi == KEY_SPI
    reply = next(p.message for p in w.net.sent("ha", RegistrationReply))
    assert isinstance(reply, RegistrationReply)
    (ext,) = [e for e in reply.extensions if isinstance(e, MNHAKeyGenNonceReply)]
    assert ext.lifetime == 900  # Session-Timeout
    # the key never shows in a log line
    for node in ("mn", "ha", "fa1"):
        for log in w.net.actions_of(node, Log):
            assert authz.mn_ha_key.hex() not in repr(log) and SECRET.decode() not in repr(log)
    # after its Session-Timeout the node asks again and gets a fresh key
    w.run_serving(3000)
    assert len(w.answers) >= 2 and w.mn.registered
    last = w.answers[-1].authorization
    assert last is not None and last.key_nonce != authz.key_nonce
    assert keys.key is not None and keys.key.association.key == last.mn_ha_key


def test_home_agent_chosen_by_aaa_and_key_from_aaa(keys_radius: FreeRadius) -> None:
    """RFC 4433 with AAA: the node's Home Agent field is 0.0.0.0 and it has no MN-HA key;
    the foreign agent's Access-Accept names the home agent (3GPP2-Home-Agent-IP-Address),
    the request goes there, that agent's own Accept names it too, it accepts and names
    itself; the node adopts it and keeps registering with it."""
    w = RadiusWorld(keys_radius, mn_home_agent=IPv4Address(0))
    w.move("A")
    w.run_serving(8)
    assert w.mn.registered and w.mn.home_address == GIVEN
    assert w.mn.client.home_agent == HA_ADDR
    first = next(p.message for p in w.net.sent("fa1", RegistrationRequest))
    assert isinstance(first, RegistrationRequest) and first.home_agent == IPv4Address(0)
    reply = next(p.message for p in w.net.sent("ha", RegistrationReply))
    assert isinstance(reply, RegistrationReply) and reply.code == 0
    assert reply.home_agent == HA_ADDR
    assert w.ha.counters.snapshot()["events"]["aaa_keys_issued"] == 1
    # re-registrations name the adopted home agent and are signed with the derived key
    w.run_serving(2000)
    later = [p.message for p in w.net.sent("fa1", RegistrationRequest)][1:]
    assert later and all(
        isinstance(r, RegistrationRequest) and r.home_agent == HA_ADDR for r in later
    )
    assert w.mn.registered and len(w.bindings()) == 1


def mn_fa_dictionary(tmp_path: Path) -> object:
    """mip4's client dictionary, which carries the MN-FA key attributes as
    MN_FA_KEY_ATTRIBUTES (what FreeRADIUS's generated dictionary gets) defines them."""
    from importlib import resources

    from mip4.aaa.attributes import MN_FA_KEY_ATTRIBUTES
    from mip4.io.radius import load_dictionary

    shipped = (resources.files("mip4") / "data" / "radius-dictionary").read_text()
    for line in MN_FA_KEY_ATTRIBUTES.splitlines():
        if line.startswith("ATTRIBUTE"):
            assert line in shipped, f"mip4/data/radius-dictionary lacks: {line}"
    return load_dictionary()


def test_freeradius_derives_an_mn_fa_key_for_a_foreign_agent_only(tmp_path: Path) -> None:
    """RFC 3957 MN-FA keys (issue 11): a subscriber with an MN-FA SPI gets, in the Accept to
    a foreign agent's request, a fresh nonce and HMAC-SHA1(AAA key, nonce || NAI) --
    computed by FreeRADIUS's unlang policy -- which mip4's client decrypts; a home agent's
    request gets none."""
    from dataclasses import replace as dc_replace

    from mip4.aaa.messages import AaaResult
    from mip4.core.ha_aaa import request_nai

    from .requests import mn_aaa_rrq

    assert FREERADIUS is not None, "no freeradius binary: run scripts/setup.sh"
    subscriber = dc_replace(SUBSCRIBER, mn_fa_spi=6000)
    fr = make_freeradius(tmp_path / "raddb", (subscriber,))
    try:
        start_freeradius(fr)
        rrq = mn_aaa_rrq(NAI, SECRET, b"c" * 16)
        assert request_nai(rrq) == NAI

        async def ask(foreign_agent: bool) -> AaaAnswer:
            c = RadiusClient([fr.server], FAST, dictionary=mn_fa_dictionary(tmp_path))
            try:
                req = AaaRequest.from_registration(
                    1, rrq, nas_address=LOOPBACK, foreign_agent=foreign_agent
                )
                return await c.authenticate(req)
            finally:
                await c.close()

        ans = asyncio.run(ask(True))
        assert ans.result is AaaResult.ACCEPT
        authz = ans.authorization
        assert authz is not None and authz.mn_fa_spi == 6000
        assert authz.mn_fa_key_nonce is not None and len(authz.mn_fa_key_nonce) == 16
        assert authz.mn_fa_key == derive_key(SECRET, authz.mn_fa_key_nonce, NAI.encode())
        # its own nonce, not the MN-HA key's
        assert authz.key_nonce is not None and authz.key_nonce != authz.mn_fa_key_nonce
        ha = asyncio.run(ask(False)).authorization
        assert ha is not None and ha.mn_fa_spi is None and ha.mn_fa_key is None
        assert ha.mn_ha_key is not None  # the home agent's MN-HA key as before
    finally:
        fr.stop()


def test_mn_fa_key_from_freeradius_end_to_end(tmp_path: Path) -> None:
    """RFC 3957 MN-FA keys through the engines and a real FreeRADIUS: the node (NAI and
    MN-AAA secret only) asks for both keys; FreeRADIUS derives the MN-FA key for the foreign
    agent's request and the MN-HA key for the home agent's; the agent and the node end up
    with the same MN-FA key, and the node's renewals carry MN-FA with it."""
    from dataclasses import replace as dc_replace

    from mip4.wire.extensions import MobileForeignAuthExtension

    assert FREERADIUS is not None, "no freeradius binary: run scripts/setup.sh"
    fr = make_freeradius(
        tmp_path / "raddb", (dc_replace(SUBSCRIBER, mn_fa_spi=6000, session_timeout=None),)
    )
    dictionary = mn_fa_dictionary(tmp_path)
    fa_answers: list[AaaAnswer] = []
    try:
        start_freeradius(fr)
        w = RadiusWorld(fr)

        def serve_aaa() -> None:
            for node in w.served:
                reqs = w.net.actions_of(node, AaaRequest)
                for req in reqs[w.served[node] :]:
                    w.served[node] += 1
                    c = RadiusClient([fr.server], FAST, dictionary=dictionary)

                    async def call(c: RadiusClient = c, req: AaaRequest = req) -> AaaAnswer:
                        try:
                            return await c.authenticate(req)
                        finally:
                            await c.close()

                    ans = asyncio.run(call())
                    (w.answers if node == "ha" else fa_answers).append(ans)
                    w.net.inject(node, ans)

        w.serve_aaa = serve_aaa  # type: ignore[method-assign]
        w.move("A")
        w.run_serving(8)
        assert w.mn.registered and w.mn.home_address == GIVEN
        first = fa_answers[0].authorization
        assert first is not None and first.mn_fa_key is not None and first.mn_fa_spi == 6000
        fa_key = w.mn.client.fa_key
        assert fa_key is not None and fa_key[1].key == first.mn_fa_key
        (sa,) = w.fa1.security_associations.for_peer(NAI)
        assert sa.key == first.mn_fa_key and sa.spi == 6000
        w.run_serving(2000)
        later = [p.message for p in w.net.sent("mn", RegistrationRequest)][1:]
        assert later and all(
            isinstance(r, RegistrationRequest)
            and [e.spi for e in r.extensions if isinstance(e, MobileForeignAuthExtension)] == [6000]
            for r in later
        )
        assert w.mn.registered
    finally:
        fr.stop()
