"""A packet capture of the whole scenario, decoded by tshark (an independent decoder): every
Mobile IP control message on the lab's links — registrations (UDP 434) and agent
advertisements/solicitations (ICMP 9/10) — decodes without a malformed packet or an expert
error, and the registrations seen are the moves made, in order, each answered."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mip4.lab.capture import Capture
from mip4.lab.demo import ROUTE
from mip4.lab.scenario import Scenario, Settings

from .helpers import lab_id

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.oracle]

CONTROL = "udp.port == 434 || icmp.type == 9 || icmp.type == 10"
FIELDS = (
    "frame.number", "frame.time_epoch", "ip.src", "ip.dst", "icmp.type", "mip.type",
    "mip.code", "mip.coa", "mip.homeaddr", "mip.life", "mip.ident", "_ws.malformed",
    "_ws.expert.severity",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    frame: int
    time: float
    src: str
    dst: str
    icmp_type: str
    mip_type: str
    code: str
    coa: str
    home: str
    lifetime: str
    ident: str
    malformed: str
    severity: str


def tshark_rows(pcap: Path, display_filter: str) -> list[Row]:
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields"]
    for f in FIELDS:
        argv += ["-e", f]
    argv += ["-E", "separator=\t", "-E", "occurrence=f"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = []
    for line in out.splitlines():
        cells = line.split("\t")
        cells += [""] * (len(FIELDS) - len(cells))
        rows.append(Row(int(cells[0]), float(cells[1]), *cells[2:]))
    return rows


def test_capture_decodes_cleanly_and_matches_the_moves(lab_prefix: str, tmp_path: Path) -> None:
    pcap = tmp_path / "lab.pcapng"
    sc = Scenario(Settings(lab_id(lab_prefix)))
    with sc, Capture(sc.lab, pcap, duration=90):
        time.sleep(1.5)  # some advertisements at home first
        moves = []
        for net in ROUTE:
            moves.append(sc.move(net))
            time.sleep(1.5)
    assert all(m.registered for m in moves), moves
    # every daemon stopped cleanly on SIGTERM
    assert sc.exit_codes == {"mn": 0, "fa2": 0, "fa1": 0, "ha": 0}
    assert pcap.stat().st_size > 0

    rows = tshark_rows(pcap, CONTROL)
    # nothing malformed, no expert error (8388608: PI_ERROR), anywhere in the capture
    bad = tshark_rows(pcap, "_ws.malformed || _ws.expert.severity >= 8388608")
    assert bad == [], bad
    assert all(not r.malformed for r in rows)

    # router discovery: agent advertisements (with the mobility extension) and the mobile
    # node's solicitations
    adverts = [r for r in rows if r.icmp_type == "9"]
    assert {r.src for r in adverts} >= {"10.1.0.2", "10.2.0.2", "10.3.0.2"}
    assert any(r.icmp_type == "10" and r.src in ("10.1.0.100", "0.0.0.0") for r in rows)

    # registrations: every UDP 434 datagram decodes as a request (1) or a reply (3)
    reg = [r for r in rows if r.icmp_type == "" and r.mip_type]
    assert reg and all(r.mip_type in ("1", "3") for r in reg), reg
    requests = [r for r in reg if r.mip_type == "1"]
    replies = [r for r in reg if r.mip_type == "3"]
    assert all(r.home == "10.1.0.100" for r in reg)
    # every reply accepts (code 0) and answers a request seen (same identification)
    assert replies and all(r.code == "0" for r in replies), replies
    assert {r.ident for r in replies} <= {r.ident for r in requests}

    # the care-of addresses requested, in order, are the moves' (deregistration at home:
    # care-of address = home address, lifetime 0), each in its move's time window
    expected = [m.care_of_address or "10.1.0.100" for m in moves]
    seen: list[str] = []
    for r in requests:
        if not seen or seen[-1] != r.coa:
            seen.append(r.coa)
    assert seen == expected, (seen, expected)
    starts = [m.started_at for m in moves] + [float("inf")]
    for i, coa in enumerate(expected):
        mine = [r for r in requests if r.coa == coa]
        assert all(starts[i] - 0.5 <= r.time < starts[i + 1] for r in mine), (coa, mine)
        answered = {r.ident for r in replies}
        assert any(r.ident in answered for r in mine), coa
    dereg = [r for r in requests if r.coa == "10.1.0.100"]
    assert dereg and all(r.lifetime == "0" for r in dereg)
    # through a foreign agent the request appears twice: MN → FA, then relayed FA → HA
    for fa in ("10.2.0.2", "10.3.0.2"):
        legs = {(r.src, r.dst) for r in requests if r.coa == fa}
        assert ("10.1.0.100", fa) in legs and (fa, "10.1.0.2") in legs, legs
    legs_c = {(r.src, r.dst) for r in requests if r.coa == "10.4.0.100"}
    assert legs_c == {("10.4.0.100", "10.1.0.2")}, legs_c
