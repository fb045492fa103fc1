"""Find Mobile IP messages in an input, decode them, verify their authenticators.

Theory of operation
-------------------
:func:`load_input` turns what the operator gave (``--hex`` text, a raw message file, a pcap
or pcapng capture -- recognised by its magic number) into a stream of :class:`Payload`
objects: UDP port-434 payloads and ICMP types 9 (router / agent advertisement) and 10
(solicitation), each with where it came from (frame number, time, addresses, its offset in
the frame). Frames that cannot be parsed come out as :class:`Payload` objects carrying only
an error, so one bad frame never hides the rest of a capture.

:func:`decode_udp` and :func:`decode_icmp` decode one payload with :mod:`mip4.wire` into a
plain JSON-ready ``dict`` (see :func:`jsonable` for how values are rendered: addresses as
dotted strings, bytes as hex, flags as their value plus the list of set names). Each authentication
extension (32, 33, 34, 36) is checked with :func:`mip4.security.auth.verify` against the
keys given and reported as ``verified: true / false``, or ``null`` with a reason when no key
applies. Malformed messages become a ``dict`` with ``error`` and ``offset`` (from the start
of the message) and, for captures, ``frame_offset``. An unknown non-skippable extension is
reported as a message that "would be discarded (RFC 5944 §1.9)".

Only :class:`InputError` escapes: the input itself cannot be read (no such file, not hex).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag
from ipaddress import IPv4Address
from typing import IO, Any, AnyStr, BinaryIO

from mip4.daemon.validate import file_kind
from mip4.errors import Mip4Error
from mip4.security.auth import (
    CHAP_SPI,
    AuthenticationError,
    AuthFailure,
    verify,
    verify_mn_aaa,
)
from mip4.security.replay import NTP_UNIX_OFFSET, identification_unix_seconds
from mip4.security.sa import MIN_SPI, Algorithm, SecurityAssociation
from mip4.wire import icmp as wire_icmp
from mip4.wire.codes import AgentAdvExtensionType, ExtensionType, MessageType, reply_code_name
from mip4.wire.errors import DecodeError, UnknownExtensionError
from mip4.wire.extensions import (
    Extension,
    RawExtension,
    extension_offsets,
)
from mip4.wire.messages import MESSAGES, Message, decode_message

from . import pcap

MIP_PORT = 434
ICMP_ADVERTISEMENT = 9
ICMP_SOLICITATION = 10
AUTH_TYPES = frozenset({32, 33, 34, 36})
DISCARD_NOTE = "would be discarded (RFC 5944 §1.9)"

#: Exit statuses of ``mip4 decode`` (documented in ``mip4 decode --help``).
EXIT_OK = 0  #: the input was read; every message found was reported (even malformed ones)
EXIT_UNREADABLE = 1  #: the input could not be read (missing file, bad hex, not a message)
EXIT_USAGE = 2  #: bad command line (argparse's own status)
EXIT_STRICT = 3  #: with ``--strict``: some message was malformed or failed verification


class InputError(Mip4Error):
    """The input cannot be read at all. The message names the input and the problem."""


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------

_ALGORITHMS = {
    "hmac-md5": Algorithm.HMAC_MD5,
    "hmac_md5": Algorithm.HMAC_MD5,
    "keyed-md5": Algorithm.KEYED_MD5,
    "keyed_md5": Algorithm.KEYED_MD5,
    "md5": Algorithm.KEYED_MD5,
}


@dataclass(frozen=True)
class Key:
    spi: int
    key: bytes
    algorithm: Algorithm = Algorithm.HMAC_MD5


def parse_key(text: str) -> Key:
    """``SPI=HEX`` or ``SPI=HEX:ALGORITHM`` (``hmac-md5``, the default, or ``keyed-md5``).
    The SPI is decimal or ``0x`` hex. Raises ``ValueError`` naming the problem."""
    spi_text, sep, rest = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r}: expected SPI=HEX[:hmac-md5|keyed-md5]")
    try:
        spi = int(spi_text.strip(), 0)
    except ValueError:
        raise ValueError(f"{text!r}: SPI {spi_text!r} is not a number") from None
    if not 0 <= spi <= 0xFFFFFFFF:
        raise ValueError(f"{text!r}: SPI {spi} does not fit in 32 bits")
    key_text, _, alg_text = rest.partition(":")
    algorithm = Algorithm.HMAC_MD5
    if alg_text:
        try:
            algorithm = _ALGORITHMS[alg_text.strip().lower()]
        except KeyError:
            raise ValueError(
                f"{text!r}: unknown algorithm {alg_text!r} (use hmac-md5 or keyed-md5)"
            ) from None
    try:
        key = parse_hex(key_text)
    except ValueError as e:
        raise ValueError(f"{text!r}: key: {e}") from None
    if not key:
        raise ValueError(f"{text!r}: empty key")
    return Key(spi, key, algorithm)


class KeyRing:
    """The keys given on the command line, by SPI."""

    def __init__(self, keys: Mapping[int, Key] | None = None) -> None:
        self.keys: dict[int, Key] = dict(keys or {})

    def add(self, key: Key) -> None:
        self.keys[key.spi] = key

    def lookup(self, spi: int) -> SecurityAssociation | None:
        k = self.keys.get(spi)
        if k is None or spi < MIN_SPI:
            return None
        return SecurityAssociation(spi, k.key, k.algorithm)


def _auth_result(
    message: Message, ext: Extension, index: int, keys: KeyRing
) -> tuple[bool | None, str | None]:
    """(verified, reason) for the authentication extension number ``index``."""
    spi = int(getattr(ext, "spi", -1))
    t = ext.ext_type
    if t == 36 and getattr(ext, "subtype", None) != 1:
        return (
            None,
            f"generalized authentication subtype {getattr(ext, 'subtype', '?')} not checked",
        )
    key = keys.keys.get(spi)
    if key is None:
        return None, f"no key given for SPI {spi}"
    if spi < MIN_SPI and not (t == 36 and spi == CHAP_SPI):
        return None, f"SPI {spi} is reserved (0-255): no security association may use it"
    try:
        if t == 36 and spi == CHAP_SPI:
            result = verify_mn_aaa(message, chap_key=key.key)  # type: ignore[arg-type]
        else:
            result = verify(message, t, keys.lookup)  # type: ignore[arg-type]
    except AuthenticationError as e:
        if e.reason is AuthFailure.UNKNOWN_SPI:
            return None, str(e)
        return False, str(e)
    if result.index != index:  # pragma: no cover - verify found a different one
        return False, f"verified extension {result.index}, not {index}"
    return True, None


# ---------------------------------------------------------------------------------------------
# Values to JSON
# ---------------------------------------------------------------------------------------------

_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")


def _text(b: bytes) -> str | None:
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return s if s and _PRINTABLE.match(s) else None


def flag_names(v: IntFlag) -> list[str]:
    return [m.name for m in type(v) if m.value and m.name and (v & m.value) == m.value]


def jsonable(v: object) -> Any:
    """A JSON-ready rendering of a codec value."""
    if v is None or isinstance(v, bool | str | float):
        return v
    if isinstance(v, IntFlag):
        return int(v)
    if isinstance(v, Enum):
        return v.value if isinstance(v, IntEnum) else str(v.value)
    if isinstance(v, int):
        return v
    if isinstance(v, IPv4Address):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return fields_of(v)
    if isinstance(v, tuple | list):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return str(v)


def fields_of(obj: Any, skip: frozenset[str] = frozenset({"raw", "extensions"})) -> dict[str, Any]:
    """The dataclass fields of ``obj``; flags also get ``<name>_names`` (the set flags),
    enums ``<name>_name``, and printable byte strings ``<name>_text``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.name in skip or f.name.startswith("_"):
            continue
        v = getattr(obj, f.name)
        out[f.name] = jsonable(v)
        if isinstance(v, IntFlag):
            out[f.name + "_names"] = flag_names(v)
        elif isinstance(v, Enum):
            out[f.name + "_name"] = v.name.lower()
        elif isinstance(v, bytes) and (t := _text(v)) is not None:
            out[f.name + "_text"] = t
    code_name = getattr(obj, "code_name", None)
    if isinstance(code_name, str):
        out["code_name"] = code_name
    return out


