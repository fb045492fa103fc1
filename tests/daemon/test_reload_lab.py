"""SIGHUP on real daemons in the lab (issue 15): the mobile node changes its lifetime in
place (the next registration asks for the new one, same process), refuses a key that
needs a restart naming it, keeps running on the old configuration when the file is
invalid; the home agent refuses an ``[aaa]`` change naming the key and keeps running."""

from __future__ import annotations

import re
import signal

import pytest

from .test_lab_daemons import Daemons, daemons  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _line(d: Daemons, event: str, n: int = 1) -> str:
    d.wait(lambda: d.logs().count(event) >= n, 15, f"{event} x{n}")
    return [x for x in d.logs().splitlines() if event in x][n - 1]


def test_mn_lifetime_in_place_restart_key_refused_invalid_file_kept(
    daemons: Daemons,  # noqa: F811
) -> None:
    d, lab = daemons, daemons.lab
    for n in ("ha", "fa1", "mn"):
        d.start(n)
    d.answering("ha", "fa1", "mn")
    d.wait(lambda: (d.status("mn") or {})["mobile_node"]["state"] == "at home", 15, "at home")
    mn = d.status("mn")
    assert mn is not None
    pid = mn["pid"]
    text = d.paths["mn"].read_text()
    assert "lifetime = 300\n" in text
    # 1. lifetime: in place
    d.paths["mn"].write_text(text.replace("lifetime = 300\n", "lifetime = 123\n"))
    d.procs["mn"].send_signal(signal.SIGHUP)
    line = _line(d, "daemon.reloaded")
    assert 'applied=["mobile_node.lifetime"]' in line and "refused=[]" in line, line
    lab.move("a")
    d.registered_via("fa1")
    ha = d.status("ha")
    assert ha is not None
    (binding,) = ha["home_agent"]["bindings"]
    assert binding["lifetime"] == 123  # asked for by the same mobile node process
    assert (d.status("mn") or {}).get("pid") == pid
    # 2. a key that needs a restart: refused, named, the running value stays
    d.paths["mn"].write_text(
        text.replace("lifetime = 300\n", "lifetime = 123\n").replace(
            'reverse_tunnel = "prefer"', 'reverse_tunnel = "off"'
        )
    )
    d.procs["mn"].send_signal(signal.SIGHUP)
    line = _line(d, "daemon.reload_refused")
    assert "key=mobile_node.reverse_tunnel" in line, line
    # 3. an invalid file: the daemon keeps running on what it has
    d.paths["mn"].write_text(text.replace("lifetime = 300\n", "lifetime = -1\n"))
    d.procs["mn"].send_signal(signal.SIGHUP)
    line = _line(d, "daemon.reload_failed")
    assert str(d.paths["mn"]) in line and "mobile_node" in line and "lifetime" in line, line
    mn = d.status("mn")
    assert mn is not None and mn["pid"] == pid and mn["mobile_node"]["registered"]
    # 4. the home agent and [aaa]: refused naming the key, the daemon keeps running
    ha_pid = ha["pid"]
    ha_text = d.paths["ha"].read_text()
    d.paths["ha"].write_text(
        ha_text + '\n[aaa]\ntimeout = 2.0\n[[aaa.servers]]\naddress = "127.0.0.1"\nsecret = "s"\n'
    )
    d.procs["ha"].send_signal(signal.SIGHUP)
    # one daemon.reload_refused line a key, written one after the other: wait for both
    # (reading the log between the two lines failed now and then)
    d.wait(
        lambda: "key=aaa.servers" in d.logs() and "key=aaa.timeout" in d.logs(),
        15,
        "aaa refused",
    )
    refused = [x for x in d.logs().splitlines() if "daemon.reload_refused" in x]
    assert {re.search(r"key=(\S+)", x).group(1) for x in refused} >= {  # type: ignore[union-attr]
        "aaa.servers",
        "aaa.timeout",
    }
    ha = d.status("ha")
    assert ha is not None and ha["pid"] == ha_pid and ha["home_agent"]["bindings"]
    for node in ("mn", "fa1", "ha"):
        assert d.stop(node) == 0, d.logs()
