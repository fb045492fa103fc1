"""The UDP 434 socket's fast paths (issue 13: a home agent's CPU per registration) against
the code they replaced: events built without the frozen constructor, addresses taken from a
bounded table instead of parsed per datagram, the interface name asked once per index per
batch, the link-source tap drained once per batch, and ``send_udp``'s control messages and
destination string built once per value. Traffic goes over loopback only."""

from __future__ import annotations

import dataclasses
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address

import pytest

from mip4.core.events import UdpReceived, udp_received
from mip4.io import rawsock
from mip4.io.rawsock import (
    IP_PKTINFO,
    IP_TTL,
    PKTINFO,
    if_name,
    open_udp_control,
    recv_udp,
    send_udp,
)
from mip4.wire.addr import ipv4_from_bytes

LO = IPv4Address("127.0.0.1")


def _reference_recv_udp(
    sock: socket.socket,
    *,
    link_src_of: Callable[[IPv4Address, int], bytes | None] | None = None,
    limit: int = 64,
) -> list[UdpReceived]:
    """``recv_udp`` as it was before the fast paths (one event per datagram, built with the
    constructor, the source parsed, the name and the link source asked per datagram)."""
    dport = sock.getsockname()[1]
    cmsg_space = socket.CMSG_SPACE(PKTINFO.size) + socket.CMSG_SPACE(4)
    out: list[UdpReceived] = []
    for _ in range(limit):
        try:
            data, anc, _flags, addr = sock.recvmsg(65535, cmsg_space)
        except BlockingIOError:
            break
        ifindex, dst, ttl = 0, b"\0\0\0\0", 0
        for level, kind, cdata in anc:
            if level != socket.IPPROTO_IP:
                continue
            if kind == IP_PKTINFO:
                ifindex, _spec, dst = PKTINFO.unpack_from(cdata)
            elif kind == IP_TTL:
                ttl = struct.unpack_from("=i", cdata)[0]
        src = IPv4Address(addr[0])
        out.append(
            UdpReceived(
                payload=data,
                src=src,
                dst=ipv4_from_bytes(dst),
                sport=addr[1],
                dport=dport,
                interface=if_name(sock, ifindex) if ifindex else "",
                link_src=link_src_of(src, addr[1]) if link_src_of else None,
                ttl=ttl,
            )
        )
    return out


def _reference_ancillary(
    src: IPv4Address | None, ifindex: int, ttl: int | None
) -> list[tuple[int, int, bytes]]:
    anc: list[tuple[int, int, bytes]] = []
    if src is not None or ifindex:
        spec = (src or IPv4Address(0)).packed
        anc.append((socket.IPPROTO_IP, IP_PKTINFO, PKTINFO.pack(ifindex, spec, b"\0" * 4)))
    if ttl is not None:
        anc.append((socket.IPPROTO_IP, IP_TTL, struct.pack("=i", ttl)))
    return anc


def _wait_readable(sock: socket.socket) -> None:
    assert select.select([sock], [], [], 3)[0], "nothing arrived on loopback"
    time.sleep(0.05)  # the rest of the burst


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    rx = open_udp_control(address=LO, port=0)
    tx = open_udp_control(address=LO, port=0)
    yield rx, tx
    rx.close()
    tx.close()


def test_udp_received_fast_constructor_equals_the_dataclass() -> None:
    args = (b"x", IPv4Address("10.0.0.5"), IPv4Address("10.0.0.1"), 4321, 434, "eth0")
    fast = udp_received(*args, b"\x02" * 6, 7)
    slow = UdpReceived(*args, b"\x02" * 6, ttl=7)
    assert fast == slow
    assert vars(fast) == vars(slow)
    # every field of the dataclass is set: a field added to UdpReceived fails here
    assert set(vars(fast)) == {f.name for f in dataclasses.fields(UdpReceived)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.ttl = 1  # type: ignore[misc]


def test_address_table_gives_the_parsed_address_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rawsock, "_ADDRESSES", {})
    monkeypatch.setattr(rawsock, "_ADDRESSES_MAX", 8)
    for i in range(40):
        text = f"198.18.{i}.{255 - i}"
        a = rawsock._address(text)
        assert a == IPv4Address(text) and str(a) == text
        assert rawsock._address(IPv4Address(text).packed) == IPv4Address(text)
        assert rawsock._address(text) is rawsock._address(text)
        assert len(rawsock._ADDRESSES) <= 8


