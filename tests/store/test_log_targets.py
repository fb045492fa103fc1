"""``[daemon] log_target``: syslog and journald (issue 15). The sockets are real AF_UNIX
datagram sockets bound by the test where ``/dev/log`` and the journal's socket would be;
what arrives is parsed as syslogd (RFC 3164) and journald (native protocol) read it."""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.daemon import logs
from mip4.daemon.config import ConfigError, LogFormat, LogLevel, parse_config


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def _restore(handler: logging.Handler) -> None:
    handler.close()
    logging.getLogger("mip4").handlers[:] = []


def parse_journal(data: bytes) -> dict[str, str]:
    """The journal's native protocol, as journald reads it."""
    out: dict[str, str] = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            out[key.decode()] = value.decode()
            i = nl + 1
        else:
            (n,) = struct.unpack("<Q", data[nl + 1 : nl + 9])
            out[line.decode()] = data[nl + 9 : nl + 9 + n].decode()
            assert data[nl + 9 + n : nl + 10 + n] == b"\n"
            i = nl + 10 + n
    return out


def test_syslog_target_sends_rfc3164_datagrams(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    handler = logs.setup(LogFormat.TEXT, LogLevel.INFO, "ha", "home1", target="syslog",
                         socket_path=path)  # fmt: skip
    try:
        logs.event("ha.registration", home_address=IPv4Address("10.1.0.100"), code=0)
        logs.event("daemon.store_commit_failed", logging.ERROR, error="disk full")
        first, second = sock.recv(4096).decode(), sock.recv(4096).decode()
    finally:
        _restore(handler)
    # <PRI> = facility daemon (3) * 8 + severity: info 6, error 3
    assert first.startswith(f"<30>mip4-ha[{os.getpid()}]: ")
    assert "ha[home1] ha.registration home_address=10.1.0.100 code=0" in first
    assert second.startswith("<27>") and "disk full" in second


def test_journald_target_sends_native_fields(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    handler = logs.setup(LogFormat.JSON, LogLevel.DEBUG, "fa", "fa1", target="journald",
                         socket_path=path)  # fmt: skip
    try:
        logs.event("fa.restored", visitors=3, expired=0, note="two\nlines")
        logs.event("daemon.reload_refused", logging.WARNING, key="store.path")
        one, two = parse_journal(sock.recv(65536)), parse_journal(sock.recv(65536))
    finally:
        _restore(handler)
    assert one["PRIORITY"] == "6" and one["SYSLOG_IDENTIFIER"] == "mip4-fa"
    assert one["SYSLOG_PID"] == str(os.getpid())
    assert one["MIP4_EVENT"] == "fa.restored" and one["MIP4_NAME"] == "fa1"
    assert (one["MIP4_VISITORS"], one["MIP4_EXPIRED"]) == ("3", "0")
    assert one["MIP4_NOTE"] == "two\nlines"  # the length-prefixed form
    assert '"event": "fa.restored"' in one["MESSAGE"] or '"event":"fa.restored"' in one["MESSAGE"]
    assert two["PRIORITY"] == "4" and two["MIP4_KEY"] == "store.path"


def test_journal_field_names() -> None:
    assert logs.journal_field("home_address") == "MIP4_HOME_ADDRESS"
    assert logs.journal_field("a-b.c") == "MIP4_A_B_C"
    assert len(logs.journal_field("x" * 100)) == 64


def test_log_target_keys_are_checked() -> None:
    base = {
        "home_agent": {"address": "10.0.0.1", "home_network": "10.0.0.0/24", "interface": "e0"},
        "security_associations": [{"peer": "10.0.0.10", "spi": 256, "key": "11" * 16}],
    }
    cfg = parse_config("ha", {**base, "daemon": {"log_target": "journald"}}, "ha.toml")
    assert cfg.daemon.log_target == "journald" and cfg.daemon.log_socket is None
    with pytest.raises(ConfigError, match=r"^ha\.toml: daemon: log_target: 'kafka' is not"):
        parse_config("ha", {**base, "daemon": {"log_target": "kafka"}}, "ha.toml")
    with pytest.raises(ConfigError, match=r"log_socket: must not be empty"):
        parse_config("ha", {**base, "daemon": {"log_socket": ""}}, "ha.toml")


def test_an_unreachable_log_socket_stops_the_daemon_with_exit_2(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    conf = tmp_path / "mn.toml"
    text = (examples / "mn.toml").read_text()
    missing = tmp_path / "no-journal.sock"
    text = text.replace("[daemon]", f'[daemon]\nlog_target = "journald"\nlog_socket = "{missing}"')
    assert "log_target" in text
    conf.write_text(text)
    r = subprocess.run(
        [sys.executable, "-m", "mip4.cli", "mn", "--config", str(conf)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"mip4 mn: {conf}: daemon.log_socket: cannot log to journald at ")
    assert str(missing) in r.stderr and r.stderr.count("\n") == 1
