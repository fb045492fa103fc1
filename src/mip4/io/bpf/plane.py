"""The tc-BPF tunnel plane seen from Python: load ``mip4_tunnel.bpf.o`` through libbpf, feed
its maps, attach its programs, read its counters.

Theory of operation
-------------------
:class:`BpfPlane` owns one loaded object (five SCHED_CLS programs, nine maps and a ring
buffer; the C source is ``bpf/mip4_tunnel.bpf.c``, whose header explains the data path). The
daemons drive it with map updates only -- nothing is recompiled or reloaded per binding:

=====================================  ===================================================
home agent: binding added / renewed    ``set_binding(home, Tunnel(ha, coa, encap))`` and
                                       ``set_peer(Peer(ha, coa, bound_source=True,``
                                       ``forward=True))`` (reverse tunnel exit, RFC 3024
                                       §4.3; forwarded by the program)
home agent: binding removed            ``del_binding(home)``, ``del_peer(ha, coa)``
home agent: node away / back home      ``set_proxy(home, ifindex, mac)`` / ``del_proxy(home,
                                       ifindex)``: ``mip4_agent`` answers ARP for ``home``
                                       on that interface (RFC 5944 §4.6)
foreign agent: visitor accepted        ``set_reverse(home, Tunnel(fa, ha, ...))`` (when
                                       reverse tunnelling), ``set_peer(Peer(fa, ha))`` and
                                       ``set_visitor(home, Visitor(ifindex, mac, own))``,
                                       ``account_visitor(home)`` (RFC 2866 counters)
foreign agent: visitor registered      ``set_relay(home, Relay(request, node, ...))``:
                                       ``mip4_agent`` relays the renewal that repeats
                                       ``request`` and the acceptance that answers it
                                       (issue 13); ``del_relay(home)``; ``relays()``
foreign agent: what the kernel relays  ``relay_records()``: ``fileno()`` for the event
                                       loop, ``drain()`` -> :class:`Relayed` (the datagrams
                                       as they came in, for the engine to replay)
co-located node: registered            ``set_reverse(home, Tunnel(coa, ha, oif=..,
                                       mtu=..))``, ``set_peer(Peer(coa, ha))``
status / counters                      ``counters()``: per binding and direction, summed
                                       over the CPUs of the per-CPU map; ``events()``;
                                       ``visitor_traffic(home)`` (accounting)
=====================================  ===================================================

With ``pin_dir`` (a directory on a bpffs) every map is pinned there by name; a later load
with the same ``pin_dir`` reuses the pinned maps, so forwarding survives a daemon restart (the
tc filters keep the old programs alive until :meth:`attach` replaces them atomically, libbpf's
``BPF_TC_F_REPLACE``), and the restarted daemon reconciles :meth:`bindings`, :meth:`reverse`,
:meth:`peers` and :meth:`proxies` against its binding store. :meth:`unpin` removes the pins
on a clean stop. The ring buffer ``mip4_relayed`` is pinned too (the records the old daemon
had not read are read by the next one); it has no entries to list or clear, and its size is
not scaled by ``capacity``.

:meth:`test_run` runs a program on one frame through ``BPF_PROG_TEST_RUN``: the unit tests use
it, and :func:`supports_bpf_plane` loads the object once to decide the backend.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from importlib import resources
from ipaddress import IPv4Address
from itertools import islice
from pathlib import Path
from typing import Self

from . import CAPACITY, MAX_CAPACITY, MIN_CAPACITY
from . import libbpf as lb
from .relay import Relay, RelayRecords

log = logging.getLogger("mip4")

OBJECT_NAME = "mip4_tunnel.bpf.o"
RECORD_NAME = "mip4_tunnel.bpf.json"
MIN_KERNEL = (5, 10)  # bpf_redirect_neigh, the newest helper the object calls

TC_ACT_OK = 0
TC_ACT_SHOT = 2
TC_ACT_REDIRECT = 7


class Program(StrEnum):
    """The object's programs (function names in the C source)."""

    HA_ENCAP = "mip4_ha_encap"  #: HA ingress: destination is a bound home address
    REVERSE_ENCAP = "mip4_reverse_encap"  #: FA visitor-interface ingress (RFC 3024)
    HOST_ENCAP = "mip4_host_encap"  #: co-located node egress, inner TTL unchanged
    DECAP = "mip4_decap"  #: ingress of any tunnel endpoint
    AGENT = "mip4_agent"  #: agent ingress: DECAP, else HA_ENCAP, else REVERSE_ENCAP


