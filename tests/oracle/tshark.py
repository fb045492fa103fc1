"""Running tshark on a capture and reading its ``-T json`` output (helpers for the oracle
tests; not a test module).

tshark is run with ``-x`` (every field also comes as ``<name>_raw = [hex, frame offset,
length, bitmask, type]``, so byte fields and positions are compared exactly),
``--no-duplicate-keys`` (repeated fields become lists instead of duplicate JSON keys that a
JSON parser would silently drop), and the IPv4 / UDP checksum checks switched on (so the
capture writer is checked too).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TSHARK_OPTIONS = (
    "-o", "ip.check_checksum:TRUE",
    "-o", "udp.check_checksum:TRUE",
    "-d", "udp.port==434,mip",
)  # fmt: skip
EXPERT_ERROR = 0x00800000  # _ws.expert.severity "Error" (PI_ERROR)
EXPERT_WARN = 0x00600000


def ensure_tshark() -> str:
    """The tshark path; installs it with apt if missing (as scripts/setup.sh does), and skips
    the test with the reason when that is impossible."""
    path = shutil.which("tshark")
    if path:
        return path
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("tshark is not installed and apt-get is not available to install it")
    try:
        subprocess.run(
            ["sh", "-c",
             "echo 'wireshark-common wireshark-common/install-setuid boolean false' | "
             "debconf-set-selections; apt-get update -qq && "
             "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
             "tshark"],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        pytest.skip(f"tshark is not installed and installing it with apt failed: {e}")
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed and apt did not provide it")
    return path


def run_tshark(capture: Path) -> list[dict[str, Any]]:
    """The ``_source.layers`` object of every frame, in order."""
    exe = ensure_tshark()
    r = subprocess.run(
        [exe, "-r", str(capture), "-T", "json", "-x", "--no-duplicate-keys", *TSHARK_OPTIONS],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if r.returncode != 0:
        raise AssertionError(f"tshark failed ({r.returncode}): {r.stderr}")
    return [p["_source"]["layers"] for p in json.loads(r.stdout)]


def walk(obj: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair at any depth, lists expanded, in document order."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, list) and not k.endswith("_raw"):
                for item in v:
                    yield k, item
                    yield from walk(item)
            elif isinstance(v, list) and v and isinstance(v[0], list):  # repeated _raw
                for item in v:
                    yield k, item
            else:
                yield k, v
                yield from walk(v)


@dataclass
class Fields:
    """The fields of one protocol tree (or one extension subtree): every value of each
    field name, in order, and the raw form ``(hex, frame offset, length)``."""

    values: dict[str, list[str]] = field(default_factory=dict)
    raw: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)

    @classmethod
    def of(cls, tree: Any) -> Fields:
        f = cls()
        for k, v in walk(tree):
            if k.endswith("_raw") and isinstance(v, list) and v and isinstance(v[0], str):
                f.raw.setdefault(k[:-4], []).append((v[0], int(v[1]), int(v[2])))
            elif isinstance(v, str):
                f.values.setdefault(k, []).append(v)
        return f

    def one(self, name: str) -> str:
        vals = self.values.get(name)
        assert vals is not None, f"tshark shows no field {name!r}; it has {sorted(self.values)}"
        assert len(vals) == 1, f"field {name!r} appears {len(vals)} times: {vals}"
        return vals[0]

    def all(self, name: str) -> list[str]:
        return self.values.get(name, [])

    def num(self, name: str) -> int:
        return int(self.one(name), 0)

    def flag(self, name: str) -> bool:
        v = self.one(name)
        assert v in ("0", "1"), f"{name} = {v!r}"
        return v == "1"

    def hex(self, name: str) -> str:
        """The raw bytes of a field, as hex."""
        raws = self.raw.get(name)
        assert raws, f"tshark shows no raw bytes for {name!r}"
        assert len(raws) == 1, f"field {name!r} appears {len(raws)} times"
        return raws[0][0]

    def offset(self, name: str) -> int:
        raws = self.raw.get(name)
        assert raws, f"tshark shows no raw bytes for {name!r}"
        return raws[0][1]


def subtrees(tree: Any, marker: str) -> list[tuple[int, Any]]:
    """Every dict inside ``tree`` that directly holds field ``marker`` (e.g. one extension's
    subtree holds ``mip.ext.type``), with the frame offset of that field, sorted by offset
    (``--no-duplicate-keys`` groups same-named subtrees, which loses their order)."""
    found: list[tuple[int, Any]] = []

    def visit(o: Any) -> None:
        if isinstance(o, dict):
            if marker in o:
                raw = o.get(marker + "_raw")
                found.append((int(raw[1]) if raw else -1, o))
            for v in o.values():
                visit(v)
        elif isinstance(o, list):
            for v in o:
                visit(v)

    visit(tree)
    return sorted(found, key=lambda t: t[0])


def expert_problems(layers: dict[str, Any], threshold: int = EXPERT_ERROR) -> list[str]:
    """Malformed-packet markers and expert infos of severity >= ``threshold``."""
    problems = []
    for k, v in walk(layers):
        if k == "_ws.malformed":
            problems.append(f"_ws.malformed: {v}")
        if isinstance(v, dict) and "_ws.expert.severity" in v:
            sev = int(v["_ws.expert.severity"])
            if sev >= threshold:
                problems.append(f"expert {sev:#x}: {v.get('_ws.expert.message')}")
    return problems
