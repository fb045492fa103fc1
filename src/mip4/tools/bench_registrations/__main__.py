"""``python -m mip4.tools.bench_registrations``: the command line, and the echo server."""

from __future__ import annotations

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
