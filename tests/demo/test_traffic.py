"""The verified TCP stream: the byte sequence, the verifier, and real pairs over loopback
(clean, rate-limited, stopped by signal and by file, corrupted, frozen, reset, stalled)."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from mip4.demo.traffic import (
    BLOCK,
    StreamConfig,
    StreamPattern,
    StreamVerifier,
    Timeline,
    TrafficReport,
    _configure,
    connect,
)

from .helpers import LOOPBACK, Instrument, Proxy

# -- the sequence and the verifier ------------------------------------------------------------


def test_pattern_is_deterministic_and_offset_addressable() -> None:
    a = StreamPattern(7, "c2s").chunk(0, 3 * BLOCK + 100)
    assert len(a) == 3 * BLOCK + 100
    assert StreamPattern(7, "c2s").chunk(0, 3 * BLOCK + 100) == a
    p = StreamPattern(7, "c2s")
    for offset, n in [(0, 1), (5, BLOCK), (BLOCK - 3, 7), (2 * BLOCK, BLOCK + 100), (1, 0)]:
        assert p.chunk(offset, n) == a[offset : offset + n]


def test_pattern_differs_by_seed_direction_and_block() -> None:
    base = StreamPattern(7, "c2s").chunk(0, 2 * BLOCK)
    assert StreamPattern(8, "c2s").chunk(0, 2 * BLOCK) != base
    assert StreamPattern(7, "s2c").chunk(0, 2 * BLOCK) != base
    assert base[:BLOCK] != base[BLOCK:]
    # not a trivially compressible sequence: most byte values occur
    assert len(set(base)) > 200


def test_verifier_accepts_the_sequence_in_any_split() -> None:
    data = StreamPattern(3, "s2c").chunk(0, 50_000)
    v = StreamVerifier(StreamPattern(3, "s2c"))
    for start, end in [(0, 1), (1, 4097), (4097, 4100), (4100, 50_000)]:
        assert v.feed(data[start:end]) == 0
    assert (v.offset, v.verified, v.mismatched, v.first_mismatch) == (50_000, 50_000, 0, None)


def test_verifier_finds_a_flipped_byte_at_its_offset() -> None:
    data = bytearray(StreamPattern(3, "s2c").chunk(0, 20_000))
    data[12_345] ^= 0x01
    v = StreamVerifier(StreamPattern(3, "s2c"))
    v.feed(bytes(data[:10_000]))
    assert v.feed(bytes(data[10_000:])) == 1
    assert (v.mismatched, v.first_mismatch, v.verified) == (1, 12_345, 19_999)


def test_verifier_sees_a_lost_segment_as_mismatches_from_there_on() -> None:
    data = StreamPattern(3, "c2s").chunk(0, 20_000)
    v = StreamVerifier(StreamPattern(3, "c2s"))
    v.feed(data[:8000] + data[9000:])  # 1000 bytes missing
    assert v.first_mismatch is not None and 8000 <= v.first_mismatch < 8010
    # 11 000 shifted bytes; about 1 in 256 matches by chance
    assert 11_000 * 0.98 < v.mismatched <= 11_000
    assert v.verified == 19_000 - v.mismatched


def test_wrong_seed_is_a_mismatch_at_offset_zero() -> None:
    v = StreamVerifier(StreamPattern(1, "c2s"))
    v.feed(StreamPattern(2, "c2s").chunk(0, 1000))
    assert v.first_mismatch is not None and v.first_mismatch < 3
    assert v.mismatched > 990


def test_timeline_rates_and_longest_idle() -> None:
    tl = Timeline(100.0, 0.1, (), (10, 10, 0, 0, 0, 10, 0, 10))
    assert tl.rates("received")[0] == pytest.approx((100.05, 100.0))
    assert tl.longest_idle("received", 100.0, 101.0) == pytest.approx(0.3)
    # the 3-interval hole spans 100.2 .. 100.5; a window after it sees only the later one
    assert tl.longest_idle("received", 100.55, 101.0) == pytest.approx(0.1)
    assert tl.longest_idle("received", 100.0, 100.15) == 0.0
    # a run belongs to the window it began in, allowing one interval of slack
    assert tl.longest_idle("received", 100.3, 101.0) == pytest.approx(0.3)
    assert tl.longest_idle("received", 100.35, 101.0) == pytest.approx(0.1)
    flat = [t for run in tl.idle_runs("received") for t in run]
    assert flat == pytest.approx([100.2, 100.5, 100.6, 100.7])
    flat = [t for run in Timeline(0.0, 0.1, (), (5, 0, 0)).idle_runs("received") for t in run]
    assert flat == pytest.approx([0.1, 0.3])


def test_socket_options_keepalive_off_and_user_timeout_set() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        _configure(s, StreamConfig(user_timeout=12.5))
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 12500


def test_report_json_round_trip() -> None:
    r = TrafficReport(
        name="x",
        role="client",
        local="127.0.0.1:1",
        peer="127.0.0.1:2",
        seed=4,
        started_at=1.0,
        connected_at=1.5,
        finished_at=3.0,
        bytes_sent=10,
        bytes_received=9,
        bytes_verified=8,
        mismatched_bytes=1,
        first_mismatch_offset=3,
        outcome="reset",
        error="ECONNRESET: Connection reset by peer",
        peer_finished=False,
        stop_reason="error",
        longest_receive_gap_ms=5.0,
        longest_receive_gap_at=2.0,
        timeline=Timeline(1.5, 0.1, (5, 5), (4, 5)),
    )
    assert TrafficReport.from_dict({"event": "report", **r.to_dict()}) == r
    assert r.reset and not r.ok


# -- real pairs over loopback ---------------------------------------------------------------


def _server(*args: str) -> tuple[Instrument, int]:
    server = Instrument("traffic", "server", "--listen", LOOPBACK, "--port", "0", *args)
    return server, int(server.next_event("listening")["port"])


def _client(port: int, *args: str) -> Instrument:
    return Instrument("traffic", "client", "--connect", LOOPBACK, "--port", str(port), *args)


def _pair(
    server_args: list[str], client_args: list[str], via: Proxy | None = None
) -> tuple[tuple[int, dict[str, Any]], tuple[int, dict[str, Any]]]:
    server, port = _server(*server_args)
    if via is not None:
        via.upstream_port = port
        via.start()
        port = via.port
    client = _client(port, *client_args)
    try:
        return client.report(), server.report()
    finally:
        client.kill()
        server.kill()


def test_clean_pair_verifies_every_byte_both_ways(tmp_path: Path) -> None:
    (crc, c), (src, s) = _pair(
        ["--seed", "9", "--bytes", "3000000", "--no-follow", "--report", str(tmp_path / "s")],
        ["--seed", "9", "--bytes", "2000000", "--no-follow"],
    )
    assert (crc, src) == (0, 0)
    assert c["outcome"] == s["outcome"] == "ok"
    assert c["bytes_sent"] == s["bytes_received"] == s["bytes_verified"] == 2_000_000
    assert s["bytes_sent"] == c["bytes_received"] == c["bytes_verified"] == 3_000_000
    assert c["mismatched_bytes"] == s["mismatched_bytes"] == 0
    assert c["peer_finished"] and s["peer_finished"]
    assert c["stop_reason"] == s["stop_reason"] == "bytes"
    assert sum(c["timeline"]["sent"]) == 2_000_000
    assert sum(c["timeline"]["received"]) == 3_000_000
    # the report file holds the same report
    assert TrafficReport.load(tmp_path / "s") == TrafficReport.from_dict(s)


def test_different_seeds_are_caught() -> None:
    (crc, c), (_src, s) = _pair(
        ["--seed", "1", "--bytes", "100000", "--no-follow"],
        ["--seed", "2", "--bytes", "100000", "--no-follow"],
    )
    assert crc == 1
    assert c["first_mismatch_offset"] is not None and c["first_mismatch_offset"] < 5
    assert s["bytes_received"] == 100_000 and s["mismatched_bytes"] > 98_000


def test_rate_limit_and_duration_bound_the_stream() -> None:
    t0 = time.monotonic()
    (crc, c), (src, s) = _pair(
        ["--rate", "100000", "--duration", "1.5"],
        ["--rate", "100000", "--duration", "1.5", "--progress", "0.5"],
    )
    assert time.monotonic() - t0 < 10
    assert (crc, src) == (0, 0)
    for r in (c, s):
        # 1.5 s at 100 kB/s plus at most one 20 kB burst
        assert 100_000 <= r["bytes_sent"] <= 175_000
        assert r["stop_reason"] in ("duration", "peer-finished")
    assert c["bytes_received"] == s["bytes_sent"] and s["bytes_received"] == c["bytes_sent"]


def test_a_slow_rate_sends_small_pieces_steadily() -> None:
    (crc, c), (src, s) = _pair(
        ["--rate", "2000", "--duration", "1.5"], ["--rate", "2000", "--duration", "1.5"]
    )
    assert (crc, src) == (0, 0)
    for r in (c, s):
        # the 4 KiB initial burst, then 100-byte pieces at 2 kB/s, every 50 ms
        assert 4096 + 2000 <= r["bytes_sent"] <= 4096 + 3500
        # (1 KiB pieces would leave most 100 ms intervals empty; allow for a busy machine)
        assert sum(n == 0 for n in r["timeline"]["sent"][1:14]) <= 2


def test_progress_events_are_emitted() -> None:
    server, port = _server("--duration", "1.2", "--rate", "50000")
    client = _client(port, "--duration", "1.2", "--rate", "50000", "--progress", "0.3")
    try:
        first = client.next_event("progress", timeout=5)
        assert {"sent", "received", "verified", "t"} <= first.keys()
        rc, report = client.report()
        assert rc == 0
        progress = [e for e in client.events if e["event"] == "progress"]
        assert len(progress) >= 3
        assert progress[-1]["received"] == report["bytes_received"]
        assert server.report()[0] == 0
    finally:
        client.kill()
        server.kill()


def test_sigterm_stops_both_ends_cleanly() -> None:
    server, port = _server("--duration", "20", "--rate", "200000")
    client = _client(port, "--duration", "20", "--rate", "200000")
    try:
        client.next_event("connected")
        time.sleep(0.5)
        t0 = time.monotonic()
        client.proc.send_signal(signal.SIGTERM)
        (crc, c), (src, s) = client.report(10), server.report(10)
        assert time.monotonic() - t0 < 5
    finally:
        client.kill()
        server.kill()
    assert (crc, src) == (0, 0)
    assert c["stop_reason"] == "signal" and s["stop_reason"] == "peer-finished"
    assert c["bytes_sent"] == s["bytes_verified"] > 50_000
    assert s["bytes_sent"] == c["bytes_verified"] > 50_000


def test_stop_file_stops_the_server_and_the_client_follows(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    server, port = _server("--duration", "20", "--rate", "200000", "--stop-file", str(stop))
    client = _client(port, "--duration", "20", "--rate", "200000")
    try:
        client.next_event("connected")
        time.sleep(0.4)
        stop.touch()
        (crc, c), (src, s) = client.report(10), server.report(10)
    finally:
        client.kill()
        server.kill()
    assert (crc, src) == (0, 0)
    assert s["stop_reason"] == "stop-file" and c["stop_reason"] == "peer-finished"
    assert c["bytes_received"] == c["bytes_verified"] == s["bytes_sent"]


def test_a_flipped_byte_on_the_wire_is_reported_at_its_offset() -> None:
    proxy = Proxy(0, flip_at=123_457)
    (crc, c), (src, s) = _pair(
        ["--bytes", "300000", "--no-follow"], ["--bytes", "300000", "--no-follow"], via=proxy
    )
    assert proxy.error is None
    assert src == 1 and crc == 0
    assert s["mismatched_bytes"] == 1
    assert s["first_mismatch_offset"] == 123_457
    assert s["bytes_verified"] == 299_999
    assert s["outcome"] == "ok"  # the connection itself was fine
    assert c["mismatched_bytes"] == 0


def test_connection_killed_mid_stream_is_a_reset_at_both_ends() -> None:
    proxy = Proxy(0, abort_after=200_000)
    (crc, c), (src, s) = _pair(
        ["--duration", "10", "--rate", "500000"], ["--duration", "10", "--rate", "500000"], proxy
    )
    assert proxy.aborted
    assert (crc, src) == (1, 1)
    assert c["outcome"] == s["outcome"] == "reset"
    assert "ECONNRESET" in c["error"]
    assert not c["peer_finished"]
    assert 0 < c["bytes_sent"] < 10 * 500_000


def test_a_freeze_like_a_move_is_survived() -> None:
    proxy = Proxy(0, freeze_after=100_000, freeze_for=1.5)
    (crc, c), (src, s) = _pair(
        ["--duration", "4", "--rate", "200000"], ["--duration", "4", "--rate", "200000"], proxy
    )
    assert proxy.froze and proxy.error is None
    assert (crc, src) == (0, 0)
    assert c["outcome"] == s["outcome"] == "ok"
    assert c["bytes_sent"] == s["bytes_verified"] and s["bytes_sent"] == c["bytes_verified"]
    assert s["longest_receive_gap_ms"] >= 1400
    assert c["longest_receive_gap_ms"] >= 1400
    # the hole shows in the timeline
    tl = Timeline(**{**s["timeline"], "received": tuple(s["timeline"]["received"])})
    assert tl.longest_idle("received", tl.start, tl.start + 10) >= 1.2


def test_a_dead_path_is_reported_stalled_in_bounded_time() -> None:
    proxy = Proxy(0, freeze_after=50_000, freeze_for=8)
    t0 = time.monotonic()
    (crc, c), (src, s) = _pair(
        ["--duration", "6", "--rate", "100000", "--stall-timeout", "1.5"],
        ["--duration", "6", "--rate", "100000", "--stall-timeout", "1.5"],
        proxy,
    )
    assert time.monotonic() - t0 < 7
    assert (crc, src) == (1, 1)
    assert c["outcome"] == "stalled" and s["outcome"] == "stalled"
    assert "received nothing" in c["error"]


def test_client_without_server_reports_not_connected() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    report = connect(LOOPBACK, port, StreamConfig(connect_timeout=0.8))
    assert time.monotonic() - t0 < 3
    assert report.outcome == "not-connected" and "ECONNREFUSED" in (report.error or "")
    assert not report.ok


def test_server_without_client_gives_up() -> None:
    server = Instrument(
        "traffic", "server", "--listen", LOOPBACK, "--port", "0", "--connect-timeout", "0.5"
    )
    try:
        rc, r = server.report(10)
    finally:
        server.kill()
    assert rc == 1 and r["outcome"] == "not-connected" and r["connected_at"] is None


def test_unbounded_stream_is_refused() -> None:
    inst = Instrument("traffic", "client", "--connect", LOOPBACK, "--port", "9", "--duration", "0")
    try:
        _out, err = inst.proc.communicate(timeout=10)
    finally:
        inst.kill()
    assert inst.proc.returncode == 2 and "bounded" in err
