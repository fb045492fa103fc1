"""Captures written by real capture tools, decoded by ``mip4 decode``.

Registration messages are sent over loopback (127.0.0.1, UDP port 434, from a port of our
own so the capture filter sees nothing else) while ``tcpdump -i any`` (Linux cooked v2, a
pcap) or ``dumpcap -i lo`` (Ethernet, a pcapng) records them. Needs root for the capture;
skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mip4.tools import pcap
from mip4.tools.decode import KeyRing, decode_all, load_input, parse_key
from mip4.tools.sample import SAMPLE_KEYS, sample_packets
from tests.oracle.tshark import ensure_tshark

MESSAGES = [p[28:] for _, p in sample_packets() if p[9] == 17][:4]


def _capture(argv: list[str], path: Path, sport: int) -> None:
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 10
        seen = ""
        while "listening on" not in seen.lower() and "capturing on" not in seen.lower():
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.skip(f"{argv[0]} could not start capturing: {seen.strip()}")
            seen += proc.stderr.readline()
        time.sleep(0.2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", sport))
            for msg in MESSAGES:
                s.sendto(msg, ("127.0.0.1", 434))
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=5)
    assert path.exists(), f"{argv[0]} wrote no file"


@pytest.mark.parametrize("tool", ["tcpdump", "dumpcap"])
def test_real_capture_tools(tmp_path: Path, tool: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("capturing on loopback needs root")
    if tool == "dumpcap":
        ensure_tshark()  # dumpcap comes with it
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a free source port
        probe.bind(("127.0.0.1", 0))
        sport = probe.getsockname()[1]
    path = tmp_path / ("cap.pcap" if tool == "tcpdump" else "cap.pcapng")
    filt = f"udp and src port {sport} and dst port 434"
    n = str(len(MESSAGES))
    if tool == "tcpdump":
        argv = [exe, "-i", "any", "-U", "-c", n, "-w", str(path), filt]
    else:
        argv = [exe, "-i", "lo", "-c", n, "-w", str(path), "-f", filt]
    _capture(argv, path, sport)

    data = path.read_bytes()
    assert pcap.detect_format(data) == ("pcap" if tool == "tcpdump" else "pcapng")
    recs = list(pcap.read_capture(data))
    expected_link = pcap.LinkType.LINUX_SLL2 if tool == "tcpdump" else pcap.LinkType.ETHERNET
    assert {r.linktype for r in recs} <= {expected_link, pcap.LinkType.LINUX_SLL}

    keys = KeyRing()
    for k in SAMPLE_KEYS:
        keys.add(parse_key(k))
    objs = list(decode_all(load_input(str(path), None), keys))
    assert [o["frame"] for o in objs] == [1, 2, 3, 4]
    assert all(o["src"] == o["dst"] == "127.0.0.1" and o["sport"] == sport for o in objs)
    assert [o["type"] for o in objs] == [m[0] for m in MESSAGES]
    verified = [e["verified"] for o in objs for e in o["extensions"] if "verified" in e]
    assert verified and all(v is True for v in verified)
