"""AgentX PDU codec (RFC 2741 §6).

Theory of operation
-------------------
Every PDU is a 20-octet header (RFC 2741 §6.1) and a payload whose length the header
carries. Multi-octet integers are in the byte order the header's NETWORK_BYTE_ORDER flag
names; we always send network byte order and decode either. An object identifier
(§5.1) is ``n_subid, prefix, include, reserved`` then ``n_subid`` 32-bit sub-identifiers,
``prefix`` abbreviating ``1.3.6.1.<prefix>``; an octet string (§5.3) is a 32-bit length
and the octets padded to a multiple of four. Malformed input raises :class:`DecodeError`.
Only the PDUs a read-only subagent sends or receives are modelled: Open, Close, Register,
Get, GetNext, GetBulk, Ping, Notify and Response; the Set family (TestSet...) decodes as a
:class:`RawPdu` that the session answers with ``notWritable``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any

from mip4.errors import Mip4Error

__all__ = [
    "HEADER_LENGTH",
    "Close",
    "CloseReason",
    "DecodeError",
    "Flags",
    "Get",
    "GetBulk",
    "GetNext",
    "Header",
    "Notify",
    "Oid",
    "Open",
    "Pdu",
    "PduType",
    "Ping",
    "RawPdu",
    "Register",
    "Response",
    "ResponseError",
    "SearchRange",
    "VarBind",
    "VarType",
    "decode_header",
    "decode_pdu",
    "encode_pdu",
]

Oid = tuple[int, ...]
HEADER_LENGTH = 20
INTERNET = (1, 3, 6, 1)


class DecodeError(Mip4Error, ValueError):
    """Malformed AgentX input."""


class PduType(IntEnum):
    """AgentX PDU types (RFC 2741 §6.1)."""

    OPEN = 1
    CLOSE = 2
    REGISTER = 3
    UNREGISTER = 4
    GET = 5
    GET_NEXT = 6
    GET_BULK = 7
    TEST_SET = 8
    COMMIT_SET = 9
    UNDO_SET = 10
    CLEANUP_SET = 11
    NOTIFY = 12
    PING = 13
    INDEX_ALLOCATE = 14
    INDEX_DEALLOCATE = 15
    ADD_AGENT_CAPS = 16
    REMOVE_AGENT_CAPS = 17
    RESPONSE = 18


class Flags(IntFlag):
    """Header flags (RFC 2741 §6.1)."""

    INSTANCE_REGISTRATION = 0x01
    NEW_INDEX = 0x02
    ANY_INDEX = 0x04
    NON_DEFAULT_CONTEXT = 0x08
    NETWORK_BYTE_ORDER = 0x10


class VarType(IntEnum):
    """VarBind types (RFC 2741 §5.4)."""

    INTEGER = 2
    OCTET_STRING = 4
    NULL = 5
    OBJECT_IDENTIFIER = 6
    IP_ADDRESS = 64
    COUNTER32 = 65
    GAUGE32 = 66
    TIME_TICKS = 67
    OPAQUE = 68
    COUNTER64 = 70
    NO_SUCH_OBJECT = 128
    NO_SUCH_INSTANCE = 129
    END_OF_MIB_VIEW = 130


class ResponseError(IntEnum):
    """``res.error`` of a Response PDU (RFC 2741 §6.2.16)."""

    NO_ERROR = 0
    GEN_ERR = 5
    NOT_WRITABLE = 17
    OPEN_FAILED = 256
    NOT_OPEN = 257
    INDEX_WRONG_TYPE = 258
    INDEX_ALREADY_ALLOCATED = 259
    INDEX_NONE_AVAILABLE = 260
    INDEX_NOT_ALLOCATED = 261
    UNSUPPORTED_CONTEXT = 262
    DUPLICATE_REGISTRATION = 263
    UNKNOWN_REGISTRATION = 264
    UNKNOWN_AGENT_CAPS = 265
    PARSE_ERROR = 266
    REQUEST_DENIED = 267
    PROCESSING_ERROR = 268


class CloseReason(IntEnum):
    """Close PDU reasons (RFC 2741 §6.2.2)."""

    OTHER = 1
    PARSE_ERROR = 2
    PROTOCOL_ERROR = 3
    TIMEOUTS = 4
    SHUTDOWN = 5
    BY_MANAGER = 6


_INT_TYPES = {
    VarType.INTEGER,
    VarType.COUNTER32,
    VarType.GAUGE32,
    VarType.TIME_TICKS,
    VarType.COUNTER64,
}
_BYTES_TYPES = {VarType.OCTET_STRING, VarType.IP_ADDRESS, VarType.OPAQUE}
_EMPTY_TYPES = {
    VarType.NULL,
    VarType.NO_SUCH_OBJECT,
    VarType.NO_SUCH_INSTANCE,
    VarType.END_OF_MIB_VIEW,
}


@dataclass(frozen=True)
class Header:
    type: int
    flags: Flags
    session_id: int
    transaction_id: int
    packet_id: int
    payload_length: int


@dataclass(frozen=True)
class VarBind:
    """One variable binding; ``value`` is an ``int`` (INTEGER: signed, the others unsigned),
    ``bytes`` (OCTET STRING, IpAddress, Opaque), an :data:`Oid` or ``None``."""

    type: VarType
    name: Oid
    value: int | bytes | Oid | None = None


@dataclass(frozen=True)
class SearchRange:
    start: Oid
    end: Oid = ()
    include: bool = False


@dataclass(frozen=True)
class _Base:
    session_id: int = 0
    transaction_id: int = 0
    packet_id: int = 0
    context: bytes | None = None


@dataclass(frozen=True)
class Open(_Base):
    timeout: int = 0
    id: Oid = ()
    description: bytes = b""


@dataclass(frozen=True)
class Close(_Base):
    reason: CloseReason = CloseReason.SHUTDOWN


@dataclass(frozen=True)
class Register(_Base):
    timeout: int = 0
    priority: int = 127
    subtree: Oid = ()
    range_subid: int = 0
    upper_bound: int | None = None


@dataclass(frozen=True)
class Get(_Base):
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True)
class GetNext(_Base):
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True)
class GetBulk(_Base):
    non_repeaters: int = 0
    max_repetitions: int = 0
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True)
class Ping(_Base):
    pass


@dataclass(frozen=True)
class Notify(_Base):
    varbinds: tuple[VarBind, ...] = ()


@dataclass(frozen=True)
class Response(_Base):
    sys_uptime: int = 0
    error: int = ResponseError.NO_ERROR
    index: int = 0
    varbinds: tuple[VarBind, ...] = field(default=())


@dataclass(frozen=True)
class RawPdu(_Base):
    """A PDU type this subagent does not model (the Set family, index allocation...)."""

    type: int = 0
    payload: bytes = b""


Pdu = Open | Close | Register | Get | GetNext | GetBulk | Ping | Notify | Response | RawPdu

_HEADER = {"!": struct.Struct("!BBBBIIII"), "<": struct.Struct("<BBBBIIII")}


# ----------------------------------------------------------------------------------------
# decoding
# ----------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, order: str) -> None:  # order: "!" or "<"
        self.data = data
        self.pos = 0
        self.order = order

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError(f"truncated: need {n} octets at offset {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        v: int = struct.unpack(self.order + "H", self._take(2))[0]
        return v

    def u32(self) -> int:
        v: int = struct.unpack(self.order + "I", self._take(4))[0]
        return v

    def u64(self) -> int:
        v: int = struct.unpack(self.order + "Q", self._take(8))[0]
        return v

    def octets(self) -> bytes:
        n = self.u32()
        data = self._take(n)
        self._take(-n % 4)
        return data

    def oid(self) -> tuple[Oid, bool]:
        n, prefix, include, _ = self._take(4)
        subids = tuple(self.u32() for _ in range(n))
        if prefix:
            subids = (*INTERNET, prefix, *subids)
        return subids, bool(include)

    def search_range(self) -> SearchRange:
        start, include = self.oid()
        end, _ = self.oid()
        return SearchRange(start, end, include)

    def ranges(self) -> tuple[SearchRange, ...]:
        out = []
        while self.pos < len(self.data):
            out.append(self.search_range())
        return tuple(out)

    def varbind(self) -> VarBind:
        t = self.u16()
        self.u16()
        name, _ = self.oid()
        try:
            vt = VarType(t)
        except ValueError as e:
            raise DecodeError(f"unknown varbind type {t}") from e
        value: int | bytes | Oid | None
        if vt in (VarType.COUNTER64,):
            value = self.u64()
        elif vt is VarType.INTEGER:
            value = self.u32()
            value = value - (1 << 32) if value >= 1 << 31 else value
        elif vt in _INT_TYPES:
            value = self.u32()
        elif vt in _BYTES_TYPES:
            value = self.octets()
        elif vt is VarType.OBJECT_IDENTIFIER:
            value = self.oid()[0]
        else:
            value = None
        return VarBind(vt, name, value)

    def varbinds(self) -> tuple[VarBind, ...]:
        out = []
        while self.pos < len(self.data):
            out.append(self.varbind())
        return tuple(out)


def decode_header(data: bytes) -> Header:
    """The header of the PDU at the start of ``data`` (at least 20 octets)."""
    if len(data) < HEADER_LENGTH:
        raise DecodeError(f"truncated header: {len(data)} octets")
    flags = Flags(data[2] & 0x1F)
    order = "!" if flags & Flags.NETWORK_BYTE_ORDER else "<"
    version, type_, _, _, sid, tid, pid, length = _HEADER[order].unpack_from(data)
    if version != 1:
        raise DecodeError(f"AgentX version {version}, expected 1")
    if length % 4:
        raise DecodeError(f"payload length {length} is not a multiple of 4")
    return Header(type_, flags, sid, tid, pid, length)


def decode_pdu(data: bytes) -> Pdu:
    """Decode exactly one PDU (header and its whole payload)."""
    h = decode_header(data)
    if len(data) != HEADER_LENGTH + h.payload_length:
        raise DecodeError(f"PDU is {len(data)} octets, header says {20 + h.payload_length}")
    order = "!" if h.flags & Flags.NETWORK_BYTE_ORDER else "<"
    r = _Reader(data[HEADER_LENGTH:], order)
    ids: dict[str, Any] = {
        "session_id": h.session_id,
        "transaction_id": h.transaction_id,
        "packet_id": h.packet_id,
    }
    context = r.octets() if h.flags & Flags.NON_DEFAULT_CONTEXT else None
    try:
        t = PduType(h.type)
    except ValueError as e:
        raise DecodeError(f"unknown PDU type {h.type}") from e
    pdu: Pdu
    if t is PduType.OPEN:
        timeout = r.u8()
        r._take(3)
        oid, _ = r.oid()
        pdu = Open(**ids, timeout=timeout, id=oid, description=r.octets())
    elif t is PduType.CLOSE:
        reason = r.u8()
        r._take(3)
        try:
            pdu = Close(**ids, reason=CloseReason(reason))
        except ValueError as e:
            raise DecodeError(f"unknown close reason {reason}") from e
    elif t is PduType.REGISTER:
        timeout, priority, range_subid, _ = r._take(4)
        subtree, _ = r.oid()
        upper = r.u32() if range_subid else None
        pdu = Register(
            **ids,
            context=context,
            timeout=timeout,
            priority=priority,
            subtree=subtree,
            range_subid=range_subid,
            upper_bound=upper,
        )
    elif t is PduType.GET:
        pdu = Get(**ids, context=context, ranges=r.ranges())
    elif t is PduType.GET_NEXT:
        pdu = GetNext(**ids, context=context, ranges=r.ranges())
    elif t is PduType.GET_BULK:
        nr, mr = r.u16(), r.u16()
        pdu = GetBulk(
            **ids, context=context, non_repeaters=nr, max_repetitions=mr, ranges=r.ranges()
        )
    elif t is PduType.PING:
        pdu = Ping(**ids, context=context)
    elif t is PduType.NOTIFY:
        pdu = Notify(**ids, context=context, varbinds=r.varbinds())
    elif t is PduType.RESPONSE:
        up, err, idx = r.u32(), r.u16(), r.u16()
        pdu = Response(**ids, sys_uptime=up, error=err, index=idx, varbinds=r.varbinds())
    else:
        # the payload as received, context included (re-encoded byte for byte)
        return RawPdu(**ids, type=t, payload=data[HEADER_LENGTH:])
    if r.pos != len(r.data):
        raise DecodeError(f"{len(r.data) - r.pos} trailing octets in {t.name}")
    return pdu


# ----------------------------------------------------------------------------------------
# encoding (always network byte order)
# ----------------------------------------------------------------------------------------


def _u8(v: int) -> bytes:
    return struct.pack("!B", v)


def _u16(v: int) -> bytes:
    return struct.pack("!H", v)


def _u32(v: int) -> bytes:
    return struct.pack("!I", v)


def _octets(data: bytes) -> bytes:
    return _u32(len(data)) + data + b"\x00" * (-len(data) % 4)


def _oid(oid: Oid, include: bool = False) -> bytes:
    prefix = 0
    if len(oid) >= 5 and oid[:4] == INTERNET and 0 < oid[4] < 256:
        prefix, oid = oid[4], oid[5:]
    if len(oid) > 128:
        raise ValueError(f"an OID has at most 128 sub-identifiers: {len(oid)}")
    return bytes((len(oid), prefix, int(include), 0)) + b"".join(_u32(s) for s in oid)


def _varbind(vb: VarBind) -> bytes:
    head = _u16(vb.type) + b"\x00\x00" + _oid(vb.name)
    v = vb.value
    if vb.type is VarType.COUNTER64:
        assert isinstance(v, int)
        return head + struct.pack("!Q", v)
    if vb.type is VarType.INTEGER:
        assert isinstance(v, int)
        return head + struct.pack("!i", v)
    if vb.type in _INT_TYPES:
        assert isinstance(v, int)
        return head + _u32(v)
    if vb.type in _BYTES_TYPES:
        assert isinstance(v, bytes)
        return head + _octets(v)
    if vb.type is VarType.OBJECT_IDENTIFIER:
        assert isinstance(v, tuple)
        return head + _oid(v)
    return head


def _range(r: SearchRange) -> bytes:
    return _oid(r.start, r.include) + _oid(r.end)


def encode_pdu(pdu: Pdu) -> bytes:
    """The PDU's octets, in network byte order."""
    flags = Flags.NETWORK_BYTE_ORDER
    body = b""
    if pdu.context is not None:
        flags |= Flags.NON_DEFAULT_CONTEXT
        body = _octets(pdu.context)
    if isinstance(pdu, Open):
        t = PduType.OPEN
        body = _u8(pdu.timeout) + b"\x00" * 3 + _oid(pdu.id) + _octets(pdu.description)
    elif isinstance(pdu, Close):
        t = PduType.CLOSE
        body = _u8(pdu.reason) + b"\x00" * 3
    elif isinstance(pdu, Register):
        t = PduType.REGISTER
        body += bytes((pdu.timeout, pdu.priority, pdu.range_subid, 0)) + _oid(pdu.subtree)
        if pdu.range_subid:
            body += _u32(pdu.upper_bound or 0)
    elif isinstance(pdu, Get | GetNext):
        t = PduType.GET if isinstance(pdu, Get) else PduType.GET_NEXT
        body += b"".join(_range(r) for r in pdu.ranges)
    elif isinstance(pdu, GetBulk):
        t = PduType.GET_BULK
        body += _u16(pdu.non_repeaters) + _u16(pdu.max_repetitions)
        body += b"".join(_range(r) for r in pdu.ranges)
    elif isinstance(pdu, Ping):
        t = PduType.PING
    elif isinstance(pdu, Notify):
        t = PduType.NOTIFY
        body += b"".join(_varbind(v) for v in pdu.varbinds)
    elif isinstance(pdu, Response):
        t = PduType.RESPONSE
        body = _u32(pdu.sys_uptime) + _u16(pdu.error) + _u16(pdu.index)
        body += b"".join(_varbind(v) for v in pdu.varbinds)
    else:
        return (
            _HEADER["!"].pack(
                1,
                pdu.type,
                flags,
                0,
                pdu.session_id,
                pdu.transaction_id,
                pdu.packet_id,
                len(body) + len(pdu.payload),
            )
            + body
            + pdu.payload
        )
    header = _HEADER["!"].pack(
        1, t, flags, 0, pdu.session_id, pdu.transaction_id, pdu.packet_id, len(body)
    )
    return header + body
