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
import dataclasses
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from ipaddress import IPv4Address
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
    AcctStatus,
    DisconnectRequest,
    TerminateCause,
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
        nas_identifier: str | None = None,
    ) -> None:
        if not servers:
            raise ValueError("no RADIUS server configured")
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"RADIUS server names must be unique: {names}")
        self.servers = list(servers)
        self.policy = policy or Policy()
        self.dictionary = dictionary if dictionary is not None else load_dictionary()
        #: NAS-Identifier (RFC 2865 §5.32) added to every request, when set
        self.nas_identifier = nas_identifier
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
        if self.nas_identifier is not None:
            pkt.AddAttribute("NAS-Identifier", self.nas_identifier)
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
        attrs = accounting_attributes(rec)
        got = await self._exchange(attrs, acct=True)
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


#: A visitor's tunnelled traffic as the data plane counts it, cumulative:
#: (input octets, output octets, input packets, output packets); input = from the mobile
#: node (RFC 2866 §5.3), output = delivered to it.
Traffic = tuple[int, int, int, int]

#: RFC 2866 §5.10 Acct-Terminate-Cause 7, Admin-Reboot: "Administrator is ending service
#: on the NAS, for example prior to rebooting the NAS". A clean stop (SIGTERM, SIGINT) is
#: an administrator's act; NAS-Reboot (11) is for a "non-administrative reboot" (a crash),
#: after which there is no process left to say so.
ACCT_TERMINATE_ADMIN_REBOOT = TerminateCause.ADMIN_REBOOT
#: Longest wait at shutdown for the Stop records of the open sessions, seconds.
SHUTDOWN_STOP_CAP = 5.0


@dataclass
class _Session:
    """An accounting session the shell saw start and not yet stop."""

    start: AccountingRecord
    #: the shell's clock at the Start
    started: float


