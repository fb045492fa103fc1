"""Manual pages of the daemons, ``mip4-ha(8)``, ``mip4-fa(8)``, ``mip4-mn(8)``, generated
from the same source as ``docs/configuration.md``: the configuration dataclasses (their
fields, types, defaults and ``#:`` comments, through :mod:`mip4.daemon.docgen`) and the
command line of :mod:`mip4.daemon.cli`.

``python -m mip4.daemon.manpage --write DIR`` writes the three pages; the package ships
them in ``mip4/data/`` (``man -l .../mip4/data/mip4-ha.8``), and
``tests/store/test_manpages.py`` checks that those are what this module generates, so a
key added to a configuration table cannot be missing from the pages either.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path

from . import docgen
from .cli import ROLE_HELP, register
from .config import FILES

__all__ = ["PAGES", "generate", "page", "sections_of"]

#: the page name of each role
PAGES = {role: f"mip4-{role}.8" for role in ROLE_HELP}
#: where the package keeps the generated pages
DATA = Path(__file__).resolve().parents[1] / "data"
_DATE = "2026"


def _esc(text: str) -> str:
    """Text for a roff line: backslashes and hyphens escaped, no leading control dot."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    if out.startswith((".", "'")):
        out = "\\&" + out
    return out


def sections_of(role: str) -> list[tuple[str, type]]:
    """The ``docgen.SECTIONS`` entries that belong in ``role``'s file, in document order."""
    # [aaa] is read before the role's file table (daemon/aaa.py), by every role
    keys = {f.name for f in dataclasses.fields(FILES[role])} | {"aaa"}
    out = []
    for name, cls in docgen.SECTIONS:
        top = name.strip("[]").split(".", 1)[0]
        if top in keys:
            out.append((name, cls))
    return out


def _options(role: str) -> list[tuple[str, str]]:
    """(flags, help) of ``mip4 <role>``'s options, from the parser the CLI builds."""
    parser = argparse.ArgumentParser(prog="mip4")
    register(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        role
    ]
    out = []
    for action in sub._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        flags = ", ".join(action.option_strings)
        if action.metavar or action.nargs != 0:
            flags += f" {action.metavar or action.dest.upper()}"
        out.append((flags, action.help or ""))
    return out


def page(role: str) -> str:
    """The roff text of ``mip4-<role>(8)``."""
    title = f"MIP4\\-{role.upper()}"
    lines = [
        f'.TH {title} 8 "{_DATE}" "mip4" "System Administration"',
        ".SH NAME",
        f"mip4 {role} \\- {_esc(ROLE_HELP[role])}",
        ".SH SYNOPSIS",
        f".B mip4 {role}",
        "\\fB\\-\\-config\\fR \\fIFILE\\fR [\\fB\\-\\-check\\fR]",
        ".SH DESCRIPTION",
        _esc(
            f"Runs the {_ROLE_NAME[role]} of the mip4 Mobile IPv4 suite (RFC 5944) in the "
            "foreground, in the current network namespace, configured by one TOML file. "
            "Log records go to standard error, syslog or the journal "
            "(daemon.log_target); the control socket answers mip4 status."
        ),
        ".SH OPTIONS",
    ]
    for flags, text in _options(role):
        lines += [".TP", f".B {_esc(flags)}", _esc(text)]
    lines += [
        ".SH CONFIGURATION",
        _esc(
            "Unknown keys are errors. Every key of the file, by table (type; default): "
            "the same tables as docs/configuration.md."
        ),
    ]
    for name, cls in sections_of(role):
        lines += [".SS " + _esc(name)]
        hints = typing.get_type_hints(cls)
        docs = docgen.field_docs(cls)
        for f in dataclasses.fields(cls):
            kind = docgen._type_name(hints[f.name])
            default = docgen._default(f).replace("**", "")
            lines += [
                ".TP",
                f".B {_esc(f.name)}",
                f"({_esc(kind)}; {_esc(default)})",
                ".br",
                _esc(" ".join(docs.get(f.name, "").replace("``", '"').split())),
            ]
    lines += [
        ".SH SIGNALS",
        ".TP",
        ".B SIGTERM, SIGINT",
        _esc(_STOP[role]),
        ".TP",
        ".B SIGHUP",
        _esc(
            "Reload the file: security associations (and the agents' pools and limits) "
            "change in place; a key that needs a restart is refused with a log line naming "
            "it; an invalid file leaves the daemon on its configuration."
        ),
        ".SH EXIT STATUS",
        ".TP",
        ".B 0",
        "Stopped by SIGTERM or SIGINT (or \\-\\-check passed).",
        ".TP",
        ".B 1",
        "It could not start or failed.",
        ".TP",
        ".B 2",
        _esc(
            "A configuration error, or (agents) a store file that cannot be used: one line "
            "on standard error naming the file and the key."
        ),
        ".SH FILES",
        ".TP",
        f".I /etc/mip4/{role}.toml",
        "The configuration, by convention (contrib/systemd units).",
        ".TP",
        f".I /run/mip4/{role}\\-NAME.sock",
        "The control socket (daemon.control_socket).",
    ]
    if "store" in {f.name for f in dataclasses.fields(FILES[role])}:
        lines += [
            ".TP",
            ".I [store] path",
            _esc(
                "The bindings (home agent) or visitor list (foreign agent) kept across "
                "restarts, SQLite in WAL mode; reloaded and re-installed at start."
            ),
        ]
    others = [f"mip4\\-{r}" + " (8)" for r in ROLE_HELP if r != role]
    lines += [".SH SEE ALSO", ", ".join(others) + ", mip4 status \\-\\-help", ""]
    return "\n".join(lines)


_ROLE_NAME = {"ha": "home agent", "fa": "foreign agent", "mn": "mobile node"}
_STOP = {
    "ha": "Stop: remove every route, proxy ARP entry, tunnel and sysctl change it made; "
    "the bindings stay in the store, if there is one.",
    "fa": "Stop: remove every route, rule, neighbour entry and tunnel it made; the visitor "
    "list stays in the store, if there is one.",
    "mn": "Deregister first when away from home (bounded wait), then remove every route and "
    "address it made.",
}


def generate() -> dict[str, str]:
    """Page file name -> roff text, for every role."""
    return {PAGES[role]: page(role) for role in ROLE_HELP}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mip4.daemon.manpage")
    p.add_argument("--write", type=Path, metavar="DIR", help=f"write the pages (e.g. {DATA})")
    args = p.parse_args(argv)
    pages = generate()
    if args.write is None:
        print(pages[PAGES["ha"]])
        return 0
    for name, text in pages.items():
        (args.write / name).write_text(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
