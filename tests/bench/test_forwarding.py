"""Smoke test of ``mip4 bench forwarding``: a tiny run on a real lab checks the output's
shape (never the speed); the table is checked on made-up figures without a lab."""

from __future__ import annotations

import json

import pytest

from mip4.tools.bench_forwarding import (
    Measurement,
    format_table,
    main,
    per_packet,
    plane_cost,
    ratios,
)
from mip4.tools.bench_forwarding.report import encapsulation_ratios


def _made_up() -> list[Measurement]:
    cost = {"ha": {"cpu_user_s": 0.1, "cpu_sys_s": 0.2, "wall_s": 1.0, "packets": 10000.0}}
    return [
        Measurement("direct", "udp", 64, 1.0, 30000, 29000, 1.0),
        Measurement("tunnel", "udp", 64, 1.0, 30000, 10000, 1.0, cost=cost),
        Measurement("direct", "tcp", 0, 1.0, 1 << 30, 1 << 30, 2.0),
        Measurement("tunnel", "tcp", 0, 1.0, 1 << 24, 1 << 24, 2.0, cost=cost),
    ]


def test_table_and_ratios_from_made_up_figures() -> None:
    results = _made_up()
    r = {x["label"]: x for x in ratios(results)}
    assert r["UDP 64 B"]["pps_ratio"] == pytest.approx(10000 / 29000, rel=1e-3)
    assert r["TCP"]["pps_ratio"] is None
    assert r["TCP"]["mbit_ratio"] == pytest.approx(1 / 64, abs=1e-3)
    pp = per_packet(results)[0]
    assert pp["total_us"] == pytest.approx(30.0)
    assert pp["cpu_share"] == pytest.approx(0.3)
    assert pp["pps_one_cpu"] == pytest.approx(33333, abs=1)
    text = format_table(results, {"lab": "x"}, {"encapsulate_64": 1.0})
    for needle in ("pps sent", "pps delivered", "Mbit/s", "tunnel / direct", "66.7%", "30%"):
        assert needle in text
    assert results[1].loss == pytest.approx(2 / 3)


def test_ratios_against_both_baselines_and_the_planes_own_cost() -> None:
    """Each tunnelled path has ratios against direct (at home) and against the routed
    baseline with its hops (through FA1, or the co-located one); the routed paths have
    theirs against direct only; the table prints both and the plane's own CPU."""

    def m(path: str, traffic: str, delivered: int, cpu: float) -> Measurement:
        payload = 64 if traffic == "udp" else 0
        return Measurement(path, traffic, payload, 1.0, 10**6, delivered, 1.0, cpu_busy_s=cpu)

    results = [
        m("direct", "udp", 1000, 1.0),
        m("direct", "tcp", 10_000_000, 1.0),
        m("tunnel-bpf", "udp", 500, 1.0),
        m("tunnel-bpf", "tcp", 8_000_000, 1.0),
        m("routed", "udp", 625, 1.0),
        m("routed", "tcp", 9_000_000, 1.0),
        m("colocated-bpf", "udp", 550, 1.0),
        m("routed-colocated", "udp", 500, 1.0),
        m("colocated-gre", "udp", 100, 1.0),
    ]
    results[4].forwarded = {"ha": 625, "fa1": 625}
    rows = {(r["path"], r["label"]): r for r in ratios(results)}
    t = rows["tunnel-bpf", "UDP 64 B"]
    assert (t["pps_ratio"], t["routed_path"], t["routed_pps_ratio"]) == (0.5, "routed", 0.8)
    t = rows["tunnel-bpf", "TCP"]
    assert (t["mbit_ratio"], t["routed_mbit_ratio"]) == (0.8, pytest.approx(0.8889, abs=1e-4))
    c = rows["colocated-bpf", "UDP 64 B"]
    assert (c["pps_ratio"], c["routed_path"], c["routed_pps_ratio"]) == (
        0.55,
        "routed-colocated",
        1.1,
    )
    assert rows["colocated-gre", "UDP 64 B"]["routed_pps_ratio"] == 0.2
    # the baselines themselves: against direct only (the cost of the longer path)
    assert rows["routed", "UDP 64 B"]["pps_ratio"] == 0.625
    assert "routed_path" not in rows["routed", "UDP 64 B"]
    # no routed baseline measured: its columns are None, direct's stay
    alone = {r["path"]: r for r in ratios(results[:3])}["tunnel-bpf"]
    assert (alone["pps_ratio"], alone["routed_path"], alone["routed_pps_ratio"]) == (
        0.5,
        None,
        None,
    )
    own = {(c["path"], c["label"]): c for c in plane_cost(results)}
    assert own["tunnel-bpf", "UDP 64 B"]["plane_us"] == pytest.approx(1e6 / 500 - 1e6 / 625)
    assert ("routed", "UDP 64 B") not in own
    assert own["tunnel-bpf", "UDP 64 B"]["sender_plane_us"] is None  # no sender CPU known
    text = format_table(results, {"lab": "x"}, {})
    assert "routed  CN->HA->FA1->MN" in text and "routed  CN->HA->MN (C)" in text
    assert "tunnel / routed (the same hops" in text
    line = next(x for x in text.splitlines() if x.startswith("  tunnel-bpf         UDP 64 B "))
    assert "delivered pps x0.500" in line and line.endswith("|| pps x0.800, Mbit/s x0.800")
    assert "the data plane's own cost" in text
    assert "ha 625, fa1 625" in text


