"""What a first registration leaves in the kernel and the undo journal before its reply
leaves (RFC 5944 §4.6: the home agent proxies and announces the node before it tells the
node it is bound; issue 13 keeps it while making each step cheaper): when the reply's
``sendmsg`` runs, the host route to the TUN device and the proxy neighbour entry have been
requested, the first gratuitous ARP is on the wire, and the journal file holds the proxy
entry's record (the route needs none: it goes with the TUN device) -- also with the
journal's lines held for one write per pass of the loop."""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

import mip4.io.rawsock as rawsock
from mip4.core.actions import Action, InstallBinding
from mip4.dataplane.table import TunnelTable
from mip4.io.executor import LinuxExecutor
from mip4.io.forwarder import Forwarder
from mip4.io.nlthread import NetlinkThread
from mip4.io.rtnl import RtnlSocket
from mip4.io.undo import Journal, ProxyNeighbourRecord, RouteRecord, load_journal
from mip4.security.sa import SecurityAssociations
from mip4.wire.packets import gratuitous_arp

from ..core import test_home_agent as hat

MAC = b"\x02\x00\x00\x00\x00\x01"


class Trace:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.steps: list[tuple[str, object]] = []


class Netlink:
    """The netlink facade, recording each request in the trace."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def link_lookup(self, *, ifname: str) -> list[int]:
        return [{"tun0": 7, "home0": 3}[ifname]]

    def route(self, command: str, **kw: object) -> list[object]:
        self.trace.steps.append((f"route {command}", kw["dst"]))
        return []

    def neigh(self, command: str, **kw: object) -> list[object]:
        self.trace.steps.append((f"neigh {command}", kw["dst"]))
        return []

    def close(self) -> None:
        pass


class PacketSocket:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def sendto(self, frame: bytes, address: object) -> int:
        self.trace.steps.append(("arp", bytes(frame)))
        return len(frame)


class UdpSocket:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def sendmsg(self, buffers: list[bytes], *args: object) -> int:
        # what the journal file says at the moment the reply leaves
        self.trace.steps.append(("reply", load_journal(self.trace.journal.path)))
        return len(buffers[0])


@pytest.mark.parametrize("held", [False, True])
def test_kernel_state_and_journal_before_the_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    monkeypatch.setattr(rawsock, "hardware_address", lambda _s, _i: MAC)
    journal = Journal(tmp_path / "ha.journal")
    trace = Trace(journal)
    forwarder = SimpleNamespace(table=TunnelTable(), tun=SimpleNamespace(name="tun0"))
    ex = LinuxExecutor(forwarder=cast(Forwarder, forwarder), tunnel_source=hat.HA, journal=journal)
    ex.ns._ipr = cast(NetlinkThread, Netlink(trace))
    ex._packet = cast(Any, PacketSocket(trace))
    ex._udp_by_port[434] = cast(Any, UdpSocket(trace))
    ex._proxy_immediate.add("home0")  # no sysctl: there is no home0 here
    later: list[Callable[[], None]] = []
    ex.call_later = lambda _delay, func: later.append(func)
    soon: list[Callable[[], None]] = []
    if held:
        ex.hold_journal_lines(soon.append)
    ha = hat.make_ha()
    for action in ha.handle(hat.udp(hat.request(lifetime=600)), 0.0):
        ex.execute(action)
    hoa = str(hat.HOA)
    steps = [name for name, _ in trace.steps]
    assert steps == ["route replace", "neigh replace", "arp", "reply"]
    assert trace.steps[0][1] == hoa and trace.steps[1][1] == hoa
    assert trace.steps[2][1] == gratuitous_arp(hat.HOA, MAC)
    # the proxy entry is in the journal before the reply; the binding's route is not
    # journalled at all: it goes with the TUN device, also after a crash (issue 13)
    assert trace.steps[3][1] == [ProxyNeighbourRecord(hoa, 3, "home0")]
    assert len(later) == 2  # the other two announcements, later
    for func in [*soon, *later]:
        func()
    assert [name for name, _ in trace.steps] == [*steps, "arp", "arp"]
    journal.close()


# -- a read of several first registrations, held (issue 13) -------------------------------

_HDR = struct.Struct("=IHHII")
_RTM_NEWROUTE, _RTM_NEWNEIGH = 24, 28
NODES = [IPv4Address(f"10.0.0.{20 + i}") for i in range(4)]


class KernelSocket:
    """A ``NETLINK_ROUTE`` socket's kernel side for :class:`RtnlSocket`: each ``send`` is
    recorded in the trace as the (kind, address) of every message in it, and each message
    acknowledged -- with ``errors[(kind, address)]`` for those that fail -- as the kernel
    does: one acknowledgement per message, the failed ones too, in order."""

    def __init__(self, trace: Trace, errors: dict[tuple[str, str], int] | None = None) -> None:
        self.trace = trace
        self.errors = errors or {}
        self.sends = 0
        self._acks: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sends += 1
        offset, batch = 0, []
        while offset < len(data):
            length, kind, _flags, seq, _ = _HDR.unpack_from(data, offset)
            message = data[offset : offset + length]
            # the destination: the route's RTA_DST before its RTA_OIF, the entry's NDA_DST
            dst = message[-12:-8] if kind == _RTM_NEWROUTE else message[-4:]
            what = (
                "route replace" if kind == _RTM_NEWROUTE else "neigh replace",
                str(IPv4Address(dst)),
            )
            batch.append(what)
            error = self.errors.get(what, 0)
            body = struct.pack("=i", -error) + message[:16]
            self._acks.append(_HDR.pack(16 + len(body), 2, 0, seq, 0) + body)
            offset += (length + 3) & ~3
        self.trace.steps.append(("netlink", batch))
        return len(data)

    def recv_into(self, buf: bytearray) -> int:
        ack = self._acks.pop(0)
        buf[: len(ack)] = ack
        return len(ack)

    def close(self) -> None:
        pass


class DirectNetlink(Netlink):
    """The netlink facade with the direct path (:attr:`NetlinkThread.direct`)."""

    def __init__(self, trace: Trace, kernel: KernelSocket) -> None:
        super().__init__(trace)
        self.direct = RtnlSocket(cast(Any, kernel))


class WatchingUdpSocket(UdpSocket):
    """Records, as each reply leaves, its destination home address (from the reply), the
    journal's records, and the ARPs and netlink requests done so far."""

    def sendmsg(self, buffers: list[bytes], *args: object) -> int:
        done = [step for step in self.trace.steps if step[0] != "reply"]
        home = str(IPv4Address(bytes(buffers[0][4:8])))
        self.trace.steps.append(("reply", (home, load_journal(self.trace.journal.path), done)))
        return len(buffers[0])


