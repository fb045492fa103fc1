"""Build the UDP blaster and sink (``blaster.c``) from source with the system C compiler,
once per source version, into a cache directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("blaster.c")
CFLAGS = ("-O2", "-Wall", "-Wextra", "-std=gnu11")


class BuildError(RuntimeError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mip4" / "bench-forwarding"


def compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise BuildError("no C compiler found (install gcc: apt-get install gcc)")


def build(directory: Path | None = None) -> Path:
    """The path of the compiled blaster, compiling it if this source has not been."""
    src = SOURCE.read_bytes()
    digest = hashlib.sha256(src + " ".join(CFLAGS).encode()).hexdigest()[:16]
    out_dir = directory or cache_dir()
    out = out_dir / f"blaster-{digest}"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    r = subprocess.run(
        [compiler(), *CFLAGS, "-o", str(tmp), str(SOURCE)], capture_output=True, text=True
    )
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"compiling {SOURCE.name} failed:\n{r.stderr}")
    tmp.replace(out)
    return out