def test_each_direction_is_held_against_the_baselines_in_the_same_direction() -> None:
    """The node sending to the correspondent (``-up``: through the reverse tunnel) is its
    own row, against direct and routed in the same direction, and labelled so."""

    def m(path: str, traffic: str, delivered: int) -> Measurement:
        payload = 0 if traffic.startswith("tcp") else 64
        return Measurement(path, traffic, payload, 1.0, 10**6, delivered, 1.0)

    results = [
        m("direct", "udp", 1000),
        m("direct", "udp-up", 2000),
        m("direct", "tcp-up", 10_000_000),
        m("routed", "udp", 500),
        m("routed", "udp-up", 800),
        m("tunnel-bpf", "udp", 400),
        m("tunnel-bpf", "udp-up", 600),
        m("tunnel-bpf", "tcp-up", 9_000_000),
        m("tunnel-bpf-gre", "udp-up", 570),
    ]
    assert results[1].kind == "udp" and results[1].up and not results[0].up
    assert results[1].pps_delivered == 2000 and results[2].mbit_s == 80.0
    rows = {(r["path"], r["label"]): r for r in ratios(results)}
    down, up = rows["tunnel-bpf", "UDP 64 B"], rows["tunnel-bpf", "UDP 64 B up"]
    assert (down["pps_ratio"], down["routed_pps_ratio"]) == (0.4, 0.8)
    assert (up["pps_ratio"], up["routed_pps_ratio"]) == (0.3, 0.75)
    tcp = rows["tunnel-bpf", "TCP up"]
    assert (tcp["mbit_ratio"], tcp["routed_path"], tcp["routed_mbit_ratio"]) == (0.9, None, None)
    enc = {(e["path"], e["label"]): e for e in encapsulation_ratios(results)}
    assert enc["tunnel-bpf-gre", "UDP 64 B up"]["ratio"] == 0.95
    text = format_table(results, {"lab": "x"}, {})
    assert "UDP 64 B up" in text and "TCP up" in text


def test_the_planes_own_cost_from_the_senders_cpu() -> None:
    """The sender's CPU per datagram (the whole veth path, whatever else ran) gives the
    plane's own cost too: tunnelled minus routed, beside the machine's figure."""

    def m(path: str, delivered: int, sender: float) -> Measurement:
        x = Measurement(path, "udp", 64, 1.0, 10**6, delivered, 1.0, cpu_busy_s=1.0)
        x.sender_cpu_s = sender
        return x

    results = [m("direct", 1000, 0.008), m("tunnel-bpf", 800, 0.0104), m("routed", 700, 0.0098)]
    own = {c["path"]: c for c in plane_cost(results)}["tunnel-bpf"]
    assert (own["sender_us"], own["routed_sender_us"]) == (13.0, 14.0)
    assert own["sender_plane_us"] == pytest.approx(-1.0)
    text = format_table(results, {"lab": "x"}, {})
    line = next(x for x in text.splitlines() if x.startswith("  tunnel-bpf") and " - " in x)
    assert line.endswith("||  13.00 -  14.00 =  -1.00"), line


