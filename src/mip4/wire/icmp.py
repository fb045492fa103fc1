"""Agent discovery: ICMP Router Discovery (RFC 1256) with the Mobile IP extensions
(RFC 5944 §2.1) -- Agent Advertisement (type 9) and Agent Solicitation (type 10).

Theory of operation
-------------------
:func:`decode_icmp` takes an ICMP message (the IP payload), verifies the ICMP checksum over
the whole message (RFC 1256 §5.2 / §5.1: a receiver MUST silently discard a message whose
checksum is wrong) and dispatches on the type; any other ICMP type raises
:class:`DecodeError` naming it. ``encode()`` computes the checksum.

An Agent Advertisement is an ICMP Router Advertisement followed by extensions
(RFC 5944 §2.1)::

    0 Type=9 | 1 Code | 2 Checksum(2) | 4 Num Addrs | 5 Addr Entry Size=2 | 6 Lifetime(2)
    8 + 8i: Router Address[i](4) | Preference Level[i](4, signed)
    8 + 8N: extensions...

The extensions use their own number space (IANA "Extensions to ICMP Router Discovery"),
separate from the registration extensions. The RFC 5944 §1.9 rule applies to it too: an
unknown type 0--127 makes the whole advertisement be discarded
(:class:`UnknownExtensionError` with ``space="agent advertisement"``); an unknown type
128--255 is skipped but kept as a :class:`RawExtension`, so the message re-encodes byte for
byte. Type 0 is the one-byte Pad extension, which has no length byte (RFC 5944 §2.1.3).

An advertisement without a Mobility Agent Advertisement Extension is a plain RFC 1256 router
advertisement; it decodes, and :attr:`AgentAdvertisement.mobility` is ``None``.

What is enforced on decode: the checksum, type/code (9 with code 0 or 16, RFC 5944 §2.1;
10 with code 0, RFC 1256 §5.1), Addr Entry Size = 2, the router-address area fitting in the
message, every extension's length, the Mobility Agent Advertisement body being 6 + 4N bytes,
prefix lengths at most 32 and their count equal to Num Addrs (RFC 5944 §2.1.2). Num Addrs
may be 0 in an agent advertisement (RFC 5944 §2.1), unlike RFC 1256 §5.2. IP-level checks
(TTL 1, source on the link, destination) are the agent-discovery engine's job.

:func:`decode_icmp` decodes agent advertisements through a bounded memo
(:class:`AdvertisementMemo`): the same bytes again give the same (immutable) object, and
the same advertisement with another sequence number is checked (checksum) and read for
that number only -- every node of a link hears each periodic advertisement, and an agent's
successive ones differ only there (RFC 5944 §2.3.2).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address
from typing import ClassVar, Self

from .addr import ipv4_from_int
from .errors import DecodeError, EncodeError, UnknownExtensionError
from .extensions import Extension, RawExtension
from .ip import internet_checksum
from .packets import icmp_with_checksum

ADVERTISEMENT_SPACE = "agent advertisement"

_RA_FIXED = struct.Struct("!BBHBBH")
_ROUTER = struct.Struct("!Ii")
_MAA = struct.Struct("!HHH")
_U32 = struct.Struct("!I")
_new = object.__new__
_setattr = object.__setattr__


class ICMPType(IntEnum):
    """ICMP types this package builds or reads (IANA "ICMP Type Numbers")."""

    ECHO_REPLY = 0
    DESTINATION_UNREACHABLE = 3  #: RFC 792
    SOURCE_QUENCH = 4
    REDIRECT = 5
    ECHO_REQUEST = 8
    ROUTER_ADVERTISEMENT = 9  #: RFC 1256; Agent Advertisement (RFC 5944 §2.1)
    ROUTER_SOLICITATION = 10  #: RFC 1256; Agent Solicitation (RFC 5944 §2.2)
    TIME_EXCEEDED = 11
    PARAMETER_PROBLEM = 12


class AdvertisementCode(IntEnum):
    """Agent Advertisement codes (RFC 5944 §2.1)."""

    ROUTES_COMMON_TRAFFIC = 0  #: also acts as a router for common traffic
    NO_COMMON_TRAFFIC = 16  #: does not route common traffic (a foreign agent MUST still
    #: forward a registered mobile node's datagrams to a default router)


_ADV_CODES = frozenset(c.value for c in AdvertisementCode)


class AgentFlags(IntFlag):
    """Flags of the Mobility Agent Advertisement Extension (RFC 5944 §2.1.1, RFC 3519 §3.4,
    RFC 3543 §3.5; masks per ``shared/reference/numbers.md``). Unknown bits are kept."""

    R = 0x8000  #: registration required (even with a co-located care-of address)
    B = 0x4000  #: busy: will not accept registrations from additional mobile nodes
    H = 0x2000  #: offers service as a home agent
    F = 0x1000  #: offers service as a foreign agent
    M = 0x0800  #: supports minimal encapsulation (RFC 2004)
    G = 0x0400  #: supports GRE encapsulation (RFC 2784)
    r = 0x0200  #: sent as zero, ignored on receipt (was V, Van Jacobson compression)
    T = 0x0100  #: supports reverse tunnelling (RFC 3024)
    U = 0x0080  #: supports UDP tunnelling (RFC 3519)
    X = 0x0040  #: supports registration revocation (RFC 3543)


NO_AGENT_FLAGS = AgentFlags(0)


# ----------------------------------------------------------------------------------------
# Extensions
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaddingExtension(Extension):
    """One-byte Pad extension, type 0: no length and no data (RFC 5944 §2.1.3). Some
    implementations pad ICMP messages to an even length."""

    TYPE: ClassVar[int] = 0

    def encode(self) -> bytes:
        return b"\0"


PAD = PaddingExtension()


@dataclass(frozen=True)
class MobilityAgentAdvertisementExtension(Extension):
    """Mobility Agent Advertisement Extension, type 16 (RFC 5944 §2.1.1)::

    0 Type=16 | 1 Length = 6 + 4N | 2 Sequence Number(2) | 4 Registration Lifetime(2)
    6 Flags(16 bits) | 8 Care-of Address[0..N-1](4 each)

    A registration lifetime of 0xFFFF means infinity.
    """

    TYPE: ClassVar[int] = 16
    sequence: int
    registration_lifetime: int
    flags: AgentFlags
    care_of_addresses: tuple[IPv4Address, ...] = ()

    def encode_body(self) -> bytes:
        try:
            head = _MAA.pack(self.sequence, self.registration_lifetime, int(self.flags))
        except struct.error as e:
            raise EncodeError(f"mobility agent advertisement: {e}") from None
        return head + b"".join([a.packed for a in self.care_of_addresses])

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        n = end - start
        if n < 6 or (n - 6) & 3:
            raise DecodeError(
                f"mobility agent advertisement extension: length {n}, must be 6 + 4N "
                "(RFC 5944 §2.1.1)",
                start - 2,
            )
        seq, lifetime, flags = _MAA.unpack_from(data, start)
        coas = tuple(ipv4_from_int(_U32.unpack_from(data, p)[0]) for p in range(start + 6, end, 4))
        o = _new(cls)
        _setattr(
            o,
            "__dict__",
            {
                "sequence": seq,
                "registration_lifetime": lifetime,
                "flags": AgentFlags(flags),
                "care_of_addresses": coas,
            },
        )
        return o


@dataclass(frozen=True)
class PrefixLengthsExtension(Extension):
    """Prefix-Lengths Extension, type 19 (RFC 5944 §2.1.2): one byte per router address of
    the advertisement, in the same order; Length = Num Addrs."""

    TYPE: ClassVar[int] = 19
    prefix_lengths: tuple[int, ...]

    def encode_body(self) -> bytes:
        if any(not 0 <= p <= 32 for p in self.prefix_lengths):
            raise EncodeError(f"prefix lengths must be 0..32: {self.prefix_lengths}")
        return bytes(self.prefix_lengths)

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        lengths = tuple(data[start:end])
        for i, p in enumerate(lengths):
            if p > 32:
                raise DecodeError(f"prefix length {p} > 32", start + i)
        return cls(lengths)


@dataclass(frozen=True)
class ChallengeExtension(Extension):
    """Challenge Extension, type 24 (RFC 4721 §3.1, was RFC 3012 §2): the foreign agent's
    challenge, which the mobile node echoes in an MN-FA Challenge Extension (registration
    type 132). RFC 4721 says it SHOULD be at least 4 bytes; that is the sender's duty."""

    TYPE: ClassVar[int] = 24
    challenge: bytes

    def encode_body(self) -> bytes:
        return self.challenge

    @classmethod
    def decode_body(cls, data: bytes, start: int, end: int, subtype: int) -> Self:
        return cls(bytes(data[start:end]))


