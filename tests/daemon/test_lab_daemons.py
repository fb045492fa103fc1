"""The three daemons as real processes in the lab's namespaces: ``mip4 ha``, ``mip4 fa``
(FA1, FA2) and ``mip4 mn`` started with ``Lab.popen``, the mobile node registers through
FA1, ``mip4 status`` shows the home agent's binding and FA1's visitor, SIGTERM stops
everything with status 0 and leaves every namespace as it was; a SIGKILLed set restarts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mip4.lab import Lab
from mip4.lab.configs import LAB_KEY, LAB_ROLES, write_lab_configs

pytestmark = [pytest.mark.lab, pytest.mark.slow]

NODES = ("ha", "fa1", "fa2", "mn")


class Daemons:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        self.paths = write_lab_configs(lab, tmp, socket_dir=tmp)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0

    def sock(self, node: str) -> Path:
        return self.tmp / f"{node}.sock"

    def start(self, node: str) -> None:
        self.starts += 1
        log = (self.tmp / f"{node}.{self.starts}.log").open("wb")
        argv = [sys.executable, "-m", "mip4.cli", LAB_ROLES[node], "--config"]
        self.procs[node] = self.lab.popen(node, [*argv, str(self.paths[node])], stderr=log)
        log.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(self.tmp.glob("*.log")))

    def status(self, node: str) -> dict[str, Any] | None:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "mip4.cli",
                "status",
                "--socket",
                str(self.sock(node)),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if r.returncode != 0:
            return None
        result: dict[str, Any] = json.loads(r.stdout)
        return result

    def wait(self, pred: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for node, p in self.procs.items():
                assert p.poll() is None, f"{node} exited with {p.returncode}\n{self.logs()}"
            if pred():
                return
            time.sleep(0.2)
        raise AssertionError(f"not within {within} s: {what}\n{self.logs()}")

    def answering(self, *nodes: str) -> None:
        self.wait(lambda: all(self.status(n) is not None for n in nodes), 20, "control sockets")

    def registered_via(self, fa: str) -> None:
        coa = str(self.lab.address(fa))

        def ok() -> bool:
            s = self.status("mn")
            return (
                s is not None
                and s["mobile_node"]["registered"]
                and (s["mobile_node"]["care_of_address"] == coa)
            )

        self.wait(ok, 25, f"mobile node registered via {fa}")

    def stop(self, node: str, sig: int = signal.SIGTERM) -> int:
        p = self.procs.pop(node)
        p.send_signal(sig)
        return p.wait(timeout=15)

    def kill_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        self.procs.clear()


def kernel_state(lab: Lab, node: str) -> dict[str, list[str]]:
    """What a daemon may create, as text lines, per kind (dynamic neighbour entries and
    counters left out)."""

    def lines(*argv: str) -> list[str]:
        r = lab.exec(node, list(argv), check=True)
        return sorted(x.strip() for x in r.stdout.splitlines() if x.strip())

    links = [x.split(":")[1].strip().split("@")[0] for x in lines("ip", "-o", "link")]
    return {
        "links": sorted(links),
        "addresses": lines("ip", "-o", "-4", "addr", "show"),
        "routes": lines("ip", "-4", "route", "show", "table", "all"),
        "rules": lines("ip", "-4", "rule", "show"),
        "proxy": lines("ip", "neigh", "show", "proxy"),
        "permanent": [x for x in lines("ip", "-4", "neigh", "show") if "PERMANENT" in x],
    }


@pytest.fixture
def daemons(prefix: str, tmp_path: Path) -> Iterator[Daemons]:
    with Lab(prefix[2:], ingress_filter=True) as lab:
        d = Daemons(lab, tmp_path)
        try:
            yield d
        finally:
            d.kill_all()


def test_register_status_and_clean_stop(daemons: Daemons) -> None:
    d, lab = daemons, daemons.lab
    before = {n: kernel_state(lab, n) for n in NODES}
    fa1_text = d.paths["fa1"].read_text()
    d.paths["fa1"].write_text(fa1_text.replace('log_format = "text"', 'log_format = "json"'))
    for n in NODES:
        d.start(n)
    d.answering(*NODES)
    d.wait(lambda: (d.status("mn") or {})["mobile_node"]["state"] == "at home", 15, "at home")

    lab.move("a")
    d.registered_via("fa1")
    mn_ip, coa = str(lab.address("mn")), str(lab.address("fa1"))

    ha = d.status("ha")
    assert ha is not None
    (binding,) = ha["home_agent"]["bindings"]
    assert binding["home_address"] == mn_ip and binding["care_of_address"] == coa
    assert binding["reverse_tunnel"] is True and 0 < binding["remaining"] <= 300
    assert ha["counters"]["accepted"].get("0 accepted", 0) >= 1
    fa = d.status("fa1")
    assert fa is not None
    (visitor,) = fa["foreign_agent"]["visitors"]
    assert visitor["home_address"] == mn_ip and visitor["care_of_address"] == coa
    fa2 = d.status("fa2")
    assert fa2 is not None and fa2["foreign_agent"]["visitors"] == []

    # traffic through both tunnels: the correspondent pings the home address
    assert len(lab.ping("cn", mn_ip, count=3, timeout=1.0)) == 3
    ha = d.status("ha")
    assert ha is not None
    # either plane tunnelled them (MIP4_LAB_DATAPLANE=bpf: the fast path, issue 12)
    fast = ha.get("fast_path", {}).get("events", {})
    assert ha["counters"]["forwarder"].get("encapsulated", 0) + fast.get("encap", 0) >= 3, ha
    if ha.get("dataplane", "userspace") == "userspace":
        assert ha["counters"]["tunnel"]["rx_packets"] >= 3  # datagrams routed into the TUN
    fa = d.status("fa1")
    assert fa is not None
    fa_fast = fa.get("fast_path", {}).get("events", {})
    assert fa["counters"]["forwarder"].get("encapsulated", 0) + fa_fast.get("encap", 0) >= 3, fa

    # the human-readable form
    r = subprocess.run(
        [sys.executable, "-m", "mip4.cli", "status", "--socket", str(d.sock("ha"))],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert r.returncode == 0 and "bindings (1):" in r.stdout and coa in r.stdout

    # SIGTERM: the mobile node deregisters first, then undoes everything
    assert d.stop("mn") == 0
    ha = d.status("ha")
    assert ha is not None and ha["home_agent"]["bindings"] == [], d.logs()
    assert d.stop("fa2", signal.SIGINT) == 0, d.logs()
    for n in ("fa1", "ha"):
        assert d.stop(n) == 0, d.logs()
    # FA1 logged JSON lines: every line parses, the relay decisions name who and where
    records = [json.loads(x) for x in (d.tmp / "fa1.2.log").read_text().splitlines()]
    relayed = [r for r in records if r["event"] == "fa.reply_relayed"]
    assert relayed and relayed[0]["home_address"] == mn_ip and relayed[0]["code"] == 0
    assert relayed[0]["care_of_address"] == coa and relayed[0]["lifetime"] > 0
    assert records[-1]["event"] == "daemon.stopped" and records[-1]["status"] == 0
    mn_log = d.logs()
    assert "daemon.deregistered" in mn_log and "ha.registration" in mn_log
    lab.move("home")  # the mobile node's link back where it was for the comparison
    after = {n: kernel_state(lab, n) for n in NODES}
    for n in NODES:
        for kind in before[n]:
            gone = sorted(set(before[n][kind]) - set(after[n][kind]))
            new = sorted(set(after[n][kind]) - set(before[n][kind]))
            assert (gone, new) == ([], []), (n, kind, "gone", gone, "new", new)
    assert not list(d.tmp.glob("*.sock"))  # control sockets removed


def test_sigkill_then_restart(daemons: Daemons) -> None:
    d, lab = daemons, daemons.lab
    tun = f"{lab.prefix}-t"
    for n in ("ha", "fa1", "mn"):
        d.start(n)
    d.answering("ha", "fa1", "mn")
    lab.move("a")
    d.registered_via("fa1")
    killed = {n: d.procs[n].pid for n in ("ha", "fa1", "mn")}
    for n in killed:
        assert d.stop(n, signal.SIGKILL) == -signal.SIGKILL
    # a crash leaves some state (the reverse-tunnel rule at FA1), and stale sockets
    assert "lookup 434" in "\n".join(kernel_state(lab, "fa1")["rules"])
    assert all(d.sock(n).exists() for n in killed)
    assert all(tun not in kernel_state(lab, n)["links"] for n in killed)  # not persistent

    for n in ("ha", "fa1", "mn"):
        d.start(n)
    d.answering("ha", "fa1", "mn")
    d.registered_via("fa1")
    assert len(lab.ping("cn", lab.address("mn"), count=3, timeout=1.0)) == 3
    for n in ("mn", "fa1", "ha"):
        assert d.stop(n) == 0, d.logs()
    assert "daemon.leftovers_cleared" in d.logs()
    for n in ("ha", "fa1", "mn"):
        state = kernel_state(lab, n)
        assert tun not in state["links"], n
        assert not [r for r in state["rules"] if "434" in r], (n, state["rules"])
        assert not [r for r in state["routes"] if "table 434" in r], (n, state["routes"])
        assert state["proxy"] == [], n


def test_refusals_leave_the_running_daemon_alone(daemons: Daemons) -> None:
    d, lab = daemons, daemons.lab
    tun = f"{lab.prefix}-t"
    d.start("fa2")
    d.answering("fa2")
    argv = [sys.executable, "-m", "mip4.cli", "fa", "--config"]

    def run_once(path: Path) -> subprocess.CompletedProcess[bytes]:
        p = lab.popen("fa2", [*argv, str(path)], stderr=subprocess.PIPE)
        _out, err = p.communicate(timeout=30)
        return subprocess.CompletedProcess(p.args, p.returncode, b"", err)

    # the same file again: its control socket answers -> exit 1, nothing touched
    second = run_once(d.paths["fa2"])
    assert second.returncode == 1, second.stderr
    assert b"another daemon is running" in second.stderr
    # another socket but the same TUN name: the device is in use -> exit 1
    other = d.tmp / "other.toml"
    other.write_text(
        d.paths["fa2"].read_text().replace(str(d.sock("fa2")), str(d.tmp / "other.sock"))
    )
    third = run_once(other)
    assert third.returncode == 1 and b"is in use" in third.stderr, third.stderr
    assert d.status("fa2") is not None and tun in kernel_state(lab, "fa2")["links"]
    # an interface that does not exist: exit 1, no traceback, nothing left
    missing = d.tmp / "missing.toml"
    missing.write_text(
        other.read_text()
        .replace(f'interface = "{lab.ifname("fa2")}"', 'interface = "nosuchif0"')
        .replace(f'tun_name = "{tun}"', f'tun_name = "{lab.prefix}-u"')
    )
    fourth = run_once(missing)
    assert fourth.returncode == 1 and b"daemon.failed" in fourth.stderr, fourth.stderr
    assert b"nosuchif0" in fourth.stderr, fourth.stderr  # the error names the interface
    assert b"Traceback" not in fourth.stderr
    assert f"{lab.prefix}-u" not in kernel_state(lab, "fa2")["links"]
    assert not (d.tmp / "other.sock").exists()
    assert d.stop("fa2") == 0
    assert tun not in kernel_state(lab, "fa2")["links"]


def test_sigkill_restart_and_stop_restore_ip_forward(daemons: Daemons) -> None:
    """Issue 9 item 11: the value ``ip_forward`` had before mip4 first set it survives a
    SIGKILL -- the restarted agent reads it from its predecessor's undo journal instead of
    taking the leftover 1 as the original -- and a clean stop puts it back."""
    d, lab = daemons, daemons.lab

    def ip_forward() -> str:
        return lab.exec("fa2", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip()

    lab.exec("fa2", ["sysctl", "-w", "net.ipv4.ip_forward=0"])
    d.start("fa2")
    d.answering("fa2")
    assert ip_forward() == "1"  # an agent forwards
    assert d.stop("fa2", signal.SIGKILL) == -signal.SIGKILL
    assert ip_forward() == "1"  # left behind by the crash
    d.start("fa2")
    d.answering("fa2")
    assert ip_forward() == "1"
    assert d.stop("fa2") == 0, d.logs()
    assert ip_forward() == "0", d.logs()
    assert "sysctl net.ipv4.ip_forward=0" in d.logs()  # the leftover cleaner's report
    assert not list(d.tmp.glob("*.undo.json"))


def fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_sighup_reloads_and_leaks_nothing(daemons: Daemons) -> None:
    """Issue 15 (replaces issue 9 item 10's "SIGHUP stops cleanly"): SIGHUP reloads the
    configuration and the daemon keeps running -- same process, control socket answering,
    forwarding still on, no file descriptor gained over repeated reloads; an invalid file
    leaves it running on the old configuration (one line naming the file); a key that
    needs a restart is refused with a line naming it. SIGTERM then stops it as before:
    exit status 0, forwarding back to what it was, the control socket removed."""
    d, lab = daemons, daemons.lab
    lab.exec("fa2", ["sysctl", "-w", "net.ipv4.ip_forward=0"])
    d.start("fa2")
    d.answering("fa2")
    assert lab.exec("fa2", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    status = d.status("fa2")
    assert status is not None
    pid = status["pid"]
    p = d.procs["fa2"]
    fds_before = fds(pid)
    for i in range(1, 6):
        p.send_signal(signal.SIGHUP)

        def reloaded(n: int = i) -> bool:
            return d.logs().count("daemon.reloaded") == n

        d.wait(reloaded, 10, f"reload {i}")
    assert (d.status("fa2") or {}).get("pid") == pid
    assert fds(pid) == fds_before, d.logs()
    original = d.paths["fa2"].read_text()
    d.paths["fa2"].write_text(original + "\n[foreign_agent]\nbroken = \n")
    p.send_signal(signal.SIGHUP)
    d.wait(lambda: "daemon.reload_failed" in d.logs(), 10, "reload_failed")
    line = next(x for x in d.logs().splitlines() if "daemon.reload_failed" in x)
    assert str(d.paths["fa2"]) in line and "not valid TOML" in line, line
    assert (d.status("fa2") or {}).get("pid") == pid  # running, on the old configuration
    d.paths["fa2"].write_text(original.replace('tun_name = "', 'tun_name = "x'))
    p.send_signal(signal.SIGHUP)
    d.wait(lambda: "daemon.reload_refused" in d.logs(), 10, "reload_refused")
    line = next(x for x in d.logs().splitlines() if "daemon.reload_refused" in x)
    assert "key=io.tun_name" in line, line
    assert (d.status("fa2") or {}).get("tun") == f"{lab.prefix}-t"
    assert fds(pid) == fds_before, d.logs()
    assert lab.exec("fa2", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    assert d.stop("fa2", signal.SIGTERM) == 0, d.logs()
    assert lab.exec("fa2", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"
    assert not d.sock("fa2").exists()
    assert "daemon.stopped" in d.logs()


def test_sighup_new_security_association_takes_effect(daemons: Daemons) -> None:
    """Issue 15: rekeying the MN-HA association in the home agent's and the mobile node's
    files and sending both SIGHUP: the next registration (the node moves to FA2) is
    accepted with the new key by the same home agent process -- with the old key still
    in force it would be denied (131) -- and no restart happened."""
    d, lab = daemons, daemons.lab
    for n in NODES:
        d.start(n)
    d.answering(*NODES)
    d.wait(lambda: (d.status("mn") or {})["mobile_node"]["state"] == "at home", 15, "at home")
    lab.move("a")
    d.registered_via("fa1")
    ha = d.status("ha")
    assert ha is not None
    pid, accepted = ha["pid"], ha["counters"]["accepted"].get("0 accepted", 0)
    old_key, new_key = LAB_KEY.hex(), bytes(range(16, 32)).hex()
    for node in ("ha", "mn"):
        text = d.paths[node].read_text()
        assert f'key = "{old_key}"' in text
        d.paths[node].write_text(text.replace(old_key, new_key))
        d.procs[node].send_signal(signal.SIGHUP)
    d.wait(lambda: d.logs().count("daemon.reloaded") == 2, 10, "both reloaded")
    assert d.logs().count('applied=["security_associations"]') == 2, d.logs()
    lab.move("b")
    d.registered_via("fa2")
    ha = d.status("ha")
    assert ha is not None and ha["pid"] == pid
    assert ha["counters"]["accepted"].get("0 accepted", 0) > accepted
    assert not ha["counters"]["denied"], d.logs()
    for node in ("mn", "fa1", "fa2", "ha"):
        assert d.stop(node) == 0, d.logs()