@pytest.mark.parametrize("src", [None, IPv4Address(0), IPv4Address("10.1.2.3")])
@pytest.mark.parametrize("ifindex", [0, 3])
@pytest.mark.parametrize("ttl", [None, 1, 64, 255])
def test_send_udp_control_messages_are_the_ones_built_per_datagram(
    src: IPv4Address | None, ifindex: int, ttl: int | None
) -> None:
    assert rawsock._ancillary(src, ifindex, ttl) == _reference_ancillary(src, ifindex, ttl)
    assert rawsock._ancillary(src, ifindex, ttl) == _reference_ancillary(src, ifindex, ttl)


def test_recv_udp_batch_equals_the_per_datagram_reading(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    port = rx.getsockname()[1]
    payloads = [b"one", b"two", b"three", b"four"]
    sport = tx.getsockname()[1]
    macs = {(LO, sport): b"\x02\x00\x00\x00\x00\x01"}
    # the same burst twice: once read by the code before, once by recv_udp
    for p in payloads:
        send_udp(tx, p, LO, port, src=LO, ttl=9)
    _wait_readable(rx)
    before = _reference_recv_udp(rx, link_src_of=lambda s, p: macs.get((s, p)))
    calls: list[str] = []

    def after_read() -> None:
        calls.append("after_read")

    def link_src_of(s: IPv4Address, p: int) -> bytes | None:
        calls.append("link_src_of")
        return macs.get((s, p))

    def ifname_of(index: int) -> str:
        calls.append("ifname_of")
        return if_name(rx, index)

    for p in payloads:
        send_udp(tx, p, LO, port, src=LO, ttl=9)
    _wait_readable(rx)
    after = recv_udp(rx, link_src_of=link_src_of, after_read=after_read, ifname_of=ifname_of)
    assert [vars(e) for e in after] == [vars(e) for e in before]
    assert [e.payload for e in after] == payloads
    assert {(e.ttl, e.interface, e.link_src) for e in after} == {(9, "lo", macs[(LO, sport)])}
    # the tap is drained once, after every datagram of the batch was read and before the
    # first link-source lookup; the interface name is asked once for the batch
    assert calls == ["after_read", "ifname_of"] + ["link_src_of"] * 4
    # nothing read, nothing drained
    calls.clear()
    assert recv_udp(rx, link_src_of=link_src_of, after_read=after_read) == []
    assert calls == []


def test_send_udp_reaches_the_destination_with_its_source_and_ttl(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    port = rx.getsockname()[1]
    for ttl in (3, 3, 200):
        send_udp(tx, b"p%d" % ttl, LO, port, src=LO, ttl=ttl)
    _wait_readable(rx)
    got = recv_udp(rx)
    assert [(e.payload, e.ttl, e.src, e.dst) for e in got] == [
        (b"p3", 3, LO, LO),
        (b"p3", 3, LO, LO),
        (b"p200", 200, LO, LO),
    ]


def test_recv_udp_with_the_port_given_does_not_ask_the_socket(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    port = rx.getsockname()[1]
    send_udp(tx, b"x", LO, port)
    _wait_readable(rx)

    class NoGetsockname:
        """The socket, less ``getsockname``."""

        def __init__(self, sock: socket.socket) -> None:
            self.recvmsg = sock.recvmsg
            self.fileno = sock.fileno

        def getsockname(self) -> object:
            raise AssertionError("asked for the port it was given")

    (got,) = recv_udp(NoGetsockname(rx), dport=port)  # type: ignore[arg-type]
    assert (got.payload, got.dport) == (b"x", port)
