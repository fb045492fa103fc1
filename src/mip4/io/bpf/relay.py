"""The foreign agent's registration relay in the tc-BPF plane, seen from Python (issue 13):
the entries of ``mip4_relay`` (:class:`Relay`, one per visitor whose usual renewal
``mip4_agent`` relays) and the consumer of the ring buffer ``mip4_relayed``
(:class:`RelayRecords`), in which the program copies each datagram it relayed as
:class:`Relayed` records for the agent's engine. :class:`~mip4.io.bpf.plane.BpfPlane`
writes the entries and makes the consumer (``set_relay``, ``relay_records``); the C
layouts are in ``bpf/mip4_tunnel.bpf.c``, the design in docs/dataplane.md
("Registration relay")."""

from __future__ import annotations

import ctypes
import errno
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Self

from . import libbpf as lb

#: struct mip4_relay: request, node, agent, relay_src, ifindex, node_port, relay_port
#: (network order), node_mac, own_mac, flags, pending, pending_set
_RELAY = struct.Struct("=16s4s4s4sI2s2s6s6sB3x8sI4x")
#: struct mip4_relayed: ifindex, kind, ttl, len, saddr, daddr, sport, dport (network
#: order), mac, payload
_RELAYED = struct.Struct("=IBBH4s4s2s2s6s2x48s")
_RF_TTL255 = 0x01
#: ring_buffer__consume's return when :meth:`RelayRecords.drain` stopped at its limit
_STOPPED = -errno.ECANCELED


_BROADCAST = IPv4Address("255.255.255.255")


def _unicast(address: IPv4Address) -> bool:
    return not (address.is_unspecified or address.is_multicast or address == _BROADCAST)


@dataclass(frozen=True)
class Relay:
    """What ``mip4_agent`` needs to relay a visitor's usual renewal and its acceptance
    (``struct mip4_relay``, foreign agent, issue 13): a request from ``node_mac`` /
    ``node``:``node_port`` on ``ifindex`` to ``agent`` whose first 16 bytes are ``request``
    (type 1, flags, lifetime, home address, home agent, care-of address), with the usual
    layout (fixed part and MN-HA) and, with ``ttl_255``, IP TTL 255 (RFC 3024 §4.2.1), goes
    to the home agent from ``relay_source``:``relay_port``; an accepting reply to
    ``relay_source``:``relay_port`` whose Identification's low-order 32 bits are the
    pending request's goes to the visitor from ``agent`` and ``own_mac``.

    ``pending`` is read back only: the Identification of the request the program relayed
    last and saw no reply to; :meth:`pack` writes none (a written entry has nothing
    pending)."""

    request: bytes
    node: IPv4Address
    agent: IPv4Address
    relay_source: IPv4Address
    ifindex: int
    node_port: int
    relay_port: int
    node_mac: bytes
    own_mac: bytes
    ttl_255: bool
    pending: bytes | None = None

    def pack(self) -> bytes:
        if len(self.request) != 16 or self.request[0] != 1:
            raise ValueError("request: the 16 first bytes of a Registration Request")
        if len(self.node_mac) != 6 or len(self.own_mac) != 6:
            raise ValueError("hardware addresses are 6 bytes")
        if not (_unicast(self.node) and _unicast(self.agent) and _unicast(self.relay_source)):
            # the reply goes from agent to node: 0.0.0.0, broadcast or multicast there
            # is the daemon's to resolve (RFC 2794 §2; the link's address)
            raise ValueError("node, agent and relay source must be unicast addresses")
        return _RELAY.pack(
            self.request,
            self.node.packed,
            self.agent.packed,
            self.relay_source.packed,
            self.ifindex,
            self.node_port.to_bytes(2, "big"),
            self.relay_port.to_bytes(2, "big"),
            self.node_mac,
            self.own_mac,
            _RF_TTL255 if self.ttl_255 else 0,
            bytes(8),
            0,
        )

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        (
            request,
            node,
            agent,
            source,
            ifindex,
            node_port,
            relay_port,
            node_mac,
            own_mac,
            flags,
            pending,
            pending_set,
        ) = _RELAY.unpack(data)
        return cls(
            request,
            IPv4Address(node),
            IPv4Address(agent),
            IPv4Address(source),
            ifindex,
            int.from_bytes(node_port, "big"),
            int.from_bytes(relay_port, "big"),
            node_mac,
            own_mac,
            bool(flags & _RF_TTL255),
            pending if pending_set else None,
        )


