"""The link-source tap's ring reader (issue 13: the link address fields and the usual IPv4
header read in one ``struct`` call each) records, frame for frame, what the reader it
replaced recorded: the earlier reader is kept here as the reference, and both read the
same rings of crafted frames -- IPv4 headers with and without options, malformed header
lengths, outgoing frames, short datagrams and snapshots, link addresses of every length,
frames not yet handed over -- with no namespace needed (the lab test
``test_link_source_ring.py`` reads real frames)."""

from __future__ import annotations

import random
import struct
from typing import Any, cast

import pytest

from mip4.io import linktap
from mip4.io.linktap import (
    _SLL_ADDR,
    _SLL_HALEN,
    _SLL_IFINDEX,
    _SLL_PKTTYPE,
    _TPACKET2,
    TP_STATUS_USER,
    LinkSourceTracker,
    _RxRing,
)
from mip4.io.rawsock import PACKET_OUTGOING

_INT = struct.Struct("=i")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
NET = 80  # where the kernel puts the network header in a TPACKET_V2 slot (SOCK_DGRAM)


def reference_poll(
    ring: _RxRing, table: dict[int, tuple[str, bytes]], names: dict[int, str], limit: int
) -> int:
    """The ring reader as it was before (``LinkSourceTracker._poll_ring`` at ``a89ade0``),
    without the bound on the table."""
    m = ring.map
    size, frames, i = ring.FRAME, ring.frames, ring.next
    unpack = _TPACKET2.unpack_from
    n = 0
    for _ in range(limit):
        off = i * size
        status, length, snap, _mac, net = unpack(m, off)
        if not status & TP_STATUS_USER:
            break
        if m[off + _SLL_PKTTYPE] != PACKET_OUTGOING and length >= 28:
            p = off + net
            hlen = (m[p] & 0xF) * 4
            if snap >= hlen + 2:
                sport = _U16.unpack_from(m, p + hlen)[0]
                index = _INT.unpack_from(m, off + _SLL_IFINDEX)[0]
                name = names[index]
                mac = bytes(m[off + _SLL_ADDR : off + _SLL_ADDR + m[off + _SLL_HALEN]])
                table[_U32.unpack_from(m, p + 12)[0] << 16 | sport] = (name, mac)
                n += 1
        m[off : off + 4] = b"\0\0\0\0"
        i = i + 1 if i + 1 < frames else 0
    ring.next = i
    return n


def _frame(rng: random.Random) -> tuple[int, int, int, int, int, int, bytes, bytes]:
    """status, len, snap, ifindex, pkttype, halen, addr[8], the network bytes."""
    ihl = rng.choice([5, 5, 5, 5, 6, 7, 15, 0, 1, 4])
    length = rng.choice([20, 27, 28, 29, 60, 120, 1400])
    net = bytearray(rng.randbytes(176))
    net[0] = 0x40 | ihl
    snap = min(length, 176) if rng.random() < 0.8 else rng.randrange(0, 176)
    return (
        TP_STATUS_USER if rng.random() < 0.95 else 0,
        length,
        snap,
        rng.choice([1, 2, 7, 1000]),
        rng.choice([0, 0, 0, 1, 2, 3, PACKET_OUTGOING]),
        rng.choice([6, 6, 6, 0, 4, 8]),
        rng.randbytes(8),
        bytes(net),
    )


def _ring(frames: list[Any], slots: int, start: int) -> _RxRing:
    ring = object.__new__(_RxRing)
    m = bytearray(ring.FRAME * slots)
    for k, (status, length, snap, index, pkttype, halen, addr, net) in enumerate(frames):
        off = ((start + k) % slots) * ring.FRAME
        _TPACKET2.pack_into(m, off, status, length, snap, NET, NET)
        _INT.pack_into(m, off + _SLL_IFINDEX, index)
        m[off + _SLL_PKTTYPE] = pkttype
        m[off + _SLL_HALEN] = halen
        m[off + _SLL_ADDR : off + _SLL_ADDR + 8] = addr
        m[off + NET : off + NET + len(net)] = net
    ring.map = cast(Any, m)
    ring.frames, ring.next = slots, start
    return ring


@pytest.mark.parametrize("seed", range(40))
def test_the_ring_reader_records_what_the_reference_records(seed: int) -> None:
    rng = random.Random(seed)
    slots = rng.choice([8, 16, 64])
    frames = [_frame(rng) for _ in range(rng.randrange(1, slots + 1))]
    start = rng.randrange(slots)
    limit = rng.choice([1, 3, slots, 256])
    names = {1: "eth0", 2: "eth1", 7: "veth7", 1000: "x"}
    ours = _ring(frames, slots, start)
    ref = _ring(frames, slots, start)
    tracker = LinkSourceTracker(cast(Any, None), {}, ours, dict(names))
    expected: dict[int, tuple[str, bytes]] = {}
    for _ in range(3):  # repeated: a drained ring records nothing more
        got = tracker._poll_ring(ours, limit)
        want = reference_poll(ref, expected, names, limit)
        assert got == want
        assert tracker.table == expected
        assert ours.next == ref.next
        assert bytes(cast(bytearray, ours.map)) == bytes(cast(bytearray, ref.map))


def test_a_frame_with_options_and_one_without_give_their_own_ports() -> None:
    def net(ihl: int, src: bytes, sport: int) -> bytes:
        head = bytes([0x40 | ihl]) + bytes(11) + src + bytes(4) + bytes(4 * (ihl - 5))
        return head + _U16.pack(sport) + bytes(6)

    frames = [
        (TP_STATUS_USER, 40, 40, 1, 0, 6, b"\x02" * 8, net(5, b"\x0a\x00\x00\x01", 4343)),
        (TP_STATUS_USER, 48, 48, 1, 0, 6, b"\x04" * 8, net(7, b"\x0a\x00\x00\x02", 5000)),
        (
            TP_STATUS_USER,
            48,
            48,
            1,
            PACKET_OUTGOING,
            6,
            b"\x06" * 8,
            net(5, b"\x0a\x00\x00\x03", 1),
        ),
    ]
    ring = _ring(frames, 4, 3)
    tracker = LinkSourceTracker(cast(Any, None), {}, ring, {1: "eth0"})
    assert tracker._poll_ring(ring, 256) == 2
    assert tracker.table == {
        0x0A000001 << 16 | 4343: ("eth0", b"\x02" * 6),
        0x0A000002 << 16 | 5000: ("eth0", b"\x04" * 6),
    }
    assert ring.next == 2  # wrapped: slots 3, 0, 1 read
    assert linktap.TP_STATUS_USER == 1
