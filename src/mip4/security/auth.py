"""Authenticators: computing, appending (signing) and checking them.

Theory of operation
-------------------
Every authentication extension -- MN-HA (32), MN-FA (33), FA-HA (34) and the generalized
extension (36, subtype 1 = MN-AAA) -- carries ``SPI(4) Authenticator``, and the
authenticator covers (RFC 5944 §3.5.1, RFC 4721 §5):

* the UDP payload's fixed part (Registration Request or Reply),
* all prior extensions in their entirety, and
* the Type, Length (and Subtype, long format) and SPI of this extension,

i.e. the bytes ``raw[0 : start_of_this_extension + header + 4]``. The authenticator itself,
the UDP header and any extension *after* this one are not covered. :func:`covered_bytes`
returns exactly that span. (RFC 2002 covered Type and Length but not the SPI; an association
with ``spi_covered=False`` speaks that dialect, for old mobile nodes.)

**Always the bytes as received.** :func:`verify` works on ``message.raw``, the exact bytes
the decoder was given (STYLE.md practice 5), never on a re-serialisation: a peer's
encoding choices (a skippable extension we keep as :class:`RawExtension`, padding in an
NAI, ...) must not change what we authenticate. A message built locally has an empty
``raw``; pass it through :func:`with_raw` (which encodes it once) before verifying it.
:func:`sign` produces messages whose ``raw`` is their exact encoding, so a signed message
can be verified, relayed or signed again without re-encoding.

Ordering rules enforced by :func:`verify` (the extension's position decides what it
protects, so a misplaced one is rejected with :attr:`AuthFailure.MISPLACED`):

* RFC 5944 §3.6.1.3 (request) and §3.8.3.1 (reply): the MN-HA extension follows every
  extension the home agent (resp. mobile node) uses and precedes the extensions used only
  by the foreign agent and the MN-FA / FA-HA extensions. Enforced: no MN-FA (33) or FA-HA
  (34) extension may come before the MN-HA extension.
* RFC 5944 §3.6.1.3 item 5: the MN-FA extension is the last one the mobile node adds.
  Enforced: it must follow the MN-HA extension and any MN-AAA extension (so it covers
  them), and no FA-HA extension may precede it.
* RFC 5944 §3.7.2.2 (the FA appends FA-HA to the request it relays) and §3.8.3.1 item 5
  (FA-HA is last in the HA's reply): the FA-HA extension must follow every MN-HA, MN-FA and
  MN-AAA extension in the message.
* RFC 4721 §3.1/§5: the MN-FA Challenge extension (132) must precede the MN-AAA extension
  (the authenticator covers it); no MN-FA or FA-HA may precede the MN-AAA extension.
* Exactly one extension of the type being verified (a second one is
  :attr:`AuthFailure.DUPLICATE`): two MN-HA extensions would let an attacker choose which
  one the receiver trusts.

Extensions that follow the verified one are **not** authenticated by it;
:attr:`VerifyResult.index` tells the engine which extensions it may trust
(``message.extensions[:result.index]``). In particular RFC 5944 §3.8.1/§3.6.1.3: the home
agent must ignore, for its own decisions, anything after the MN-HA extension.

Foreign-agent relaying (RFC 5944 §3.7.2.2, §3.7.3.2; Solaris ``mipagent``): the FA checks
MN-FA, cuts the request after the last extension the mobile node authenticated for its
home agent / AAA server (MN-HA, or a later MN-AAA) with :func:`strip_for_relay` (built on
:func:`strip_after`), may add its own extensions with :func:`append_extensions`, and appends
FA-HA with :func:`sign`. On the reply it checks FA-HA, strips it with :func:`strip_auth`
(:func:`truncate_before`) and relays (optionally appending MN-FA with :func:`sign`).

Algorithms (RFC 5944 §3.5.1): HMAC-MD5 (RFC 2104), the default; and for old peers the
RFC 2002 prefix+suffix keyed MD5, ``MD5(key || data || key)``. MN-AAA (RFC 4721 §5, §7) is
HMAC-MD5 like the others, except with SPI 2 (CHAP_SPI), see :func:`mn_aaa_chap`.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from mip4.errors import Mip4Error
from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import (
    LONG,
    REGISTRATION_EXTENSIONS,
    SHORT,
    Extension,
    ForeignHomeAuthExtension,
    GeneralizedAuthExtension,
    GeneralizedAuthSubtype,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    extension_offsets,
)

from .sa import Algorithm, SecurityAssociation

MN_HA = MobileHomeAuthExtension.TYPE  # 32
MN_FA = MobileForeignAuthExtension.TYPE  # 33
FA_HA = ForeignHomeAuthExtension.TYPE  # 34
GENERALIZED = GeneralizedAuthExtension.TYPE  # 36
CHALLENGE = MobileForeignChallengeExtension.TYPE  # 132
NAI = MobileNodeNAIExtension.TYPE  # 131

#: RFC 4721 §7: the SPI meaning "CHAP-style MN-AAA authenticator" (Solaris RADIUS_SPI,
#: Qualcomm MIP_CHAP_SPI).
CHAP_SPI = 2
#: Length of an MD5 authenticator (both algorithms).
AUTHENTICATOR_LEN = 16

_U32 = struct.Struct("!I")
_SHORT_AUTH_HDR = struct.Struct("!BBI")  # Type, Length, SPI
_LONG_AUTH_HDR = struct.Struct("!BBHI")  # Type, Subtype, Length, SPI
_md5 = hashlib.md5
_hmac_digest = hmac.digest
_compare = hmac.compare_digest
_new = object.__new__
_setattr = object.__setattr__


class AuthenticatedMessage(Protocol):
    """A message that ends in an extension area: Registration Request and Reply, and any
    other UDP-434 message shaped the same way (``FIXED_LEN``, ``extensions``, ``raw``)."""

    FIXED_LEN: ClassVar[int]

    @property
    def extensions(self) -> tuple[Extension, ...]: ...

    @property
    def raw(self) -> bytes: ...

    def encode(self) -> bytes: ...


M = TypeVar("M", bound=AuthenticatedMessage)
Lookup = Callable[[int], SecurityAssociation | None]


class AuthFailure(Enum):
    """Why an authenticator was not accepted."""

    MISSING = "missing authentication extension"
    DUPLICATE = "more than one authentication extension of this type"
    MISPLACED = "authentication extension not where RFC 5944 requires it"
    UNKNOWN_SPI = "no security association for this SPI"
    BAD_AUTHENTICATOR = "authenticator does not match"
    NO_RAW_BYTES = "message has no received bytes to authenticate"
    MISSING_CHALLENGE = "MN-AAA authenticator needs an MN-FA Challenge extension"


class AuthenticationError(Mip4Error, ValueError):
    """An authenticator check failed. ``reason`` says why; ``ext_type`` and ``spi`` say
    which extension (``spi`` is ``None`` when there was no extension)."""

    def __init__(
        self,
        reason: AuthFailure,
        ext_type: int,
        spi: int | None = None,
        detail: str = "",
    ) -> None:
        msg = f"extension {ext_type}: {reason.value}"
        if spi is not None:
            msg += f" (SPI {spi})"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)
        self.reason = reason
        self.ext_type = ext_type
        self.spi = spi


@dataclass(frozen=True)
class VerifyResult:
    """A successful check: the extension, where it is, and the association that
    authenticated it. Only ``message.extensions[:index]`` are covered by it."""

    index: int
    extension: Extension
    sa: SecurityAssociation | None
    #: Offset in ``raw`` where the extension starts and ends.
    start: int
    end: int

    @property
    def spi(self) -> int:
        return int(getattr(self.extension, "spi", -1))


# ----------------------------------------------------------------------------------------
# Algorithms
# ----------------------------------------------------------------------------------------


def hmac_md5(key: bytes, data: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104)."""
    return _hmac_digest(key, data, "md5")


