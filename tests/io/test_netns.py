"""mip4.io.netns against real namespaces; ``ip`` output is the independent oracle."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

from mip4.io.netns import (
    Netns,
    NetnsError,
    delete_by_prefix,
    entered,
    list_netns,
    netns_exec,
    run_in_netns,
)

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]


def _inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def _ip(ns: str | None, *args: str) -> str:
    return netns_exec(ns, ["ip", *args]).stdout


def test_entered_switches_the_thread_and_restores_it(make_netns: MakeNetns) -> None:
    ns = make_netns("a")
    home = _inode()
    with entered(ns.name):
        inside = _inode()
        assert inside != home
        assert inside == os.stat(f"/run/netns/{ns.name}").st_ino
    assert _inode() == home
    with pytest.raises(RuntimeError), entered(ns.name):
        raise RuntimeError("boom")
    assert _inode() == home


def test_entered_unknown_namespace(prefix: str) -> None:
    with pytest.raises(NetnsError, match="no network namespace"), entered(f"{prefix}-nope"):
        pass


def test_run_in_netns_sees_only_the_namespace(make_netns: MakeNetns) -> None:
    ns = make_netns("a")
    names = run_in_netns(ns.name, lambda: sorted(n for _, n in __import__("socket").if_nameindex()))
    assert names == ["lo"]
    assert _inode() == os.stat("/proc/self/ns/net").st_ino


def test_links_addresses_routes_rules_neighbours_and_undo(make_netns: MakeNetns) -> None:
    owner = make_netns("a")
    peer = make_netns("b")
    ns = Netns(owner.name)  # attached, not owned: undo() must remove what it made
    try:
        ns.add_bridge("br0")
        ns.add_veth("v0", "v1", peer)
        ns.set_master("v0", "br0")
        for name in ("br0", "v0"):
            ns.set_up(name)
        ns.add_address("br0", "10.66.0.1/24")
        ns.add_route("10.67.0.0/24", gateway="10.66.0.2")
        ns.add_route("0.0.0.0/0", ifname="br0", table=100)
        ns.add_rule(src="10.68.0.5", table=100, priority=1000)
        ns.add_neighbour("br0", "10.66.0.9", bytes.fromhex("020000000009"))
        ns.add_proxy_neighbour("br0", "10.66.0.77")
        ns.sysctl("net.ipv4.ip_forward", 1)

        assert "v0@" in _ip(ns.name, "-o", "link", "show", "master", "br0")
        assert "10.67.0.0/24 via 10.66.0.2" in _ip(ns.name, "route")
        assert "default dev br0" in _ip(ns.name, "route", "show", "table", "100")
        assert "from 10.68.0.5 lookup 100" in _ip(ns.name, "rule")
        assert "10.66.0.9 dev br0 lladdr 02:00:00:00:00:09 PERMANENT" in _ip(ns.name, "neigh")
        assert "10.66.0.77 dev br0 proxy" in _ip(ns.name, "neigh", "show", "proxy")
        assert ns.proxy_neighbours == {("br0", IPv4Address("10.66.0.77"))}
        assert ns.neighbour("br0", "10.66.0.9") == bytes.fromhex("020000000009")
        assert ns.read_sysctl("net.ipv4.ip_forward") == "1"
        assert "v1" in _ip(peer.name, "-o", "link")

        assert ns.undo() == []
        assert ns.created == []
        assert "10.67.0.0" not in _ip(ns.name, "route")
        assert _ip(ns.name, "route", "show", "table", "100").strip() == ""
        assert "10.68.0.5" not in _ip(ns.name, "rule")
        assert _ip(ns.name, "neigh", "show", "proxy").strip() == ""
        assert "10.66.0.9" not in _ip(ns.name, "neigh")
        assert ns.read_sysctl("net.ipv4.ip_forward") == "0"
        assert "br0" not in _ip(ns.name, "-o", "link")
        # the veth pair went with its first end
        assert "v1" not in _ip(peer.name, "-o", "link")
    finally:
        ns.close()


def test_owned_namespace_is_deleted_with_its_processes(prefix: str) -> None:
    ns = Netns(f"{prefix}-p", create=True)
    proc = subprocess.Popen(["ip", "netns", "exec", f"{ns.name}", "sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while proc.pid not in _pids(f"{ns.name}") and time.monotonic() < deadline:
            time.sleep(0.05)
        ns.close()
        assert proc.wait(timeout=5) != 0
        assert ns.name not in list_netns()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _pids(name: str) -> list[int]:
    from mip4.io.netns import netns_pids

    return netns_pids(name)


def test_delete_by_prefix(prefix: str) -> None:
    for s in ("x", "y"):
        Netns(f"{prefix}-{s}", create=True)
    assert sorted(delete_by_prefix(prefix)) == [f"{prefix}-x", f"{prefix}-y"]
    assert [n for n in list_netns() if n.startswith(prefix)] == []
    with pytest.raises(ValueError):
        delete_by_prefix("")


def test_availability_gives_a_reason_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from mip4.io.netns import netns_available

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = netns_available()
    assert reason is not None and "root" in reason


def test_flush_neighbours_frees_queued_datagrams_and_keeps_permanent_entries(
    make_netns: MakeNetns,
) -> None:
    """After a move, datagrams sent by the previous routes wait on an unresolved entry
    (nobody answers ARP for the old router on the new link); flushing deletes it, and with
    it the queue, while a permanent entry (the foreign agent's, RFC 5944 §4.2.1) stays."""
    import fcntl
    import socket
    import struct
    import termios

    def unsent(sock: socket.socket) -> int:
        # SIOCOUTQ (= TIOCOUTQ): bytes of this socket's datagrams the host still holds
        return int(struct.unpack("i", fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0" * 4))[0])

    a, b = make_netns("a"), make_netns("b")
    a.add_veth("a0", "b0", b)
    a.add_address("a0", "10.79.0.1/24")
    a.set_up("a0")
    b.set_up("b0")  # up, but nothing there answers ARP
    assert a.wait_up("a0")
    a.add_neighbour("a0", "10.79.0.2", bytes.fromhex("020000000079"))
    with entered(a.name):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def states() -> dict[str, str]:
        out = a.exec(["ip", "-4", "neigh", "show", "dev", "a0"]).stdout
        return {line.split()[0]: line.split()[-1] for line in out.splitlines() if line}

    with s:
        for _ in range(3):
            s.sendto(b"queued", ("10.79.0.9", 9))
        assert states().get("10.79.0.9") == "INCOMPLETE", states()
        assert unsent(s) > 0  # waiting on the unresolved entry
        assert a.flush_neighbours("a0") == 1
        assert unsent(s) == 0
    assert states() == {"10.79.0.2": "PERMANENT"}
    assert a.flush_neighbours("a0") == 0