#: 2036-02-07T06:28:16Z, where NTP era 1 begins: the era closest to it is the RFC 4330 §3
#: rule (top bit of the seconds set: era 0, 1968--2036; clear: era 1, 2036--2104).
NTP_ERA_PIVOT = 2**32 - NTP_UNIX_OFFSET


def ntp_time(identification: int) -> str:
    """The Identification read as a 64-bit NTP timestamp (RFC 5944 §5.7.1), in ISO form.
    Meaningful for timestamp replay protection; with nonces it is just a number."""
    secs = identification_unix_seconds(identification, near_unix=NTP_ERA_PIVOT)
    try:
        return _dt.datetime.fromtimestamp(secs, _dt.UTC).isoformat(timespec="microseconds")
    except (OverflowError, OSError, ValueError):  # pragma: no cover - platform limits
        return "out of range"


def _enum_name(enum: type[IntEnum], value: int, default: str) -> str:
    try:
        return enum(value).name.lower()
    except ValueError:
        return default


def message_name(t: int) -> str:
    return _enum_name(MessageType, t, f"unknown message type {t}")


def extension_name(t: int, icmp: bool = False) -> str:
    if icmp:
        return _enum_name(AgentAdvExtensionType, t, f"unknown ICMP extension {t}")
    return _enum_name(ExtensionType, t, f"unknown extension {t}")