def keyed_md5(key: bytes, data: bytes) -> bytes:
    """RFC 2002 §3.5.1 "prefix+suffix" keyed MD5: ``MD5(key || data || key)``."""
    h = _md5(key)
    h.update(data)
    h.update(key)
    return h.digest()


def compute_authenticator(algorithm: Algorithm, key: bytes, data: bytes) -> bytes:
    """The authenticator of ``data`` (already the exact covered span) with ``key``."""
    if algorithm == Algorithm.HMAC_MD5:
        return _hmac_digest(key, data, "md5")
    if algorithm == Algorithm.KEYED_MD5:
        return keyed_md5(key, data)
    raise ValueError(f"unknown authentication algorithm {algorithm!r}")


def mn_aaa_chap(key: bytes, data: bytes, challenge: bytes) -> bytes:
    """The MN-AAA authenticator for SPI 2 (CHAP_SPI), RFC 4721 §7 (RFC 3012 §8)::

        MD5(high-order byte of Challenge || Key ||
            MD5(preceding Mobile IP data || Type, Subtype, Length, SPI) ||
            least-order 237 bytes of Challenge)

    ``data`` is :func:`covered_bytes` of the MN-AAA extension. A challenge of 237 bytes or
    less is used whole in the last part (so its first byte appears twice). This is the
    RADIUS CHAP computation (RFC 2865 CHAP-Password = MD5(ID || secret || challenge)) with
    the first challenge byte as CHAP ID and the hashed registration prepended to the
    challenge. Qualcomm's ``mip_auth_calc_chap`` computes the same; it omits both challenge
    parts when the challenge is empty, which RFC 4721 does not allow -- we require one.
    """
    if not challenge:
        raise ValueError("MN-AAA CHAP authenticator needs a non-empty challenge (RFC 4721 §7)")
    h = _md5(challenge[:1])
    h.update(key)
    h.update(_md5(data).digest())
    h.update(challenge[-237:])
    return h.digest()


