"""The subagent through a real net-snmp ``snmpd`` (Debian's package): ``snmpwalk``,
``snmpget`` and ``snmptable`` with numeric OIDs return the values of status snapshots of
real engines, and after ``snmpd`` restarts the subagent reconnects and answers again.

Each test runs its own ``snmpd`` (``master agentx``, the AgentX socket in a temporary
directory, a read-only community restricted to ``mipMIB`` on 127.0.0.1 and a free UDP
port) and stops everything it started, also on failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from mip4.io.agentx import AgentXSubagent
from mip4.snmp.agentx import VarType
from mip4.snmp.mib import MIP_MIB, OBJECTS, MibView, ViolationReason, auth_failure, view

from .snapshots import role_snapshots

SNMPD = shutil.which("snmpd") or ("/usr/sbin/snmpd" if Path("/usr/sbin/snmpd").exists() else None)
pytestmark = [
    pytest.mark.skipif(
        SNMPD is None or shutil.which("snmpwalk") is None,
        reason="needs Debian's snmpd and snmp packages (scripts/setup.sh installs them)",
    ),
    pytest.mark.timeout(120),
]
COMMUNITY = "mip4test"
MIB = "." + ".".join(map(str, MIP_MIB))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Snmpd:
    """One ``snmpd -f`` with a generated configuration under ``directory``."""

    def __init__(self, directory: Path, trap_port: int | None = None) -> None:
        self.dir = directory
        self.socket = directory / "agentx.sock"
        self.port = free_udp_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        (directory / "snmpd.conf").write_text(
            "master agentx\n"
            f"agentXSocket {self.socket}\n"
            "agentXPerms 0600 0700\n"
            "agentXTimeout 5\n"
            f"rocommunity {COMMUNITY} 127.0.0.1 {MIB}\n"
            f"agentaddress udp:127.0.0.1:{self.port}\n"
            "dontLogTCPWrappersConnects yes\n"
            + (f"trap2sink udp:127.0.0.1:{trap_port} {COMMUNITY}\n" if trap_port else "")
        )
        (directory / "client").mkdir()
        self.env = {
            **os.environ,
            "SNMPCONFPATH": str(directory / "client"),
            "SNMP_PERSISTENT_DIR": str(directory / "persist"),
            "MIBS": "",
            "MIBDIRS": str(directory),
        }

    async def start(self) -> None:
        assert SNMPD is not None
        self.starts += 1
        log = open(self.dir / f"snmpd-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = await asyncio.create_subprocess_exec(
            SNMPD,
            "-f",
            "-C",
            "-c",
            str(self.dir / "snmpd.conf"),
            "-Lf",
            str(self.dir / f"snmpd-{self.starts}.msgs"),
            "-p",
            str(self.dir / "snmpd.pid"),
            stdout=log,
            stderr=log,
            env=self.env,
        )
        log.close()
        for _ in range(100):  # the master socket appears once snmpd is ready
            if self.socket.exists() and await self._answers():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"snmpd did not start: {self.log()}")

    async def _answers(self) -> bool:
        rc, _ = await self.tool("snmpget", ".1.3.6.1.2.1.44.0")
        return rc == 0

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return "".join(p.read_text(errors="replace")[-2000:] for p in self.dir.glob("snmpd-*"))

    async def tool(self, name: str, *args: str) -> tuple[int, str]:
        """Run an snmp tool against this snmpd: options, then the OIDs (or a table name)."""
        first = next(i for i, a in enumerate(args) if a.startswith(".") or "::" in a)
        proc = await asyncio.create_subprocess_exec(
            name,
            "-v2c",
            "-c",
            COMMUNITY,
            "-t",
            "2",
            "-r",
            "1",
            *args[:first],
            f"127.0.0.1:{self.port}",
            *args[first:],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        out, err = await proc.communicate()
        # stderr only on failure: the tools warn about the master's socket they do not use
        rc = proc.returncode or 0
        return rc, out.decode() + (err.decode() if rc else "")


@asynccontextmanager
async def running(
    tmp_path: Path, snapshot: Mapping[str, Any], trap_port: int | None = None
) -> AsyncIterator[tuple[Snmpd, AgentXSubagent]]:
    d = Snmpd(tmp_path, trap_port)
    agent = AgentXSubagent(lambda: snapshot, str(d.socket), ping_interval=1.0, retry_max=0.5)
    task: asyncio.Task[None] | None = None
    try:
        await d.start()
        task = asyncio.create_task(agent.run())
        await agent.wait_registered(10)
        yield d, agent
    finally:
        agent.stop()
        if task is not None:
            try:
                await asyncio.wait_for(task, 5)
            except TimeoutError:
                task.cancel()
        await d.stop()


def rendered(v: MibView) -> dict[str, str]:
    """What ``snmpwalk -On -Oq -Ox -Oe`` prints for each instance of the view."""
    out = {}
    for oid, (t, value) in zip(v.oids, v.values, strict=True):
        if t is VarType.IP_ADDRESS:
            assert isinstance(value, bytes)
            text = ".".join(map(str, value))
        elif isinstance(value, bytes):
            text = " ".join(f"{b:02X}" for b in value)
        else:
            text = str(value)
        out["." + ".".join(map(str, oid))] = text
    return out


def parsed(walk: str) -> dict[str, str]:
    out = {}
    for line in walk.splitlines():
        if "No more variables left in this MIB View" in line:
            continue  # the walk's end (endOfMibView), printed by net-snmp
        oid, _, value = line.partition(" ")
        out[oid] = value.strip().strip('"').strip()
    return out


WALK = ("-On", "-Oq", "-Ox", "-Oe")


@pytest.mark.parametrize("role", ["ha", "ha3", "fa", "mn"])
def test_walk_matches_the_status_snapshot(tmp_path: Path, role: str) -> None:
    snapshot = role_snapshots()[role]
    expected = rendered(view(snapshot))
    assert len(expected) > 10

    async def main() -> None:
        async with running(tmp_path, snapshot) as (d, _):
            rc, out = await d.tool("snmpwalk", *WALK, MIB)
            assert rc == 0, out
            assert parsed(out) == expected, d.log()
            rc, out = await d.tool("snmpbulkwalk", *WALK, MIB)
            assert rc == 0 and parsed(out) == expected

    asyncio.run(main())


def test_get_and_table_of_the_bindings(tmp_path: Path) -> None:
    """A home agent with three bindings (made through ``handle()``) and a denial."""
    snapshot = role_snapshots()["ha3"]
    bindings = snapshot["home_agent"]["bindings"]
    assert len(bindings) == 3
    b = bindings[0]
    index = f"{b['home_address']}.{b['care_of_address']}"

    def oid(name: str, suffix: str) -> str:
        return "." + ".".join(map(str, OBJECTS[name])) + "." + suffix

    async def main() -> None:
        async with running(tmp_path, snapshot) as (d, _):
            rc, out = await d.tool(
                "snmpget",
                *WALK,
                oid("haMobilityBindingCOA", index),
                oid("haMobilityBindingTimeGranted", index),
                oid("haRegistrationAccepted", "0"),
                oid("haMNAuthenticationFailure", "0"),
                oid("haMobilityBindingCOA", "1.2.3.4.5.6.7.8"),
            )
            assert rc == 0, out
            lines = out.splitlines()
            assert lines[0].endswith(f" {b['care_of_address']}")
            assert lines[1].endswith(f" {b['lifetime']}")
            assert lines[2].endswith(" 3")  # counters.accepted "0 accepted": 3
            assert lines[3].endswith(" 1")  # counters.denied "131 ha_mn_failed_auth": 1
            assert "No Such Instance" in lines[4]
            table = skeleton_mib(tmp_path)
            rc, out = await d.tool(
                "snmptable", "-M", str(tmp_path), "-m", table, "-Ci", "-Cf", "|", "-Oq",
                f"{table}::haMobilityBindingTable",
            )  # fmt: skip
            assert rc == 0, out
            header, *rows = [
                [cell.split(": ", 1)[-1] for cell in line.split("|")]  # "Gauge32: 5" -> "5"
                for line in out.splitlines()
                if line.count("|") >= 8
            ]
            assert header[1:3] == ["haMobilityBindingMN", "haMobilityBindingCOA"]
            col = {name: header.index(name) for name in header[1:]}
            assert len(rows) == 3
            for row, r in zip(rows, sorted(bindings, key=_index), strict=True):
                assert row[0] == f"{r['home_address']}.{r['care_of_address']}"
                assert row[col["haMobilityBindingMN"]] == r["home_address"]
                assert row[col["haMobilityBindingCOA"]] == r["care_of_address"]
                assert row[col["haMobilityBindingSourceAddress"]] == r["source"]
                assert row[col["haMobilityBindingTimeGranted"]] == str(r["lifetime"])
                remaining = row[col["haMobilityBindingTimeRemaining"]]
                assert remaining == str(int(r["remaining"]))

    asyncio.run(main())


def _index(b: Mapping[str, Any]) -> tuple[int, ...]:
    """A binding's table index as SNMP orders it (numerically, home address first)."""
    return tuple(int(x) for a in (b["home_address"], b["care_of_address"]) for x in a.split("."))


