"""The demo report: per-move analysis, per-connection verdicts, text tables, JSON, exit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mip4.demo.report import (
    ConnectionSpec,
    DemoReport,
    build_report,
    connection_result,
    format_table,
)

from . import sample


def test_sample_run_passes_with_per_move_numbers() -> None:
    r = sample.sample_report()
    assert r.ok and r.exit_status() == 0 and r.resets == 0 and r.failures() == []
    assert [(m.move.from_net, m.move.to_net) for m in r.moves] == [
        ("home", "a"), ("a", "b"), ("b", "c"), ("c", "home"),
    ]  # fmt: skip
    # the outage plus one probe interval
    assert [m.interruption_ms for m in r.moves] == pytest.approx([610, 510, 1210, 410], abs=2)
    assert [m.probes_lost for m in r.moves] == [60, 50, 120, 40]
    assert [m.probes_sent for m in r.moves] == [500, 500, 500, 450]
    for m, (*_x, outage) in zip(r.moves, sample.MOVES, strict=True):
        assert m.recovered
        assert outage * 1000 - 100 <= m.tcp_stall_ms <= outage * 1000 + 200
    assert r.moves[0].move.handover_ms == pytest.approx(350.0)
    assert r.probe is not None and r.probe.lost == 270 and r.probe.sent == 2300
    assert len(r.probe_gaps) == 4
    conn = r.connections[0]
    assert [d.label for d in conn.directions] == ["cn → mn", "mn → cn"]
    assert all(d.complete for d in conn.directions)


def test_text_tables_are_aligned_and_carry_the_verdict() -> None:
    text = sample.sample_report().render_text()
    lines = text.splitlines()
    header = next(line for line in lines if "care-of address" in line)
    row = next(line for line in lines if "10.2.0.2" in line)
    assert row.index("10.2.0.2") == header.index("care-of address")
    # right-aligned numbers end under their header
    col = header.index("probes lost") + len("probes lost")
    assert row[:col].endswith("60/500")
    assert "home → a" in text and "co-located" in text and "FA2" in text
    assert "TCP resets: 0" in text
    assert lines[-1].startswith("PASS: 2 connection(s) survived 4 move(s)")
    assert "FAIL" not in text
    conn_header = next(line for line in lines if line.lstrip().startswith("connection"))
    sent_end = conn_header.index("bytes sent") + len("bytes sent")
    cn_rows = [line for line in lines if "cn → mn" in line and "complete" in line]
    assert len(cn_rows) == 2
    assert all(line[sent_end - 1].isdigit() and line[sent_end] == " " for line in cn_rows)


def test_json_round_trip(tmp_path: Path) -> None:
    r = sample.sample_report()
    d = json.loads(json.dumps(r.to_dict()))
    assert d["ok"] is True and d["resets"] == 0 and d["failures"] == []
    assert d["moves"][2]["move"]["care_of_address"] == "10.4.0.100"
    assert d["moves"][0]["move"]["handover_ms"] == pytest.approx(350.0)
    assert DemoReport.from_dict(d) == r
    # the lab's report.json adds its own keys beside the report's
    assert DemoReport.from_dict({**d, "settings": {"encapsulation": "gre"}, "extra": 1}) == r
    r.write_json(tmp_path / "r.json")
    assert DemoReport.load(tmp_path / "r.json") == r


def _with_server(**kw: object) -> DemoReport:
    conns = sample.connections()
    spec, client, server = conns[0]
    assert server is not None
    conns[0] = (spec, client, replace(server, **kw))  # type: ignore[arg-type]
    return sample.sample_report(connections=conns)


def test_a_reset_fails_the_run() -> None:
    r = _with_server(outcome="reset", error="ECONNRESET: Connection reset by peer")
    assert not r.ok and r.exit_status() == 1 and r.resets == 1
    assert any("the mn end saw reset" in f for f in r.failures())
    text = r.render_text()
    assert "TCP resets: 1" in text and "FAIL" in text and "ECONNRESET" in text


@pytest.mark.parametrize("outcome", ["timeout", "stalled", "error", "not-connected"])
def test_any_broken_end_fails_the_run(outcome: str) -> None:
    r = _with_server(outcome=outcome)
    assert r.exit_status() == 1 and r.resets == 0
    assert r.connections[0].broken


def test_a_mismatch_fails_the_run_and_names_the_offset() -> None:
    conns = sample.connections()
    spec, client, server = conns[1]
    assert client is not None
    conns[1] = (spec, replace(client, mismatched_bytes=1, first_mismatch_offset=12345), server)
    r = sample.sample_report(connections=conns)
    assert r.exit_status() == 1
    (failure,) = r.failures()
    assert "1 bytes mismatched, first at offset 12345" in failure and "cn → mn" in failure
    assert "INCOMPLETE" in r.render_text()


def test_missing_bytes_fail_the_run_even_when_both_ends_say_ok() -> None:
    conns = sample.connections()
    spec, client, server = conns[0]
    assert client is not None
    conns[0] = (spec, replace(client, bytes_sent=client.bytes_sent + 100), server)
    r = sample.sample_report(connections=conns)
    assert r.exit_status() == 1
    assert any("cn → mn: sent" in f for f in r.failures())


def test_a_missing_report_fails_the_run() -> None:
    spec = ConnectionSpec("cn→mn", "cn", "mn")
    _s, client, _server = sample.connections()[0]
    c = connection_result(spec, client, None)
    assert c.server_outcome == "missing" and not c.ok
    assert "no report from the mn end" in c.errors
    r = sample.sample_report(connections=[(spec, client, None)])
    assert r.exit_status() == 1


def test_an_unfinished_registration_fails_the_run() -> None:
    mv = sample.moves()
    mv[1] = replace(mv[1], finished_at=None, care_of_address=None, registration_rtt_ms=None)
    r = sample.sample_report(moves=mv)
    assert r.exit_status() == 1
    assert r.failures() == ["move a → b: the registration never completed"]
    assert "never" in r.render_text()


def test_no_connections_is_not_a_pass() -> None:
    r = sample.sample_report(connections=[])
    assert r.exit_status() == 1


def test_without_probes_and_with_round_trip_probes() -> None:
    r = build_report(
        sample.moves(),
        sample.connections(),
        started_at=sample.T0,
        finished_at=sample.T0 + sample.DURATION,
    )
    assert r.ok and r.probe is None and all(m.interruption_ms is None for m in r.moves)
    lines = r.render_text().splitlines()
    assert not any(line.startswith("  probes") for line in lines)
    row = next(line for line in lines if "home → a" in line)
    assert _cells(row)[6:] == ["-", "0/0", "700", "mn → cn"]
    assert "echo" not in r.render_text()
    sender, receiver = sample.probes()
    rt = sample.sample_report(probe_receiver=None)
    assert rt.probe is not None and rt.probe.lost == rt.probe.sent  # no echoes: all lost
    # echoes that come back 4 ms after arriving
    sender["echoes"] = [[i, t + 0.004] for i, _t, t in receiver["received"]]
    rt = sample.sample_report(probe_sender=sender, probe_receiver=None)
    assert [m.probes_lost for m in rt.moves] == [60, 50, 120, 40]
    assert all(m.echo_interruption_ms is None for m in rt.moves)
    # with both, the echoes are the second, round-trip view; here one echo is lost too
    sender["echoes"] = [e for e in sender["echoes"] if e[0] != 1000]
    both = sample.sample_report(probe_sender=sender, probe_receiver=receiver)
    assert [m.probes_lost for m in both.moves] == [60, 50, 120, 40]
    assert [m.echo_probes_lost for m in both.moves] == [60, 51, 120, 40]
    assert [m.echo_interruption_ms for m in both.moves] == pytest.approx(
        [m.interruption_ms for m in both.moves]
    )
    row = next(line for line in both.render_text().splitlines() if "a → b" in line)
    assert _cells(row)[6:] == ["510.0", "50/500", "510.0", "600", "cn → mn"]


def _cells(row: str) -> list[str]:
    """A table row's cells (columns are two or more spaces apart)."""
    return re.split(r"\s{2,}", row.strip())


