"""The baseline: a plain asyncio UDP echo server (the default event loop, no uvloop), run
in the home agent's namespace. It echoes every datagram to its sender."""

from __future__ import annotations

import asyncio
import signal
from typing import cast


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.transport.sendto(data, addr)


async def _serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=(host, port))
    print("ready", flush=True)
    try:
        await stop
    finally:
        transport.close()


def serve(host: str, port: int) -> int:
    asyncio.run(_serve(host, port))
    return 0
