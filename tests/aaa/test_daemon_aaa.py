"""The daemons' AAA wiring (issue 10 item 1): the ``[aaa]`` table, the MN loader's NAI-only
node and MN-AAA secret, and the daemon executor carrying out an engine's ``AaaRequest`` /
``AccountingRecord`` actions through :mod:`mip4.io.radius` and feeding the answers back --
against a real FreeRADIUS started by the test."""

from __future__ import annotations

import asyncio
import logging
import time
import tomllib
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mip4.aaa.messages import AccountingRecord, AcctStatus, TerminateCause
from mip4.aaa.policy import RadiusServer
from mip4.core.actions import Action, SendIcmp, SendUdp
from mip4.core.events import UdpReceived
from mip4.core.foreign_agent import ForeignAgent
from mip4.daemon.config import ConfigError, DaemonConfig, parse_config
from mip4.daemon.driving import DaemonExecutor
from mip4.daemon.run import Daemon, build_engine, main, open_aaa
from mip4.daemon.status import render_text
from mip4.io.driver import EngineDriver
from mip4.io.radius import AaaShell, RadiusClient
from mip4.security.auth import CHAP_SPI, append_extensions, sign, sign_mn_aaa
from mip4.security.sa import SecurityAssociation
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import (
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
)
from mip4.wire.icmp import AgentAdvertisement, decode_icmp
from mip4.wire.messages import NO_FLAGS, RegistrationReply, RegistrationRequest

from .conftest import MN1, RADIUS_SECRET, FreeRadius, needs_freeradius

A = IPv4Address
FA_ADDR = A("127.0.0.1")  # the NAS address FreeRADIUS's client entry allows
HA = A("192.0.2.1")
MN_MAC = b"\x02\x00\x00\x00\x00\x42"
MN_HA_SA = SecurityAssociation(spi=4096, key=bytes(16))

FA_BASE = """
[foreign_agent]
challenge_length = 16
aaa = true
[[foreign_agent.links]]
interface = "vis0"
address = "127.0.0.1"
prefix_len = 8
"""


def fa_config(tmp_path: Path, extra: str, *, role: str = "fa", base: str = FA_BASE) -> DaemonConfig:
    return parse_config(role, tomllib.loads(base + extra), f"{role}.toml", tmp_path)


def servers(
    port: int = 1812, secret: str = 'secret_file = "radius.secret"', *, table: str = ""
) -> str:
    return f"""
[aaa]
timeout = 0.5
retries = 1
nas_identifier = "fa-test"
{table}
[[aaa.servers]]
name = "r1"
address = "127.0.0.1"
port = {port}
{secret}
"""


# ----------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------


def test_aaa_table_reads_the_secret_file_and_keeps_it_out_of_reprs(tmp_path: Path) -> None:
    (tmp_path / "radius.secret").write_text("file-secret-xyz\n")
    cfg = fa_config(tmp_path, servers(1999, table="accounting = true\ninterim_interval = 30"))
    assert cfg.aaa is not None
    (server,) = cfg.aaa.servers
    assert (server.name, server.address, server.port, server.accounting_port) == (
        "r1",
        FA_ADDR,
        1999,
        2000,
    )
    assert server.secret == b"file-secret-xyz"
    assert cfg.aaa.policy.timeout == 0.5 and cfg.aaa.policy.retries == 1
    assert cfg.aaa.nas_identifier == "fa-test"
    fa = cfg.file.foreign_agent  # type: ignore[union-attr]
    assert fa.aaa and fa.accounting and fa.accounting_interval == 30
    assert "file-secret-xyz" not in repr(cfg) and "file-secret-xyz" not in repr(cfg.aaa)


