"""Where each lost UDP probe went (issue 14): the demo's probes followed through a capture
of every link of the lab.

Theory of operation
-------------------
:class:`~mip4.lab.capture.Capture` writes a pcapng of every bridge of the lab's switch; a
bridge sees each frame that enters it, so a datagram shows up once per link it crosses.
:func:`read_pcapng` yields ``(interface, time, frame)`` for each packet block (the
interface names are the bridges'). :func:`probe_sightings` finds the demo's probes in
them -- by :mod:`mip4.demo.probe`'s magic and sequence number, plain or inside an IP-in-IP
tunnel -- and files each sighting under its direction: ``"down"`` (correspondent → the
node's home address, what the interruption and loss statistic counts) or ``"up"`` (the
node's echo back). :func:`trace_move` puts them beside the probe logs (which sequence
numbers were sent when, which arrived) and the daemons' JSON log events in a window
around one move, and :func:`render_move` prints it: for each probe lost, every link it
was seen on, with the outer and inner addresses and the hardware destination, in
milliseconds from the move's start. What the capture cannot show (a datagram a node's
kernel dropped before it reached a link) shows as a probe seen nowhere after its sender.

Pure functions over files and dicts; ``benchmarks/handover.py --trace DIR`` runs the demo
with a capture and prints this for each move between the two foreign agents.
"""

from __future__ import annotations

import datetime
import json
import struct
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from mip4.demo.probe import HEADER, MAGIC

#: pcapng block types (draft-ietf-opsawg-pcapng)
_SHB, _IDB, _EPB = 0x0A0D0D0A, 1, 6
_OPT_IF_NAME, _OPT_IF_TSRESOL = 2, 9
_ETHERTYPE_IPV4 = b"\x08\x00"
_IPPROTO_IPIP, _IPPROTO_UDP = 4, 17


def read_pcapng(path: Path) -> Iterator[tuple[str, float, bytes]]:
    """``(interface name, time in seconds, frame)`` of each enhanced packet block of a
    little-endian pcapng file (what tshark writes on this machine)."""
    data = path.read_bytes()
    names: list[str] = []
    resolution: list[float] = []
    pos = 0
    while pos + 12 <= len(data):
        kind, length = struct.unpack_from("<II", data, pos)
        if length < 12 or pos + length > len(data):
            break
        body = data[pos + 8 : pos + length - 4]
        if kind == _SHB:
            names, resolution = [], []
        elif kind == _IDB:
            name, tsresol = f"if{len(names)}", 1e-6
            opt = 8
            while opt + 4 <= len(body):
                code, olen = struct.unpack_from("<HH", body, opt)
                if code == 0:
                    break
                value = body[opt + 4 : opt + 4 + olen]
                if code == _OPT_IF_NAME:
                    name = value.rstrip(b"\0").decode(errors="replace")
                elif code == _OPT_IF_TSRESOL and value:
                    r = value[0]
                    tsresol = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0**-r
                opt += 4 + ((olen + 3) & ~3)
            names.append(name)
            resolution.append(tsresol)
        elif kind == _EPB and len(body) >= 20:
            iface, high, low, captured, _original = struct.unpack_from("<IIIII", body)
            if iface < len(names):
                when = ((high << 32) | low) * resolution[iface]
                yield names[iface], when, body[20 : 20 + captured]
        pos += length


@dataclass(frozen=True)
class Sighting:
    """One probe seen on one link."""

    time: float
    interface: str
    #: the outer IP header's addresses
    src: IPv4Address
    dst: IPv4Address
    #: the inner header's addresses when the probe was inside an IP-in-IP tunnel
    inner: tuple[IPv4Address, IPv4Address] | None
    #: the Ethernet destination
    link_dst: bytes

    def describe(self, names: Mapping[IPv4Address, str] | None = None) -> str:
        def n(a: IPv4Address) -> str:
            return names.get(a, str(a)) if names else str(a)

        text = f"{n(self.src)} > {n(self.dst)}"
        if self.inner is not None:
            text += f" [IP in IP: {n(self.inner[0])} > {n(self.inner[1])}]"
        return f"{self.interface}: {text}, to {self.link_dst.hex(':')}"


