"""The daemons' configuration files (STYLE.md practice 8).

Theory of operation
-------------------
Each daemon reads one TOML file. Its tables are typed, documented dataclasses and the file
is loaded with :func:`mip4.core.registration.config_from_mapping`, so every daemon shares
one set of rules: unknown keys are errors (a typo is never silently ignored), values are
checked against the field annotations, and every message names the file and the key
(``ha.toml: home_agent.max_lifetime: expected an integer, got 'x'``).

==============================  ===========================================================
table                           what
==============================  ===========================================================
``[home_agent]``                :class:`~mip4.core.home_agent.HomeAgentConfig` (``mip4 ha``)
``[foreign_agent]``             :class:`~mip4.core.foreign_agent.ForeignAgentConfig` with
                                ``[[foreign_agent.links]]``
                                (:class:`~mip4.core.foreign_agent.VisitedLink`) (``mip4 fa``)
``[mobile_node]``               :class:`~mip4.core.mobile_node.MobileNodeConfig`
                                (``mip4 mn``)
``[io]``                        :class:`IOSection`: interfaces, TUN device, tunnel source...
``[daemon]``                    :class:`DaemonSection`: control socket, logging
``[[security_associations]]``   :class:`SecurityAssociationSection`, one per (peer, SPI)
``[subscribers]``               :class:`SubscribersSection`: associations for many nodes
                                from a CSV table (:mod:`mip4.security.sa_table`)
``[snmp]``                      :class:`SnmpSection`: the AgentX subagent (RFC 4295 MIB)
``[metrics]``                   :class:`MetricsSection`: the Prometheus endpoint
``[aaa]``                       :class:`~mip4.daemon.aaa.AaaSection`: RADIUS servers (AAA)
``[store]``                     :class:`StoreSection`: bindings/visitors kept across restarts
                                (``mip4 ha``, ``mip4 fa``)
==============================  ===========================================================

The engine tables are the core dataclasses themselves: a field added there is a key here,
and ``docs/configuration.md`` is checked against them by ``tests/daemon/test_docs.py``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address
from pathlib import Path

from mip4.core.fa_handoff import HandoffSettings
from mip4.core.foreign_agent import ForeignAgentConfig
from mip4.core.home_agent import HomeAgentConfig
from mip4.core.mn_handover import HandoverMode, HandoverSettings
from mip4.core.mobile_node import MobileNodeConfig
from mip4.core.registration import ConfigError, config_from_mapping
from mip4.io.bpf import MAX_CAPACITY, MIN_CAPACITY
from mip4.security.sa import (
    DEFAULT_REPLAY_TOLERANCE,
    Algorithm,
    ReplayMethod,
    SecurityAssociation,
    SecurityAssociations,
    check_spi,
)
from mip4.security.sa_table import Associations, add_rows  # perf

# -- AAA (issue 10) --
from .aaa import AaaSettings, load_aaa_section, prepare_mobile_node, resolve_aaa

# -- end AAA --
from .validate import (
    MAX_CONFIG_BYTES,
    MAX_KEY_FILE_BYTES,
    MAX_SA_TABLE_BYTES,  # perf
    FileRefused,
    check_table,  # perf
    check_values,
    read_regular_file,
    utf8_text,
)

__all__ = [
    "ROLES",
    "ConfigError",
    "DaemonConfig",
    "DaemonSection",
    "ForeignAgentFile",
    "HomeAgentFile",
    "IOSection",
    "LogFormat",
    "LogLevel",
    "MetricsSection",
    "MobileNodeFile",
    "SecurityAssociationSection",
    "SnmpSection",
    "StoreSection",
    "load_config",
    "parse_config",
]

#: The daemon roles, as on the command line (``mip4 ha``, ``mip4 fa``, ``mip4 mn``).
ROLES = ("ha", "fa", "mn")

#: Where control sockets go unless ``daemon.control_socket`` says otherwise.
RUN_DIR = Path("/run/mip4")


class LogFormat(Enum):
    """How log lines are written (to standard error)."""

    TEXT = "text"  #: ``2026-01-02T03:04:05.678Z ha[name] ha.registration code=0 ...``
    JSON = "json"  #: one JSON object per line (``ts``, ``role``, ``event``, fields)


class LogLevel(Enum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class DaemonSection:
    """``[daemon]``: process-level settings."""

    #: Instance name, used in the default control socket path and in log lines; default:
    #: the process id.
    name: str | None = None
    #: Path of the AF_UNIX control socket (``mip4 status``); default
    #: ``/run/mip4/<role>-<name>.sock``. A stale socket of a crashed daemon is replaced; one
    #: a live daemon answers on is an error.
    control_socket: str | None = None
    #: ``"text"`` (``key=value``) or ``"json"`` (JSON lines).
    log_format: LogFormat = LogFormat.TEXT
    #: ``"debug"``, ``"info"``, ``"warning"`` or ``"error"``.
    log_level: LogLevel = LogLevel.INFO
    #: Run the loop on uvloop when it is installed (it is not a dependency).
    uvloop: bool = True
    #: Where log records go: ``"stderr"``, ``"syslog"`` (RFC 3164 datagrams to
    #: ``/dev/log``, facility daemon) or ``"journald"`` (the journal's native protocol,
    #: each field also as a ``MIP4_<KEY>`` journal field).
    log_target: str = "stderr"
    #: The syslog or journal socket; default ``/dev/log`` (syslog),
    #: ``/run/systemd/journal/socket`` (journald).
    log_socket: str | None = None

    def __post_init__(self) -> None:
        if self.name is not None and (not self.name or "/" in self.name):
            raise ValueError(f"name: {self.name!r} must be non-empty and contain no '/'")
        if self.control_socket is not None and not self.control_socket:
            raise ValueError("control_socket: must not be empty")
        # -- the store helper's block (issue 15: log targets) --
        if self.log_target not in ("stderr", "syslog", "journald"):
            raise ValueError(
                f"log_target: {self.log_target!r} is not 'stderr', 'syslog' or 'journald'"
            )
        if self.log_socket is not None and not self.log_socket:
            raise ValueError("log_socket: must not be empty")


@dataclass(frozen=True)
class IOSection:
    """``[io]``: what the daemon opens and configures in its network namespace (the one
    it runs in, e.g. under ``ip netns exec``)."""

    #: Control interfaces: where router discovery is captured and, for the mobile node,
    #: whose links are watched. Default: ``home_agent.interface`` (ha), the interfaces of
    #: ``foreign_agent.links`` (fa); required for the mobile node.
    interfaces: tuple[str, ...] = ()
    #: Name of the TUN device of the user-space tunnel (at most 15 bytes); default
    #: ``mip4-<role>``. A leftover device of that name is removed at start.
    tun_name: str | None = None
    #: MTU of the TUN device (leaves room for the outer header on a 1500-byte link).
    tun_mtu: int = 1472
    #: Path MTU towards tunnel peers, if known (``None``: not enforced).
    tunnel_mtu: int | None = None
    #: Outer source address of tunnels this node originates; default
    #: ``home_agent.address`` (ha). Foreign agents and co-located nodes take it from the
    #: binding.
    tunnel_source: IPv4Address | None = None
    #: This node's own addresses, never used as tunnel destinations (loop protection).
    own_addresses: tuple[IPv4Address, ...] = ()
    #: ``net.ipv4.ip_forward`` on while running (restored at exit); default: on for the
    #: agents, off for the mobile node.
    forwarding: bool | None = None
    #: Learn senders' hardware addresses (an agent replies without ARP; the home agent
    #: re-announces a node that comes home); default: on for the agents.
    link_sources: bool | None = None
    #: Mobile node: the default gateway on the home network, restored when it comes home.
    home_gateway: IPv4Address | None = None
    #: UDP port of registrations (RFC 5944 §3.1: 434).
    port: int = 434
    #: The forwarding plane (home agent, foreign agent, co-located mobile node):
    #: ``"auto"`` (bpf where the kernel loads it -- Linux >= 5.10 and the privileges to
    #: load programs -- else user space, with the reason in the log; the object is loaded
    #: once, by opening the fast path, whose failure is the fallback), ``"bpf"`` (a
    #: tc-BPF fast path in front of the user-space plane, which stays the slow path; the
    #: start fails where the kernel cannot load it) or ``"userspace"`` (TUN
    #: device, raw sockets). ``mip4 status`` names the plane that runs.
    dataplane: str = "auto"
    #: Home agent (issue 13): keep a flood of forged requests from starving valid
    #: registrations. Two sockets on ``port``, trusted and general, with an
    #: ``SK_REUSEPORT`` BPF program between them (``bpf/mip4_steer.bpf.c``): datagrams from
    #: a source the home agent has sent an accepting reply to (at most 65,536 sources,
    #: least recently used forgotten first) go to the trusted socket, which is read first;
    #: the rest to the general one, read at most 8 per pass of the loop. Limits: a
    #: source's first registration competes with a flood on the general socket, and a
    #: flood spoofing a trusted source's address is not kept apart, nor are broadcast and
    #: multicast requests (the kernel copies them to both sockets: they are read once,
    #: from the trusted one). Where the program cannot load, one socket and one log line
    #: saying why. ``mip4 status`` says whether steering is on, the trusted sources and
    #: what each socket read and dropped. The foreign agent and the mobile node ignore it.
    flood_steering: bool = True
    #: With the bpf plane (issue 12, 13): entries of each of the fast path's per-address
    #: maps -- bindings, reverse tunnels, tunnel peers, visitors, accounting (and three
    #: counters per address) -- 1,024..16,777,216. Unset: 65,536, preallocated at start
    #: (about 54 MiB of kernel memory). Set: that many, allocated as they are made (about
    #: 90 bytes an entry, plus 16 bytes per entry of capacity for the maps' buckets:
    #: 144 MiB at 1,048,576). What a full map refuses takes the slow path, the user-space
    #: plane, and is counted (``mip4 status``: fast path maps full). A restart with
    #: another capacity starts with new maps (the pinned ones are not reused).
    fast_path_capacity: int | None = None
    #: Home agent with the bpf plane: forward what it decapsulates from reverse tunnels
    #: in the program (a route lookup, TTL - 1, a redirect), as the kernel would forward
    #: it but without its netfilter forward and postrouting hooks or XFRM forward
    #: policy. ``false``: hand it to the kernel's forwarding (slower: the up direction
    #: then pays the programs and the kernel's forwarding) -- for a home agent whose
    #: firewall, NAT of home addresses or IPsec policy must see that traffic. The
    #: foreign agent and the mobile node ignore it.
    fast_path_forwarding: bool = True
    #: Foreign agent with the bpf plane (issue 13): the program relays a visitor's usual
    #: renewal -- a request that repeats the registered one, with only MN-HA, and the home
    #: agent's acceptance of it -- instead of the daemon (two datagrams each way in
    #: Python, the most of a relaying agent's CPU), and gives each one back to the agent,
    #: which keeps its visitor list, pending requests, counters and logs as if it had
    #: relayed them. Never for a visitor with MN-FA or a home agent with FA-HA (an HMAC
    #: per datagram), nor with AAA, accounting, challenges, revocation or handovers
    #: configured. ``false``: the daemon relays every datagram. The home agent and the
    #: mobile node ignore it.
    fast_path_relay: bool = True

    def __post_init__(self) -> None:
        if self.tun_name is not None and not 0 < len(self.tun_name.encode()) <= 15:
            raise ValueError(f"tun_name: {self.tun_name!r} must be 1..15 bytes")
        if not 576 <= self.tun_mtu <= 65535:
            raise ValueError(f"tun_mtu: {self.tun_mtu} not in 576..65535")
        if self.tunnel_mtu is not None and not 576 <= self.tunnel_mtu <= 65535:
            raise ValueError(f"tunnel_mtu: {self.tunnel_mtu} not in 576..65535")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} not in 1..65535")
        if self.dataplane not in ("auto", "bpf", "userspace"):
            raise ValueError(f"dataplane: {self.dataplane!r} is not auto, bpf or userspace")
        capacity = self.fast_path_capacity
        if capacity is not None and not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
            raise ValueError(
                f"fast_path_capacity: {capacity} not in {MIN_CAPACITY}..{MAX_CAPACITY}"
            )
        for name in self.interfaces:
            if not 0 < len(name.encode()) <= 15:
                raise ValueError(f"interfaces: {name!r} is not an interface name")


@dataclass(frozen=True)
class SecurityAssociationSection:
    """``[[security_associations]]``: one mobility security association (RFC 5944
    §1.6, §3.5.1). The home agent keys them by the mobile node's home address (MN-HA) or
    a foreign agent's address (FA-HA); the foreign agent by a home agent's address or a
    visitor's home address (MN-FA); the mobile node uses the one whose peer is its home
    agent (or its only one)."""

    #: The other end: an IPv4 address.
    peer: IPv4Address
    #: Security Parameter Index, 256..4294967295 (0..255 are reserved).
    spi: int
    #: The shared secret in hexadecimal (``"00112233..."``; ``:`` and spaces allowed).
    #: Exactly one of ``key`` and ``key_file``.
    key: str | None = None
    #: A file holding the key in hexadecimal (relative paths: to the configuration file).
    key_file: str | None = None
    #: ``"hmac-md5"`` (RFC 5944 default) or ``"keyed-md5"`` (RFC 2002 prefix+suffix).
    algorithm: Algorithm = Algorithm.HMAC_MD5
    #: Replay protection: ``"timestamps"`` (RFC 5944 §5.7.1) or ``"nonces"`` (§5.7.2).
    replay: ReplayMethod = ReplayMethod.TIMESTAMPS
    #: Timestamp tolerance, seconds either way.
    replay_tolerance: float = DEFAULT_REPLAY_TOLERANCE
    #: Whether the authenticator covers the SPI (RFC 5944: yes; some RFC 2002 peers: no).
    spi_covered: bool = True

    def __post_init__(self) -> None:
        try:
            check_spi(self.spi)
        except ValueError as e:
            raise ValueError(f"spi: {e}") from None
        if (self.key is None) == (self.key_file is None):
            raise ValueError("key, key_file: give exactly one of them")
        if self.key is not None:
            parse_key(self.key, "key")
        if not self.replay_tolerance >= 0:
            raise ValueError(f"replay_tolerance: {self.replay_tolerance} must be >= 0")

    def association(self, base: Path | None = None) -> SecurityAssociation:
        """The :class:`SecurityAssociation` (reads ``key_file``, relative to ``base``)."""
        if self.key is not None:
            key = parse_key(self.key, "key")
        else:
            assert self.key_file is not None
            path = Path(self.key_file)
            if base is not None and not path.is_absolute():
                path = base / path
            try:
                data = read_regular_file(path, MAX_KEY_FILE_BYTES)
            except FileRefused as e:
                raise ValueError(f"key_file: cannot read {path}: {e}") from None
            key = parse_key(utf8_text(data, f"key_file ({path})"), f"key_file ({path})")
        return SecurityAssociation(
            spi=self.spi,
            key=key,
            algorithm=self.algorithm,
            replay=self.replay,
            replay_tolerance=self.replay_tolerance,
            spi_covered=self.spi_covered,
        )


# -- perf (issue 13): the subscriber table -------------------------------------------------


@dataclass(frozen=True)
class SubscribersSection:
    """``[subscribers]``: security associations for many nodes, from a file meant for
    them rather than one TOML table each (:mod:`mip4.security.sa_table`: CSV with a header
    line ``peer,spi,key`` and optional ``algorithm``, ``replay``, ``replay_tolerance``,
    ``spi_covered`` columns). Added to those of ``[[security_associations]]``; a (peer,
    SPI) in both is an error naming the file and line."""

    #: The CSV file (relative paths: to the configuration file); unset: none.
    file: str | None = None

    def __post_init__(self) -> None:
        if self.file is not None and not self.file:
            raise ValueError("file: must not be empty")


def _load_subscribers(
    path: Path,
    store: SecurityAssociations,
    file: HomeAgentFile | ForeignAgentFile | MobileNodeFile,
) -> list[str]:
    """The associations of the subscriber table at ``path``, added to ``store`` as rows
    of its table (:class:`~mip4.security.sa_rows.TableRows`, which the configuration's
    :class:`~mip4.security.sa_table.Associations` then shares: no list of rows beside
    it, issue 13, a million rows); returns :func:`~mip4.daemon.validate.check_table`'s
    warnings. ``ValueError`` naming the file (and the line) otherwise."""
    try:
        data = read_regular_file(path, MAX_SA_TABLE_BYTES)
    except FileRefused as e:
        raise ValueError(f"subscribers.file: cannot read {path}: {e}") from None
    source = str(path)
    text = utf8_text(data, source)
    del data
    return check_table(file, add_rows(text, source, store), source)


# -- end perf


@dataclass(frozen=True)
class SnmpSection:
    """``[snmp]``: the RFC 4295 Mobile IP MIB, served as an AgentX (RFC 2741) subagent of
    a net-snmp ``snmpd`` master (``master agentx`` in ``snmpd.conf``). Off by default."""

    #: The master's AgentX socket (``agentXSocket``, e.g. ``"/var/agentx/master"``);
    #: unset: no subagent. The subagent reconnects when ``snmpd`` restarts.
    agentx_socket: str | None = None
    #: Seconds between AgentX pings to the master.
    ping_interval: float = 15.0

    def __post_init__(self) -> None:
        if self.agentx_socket is not None and not self.agentx_socket:
            raise ValueError("agentx_socket: must not be empty")
        if not self.ping_interval > 0:
            raise ValueError(f"ping_interval: {self.ping_interval} must be > 0")


@dataclass(frozen=True)
class MetricsSection:
    """``[metrics]``: a Prometheus endpoint (``GET /metrics``). Off by default."""

    #: ``"address:port"`` to serve on (e.g. ``"127.0.0.1:9434"``); unset: no endpoint.
    listen: str | None = None

    def __post_init__(self) -> None:
        if self.listen is not None:
            split_listen(self.listen)

    @property
    def address(self) -> tuple[str, int] | None:
        return None if self.listen is None else split_listen(self.listen)


# -- [store] (issue 15: bindings that survive restarts; the store helper's block) --------


@dataclass(frozen=True)
class StoreSection:
    """``[store]``: keep the home agent's mobility bindings (with the replay state and
    assigned addresses) or the foreign agent's visitor list in a SQLite file, reloaded
    when the daemon starts. Off by default."""

    #: The store file (SQLite, WAL mode), created when missing; relative to the
    #: configuration file's directory. Unset: nothing survives a restart. A truncated or
    #: corrupt file, or one from a newer mip4, stops the daemon (exit 2) untouched.
    path: str | None = None
    #: ``"full"``: each commit reaches the disk before the reply leaves (survives a power
    #: loss); ``"normal"``: the kernel writes it (survives a killed daemon, not always a
    #: power loss).
    synchronous: str = "full"

    def __post_init__(self) -> None:
        if self.path is not None and not self.path.strip():
            raise ValueError("path: must not be empty")
        if self.synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous: {self.synchronous!r} is not 'full' or 'normal'")

    def resolved(self, source: str) -> Path | None:
        """The store file, a relative ``path`` taken from the directory of ``source``."""
        if self.path is None:
            return None
        return Path(source).parent / Path(self.path).expanduser()


# -- end of the store helper's block -----------------------------------------------------


def split_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9434"`` -> ``("127.0.0.1", 9434)``; ``ValueError`` naming the key."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"listen: {text!r} is not address:port")
    try:
        IPv4Address(host)
    except ValueError:
        raise ValueError(f"listen: {host!r} is not an IPv4 address") from None
    return host, int(port)


def parse_key(text: str, what: str) -> bytes:
    """Hex text (``:``, spaces and newlines ignored) -> key bytes; ``ValueError`` naming
    ``what`` otherwise."""
    digits = "".join(text.replace(":", "").split())
    if not digits:
        raise ValueError(f"{what}: empty key")
    bad = sorted({c for c in digits if c not in "0123456789abcdefABCDEF"})
    if bad:
        raise ValueError(f"{what}: not hexadecimal (found {''.join(bad)!r})")
    if len(digits) % 2:
        raise ValueError(f"{what}: odd number of hexadecimal digits ({len(digits)})")
    return bytes.fromhex(digits)


# -- handovers (issue 14) -------------------------------------------------------------


@dataclass(frozen=True)
class HandoverSection:
    """``[handover]`` (mobile node): handovers between foreign agents (RFC 4881 L2
    triggers and low-latency handoffs, RFC 4988 fast handovers). Absent: base RFC 5944
    behaviour only, no ``LeaveForeignAgent`` on link down, no anticipation."""

    #: ``"base"`` (anticipation only), ``"low-latency"`` (RFC 4881 pre-registration
    #: through the previous agent) or ``"fast"`` (RFC 4988 Fast Binding Update).
    mode: HandoverMode = HandoverMode.FAST
    #: Lifetime asked for in a Fast Binding Update (the edge tunnel's), seconds.
    lifetime: int = 10
    #: Seconds before an unanswered Fast Binding Update is sent again (then doubling).
    retransmit_initial: float = 0.2
    #: Retransmissions of an unanswered Fast Binding Update before falling back.
    retransmit_limit: int = 3

    def __post_init__(self) -> None:
        self.settings()  # the engine's own checks, as ValueError naming the key

    def settings(self) -> HandoverSettings:
        return HandoverSettings(
            mode=self.mode,
            lifetime=self.lifetime,
            retransmit_initial=self.retransmit_initial,
            retransmit_limit=self.retransmit_limit,
        )


# -- end handovers --


@dataclass(frozen=True)
class HomeAgentFile:
    """The file of ``mip4 ha``."""

    home_agent: HomeAgentConfig
    io: IOSection = field(default_factory=IOSection)
    daemon: DaemonSection = field(default_factory=DaemonSection)
    security_associations: tuple[SecurityAssociationSection, ...] = ()
    subscribers: SubscribersSection = field(default_factory=SubscribersSection)  # perf
    snmp: SnmpSection = field(default_factory=SnmpSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    store: StoreSection = field(default_factory=StoreSection)


@dataclass(frozen=True)
class ForeignAgentFile:
    """The file of ``mip4 fa``."""

    foreign_agent: ForeignAgentConfig
    io: IOSection = field(default_factory=IOSection)
    daemon: DaemonSection = field(default_factory=DaemonSection)
    security_associations: tuple[SecurityAssociationSection, ...] = ()
    subscribers: SubscribersSection = field(default_factory=SubscribersSection)  # perf
    snmp: SnmpSection = field(default_factory=SnmpSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    store: StoreSection = field(default_factory=StoreSection)
    #: handovers (issue 14): edge tunnels and buffering; absent: off
    handoff: HandoffSettings | None = None


@dataclass(frozen=True)
class MobileNodeFile:
    """The file of ``mip4 mn``."""

    mobile_node: MobileNodeConfig
    io: IOSection = field(default_factory=IOSection)
    daemon: DaemonSection = field(default_factory=DaemonSection)
    security_associations: tuple[SecurityAssociationSection, ...] = ()
    snmp: SnmpSection = field(default_factory=SnmpSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    #: handovers (issue 14); absent: base RFC 5944 behaviour
    handover: HandoverSection | None = None


FILES: dict[str, type[HomeAgentFile] | type[ForeignAgentFile] | type[MobileNodeFile]] = {
    "ha": HomeAgentFile,
    "fa": ForeignAgentFile,
    "mn": MobileNodeFile,
}


@dataclass(frozen=True)
class DaemonConfig:
    """A loaded, checked configuration with the role-dependent defaults resolved."""

    role: str
    source: str
    file: HomeAgentFile | ForeignAgentFile | MobileNodeFile
    interfaces: tuple[str, ...]
    tun_name: str
    forwarding: bool
    link_sources: bool
    tunnel_source: IPv4Address | None
    #: (peer, association), in file order (a subscriber table's rows after the TOML ones,
    #: kept as columns: :class:`~mip4.security.sa_table.Associations`)
    associations: Sequence[tuple[IPv4Address, SecurityAssociation]]
    #: lines about values that are legal but odd (``"<file>: <key>: ..."``), for the
    #: daemon to print or log; see :func:`mip4.daemon.validate.check_values`
    warnings: tuple[str, ...] = ()
    #: AAA (issue 10): the RADIUS servers with their secrets read (``None``: none)
    aaa: AaaSettings | None = None
    #: the store parsing built (and checked for duplicates), for :meth:`store`'s first call
    _store: SecurityAssociations | None = field(default=None, compare=False, repr=False)

    @property
    def io(self) -> IOSection:
        return self.file.io

    @property
    def daemon(self) -> DaemonSection:
        return self.file.daemon

    def store(self) -> SecurityAssociations:
        """The associations as a store: the first time, the one parsing built (issue 13: a
        million associations are not indexed twice); a new one after that."""
        made = self._store
        if made is not None:
            object.__setattr__(self, "_store", None)
            return made
        given = self.associations
        if not isinstance(given, Associations):
            return SecurityAssociations(list(given))
        store = SecurityAssociations(list(given.pairs))
        if given.table is not None:
            store.attach(given.table)  # (its rows are never changed: shared)
        return store

    def control_socket(self, pid: int) -> Path:
        d = self.daemon
        if d.control_socket is not None:
            return Path(d.control_socket)
        return RUN_DIR / f"{self.role}-{d.name or pid}.sock"

    def mn_association(self) -> SecurityAssociation:
        """The mobile node's MN-HA association (checked by :func:`parse_config`)."""
        assert isinstance(self.file, MobileNodeFile)
        ha = self.file.mobile_node.home_agent
        mine = [sa for peer, sa in self.associations if peer == ha]
        if not mine and len(self.associations) == 1:
            mine = [self.associations[0][1]]
        return mine[0]