@pytest.mark.parametrize(
    ("base", "extra", "message"),
    [
        (FA_BASE, "", r"^fa\.toml: foreign_agent\.aaa: needs a RADIUS server in \[\[aaa\.servers"),
        (
            FA_BASE.replace("aaa = true\n", ""),
            "[aaa]\naccounting = true\n",
            r"^fa\.toml: accounting: needs a RADIUS server",
        ),
        (
            FA_BASE,
            servers(secret='secret = "a"\nsecret_file = "b"'),
            r"^fa\.toml: aaa\.servers\[0\]: secret, secret_file: give exactly one",
        ),
        (
            FA_BASE,
            servers(secret='secret_file = "missing.secret"'),
            r"^fa\.toml: aaa\.servers\[0\]\.secret_file: cannot read .*missing\.secret",
        ),
        (FA_BASE, servers(port=0), r"^fa\.toml: aaa\.servers\[0\]: port: 0 not in 1\.\.65535"),
        (FA_BASE, "[aaa]\ntimeout = 0\n", r"^fa\.toml: aaa: timeout: 0\.0 must be > 0"),
        (FA_BASE, "[aaa]\nretries = 'x'\n", r"^fa\.toml: aaa\.retries: expected an integer"),
        (FA_BASE, "[aaa]\nsecrets = 1\n", r"^fa\.toml: unknown key aaa\.secrets"),
        (
            FA_BASE.replace("aaa = true", "aaa = true\naccounting_interval = 10"),
            servers(table="interim_interval = 20"),
            r"^fa\.toml: aaa\.interim_interval, foreign_agent\.accounting_interval",
        ),
    ],
)
def test_aaa_errors_name_file_and_key(tmp_path: Path, base: str, extra: str, message: str) -> None:
    (tmp_path / "radius.secret").write_text("s\n")
    with pytest.raises(ConfigError, match=message):
        fa_config(tmp_path, extra, base=base)


HA_BASE = """
[home_agent]
address = "10.1.0.2"
home_network = "10.1.0.0/24"
aaa = true
"""


def test_home_agent_aaa_needs_a_server_and_takes_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ha\.toml: home_agent\.aaa: needs a RADIUS server"):
        fa_config(tmp_path, "", role="ha", base=HA_BASE)
    cfg = fa_config(tmp_path, servers(secret='secret = "inline"'), role="ha", base=HA_BASE)
    assert cfg.aaa is not None and cfg.aaa.servers[0].secret == b"inline"
    with pytest.raises(ConfigError, match=r"^ha\.toml: aaa\.accounting: the foreign agent"):
        fa_config(
            tmp_path,
            servers(secret='secret = "x"', table="accounting = true"),
            role="ha",
            base=HA_BASE,
        )


MN_BASE = """
[mobile_node]
home_agent = "10.1.0.2"
nai = "mn1@home.example"
[io]
interfaces = ["mn0"]
[[security_associations]]
peer = "10.1.0.2"
spi = 4096
key = "00112233445566778899aabbccddeeff"
"""


def test_mobile_node_with_nai_only_and_its_mn_aaa_secret(tmp_path: Path) -> None:
    cfg = parse_config("mn", tomllib.loads(MN_BASE.replace(
        'nai = "mn1@home.example"', 'nai = "mn1@home.example"\nmn_aaa_secret = "mn1-aaa-secret"'
    )), "mn.toml", tmp_path)  # fmt: skip
    mn = cfg.file.mobile_node  # type: ignore[union-attr]
    assert mn.home_address == A(0) and mn.assigned_address  # RFC 2794: to be assigned
    assert mn.mn_aaa_secret == b"mn1-aaa-secret"
    assert "mn1-aaa-secret" not in repr(cfg)
    (tmp_path / "mn.aaa").write_text("from-a-file\n")
    cfg = parse_config(
        "mn", tomllib.loads(MN_BASE + '[aaa]\nmn_aaa_secret_file = "mn.aaa"\n'), "mn.toml", tmp_path
    )
    assert cfg.file.mobile_node.mn_aaa_secret == b"from-a-file"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"^mn\.toml: mobile_node\.mn_aaa_secret: expected a"):
        parse_config("mn", tomllib.loads(MN_BASE + "[x]\n").copy() | {
            "mobile_node": {"home_agent": "10.1.0.2", "nai": "a@b", "mn_aaa_secret": 5}
        }, "mn.toml", tmp_path)  # fmt: skip
    with pytest.raises(ConfigError, match=r"^mn\.toml: aaa\.servers: a mobile node asks no"):
        parse_config("mn", tomllib.loads(MN_BASE + servers(secret='secret = "x"')), "mn.toml")


