"""Link monitoring: rtnetlink notifications turned into ``LinkUp`` / ``LinkDown`` events.

Theory of operation
-------------------
A mobile node learns that it moved when its link's carrier drops and returns (in the lab:
:meth:`mip4.lab.build.Lab.move` takes the switch port down, re-plugs it into another
bridge and brings it up). :class:`LinkMonitor` opens a ``NETLINK_ROUTE`` socket in the
namespace, subscribed to the link and IPv4 address groups and read without blocking by
the daemon's asyncio loop (pyroute2 0.9.7's synchronous ``IPRoute`` cannot be called on a
thread that runs a loop); what it reads is decoded by pyroute2 (``MarshalRtnl``: the
``ifinfmsg`` and ``ifaddrmsg`` classes, through :class:`mip4.io.nlthread.RtnlDecoder`) --
except link notifications, the ones a moving node waits on, which :func:`_parse_link`
reads directly (issue 14: tens of times faster) -- and the current links and addresses
come from pyroute2 dumps (:class:`mip4.io.nlthread.NetlinkThread`). It subscribes first and
dumps second, so no change falls between the two; only *changes* of state become events:

* ``LinkDown(interface)`` when a watched interface loses ``IFF_UP`` or ``IFF_LOWER_UP``
  (administratively down, or no carrier);
* ``LinkUp(interface, address, prefix_len)`` when it has both again, with its first IPv4
  address if it has one; with ``report_addresses`` also when an address is added to an
  interface that is up (a co-located care-of address assigned after the carrier returned).
  ``ignore_addresses`` are never reported: a mobile node keeps its home address on its
  interface everywhere, so it must not read as "this link has the home address".

A carrier that drops and returns within one period of the kernel's link watcher (about a
second; a port re-plugged quickly, or a busy machine) may come as a single "up" message
with nothing before it: the kernel's carrier change counter (``IFLA_CARRIER_CHANGES``) then
tells, and ``LinkDown`` + ``LinkUp`` are reported all the same. When the kernel drops
notifications (``ENOBUFS``: the socket's buffer overflowed) the links are dumped again and
the differences become events.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from mip4.core.events import LinkDown, LinkUp

from .netns import Netns, entered
from .nlthread import NlMessage, RtnlDecoder
from .rawsock import drain_netlink, forget_hardware_addresses

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTM_NEWLINK, RTM_DELLINK = 16, 17
RTM_NEWADDR, RTM_DELADDR = 20, 21
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


@dataclass
class _Link:
    name: str
    up: bool
    addresses: list[tuple[IPv4Address, int]]
    #: the kernel's count of carrier transitions (``IFLA_CARRIER_CHANGES``), if it says
    carrier_changes: int | None = None


Event = LinkUp | LinkDown


_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_RTA = struct.Struct("=HH")
IFLA_IFNAME, IFLA_CARRIER_CHANGES = 3, 35


def _parse_link(data: bytes, pos: int, length: int) -> tuple[int, str, int, int | None] | None:
    """``(index, name, flags, carrier changes)`` of the ``RTM_{NEW,DEL}LINK`` at ``pos``
    (``None``: too short to be one)."""
    body = pos + _NLMSG.size
    end = pos + length
    if body + _IFINFO.size > end:
        return None
    _family, _type, index, flags, _change = _IFINFO.unpack_from(data, body)
    name, changes = "", None
    a = body + _IFINFO.size
    while a + _RTA.size <= end:
        alen, akind = _RTA.unpack_from(data, a)
        if alen < _RTA.size or a + alen > end:
            break
        akind &= 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if akind == IFLA_IFNAME:
            name = data[a + _RTA.size : a + alen].split(b"\0", 1)[0].decode(errors="replace")
        elif akind == IFLA_CARRIER_CHANGES and alen >= _RTA.size + 4:
            changes = struct.unpack_from("=I", data, a + _RTA.size)[0]
        a += (alen + 3) & ~3
    return index, name, flags, changes


def _bounced(before: int | None, after: int | None) -> bool:
    """The carrier went down and up again between two readings of its change counter."""
    return before is not None and after is not None and after - before >= 2


class LinkMonitor:
    """Watches ``interfaces`` (``None``: all but ``lo``) in namespace ``netns``."""

    def __init__(
        self,
        netns: str | None = None,
        interfaces: set[str] | None = None,
        *,
        report_addresses: bool = False,
        ignore_addresses: frozenset[IPv4Address] = frozenset(),
    ) -> None:
        self.interfaces = interfaces
        self.report_addresses = report_addresses
        self.ignore_addresses = ignore_addresses
        self.links: dict[int, _Link] = {}
        #: times the kernel dropped notifications (ENOBUFS) and the state was re-read
        self.overruns = 0
        self._decoder = RtnlDecoder()
        with entered(netns):
            self.sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            )
        self._ns = Netns(netns)
        try:
            self.sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
            self.sock.setblocking(False)
            self._dump_links()
            for msg in self._ns.ipr.addr("dump", family=socket.AF_INET):
                self._message(RTM_NEWADDR, msg, emit=False, out=None)
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
        self._ns.close()

    def __enter__(self) -> LinkMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _dump_links(self) -> None:
        for msg in self._ns.ipr.link("dump"):
            self._message(RTM_NEWLINK, msg, emit=False, out=None)

    def events(self, limit: int = 256) -> list[Event]:
        """Drain pending notifications into events (non-blocking)."""
        out: list[Event] = []
        for data in drain_netlink(self.sock, limit):
            if data is None:
                self.overruns += 1  # notifications were lost: read the state again
                forget_hardware_addresses()  # issue 13: whichever link changed
                self._resync(out)
            else:
                self._read(data, out)
        return out

    def _read(self, data: bytes, out: list[Event]) -> None:
        """One read: link messages parsed here (the mobile node acts on them; pyroute2's
        decoder takes ~0.35 ms for one on a busy machine, this a few microseconds), any
        other message through pyroute2."""
        pos = 0
        while pos + _NLMSG.size <= len(data):
            length, kind = _NLMSG.unpack_from(data, pos)[:2]
            if length < _NLMSG.size or pos + length > len(data):
                break
            link = _parse_link(data, pos, length) if kind in (RTM_NEWLINK, RTM_DELLINK) else None
            if link is not None:
                index, name, flags, changes = link
                forget_hardware_addresses(name)  # issue 13: kept for gratuitous ARPs
                self._link(index, name, kind, flags, True, out, changes)
            else:
                for msg in self._decoder.decode(data[pos : pos + length]):
                    self._message(int(msg["header"]["type"]), msg, emit=True, out=out)
            pos += (length + 3) & ~3

    def _resync(self, out: list[Event]) -> None:
        before = {i: (link.up, link.carrier_changes) for i, link in self.links.items()}
        self._dump_links()
        for index, link in self.links.items():
            was, changes = before.get(index, (False, None))
            if not self._watched(link.name):
                continue
            if was != link.up:
                out.append(self._link_up(link) if link.up else LinkDown(link.name))
            elif link.up and _bounced(changes, link.carrier_changes):
                out += [LinkDown(link.name), self._link_up(link)]

    def _watched(self, name: str) -> bool:
        return name != "lo" if self.interfaces is None else name in self.interfaces

    def _message(self, kind: int, msg: NlMessage, *, emit: bool, out: list[Event] | None) -> None:
        """One decoded ``RTM_{NEW,DEL}{LINK,ADDR}`` message (others are ignored)."""
        if kind in (RTM_NEWLINK, RTM_DELLINK):
            name = msg.get("IFLA_IFNAME") or ""
            changes = msg.get("IFLA_CARRIER_CHANGES")
            self._link(
                int(msg["index"]),
                str(name),
                kind,
                int(msg["flags"]),
                emit,
                out,
                None if changes is None else int(changes),
            )
        elif kind in (RTM_NEWADDR, RTM_DELADDR) and msg["family"] == socket.AF_INET:
            raw = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
            if raw is not None:
                address = IPv4Address(str(raw))
                plen, index = int(msg["prefixlen"]), int(msg["index"])
                self._addr(index, address, plen, kind == RTM_NEWADDR, emit, out)

    def _link(
        self,
        index: int,
        name: str,
        kind: int,
        flags: int,
        emit: bool,
        out: list[Event] | None,
        carrier_changes: int | None = None,
    ) -> None:
        up = kind == RTM_NEWLINK and flags & (IFF_UP | IFF_LOWER_UP) == IFF_UP | IFF_LOWER_UP
        link = self.links.get(index)
        if link is None:
            link = self.links[index] = _Link(name, False, [])
            was = False
        else:
            was = link.up
            link.name = name or link.name
        bounced = up and was and _bounced(link.carrier_changes, carrier_changes)
        link.up = up
        if carrier_changes is not None:
            link.carrier_changes = carrier_changes
        if kind == RTM_DELLINK:
            self.links.pop(index, None)
        if not emit or out is None or not self._watched(link.name):
            return
        if bounced:
            # The carrier went away and came back between two notifications: the kernel's
            # link watcher reports a quick down-up (a re-plugged cable, a port moved to
            # another switch) as one "up" message, or as none until the next one. The node
            # may be on another link: report both edges.
            out += [LinkDown(link.name), self._link_up(link)]
        elif up != was:
            out.append(self._link_up(link) if up else LinkDown(link.name))

    def _link_up(self, link: _Link) -> LinkUp:
        for address, plen in link.addresses:
            if address not in self.ignore_addresses:
                return LinkUp(link.name, address, plen)
        return LinkUp(link.name)

    def current(self) -> list[LinkUp]:
        """``LinkUp`` for every watched interface that is up now (a daemon feeds these to
        its engine at start)."""
        return [
            self._link_up(link)
            for link in self.links.values()
            if link.up and link.name and self._watched(link.name)
        ]

    def _addr(
        self,
        index: int,
        address: IPv4Address,
        plen: int,
        added: bool,
        emit: bool,
        out: list[Event] | None,
    ) -> None:
        link = self.links.setdefault(index, _Link("", False, []))
        entry = (address, plen)
        if added and entry not in link.addresses:
            link.addresses.append(entry)
            report = emit and self.report_addresses and link.up
            report = report and address not in self.ignore_addresses
            if report and out is not None and self._watched(link.name):
                out.append(LinkUp(link.name, address, plen))
        elif not added:
            with contextlib.suppress(ValueError):
                link.addresses.remove(entry)

    def is_up(self, name: str) -> bool:
        return any(link.up for link in self.links.values() if link.name == name)
