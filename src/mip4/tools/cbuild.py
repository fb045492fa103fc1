"""Build a benchmark's C helper from source with the system C compiler, once per source
version, into a cache directory (``$XDG_CACHE_HOME/mip4/<name>/``, default
``~/.cache/mip4/<name>/``). The compiled file is named after the source and a digest of
the source and flags, so an edited source is built again and a concurrent build never
leaves a half-written binary in place."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

CFLAGS = ("-O2", "-Wall", "-Wextra", "-std=gnu11")


class BuildError(RuntimeError):
    pass


def cache_dir(name: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mip4" / name


def compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise BuildError("no C compiler found (install gcc: apt-get install gcc)")


def build_c(source: Path, directory: Path, cflags: tuple[str, ...] = CFLAGS) -> Path:
    """The path of ``source`` compiled into ``directory``, compiling it if this source (with
    these flags) has not been."""
    src = source.read_bytes()
    digest = hashlib.sha256(src + " ".join(cflags).encode()).hexdigest()[:16]
    out = directory / f"{source.stem}-{digest}"
    if out.exists():
        return out
    directory.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    r = subprocess.run(
        [compiler(), *cflags, "-o", str(tmp), str(source)], capture_output=True, text=True
    )
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"compiling {source.name} failed:\n{r.stderr}")
    tmp.replace(out)
    return out
