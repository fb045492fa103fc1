"""The ``mip4`` command line.

Each subcommand lives in its own module, which exposes ``register(subparsers)``: it adds its
parser(s) with ``subparsers.add_parser(...)`` and sets ``func`` (``args -> exit status``) as a
default. Adding a subcommand is one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mip4 import __version__

#: Modules that add subcommands, in the order they appear in ``mip4 --help``.
COMMANDS: tuple[str, ...] = (
    "mip4.tools.decode_cmd",  # mip4 decode
    "mip4.tools.demo",  # mip4 demo
    "mip4.tools.bench",  # mip4 bench
    "mip4.lab.cli",  # mip4 lab
    "mip4.sim.cli",  # mip4 sim
    "mip4.daemon.cli",
)


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mip4",
        description="Mobile IPv4 (RFC 5944) suite: decoder, agents and tools.",
    )
    parser.add_argument("--version", action="version", version=f"mip4 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in commands:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `mip4 decode x.pcap | head`
        sys.stderr.close()
        return 0
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
