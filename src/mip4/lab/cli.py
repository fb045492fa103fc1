"""``mip4 lab``: build and drive the namespace lab.

::

    mip4 lab up [--id ID] [--ingress-filter] [--aaa]
                                                build it, print its id and state file;
                                                --aaa: with a FreeRADIUS in the router and
                                                a second home agent node (ha2, 10.1.0.3)
    mip4 lab status [--id ID] [--json]          what exists, where the mobile node is
    mip4 lab exec [--id ID] NODE -- CMD...      run CMD inside NODE (cn rtr ha fa1 fa2 mn sw;
                                                ha2 in an --aaa lab)
    mip4 lab move [--id ID] NET                 move the mobile node to NET (home a b c); on
                                                C the lab gives it the co-located address
    mip4 lab configs [--id ID] [--aaa] --out DIR
                                                daemon configurations for this lab
    mip4 lab ping [--id ID] NODE DST [-c N]     ICMP echo from NODE (no ping binary needed)
    mip4 lab down [--id ID | --all]             tear it down (idempotent)
    mip4 lab demo [--encapsulation E] [--no-reverse-tunnel] [--aaa] [--out DIR] [--keep]
                                                the whole show: agents, streams, four moves,
                                                report and plot (see mip4.lab.demo)

``--id`` may be left out when exactly one lab exists.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from .build import RUN_DIR, Lab, LabError, existing_labs
from .configs import LAB_ROLES, RADIUS_NODE, write_lab_configs
from .radius import start_lab_radius
from .topology import AAA, DEFAULT


def register(subparsers: Any) -> None:
    """Add ``lab`` and its subcommands to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "lab",
        help="the network-namespace lab (a virtual internet for Mobile IP)",
        description=(__doc__ or "").replace("``", "").replace("::\n", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run-dir", type=Path, default=RUN_DIR, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)

    up = sub.add_parser("up", help="build the lab")
    up.add_argument("--id", help="lab id, 1-5 lowercase letters/digits (default: random)")
    up.add_argument(
        "--ingress-filter",
        action="store_true",
        help="the router drops datagrams whose source is not on the network they came from",
    )
    up.add_argument(
        "--aaa",
        action="store_true",
        help=(
            "also start FreeRADIUS in the router namespace (issue 10), and give the home"
            " network a second home agent node, ha2 (issue 11); use the files of"
            " `mip4 lab configs --aaa`; FreeRADIUS stops with the lab"
        ),
    )
    up.set_defaults(func=_guarded(_up))

    down = sub.add_parser("down", help="tear the lab down (idempotent)")
    down.add_argument("--id")
    down.add_argument("--all", action="store_true", help="every lab with a state directory")
    down.set_defaults(func=_guarded(_down))

    st = sub.add_parser("status", help="show what exists")
    st.add_argument("--id")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_guarded(_status))

    ex = sub.add_parser("exec", help="run a command inside a node")
    ex.add_argument("--id")
    ex.add_argument("node")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command")
    ex.set_defaults(func=_guarded(_exec))

    nets = ", ".join(DEFAULT.visitable())
    mv = sub.add_parser(
        "move",
        help="move the mobile node's link to another network",
        description=(
            f"Move the mobile node's link to NET ({nets}). On a network without a foreign"
            " agent (C) the lab gives the node the network's co-located address and default"
            " route, as a DHCP server would, and takes them away when it leaves."
        ),
    )
    mv.add_argument("--id")
    mv.add_argument("net", metavar="NET", help=nets)
    mv.add_argument(
        "--anticipate",
        action="store_true",
        help=(
            "issue 14: announce the move to the running daemons first (the new agent's"
            " advertisement to the mobile node, as a scan report would)"
        ),
    )
    mv.add_argument(
        "--source-trigger",
        action="store_true",
        help="with --anticipate: also tell the node's current foreign agent (RFC 4881)",
    )
    mv.add_argument(
        "--control-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "with --anticipate: the daemons' control sockets are DIR/<node>.sock (default:"
            " where `mip4 lab configs` puts them)"
        ),
    )
    mv.set_defaults(func=_guarded(_move))

    cf = sub.add_parser(
        "configs",
        help="write the daemon configurations (ha, fa1, fa2, mn; --aaa: and ha2) for a lab",
        description=(
            "Write ha.toml, fa1.toml, fa2.toml and mn.toml for the lab with this id (it need"
            " not exist yet) into DIR, and print how to start the daemons in it."
        ),
    )
    cf.add_argument("--id", help="lab id (default: the one lab that exists)")
    cf.add_argument("--out", type=Path, required=True, metavar="DIR")
    cf.add_argument(
        "--aaa",
        action="store_true",
        help=(
            "the AAA files: agents ask the lab's FreeRADIUS, two home agents (ha, ha2), the"
            " node has only its NAI and its MN-AAA secret"
        ),
    )
    cf.set_defaults(func=_guarded(_configs))

    pg = sub.add_parser("ping", help="ICMP echo from a node")
    pg.add_argument("--id")
    pg.add_argument("node")
    pg.add_argument("dst")
    pg.add_argument("-c", "--count", type=int, default=3)
    pg.add_argument("-W", "--timeout", type=float, default=1.0)
    pg.add_argument("-I", "--source")
    pg.set_defaults(func=_guarded(_ping))

    from . import demo  # imports the demo instruments only here

    dm = sub.add_parser(
        "demo",
        help="run the mobile node through A, B, C and home with live TCP streams; report",
        description=(demo.__doc__ or "").split("\n\n")[0],
    )
    demo.add_arguments(dm)
    dm.set_defaults(func=_guarded(demo.run))


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report lab errors as one line on stderr and exit status 2, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except LabError as exc:
            print(f"mip4 lab: {exc}", file=sys.stderr)
            return 2

    return run


