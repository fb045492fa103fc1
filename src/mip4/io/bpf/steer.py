"""Per-source steering of the home agent's registration port (issue 13: a flood of forged
requests must not starve valid registrations).

Theory of operation
-------------------
A home agent answers forged requests only after reading them, and the kernel drops what its
socket's receive buffer cannot hold before user space sees it: one UDP socket flooded with
forgeries loses the valid renewals with them, whatever the authentication costs. So the
kernel keeps the queues apart. :class:`Steering` binds **two** UDP sockets to the port with
``SO_REUSEPORT`` -- ``trusted`` and ``general`` -- and attaches ``mip4_steer``
(``bpf/mip4_steer.bpf.c``, a ``BPF_PROG_TYPE_SK_REUSEPORT`` program) to their group: a
datagram whose IPv4 source is in the LRU hash ``mip4_steer_trusted`` goes to the trusted
socket, anything else to the general one. A source is made trusted (:meth:`Steering.trust`)
when the home agent sends it an *accepting* Registration Reply (type 3, code 0 or 1): only
an authenticated request gets one (RFC 5944 §3.8). A Python set mirrors the map so each
source costs one map update, ever (cleared when it reaches the map's size; the LRU map
evicts its least recently used sources on its own). The daemon's driver reads the trusted
socket first (:meth:`mip4.io.driver.EngineDriver.add_steered_readers`).

Limits (docs/configuration.md, ``[io] flood_steering``): a new source -- the first
registration from a care-of address or foreign agent never accepted before -- arrives on
the general socket and competes with a flood there; a flood that spoofs a trusted
source's address lands on the trusted socket. Nothing is dropped by the program; a failed
selection leaves the choice to the kernel's hash, as without a program.

Broadcast and multicast datagrams are another matter: the kernel gives a copy to every
socket bound to the port, reuseport group or not, and runs no program for them. So that
each is handled once, the general socket carries a classic socket filter that refuses what
was not addressed to this host alone (``pkttype`` other than ``PACKET_HOST``; its drops
count those copies): a broadcast or multicast request (dynamic home agent discovery, RFC
5944 §3.6.1.2) is read from the trusted socket, whatever its source.

Nothing is pinned: the program lives as long as the sockets' reuseport group, the maps as
long as the program or this object.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from ..rawsock import attach_filter, open_udp_control
from . import libbpf as lb
from . import plane

log = logging.getLogger("mip4.bpf")

OBJECT_NAME = "mip4_steer.bpf.o"
RECORD_NAME = "mip4_steer.bpf.json"
PROGRAM = "mip4_steer"
TRUSTED_MAP = "mip4_steer_trusted"
SOCKS_MAP = "mip4_steer_socks"
#: ``max_entries`` of ``mip4_steer_trusted`` (``MIP4_STEER_SOURCES`` in the C source)
TRUSTED_SOURCES = 65536
#: indexes in ``mip4_steer_socks``
TRUSTED, GENERAL = 0, 1

BPF_PROG_TYPE_SK_REUSEPORT = 21
SO_ATTACH_REUSEPORT_EBPF = 52

#: getsockopt(SOL_SOCKET, SO_MEMINFO): nine u32 (``SK_MEMINFO_*``), the last the drops
SO_MEMINFO = 55
_MEMINFO = struct.Struct("=9I")
_U32 = struct.Struct("=I")
#: the classic BPF of :func:`accept_host_only`: ``ld #pkttype; jeq #PACKET_HOST, 0, 1;
#: ret #-1; ret #0`` (struct sock_filter: u16 code, u8 jt, u8 jf, u32 k)
_SKF_AD_PKTTYPE = -0x1000 + 4
_HOST_ONLY = [
    (0x20, 0, 0, _SKF_AD_PKTTYPE & 0xFFFFFFFF),  # BPF_LD | BPF_W | BPF_ABS
    (0x15, 0, 1, 0),  # BPF_JMP | BPF_JEQ | BPF_K: PACKET_HOST
    (0x06, 0, 0, 0xFFFFFFFF),  # BPF_RET | BPF_K: the whole datagram
    (0x06, 0, 0, 0),  # refused
]
_U64 = struct.Struct("=Q")
_ZERO = _U64.pack(0)
_EEXIST = 17


def object_path() -> Path:
    """The shipped object (package data)."""
    return plane.object_path(OBJECT_NAME)


def object_record() -> dict[str, str]:
    """What the object was built from: ``{"source", "sha256", "clang"}``."""
    return plane.object_record(RECORD_NAME)


class SteerProgram:
    """One loaded ``mip4_steer.bpf.o``: the program's fd and its two maps."""

    def __init__(self, obj: Path | None = None) -> None:
        bpf = lb.lib()
        self.path = obj or object_path()
        lb.LOG_TAIL.clear()
        self._obj = lb.check_ptr(
            bpf.bpf_object__open_file(str(self.path).encode(), None),
            f"bpf_object__open_file({self.path})",
        )
        try:
            lb.check(bpf.bpf_object__load(self._obj), f"bpf_object__load({self.path})")
            prog = lb.check_ptr(
                bpf.bpf_object__find_program_by_name(self._obj, PROGRAM.encode()), PROGRAM
            )
            self.prog_fd = lb.check(bpf.bpf_program__fd(prog), f"bpf_program__fd({PROGRAM})")
            self.trusted_fd = self._map_fd(TRUSTED_MAP)
            self.socks_fd = self._map_fd(SOCKS_MAP)
        except BaseException:
            bpf.bpf_object__close(self._obj)
            self._obj = 0
            raise

    def _map_fd(self, name: str) -> int:
        bpf = lb.lib()
        ptr = lb.check_ptr(bpf.bpf_object__find_map_by_name(self._obj, name.encode()), name)
        return lb.check(bpf.bpf_map__fd(ptr), f"bpf_map__fd({name})")

    def attach(self, sock: socket.socket) -> None:
        """Attach the program to the reuseport group of ``sock`` (bound, ``SO_REUSEPORT``)."""
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, _U32.pack(self.prog_fd))

    def set_socket(self, index: int, sock: socket.socket) -> None:
        """``mip4_steer_socks[index] = sock`` (bound, in the group of the other one)."""
        rc = lb.lib().bpf_map_update_elem(
            self.socks_fd, _U32.pack(index), _U64.pack(sock.fileno()), lb.BPF_ANY
        )
        lb.check(rc, f"bpf_map_update_elem({SOCKS_MAP}[{index}])")

    def add_trusted(self, key: bytes) -> None:
        """Add a source (4 bytes, network order); one already there keeps its count."""
        rc = lb.lib().bpf_map_update_elem(self.trusted_fd, key, _ZERO, lb.BPF_NOEXIST)
        if rc != -_EEXIST:
            lb.check(rc, f"bpf_map_update_elem({TRUSTED_MAP})")

    def hits(self, key: bytes) -> int | None:
        """Datagrams steered to the trusted socket from source ``key``; ``None``: not in
        the map (never trusted, or evicted)."""
        buf = ctypes.create_string_buffer(8)
        rc = lb.lib().bpf_map_lookup_elem(self.trusted_fd, key, buf)
        if rc == -2:  # ENOENT
            return None
        lb.check(rc, f"bpf_map_lookup_elem({TRUSTED_MAP})")
        value: int = _U64.unpack(buf.raw)[0]
        return value

    def trusted_count(self) -> int:
        """Sources in the map now (walks it: for tests and diagnosis, not per datagram)."""
        bpf = lb.lib()
        nxt = ctypes.create_string_buffer(4)
        cur: bytes | None = None
        n = 0
        while bpf.bpf_map_get_next_key(self.trusted_fd, cur, nxt) == 0:
            n += 1
            cur = nxt.raw
        return n

    def close(self) -> None:
        if self._obj:
            lb.lib().bpf_object__close(self._obj)
            self._obj = 0


