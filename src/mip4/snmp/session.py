"""The subagent side of one AgentX session (RFC 2741 §7.1), sans-IO.

Theory of operation
-------------------
:class:`Subagent` is fed the octets the master sends (:meth:`Subagent.receive`) and returns
the octets to send back; it never touches a socket or a clock. Its life is a small
transition table (:data:`TRANSITIONS`):

``CLOSED --start()--> OPENING --Response(ok)--> REGISTERING --Response(ok)--> OPEN``

and any state ``--Close / error--> CLOSED``. ``start()`` emits the Open-PDU (§6.2.1); the
master's Response carries the session id, which every later PDU repeats; then one
Register-PDU (§6.2.3) for the subtree. While OPEN, Get/GetNext/GetBulk (§7.2) are answered
from a :class:`~mip4.snmp.mib.MibView` the caller builds on demand (``view``, called at
most once per request; if it raises, the request is answered ``genErr`` and the session
stays open); the Set family is refused with ``notWritable`` (the MIB is served
read-only); a Close from the master ends the session. :meth:`Subagent.ping` and
:meth:`Subagent.notify` make the PDUs the I/O shell sends on its own schedule. Input
arrives in arbitrary pieces: :meth:`receive` buffers until a whole PDU is there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from mip4.errors import Mip4Error

from .agentx import (
    HEADER_LENGTH,
    Close,
    CloseReason,
    DecodeError,
    Get,
    GetBulk,
    GetNext,
    Notify,
    Oid,
    Open,
    Pdu,
    Ping,
    RawPdu,
    Register,
    Response,
    ResponseError,
    VarBind,
    VarType,
    decode_header,
    decode_pdu,
    encode_pdu,
)
from .mib import MIP_MIB, MibView

__all__ = ["TRANSITIONS", "SessionError", "SessionState", "Subagent"]

#: our identity in the Open-PDU (sysObjectID-like; none is registered for mip4)
SUBAGENT_ID: Oid = ()
#: snmpTrapOID.0 and sysUpTime.0 (SNMPv2-MIB), the first varbinds of a Notify (§6.2.10)
SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)


class SessionError(Mip4Error):
    """The master refused the session or broke the protocol; the session is closed."""


class SessionState(Enum):
    CLOSED = "closed"
    OPENING = "opening"
    REGISTERING = "registering"
    OPEN = "open"


_S = SessionState
#: (state, input) -> next state; a pair not listed is a protocol error
TRANSITIONS: dict[tuple[SessionState, str], SessionState] = {
    (_S.CLOSED, "start"): _S.OPENING,
    (_S.OPENING, "response"): _S.REGISTERING,
    (_S.REGISTERING, "response"): _S.OPEN,
    (_S.OPEN, "response"): _S.OPEN,  # to our Ping / Notify
    (_S.OPEN, "request"): _S.OPEN,
    (_S.OPENING, "close"): _S.CLOSED,
    (_S.REGISTERING, "close"): _S.CLOSED,
    (_S.OPEN, "close"): _S.CLOSED,
}


@dataclass
class Subagent:
    """One AgentX session of a read-only subagent serving ``subtree``."""

    subtree: Oid = MIP_MIB
    description: str = "mip4 Mobile IP MIB (RFC 4295)"
    #: the master drops the session after this many seconds without an answer (0: default)
    timeout: int = 0
    priority: int = 127

    def __post_init__(self) -> None:
        self.state = SessionState.CLOSED
        self.session_id = 0
        self._packet_id = 0
        self._buffer = b""
        self.requests = 0  # requests answered while OPEN
        #: why building the view failed (each answered with genErr); the shell logs them
        self.view_errors: list[str] = []
        self.pings_unanswered = 0

    def _go(self, event: str) -> None:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            was, self.state = self.state, SessionState.CLOSED
            raise SessionError(f"AgentX {event!r} in state {was.value}")
        self.state = nxt

    def _next_packet_id(self) -> int:
        self._packet_id = (self._packet_id + 1) & 0xFFFFFFFF
        return self._packet_id

    def start(self) -> bytes:
        """Begin a new session (after a connect or a reconnect): the Open-PDU."""
        self.state = SessionState.CLOSED
        self._buffer = b""
        self.session_id = 0
        self.pings_unanswered = 0
        self._go("start")
        return encode_pdu(
            Open(
                packet_id=self._next_packet_id(),
                timeout=self.timeout,
                id=SUBAGENT_ID,
                description=self.description.encode(),
            )
        )

    def ping(self) -> bytes:
        """A Ping-PDU (§6.2.13); empty unless the session is open."""
        if self.state is not SessionState.OPEN:
            return b""
        self.pings_unanswered += 1
        return encode_pdu(Ping(session_id=self.session_id, packet_id=self._next_packet_id()))

    def notify(self, trap: Oid, varbinds: tuple[VarBind, ...], uptime: int) -> bytes:
        """A Notify-PDU (§6.2.10) for notification ``trap``; empty unless open."""
        if self.state is not SessionState.OPEN:
            return b""
        head = (
            VarBind(VarType.TIME_TICKS, SYS_UPTIME, uptime & 0xFFFFFFFF),
            VarBind(VarType.OBJECT_IDENTIFIER, SNMP_TRAP_OID, trap),
        )
        return encode_pdu(
            Notify(
                session_id=self.session_id,
                packet_id=self._next_packet_id(),
                varbinds=head + varbinds,
            )
        )

    def close(self, reason: CloseReason = CloseReason.SHUTDOWN) -> bytes:
        """A Close-PDU (§6.2.2); the session is over."""
        if self.state is SessionState.CLOSED:
            return b""
        out = encode_pdu(
            Close(session_id=self.session_id, packet_id=self._next_packet_id(), reason=reason)
        )
        self.state = SessionState.CLOSED
        return out

    def receive(self, data: bytes, view: Callable[[], MibView]) -> bytes:
        """Feed octets from the master; returns the octets to send back. Raises
        :class:`SessionError` (session closed) on a refused Open/Register, a Close from
        the master or undecodable input."""
        self._buffer += data
        out = b""
        while len(self._buffer) >= HEADER_LENGTH:
            try:
                header = decode_header(self._buffer)
            except DecodeError as e:
                self.state = SessionState.CLOSED
                raise SessionError(f"bad AgentX header from the master: {e}") from e
            size = HEADER_LENGTH + header.payload_length
            if len(self._buffer) < size:
                break
            raw, self._buffer = self._buffer[:size], self._buffer[size:]
            try:
                pdu = decode_pdu(raw)
            except DecodeError as e:
                self.state = SessionState.CLOSED
                raise SessionError(f"bad AgentX PDU from the master: {e}") from e
            out += self._handle(pdu, view)
        return out

    def _handle(self, pdu: Pdu, view: Callable[[], MibView]) -> bytes:
        if isinstance(pdu, Response):
            self._go("response")
            if pdu.error != ResponseError.NO_ERROR:
                self.state = SessionState.CLOSED
                raise SessionError(f"the master answered error {_error_name(pdu.error)}")
            if self.state is SessionState.REGISTERING:
                self.session_id = pdu.session_id
                return encode_pdu(
                    Register(
                        session_id=self.session_id,
                        packet_id=self._next_packet_id(),
                        timeout=self.timeout,
                        priority=self.priority,
                        subtree=self.subtree,
                    )
                )
            self.pings_unanswered = 0
            return b""
        if isinstance(pdu, Close):
            self._go("close")
            raise SessionError(f"the master closed the session ({pdu.reason.name.lower()})")
        self._go("request")
        self.requests += 1
        varbinds: tuple[VarBind, ...] = ()
        error: int = ResponseError.NO_ERROR
        if isinstance(pdu, Get | GetNext | GetBulk):
            try:
                v = view()
            except Exception as e:  # the snapshot failed: genErr, the session lives on
                self.view_errors.append(f"{type(e).__name__}: {e}")
                error = ResponseError.GEN_ERR
            else:
                if isinstance(pdu, Get):
                    varbinds = tuple(v.get(r.start) for r in pdu.ranges)
                elif isinstance(pdu, GetNext):
                    varbinds = tuple(v.get_next(r) for r in pdu.ranges)
                else:
                    bulk = v.get_bulk(pdu.ranges, pdu.non_repeaters, pdu.max_repetitions)
                    varbinds = tuple(bulk)
        elif isinstance(pdu, RawPdu) and pdu.type in (8,):  # TestSet: read-only MIB
            error = ResponseError.NOT_WRITABLE
        elif isinstance(pdu, RawPdu) and pdu.type in (9, 10, 11):  # Commit/Undo/CleanupSet
            return b""
        elif not isinstance(pdu, Ping):
            error = ResponseError.PROCESSING_ERROR
        return encode_pdu(
            Response(
                session_id=pdu.session_id,
                transaction_id=pdu.transaction_id,
                packet_id=pdu.packet_id,
                error=error,
                index=1 if error else 0,
                varbinds=varbinds,
            )
        )


def _error_name(code: int) -> str:
    try:
        return f"{code} {ResponseError(code).name.lower()}"
    except ValueError:
        return str(code)
