"""The runner, and the whole instrument chain in miniature on loopback: two verified streams
and a probe stream through relays that black out twice (the "moves"), then the report,
its verdict and the plot."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from mip4.demo.plot import plot
from mip4.demo.report import ConnectionSpec, MoveRecord, build_report
from mip4.demo.runner import InstrumentError, InstrumentProcess, ProbePair, StreamPair, local_popen

from .helpers import LOOPBACK, Proxy, UdpRelay, free_port


def test_instrument_process_events_and_bounded_waits() -> None:
    p = InstrumentProcess(
        local_popen, "mn", "probe", ["recv", "--listen", LOOPBACK, "--duration", "20"]
    )
    try:
        assert p.wait_event("listening", 10)["port"] > 0
        with pytest.raises(InstrumentError, match="no 'listening' event"):
            p.wait_event("listening", 0.2)  # each call returns a later event
        p.stop()
        report = p.report(10)
        assert report is not None and report["role"] == "receiver" and "event" not in report
    finally:
        p.close()


def test_an_instrument_that_dies_reports_none() -> None:
    p = InstrumentProcess(
        local_popen, "mn", "probe", ["recv", "--listen", LOOPBACK, "--duration", "20"]
    )
    try:
        p.wait_event("listening", 10)
        p.proc.send_signal(signal.SIGKILL)
        assert p.report(5) is None
    finally:
        p.close()
    bad = InstrumentProcess(local_popen, "mn", "traffic", ["client", "--connect", LOOPBACK])
    try:
        with pytest.raises(InstrumentError, match="exited"):
            bad.wait_event("connected", 10)
        assert "--port" in bad.stderr
    finally:
        bad.close()


def test_stream_pair_stop_and_reports() -> None:
    pair = StreamPair.start(
        local_popen,
        ConnectionSpec("mn dials cn", "mn", "cn"),
        address=LOOPBACK,
        port=0,
        listen=LOOPBACK,
        seed=3,
        rate=300_000,
        progress=0.2,
        duration=20,
    )
    try:
        time.sleep(0.7)
        progress = pair.progress()
        assert progress["client"]["sent"] > 0 and progress["server"]["received"] > 0
        line = pair.progress_line()
        assert line.startswith("mn dials cn: mn → cn 0.") and "cn → mn 0." in line
        assert line.endswith(" MB verified") and not pair.ended()
        pair.stop()
        spec, client, server = pair.reports(15)
    finally:
        pair.close()
    assert spec.name == "mn dials cn"
    assert client is not None and server is not None
    assert client.ok and server.ok
    assert client.stop_reason == "signal" and server.stop_reason == "peer-finished"
    assert client.bytes_sent == server.bytes_verified > 100_000
    assert pair.ended() and pair.progress_line().endswith("[ENDED]")


def test_the_instruments_measure_two_moves_end_to_end(tmp_path: Path) -> None:
    outage = 0.8
    udp_port = free_port(socket.SOCK_DGRAM)
    # one proxy per connection (each accepts one), in front of the server's port
    tcp_ports = [free_port(), free_port()]
    proxies = [Proxy(p, lifetime=40) for p in tcp_ports]
    relay = UdpRelay(udp_port, lifetime=40)
    for t in (*proxies, relay):
        t.start()
    started_at = time.time()
    pairs: list[StreamPair] = []
    probes: ProbePair | None = None
    try:
        for spec, port, proxy, seed in (
            (ConnectionSpec("cn dials mn", "cn", "mn"), tcp_ports[0], proxies[0], 1),
            (ConnectionSpec("mn dials cn", "mn", "cn"), tcp_ports[1], proxies[1], 2),
        ):
            pairs.append(
                StreamPair.start(
                    local_popen, spec, address=LOOPBACK, port=port, connect_port=proxy.port,
                    listen=LOOPBACK, seed=seed, rate=150_000, duration=30,
                )
            )  # fmt: skip
        probes = ProbePair.start(
            local_popen, sender_node="cn", receiver_node="mn", address=LOOPBACK,
            port=udp_port, send_port=relay.port, listen=LOOPBACK, duration=30,
        )  # fmt: skip
        moves = []
        nets = ["home", "a", "b"]
        time.sleep(1.0)
        for i in range(2):
            t_start = time.time()
            for p in proxies:
                p.freeze(outage)
            relay.freeze(outage)
            time.sleep(outage + 0.05)
            moves.append(
                MoveRecord(
                    nets[i], nets[i + 1], t_start, time.time(), f"10.{i + 2}.0.2", 3.0 + i, "FA"
                )
            )
            time.sleep(1.5)
        for pair in pairs:
            pair.stop()
        probes.stop()
        conns = [pair.reports(20) for pair in pairs]
        sender, receiver = probes.reports(20)
    finally:
        for pair in pairs:
            pair.close()
        if probes is not None:
            probes.close()
        relay.stopped.set()
    finished_at = time.time()
    assert sender is not None and receiver is not None
    report = build_report(
        moves,
        conns,
        probe_sender=sender,
        probe_receiver=receiver,
        probe_path="cn → mn",
        started_at=started_at,
        finished_at=finished_at,
    )
    text = report.render_text()
    assert report.ok, text
    assert report.exit_status() == 0 and report.resets == 0
    for m in report.moves:
        assert m.interruption_ms is not None
        assert outage * 1000 - 50 <= m.interruption_ms <= outage * 1000 + 400, text
        assert outage * 100 - 10 <= m.probes_lost <= outage * 100 + 30, text
        assert m.tcp_stall_ms >= 500, text
    for c in report.connections:
        assert all(d.complete and d.longest_gap_ms >= 700 for d in c.directions), text
    png = plot(report, tmp_path / "mini.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    report.write_json(tmp_path / "mini.json")
