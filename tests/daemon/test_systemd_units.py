"""Issue 15: the systemd units of the three roles (``contrib/systemd/mip4-{ha,fa,mn}.service``)
pass ``systemd-analyze verify`` and follow the conventions: ``/etc/mip4/<role>.toml``, a
``--check`` before start, SIGTERM for a clean stop, restart on failure, and hardening that
keeps what the daemons need (netlink, raw and AF_PACKET sockets, /proc/sys, /dev/net/tun).

``verify`` checks that ``ExecStart``'s program exists, so the test verifies copies whose
``/usr/bin/mip4`` is replaced by this checkout's ``mip4`` script; nothing else changes."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
ROLES = ("ha", "fa", "mn")


def mip4_script() -> Path:
    script = Path(sys.executable).parent / "mip4"
    assert script.exists(), f"{script} missing: run scripts/setup.sh"
    return script


def unit(role: str) -> configparser.ConfigParser:
    p = configparser.ConfigParser(strict=False, interpolation=None)
    p.optionxform = str  # type: ignore[assignment,method-assign]
    p.read_string((UNITS / f"mip4-{role}.service").read_text())
    return p


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, (
        "systemd-analyze is missing: install Debian's systemd package (scripts/setup.sh does)"
    )
    script = mip4_script()
    copies = []
    for role in ROLES:
        text = (UNITS / f"mip4-{role}.service").read_text()
        assert text.count("/usr/bin/mip4 ") == 2
        copy = tmp_path / f"mip4-{role}.service"
        copy.write_text(text.replace("/usr/bin/mip4 ", f"{script} "))
        copies.append(str(copy))
    r = subprocess.run([tool, "verify", *copies], capture_output=True, text=True, timeout=60)
    ours = [line for line in (r.stdout + r.stderr).splitlines() if "mip4-" in line]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr


@pytest.mark.parametrize("role", ROLES)
def test_unit_conventions(role: str) -> None:
    u = unit(role)
    s = u["Service"]
    conf = f"/etc/mip4/{role}.toml"
    assert s["Type"] in ("simple", "notify")
    assert s["ExecStart"] == f"/usr/bin/mip4 {role} --config {conf}"
    assert s["ExecStartPre"] == f"/usr/bin/mip4 {role} --config {conf} --check"
    assert u["Unit"]["ConditionPathExists"] == conf
    assert s["KillSignal"] == "SIGTERM"
    assert s["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert s["Restart"] == "on-failure"
    assert s["RuntimeDirectory"] == "mip4" and s["RuntimeDirectoryPreserve"] == "yes"
    assert u["Install"]["WantedBy"] == "multi-user.target"
    caps = set(s["CapabilityBoundingSet"].split())
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"} <= caps
    families = set(s["RestrictAddressFamilies"].split())
    assert {"AF_UNIX", "AF_INET", "AF_NETLINK", "AF_PACKET"} <= families
    assert s["NoNewPrivileges"] == "yes" and s["ProtectSystem"] == "strict"
    # what would break the daemons: read-only /proc/sys, no /dev/net/tun, no namespaces
    for breaking in ("ProtectKernelTunables", "PrivateDevices", "PrivateNetwork"):
        assert breaking not in s, breaking
