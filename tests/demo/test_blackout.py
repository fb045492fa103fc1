"""The instruments against a kernel-level blackout: inside a private network namespace (its
own loopback, nothing else), an nftables rule drops the streams' packets, as a link change
does. TCP retransmits and resumes when the rule goes; a blackout that never ends is reported
by TCP_USER_TIMEOUT as a timeout in bounded time. The namespace is deleted afterwards."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from mip4.demo.report import ConnectionSpec, MoveRecord, build_report
from mip4.demo.runner import ProbePair, StreamPair
from mip4.io.netns import Netns, netns_exec

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]
LOOPBACK = "127.0.0.1"
TABLE = "m4demo"


def _popen_in(ns: Netns) -> Callable[..., subprocess.Popen[bytes]]:
    assert ns.name is not None
    name = ns.name

    def popen(node: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", name, *argv], **kw)

    return popen


def _nft(ns: Netns, *args: str) -> None:
    netns_exec(ns.name, ["nft", *args], timeout=10)


def _prepare(ns: Netns) -> None:
    netns_exec(ns.name, ["ip", "link", "set", "lo", "up"], timeout=10)
    _nft(ns, "add", "table", "ip", TABLE)
    _nft(ns, "add", "chain", "ip", TABLE, "out", "{ type filter hook output priority 0 ; }")


def _blackout(ns: Netns, on: bool) -> None:
    if on:
        _nft(ns, "add", "rule", "ip", TABLE, "out", "meta", "l4proto", "{ tcp, udp }", "drop")
    else:
        _nft(ns, "flush", "chain", "ip", TABLE, "out")


def test_streams_and_probes_survive_a_kernel_blackout(make_netns: MakeNetns) -> None:
    ns = make_netns("demo")
    _prepare(ns)
    popen = _popen_in(ns)
    started_at = time.time()
    pair = StreamPair.start(
        popen, ConnectionSpec("cn dials mn", "cn", "mn"), address=LOOPBACK, port=0,
        listen=LOOPBACK, seed=5, rate=200_000, duration=30,
    )  # fmt: skip
    probes: ProbePair | None = None
    try:
        probes = ProbePair.start(
            popen, sender_node="cn", receiver_node="mn", address=LOOPBACK, port=0,
            listen=LOOPBACK, duration=30,
        )  # fmt: skip
        time.sleep(1.0)
        t_start = time.time()
        _blackout(ns, True)
        time.sleep(2.0)
        _blackout(ns, False)
        move = MoveRecord("home", "a", t_start, time.time(), "10.2.0.2", 2.0, "FA1")
        # TCP's retransmission back-off after 2 s of loss: the next try within ~2 s more
        time.sleep(4.0)
        pair.stop()
        probes.stop()
        conn = pair.reports(20)
        sender, receiver = probes.reports(20)
    finally:
        pair.close()
        if probes is not None:
            probes.close()
    report = build_report(
        [move], [conn], probe_sender=sender, probe_receiver=receiver,
        started_at=started_at, finished_at=time.time(),
    )  # fmt: skip
    text = report.render_text()
    assert report.ok and report.resets == 0, text
    (m,) = report.moves
    assert m.interruption_ms is not None and 1950 <= m.interruption_ms <= 2300, text
    assert 190 <= m.probes_lost <= 215, text
    assert m.tcp_stall_ms >= 1900, text
    for d in report.connections[0].directions:
        assert d.complete and d.verified > 500_000 and d.longest_gap_ms >= 1950, text


def test_a_blackout_that_never_ends_is_a_timeout_within_the_user_timeout(
    make_netns: MakeNetns,
) -> None:
    ns = make_netns("dead")
    _prepare(ns)
    pair = StreamPair.start(
        _popen_in(ns), ConnectionSpec("cn dials mn", "cn", "mn"), address=LOOPBACK, port=0,
        listen=LOOPBACK, seed=6, rate=100_000, duration=30,
        options=["--user-timeout", "2", "--stall-timeout", "30"],
    )  # fmt: skip
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        _blackout(ns, True)
        spec, client, server = pair.reports(20)
        elapsed = time.monotonic() - t0
    finally:
        pair.close()
    assert client is not None and server is not None
    assert 1.5 <= elapsed <= 8
    for end in (client, server):
        assert end.outcome == "timeout", end
        assert end.error is not None and "ETIMEDOUT" in end.error
        assert end.mismatched_bytes == 0
    assert not build_report([], [(spec, client, server)], started_at=0, finished_at=1).ok
