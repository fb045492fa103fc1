"""The shipped object matches the C source, and its licence is clear.

How: ``bpf/Makefile`` builds deterministically (fixed relative source name, compilation
directory mapped to ".", DWARF stripped, no compiler ident) and writes a record beside the
object with the source's SHA-256 and the clang version. Here:

1. the record's hash is the hash of ``bpf/mip4_tunnel.bpf.c`` now -- any edit of the source
   without a rebuild fails, on every machine, clang or not;
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
from pathlib import Path

import pytest

import mip4
from mip4.io.bpf.plane import object_path, object_record

REPO = Path(mip4.__file__).resolve().parents[2]
BPF_DIR = REPO / "bpf"
SOURCE = BPF_DIR / "mip4_tunnel.bpf.c"

pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="not a source checkout")


def test_record_names_the_current_source() -> None:
    record = object_record()
    assert record["source"] == SOURCE.name
    assert record["sha256"] == hashlib.sha256(SOURCE.read_bytes()).hexdigest(), (
        "bpf/mip4_tunnel.bpf.c changed without a rebuild: run `make -C bpf`"
    )


def test_every_c_file_and_the_object_say_gpl() -> None:
    for path in [*BPF_DIR.glob("*.c"), *BPF_DIR.glob("*.h"), BPF_DIR / "Makefile"]:
        head = path.read_text().splitlines()[0]
        assert "SPDX-License-Identifier: GPL-2.0-only" in head, path
    # the "license" section (bpf_fib_lookup is GPL-only; the kernel refuses it otherwise)
    if shutil.which("llvm-objdump") is None:
        assert b"GPL\0" in object_path().read_bytes()
        return
    dump = subprocess.run(
        ["llvm-objdump", "-s", "-j", "license", str(object_path())],
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
def test_rebuild_matches_the_shipped_object(tmp_path: Path) -> None:
    out = tmp_path / "mip4_tunnel.bpf.o"
    subprocess.run(
        ["make", "-s", "-C", str(BPF_DIR), f"OUT={out}"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    rebuilt = out.read_bytes()
    assert rebuilt[:4] == b"\x7fELF"
    record = object_record()
    if record["clang"] != _clang_version():
        pytest.skip(f"shipped object built by {record['clang']!r}, here {_clang_version()!r}")
    assert rebuilt == object_path().read_bytes(), "the shipped object is stale: make -C bpf"
