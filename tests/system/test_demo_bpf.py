"""The demo with the home agent on the tc-BPF plane (issue 12): ``[io] dataplane = "bpf"``
in its configuration. Home → A (FA1) → B (FA2) → C (co-located) → home: both TCP
connections survive the four moves with every byte verified and no reset, the agent's
status says the bpf plane runs, and its fast path carried the tunnelled traffic (per-binding
counters from the per-CPU map) while the user-space plane behind it stayed the slow path.

The test sets ``[io] dataplane`` in each configuration text as the lab writes it (bpf for the
roles it puts on the bpf plane, userspace for the others, whatever ``MIP4_LAB_DATAPLANE``
says). And it turns the transmit offloads of the home
agent's home-link veth off (checksum, IPIP/GRE segmentation), as on a wire: a veth hands a
datagram whose checksum is still to be completed (``CHECKSUM_PARTIAL``) or a 64 KB GSO
packet on to the next namespace as it is, and the foreign agents' and the mobile node's
user-space planes read the tunnel through raw IP sockets, which cannot see that -- they
forwarded such datagrams with an unfinished inner checksum (every probe lost at FA1) or
too big for the link. A NIC completes both before the wire; the user-space plane, whose
TUN device has no offloads, never handed such datagrams on.

``test_every_role_on_the_bpf_plane``: the home agent, both foreign agents and the mobile
node on the bpf plane, offloads left on (the foreign agents and the node decapsulate in tc,
before any raw socket); the foreign agents' fast paths delivered to the visitor and the
node's decapsulated at C (their status counters)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyroute2.ethtool import Ethtool

import mip4.lab.configs as lab_configs_module
from mip4.io.netns import run_in_netns
from mip4.lab.configs import with_lab_dataplane
from mip4.lab.daemons import DaemonBackend
from mip4.lab.demo import ROUTE, run_demo
from mip4.lab.scenario import Settings

from .helpers import lab_id

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.usefixtures("needs_bpf")]

WIRE_FEATURES = (
    "tx-checksum-ip-generic",
    "tx-ipxip4-segmentation",
    "tx-gre-segmentation",
    "tx-gre-csum-segmentation",
    "tx-udp_tnl-segmentation",
)

EXPECTED_COA = {"a": "10.2.0.2", "b": "10.3.0.2", "c": "10.4.0.100", "home": None}


@pytest.mark.parametrize(
    ("encapsulation", "reverse_tunnel"),
    [("ipip", True), ("gre", False)],
    ids=["ipip-reverse", "gre-direct"],
)
def test_connections_survive_four_moves_with_the_bpf_plane(
    lab_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    encapsulation: str,
    reverse_tunnel: bool,
) -> None:
    _demo(lab_prefix, tmp_path, monkeypatch, encapsulation, reverse_tunnel, ("ha",), True)


def test_user_space_agents_behind_a_bpf_home_agent_with_offloads_on(
    lab_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The home agent on the bpf plane, the foreign agents and the node on the user-space
    plane, and the home agent's offloads left on: the tunnels carry inner datagrams whose
    checksum is still to be completed and 64 KB GSO super-packets, which the user-space
    planes' raw sockets read whole and without the kernel's flags. They repair them
    (mip4.dataplane.offload: checksum completed, TCP segmented to the link) before
    delivering them."""
    _demo(lab_prefix, tmp_path, monkeypatch, "ipip", True, ("ha",), False)


@pytest.mark.parametrize(
    ("encapsulation", "reverse_tunnel"),
    [("ipip", True), ("gre", True), ("minimal", False)],
    ids=["ipip-reverse", "gre-reverse", "minimal-direct"],
)
def test_every_role_on_the_bpf_plane(
    lab_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    encapsulation: str,
    reverse_tunnel: bool,
) -> None:
    """The home agent, both foreign agents and the mobile node (co-located at C) on the bpf
    plane, the home agent's offloads left on: the foreign agents decapsulate and deliver
    and the node decapsulates in tc, where a GSO packet or an unfinished checksum is no
    problem; each one's fast path carried the traffic (status counters)."""
    _demo(
        lab_prefix,
        tmp_path,
        monkeypatch,
        encapsulation,
        reverse_tunnel,
        ("ha", "fa1", "fa2", "mn"),
        False,
    )


