"""Frames for the tc-BPF tests, built with mip4's own codec (:mod:`mip4.wire.ip`) and the
user-space data plane (:mod:`mip4.dataplane`), so the programs are checked against the
plane they replace, byte for byte.

Addresses: the home agent 10.0.0.1, a mobile node's home address 10.0.0.5, its care-of
address (a foreign agent) 198.51.100.20, a correspondent 192.0.2.10 -- the addresses of
``tests/dataplane/vectors.py``.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from ipaddress import IPv4Address as A
from typing import TypeVar

from mip4.wire.ip import IPFlags, IPProtocol, IPv4Packet

T = TypeVar("T")
CLONE_NEWNET = 0x40000000

HA = A("10.0.0.1")
HOME = A("10.0.0.5")
COA = A("198.51.100.20")
CN = A("192.0.2.10")

DST_MAC = bytes.fromhex("020000000002")
SRC_MAC = bytes.fromhex("020000000001")
ETH = DST_MAC + SRC_MAC + b"\x08\x00"
ETH_LEN = 14


def udp(payload_len: int = 2, sport: int = 1234, dport: int = 53) -> bytes:
    """A UDP header (checksum 0: not used by IPv4 UDP, RFC 768) and ``payload_len`` bytes."""
    body = bytes(i & 0xFF for i in range(payload_len))
    length = 8 + payload_len
    return (
        sport.to_bytes(2, "big")
        + dport.to_bytes(2, "big")
        + length.to_bytes(2, "big")
        + (b"\0\0" + body)
    )


def inner(
    src: A = CN,
    dst: A = HOME,
    *,
    ttl: int = 64,
    tos: int = 0x10,
    df: bool = True,
    mf: bool = False,
    frag_offset: int = 0,
    payload_len: int = 2,
    identification: int = 0x1C46,
    options: bytes = b"",
    dport: int = 53,
) -> bytes:
    flags = (IPFlags.DF if df else IPFlags(0)) | (IPFlags.MF if mf else IPFlags(0))
    return IPv4Packet.build(
        src,
        dst,
        IPProtocol.UDP,
        udp(payload_len, dport=dport),
        ttl=ttl,
        tos=tos,
        identification=identification,
        flags=flags,
        fragment_offset=frag_offset,
        options=options,
    ).encode()


def tcp(src: A = CN, dst: A = HOME, *, payload_len: int = 2, options: int = 0) -> bytes:
    """A TCP segment's IPv4 datagram (DF, TTL 64): a 20-byte TCP header plus ``options``
    4-byte words of options (data offset 5 + options), ``payload_len`` bytes of data (the
    TCP checksum is not computed: nothing here reads it)."""
    doff = 5 + options
    header = (
        (40000).to_bytes(2, "big")
        + (80).to_bytes(2, "big")
        + (1).to_bytes(4, "big")
        + (0).to_bytes(4, "big")
        + bytes([doff << 4, 0x18])
        + (65535).to_bytes(2, "big")
        + b"\0\0\0\0"
        + b"\x01" * (4 * options)
    )
    body = bytes(i & 0xFF for i in range(payload_len))
    return IPv4Packet.build(
        src, dst, IPProtocol.TCP, header + body, identification=0x1C46, flags=IPFlags.DF
    ).encode()


def frame(packet: bytes | bytearray) -> bytes:
    return ETH + bytes(packet)


def ether(dst: bytes, src: bytes, packet: bytes | bytearray) -> bytes:
    """An Ethernet II frame (IPv4) from ``src`` to ``dst`` carrying ``packet``."""
    return dst + src + b"\x08\x00" + bytes(packet)


def udp_datagram(
    src: A,
    dst: A,
    sport: int,
    dport: int,
    payload: bytes,
    *,
    checksum: int = 0,
    ttl: int = 64,
    tos: int = 0,
    identification: int = 0,
    df: bool = False,
    mf: bool = False,
    frag_offset: int = 0,
    options: bytes = b"",
) -> bytes:
    """An IPv4 datagram carrying a UDP header and ``payload``; the UDP checksum field is
    ``checksum`` as given (the caller computes it; 0: none, RFC 768)."""
    flags = (IPFlags.DF if df else IPFlags(0)) | (IPFlags.MF if mf else IPFlags(0))
    header = (
        sport.to_bytes(2, "big")
        + dport.to_bytes(2, "big")
        + (8 + len(payload)).to_bytes(2, "big")
        + checksum.to_bytes(2, "big")
    )
    return IPv4Packet.build(
        src,
        dst,
        IPProtocol.UDP,
        header + payload,
        ttl=ttl,
        tos=tos,
        identification=identification,
        flags=flags,
        fragment_offset=frag_offset,
        options=options,
    ).encode()


def ip_of(data: bytes) -> bytes:
    """The IPv4 packet of a frame (after the Ethernet header)."""
    assert data[12:14] == b"\x08\x00"
    return data[ETH_LEN:]


def in_private_netns(func: Callable[[], T], *, forwarding: bool) -> T:
    """Call ``func`` on a thread that has unshared a fresh, anonymous network namespace
    (only a loopback device, no route; ``net.ipv4.conf.all.forwarding`` as given). The
    namespace dies with the thread: nothing is left behind, nothing is named."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
            with open("/proc/thread-self/net/dev") as f:  # sanity: our own namespace
                assert [ln.split(":")[0].strip() for ln in f.readlines()[2:]] == ["lo"]
            with open("/proc/sys/net/ipv4/conf/all/forwarding", "w") as f:
                f.write("1" if forwarding else "0")
            result.append(func())
        except BaseException as e:
            error.append(e)

    t = threading.Thread(target=target, name="private-netns", daemon=True)
    t.start()
    t.join(30)
    if error:
        raise error[0]
    return result[0]


def rfc1071(data: bytes) -> int:
    """The RFC 1071 §4.1 word loop, independent of :func:`mip4.wire.ip.internet_checksum`:
    0 over data that includes a correct checksum."""
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
