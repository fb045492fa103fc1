"""Issue 9 items 7 and 8: files that are not UTF-8 or not regular files, and values that
parse but cannot work, are refused with one line naming the file and the key (exit 2)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tomllib
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from mip4.daemon.config import ConfigError, load_config, parse_config
from mip4.daemon.validate import (
    MAX_CONFIG_BYTES,
    FileRefused,
    check_local_addresses,
    interface_addresses,
    read_regular_file,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEY = "000102030405060708090a0b0c0d0e0f"
HA = '[home_agent]\naddress = "10.1.0.2"\nhome_network = "10.1.0.0/24"\n'
FA = '[foreign_agent]\n[[foreign_agent.links]]\ninterface = "e0"\naddress = "10.2.0.2"\n'
MN = (
    '[mobile_node]\nhome_address = "10.1.0.100"\nhome_agent = "10.1.0.2"\n'
    '[io]\ninterfaces = ["e0"]\n'
)
SA = '[[security_associations]]\npeer = "{peer}"\nspi = 256\nkey = "{key}"\n'


def _limit_memory() -> None:
    """In the child: a regression that reads a device whole fails fast instead of filling
    the machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mip4.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=_limit_memory,
    )


# ---------------------------------------------------------------------------------------------
# Item 7: the files themselves
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["ha", "fa", "mn"])
@pytest.mark.parametrize(
    ("content", "where"),
    [(b"\xff\xfe", "offset 0, line 1"), (b"# caf\xe9\n", "offset 5, line 1")],
    ids=["bom-like", "latin1-comment"],
)
def test_a_file_that_is_not_utf8_is_one_line_exit_2(
    role: str, content: bytes, where: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(content + (EXAMPLES / f"{role}.toml").read_bytes())
    r = run(role, "--config", str(bad), "--check")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"mip4 {role}: {bad}: not UTF-8 text")
    assert where in r.stderr


def test_a_device_is_refused_unread() -> None:
    r = run("ha", "--config", "/dev/zero", "--check")  # first in a child (see _limit_memory)
    assert r.returncode == 2
    assert r.stderr == "mip4 ha: /dev/zero: cannot read: a character device, not a regular file\n"
    with pytest.raises(ConfigError, match=r"^/dev/zero: cannot read: a character device"):
        load_config("ha", "/dev/zero")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    r = run("ha", "--config", str(fifo), "--check")  # a child first: it may not block
    assert r.returncode == 2 and r.stderr.endswith(
        "fifo.toml: cannot read: a FIFO, not a regular file\n"
    )
    with pytest.raises(ConfigError, match=r"fifo\.toml: cannot read: a FIFO, not a regular"):
        load_config("ha", fifo)  # no writer: opening it must not block
    with pytest.raises(ConfigError, match=r"cannot read: a directory"):
        load_config("ha", tmp_path)


def test_a_file_too_large_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(HA.encode() + b"#" * MAX_CONFIG_BYTES)
    with pytest.raises(ConfigError, match=r"big\.toml: cannot read: \d+ bytes, larger than"):
        load_config("ha", big)
    with pytest.raises(FileRefused, match="larger than the limit of 4"):
        read_regular_file(big, 4)
    assert read_regular_file(big, MAX_CONFIG_BYTES * 2).startswith(b"[home_agent]")


def test_key_files_are_checked_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "mn.toml"
    path.write_text(
        MN + '[[security_associations]]\npeer = "10.1.0.2"\nspi = 300\nkey_file = "k"\n'
    )
    (tmp_path / "k").write_bytes(b"00112233\xe9")
    with pytest.raises(ConfigError, match=r"security_associations\[0\]: key_file .*not UTF-8"):
        load_config("mn", path)
    (tmp_path / "k").unlink()
    (tmp_path / "k").symlink_to("/dev/zero")
    r = run("mn", "--config", str(path), "--check")  # a child first (see _limit_memory)
    assert r.returncode == 2 and "key_file: cannot read" in r.stderr and "device" in r.stderr
    with pytest.raises(
        ConfigError, match=r"mn\.toml: security_associations\[0\]: key_file: cannot read .*device"
    ):
        load_config("mn", path)
    (tmp_path / "k").unlink()
    os.mkfifo(tmp_path / "k")
    r = run("mn", "--config", str(path), "--check")  # a child first: it may not block
    assert r.returncode == 2 and "a FIFO" in r.stderr
    with pytest.raises(ConfigError, match=r"key_file: cannot read .*: a FIFO"):
        load_config("mn", path)


# ---------------------------------------------------------------------------------------------
# Item 8: values that cannot work
# ---------------------------------------------------------------------------------------------