def extension_json(ext: Extension, icmp: bool = False, offset: int | None = None) -> dict[str, Any]:
    t = ext.ext_type
    d: dict[str, Any] = {"type": t, "name": extension_name(t, icmp)}
    if offset is not None:
        d["offset"] = offset
    if isinstance(ext, RawExtension):
        d["skipped"] = True
        d["note"] = "unrecognised skippable extension: ignored (RFC 5944 §1.9)"
    d["fields"] = fields_of(ext, frozenset({"raw"}))
    return d


# ---------------------------------------------------------------------------------------------
# Decoding one payload
# ---------------------------------------------------------------------------------------------


def _offsets(msg: object) -> tuple[int, ...] | None:
    raw = getattr(msg, "raw", b"")
    fixed = getattr(type(msg), "FIXED_LEN", None)
    if not raw or not isinstance(fixed, int) or not hasattr(msg, "extensions"):
        return None
    try:
        return extension_offsets(raw, fixed)
    except (IndexError, ValueError):  # pragma: no cover - raw already decoded
        return None


def _inner_packet(next_header: int, payload: bytes) -> dict[str, Any]:
    """A summary of the packet a Tunnel Data message carries (RFC 3519 §3.3)."""
    if next_header != 4:
        return {"next_header": next_header, "length": len(payload)}
    try:
        d = pcap.parse_ipv4(payload)
    except pcap.FrameError as e:
        return {"error": str(e)}
    return {"src": str(d.src), "dst": str(d.dst), "protocol": d.protocol, "length": len(payload)}


def message_fields(msg: Message) -> dict[str, Any]:
    """:func:`fields_of` a UDP-434 message, with the reply code's name and the
    Identification read as an NTP time."""
    fields = fields_of(msg)
    if msg.TYPE == MessageType.REGISTRATION_REPLY and "code" in fields:
        fields["code_name"] = reply_code_name(fields["code"])
    if isinstance(fields.get("identification"), int):
        fields["identification_ntp"] = ntp_time(fields["identification"])
    return fields


def decode_udp(payload: bytes, keys: KeyRing) -> dict[str, Any]:
    """Decode one UDP-434 payload into its JSON form (never raises DecodeError)."""
    t = payload[0] if payload else None
    out: dict[str, Any] = {"protocol": "udp"}
    if t is not None:
        out["type"] = t
        out["name"] = message_name(t)
    try:
        msg = decode_message(payload)
    except UnknownExtensionError as e:
        out["error"] = str(e)
        out["offset"] = e.offset
        out["unknown_extension_type"] = e.ext_type
        out["discarded"] = True
        out["note"] = DISCARD_NOTE
        cls = MESSAGES.get(t) if t is not None else None
        fixed = getattr(cls, "FIXED_LEN", None)
        if cls is not None and isinstance(fixed, int):
            with contextlib.suppress(DecodeError):  # the fixed part alone: show it
                out["fields"] = message_fields(cls.decode(payload[:fixed]))
        return out
    except DecodeError as e:
        out["error"] = str(e)
        out["offset"] = e.offset
        return out
    out["length"] = len(payload)
    out["fields"] = message_fields(msg)
    if t == MessageType.TUNNEL_DATA:
        out["inner"] = _inner_packet(getattr(msg, "next_header", -1), getattr(msg, "payload", b""))
    exts: tuple[Extension, ...] = getattr(msg, "extensions", ())
    offsets = _offsets(msg)
    ext_list: list[dict[str, Any]] = []
    for i, ext in enumerate(exts):
        d = extension_json(ext, offset=offsets[i] if offsets and i < len(offsets) else None)
        if ext.ext_type in AUTH_TYPES:
            verified, reason = _auth_result(msg, ext, i, keys)
            d["verified"] = verified
            if reason is not None:
                d["reason"] = reason
        ext_list.append(d)
    out["extensions"] = ext_list
    return out


