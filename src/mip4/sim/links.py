"""Addressing, link-layer addresses and the home agents' subscriber SA store.

Address plan (all integers, so no per-node address objects are kept):

* home agent ``k``: ``10.(16k).0.1``, home network ``10.(16k).0.0/12``;
* mobile node ``i``: home agent ``i % K``, home address ``10.(16k).0.0 + 2 + i // K``;
* foreign agent ``m``: ``100.64.0.0 + 256 m + 1`` on its own /24 (its cell's link);
* link-layer addresses: ``02:`` + node index (mobile nodes), ``04:`` + agent index.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from ipaddress import IPv4Address, IPv4Network

from mip4.security.sa import SecurityAssociation

_TEN = 10 << 24
_CGN = (100 << 24) | (64 << 16)
HOME_PREFIX_LEN = 12
FA_PREFIX_LEN = 24


def ha_address(k: int) -> int:
    return _TEN | (k << 20) | 1


def ha_network(k: int) -> IPv4Network:
    return IPv4Network((_TEN | (k << 20), HOME_PREFIX_LEN))


def home_address(i: int, home_agents: int) -> int:
    return _TEN | ((i % home_agents) << 20) | (2 + i // home_agents)


def node_of_home(address: int, home_agents: int) -> int:
    """The mobile node whose home address is ``address`` (-1: none)."""
    if address >> 24 != 10:
        return -1
    k = (address >> 20) & 0xF
    j = (address & 0xFFFFF) - 2
    if k >= home_agents or j < 0:
        return -1
    return j * home_agents + k


def ha_of_address(address: int, home_agents: int) -> int:
    """The home agent whose address is ``address`` (-1: none)."""
    if address >> 24 != 10 or address & 0xFFFFF != 1:
        return -1
    k = (address >> 20) & 0xF
    return k if k < home_agents else -1


def fa_address(m: int) -> int:
    return _CGN | (m << 8) | 1


def fa_of_address(address: int, foreign_agents: int) -> int:
    """The foreign agent whose address is ``address`` (-1: none)."""
    if address & 0xFF != 1:
        return -1
    m = (address - _CGN) >> 8
    return m if 0 <= m < foreign_agents else -1


def node_mac(i: int) -> bytes:
    return b"\x02" + i.to_bytes(5, "big")


def agent_mac(m: int) -> bytes:
    return b"\x04" + m.to_bytes(5, "big")


def node_of_mac(mac: bytes) -> int:
    return int.from_bytes(mac[1:], "big") if len(mac) == 6 and mac[0] == 2 else -1


class SubscriberAssociations:
    """A :class:`~mip4.security.sa.SecurityAssociationStore` for a home agent serving a
    whole home network with one MN-HA association (every node of the network shares
    ``sa``): no per-subscriber memory, and ``get``/``for_peer`` in O(1) whatever the
    number of subscribers. Other peers (foreign agents) are kept in a small dict."""

    __slots__ = ("_extra", "_hi", "_lo", "_sa")

    def __init__(self, network: IPv4Network, sa: SecurityAssociation) -> None:
        # the home agent's own address and the network/broadcast addresses are not nodes
        self._lo = int(network.network_address) + 2
        self._hi = int(network.broadcast_address) - 1
        self._sa = sa
        self._extra: dict[tuple[Hashable, int], SecurityAssociation] = {}

    def _mine(self, peer: Hashable) -> bool:
        return isinstance(peer, IPv4Address) and self._lo <= int(peer) <= self._hi

    def add(self, peer: Hashable, sa: SecurityAssociation) -> None:
        key = (peer, sa.spi)
        if key in self._extra or (sa.spi == self._sa.spi and self._mine(peer)):
            raise ValueError(f"peer {peer}: SPI {sa.spi} already has a security association")
        self._extra[key] = sa

    def get(self, peer: Hashable, spi: int) -> SecurityAssociation | None:
        if spi == self._sa.spi and self._mine(peer):
            return self._sa
        return self._extra.get((peer, spi))

    def remove(self, peer: Hashable, spi: int) -> SecurityAssociation | None:
        return self._extra.pop((peer, spi), None)

    def for_peer(self, peer: Hashable) -> list[SecurityAssociation]:
        out = [sa for (p, _), sa in self._extra.items() if p == peer]
        if self._mine(peer):
            out.insert(0, self._sa)
        return out

    def __iter__(self) -> Iterator[tuple[Hashable, SecurityAssociation]]:
        for a in range(self._lo, self._hi + 1):
            yield IPv4Address(a), self._sa
        yield from ((p, sa) for (p, _), sa in self._extra.items())

    def __len__(self) -> int:
        return self._hi - self._lo + 1 + len(self._extra)