def probe_sightings(
    frames: Iterable[tuple[str, float, bytes]], home: IPv4Address
) -> dict[tuple[str, int], list[Sighting]]:
    """Every sighting of a probe, by ``(direction, sequence number)``: ``"down"`` when
    the (inner) destination is the node's ``home`` address, ``"up"`` otherwise."""
    out: dict[tuple[str, int], list[Sighting]] = defaultdict(list)
    for iface, when, frame in frames:
        if len(frame) < 34 or frame[12:14] != _ETHERTYPE_IPV4:
            continue
        outer = frame[14:]
        ihl = (outer[0] & 0x0F) * 4
        inner, pair = outer, None
        if outer[9] == _IPPROTO_IPIP:
            inner = outer[ihl:]
            if len(inner) < 20:
                continue
            pair = (IPv4Address(inner[12:16]), IPv4Address(inner[16:20]))
        if len(inner) < 20 or inner[9] != _IPPROTO_UDP:
            continue
        payload = inner[(inner[0] & 0x0F) * 4 + 8 :]
        if len(payload) < HEADER.size or payload[:4] != MAGIC:
            continue
        _magic, seq, _sent = HEADER.unpack_from(payload)
        direction = "down" if IPv4Address(inner[16:20]) == home else "up"
        out[(direction, seq)].append(
            Sighting(
                when,
                iface,
                IPv4Address(outer[12:16]),
                IPv4Address(outer[16:20]),
                pair,
                bytes(frame[0:6]),
            )
        )
    for seen in out.values():
        seen.sort(key=lambda s: s.time)
    return dict(out)


def log_events(directory: Path) -> list[tuple[float, str, str, dict[str, Any]]]:
    """``(time, daemon, event, fields)`` of every line of the daemons' JSON logs
    (``<node>.<n>.log``), by time."""
    out = []
    for path in sorted(directory.glob("*.log")):
        who = path.name.split(".")[0]
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                when = datetime.datetime.fromisoformat(str(record["ts"]).replace("Z", "+00:00"))
            except (ValueError, KeyError, TypeError):
                continue
            fields = {
                k: v for k, v in record.items() if k not in ("ts", "role", "name", "level", "event")
            }
            out.append((when.timestamp(), who, str(record.get("event")), fields))
    out.sort(key=lambda e: e[0])
    return out


@dataclass
class MoveTrace:
    """What happened to the probes around one move (times: ``time.time()``)."""

    start: float
    #: probes sent in the window that never arrived: (sequence number, sent at)
    lost: list[tuple[int, float]] = field(default_factory=list)
    #: probes that arrived but whose echo never came back: (sequence number, arrived at)
    lost_echoes: list[tuple[int, float]] = field(default_factory=list)
    sightings: dict[tuple[str, int], list[Sighting]] = field(default_factory=dict)
    events: list[tuple[float, str, str, dict[str, Any]]] = field(default_factory=list)


def trace_move(
    sender: Mapping[str, Any],
    receiver: Mapping[str, Any],
    start: float,
    sightings: Mapping[tuple[str, int], list[Sighting]],
    events: Sequence[tuple[float, str, str, dict[str, Any]]] = (),
    window: tuple[float, float] = (-0.15, 0.15),
) -> MoveTrace:
    """The probes sent in ``window`` (s from ``start``) that were lost, each way."""
    lo, hi = start + window[0], start + window[1]
    arrived: dict[int, float] = {}
    for seq, _sent, at in receiver.get("received", ()):
        arrived[int(seq)] = min(arrived.get(int(seq), float(at)), float(at))
    echoed = {int(e[0]) for e in sender.get("echoes", ())}
    t = MoveTrace(start)
    for seq, sent in enumerate(float(x) for x in sender.get("sent_at", ())):
        if not lo <= sent < hi:
            continue
        if seq not in arrived:
            t.lost.append((seq, sent))
        elif seq not in echoed:
            t.lost_echoes.append((seq, arrived[seq]))
    keep = {("down", s) for s, _ in t.lost} | {("up", s) for s, _ in t.lost_echoes}
    t.sightings = {k: list(v) for k, v in sightings.items() if k in keep}
    t.events = [e for e in events if lo <= e[0] < hi]
    return t


def render_move(t: MoveTrace, names: Mapping[IPv4Address, str] | None = None) -> str:
    """The trace of one move as text: the daemons' events, then each lost probe (and
    each lost echo) with every link it was seen on, ms from the move's start."""

    def ms(x: float) -> str:
        return f"{(x - t.start) * 1000:+8.2f} ms"

    lines = [f"probes lost: {[s for s, _ in t.lost]}"]
    lines.append(f"echoes lost: {[s for s, _ in t.lost_echoes]}")
    for when, who, event, fields in t.events:
        if event.startswith(("mn.", "fa.", "ha.")) and not event.startswith("fa.advert"):
            brief = {k: v for k, v in fields.items() if k in ("why", "code", "peer", "agent")}
            lines.append(f"  {ms(when)} {who}: {event} {brief if brief else ''}".rstrip())
    for label, key, items in (
        ("probe", "down", t.lost),
        ("echo of probe", "up", t.lost_echoes),
    ):
        for seq, when in items:
            what = "sent" if key == "down" else "echoed after"
            lines.append(f"  {label} {seq} ({what} {ms(when)}):")
            seen = t.sightings.get((key, seq), [])
            if not seen:
                lines.append("      seen on no link")
            for s in seen:
                lines.append(f"      {ms(s.time)} {s.describe(names)}")
    return "\n".join(lines)


__all__ = [
    "MoveTrace",
    "Sighting",
    "log_events",
    "probe_sightings",
    "read_pcapng",
    "render_move",
    "trace_move",
]