# ----------------------------------------------------------------------------------------
# Bytes as received
# ----------------------------------------------------------------------------------------


def _header_len(data: bytes, pos: int) -> int:
    """Header length (2 short, 4 long: RFC 5944 §1.9/§1.10) of the extension at ``pos``."""
    cls = REGISTRATION_EXTENSIONS.get(data[pos])
    return LONG.header_len if cls is not None and cls.FORMAT is LONG else SHORT.header_len


def covered_bytes(raw: bytes, fixed_len: int, index: int) -> bytes:
    """The exact bytes the authenticator of extension number ``index`` covers
    (RFC 5944 §3.5.1): ``raw`` from the start through this extension's SPI."""
    offsets = extension_offsets(raw, fixed_len)
    if not 0 <= index < len(offsets):
        raise IndexError(f"no extension {index}: the message has {len(offsets)}")
    pos = offsets[index]
    return raw[: pos + _header_len(raw, pos) + 4]


def with_raw(message: M) -> M:
    """``message`` with ``raw`` set to its encoding. A locally built message (``raw`` empty)
    must go through this -- explicitly -- before :func:`verify`; a decoded message keeps the
    bytes it was decoded from."""
    if message.raw:
        return message
    return _copy(message, message.extensions, message.encode())


def _copy(message: M, extensions: tuple[Extension, ...], raw: bytes) -> M:
    # Frozen dataclass copy without re-running the field-by-field __init__ (hot path).
    o: M = _new(type(message))
    d: dict[str, Any] = dict(message.__dict__)
    d["extensions"] = extensions
    d["raw"] = raw
    _setattr(o, "__dict__", d)
    return o


def _encoded(message: AuthenticatedMessage) -> bytes:
    """The bytes to extend: ``raw`` if the message has them, else its encoding (once)."""
    raw = message.raw
    if not raw:
        return message.encode()
    return raw


def _check_raw(message: AuthenticatedMessage, raw: bytes, fixed: int) -> tuple[int, ...]:
    """Offsets of the extensions in ``raw``; raise if ``raw`` does not hold exactly the
    message's extensions (a ``dataclasses.replace`` that changed ``extensions`` keeps the
    old ``raw``: catch it rather than sign or strip stale bytes)."""
    offsets = extension_offsets(raw, fixed)
    if len(offsets) != len(message.extensions) or len(raw) < fixed:
        raise ValueError(
            f"message raw bytes hold {len(offsets)} extension(s) but the message has "
            f"{len(message.extensions)}: raw is stale (built with dataclasses.replace?); "
            "rebuild the message or clear raw"
        )
    return offsets


