"""A real FreeRADIUS (Debian's ``freeradius`` package) started per test with a generated
minimal configuration in a tmp directory, on 127.0.0.1 with free ports; always stopped
(:class:`mip4.lab.radius.FreeRadius`, which the lab uses too)."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mip4.aaa.freeradius import FreeRadiusConfig, RadiusClientEntry, Subscriber
from mip4.lab.radius import FreeRadius as FreeRadius

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
#: RFC 3957: no static MN-HA key; the server derives one from its AAA key and a fresh nonce
MN3 = Subscriber(
    nai="mn3@home.example",
    secret=b"mn3-aaa-key",
    home_address=ipaddress.IPv4Address("10.1.0.7"),
    home_agent=ipaddress.IPv4Address("192.0.2.1"),
    mn_ha_spi=4100,
    derive_mn_ha_key=True,
    session_timeout=600,
)

#: FreeRADIUS runs as root here: its tests carry the ``lab`` marker, so the one rule of
#: tests/conftest.py (root and namespaces available, else every lab test is skipped with
#: the reason) decides for them too. A missing ``freeradius`` binary is a failure, not a
#: skip: scripts/setup.sh installs it, and a skip would hide a setup that did not.
needs_freeradius = pytest.mark.lab


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


def make_freeradius(
    directory: Path, subscribers: tuple[Subscriber, ...] = (MN1, MN2, MN3)
) -> FreeRadius:
    """A FreeRADIUS configuration written to ``directory`` (not started) on 127.0.0.1 with
    free auth/acct ports, one client entry for the agents and ``subscribers``."""
    auth, acct = free_udp_ports(2)
    cfg = FreeRadiusConfig(
        directory=str(directory),
        address=LOOPBACK,
        auth_port=auth,
        acct_port=acct,
        clients=(RadiusClientEntry("mip4-agents", LOOPBACK, RADIUS_SECRET),),
        subscribers=subscribers,
    )
    fr = FreeRadius(cfg, RADIUS_SECRET)
    fr.write()
    return fr


def start_freeradius(fr: FreeRadius, attempts: int = 3) -> None:
    """``fr.start()``. :func:`free_udp_ports` picks its ports free and lets them go, so
    another socket on the machine (any client's ephemeral port) can take one before
    FreeRADIUS binds it: then it is started again on two new free ports (the configuration
    written again), at most ``attempts`` times in all. Any other failure is raised."""
    for attempt in range(attempts):
        try:
            fr.start()
            return
        except RuntimeError as e:
            if "Address already in use" not in str(e) or attempt == attempts - 1:
                raise
        auth, acct = free_udp_ports(2)
        fr.config = dataclasses.replace(fr.config, auth_port=auth, acct_port=acct)
        fr.write()


@pytest.fixture
def freeradius(tmp_path: Path) -> Iterator[FreeRadius]:
    """A started FreeRADIUS; stopped at the end of the test whatever happens."""
    assert FREERADIUS is not None, "no freeradius binary: run scripts/setup.sh (it installs it)"
    fr = make_freeradius(tmp_path / "raddb")
    try:
        start_freeradius(fr)
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