class MapName(StrEnum):
    BINDINGS = "mip4_bindings"
    REVERSE = "mip4_reverse"
    PEERS = "mip4_peers"
    VISITORS = "mip4_visitors"
    STATS = "mip4_stats"
    EVENTS = "mip4_events"
    ACCT = "mip4_acct"
    PROXY = "mip4_proxy"
    RELAY = "mip4_relay"  #: home address -> :class:`Relay` (hash)
    RELAYED = "mip4_relayed"  #: the relayed datagrams (a ring buffer: no entries)


class Encap(IntEnum):
    """``enum mip4_encap``."""

    IPIP = 1  #: RFC 2003
    GRE = 2  #: RFC 2784 (key: RFC 2890)
    MINIMAL = 3  #: RFC 2004 (non-GSO, non-fragment; otherwise IP in IP)


class Direction(IntEnum):
    """``enum mip4_dir``: which program counted, and what the counter's address is."""

    HA = 0  #: HA -> care-of address; keyed by home address
    REVERSE = 1  #: FA / co-located node -> HA; keyed by home address
    DECAP = 2  #: decapsulated; keyed by the tunnel peer's address


class Event(IntEnum):
    """``enum mip4_event``: one per-CPU counter per outcome."""

    ENCAP = 0
    DECAP = 1
    NOT_OURS = 2
    SLOW_NO_ROUTE = 3
    SLOW_TOO_BIG = 4  #: too big once encapsulated, or for the next hop of a decapsulated one
    SLOW_TTL = 5
    SLOW_MINIMAL = 6
    MINIMAL_FALLBACK = 7
    DECAP_VISITOR = 8
    DECAP_UNKNOWN_PEER = 9
    DECAP_BAD = 10
    DECAP_KEY = 11
    ERROR = 12
    SLOW_FWD_DISABLED = 13
    SLOW_LOOP = 14
    SLOW_ADJUST = 15
    DECAP_NOT_BOUND = 16  #: RFC 3024 §4.3: inner source not bound to the care-of address
    LOCAL = 17  #: reverse-tunnelled source, but to the tunnel's entry or multi/broadcast
    PROXY_ARP = 18  #: an ARP request for an address in ``mip4_proxy`` answered
    DECAP_FORWARD = 19  #: decapsulated and forwarded by the program (``Peer.forward``)
    RELAY_REQUEST = 20  #: a visitor's request relayed to its home agent (issue 13)
    RELAY_REPLY = 21  #: a home agent's reply relayed to the visitor
    RELAY_RING_FULL = 22  #: would have relayed, but ``mip4_relayed`` was full: untouched


_TF_GRE_KEY = 0x01
_TF_MINIMAL_STRICT = 0x02
_PF_GRE_KEY = 0x01
_PF_ANY_KEY = 0x02
_PF_BOUND_SRC = 0x04
_PF_FORWARD = 0x08

# struct mip4_tunnel: local, remote (network order), key, oif (host), mtu, encap, flags, ttl
_TUNNEL = struct.Struct("=4s4sIIHBBB3x")
_PEER_KEY = struct.Struct("=4s4s")
_PEER = struct.Struct("=II")
_ADDR = struct.Struct("=4s")
_VISITOR = struct.Struct("=I6s6s")
_STATS_KEY = struct.Struct("=4sI")
_STATS = struct.Struct("=QQ")
_ACCT = struct.Struct("=QQQQ")
_PROXY_KEY = struct.Struct("=4sI")  # struct mip4_proxy_key: address, interface index
_PROXY = struct.Struct("=6s2x")  # struct mip4_proxy: the interface's hardware address
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


@dataclass(frozen=True)
class Tunnel:
    """One tunnel as the programs see it (``struct mip4_tunnel``).

    ``oif == 0``: the outer route is found with ``bpf_fib_lookup`` (an agent with
    forwarding on). ``oif != 0``: the packet leaves through that device and the kernel
    resolves the next hop (``bpf_redirect_neigh``); ``mtu`` is then that device's MTU."""

    local: IPv4Address  #: outer source
    remote: IPv4Address  #: outer destination (care-of address, or home agent)
    encap: Encap = Encap.IPIP
    key: int | None = None  #: GRE key (RFC 2890); only with GRE
    oif: int = 0
    mtu: int = 0
    ttl: int = 0  #: outer TTL, 0: 64
    minimal_strict: bool = False  #: minimal + GSO/fragment: slow path, not IP in IP

    @property
    def overhead(self) -> int:
        """Bytes the encapsulation adds (minimal: with the original source)."""
        if self.encap is Encap.GRE:
            return 24 if self.key is None else 28
        return 12 if self.encap is Encap.MINIMAL else 20

    def pack(self) -> bytes:
        if self.key is not None and self.encap is not Encap.GRE:
            raise ValueError("a key needs GRE encapsulation")
        flags = (0 if self.key is None else _TF_GRE_KEY) | (
            _TF_MINIMAL_STRICT if self.minimal_strict else 0
        )
        return _TUNNEL.pack(
            self.local.packed,
            self.remote.packed,
            self.key or 0,
            self.oif,
            self.mtu,
            int(self.encap),
            flags,
            self.ttl,
        )

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        local, remote, key, oif, mtu, encap, flags, ttl = _TUNNEL.unpack(data)
        return cls(
            IPv4Address(local),
            IPv4Address(remote),
            Encap(encap),
            key if flags & _TF_GRE_KEY else None,
            oif,
            mtu,
            ttl,
            bool(flags & _TF_MINIMAL_STRICT),
        )


