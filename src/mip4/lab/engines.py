"""The engine and the :class:`~mip4.io.runtime.NodeIO` of each lab node, built one way for
the in-process scenario backend (:mod:`mip4.lab.inprocess`), the forwarding benchmark's
workers (``mip4 bench forwarding``) and the lab engine tests: :func:`lab_engine` and
:func:`lab_node_io`.
"""

from __future__ import annotations

import time
from ipaddress import IPv4Network

from mip4.core.actions import Encapsulation
from mip4.core.foreign_agent import ForeignAgent, ForeignAgentConfig, VisitedLink
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.core.mobile_node import MobileNode, MobileNodeConfig, ReverseTunnel
from mip4.io.runtime import NodeIO
from mip4.security.sa import SecurityAssociation, SecurityAssociations

from .backend import ENCAPSULATIONS, Settings
from .build import Lab
from .configs import LAB_KEY, LAB_SPI

#: the mobile node-home agent security association of the lab (RFC 5944 §3.5.1)
MN_HA_SPI = LAB_SPI
MN_HA_KEY = LAB_KEY


def lab_engine(lab: Lab, key: str, s: Settings) -> HomeAgent | ForeignAgent | MobileNode:
    """The engine of lab node ``key`` (``ha``, ``fa1``, ``fa2``, ``mn``) as ``s`` configures
    it, with the lab's mobile node-home agent security association."""
    home = lab.topology.network("home")
    mn_ip, ha_ip = lab.address("mn"), lab.address("ha")
    offset = time.time() - time.monotonic()
    sa = SecurityAssociation(spi=MN_HA_SPI, key=MN_HA_KEY)
    if key == "ha":
        sas = SecurityAssociations()
        sas.add(mn_ip, sa)
        return HomeAgent(
            HomeAgentConfig(
                address=ha_ip,
                home_network=home.subnet,
                interface=lab.ifname("ha"),
                advertisement_interval=s.advertisement_interval,
            ),
            sas,
            offset,
        )
    if key in ("fa1", "fa2"):
        return ForeignAgent(
            ForeignAgentConfig(
                links=(VisitedLink(lab.ifname(key), lab.address(key), 24),),
                advertisement_interval=s.advertisement_interval,
            ),
            SecurityAssociations(),
        )
    encs = [ENCAPSULATIONS[s.encapsulation]]
    if encs[0] is not Encapsulation.IPIP:
        encs.append(Encapsulation.IPIP)
    return MobileNode(
        MobileNodeConfig(
            home_address=mn_ip,
            home_agent=ha_ip,
            reverse_tunnel=ReverseTunnel.PREFER if s.reverse_tunnel else ReverseTunnel.OFF,
            encapsulations=tuple(encs),
            lifetime=s.lifetime,
            broadcast=s.broadcast,
        ),
        sa,
        offset,
    )


def lab_node_io(lab: Lab, key: str) -> NodeIO:
    """:meth:`NodeIO.open` for lab node ``key`` with the options its role needs (TUN device
    ``<prefix>t`` in every node)."""
    tun = f"{lab.prefix}t"
    if key == "ha":
        return NodeIO.open(
            lab.ns("ha"),
            [lab.ifname("ha")],
            tun_name=tun,
            tunnel_source=lab.address("ha"),
            link_sources=True,
            forwarding=True,
        )
    if key in ("fa1", "fa2"):
        return NodeIO.open(
            lab.ns(key), [lab.ifname(key)], tun_name=tun, link_sources=True, forwarding=True
        )
    home = lab.topology.network("home")
    return NodeIO.open(
        lab.ns("mn"),
        [lab.ifname("mn")],
        tun_name=tun,
        home_gateway=home.gateway,
        home_network=IPv4Network(home.subnet),
        icmp_errors=True,
        watch_links=True,
        ignore_addresses=frozenset({lab.address("mn")}),
    )
