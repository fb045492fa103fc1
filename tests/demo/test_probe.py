"""The UDP probe stream: interruption and loss as pure functions over synthetic logs, and
real sender/receiver processes over loopback."""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from pathlib import Path

import pytest

from mip4.demo.probe import (
    HEADER,
    ProbeLog,
    analyze,
    count_lost,
    decode_probe,
    encode_probe,
    longest_gap,
    move_windows,
    send_probes,
)

from .helpers import LOOPBACK, Instrument

T0 = 1000.0
IV = 0.01


def synthetic(n: int = 1000, lost: range | set[int] = range(0), delay: float = 0.002) -> ProbeLog:
    sent = tuple(T0 + i * IV for i in range(n))
    lost_set = set(lost)
    arrivals = tuple((i, t + delay) for i, t in enumerate(sent) if i not in lost_set)
    return ProbeLog(sent, arrivals, IV)


# -- pure functions -------------------------------------------------------------------------


def test_outage_is_the_gap_between_the_arrivals_around_it() -> None:
    log = synthetic(lost=range(300, 350))  # probes 300..349 lost: 0.5 s outage
    gap = longest_gap(log, T0 + 2.95, T0 + 4.0)
    assert gap is not None and gap.recovered
    # from probe 299's arrival to probe 350's: 51 intervals
    assert gap.ms == pytest.approx(510.0)
    assert gap.start == pytest.approx(T0 + 2.992)
    assert count_lost(log, T0 + 2.95, T0 + 4.0) == (105, 50)


def test_a_window_away_from_the_outage_sees_the_nominal_interval() -> None:
    log = synthetic(lost=range(300, 350))
    gap = longest_gap(log, T0 + 6.0, T0 + 7.0)
    assert gap is not None and gap.ms == pytest.approx(10.0)
    assert count_lost(log, T0 + 6.0, T0 + 7.0) == (100, 0)


def test_a_gap_that_began_before_the_window_still_counts() -> None:
    log = synthetic(lost=range(300, 350))
    gap = longest_gap(log, T0 + 3.2, T0 + 3.3)  # inside the outage
    assert gap is not None and gap.ms == pytest.approx(510.0)


def test_a_gap_belongs_to_the_window_holding_its_middle() -> None:
    # outage from 3.0 s: probes 300..349 lost; the move is recorded at 3.02 s, after the
    # last probe before it arrived
    log = synthetic(lost=range(300, 350))
    before, move = (T0 + 1.0, T0 + 3.02), (T0 + 3.02, T0 + 6.0)
    assert longest_gap(log, *move) == longest_gap(log, T0, T0 + 10)
    gap = longest_gap(log, *before)
    assert gap is not None and gap.ms == pytest.approx(10.0)
    stats = analyze(log, [before, move])
    assert [s.interruption_ms for s in stats] == pytest.approx([10.0, 510.0])


def test_duplicates_and_reordering_do_not_change_the_result() -> None:
    log = synthetic(lost=range(300, 350))
    arrivals = list(log.arrivals) + [(s, t + 0.3) for s, t in log.arrivals[::7]]
    random.Random(5).shuffle(arrivals)
    messy = ProbeLog(log.sent_at, tuple(arrivals), IV)
    assert longest_gap(messy, T0 + 2.95, T0 + 4.0) == longest_gap(log, T0 + 2.95, T0 + 4.0)
    assert count_lost(messy, T0, T0 + 10) == (1000, 50)


def test_unknown_sequence_numbers_are_ignored() -> None:
    log = synthetic(n=100)
    noisy = ProbeLog(log.sent_at, (*log.arrivals, (5000, T0 + 0.5), (-1, T0 + 0.5)), IV)
    assert len(noisy.first_arrivals()) == 100
    assert longest_gap(noisy, T0, T0 + 1) == longest_gap(log, T0, T0 + 1)


def test_a_stream_that_never_resumed_is_not_recovered() -> None:
    log = synthetic(lost=range(600, 1000))
    gap = longest_gap(log, T0 + 5.5, T0 + 10.0)
    assert gap is not None and not gap.recovered
    assert gap.start == pytest.approx(T0 + 5.992)
    assert gap.end == pytest.approx(T0 + 9.99)
    stats = analyze(log, [(T0 + 5.5, T0 + 10.0)])[0]
    assert not stats.recovered and stats.probes_lost == 400


def test_a_couple_of_lost_final_probes_are_not_an_outage() -> None:
    log = synthetic(lost={998, 999})
    gap = longest_gap(log, T0 + 9.0, T0 + 10.0)
    assert gap is not None and gap.recovered and gap.ms == pytest.approx(10.0)


def test_nothing_arrived_at_all() -> None:
    log = ProbeLog(tuple(T0 + i * IV for i in range(100)), (), IV)
    gap = longest_gap(log, T0, T0 + 0.5)
    assert gap is not None and not gap.recovered
    assert count_lost(log, T0, T0 + 0.5) == (50, 50)
    assert longest_gap(ProbeLog((), (), IV), T0, T0 + 1) is None