# ----------------------------------------------------------------------------------------
# Signing
# ----------------------------------------------------------------------------------------


def sign(
    message: M,
    ext_cls: type[MobileHomeAuthExtension]
    | type[MobileForeignAuthExtension]
    | type[ForeignHomeAuthExtension],
    sa: SecurityAssociation,
) -> M:
    """A copy of ``message`` with an authentication extension of class ``ext_cls`` appended,
    computed with ``sa`` over the message's bytes (``raw`` when present -- e.g. a relayed
    request -- else its encoding, computed once). The result's ``raw`` is its exact
    encoding."""
    if ext_cls.FORMAT is not SHORT or ext_cls.TYPE not in (MN_HA, MN_FA, FA_HA):
        raise TypeError(
            f"sign() appends MN-HA, MN-FA or FA-HA, not {ext_cls.__name__}; "
            "use sign_mn_aaa() for the generalized (MN-AAA) extension"
        )
    base = message.raw
    if base:
        _check_raw(message, base, type(message).FIXED_LEN)
    else:
        base = message.encode()
    signed = signed_bytes(base, ext_cls.TYPE, sa)
    ext = _new(ext_cls)
    _setattr(ext, "__dict__", {"spi": sa.spi, "authenticator": signed[-AUTHENTICATOR_LEN:]})
    return _copy(message, (*message.extensions, ext), signed)


def signed_bytes(base: bytes, ext_type: int, sa: SecurityAssociation) -> bytes:
    """``base`` (a message's exact bytes) with an MN-HA, MN-FA or FA-HA extension
    (``ext_type`` 32, 33 or 34) computed with ``sa`` appended: the bytes of what
    :func:`sign` returns, for a sender that needs only them (a home agent's reply goes
    straight into a datagram: no message object is built around it). The type is not
    checked here: :func:`sign` does it."""
    covered = base + _SHORT_AUTH_HDR.pack(ext_type, 4 + AUTHENTICATOR_LEN, sa.spi)
    auth = sa.authenticator(covered if sa.spi_covered else covered[:-4])  # RFC 2002 coverage
    return covered + auth


def sign_mn_aaa(
    message: M,
    spi: int,
    key: bytes,
    *,
    challenge: bytes | None = None,
    algorithm: Algorithm = Algorithm.HMAC_MD5,
) -> M:
    """Append a Generalized Authentication extension, subtype MN-AAA (RFC 4721 §5).

    With ``spi == CHAP_SPI`` (2) the authenticator is :func:`mn_aaa_chap` with the challenge
    of the MN-FA Challenge extension (132) that must already be in the message (or the one
    passed in ``challenge``). Other SPIs use ``algorithm`` (HMAC-MD5 by default, RFC 4721
    §5) like the MN-HA authenticator. ``spi`` is not checked against the reserved range:
    the MN-AAA SPI is the AAA server's business, and CHAP_SPI is itself reserved."""
    if not 0 <= spi <= 0xFFFFFFFF:
        raise ValueError(f"SPI {spi} does not fit in 32 bits")
    if not key:
        raise ValueError("MN-AAA key must not be empty")
    base = _encoded(message)
    covered = base + _LONG_AUTH_HDR.pack(
        GENERALIZED, GeneralizedAuthSubtype.MN_AAA, 4 + AUTHENTICATOR_LEN, spi
    )
    if spi == CHAP_SPI:
        if challenge is None:
            challenge = _last_challenge(message.extensions, len(message.extensions))
            if challenge is None:
                raise ValueError(
                    "MN-AAA with CHAP_SPI needs an MN-FA Challenge extension (132) before it "
                    "(RFC 4721 §3.1)"
                )
        auth = mn_aaa_chap(key, covered, challenge)
    else:
        auth = compute_authenticator(algorithm, key, covered)
    ext = GeneralizedAuthExtension(GeneralizedAuthSubtype.MN_AAA, spi, auth)
    return _copy(message, (*message.extensions, ext), covered + auth)


