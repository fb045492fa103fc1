"""Broadcasts on the home network reach the mobile node away from home when it asked for
them with B (RFC 5944 §4.3): through FA1 nested in a unicast datagram to its home address,
at its co-located address directly, and at home as for any host (once, not also through a
tunnel). Without B they do not reach it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mip4.lab.scenario import Scenario, Settings

from .helpers import lab_id

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PORT = 5999

RECEIVER = f"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT}))
s.settimeout(0.2)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        data = s.recv(2048)
    except TimeoutError:
        continue
    print(data.decode(), flush=True)
"""

SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
for dst in ("255.255.255.255", sys.argv[2]):
    s.sendto(f"{sys.argv[3]} to {dst}".encode(), (dst, int(sys.argv[4])))
"""


def _broadcasts_received(sc: Scenario, tag: str) -> list[str]:
    """Broadcast two datagrams on the home network (limited and directed) from the router;
    what the mobile node's socket got within 1.5 s."""
    lab = sc.lab
    receiver = lab.popen(
        "mn",
        [sys.executable, "-c", RECEIVER, "1.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == b"ready"
        home = lab.topology.network("home").subnet
        lab.exec(
            "rtr",
            [
                sys.executable,
                "-c",
                SENDER,
                lab.ifname("rtr", "home"),
                str(home.broadcast_address),
                tag,
                str(PORT),
            ],
            check=True,
        )
        out, _ = receiver.communicate(timeout=10)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    return sorted(line for line in out.decode().splitlines() if line)


@pytest.mark.parametrize("broadcast", [True, False], ids=["B", "no-B"])
def test_home_broadcasts_follow_the_node(lab_prefix: str, broadcast: bool) -> None:
    settings = Settings(lab_id(lab_prefix), reverse_tunnel=False, broadcast=broadcast)
    with Scenario(settings) as sc:
        bcast = str(sc.lab.topology.network("home").subnet.broadcast_address)
        expected = {
            tag: sorted(f"{tag} to {dst}" for dst in ("255.255.255.255", bcast))
            for tag in ("home", "via-fa1", "colocated", "home-again")
        }
        assert _broadcasts_received(sc, "home") == expected["home"]
        assert sc.move("a").registered
        (b,) = sc.ha_status().bindings
        assert b.care_of_address == "10.2.0.2"
        got = _broadcasts_received(sc, "via-fa1")
        assert got == (expected["via-fa1"] if broadcast else []), got
        assert sc.move("c").registered
        got = _broadcasts_received(sc, "colocated")
        assert got == (expected["colocated"] if broadcast else []), got
        forwarded = sc.agents.forwarder_stats("ha").get("broadcast_forwarded", 0)
        assert forwarded == (4 if broadcast else 0)
        assert sc.move("home").registered
        # at home: once, from the link, not also through a tunnel
        time.sleep(0.2)
        assert _broadcasts_received(sc, "home-again") == expected["home-again"]
        assert sc.agents.forwarder_stats("ha").get("broadcast_forwarded", 0) == forwarded