def _pick(args: argparse.Namespace) -> Lab:
    lab_id = args.id
    if lab_id is None:
        labs = existing_labs(args.run_dir)
        if len(labs) != 1:
            found = ", ".join(labs) or "none"
            raise LabError(f"give --id: {len(labs)} labs exist ({found})")
        lab_id = labs[0]
    return Lab.load(lab_id, args.run_dir)


def _up(args: argparse.Namespace) -> int:
    lab_id = args.id or secrets.token_hex(2)
    topology = AAA if args.aaa else DEFAULT  # issue 11: a second home agent, ha2
    lab = Lab(lab_id, topology, ingress_filter=args.ingress_filter, run_dir=args.run_dir)
    lab.up()
    if args.aaa:
        try:
            radius = start_lab_radius(lab, lab.state_dir / "radius", detach=True)
        except BaseException as exc:
            lab.down()
            raise LabError(f"FreeRADIUS did not start: {str(exc)[:400]}") from None
        print(
            f"FreeRADIUS is up in {lab.ns(RADIUS_NODE)} at {radius.config.address}"
            f" (ports {radius.config.auth_port}/{radius.config.acct_port}); its configuration,"
            f" log and accounting detail in {radius.config.directory}"
        )
    print(f"lab {lab.lab_id} is up; state in {lab.state_file}")
    print(f"  nodes: {' '.join(lab.topology.node_keys())}; try: mip4 lab ping cn 10.1.0.100")
    if args.aaa:
        has = " and ".join(f"{n} ({lab.address(n)})" for n in lab.topology.home_agents())
        print(f"  home agents: {has}; their files: mip4 lab configs --aaa --out DIR")
    return 0


def _down(args: argparse.Namespace) -> int:
    ids = existing_labs(args.run_dir) if args.all else [args.id] if args.id else None
    if ids is None:
        ids = [_pick(args).lab_id]
    for lab_id in ids:
        gone = Lab(lab_id, run_dir=args.run_dir).down()
        print(f"lab {lab_id}: removed {len(gone)} namespace(s)")
    return 0


