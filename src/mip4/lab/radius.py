"""A real FreeRADIUS (Debian's ``freeradius`` package, unmodified) for the lab and the tests.

:class:`FreeRadius` writes the configuration :mod:`mip4.aaa.freeradius` generates (modules
``chap``, ``files``, ``detail``; the subscribers in its ``users`` file) into a directory,
starts ``freeradius -X -d DIR`` -- in a lab namespace when ``netns`` is given -- waits until
it answers a Status-Server (RFC 5997) on its authentication port, and stops it. The test
fixture (``tests/aaa/conftest.py``) runs it on 127.0.0.1 with free ports; ``mip4 lab up
--aaa`` and ``mip4 lab demo --aaa`` run it in the lab's router namespace
(:func:`start_lab_radius`), where every agent reaches it.

The lab's subscriber is the demo's mobile node: NAI :data:`LAB_NAI`, MN-AAA secret
:data:`LAB_MN_AAA_SECRET`; the server gives it the lab's home address (Framed-IP-Address),
its home agent (3GPP2-Home-Agent-IP-Address: the first home agent, ``ha``; RFC 4433 with
AAA), and an MN-HA key it derives itself from the node's AAA key and a fresh nonce (RFC
3957), with its SPI (3GPP2-MN-HA-SPI): the home agent learns them from its own
Access-Request, the node derives the same key from the nonce in the reply; likewise an
MN-FA key for each foreign agent's Access-Request. Test material only.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from pyrad import packet as rpacket

from mip4.aaa.freeradius import (
    LOCAL_DICTIONARY,
    FreeRadiusConfig,
    RadiusClientEntry,
    Subscriber,
    config_files,
)
from mip4.aaa.policy import RadiusServer
from mip4.io.netns import run_in_netns
from mip4.io.radius import load_dictionary

if TYPE_CHECKING:
    from .build import Lab

__all__ = [
    "LAB_MN_AAA_SECRET",
    "LAB_NAI",
    "LAB_RADIUS_SECRET",
    "FreeRadius",
    "freeradius_binary",
    "lab_freeradius_config",
    "start_lab_radius",
]

#: the demo mobile node's NAI and MN-AAA secret (RFC 2794, RFC 4721); test material only
LAB_NAI = "mn@home.mip4.example"
LAB_MN_AAA_SECRET = "mn-aaa-lab-secret"
#: the RADIUS shared secret between the lab's agents and its FreeRADIUS
LAB_RADIUS_SECRET = "mip4-lab-radius"
RADIUS_AUTH_PORT, RADIUS_ACCT_PORT = 1812, 1813
#: who may ask the lab's FreeRADIUS: the agents' networks (home, A, B)
LAB_CLIENTS = ipaddress.IPv4Network("10.0.0.0/8")


def freeradius_binary() -> str | None:
    """Debian's ``freeradius`` (``radiusd`` elsewhere), or ``None``: scripts/setup.sh
    installs it."""
    return shutil.which("freeradius") or shutil.which("radiusd")


@dataclass
class FreeRadius:
    """One FreeRADIUS process (restartable) over one generated configuration. ``secret``
    is the clients' shared secret (for the readiness probe); ``netns`` the namespace it
    runs in (``None``: this one)."""

    config: FreeRadiusConfig
    secret: str = field(repr=False)
    netns: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _outputs: list[Path] = field(default_factory=list)

    @property
    def server(self) -> RadiusServer:
        """The server as a RADIUS client's entry (named ``fr``)."""
        return RadiusServer(
            "fr",
            self.config.address,
            self.config.auth_port,
            self.secret.encode(),
            acct_port=self.config.acct_port,
        )

    def write(self) -> None:
        """The configuration files, the local dictionary and the state directories."""
        d = Path(self.config.directory)
        for sub in FreeRadiusConfig.SUBDIRS:
            (d / sub).mkdir(parents=True, exist_ok=True)
        for name, text in config_files(self.config).items():
            (d / name).write_text(text)
        dict_src = resources.files("mip4") / "data" / "freeradius-dictionary.mip4"
        (d / LOCAL_DICTIONARY).write_text(dict_src.read_text())
        os.chmod(d / "users", 0o600)  # it holds the subscribers' secrets

    def start(self, timeout: float = 20.0, *, detach: bool = False) -> None:
        """Start it and wait (bounded) until it answers. ``detach``: in its own session, so
        that it outlives this process (``mip4 lab up --aaa``; the lab's teardown stops the
        namespace's processes)."""
        binary = freeradius_binary()
        if binary is None:
            raise RuntimeError("no freeradius binary: run scripts/setup.sh (it installs it)")
        if self.proc is not None:
            raise RuntimeError("FreeRADIUS is already running")
        self.starts += 1
        out = Path(self.config.directory) / f"debug-{self.starts}.txt"
        self._outputs.append(out)
        argv = [binary, "-X", "-d", self.config.directory]
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        with out.open("wb") as fh:
            self.proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=detach,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"freeradius exited: {out.read_text()[-3000:]}")
            if self.probe():
                return
        self.stop()
        raise RuntimeError(f"freeradius did not answer in {timeout}s: {out.read_text()[-3000:]}")

    def probe(self, wait: float = 0.3) -> bool:
        """Status-Server (RFC 5997) to the auth port: any verified answer means ready."""
        if self.netns is None:
            return self._probe(wait)
        return run_in_netns(self.netns, self._probe, wait)

    def _probe(self, wait: float) -> bool:
        pkt = rpacket.AuthPacket(
            code=rpacket.StatusServer,
            secret=self.secret.encode(),
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
        """The accounting records FreeRADIUS's ``detail`` module wrote."""
        path = Path(self.config.detail_path)
        return path.read_text() if path.exists() else ""

    def debug_output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self._outputs if p.exists())