@dataclass(frozen=True)
class Peer:
    """A registered tunnel peer: packets of protocol 4/47/55 from ``remote`` to ``local``
    are decapsulated. With ``key``, GRE packets must carry that key (RFC 2890 §2.1); with
    ``any_key`` they may carry any key or none (a foreign agent, which is not told it).
    With ``bound_source`` (a home agent: ``remote`` is a care-of address) only datagrams
    whose inner source is a home address bound to ``remote`` (``mip4_bindings``) are
    decapsulated (RFC 3024 §4.3); the others go on untouched, to the slow path. With
    ``forward`` (a home agent) a decapsulated datagram for another host is forwarded by
    the program (route lookup, TTL - 1, redirect) rather than by the stack; what the
    program cannot forward as the stack would goes to the stack."""

    local: IPv4Address
    remote: IPv4Address
    key: int | None = None
    any_key: bool = False
    bound_source: bool = False
    forward: bool = False


@dataclass(frozen=True)
class Visitor:
    """Where a foreign agent delivers a visitor's decapsulated datagrams
    (``struct mip4_visitor``): out of ``ifindex`` to ``mac``, from ``own_mac``."""

    ifindex: int
    mac: bytes
    own_mac: bytes

    def pack(self) -> bytes:
        if len(self.mac) != 6 or len(self.own_mac) != 6:
            raise ValueError("hardware addresses are 6 bytes")
        return _VISITOR.pack(self.ifindex, self.mac, self.own_mac)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        ifindex, mac, own = _VISITOR.unpack(data)
        return cls(ifindex, mac, own)


@dataclass(frozen=True)
class Traffic:
    """Packets and inner bytes through one binding in one direction, all CPUs summed."""

    packets: int
    bytes: int


#: A visitor's traffic through the fast path, all CPUs summed, as RADIUS accounting
#: wants it (:data:`mip4.io.radius.Traffic`): (input octets, output octets, input
#: packets, output packets); input = reverse-tunnelled from the visitor, output =
#: decapsulated for it; octets = the inner datagrams' Total Length.
VisitorTraffic = tuple[int, int, int, int]


@dataclass(frozen=True)
class TestRun:
    """The outcome of one ``BPF_PROG_TEST_RUN``: the program's verdict and the frame after
    it (the program's changes included)."""

    __test__ = False  # not a pytest class

    retval: int
    data: bytes
    duration_ns: int


def object_path(name: str = OBJECT_NAME) -> Path:
    """The shipped object ``name`` (package data; the tunnel's by default)."""
    return Path(str(resources.files("mip4") / "data" / name))


def object_record(name: str = RECORD_NAME) -> dict[str, str]:
    """What the shipped object was built from (its record ``name``, the tunnel's by
    default): ``{"source", "sha256", "clang"}``."""
    text = (resources.files("mip4") / "data" / name).read_text()
    record: dict[str, str] = json.loads(text)
    return record


def _kernel_version() -> tuple[int, int]:
    release = os.uname().release
    parts = release.split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def kernel_unfit() -> str | None:
    """Why this kernel cannot run the bpf plane (older than :data:`MIN_KERNEL`), else
    ``None``: the half of :func:`bpf_plane_unavailable` that loads nothing."""
    kv = _kernel_version()
    if kv < MIN_KERNEL:
        return f"kernel {kv[0]}.{kv[1]} < {MIN_KERNEL[0]}.{MIN_KERNEL[1]}"
    return None


def bpf_plane_unavailable(obj: Path | None = None) -> str | None:
    """``None`` if the bpf plane can run here -- kernel ≥ 5.10 and the object loads (every
    program through the verifier) -- else the reason."""
    unfit = kernel_unfit()
    if unfit is not None:
        return unfit
    try:
        with BpfPlane(obj):
            pass
    except (lb.BpfUnavailable, OSError) as e:
        return f"test load failed: {e}"
    return None