def test_check_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fa.toml"
    path.write_text(FA_BASE)
    assert main("fa", str(path), check_only=True) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "foreign_agent.aaa: needs a RADIUS server" in err[0]
    assert str(path) in err[0]


# ----------------------------------------------------------------------------------------
# the shell: traffic counts of accounting records
# ----------------------------------------------------------------------------------------


def test_accounting_counts_are_the_data_planes_since_the_start() -> None:
    counts: dict[IPv4Address, tuple[int, int, int, int]] = {A("10.0.0.5"): (100, 200, 1, 2)}
    shell = AaaShell(
        RadiusClient([RadiusServer("x", FA_ADDR, 1812, b"x")]),
        lambda ev: None,
        traffic=lambda hoa: counts.get(hoa),
    )
    start = AccountingRecord(1, AcctStatus.START, "s1", "n", A("10.0.0.5"), FA_ADDR, HA)
    assert shell.with_traffic(start) == start
    counts[A("10.0.0.5")] = (1100, 5200, 11, 32)
    interim = shell.with_traffic(
        AccountingRecord(2, AcctStatus.INTERIM_UPDATE, "s1", "n", A("10.0.0.5"), FA_ADDR, HA)
    )
    assert (interim.input_octets, interim.output_octets) == (1000, 5000)
    assert (interim.input_packets, interim.output_packets) == (10, 30)
    stop = shell.with_traffic(
        AccountingRecord(
            3, AcctStatus.STOP, "s1", "n", A("10.0.0.5"), FA_ADDR, HA,
            terminate_cause=TerminateCause.USER_REQUEST,
        )
    )  # fmt: skip
    assert (stop.input_octets, stop.output_packets) == (1000, 30)
    assert shell._baselines == {}  # the session is over


# ----------------------------------------------------------------------------------------
# the wiring against a real FreeRADIUS
# ----------------------------------------------------------------------------------------


class Recorder:
    """The Linux executor's stand-in: records what is not AAA."""

    def __init__(self) -> None:
        self.actions: list[Action] = []

    def execute(self, action: Action) -> None:
        self.actions.append(action)


async def challenge_of(rec: Recorder, used: set[bytes]) -> bytes:
    """The newest challenge the agent advertised (its driver's timer sends them every
    second), waiting for one not ``used`` yet (RFC 4721: each is good for one request)."""

    def newest() -> bytes | None:
        for a in reversed(rec.actions):
            if isinstance(a, SendIcmp):
                adv = decode_icmp(a.payload)
                assert isinstance(adv, AgentAdvertisement) and adv.challenge is not None
                return adv.challenge
        return None

    await until(lambda: newest() not in (None, *used), 5.0)
    ch = newest()
    assert ch is not None
    used.add(ch)
    return ch


def mn_request(challenge: bytes, secret: bytes, *, lifetime: int = 600) -> bytes:
    exts = (MobileNodeNAIExtension(MN1.nai.encode()),)
    req = RegistrationRequest(NO_FLAGS, lifetime, A(0), HA, FA_ADDR, 1, exts)
    req = sign(req, MobileHomeAuthExtension, MN_HA_SA)
    req = append_extensions(req, MobileForeignChallengeExtension(challenge))
    req = sign_mn_aaa(req, CHAP_SPI, secret)
    return req.raw or req.encode()


def ha_reply(lifetime: int) -> bytes:
    assert MN1.home_address is not None
    rep = RegistrationReply(0, lifetime, MN1.home_address, HA, 1,
                            (MobileNodeNAIExtension(MN1.nai.encode()),))  # fmt: skip
    return sign(rep, MobileHomeAuthExtension, MN_HA_SA).raw or b""


