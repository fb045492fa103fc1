"""mip4's RADIUS client against a real, unmodified FreeRADIUS (issue 10, acceptance item 2:
the parts that need no engine). Each test starts its own server (see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Coroutine
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mip4.aaa.messages import (
    AaaAnswer,
    AaaRequest,
    AaaResult,
    AccountingAnswer,
    AccountingRecord,
    AcctStatus,
    TerminateCause,
)
from mip4.aaa.policy import Policy, RadiusServer
from mip4.io.radius import RadiusClient

from .conftest import (
    MN1,
    MN2,
    RADIUS_SECRET,
    FreeRadius,
    make_freeradius,
    needs_freeradius,
    start_freeradius,
)
from .requests import FA, mn_aaa_rrq

pytestmark = [needs_freeradius, pytest.mark.timeout(120)]

T = TypeVar("T")
CHALLENGE = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
FAST = Policy(timeout=0.5, retries=2)


def client(fr: FreeRadius, *servers: RadiusServer, policy: Policy = FAST) -> RadiusClient:
    return RadiusClient(list(servers) or [fr.server], policy)


def ask(c: RadiusClient, nai: str, secret: bytes, ident: int = 1) -> AaaAnswer:
    rrq = mn_aaa_rrq(nai, secret, CHALLENGE, identification=ident)
    req = AaaRequest.from_registration(ident, rrq, nas_address=FA)
    return run(c, c.authenticate(req))


def run(c: RadiusClient, coro: Coroutine[Any, Any, T]) -> T:
    """Run one client call in its own event loop, closing the client's sockets in it."""

    async def call() -> T:
        try:
            return await coro
        finally:
            await c.close()

    return asyncio.run(call())


def test_accept_returns_the_authorization(freeradius: FreeRadius) -> None:
    c = client(freeradius)
    ans = ask(c, MN1.nai, MN1.secret)
    assert ans.result is AaaResult.ACCEPT and ans.server == "fr" and ans.request_id == 1
    authz = ans.authorization
    assert authz is not None
    assert authz.home_address == MN1.home_address
    assert authz.home_agent == MN1.home_agent
    assert authz.mn_ha_spi == MN1.mn_ha_spi
    assert authz.mn_ha_key == MN1.mn_ha_key  # salt-decrypted, typed octets
    assert isinstance(authz.mn_ha_key, bytes)
    cnt = c.counters["fr"]
    assert (cnt.requests, cnt.accepts, cnt.rejects, cnt.timeouts) == (1, 1, 0, 0)
    assert cnt.rtt_last is not None and 0 <= cnt.rtt_last < FAST.timeout


@pytest.mark.parametrize("length", [1, 237, 238, 255])
def test_challenge_lengths_verify_with_stock_chap(freeradius: FreeRadius, length: int) -> None:
    # challenge[-237:] keeps CHAP-Challenge within 253 bytes; with 238+ bytes the first byte
    # is CHAP ident only, with fewer it also opens the hashed tail (RFC 4721 §7)
    challenge = bytes((i * 13 + 5) % 256 for i in range(length))
    c = client(freeradius)
    for secret, expected in ((MN1.secret, AaaResult.ACCEPT), (b"wrong", AaaResult.REJECT)):
        rrq = mn_aaa_rrq(MN1.nai, secret, challenge)
        req = AaaRequest.from_registration(1, rrq, nas_address=FA)
        assert run(c, c.authenticate(req)).result is expected


def test_wrong_mn_aaa_secret_is_rejected_with_no_attributes(freeradius: FreeRadius) -> None:
    c = client(freeradius)
    ans = ask(c, MN1.nai, b"not-the-secret")
    assert ans.result is AaaResult.REJECT and ans.authorization is None
    assert c.counters["fr"].rejects == 1
    # the Post-Auth-Type REJECT fix: the users-file reply items do not leak into the reject
    out = freeradius.debug_output()
    assert re.search(r"Sent Access-Reject Id \d+ .* length 20\b", out), out[-2000:]
    assert "chap: ERROR: Password comparison failed" in out


def test_unknown_nai_is_rejected(freeradius: FreeRadius) -> None:
    c = client(freeradius)
    ans = ask(c, "nobody@home.example", MN1.secret)
    assert ans.result is AaaResult.REJECT and ans.authorization is None
    # a subscriber with no reply items is accepted with an empty authorization
    ans2 = ask(c, MN2.nai, MN2.secret, ident=2)
    assert ans2.result is AaaResult.ACCEPT and ans2.authorization is not None
    assert ans2.authorization.home_address is None