def _last_challenge(extensions: tuple[Extension, ...], before: int) -> bytes | None:
    for ext in reversed(extensions[:before]):
        if isinstance(ext, MobileForeignChallengeExtension):
            return ext.challenge
    return None


# ----------------------------------------------------------------------------------------
# Verifying
# ----------------------------------------------------------------------------------------


def _is_mn_aaa(ext: Extension) -> bool:
    return (
        isinstance(ext, GeneralizedAuthExtension) and ext.subtype == GeneralizedAuthSubtype.MN_AAA
    )


def _kind(ext: Extension) -> int:
    """32/33/34 for those, 36 for MN-AAA, 0 for anything else (other generalized subtypes
    are not ordered by these rules)."""
    t = ext.ext_type
    if t in (MN_HA, MN_FA, FA_HA):
        return t
    if t == GENERALIZED and _is_mn_aaa(ext):
        return GENERALIZED
    return 0


#: For each authentication extension kind, the kinds that must NOT come before it and the
#: kinds that must NOT come after it (see the module docstring for the RFC sections).
_NOT_BEFORE: dict[int, frozenset[int]] = {
    MN_HA: frozenset({MN_FA, FA_HA}),  # RFC 5944 §3.6.1.3, §3.8.3.1
    MN_FA: frozenset({FA_HA}),  # RFC 5944 §3.6.1.3 item 5, §3.7.2.2
    FA_HA: frozenset(),
    GENERALIZED: frozenset({MN_FA, FA_HA}),  # RFC 4721 §3.1
}
_AUTH_TYPES = frozenset({MN_HA, MN_FA, FA_HA, GENERALIZED})
_NOT_AFTER: dict[int, frozenset[int]] = {
    MN_HA: frozenset(),
    MN_FA: frozenset({MN_HA, GENERALIZED}),  # MN-FA covers MN-HA / MN-AAA (§3.6.1.3)
    FA_HA: frozenset({MN_HA, MN_FA, GENERALIZED}),  # FA-HA is last (§3.7.2.2, §3.8.3.1)
    GENERALIZED: frozenset(),
}


def find_auth_extension(message: AuthenticatedMessage, ext_type: int) -> int:
    """Index of the one authentication extension of ``ext_type`` (36 means MN-AAA),
    checked against the ordering rules. Raises :class:`AuthenticationError`."""
    exts = message.extensions
    index = -1
    for i, e in enumerate(exts):
        if ext_type == e.TYPE and (ext_type != GENERALIZED or _is_mn_aaa(e)):
            if index >= 0:
                raise AuthenticationError(
                    AuthFailure.DUPLICATE, ext_type, detail=f"at positions {index} and {i}"
                )
            index = i
    if index < 0:
        raise AuthenticationError(AuthFailure.MISSING, ext_type)
    not_before = _NOT_BEFORE[ext_type]
    not_after = _NOT_AFTER[ext_type]
    for i, e in enumerate(exts):
        if e.TYPE not in _AUTH_TYPES or i == index:
            continue
        k = _kind(e)
        if (i < index and k in not_before) or (i > index and k in not_after):
            raise AuthenticationError(
                AuthFailure.MISPLACED,
                ext_type,
                getattr(exts[index], "spi", None),
                f"extension {k} at position {i} {'before' if i < index else 'after'} it "
                f"(position {index})",
            )
    if ext_type == GENERALIZED and not any(e.TYPE == CHALLENGE for e in exts[:index]):
        # RFC 4721 §3.1: the challenge the MN answers precedes (and is covered by) MN-AAA.
        raise AuthenticationError(
            AuthFailure.MISSING_CHALLENGE,
            ext_type,
            getattr(exts[index], "spi", None),
            "no MN-FA Challenge extension (132) before the MN-AAA extension",
        )
    return index


def _no_raw(ext_type: int) -> AuthenticationError:
    return AuthenticationError(
        AuthFailure.NO_RAW_BYTES,
        ext_type,
        detail="verify the bytes as received; for a locally built message call "
        "with_raw(message) first",
    )


