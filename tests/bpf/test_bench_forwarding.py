"""``mip4 bench forwarding`` with the bpf plane (issue 12), without a lab: the compiled UDP
blaster and sink on loopback, the planes' path names, best-of-rounds, the ratios of several
tunnelled paths against direct, the machine-CPU column, and the options' checks."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from mip4.tools.bench_forwarding import Measurement, format_table, main, ratios
from mip4.tools.bench_forwarding.build import build
from mip4.tools.bench_forwarding.report import path_label
from mip4.tools.bench_forwarding.run import best_of, path_name


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


def test_blaster_refuses_bad_arguments(tmp_path: Path) -> None:
    exe = str(build(tmp_path))
    r = subprocess.run([exe, "send", "not-an-address", "1", "64", "1", "1", "0"], text=True,
                       capture_output=True, timeout=10)  # fmt: skip
    assert r.returncode == 2 and json.loads(r.stdout)["event"] == "error"
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
    assert "tunnel-bpf         UDP 64 B    delivered pps x0.840" in text
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
