"""The human-readable form of ``mip4 decode`` output, rendered from the same JSON-ready
objects that ``--json`` prints (:mod:`mip4.tools.decode`), so the two never disagree."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_SKIP_SUFFIXES = ("_names", "_name", "_text", "_ntp")


def _value(fields: Mapping[str, Any], key: str) -> str:
    v = fields[key]
    if key + "_names" in fields:
        names = fields[key + "_names"]
        return f"{v:#x} [{' '.join(names) if names else '-'}]"
    if key + "_name" in fields:
        return f"{v} ({fields[key + '_name']})"
    if key + "_text" in fields:
        return f"{fields[key + '_text']!r} (hex {v})"
    if key == "code" and "code_name" in fields:
        return f"{v} ({fields['code_name']})"
    if key == "identification" and isinstance(v, int):
        ntp = fields.get("identification_ntp")
        return f"{v:#018x}" + (f" (as NTP time: {ntp})" if ntp else "")
    if isinstance(v, list):
        if v and all(isinstance(x, dict) for x in v):
            return ", ".join(" ".join(f"{k}={x[k]}" for k in x) for x in v)
        return ", ".join(str(x) for x in v) if v else "-"
    if isinstance(v, dict):
        return " ".join(f"{k}={x}" for k, x in v.items())
    return str(v)


def _fields(fields: Mapping[str, Any], indent: str) -> list[str]:
    lines = []
    for key in fields:
        if key.endswith(_SKIP_SUFFIXES) and any(
            key == base + sfx for sfx in _SKIP_SUFFIXES for base in fields
        ):
            continue
        lines.append(f"{indent}{key}: {_value(fields, key)}")
    return lines


def _where(obj: Mapping[str, Any]) -> str:
    parts = []
    if "frame" in obj:
        frames = obj.get("reassembled_from") or obj.get("fragments")
        if frames:
            parts.append(f"frame {obj['frame']} (fragments in frames {frames})")
        else:
            parts.append(f"frame {obj['frame']}")
    if "time_iso" in obj:
        parts.append(obj["time_iso"])
    if "src" in obj:
        src, dst = obj["src"], obj.get("dst", "?")
        if "sport" in obj:
            src, dst = f"{src}:{obj['sport']}", f"{dst}:{obj['dport']}"
        parts.append(f"{src} -> {dst}")
    return "  ".join(parts) if parts else "message"


def render(obj: Mapping[str, Any]) -> str:
    """One decoded message (or frame error) as indented text."""
    lines = [_where(obj)]
    if "name" in obj:
        proto = obj.get("protocol", "")
        lines.append(f"  {obj['name']} ({proto} type {obj.get('type')})")
    if "error" in obj:
        where = ""
        if obj.get("frame_offset") is not None:
            where = f" [frame offset {obj['frame_offset']}]"
        label = "DISCARD" if obj.get("discarded") else "ERROR"
        lines.append(f"  {label}: {obj['error']}{where}")
        if obj.get("note"):
            lines.append(f"  note: {obj['note']}")
        if obj.get("fields"):
            lines.append("  fixed part:")
            lines.extend(_fields(obj["fields"], "    "))
        return "\n".join(lines)
    lines.extend(_fields(obj.get("fields", {}), "    "))
    inner = obj.get("inner")
    if inner:
        if "src" in inner:
            lines.append(
                f"    inner packet: {inner['src']} -> {inner['dst']} protocol "
                f"{inner['protocol']}, {inner['length']} bytes"
            )
        else:
            lines.append("    inner packet: " + " ".join(f"{k}={v}" for k, v in inner.items()))
    for ext in obj.get("extensions", ()):
        at = f" @{ext['offset']}" if "offset" in ext else ""
        lines.append(f"    extension {ext['type']} {ext['name']}{at}")
        if ext.get("note"):
            lines.append(f"      note: {ext['note']}")
        lines.extend(_fields(ext.get("fields", {}), "      "))
        if "verified" in ext:
            v = ext["verified"]
            word = {True: "true", False: "false", None: "null"}[v]  # as in --json
            reason = f" ({ext['reason']})" if ext.get("reason") else ""
            lines.append(f"      verified: {word}{reason}")
    return "\n".join(lines)


class Summary:
    """Running counts for the closing line of the text output."""

    def __init__(self) -> None:
        self.items = self.errors = self.verified = self.failed = self.unchecked = 0

    def add(self, obj: Mapping[str, Any]) -> None:
        self.items += 1
        self.errors += "error" in obj
        for e in obj.get("extensions", ()):
            if "verified" in e:
                v = e["verified"]
                self.verified += v is True
                self.failed += v is False
                self.unchecked += v is None

    def __str__(self) -> str:
        return (
            f"{self.items} item(s): {self.items - self.errors} decoded, {self.errors} error(s); "
            f"authenticators: {self.verified} verified, {self.failed} failed, "
            f"{self.unchecked} not checked"
        )


def summary(objs: Iterable[Mapping[str, Any]]) -> str:
    s = Summary()
    for o in objs:
        s.add(o)
    return str(s)