def _located(message: AuthenticatedMessage, ext_type: int) -> tuple[bytes, int, int, int, int]:
    raw = message.raw
    if not raw:
        raise _no_raw(ext_type)
    index = find_auth_extension(message, ext_type)
    offsets = _check_raw(message, raw, type(message).FIXED_LEN)
    start = offsets[index]
    spi_end = start + (8 if ext_type == GENERALIZED else 6)  # Type Len SPI / Type Sub Len SPI
    end = offsets[index + 1] if index + 1 < len(offsets) else len(raw)
    return raw, index, start, spi_end, end


def verify(message: AuthenticatedMessage, ext_type: int, lookup: Lookup) -> VerifyResult:
    """Check the authentication extension of ``ext_type`` (32, 33 or 34; 36 for MN-AAA with
    a non-CHAP SPI -- prefer :func:`verify_mn_aaa`) over ``message.raw``.

    ``lookup(spi)`` returns the security association the receiver shares with the sender
    for that SPI, or ``None``. Returns a :class:`VerifyResult`; raises
    :class:`AuthenticationError` (a ``ValueError``) whose ``reason`` is an
    :class:`AuthFailure`. The comparison is constant-time (``hmac.compare_digest``)."""
    if ext_type == GENERALIZED:
        return verify_mn_aaa(message, lookup)
    raw = message.raw
    if not raw:
        raise _no_raw(ext_type)
    fixed = type(message).FIXED_LEN
    n = len(raw)
    located = _usual_layout(message.extensions, raw, fixed, ext_type)
    if located is not None:
        index, start, end = located
    else:
        index = find_auth_extension(message, ext_type)
        offsets = _check_raw(message, raw, fixed)
        start = offsets[index]
        end = offsets[index + 1] if index + 1 < len(offsets) else n
    spi_end = start + 6  # Type(1) Length(1) SPI(4): RFC 5944 §3.5.1
    spi = _U32.unpack_from(raw, start + 2)[0]
    sa = lookup(spi)
    if sa is None:
        raise AuthenticationError(AuthFailure.UNKNOWN_SPI, ext_type, spi)
    covered = raw[:spi_end] if sa.spi_covered else raw[: spi_end - 4]  # RFC 2002: no SPI
    if not _compare(sa.authenticator(covered), raw[spi_end:end]):
        raise AuthenticationError(AuthFailure.BAD_AUTHENTICATOR, ext_type, spi)
    return _result(index, message.extensions[index], sa, start, end)


def _usual_layout(
    exts: tuple[Extension, ...], raw: bytes, fixed: int, ext_type: int
) -> tuple[int, int, int] | None:
    """Where the extension ``ext_type`` is (index, start, end) when the message holds
    only MN-HA, or MN-HA then FA-HA (a request or reply relayed by a foreign agent), and
    it is one of them; ``None`` for any other layout. What the general path finds for
    these (issue 13: most messages): no other extension to order, ``raw`` holding exactly
    these extensions, each long enough for its SPI."""
    n = len(raw)
    k = len(exts)
    if k == 0 or k > 2 or n < fixed + 6 or raw[fixed] != MN_HA or exts[0].TYPE != MN_HA:
        return None
    second = fixed + 2 + raw[fixed + 1]
    if k == 1:
        return (0, fixed, n) if ext_type == MN_HA and second == n else None
    if (
        exts[1].TYPE != FA_HA
        or second < fixed + 6
        or second + 6 > n
        or raw[second] != FA_HA
        or second + 2 + raw[second + 1] != n
    ):
        return None
    if ext_type == MN_HA:
        return 0, fixed, second
    if ext_type == FA_HA:
        return 1, second, n
    return None


def _result(
    index: int, ext: Extension, sa: SecurityAssociation | None, start: int, end: int
) -> VerifyResult:
    r: VerifyResult = _new(VerifyResult)
    _setattr(
        r, "__dict__", {"index": index, "extension": ext, "sa": sa, "start": start, "end": end}
    )
    return r


