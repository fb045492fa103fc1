"""mip4.lab: a reproducible virtual internet in network namespaces.

::

    mip4 lab up --id demo --ingress-filter    # CN, router, home/A/B/C networks, HA, FA1, FA2, MN
    mip4 lab ping cn 10.1.0.100               # ICMP echo from the correspondent to the MN
    mip4 lab move a                           # the MN's link moves to foreign network A
    mip4 lab exec mn -- ip route              # any command inside a node
    mip4 lab status                           # what exists; --json for names and addresses
    mip4 lab down                             # idempotent; also removes crash leftovers

The same from Python (tests, the demo, the daemons' launcher)::

    from mip4.lab import Lab

    with Lab("demo", ingress_filter=True) as lab:    # always torn down
        lab.move("a")
        lab.ping("cn", lab.address("mn"))
        ns_name = lab.ns("ha"); ifname = lab.ifname("ha")

:mod:`mip4.lab.topology` describes the networks and addresses, :mod:`mip4.lab.build` makes
and removes them, :mod:`mip4.lab.cli` is the command line (``register(subparsers)``).
On top of it:

===============================  ==========================================================
:mod:`mip4.lab.configs`          the daemons' TOML files for a lab (``mip4 lab configs``)
:mod:`mip4.lab.scenario`         a lab with its agents running: move, wait, status
:mod:`mip4.lab.backend`          what a scenario runs, the ``Backend`` protocol, its status
:mod:`mip4.lab.daemons`          backend: ``mip4 ha|fa|mn`` processes in the namespaces
:mod:`mip4.lab.inprocess`        backend: the engines on an asyncio loop in this process
:mod:`mip4.lab.engines`          a lab node's engine and NodeIO (also for the benchmarks)
:mod:`mip4.lab.capture`          ``tshark`` on the bridges, temporary nftables tables
:mod:`mip4.lab.demo`             ``mip4 lab demo``
===============================  ==========================================================
"""

from .build import Lab, LabError
from .topology import DEFAULT, Topology

__all__ = ["DEFAULT", "Lab", "LabError", "Topology"]