def _executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors: dict[tuple[str, str], int] | None
) -> tuple[LinuxExecutor, Trace, KernelSocket, list[Callable[[], None]]]:
    monkeypatch.setattr(rawsock, "hardware_address", lambda _s, _i: MAC)
    journal = Journal(tmp_path / "ha.journal")
    trace = Trace(journal)
    kernel = KernelSocket(trace, errors)
    forwarder = SimpleNamespace(table=TunnelTable(), tun=SimpleNamespace(name="tun0"))
    ex = LinuxExecutor(forwarder=cast(Forwarder, forwarder), tunnel_source=hat.HA, journal=journal)
    ex.ns._ipr = cast(NetlinkThread, DirectNetlink(trace, kernel))
    ex._packet = cast(Any, PacketSocket(trace))
    ex._udp_by_port[434] = cast(Any, WatchingUdpSocket(trace))
    ex._proxy_immediate.add("home0")
    later: list[Callable[[], None]] = []
    ex.call_later = lambda _delay, func: later.append(func)
    return ex, trace, kernel, later


def _first_registrations() -> list[list[Action]]:
    store = SecurityAssociations()
    for home in NODES:
        store.add(home, hat.MN_SA)
    ha = hat.make_ha(store)
    return [ha.handle(hat.udp(hat.request(hoa=home)), 0.0) for home in NODES]


def _run(ex: LinuxExecutor, reads: list[list[Action]], held: bool) -> list[tuple[Action, str]]:
    """The actions of ``reads`` as the driver gives them (held: as one read); the failed
    ones, as the driver would log them."""
    failed: list[tuple[Action, str]] = []
    if held:
        ex.hold_actions()
    for actions in reads:
        for action in actions:
            try:
                ex.execute(action)
            except Exception as exc:
                failed.append((action, str(exc)))
    if held:
        failed += [(action, str(exc)) for action, exc in ex.release_actions()]
    return failed


def test_a_read_of_first_registrations_asks_the_kernel_once_and_each_reply_waits_for_its_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex, trace, kernel, later = _executor(tmp_path, monkeypatch, None)
    assert _run(ex, _first_registrations(), held=True) == []
    homes = [str(home) for home in NODES]
    # every route and proxy entry of the read in one message, each acknowledged
    assert kernel.sends == 1
    assert trace.steps[0] == (
        "netlink",
        [(f"{kind} replace", home) for home in homes for kind in ("route", "neigh")],
    )
    # then the first gratuitous ARP of each, then the replies, in order
    assert [step[0] for step in trace.steps[1:]] == ["arp"] * 4 + ["reply"] * 4
    assert [step[1] for step in trace.steps[1:5]] == [gratuitous_arp(h, MAC) for h in NODES]
    for i, (_name, seen) in enumerate(trace.steps[5:]):
        home, journal, done = cast(tuple[str, list[object], list[object]], seen)
        assert home == homes[i]
        assert RouteRecord(home, 32, 254, 7, None) not in journal  # goes with the TUN device
        assert ProxyNeighbourRecord(home, 3, "home0") in journal
        assert ("arp", gratuitous_arp(NODES[i], MAC)) in done
    assert len(later) == 2 * len(NODES)  # the repeats, later
    assert {key >> 32 for key in ex.installed_keys()} == {int(n) for n in NODES}
    trace.journal.close()


def test_a_failing_route_fails_its_binding_only_and_as_without_holding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route of the second node fails (the kernel refuses it): the other nodes'
    bindings are made in full; that one's InstallBinding is the failed action, with the
    error it has alone -- and everything else comes out as when each action is carried
    out at once."""
    bad = str(NODES[1])
    outcome: list[object] = []
    for held in (False, True):
        ex, trace, kernel, _later = _executor(
            tmp_path / str(held), monkeypatch, {("route replace", bad): errno.EINVAL}
        )
        failed = _run(ex, _first_registrations(), held=held)
        assert [type(a) for a, _ in failed] == [InstallBinding]
        assert cast(InstallBinding, failed[0][0]).home_address == NODES[1]
        assert kernel.sends == (1 if held else 2 * len(NODES))
        replies = [cast(tuple[str, ...], step[1])[0] for step in trace.steps if step[0] == "reply"]
        records = load_journal(tmp_path / str(held) / "ha.journal")
        outcome.append(
            (
                failed,
                replies,
                records,
                ex.installed_keys(),
                sorted(cast(Forwarder, ex.forwarder).table.bindings),
            )
        )
        assert {key >> 32 for key in ex.installed_keys()} == {int(n) for n in NODES} - {
            int(NODES[1])
        }
        assert RouteRecord(bad, 32, 254, 7, None) not in records
        assert ProxyNeighbourRecord(bad, 3, "home0") in records  # its own action: done
    assert outcome[0] == outcome[1]
