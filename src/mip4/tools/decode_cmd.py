"""``mip4 decode``: decode Mobile IP messages from hex, a raw message file or a capture."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from . import render
from .decode import (
    EXIT_OK,
    EXIT_STRICT,
    EXIT_UNREADABLE,
    EXIT_USAGE,
    InputError,
    KeyRing,
    decode_all,
    has_problem,
    load_input,
    parse_key,
    read_text_input,
)

EPILOG = """\
input:
  FILE is a pcap or pcapng capture (recognised by its magic number), or a raw message:
  a UDP-434 payload, an ICMP type 9/10 message, or a whole IPv4 packet. Captures may use
  Ethernet, Linux cooked (SLL, SLL2), raw IP or loopback link types; UDP port 434
  payloads and ICMP types 9 and 10 are decoded, everything else is skipped. Fragmented
  IPv4 datagrams are reassembled (reported at the frame that completes them; one is given
  up past 65,535 bytes, 8,192 fragments or 30 s of capture time). A capture is read as it
  comes, so `tcpdump -U -w - port 434 | mip4 decode -` prints each message as it is
  captured; FILE may be a pipe too, not a device. A record the reader cannot take (an
  undeclared pcapng interface, a captured length larger than its record) is reported with
  its file offset; an unsupported link type once.

keys:
  --key 257=00112233445566778899aabbccddeeff            HMAC-MD5 (the default)
  --key 0x101=00112233445566778899aabbccddeeff:keyed-md5 RFC 2002 prefix+suffix MD5
  --key 2=73656372657400                                 MN-AAA CHAP secret (SPI 2)
  Each authentication extension (32, 33, 34, 36) is reported `verified: true` or
  `verified: false`, or `verified: null` with a reason when no key applies (the same
  words in the text output and in --json).

--json, one object per line:
  frame, time, time_iso, src, dst, sport, dport, payload_offset   (captures / IPv4 input)
  protocol ("udp" | "icmp"), type, name, length
  fields       the message's fields: addresses dotted, bytes hex, flags as a number plus
               <name>_names; <name>_text for printable bytes; identification_ntp
  extensions   [{type, name, offset, fields, verified?, reason?, skipped?, note?}]
  reassembled_from                frames of a reassembled datagram (no frame_offset then)
  error, offset, frame_offset     a malformed message or frame (the rest goes on);
                                  fragments: the frames of a datagram never completed
                                  or given up; file_offset: where a record the reader
                                  could not take starts in the file
  discarded, unknown_extension_type, note    unknown non-skippable extension (RFC 5944 §1.9)

exit status:
  0  the input was read; every message found was reported, even malformed ones
  1  the input could not be read (no such file, a device, not hex, empty, corrupt
     capture header)
  2  bad command line (a bad --key, no input, both FILE and --hex)
  3  with --strict: some message was malformed, discarded, or failed verification
"""


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "decode",
        help="decode Mobile IP messages (hex, raw file, pcap, pcapng)",
        description="Decode Mobile IPv4 messages and verify their authenticators.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="capture or raw message; - = stdin")
    p.add_argument(
        "--hex",
        nargs="?",
        const="-",
        metavar="HEX",
        help="decode this hex string (without a value: read hex text from stdin)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per message")
    p.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="SPI=HEX[:ALG]",
        help="a key to verify authenticators with (repeatable; ALG hmac-md5 or keyed-md5)",
    )
    p.add_argument("--strict", action="store_true", help="exit 3 if any message has a problem")
    p.set_defaults(func=run)


def parse_keys(texts: list[str]) -> KeyRing:
    ring = KeyRing()
    for t in texts:
        ring.add(parse_key(t))
    return ring


def emit(objs: Iterator[dict[str, Any]], as_json: bool, out: TextIO) -> tuple[int, bool]:
    """Print each object; return (count, any problem)."""
    n, problem, counts = 0, False, render.Summary()
    for obj in objs:
        n += 1
        problem = problem or has_problem(obj)
        if as_json:
            out.write(json.dumps(obj, sort_keys=False) + "\n")
        else:
            out.write(render.render(obj) + "\n\n")
            counts.add(obj)
        out.flush()
    if not as_json:
        out.write(f"{counts}\n")
    return n, problem


def run(args: argparse.Namespace) -> int:
    if args.file is not None and args.hex is not None and args.hex != "-":
        print("mip4 decode: give either FILE or --hex, not both", file=sys.stderr)
        return EXIT_USAGE
    if args.file is None and args.hex is None:
        print("mip4 decode: no input: give FILE, '-' (stdin) or --hex HEX", file=sys.stderr)
        return EXIT_USAGE
    try:
        keys = parse_keys(args.key)
    except ValueError as e:
        print(f"mip4 decode: --key {e}", file=sys.stderr)
        return EXIT_USAGE
    hex_text = args.hex
    try:
        if hex_text == "-" and args.file is not None:  # --hex FILE: the file holds hex text
            hex_text = read_text_input(args.file)
        payloads = load_input(args.file, hex_text, sys.stdin)
    except InputError as e:
        print(f"mip4 decode: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    _, problem = emit(decode_all(payloads, keys), args.json, sys.stdout)
    return EXIT_STRICT if args.strict and problem else EXIT_OK
