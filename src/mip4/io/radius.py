"""The RADIUS client on asyncio: pyrad builds and checks packets, :mod:`mip4.aaa` decides.

Thin by design: :class:`mip4.aaa.policy.Exchange` says when to transmit, retransmit, fail
over and give up; :mod:`mip4.aaa.attributes` maps typed messages to attributes and back;
this module owns the UDP sockets (one per server and port), the packet identifiers, and the
timers (``loop.time()`` fed to the exchange as ``now``). Answers whose Response Authenticator
or Message-Authenticator do not check are dropped and counted (RFC 2865 §3). Secrets never
leave the :class:`~mip4.aaa.policy.RadiusServer` objects: nothing here logs packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast  # Any: pyrad (packets, dictionary, futures of packets) has no types

from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from mip4.aaa.attributes import (
    Attributes,
    access_request_attributes,
    accounting_attributes,
    authorization_from_attributes,
    reply_message,
)
from mip4.aaa.messages import (
    AaaAnswer,
    AaaRequest,
    AaaResult,
    AccountingAnswer,
    AccountingRecord,
)
from mip4.aaa.policy import (
    Answer,
    Exchange,
    GiveUp,
    Policy,
    RadiusServer,
    ServerCounters,
    Transmit,
)

log = logging.getLogger(__name__)


def load_dictionary() -> Any:
    """mip4's client dictionary (``mip4/data/radius-dictionary``) as a pyrad Dictionary."""
    path = resources.files("mip4") / "data" / "radius-dictionary"
    with resources.as_file(path) as p:
        return Dictionary(str(p))


