"""Registration benchmark: a compiled load generator drives a real ``mip4 ha`` in a network
namespace; accepted renewals and first registrations per second against an asyncio UDP echo
server between the same namespaces, in the same run; and renewals under a flood of forged
requests against the renewals alone (``--no-flood`` to skip). A thin wrapper around
:mod:`mip4.tools.bench_registrations`::

    sudo .venv/bin/python benchmarks/registrations.py [--json] [--sas 1000,1000000] [--duration S]
"""

from __future__ import annotations

import sys

from mip4.tools.bench_registrations import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
