"""RADIUS Disconnect-Request (RFC 5176) to the home agent -> revocation (RFC 3543) -> the
visitor gone at the foreign agent -> Accounting-Stop in FreeRADIUS's ``detail`` file (issue
11, acceptance 2). The request is sent by FreeRADIUS's own ``radclient``; the listener is
mip4's :class:`~mip4.io.radius.DisconnectServer` on loopback."""

from __future__ import annotations

import asyncio
import shutil
import tomllib
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.aaa.messages import AccountingRecord, AcctStatus, DisconnectRequest
from mip4.core.actions import Action, Log
from mip4.core.home_agent import HomeAgent
from mip4.core.mn_config import RevocationReaction
from mip4.daemon.aaa import disconnect_handler
from mip4.daemon.config import ConfigError, parse_config
from mip4.io.radius import DisconnectServer, RadiusClient, listen_disconnect
from tests.core.netsim import MN_HOME, World
from tests.core.test_revocation import world

from .conftest import LOOPBACK, RADIUS_SECRET, FreeRadius, free_udp_ports, needs_freeradius
from .test_freeradius import FAST

pytestmark = [pytest.mark.timeout(120)]
RADCLIENT = shutil.which("radclient")
NAI = "alice@example.net"


async def radclient(port: int, attrs: str, secret: str = RADIUS_SECRET) -> str:
    """``radclient`` sends one Disconnect-Request (one try, 1 s) and prints what came back."""
    assert RADCLIENT is not None, "no radclient: scripts/setup.sh installs freeradius-utils"
    proc = await asyncio.create_subprocess_exec(
        RADCLIENT, "-D", "/usr/share/freeradius", "-x", "-r", "1", "-t", "1",
        f"127.0.0.1:{port}", "disconnect", secret,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(attrs.encode()), 20)
    return out.decode(errors="replace")


def listen(
    fr_server: object, handler: Callable[[DisconnectRequest], bool]
) -> tuple[DisconnectServer, int]:
    (port,) = free_udp_ports(1)
    return DisconnectServer([fr_server], handler), port  # type: ignore[list-item]


def test_listener_acks_naks_and_drops_with_radclient() -> None:
    from mip4.aaa.policy import RadiusServer

    server = RadiusServer("fr", LOOPBACK, 1812, RADIUS_SECRET.encode())
    seen: list[DisconnectRequest] = []

    def handler(req: DisconnectRequest) -> bool:
        seen.append(req)
        return req.nai == NAI or req.home_address == MN_HOME

    dae, port = listen(server, handler)

    async def scenario() -> list[str]:
        await listen_disconnect(dae, LOOPBACK, port)
        try:
            return [
                await radclient(port, f'User-Name = "{NAI}"\n'),
                await radclient(port, f"Framed-IP-Address = {MN_HOME}\n"),
                await radclient(port, 'User-Name = "nobody@example.net"\n'),
                await radclient(port, 'NAS-Identifier = "x"\n'),
                await radclient(port, f'User-Name = "{NAI}"\n', secret="wrong-secret"),
            ]
        finally:
            dae.close()

    ack, ack_addr, nak, missing, wrong = asyncio.run(scenario())
    assert "Disconnect-ACK" in ack and "Disconnect-ACK" in ack_addr
    assert "Disconnect-NAK" in nak and "Session-Context-Not-Found" in nak
    assert "Disconnect-NAK" in missing and "Missing-Attribute" in missing
    assert "Disconnect-" not in wrong.replace("Disconnect-Request", "")  # dropped: no answer
    assert [r.node for r in seen] == [NAI, MN_HOME, "nobody@example.net"]
    assert dae.stats["ack"] == 2 and dae.stats["nak"] == 2 and dae.stats["bad_authenticator"] == 1
    assert RADIUS_SECRET not in repr(dae)


class NetDriver:
    """What :func:`disconnect_handler` needs of the daemon's driver, over the netsim world:
    the home agent's actions go out on the virtual network."""

    def __init__(self, w: World) -> None:
        self.w = w

    def clock(self) -> float:
        return self.w.now

    def run_actions(self, actions: list[Action]) -> None:
        self.w.net.emit("ha", actions)

    def start(self) -> None:
        pass


def serve_accounting(w: World, fr: FreeRadius, done: list[int]) -> None:
    """Carry out the foreign agent's accounting records against FreeRADIUS."""
    recs = w.net.actions_of("fa1", AccountingRecord)
    for rec in recs[len(done) :]:
        done.append(rec.request_id)
        c = RadiusClient([fr.server], FAST)

        async def call(c: RadiusClient = c, rec: AccountingRecord = rec) -> None:
            try:
                ans = await c.account(rec)
            finally:
                await c.close()
            w.net.inject("fa1", ans)

        asyncio.run(call())


