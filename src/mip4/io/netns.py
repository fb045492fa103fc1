"""Network namespaces and the kernel state mip4 creates in them.

Theory of operation
-------------------
A *network namespace* is named by a file under ``/run/netns`` (the ``ip netns`` convention,
so ``ip netns exec NAME ...`` and this module see the same namespaces). Python 3.11 has no
``os.setns``, so :func:`entered` calls ``setns(2)`` through ``ctypes`` on the **calling
thread** only, and switches back when the block ends. Anything opened inside the block stays
in that namespace for its whole life: sockets, ``/dev/net/tun`` devices, netlink sockets and
``/proc/sys/net`` files (the kernel resolves those against the opener's namespace). Nothing
else about the process changes, so an asyncio loop can own sockets from several namespaces.

:class:`Netns` wraps one namespace (``None``: the one the process runs in, as the daemons do
under ``ip netns exec``). It speaks netlink through :class:`NetlinkThread`, the one typed
facade on a pyroute2 ``IPRoute`` opened inside the namespace, and pushes a typed record of
everything it creates or changes (routes, rules, neighbours, proxy neighbours, addresses,
links, sysctl values) onto an undo stack (:mod:`mip4.io.undo`): its own, or the one of the
binding, visitor or attachment the caller names. pyroute2 0.9.7 returns empty
proxy-neighbour dumps, and owning the records is what lets :meth:`Netns.undo` remove
exactly our state, in reverse order, including after a failure (and, through the journal,
after a crash). A namespace the object created itself is deleted by :meth:`Netns.close`
(which takes every link, route and TUN in it along).

External tools run with argument lists (``ip netns exec NAME argv...``), never shell strings.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import subprocess
import time
from collections.abc import Callable, Sequence
from functools import partial
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import NamedTuple, TypeVar

from .nlthread import NetlinkThread, NlMessage
from .nsops import CLONE_NEWNET as CLONE_NEWNET
from .nsops import CREATED_HERE as CREATED_HERE
from .nsops import NETNS_RUN_DIR as NETNS_RUN_DIR
from .nsops import create_netns as create_netns
from .nsops import delete_by_prefix as delete_by_prefix
from .nsops import delete_netns as delete_netns
from .nsops import entered as entered
from .nsops import list_netns as list_netns
from .nsops import netns_available as netns_available
from .nsops import netns_exec as netns_exec
from .nsops import netns_path as netns_path
from .nsops import netns_pids as netns_pids
from .nsops import read_sysctl as read_sysctl
from .nsops import run_in_netns as run_in_netns
from .nsops import write_sysctl as write_sysctl
from .rtnl import NUD_PERMANENT as NUD_PERMANENT
from .rtnl import NetlinkRequestError as NetlinkRequestError
from .rtnl import NetnsError as NetnsError
from .rtnl import Request, RtnlSocket
from .undo import (
    RT_TABLE_MAIN,
    AddressRecord,
    Journal,
    KernelRecord,
    LinkRecord,
    NeighbourRecord,
    ProxyNeighbourRecord,
    Record,
    RouteRecord,
    RuleRecord,
    SysctlRecord,
    UndoStack,
    WithdrawnRouteRecord,
    dotted,
)

NTF_PROXY = 0x08
NUD_NOARP = 0x40

T = TypeVar("T")


def missing(exc: BaseException) -> bool:
    """A netlink error saying the object is not there (any more)."""
    return getattr(exc, "code", None) in (errno.ESRCH, errno.ENOENT, errno.ENODEV)


class Netns:
    """One network namespace and the state this object created in it.

    ``Netns(name, create=True)`` makes the namespace and :meth:`close` deletes it;
    ``Netns(name)`` attaches to an existing one; ``Netns(None)`` is the current namespace.
    Every ``add_*`` pushes a record of what it made onto an :class:`~mip4.io.undo.UndoStack`
    -- the one given as ``undo=``, or this object's own :attr:`stack`; :meth:`undo` undoes
    the own stack newest first. With a ``journal``, every stack made by :meth:`new_stack`
    mirrors its kernel records there (see :mod:`mip4.io.undo`).
    """

    def __init__(
        self, name: str | None, *, create: bool = False, journal: Journal | None = None
    ) -> None:
        self.name = name
        self.owned = False
        if create:
            if name is None:
                raise ValueError("cannot create the current namespace")
            create_netns(name)
            self.owned = True
            # a safety net for an interpreter that exits without close() (an exception
            # escaping a script, sys.exit in a callback); unregistered by close()
            atexit.register(self.close)
        self._ipr: NetlinkThread | None = None
        self.journal = journal
        #: :meth:`undo_record`, bound once: every stack shares it (a home agent makes a
        #: stack per binding, and a bound method each was 64 bytes, issue 13)
        self._undo_one = self.undo_record
        #: what this object set up for its owner (the daemon's own stack)
        self.stack = self.new_stack("netns")
        #: sysctl keys whose first value is on the stack (a set: asked once per change)
        self._sysctl_keys: set[str] = set()
        #: interface name -> index, as last looked up (see :meth:`index`)
        self._indexes: dict[str, int] = {}
        #: (ifname, address) -> our proxy neighbour record (on the own stack)
        self._proxies: dict[tuple[str, str], ProxyNeighbourRecord] = {}

    def new_stack(self, name: str) -> UndoStack:
        """An empty undo stack whose records this namespace undoes (journalled)."""
        return UndoStack(self._undo_one, self.journal, name)

    @property
    def created(self) -> list[Record]:
        """The records of the own stack, oldest first."""
        return list(self.stack.records)

    @property
    def proxy_neighbours(self) -> set[tuple[str, IPv4Address]]:
        """Our proxy-neighbour table: (ifname, address); pyroute2 0.9.7 dumps are empty."""
        return {
            (r.ifname, IPv4Address(r.dst))
            for r in self.stack
            if isinstance(r, ProxyNeighbourRecord)
        }

    def _proxy_record(self, ifname: str, address: IPv4Address | str) -> ProxyNeighbourRecord | None:
        """Our record of the proxy entry for ``address`` on ``ifname``, if we have one (an
        index lookup: one entry per mobile node away from home)."""
        key = (ifname, str(address))
        record = self._proxies.get(key)
        if record is not None and record not in self.stack:  # undone or discarded since
            del self._proxies[key]
            return None
        return record

    # -- plumbing ---------------------------------------------------------------------

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    @property
    def ipr(self) -> NetlinkThread:
        """The netlink facade bound to this namespace (opened on first use)."""
        if self._ipr is None:
            self._ipr = NetlinkThread(self.name)
        return self._ipr

    def entered(self) -> contextlib.AbstractContextManager[None]:
        return entered(self.name)

    def run(self, func: Callable[..., T], *args: object) -> T:
        return run_in_netns(self.name, func, *args)

    def exec(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return netns_exec(self.name, argv, check=check, timeout=timeout)

    def close(self) -> None:
        """Release the netlink socket; delete the namespace if we created it."""
        if self._ipr is not None:
            with contextlib.suppress(Exception):
                self._ipr.close()
            self._ipr = None
        if self.owned and self.name is not None:
            delete_netns(self.name)
            self.owned = False
            atexit.unregister(self.close)
            self.stack.discard(lambda r: True)

    def undo(self) -> list[str]:
        """Undo the own stack, newest first; returns the errors (as text) of the removals
        that failed, without stopping at the first."""
        return self.stack.undo()

    def undo_record(self, record: KernelRecord) -> bool:
        """Remove what ``record`` says we made (or put back what it says we removed).
        ``False`` when there was nothing to do: the object is already gone (a route through
        a TUN device that went with its process), or the sysctl has that value."""
        if isinstance(record, LinkRecord):
            idx = self.link_index(record.ifname, missing_ok=True)
            self.forget_links()
            if idx is None:
                return False
            self.ipr.link("del", index=idx)
            return True
        if isinstance(record, RouteRecord):
            spec: dict[str, object] = {
                "dst": record.dst,
                "dst_len": record.dst_len,
                "table": record.table,
            }
            if record.oif is not None:
                spec["oif"] = record.oif
            if record.gateway is not None:
                spec["gateway"] = record.gateway
            return self._del_route(spec)
        if isinstance(record, WithdrawnRouteRecord):
            return self._netlink_ok(
                self.ipr.route,
                "replace",
                dst=record.dst,
                dst_len=record.dst_len,
                oif=record.oif,
                prefsrc=record.prefsrc,
                scope=253,  # link
                proto=2,  # kernel, as the route the address made
            )
        if isinstance(record, RuleRecord):
            return self._netlink_ok(self.ipr.rule, "del", **_rule_spec(record))
        if isinstance(record, NeighbourRecord):
            return self._netlink_ok(self.ipr.neigh, "del", dst=record.dst, ifindex=record.ifindex)
        if isinstance(record, ProxyNeighbourRecord):
            return self._netlink_ok(
                self.ipr.neigh, "del", dst=record.dst, ifindex=record.ifindex, flags=NTF_PROXY
            )
        if isinstance(record, AddressRecord):
            return self._netlink_ok(
                self.ipr.addr,
                "del",
                index=record.index,
                address=record.address,
                prefixlen=record.prefixlen,
            )
        try:
            return write_sysctl(record.key, record.value, self.name) != record.value
        except FileNotFoundError:  # the interface went away, and its settings with it
            return False

    @staticmethod
    def _netlink_ok(request: Callable[..., list[NlMessage]], command: str, **spec: object) -> bool:
        """One netlink request; ``False`` if it failed because the object (or its
        interface) is not there."""
        try:
            request(command, **spec)
        except Exception as exc:
            if missing(exc):
                return False
            raise
        return True

    def _owner(self, undo: UndoStack | None) -> UndoStack:
        """The stack a new record goes to: ``undo``, or the own one."""
        return self.stack if undo is None else undo

    def on_undo(self, func: Callable[[], object]) -> None:
        """Record an arbitrary clean-up step."""
        self.stack.callback(getattr(func, "__name__", "call"), func)

    # -- links ------------------------------------------------------------------------

    def link_index(self, ifname: str, *, missing_ok: bool = False) -> int | None:
        """The interface's index, asked of the kernel (and remembered for :meth:`index`)."""
        found = self.ipr.link_lookup(ifname=ifname)
        if not found:
            self._indexes.pop(ifname, None)
            if missing_ok:
                return None
            raise NetnsError(errno.ENODEV, f"{self.name}: no interface {ifname!r}")
        idx = self._indexes[ifname] = int(found[0])
        return idx

    def index(self, ifname: str) -> int:
        """The interface's index, remembered after the first lookup: pyroute2's
        ``link_lookup`` dumps and decodes every link, which cost more than the route a
        renewal asks for. The memory is dropped when this object adds, deletes or
        renames a link, by :meth:`forget_links` (a link monitor's hook), and for a name
        whose remembered index a request finds gone (:meth:`_on_stale_index`)."""
        idx = self._indexes.get(ifname)
        if idx is None:
            idx = self.link_index(ifname)
            assert idx is not None
        return idx

    def index_if_there(self, ifname: str) -> int | None:
        """:meth:`index`, or ``None`` when there is no such interface (any more)."""
        idx = self._indexes.get(ifname)
        return idx if idx is not None else self.link_index(ifname, missing_ok=True)

    def forget_links(self, ifname: str | None = None) -> None:
        """Drop the remembered index of ``ifname`` (``None``: of every interface): a link
        changed (deleted, re-created, renamed) behind this object's back."""
        if ifname is None:
            self._indexes.clear()
        else:
            self._indexes.pop(ifname, None)

    def _with_index(self, ifname: str, request: Callable[[int], T]) -> T:
        """``request(index of ifname)``; when it fails because no such device exists and
        the index was a remembered one, the index is looked up again and the request
        retried once (the interface was re-created under the same name)."""
        cached = ifname in self._indexes
        idx = self.index(ifname)
        try:
            return request(idx)
        except Exception as exc:
            if not cached or getattr(exc, "code", None) != errno.ENODEV:
                raise
        self.forget_links(ifname)
        return request(self.index(ifname))

    def link_names(self) -> list[str]:
        return [str(link.get("ifname")) for link in self.ipr.link("dump")]

    def link_address(self, ifname: str) -> bytes:
        """The interface's hardware address."""
        (link,) = self.ipr.link("get", index=self.index(ifname))
        return bytes.fromhex(str(link.get("address")).replace(":", ""))

    def add_veth(self, ifname: str, peer: str, peer_netns: Netns | None = None) -> None:
        """A veth pair ``ifname`` (here) — ``peer`` (in ``peer_netns``, default here)."""
        spec: dict[str, object] = {"ifname": peer}
        if peer_netns is not None and peer_netns.name != self.name:
            if peer_netns.name is None:
                raise ValueError("peer in the current namespace: create the pair there")
            spec["net_ns_fd"] = peer_netns.name
        self.forget_links()
        self.ipr.link("add", ifname=ifname, kind="veth", peer=spec)
        self.stack.push(LinkRecord(ifname))

    def add_bridge(self, ifname: str) -> None:
        # no STP and no forwarding delay: ports forward as soon as they are up
        self.forget_links()
        self.ipr.link("add", ifname=ifname, kind="bridge", br_forward_delay=0, br_stp_state=0)
        self.stack.push(LinkRecord(ifname))

    def set_master(self, ifname: str, bridge: str | None) -> None:
        master = 0 if bridge is None else self.index(bridge)
        self.ipr.link("set", index=self.index(ifname), master=master)

    def set_up(self, ifname: str, up: bool = True) -> None:
        self.ipr.link("set", index=self.index(ifname), state="up" if up else "down")

    def operstate(self, ifname: str) -> str:
        (link,) = self.ipr.link("get", index=self.index(ifname))
        return str(link.get("IFLA_OPERSTATE"))

    def wait_up(self, ifname: str, timeout: float = 3.0) -> bool:
        """Wait (bounded) until ``ifname`` is operationally up. A link that just got its
        carrier drops what is sent on it until the kernel's link watcher has activated its
        queue (``linkwatch``, up to about a second later) and set the state to UP."""
        deadline = time.monotonic() + timeout
        while True:
            if self.operstate(ifname) == "UP":
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def set_mtu(self, ifname: str, mtu: int) -> None:
        self.ipr.link("set", index=self.index(ifname), mtu=mtu)

    def delete_link(self, ifname: str) -> None:
        idx = self.link_index(ifname, missing_ok=True)
        self.forget_links()
        if idx is not None:
            self.ipr.link("del", index=idx)
        self.stack.forget(LinkRecord(ifname))

    # -- addresses, routes, rules -----------------------------------------------------

    def add_address(
        self,
        ifname: str,
        address: IPv4Interface | str,
        *,
        noprefixroute: bool = False,
        undo: UndoStack | None = None,
    ) -> None:
        iface = IPv4Interface(address)
        record = AddressRecord(self.index(ifname), str(iface.ip), iface.network.prefixlen)
        kw: dict[str, object] = {
            "index": record.index,
            "address": record.address,
            "prefixlen": record.prefixlen,
        }
        if noprefixroute:
            kw["flags"] = 0x200  # IFA_F_NOPREFIXROUTE
        self.ipr.addr("add", **kw)
        self._owner(undo).push(record)

    def addresses(self, ifname: str | None = None) -> list[IPv4Interface]:
        kw: dict[str, object] = {"family": 2}
        if ifname is not None:
            kw["index"] = self.index(ifname)
        return [
            IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in self.ipr.addr("dump", **kw)
        ]

    def _route_spec(
        self,
        dst: IPv4Network | str,
        gateway: IPv4Address | str | None,
        ifname: str | None,
        table: int | None,
        onlink: bool,
        src: IPv4Address | str | None,
    ) -> dict[str, object]:
        net = IPv4Network(dst)
        spec: dict[str, object] = {"dst": str(net.network_address), "dst_len": net.prefixlen}
        if gateway is not None:
            spec["gateway"] = str(gateway)
        if ifname is not None:
            spec["oif"] = self.index(ifname)
        if table is not None:
            spec["table"] = table
        if onlink:
            spec["flags"] = 4  # RTNH_F_ONLINK
        if src is not None:
            spec["prefsrc"] = str(src)
        return spec

    def add_route(
        self,
        dst: IPv4Network | str,
        *,
        gateway: IPv4Address | str | None = None,
        ifname: str | None = None,
        table: int | None = None,
        onlink: bool = False,
        src: IPv4Address | str | None = None,
        replace: bool = False,
        undo: UndoStack | None = None,
        keep: bool = True,
    ) -> None:
        """Add (``replace``: or replace) a route; its record goes to ``undo`` (default: the
        own stack) -- without ``keep`` nowhere: its owner knows how to undo it without a
        record (the executor's binding routes through its TUN device, issue 13)."""
        net = IPv4Network(dst)
        spec = self._route_spec(net, gateway, None, table, onlink, src)
        command = "replace" if replace else "add"
        oif: int | None = None
        if ifname is not None:

            def request(index: int) -> None:
                nonlocal oif
                oif = spec["oif"] = index
                self.ipr.route(command, **spec)

            self._with_index(ifname, request)
        else:
            self.ipr.route(command, **spec)
        if not keep:
            return
        record = RouteRecord(
            str(net.network_address),
            net.prefixlen,
            table or RT_TABLE_MAIN,
            oif,
            str(gateway) if gateway is not None else None,
        )
        self._owner(undo).push(record)

    def add_host_route(
        self,
        address: IPv4Address,
        ifname: str,
        *,
        undo: UndoStack | None = None,
        keep: bool = True,
    ) -> None:
        """``add_route(f"{address}/32", ifname=ifname, replace=True, undo=undo)`` -- the
        route a binding makes (issue 13) -- from the address's integer form: the same
        netlink request and the same record, without parsing the destination from a
        string or building the request from keyword arguments."""
        direct: RtnlSocket | None = getattr(self.ipr, "direct", None)
        if direct is None:  # a stand-in for the netlink facade (tests): the general path
            self.add_route(f"{address}/32", ifname=ifname, replace=True, undo=undo, keep=keep)
            return
        dst = address.packed

        def request(index: int) -> int:
            direct.host_route("replace", dst, index)
            return index

        oif = self._with_index(ifname, request)
        if keep:
            self._owner(undo).push(RouteRecord(str(address), 32, RT_TABLE_MAIN, oif, None))

    # -- the requests of several bindings in one message (issue 13) ----------------------

    def host_route_request(
        self,
        address: IPv4Address,
        ifname: str,
        *,
        undo: UndoStack | None = None,
        keep: bool = True,
    ) -> PendingRequest:
        """What :meth:`add_host_route` does, to be done by :meth:`send_requests` together
        with other requests: the index is looked up now, the request is sent and the
        record pushed then (without ``keep``: no record)."""
        direct: RtnlSocket | None = getattr(self.ipr, "direct", None)

        def alone() -> None:
            self.add_host_route(address, ifname, undo=undo, keep=keep)

        if direct is None:
            return PendingRequest(None, ifname, False, alone, None)
        cached = ifname in self._indexes
        oif = self.index(ifname)
        done: Callable[[], object] = _nothing
        if keep:
            record = RouteRecord(dotted(address), 32, RT_TABLE_MAIN, oif, None)
            owner = self._owner(undo)
            done = partial(owner.push, record)
        return PendingRequest(
            direct.host_route_request("replace", address.packed, oif),
            ifname,
            cached,
            alone,
            done,
        )

    def proxy_neighbour_request(self, ifname: str, address: IPv4Address) -> PendingRequest | None:
        """What :meth:`add_proxy_neighbour` does, for :meth:`send_requests`; ``None`` when
        the address is answered for already (nothing to ask)."""
        dst = dotted(address)
        if self._proxy_record(ifname, dst) is not None:
            return None
        direct: RtnlSocket | None = getattr(self.ipr, "direct", None)

        def alone() -> None:
            self.add_proxy_neighbour(ifname, address)

        if direct is None or type(address) is not IPv4Address:
            return PendingRequest(None, ifname, False, alone, None)
        cached = ifname in self._indexes
        record = ProxyNeighbourRecord(dst, self.index(ifname), ifname)

        def done() -> None:
            self.stack.push(record)
            self._proxies[(ifname, dst)] = record

        request = direct.proxy_neighbour_request("replace", address.packed, record.ifindex)
        return PendingRequest(request, ifname, cached, alone, done)

    def send_requests(self, pending: Sequence[PendingRequest]) -> list[Exception | None]:
        """Carry ``pending`` out in order: the requests of the direct path in one message
        (:meth:`RtnlSocket.send_batch`), each one's record pushed when the kernel
        acknowledged it. The answer for each is ``None`` or the exception
        :meth:`add_host_route` / :meth:`add_proxy_neighbour` would have raised alone:
        one that fails does not stop the others. A request that failed because its
        remembered interface index is gone is made again alone (with the index looked up
        again, as :meth:`_with_index` does)."""
        direct: RtnlSocket | None = getattr(self.ipr, "direct", None)
        batch = [p.request for p in pending if p.request is not None]
        answers = iter(direct.send_batch(batch) if direct is not None and batch else [])
        out: list[Exception | None] = []
        for p in pending:
            err: Exception | None = None
            try:
                if p.request is None or p.done is None:
                    p.alone()
                else:
                    err = next(answers)
                    if err is None:
                        p.done()
                    elif p.cached and err.code == errno.ENODEV:
                        self.forget_links(p.ifname)
                        err = None
                        p.alone()
            except Exception as exc:
                err = exc
            out.append(err)
        return out

    def delete_batch(self) -> DeleteBatch | None:
        """A :class:`DeleteBatch` on this namespace's direct netlink socket (``None``
        without one: a stand-in for the netlink facade, or none opened yet)."""
        if self._ipr is None:
            return None  # nothing asked of netlink: no entry to delete either
        direct: RtnlSocket | None = getattr(self._ipr, "direct", None)
        return None if direct is None else DeleteBatch(direct)

    def _del_route(self, spec: dict[str, object]) -> bool:
        """Delete one route; ``False`` if there was none. Scope ``RT_SCOPE_NOWHERE`` is the
        kernel's wildcard (pyroute2 would send 0, which matches only universe routes)."""
        try:
            self.ipr.route("del", scope=255, **spec)
        except Exception as exc:
            if missing(exc):
                return False
            raise
        return True

    def del_route(
        self,
        dst: IPv4Network | str,
        *,
        table: int | None = None,
        ifname: str | None = None,
        gateway: IPv4Address | str | None = None,
        undo: UndoStack | None = None,
    ) -> bool:
        """Delete the route to ``dst`` (in ``table``, via ``ifname`` and ``gateway`` when
        given), whether we made it or not; ``False`` if there was none. Its record (if
        any) leaves ``undo`` (default: the own stack)."""
        net = IPv4Network(dst)
        spec: dict[str, object] = {
            "dst": str(net.network_address),
            "dst_len": net.prefixlen,
            "table": table or RT_TABLE_MAIN,
        }
        if ifname is not None:
            spec["oif"] = self.index(ifname)
        if gateway is not None:
            spec["gateway"] = str(gateway)
        found = self._del_route(spec)
        self._owner(undo).discard(
            lambda r: (
                isinstance(r, RouteRecord)
                and (r.dst, r.dst_len, r.table) == (spec["dst"], spec["dst_len"], spec["table"])
            )
        )
        return found

    def withdraw_route(
        self, net: IPv4Network, ifname: str, prefsrc: IPv4Address, *, undo: UndoStack
    ) -> bool:
        """Delete the on-link route to ``net`` via ``ifname`` (the one an address made);
        ``undo`` puts it back. ``False`` if there was none."""
        oif = self.index(ifname)
        spec = {"dst": str(net.network_address), "dst_len": net.prefixlen}
        if not self._del_route({**spec, "table": RT_TABLE_MAIN, "oif": oif}):
            return False
        undo.push(
            WithdrawnRouteRecord(str(net.network_address), net.prefixlen, oif, str(prefsrc), ifname)
        )
        return True

    def routes(self, table: int = RT_TABLE_MAIN) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for r in self.ipr.route("dump", family=2, table=table):
            out.append(
                {
                    "dst": f"{r.get('RTA_DST') or '0.0.0.0'}/{r['dst_len']}",
                    "gateway": r.get("RTA_GATEWAY"),
                    "oif": r.get("RTA_OIF"),
                    "table": r.get("RTA_TABLE"),
                }
            )
        return out

    def add_rule(
        self,
        *,
        table: int,
        priority: int,
        src: IPv4Network | IPv4Address | str | None = None,
        iif: str | None = None,
        undo: UndoStack | None = None,
    ) -> None:
        net = IPv4Network(src) if src is not None else None
        record = RuleRecord(
            table,
            priority,
            str(net.network_address) if net is not None else None,
            net.prefixlen if net is not None else None,
            iif,
        )
        self.ipr.rule("add", **_rule_spec(record))
        self._owner(undo).push(record)

    def del_rule(self, *, table: int, priority: int, undo: UndoStack | None = None) -> None:
        mine = self._owner(undo).discard(
            lambda r: isinstance(r, RuleRecord) and (r.table, r.priority) == (table, priority)
        )
        for r in mine:
            assert isinstance(r, RuleRecord)
            with contextlib.suppress(Exception):
                self.ipr.rule("del", **_rule_spec(r))

    # -- neighbours -------------------------------------------------------------------

    def add_neighbour(
        self,
        ifname: str,
        address: IPv4Address | str,
        lladdr: bytes,
        *,
        undo: UndoStack | None = None,
    ) -> None:
        """A permanent neighbour entry: ``address`` is reached at ``lladdr``, never ARPed."""
        record = NeighbourRecord(str(address), self.index(ifname))
        self.ipr.neigh(
            "replace",
            lladdr=lladdr.hex(":"),
            state=NUD_PERMANENT,
            dst=record.dst,
            ifindex=record.ifindex,
        )
        self._owner(undo).push(record)

    def del_neighbour(
        self, ifname: str, address: IPv4Address | str, *, undo: UndoStack | None = None
    ) -> None:
        record = NeighbourRecord(str(address), self.index(ifname))
        with contextlib.suppress(Exception):
            self.ipr.neigh("del", dst=record.dst, ifindex=record.ifindex)
        self._owner(undo).forget(record)

    def flush_neighbours(self, ifname: str) -> int:
        """Delete the dynamic neighbour entries on ``ifname`` (``ip neigh flush dev``);
        permanent and proxy entries stay. Deleting an unresolved entry also frees the
        datagrams queued on it. Returns how many were deleted."""
        idx = self.index(ifname)
        deleted = 0
        for n in self.ipr.neigh("dump", family=2, ifindex=idx):
            state = int(n.get("state", 0))
            if state & (NUD_PERMANENT | NUD_NOARP) or int(n.get("flags", 0)) & NTF_PROXY:
                continue
            dst = n.get("NDA_DST")
            if dst is None:
                continue
            with contextlib.suppress(Exception):
                self.ipr.neigh("del", dst=str(dst), ifindex=idx)
                deleted += 1
        return deleted

    def neighbour(self, ifname: str, address: IPv4Address | str) -> bytes | None:
        """The link-layer address the kernel holds for ``address`` on ``ifname``."""
        idx = self.index(ifname)
        for n in self.ipr.neigh("dump", family=2, ifindex=idx):
            if n.get("NDA_DST") == str(address) and n.get("NDA_LLADDR"):
                return bytes.fromhex(str(n.get("NDA_LLADDR")).replace(":", ""))
        return None

    def add_proxy_neighbour(self, ifname: str, address: IPv4Address | str) -> None:
        """Answer ARP for ``address`` on ``ifname`` (``ip neigh add proxy``). The kernel
        answers only when forwarding is on and its route to ``address`` leaves by another
        interface (``arp_process`` in net/ipv4/arp.c)."""
        dst = str(address)
        if self._proxy_record(ifname, dst) is not None:
            return  # already answered for
        record = ProxyNeighbourRecord(dst, self.index(ifname), ifname)
        direct: RtnlSocket | None = getattr(self.ipr, "direct", None)
        if direct is not None and type(address) is IPv4Address:
            # the same request from the address's 4 bytes (issue 13)
            direct.proxy_neighbour("replace", address.packed, record.ifindex)
        else:
            self.ipr.neigh("replace", dst=dst, ifindex=record.ifindex, flags=NTF_PROXY)
        self.stack.push(record)
        self._proxies[(ifname, dst)] = record

    def del_proxy_neighbour(self, ifname: str, address: IPv4Address | str) -> None:
        record = self._proxy_record(ifname, address)
        if record is not None:
            with contextlib.suppress(Exception):
                self.ipr.neigh("del", dst=record.dst, ifindex=record.ifindex, flags=NTF_PROXY)
            self.stack.forget(record)
            del self._proxies[(ifname, record.dst)]

    # -- sysctl -----------------------------------------------------------------------

    def sysctl(self, key: str, value: str | int, *, restore: bool = True) -> None:
        """Set ``key``; with ``restore`` the value it had before this object first changed
        it is put back by :meth:`undo` (not needed in a namespace we own)."""
        old = write_sysctl(key, value, self.name)
        if not restore or self.owned or old == str(value):
            return
        if key in self._sysctl_keys:
            return  # the first value is the one to restore
        self._sysctl_keys.add(key)
        self.stack.push(SysctlRecord(key, old))

    def read_sysctl(self, key: str) -> str:
        return read_sysctl(key, self.name)

    def set_forwarding(self, on: bool = True) -> None:
        self.sysctl("net.ipv4.ip_forward", int(on))

    def set_proxy_arp(self, ifname: str, on: bool = True) -> None:
        self.sysctl(f"net.ipv4.conf.{ifname}.proxy_arp", int(on))

    def set_rp_filter(self, ifname: str, mode: int) -> None:
        """0 off, 1 strict, 2 loose. The kernel uses max(all, interface)."""
        self.sysctl(f"net.ipv4.conf.{ifname}.rp_filter", mode)

    def disable_ipv6(self, ifname: str) -> None:
        """Keep IPv6 off ``ifname`` (no link-local address, no router solicitations on a
        TUN device). Silently does nothing on a kernel without IPv6."""
        with contextlib.suppress(FileNotFoundError):
            self.sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6", 1, restore=False)


