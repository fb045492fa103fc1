"""``mip4 bench codec``: how fast the codec is, against scapy in the same run.

The workload is one Registration Request (RFC 5944 §3.3) with an MN-NAI extension and an
MN-HA authentication extension (HMAC-MD5, RFC 5944 §3.5.2). Each operation is timed with
``timeit.repeat`` and the best of N repeats is kept (the least disturbed run); the process
is pinned to one CPU when the platform allows it (``os.sched_setaffinity``). Times are the
process's CPU time by default (``--clock cpu``): on a machine shared with other work, wall
time also counts the slices other processes take from the pinned core.

=========== ===================================== =================================================
operation   mip4                                  scapy
=========== ===================================== =================================================
decode      ``decode_message(raw)``               ``MobileIP(raw)`` (dissects MobileIPRRQ + Raw)
decode+read decode, then read every field and       ``MobileIP(raw)``, then read every field
            every extension's fields                (scapy converts fields on access too)
encode      ``request.encode()``                  ``bytes(MobileIP()/MobileIPRRQ(...)/Raw(exts))``
sign        ``sign(request, MN-HA, sa)``          the scapy build + ``hmac.digest`` + append
verify      ``verify(decode_message(raw), 32,..)`` ``MobileIP(raw)`` + ``hmac.digest`` + compare
=========== ===================================== =================================================

mip4's decoder checks every byte up front but builds address and extension objects on first
read (``mip4.wire.messages``, "Lazy fields"), so ``decode`` is what a relaying agent pays and
``decode+read`` what a consumer of every field pays; both are shown.

``sign+verify`` is the two together (a round trip through an authenticated exchange).
Targets (on one core): decode at least 50x scapy's dissect; sign+verify at least 20x scapy
with hmac. Not a unit test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import hmac
import importlib
import importlib.util
import json
import os
import platform
import struct
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, cast

from mip4.security.auth import sign, verify
from mip4.security.sa import SecurityAssociation
from mip4.wire.extensions import MobileHomeAuthExtension, MobileNodeNAIExtension
from mip4.wire.messages import RegistrationFlags, RegistrationRequest, decode_message

TARGETS = {"decode": 50.0, "sign+verify": 20.0}
OPERATIONS = ("decode", "decode+read", "encode", "sign", "verify", "sign+verify")
TIMED = OPERATIONS[:-1]  #: sign+verify is computed from sign and verify

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
SPI = 0x1000
SA = SecurityAssociation(SPI, KEY)
FIELDS: dict[str, Any] = {
    "flags": int(RegistrationFlags.T),
    "lifetime": 1800,
    "homeaddr": "10.1.0.10",
    "haaddr": "10.1.0.1",
    "coaddr": "10.2.0.1",
    "id": 0xEEB3EF405EED0001,
}
NAI = b"mn1@example.net"


def workload() -> tuple[RegistrationRequest, RegistrationRequest, bytes]:
    """(unsigned request, signed request, signed request's bytes)."""
    unsigned = RegistrationRequest(
        flags=RegistrationFlags(FIELDS["flags"]),
        lifetime=int(FIELDS["lifetime"]),
        home_address=IPv4Address(FIELDS["homeaddr"]),
        home_agent=IPv4Address(FIELDS["haaddr"]),
        care_of_address=IPv4Address(FIELDS["coaddr"]),
        identification=int(FIELDS["id"]),
        extensions=(MobileNodeNAIExtension(NAI),),
    )
    signed = sign(unsigned, MobileHomeAuthExtension, SA)
    return unsigned, signed, signed.raw


def mip4_operations() -> dict[str, Callable[[], object]]:
    unsigned, signed, raw = workload()
    built = RegistrationRequest(**{f: getattr(signed, f) for f in _FIELD_NAMES})
    lookup = {SPI: SA}.get

    def do_verify() -> object:
        return verify(cast(RegistrationRequest, decode_message(raw)), 32, lookup)

    def decode_read() -> object:
        m = cast(RegistrationRequest, decode_message(raw))
        nai, auth = m.extensions
        return (
            m.flags, m.lifetime, m.home_address, m.home_agent, m.care_of_address,
            m.identification, nai.nai, auth.spi, auth.authenticator,  # type: ignore[attr-defined]
        )  # fmt: skip

    return {
        "decode": lambda: decode_message(raw),
        "decode+read": decode_read,
        "encode": built.encode,
        "sign": lambda: sign(unsigned, MobileHomeAuthExtension, SA),
        "verify": do_verify,
    }


_FIELD_NAMES = (
    "flags",
    "lifetime",
    "home_address",
    "home_agent",
    "care_of_address",
    "identification",
    "extensions",
)


def scapy_operations() -> dict[str, Callable[[], object]] | None:
    """The same operations with scapy, or ``None`` if scapy is not installed."""
    try:
        from scapy.layers.mobileip import MobileIP, MobileIPRRQ
        from scapy.packet import Raw
    except ImportError:
        return None
    _, _, raw = workload()
    nai_ext = bytes((131, len(NAI))) + NAI
    auth_hdr = struct.pack("!BBI", 32, 20, SPI)
    all_exts = raw[24:]
    digest = hmac.digest
    compare = hmac.compare_digest

    def build() -> bytes:
        return bytes(MobileIP() / MobileIPRRQ(**FIELDS) / Raw(all_exts))

    def sign_() -> bytes:
        covered = bytes(MobileIP() / MobileIPRRQ(**FIELDS) / Raw(nai_ext)) + auth_hdr
        return covered + digest(KEY, covered, "md5")

    def verify_() -> bool:
        p = MobileIP(raw)
        data = bytes(p[Raw].load)  # the extension area, as scapy leaves it
        spi_end = 24 + len(data) - 16
        if not compare(digest(KEY, raw[:spi_end], "md5"), raw[spi_end:]):
            raise AssertionError("scapy verify: bad authenticator")
        return True

    def decode_read() -> object:
        p = MobileIP(raw)
        q = p[MobileIPRRQ]
        return (q.flags, q.lifetime, q.homeaddr, q.haaddr, q.coaddr, q.id, p[Raw].load)

    if not (sign_() == raw and build() == raw and verify_()):  # the same work as ours
        raise RuntimeError("scapy side of the benchmark does not produce our bytes")
    return {
        "decode": lambda: MobileIP(raw),
        "decode+read": decode_read,
        "encode": build,
        "sign": sign_,
        "verify": verify_,
    }


CLOCKS: dict[str, Callable[[], float]] = {
    "cpu": time.process_time,  # this process's CPU time: steady on a shared machine
    "wall": time.perf_counter,
}


def _best(
    fn: Callable[[], object],
    repeat: int,
    number: int | None,
    min_time: float,
    clock: Callable[[], float] = time.process_time,
) -> float:
    """Best seconds per call over ``repeat`` runs of ``number`` calls (auto: each run lasts
    at least ``min_time``)."""
    timer = timeit.Timer(fn, timer=clock)
    if number is None:
        number = 1
        while True:
            if timer.timeit(number) >= min_time:
                break
            number *= 2 if number < 8 else 4
    runs = timer.repeat(repeat=repeat, number=number)
    return min(runs) / number


def pin_cpu(cpu: int | None) -> int | None:
    """Pin this process to one CPU (``cpu`` or the first allowed); the CPU, or ``None``."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    target = allowed[0] if cpu is None else cpu
    try:
        os.sched_setaffinity(0, {target})
    except OSError:
        return None
    return target


@dataclass
class Result:
    operation: str
    mip4: float  #: operations per second
    scapy: float | None
    target: float | None

    @property
    def ratio(self) -> float | None:
        return None if self.scapy is None else self.mip4 / self.scapy

    @property
    def met(self) -> bool | None:
        r = self.ratio
        return None if r is None or self.target is None else r >= self.target


def run_codec(
    repeat: int = 5,
    number: int | None = None,
    min_time: float = 0.2,
    use_scapy: bool = True,
    clock: str = "cpu",
) -> list[Result]:
    ours = mip4_operations()
    theirs = scapy_operations() if use_scapy else None
    timer = CLOCKS[clock]
    per_call: dict[str, tuple[float, float | None]] = {}
    for op in TIMED:
        a = _best(ours[op], repeat, number, min_time, timer)
        b = _best(theirs[op], repeat, number, min_time, timer) if theirs else None
        per_call[op] = (a, b)
    sa, sb = per_call["sign"]
    va, vb = per_call["verify"]
    per_call["sign+verify"] = (sa + va, None if sb is None or vb is None else sb + vb)
    return [
        Result(op, 1 / a, None if b is None else 1 / b, TARGETS.get(op))
        for op, (a, b) in per_call.items()
    ]


def format_table(results: list[Result], header: dict[str, Any]) -> str:
    lines = [
        f"mip4 codec benchmark: {header['workload']}",
        f"python {header['python']}, CPU {header['cpu']}, best of {header['repeat']} runs, "
        f"{header['clock']} clock",
        "",
        f"{'operation':<12} {'mip4 ops/s':>12} {'scapy ops/s':>12} {'ratio':>8}  target",
        "-" * 60,
    ]
    for r in results:
        scapy = f"{r.scapy:>12,.0f}" if r.scapy is not None else f"{'-':>12}"
        ratio = f"{r.ratio:>7.1f}x" if r.ratio is not None else f"{'-':>8}"
        target = ""
        if r.target is not None:
            verdict = {True: "met", False: "MISSED", None: "n/a"}[r.met]
            target = f">= {r.target:.0f}x {verdict}"
        lines.append(f"{r.operation:<12} {r.mip4:>12,.0f} {scapy} {ratio}  {target}")
    return "\n".join(lines)


def profile(op: str, calls: int, top: int = 15) -> str:
    """cProfile ``calls`` runs of mip4's ``op``; the ``top`` functions by own time."""
    import cProfile
    import io
    import pstats

    fn = mip4_operations()[op]
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return f"mip4 {op}: {calls} calls, by own time\n" + out.getvalue()


#: Other modules that add ``mip4 bench`` subcommands with ``register(subparsers)``; each is
#: added when it is installed (a benchmark that needs the lab may ship separately).
BENCH_MODULES: tuple[str, ...] = (
    "mip4.tools.bench_forwarding",
    "mip4.tools.bench_registrations",
    "mip4.tools.bench_registrations.bindings",  # mip4 bench bindings
)


def register(subparsers: Any) -> None:
    bench: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="benchmarks (mip4 bench codec, ...)",
        description="Benchmarks. Not tests: the numbers depend on the machine.",
    )
    sub = bench.add_subparsers(dest="bench", metavar="WHAT", required=True)
    p: argparse.ArgumentParser = sub.add_parser(
        "codec",
        help="decode/encode/sign/verify of a Registration Request, against scapy",
        description=(__doc__ or "").split("\n\n")[0],
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--repeat", type=int, default=5, help="runs per operation (best kept)")
    p.add_argument(
        "--iterations", type=int, default=None, help="calls per run (default: auto, >= min-time)"
    )
    p.add_argument("--min-time", type=float, default=0.2, help="seconds per run when auto")
    p.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: first allowed)")
    p.add_argument("--no-scapy", action="store_true", help="time mip4 only")
    p.add_argument(
        "--profile",
        choices=TIMED,
        metavar="OP",
        help="instead of timing, profile mip4's OP (decode, encode, sign, verify) with "
        "cProfile and print the functions that dominate",
    )
    p.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: process CPU time (default; steady when other work shares the core); "
        "wall: elapsed time",
    )
    p.set_defaults(func=run)
    for name in BENCH_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)


def run(args: argparse.Namespace) -> int:
    if args.repeat < 1 or (args.iterations is not None and args.iterations < 1):
        print("mip4 bench: --repeat and --iterations must be >= 1", file=sys.stderr)
        return 2
    cpu = pin_cpu(args.cpu)
    if args.profile:
        print(profile(args.profile, args.iterations or 100_000))
        return 0
    _, _, raw = workload()
    header: dict[str, Any] = {
        "workload": f"Registration Request + NAI + MN-HA (HMAC-MD5), {len(raw)} bytes",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu": cpu if cpu is not None else "not pinned",
        "repeat": args.repeat,
        "clock": args.clock,
    }
    results = run_codec(args.repeat, args.iterations, args.min_time, not args.no_scapy, args.clock)
    if args.json:
        out = dict(header)
        out["results"] = {
            r.operation: {
                "mip4_ops_per_s": r.mip4,
                "scapy_ops_per_s": r.scapy,
                "ratio": r.ratio,
                "target_ratio": r.target,
                "target_met": r.met,
            }
            for r in results
        }
        print(json.dumps(out, indent=2))
    else:
        print(format_table(results, header))
    return 0