def lab_freeradius_config(lab: Lab, directory: Path | None = None) -> FreeRadiusConfig:
    """The configuration of the lab's FreeRADIUS (in ``directory``, default the lab's state
    directory): listening in the router's namespace at
    :func:`mip4.lab.configs.radius_address` on the standard ports, answering the agents of
    the lab's networks, with the demo mobile node as its one subscriber: its home address,
    its home agent (``ha``) and an MN-HA key the server derives at each Access-Accept (RFC
    3957) with SPI :data:`~mip4.lab.configs.LAB_SPI`, and an MN-FA key for each foreign
    agent that asks (SPI :data:`~mip4.lab.configs.LAB_MN_FA_SPI`); the node's file has none
    of them."""
    from .configs import LAB_MN_FA_SPI, LAB_SPI, radius_address

    address = radius_address(lab)
    return FreeRadiusConfig(
        directory=str(directory if directory is not None else lab.state_dir / "radius"),
        address=address,
        auth_port=RADIUS_AUTH_PORT,
        acct_port=RADIUS_ACCT_PORT,
        clients=(
            RadiusClientEntry("mip4-lab-agents", LAB_CLIENTS, LAB_RADIUS_SECRET),
            # the readiness probe (Status-Server) is sent from the server's own address
            RadiusClientEntry("mip4-lab-probe", address, LAB_RADIUS_SECRET),
        ),
        subscribers=(
            Subscriber(
                nai=LAB_NAI,
                secret=LAB_MN_AAA_SECRET.encode(),
                home_address=lab.address("mn"),
                home_agent=lab.address("ha"),
                mn_ha_spi=LAB_SPI,
                derive_mn_ha_key=True,
                mn_fa_spi=LAB_MN_FA_SPI,
            ),
        ),
    )


def start_lab_radius(
    lab: Lab, directory: Path | None = None, *, detach: bool = False
) -> FreeRadius:
    """The lab's FreeRADIUS (:func:`lab_freeradius_config`), written and started in the
    router's namespace; ``detach``: it outlives this process (the lab's teardown stops the
    namespace's processes)."""
    from .configs import RADIUS_NODE

    fr = FreeRadius(lab_freeradius_config(lab, directory), LAB_RADIUS_SECRET, lab.ns(RADIUS_NODE))
    fr.write()
    fr.start(detach=detach)
    return fr
