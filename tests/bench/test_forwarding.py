"""Smoke test of ``mip4 bench forwarding``: a tiny run on a real lab checks the output's
shape (never the speed); the table is checked on made-up figures without a lab."""

from __future__ import annotations

import json
import os

import pytest

from mip4.tools.bench_forwarding import Measurement, format_table, main, per_packet, ratios


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


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_tiny_run_on_the_lab(prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--json", "--lab-id", prefix[2:], "--duration", "0.3", "--count", "3000"]
    argv += ["--tcp-duration", "0.3", "--tcp-mib", "4", "--no-codec"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    results = out["results"]
    kinds = [(m["path"], m["traffic"], m["payload"]) for m in results]
    assert kinds == [
        (path, traffic, payload)
        for path in ("direct", "tunnel")
        for traffic, payload in (("udp", 64), ("udp", 1400), ("tcp", 0))
    ]
    for m in results:
        assert set(m) >= {"pps_sent", "pps_delivered", "loss", "mbit_s", "sent", "delivered"}
        assert m["sent"] <= (3000 if m["traffic"] == "udp" else 4 << 20)
        assert m["delivered"] > 0, m  # both paths carry traffic
    assert {r["label"] for r in out["ratios"]} == {"UDP 64 B", "UDP 1400 B", "TCP"}
    assert {r["node"] for r in out["per_packet"]} == {"ha", "fa1"}