@dataclass(frozen=True)
class Relayed:
    """A datagram ``mip4_agent`` relayed (a record of ``mip4_relayed``), as it came in:
    ``kind`` 1 a visitor's request relayed to its home agent, 3 a home agent's reply
    relayed to the visitor (the message types); the interface, IP TTL, addresses, UDP
    ports and Ethernet source it came with; its UDP payload."""

    kind: int
    ifindex: int
    ttl: int
    src: IPv4Address
    dst: IPv4Address
    sport: int
    dport: int
    mac: bytes
    payload: bytes

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        ifindex, kind, ttl, n, src, dst, sport, dport, mac, payload = _RELAYED.unpack(data)
        return cls(
            kind,
            ifindex,
            ttl,
            IPv4Address(src),
            IPv4Address(dst),
            int.from_bytes(sport, "big"),
            int.from_bytes(dport, "big"),
            mac,
            payload[:n],
        )


class RelayRecords:
    """The consumer of the ring buffer ``mip4_relayed`` (libbpf's ``ring_buffer``): what
    ``mip4_agent`` relayed, in the order the program submitted it. :meth:`fileno` is
    readable when records are there (an epoll descriptor: for an event loop's reader);
    :meth:`drain` reads them without a system call when there are none. Made by
    :meth:`BpfPlane.relay_records`, closed with the plane."""

    def __init__(self, map_fd: int) -> None:
        self._out: list[Any] = []
        self._limit = 0
        #: :meth:`payloads`: the datagrams' payloads only
        self._raw = False
        self._error: BaseException | None = None
        # libbpf calls this for each record; the reference keeps the thunk alive
        self._callback = lb.RING_BUFFER_SAMPLE_FN(self._sample)
        self._rb = lb.check_ptr(
            lb.lib().ring_buffer__new(
                map_fd, ctypes.cast(self._callback, ctypes.c_void_p), None, None
            ),
            "ring_buffer__new(mip4_relayed)",
        )

    def _sample(self, _ctx: int | None, data: int, size: int) -> int:
        try:
            if size != _RELAYED.size:
                raise ValueError(f"mip4_relayed: a record of {size} bytes, not {_RELAYED.size}")
            record = ctypes.string_at(data, size)
            if self._raw:  # struct mip4_relayed: len (host order) at 6, payload at 28
                self._out.append(record[28 : 28 + (record[6] | record[7] << 8)])
            else:
                self._out.append(Relayed.unpack(record))
        except BaseException as e:  # raised again by drain(): never across the C frames
            self._error = e
            return _STOPPED
        return _STOPPED if len(self._out) == self._limit else 0

    def fileno(self) -> int:
        """An epoll descriptor that is readable while records wait (libbpf's)."""
        return lb.check(lb.lib().ring_buffer__epoll_fd(self._ptr()), "ring_buffer__epoll_fd")

    def drain(self, limit: int | None = None) -> list[Relayed]:
        """The records there now, oldest first, removed from the ring; with ``limit``, at
        most that many (the others stay for the next call)."""
        out: list[Relayed] = []
        self._consume(out, limit, raw=False)
        return out

    def payloads(self, limit: int | None = None) -> list[bytes]:
        """:meth:`drain`, each record's datagram payload only (its first byte says which:
        1, a request; 3, a reply) -- what the foreign agent's engine applies; no object per
        record but the bytes (issue 13: two per relayed registration)."""
        out: list[bytes] = []
        self._consume(out, limit, raw=True)
        return out

    def _consume(self, out: list[Any], limit: int | None, *, raw: bool) -> None:
        if limit is not None and limit <= 0:
            return
        self._out = out
        self._raw = raw
        self._limit = 0 if limit is None else limit
        try:
            rc = lb.lib().ring_buffer__consume(self._ptr())
        finally:
            self._out = []
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if rc != _STOPPED:
            lb.check(rc, "ring_buffer__consume(mip4_relayed)")

    def _ptr(self) -> int:
        if not self._rb:
            raise ValueError("the relay records are closed")
        return self._rb

    def close(self) -> None:
        if self._rb:
            lb.lib().ring_buffer__free(self._rb)
            self._rb = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Relay", "RelayRecords", "Relayed"]