def decode_icmp(message: bytes) -> dict[str, Any]:
    """Decode one ICMP message (type 9 or 10) into its JSON form (never raises DecodeError)."""
    out: dict[str, Any] = {"protocol": "icmp"}
    if message:
        out["type"] = message[0]
        out["name"] = {9: "agent_advertisement", 10: "agent_solicitation"}.get(
            message[0], f"icmp type {message[0]}"
        )
    try:
        msg = wire_icmp.decode_icmp(message)
    except UnknownExtensionError as e:
        out["error"] = str(e)
        out["offset"] = e.offset
        out["unknown_extension_type"] = e.ext_type
        out["discarded"] = True
        out["note"] = DISCARD_NOTE
        return out
    except DecodeError as e:
        out["error"] = str(e)
        out["offset"] = e.offset
        return out
    out["length"] = len(message)
    out["fields"] = fields_of(msg)
    exts: tuple[Extension, ...] = getattr(msg, "extensions", ())
    pos = 8 + 8 * len(getattr(msg, "router_addresses", ()))
    ext_list = []
    for ext in exts:
        ext_list.append(extension_json(ext, icmp=True, offset=pos))
        pos += len(ext.encode())  # RFC 5944 §2.1: one byte for Pad, else 2 + Length
    out["extensions"] = ext_list
    return out


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """One message found in the input (or one frame that could not be parsed: ``error``)."""

    protocol: str  #: "udp" or "icmp" ("" when ``error`` is set)
    data: bytes
    source: dict[str, Any]  #: frame, time, src, dst, sport, dport, frame_offset
    error: str | None = None


_HEX_JUNK = re.compile(r"0x|[\s:.,_-]")


def parse_hex(text: str) -> bytes:
    """Bytes from hex text; whitespace, colons and ``0x`` prefixes are ignored."""
    cleaned = _HEX_JUNK.sub("", text.strip())
    if len(cleaned) % 2:
        raise ValueError(f"odd number of hex digits ({len(cleaned)})")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        bad = next((c for c in cleaned if c not in "0123456789abcdefABCDEF"), "?")
        raise ValueError(f"not hex: unexpected character {bad!r}") from None


def _looks_like_ipv4(data: bytes) -> bool:
    if len(data) < 20 or data[0] >> 4 != 4 or (data[0] & 0xF) < 5:
        return False
    return int.from_bytes(data[2:4], "big") == len(data)


def _from_datagram(
    dgram: pcap.Datagram, source: dict[str, Any], whole: bool = False
) -> Iterator[Payload]:
    """The payload of interest in ``dgram``; ``whole``: a reassembled datagram, whose
    offsets are not frame offsets."""
    src = {**source, "src": str(dgram.src), "dst": str(dgram.dst)}
    if dgram.fragment:
        if dgram.first_fragment and dgram.protocol in (1, 17):
            yield Payload("", b"", src, "fragment of an IPv4 datagram (not reassembled)")
        return
    try:
        if dgram.protocol == 17:
            udp = pcap.parse_udp(dgram)
            if MIP_PORT in (udp.sport, udp.dport):
                where = {} if whole else {"frame_offset": udp.offset}
                yield Payload(
                    "udp", udp.payload, {**src, "sport": udp.sport, "dport": udp.dport, **where}
                )
        elif dgram.protocol == 1:
            icmp = pcap.parse_icmp(dgram)
            if icmp.type in (ICMP_ADVERTISEMENT, ICMP_SOLICITATION):
                where = {} if whole else {"frame_offset": icmp.offset}
                yield Payload("icmp", icmp.message, {**src, **where})
    except pcap.FrameError as e:
        yield Payload("", b"", src, str(e))


def _time_iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="microseconds")


