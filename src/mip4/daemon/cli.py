"""``mip4 ha``, ``mip4 fa``, ``mip4 mn`` (the daemons) and ``mip4 status``.

::

    mip4 ha --config ha.toml [--check]     home agent, in the foreground
    mip4 fa --config fa.toml [--check]     foreign agent
    mip4 mn --config mn.toml [--check]     mobile node
    mip4 status [--socket PATH | --role ROLE [--name NAME]] [--json] [--timeout S]

Exit status of a daemon: 0 after SIGTERM/SIGINT, 1 when it cannot start or fails, 2 for a
configuration error (one line naming the file and the key). See docs/configuration.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .config import RUN_DIR

ROLE_HELP = {
    "ha": "run a home agent (foreground daemon)",
    "fa": "run a foreign agent (foreground daemon)",
    "mn": "run a mobile node (foreground daemon)",
}


def register(subparsers: Any) -> None:
    for role, text in ROLE_HELP.items():
        p = subparsers.add_parser(role, help=text, description=f"{text}; see docs/configuration.md")
        p.add_argument("--config", "-c", required=True, metavar="FILE", help="TOML file")
        p.add_argument(
            "--check", action="store_true", help="load and check the file, then exit (0 or 2)"
        )
        p.set_defaults(func=_daemon(role))

    st = subparsers.add_parser(
        "status",
        help="show a running daemon's bindings, visitors or registration, and counters",
        description=(
            "Ask a daemon over its control socket. Without --socket or --role: the only "
            f"socket in {RUN_DIR}."
        ),
    )
    where = st.add_mutually_exclusive_group()
    where.add_argument("--socket", "-s", type=Path, metavar="PATH", help="control socket path")
    where.add_argument("--role", choices=sorted(ROLE_HELP), help="find the socket of this role")
    st.add_argument("--name", help="with --role: the daemon's name (daemon.name or pid)")
    st.add_argument("--json", action="store_true", help="print the status JSON")
    st.add_argument("--timeout", type=float, default=5.0, metavar="S")
    st.add_argument("--run-dir", type=Path, default=RUN_DIR, help=argparse.SUPPRESS)
    st.set_defaults(func=_status)


def _daemon(role: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        from .run import main  # imports the I/O layer only when a daemon runs

        return main(role, args.config, check_only=args.check)

    return run


def find_socket(run_dir: Path, role: str | None, name: str | None) -> Path:
    """The control socket of ``role`` (and ``name``) in ``run_dir``; ``LookupError`` with
    a readable message when there is none or more than one."""
    if role is not None and name is not None:
        path = run_dir / f"{role}-{name}.sock"
        if not path.exists():
            raise LookupError(f"no {path}")
        return path
    pattern = f"{role}-*.sock" if role else "*.sock"
    found = sorted(run_dir.glob(pattern))
    if not found:
        raise LookupError(f"no control socket {run_dir / pattern}; is the daemon running?")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise LookupError(f"several control sockets in {run_dir} ({names}): use --socket")
    return found[0]


def _status(args: argparse.Namespace) -> int:
    from .control import request
    from .status import render_text

    if args.name is not None and args.role is None:
        print("mip4 status: --name needs --role", file=sys.stderr)
        return 2
    try:
        path = args.socket or find_socket(args.run_dir, args.role, args.name)
    except LookupError as e:
        print(f"mip4 status: {e}", file=sys.stderr)
        return 1
    try:
        answer = request(path, "status", timeout=args.timeout)
    except (OSError, ValueError) as e:
        print(f"mip4 status: {path}: no answer ({e})", file=sys.stderr)
        return 1
    if not answer.get("ok"):
        print(f"mip4 status: {path}: {answer.get('error')}", file=sys.stderr)
        return 1
    st = answer["status"]
    if args.json:
        print(json.dumps(st, indent=2, sort_keys=False))
    else:
        print(render_text(st))
    return 0
