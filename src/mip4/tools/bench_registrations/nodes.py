"""The simulated mobile nodes the load generator speaks for, and the home agent
configuration that knows them.

Node ``i`` (0-based) has home address ``home_base + i``, SPI ``spi_base + i`` and a 16-byte
HMAC-MD5 key derived from a seed exactly as ``loadgen.c`` derives it (splitmix64's output
function of ``seed ^ 2i`` and ``seed ^ (2i + 1)``, big endian), so this module can write the
matching ``[[security_associations]]`` of a ``mip4 ha`` configuration and a test can verify
what the generator sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

_M64 = (1 << 64) - 1
#: ``loadgen --mode forge`` signs with the keys of seed ``seed ^ FORGE_XOR`` ("forged" in
#: ASCII; ``FORGE_XOR`` in ``loadgen.c``): the right SPIs, the wrong keys.
FORGE_XOR = 0x666F72676564


def mix(z: int) -> int:
    """splitmix64's output function (the same as ``mix`` in ``loadgen.c``)."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


@dataclass(frozen=True)
class Nodes:
    """How the simulated nodes are numbered: the parameters both sides share."""

    #: Number of security associations (simulated nodes) the home agent is configured with.
    count: int
    #: The home network; node ``i`` is host ``home_base + i`` of it.
    home_network: IPv4Network
    #: The home agent's address (the first host of the home network).
    home_agent: IPv4Address
    #: Home address of node 0.
    home_base: IPv4Address
    seed: int = 1
    spi_base: int = 0x10000

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count: {self.count} must be >= 1")
        last = int(self.home_base) + self.count - 1
        if last >= int(self.home_network.broadcast_address):
            raise ValueError(f"{self.count} nodes do not fit in {self.home_network}")

    def key(self, i: int) -> bytes:
        s = self.seed & _M64
        return mix(s ^ (2 * i)).to_bytes(8, "big") + mix(s ^ (2 * i + 1)).to_bytes(8, "big")

    def spi(self, i: int) -> int:
        return self.spi_base + i

    def home_address(self, i: int) -> IPv4Address:
        return self.home_base + i

    @classmethod
    def for_count(cls, count: int, seed: int = 1, prefix: str = "10.128.0.0") -> Nodes:
        """A home network just large enough: the HA at .1, nodes from .16 on."""
        bits = max(8, (count + 32).bit_length())
        net = IPv4Network(f"{prefix}/{32 - bits}", strict=False)
        return cls(count, net, net.network_address + 1, net.network_address + 16, seed)


def ha_config(
    nodes: Nodes,
    *,
    interface: str,
    tun_name: str,
    control_socket: Path,
    max_lifetime: int = 1800,
    log_level: str = "info",
    subscribers: Path | None = None,
    flood_steering: bool = True,
    fast_path_capacity: int | None = None,
) -> str:
    """A ``mip4 ha`` configuration (TOML) with one MN-HA security association per node.

    With ``subscribers`` the associations are in that CSV subscriber table (written by
    :func:`write_subscriber_table`), referenced as ``[subscribers] file``: the format meant
    for many nodes. Without, they are one inline table per line, before the first table
    header (a top-level key): the same structure as ``[[security_associations]]`` tables
    in fewer bytes, since the daemon reads configuration files of at most 1 MiB.
    ``flood_steering`` false writes ``[io] flood_steering = false`` (one socket; default:
    unwritten, the daemon's default, on). ``fast_path_capacity``: ``[io]
    fast_path_capacity`` (for more bindings than the bpf plane's 65,536 by default)."""
    lines = []
    if subscribers is None:
        lines.append("security_associations = [")
        for i in range(nodes.count):
            lines.append(
                f'  {{peer = "{nodes.home_address(i)}", spi = {nodes.spi(i)}, '
                f'key = "{nodes.key(i).hex()}"}},'
            )
        lines += ["]", ""]
    else:
        lines += ["[subscribers]", f'file = "{subscribers}"', ""]
    lines += [
        "[home_agent]",
        f'address = "{nodes.home_agent}"',
        f'home_network = "{nodes.home_network}"',
        f'interface = "{interface}"',
        f"max_lifetime = {max_lifetime}",
        f"max_bindings = {max(65536, 2 * nodes.count)}",
        "",
        "[io]",
        f'tun_name = "{tun_name}"',
        *([] if flood_steering else ["flood_steering = false"]),
        *([] if fast_path_capacity is None else [f"fast_path_capacity = {fast_path_capacity}"]),
        "",
        "[daemon]",
        'name = "bench"',
        f'control_socket = "{control_socket}"',
        'log_format = "text"',
        f'log_level = "{log_level}"',
    ]
    return "\n".join(lines) + "\n"


def write_subscriber_table(nodes: Nodes, path: Path) -> None:
    """The nodes' MN-HA associations as a subscriber table (:mod:`mip4.security.sa_table`:
    CSV, ``peer,spi,key``), written in chunks (a million lines is ~60 MB)."""
    with path.open("w", encoding="ascii") as f:
        f.write("# mip4 bench registrations: one MN-HA association per simulated node\n")
        f.write("peer,spi,key\n")
        base, spi_base = int(nodes.home_base), nodes.spi_base
        chunk: list[str] = []
        for i in range(nodes.count):
            chunk.append(f"{IPv4Address(base + i)},{spi_base + i},{nodes.key(i).hex()}\n")
            if len(chunk) == 65536:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