def test_format_table() -> None:
    lines = format_table(["a", "bbb"], [["xx", "1"], ["y", "22"]], "lr")
    assert lines == ["  a   bbb", "  --  ---", "  xx    1", "  y    22"]


def test_command_line_prints_the_tables_and_exits_with_the_verdict(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    sample.sample_report().write_json(good)
    _with_server(outcome="reset").write_json(bad)
    for path, status in ((good, 0), (bad, 1)):
        run = subprocess.run(
            [sys.executable, "-m", "mip4.demo.report", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == status, run.stderr
        assert "care-of address" in run.stdout
        assert ("PASS" in run.stdout) == (status == 0)


def test_tcp_stall_agrees_with_the_longest_gap() -> None:
    """A 66 ms gap falls between two 100 ms intervals that each received something: the
    move's TCP stall is that gap, not 0 beside "longest gap ms 66" (issue 9, item 21)."""
    steady = tuple([20_000] * int(sample.DURATION / sample.IV))  # no empty interval at all
    at = sample.T0 + sample.MOVES[1][2] + 0.37  # inside the second move's window
    conns = []
    for spec, client, server in sample.connections():
        assert client is not None and server is not None
        client = replace(client, timeline=replace(client.timeline, received=steady))
        server = replace(
            server,
            timeline=replace(server.timeline, received=steady),
            longest_receive_gap_ms=66.0 if spec.name == "cn dials mn" else 20.0,
            longest_receive_gap_at=at,
        )
        client = replace(client, longest_receive_gap_ms=10.0, longest_receive_gap_at=at)
        conns.append((spec, client, server))
    r = build_report(sample.moves(), conns, started_at=sample.T0, finished_at=sample.T0 + 24)
    assert [m.tcp_stall_ms for m in r.moves] == [0.0, 66.0, 0.0, 0.0]
    assert r.moves[1].tcp_stall_direction == "cn → mn"
    gaps = [d.longest_gap_ms for c in r.connections for d in c.directions]
    assert max(gaps) == r.moves[1].tcp_stall_ms
    row = next(line for line in r.render_text().splitlines() if "a → b" in line)
    assert row.rstrip().endswith("66  cn → mn")
    # a gap that began just before the next move and ended after it is that move's alone
    before_third = sample.T0 + sample.MOVES[2][2] - 0.004
    conns = [
        (spec, client, replace(server, longest_receive_gap_at=before_third))
        for spec, client, server in conns
    ]
    r2 = build_report(sample.moves(), conns, started_at=sample.T0, finished_at=sample.T0 + 24)
    assert [m.tcp_stall_ms for m in r2.moves] == [0.0, 10.0, 66.0, 0.0]  # clients: 10 ms
    # and it survives the JSON round trip
    again = DemoReport.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again.moves[1].tcp_stall_ms == 66.0
    assert again.connections[0].directions[0].longest_gap_at == at


def test_a_stall_counts_for_one_move_only() -> None:
    """A run of empty intervals that begins a few ms before a move (the last bytes before
    the outage were read just before the link went) is that move's stall, not also the
    previous move's."""
    iv = 0.01
    n = int(sample.DURATION / iv)
    third = sample.MOVES[2][2]  # the third move's start, s after T0
    first = int((third - 0.004) / iv)  # the run's first empty interval
    counts = tuple(0 if first <= i < first + 50 else 2_000 for i in range(n))  # 500 ms
    conns = []
    for spec, client, server in sample.connections():
        assert client is not None and server is not None
        steady = replace(client.timeline, start=sample.T0, interval=iv, received=counts)
        client = replace(client, timeline=steady, longest_receive_gap_ms=0.0)
        server = replace(server, timeline=steady, longest_receive_gap_ms=0.0)
        conns.append((spec, client, server))
    r = build_report(sample.moves(), conns, started_at=sample.T0, finished_at=sample.T0 + 24)
    assert [m.tcp_stall_ms for m in r.moves] == pytest.approx([0.0, 0.0, 500.0, 0.0])
