"""The forwarding benchmark's TCP workers run the demo's stream (mip4.demo.traffic) counted,
not verified: checked here on loopback, without a lab."""

from __future__ import annotations

import socket
import threading

from mip4.demo.traffic import StreamPattern, StreamVerifier, ZeroPattern, connect, serve
from mip4.tools.bench_forwarding.workers import _TCP_BIN, _tcp_stream


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_zero_pattern_and_counting_verifier() -> None:
    assert ZeroPattern().chunk(12345, 5) == bytes(5)
    counter = StreamVerifier(StreamPattern(1, "c2s"), check=False)
    assert counter.feed(b"not the pattern") == 0
    assert (counter.offset, counter.verified, counter.mismatched) == (15, 0, 0)


def test_counted_stream_on_loopback() -> None:
    port = _free_port()
    reports = {}

    def receiver() -> None:
        cfg = _tcp_stream(
            max_bytes=0, duration=None, connect_timeout=10, stall_timeout=10, drain_timeout=10
        )
        reports["recv"] = serve("127.0.0.1", port, cfg)

    t = threading.Thread(target=receiver)
    t.start()
    sent = connect(
        "127.0.0.1",
        port,
        _tcp_stream(max_bytes=3 << 20, duration=10, connect_timeout=5, stall_timeout=5),
    )
    t.join(15)
    recv = reports["recv"]
    assert sent.outcome == recv.outcome == "ok"
    assert sent.bytes_sent == recv.bytes_received == 3 << 20
    assert recv.bytes_verified == 0 and recv.mismatched_bytes == 0  # counted only
    assert recv.timeline.interval == _TCP_BIN
    assert sum(recv.timeline.received) == 3 << 20
