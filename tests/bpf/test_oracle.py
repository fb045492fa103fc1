"""Independent oracles on what the tc programs emit: scapy re-computes every IPv4 and GRE
field and checksum, tshark (Wireshark's dissectors, checksum validation on) decodes one
packet of each encapsulation -- IP in IP, GRE, GRE with key, minimal with and without S --
and flags nothing malformed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mip4.io.bpf.plane import TC_ACT_OK, TC_ACT_REDIRECT, BpfPlane, Encap, Program, Tunnel

from .frames import CN, COA, HA, HOME, frame, inner, rfc1071

pytestmark = pytest.mark.oracle

LO = 1
DPORT = 40001  # no dissector claims it: tshark judges the tunnel, not a payload


def emitted(plane: BpfPlane) -> dict[str, bytes]:
    """One frame per encapsulation, from the HA program (minimal without S: the host
    program tunnelling its own datagram)."""
    out = {}
    for name, encap, key in [
        ("ipip", Encap.IPIP, None),
        ("gre", Encap.GRE, None),
        ("gre-key", Encap.GRE, 0xABCD),
        ("minimal-s", Encap.MINIMAL, None),
    ]:
        plane.set_binding(HOME, Tunnel(HA, COA, encap, key=key, oif=LO, mtu=1500))
        r = plane.test_run(Program.HA_ENCAP, frame(inner(tos=0x28, dport=DPORT)))
        assert r.retval == TC_ACT_REDIRECT
        out[name] = r.data
    plane.set_reverse(CN, Tunnel(CN, COA, Encap.MINIMAL, oif=LO, mtu=1500))
    r = plane.test_run(Program.HOST_ENCAP, frame(inner(src=CN, tos=0x28, dport=DPORT)))
    assert r.retval == TC_ACT_OK  # out of the tunnel's own device: sent on
    out["minimal"] = r.data
    return out


def test_scapy_agrees_on_every_field_and_checksum(plane: BpfPlane) -> None:
    scapy = pytest.importorskip("scapy.all")
    for name, data in emitted(plane).items():
        pkt = scapy.Ether(data)
        ip = pkt[scapy.IP]
        rebuilt = scapy.IP(bytes(ip))
        del rebuilt.chksum  # scapy recomputes it on build
        assert scapy.IP(bytes(rebuilt)).chksum == ip.chksum, name
        assert (ip.src, ip.dst, ip.ttl, ip.tos, ip.flags.DF) == (
            str(CN) if name == "minimal" else str(HA),
            str(COA),
            64 if name != "minimal-s" else 63,
            0x28,
            True,
        ), name
        assert ip.len == len(data) - 14
        if name.startswith("gre"):
            gre = pkt[scapy.GRE]
            assert gre.proto == 0x0800 and gre.chksum_present == 0
            assert gre.key_present == (name == "gre-key")
            if name == "gre-key":
                assert gre.key == 0xABCD
            inner_ip = gre.payload
        elif name == "ipip":
            inner_ip = ip.payload
        else:  # scapy has no minimal-encapsulation layer: read the header by hand
            assert ip.proto == 55
            m = bytes(ip.payload)
            mlen = 12 if name == "minimal-s" else 8
            assert m[1] == (0x80 if name == "minimal-s" else 0)
            assert rfc1071(m[:mlen]) == 0
            assert m[4:8] == HOME.packed
            continue
        assert isinstance(inner_ip, scapy.IP)
        check = scapy.IP(bytes(inner_ip))
        del check.chksum
        assert scapy.IP(bytes(check)).chksum == inner_ip.chksum
        assert inner_ip.ttl == 63 and inner_ip.dst == str(HOME)


FIELDS = [
    "ip.proto",
    "ip.ttl",
    "ip.dsfield",
    "ip.flags.df",
    "ip.checksum.status",
    "gre.key",
    "_ws.malformed",
    "_ws.expert.severity",
]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_each_encapsulation(plane: BpfPlane, tmp_path: Path) -> None:
    scapy = pytest.importorskip("scapy.all")
    frames = emitted(plane)
    pcap = tmp_path / "bpf.pcap"
    scapy.wrpcap(str(pcap), [scapy.Ether(f) for f in frames.values()])
    cmd = ["tshark", "-r", str(pcap), "-o", "ip.check_checksum:TRUE", "-T", "fields"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    rows = {
        name: dict(zip(FIELDS, line.split("\t"), strict=True))
        for name, line in zip(frames, out.splitlines(), strict=True)
    }
    for name, row in rows.items():
        assert row["_ws.malformed"] == "", name
        assert row["_ws.expert.severity"] == "", (name, row)
    # outer, inner: TTL 64 outside, 63 inside (RFC 2003 §3.1), TOS and DF copied
    assert rows["ipip"]["ip.proto"] == "4,17"
    assert rows["ipip"]["ip.ttl"] == "64,63"
    assert rows["ipip"]["ip.dsfield"] == "0x28,0x28"
    assert rows["ipip"]["ip.flags.df"] in ("1,1", "True,True")
    assert rows["ipip"]["ip.checksum.status"] == "1,1"  # 1 = Good
    for name in ("gre", "gre-key"):
        assert rows[name]["ip.proto"] == "47,17"
        assert rows[name]["ip.checksum.status"] == "1,1"
    assert rows["gre"]["gre.key"] == ""
    assert rows["gre-key"]["gre.key"] == "0x0000abcd"
    # minimal: one IPv4 header (the original, modified: TTL - 1 when forwarded), its
    # checksum good; Wireshark has no dissector for the forwarding header (scapy test)
    for name, ttl in (("minimal-s", "63"), ("minimal", "64")):
        assert rows[name]["ip.proto"] == "55", rows[name]
        assert rows[name]["ip.checksum.status"] == "1"
        assert rows[name]["ip.ttl"] == ttl
