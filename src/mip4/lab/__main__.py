"""``python -m mip4.lab up|down|status|exec|move|ping`` (same as ``mip4 lab ...``)."""

import sys

from .cli import main

sys.exit(main())