def _demo(
    lab_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    encapsulation: str,
    reverse_tunnel: bool,
    on_bpf: tuple[str, ...],
    offloads_off: bool,
) -> None:
    original: Callable[..., dict[str, str]] = lab_configs_module.lab_configs

    def with_bpf(*args: Any, **kw: Any) -> dict[str, str]:
        texts = original(*args, **kw)
        for node in texts:
            assert texts[node].count("[io]\n") == 1
        # whatever MIP4_LAB_DATAPLANE says, the roles this test puts on the user-space
        # plane stay there
        bpf = with_lab_dataplane({n: t for n, t in texts.items() if n in on_bpf}, "bpf")
        user = with_lab_dataplane({n: t for n, t in texts.items() if n not in on_bpf}, "userspace")
        return bpf | user

    monkeypatch.setattr(lab_configs_module, "lab_configs", with_bpf)
    statuses: list[dict[str, Any]] = []
    others: dict[str, dict[str, Any]] = {}
    read_status = DaemonBackend.status

    def recording(self: DaemonBackend, node: str) -> dict[str, Any] | None:
        st = read_status(self, node)
        if node == "ha" and st is not None:
            statuses.append(st)
            for other in on_bpf:  # the others' fast path counters, as the run goes
                if other not in ("ha", "mn"):
                    others[other] = read_status(self, other) or others.get(other, {})
        elif st is not None:
            others[node] = st
        return st

    monkeypatch.setattr(DaemonBackend, "status", recording)
    start = DaemonBackend.start

    def wire_like(self: DaemonBackend) -> None:
        lab = self.lab
        dev = lab.ifname("ha", "home")

        def offloads_off() -> None:
            eth = Ethtool()
            try:
                feats = eth.get_features(dev)
                for name in WIRE_FEATURES:
                    if name in feats.features:
                        feats.features[name].enable = False
                eth.set_features(dev, feats)
            finally:
                eth.close()

        run_in_netns(lab.ns("ha"), offloads_off)
        start(self)

    if offloads_off:
        monkeypatch.setattr(DaemonBackend, "start", wire_like)

    settings = Settings(
        lab_id(lab_prefix), reverse_tunnel=reverse_tunnel, encapsulation=encapsulation
    )
    run = run_demo(settings, tmp_path / "out", dwell=2.5, log=lambda _line: None)
    report = run.report
    text = report.render_text()
    assert report.ok, text
    assert run.ok, run.problems
    assert report.resets == 0
    assert [m.move.to_net for m in report.moves] == list(ROUTE)
    for m in report.moves:
        assert m.move.registered, (m.move, text)
        assert m.move.care_of_address == EXPECTED_COA[m.move.to_net]
        assert m.recovered
        assert m.probes_lost < 0.75 * m.probes_sent, (m, text)
    assert len(report.connections) == 2
    for c in report.connections:
        assert c.client_outcome == c.server_outcome == "ok", c
        for d in c.directions:
            assert d.complete and d.mismatched == 0, d
            assert d.verified == d.sent > 100_000, d
            assert d.longest_gap_ms < 2500, (c.name, d.label, d.longest_gap_ms)
    for move, bindings in zip(report.moves, run.bindings_seen, strict=True):
        coa = EXPECTED_COA[move.move.to_net]
        assert [b["care_of_address"] for b in bindings] == ([] if coa is None else [coa])
    assert run.bindings_after_home == 0

    # the home agent ran the bpf plane, and its fast path carried the tunnelled traffic
    assert statuses, "no status of the home agent was read"
    st = statuses[-1]
    assert st["dataplane"] == "bpf", st.get("dataplane")
    events = st["fast_path"]["events"]
    assert events.get("encap", 0) > 1000, (events, run.ha_forwarder)
    assert events.get("error", 0) == 0, events
    if reverse_tunnel:
        # what came back through the reverse tunnels, forwarded by its program
        assert events.get("decap_forward", 0) > 100, events
    # what the user-space plane behind it still encapsulated: the slow path only
    assert run.ha_forwarder.get("encapsulated", 0) < events["encap"], (events, run.ha_forwarder)
    for node in on_bpf:
        if node != "ha":
            assert node in others, f"no status of {node} was read"
            assert others[node].get("dataplane") == "bpf", (node, others[node].get("dataplane"))
    if "fa1" in on_bpf:
        # the foreign agents decapsulated and delivered to the visitor in tc
        delivered = sum(
            others[fa]["fast_path"]["events"].get("decap_visitor", 0) for fa in ("fa1", "fa2")
        )
        assert delivered > 100, {fa: others[fa]["fast_path"] for fa in ("fa1", "fa2")}
        for fa in ("fa1", "fa2"):
            assert others[fa]["fast_path"]["events"].get("error", 0) == 0, others[fa]
    if "mn" in on_bpf:
        # co-located at C the node decapsulated in tc
        assert others["mn"]["fast_path"]["events"].get("decap", 0) > 100, others["mn"]
