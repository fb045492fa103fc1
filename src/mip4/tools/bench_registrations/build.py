"""Build the load generator (``loadgen.c``) from source with the system C compiler,
once per source version, into ``~/.cache/mip4/bench-registrations/`` (:mod:`mip4.tools.cbuild`)."""

from __future__ import annotations

from pathlib import Path

from mip4.tools.cbuild import BuildError, build_c, cache_dir

__all__ = ["SOURCE", "BuildError", "build"]

SOURCE = Path(__file__).with_name("loadgen.c")


def build(directory: Path | None = None) -> Path:
    """The path of the compiled loadgen, compiling it if this source has not been."""
    return build_c(SOURCE, directory or cache_dir("bench-registrations"))