class DeleteBatch:
    """Proxy neighbour entries deleted together (a clean stop, :meth:`Netns.delete_batch`):
    :meth:`take` queues a record's delete, :meth:`flush` sends what is queued in one
    message per :data:`RtnlSocket.BATCH_MAX` (:meth:`RtnlSocket.send_batch`) -- the same
    request :meth:`Netns.undo_record` sends for each. An entry already gone is no error
    (as there); the others are kept in :attr:`errors` as text."""

    def __init__(self, direct: RtnlSocket) -> None:
        self.direct = direct
        self._requests: list[Request] = []
        self._records: list[ProxyNeighbourRecord] = []
        self.errors: list[str] = []
        self.sent = 0

    def take(self, record: object) -> bool:
        """Queue ``record``'s undo if it is a proxy entry's; ``False`` (nothing queued)
        for any other record."""
        if type(record) is not ProxyNeighbourRecord:
            return False
        self._requests.append(
            self.direct.proxy_neighbour_request(
                "del", IPv4Address(record.dst).packed, record.ifindex
            )
        )
        self._records.append(record)
        if len(self._requests) >= RtnlSocket.BATCH_MAX:
            self.flush()
        return True

    def flush(self) -> None:
        """Send what is queued, read the answers."""
        if not self._requests:
            return
        requests, records = self._requests, self._records
        self._requests, self._records = [], []
        self.sent += len(requests)
        for record, err in zip(records, self.direct.send_batch(requests), strict=True):
            if err is not None and not missing(err):
                self.errors.append(f"{record.describe()}: {err}")


def _nothing() -> None:
    """The ``done`` of a request whose object keeps no record (:meth:`Netns.add_route`'s
    ``keep``)."""


class PendingRequest(NamedTuple):
    """A route or proxy entry to be asked for with others (:meth:`Netns.send_requests`):
    the direct path's ``request`` and what to do once the kernel acknowledged it
    (``done``: push its record), or -- without the direct path -- ``alone``, the general
    call; ``alone`` is also the retry of a request whose remembered index (``cached``)
    was gone. (A tuple: two are made per first registration.)"""

    request: Request | None
    ifname: str
    cached: bool
    alone: Callable[[], None]
    done: Callable[[], object] | None


def _rule_spec(record: RuleRecord) -> dict[str, object]:
    spec: dict[str, object] = {"table": record.table, "priority": record.priority, "family": 2}
    if record.src is not None:
        spec["src"] = record.src
        spec["src_len"] = record.src_len
    if record.iifname is not None:
        spec["iifname"] = record.iifname
    return spec
