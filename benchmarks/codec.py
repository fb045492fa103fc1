"""Codec benchmark: mip4 against scapy (decode, encode, sign, verify of a Registration
Request with an MN-HA extension). A thin wrapper around ``mip4 bench codec``::

    .venv/bin/python benchmarks/codec.py [--json] [--repeat N] [--iterations N] [--cpu N]
"""

from __future__ import annotations

import sys

from mip4.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "codec", *sys.argv[1:]]))