def test_server_stopped_mid_run_times_out_then_recovers(freeradius: FreeRadius) -> None:
    c = client(freeradius)
    assert ask(c, MN1.nai, MN1.secret).result is AaaResult.ACCEPT
    freeradius.stop()
    t0 = time.monotonic()
    ans = ask(c, MN1.nai, MN1.secret, ident=2)
    elapsed = time.monotonic() - t0
    assert ans.result is AaaResult.TIMEOUT and ans.server is None and ans.request_id == 2
    # 1 + retries transmissions, each waited for: within the configured bounds
    bound = FAST.timeout * (FAST.retries + 1)
    assert bound * 0.9 <= elapsed < bound + 2.0
    cnt = c.counters["fr"]
    assert (cnt.requests, cnt.retransmissions, cnt.timeouts) == (2, FAST.retries, 3)
    freeradius.start()
    ans = ask(c, MN1.nai, MN1.secret, ident=3)
    assert ans.result is AaaResult.ACCEPT
    assert (cnt.requests, cnt.accepts) == (3, 2)


def test_second_server_takes_over_when_the_first_is_silent(
    freeradius: FreeRadius, silent_udp: tuple[int, int]
) -> None:
    silent = RadiusServer(
        "silent", IPv4Address("127.0.0.1"), silent_udp[0], b"whatever", acct_port=silent_udp[1]
    )
    c = RadiusClient([silent, freeradius.server], FAST)
    ans = ask(c, MN1.nai, MN1.secret)
    assert ans.result is AaaResult.ACCEPT and ans.server == "fr"
    assert ans.authorization is not None and ans.authorization.mn_ha_key == MN1.mn_ha_key
    s, f = c.counters["silent"], c.counters["fr"]
    assert (s.requests, s.retransmissions, s.timeouts, s.accepts) == (1, 2, 3, 0)
    assert (f.requests, f.retransmissions, f.timeouts, f.accepts) == (1, 0, 0, 1)
    # accounting fails over the same way
    rec = AccountingRecord(
        request_id=9,
        status=AcctStatus.START,
        session_id="mip4-failover",
        nai=MN1.nai,
        home_address=IPv4Address("10.1.0.5"),
        care_of_address=IPv4Address("198.51.100.7"),
        home_agent=IPv4Address("192.0.2.1"),
        nas_address=FA,
    )
    acct = run(c, c.perform(rec))
    assert isinstance(acct, AccountingAnswer) and acct.ok and acct.server == "fr"
    assert c.acct_counters["silent"].timeouts == 3


def _detail_records(text: str) -> list[dict[str, str]]:
    records = []
    for block in text.strip().split("\n\n"):
        rec = {}
        for line in block.splitlines()[1:]:
            name, _, value = line.strip().partition(" = ")
            rec[name] = value.strip('"')
        records.append(rec)
    return records


def test_accounting_start_interim_stop_in_detail(freeradius: FreeRadius) -> None:
    c = client(freeradius)
    base = AccountingRecord(
        request_id=1,
        status=AcctStatus.START,
        session_id="mip4-fa1-00000001",
        nai=MN1.nai,
        home_address=IPv4Address("10.1.0.5"),
        care_of_address=IPv4Address("198.51.100.7"),
        home_agent=IPv4Address("192.0.2.1"),
        nas_address=FA,
    )
    interim = replace(
        base,
        request_id=2,
        status=AcctStatus.INTERIM_UPDATE,
        input_octets=123456,
        output_octets=654321,
        input_packets=101,
        output_packets=202,
        session_time=30,
    )
    stop = replace(
        interim,
        request_id=3,
        status=AcctStatus.STOP,
        input_octets=5 * 2**32 + 999,
        output_octets=777777,
        input_packets=303,
        output_packets=404,
        session_time=61,
        terminate_cause=TerminateCause.USER_REQUEST,
    )

    async def account_all() -> list[bool]:
        return [(await c.account(r)).ok for r in (base, interim, stop)]

    assert run(c, account_all()) == [True, True, True]
    assert c.acct_counters["fr"].accepts == 3
    records = _detail_records(freeradius.detail())
    assert [r["Acct-Status-Type"] for r in records] == ["Start", "Interim-Update", "Stop"]
    for r in records:
        assert r["Acct-Session-Id"] == "mip4-fa1-00000001"
        assert r["User-Name"] == MN1.nai
        assert r["Framed-IP-Address"] == "10.1.0.5"
        assert r["3GPP2-Home-Agent-IP-Address"] == "192.0.2.1"
        assert r["NAS-IP-Address"] == str(FA)
    assert "Acct-Input-Octets" not in records[0]
    assert (records[1]["Acct-Input-Octets"], records[1]["Acct-Output-Octets"]) == (
        "123456",
        "654321",
    )
    assert (records[1]["Acct-Input-Packets"], records[1]["Acct-Output-Packets"]) == ("101", "202")
    assert records[2]["Acct-Input-Octets"] == "999" and records[2]["Acct-Input-Gigawords"] == "5"
    assert records[2]["Acct-Output-Octets"] == "777777"
    assert (records[2]["Acct-Input-Packets"], records[2]["Acct-Output-Packets"]) == ("303", "404")
    assert records[2]["Acct-Terminate-Cause"] == "User-Request"
    assert records[2]["Acct-Session-Time"] == "61"


