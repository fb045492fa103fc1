"""The asyncio RADIUS client against in-process fake servers: answers that fail validation
are dropped and counted, never taken (RFC 2865 §3)."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from ipaddress import IPv4Address
from typing import Any, cast

from mip4.aaa.messages import AaaAnswer, AaaRequest, AaaResult
from mip4.aaa.policy import Policy, RadiusServer
from mip4.io.radius import RadiusClient

from .requests import FA, mn_aaa_rrq

SECRET = b"fake-server-secret"


class FakeServer(asyncio.DatagramProtocol):
    """Answers every request with ``mode``: "forged" (wrong Response Authenticator),
    "wrong-id", "short", or "accept" (a valid empty Access-Accept)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.received = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received += 1
        assert self.transport is not None
        ident, req_auth = data[1], data[4:20]
        if self.mode == "short":
            self.transport.sendto(b"\x02\x00", addr)
            return
        if self.mode == "wrong-id":
            ident = (ident + 1) % 256
        header = struct.pack("!BBH", 2, ident, 20)
        auth = hashlib.md5(header + req_auth + SECRET).digest()
        if self.mode == "forged":
            auth = bytes(16)
        self.transport.sendto(header + auth, addr)


async def _with_fake(mode: str, policy: Policy) -> tuple[AaaAnswer, RadiusClient, FakeServer]:
    loop = asyncio.get_running_loop()
    transport, fake = await loop.create_datagram_endpoint(
        lambda: FakeServer(mode), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    c = RadiusClient([RadiusServer("fake", IPv4Address("127.0.0.1"), port, SECRET)], policy)
    req = AaaRequest.from_registration(
        5, mn_aaa_rrq("mn@x", b"k", b"0123456789abcdef"), nas_address=FA
    )
    try:
        return await c.authenticate(req), c, fake
    finally:
        await c.close()
        transport.close()


def test_invalid_answers_are_counted_and_ignored() -> None:
    for mode in ("forged", "wrong-id", "short"):
        ans, c, fake = asyncio.run(_with_fake(mode, Policy(timeout=0.2, retries=1)))
        assert ans == AaaAnswer(5, AaaResult.TIMEOUT), mode
        cnt = c.counters["fake"]
        assert fake.received == 2, mode  # first transmission + one retransmission
        assert (cnt.requests, cnt.retransmissions, cnt.timeouts) == (1, 1, 2), mode
        assert cnt.bad_answers == 2 and cnt.accepts == 0, mode


def test_valid_answer_is_taken() -> None:
    ans, c, fake = asyncio.run(_with_fake("accept", Policy(timeout=1.0, retries=0)))
    assert ans.result is AaaResult.ACCEPT and ans.server == "fake"
    assert fake.received == 1 and c.counters["fake"].accepts == 1
    assert c.counters_snapshot()["auth"]["fake"]["accepts"] == 1