#: ICMP router discovery extension registry (a number space of its own).
ADVERTISEMENT_EXTENSIONS: dict[int, type[Extension]] = {
    MobilityAgentAdvertisementExtension.TYPE: MobilityAgentAdvertisementExtension,
    PrefixLengthsExtension.TYPE: PrefixLengthsExtension,
    ChallengeExtension.TYPE: ChallengeExtension,
}

_NO_EXT: tuple[Extension, ...] = ()


def decode_advertisement_extensions(data: bytes, pos: int) -> tuple[Extension, ...]:
    """Decode the extension area ``data[pos:]`` of an agent advertisement."""
    end = len(data)
    if pos >= end:
        return _NO_EXT
    exts: list[Extension] = []
    get = ADVERTISEMENT_EXTENSIONS.get
    while pos < end:
        t = data[pos]
        if t == 0:  # Pad: the type byte alone (RFC 5944 §2.1.3)
            exts.append(PAD)
            pos += 1
            continue
        if pos + 2 > end:
            raise DecodeError(f"truncated header of advertisement extension {t}", pos)
        cls = get(t)
        if cls is None and t < 128:
            # RFC 5944 §1.9 (applied to this number space by §2.1): unknown non-skippable
            # extension -> the whole advertisement MUST be silently discarded.
            raise UnknownExtensionError(t, pos, space=ADVERTISEMENT_SPACE)
        start = pos + 2
        stop = start + data[pos + 1]
        if stop > end:
            raise DecodeError(
                f"advertisement extension {t}: length {stop - start} overruns the message "
                f"({end - start} byte(s) left)",
                pos,
            )
        if cls is None:
            # RFC 5944 §1.9: unknown skippable extension -> ignored, but kept.
            exts.append(RawExtension(t, bytes(data[start:stop])))
        else:
            exts.append(cls.decode_body(data, start, stop, 0))
        pos = stop
    return tuple(exts)


