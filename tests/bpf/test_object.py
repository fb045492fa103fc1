"""The shipped objects (the tc-BPF tunnel; the flood steering program of issue 13) match
their C sources, and their licence is clear.

How: ``bpf/Makefile`` builds deterministically (fixed relative source name, compilation
directory mapped to ".", DWARF stripped, no compiler ident) and writes a record beside the
object with the source's SHA-256 and the clang version. Here:

1. the record's hash is the hash of ``bpf/mip4_tunnel.bpf.c`` (``mip4_steer.bpf.c``) now --
   any edit of the source without a rebuild fails, on every machine, clang or not;
2. where clang is installed, the object is rebuilt into a temporary file; with the clang
   version of the record the bytes must be identical (different clang versions emit
   different code, so then only the rebuild's success is checked, and the difference is
   reported in the skip reason of the byte comparison).
No kernel is needed: these tests run without root.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import mip4
from mip4.io.bpf import steer
from mip4.io.bpf.plane import object_path, object_record

REPO = Path(mip4.__file__).resolve().parents[2]
BPF_DIR = REPO / "bpf"
SOURCE = BPF_DIR / "mip4_tunnel.bpf.c"

pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="not a source checkout")

#: (source, shipped object, its record) of every object bpf/Makefile builds
OBJECTS = [
    ("mip4_tunnel.bpf.c", object_path, object_record),
    ("mip4_steer.bpf.c", steer.object_path, steer.object_record),
]
IDS = [name for name, _, _ in OBJECTS]


@pytest.mark.parametrize(("source", "path", "record"), OBJECTS, ids=IDS)
def test_record_names_the_current_source(
    source: str, path: Callable[[], Path], record: Callable[[], dict[str, str]]
) -> None:
    rec = record()
    assert rec["source"] == source
    assert path().name == source.replace(".c", ".o")
    assert rec["sha256"] == hashlib.sha256((BPF_DIR / source).read_bytes()).hexdigest(), (
        f"bpf/{source} changed without a rebuild: run `make -C bpf`"
    )


@pytest.mark.parametrize(("source", "path", "record"), OBJECTS, ids=IDS)
def test_every_c_file_and_the_object_say_gpl(
    source: str, path: Callable[[], Path], record: Callable[[], dict[str, str]]
) -> None:
    for file in [*BPF_DIR.glob("*.c"), *BPF_DIR.glob("*.h"), BPF_DIR / "Makefile"]:
        head = file.read_text().splitlines()[0]
        assert "SPDX-License-Identifier: GPL-2.0-only" in head, file
    # the "license" section (bpf_fib_lookup is GPL-only; the kernel refuses it otherwise)
    if shutil.which("llvm-objdump") is None:
        assert b"GPL\0" in path().read_bytes()
        return
    dump = subprocess.run(
        ["llvm-objdump", "-s", "-j", "license", str(path())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "GPL." in dump.splitlines()[-1]


def _clang_version() -> str | None:
    if shutil.which("clang") is None or shutil.which("make") is None:
        return None
    return subprocess.run(
        ["clang", "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]


@pytest.mark.skipif(_clang_version() is None, reason="clang/make not installed")
@pytest.mark.parametrize(("source", "path", "record"), OBJECTS, ids=IDS)
def test_rebuild_matches_the_shipped_object(
    tmp_path: Path, source: str, path: Callable[[], Path], record: Callable[[], dict[str, str]]
) -> None:
    outs = {"OUT": tmp_path / "mip4_tunnel.bpf.o", "STEER_OUT": tmp_path / "mip4_steer.bpf.o"}
    subprocess.run(
        ["make", "-s", "-C", str(BPF_DIR), *(f"{k}={v}" for k, v in outs.items())],
        check=True,
        capture_output=True,
        timeout=120,
    )
    rebuilt = (tmp_path / path().name).read_bytes()
    assert rebuilt[:4] == b"\x7fELF"
    rec = record()
    if rec["clang"] != _clang_version():
        pytest.skip(f"shipped object built by {rec['clang']!r}, here {_clang_version()!r}")
    assert rebuilt == path().read_bytes(), f"the shipped {path().name} is stale: make -C bpf"