async def until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def sent_to(rec: Recorder, dst: IPv4Address) -> list[SendUdp]:
    return [a for a in rec.actions if isinstance(a, SendUdp) and a.dst == dst]


@needs_freeradius
@pytest.mark.timeout(120)
def test_fa_daemon_executor_asks_freeradius_and_feeds_the_answer_back(
    freeradius: FreeRadius, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "radius.secret").write_text(RADIUS_SECRET + "\n")
    cfg = fa_config(
        tmp_path,
        servers(freeradius.config.auth_port, table="accounting = true")
        + f"acct_port = {freeradius.config.acct_port}\n",
    )
    engine = build_engine(cfg)
    assert isinstance(engine, ForeignAgent)
    rec = Recorder()
    used: set[bytes] = set()
    traffic = {"n": (0, 0, 0, 0)}

    async def scenario() -> dict[str, Any]:
        dexec = DaemonExecutor(rec)
        driver = EngineDriver(engine, dexec, loop=asyncio.get_running_loop())
        dexec.aaa = shell = open_aaa(cfg, driver)
        assert shell is not None
        shell.traffic = lambda hoa: traffic["n"]
        driver.start()
        try:
            # a good secret: Access-Accept, the request is relayed to the home agent
            ch = await challenge_of(rec, used)
            driver.feed(UdpReceived(mn_request(ch, MN1.secret, lifetime=3), A(0), FA_ADDR,
                                    434, 434, "vis0", MN_MAC, ttl=255))  # fmt: skip
            await until(lambda: bool(sent_to(rec, HA)))
            # the home agent accepts: the visitor's accounting session starts
            driver.feed(UdpReceived(ha_reply(3), HA, FA_ADDR, 434, 434, "up0", ttl=64))
            await until(lambda: bool(engine.sessions))
            traffic["n"] = (1500, 3000, 10, 20)
            # the visitor expires after 3 s: Stop with the data plane's counts
            await until(lambda: not engine.sessions and shell.outstanding == 0, 15)
            # a wrong secret: Access-Reject -> 108 to the mobile node, nothing relayed
            relayed = len(sent_to(rec, HA))
            ch = await challenge_of(rec, used)
            driver.feed(UdpReceived(mn_request(ch, b"wrong"), A(0), FA_ADDR, 434, 434,
                                    "vis0", MN_MAC, ttl=255))  # fmt: skip
            await until(lambda: engine.aaa_waiting == 0 and shell.outstanding == 0)
            assert len(sent_to(rec, HA)) == relayed
            assert len(engine.visitors) == 0 and engine.pending_for(MN1.nai) is None
            to_mn = [a for a in rec.actions if isinstance(a, SendUdp) and a.interface == "vis0"]
            codes = [RegistrationReply.decode(a.payload).code for a in to_mn]
            fake = SimpleNamespace(
                forwarder=None, executor=SimpleNamespace(stats={}, counters=dict), tun=None,
                dataplane="userspace", fast_path=None,
            )  # fmt: skip
            daemon = Daemon(cfg, engine, fake, "t", driver=driver, executor=dexec)  # type: ignore[arg-type]
            return {"codes": codes, "status": daemon.status()}
        finally:
            driver.close()
            await shell.close(flush=2.0)

    out = asyncio.run(scenario())
    assert out["codes"] == [ReplyCode.ACCEPTED, ReplyCode.FA_MN_FAILED_AAA_AUTH]
    aaa = out["status"]["aaa"]
    assert aaa["servers"][0]["name"] == "r1"
    text = render_text(out["status"])  # mip4 status without --json
    (row,) = [line for line in text.splitlines() if line.startswith("  r1 ")]
    assert row.split()[1:6] == [f"127.0.0.1:{freeradius.config.auth_port}", "2", "1", "1", "0"]
    assert "AAA servers (1):" in text
    assert aaa["auth"]["r1"]["accepts"] == 1 and aaa["auth"]["r1"]["rejects"] == 1
    assert aaa["acct"]["r1"]["accepts"] == 2 and aaa["auth"]["r1"]["rtt_last"] is not None
    counters = engine.counters.snapshot()["events"]
    assert counters["aaa_accept"] == 1 and counters["aaa_reject"] == 1
    assert counters["accounting_ok"] == 2
    detail = freeradius.detail()
    assert "Acct-Status-Type = Start" in detail and "Acct-Status-Type = Stop" in detail
    assert "Acct-Input-Octets = 1500" in detail and "Acct-Output-Packets = 20" in detail
    assert 'NAS-Identifier = "fa-test"' in detail
    for text in (caplog.text, repr(out["status"]), str(out["status"])):
        assert RADIUS_SECRET not in text and MN1.secret.decode() not in text