@pytest.mark.lab
@pytest.mark.slow
def test_tiny_run_on_the_lab(prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--json", "--lab-id", prefix[2:], "--duration", "0.3", "--count", "3000"]
    argv += ["--tcp-duration", "0.3", "--tcp-mib", "4", "--no-codec"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    results = out["results"]
    kinds = [(m["path"], m["traffic"], m["payload"]) for m in results]
    # both directions (issue 12): the node sends to the correspondent too, through the
    # reverse tunnel
    assert kinds == [
        (path, traffic + up, payload)
        for path in ("direct", "tunnel", "routed")
        for up in ("", "-up")
        for traffic, payload in (("udp", 64), ("udp", 1400), ("tcp", 0))
    ]
    for m in results:
        assert set(m) >= {"pps_sent", "pps_delivered", "loss", "mbit_s", "sent", "delivered"}
        assert m["sent"] <= (3000 if m["traffic"].startswith("udp") else 4 << 20)
        assert m["delivered"] > 0, m  # every path carries traffic, both ways
        if m["traffic"].startswith("udp"):  # the receiver's socket buffer, named by node
            receiver = "cn" if m["traffic"].endswith("-up") else "mn"
            assert {k for k in m["drops"] if k.endswith("_udp_rcvbuf")} == {
                f"{receiver}_udp_rcvbuf"
            }, m["drops"]
    labels = {"UDP 64 B", "UDP 1400 B", "TCP"}
    assert {r["label"] for r in out["ratios"]} == labels | {f"{x} up" for x in labels}
    assert out["directions"] == "down,up"
    assert {r["node"] for r in out["per_packet"]} == {"ha", "fa1"}
    # the routed baseline (the tunnel's hops, no Mobile IP): its datagrams crossed the home
    # agent's and FA1's kernels, and the tunnel has a ratio against it beside direct's
    for m in results:
        if m["path"] == "routed" and m["traffic"].startswith("udp"):
            assert min(m["forwarded"][n] for n in ("ha", "fa1")) >= m["delivered"], m
    tunnel = [r for r in out["ratios"] if r["path"] == "tunnel"]
    assert len(tunnel) == 6 and all(r["routed_path"] == "routed" for r in tunnel)
    assert all(r["routed_mbit_ratio"] > 0 and r["mbit_ratio"] > 0 for r in tunnel)
    assert out["routed TTL"] == "60 to / 60 from the node (64 - hops)"


@pytest.mark.lab
@pytest.mark.parametrize("net", ["a", "c"])
def test_the_routed_baseline_crosses_the_home_agent_and_fa1(prefix: str, net: str) -> None:
    """The routed baseline (issue 12: "direct on the same veths") takes the tunnelled path's
    hops: UDP probes arrive with TTL 64 - 4 both ways (router, HA, router, FA1; 64 - 3 on
    network C), the home agent's and FA1's kernels forward every datagram, and the proof
    fails once the router's policy routes are gone; everything is undone on exit."""
    from mip4.lab.build import Lab
    from mip4.tools.bench_forwarding.routed import (
        RoutedPath,
        RoutedPathError,
        check_forwarded,
        udp_ttl,
    )

    with Lab(prefix[2:], ingress_filter=True) as lab:
        lab.move(net, dhcp=True)
        cn = lab.address("cn")
        with RoutedPath(lab, net) as routed:
            assert routed.verify() == {"to_mn": 64 - len(routed.hops)} | {
                "from_mn": 64 - len(routed.hops)
            }
            assert routed.forwarders == (("ha", "fa1") if net == "a" else ("ha",))
            before = routed.forwarded()
            for _ in range(5):
                assert udp_ttl(lab, "cn", cn, "mn", routed.address) == routed.expected_ttl
            forwarded = check_forwarded(routed.path, before, routed.forwarded(), 5)
            assert all(n >= 5 for n in forwarded.values()), forwarded
            # and they sent no ICMP redirect (which would teach the node a way round FA1)
            for node in routed.forwarders:
                snmp = lab.exec(node, ["cat", "/proc/net/snmp"], check=True).stdout
                rows = [x.split() for x in snmp.splitlines() if x.startswith("IcmpMsg:")]
                out_redirects = dict(zip(*rows, strict=True)).get("OutType5", "0") if rows else "0"
                assert out_redirects == "0", (node, rows)
            # without the router's rules the datagrams go straight to the node: the proof
            # fails, loudly
            rules = lab.exec("rtr", ["ip", "rule", "show"], check=True).stdout
            for line in rules.splitlines():
                if "lookup 420" in line:
                    pref = line.split(":")[0]
                    lab.exec("rtr", ["ip", "rule", "del", "pref", pref], check=True)
            with pytest.raises(RoutedPathError, match="policy routes do not hold"):
                routed.verify(within=0.5)
            before = routed.forwarded()
            assert udp_ttl(lab, "cn", cn, "mn", routed.address) == 63  # the router only
            with pytest.raises(RoutedPathError, match="did not all cross them"):
                check_forwarded(routed.path, before, routed.forwarded(), 1)
            routed.remove()  # what is left (the rules already gone: reported, not raised)
        # nothing of it is left: the address, the rules, the ingress exemptions
        addrs = lab.exec("mn", ["ip", "-4", "addr", "show"], check=True).stdout
        assert str(routed.address) not in addrs
        assert "lookup 420" not in lab.exec("rtr", ["ip", "rule", "show"], check=True).stdout
        assert "lookup 420" not in lab.exec("mn", ["ip", "rule", "show"], check=True).stdout
        ruleset = lab.exec("rtr", ["nft", "list", "ruleset"], check=True).stdout
        assert str(routed.address) not in ruleset
        last = "fa1" if net == "a" else "rtr"
        assert str(routed.address) not in lab.exec(last, ["ip", "neigh"], check=True).stdout