def payloads_from_capture(source: bytes | BinaryIO, head: bytes = b"") -> Iterator[Payload]:
    """Every UDP-434 and ICMP 9/10 payload of a pcap/pcapng, bytes or a stream read as it
    comes (``head``: its first bytes, already read). Raises :class:`pcap.CaptureError`
    at once if it is not a capture."""
    return _capture_payloads(pcap.read_capture(source, head))


def _capture_payloads(records: Iterator[pcap.Record]) -> Iterator[Payload]:
    reassembler = pcap.Reassembler()
    unsupported: set[int] = set()
    while True:
        try:
            rec = next(records, None)
        except pcap.CaptureError as e:
            yield Payload("", b"", {}, f"{e}; the rest of the capture is not read")
            break
        if rec is None:
            break
        source: dict[str, Any] = {
            "frame": rec.number,
            "time": round(rec.timestamp, 9),
            "time_iso": _time_iso(rec.timestamp),
        }
        if rec.problem is not None:
            yield Payload("", b"", {**source, "file_offset": rec.offset}, rec.problem)
            continue
        if rec.cut_short and not rec.data:
            yield Payload("", b"", source, "capture file ends inside this record")
            continue
        try:
            dgram = pcap.parse_frame(rec.linktype, rec.data)
        except pcap.UnsupportedLinkType as e:
            if e.linktype not in unsupported:  # the same for every frame: say it once
                unsupported.add(e.linktype)
                yield Payload(
                    "", b"", source, f"{e}: this and later frames of link type {e.linktype} "
                    "are skipped"
                )  # fmt: skip
            continue
        except pcap.FrameError as e:
            note = " (capture file ends inside this record)" if rec.cut_short else ""
            if rec.orig_len > len(rec.data) and not rec.cut_short:
                note = f" (frame captured {len(rec.data)} of {rec.orig_len} bytes)"
            yield Payload("", b"", source, f"{e}{note}")
            continue
        if dgram is None:
            continue
        if dgram.fragment and dgram.protocol in (1, 17):
            done = reassembler.add(dgram, rec.number, rec.timestamp)
            for g in reassembler.take_given_up():
                yield _given_up(g.frames, f"given up: {g.reason}")
            if done is not None:
                whole, frames = done
                yield from _from_datagram(whole, {**source, "reassembled_from": frames}, True)
            continue
        yield from _from_datagram(dgram, source)
    for frames in reassembler.pending():
        yield _given_up(frames, "never completed")


def _given_up(frames: list[int], what: str) -> Payload:
    return Payload(
        "",
        b"",
        {"frame": frames[-1], "fragments": frames},
        f"fragmented IPv4 datagram {what} (fragments in frames {frames})",
    )


def payloads_from_bytes(data: bytes) -> Iterator[Payload]:
    """The message(s) in a raw buffer: an IPv4 packet (UDP 434 or ICMP 9/10), an ICMP
    message (first byte 9 or 10, which are not UDP-434 message types), or a UDP-434
    payload."""
    if _looks_like_ipv4(data):
        try:
            dgram = pcap.parse_ipv4(data)
        except pcap.FrameError as e:
            yield Payload("", b"", {}, str(e))
            return
        yield from _from_datagram(dgram, {})
    elif data[:1] in (b"\x09", b"\x0a"):
        yield Payload("icmp", data, {})
    else:
        yield Payload("udp", data, {})


#: Largest raw message read (not a capture): an IPv4 datagram is at most 65,535 bytes.
MAX_RAW_BYTES = 65535
#: Largest hex text read (``--hex -``, ``--hex FILE``): a 65,535-byte message with spaces.
MAX_HEX_CHARS = 1 << 20