def test_secrets_and_keys_never_logged(
    freeradius: FreeRadius, silent_udp: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    silent = RadiusServer("silent", IPv4Address("127.0.0.1"), silent_udp[0], b"silent-secret")
    c = RadiusClient([silent, freeradius.server], Policy(timeout=0.2, retries=0))
    answers = [ask(c, MN1.nai, MN1.secret), ask(c, MN1.nai, b"wrong", ident=2)]
    assert [a.result for a in answers] == [AaaResult.ACCEPT, AaaResult.REJECT]
    assert MN1.mn_ha_key is not None
    texts = [caplog.text, repr(c), repr(answers), repr(c.counters), str(c.counters)]
    for text in texts:
        for secret in (RADIUS_SECRET, "silent-secret", MN1.secret.decode(), MN1.mn_ha_key.hex()):
            assert secret not in text
        assert repr(MN1.mn_ha_key) not in text


@pytest.mark.oracle
def test_tshark_decodes_the_radius_exchange(freeradius: FreeRadius, tmp_path: Path) -> None:
    assert shutil.which("tshark"), "no tshark: run scripts/setup.sh (it installs it)"
    auth, acct = freeradius.config.auth_port, freeradius.config.acct_port
    pcap = tmp_path / "radius.pcapng"
    cap = subprocess.Popen(
        ["tshark", "-q", "-i", "lo", "-f", f"udp port {auth} or udp port {acct}", "-w", str(pcap)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert cap.stderr is not None
        for _ in range(100):  # wait until it captures
            line = cap.stderr.readline().decode()
            if "Capturing on" in line or not line:
                break
        time.sleep(0.5)
        c = client(freeradius)
        rrq = mn_aaa_rrq(MN1.nai, MN1.secret, CHALLENGE)
        req = AaaRequest.from_registration(1, rrq, nas_address=FA)
        assert run(c, c.authenticate(req)).result is AaaResult.ACCEPT
        bad = AaaRequest.from_registration(2, mn_aaa_rrq(MN1.nai, b"x", CHALLENGE), nas_address=FA)
        assert run(c, c.authenticate(bad)).result is AaaResult.REJECT
        time.sleep(1.0)
    finally:
        cap.terminate()
        cap.wait(timeout=20)
    decode = ["-d", f"udp.port=={auth},radius", "-d", f"udp.port=={acct},radius"]
    fields = subprocess.run(
        ["tshark", "-r", str(pcap), *decode, "-T", "fields", "-E", "separator=|",
         "-e", "radius.code", "-e", "radius.User_Name",
         "-e", "radius.CHAP_Password", "-e", "radius.CHAP_Challenge", "-e", "_ws.malformed"],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()  # fmt: skip
    rows = [line.split("|") for line in fields]
    assert [r[0] for r in rows] == ["1", "2", "1", "3"], rows  # request/accept/request/reject
    assert all(r[4] == "" for r in rows), rows  # no malformed packet
    malformed = subprocess.run(
        ["tshark", "-r", str(pcap), *decode, "-Y", "_ws.malformed || _ws.expert.severity >= 6"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert malformed.strip() == ""
    _, user, password, challenge, _ = rows[0]
    assert user == MN1.nai
    # what the MN-AAA extension implies: challenge[0] || authenticator, MD5(...) || challenge
    assert bytes.fromhex(password.replace(":", "")) == req.chap_password
    assert bytes.fromhex(challenge.replace(":", "")) == req.chap_challenge
    assert req.chap_password[:1] == CHALLENGE[:1]
    assert req.chap_password[1:] == rrq.extensions[-1].authenticator  # type: ignore[attr-defined]
    assert req.chap_challenge[16:] == CHALLENGE


@needs_freeradius
def test_a_port_taken_before_freeradius_binds_it_is_picked_again(tmp_path: Path) -> None:
    """The tests' FreeRADIUS gets free ports that another socket may take before it binds
    them (a CI run once lost its accounting port so): ``start_freeradius`` starts it again
    on new ones, and it answers there."""
    fr = make_freeradius(tmp_path / "raddb")
    taken = fr.config.acct_port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", taken))
        try:
            start_freeradius(fr)
            assert fr.config.acct_port != taken
            assert fr.starts == 2
            c = RadiusClient([fr.server], FAST)
            assert ask(c, MN1.nai, MN1.secret).result is AaaResult.ACCEPT
        finally:
            fr.stop()
