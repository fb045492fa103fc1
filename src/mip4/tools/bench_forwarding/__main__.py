"""``python -m mip4.tools.bench_forwarding``: the command line, and the workers' entry point."""

from __future__ import annotations

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
