"""What the system tests share: a lab id per test, the two verified TCP connections of the
mobility tests, and the check that nothing of a lab is left behind (namespaces, links,
nftables tables, TUN devices, state, processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mip4.demo.report import ConnectionSpec
from mip4.demo.runner import StreamPair
from mip4.io.netns import list_netns
from mip4.lab.build import Lab

#: the mobile node's home address and the correspondent's address in the lab
MN, CN = "10.1.0.100", "198.51.100.10"


def lab_id(prefix: str) -> str:
    """The lab id of a test prefix (``m4`` + 5 hex digits → the 5 digits)."""
    return prefix[2:]


def start_both_ways(lab: Lab, duration: float, pairs: list[StreamPair]) -> None:
    """The correspondent dials the mobile node's home address and the node dials the
    correspondent; each connection streams verified data both ways (150 kB/s, for at most
    ``duration`` s). Each is appended to ``pairs`` as soon as it runs, so the caller's
    ``finally`` stops whatever started even when the second fails to."""
    for spec, address, port in (
        (ConnectionSpec("cn dials mn", "cn", "mn"), MN, 5001),
        (ConnectionSpec("mn dials cn", "mn", "cn"), CN, 5002),
    ):
        pairs.append(
            StreamPair.start(
                lab.popen,
                spec,
                address=address,
                port=port,
                listen=address,
                seed=port,
                rate=150_000,
                duration=duration,
                progress=0.1,
            )
        )


def delivered(pairs: list[StreamPair]) -> list[int]:
    """Bytes received so far in each of the four directions."""
    out = []
    for p in pairs:
        prog = p.progress()
        out += [prog.get(end, {}).get("received", 0) for end in ("client", "server")]
    return out


def _netns_inode(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def stray_processes(markers: tuple[str, ...]) -> list[str]:
    """Processes whose command line names one of ``markers`` (a lab prefix, an output
    directory) and processes of the project (``mip4``) that run in a network namespace no
    longer reachable by name: left behind by a teardown."""
    named = {
        os.stat(f"/run/netns/{n}").st_ino for n in list_netns() if Path(f"/run/netns/{n}").exists()
    }
    named.add(os.stat("/proc/self/ns/net").st_ino)
    me = str(os.getpid())
    out = []
    for entry in Path("/proc").iterdir():
        pid = entry.name
        if not pid.isdigit() or pid == me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if not cmd:
            continue
        if any(m in cmd for m in markers):
            out.append(f"pid {pid}: {cmd.strip()[:120]}")
        elif "mip4" in cmd and _netns_inode(pid) not in (*named, None):
            out.append(f"pid {pid} in an unnamed namespace: {cmd.strip()[:120]}")
    return out


def leftovers(prefix: str, *markers: str) -> list[str]:
    """Everything of the lab ``prefix`` that still exists."""
    found = [f"netns {n}" for n in list_netns() if n.startswith(prefix)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefix):
            found.append(f"link {name}")
    tuns = Path("/sys/class/net")
    found += [f"tun {p.name}" for p in tuns.iterdir() if p.name.startswith(prefix)]
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [f"nft {t}" for t in nft.splitlines() if prefix in t]
    found += [f"dir {d}" for d in Path("/run").glob(f"mip4-lab-{prefix[2:]}*")]
    found += stray_processes((f"{prefix}-", *markers))
    return found


def cli_status(socket_path: Path) -> dict[str, Any]:
    """``mip4 status --socket PATH --json``, as a user runs it (bounded)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mip4.cli", "status", "--socket", str(socket_path), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    status: dict[str, Any] = json.loads(proc.stdout)
    return status
