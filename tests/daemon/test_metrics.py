"""Issue 15: the Prometheus endpoint. Unit: the metric families equal the numbers of a
status snapshot of real engines, and the latency histogram follows the log actions. Lab: a
scrape of ``/metrics`` from real ``mip4 ha``, ``mip4 fa`` and ``mip4 mn`` after a
registration equals ``mip4 status --json``."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mip4.daemon.config import ConfigError, MetricsSection, load_config, split_listen
from mip4.daemon.metrics import FAST_PATHS, Metrics, MetricsServer
from mip4.lab import Lab

from ..snmp.snapshots import role_snapshots
from .test_lab_daemons import Daemons

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def registrations(status: Mapping[str, Any]) -> Samples:
    """What ``mip4_registrations_total`` must hold for ``status``."""
    out: Samples = {}
    for result in ("accepted", "denied"):
        for key, n in status["counters"][result].items():
            code, _, reason = key.partition(" ")
            labels = (("code", code), ("reason", reason), ("result", result))
            out[("mip4_registrations_total", labels)] = n
    return out


def of(s: Samples, name: str) -> Samples:
    return {k: v for k, v in s.items() if k[0] == name}


@pytest.mark.parametrize("role", ["ha3", "fa", "mn"])
def test_families_equal_the_status_snapshot(role: str) -> None:
    status = role_snapshots()[role]
    s = samples(Metrics(lambda: status).text())
    assert of(s, "mip4_registrations_total") == registrations(status)
    assert registrations(status)  # every role's snapshot has some
    c = status["counters"]
    assert of(s, "mip4_discards_total") == {
        ("mip4_discards_total", (("reason", r),)): n for r, n in c["discarded"].items()
    }
    assert of(s, "mip4_events_total") == {
        ("mip4_events_total", (("event", e),)): n for e, n in c["events"].items()
    }
    assert s[("mip4_retransmissions_total", ())] == c["events"].get("retransmissions", 0)
    if "home_agent" in status:
        assert s[("mip4_bindings", ())] == len(status["home_agent"]["bindings"]) == 3
    assert of(s, "mip4_fast_path_total") == {
        ("mip4_fast_path_total", (("path", path),)): c[key] for path, key in FAST_PATHS if key in c
    }
    assert len(of(s, "mip4_fast_path_total")) == {"ha3": 2, "fa": 4, "mn": 0}[role]
    if "foreign_agent" in status:
        assert s[("mip4_visitors", ())] == len(status["foreign_agent"]["visitors"])
    if "mobile_node" in status:
        assert s[("mip4_registered", ())] == int(status["mobile_node"]["registered"])
    assert s[("mip4_registration_latency_seconds_count", ())] == 0


def test_tunnel_counters_and_latency_from_log_actions() -> None:
    status = dict(role_snapshots()["ha3"])
    status["counters"] = {
        **status["counters"],
        "tunnel": {"rx_packets": 7, "rx_bytes": 700},
        "fast_renewals": 5,
        "fast_first_registrations": 3,
    }
    m = Metrics(lambda: status)
    m.on_log("mn.request", {}, 10.0)
    m.on_log("mn.request", {}, 11.0)  # a retransmission: latency from the first send
    m.on_log("mn.reply", {"code": 0}, 11.5)
    m.on_log("fa.request_relayed", {"home_address": "10.0.0.1"}, 20.0)
    m.on_log("fa.reply_relayed", {"home_address": "10.0.0.2"}, 20.1)  # not that one
    m.on_log("fa.reply_relayed", {"home_address": "10.0.0.1"}, 20.02)
    m.observe(0.0003)
    s = samples(m.text())
    assert s[("mip4_tunnel_packets_total", (("direction", "rx"),))] == 7
    assert s[("mip4_fast_path_total", (("path", "renewal"),))] == 5
    assert s[("mip4_fast_path_total", (("path", "first_registration"),))] == 3
    assert s[("mip4_tunnel_bytes_total", (("direction", "rx"),))] == 700
    assert ("mip4_tunnel_packets_total", (("direction", "tx"),)) not in s
    assert s[("mip4_registration_latency_seconds_count", ())] == 3
    assert s[("mip4_registration_latency_seconds_sum", ())] == pytest.approx(1.5203)
    assert s[("mip4_registration_latency_seconds_bucket", (("le", "0.0005"),))] == 1
    assert s[("mip4_registration_latency_seconds_bucket", (("le", "0.025"),))] == 2


def test_listen_key() -> None:
    assert MetricsSection().address is None
    assert MetricsSection("127.0.0.1:9434").address == ("127.0.0.1", 9434)
    assert split_listen("0.0.0.0:1") == ("0.0.0.0", 1)
    for bad in ("9434", "localhost:9434", "127.0.0.1:0", "127.0.0.1:x", ":80"):
        with pytest.raises(ValueError, match="listen"):
            MetricsSection(bad)


def test_bad_listen_names_the_key(tmp_path: Path) -> None:

    p = tmp_path / "ha.toml"
    p.write_text(
        '[home_agent]\naddress = "10.0.0.1"\nhome_network = "10.0.0.0/24"\n'
        'interface = "eth0"\n[metrics]\nlisten = "nowhere"\n'
    )
    with pytest.raises(
        ConfigError, match=r"ha.toml: metrics: listen: .nowhere. is not address:port"
    ):
        load_config("ha", p)


def test_server_answers_get_metrics_only() -> None:
    status = role_snapshots()["fa"]

    async def main() -> None:
        server = MetricsServer(Metrics(lambda: status), ("127.0.0.1", 0))
        await server.start()
        assert server._server is not None
        port = server._server.sockets[0].getsockname()[1]

        async def get(path: str, accept: str = "*/*") -> bytes:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n".encode())
            data = await r.read()
            w.close()
            return data

        ok = await get("/metrics")
        assert ok.startswith(b"HTTP/1.0 200 OK\r\n")
        assert b"text/plain; version=0.0.4" in ok
        assert b"mip4_visitors 1.0" in ok.split(b"\r\n\r\n", 1)[1]
        assert (await get("/")).startswith(b"HTTP/1.0 404")
        om = await get("/metrics", "application/openmetrics-text; version=1.0.0")
        assert b"Content-Type: application/openmetrics-text" in om
        assert om.endswith(b"# EOF\n")
        await server.close()

    asyncio.run(main())


SCRAPE = (
    "import sys, urllib.request; "
    "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
)


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_scrape_of_real_daemons_equals_status(prefix: str, tmp_path: Path) -> None:
    with Lab(prefix[2:], ingress_filter=True) as lab:
        d = Daemons(lab, tmp_path)
        nodes = ("ha", "fa1", "mn")
        for node in nodes:
            with d.paths[node].open("a") as f:
                f.write('\n[metrics]\nlisten = "127.0.0.1:9434"\n')  # one per namespace
        try:
            for node in nodes:
                d.start(node)
            d.answering(*nodes)
            d.wait(lambda: (d.status("mn") or {})["mobile_node"]["state"] == "at home", 15, "home")
            lab.move("a")
            d.registered_via("fa1")

            def compared(status: dict[str, Any]) -> tuple[object, ...]:
                """The counters compared exactly below (not the advertisement and tunnel
                counters, which move on every second while the scrape runs)."""
                c = status["counters"]
                return (
                    registrations(status),
                    c["events"].get("retransmissions"),
                    c["discarded"],
                    tuple(c.get(key) for _path, key in FAST_PATHS),
                )

            def scrape(node: str) -> tuple[Samples, dict[str, Any]]:
                for _ in range(20):  # a re-registration between the two reads: again
                    before = d.status(node)
                    r = lab.exec(
                        node, [sys.executable, "-c", SCRAPE, "http://127.0.0.1:9434/metrics"]
                    )
                    after = d.status(node)
                    assert before is not None and after is not None and r.returncode == 0, r
                    if compared(before) == compared(after):
                        return samples(r.stdout), after
                assert before is not None and after is not None
                changed = {
                    k for k in after["counters"] if before["counters"][k] != after["counters"][k]
                }
                raise AssertionError(f"{node}: counters kept changing: {sorted(changed)}")

            for node in nodes:
                s, status = scrape(node)
                assert of(s, "mip4_registrations_total") == registrations(status), node
                assert registrations(status), node
                c = status["counters"]
                assert s[("mip4_retransmissions_total", ())] == c["events"].get(
                    "retransmissions", 0
                )
                for reason, n in c["discarded"].items():
                    assert s[("mip4_discards_total", (("reason", reason),))] == n
                for direction in ("rx", "tx"):
                    key = f"{direction}_packets"
                    if key in c["tunnel"]:
                        got = s[("mip4_tunnel_packets_total", (("direction", direction),))]
                        assert got >= c["tunnel"][key]  # the kernel's counters move on
                assert s[("mip4_registration_latency_seconds_count", ())] >= 1, node
            ha, ha_status = scrape("ha")
            assert ha[("mip4_bindings", ())] == len(ha_status["home_agent"]["bindings"]) == 1
            for node, scraped, status in (("ha", ha, ha_status), ("fa1", *scrape("fa1"))):
                c = status["counters"]
                assert of(scraped, "mip4_fast_path_total") == {
                    ("mip4_fast_path_total", (("path", path),)): c[key]
                    for path, key in FAST_PATHS
                    if key in c
                }, node
            fa, fa_status = scrape("fa1")
            assert fa[("mip4_visitors", ())] == len(fa_status["foreign_agent"]["visitors"]) == 1
            mn, _ = scrape("mn")
            assert mn[("mip4_registered", ())] == 1
            for node in ("mn", "fa1", "ha"):
                assert d.stop(node, signal.SIGTERM) == 0, d.logs()
        finally:
            d.kill_all()
