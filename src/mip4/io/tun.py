"""TUN devices: the user-space end of the tunnel data plane.

The kernel has no ipip/gre modules here, so datagrams that must be tunnelled are routed into
a TUN device, read by :mod:`mip4.io.forwarder`, encapsulated and sent on a raw socket; and
decapsulated datagrams are written back into the TUN device for the kernel to deliver.

How the device gets into a namespace: :class:`Tun` opens ``/dev/net/tun`` **while the
calling thread is inside the namespace** (:func:`mip4.io.netns.entered`); ``TUNSETIFF``
creates the interface in the opener's namespace, so nothing is ever created in the root
namespace and nothing has to be moved. The device is not persistent: closing the file
descriptor removes the interface, so a crashed process leaves nothing behind.

Flags: ``IFF_TUN | IFF_NO_PI`` (pyroute2 0.9.7's ``tuntap`` ignores ``iff_no_pi``, hence
the direct ``ioctl``); each read returns exactly one IP datagram, with no packet-information
prefix. IPv6 is disabled on the device right away so the kernel never queues router
solicitations into it; :meth:`Tun.read_batch` also drops anything that is not IPv4.
Reverse-path filtering is off (0) on the device: decapsulated datagrams written into it
come from sources that are routed elsewhere. Loose mode (2) is not enough: the kernel's
check (``__fib_validate_source``) fails any non-zero mode on a device **without an address**
when the source's route leaves by another device -- exactly the mobile node's TUN device
with a co-located care-of address and no reverse tunnel. The kernel uses the maximum of
``net.ipv4.conf.all.rp_filter`` and the device's value, so :func:`rp_filter_problem` names
the host setting that would still drop them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from collections.abc import Iterator
from ipaddress import IPv4Interface

from .netns import Netns, entered

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
DEFAULT_MTU = 1472
"""Leaves room for the largest outer header we add (20 IP + 8 GRE with key) on a 1500-byte
link, so encapsulated datagrams never exceed the physical MTU (RFC 2003 §5.1)."""


class Tun:
    """A non-blocking TUN device ``name`` in namespace ``netns``.

    ``Tun(name, netns="m4x-ha", address="10.99.0.1/32")`` creates it, disables IPv6, sets the
    MTU and brings it up. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        name: str,
        netns: str | None = None,
        *,
        address: IPv4Interface | str | None = None,
        mtu: int = DEFAULT_MTU,
        up: bool = True,
        bufsize: int = 65535,
    ) -> None:
        if len(name.encode()) >= IFNAMSIZ:
            raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ - 1} bytes")
        self.name = name
        self.netns = netns
        with entered(netns):
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
                fcntl.ioctl(fd, TUNSETIFF, ifr)
            except BaseException:
                os.close(fd)
                raise
        self.fd = fd
        self._buf = bytearray(bufsize)
        self._view = memoryview(self._buf)
        self.dropped_non_ipv4 = 0
        try:
            ns = Netns(netns)
            try:
                ns.disable_ipv6(name)
                # no reverse-path filtering: a decapsulated datagram comes in here from a
                # source the routes reach by another interface, and loose mode drops it
                # on a device without an address (see the module doc)
                ns.sysctl(f"net.ipv4.conf.{name}.rp_filter", 0, restore=False)
                ns.set_mtu(name, mtu)
                if address is not None:
                    ns.add_address(name, address)
                if up:
                    ns.set_up(name)
                self.index = ns.index(name)
            finally:
                ns.close()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Tun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def write(self, packet: bytes | bytearray | memoryview) -> int:
        """Hand one IP datagram to the kernel as if it arrived on the device."""
        return os.write(self.fd, packet)

    def read(self) -> bytes | None:
        """One datagram, or ``None`` when none is queued."""
        for pkt in self.read_views(1):
            return bytes(pkt)
        return None

    def read_views(self, limit: int = 256) -> Iterator[memoryview]:
        """Drain up to ``limit`` datagrams until ``EAGAIN``.

        Each item is a view into one reused buffer, valid only until the next item is
        taken: consume (or copy) it before advancing. Non-IPv4 datagrams are dropped.
        """
        fd, buf, view = self.fd, self._buf, self._view
        for _ in range(limit):
            try:
                n = os.readv(fd, (buf,))
            except BlockingIOError:
                return
            if n == 0:
                return
            if buf[0] >> 4 != 4:
                self.dropped_non_ipv4 += 1
                continue
            yield view[:n]

    def read_batch(self, limit: int = 256) -> list[bytes]:
        """Drain up to ``limit`` datagrams (copies) until ``EAGAIN``."""
        return [bytes(v) for v in self.read_views(limit)]


def rp_filter_problem(netns: str | None = None) -> str | None:
    """A warning when the namespace's ``net.ipv4.conf.all.rp_filter`` is not 0: the kernel
    then filters a TUN device's incoming datagrams whatever the device says, and datagrams
    decapsulated from a tunnel whose sources are routed by another interface are dropped
    (a mobile node with a co-located care-of address and no reverse tunnel receives
    nothing). ``None`` when the setting is 0 or cannot be read."""
    try:
        ns = Netns(netns)
    except OSError:
        return None
    try:
        value = ns.read_sysctl("net.ipv4.conf.all.rp_filter").strip()
    except OSError:
        return None
    finally:
        ns.close()
    if value in ("", "0"):
        return None
    return (
        f"net.ipv4.conf.all.rp_filter is {value}: the kernel will drop decapsulated datagrams"
        " whose source is routed by another interface (set it to 0; interfaces keep their"
        " own rp_filter values)"
    )
