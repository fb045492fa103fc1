"""Independent oracle: tshark (Wireshark's dissectors) decodes what the data plane emits --
IP in IP, GRE with checksum/key/sequence, RFC 3519 tunnel data over UDP 434, and the
ICMP "fragmentation needed" message -- and validates every checksum."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mip4.dataplane import (
    Tunnel,
    encapsulate_gre,
    encapsulate_ipip,
    encapsulate_udp,
    fragmentation_needed,
)

from .vectors import COA, HA, INNER, TUNNEL, make_inner

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed"),
]

FIELDS = [
    "ip.proto",
    "ip.ttl",
    "ip.dsfield",
    "ip.flags.df",
    "ip.checksum.status",
    "gre.key",
    "gre.sequence_number",
    "gre.checksum.status",
    "mip.type",
    "mip.nattt.nexthdr",
    "icmp.mtu",
    "icmp.checksum.status",
]


def tshark(tmp_path: Path, frames: list[bytes]) -> list[dict[str, str]]:
    scapy_all = pytest.importorskip("scapy.all")
    pcap = tmp_path / "dp.pcap"
    scapy_all.wrpcap(str(pcap), [scapy_all.Ether(type=0x0800) / scapy_all.Raw(f) for f in frames])
    cmd = ["tshark", "-r", str(pcap), "-o", "ip.check_checksum:TRUE", "-T", "fields"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in out.splitlines()]


def udp_434(src: bytes, dst: bytes, payload: bytes) -> bytes:
    """IPv4/UDP 434 around a tunnel data payload, via scapy (checksums by scapy)."""
    inet = pytest.importorskip("scapy.layers.inet")
    pkt = inet.IP(src=".".join(map(str, src)), dst=".".join(map(str, dst))) / inet.UDP(
        sport=434, dport=434
    )
    return bytes(pkt / payload)


def test_tshark_decodes_tunnels(tmp_path: Path) -> None:
    gre_tunnel = Tunnel(HA, COA, gre_key=0xABCD, gre_checksum=True)
    frames = [
        bytes(encapsulate_ipip(INNER, TUNNEL)),
        bytes(encapsulate_gre(INNER, gre_tunnel, sequence=7)),
        udp_434(COA.packed, HA.packed, bytes(encapsulate_udp(INNER, TUNNEL))),
    ]
    ipip, gre, udp = tshark(tmp_path, frames)
    # outer and inner values, comma-separated by tshark
    assert ipip["ip.proto"] == "4,17"
    assert ipip["ip.ttl"] == "64,63"  # outer TTL 64; inner decremented (RFC 2003 §3.1)
    assert ipip["ip.dsfield"] == "0x10,0x10"  # TOS copied
    assert ipip["ip.flags.df"] in ("1,1", "True,True")  # DF copied
    assert ipip["ip.checksum.status"] == "1,1"  # 1 = Good (0 Bad, 2 Unverified)
    assert gre["ip.proto"] == "47,17"
    assert gre["gre.key"] == "0x0000abcd" and gre["gre.sequence_number"] == "7"
    assert gre["gre.checksum.status"] == "1"
    assert gre["ip.checksum.status"] == "1,1"
    assert udp["mip.type"] == "4" and udp["mip.nattt.nexthdr"] == "4"
    assert udp["ip.ttl"].endswith(",63")


def test_tshark_decodes_fragmentation_needed(tmp_path: Path) -> None:
    msg = fragmentation_needed(make_inner(payload=b"z" * 1480), 1500, HA)
    assert msg is not None
    (row,) = tshark(tmp_path, [msg])
    assert row["icmp.mtu"] == "1480"
    assert row["icmp.checksum.status"] == "1"
    assert row["ip.checksum.status"].startswith("1")
