"""``mip4 bench bindings`` (issue 13): a small run against a real ``mip4 ha`` (lab) checks
what the design requires -- every first registration accepted and bound, the bpf plane
answering ARP with no kernel proxy entry, one route per binding, RSS figures, a clean stop
that leaves nothing behind -- and that the leftover check sees what a killed home agent
leaves (pins, tc filters); bad arguments give one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mip4.tools.bench_registrations import build
from mip4.tools.bench_registrations.bindings import (
    BindingsBench,
    BindingsOptions,
    format_report,
    left_behind,
    main,
    probe_nodes,
    steal_jiffies,
    steal_pct,
)

NODES = 500

#: the load generator is compiled at run time (as in test_registrations.py)
needs_cc = pytest.mark.usefixtures("_cc_present")


@pytest.mark.parametrize(
    "argv",
    [
        ["--nodes", "0"],
        ["--nodes", "abc"],
        ["--nodes", "1.5"],
        [],
        ["--nodes", "10", "--renew-seconds", "-1"],
        ["--nodes", "10", "--prefix", "far-too-long-a-prefix"],
        ["--nodes", "10", "--expire", "0"],
        ["--nodes", "10", "--expire", "5", "--deregister"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv: list[str]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mip4.cli", "bench", "bindings", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("mip4 bench bindings: --") and r.stdout == ""


def test_more_nodes_than_the_default_maps_hold_set_the_capacity() -> None:
    """``start_ha`` writes ``[io] fast_path_capacity`` from the options this bench hands
    it: the nodes, one home agent start, no foreign agent or many-sources route."""
    opts = BindingsOptions(nodes=100_000, renew_seconds=3).bench_options()
    assert opts.nodes == 100_000 and opts.sas == (100_000,)
    assert opts.duration == 3 and opts.max_requests == 2_000_000
    assert not opts.fa and not opts.flood and opts.sources == 0
    assert BindingsOptions(nodes=1_000_000).bench_options().max_requests == 4_000_000


def test_report_says_what_was_left_behind() -> None:
    base = {"links": ["h0", "lo"], "routes": 2, "proxy_entries": 0, "ip_forward": "0"}
    after = {**base, "links": ["h0", "lo", "t"], "bpf_pins": ["mip4/t/bindings"], "tc": []}
    left = left_behind(base, after)
    assert left == ["bpf pin mip4/t/bindings", "link t"]
    assert left_behind(base, {**base, "bpf_pins": [], "tc": []}) == []
    assert left_behind(base, {**base, "routes": 3, "bpf_pins": [], "tc": []}) == [
        "routes 3 (base 2)"
    ]
    out = {
        "nodes": 1000,
        "prefix": "x",
        "python": "3",
        "cpus": 2,
        "load": 1.0,
        "load_after": 1.0,
        "startup_s": 1.0,
        "rss_start_mib": 50.0,
        "first": {"accepted": 1000, "rate": 5000.0, "cpu_us": 150.0, "gap_max_ms": 12.5},
        "rss_bound_mib": 52.0,
        "rss_per_binding": 2097,
        "bindings_total": 1000,
        "dataplane": "userspace",
        "fast_path": None,
        "kernel_proxy_entries": 1000,
        "routes": 1002,
        "base": base,
        "bpf_pins": 0,
        "renew": {"rate": 20000.0, "seconds": 2.0, "cpu_us": 40.0},
        "rss_after_renew_mib": 52.0,
        "stop_s": 0.3,
        "exit": 0,
        "left_behind": left,
    }
    text = format_report(out)
    for needle in ("1,000 of 1,000", "5,000/s", "2,097 bytes", "no fast path", "link t", "exit 0"):
        assert needle in text, text
    assert "us each; longest silence 12.5 ms" in text  # fill; renewals had none measured
    assert "deregister" not in text  # not asked for
    out["dereg"] = {
        "accepted": 1000,
        "rate": 8000.0,
        "cpu_us": 90.0,
        "routes": 2,
        "gap_max_ms": 3.0,
    }
    text = format_report(out)
    assert (
        "1,000 of 1,000 deregistrations accepted, 8,000/s, HA CPU 90.0 us each; routes after 2"
        in text
    )
    assert text.index("deregister") < text.index("stop")
    assert "expiry" not in text  # not asked for
    expire: dict[str, Any] = {
        "lifetime": 30,
        "nodes": 900,
        "probe_nodes": 100,
        "short": {"accepted": 900, "rate": 9000.0, "wall_s": 0.1},
        "probe": {
            "seconds": 35.1,
            "rate": 4000.0,
            "accepted": 140000,
            "gap_max_ms": 4.5,
            "gap_max_waiting_ms": 1.25,
        },
        "bindings_after": 100,
        "routes_after": 102,
    }
    out["expire"] = expire
    text = format_report(out)
    assert (
        "900 of 900 nodes registered again with lifetime 30 s (9,000/s) and let expire;"
        " 100 probe nodes renewed 4,000/s over 35.1 s; longest silence 4.5 ms (1.2 ms of it"
        " the generator waiting for a CPU);"
        " bindings after 100, routes 102" in text
    ), text
    assert "off the loop" not in text  # a base without the counters: nothing said
    expire["route_deletes"] = {"deletes_sent": 900, "deletes_longest_us": 812_000}
    expire["timer_longest_ms"] = 6.2
    text = format_report(out)
    assert (
        "routes 102; 900 route deletes off the loop's thread, the longest batch 812.0 ms in"
        " the kernel; the longest timer call 6.2 ms" in text
    ), text
    assert "CPU time in one" not in text and "steal" not in text  # an older home agent
    expire["timer_longest_cpu_ms"] = 3.9
    expire["probe"]["steal_pct"] = 1.25
    text = format_report(out)
    assert "renewed 4,000/s over 35.1 s (host steal 1.25 % of CPU time); longest" in text, text
    assert "the longest timer call 6.2 ms, the most CPU time in one 3.9 ms" in text, text
    assert "timer calls over" not in text  # not counted
    expire.update(timer_calls=31_250, timer_over_10ms=3, timer_cpu_over_10ms=1)
    text = format_report(out)
    assert "in one 3.9 ms; 3 of 31,250 timer calls over 10 ms (1 in CPU time)" in text, text
    expire["timer_costliest"] = {"engine_ms": 1.2, "system_ms": 2.5, "faults": 1_210, "actions": 97}
    text = format_report(out)
    assert (
        "in one 3.9 ms (the engine's 1.2 ms, the kernel's 2.5 ms, 1,210 page faults, 97"
        " actions); 3 of" in text
    ), text
    expire.update(timer_longest_queued_ms=4.4, timer_over_10ms_queued=2)
    text = format_report(out)
    assert "the longest timer call 6.2 ms (4.4 ms of it waiting for a CPU), the most" in text
    assert "3 of 31,250 timer calls over 10 ms (1 in CPU time; 2 only for want of a CPU)" in text
    assert text.index("deregister") < text.index("expiry") < text.index("stop")


def test_the_probe_is_a_tenth_of_the_nodes_at_most_1000() -> None:
    assert [probe_nodes(n) for n in (1, 9, 10, 500, 10_000, 1_000_000)] == [1, 1, 1, 50, 1000, 1000]


@pytest.mark.lab
@pytest.mark.slow
@needs_cc
@pytest.mark.usefixtures("needs_bpf")  # the figures are the bpf plane's
def test_a_real_home_agent_bound_renewed_and_stopped_leaves_nothing(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--json", "--prefix", prefix, "--nodes", str(NODES), "--renew-seconds", "1"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataplane"] == "bpf"
    first = out["first"]
    assert first["accepted"] == NODES and first["loadgen"]["codes"] == {"0": NODES}, first
    assert first["rate"] > 0 and first["cpu_us"] > 0
    assert first["gap_max_ms"] > 0  # at least the wait for the first reply
    assert out["bindings_total"] == NODES  # mip4 status counts them all (not its listing)
    assert out["fast_path"] == {"capacity": 65536, "map_full": {}}
    # the bpf plane answers ARP for the absent nodes from a map: no kernel proxy entry
    assert out["kernel_proxy_entries"] == 0
    base = out["base"]
    assert out["routes"] == base["routes"] + NODES  # one host route per binding
    for key in ("rss_start_mib", "rss_bound_mib", "rss_after_renew_mib", "startup_s"):
        assert out[key] > 0, key
    assert isinstance(out["rss_per_binding"], int)
    renew = out["renew"]
    assert renew["accepted"] > 0 and set(renew["codes"]) == {"0"}, renew
    assert renew["gap_max_ms"] > 0
    # the daemon pinned its maps in the bench's bpffs (so "no pins left" says something)
    assert out["bpf_pins"] > 0
    assert out["exit"] == 0
    after = out["after_stop"]
    assert after["bpf_pins"] == [] and after["tc"] == [], after
    assert after["links"] == base["links"] and after["routes"] == base["routes"], after
    assert after["proxy_entries"] == 0 and after["ip_forward"] == base["ip_forward"]
    assert out["left_behind"] == []


@pytest.mark.lab
@pytest.mark.slow
@needs_cc
@pytest.mark.usefixtures("needs_bpf")  # the figures are the bpf plane's
def test_every_node_deregisters_and_its_route_goes(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--json", "--prefix", prefix, "--nodes", str(NODES), "--renew-seconds", "0.5"]
    assert main([*argv, "--deregister"]) == 0
    out = json.loads(capsys.readouterr().out)
    dereg = out["dereg"]
    assert dereg["accepted"] == NODES and dereg["loadgen"]["codes"] == {"0": NODES}, dereg
    assert dereg["routes"] == out["base"]["routes"]  # each binding's route deleted
    assert dereg["gap_max_ms"] > 0 and dereg["cpu_us"] > 0
    assert out["exit"] == 0 and out["left_behind"] == []


@pytest.mark.lab
@pytest.mark.slow
@needs_cc
@pytest.mark.usefixtures("needs_bpf")  # the figures are the bpf plane's
def test_all_but_the_probe_nodes_expire_and_their_routes_go(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The home agent's timer expires every binding of the nodes that fell silent (no
    request from them: only the lifetime ends them), and their routes go; the probe nodes
    renewed throughout and are bound still."""
    argv = ["--json", "--prefix", prefix, "--nodes", str(NODES), "--renew-seconds", "0.5"]
    assert main([*argv, "--expire", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    expire, probe = out["expire"], probe_nodes(NODES)
    assert expire["probe_nodes"] == probe and expire["nodes"] == NODES - probe
    assert expire["short"]["accepted"] == NODES - probe, expire
    assert expire["short"]["loadgen"]["codes"] == {"0": NODES - probe}, expire
    # the probe ran past every short lifetime (2 s after its request at the latest)
    assert expire["probe"]["seconds"] >= 2 + expire["short"]["wall_s"]
    assert expire["probe"]["accepted"] > 0 and set(expire["probe"]["codes"]) == {"0"}
    assert expire["probe"]["gap_max_ms"] > 0
    assert 0 <= expire["probe"]["gap_max_waiting_ms"] <= expire["probe"]["gap_max_ms"]
    assert expire["bindings_after"] == probe
    assert expire["routes_after"] == out["base"]["routes"] + probe
    # the expired bindings' routes went off the loop's thread, every one of them
    deletes = expire["route_deletes"]
    assert deletes["delete_deferred"] == NODES - probe, deletes
    sent = deletes["deletes_sent"] + deletes.get("deletes_missing", 0)
    assert sent == NODES - probe, deletes
    assert deletes.get("deletes_failed", 0) == 0 and deletes["deletes_pending"] == 0, deletes
    assert deletes["deletes_longest_us"] > 0
    assert expire["timer_longest_ms"] > 0
    assert 0 < expire["timer_longest_cpu_ms"] <= expire["timer_longest_ms"] + 0.1
    assert expire["timer_calls"] > 0
    costliest = expire["timer_costliest"]  # (the call with the most CPU time)
    assert 0 <= costliest["engine_ms"] <= expire["timer_longest_cpu_ms"] + 0.1, costliest
    # (the kernel's part by the kernel's clock ticks: up to one more, 10 ms at HZ=100)
    assert 0 <= costliest["system_ms"] <= expire["timer_longest_cpu_ms"] + 10.1, costliest
    # (the faults and actions of that call, carried through as counts: a call may make
    # no action and fault no page, so no lower bound holds beyond zero)
    assert type(costliest["faults"]) is int and type(costliest["actions"]) is int, costliest
    assert 0 <= expire["timer_cpu_over_10ms"] <= expire["timer_over_10ms"] <= expire["timer_calls"]
    # (a call past 10 ms for want of a CPU is not one past 10 ms of CPU time)
    assert (
        expire["timer_over_10ms_queued"] + expire["timer_cpu_over_10ms"]
        <= expire["timer_over_10ms"]
    )
    assert 0 <= expire["timer_longest_queued_ms"] <= expire["timer_longest_ms"], expire
    assert expire["probe"]["steal_pct"] is not None and 0 <= expire["probe"]["steal_pct"] < 100
    assert out["exit"] == 0 and out["left_behind"] == []


@pytest.mark.lab
@pytest.mark.slow
@needs_cc
@pytest.mark.usefixtures("needs_bpf")  # the figures are the bpf plane's
def test_a_killed_home_agent_is_seen_leaving_its_pins_and_filters(
    prefix: str, tmp_path: Path
) -> None:
    """The leftover check can fail: SIGKILL leaves the fast path's filters attached and
    its maps pinned (``FastPath.abandon``), and the bench reports both; closing the bench
    unmounts its bpffs."""
    bench = BindingsBench(BindingsOptions(nodes=50, prefix=prefix), build(), tmp_path)
    try:
        bench.setup()
        base = bench.state()
        ha = bench.start_ha(50)[0]
        assert bench.loadgen("first", 434, 30)["accepted"] == 50
        assert bench.pins()
        ha.kill()
        ha.wait(30)
        bench.procs.remove(ha)
        left = left_behind(base, bench.after_stop())
        assert any(x.startswith("bpf pin ") for x in left), left
        assert any(x.startswith("tc ") for x in left), left
    finally:
        bench.close()
    assert not os.path.ismount(bench.bpffs)


def test_steal_is_the_hosts_share_of_the_machines_cpu_time() -> None:
    """``/proc/stat``'s first line: user nice system idle iowait irq softirq steal ..."""
    before = steal_jiffies()
    assert before is not None and 0 <= before[0] <= before[1]
    assert steal_pct((100, 1_000), (130, 2_000)) == 3.0
    assert steal_pct((100, 1_000), (100, 1_000)) is None  # no time between them
    assert steal_pct(None, before) is None
