"""Data-plane benchmark on the namespace lab: the home agent's tunnelled forwarding rate
(UDP 64- and 1400-byte payloads) and TCP goodput CN -> HA -> FA1 -> MN, against the direct
path in the same run. A thin wrapper around :mod:`mip4.tools.bench_forwarding`::

    sudo .venv/bin/python benchmarks/forwarding.py [--json] [--duration S] [--rate PPS]
"""

from __future__ import annotations

import sys

from mip4.tools.bench_forwarding import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
