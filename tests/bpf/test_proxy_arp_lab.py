"""Proxy ARP answered by the bpf plane, with real devices (root, namespaces: ``lab``).

RFC 5944 §4.6: while a mobile node is away, its home agent answers ARP for the node's home
address on the home link, so the link's hosts send the node's datagrams to the agent, which
tunnels them; once the node is back, the agent stops. With the bpf plane ``mip4_agent``
answers from ``mip4_proxy``; the kernel holds no proxy neighbour entry (``ip neigh show
proxy`` is empty -- pyroute2's proxy dump is not usable, so ``ip`` is asked).

* The daemons of the lab (``mip4 ha`` with ``dataplane = "bpf"``): the router, a host on
  the home link, resolves the home address of the node away to the home agent's hardware
  address (``mip4 status`` counts the answer); the home agent killed (SIGKILL), still
  (issue 12 acceptance 4: ARP survives a crash as forwarding does); restarted, again once
  the node has registered with it; back home, the node's own address, and the agent
  answers no more.
* The lifecycle at the node's I/O (as ``tests/bpf/test_agent.py``): a killed agent
  (SIGKILL: the filter and the pinned maps stay) keeps answering; the next start
  reconciles the map against its binding table (empty: the entry goes, and the address is
  no longer answered) and answers again what it is asked to; a clean stop leaves no pin,
  filter or clsact hook.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from ipaddress import IPv4Address as A
from pathlib import Path

import pytest

from mip4.core.actions import ProxyArp
from mip4.io.bpf.plane import BpfPlane, Event
from mip4.io.icmpsock import ping
from mip4.io.netns import Netns
from mip4.io.runtime import NodeIO

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]


def proxy_entries(ns: str) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "ip", "neigh", "show", "proxy"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return out.stdout.strip()


def resolve(host: Netns, ifname: str, address: A, *, within: float = 3.0) -> bytes | None:
    """The hardware address ``host`` finds for ``address`` on ``ifname`` after forgetting
    what it knew: its echo requests make it ARP (the echo itself need not be answered).
    Bounded: one echo request at a time, ``within`` seconds in all."""
    subprocess.run(
        ["ip", "netns", "exec", str(host.name), "ip", "neigh", "flush", "to", str(address)],
        check=True,
        timeout=10,
    )
    deadline = time.monotonic() + within
    while True:
        ping(address, netns=host.name, timeout=0.5)
        found = host.neighbour(ifname, address)
        if found is not None or time.monotonic() >= deadline:
            return found


# -- the daemons ------------------------------------------------------------------------


def test_the_home_agent_daemon_answers_for_a_node_away_and_not_once_it_is_back(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mip4.lab.daemons import DaemonBackend
    from mip4.lab.scenario import Scenario, Settings

    monkeypatch.setenv("MIP4_LAB_DATAPLANE", "bpf")
    lifetime = 8  # the node registers again with the restarted agent within it
    with Scenario(Settings(prefix[2:], lifetime=lifetime)) as sc:
        lab, agents = sc.lab, sc.agents
        assert isinstance(agents, DaemonBackend)
        home = lab.address("mn")
        rtr, ha, mn = (Netns(lab.ns(node)) for node in ("rtr", "ha", "mn"))
        try:
            rtr_if = lab.ifname("rtr", "home")
            ha_mac = ha.link_address(lab.ifname("ha"))
            mn_mac = mn.link_address(lab.ifname("mn"))

            def answered() -> int:
                st = agents.status("ha")
                assert st is not None and st["dataplane"] == "bpf", st
                return int(st["fast_path"]["events"].get(Event.PROXY_ARP.name.lower(), 0))

            assert resolve(rtr, rtr_if, home) == mn_mac  # at home: the node answers
            assert sc.move("a").registered
            before = answered()
            assert resolve(rtr, rtr_if, home) == ha_mac  # away: the home agent
            assert answered() > before
            assert proxy_entries(lab.ns("ha")) == ""  # ... and not the kernel

            # killed: the filter and the pinned map still answer
            proc = agents.procs["ha"]
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            assert resolve(rtr, rtr_if, home) == ha_mac
            # restarted (its binding table empty: the map reconciled), then the node's
            # registration with it makes the entry again
            agents.restart("ha", signal.SIGKILL)
            sc.wait(
                lambda: [b.home_address for b in sc.ha_status().bindings] == [str(home)],
                lifetime + 4,
                "the mobile node to register with the restarted home agent",
            )
            assert resolve(rtr, rtr_if, home) == ha_mac
            assert answered() > 0  # the restarted daemon's program
            assert proxy_entries(lab.ns("ha")) == ""

            assert sc.move("home").registered  # deregistered
            before = answered()
            assert resolve(rtr, rtr_if, home) == mn_mac
            assert answered() == before
            assert proxy_entries(lab.ns("ha")) == ""
        finally:
            for ns in (rtr, ha, mn):
                ns.close()


# -- the lifecycle ----------------------------------------------------------------------

HA_ADDR, HOST, NODE = A("10.40.0.1"), A("10.40.0.2"), A("10.40.0.77")


def _open_ha(ha: Netns, pins: Path) -> NodeIO:
    return NodeIO.open(
        ha.name,
        ["h0"],
        tun_name="mip4arp-t",
        tunnel_source=HA_ADDR,
        forwarding=True,
        dataplane="bpf",
        bpf_pin_dir=pins,
    )


def test_answering_survives_a_kill_and_the_next_start_reconciles_it(
    make_netns: MakeNetns, bpffs: Path
) -> None:
    host, ha = make_netns("host"), make_netns("ha")
    host.add_veth("c0", "h0", ha)
    for ns, dev, addr in [(host, "c0", f"{HOST}/24"), (ha, "h0", f"{HA_ADDR}/24")]:
        ns.set_up(dev)
        ns.add_address(dev, addr)
    ha_mac = ha.link_address("h0")
    pins = bpffs / "ha"
    h0 = ha.index("h0")

    first = _open_ha(ha, pins)
    assert first.fast_path is not None
    assert resolve(host, "c0", NODE, within=1.0) is None  # nobody answers for it
    first.executor.execute(ProxyArp("h0", NODE, True))
    assert first.fast_path.plane.proxies() == {(NODE, h0): ha_mac}
    assert resolve(host, "c0", NODE) == ha_mac
    assert proxy_entries(str(ha.name)) == ""
    assert first.fast_path.plane.events()[Event.PROXY_ARP] >= 1

    first.abandon()  # SIGKILL: the filter and the pinned maps stay, and answer
    assert resolve(host, "c0", NODE) == ha_mac

    with _open_ha(ha, pins) as again:  # its binding table is empty
        assert again.fast_path is not None
        assert again.fast_path.plane.proxies() == {}
        assert resolve(host, "c0", NODE, within=1.0) is None
        again.executor.execute(ProxyArp("h0", NODE, True))
        assert resolve(host, "c0", NODE) == ha_mac
        again.executor.execute(ProxyArp("h0", NODE, False))
        assert again.fast_path.plane.proxies() == {}
        assert resolve(host, "c0", NODE, within=1.0) is None
        again.executor.execute(ProxyArp("h0", NODE, True))
    # a clean stop: no filter, hook, pin -- nobody answers
    assert ha.run(lambda: BpfPlane.attached(h0)) == 0
    assert "clsact" not in ha.exec(["tc", "qdisc", "show"]).stdout
    assert not pins.exists()  # no pin, nor the directory made for them
    assert resolve(host, "c0", NODE, within=1.0) is None
    assert proxy_entries(str(ha.name)) == ""