def supports_bpf_plane(obj: Path | None = None) -> bool:
    """Whether the daemons can choose the bpf backend (see :func:`bpf_plane_unavailable`)."""
    return bpf_plane_unavailable(obj) is None


class _Map:
    def __init__(self, ptr: int, name: str) -> None:
        bpf = lb.lib()
        self.ptr = ptr
        self.name = name
        self.fd = lb.check(bpf.bpf_map__fd(ptr), f"bpf_map__fd({name})")
        self.key_size = int(bpf.bpf_map__key_size(ptr))
        self.value_size = int(bpf.bpf_map__value_size(ptr))
        per_cpu = self.name in (MapName.STATS, MapName.EVENTS, MapName.ACCT)
        self.ncpus = lb.check(bpf.libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")
        # per-CPU values come as one 8-byte-aligned slot per possible CPU
        self.slot = (self.value_size + 7) & ~7
        self.buf_size = self.slot * self.ncpus if per_cpu else self.value_size

    def update(self, key: bytes, value: bytes, flags: int = lb.BPF_ANY) -> None:
        rc = lb.lib().bpf_map_update_elem(self.fd, key, value, flags)
        lb.check(rc, f"bpf_map_update_elem({self.name})")

    def lookup(self, key: bytes) -> bytes | None:
        buf = ctypes.create_string_buffer(self.buf_size)
        rc = lb.lib().bpf_map_lookup_elem(self.fd, key, buf)
        if rc == -2:  # ENOENT
            return None
        lb.check(rc, f"bpf_map_lookup_elem({self.name})")
        return buf.raw

    def delete(self, key: bytes) -> bool:
        rc = lb.lib().bpf_map_delete_elem(self.fd, key)
        if rc == -2:
            return False
        lb.check(rc, f"bpf_map_delete_elem({self.name})")
        return True

    def __iter__(self) -> Iterator[bytes]:
        bpf = lb.lib()
        nxt = ctypes.create_string_buffer(self.key_size)
        cur: bytes | None = None
        while True:
            rc = bpf.bpf_map_get_next_key(self.fd, cur, nxt)
            if rc == -2:
                return
            lb.check(rc, f"bpf_map_get_next_key({self.name})")
            cur = nxt.raw
            yield cur

    def per_cpu(self, raw: bytes) -> list[bytes]:
        return [raw[i * self.slot : i * self.slot + self.value_size] for i in range(self.ncpus)]


#: BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_HASH (linux/bpf.h)
_HASH_TYPES = (1, 5)
#: linux/bpf.h: the map's entries are allocated as they are made, not all at load
_BPF_F_NO_PREALLOC = 1


class BpfPlane:
    """One loaded ``mip4_tunnel.bpf.o``. Use as a context manager, or call :meth:`close`.

    ``obj``: the object file (default: the shipped one). ``pin_dir``: a bpffs directory to
    pin the maps in (and reuse them from); ``None``: maps live as long as this object or
    the tc filters holding its programs."""

    def __init__(
        self, obj: Path | None = None, *, pin_dir: Path | None = None, capacity: int | None = None
    ) -> None:
        self.path = obj or object_path()
        self.pin_dir = pin_dir
        if capacity is not None and not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
            raise ValueError(f"capacity {capacity} not in {MIN_CAPACITY}..{MAX_CAPACITY}")
        #: entries of each per-address map (``None``: the object's, :data:`CAPACITY`)
        self.capacity = capacity
        self._relay_records: RelayRecords | None = None
        try:
            self._load()
        except lb.BpfError:
            stale = [] if pin_dir is None else [pin_dir / m for m in MapName]
            stale = [p for p in stale if p.exists()]
            if not stale:
                raise
            # Pinned maps another object made (an upgrade that changed a map's layout):
            # libbpf refuses to reuse them. Nothing in them outlives a restart anyway
            # (the daemon reconciles against an empty binding table): start afresh. The
            # programs still attached keep the old maps until they are replaced.
            log.warning("bpf.stale_pins dir=%s: unpinned, loading with new maps", pin_dir)
            for p in stale:
                p.unlink()
            self._load()

    def _load(self) -> None:
        bpf = lb.lib()
        pin_dir = self.pin_dir
        lb.LOG_TAIL.clear()
        self._obj = lb.check_ptr(
            bpf.bpf_object__open_file(str(self.path).encode(), None),
            f"bpf_object__open_file({self.path})",
        )
        try:
            # libbpf 1.1 does not know every tc section name: say it (STYLE / reference)
            for name in Program:
                prog = self._program_ptr(name)
                lb.check(
                    bpf.bpf_program__set_type(prog, lb.BPF_PROG_TYPE_SCHED_CLS),
                    f"bpf_program__set_type({name})",
                )
            if self.capacity is not None:
                self._size_maps(self.capacity)
            if pin_dir is not None:
                for m in MapName:
                    ptr = lb.check_ptr(
                        bpf.bpf_object__find_map_by_name(self._obj, m.encode()), f"map {m}"
                    )
                    lb.check(
                        bpf.bpf_map__set_pin_path(ptr, str(pin_dir / m).encode()),
                        f"bpf_map__set_pin_path({m})",
                    )
            lb.check(bpf.bpf_object__load(self._obj), f"bpf_object__load({self.path})")
            self._maps = {
                m: _Map(lb.check_ptr(bpf.bpf_object__find_map_by_name(self._obj, m.encode()), m), m)
                for m in MapName
            }
        except BaseException:
            bpf.bpf_object__close(self._obj)
            self._obj = 0
            raise

    def _size_maps(self, capacity: int) -> None:
        """Before the load: every hash map the object sizes at a multiple of
        :data:`CAPACITY` (one entry per address, or one per address and direction) holds
        that multiple of ``capacity`` instead. A pinned map of another size is not reused
        (libbpf refuses it): :meth:`__init__` then loads fresh maps."""
        bpf = lb.lib()
        for m in MapName:
            ptr = lb.check_ptr(bpf.bpf_object__find_map_by_name(self._obj, m.encode()), m)
            size = int(bpf.bpf_map__max_entries(ptr))
            if bpf.bpf_map__type(ptr) in _HASH_TYPES and size % CAPACITY == 0:
                lb.check(
                    bpf.bpf_map__set_max_entries(ptr, size // CAPACITY * capacity),
                    f"bpf_map__set_max_entries({m})",
                )
                flags = int(bpf.bpf_map__map_flags(ptr)) | _BPF_F_NO_PREALLOC
                lb.check(bpf.bpf_map__set_map_flags(ptr, flags), f"bpf_map__set_map_flags({m})")

    def max_entries(self, name: MapName) -> int:
        """How many entries the map ``name`` holds at most (past that an update fails
        with ``E2BIG``)."""
        return int(lb.lib().bpf_map__max_entries(self._maps[name].ptr))

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the object: its programs and maps go away unless tc filters or pins hold
        them; the :meth:`relay_records` consumer with it."""
        if self._relay_records is not None:
            self._relay_records.close()
            self._relay_records = None
        if self._obj:
            lb.lib().bpf_object__close(self._obj)
            self._obj = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def unpin(self) -> None:
        """Remove the maps' pins (a clean stop)."""
        bpf = lb.lib()
        for m in self._maps.values():
            bpf.bpf_map__unpin(m.ptr, None)

    # -- programs --------------------------------------------------------------------------

    def _program_ptr(self, name: str) -> int:
        return lb.check_ptr(
            lb.lib().bpf_object__find_program_by_name(self._obj, name.encode()),
            f"program {name}",
        )

    def program_fd(self, name: Program) -> int:
        return lb.check(lb.lib().bpf_program__fd(self._program_ptr(name)), f"fd of {name}")

    @staticmethod
    def _hook(ifindex: int, ingress: bool) -> lb.BpfTcHook:
        point = lb.BPF_TC_INGRESS if ingress else lb.BPF_TC_EGRESS
        return lb.BpfTcHook(ctypes.sizeof(lb.BpfTcHook), ifindex, point, 0)

    def attach(
        self,
        ifindex: int,
        program: Program,
        *,
        ingress: bool = True,
        priority: int = 1,
        handle: int = 1,
    ) -> int:
        """Attach ``program`` to the clsact hook of ``ifindex`` (created if missing) in
        direct-action mode, replacing the filter at (``priority``, ``handle``) if one is
        there -- atomically, so a restarted daemon swaps programs without a gap. Returns
        the attached program's id."""
        bpf = lb.lib()
        hook = self._hook(ifindex, ingress)
        rc = bpf.bpf_tc_hook_create(ctypes.byref(hook))
        if rc != -17:  # EEXIST: the clsact qdisc is there already
            lb.check(rc, f"bpf_tc_hook_create(ifindex {ifindex})")
        opts = lb.BpfTcOpts(
            ctypes.sizeof(lb.BpfTcOpts),
            self.program_fd(program),
            lb.BPF_TC_F_REPLACE,
            0,
            handle,
            priority,
        )
        lb.check(
            bpf.bpf_tc_attach(ctypes.byref(hook), ctypes.byref(opts)),
            f"bpf_tc_attach({program}, ifindex {ifindex})",
        )
        return int(opts.prog_id)

    @staticmethod
    def attached(ifindex: int, *, ingress: bool = True, priority: int = 1, handle: int = 1) -> int:
        """The id of the program at (``priority``, ``handle``) of the hook, 0 if none."""
        bpf = lb.lib()
        hook = BpfPlane._hook(ifindex, ingress)
        opts = lb.BpfTcOpts(ctypes.sizeof(lb.BpfTcOpts), 0, 0, 0, handle, priority)
        rc = bpf.bpf_tc_query(ctypes.byref(hook), ctypes.byref(opts))
        if rc in (-2, -22):  # ENOENT / EINVAL: no qdisc or no such filter
            return 0
        lb.check(rc, f"bpf_tc_query(ifindex {ifindex})")
        return int(opts.prog_id)

    @staticmethod
    def detach(
        ifindex: int,
        *,
        ingress: bool = True,
        priority: int = 1,
        handle: int = 1,
        destroy_hook: bool = False,
    ) -> bool:
        """Remove our filter (False if it was not there); with ``destroy_hook`` also the
        clsact qdisc (both directions: the kernel has one clsact per device)."""
        bpf = lb.lib()
        hook = BpfPlane._hook(ifindex, ingress)
        opts = lb.BpfTcOpts(ctypes.sizeof(lb.BpfTcOpts), 0, 0, 0, handle, priority)
        rc = bpf.bpf_tc_detach(ctypes.byref(hook), ctypes.byref(opts))
        found = bool(rc == 0)
        if rc not in (0, -2, -22):
            lb.check(rc, f"bpf_tc_detach(ifindex {ifindex})")
        if destroy_hook:
            both = lb.BpfTcHook(
                ctypes.sizeof(lb.BpfTcHook), ifindex, lb.BPF_TC_INGRESS | lb.BPF_TC_EGRESS, 0
            )
            rc = bpf.bpf_tc_hook_destroy(ctypes.byref(both))
            if rc not in (0, -2, -22):
                lb.check(rc, f"bpf_tc_hook_destroy(ifindex {ifindex})")
        return found

    def test_run(
        self,
        program: Program,
        frame: bytes,
        *,
        gso_size: int = 0,
        gso_segs: int = 0,
        ifindex: int = 0,
        ingress_ifindex: int = 0,
        mark: int = 0,
        repeat: int = 1,
    ) -> TestRun:
        """Run ``program`` once on an Ethernet ``frame`` (``BPF_PROG_TEST_RUN``) in the
        calling thread's network namespace. ``gso_size``/``gso_segs`` make the kernel treat
        the frame as a GSO packet; ``ifindex`` picks its device (default the loopback);
        ``mark`` is its ``skb->mark``."""
        ctx = lb.SkBuff()
        ctx.gso_size = gso_size
        ctx.gso_segs = gso_segs
        ctx.ifindex = ifindex
        ctx.ingress_ifindex = ingress_ifindex
        ctx.mark = mark
        data_in = ctypes.create_string_buffer(frame, len(frame))
        out = ctypes.create_string_buffer(len(frame) + 256)
        opts = lb.BpfTestRunOpts()
        opts.sz = ctypes.sizeof(lb.BpfTestRunOpts)
        opts.data_in = ctypes.cast(data_in, ctypes.c_void_p)
        opts.data_size_in = len(frame)
        opts.data_out = ctypes.cast(out, ctypes.c_void_p)
        opts.data_size_out = len(out)
        opts.ctx_in = ctypes.cast(ctypes.byref(ctx), ctypes.c_void_p)
        opts.ctx_size_in = ctypes.sizeof(ctx)
        opts.repeat = repeat
        rc = lb.lib().bpf_prog_test_run_opts(self.program_fd(program), ctypes.byref(opts))
        lb.check(rc, f"bpf_prog_test_run_opts({program})")
        return TestRun(int(opts.retval), out.raw[: opts.data_size_out], int(opts.duration))

    # -- maps ------------------------------------------------------------------------------

    def set_binding(self, home: IPv4Address, tunnel: Tunnel) -> None:
        """Tunnel packets for ``home`` (at the HA): a new binding or a changed one."""
        self._maps[MapName.BINDINGS].update(home.packed, tunnel.pack())

    def del_binding(self, home: IPv4Address) -> bool:
        return self._maps[MapName.BINDINGS].delete(home.packed)

    def bindings(self) -> dict[IPv4Address, Tunnel]:
        return self._dump(MapName.BINDINGS)

    def set_reverse(self, home: IPv4Address, tunnel: Tunnel) -> None:
        """Reverse-tunnel packets from ``home`` (FA visitor interface, co-located node)."""
        self._maps[MapName.REVERSE].update(home.packed, tunnel.pack())

    def del_reverse(self, home: IPv4Address) -> bool:
        return self._maps[MapName.REVERSE].delete(home.packed)

    def reverse(self) -> dict[IPv4Address, Tunnel]:
        return self._dump(MapName.REVERSE)

    def clear(self, name: MapName) -> int:
        """Delete every entry of the map ``name``; returns how many went (a ring buffer
        has no entries: 0)."""
        if name is MapName.RELAYED:
            return 0
        m = self._maps[name]
        return sum(m.delete(key) for key in list(m))

    def _dump(self, name: MapName) -> dict[IPv4Address, Tunnel]:
        m = self._maps[name]
        out = {}
        for k in m:
            v = m.lookup(k)
            if v is not None:
                out[IPv4Address(k)] = Tunnel.unpack(v)
        return out

    def set_peer(self, peer: Peer) -> None:
        """Accept tunnelled packets from ``peer.remote`` to ``peer.local``."""
        flags = (
            (0 if peer.key is None else _PF_GRE_KEY)
            | (_PF_ANY_KEY if peer.any_key else 0)
            | (_PF_BOUND_SRC if peer.bound_source else 0)
            | (_PF_FORWARD if peer.forward else 0)
        )
        self._maps[MapName.PEERS].update(
            _PEER_KEY.pack(peer.local.packed, peer.remote.packed),
            _PEER.pack(peer.key or 0, flags),
        )

    def del_peer(self, local: IPv4Address, remote: IPv4Address) -> bool:
        return self._maps[MapName.PEERS].delete(_PEER_KEY.pack(local.packed, remote.packed))

    def peers(self) -> list[Peer]:
        m = self._maps[MapName.PEERS]
        out = []
        for k in m:
            v = m.lookup(k)
            if v is None:
                continue
            local, remote = _PEER_KEY.unpack(k)
            key, flags = _PEER.unpack(v)
            out.append(
                Peer(
                    IPv4Address(local),
                    IPv4Address(remote),
                    key if flags & _PF_GRE_KEY else None,
                    bool(flags & _PF_ANY_KEY),
                    bool(flags & _PF_BOUND_SRC),
                    bool(flags & _PF_FORWARD),
                )
            )
        return out

    def set_visitor(self, home: IPv4Address, visitor: Visitor) -> None:
        """Deliver decapsulated datagrams for ``home`` to ``visitor`` (foreign agent)."""
        self._maps[MapName.VISITORS].update(home.packed, visitor.pack())

    def del_visitor(self, home: IPv4Address) -> bool:
        return self._maps[MapName.VISITORS].delete(home.packed)

    def visitors(self) -> dict[IPv4Address, Visitor]:
        m = self._maps[MapName.VISITORS]
        out = {}
        for k in m:
            v = m.lookup(k)
            if v is not None:
                out[IPv4Address(k)] = Visitor.unpack(v)
        return out

    # -- registration relay (foreign agent, issue 13) ------------------------------------------

    def set_relay(self, home: IPv4Address, relay: Relay) -> None:
        """Relay the usual renewal of the visitor ``home`` in the kernel (replacing what was
        there; nothing pending after)."""
        self._maps[MapName.RELAY].update(home.packed, relay.pack())

    def del_relay(self, home: IPv4Address) -> bool:
        return self._maps[MapName.RELAY].delete(home.packed)

    def relays(self) -> dict[IPv4Address, Relay]:
        m = self._maps[MapName.RELAY]
        out = {}
        for k in m:
            v = m.lookup(k)
            if v is not None:
                out[IPv4Address(k)] = Relay.unpack(v)
        return out

    def relay_records(self) -> RelayRecords:
        """The consumer of ``mip4_relayed`` (made on the first call; :meth:`close` frees
        it)."""
        if self._relay_records is None:
            self._relay_records = RelayRecords(self._maps[MapName.RELAYED].fd)
        return self._relay_records

    # -- proxy ARP (RFC 5944 §4.6) -----------------------------------------------------------

    def set_proxy(self, address: IPv4Address, ifindex: int, mac: bytes) -> bool:
        """Answer ARP requests for ``address`` arriving on ``ifindex`` with ``mac`` (that
        interface's hardware address). False if the map is full (nothing written)."""
        if len(mac) != 6:
            raise ValueError("hardware addresses are 6 bytes")
        m = self._maps[MapName.PROXY]
        rc = lb.lib().bpf_map_update_elem(
            m.fd, _PROXY_KEY.pack(address.packed, ifindex), _PROXY.pack(mac), lb.BPF_ANY
        )
        if rc == -7:  # E2BIG: full
            return False
        lb.check(rc, f"bpf_map_update_elem({m.name})")
        return True

    def del_proxy(self, address: IPv4Address, ifindex: int) -> bool:
        return self._maps[MapName.PROXY].delete(_PROXY_KEY.pack(address.packed, ifindex))

    def proxies(self) -> dict[tuple[IPv4Address, int], bytes]:
        """(address, interface index) -> the hardware address answered with."""
        m = self._maps[MapName.PROXY]
        out = {}
        for k in m:
            v = m.lookup(k)
            if v is not None:
                addr, ifindex = _PROXY_KEY.unpack(k)
                out[IPv4Address(addr), ifindex] = _PROXY.unpack(v)[0]
        return out

    def counters(self, limit: int | None = None) -> dict[tuple[IPv4Address, Direction], Traffic]:
        """Per binding and direction, summed over CPUs; with ``limit``, the first that many
        entries of the map only (a status at a million bindings, issue 13)."""
        m = self._maps[MapName.STATS]
        out = {}
        for k in m if limit is None else islice(m, limit):
            raw = m.lookup(k)
            if raw is None:
                continue
            addr, d = _STATS_KEY.unpack(k)
            pk = by = 0
            for v in m.per_cpu(raw):
                p, b = _STATS.unpack(v)
                pk += p
                by += b
            out[IPv4Address(addr), Direction(d)] = Traffic(pk, by)
        return out

    def forget_counters(self, addr: IPv4Address) -> None:
        """Drop the counters of ``addr`` (a binding gone)."""
        m = self._maps[MapName.STATS]
        for d in Direction:
            m.delete(_STATS_KEY.pack(addr.packed, d))

    # -- accounting (RFC 2866) ---------------------------------------------------------------

    def account_visitor(self, home: IPv4Address) -> bool:
        """Count the traffic of the visitor ``home`` from now on (foreign agent). An entry
        already there keeps its counts (a re-registration, a handover back): the counters
        are cumulative, as accounting takes differences from a session's Start. False if
        the map is full (the visitor's fast-path traffic is then not counted)."""
        m = self._maps[MapName.ACCT]
        zero = bytes(m.buf_size)
        rc = lb.lib().bpf_map_update_elem(m.fd, home.packed, zero, lb.BPF_NOEXIST)
        if rc == -17:  # EEXIST: counting already
            return True
        if rc == -7:  # E2BIG: full
            return False
        lb.check(rc, f"bpf_map_update_elem({m.name})")
        return True

    def visitor_traffic(self, home: IPv4Address) -> VisitorTraffic | None:
        """(input octets, output octets, input packets, output packets) of the visitor
        ``home`` through the fast path, summed over the CPUs; None if it is not counted
        (:meth:`account_visitor` never called, or :meth:`forget_visitor_traffic`)."""
        m = self._maps[MapName.ACCT]
        raw = m.lookup(home.packed)
        if raw is None:
            return None
        in_p = in_o = out_p = out_o = 0
        for v in m.per_cpu(raw):
            ip, io, op, oo = _ACCT.unpack(v)
            in_p, in_o, out_p, out_o = in_p + ip, in_o + io, out_p + op, out_o + oo
        return (in_o, out_o, in_p, out_p)

    def accounted(self) -> list[IPv4Address]:
        """The home addresses whose traffic is counted."""
        return [IPv4Address(k) for k in self._maps[MapName.ACCT]]

    def forget_visitor_traffic(self, home: IPv4Address) -> bool:
        return self._maps[MapName.ACCT].delete(home.packed)

    def events(self) -> dict[Event, int]:
        """Every outcome counter, summed over CPUs."""
        m = self._maps[MapName.EVENTS]
        out = {}
        for e in Event:
            raw = m.lookup(_U32.pack(e))
            out[e] = sum(_U64.unpack(v)[0] for v in m.per_cpu(raw)) if raw else 0
        return out


__all__ = [
    "MIN_KERNEL",
    "TC_ACT_OK",
    "TC_ACT_REDIRECT",
    "TC_ACT_SHOT",
    "BpfPlane",
    "Direction",
    "Encap",
    "Event",
    "MapName",
    "Peer",
    "Program",
    "TestRun",
    "Traffic",
    "Tunnel",
    "Visitor",
    "VisitorTraffic",
    "bpf_plane_unavailable",
    "kernel_unfit",
    "object_path",
    "object_record",
    "supports_bpf_plane",
]