# ----------------------------------------------------------------------------------------
# Messages
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouterAddress:
    """One (Router Address, Preference Level) entry of a router advertisement (RFC 1256
    §3). The preference is a signed 32-bit integer; 0x80000000 means "do not use as a
    default router"."""

    address: IPv4Address
    preference: int = 0


#: Preference level meaning "not to be used as a default router" (RFC 1256 §3).
NOT_DEFAULT_PREFERENCE = -0x80000000


def _check_checksum(data: bytes, what: str) -> None:
    if internet_checksum(data) != 0:
        b = bytearray(data)
        b[2:4] = b"\0\0"
        raise DecodeError(
            f"{what}: ICMP checksum mismatch: expected {internet_checksum(b):#06x}, "
            f"got {(data[2] << 8) | data[3]:#06x}",
            2,
        )


@dataclass(frozen=True)
class AgentAdvertisement:
    """Agent Advertisement: ICMP type 9, code 0 or 16 (RFC 5944 §2.1). ``lifetime`` is the
    ICMP router advertisement lifetime (seconds the advertisement is valid);
    ``raw`` is the exact message as received (empty when built locally)."""

    TYPE: ClassVar[int] = 9
    code: int = 0
    lifetime: int = 0
    router_addresses: tuple[RouterAddress, ...] = ()
    extensions: tuple[Extension, ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def mobility(self) -> MobilityAgentAdvertisementExtension | None:
        """The Mobility Agent Advertisement Extension, or ``None`` for a plain RFC 1256
        router advertisement."""
        for e in self.extensions:
            if type(e) is MobilityAgentAdvertisementExtension:
                return e
        return None

    @property
    def prefix_lengths(self) -> tuple[int, ...] | None:
        for e in self.extensions:
            if type(e) is PrefixLengthsExtension:
                return e.prefix_lengths
        return None

    @property
    def challenge(self) -> bytes | None:
        for e in self.extensions:
            if type(e) is ChallengeExtension:
                return e.challenge
        return None

    def encode(self) -> bytes:
        n = len(self.router_addresses)
        if n > 255:
            raise EncodeError(f"agent advertisement: {n} router addresses, at most 255")
        if self.code not in _ADV_CODES:
            raise EncodeError(f"agent advertisement code {self.code}: must be 0 or 16")
        try:
            parts = [_RA_FIXED.pack(9, self.code, 0, n, 2, self.lifetime)]
            parts.extend(_ROUTER.pack(int(r.address), r.preference) for r in self.router_addresses)
        except struct.error as e:
            raise EncodeError(f"agent advertisement: {e}") from None
        parts.extend(e.encode() for e in self.extensions)
        return icmp_with_checksum(b"".join(parts))

    def with_sequence(self, sequence: int, raw: bytes) -> AgentAdvertisement:
        """This advertisement as received again with another sequence number, as ``raw``
        (whose first extension is the Mobility Agent Advertisement Extension; see
        :class:`AdvertisementMemo`). Everything but that extension is shared."""
        exts = self.extensions
        m = exts[0]
        assert type(m) is MobilityAgentAdvertisementExtension
        n = _new(MobilityAgentAdvertisementExtension)
        _setattr(n, "__dict__", {**m.__dict__, "sequence": sequence})
        o = _new(AgentAdvertisement)
        _setattr(o, "__dict__", {**self.__dict__, "extensions": (n, *exts[1:]), "raw": raw})
        return o

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) < 8:
            raise DecodeError(f"agent advertisement: {len(data)} bytes, need 8", len(data))
        t, code, _csum, n, entry_size, lifetime = _RA_FIXED.unpack_from(data, 0)
        if t != 9:
            raise DecodeError(f"not an agent advertisement (ICMP type {t})", 0)
        if code not in _ADV_CODES:
            raise DecodeError(f"agent advertisement: code {code}, expected 0 or 16", 1)
        _check_checksum(data, "agent advertisement")
        if entry_size != 2:
            raise DecodeError(f"agent advertisement: address entry size {entry_size} != 2", 5)
        ext_start = 8 + 8 * n
        if ext_start > len(data):
            raise DecodeError(
                f"agent advertisement: {n} router address(es) need {ext_start} bytes, "
                f"{len(data)} present",
                len(data),
            )
        routers = tuple(
            RouterAddress(ipv4_from_int(a), pref)
            for a, pref in _ROUTER.iter_unpack(data[8:ext_start])
        )
        exts = decode_advertisement_extensions(data, ext_start)
        for i, e in enumerate(exts):
            if type(e) is PrefixLengthsExtension and len(e.prefix_lengths) != n:
                # RFC 5944 §2.1.2: Length = N, the Num Addrs of the router advertisement.
                raise DecodeError(
                    f"prefix-lengths extension has {len(e.prefix_lengths)} entries, "
                    f"Num Addrs is {n} (RFC 5944 §2.1.2)",
                    _ext_offset(exts, ext_start, i),
                )
        o = _new(cls)
        _setattr(
            o,
            "__dict__",
            {
                "code": code,
                "lifetime": lifetime,
                "router_addresses": routers,
                "extensions": exts,
                "raw": bytes(data),
            },
        )
        return o