def accept_host_only(sock: socket.socket) -> None:
    """A socket filter on ``sock`` refusing every datagram not addressed to this host
    alone (broadcast, multicast): those reach the other sockets of the port anyway."""
    attach_filter(sock, _HOST_ONLY)


def socket_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped at ``sock`` (receive buffer full, and the like)."""
    drops: int = _MEMINFO.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size))[8]
    return drops


def open_reuseport_socket(
    netns: str | None,
    *,
    address: IPv4Address | str = "0.0.0.0",
    port: int = 434,
    host_only: bool = False,
) -> socket.socket:
    """A socket as :func:`mip4.io.rawsock.open_udp_control` opens it, with
    ``SO_REUSEPORT``; ``host_only``: with :func:`accept_host_only`'s filter before the
    bind."""
    return open_udp_control(
        netns,
        address=address,
        port=port,
        reuse_port=True,
        before_bind=accept_host_only if host_only else None,
    )


class Steering:
    """The trusted and general sockets of one port and the program between them."""

    def __init__(
        self,
        program: SteerProgram,
        trusted: socket.socket,
        general: socket.socket,
        *,
        capacity: int = TRUSTED_SOURCES,
    ) -> None:
        self.program = program
        self.trusted = trusted
        self.general = general
        self.capacity = capacity
        #: mirror of the map's keys (``int`` of the address): one map update per source
        self._known: set[int] = set()
        #: sources marked trusted since start (each counted once per mirror generation)
        self.marked = 0

    @classmethod
    def open(
        cls,
        netns: str | None,
        *,
        port: int = 434,
        address: IPv4Address | str = "0.0.0.0",
        obj: Path | None = None,
    ) -> Steering:
        """Load the program, bind the two sockets, attach, fill the socket array. Raises
        :class:`~mip4.io.bpf.libbpf.BpfUnavailable` or ``OSError`` (nothing left open)."""
        program = SteerProgram(obj)
        opened: list[socket.socket] = []
        try:
            trusted = open_reuseport_socket(netns, address=address, port=port)
            opened.append(trusted)
            program.attach(trusted)
            # broadcasts and multicasts: read once, from the trusted socket
            general = open_reuseport_socket(netns, address=address, port=port, host_only=True)
            opened.append(general)
            program.set_socket(TRUSTED, trusted)
            program.set_socket(GENERAL, general)
        except BaseException:
            for s in opened:
                s.close()
            program.close()
            raise
        return cls(program, trusted, general)

    def trust(self, source: IPv4Address) -> None:
        """Steer ``source``'s datagrams to the trusted socket from now on (it was sent an
        accepting reply). Free after the first time."""
        key = int(source)
        known = self._known
        if key in known:
            return
        if len(known) >= self.capacity:
            known.clear()  # the LRU map evicts on its own; the mirror starts again
        known.add(key)
        self.marked += 1
        try:
            self.program.add_trusted(source.packed)
        except OSError as e:
            known.discard(key)
            log.warning("flood steering: cannot trust %s: %s", source, e)

    def is_trusted(self, source: IPv4Address) -> bool:
        """Whether the map holds ``source`` now (a map lookup)."""
        return self.program.hits(source.packed) is not None

    def snapshot(self) -> dict[str, Any]:
        """For ``mip4 status``: sources marked (at most the map's size), the map size, and
        the datagrams each socket's receive buffer dropped (``SO_MEMINFO``)."""
        return {
            "on": True,
            "trusted_sources": min(self.marked, self.capacity),
            "map_size": self.capacity,
            "trusted_drops": socket_drops(self.trusted),
            "general_drops": socket_drops(self.general),
        }

    def close(self) -> None:
        """Close both sockets (the program goes with their group) and the object."""
        self.general.close()
        self.trusted.close()
        self.program.close()


__all__ = [
    "GENERAL",
    "TRUSTED",
    "TRUSTED_SOURCES",
    "SteerProgram",
    "Steering",
    "accept_host_only",
    "object_path",
    "object_record",
    "open_reuseport_socket",
    "socket_drops",
]
