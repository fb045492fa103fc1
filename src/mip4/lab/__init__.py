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
"""

from .build import Lab, LabError
from .topology import DEFAULT, Topology

__all__ = ["DEFAULT", "Lab", "LabError", "Topology"]
