"""``mip4 bench forwarding`` with the bpf plane (issue 12), without a lab: the compiled UDP
blaster and sink on loopback, the planes' path names, best-of-rounds, the ratios of several
tunnelled paths against direct, the machine-CPU column, and the options' checks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mip4.tools.bench_forwarding import Measurement, format_table, main, ratios
from mip4.tools.bench_forwarding.build import build
from mip4.tools.bench_forwarding.report import encapsulation_ratios, ipip_path, path_label
from mip4.tools.bench_forwarding.run import (
    Bench,
    Options,
    best_of,
    blaster_cpus,
    block_order,
    path_name,
)
from tests.sleeping import where_it_sleeps


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_blaster_sends_and_sinks_bounded_in_count(tmp_path: Path) -> None:
    exe = str(build(tmp_path))
    port = _free_udp_port()
    sink = subprocess.Popen([exe, "recv", str(port), "5", "0.3"], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        assert json.loads(sink.stdout.readline()) == {"event": "ready"}
        send = subprocess.run(
            [exe, "send", "127.0.0.1", str(port), "64", "5", "5000", "0"],
            input="go\n",
            capture_output=True,
            text=True,
            timeout=20,
        )
        lines = [json.loads(x) for x in send.stdout.splitlines()]
        assert lines[0] == {"event": "ready"}
        sent = lines[1]
        assert sent["event"] == "result" and sent["sent"] == 5000, sent
        assert sent["elapsed"] < 5
        got = json.loads(sink.stdout.readline())
        sink.wait(10)
    finally:
        sink.kill()
        sink.wait()
    assert got["event"] == "result"
    assert 0 < got["packets"] <= 5000 and got["bytes"] == 64 * got["packets"]
    assert got["packets"] + got["rcvbuf_errors"] >= 4900  # loopback: what was not lost


def test_the_sink_naps_on_a_timer_and_never_sleeps_on_its_socket(tmp_path: Path) -> None:
    """A sink asleep in poll() must be woken by the sender, whose CPU on veth runs the whole
    path: that wake-up (0.6-3.4 us per datagram, varying from run to run) was charged to
    the path measured. Waiting for datagrams, the sink is in a timer nap, never in poll."""
    exe = str(build(tmp_path))
    sink = subprocess.Popen(
        [exe, "recv", str(_free_udp_port()), "10", "0.3"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sink.stdout is not None
        assert json.loads(sink.stdout.readline()) == {"event": "ready"}
        seen = where_it_sleeps(sink.pid)
    finally:
        sink.kill()
        sink.wait()
    assert seen, "the sink was never seen asleep"
    assert not any("poll" in w or "select" in w for w in seen), seen
    assert any("nanosleep" in w for w in seen), seen


def test_the_blaster_pins_itself_and_reports_its_cpu(tmp_path: Path) -> None:
    exe = str(build(tmp_path))
    cpu = max(os.sched_getaffinity(0))
    port = _free_udp_port()
    sink = subprocess.Popen(
        [exe, "recv", str(port), "10", "0.3", str(cpu)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sink.stdout is not None
        assert json.loads(sink.stdout.readline()) == {"event": "ready"}
        with open(f"/proc/{sink.pid}/status") as f:
            allowed = [x.split()[1] for x in f if x.startswith("Cpus_allowed_list:")]
        assert allowed == [str(cpu)]
        send = subprocess.run(
            [exe, "send", "127.0.0.1", str(port), "64", "5", "50000", "0", str(cpu)],
            input="go\n",
            capture_output=True,
            text=True,
            timeout=20,
        )
        result = json.loads(send.stdout.splitlines()[1])
        got = json.loads(sink.stdout.readline())
        sink.wait(10)
    finally:
        sink.kill()
        sink.wait()
    assert result["sent"] == 50000 and got["packets"] > 0
    # its own CPU while sending: more than nothing, at most the time it took
    assert 0 < result["cpu"] <= result["elapsed"] + 0.02, result
    bad = subprocess.run([exe, "recv", str(port), "1", "0.1", "100000"], capture_output=True,
                         text=True, timeout=10)  # fmt: skip
    assert bad.returncode == 2 and json.loads(bad.stdout)["event"] == "error"


@pytest.mark.parametrize("worker", ["udp-recv", "tcp-recv"])
def test_a_python_traffic_worker_runs_on_the_cpu_it_is_given(worker: str) -> None:
    """The Python workers (TCP's, and UDP's with ``--blaster python``) are pinned like the
    compiled ones: an unpinned TCP sender and receiver went where the scheduler put them,
    and one round's TCP figure differed from the next by up to 1.9x. (In a network
    namespace of its own, ``unshare --net``: it binds its port there.)"""
    cpu = max(os.sched_getaffinity(0))
    params = json.dumps({"deadline": 3.0, "cpu": cpu, "max_life": 20})
    argv = ["unshare", "--net", sys.executable, "-m", "mip4.tools.bench_forwarding"]
    proc = subprocess.Popen(
        [*argv, "--worker", worker, "--params", params],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"event": "ready"}
        with open(f"/proc/{proc.pid}/status") as f:
            allowed = [x.split()[1] for x in f if x.startswith("Cpus_allowed_list:")]
    finally:
        proc.kill()
        proc.wait(10)
    assert allowed == [str(cpu)]


def test_sender_and_sink_get_a_cpu_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 1, 2})
    assert blaster_cpus() == (1, 3)
    assert blaster_cpus(pin=False) == (-1, -1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert blaster_cpus() == (-1, -1)  # one CPU: nothing to keep apart


def test_blocks_alternate_their_order_from_round_to_round() -> None:
    planes, encs = ("bpf", "userspace"), ("ipip", "gre")
    first = [("bpf", "ipip"), ("bpf", "gre"), ("userspace", "ipip"), ("userspace", "gre")]
    assert block_order(planes, encs, 0) == first
    assert block_order(planes, encs, 1) == first[::-1]
    assert block_order(planes, encs, 2) == first


class _NoLab:
    lab_id = "x"

    def address(self, node: str) -> str:
        return "10.1.0.100"


def test_a_run_takes_the_blocks_in_alternating_order_and_keeps_each_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opts = Options(planes=("bpf",), encapsulations=("ipip", "gre"), rounds=3, blaster="python")
    bench = Bench(_NoLab(), opts)  # type: ignore[arg-type]
    calls: list[str] = []
    figures = {"ipip": [700, 600, 650], "gre": [640, 610, 500]}

    def block(plane: str, encapsulation: str) -> list[Measurement]:
        calls.append(encapsulation)
        n = figures[encapsulation].pop(0)
        return [_m(path_name("tunnel", plane, encapsulation), "udp", n)]

    monkeypatch.setattr(bench, "block", block)
    best = bench.run()
    assert calls == ["ipip", "gre", "gre", "ipip", "ipip", "gre"]
    assert [(m.path, m.round, m.delivered) for m in bench.runs] == [
        ("tunnel-bpf", 0, 700),
        ("tunnel-bpf-gre", 0, 640),
        ("tunnel-bpf-gre", 1, 610),
        ("tunnel-bpf", 1, 600),
        ("tunnel-bpf", 2, 650),
        ("tunnel-bpf-gre", 2, 500),
    ]
    assert [(m.path, m.delivered) for m in best] == [("tunnel-bpf", 700), ("tunnel-bpf-gre", 640)]


def test_encapsulation_ratios_best_per_round_and_sender_cost() -> None:
    def m(path: str, delivered: int, r: int, sender_cpu: float = 0.0) -> Measurement:
        x = _m(path, "udp", delivered)
        x.round, x.sender_cpu_s = r, sender_cpu
        return x

    runs = [
        m("direct", 1000, 0),
        m("tunnel-bpf", 800, 0, 0.0088),  # 11 us per datagram
        m("tunnel-bpf-gre", 720, 0, 0.00864),  # 12 us
        m("tunnel-bpf-gre", 780, 1, 0.0078),  # 10 us
        m("tunnel-bpf", 750, 1, 0.00975),  # 13 us
        m("tunnel-bpf-minimal", 760, 1),
    ]
    rows = {r["path"]: r for r in encapsulation_ratios(best_of(runs), runs)}
    assert set(rows) == {"tunnel-bpf-gre", "tunnel-bpf-minimal"}
    gre = rows["tunnel-bpf-gre"]
    assert gre["ipip_path"] == "tunnel-bpf" and gre["ratio"] == pytest.approx(780 / 800, abs=1e-4)
    assert gre["round_ratios"] == [0.9, 1.04] and gre["median_round_ratio"] == 0.97
    # the sender's CPU over both rounds, not the best run's alone
    gre_us, ipip_us = (8640 + 7800) / 1500, (8800 + 9750) / 1550
    assert (gre["sender_us"], gre["ipip_sender_us"]) == (round(gre_us, 3), round(ipip_us, 3))
    assert gre["sender_cost_ratio"] == pytest.approx(gre_us / ipip_us, abs=1e-4)
    mini = rows["tunnel-bpf-minimal"]
    assert mini["round_ratios"] == [pytest.approx(760 / 750, abs=1e-4)]
    assert mini["sender_cost_ratio"] is None  # no sender CPU known (the Python sender)
    assert [ipip_path(p) for p in ("tunnel-bpf", "colocated-gre", "direct")] == [
        None,
        "colocated",
        None,
    ]
    text = format_table(best_of(runs), {"lab": "x"}, {}, None, runs)
    lines = text.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("encapsulation / IP in IP on"))
    line = lines[at + 1]
    assert "x0.975 || x0.900 x1.040 (median x0.970) || 10.96 / 11.97 = x0.916" in line, line
    assert "||  11.00" in text  # the sender's CPU beside the machine's (the best run's)


def test_the_blaster_sends_from_the_source_address_given(tmp_path: Path) -> None:
    """``send ... CPU SRC``: the datagrams leave from SRC (the mobile node's home or
    routed address, when it sends to the correspondent: ``--directions up``)."""
    exe = str(build(tmp_path))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        port = rx.getsockname()[1]
        send = subprocess.run(
            [exe, "send", "127.0.0.1", str(port), "64", "5", "20", "0", "-1", "127.0.0.77"],
            input="go\n",
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert json.loads(send.stdout.splitlines()[1])["sent"] == 20, send.stdout
        _, (source, _port) = rx.recvfrom(2048)
    assert source == "127.0.0.77"


def test_blaster_refuses_bad_arguments(tmp_path: Path) -> None:
    exe = str(build(tmp_path))
    r = subprocess.run([exe, "send", "not-an-address", "1", "64", "1", "1", "0"], text=True,
                       capture_output=True, timeout=10)  # fmt: skip
    assert r.returncode == 2 and json.loads(r.stdout)["event"] == "error"
    r = subprocess.run([exe, "send", "127.0.0.1", "1", "64", "1", "1", "0", "-1", "nowhere"],
                       text=True, capture_output=True, timeout=10)  # fmt: skip
    assert r.returncode == 2 and json.loads(r.stdout)["event"] == "error"
    r = subprocess.run([exe, "send", "127.0.0.1", "1", "64", "1", "1", "0", "-1", "192.0.2.1"],
                       text=True, capture_output=True, timeout=10)  # fmt: skip
    assert r.returncode == 1 and "socket" in json.loads(r.stdout)["error"]  # not ours: bind
    assert subprocess.run([exe], capture_output=True, timeout=10).returncode == 2


def test_path_names() -> None:
    assert path_name("tunnel", "userspace") == "tunnel"
    assert path_name("tunnel", "bpf") == "tunnel-bpf"
    assert path_name("colocated", "bpf") == "colocated-bpf"
    assert path_name("tunnel", "bpf", "gre") == "tunnel-bpf-gre"
    assert path_name("colocated", "userspace", "minimal") == "colocated-minimal"
    assert path_label("tunnel-bpf") == "bpf     CN->HA->FA1->MN"
    assert path_label("tunnel-bpf-gre") == "bpf/gre CN->HA->FA1->MN"
    assert path_label("colocated-gre") == "gre     CN->HA->MN (C)"


def _m(path: str, traffic: str, delivered: int, window: float = 1.0) -> Measurement:
    payload = 64 if traffic == "udp" else 0
    return Measurement(path, traffic, payload, 1.0, 100_000, delivered, window, cpu_busy_s=2.0)


def test_best_of_rounds_keeps_the_first_order_and_the_best_figure() -> None:
    runs = [
        _m("direct", "udp", 800),
        _m("tunnel-bpf", "udp", 700),
        _m("tunnel", "udp", 200),
        _m("direct", "udp", 900),
        _m("tunnel-bpf", "udp", 650),
        _m("tunnel", "udp", 250),
    ]
    best = best_of(runs)
    assert [(m.path, m.delivered) for m in best] == [
        ("direct", 900),
        ("tunnel-bpf", 700),
        ("tunnel", 250),
    ]


def test_ratios_and_table_with_both_planes_and_the_colocated_path() -> None:
    results = [
        _m("direct", "udp", 1000),
        _m("direct", "tcp", 10_000_000),
        _m("tunnel-bpf", "udp", 840),
        _m("tunnel-bpf", "tcp", 9_700_000),
        _m("tunnel", "udp", 250),
        _m("tunnel", "tcp", 200_000),
        _m("colocated-bpf", "udp", 900),
        _m("colocated", "udp", 300),
    ]
    rows = {(r["path"], r["label"]): r for r in ratios(results)}
    assert rows["tunnel-bpf", "UDP 64 B"]["pps_ratio"] == pytest.approx(0.84)
    assert rows["tunnel-bpf", "TCP"]["mbit_ratio"] == pytest.approx(0.97)
    assert rows["tunnel", "UDP 64 B"]["pps_ratio"] == pytest.approx(0.25)
    assert rows["colocated-bpf", "UDP 64 B"]["pps_ratio"] == pytest.approx(0.9)
    assert ("direct", "UDP 64 B") not in rows
    text = format_table(results, {"lab": "x"}, {})
    for needle in ("bpf     CN->HA->FA1->MN", "bpf     CN->HA->MN (C)", "tunnel / direct"):
        assert needle in text
    assert "tunnel-bpf         UDP 64 B      delivered pps x0.840" in text
    # machine CPU: 2 s over 840 datagrams
    assert results[2].cpu_us_per_packet == pytest.approx(2.0 / 840 * 1e6)
    assert "machine CPU per delivered datagram" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--planes", "xdp"],
        ["--planes", ""],
        ["--rounds", "0"],
        ["--rounds", "11"],
        ["--encapsulations", "ipip,vxlan"],
    ],
)
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mip4 bench forwarding: --") and len(err.splitlines()) == 1


@pytest.mark.lab
def test_the_bench_lab_switch_skips_the_empty_netfilter_hooks_and_still_forwards(
    prefix: str,
) -> None:
    from mip4.io.netns import read_sysctl
    from mip4.lab.build import Lab
    from mip4.tools.bench_forwarding.run import BRIDGE_NF_CALL, quiet_switch

    with Lab(prefix[2:], ingress_filter=True) as lab:
        sw, rtr = lab.ns(lab.topology.switch), lab.ns("rtr")
        try:
            default: str | None = read_sysctl(BRIDGE_NF_CALL[0], sw)
        except FileNotFoundError:
            default = None  # no br_netfilter: no hooks to skip, and the header says so
        if default is None:
            assert quiet_switch(lab) == "no br_netfilter"
        else:
            assert default == "1"  # the kernel's default
            assert quiet_switch(lab) == "off (bridge-nf-call-*=0)"
            assert [read_sysctl(k, sw) for k in BRIDGE_NF_CALL] == ["0", "0", "0"]
            assert read_sysctl(BRIDGE_NF_CALL[0], rtr) == "1"  # the switch namespace only
        # the bridges forward as before: the correspondent reaches the node at home
        assert lab.wait_reachable("cn", str(lab.address("mn")), within=10)
