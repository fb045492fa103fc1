"""Build the UDP blaster and sink (``blaster.c``) from source with the system C
compiler, once per source version, into ``~/.cache/mip4/bench-forwarding/``
(:mod:`mip4.tools.cbuild`)."""

from __future__ import annotations

from pathlib import Path

from mip4.tools.cbuild import BuildError, build_c, cache_dir

__all__ = ["SOURCE", "BuildError", "build"]

SOURCE = Path(__file__).with_name("blaster.c")


def build(directory: Path | None = None) -> Path:
    """The path of the compiled blaster, compiling it if this source has not been."""
    return build_c(SOURCE, directory or cache_dir("bench-forwarding"))