def parse_config(
    role: str, data: Mapping[str, object], source: str, base: Path | None = None
) -> DaemonConfig:
    """Check ``data`` (a parsed TOML document) as the file of ``role``; every error is a
    :class:`ConfigError` naming ``source`` and the key."""
    if role not in FILES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    # -- AAA (issue 10): the MN-AAA secret (text) and an NAI-only node, then [aaa] --
    mn_aaa_secret = None
    if role == "mn":
        data, mn_aaa_secret = prepare_mobile_node(data, source)
    data, aaa_section = load_aaa_section(data, source)
    file = config_from_mapping(FILES[role], data, source)
    file, aaa = resolve_aaa(file, aaa_section, source, base, mn_aaa_secret)
    # -- end AAA --
    io = file.io
    associations: list[tuple[IPv4Address, SecurityAssociation]] = []
    store = SecurityAssociations()
    for i, sec in enumerate(file.security_associations):
        try:
            sa = sec.association(base)
            store.add(sec.peer, sa)
        except ValueError as e:
            raise ConfigError(f"{source}: security_associations[{i}]: {e}") from None
        associations.append((sec.peer, sa))
    # -- perf (issue 13): the subscriber table, after the TOML associations
    table_warnings: list[str] = []
    subscribers = getattr(file, "subscribers", None)
    if isinstance(subscribers, SubscribersSection) and subscribers.file is not None:
        table_source = Path(subscribers.file)
        if base is not None and not table_source.is_absolute():
            table_source = base / table_source
        try:
            table_warnings = _load_subscribers(table_source, store, file)
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from None
    # -- end perf
    tunnel_source = io.tunnel_source
    if isinstance(file, HomeAgentFile):
        interfaces = io.interfaces or (file.home_agent.interface,)
        tunnel_source = tunnel_source or file.home_agent.address
        agent = True
    elif isinstance(file, ForeignAgentFile):
        interfaces = io.interfaces or tuple(link.interface for link in file.foreign_agent.links)
        agent = True
    else:
        interfaces = io.interfaces
        agent = False
        if not interfaces:
            raise ConfigError(
                f"{source}: io.interfaces: missing (required for the mobile node: the "
                "interfaces whose links it watches)"
            )
        ha = file.mobile_node.home_agent
        # RFC 3957: a node with its NAI and MN-AAA secret and no MN-HA association gets
        # its key from the home AAA server (mip4.core.mn_keys)
        if not associations and file.mobile_node.mn_aaa_secret is None:
            raise ConfigError(
                f"{source}: security_associations: missing (the mobile node needs its MN-HA "
                f"association, peer = {ha})"
            )
        if len(associations) > 1 and not any(p == ha for p, _ in associations):
            raise ConfigError(
                f"{source}: security_associations: none has peer = {ha} (mobile_node.home_agent)"
            )
    warnings = check_values(file, source, associations)
    warnings += table_warnings  # perf
    return DaemonConfig(
        role=role,
        source=source,
        file=file,
        interfaces=tuple(interfaces),
        tun_name=io.tun_name or f"mip4-{role}",
        forwarding=agent if io.forwarding is None else io.forwarding,
        link_sources=agent if io.link_sources is None else io.link_sources,
        tunnel_source=tunnel_source,
        associations=Associations(associations, table=store.table),
        warnings=tuple(warnings),
        aaa=aaa,
        _store=store,
    )


def load_config(role: str, path: str | Path) -> DaemonConfig:
    """Read and check the TOML file at ``path`` for ``role`` (``"ha"``, ``"fa"``,
    ``"mn"``). Errors are :class:`ConfigError` naming the file (as given) and the key.

    Only a regular file of at most :data:`~mip4.daemon.validate.MAX_CONFIG_BYTES` is read
    (a device or a FIFO is refused unread), and it must be UTF-8 (TOML 1.0)."""
    source = str(path)
    p = Path(path)
    try:
        raw = read_regular_file(p, MAX_CONFIG_BYTES)
    except FileRefused as e:
        raise ConfigError(f"{source}: cannot read: {e}") from None
    try:
        data = tomllib.loads(utf8_text(raw, source))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return parse_config(role, data, source, p.parent)
