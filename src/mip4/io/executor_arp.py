"""The executor's ARP actions (RFC 5944 §4.6), apart from the rest of
:class:`~mip4.io.executor.LinuxExecutor` as h2 keeps its streams apart from the connection:
``ProxyArp`` (a kernel proxy neighbour entry, or with the bpf fast path an entry of the
program's ``mip4_proxy`` map) and ``GratuitousArp`` (an announcement and its repeats, a
newer one cancelling an older one's). :class:`ArpActions` is a mixin: the state it uses is
the executor's (declared here for the type checker)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address

from mip4.core.actions import GratuitousArp, ProxyArp

from .bpf.agent import FastPath
from .held import HeldActions
from .netns import Netns, NetnsError
from .rawsock import ArpSender

log = logging.getLogger("mip4")


class ArpActions:
    """``proxy_arp`` and ``gratuitous_arp`` of :class:`~mip4.io.executor.LinuxExecutor`."""

    # the executor's, set by its dataclass fields
    ns: Netns
    fast_path: FastPath | None
    stats: Counter[str]
    garp_interval: float
    call_later: Callable[[float, Callable[[], None]], object] | None
    _held: HeldActions | None
    _proxy_immediate: set[str]
    _own_link: dict[int, bytes]
    _garp_repeats: dict[tuple[str, int], _Repeats]

    @property
    def arp_sender(self) -> ArpSender:
        raise NotImplementedError  # the executor's

    def _carry_out_held(self) -> None:
        raise NotImplementedError  # the executor's

    def proxy_arp(self, a: ProxyArp) -> None:
        """RFC 5944 §4.6: answer ARP for ``a.address`` on ``a.interface`` (or stop). With
        the bpf fast path attached to the interface the program answers, from its map
        (:meth:`_fast_proxy_arp`); otherwise a kernel proxy neighbour entry does."""
        held = self._held
        if (
            held is not None
            and held.waiting
            and (not a.enable or ("proxy", a.interface, int(a.address)) in held.keys)
        ):
            self._carry_out_held()
        fast = self.fast_path
        if fast is not None and self._fast_proxy_arp(fast, a):
            return
        if a.enable:
            if a.interface not in self._proxy_immediate:
                # The kernel delays proxy ARP replies by up to proxy_delay (0.8 s by default).
                # A reply queued just before the proxy entry is withdrawn would then go out
                # after the gratuitous ARPs that hand the address back to the node (RFC 5944
                # §4.6) and undo them in the neighbours' caches: answer at once instead.
                self.ns.sysctl(f"net.ipv4.neigh.{a.interface}.proxy_delay", 0)
                self._proxy_immediate.add(a.interface)
            held = self._held
            if held is None:
                self.ns.add_proxy_neighbour(a.interface, a.address)
                return
            request = self.ns.proxy_neighbour_request(a.interface, a.address)
            if request is not None:
                held.kernel.append((a, request, None))
                held.keys.add(("proxy", a.interface, int(a.address)))
        else:
            self.ns.del_proxy_neighbour(a.interface, a.address)
            # the announcements of the agent's own address for the node are over too
            self._cancel_garp_repeats(a.interface, a.address)

    def _fast_proxy_arp(self, fast: FastPath, a: ProxyArp) -> bool:
        """``a`` carried out by the fast path: a map entry made or deleted at once (one
        system call: the answer is there before any gratuitous ARP that follows, held or
        not), no kernel entry, no ``proxy_delay`` (the program answers at once). False if
        the fast path does not serve the interface, or its map is full: then the kernel
        entry answers (counted ``proxy_arp_map_full``)."""
        try:
            index = self.ns.index(a.interface)
        except NetnsError:
            if a.enable:
                raise
            return False  # gone: it answers nothing now (a kernel entry is undone by name)
        if not fast.answers_arp(index):
            return False
        if a.enable:
            own = self._own_link.get(index)
            if own is None:
                own = self._own_link[index] = self.ns.link_address(a.interface)
            if fast.proxy_arp(a.address, index, own):
                return True
            self.stats["proxy_arp_map_full"] += 1
            if self.stats["proxy_arp_map_full"] == 1:  # once: then counted only
                log.warning("bpf.proxy_full address=%s: kernel proxy entries answer", a.address)
            return False
        fast.unproxy_arp(a.address, index)
        # a kernel entry made while the map was full (nothing when there is none)
        self.ns.del_proxy_neighbour(a.interface, a.address)
        self._cancel_garp_repeats(a.interface, a.address)
        return True

    def gratuitous_arp(self, a: GratuitousArp) -> None:
        """Announce ``a.address`` at ``a.link_address``, ``count`` times ``garp_interval``
        apart. A newer announcement of the same address cancels the repeats of an older
        one still to go out: a node that left home and came back within the repeats
        (RFC 5944 §4.6) would otherwise have its own address taken back from it by the
        home agent's last announcement of its own."""
        held = self._held
        address = int(a.address)
        if held is not None and ("arp", a.interface, address) in held.keys:
            self._carry_out_held()
        count = max(0, min(a.count, 10))
        key = (a.interface, address)
        table = self._garp_repeats
        old = table.pop(key, None)
        if old is not None:
            old.left = 0
        if count == 0:
            return
        one = self.arp_sender.announcement(a.interface, a.address, a.link_address)
        call_later, interval = self.call_later, self.garp_interval
        if count == 1:
            repeats: Callable[[], None] = _nothing
        elif call_later is None or interval <= 0:

            def repeats() -> None:
                for _ in range(1, count):
                    one()

        else:
            later = _Repeats(one, count - 1, key, table)

            def repeats() -> None:
                table[key] = later
                fire = later.fire
                for i in range(1, count):
                    call_later(interval * i, fire)

        if held is not None:  # the first one after the proxy entries asked for before it
            held.arps.append((a, one, repeats))
            held.keys.add(("arp", a.interface, address))
            return
        one()
        repeats()

    def _cancel_garp_repeats(self, interface: str, address: IPv4Address) -> None:
        repeats = self._garp_repeats.pop((interface, int(address)), None)
        if repeats is not None:
            repeats.left = 0


def _nothing() -> None:
    pass


class _Repeats:
    """The repeats of one gratuitous ARP still to go out, each timer calling :meth:`fire`
    (issue 13: per first registration one object and two timers of
    :class:`~mip4.io.driver.CoalescedTimers`, no closure, token list or address hash per
    repeat): the last one takes the entry out of the executor's table (nothing kept once
    the repeats are out); a newer announcement, or the end of the proxy entry, sets
    :attr:`left` to 0 and the timers still to come send nothing."""

    __slots__ = ("key", "left", "send", "table")

    def __init__(
        self,
        send: Callable[[], None],
        left: int,
        key: tuple[str, int],
        table: dict[tuple[str, int], _Repeats],
    ) -> None:
        self.send = send
        self.left = left
        self.key = key
        self.table = table

    def fire(self) -> None:
        left = self.left
        if left <= 0:
            return
        self.left = left - 1
        if left == 1 and self.table.get(self.key) is self:
            del self.table[self.key]
        self.send()
