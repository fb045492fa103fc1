"""A read's actions together (issue 13): what :class:`~mip4.io.executor.LinuxExecutor`
gathers between :meth:`~mip4.io.executor.LinuxExecutor.hold_actions` and
:meth:`~mip4.io.executor.LinuxExecutor.release_actions` (the driver: one read of the control
socket, one timer), and how it is carried out.

The kernel work of first registrations waits and is done together: the routes and proxy
entries asked for in one netlink message (:meth:`mip4.io.netns.Netns.send_requests`), then
the first gratuitous ARPs, then the journal's lines in one write, then -- only then -- the
replies, in their order. So when a reply leaves, what its registration asked of the kernel
is there, its first gratuitous ARP is on the wire and its records are in the journal file,
as when each action was carried out at once. A route that fails is its binding's failure;
the others of the message are done."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mip4.core.actions import (
    Action,
    GratuitousArp,
    InstallBinding,
    Log,
    ProxyArp,
    RelayInKernel,
    SendUdp,
    StopRelayInKernel,
)

from .netns import PendingRequest

#: the actions :meth:`LinuxExecutor.hold_actions` may hold (each handler decides), and the
#: log lines; any other carries out what waits first
#: (the kernel relay's map entries, issue 13, are written at once: they ask nothing of what
#: waits, and a stop must be in the map before the request that caused it leaves)
HOLDABLE = frozenset(
    {InstallBinding, ProxyArp, GratuitousArp, SendUdp, Log, RelayInKernel, StopRelayInKernel}
)


@dataclass
class HeldActions:
    """What :meth:`LinuxExecutor.hold_actions` gathered, in the order it is carried out."""

    #: routes and proxy entries: the action, its request, what follows its success
    kernel: list[tuple[Action, PendingRequest, Callable[[], None] | None]] = field(
        default_factory=list
    )
    #: first gratuitous ARPs: the action, the first frame, the repeats' scheduling
    arps: list[tuple[Action, Callable[[], None], Callable[[], None]]] = field(default_factory=list)
    #: replies, in their order
    sends: list[SendUdp] = field(default_factory=list)
    #: ("binding", home) / ("proxy" | "arp", interface, address) waiting (addresses as
    #: integers: a cheaper hash): a second action for one of them carries out what waits
    #: first
    keys: set[tuple[object, ...]] = field(default_factory=set)
    failed: list[tuple[Action, Exception]] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        return bool(self.kernel or self.arps or self.sends)

    def carry_out(
        self,
        send_requests: Callable[[Sequence[PendingRequest]], Sequence[Exception | None]],
        send_udp: Callable[[SendUdp], None],
    ) -> None:
        """The kernel requests in one message (``send_requests``: each one's error or
        ``None``), then the ARPs, then the replies (``send_udp``); each failure is kept in
        :attr:`failed` with its action, and the rest go on."""
        kernel, arps, sends = self.kernel, self.arps, self.sends
        self.kernel, self.arps, self.sends = [], [], []
        self.keys.clear()
        failed = self.failed
        if kernel:
            answers = send_requests([request for _a, request, _then in kernel])
            for (action, _request, then), err in zip(kernel, answers, strict=True):
                if err is None and then is not None:
                    try:
                        then()
                    except Exception as exc:
                        err = exc
                if err is not None:
                    failed.append((action, err))
        for action, first, repeats in arps:
            try:
                first()
                repeats()
            except Exception as exc:
                failed.append((action, exc))
        for reply in sends:
            try:
                send_udp(reply)
            except Exception as exc:
                failed.append((reply, exc))