@needs_freeradius
def test_disconnect_request_revokes_and_ends_accounting(freeradius: FreeRadius) -> None:
    # the node is told (I bit) and stops, so nothing registers again behind the test's back
    w = world(mn={"nai": NAI, "on_revocation": RevocationReaction.STOP})
    done: list[int] = []
    serve_accounting(w, freeradius, done)
    assert len(w.fa1.visitors) == 1
    ha = w.ha
    assert isinstance(ha, HomeAgent)
    handler = disconnect_handler(ha, NetDriver(w))  # type: ignore[arg-type]
    dae, port = listen(freeradius.server, handler)

    async def scenario() -> tuple[str, str]:
        await listen_disconnect(dae, LOOPBACK, port)
        try:
            first = await radclient(port, f'User-Name = "{NAI}"\n')
            again = await radclient(port, f'User-Name = "{NAI}"\n')  # nothing left
            return first, again
        finally:
            dae.close()

    first, again = asyncio.run(scenario())
    assert "Disconnect-ACK" in first and "Disconnect-NAK" in again
    w.run_until(w.now + 2)
    serve_accounting(w, freeradius, done)
    assert w.bindings() == [] and len(w.fa1.visitors) == 0
    assert any(log.fields.get("reason") == "radius_disconnect" for log in
               w.net.actions_of("ha", Log) if log.event == "ha.revocation_sent")  # fmt: skip
    stops = [r for r in w.net.actions_of("fa1", AccountingRecord) if r.status is AcctStatus.STOP]
    assert len(stops) == 1
    detail = freeradius.detail()
    assert "Acct-Status-Type = Start" in detail and "Acct-Status-Type = Stop" in detail
    assert "Acct-Terminate-Cause = Admin-Reset" in detail
    assert f'User-Name = "{NAI}"' in detail


def test_disconnect_port_is_for_a_home_agent_with_servers(tmp_path: Path) -> None:
    ha = """
[home_agent]
address = "10.1.0.2"
home_network = "10.1.0.0/24"
interface = "ha0"
[aaa]
disconnect_port = 3799
disconnect_address = "127.0.0.1"
"""
    with pytest.raises(ConfigError, match=r"^ha\.toml: aaa\.disconnect_port: needs the RADIUS"):
        parse_config("ha", tomllib.loads(ha), "ha.toml", tmp_path)
    servers = '[[aaa.servers]]\naddress = "127.0.0.1"\nsecret = "s"\n'
    cfg = parse_config("ha", tomllib.loads(ha + servers), "ha.toml", tmp_path)
    assert cfg.aaa is not None and cfg.aaa.disconnect == (IPv4Address("127.0.0.1"), 3799)
    bad = ha.replace("3799", "70000") + servers
    with pytest.raises(ConfigError, match=r"^ha\.toml: aaa.*disconnect_port: 70000"):
        parse_config("ha", tomllib.loads(bad), "ha.toml", tmp_path)


def test_daemon_home_agent_takes_disconnect_requests(tmp_path: Path) -> None:
    """The daemon's wiring (:func:`mip4.daemon.aaa.open_disconnect`): a home agent built from
    its file, driven by the real driver, a binding registered, radclient's Disconnect-Request
    for its home address -> ACK, the binding removed; an FA or a file without
    ``disconnect_port`` gets no listener."""
    import time

    from mip4.core.actions import RemoveBinding, SendUdp
    from mip4.core.events import UdpReceived
    from mip4.daemon.aaa import open_disconnect
    from mip4.daemon.run import build_engine
    from mip4.io.driver import EngineDriver
    from mip4.security.auth import sign
    from mip4.security.replay import ntp_timestamp
    from mip4.security.sa import SecurityAssociation
    from mip4.wire.extensions import MobileHomeAuthExtension
    from mip4.wire.messages import NO_FLAGS, RegistrationReply, RegistrationRequest

    (port,) = free_udp_ports(1)
    key = bytes(range(16))
    text = f"""
[home_agent]
address = "10.1.0.2"
home_network = "10.1.0.0/24"
interface = "ha0"
[aaa]
disconnect_port = {port}
disconnect_address = "127.0.0.1"
[[aaa.servers]]
address = "127.0.0.1"
secret = "{RADIUS_SECRET}"
[[security_associations]]
peer = "10.1.0.5"
spi = 300
key = "{key.hex()}"
"""
    cfg = parse_config("ha", tomllib.loads(text), "ha.toml", tmp_path)
    engine = build_engine(cfg)
    assert isinstance(engine, HomeAgent)
    hoa, coa = IPv4Address("10.1.0.5"), IPv4Address("192.0.2.50")

    class Recorder:
        def __init__(self) -> None:
            self.actions: list[Action] = []

        def execute(self, action: Action) -> None:
            self.actions.append(action)

    rec = Recorder()

    async def scenario() -> tuple[str, bool]:
        driver = EngineDriver(engine, rec, loop=asyncio.get_running_loop())
        none = await open_disconnect(None, engine, driver)
        dae = await open_disconnect(cfg.aaa, engine, driver, cfg.source)
        assert none is None and dae is not None
        try:
            ident = ntp_timestamp(time.time(), 7)
            rrq = RegistrationRequest(NO_FLAGS, 600, hoa, IPv4Address("10.1.0.2"), coa, ident)
            rrq = sign(rrq, MobileHomeAuthExtension, SecurityAssociation(300, key))
            driver.feed(
                UdpReceived(rrq.raw or b"", coa, IPv4Address("10.1.0.2"), 434, 434, "up0", ttl=64)
            )
            replies = [a for a in rec.actions if isinstance(a, SendUdp)]
            assert RegistrationReply.decode(replies[0].payload).code == 0
            registered = engine.home_address_of(hoa) == hoa
            out = await radclient(port, f"Framed-IP-Address = {hoa}\n")
            return out, registered
        finally:
            if dae is not None:
                dae.close()
            driver.close()

    out, registered = asyncio.run(scenario())
    assert registered and "Disconnect-ACK" in out
    assert engine.home_address_of(hoa) is None
    assert any(isinstance(a, RemoveBinding) and a.home_address == hoa for a in rec.actions)