def test_reconnects_after_snmpd_restarts(tmp_path: Path) -> None:
    snapshot = role_snapshots()["fa"]
    expected = rendered(view(snapshot))

    async def main() -> None:
        async with running(tmp_path, snapshot) as (d, agent):
            assert agent.sessions == 1
            await d.stop()
            rc, _ = await d.tool("snmpget", "-On", MIB + ".1.1.1.0")
            assert rc != 0  # nobody answers while snmpd is down
            await d.start()
            for _ in range(100):  # bounded: 10 s
                if agent.sessions == 2 and agent.registered:
                    break
                await asyncio.sleep(0.1)
            assert agent.sessions == 2 and agent.registered, d.log()
            rc, out = await d.tool("snmpwalk", *WALK, MIB)
            assert rc == 0 and parsed(out) == expected, out

    asyncio.run(main())


def test_subagent_started_before_snmpd_connects_when_it_comes(tmp_path: Path) -> None:
    snapshot = role_snapshots()["mn"]
    expected = rendered(view(snapshot))

    async def main() -> None:
        d = Snmpd(tmp_path)
        agent = AgentXSubagent(lambda: snapshot, str(d.socket), retry_max=0.5)
        task = asyncio.create_task(agent.run())
        try:
            await asyncio.sleep(1.0)  # a few refused connects
            assert not agent.registered
            await d.start()
            await agent.wait_registered(10)
            rc, out = await d.tool("snmpwalk", *WALK, MIB)
            assert rc == 0 and parsed(out) == expected, out
        finally:
            agent.stop()
            await asyncio.wait_for(task, 5)
            await d.stop()

    asyncio.run(main())


