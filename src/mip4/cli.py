"""The ``mip4`` command line.

Each subcommand lives in its own module, which exposes ``register(subparsers)``: it adds its
parser(s) with ``subparsers.add_parser(...)`` and sets ``func`` (``args -> exit status``) as a
default. Adding a subcommand is one line in :data:`COMMANDS`.

A command line that names a subcommand imports only the module that adds it: a daemon's
start does not wait for the decoder, the benchmarks or the lab to be imported (about half
of a ``mip4 ha`` start before this). ``mip4 --help``, ``--version`` and a name that is not a
subcommand build the whole parser, so that help and errors list every command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mip4 import __version__

#: Modules that add subcommands (in the order they appear in ``mip4 --help``) and the
#: names of the subcommands each adds.
COMMANDS: dict[str, tuple[str, ...]] = {
    "mip4.tools.decode_cmd": ("decode",),
    "mip4.tools.demo": ("demo",),
    "mip4.tools.bench": ("bench",),
    "mip4.lab.cli": ("lab",),
    "mip4.sim.cli": ("sim",),
    "mip4.daemon.cli": ("ha", "fa", "mn", "status"),
}


def modules_for(argv: Sequence[str]) -> tuple[str, ...]:
    """The modules to import for ``argv``: the one adding the subcommand it names (its
    first word, when no option comes before it), else all of them."""
    if argv and not argv[0].startswith("-"):
        for module, names in COMMANDS.items():
            if argv[0] in names:
                return (module,)
    return tuple(COMMANDS)


def build_parser(commands: Sequence[str] = tuple(COMMANDS)) -> argparse.ArgumentParser:
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
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(modules_for(words))
    args = parser.parse_args(words)
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