def _ext_offset(exts: tuple[Extension, ...], start: int, index: int) -> int:
    return start + sum(len(e.encode()) for e in exts[:index])


@dataclass(frozen=True)
class AgentSolicitation:
    """Agent Solicitation: an ICMP Router Solicitation, type 10, code 0 (RFC 5944 §2.2,
    RFC 1256 §3): Type | Code | Checksum(2) | Reserved(4); 8 bytes. The reserved field is
    sent as zero and ignored on receipt (RFC 1256 §3); bytes beyond 8 are ignored too
    (RFC 1256 §5.1 only requires an ICMP length of at least 8)."""

    TYPE: ClassVar[int] = 10
    LENGTH: ClassVar[int] = 8

    def encode(self) -> bytes:
        return _SOLICITATION

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) < 8:
            raise DecodeError(f"agent solicitation: {len(data)} bytes, need 8", len(data))
        if data[0] != 10:
            raise DecodeError(f"not an agent solicitation (ICMP type {data[0]})", 0)
        if data[1] != 0:
            # RFC 1256 §5.1: a solicitation with code != 0 MUST be silently discarded.
            raise DecodeError(f"agent solicitation: code {data[1]}, expected 0", 1)
        _check_checksum(data, "agent solicitation")
        return cls()


_SOLICITATION = icmp_with_checksum(b"\x0a\0\0\0\0\0\0\0")