def test_auth_failure_notification_reaches_the_trap_sink(tmp_path: Path) -> None:
    """mipAuthFailure (RFC 4295) sent as an AgentX Notify leaves snmpd as an SNMPv2 trap
    carrying the notification OID and the violator's address (BER, read off the wire)."""
    snapshot = role_snapshots()["ha"]
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    trap_oid = bytes.fromhex("06092b060102012c020001")  # OID 1.3.6.1.2.1.44.2.0.1
    violator = bytes.fromhex("4004c0000263")  # IpAddress 192.0.2.99

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with running(tmp_path, snapshot, sink.getsockname()[1]) as (_, agent):
            trap, varbinds = auth_failure(
                "192.0.2.99", 258, (7 << 32) | 9, ViolationReason.BAD_AUTHENTICATOR
            )
            assert await agent.notify(trap, varbinds, uptime=100)
            deadline = loop.time() + 10
            while True:  # snmpd also sends its own coldStart trap
                remaining = deadline - loop.time()
                assert remaining > 0, "no mipAuthFailure trap arrived"
                data = await asyncio.wait_for(loop.sock_recv(sink, 65535), remaining)
                if trap_oid in data:
                    break
            assert violator in data

    try:
        asyncio.run(main())
    finally:
        sink.close()


def skeleton_mib(directory: Path) -> str:
    """A minimal SMI module naming the binding table's columns, generated from
    :data:`OBJECTS` (the RFC's module text is not in the repository: docs/mib.md), so that
    ``snmptable`` knows the table's shape. Returns the module name."""
    name = "MIP4-SKELETON-MIB"
    syntax = {
        "haMobilityBindingMN": "IpAddress",
        "haMobilityBindingCOA": "IpAddress",
        "haMobilityBindingSourceAddress": "IpAddress",
        "haMobilityBindingRegFlags": "OCTET STRING",
        "haMobilityBindingRegIDLow": "INTEGER",
        "haMobilityBindingRegIDHigh": "INTEGER",
        "haMobilityBindingTimeGranted": "INTEGER",
        "haMobilityBindingTimeRemaining": "Gauge32",
    }
    entry = OBJECTS["haMobilityBindingMN"][:-1]
    parent = ".".join(map(str, entry[6:-2]))
    lines = [
        f"{name} DEFINITIONS ::= BEGIN",
        f"mip4Skeleton OBJECT IDENTIFIER ::= {{ iso 3 6 1 2 1 {parent.replace('.', ' ')} }}",
        "haMobilityBindingTable OBJECT-TYPE SYNTAX SEQUENCE OF HaEntry",
        ' MAX-ACCESS not-accessible STATUS current DESCRIPTION ""',
        f" ::= {{ mip4Skeleton {entry[-2]} }}",
        "haMobilityBindingEntry OBJECT-TYPE SYNTAX HaEntry MAX-ACCESS not-accessible",
        ' STATUS current DESCRIPTION ""',
        " INDEX { haMobilityBindingMN, haMobilityBindingCOA }",
        f" ::= {{ haMobilityBindingTable {entry[-1]} }}",
        "HaEntry ::= SEQUENCE { " + ", ".join(f"{col} {syn}" for col, syn in syntax.items()) + " }",
    ]
    for col, syn in syntax.items():
        lines.append(
            f'{col} OBJECT-TYPE SYNTAX {syn} MAX-ACCESS read-only STATUS current DESCRIPTION ""'
            f" ::= {{ haMobilityBindingEntry {OBJECTS[col][-1]} }}"
        )
    lines.append("END")
    (directory / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return name
