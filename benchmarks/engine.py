"""The home agent engine alone (no I/O): registrations/s, memory per binding and SA, the
longest garbage-collection pause and timer call, at 1,000 and 1,000,000 bindings, against
decode+verify measured in the same run. A thin wrapper around
:mod:`mip4.tools.bench_registrations.engine`::

    .venv/bin/python benchmarks/engine.py [--json] [--bindings 1000,1000000]
"""

from __future__ import annotations

import sys

from mip4.tools.bench_registrations.engine import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