ICMP_MESSAGES: dict[int, type[AgentAdvertisement] | type[AgentSolicitation]] = {
    9: AgentAdvertisement,
    10: AgentSolicitation,
}


def decode_icmp(data: bytes) -> AgentAdvertisement | AgentSolicitation:
    """Decode an agent discovery ICMP message (the IP payload). Raises
    :class:`DecodeError` for malformed input, a bad checksum, or another ICMP type.
    Agent advertisements go through :data:`ADVERTISEMENTS` (decoded once, shared)."""
    if not data:
        raise DecodeError("empty ICMP message", 0)
    if data[0] == 9:
        return ADVERTISEMENTS.decode(data)
    cls = ICMP_MESSAGES.get(data[0])
    if cls is None:
        raise DecodeError(
            f"ICMP type {data[0]} is not an agent advertisement (9) or solicitation (10)", 0
        )
    return cls.decode(data)


def sequence_offset(data: bytes) -> int | None:
    """Where the Mobility Agent Advertisement Extension's sequence number is in the agent
    advertisement ``data``, when that extension comes first after the router addresses
    (as every agent sends it); ``None`` otherwise (or when ``data`` is too short)."""
    if len(data) < 8:
        return None
    ext = 8 + 8 * data[4]
    if len(data) < ext + 8 or data[ext] != MobilityAgentAdvertisementExtension.TYPE:
        return None
    return ext + 2


def same_but_sequence(a: bytes, b: bytes) -> bool:
    """``a`` and ``b`` are the same agent advertisement but for the sequence number (and
    so the checksum): the periodic advertisements of an agent whose state did not change
    (RFC 5944 §2.3.2). Both must be well-formed (decoded) already."""
    if len(a) != len(b):
        return False
    off = sequence_offset(a)
    return (
        off is not None
        and off == sequence_offset(b)
        and a[:2] == b[:2]
        and a[4:off] == b[4:off]
        and a[off + 2 :] == b[off + 2 :]
    )


