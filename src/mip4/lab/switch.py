"""The lab's link switch on rtnetlink directly (issue 14: the handover floor).

Moving the mobile node re-plugs its cable: its switch port goes down, joins another
bridge and comes back up, and the node's kernel must see the carrier drop before it
returns (otherwise the node is told of no change). :meth:`mip4.lab.build.Lab.move` does it
with pyroute2 calls and polling; that took 11--17 ms from the port going down to the node
seeing its link up on a busy machine -- longer than the whole interruption issue 14
allows -- spent in:

* creating the pyroute2 handles in the switch and node namespaces at each move, and one
  netlink round trip per change (down, master, up);
* polling the node's operational state every 5 ms (down) and 10 ms (up): on average half
  a period lost at each edge, plus the polls' own netlink round trips.

:class:`LinkSwitch` opens its sockets before the switch and then waits on notifications,
not polls: the switch namespace gets one ``RTM_NEWLINK`` to take the port down and one
that sets the new bridge and brings it up (the kernel applies ``IFLA_MASTER`` before the
flags in one request); the node's namespace is subscribed to link notifications before
the port goes down, so the node's ``RTM_NEWLINK`` for the carrier loss -- sent when its
kernel's link watcher has set the operational state, which is what the node itself
reads -- releases the re-plug at once. What the node experiences is unchanged: a carrier
that drops, is seen to drop, and returns on another network. Every wait is bounded; a
lost notification (``ENOBUFS``) or a timeout falls back to reading the state.

:func:`replug` is :meth:`Lab.move <mip4.lab.build.Lab.move>` (without its announcement)
on :class:`LinkSwitch`; the scenario (:meth:`mip4.lab.scenario.Scenario.move`), and with
it ``mip4 lab demo``, the benchmarks and the system tests, moves the node with it.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import time
from types import TracebackType
from typing import TYPE_CHECKING

from mip4.io.netns import entered

if TYPE_CHECKING:
    from .build import Lab

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_GETLINK = 16, 18
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
IFLA_MASTER, IFLA_OPERSTATE = 10, 16
IF_OPER_UP = 6  #: RFC 2863 "up" (``IF_OPER_UP`` in linux/if.h)

_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_RTA = struct.Struct("=HH")
_U32 = struct.Struct("=I")


class SwitchError(OSError):
    """A netlink request in the lab's switch failed (the message names it)."""


def _open(netns: str, groups: int = 0) -> socket.socket:
    with entered(netns):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    sock.bind((0, groups))
    return sock


def _link_message(msg_type: int, flags: int, seq: int, index: int, ifi_flags: int,
                  change: int, attrs: bytes = b"") -> bytes:  # fmt: skip
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, ifi_flags, change) + attrs
    return _NLMSG.pack(_NLMSG.size + len(body), msg_type, flags, seq, 0) + body


def _u32_attr(kind: int, value: int) -> bytes:
    return _RTA.pack(_RTA.size + 4, kind) + _U32.pack(value)


def parse_links(data: bytes) -> list[tuple[int, bool, int | None]]:
    """``(ifindex, up, operstate)`` of each ``RTM_NEWLINK`` in one netlink read; ``up``:
    administratively up with a carrier (``IFF_UP`` and ``IFF_LOWER_UP``)."""
    out = []
    pos = 0
    while pos + _NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, pos)
        if length < _NLMSG.size or pos + length > len(data):
            break
        if kind == RTM_NEWLINK and length >= _NLMSG.size + _IFINFO.size:
            _fam, _type, index, flags, _ch = _IFINFO.unpack_from(data, pos + _NLMSG.size)
            operstate = None
            a = pos + _NLMSG.size + _IFINFO.size
            end = pos + length
            while a + _RTA.size <= end:
                alen, akind = _RTA.unpack_from(data, a)
                if alen < _RTA.size:
                    break
                if akind & 0x3FFF == IFLA_OPERSTATE and alen >= _RTA.size + 1:
                    operstate = data[a + _RTA.size]
                a += (alen + 3) & ~3
            carrier = flags & (IFF_UP | IFF_LOWER_UP) == IFF_UP | IFF_LOWER_UP
            out.append((index, carrier, operstate))
        pos += (length + 3) & ~3
    return out


class _Watch:
    """Link notifications of one namespace, read with a deadline."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.sock = _open(netns, RTMGRP_LINK)

    def close(self) -> None:
        self.sock.close()

    def wait(self, index: int, *, up: bool, within: float) -> bool:
        """Until a notification says link ``index`` is (not) operationally up; ``False``
        after ``within`` seconds or when notifications were lost (the caller reads the
        state then)."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return False
            try:
                data = self.sock.recv(1 << 16)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    return False
                raise
            for i, carrier, operstate in parse_links(data):
                if i == index and operstate is not None and _is_up(carrier, operstate) == up:
                    return True


def _is_up(carrier: bool, operstate: int) -> bool:
    """What the node's stack and the bridge go by: up, a carrier, operational state up
    (set by the kernel's link watcher)."""
    return carrier and operstate == IF_OPER_UP


