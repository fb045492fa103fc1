"""The log line's fast paths (issue 13) render exactly what the general code renders."""

from __future__ import annotations

import json
import time
from enum import Enum, IntEnum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from mip4.daemon import logs


class _Code(IntEnum):
    OK = 0


class _Kind(Enum):
    A = "a b"
    B = 3


def _plain_reference(value: object) -> object:
    """:func:`logs.plain` as it was before the fast paths."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, Enum):
        v = value.value
        return v if isinstance(v, int | str) else value.name.lower()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, IPv4Address | IPv4Network | IPv4Interface):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex(":")
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain_reference(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_reference(v) for k, v in value.items()}
    return str(value)


def _text_reference(value: object) -> str:
    """``logs._text_value`` as it was before the fast paths."""
    v = _plain_reference(value)
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    s = str(v)
    if not s or any(c.isspace() or c in '"=' for c in s):
        return json.dumps(s, ensure_ascii=False)
    return s


VALUES: list[object] = [
    None, True, False, 0, -7, 2**70, 1.5, float("nan"), "", "x", "a b", "a\u00a0b",
    "a\u2028b", "tab\there", 'q"q', "k=v", "ünï", "\x1c", _Code.OK, _Kind.A, _Kind.B,
    IPv4Address("10.0.0.1"), IPv4Network("10.0.0.0/8"), IPv4Interface("10.0.0.1/24"),
    b"\x00\xff", bytearray(b"ab"), [1, "a b"], ("x",), {"k": IPv4Address("1.2.3.4")},
    frozenset({1}), object,
]  # fmt: skip


def test_plain_and_text_value_match_the_reference() -> None:
    for value in VALUES:
        assert logs.plain(value) == _plain_reference(value) or value != value
        assert logs._text_value(value) == _text_reference(value), value
    for c in map(chr, range(0x3000)):  # every whitespace the old per-character test saw
        assert logs._text_value(f"a{c}") == _text_reference(f"a{c}"), hex(ord(c))


def test_timestamp_matches_strftime_per_line() -> None:
    for t in (0.0, 1.5, 1_790_000_000.123456, 1_790_000_001.0, 1_790_000_000.999999, 59.25):
        us = int(t * 1_000_000) % 1_000_000
        want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{us:06d}Z"
        assert logs._timestamp(t) == want
