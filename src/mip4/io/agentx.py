"""The AgentX subagent on asyncio: serves the Mobile IP MIB to a net-snmp ``snmpd`` master.

Thin by design: :class:`mip4.snmp.session.Subagent` decides every PDU and
:func:`mip4.snmp.mib.view` maps the status snapshot to the MIB; this module owns the Unix
stream socket of the master (``agentXSocket``, default ``/var/agentx/master``), the ping
timer and the reconnection back-off. When ``snmpd`` restarts or closes the session the
subagent reconnects, backing off from ``retry_min`` to ``retry_max`` seconds, and opens and
registers again.

Integration: the daemon hands over one callable that returns its status snapshot (the dict
``mip4 status --json`` prints) and runs :meth:`AgentXSubagent.run` as a task::

    asyncio.create_task(AgentXSubagent(status_snapshot, "/var/agentx/master").run())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any  # Any: the status snapshot is JSON-shaped data (values of any JSON type)

from mip4.snmp.agentx import Oid, VarBind
from mip4.snmp.mib import MibView, view
from mip4.snmp.session import SessionError, SessionState, Subagent

__all__ = ["DEFAULT_SOCKET", "AgentXSubagent"]

DEFAULT_SOCKET = "/var/agentx/master"
log = logging.getLogger("mip4.agentx")


class AgentXSubagent:
    """One subagent, connected (and reconnected) to the master at ``socket_path``."""

    def __init__(
        self,
        snapshot: Callable[[], Mapping[str, Any]],
        socket_path: str = DEFAULT_SOCKET,
        *,
        ping_interval: float = 15.0,
        retry_min: float = 0.2,
        retry_max: float = 5.0,
        max_unanswered_pings: int = 3,
    ) -> None:
        self.snapshot = snapshot
        self.socket_path = socket_path
        self.ping_interval = ping_interval
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.max_unanswered_pings = max_unanswered_pings
        self.session = Subagent()
        self.sessions = 0  # sessions opened and registered so far
        self._registered = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._stopping = False

    def _view(self) -> MibView:
        return view(self.snapshot())

    async def wait_registered(self, timeout: float) -> None:
        """Until a session is open and registered (``TimeoutError`` after ``timeout``)."""
        await asyncio.wait_for(self._registered.wait(), timeout)

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    async def notify(self, trap: Oid, varbinds: tuple[VarBind, ...], uptime: int = 0) -> bool:
        """Send a notification through the master; ``False`` when no session is open."""
        data = self.session.notify(trap, varbinds, uptime)
        if not data or self._writer is None:
            return False
        self._writer.write(data)
        await self._writer.drain()
        return True

    def stop(self) -> None:
        """Close the session and end :meth:`run` (it returns soon after)."""
        self._stopping = True
        if self._writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write(self.session.close())
            self._writer.close()

    async def run(self) -> None:
        """Connect, open, register and serve; reconnect with back-off until stopped."""
        delay = self.retry_min
        while not self._stopping:
            try:
                reader, writer = await asyncio.open_unix_connection(self.socket_path)
            except OSError as e:
                log.debug("agentx.connect_failed %s: %s", self.socket_path, e)
                await asyncio.sleep(delay)
                delay = min(self.retry_max, delay * 2)
                continue
            self._writer = writer
            try:
                await self._serve(reader, writer)
            except (SessionError, OSError, asyncio.IncompleteReadError) as e:
                log.info("agentx.session_lost %s: %s", self.socket_path, e)
            finally:
                self._registered.clear()
                self._writer = None
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            if self.sessions:
                delay = self.retry_min  # it worked before: retry promptly
            if not self._stopping:
                await asyncio.sleep(delay)
                delay = min(self.retry_max, delay * 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.session.start())
        await writer.drain()
        while not self._stopping:
            try:
                data = await asyncio.wait_for(reader.read(65536), self.ping_interval)
            except TimeoutError:
                if self.session.pings_unanswered >= self.max_unanswered_pings:
                    raise SessionError("the master stopped answering pings") from None
                writer.write(self.session.ping())
                await writer.drain()
                continue
            if not data:
                raise SessionError("the master closed the connection")
            out = self.session.receive(data, self._view)
            while self.session.view_errors:
                log.error("agentx.snapshot_failed %s", self.session.view_errors.pop(0))
            if out:
                writer.write(out)
                await writer.drain()
            if self.session.state is SessionState.OPEN and not self._registered.is_set():
                self.sessions += 1
                self._registered.set()
                log.info(
                    "agentx.registered %s session %d",
                    self.socket_path,
                    self.session.session_id,
                )