def verify_mn_aaa(
    message: AuthenticatedMessage,
    lookup: Lookup | None = None,
    *,
    chap_key: bytes | None = None,
    challenge: bytes | None = None,
) -> VerifyResult:
    """Check the MN-AAA authenticator (extension 36 subtype 1, RFC 4721 §5, §7).

    SPI 2 (CHAP_SPI) uses :func:`mn_aaa_chap` with ``chap_key`` (the MN-AAA shared secret,
    found by the AAA side from the NAI) and the challenge of the last MN-FA Challenge
    extension before it (or ``challenge``). Any other SPI is looked up with ``lookup`` and
    uses that association's algorithm over :func:`covered_bytes`."""
    raw, index, start, spi_end, end = _located(message, GENERALIZED)
    ext = message.extensions[index]
    spi = _U32.unpack_from(raw, spi_end - 4)[0]
    covered = raw[:spi_end]
    sa: SecurityAssociation | None = None
    if spi == CHAP_SPI:
        if chap_key is None:
            raise AuthenticationError(
                AuthFailure.UNKNOWN_SPI, GENERALIZED, spi, "no MN-AAA (CHAP) key supplied"
            )
        if challenge is None:
            challenge = _last_challenge(message.extensions, index)
        if not challenge:
            raise AuthenticationError(AuthFailure.MISSING_CHALLENGE, GENERALIZED, spi)
        expected = mn_aaa_chap(chap_key, covered, challenge)
    else:
        sa = lookup(spi) if lookup is not None else None
        if sa is None:
            raise AuthenticationError(AuthFailure.UNKNOWN_SPI, GENERALIZED, spi)
        expected = sa.authenticator(covered)
    if not _compare(expected, raw[spi_end:end]):
        raise AuthenticationError(AuthFailure.BAD_AUTHENTICATOR, GENERALIZED, spi)
    return _result(index, ext, sa, start, end)


# ----------------------------------------------------------------------------------------
# Failure -> Registration Reply code
# ----------------------------------------------------------------------------------------

_AUTH_FAILED_CODE: dict[tuple[str, int], ReplyCode] = {
    # RFC 5944 §3.8.2.1: the HA rejects a request whose authorization-enabling extension
    # is missing or wrong with 131, a bad FA-HA with 132.
    ("ha", MN_HA): ReplyCode.HA_MN_FAILED_AUTH,
    ("ha", GENERALIZED): ReplyCode.HA_MN_FAILED_AAA_AUTH,  # RFC 4721
    ("ha", FA_HA): ReplyCode.HA_FA_FAILED_AUTH,
    # RFC 5944 §3.7.2.1: bad MN-FA -> 67; §3.7.3.1: a reply whose FA-HA fails -> 68.
    ("fa", MN_FA): ReplyCode.FA_MN_FAILED_AUTH,
    ("fa", GENERALIZED): ReplyCode.FA_MN_FAILED_AAA_AUTH,  # RFC 4721
    ("fa", FA_HA): ReplyCode.FA_HA_FAILED_AUTH,
}


def reply_code_for(
    error: AuthenticationError, *, at: Literal["ha", "fa", "mn"]
) -> ReplyCode | None:
    """The Registration Reply code for an authentication failure found by the home agent
    (``"ha"``, checking a request) or foreign agent (``"fa"``, checking a request or, for
    FA-HA, the home agent's reply). ``None``: no reply -- the message is silently discarded
    (a mobile node never answers a reply, RFC 5944 §3.6.2.1; and an agent does not judge an
    extension it cannot verify). A misplaced or duplicated extension is a poorly formed
    message (134 at the HA, 70/71 at the FA)."""
    if at == "mn":
        return None
    reason, ext = error.reason, error.ext_type
    if reason is AuthFailure.MISSING_CHALLENGE:
        return ReplyCode.FA_MISSING_CHALLENGE if at == "fa" else _AUTH_FAILED_CODE[("ha", ext)]
    if reason in (AuthFailure.MISPLACED, AuthFailure.DUPLICATE):
        if at == "ha":
            return ReplyCode.HA_POORLY_FORMED_REQUEST
        return (
            ReplyCode.FA_POORLY_FORMED_REPLY if ext == FA_HA else ReplyCode.FA_POORLY_FORMED_REQUEST
        )
    return _AUTH_FAILED_CODE.get((at, ext))


