"""The control socket: an AF_UNIX stream socket, one JSON request per line, one JSON
response per line, then the daemon closes the connection.

::

    -> {"command": "status"}
    <- {"ok": true, "status": {...}}
    -> {"command": "ping"}
    <- {"ok": true, "pong": 1234}
    -> {"command": "nonsense"}
    <- {"ok": false, "error": "unknown command 'nonsense' (known: ping, status)"}

:class:`ControlServer` runs on the daemon's asyncio loop and answers from a table of
handlers (``command -> () -> dict``), so nothing but the loop's thread ever reads engine
state. :func:`request` is the blocking client used by ``mip4 status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .logs import log

#: Longest request line accepted.
MAX_REQUEST = 4096

Handler = Callable[[], dict[str, Any]]


class ControlError(RuntimeError):
    """The control socket cannot be used (in use by a live daemon, not a socket...)."""


def socket_alive(path: Path, timeout: float = 1.0) -> bool:
    """Whether a process accepts connections on the Unix socket at ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError:
        return False
    else:
        return True
    finally:
        s.close()


def claim_path(path: Path) -> None:
    """Make ``path`` free for a new socket: create its directory, remove a stale socket
    left by a crashed daemon; refuse when a live daemon answers there or when the path is
    something other than a socket."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(f"{path} exists and is not a socket")
    if socket_alive(path):
        raise ControlError(f"{path}: another daemon is running and answers there")
    path.unlink()
    log.info(
        "removed stale control socket",
        extra={"event": "daemon.stale_socket", "fields": {"path": str(path)}},
    )


class ControlServer:
    """Serves ``handlers`` on ``path`` (an AF_UNIX socket) on the running loop."""

    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = path
        self.handlers = dict(handlers)
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        claim_path(self.path)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_REQUEST * 2
        )
        self._inode = self.path.stat().st_ino
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o660)

    def answer(self, line: bytes) -> dict[str, Any]:
        """The response to one request line."""
        try:
            req = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return {"ok": False, "error": f"not JSON: {e}"}
        if not isinstance(req, dict) or not isinstance(req.get("command"), str):
            return {"ok": False, "error": 'expected {"command": "..."}'}
        name = req["command"]
        handler = self.handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            return {"ok": False, "error": f"unknown command {name!r} (known: {known})"}
        try:
            return {"ok": True, **handler()}
        except Exception as e:  # a broken handler must not take the daemon down
            log.exception("control command %s failed", name)
            return {"ok": False, "error": f"{name} failed: {e!r}"}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            if len(line) > MAX_REQUEST:
                reply: dict[str, Any] = {"ok": False, "error": "request too long"}
            else:
                reply = self.answer(line.strip())
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        # remove the path only if it is still ours (not a successor's)
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.stat().st_ino == self._inode:
                self.path.unlink()


def request(path: Path | str, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send ``{"command": command}`` to the daemon at ``path`` and return its answer.
    ``OSError`` when nobody answers; ``ValueError`` for an answer that is not JSON."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
        s.sendall(json.dumps({"command": command}).encode() + b"\n")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                break
    finally:
        s.close()
    data = b"".join(chunks)
    if not data:
        raise OSError(errno.ECONNRESET, f"{path}: no answer")
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ValueError(f"{path}: answer is not a JSON object")
    return answer
