"""``mip4 ha``, ``mip4 fa``, ``mip4 mn`` (the daemons) and ``mip4 status``.

::

    mip4 ha --config ha.toml [--check]     home agent, in the foreground
    mip4 fa --config fa.toml [--check]     foreign agent
    mip4 mn --config mn.toml [--check]     mobile node
    mip4 status [--socket PATH | --role ROLE [--name NAME]] [--json] [--timeout S]
    mip4 ha revoke NAI|ADDRESS [--socket PATH | --name NAME]     end a binding (RFC 3543)
    mip4 ha redirect NAI|ADDRESS --to ADDRESS [...]              move a node (RFC 4433)
    mip4 fa revoke ADDRESS [--socket PATH | --name NAME]         end a visitor (RFC 3543)

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


#: Operator commands on a running daemon, by role: name -> (help, positional help).
OPERATOR_COMMANDS: dict[str, dict[str, tuple[str, str]]] = {
    "ha": {
        "revoke": (
            "end every binding of a mobile node now (RFC 3543 revocation to its foreign agent)",
            "the node's NAI or home address",
        ),
        "redirect": (
            "move a mobile node to another home agent (RFC 4433; its binding here is revoked)",
            "the node's NAI or home address",
        ),
    },
    "fa": {
        "revoke": (
            "end a visitor now (the node is informed, its home agent told, RFC 3543)",
            "the visitor's home address",
        ),
    },
}


def register(subparsers: Any) -> None:
    for role, text in ROLE_HELP.items():
        p = subparsers.add_parser(role, help=text, description=f"{text}; see docs/configuration.md")
        p.add_argument("--config", "-c", metavar="FILE", help="TOML file (required to run)")
        p.add_argument(
            "--check", action="store_true", help="load and check the file, then exit (0 or 2)"
        )
        p.set_defaults(func=_daemon(role))
        commands = OPERATOR_COMMANDS.get(role)
        if commands:
            sub = p.add_subparsers(dest="operator_command", metavar="COMMAND")
            for name, (help_text, node_help) in commands.items():
                c = sub.add_parser(name, help=help_text, description=help_text)
                c.add_argument("node", metavar="NODE", help=node_help)
                if name == "redirect":
                    c.add_argument(
                        "--to", required=True, metavar="ADDRESS", help="the new home agent"
                    )
                where = c.add_mutually_exclusive_group()
                where.add_argument("--socket", "-s", type=Path, metavar="PATH")
                where.add_argument("--name", help="the daemon's name (daemon.name or pid)")
                c.add_argument("--timeout", type=float, default=5.0, metavar="S")
                c.add_argument("--run-dir", type=Path, default=RUN_DIR, help=argparse.SUPPRESS)
                c.set_defaults(func=_operator(role, name))

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
    st.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="the most bindings, visitors, pending registrations and fast-path counters "
        "listed (default 1000; 0: all -- a daemon with a million bindings takes seconds "
        "and memory to list them all); the totals are shown either way",
    )
    st.add_argument("--timeout", type=float, default=5.0, metavar="S")
    st.add_argument("--run-dir", type=Path, default=RUN_DIR, help=argparse.SUPPRESS)
    st.set_defaults(func=_status)


def _daemon(role: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        from .run import main  # imports the I/O layer only when a daemon runs

        if args.config is None:
            commands = ", ".join(OPERATOR_COMMANDS.get(role, {}))
            also = f" (or a command: {commands})" if commands else ""
            print(
                f"mip4 {role}: the following arguments are required: --config{also}",
                file=sys.stderr,
            )
            return 2
        return main(role, args.config, check_only=args.check)

    return run


def _operator(role: str, command: str) -> Any:
    """``mip4 ha|fa COMMAND NODE``: ask the running daemon over its control socket; one
    line on success, one line naming the problem otherwise (exit 1)."""

    def run(args: argparse.Namespace) -> int:
        from .control import request

        prog = f"mip4 {role} {command}"
        try:
            path = args.socket or find_socket(args.run_dir, role, args.name)
        except LookupError as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return 1
        arguments = {"node": args.node}
        if command == "redirect":
            arguments["to"] = args.to
        try:
            answer = request(path, command, timeout=args.timeout, **arguments)
        except (OSError, ValueError) as e:
            print(f"{prog}: {path}: no answer ({e})", file=sys.stderr)
            return 1
        if not answer.get("ok"):
            print(f"{prog}: {answer.get('error')}", file=sys.stderr)
            return 1
        done = {k: v for k, v in answer.items() if k != "ok"}
        print(f"{prog}: " + ", ".join(f"{k} {v}" for k, v in done.items()))
        return 0

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
    if args.limit is not None and args.limit < 0:
        print(f"mip4 status: --limit {args.limit}: 0 (all) or more", file=sys.stderr)
        return 2
    try:
        path = args.socket or find_socket(args.run_dir, args.role, args.name)
    except LookupError as e:
        print(f"mip4 status: {e}", file=sys.stderr)
        return 1
    try:
        limit = {} if args.limit is None else {"limit": str(args.limit)}
        answer = request(path, "status", timeout=args.timeout, **limit)
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