class AaaShell:
    """Carries out an engine's AAA actions on the running loop and feeds the answers back.

    The engines stay sans-IO (STYLE.md practice 2): an :class:`AaaRequest` or
    :class:`AccountingRecord` action is handed to :meth:`execute`, which starts a task on
    the loop; the task runs the RADIUS exchange (:meth:`RadiusClient.perform`:
    retransmissions and failover included) and gives the resulting :class:`AaaAnswer` or
    :class:`AccountingAnswer` to ``feed`` (the driver's :meth:`EngineDriver.feed`), so the
    engine sees the answer as one more event. Nothing here blocks the loop.

    Accounting records leave the engine without traffic counts (the engine does not see
    the data plane): ``traffic(home_address)`` gives the data plane's cumulative counters
    for the visitor; the counts at the session's Start are its baseline, and Interim and
    Stop records carry the difference, so a session counts only its own packets even when
    the counters outlive it. Without ``traffic`` the counts stay 0. The engine's Stop of a
    deregistration follows its ``RemoveVisitor``: :meth:`visitor_leaving` (called by the
    daemon's executor before it removes a visitor) keeps the counts of that moment, used
    when the plane has forgotten or restarted the visitor's counters by the time the Stop
    is built.

    Open sessions (a Start seen, no Stop yet) are remembered with their Start record: at a
    clean shutdown :meth:`stop_sessions` sends each a Stop with its final counts and
    Acct-Terminate-Cause Admin-Reboot (:attr:`TerminateCause.ADMIN_REBOOT`), waiting a
    bounded time; the engine is not involved (its driver is already stopped).

    A failure inside an exchange (a bug, a socket error) is logged and counted, and the
    engine gets the answer it would get for silence (``TIMEOUT``, ``ok=False``): a held
    request is never left waiting."""

    def __init__(
        self,
        client: RadiusClient,
        feed: Callable[[AaaAnswer | AccountingAnswer], object],
        *,
        traffic: Callable[[IPv4Address], Traffic | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.feed = feed
        self.traffic = traffic
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._baselines: dict[str, Traffic] = {}
        #: open sessions by Acct-Session-Id
        self.sessions: dict[str, _Session] = {}
        #: counts at the moment a visitor was removed, by home address (see the class doc)
        self._leaving: dict[IPv4Address, Traffic] = {}

    @staticmethod
    def handles(action: object) -> bool:
        """Whether ``action`` is one of the AAA actions this shell carries out."""
        return isinstance(action, AaaRequest | AccountingRecord)

    def execute(self, action: AaaRequest | AccountingRecord) -> None:
        if isinstance(action, AccountingRecord):
            action = self.with_traffic(action)
            self.stats[f"accounting_{action.status.name.lower()}"] += 1
        else:
            self.stats["access_requests"] += 1
        task = asyncio.get_running_loop().create_task(self._perform(action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def with_traffic(self, rec: AccountingRecord) -> AccountingRecord:
        """``rec`` with the session's traffic so far (see the class docstring)."""
        counts = self.traffic(rec.home_address) if self.traffic is not None else None
        if rec.status is AcctStatus.START:
            self._baselines[rec.session_id] = counts or (0, 0, 0, 0)
            self.sessions[rec.session_id] = _Session(rec, self.clock())
            self._leaving.pop(rec.home_address, None)
            return rec
        base = self._baselines.get(rec.session_id, (0, 0, 0, 0))
        if rec.status is AcctStatus.STOP:
            self._baselines.pop(rec.session_id, None)
            self.sessions.pop(rec.session_id, None)
            left = self._leaving.pop(rec.home_address, None)
            if left is not None and (
                counts is None or any(now < then for now, then in zip(counts, left, strict=True))
            ):
                counts = left  # the plane forgot (or restarted) the visitor's counters
        if counts is None:
            return rec
        # counters that went backwards (the data plane restarted) count from zero again
        d = [now - b if now >= b else now for now, b in zip(counts, base, strict=True)]
        return dataclasses.replace(
            rec,
            input_octets=d[0],
            output_octets=d[1],
            input_packets=d[2],
            output_packets=d[3],
        )

    def visitor_leaving(self, home: IPv4Address) -> None:
        """The visitor ``home`` is about to be removed from the data plane: keep its counts
        for the Stop of its session (only when a session of it is open)."""
        if self.traffic is None or not any(
            s.start.home_address == home for s in self.sessions.values()
        ):
            return
        counts = self.traffic(home)
        if counts is not None:
            self._leaving[home] = counts

    def session_traffic(self, session_id: str) -> Traffic | None:
        """The counts an Interim-Update of ``session_id`` would carry now."""
        session = self.sessions.get(session_id)
        if session is None:
            return None
        rec = self.with_traffic(
            dataclasses.replace(session.start, status=AcctStatus.INTERIM_UPDATE)
        )
        return (rec.input_octets, rec.output_octets, rec.input_packets, rec.output_packets)

    def shutdown_wait(self) -> float:
        """How long :meth:`stop_sessions` waits: one server's whole exchange (the first
        transmission and the retries, RFC 5080 §2.2.1), capped at
        :data:`SHUTDOWN_STOP_CAP`."""
        policy = self.client.policy
        return min(SHUTDOWN_STOP_CAP, policy.timeout * (policy.retries + 1))

    async def stop_sessions(self, wait: float | None = None) -> int:
        """A clean shutdown: an Accounting-Request Stop for every open session, with its
        final counts and Acct-Terminate-Cause Admin-Reboot (RFC 2866 §5.10,
        :attr:`TerminateCause.ADMIN_REBOOT`), all sent at once; waits up to ``wait``
        seconds (default :meth:`shutdown_wait`) for the answers. Returns how many were
        answered. The engine is not told (it is stopping too)."""
        if not self.sessions:
            return 0
        now = self.clock()
        records = []
        for session in list(self.sessions.values()):
            stop = dataclasses.replace(
                session.start,
                status=AcctStatus.STOP,
                session_time=session.start.session_time + int(now - session.started),
                terminate_cause=TerminateCause.ADMIN_REBOOT,
            )
            records.append(self.with_traffic(stop))
        self.stats["accounting_stop_shutdown"] += len(records)
        log.info("aaa.shutdown_stops", extra={"sessions": len(records)})
        tasks = [asyncio.ensure_future(self.client.account(rec)) for rec in records]
        done, pending = await asyncio.wait(
            tasks, timeout=self.shutdown_wait() if wait is None else wait
        )
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        answered = sum(
            1 for t in done if not t.cancelled() and t.exception() is None and t.result().ok
        )
        self.stats["accounting_stop_shutdown_answered"] += answered
        return answered

    async def _perform(self, action: AaaRequest | AccountingRecord) -> None:
        event: AaaAnswer | AccountingAnswer
        try:
            event = await self.client.perform(action)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never leave the engine waiting
            self.stats["errors"] += 1
            log.error("aaa.exchange_failed", extra={"error": type(exc).__name__})
            if isinstance(action, AaaRequest):
                event = AaaAnswer(action.request_id, AaaResult.TIMEOUT)
            else:
                event = AccountingAnswer(action.request_id, False)
        self.feed(event)

    @property
    def outstanding(self) -> int:
        """Exchanges under way."""
        return len(self._tasks)

    async def close(self, flush: float = 0.0) -> None:
        """Wait up to ``flush`` seconds for the exchanges under way (accounting Stop
        records at shutdown), cancel the rest, close the sockets."""
        if self._tasks and flush > 0:
            await asyncio.wait(set(self._tasks), timeout=flush)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()

    def snapshot(self) -> dict[str, object]:
        """For ``mip4 status``: servers by name (never a secret), their counters, the
        shell's own counts."""
        return {
            "servers": [
                {
                    "name": s.name,
                    "address": str(s.address),
                    "port": s.port,
                    "acct_port": s.accounting_port,
                }
                for s in self.client.servers
            ],
            **self.client.counters_snapshot(),
            "outstanding": self.outstanding,
            "stats": dict(self.stats),
            "sessions": [self._session_snapshot(sid, s) for sid, s in self.sessions.items()],
        }

    def _session_snapshot(self, session_id: str, session: _Session) -> dict[str, object]:
        """One open accounting session: who, and the counts an Interim-Update would carry
        now (``traffic``, since the Start) next to the data plane's cumulative counters
        (``plane``)."""
        start = session.start
        names = ("input_octets", "output_octets", "input_packets", "output_packets")
        since = self.session_traffic(session_id)
        plane = self.traffic(start.home_address) if self.traffic is not None else None
        return {
            "session_id": session_id,
            "nai": start.nai,
            "home_address": str(start.home_address),
            "care_of_address": str(start.care_of_address),
            "seconds": int(self.clock() - session.started),
            "traffic": dict(zip(names, since, strict=True)) if since is not None else None,
            "plane": dict(zip(names, plane, strict=True)) if plane is not None else None,
        }


#: RFC 5176 §3.5: Error-Cause values mip4 sends in a Disconnect-NAK
ERROR_CAUSE_MISSING_ATTRIBUTE = 402
ERROR_CAUSE_SESSION_NOT_FOUND = 503
#: RFC 5176 §3: the Dynamic Authorization port of the NAS
DISCONNECT_PORT = 3799


class DisconnectServer(asyncio.DatagramProtocol):
    """The NAS side of RFC 5176: Disconnect-Requests from the home AAA servers.

    A request is taken only from the address of a configured server and only when its
    Request Authenticator (RFC 5176 §3.3: MD5 over the packet with a zero authenticator
    and the shared secret) and, when present, its Message-Authenticator verify with that
    server's secret; anything else is dropped and counted (no answer, as RFC 5176 §3.4
    asks of a request that fails authentication). The request's User-Name (the NAI) and
    Framed-IP-Address (the home address) are handed to ``disconnect`` as a
    :class:`~mip4.aaa.messages.DisconnectRequest`; ``True`` (a session was ended) is
    answered Disconnect-ACK, ``False`` Disconnect-NAK with Error-Cause
    Session-Context-Not-Found (503); neither attribute: NAK, Missing-Attribute (402).
    Nothing here logs a secret or a packet."""

    def __init__(
        self,
        servers: Sequence[RadiusServer],
        disconnect: Callable[[DisconnectRequest], bool],
        *,
        dictionary: Any = None,
    ) -> None:
        self.servers = {s.address: s for s in servers}
        self.disconnect = disconnect
        self.dictionary = dictionary if dictionary is not None else load_dictionary()
        self.stats: Counter[str] = Counter()
        self.transport: asyncio.DatagramTransport | None = None

    def __repr__(self) -> str:
        return f"DisconnectServer(servers={sorted(s.name for s in self.servers.values())})"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            answer = self.answer(data, IPv4Address(addr[0]))
        except Exception as exc:  # a bug must not stop the listener
            self.stats["errors"] += 1
            log.error("aaa.disconnect_failed", extra={"error": type(exc).__name__})
            return
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def answer(self, data: bytes, src: IPv4Address) -> bytes | None:
        """The reply to send for ``data`` from ``src`` (``None``: drop it)."""
        server = self.servers.get(src)
        if server is None or len(data) < 20 or data[0] != rpacket.DisconnectRequest:
            self.stats["dropped"] += 1
            return None
        try:
            pkt = rpacket.CoAPacket(packet=data, secret=server.secret, dict=self.dictionary)
            ok = pkt.VerifyCoARequest() and (
                pkt.message_authenticator is None or pkt.verify_message_authenticator()
            )
        except Exception:  # pyrad raises PacketError, KeyError, struct.error...
            ok = False
        if not ok:
            self.stats["bad_authenticator"] += 1
            log.warning("aaa.disconnect_refused", extra={"server": server.name})
            return None
        names = [n for n in pkt.keys() if isinstance(n, str)]  # noqa: SIM118
        values = {n: list(pkt[n]) for n in names}
        nai = values.get("User-Name", [None])[0]
        hoa = values.get("Framed-IP-Address", [None])[0]
        req = DisconnectRequest(
            nai=str(nai) if nai is not None else None,
            home_address=IPv4Address(str(hoa)) if hoa is not None else None,
            server=server.name,
        )
        reply = pkt.CreateReply()
        if req.node is None:
            reply.code = rpacket.DisconnectNAK
            reply.AddAttribute("Error-Cause", ERROR_CAUSE_MISSING_ATTRIBUTE)
            self.stats["nak"] += 1
        elif self.disconnect(req):
            self.stats["ack"] += 1
        else:
            reply.code = rpacket.DisconnectNAK
            reply.AddAttribute("Error-Cause", ERROR_CAUSE_SESSION_NOT_FOUND)
            self.stats["nak"] += 1
        return bytes(reply.ReplyPacket())

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def listen_disconnect(
    server: DisconnectServer, address: IPv4Address, port: int
) -> DisconnectServer:
    """Bind ``server`` to ``address``:``port`` (UDP) on the running loop."""
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: server, local_addr=(str(address), port))
    return server
