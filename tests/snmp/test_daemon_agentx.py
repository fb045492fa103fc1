"""Issue 15: ``mip4 ha`` with ``[snmp] agentx_socket`` serves the RFC 4295 MIB through a
real net-snmp ``snmpd``: the mobile node registers through FA1 (real daemons in the lab's
namespaces), ``snmpwalk`` of the home agent's subtree with numeric OIDs returns the
binding and the counters of ``mip4 status --json``, and after ``snmpd`` restarts the
subagent reconnects and the walk answers again. SIGTERM still stops the daemon cleanly."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from mip4.lab import Lab
from mip4.snmp.mib import MIP_HA, OBJECTS, view

from ..daemon.test_lab_daemons import Daemons
from .test_snmpd import SNMPD, WALK, Snmpd, parsed, rendered

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(SNMPD is None, reason="needs Debian's snmpd (scripts/setup.sh)"),
]

HA_SUBTREE = "." + ".".join(map(str, MIP_HA))
#: changes every second: left out of the comparison
REMAINING = "." + ".".join(map(str, OBJECTS["haMobilityBindingTimeRemaining"])) + "."


def expected(status: dict[str, Any]) -> dict[str, str]:
    return {
        oid: value
        for oid, value in rendered(view(status)).items()
        if oid.startswith(HA_SUBTREE + ".") and not oid.startswith(REMAINING)
    }


def walked(out: str) -> dict[str, str]:
    return {oid: v for oid, v in parsed(out).items() if not oid.startswith(REMAINING)}


def test_mip4_ha_serves_the_mib_through_snmpd(prefix: str, tmp_path: Path) -> None:
    snmp_dir = tmp_path / "snmp"
    snmp_dir.mkdir()
    snmpd = Snmpd(snmp_dir)
    with Lab(prefix[2:], ingress_filter=True) as lab:
        d = Daemons(lab, tmp_path)
        with d.paths["ha"].open("a") as f:
            f.write(f'\n[snmp]\nagentx_socket = "{snmpd.socket}"\nping_interval = 1.0\n')

        async def walk_matches(what: str) -> None:
            last = ""
            for _ in range(40):
                before = await asyncio.to_thread(d.status, "ha")
                rc, out = await snmpd.tool("snmpwalk", *WALK, HA_SUBTREE)
                after = await asyncio.to_thread(d.status, "ha")
                assert before is not None and after is not None, d.logs()
                want = expected(before)
                if rc == 0 and want == expected(after) and walked(out) == want:
                    assert any(o.startswith(REMAINING) for o in parsed(out)), out
                    return
                last = f"rc={rc}\n{out}\nwant {want}"
                await asyncio.sleep(0.5)
            raise AssertionError(f"{what}: walk != status\n{last}\n{snmpd.log()}\n{d.logs()}")

        async def main() -> None:
            try:
                await snmpd.start()
                for node in ("ha", "fa1", "mn"):
                    d.start(node)
                await asyncio.to_thread(d.answering, "ha", "fa1", "mn")

                def at_home() -> bool:
                    return bool((d.status("mn") or {})["mobile_node"]["state"] == "at home")

                await asyncio.to_thread(d.wait, at_home, 15, "at home")
                await asyncio.to_thread(lab.move, "a")
                await asyncio.to_thread(d.registered_via, "fa1")
                status = d.status("ha")
                assert status is not None and len(status["home_agent"]["bindings"]) == 1
                await walk_matches("first walk")
                accepted = "." + ".".join(map(str, OBJECTS["haRegistrationAccepted"])) + ".0"
                rc, out = await snmpd.tool("snmpget", *WALK, accepted)
                assert rc == 0 and int(out.split()[-1]) >= 1, out
                await snmpd.stop()  # snmpd restarts: the subagent reconnects
                await snmpd.start()
                await walk_matches("after snmpd restarted")
                assert "agentx" in d.logs()
                assert await asyncio.to_thread(d.stop, "mn") == 0, d.logs()
                assert await asyncio.to_thread(d.stop, "ha", signal.SIGTERM) == 0, d.logs()
            finally:
                d.kill_all()
                await snmpd.stop()

        asyncio.run(main())
