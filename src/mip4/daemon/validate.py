"""Checks of a daemon's files and values beyond their types (STYLE.md practice 8).

Theory of operation
-------------------
:mod:`mip4.daemon.config` builds the typed tables; each core dataclass checks what it can
alone (a ``max_lifetime`` in range). What needs two keys at once, or a value that is legal
but cannot work, is checked here, after the file is parsed and before any engine is built:

* :func:`read_regular_file` reads a configuration or key file: a regular file only (a
  device such as ``/dev/zero``, a FIFO, a socket or a directory is refused without reading
  it) and at most a bounded size, so a mistaken path never fills memory or blocks.
* :func:`check_values` raises :class:`ConfigError` naming the file and key for a value that
  cannot work (a prefix length of 40, a home address outside the home network, a binding
  table of size 0, ...) and returns warning lines for what is legal but odd (a short key).
* :func:`check_local_addresses` is the one check that needs the running namespace: the
  agents' own addresses must be configured on an interface. It takes the addresses as an
  argument (:func:`interface_addresses` reads them through mip4.io.netns) so that it is tested
  without a namespace.
* :func:`check_store` is what ``--check`` adds for the agents' ``[store] path``: the file
  the daemon would open is checked read-only (:func:`mip4.store.check_store_file`: never
  created, locked or changed), so a truncated one, one of a newer schema or another
  application's is reported as the daemon would report it, exit 2.

Keys shorter than 128 bits are accepted with a warning: RFC 5944 §5.1 makes HMAC-MD5 with
128-bit keys the default every implementation supports, and RFC 2104 §3 says keys shorter
than the hash output (16 bytes for MD5) are "strongly discouraged"; neither forbids them,
and a short key may be what an old peer was configured with.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING

from mip4.core.foreign_agent import ForeignAgentConfig
from mip4.core.home_agent import HomeAgentConfig
from mip4.core.mobile_node import MobileNodeConfig
from mip4.core.registration import ConfigError
from mip4.errors import Mip4Error

if TYPE_CHECKING:
    from mip4.security.sa import SecurityAssociation

    from .config import DaemonConfig, ForeignAgentFile, HomeAgentFile, MobileNodeFile

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_KEY_FILE_BYTES",
    "MAX_SA_TABLE_BYTES",
    "MIN_KEY_BYTES",
    "FileRefused",
    "check_local_addresses",
    "check_store",
    "check_table",
    "check_values",
    "file_kind",
    "interface_addresses",
    "read_regular_file",
    "utf8_text",
]

#: Largest configuration file read (a real one is a few KiB).
MAX_CONFIG_BYTES = 1 << 20
#: Largest key file read (a key is a few dozen hexadecimal digits).
MAX_KEY_FILE_BYTES = 64 << 10
#: perf (issue 13): the largest subscriber table read (``[subscribers] file``): room for
#: about 10 million associations of ~70 bytes a line
MAX_SA_TABLE_BYTES = 1 << 30
#: Keys shorter than this many bytes get a warning (RFC 5944 §5.1: 128-bit keys;
#: RFC 2104 §3: keys shorter than the 16-byte MD5 output are strongly discouraged).
MIN_KEY_BYTES = 16


class FileRefused(Mip4Error, ValueError):
    """A file that is not read: not a regular file, too large, or unreadable. The message
    says why, without the path (the caller adds it with the key that named the file)."""


def file_kind(mode: int) -> str:
    """What ``st_mode`` is, in words (``"a character device"``)."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    The file is opened without blocking (a FIFO with no writer does not hang) and checked
    with ``fstat`` on the open descriptor, so what is read is what was checked. Raises
    :class:`FileRefused` for anything but a regular file of at most ``limit`` bytes, and
    for an ``OSError`` (``FileNotFoundError`` and the like, with the system's words)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise FileRefused(e.strerror or str(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"{file_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise FileRefused(f"{st.st_size} bytes, larger than the limit of {limit}")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew while being read
            raise FileRefused(f"larger than the limit of {limit} bytes")
        return b"".join(chunks)
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise FileRefused("a directory, not a regular file") from None
        raise FileRefused(e.strerror or str(e)) from None
    finally:
        os.close(fd)


def utf8_text(data: bytes, what: str) -> str:
    """``data`` decoded as UTF-8; ``ConfigError``-ready ``ValueError`` naming ``what``, the
    first bad byte, its offset and line otherwise."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(
            f"{what}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}, line {line})"
        ) from None


# ---------------------------------------------------------------------------------------------
# Values that parse but cannot work
# ---------------------------------------------------------------------------------------------


def check_values(
    file: HomeAgentFile | ForeignAgentFile | MobileNodeFile,
    source: str,
    associations: Iterable[tuple[IPv4Address, SecurityAssociation]],
) -> list[str]:
    """Raise :class:`ConfigError` (``"<source>: <key>: ..."``) for the first value of
    ``file`` that cannot work; return warning lines (same form) for odd but legal ones."""
    warnings: list[str] = []
    agent = getattr(file, "home_agent", None)
    if isinstance(agent, HomeAgentConfig):
        _check_home_agent(agent, source, warnings)
    fa = getattr(file, "foreign_agent", None)
    if isinstance(fa, ForeignAgentConfig):
        _check_foreign_agent(fa, source)
    mn = getattr(file, "mobile_node", None)
    if isinstance(mn, MobileNodeConfig):
        _check_mobile_node(mn, source)
    for i, (peer, sa) in enumerate(associations):
        key = f"security_associations[{i}]"
        if len(sa.key) < MIN_KEY_BYTES:
            warnings.append(
                f"{source}: {key}: a {len(sa.key) * 8}-bit key; RFC 5944 §5.1 uses "
                f"{MIN_KEY_BYTES * 8}-bit keys and RFC 2104 §3 strongly discourages keys "
                f"shorter than {MIN_KEY_BYTES} bytes"
            )
        if isinstance(agent, HomeAgentConfig):
            _check_ha_peer(agent, peer, f"{key}.peer", source, warnings)
        if isinstance(mn, MobileNodeConfig) and peer != mn.home_agent:
            net = mn.home_network
            if peer in net:
                continue
            warnings.append(
                f"{source}: {key}.peer: {peer} is neither mobile_node.home_agent "
                f"({mn.home_agent}) nor in the home network {net}"
            )
    return warnings


# -- perf (issue 13): the subscriber table's rows -------------------------------------------


def check_table(
    file: HomeAgentFile | ForeignAgentFile | MobileNodeFile,
    rows: Iterable[tuple[int, IPv4Address, SecurityAssociation]],
    source: str,
) -> list[str]:
    """The checks :func:`check_values` makes of ``[[security_associations]]``, for the rows
    of a subscriber table (``source`` is its file): an error names the file and line
    (``subscribers.csv:12: peer: ...``); warnings of one kind are summarised in one line
    with the first row and the count, not one line per row of a million."""
    agent = getattr(file, "home_agent", None)
    first: dict[str, str] = {}
    count: dict[str, int] = {}
    # the usual row of a home agent's table (a home address of the home network, neither
    # the agent's own nor the network's or broadcast address, served with no pool and no
    # home_addresses list; a key long enough) has nothing to say: decided on integers (a
    # million rows; any other row takes the checks below, which say why)
    plain = False
    lo = hi = me = -1
    edges = False
    if isinstance(agent, HomeAgentConfig) and agent.home_addresses is None:
        plain = not agent.address_pool
        net = agent.home_network
        lo, hi = int(net.network_address), int(net.broadcast_address)
        me, edges = int(agent.address), net.prefixlen < 31
    for line, peer, sa in rows:
        if plain and len(sa.key) >= MIN_KEY_BYTES:
            p = int(peer)
            if lo <= p <= hi and p != me and not (edges and p in (lo, hi)):
                continue
        found: list[str] = []
        where = f"{source}:{line}"
        if len(sa.key) < MIN_KEY_BYTES:
            found.append(
                f"{where}: key: a {len(sa.key) * 8}-bit key; RFC 5944 §5.1 uses "
                f"{MIN_KEY_BYTES * 8}-bit keys and RFC 2104 §3 strongly discourages keys "
                f"shorter than {MIN_KEY_BYTES} bytes"
            )
        if isinstance(agent, HomeAgentConfig):
            _check_ha_peer(agent, peer, "peer", where, found)
        for text in found:
            kind = text[len(where) :].split(":", 2)[1] + text.rsplit(":", 1)[-1][:24]
            first.setdefault(kind, text)
            count[kind] = count.get(kind, 0) + 1
    return [
        first[k] + (f" (and {count[k] - 1} more lines like it)" if count[k] > 1 else "")
        for k in first
    ]


# -- end perf


def _check_home_agent(agent: HomeAgentConfig, source: str, warnings: list[str]) -> None:
    net = agent.home_network
    if agent.max_bindings < 1:
        raise ConfigError(
            f"{source}: home_agent.max_bindings: {agent.max_bindings} would deny every "
            "registration (130, insufficient resources); give at least 1"
        )
    if agent.home_addresses is not None:
        if not agent.home_addresses:
            raise ConfigError(
                f"{source}: home_agent.home_addresses: empty, so no mobile node is served "
                "(leave it out to serve the whole home_network)"
            )
        for a in sorted(agent.home_addresses):
            why = _not_a_home_address(agent, a)
            if why:
                raise ConfigError(f"{source}: home_agent.home_addresses: {a} {why}")
    if net.prefixlen >= 31:
        warnings.append(
            f"{source}: home_agent.home_network: {net} leaves no room for mobile nodes "
            "beside the home agent"
        )


def _not_a_home_address(agent: HomeAgentConfig, a: IPv4Address) -> str | None:
    net = agent.home_network
    if a not in net:
        return f"is outside home_network {net}"
    if a == agent.address:
        return "is the home agent's own address (home_agent.address)"
    if net.prefixlen < 31 and a in (net.network_address, net.broadcast_address):
        what = "network" if a == net.network_address else "broadcast"
        return f"is the {what} address of home_network {net}"
    return None


def _check_ha_peer(
    agent: HomeAgentConfig, peer: IPv4Address, key: str, source: str, warnings: list[str]
) -> None:
    """A home agent keys MN-HA associations by home address and FA-HA ones by a foreign
    agent's address (RFC 5944 §3.8.2.1): a peer in the home network is a mobile node."""
    if peer not in agent.home_network:
        warnings.append(
            f"{source}: {key}: {peer} is outside home_network {agent.home_network}: it can "
            "only serve as an FA-HA association (a mobile node's home address is in the "
            "home network)"
        )
        return
    why = _not_a_home_address(agent, peer)
    if why:
        raise ConfigError(f"{source}: {key}: {peer} {why}; no mobile node can use it")
    if not agent.serves(peer):
        warnings.append(
            f"{source}: {key}: {peer} is in the home network but not in "
            "home_agent.home_addresses: no mobile node of that address is served (only a "
            "foreign agent on the home link could use it, as FA-HA)"
        )


def _check_foreign_agent(fa: ForeignAgentConfig, source: str) -> None:
    for i, link in enumerate(fa.links):
        key = f"foreign_agent.links[{i}]"
        if not 1 <= link.prefix_len <= 32:
            raise ConfigError(
                f"{source}: {key}.prefix_len: {link.prefix_len} not in 1..32 "
                "(an IPv4 prefix length, RFC 5944 §2.1.2)"
            )


def _check_mobile_node(mn: MobileNodeConfig, source: str) -> None:
    if int(mn.home_agent) in (0, 0xFFFFFFFF):
        return  # left to the network (RFC 4433): nothing to check it against
    net = mn.home_subnet if mn.home_subnet is not None else mn.home_network
    if int(mn.home_address) == 0 and mn.home_subnet is None:
        return  # neither an address nor a subnet: the home network is learnt at registration
    if mn.home_agent not in net:
        where = (
            "mobile_node.home_subnet"
            if mn.home_subnet is not None
            else "mobile_node.home_address/home_prefix_len"
        )
        raise ConfigError(
            f"{source}: mobile_node.home_agent: {mn.home_agent} is outside the home network "
            f"{net} ({where}); a home agent is a router on the home network (RFC 5944 §1.5)"
        )


# ---------------------------------------------------------------------------------------------
# The running namespace
# ---------------------------------------------------------------------------------------------


def interface_addresses() -> dict[str, list[IPv4Interface]]:
    """The IPv4 addresses of the current network namespace, by interface name (through
    the one netlink facade, :class:`mip4.io.netns.Netns`)."""
    from mip4.io.netns import Netns  # the I/O side only; imported when a daemon starts

    ns = Netns(None)
    try:
        return {name: addrs for name in ns.link_names() if (addrs := ns.addresses(name))}
    finally:
        ns.close()


def check_local_addresses(
    cfg: DaemonConfig, addresses: Mapping[str, Iterable[IPv4Interface]] | None = None
) -> list[str]:
    """Check that the agent's own addresses are configured in this namespace: the home
    agent's ``home_agent.address``, a foreign agent's ``links[i].address``. Raises
    :class:`ConfigError` naming the file and key when an address is on no interface;
    returns warning lines when it is on another interface than the configured one.
    ``addresses``: interface name -> addresses (default: :func:`interface_addresses`).
    The mobile node has nothing to check (its addresses come and go with its links)."""
    wanted: list[tuple[str, IPv4Address, str]] = []  # (key, address, interface)
    agent = getattr(cfg.file, "home_agent", None)
    if isinstance(agent, HomeAgentConfig):
        wanted.append(("home_agent.address", agent.address, agent.interface))
    fa = getattr(cfg.file, "foreign_agent", None)
    if isinstance(fa, ForeignAgentConfig):
        for i, link in enumerate(fa.links):
            wanted.append((f"foreign_agent.links[{i}].address", link.address, link.interface))
    if not wanted:
        return []
    if addresses is None:
        addresses = interface_addresses()
    where: dict[IPv4Address, list[str]] = {}
    for name, ifaddrs in addresses.items():
        for ifa in ifaddrs:
            where.setdefault(ifa.ip, []).append(name)
    warnings: list[str] = []
    for key, address, interface in wanted:
        names = where.get(address, [])
        if not names:
            raise ConfigError(
                f"{cfg.source}: {key}: {address} is not an address of any interface in this "
                f"network namespace (expected on {interface})"
            )
        if interface not in names:
            warnings.append(
                f"{cfg.source}: {key}: {address} is on {', '.join(sorted(names))}, "
                f"not on {interface}"
            )
    return warnings


def check_store(cfg: DaemonConfig) -> Path | None:
    """``--check``: the configured store file, checked without being created or changed;
    the path checked, ``None`` when there is no ``[store] path``.
    :class:`mip4.store.StoreError` (one line naming the file) when the daemon would
    refuse it; a missing file is fine (the daemon creates it)."""
    from mip4.store import check_store_file  # the I/O layer, only for this check

    section = getattr(cfg.file, "store", None)
    path: Path | None = None if section is None else section.resolved(cfg.source)
    if path is None:
        return None
    check_store_file(path)
    return path