def open_input(path: str) -> BinaryIO:
    """``path`` opened for reading: a regular file, or a pipe (read as it comes, like
    standard input). A directory or a device (``/dev/zero``) raises :class:`InputError`
    without being read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise InputError(f"{path}: is a directory")
        raise InputError(f"{path}: {file_kind(mode)}, not a capture or message file")
    return os.fdopen(fd, "rb")


def read_text_input(path: str, limit: int = MAX_HEX_CHARS) -> str:
    """The text of ``path`` (hex digits: ASCII, anything else replaced), at most ``limit``
    bytes of it; :class:`InputError` otherwise."""
    with open_input(path) as f:
        data = _read_bounded(f, limit, path, "hex text", b"")
    return data.decode("ascii", "replace")


def _read_bounded(stream: IO[AnyStr], limit: int, name: str, what: str, head: AnyStr) -> AnyStr:
    """``head`` and the rest of ``stream``, at most ``limit`` bytes (or characters) in
    all; more is an :class:`InputError` (never read into memory whole)."""
    parts = [head]
    size = len(head)
    while size <= limit:
        chunk = stream.read(min(1 << 16, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    if size > limit:
        raise InputError(f"{name}: more than {limit} bytes, too long for {what}")
    return head[:0].join(parts)


def load_input(path: str | None, hex_text: str | None, stdin: Any = None) -> Iterator[Payload]:
    """The payloads of the operator's input. Raises :class:`InputError` (naming the file
    and the problem) if it cannot be read.

    A capture (a file, a pipe or standard input) is read as it comes: the first payload
    comes out as soon as its frame is read. Anything else is one raw message, read whole
    up to :data:`MAX_RAW_BYTES`."""
    if hex_text is not None:
        where = "--hex"
        if hex_text == "-":
            where = "standard input"
            hex_text = (
                ""
                if stdin is None
                else _read_bounded(stdin, MAX_HEX_CHARS, where, "hex text", stdin.read(0))
            )
            if isinstance(hex_text, bytes):
                hex_text = hex_text.decode("ascii", "replace")
        try:
            data = parse_hex(hex_text)
        except ValueError as e:
            raise InputError(f"{where}: {e}") from None
        if not data:
            raise InputError(f"{where}: no bytes")
        return payloads_from_bytes(data)
    if path is None or path == "-":
        name = "standard input"
        if stdin is None:
            raise InputError("no input: give a file, '-' or --hex")
        stream: BinaryIO = stdin.buffer if hasattr(stdin, "buffer") else stdin
        owned = False
    else:
        name = path
        stream = open_input(path)
        owned = True
    try:
        head = stream.read(4)
        while 0 < len(head) < 4:  # a pipe may deliver less
            more = stream.read(4 - len(head))
            if not more:
                break
            head += more
        if not head:
            raise InputError(f"{name}: empty")
        if pcap.detect_format(head):
            try:
                payloads = payloads_from_capture(stream, head)
            except pcap.CaptureError as e:
                raise InputError(f"{name}: {e}") from None
            return _closing(payloads, stream if owned else None)
        data = _read_bounded(stream, MAX_RAW_BYTES, name, "one message (and not a capture)", head)
    except BaseException:
        if owned:
            stream.close()
        raise
    if owned:
        stream.close()
    return payloads_from_bytes(data)


def _closing(payloads: Iterator[Payload], stream: BinaryIO | None) -> Iterator[Payload]:
    try:
        yield from payloads
    finally:
        if stream is not None:
            stream.close()


def decode_all(payloads: Iterator[Payload], keys: KeyRing) -> Iterator[dict[str, Any]]:
    """One JSON-ready dict per payload: its source fields followed by the decoded message
    (or the frame error). Message offsets are also given as ``frame_offset`` for captures."""
    for p in payloads:
        out: dict[str, Any] = dict(p.source)
        if p.error is not None:
            out["error"] = p.error
            yield out
            continue
        base = out.pop("frame_offset", None)
        result = decode_udp(p.data, keys) if p.protocol == "udp" else decode_icmp(p.data)
        out.update(result)
        if base is not None:
            out["payload_offset"] = base
            if isinstance(out.get("offset"), int):
                out["frame_offset"] = base + out["offset"]
        yield out


def has_problem(obj: Mapping[str, Any]) -> bool:
    """A decoded object that was malformed, discarded, or failed verification."""
    if "error" in obj:
        return True
    return any(e.get("verified") is False for e in obj.get("extensions", ()))


__all__ = [
    "DISCARD_NOTE",
    "EXIT_OK",
    "EXIT_STRICT",
    "EXIT_UNREADABLE",
    "EXIT_USAGE",
    "MAX_HEX_CHARS",
    "MAX_RAW_BYTES",
    "InputError",
    "Key",
    "KeyRing",
    "Payload",
    "decode_all",
    "decode_icmp",
    "decode_udp",
    "extension_json",
    "fields_of",
    "has_problem",
    "jsonable",
    "load_input",
    "open_input",
    "parse_hex",
    "parse_key",
    "payloads_from_bytes",
    "payloads_from_capture",
    "read_text_input",
]
