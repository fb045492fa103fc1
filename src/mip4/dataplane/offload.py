"""Datagrams a sender's offloads left unfinished, made whole again before they are forwarded.

Theory of operation
-------------------
Inside one host, packets cross veth pairs, and a tc-BPF tunnel endpoint, as the sender's
stack built them: a TCP or UDP checksum still to be completed by the "hardware"
(``CHECKSUM_PARTIAL``: the field holds only the pseudo-header sum) and 64 KB GSO
super-packets still to be segmented. A NIC would finish both before the wire. A tunnel
endpoint that reads the tunnel through a raw IP socket (the user-space plane) gets the bytes
without the kernel's flags that say so, and forwarded them as they were: an inner checksum
the receiver rejects, a datagram too big for the next link.

:func:`repair_offloaded` restores what the wire would have carried:

* a TCP datagram longer than ``mtu`` is cut into segments that fit (sequence numbers, IP
  identification, FIN/PSH on the last segment only and CWR on the first, as the kernel's
  TCP segmentation does), each with its own IPv4 and TCP checksums;
* a TCP or UDP datagram whose checksum field holds exactly the partial sum
  (:func:`looks_partial`) and does not verify gets its checksum computed. A datagram whose
  checksum verifies is never touched, so a correct one is never altered; one corrupted on
  the way so that its field happens to equal the partial sum (1 in 65,536 of corrupt ones)
  would be "repaired" -- the price of not seeing the kernel's flags.

:func:`needs_repair` is the cheap test the forwarder runs on every datagram (a length
comparison and a 16-bit sum over the pseudo-header).

Pure: no I/O; checksums from :mod:`mip4.wire`.
"""

from __future__ import annotations

from mip4.wire.ip import internet_checksum
from mip4.wire.packets import set_header_checksum, transport_checksum

from .common import complete_transport_checksum

_TCP, _UDP = 6, 17
_FIN, _PSH, _CWR = 0x01, 0x08, 0x80


def _fold(n: int) -> int:
    while n > 0xFFFF:
        n = (n & 0xFFFF) + (n >> 16)
    return n


def _header(packet: bytes | bytearray | memoryview) -> tuple[int, int, int, int] | None:
    """(IHL in bytes, total length, protocol, checksum field offset) of an unfragmented
    IPv4 TCP/UDP datagram, else None."""
    if len(packet) < 28 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = (packet[2] << 8) | packet[3]
    proto = packet[9]
    if proto not in (_TCP, _UDP) or ihl < 20 or total > len(packet) or total < ihl + 8:
        return None
    if ((packet[6] << 8) | packet[7]) & 0x3FFF:  # MF or an offset: a fragment
        return None
    field = ihl + (16 if proto == _TCP else 6)
    if field + 2 > total:
        return None
    return ihl, total, proto, field


def looks_partial(packet: bytes | bytearray | memoryview) -> bool:
    """Whether the TCP/UDP checksum field of ``packet`` holds the folded pseudo-header sum
    and nothing else -- what a stack leaves for the hardware to complete."""
    h = _header(packet)
    if h is None:
        return False
    ihl, total, proto, field = h
    s = proto + (total - ihl)
    for i in range(12, 20, 2):
        s += (packet[i] << 8) | packet[i + 1]
    return ((packet[field] << 8) | packet[field + 1]) == _fold(s)


def needs_repair(packet: bytes | bytearray | memoryview, mtu: int) -> bool:
    """Cheap: longer than ``mtu`` (a super-packet), or a partial checksum field."""
    return len(packet) > mtu or looks_partial(packet)


def _checksum_ok(packet: bytes | bytearray | memoryview, ihl: int, total: int, proto: int) -> bool:
    segment = bytes(packet[ihl:total])
    if proto == _UDP and segment[6:8] == b"\0\0":
        return True  # RFC 768: no checksum
    pseudo = bytes(packet[12:20]) + bytes((0, proto)) + (total - ihl).to_bytes(2, "big")
    return internet_checksum(pseudo + segment) == 0


def repair_offloaded(packet: bytes | bytearray | memoryview, mtu: int) -> list[bytes]:
    """``packet`` as the wire would carry it: segmented to ``mtu`` (TCP) and with complete
    checksums; ``[packet]`` unchanged when there is nothing to repair or it cannot be (a
    UDP datagram longer than ``mtu``, whose segmentation is the sender's)."""
    h = _header(packet)
    if h is None:
        return [bytes(packet)]
    ihl, total, proto, _field = h
    if proto == _TCP and total > mtu:
        segments = _segment_tcp(bytes(packet[:total]), ihl, mtu)
        if segments is not None:
            return segments
    if looks_partial(packet) and not _checksum_ok(packet, ihl, total, proto):
        buf = bytearray(packet[:total])
        complete_transport_checksum(buf)
        return [bytes(buf)]
    return [bytes(packet)]


def _segment_tcp(packet: bytes, ihl: int, mtu: int) -> list[bytes] | None:
    total = len(packet)
    thl = (packet[ihl + 12] >> 4) * 4
    if thl < 20 or ihl + thl > total:
        return None
    mss = mtu - ihl - thl
    if mss <= 0:
        return None
    ip_head, tcp_head = packet[:ihl], packet[ihl : ihl + thl]
    payload = packet[ihl + thl :]
    seq = int.from_bytes(tcp_head[4:8], "big")
    ident = int.from_bytes(ip_head[4:6], "big")
    flags = tcp_head[13]
    out = []
    n = (len(payload) + mss - 1) // mss
    for i in range(n):
        chunk = payload[i * mss : (i + 1) * mss]
        ip = bytearray(ip_head)
        ip[2:4] = (ihl + thl + len(chunk)).to_bytes(2, "big")
        ip[4:6] = ((ident + i) & 0xFFFF).to_bytes(2, "big")
        set_header_checksum(ip, ihl)
        tcp = bytearray(tcp_head)
        tcp[4:8] = ((seq + i * mss) & 0xFFFFFFFF).to_bytes(4, "big")
        f = flags
        if i < n - 1:
            f &= ~(_FIN | _PSH)
        if i > 0:
            f &= ~_CWR
        tcp[13] = f
        tcp[16:18] = b"\0\0"
        csum = transport_checksum(ip[12:16], ip[16:20], _TCP, bytes(tcp) + chunk)
        tcp[16:18] = csum.to_bytes(2, "big")
        out.append(bytes(ip) + bytes(tcp) + chunk)
    return out


__all__ = ["looks_partial", "needs_repair", "repair_offloaded"]
