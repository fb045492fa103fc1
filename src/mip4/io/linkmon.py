"""Link monitoring: rtnetlink notifications turned into ``LinkUp`` / ``LinkDown`` events.

Theory of operation
-------------------
A mobile node learns that it moved when its link's carrier drops and returns (in the lab:
:meth:`mip4.lab.build.Lab.move` takes the switch port down, re-plugs it into another
bridge and brings it up). :class:`LinkMonitor` opens a plain ``NETLINK_ROUTE`` socket in the
namespace, subscribed to the link and IPv4 address groups, and decodes the few fields it
needs itself (``ifinfomsg`` flags and name, ``ifaddrmsg`` address and prefix), which keeps
it usable inside an asyncio loop (pyroute2 0.9.7's synchronous API is not). At open it
dumps the current links and addresses, so only *changes* become events:

* ``LinkDown(interface)`` when a watched interface loses ``IFF_UP`` or ``IFF_LOWER_UP``
  (administratively down, or no carrier);
* ``LinkUp(interface, address, prefix_len)`` when it has both again, with its first IPv4
  address if it has one; with ``report_addresses`` also when an address is added to an
  interface that is up (a co-located care-of address assigned after the carrier returned).
  ``ignore_addresses`` are never reported: a mobile node keeps its home address on its
  interface everywhere, so it must not read as "this link has the home address".
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from mip4.core.events import LinkDown, LinkUp

from .netns import entered

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_IFNAME = 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")


def _attrs(data: bytes, offset: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while offset + 4 <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < 4:
            break
        out.setdefault(kind & 0x3FFF, data[offset + 4 : offset + length])
        offset += (length + 3) & ~3
    return out


@dataclass
class _Link:
    name: str
    up: bool
    addresses: list[tuple[IPv4Address, int]]


Event = LinkUp | LinkDown


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
        with entered(netns):
            self.sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            )
        try:
            self.sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
            self._dump(RTM_GETLINK, struct.pack("=BxHiII", 0, 0, 0, 0, 0))
            self._dump(RTM_GETADDR, struct.pack("=BBBBI", socket.AF_INET, 0, 0, 0, 0))
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LinkMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _dump(self, kind: int, body: bytes) -> None:
        seq = int.from_bytes(os.urandom(3), "big")
        hdr = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        self.sock.sendto(hdr + body, (0, 0))
        done = False
        while not done:
            if not select.select([self.sock], [], [], 5)[0]:
                raise TimeoutError("rtnetlink dump did not finish")
            data = self.sock.recv(1 << 16)
            done = self._parse(data, emit=False, seq=seq)

    def events(self, limit: int = 256) -> list[Event]:
        """Drain pending notifications into events (non-blocking)."""
        out: list[Event] = []
        for _ in range(limit):
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.overruns += 1  # notifications were lost: read the state again
                self._resync(out)
                continue
            self._parse(data, emit=True, out=out)
        return out

    def _resync(self, out: list[Event]) -> None:
        before = {i: link.up for i, link in self.links.items()}
        self.sock.setblocking(True)
        try:
            self._dump(RTM_GETLINK, struct.pack("=BxHiII", 0, 0, 0, 0, 0))
        finally:
            self.sock.setblocking(False)
        for index, link in self.links.items():
            if before.get(index, False) != link.up and self._watched(link.name):
                out.append(self._link_up(link) if link.up else LinkDown(link.name))

    def _watched(self, name: str) -> bool:
        return name != "lo" if self.interfaces is None else name in self.interfaces

    def _parse(
        self, data: bytes, *, emit: bool, seq: int | None = None, out: list[Event] | None = None
    ) -> bool:
        offset, done = 0, False
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                break
            body = offset + _NLMSGHDR.size
            end = offset + length
            if seq is not None and mseq == seq and kind in (NLMSG_DONE, NLMSG_ERROR):
                done = True
            elif kind in (RTM_NEWLINK, RTM_DELLINK):
                _fam, _type, index, flags, _change = _IFINFOMSG.unpack_from(data, body)
                attrs = _attrs(data, body + _IFINFOMSG.size, end)
                name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode()
                self._link(index, name, kind, flags, emit, out)
            elif kind in (RTM_NEWADDR, RTM_DELADDR):
                fam, plen, _f, _scope, index = _IFADDRMSG.unpack_from(data, body)
                attrs = _attrs(data, body + _IFADDRMSG.size, end)
                raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
                if fam == socket.AF_INET and raw is not None and len(raw) == 4:
                    self._addr(index, IPv4Address(raw), plen, kind == RTM_NEWADDR, emit, out)
            offset += (length + 3) & ~3
        return done

    def _link(
        self, index: int, name: str, kind: int, flags: int, emit: bool, out: list[Event] | None
    ) -> None:
        up = kind == RTM_NEWLINK and flags & (IFF_UP | IFF_LOWER_UP) == IFF_UP | IFF_LOWER_UP
        link = self.links.get(index)
        if link is None:
            link = self.links[index] = _Link(name, False, [])
            was = False
        else:
            was = link.up
            link.name = name or link.name
        link.up = up
        if kind == RTM_DELLINK:
            self.links.pop(index, None)
        if not emit or out is None or up == was or not self._watched(link.name):
            return
        if up:
            out.append(self._link_up(link))
        else:
            out.append(LinkDown(link.name))

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
