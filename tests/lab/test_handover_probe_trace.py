"""Issue 14: following the demo's probes through a capture (:mod:`mip4.lab.probe_trace`,
``benchmarks/handover.py --trace``). A pcapng written here by hand -- two interfaces, a
probe tunnelled on one link and delivered plain on another, an echo, a frame that is no
probe -- read back, each probe filed under its direction and sequence number, and a move's
trace naming the lost probe's links and the echo seen nowhere."""

from __future__ import annotations

import json
import struct
from ipaddress import IPv4Address
from pathlib import Path

from mip4.demo.probe import encode_probe
from mip4.lab.probe_trace import (
    log_events,
    probe_sightings,
    read_pcapng,
    render_move,
    trace_move,
)

HOME, CN = IPv4Address("10.1.0.100"), IPv4Address("198.51.100.10")
HA, FA1 = IPv4Address("10.1.0.2"), IPv4Address("10.2.0.2")
MN_MAC, FA_MAC = bytes.fromhex("02000000aa01"), bytes.fromhex("02000000bb02")


def ip(src: IPv4Address, dst: IPv4Address, proto: int, payload: bytes) -> bytes:
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                       src.packed, dst.packed)  # fmt: skip
    return head + payload


def udp(src: IPv4Address, dst: IPv4Address, seq: int) -> bytes:
    body = encode_probe(seq, 1000.0 + seq / 1000)
    return ip(src, dst, 17, struct.pack("!HHHH", 40000, 5003, 8 + len(body), 0) + body)


def frame(dst_mac: bytes, packet: bytes) -> bytes:
    return dst_mac + FA_MAC + b"\x08\x00" + packet


def block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def idb(name: str) -> bytes:
    raw = name.encode()
    opt = struct.pack("<HH", 2, len(raw)) + raw + b"\0" * (-len(raw) % 4)
    opt += struct.pack("<HH", 9, 1) + b"\x09\0\0\0"  # nanoseconds
    return block(1, struct.pack("<HHI", 1, 0, 65535) + opt + struct.pack("<HH", 0, 0))


def epb(iface: int, when: float, data: bytes) -> bytes:
    ns = round(when * 1e9)
    head = struct.pack("<IIIII", iface, ns >> 32, ns & 0xFFFFFFFF, len(data), len(data))
    return block(6, head + data)


def write_capture(path: Path) -> None:
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    path.write_bytes(
        shb
        + idb("br-home")
        + idb("br-a")
        # probe 7: tunnelled HA -> FA1 on the home link, then plain onto link a
        + epb(0, 1000.0071, frame(FA_MAC, ip(HA, FA1, 4, udp(CN, HOME, 7))))
        + epb(1, 1000.0072, frame(MN_MAC, udp(CN, HOME, 7)))
        # probe 8 and its echo: arrived and answered
        + epb(1, 1000.0081, frame(MN_MAC, udp(CN, HOME, 8)))
        + epb(1, 1000.0082, frame(FA_MAC, udp(HOME, CN, 8)))
        # not a probe
        + epb(1, 1000.0090, frame(MN_MAC, ip(CN, HOME, 17, b"\0" * 40)))
    )


def test_probes_are_found_by_direction_and_sequence_number(tmp_path: Path) -> None:
    path = tmp_path / "c.pcapng"
    write_capture(path)
    frames = list(read_pcapng(path))
    assert [(i, round(t, 4)) for i, t, _f in frames] == [
        ("br-home", 1000.0071),
        ("br-a", 1000.0072),
        ("br-a", 1000.0081),
        ("br-a", 1000.0082),
        ("br-a", 1000.009),
    ]
    seen = probe_sightings(frames, HOME)
    assert set(seen) == {("down", 7), ("down", 8), ("up", 8)}
    tunnelled, plain = seen[("down", 7)]
    assert (tunnelled.interface, tunnelled.src, tunnelled.dst) == ("br-home", HA, FA1)
    assert tunnelled.inner == (CN, HOME)
    assert (plain.interface, plain.inner, plain.link_dst) == ("br-a", None, MN_MAC)


def test_a_moves_trace_names_the_links_of_each_lost_probe(tmp_path: Path) -> None:
    path = tmp_path / "c.pcapng"
    write_capture(path)
    seen = probe_sightings(read_pcapng(path), HOME)
    logs = tmp_path / "daemons"
    logs.mkdir()
    (logs / "mn.1.log").write_text(
        json.dumps({"ts": "1970-01-01T00:16:40.005000Z", "event": "mn.link_down"}) + "\n"
    )
    sent_at = [1000.0 + i / 1000 for i in range(10)]
    sender = {
        "sent_at": sent_at,
        "echoes": [[i, 1000.0 + i / 1000 + 0.0005] for i in range(10) if i not in (7, 9)],
    }
    receiver = {"received": [[i, 0.0, 1000.0 + i / 1000 + 0.0002] for i in range(10) if i != 7]}
    start = 1000.005
    t = trace_move(sender, receiver, start, seen, log_events(logs), window=(-0.005, 0.005))
    assert t.lost == [(7, sent_at[7])]
    assert [s for s, _ in t.lost_echoes] == [9]
    assert [e[2] for e in t.events] == ["mn.link_down"]
    text = render_move(t, {HA: "HA", FA1: "FA1"})
    assert "probe 7 (sent    +2.00 ms)" in text
    assert "br-home: HA > FA1 [IP in IP: 198.51.100.10 > 10.1.0.100]" in text
    assert "br-a: 198.51.100.10 > 10.1.0.100, to 02:00:00:00:aa:01" in text
    assert "echo of probe 9" in text and "seen on no link" in text
    assert "mn: mn.link_down" in text