# ----------------------------------------------------------------------------------------
# Foreign agent: cutting and extending relayed messages
# ----------------------------------------------------------------------------------------


def strip_after(message: M, index: int) -> M:
    """``message`` cut just after extension number ``index`` (kept), with ``raw`` cut at the
    same place -- the bytes before it are the ones received, untouched (RFC 5944 §3.7.2.2:
    the FA must not modify anything up through the MN-HA extension). ``index = -1`` keeps
    only the fixed part."""
    raw = _encoded(message)
    fixed = type(message).FIXED_LEN
    offsets = _check_raw(message, raw, fixed)
    n = len(offsets)
    if not -1 <= index < n:
        raise IndexError(f"no extension {index}: the message has {n}")
    cut = offsets[index + 1] if index + 1 < n else len(raw)
    return _copy(message, message.extensions[: index + 1], raw[:cut])


def truncate_before(message: M, index: int) -> M:
    """``message`` cut at the start of extension number ``index`` (it and everything after it
    removed): the FA removing MN-FA from a request, or FA-HA from a reply, before relaying."""
    return strip_after(message, index - 1)


def authorization_index(message: AuthenticatedMessage) -> int:
    """Index of the authorization-enabling extension (RFC 5944 §3.7.2.2, RFC 4721): the
    MN-HA extension, or if there is none the MN-AAA extension. Raises
    :class:`AuthenticationError` (MISSING) when there is neither."""
    exts = message.extensions
    for i, e in enumerate(exts):
        if e.ext_type == MN_HA:
            return i
    for i, e in enumerate(exts):
        if _is_mn_aaa(e):
            return i
    raise AuthenticationError(AuthFailure.MISSING, MN_HA, detail="no MN-HA or MN-AAA extension")


def strip_for_relay(message: M) -> M:
    """The request the FA relays: cut after the last extension the mobile node authenticated
    for its home agent or AAA server -- the MN-HA extension, or the MN-AAA extension when it
    comes later (RFC 4721: NAI, MN-HA, MN-FA Challenge, MN-AAA) -- removing FA-only
    extensions and the MN-FA extension (RFC 5944 §3.7.2.2; Solaris ``mipagent``)."""
    last = authorization_index(message)
    for i, e in enumerate(message.extensions):
        if i > last and _is_mn_aaa(e):
            last = i
    return strip_after(message, last)


def strip_auth(message: M, ext_type: int) -> M:
    """``message`` cut at the start of its (single) ``ext_type`` extension, e.g. the FA
    removing FA-HA from a reply it has checked (RFC 5944 §3.7.3.2)."""
    return truncate_before(message, find_auth_extension(message, ext_type))


def append_extensions(message: M, *extensions: Extension) -> M:
    """``message`` with ``extensions`` appended, ``raw`` extended by their encoding (the
    existing bytes are kept as they are)."""
    raw = _encoded(message)
    if not extensions:
        return message if message.raw else _copy(message, message.extensions, raw)
    return _copy(
        message,
        (*message.extensions, *extensions),
        raw + b"".join([e.encode() for e in extensions]),
    )


__all__ = [
    "AUTHENTICATOR_LEN",
    "CHAP_SPI",
    "FA_HA",
    "GENERALIZED",
    "MN_FA",
    "MN_HA",
    "AuthFailure",
    "AuthenticatedMessage",
    "AuthenticationError",
    "Lookup",
    "VerifyResult",
    "append_extensions",
    "authorization_index",
    "compute_authenticator",
    "covered_bytes",
    "find_auth_extension",
    "hmac_md5",
    "keyed_md5",
    "mn_aaa_chap",
    "reply_code_for",
    "sign",
    "sign_mn_aaa",
    "signed_bytes",
    "strip_after",
    "strip_auth",
    "strip_for_relay",
    "truncate_before",
    "verify",
    "verify_mn_aaa",
    "with_raw",
]