VALUE_ERRORS = [
    (
        "fa",
        FA + "prefix_len = 40\n",
        r"^fa\.toml: foreign_agent\.links\[0\]\.prefix_len: 40 not in 1\.\.32",
    ),
    ("fa", FA + "prefix_len = 0\n", r"^fa\.toml: foreign_agent\.links\[0\]\.prefix_len: 0 "),
    (
        "ha",
        HA + 'home_addresses = ["10.1.0.100", "10.9.0.1"]\n',
        r"^ha\.toml: home_agent\.home_addresses: 10\.9\.0\.1 is outside home_network 10\.1\.0",
    ),
    (
        "ha",
        HA + 'home_addresses = ["10.1.0.2"]\n',
        r"^ha\.toml: home_agent\.home_addresses: 10\.1\.0\.2 is the home agent's own address",
    ),
    (
        "ha",
        HA + 'home_addresses = ["10.1.0.255"]\n',
        r"^ha\.toml: home_agent\.home_addresses: 10\.1\.0\.255 is the broadcast address",
    ),
    ("ha", HA + "home_addresses = []\n", r"^ha\.toml: home_agent\.home_addresses: empty"),
    ("ha", HA + "max_bindings = 0\n", r"^ha\.toml: home_agent\.max_bindings: 0 would deny every"),
    (
        "ha",
        HA + SA.format(peer="10.1.0.2", key=KEY),
        r"^ha\.toml: security_associations\[0\]\.peer: 10\.1\.0\.2 is the home agent's own",
    ),
    (
        "mn",
        MN.replace('"10.1.0.2"', '"10.7.0.2"') + SA.format(peer="10.7.0.2", key=KEY),
        r"^mn\.toml: mobile_node\.home_agent: 10\.7\.0\.2 is outside the home network 10\.1\.0",
    ),
    (
        "mn",
        MN.replace('"10.1.0.100"', '"0.0.0.0"').replace(
            "[io]", 'home_subnet = "10.7.0.0/24"\nnai = "n@example.net"\n[io]'
        )
        + SA.format(peer="10.1.0.2", key=KEY),
        r"^mn\.toml: mobile_node\.home_agent: 10\.1\.0\.2 is outside the home network "
        r"10\.7\.0\.0/24 \(mobile_node\.home_subnet\)",
    ),
]


@pytest.mark.parametrize(("role", "text", "message"), VALUE_ERRORS)
def test_values_that_cannot_work_name_file_and_key(role: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(role, tomllib.loads(text), f"{role}.toml")


def test_value_error_on_the_command_line_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "fa.toml"
    bad.write_text((EXAMPLES / "fa.toml").read_text().replace("prefix_len = 24", "prefix_len = 40"))
    assert "prefix_len = 40" in bad.read_text()
    r = run("fa", "--config", str(bad), "--check")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "foreign_agent.links[0].prefix_len: 40 not in 1..32" in r.stderr


def test_legal_but_odd_values_are_warnings() -> None:
    cfg = parse_config("ha", tomllib.loads(HA + SA.format(peer="10.1.0.100", key="00ff")), "h")
    (w,) = cfg.warnings
    assert w.startswith("h: security_associations[0]: a 16-bit key; RFC 5944 §5.1")
    cfg = parse_config("ha", tomllib.loads(HA + SA.format(peer="10.9.0.7", key=KEY)), "h")
    (w,) = cfg.warnings
    assert "security_associations[0].peer: 10.9.0.7 is outside home_network" in w
    assert "FA-HA" in w
    text = HA + 'home_addresses = ["10.1.0.100"]\n' + SA.format(peer="10.1.0.101", key=KEY)
    (w,) = parse_config("ha", tomllib.loads(text), "h").warnings
    assert "security_associations[0].peer: 10.1.0.101 is in the home network but not in " in w
    text = MN + SA.format(peer="10.9.9.9", key=KEY)  # the only SA, used as MN-HA
    (w,) = parse_config("mn", tomllib.loads(text), "m").warnings
    assert "security_associations[0].peer: 10.9.9.9 is neither mobile_node.home_agent" in w
    for role in ("ha", "fa", "mn"):  # the examples are clean
        assert load_config(role, EXAMPLES / f"{role}.toml").warnings == ()


def test_home_agent_address_must_be_on_an_interface() -> None:
    cfg = parse_config("ha", tomllib.loads(HA + 'interface = "home0"\n'), "ha.toml")
    here = {"lo": [IPv4Interface("127.0.0.1/8")], "home0": [IPv4Interface("10.1.0.2/24")]}
    assert check_local_addresses(cfg, here) == []
    there = {"lo": [IPv4Interface("127.0.0.1/8")], "eth1": [IPv4Interface("10.1.0.2/24")]}
    (w,) = check_local_addresses(cfg, there)
    assert w == "ha.toml: home_agent.address: 10.1.0.2 is on eth1, not on home0"
    nowhere = {"lo": [IPv4Interface("127.0.0.1/8")], "home0": [IPv4Interface("10.1.0.3/24")]}
    with pytest.raises(
        ConfigError,
        match=r"^ha\.toml: home_agent\.address: 10\.1\.0\.2 is not an address of any interface",
    ):
        check_local_addresses(cfg, nowhere)
    fa = parse_config("fa", tomllib.loads(FA), "fa.toml")
    with pytest.raises(ConfigError, match=r"^fa\.toml: foreign_agent\.links\[0\]\.address: "):
        check_local_addresses(fa, nowhere)
    mn = parse_config("mn", tomllib.loads(MN + SA.format(peer="10.1.0.2", key=KEY)), "mn.toml")
    assert check_local_addresses(mn, nowhere) == []


def test_interface_addresses_reads_this_namespace() -> None:
    found = interface_addresses()
    assert any(IPv4Address("127.0.0.1") == a.ip for addrs in found.values() for a in addrs)


def test_daemon_refuses_a_home_agent_address_on_no_interface(tmp_path: Path) -> None:
    """``mip4 ha`` with a home agent address this namespace does not have: one line naming
    the file and key, exit 2, before anything is set up (issue 9 item 8)."""
    import subprocess
    import sys

    cfg = tmp_path / "ha.toml"
    example = Path(__file__).parents[2] / "examples" / "ha.toml"
    cfg.write_text(example.read_text().replace("10.1.0.2", "10.1.0.77"))
    proc = subprocess.run(
        [sys.executable, "-m", "mip4.cli", "ha", "--config", str(cfg)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{cfg}: home_agent.address: 10.1.0.77" in lines[0], lines
