"""Flood steering in a running home agent (issue 13): ``mip4 ha`` in the lab's ``ha``
namespace; a node with a co-located care-of address (the correspondent's namespace, its
source 198.51.100.10) registers and so becomes trusted; then it renews while a forger in
``fa1``'s namespace (10.2.0.2) sends a bounded burst of forged renewals for the same home
address and SPI with a wrong key. Every renewal is accepted, every forged request is
answered 131 or dropped, and the trusted socket dropped nothing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from mip4.io.netns import entered
from mip4.lab import Lab
from mip4.lab.configs import LAB_KEY, LAB_SPI, write_lab_configs
from mip4.security.auth import sign
from mip4.security.replay import ntp_timestamp
from mip4.security.sa import Algorithm, SecurityAssociation
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import RegistrationFlags, RegistrationRequest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

RENEWALS = 40
FORGED_PER_RENEWAL = 75  # 3,000 forged requests in all
REPLY_WAIT = 3.0


class HomeAgent:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab, self.tmp = lab, tmp
        paths = write_lab_configs(lab, tmp, socket_dir=tmp)
        self.config = paths["ha"]
        text = self.config.read_text().replace("[io]\n", "[io]\nflood_steering = true\n", 1)
        self.config.write_text(text)
        self.log = tmp / "ha.log"
        with self.log.open("wb") as log:
            self.proc = lab.popen(
                "ha",
                [sys.executable, "-m", "mip4.cli", "ha", "--config", str(self.config)],
                stderr=log,
            )

    def status(self, *, text: bool = False) -> Any:
        argv = [sys.executable, "-m", "mip4.cli", "status", "--socket", str(self.tmp / "ha.sock")]
        r = subprocess.run(
            argv if text else [*argv, "--json"], capture_output=True, text=True, timeout=20
        )
        if r.returncode != 0:
            return None
        return r.stdout if text else json.loads(r.stdout)

    def wait_answering(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            if self.status() is not None:
                return
            time.sleep(0.2)
        raise AssertionError(f"no control socket\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


@pytest.fixture
def ha(prefix: str, tmp_path: Path) -> Iterator[HomeAgent]:
    with Lab(prefix[2:]) as lab:
        agent = HomeAgent(lab, tmp_path)
        try:
            agent.wait_answering()
            yield agent
        finally:
            if agent.proc.poll() is None:
                agent.proc.kill()
                agent.proc.wait(timeout=10)


def udp_socket(lab: Lab, node: str) -> socket.socket:
    with entered(lab.ns(node)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 1 << 22)  # SO_RCVBUFFORCE: every 131 kept
    s.bind((str(lab.address(node)), 0))
    return s


def request(lab: Lab, coa: IPv4Address, key: bytes, ident: int) -> bytes:
    req = RegistrationRequest(
        flags=RegistrationFlags.D,
        lifetime=300,
        home_address=lab.address("mn"),
        home_agent=lab.address("ha"),
        care_of_address=coa,
        identification=ident,
    )
    sa = SecurityAssociation(spi=LAB_SPI, key=key, algorithm=Algorithm.HMAC_MD5)
    return bytes(sign(req, MobileHomeAuthExtension, sa).raw)


def codes(sock: socket.socket) -> list[int]:
    out = []
    sock.setblocking(False)
    for _ in range(100_000):
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            break
        if len(data) > 1 and data[0] == 3:
            out.append(data[1])
    sock.setblocking(True)
    return out


def test_renewals_are_served_through_a_forged_burst(ha: HomeAgent) -> None:
    lab = ha.lab
    status = ha.status()
    assert status["steering"]["on"] is True, ha.log.read_text()
    assert status["steering"]["trusted_sources"] == 0
    home_agent = (str(lab.address("ha")), 434)
    node, forger = udp_socket(lab, "cn"), udp_socket(lab, "fa1")
    coa = lab.address("cn")
    node.settimeout(REPLY_WAIT)
    ident = ntp_timestamp(time.time())

    def register() -> int:
        nonlocal ident
        ident += 1 << 20  # later than the last one, as a node's clock says
        node.sendto(request(lab, coa, LAB_KEY, ident), home_agent)
        while True:
            data = node.recv(2048)  # socket.timeout after REPLY_WAIT: the test fails
            if data[0] == 3:
                return data[1]

    with node, forger:
        assert register() == 0  # the first registration: on the general socket
        st = ha.status()["steering"]
        assert st["trusted_sources"] == 1 and st["read_general"] == 1

        wrong = bytes(reversed(LAB_KEY))
        accepted = 0
        for i in range(RENEWALS):
            for j in range(FORGED_PER_RENEWAL):
                forged = request(lab, coa, wrong, ident + (i * FORGED_PER_RENEWAL + j) + 1)
                forger.sendto(forged, home_agent)
            accepted += register() == 0
        assert accepted == RENEWALS

        # the forgeries: answered 131 (RFC 5944 §3.8) or dropped at the general socket
        deadline = time.monotonic() + 10
        st = ha.status()["steering"]
        while time.monotonic() < deadline:
            st = ha.status()["steering"]
            if st["read_general"] + st["general_drops"] >= 1 + RENEWALS * FORGED_PER_RENEWAL:
                break
            time.sleep(0.2)
        forged_codes = codes(forger)
        assert forged_codes and set(forged_codes) == {131}
        assert st["read_general"] + st["general_drops"] == 1 + RENEWALS * FORGED_PER_RENEWAL
        # the node's renewals all came through the trusted socket, which lost nothing
        assert st["read_trusted"] == RENEWALS
        assert st["trusted_drops"] == 0
        assert "flood steering: on, 1 trusted sources" in ha.status(text=True)
    ha.stop()
    assert ha.proc.returncode == 0, ha.log.read_text()
