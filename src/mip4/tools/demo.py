"""``mip4 demo``: until the namespace lab exists, decode the bundled sample capture
(:mod:`mip4.tools.sample`) with its keys and print what the decoder sees."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .decode import EXIT_UNREADABLE, InputError, decode_all, load_input
from .decode_cmd import emit, parse_keys
from .sample import SAMPLE_KEYS, sample_path

INTRO = """\
mip4 demo: the bundled capture, decoded and checked with its keys.
  frames 1-2   agent solicitation and advertisement (mobility extension, challenge)
  frames 3-6   a registration through a foreign agent: MN -> FA -> HA -> FA -> MN,
               MN-HA / MN-FA / FA-HA authenticators verified at every hop
  frame 7      the request tampered with in flight: its authenticators fail
  frame 8      a request cut short: reported with its offset, decoding goes on
  frame 9      unknown non-skippable extension 99: would be discarded (RFC 5944 §1.9)
  frame 10     the home agent denies a request: identification mismatch (133)
  frames 11-12 registration revocation and its acknowledgement (RFC 3543)
"""


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="decode the bundled sample capture with its keys",
        description=(
            "Decode the bundled sample capture (a registration through a foreign agent, plus "
            "a tampered, a truncated and a discarded request) and verify its authenticators."
        ),
    )
    p.add_argument("--json", action="store_true", help="one JSON object per message")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = sample_path()
    keys = parse_keys(list(SAMPLE_KEYS))
    if not args.json:
        print(INTRO)
    print(f"# mip4 decode {path} " + " ".join(f"--key {k}" for k in SAMPLE_KEYS), flush=True)
    try:
        payloads = load_input(str(path), None)
    except InputError as e:
        print(f"mip4 demo: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    emit(decode_all(payloads, keys), args.json, sys.stdout)
    return 0