def test_move_windows_partition_the_probes() -> None:
    log = synthetic(lost=set(range(100, 130)) | set(range(400, 480)) | set(range(700, 705)))
    windows = move_windows([T0 + 0.9, T0 + 3.5, T0 + 6.8], T0 + 10.0)
    assert windows == [(T0 + 0.9, T0 + 3.5), (T0 + 3.5, T0 + 6.8), (T0 + 6.8, T0 + 10.0)]
    stats = analyze(log, windows)
    assert [s.probes_lost for s in stats] == [30, 80, 5]
    assert sum(s.probes_sent for s in stats) == 1000 - 90  # probes before the first move
    assert [s.interruption_ms for s in stats] == pytest.approx([310.0, 810.0, 60.0])
    assert all(s.recovered for s in stats)


def test_gaps_for_the_plot() -> None:
    log = synthetic(lost=range(300, 350))
    ((at, gap),) = log.gaps(3 * IV)
    assert at == pytest.approx(T0 + 3.502) and gap == pytest.approx(0.51)
    assert len(log.gaps()) == 1000 - 50 - 1


def test_logs_from_reports() -> None:
    sender = {
        "interval": 0.02,
        "sent_at": [1.0, 1.02, 1.04],
        "echoes": [[0, 1.005], [2, 1.05]],
    }
    receiver = {"received": [[1, 1.02, 1.023], [0, 1.0, 1.002]]}
    one = ProbeLog.one_way(sender, receiver)
    assert one.arrivals == ((1, 1.023), (0, 1.002)) and one.interval == 0.02
    assert count_lost(one, 0, 2) == (3, 1)
    rt = ProbeLog.round_trip(sender)
    assert count_lost(rt, 0, 2) == (3, 1) and rt.first_arrivals()[1] == (2, 1.05)


def test_probe_encoding() -> None:
    data = encode_probe(42, 1234.5, size=100)
    assert len(data) == 100 and decode_probe(data) == (42, 1234.5)
    assert len(encode_probe(1, 0.0, size=4)) == HEADER.size  # never shorter than the header
    assert decode_probe(b"XXXX" + data[4:]) is None
    assert decode_probe(data[:10]) is None


# -- processes over loopback ----------------------------------------------------------------


def test_sender_and_echoing_receiver_over_loopback() -> None:
    recv = Instrument(
        "probe", "recv", "--listen", LOOPBACK, "--echo", "--duration", "20", "--realtime"
    )
    try:
        port = recv.next_event("listening")["port"]
        send = Instrument(
            "probe", "send", "--to", LOOPBACK, "--port", str(port),
            "--interval", "0.005", "--count", "200", "--linger", "0.3", "--realtime",
        )  # fmt: skip
        t0 = time.monotonic()
        src, sender = send.report(15)
        elapsed = time.monotonic() - t0
        recv.proc.send_signal(signal.SIGTERM)
        rrc, receiver = recv.report(10)
    finally:
        recv.kill()
    assert (src, rrc) == (0, 0)
    # as root both run under SCHED_FIFO, so two CPU-bound neighbours cannot delay them by
    # the tens of milliseconds the interruption bound below would count as an outage
    assert sender["realtime"] is receiver["realtime"] is (os.geteuid() == 0)
    assert 1.0 <= elapsed < 8  # 200 probes every 5 ms, then 0.3 s linger
    assert len(sender["sent_at"]) == 200 and sender["send_errors"] == []
    one = ProbeLog.one_way(sender, receiver)
    rt = ProbeLog.round_trip(sender)
    start, end = sender["sent_at"][0], sender["sent_at"][-1] + 1
    for log in (one, rt):
        (stats,) = analyze(log, [(start, end)])
        assert (stats.probes_sent, stats.probes_lost) == (200, 0)
        assert stats.interruption_ms is not None and stats.interruption_ms < 100
    # the schedule is absolute: 200 probes span 199 intervals
    assert sender["sent_at"][-1] - sender["sent_at"][0] == pytest.approx(0.995, abs=0.05)
    seqs = sorted(r[0] for r in receiver["received"])
    assert seqs == list(range(200))


def test_sending_is_bounded_and_survives_icmp_errors() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    # nobody listens: the kernel answers with port unreachable, which recv() reports
    t0 = time.monotonic()
    report = send_probes((LOOPBACK, port), interval=0.005, count=30, linger=0.1)
    assert time.monotonic() - t0 < 3
    assert len(report["sent_at"]) == 30 and report["echoes"] == []
    t0 = time.monotonic()
    report = send_probes((LOOPBACK, port), interval=0.01, count=None, duration=0.2, linger=0)
    assert time.monotonic() - t0 < 2
    assert len(report["sent_at"]) <= 21


def test_receiver_stops_on_its_stop_file(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    out = tmp_path / "r.json"
    recv = Instrument(
        "probe", "recv", "--listen", LOOPBACK, "--stop-file", str(stop), "--report", str(out)
    )
    try:
        recv.next_event("listening")
        stop.touch()
        rc, report = recv.report(5)
    finally:
        recv.kill()
    assert rc == 0 and report["received"] == [] and out.exists()


def test_unbounded_sending_is_refused() -> None:
    inst = Instrument("probe", "send", "--to", LOOPBACK, "--port", "9", "--duration", "0")
    try:
        _out, err = inst.proc.communicate(timeout=10)
    finally:
        inst.kill()
    assert inst.proc.returncode == 2 and "bounded" in err
