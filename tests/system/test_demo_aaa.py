"""``mip4 lab demo --aaa`` (issue 10, acceptance 3): the roaming demo with a FreeRADIUS in
the lab deciding. The mobile node is configured with its NAI, its MN-AAA secret and its
MN-HA key only; it gets its home address from AAA, is challenged at FA1 and FA2 (each asks
FreeRADIUS), registers co-located on C and comes home, and its two TCP connections survive
every move with every byte verified. A capture of the run, decoded by ``tshark``: every
RADIUS and Mobile IP packet decodes without a malformed packet, and each Access-Request's
CHAP-Password / CHAP-Challenge is what the MN-AAA extension of a captured Registration
Request implies (RFC 4721 §7), computed here from tshark's fields, not mip4's decoder."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from mip4.io.netns import list_netns, netns_pids
from mip4.lab.build import Lab
from mip4.lab.configs import RADIUS_NODE
from mip4.lab.demo import run_demo
from mip4.lab.radius import LAB_NAI, LAB_RADIUS_SECRET, FreeRadius, lab_freeradius_config
from mip4.lab.scenario import Settings

from .helpers import lab_id
from .test_demo import check_run

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.oracle]

HOME_ADDRESS = "10.1.0.100"
AGENTS = {"10.2.0.2": "fa1", "10.3.0.2": "fa2", "10.1.0.2": "ha"}


def tshark(pcap: Path, display_filter: str, fields: list[str]) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields"]
    for f in fields:
        argv += ["-e", f]
    argv += ["-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def octets(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def log_events(path: Path) -> list[dict[str, object]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


@dataclass(frozen=True)
class MnAaaRequest:
    """A captured Registration Request whose last extension is MN-AAA (type 36)."""

    src: str
    dst: str
    payload: bytes
    authenticator: bytes
    nai: str


def test_demo_with_aaa_nai_only_node_and_tshark_checks_the_chap_mapping(
    lab_prefix: str, tmp_path: Path
) -> None:
    settings = Settings(lab_id(lab_prefix), aaa=True)
    pcap = tmp_path / "demo.pcapng"
    lines: list[str] = []
    run = run_demo(settings, tmp_path / "out", log=lines.append, dwell=2.5, capture=pcap)
    check_run(run, "ipip", True)
    assert lines[-1].endswith(f"lab {settings.lab_id} torn down")
    # the report's AAA section: every agent asked and was answered, accounting recorded
    agents = run.aaa["agents"]
    for node in ("fa1", "fa2", "ha"):
        assert agents[node]["access_requests"] >= 1, agents
        assert agents[node]["accepts"] >= 1 and agents[node]["rejects"] == 0, agents
    assert run.aaa["records"].get("Start", 0) >= 2, run.aaa
    assert json.loads((tmp_path / "out" / "report.json").read_text())["aaa"] == run.aaa
    daemons = tmp_path / "out" / "daemons"

    # -- the configurations: the node has no home address, the home agent no key for it --
    mn = tomllib.loads((daemons / "mn.toml").read_text())["mobile_node"]
    assert "home_address" not in mn and mn["nai"] == LAB_NAI and mn["mn_aaa_secret"]
    ha = tomllib.loads((daemons / "ha.toml").read_text())
    assert "security_associations" not in ha and ha["home_agent"]["aaa"] is True

    # -- what the daemons did --
    mn_log = log_events(daemons / "mn.1.log")
    assigned = [e for e in mn_log if e.get("event") == "mn.home_address_assigned"]
    assert assigned and assigned[0]["home_address"] == HOME_ADDRESS
    ha_log = log_events(daemons / "ha.1.log")
    assert [e for e in ha_log if e.get("event") == "ha.aaa_request"]
    for fa in ("fa1", "fa2"):
        asked = [
            e for e in log_events(daemons / f"{fa}.1.log") if e.get("event") == "fa.aaa_request"
        ]
        assert asked and all(e["nai"] == LAB_NAI for e in asked), fa
    detail = (daemons / "radius" / "radacct" / "detail").read_text()
    assert detail.count("Acct-Status-Type = Start") >= 2  # a session at FA1, one at FA2
    assert f"Framed-IP-Address = {HOME_ADDRESS}" in detail
    for secret in ("mip4-lab-radius", "mn-aaa-lab-secret"):  # never in a log line
        for log in daemons.glob("*.log"):
            assert secret not in log.read_text(errors="replace"), log

    # -- the capture: every RADIUS and Mobile IP packet decodes, nothing malformed --
    every = tshark(pcap, "radius || mip", ["frame.number"])
    assert len(every) > 20
    bad = tshark(
        pcap, "(radius || mip) && (_ws.malformed || _ws.expert.severity >= error)", ["frame.number"]
    )
    assert bad == [], bad

    # the challenges the agents advertised (ICMP router discovery, RFC 4721 §2)
    challenges = {octets(c) for (c,) in tshark(pcap, "icmp.mip.challenge", ["icmp.mip.challenge"])}
    assert len(challenges) > 3
    # the registration requests that end with MN-AAA (tshark's fields)
    requests: list[MnAaaRequest] = []
    for src, dst, payload, types, auths, nai in tshark(
        pcap,
        "mip.type == 1 && mip.ext.auth.subtype == 1",
        ["ip.src", "ip.dst", "udp.payload", "mip.ext.type", "mip.auth.auth", "mip.nai"],
    ):
        assert types.split(",")[-1] == "36", types  # MN-AAA last (nothing FA-only after it)
        requests.append(MnAaaRequest(src, dst, octets(payload), octets(auths.split(",")[-1]), nai))
    assert {r.dst for r in requests} >= {"10.2.0.2", "10.3.0.2", "10.1.0.2"}
    assert any(r.src == "0.0.0.0" for r in requests)  # RFC 2794: no address yet at FA1
    # every Access-Request: User-Name = the NAI, and the CHAP attributes the MN-AAA
    # extension of a captured request implies
    access = tshark(
        pcap,
        "radius.code == 1",
        ["ip.src", "radius.User_Name", "radius.CHAP_Password", "radius.CHAP_Challenge"],
    )
    askers = set()
    for src, user, password, challenge in access:
        askers.add(AGENTS[src])
        assert user == LAB_NAI
        pw, ch = octets(password), octets(challenge)
        assert len(pw) == 17
        # RFC 4721 §7: CHAP-Password = challenge[0] || authenticator, CHAP-Challenge =
        # MD5(the request up to and including the MN-AAA SPI) || challenge[-237:]
        matches = [
            r
            for r in requests
            if r.authenticator == pw[1:] and hashlib.md5(r.payload[:-16]).digest() == ch[:16]
        ]
        assert matches, (src, password)
        issued = [c for c in challenges if c[-237:] == ch[16:] and c[:1] == pw[:1]]
        assert issued, "CHAP-Challenge does not end with an advertised challenge"
        assert all(r.nai == LAB_NAI for r in matches)
    assert askers == {"fa1", "fa2", "ha"}, askers
    # answers: accepts for every exchange, and accounting Start records from both agents
    codes = [c for (c,) in tshark(pcap, "radius", ["radius.code"])]
    assert codes.count("2") >= 3 and "3" not in codes  # Access-Accept, no Access-Reject
    starts = tshark(pcap, "radius.Acct_Status_Type == 1", ["ip.src"])
    assert {s for (s,) in starts} >= {"10.2.0.2", "10.3.0.2"}


MIP4 = [sys.executable, "-m", "mip4.cli"]


def test_lab_up_aaa_runs_freeradius_until_down(lab_prefix: str, tmp_path: Path) -> None:
    lid = lab_id(lab_prefix)
    up = subprocess.run(
        [*MIP4, "lab", "up", "--id", lid, "--aaa"], capture_output=True, text=True, timeout=120
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "FreeRADIUS is up" in up.stdout, up.stdout
        lab = Lab.load(lid)
        radius = FreeRadius(
            lab_freeradius_config(lab), LAB_RADIUS_SECRET, lab.ns(RADIUS_NODE)
        )  # the running server, as the agents see it
        assert radius.probe(1.0)
        pids = netns_pids(lab.ns(RADIUS_NODE))
        assert pids  # FreeRADIUS outlived `mip4 lab up`
        cfgs = subprocess.run(
            [*MIP4, "lab", "configs", "--id", lid, "--aaa", "--out", str(tmp_path / "cfg")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert cfgs.returncode == 0, cfgs.stderr
        assert f"lab up --id {lid} --aaa" in cfgs.stdout
        assert (tmp_path / "cfg" / "radius.secret").read_text().strip() == LAB_RADIUS_SECRET
        for role, node in (("ha", "ha"), ("fa", "fa1"), ("mn", "mn")):
            check = subprocess.run(
                [*MIP4, role, "--config", str(tmp_path / "cfg" / f"{node}.toml"), "--check"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert check.returncode == 0, check.stderr
    finally:
        down = subprocess.run(
            [*MIP4, "lab", "down", "--id", lid], capture_output=True, text=True, timeout=120
        )
    assert down.returncode == 0, down.stderr
    assert not any(n.startswith(f"{lab_prefix}-") for n in list_netns())
