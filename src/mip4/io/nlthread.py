"""pyroute2 behind one thread per namespace (:class:`NetlinkThread`), the decoder the link
monitor uses for the messages it does not parse itself (:class:`RtnlDecoder`) and the
message protocol both hand out (:class:`NlMessage`).

Split out of :mod:`mip4.io.netns`, whose :class:`~mip4.io.netns.Netns` issues its requests
through a :class:`NetlinkThread`; the requests on a registration's path go instead through
:class:`~mip4.io.rtnl.RtnlSocket` (``NetlinkThread.direct``).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from .rtnl import RtnlSocket


class NlMessage(Protocol):
    """A decoded pyroute2 netlink message (``ifinfmsg``, ``rtmsg``...): header fields by
    ``msg["prefixlen"]``, attributes by ``msg.get("RTA_DST")``."""

    # Any: pyroute2 has no type information; each attribute has its own type (str, int,
    # nested messages) and the callers convert what they read (str(), int())
    def get(self, key: str, default: object = None) -> Any: ...

    def __getitem__(self, key: str) -> Any: ...


class NetlinkThread:
    """A pyroute2 ``IPRoute`` opened inside namespace ``netns`` and used from one private
    thread: the typed netlink facade of mip4 (links, addresses, routes, rules, neighbours).

    pyroute2 0.9.7's synchronous API drives its own asyncio loop with
    ``run_until_complete``, so it cannot be created or called on a thread where an asyncio
    loop is already running (a daemon's executor runs on its loop). Every call is handed to
    the private thread and waited for (netlink requests take microseconds); dumps are turned
    into lists there. Adding, replacing or deleting a route or a neighbour entry -- what
    registrations and their ends do -- goes instead through an :class:`RtnlSocket` of the
    same namespace, on the caller's thread (issue 13: ~220 us of CPU less per request).
    """

    def __init__(self, netns: str | None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"netlink-{netns}")
        try:
            self._ipr, self._rtnl = self._pool.submit(self._open, netns).result(30)
        except BaseException:
            self._pool.shutdown(wait=False)
            raise

    @staticmethod
    def _open(netns: str | None) -> tuple[_IPRoute, RtnlSocket]:
        from pyroute2 import IPRoute  # imported on first use: it takes ~0.5 s

        from .netns import entered  # netns imports this module

        with entered(netns):
            ipr: _IPRoute = IPRoute()
            try:
                return ipr, RtnlSocket.open()
            except BaseException:
                ipr.close()
                raise

    def _run(self, method: str, *args: object, **kwargs: object) -> list[object]:
        func = getattr(self._ipr, method)

        def run() -> list[object]:
            result = func(*args, **kwargs)
            return [] if result is None else list(result)

        return self._pool.submit(run).result(60)

    def _call(self, method: str, *args: object, **kwargs: object) -> list[NlMessage]:
        return cast(list[NlMessage], self._run(method, *args, **kwargs))

    def link(self, command: str, **kwargs: object) -> list[NlMessage]:
        return self._call("link", command, **kwargs)

    def link_lookup(self, *, ifname: str) -> list[int]:
        return cast(list[int], self._run("link_lookup", ifname=ifname))

    def addr(self, command: str, **kwargs: object) -> list[NlMessage]:
        return self._call("addr", command, **kwargs)

    def route(self, command: str, **kwargs: object) -> list[NlMessage]:
        if RtnlSocket.takes("route", command, kwargs):
            self._rtnl.route(command, **kwargs)
            return []
        return self._call("route", command, **kwargs)

    def rule(self, command: str, **kwargs: object) -> list[NlMessage]:
        return self._call("rule", command, **kwargs)

    def get_rules(self, **kwargs: object) -> list[NlMessage]:
        return self._call("get_rules", **kwargs)

    @property
    def direct(self) -> RtnlSocket:
        """The direct rtnetlink socket (the requests a registration makes, from integers:
        :meth:`Netns.add_host_route`, :meth:`Netns.add_proxy_neighbour`)."""
        return self._rtnl

    def neigh(self, command: str, **kwargs: object) -> list[NlMessage]:
        if RtnlSocket.takes("neigh", command, kwargs):
            self._rtnl.neigh(command, **kwargs)
            return []
        return self._call("neigh", command, **kwargs)

    def close(self) -> None:
        try:
            self._rtnl.close()
            self._pool.submit(self._ipr.close).result(10)
        finally:
            self._pool.shutdown(wait=True)


class RtnlDecoder:
    """Decodes what a ``NETLINK_ROUTE`` socket subscribed to notification groups reads
    (the link monitor's): pyroute2's ``MarshalRtnl``, imported on first use."""

    def __init__(self) -> None:
        from pyroute2.netlink.rtnl.marshal import MarshalRtnl

        self._marshal = MarshalRtnl()

    def decode(self, data: bytes) -> list[NlMessage]:
        """The messages in ``data``, each with its ``msg["header"]["type"]``."""
        return list(self._marshal.parse(data))


class _IPRoute(Protocol):
    """The part of pyroute2's ``IPRoute`` that :class:`NetlinkThread` calls by name."""

    def close(self) -> None: ...