class _Endpoint(asyncio.DatagramProtocol):
    """One connected UDP socket to one server port; hands datagrams to the client."""

    def __init__(self, client: RadiusClient, key: tuple[int, bool]) -> None:
        self.client = client
        self.key = key
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.client._received(self.key, data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the timer handles the silence
        log.debug("radius.socket_error", extra={"error": type(exc).__name__})


@dataclass
class _Pending:
    packet: Any
    future: asyncio.Future[Any]


class RadiusClient:
    """Authentication and accounting against the configured servers, in order.

    ``servers`` are tried in order for each request (:class:`~mip4.aaa.policy.Exchange`);
    accounting goes to each server's :attr:`~mip4.aaa.policy.RadiusServer.accounting_port`.

    The engines' side: :meth:`perform` takes an :class:`~mip4.aaa.messages.AaaRequest` or
    :class:`~mip4.aaa.messages.AccountingRecord` action and returns the event to feed back."""

    def __init__(
        self,
        servers: Sequence[RadiusServer],
        policy: Policy | None = None,
        *,
        dictionary: Any = None,
    ) -> None:
        if not servers:
            raise ValueError("no RADIUS server configured")
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"RADIUS server names must be unique: {names}")
        self.servers = list(servers)
        self.policy = policy or Policy()
        self.dictionary = dictionary if dictionary is not None else load_dictionary()
        #: per-server counters, authentication and accounting apart
        self.counters: dict[str, ServerCounters] = {}
        self.acct_counters: dict[str, ServerCounters] = {}
        self._endpoints: dict[tuple[int, bool], _Endpoint] = {}
        self._ids: dict[tuple[int, bool], itertools.cycle[int]] = {}
        self._pending: dict[tuple[int, bool, int], _Pending] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"RadiusClient(servers={self.servers!r}, policy={self.policy!r})"

    async def close(self) -> None:
        for ep in self._endpoints.values():
            if ep.transport is not None:
                ep.transport.close()
        self._endpoints.clear()
        for p in self._pending.values():
            p.future.cancel()
        self._pending.clear()

    async def _endpoint(self, key: tuple[int, bool]) -> _Endpoint:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # sockets belong to one event loop: start afresh
            for old in self._endpoints.values():
                if old.transport is not None:
                    with contextlib.suppress(RuntimeError):  # that loop may be closed
                        old.transport.close()
            self._endpoints.clear()
            self._loop = loop
        ep = self._endpoints.get(key)
        if ep is None:
            server = self.servers[key[0]]
            port = server.accounting_port if key[1] else server.port
            _, ep = await loop.create_datagram_endpoint(
                lambda: _Endpoint(self, key), remote_addr=(str(server.address), port)
            )
            self._endpoints[key] = ep
            self._ids[key] = itertools.cycle(range(256))
        return ep

    def _next_id(self, key: tuple[int, bool]) -> int:
        for _ in range(256):
            ident = next(self._ids[key])
            if (key[0], key[1], ident) not in self._pending:
                return ident
        raise RuntimeError("256 RADIUS requests outstanding to one server port")

    def _received(self, key: tuple[int, bool], data: bytes) -> None:
        if len(data) < 20:
            self._bad(key)
            return
        pending = self._pending.get((key[0], key[1], data[1]))
        if pending is None or pending.future.done():
            self._bad(key)
            return
        try:
            reply = pending.packet.CreateReply(packet=data)
            # salt-encrypted attributes (RFC 2868 §3.5: the MN-HA key) are decrypted with
            # the Request Authenticator; pyrad uses this field of the reply for that
            reply.request_authenticator = pending.packet.authenticator
            ok = pending.packet.VerifyReply(reply, data)
        except Exception:  # pyrad raises PacketError, KeyError, struct.error...
            ok = False
        if not ok:
            self._bad(key)
            return
        pending.future.set_result(reply)

    def _bad(self, key: tuple[int, bool]) -> None:
        counters = self.acct_counters if key[1] else self.counters
        counters.setdefault(self.servers[key[0]].name, ServerCounters()).bad_answers += 1

    def _build(self, server: RadiusServer, acct: bool, ident: int, attrs: Attributes) -> Any:
        if acct:
            pkt = rpacket.AcctPacket(
                code=rpacket.AccountingRequest, id=ident, secret=server.secret, dict=self.dictionary
            )
        else:
            pkt = rpacket.AuthPacket(
                code=rpacket.AccessRequest,
                id=ident,
                secret=server.secret,
                dict=self.dictionary,
                message_authenticator=True,
            )
        for name, value in attrs:
            pkt.AddAttribute(name, value)
        return pkt

    async def _exchange(self, attrs: Attributes, acct: bool) -> tuple[Any, int] | None:
        """Run one exchange; the verified reply packet and the server index, or ``None``."""
        loop = asyncio.get_running_loop()
        counters = self.acct_counters if acct else self.counters
        ex = Exchange([s.name for s in self.servers], self.policy, counters)
        step: Transmit | GiveUp | None = ex.start(loop.time())
        raw = b""
        current: _Pending | None = None
        mine: dict[tuple[int, bool, int], _Pending] = {}
        try:
            while True:
                if isinstance(step, GiveUp):
                    return None
                if isinstance(step, Transmit):
                    key = (step.server, acct)
                    ep = await self._endpoint(key)
                    if step.fresh:
                        ident = self._next_id(key)
                        pkt = self._build(self.servers[step.server], acct, ident, attrs)
                        raw = pkt.RequestPacket()
                        current = _Pending(pkt, loop.create_future())
                        mine[(step.server, acct, ident)] = current
                        self._pending[(step.server, acct, ident)] = current
                    assert ep.transport is not None
                    ep.transport.sendto(raw)
                deadline = ex.next_deadline()
                assert deadline is not None and current is not None
                futures = {p.future for p in mine.values()}
                done, _ = await asyncio.wait(
                    futures,
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for k, p in mine.items():
                    if p.future in done:
                        reply = p.future.result()
                        kind = (
                            Answer.REJECT if reply.code == rpacket.AccessReject else Answer.ACCEPT
                        )
                        if ex.handle_answer(k[0], kind, loop.time()):
                            return reply, k[0]
                step = ex.handle_timer(loop.time())
        finally:
            for k in mine:
                left = self._pending.get(k)
                if left is None:
                    continue
                del self._pending[k]
                if not left.future.done():
                    left.future.cancel()

    async def authenticate(self, req: AaaRequest) -> AaaAnswer:
        """Access-Request for ``req``; the answer the engine gets as an event."""
        got = await self._exchange(access_request_attributes(req), acct=False)
        if got is None:
            return AaaAnswer(req.request_id, AaaResult.TIMEOUT)
        reply, index = got
        # pyrad's keys() gives attribute names (iterating gives the raw codes)
        names = [n for n in reply.keys() if isinstance(n, str)]  # noqa: SIM118
        values = {n: list(reply[n]) for n in names}
        name = self.servers[index].name
        if reply.code == rpacket.AccessAccept:
            try:
                authz = authorization_from_attributes(values)
            except ValueError as exc:
                log.warning("aaa.bad_accept", extra={"server": name, "error": str(exc)})
                return AaaAnswer(req.request_id, AaaResult.REJECT, server=name)
            return AaaAnswer(req.request_id, AaaResult.ACCEPT, authz, name, reply_message(values))
        return AaaAnswer(req.request_id, AaaResult.REJECT, None, name, reply_message(values))

    async def account(self, rec: AccountingRecord) -> AccountingAnswer:
        """Accounting-Request for ``rec`` (RFC 2866)."""
        got = await self._exchange(accounting_attributes(rec), acct=True)
        if got is None:
            return AccountingAnswer(rec.request_id, False)
        return AccountingAnswer(rec.request_id, True, self.servers[got[1]].name)

    async def perform(self, action: AaaRequest | AccountingRecord) -> AaaAnswer | AccountingAnswer:
        """Carry out one AAA action of an engine; the result is the event to feed it."""
        if isinstance(action, AaaRequest):
            return await self.authenticate(action)
        return await self.account(action)

    def counters_snapshot(self) -> dict[str, dict[str, dict[str, float | int | None]]]:
        """Per-server counters for ``mip4 status`` (no secrets)."""
        return {
            "auth": {name: c.as_dict() for name, c in self.counters.items()},
            "acct": {name: c.as_dict() for name, c in self.acct_counters.items()},
        }