@needs_freeradius
@pytest.mark.timeout(120)
def test_fa_with_a_silent_server_and_freeradius_stopped_then_back(
    freeradius: FreeRadius, silent_udp: tuple[int, int], tmp_path: Path
) -> None:
    """Two servers, the first never answers: the second takes over; with FreeRADIUS stopped
    too, the agent denies with 66 and relays nothing; once it is back, accepted again."""
    (tmp_path / "radius.secret").write_text(RADIUS_SECRET + "\n")
    text = f"""
[aaa]
timeout = 0.3
retries = 1
[[aaa.servers]]
name = "silent"
address = "127.0.0.1"
port = {silent_udp[0]}
secret = "whatever"
[[aaa.servers]]
name = "fr"
address = "127.0.0.1"
port = {freeradius.config.auth_port}
secret_file = "radius.secret"
"""
    cfg = fa_config(tmp_path, text)
    engine = build_engine(cfg)
    assert isinstance(engine, ForeignAgent)
    rec = Recorder()
    used: set[bytes] = set()

    async def ask(driver: EngineDriver, shell: AaaShell, secret: bytes) -> int:
        """One request from the mobile node; the code of the reply to it (0: relayed and
        answered by the home agent)."""
        before = len(rec.actions)
        ch = await challenge_of(rec, used)
        driver.feed(UdpReceived(mn_request(ch, secret), A(0), FA_ADDR, 434, 434, "vis0",
                                MN_MAC, ttl=255))  # fmt: skip
        await until(lambda: engine.aaa_waiting == 0 and shell.outstanding == 0)
        new = rec.actions[before:]
        if any(isinstance(a, SendUdp) and a.dst == HA for a in new):
            return 0
        (deny,) = [a for a in new if isinstance(a, SendUdp) and a.interface == "vis0"]
        return RegistrationReply.decode(deny.payload).code

    async def scenario() -> tuple[list[int], dict[str, Any]]:
        dexec = DaemonExecutor(rec)
        driver = EngineDriver(engine, dexec, loop=asyncio.get_running_loop())
        dexec.aaa = shell = open_aaa(cfg, driver)
        assert shell is not None
        driver.start()
        try:
            codes = [await ask(driver, shell, MN1.secret)]  # the second server answers
            await asyncio.to_thread(freeradius.stop)
            codes.append(await ask(driver, shell, MN1.secret))  # nobody answers
            await asyncio.to_thread(freeradius.start)
            codes.append(await ask(driver, shell, MN1.secret))  # back
            return codes, shell.snapshot()
        finally:
            driver.close()
            await shell.close()

    codes, snap = asyncio.run(scenario())
    assert codes == [0, ReplyCode.FA_INSUFFICIENT_RESOURCES, 0]
    auth: Any = snap["auth"]
    # each request: 2 transmissions to "silent", then to "fr" (2 more while it is stopped)
    assert auth["silent"]["requests"] == 3 and auth["silent"]["timeouts"] == 6
    assert auth["fr"]["requests"] == 3 and auth["fr"]["accepts"] == 2
    assert auth["fr"]["timeouts"] == 2 and auth["fr"]["retransmissions"] == 1
    assert engine.counters.snapshot()["events"]["aaa_timeout"] == 1
