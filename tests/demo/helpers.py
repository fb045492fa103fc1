"""Loopback-only helpers for the demo instrument tests: run an instrument as a subprocess
and read its JSON events; a TCP proxy that corrupts, freezes or aborts a stream.

Everything binds and connects to 127.0.0.1 only, and every loop is bounded in time.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

LOOPBACK = "127.0.0.1"


class Instrument:
    """``python -m mip4.demo.<module> *args`` with its stdout events."""

    def __init__(self, module: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"mip4.demo.{module}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []

    def next_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """Read events until one of ``kind`` (bounded by ``timeout``)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            event: dict[str, Any] = json.loads(line)
            self.events.append(event)
            if event["event"] == kind:
                return event
        self.kill()
        raise AssertionError(f"no {kind!r} event within {timeout} s; got {self.events}")

    def report(self, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
        """Wait for the exit (bounded); the exit status and the ``report`` event."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        for line in out.splitlines():
            self.events.append(json.loads(line))
        reports = [e for e in self.events if e["event"] == "report"]
        assert reports, f"no report; stderr:\n{err}"
        return self.proc.returncode, reports[-1]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class Proxy(threading.Thread):
    """A one-connection TCP proxy on loopback between a client and ``upstream_port``.

    ``flip_at``: XOR one byte of the client → server direction at that offset.
    ``abort_after``: once that many client → server bytes passed, close both sockets with
    SO_LINGER 0 (an RST to each end).
    ``freeze_after`` / ``freeze_for``: once that many client → server bytes passed, stop
    forwarding in both directions for ``freeze_for`` seconds (a link outage), then resume.
    The proxy gives up after ``lifetime`` seconds whatever happens."""

    def __init__(
        self,
        upstream_port: int,
        *,
        flip_at: int | None = None,
        abort_after: int | None = None,
        freeze_after: int | None = None,
        freeze_for: float = 0.0,
        lifetime: float = 30.0,
    ) -> None:
        super().__init__(daemon=True)
        self.upstream_port = upstream_port
        self.flip_at = flip_at
        self.abort_after = abort_after
        self.freeze_after = freeze_after
        self.freeze_for = freeze_for
        self.lifetime = lifetime
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(1)
        self.port: int = self.listener.getsockname()[1]
        self.c2s = 0
        self.frozen_until = 0.0
        self.aborted = False
        self.froze = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc
        finally:
            self.listener.close()

    def _run(self) -> None:
        deadline = time.monotonic() + self.lifetime
        self.listener.settimeout(self.lifetime)
        client, _ = self.listener.accept()
        server = socket.create_connection((LOOPBACK, self.upstream_port), timeout=5)
        for s in (client, server):
            s.settimeout(10)
        peer = {client: server, server: client}
        open_ = {client, server}
        try:
            while open_ and time.monotonic() < deadline:
                if time.monotonic() < self.frozen_until:
                    time.sleep(0.005)
                    continue
                ready, _, _ = select.select(list(open_), [], [], 0.1)
                for src in ready:
                    data = src.recv(65536)
                    dst = peer[src]
                    if not data:
                        open_.discard(src)
                        dst.shutdown(socket.SHUT_WR)
                        continue
                    if src is client:
                        data = self._client_data(data)
                    dst.sendall(data)
                    if src is client:
                        self.c2s += len(data)
                        if self.abort_after is not None and self.c2s >= self.abort_after:
                            self.aborted = True
                            for s in (client, server):
                                s.setsockopt(
                                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                                )
                            return
                        if (
                            self.freeze_after is not None
                            and not self.froze
                            and self.c2s >= self.freeze_after
                        ):
                            self.froze = True
                            time.sleep(self.freeze_for)
        finally:
            client.close()
            server.close()

    def freeze(self, seconds: float) -> None:
        """Stop forwarding for ``seconds`` from now (a link outage)."""
        self.froze = True
        self.frozen_until = time.monotonic() + seconds

    def _client_data(self, data: bytes) -> bytes:
        if self.flip_at is not None and self.c2s <= self.flip_at < self.c2s + len(data):
            i = self.flip_at - self.c2s
            data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1 :]
        return data


class UdpRelay(threading.Thread):
    """Forwards datagrams from its port to ``upstream_port`` and the replies back, and drops
    everything while frozen; gives up after ``lifetime`` seconds."""

    def __init__(self, upstream_port: int, lifetime: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((LOOPBACK, 0))
        self.port: int = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect((LOOPBACK, upstream_port))
        self.lifetime = lifetime
        self.frozen_until = 0.0
        self.dropped = 0
        self.stopped = threading.Event()

    def freeze(self, seconds: float) -> None:
        self.frozen_until = time.monotonic() + seconds

    def run(self) -> None:
        deadline = time.monotonic() + self.lifetime
        client: tuple[str, int] | None = None
        try:
            while time.monotonic() < deadline and not self.stopped.is_set():
                ready, _, _ = select.select([self.front, self.back], [], [], 0.05)
                for sock in ready:
                    try:
                        data, addr = sock.recvfrom(4096)
                    except OSError:
                        continue
                    if time.monotonic() < self.frozen_until:
                        self.dropped += 1
                        continue
                    if sock is self.front:
                        client = addr
                        self.back.send(data)
                    elif client is not None:
                        self.front.sendto(data, client)
        finally:
            self.front.close()
            self.back.close()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nobody uses right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port