class AdvertisementMemo:
    """Decoded agent advertisements, shared by every receiver of the same bytes.

    Decoding is a pure function of the bytes and an :class:`AgentAdvertisement` is
    immutable, so one decoded object can stand for every copy of the same message:

    * the same bytes again (every node of a link hears one periodic advertisement; a
      simulator hands them all the same ``bytes``): the decoded object is returned as it
      is -- no decode, no new objects, one copy kept however many receivers hold it;
    * the same advertisement but for its sequence number (the next periodic advertisement
      of an agent, RFC 5944 §2.3.2; the answer to a solicitation): only what changes is
      parsed -- the checksum over the new bytes is verified (RFC 1256 §5.2: a message
      whose checksum is wrong is discarded), then the earlier decode is reused with the
      new sequence number (its router addresses, care-of addresses and flags are shared).

    Anything else is decoded in full. Both tables are bounded (oldest dropped first), so
    the memo's memory does not grow with traffic: ``exact`` messages (receivers of one
    message come together: a small table), ``shapes`` contents (about one per agent)."""

    __slots__ = ("_base", "_exact", "_shape", "exact", "hits", "misses", "partial", "shapes")

    def __init__(self, exact: int = 256, shapes: int = 4096) -> None:
        self.exact = exact
        self.shapes = shapes
        #: bytes -> its decode
        self._exact: dict[bytes, AgentAdvertisement] = {}
        #: the bytes without checksum and sequence number -> a decode of one of them
        self._shape: dict[bytes, AgentAdvertisement] = {}
        #: bytes (as in ``_exact``) -> the decode in ``_shape`` for its content
        self._base: dict[bytes, AgentAdvertisement] = {}
        #: decodes avoided, decodes of the sequence number only, full decodes
        self.hits = 0
        self.partial = 0
        self.misses = 0

    def clear(self) -> None:
        self._exact.clear()
        self._shape.clear()
        self._base.clear()

    @staticmethod
    def _keep(
        table: dict[bytes, AgentAdvertisement], size: int, key: bytes, adv: AgentAdvertisement
    ) -> None:
        if len(table) >= size:
            table.pop(next(iter(table)), None)
        table[key] = adv

    def shared(self, adv: AgentAdvertisement) -> AgentAdvertisement:
        """The decode this memo holds for ``adv``'s content but for the sequence number
        (``adv`` itself if none): what a receiver that keeps the content, and the
        sequence number apart, can hold instead of its own copy."""
        raw = adv.raw
        known = self._base.get(raw)  # (the usual case: no slicing)
        if known is not None:
            return known
        off = sequence_offset(raw)
        if off is None:
            return adv
        base = self._shape.get(raw[:2] + raw[4:off] + raw[off + 2 :])
        return adv if base is None else base

    def peek(self, data: bytes) -> AgentAdvertisement | None:
        """The decode of exactly ``data`` if the memo holds it (checksum and all checked
        when it was decoded), else ``None``; nothing decoded, nothing counted (a caller
        that uses it counts it: :attr:`hits`)."""
        return self._exact.get(data)

    def decode(self, data: bytes) -> AgentAdvertisement:
        """:meth:`AgentAdvertisement.decode`, shared (see the class docstring)."""
        data = bytes(data)
        adv = self._exact.get(data)
        if adv is not None:
            self.hits += 1
            return adv
        off = sequence_offset(data)
        shape = None if off is None else data[:2] + data[4:off] + data[off + 2 :]
        base = self._shape.get(shape) if shape is not None else None
        if base is not None and off is not None:
            _check_checksum(data, "agent advertisement")
            adv = base.with_sequence((data[off] << 8) | data[off + 1], data)
            self.partial += 1
        else:
            adv = AgentAdvertisement.decode(data)
            self.misses += 1
            if shape is not None:
                self._keep(self._shape, self.shapes, shape, adv)
                base = adv
        if len(self._exact) >= self.exact:
            self._base.pop(next(iter(self._exact)), None)
        self._keep(self._exact, self.exact, data, adv)
        if base is not None:
            self._base[data] = base
        return adv


#: the process's memo of decoded agent advertisements (:func:`decode_icmp` uses it)
ADVERTISEMENTS = AdvertisementMemo()


__all__ = [
    "ADVERTISEMENTS",
    "ADVERTISEMENT_EXTENSIONS",
    "ADVERTISEMENT_SPACE",
    "NOT_DEFAULT_PREFERENCE",
    "PAD",
    "AdvertisementCode",
    "AdvertisementMemo",
    "AgentAdvertisement",
    "AgentFlags",
    "AgentSolicitation",
    "ChallengeExtension",
    "ICMPType",
    "MobilityAgentAdvertisementExtension",
    "PaddingExtension",
    "PrefixLengthsExtension",
    "RouterAddress",
    "decode_advertisement_extensions",
    "decode_icmp",
    "same_but_sequence",
    "sequence_offset",
]
