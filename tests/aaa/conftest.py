"""A real FreeRADIUS (Debian's ``freeradius`` package) started per test with a generated
minimal configuration in a tmp directory, on 127.0.0.1 with free ports; always stopped."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pytest
from pyrad import packet as rpacket

from mip4.aaa.freeradius import (
    LOCAL_DICTIONARY,
    FreeRadiusConfig,
    RadiusClientEntry,
    Subscriber,
    config_files,
)
from mip4.aaa.policy import RadiusServer
from mip4.io.radius import load_dictionary

FREERADIUS = shutil.which("freeradius") or shutil.which("radiusd")
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
RADIUS_SECRET = "s3cret-radius-testing"
#: subscribers every test server knows
MN1 = Subscriber(
    nai="mn1@home.example",
    secret=b"mn1-aaa-secret",
    home_address=ipaddress.IPv4Address("10.1.0.5"),
    home_agent=ipaddress.IPv4Address("192.0.2.1"),
    mn_ha_spi=4096,
    mn_ha_key=bytes.fromhex("00112233445566778899aabbccddeeff01020304"),
)
MN2 = Subscriber(nai="mn2@home.example", secret=b"mn2-other-secret")

#: FreeRADIUS runs as root here; without root these tests are skipped like the lab tests.
#: A missing ``freeradius`` binary is a failure, not a skip: scripts/setup.sh installs it,
#: and a skip would hide a setup that did not.
needs_freeradius = pytest.mark.skipif(os.geteuid() != 0, reason="FreeRADIUS runs as root")


def free_udp_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class FreeRadius:
    """One FreeRADIUS process (restartable) over one generated configuration."""

    config: FreeRadiusConfig
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _outputs: list[Path] = field(default_factory=list)

    @property
    def server(self) -> RadiusServer:
        return RadiusServer(
            "fr",
            self.config.address,
            self.config.auth_port,
            RADIUS_SECRET.encode(),
            acct_port=self.config.acct_port,
        )

    def write(self) -> None:
        d = Path(self.config.directory)
        for sub in FreeRadiusConfig.SUBDIRS:
            (d / sub).mkdir(parents=True, exist_ok=True)
        for name, text in config_files(self.config).items():
            (d / name).write_text(text)
        dict_src = resources.files("mip4") / "data" / "freeradius-dictionary.mip4"
        (d / LOCAL_DICTIONARY).write_text(dict_src.read_text())

    def start(self, timeout: float = 20.0) -> None:
        assert FREERADIUS is not None and self.proc is None
        self.starts += 1
        out = Path(self.config.directory) / f"debug-{self.starts}.txt"
        self._outputs.append(out)
        with out.open("wb") as fh:
            self.proc = subprocess.Popen(
                [FREERADIUS, "-X", "-d", self.config.directory],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"freeradius exited: {out.read_text()[-3000:]}")
            if self.probe():
                return
        self.stop()
        raise RuntimeError(f"freeradius did not answer in {timeout}s: {out.read_text()[-3000:]}")

    def probe(self, wait: float = 0.3) -> bool:
        """Status-Server (RFC 5997) to the auth port: any verified answer means ready."""
        pkt = rpacket.AuthPacket(
            code=rpacket.StatusServer,
            secret=RADIUS_SECRET.encode(),
            dict=load_dictionary(),
            message_authenticator=True,
        )
        raw = pkt.RequestPacket()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(wait)
            s.sendto(raw, (str(self.config.address), self.config.auth_port))
            try:
                data = s.recv(4096)
            except OSError:
                time.sleep(wait)
                return False
        return bool(pkt.VerifyReply(pkt.CreateReply(packet=data), data))

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def detail(self) -> str:
        path = Path(self.config.detail_path)
        return path.read_text() if path.exists() else ""

    def debug_output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self._outputs if p.exists())


def make_freeradius(directory: Path) -> FreeRadius:
    auth, acct = free_udp_ports(2)
    cfg = FreeRadiusConfig(
        directory=str(directory),
        address=LOOPBACK,
        auth_port=auth,
        acct_port=acct,
        clients=(RadiusClientEntry("mip4-agents", LOOPBACK, RADIUS_SECRET),),
        subscribers=(MN1, MN2),
    )
    fr = FreeRadius(cfg)
    fr.write()
    return fr


@pytest.fixture
def freeradius(tmp_path: Path) -> Iterator[FreeRadius]:
    """A started FreeRADIUS; stopped at the end of the test whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("FreeRADIUS runs as root")
    assert FREERADIUS is not None, "no freeradius binary: run scripts/setup.sh (it installs it)"
    fr = make_freeradius(tmp_path / "raddb")
    try:
        fr.start()
        yield fr
    finally:
        fr.stop()


@pytest.fixture
def silent_udp() -> Iterator[tuple[int, int]]:
    """Two bound UDP ports (auth, acct) that never answer: a RADIUS server gone quiet."""
    socks = []
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        yield socks[0].getsockname()[1], socks[1].getsockname()[1]