def _status(args: argparse.Namespace) -> int:
    lab = _pick(args)
    st = lab.status()
    if args.json:
        print(json.dumps({**st, "lab": lab.describe()}, indent=2))
        return 0
    print(f"lab {st['id']} ({st['status']}), state file {st['state_file']}")
    print(f"  mobile node on network {st['mobile']['net']!r}")
    for key, ok in st["namespaces"].items():
        pids = st["processes"].get(key, [])
        extra = f", {len(pids)} process(es)" if pids else ""
        print(f"  {key:4} {lab.ns(key):14} {'present' if ok else 'MISSING'}{extra}")
    if st["leftovers"]:
        print(f"  leftovers: {' '.join(st['leftovers'])}")
    return 0 if all(st["namespaces"].values()) else 1


def _exec(args: argparse.Namespace) -> int:
    lab = _pick(args)
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise LabError("nothing to run: mip4 lab exec NODE -- CMD...")
    argv = ["ip", "netns", "exec", lab.ns(args.node), *cmd]
    try:
        proc = subprocess.Popen(argv, preexec_fn=_die_with_parent(os.getpid()))
    except OSError as exc:
        raise LabError(f"cannot run {argv[0]}: {exc.strerror}") from None
    return _wait_forwarding(proc)


#: what ``mip4 lab exec`` passes on to its command (SIGKILL cannot be caught: for that the
#: command gets SIGTERM from the kernel when this process dies, see :func:`_die_with_parent`)
FORWARDED = (
    signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
)  # fmt: skip
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGTERM when ``parent`` dies, however it dies
    (``prctl(PR_SET_PDEATHSIG)``, kept across ``ip netns exec``'s exec of the command)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _wait_forwarding(proc: subprocess.Popen[bytes]) -> int:
    """Wait for ``proc``, passing on every signal of :data:`FORWARDED` this process gets
    (the command, not ``mip4 lab exec``, decides what a signal does); its exit status
    (128 + N for a command killed by signal N, as a shell reports it)."""

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        old = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        code = proc.wait()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def _move(args: argparse.Namespace) -> int:
    lab = _pick(args)
    lab.control_dir = args.control_dir
    lab.move(args.net, dhcp=True, anticipate=args.anticipate, source_trigger=args.source_trigger)
    colocated = lab.topology.network(args.net).colocated
    extra = f" (co-located care-of address {colocated} configured)" if colocated else ""
    print(f"mobile node now on network {args.net!r}{extra}")
    return 0


def _mip4_command() -> str:
    """How to run this mip4 from a shell inside a namespace (the venv need not be active)."""
    script = Path(sys.executable).parent / "mip4"
    return str(script) if script.exists() else f"{sys.executable} -m mip4.cli"


def _configs(args: argparse.Namespace) -> int:
    topology = AAA if args.aaa else DEFAULT
    lab = Lab(args.id, topology, run_dir=args.run_dir) if args.id else _pick(args)
    paths = write_lab_configs(lab, args.out, aaa=args.aaa)
    for node, path in paths.items():
        print(f"{node}: {path}")
    mip4 = _mip4_command()
    up = f"{mip4} lab up --id {lab.lab_id}" + (" --aaa" if args.aaa else "")
    print(f"start the daemons on lab {lab.lab_id} (`{up}` first):")
    for node, path in paths.items():
        run = f"{mip4} {LAB_ROLES[node]} --config {path}"
        print(f"  {mip4} lab exec --id {lab.lab_id} {node} -- {run} &")
    return 0


def _ping(args: argparse.Namespace) -> int:
    lab = _pick(args)
    rtts = lab.ping(args.node, args.dst, count=args.count, timeout=args.timeout, src=args.source)
    for rtt in rtts:
        print(f"reply from {args.dst}: time={rtt * 1000:.2f} ms")
    print(f"{len(rtts)}/{min(args.count, 100)} replies")
    return 0 if rtts else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mip4.lab ...`` (the same as ``mip4 lab ...``)."""
    parser = argparse.ArgumentParser(prog="mip4")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    status: int = args.func(args)
    return status
