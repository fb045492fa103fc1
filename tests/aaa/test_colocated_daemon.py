"""A co-located node's first registration through AAA at the home agent daemon (issue 10):
the home agent built from its TOML by the daemon, its ``AaaRequest`` carried out by the
daemon executor through :mod:`mip4.io.radius` against a real FreeRADIUS, the answer fed
back -- the I/O path of :mod:`mip4.core.ha_aaa`'s challenge for co-located nodes."""

from __future__ import annotations

import asyncio
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.core.events import UdpReceived
from mip4.core.home_agent import HomeAgent
from mip4.daemon.driving import DaemonExecutor
from mip4.daemon.run import build_engine, open_aaa
from mip4.io.driver import EngineDriver
from mip4.security.auth import CHAP_SPI, append_extensions, sign, sign_mn_aaa
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import SecurityAssociation
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import (
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.messages import RegistrationFlags, RegistrationReply, RegistrationRequest

from .conftest import MN1, RADIUS_SECRET, FreeRadius, needs_freeradius
from .test_daemon_aaa import HA_BASE, Recorder, fa_config, sent_to, servers, until

pytestmark = [needs_freeradius, pytest.mark.timeout(120)]

A = IPv4Address
HA = A("10.1.0.2")
COA = A("198.51.100.7")
assert MN1.mn_ha_key is not None and MN1.mn_ha_spi is not None
MN_SA = SecurityAssociation(spi=MN1.mn_ha_spi, key=MN1.mn_ha_key)


def colocated_request(challenge: bytes | None, n: int) -> bytes:
    req = RegistrationRequest(
        RegistrationFlags.D,
        600,
        A(0),
        HA,
        COA,
        ntp_timestamp(time.time(), n),
        (MobileNodeNAIExtension(MN1.nai.encode()),),
    )
    req = sign(req, MobileHomeAuthExtension, MN_SA)
    if challenge is not None:
        req = append_extensions(req, MobileForeignChallengeExtension(challenge))
        req = sign_mn_aaa(req, CHAP_SPI, MN1.secret)
    return req.raw


def test_home_agent_daemon_challenges_a_colocated_node_and_asks_freeradius(
    freeradius: FreeRadius, tmp_path: Path
) -> None:
    (tmp_path / "radius.secret").write_text(RADIUS_SECRET + "\n")
    cfg = fa_config(tmp_path, servers(freeradius.config.auth_port), role="ha", base=HA_BASE)
    engine = build_engine(cfg)
    assert isinstance(engine, HomeAgent)
    rec = Recorder()

    def replies() -> list[RegistrationReply]:
        return [RegistrationReply.decode(a.payload) for a in sent_to(rec, COA)]

    async def scenario() -> None:
        dexec = DaemonExecutor(rec)
        driver = EngineDriver(engine, dexec, loop=asyncio.get_running_loop())
        dexec.aaa = shell = open_aaa(cfg, driver)
        assert shell is not None
        driver.start()
        try:
            # no challenge yet: 131 with one
            driver.feed(UdpReceived(colocated_request(None, 1), COA, HA, 434, 434, "ha0", ttl=64))
            await until(lambda: len(replies()) == 1)
            (first,) = replies()
            assert first.code == ReplyCode.HA_MN_FAILED_AUTH
            (given,) = [
                e.challenge
                for e in first.extensions
                if isinstance(e, MobileForeignChallengeExtension)
            ]
            # answered with MN-AAA: FreeRADIUS's chap checks it, the Accept gives the key
            driver.feed(UdpReceived(colocated_request(given, 2), COA, HA, 434, 434, "ha0", ttl=64))
            await until(lambda: len(replies()) == 2, 10.0)
        finally:
            driver.close()
            await shell.close(flush=1.0)

    asyncio.run(scenario())
    second = replies()[1]
    assert second.code == ReplyCode.ACCEPTED and second.home_address == MN1.home_address
    (b,) = list(engine.bindings)
    assert b.care_of_address == COA and b.home_address == MN1.home_address
    events = engine.counters.snapshot()["events"]
    assert events["aaa_accept"] == 1 and events["aaa_challenges_answered"] == 1