def _request(sock: socket.socket, message: bytes, seq: int, what: str) -> bytes:
    """Send one request and return the answer up to its acknowledgement (bounded)."""
    sock.sendall(message)
    got = b""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        data = sock.recv(1 << 16)
        pos = 0
        while pos + _NLMSG.size <= len(data):
            length, kind, _f, mseq, _p = _NLMSG.unpack_from(data, pos)
            if length < _NLMSG.size:
                break
            if mseq == seq and kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, pos + _NLMSG.size)
                if code != 0:
                    raise SwitchError(-code, f"{what}: {errno.errorcode.get(-code, code)}")
                return got
            if mseq == seq:
                got += data[pos : pos + length]
            pos += (length + 3) & ~3
    raise SwitchError(errno.ETIMEDOUT, f"{what}: no answer from the kernel")


def is_up(netns: str, index: int) -> bool:
    """Link ``index`` in ``netns`` is up with a carrier and operationally up, read now."""
    sock = _open(netns)
    try:
        msg = _link_message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 1, index, 0, 0)
        for i, carrier, state in parse_links(_request(sock, msg, 1, f"{netns}: link {index}")):
            if i == index:
                return state is not None and _is_up(carrier, state)
        return False
    finally:
        sock.close()


class LinkSwitch:
    """One re-plug of a switch port (``port`` in namespace ``switch``) whose peer is
    ``node_if`` in namespace ``node``; see the module doc. ``with LinkSwitch(...) as s:
    s.unplug(); s.plug(bridge)``."""

    def __init__(self, switch: str, port: int, node: str, node_if: int) -> None:
        self.switch, self.port, self.node, self.node_if = switch, port, node, node_if
        self.seq = 0
        self.control = _open(switch)
        self.node_watch = self.port_watch = None
        try:
            self.node_watch = _Watch(node)
            self.port_watch = _Watch(switch)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.control.close()
        for w in (self.node_watch, self.port_watch):
            if w is not None:
                w.close()

    def __enter__(self) -> LinkSwitch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _setlink(self, flags: int, attrs: bytes, what: str) -> None:
        self.seq += 1
        msg = _link_message(
            RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, self.seq, self.port, flags, IFF_UP, attrs
        )
        _request(self.control, msg, self.seq, f"{self.switch}: {what}")

    def unplug(self, within: float = 3.0) -> bool:
        """The port goes down; returns once the node's kernel has seen its carrier go
        (``False``: it did not within ``within`` seconds)."""
        self._setlink(0, b"", f"port {self.port} down")
        assert self.node_watch is not None
        if self.node_watch.wait(self.node_if, up=False, within=within):
            return True
        return not is_up(self.node, self.node_if)

    def plug(self, bridge: int) -> None:
        """The port joins ``bridge`` (an interface index in the switch) and comes up."""
        self._setlink(IFF_UP, _u32_attr(IFLA_MASTER, bridge), f"port {self.port} up on {bridge}")

    def wait_node_up(self, within: float = 3.0) -> bool:
        """Until the node's interface is operationally up again (bounded)."""
        assert self.node_watch is not None
        if self.node_watch.wait(self.node_if, up=True, within=within):
            return True
        return is_up(self.node, self.node_if)

    def wait_port_up(self, within: float = 3.0) -> bool:
        """Until the switch port is operationally up: the bridge forwards on it only then
        (its link watcher has seen the carrier)."""
        assert self.port_watch is not None
        if self.port_watch.wait(self.port, up=True, within=within):
            return True
        return is_up(self.switch, self.port)


def ifindex(netns: str, name: str) -> int:
    """Interface ``name``'s index in ``netns``."""
    with entered(netns):
        return socket.if_nametoindex(name)


def replug(lab: Lab, net: str, *, dhcp: bool = False, within: float = 3.0) -> None:
    """Move the mobile node's link to network ``net`` as :meth:`Lab.move
    <mip4.lab.build.Lab.move>` does (``dhcp``: the co-located address on network C), on a
    :class:`LinkSwitch`. Returns once the node's interface and its switch port are
    operationally up again (each wait bounded by ``within`` seconds)."""
    from .build import LabError

    node = lab.topology.mobile
    if net not in lab.topology.visitable():
        nets = ", ".join(lab.topology.visitable())
        raise LabError(f"the mobile node cannot move to network {net!r}; networks: {nets}")
    if dhcp:
        lab.release_colocated(lab.mobile_net)
    sw, node_ns = lab.ns(lab.topology.switch), lab.ns(node)
    bridge = ifindex(sw, lab.bridge(net))
    port, node_if = ifindex(sw, lab.port(node, net)), ifindex(node_ns, lab.ifname(node))
    with LinkSwitch(sw, port, node_ns, node_if) as switch:
        if not switch.unplug(within):
            raise LabError(f"{lab.ifname(node)} did not go down within {within:g} s")
        switch.plug(bridge)
        if dhcp:
            lab.configure_colocated(net)
        switch.wait_node_up(within)
        # the bridge forwards on the port only once the switch's link watcher has seen
        # its carrier (Lab.move waits for it too)
        switch.wait_port_up(within)
    lab.mobile_net = net
    if lab.state_file.exists():
        lab._write_state("up")
