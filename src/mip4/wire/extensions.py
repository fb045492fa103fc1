"""The registration extension registry (RFC 5944 §1.9) and the walk over an extension area.

Theory of operation
-------------------
:data:`EXTENSION_CLASSES` lists every extension class the codec knows, in type order, as
hyperframe's ``FRAMES`` does; :data:`REGISTRATION_EXTENSIONS` maps type numbers to them. The
classes themselves live in ``ext_auth`` (RFC 5944 §3.5, RFC 2794, RFC 4721), ``ext_vendor``
(RFC 3115, RFC 4064), ``ext_keys`` (RFC 3957), ``ext_tunnel`` (RFC 3519, RFC 3024, RFC 6245)
and ``ext_mobility`` (RFC 3543, 3846, 4433, 4636, 4857, 4881, 4917, 5177, 5265), on the base
of :mod:`mip4.wire.ext_base` (the SHORT and LONG header formats). They import only
``ext_base``; this module imports them all, so the package has no import cycle.

:func:`decode_extensions` walks a message's extension area:

* a known type is decoded by its class;
* an unknown type 0--127 raises :class:`UnknownExtensionError` -- RFC 5944 §1.9: the whole
  message MUST be silently discarded;
* an unknown type 128--255 is kept as a :class:`RawExtension` (short format) so that the
  protocol can skip it and the message still re-encodes byte for byte.

Every field the wire carries is kept, reserved fields included, so that for every byte string
``b`` that decodes, re-encoding gives ``b`` back. Where a type has several subtype layouts,
the registry entry is a small dispatching base class whose ``decode_body`` picks the subclass
for the subtype (:class:`~mip4.wire.ext_mobility.MobileNetworkExtension`); where a type has one
layout whose body depends on the subtype, the class keeps ``subtype`` and a typed body
(:class:`~mip4.wire.ext_keys.KeyGenNonceReply`).

:func:`scan_extensions` checks the framing only, so a message can defer building its
extensions; :func:`extension_offsets` finds where each extension of a decoded message
starts, so authenticators are verified over the bytes as received (see
:mod:`mip4.security.auth`).

The base classes and the authentication extensions are re-exported here (``from
mip4.wire.extensions import Extension, MobileHomeAuthExtension``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from .errors import DecodeError, UnknownExtensionError
from .ext_auth import (
    AUTH_EXTENSION_TYPES,
    ForeignHomeAuthExtension,
    GeneralizedAuthExtension,
    GeneralizedAuthSubtype,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
)
from .ext_base import (
    LONG,
    LONG_HEADER,
    SHORT,
    Extension,
    ExtFormat,
    RawExtension,
    body_length_error,
    check_len,
    check_uint,
)
from .ext_keys import (
    MNFAKeyGenNonceReply,
    MNFAKeyGenNonceRequest,
    MNHAKeyGenNonceReply,
    MNHAKeyGenNonceRequest,
)
from .ext_mobility import (
    DynamicHAExtension,
    FAErrorExtension,
    GeneralizedLLAExtension,
    GFAAddressExtension,
    MessageStringExtension,
    MobileNetworkExtension,
    NAICarryingExtension,
    RevocationSupportExtension,
    TrustedNetworksConfiguredExtension,
)
from .ext_tunnel import (
    EncapsulatingDeliveryExtension,
    GREKeyExtension,
    UDPTunnelReplyExtension,
    UDPTunnelRequestExtension,
)
from .ext_vendor import (
    CriticalVendorExtension,
    CriticalVendorExtensionOld,
    ExperimentalExtension,
    NormalVendorExtension,
    NormalVendorExtensionOld,
)

# ----------------------------------------------------------------------------------------
# Registry and the walk over an extension area
# ----------------------------------------------------------------------------------------

#: Every registration extension class, in type order: the registry, written out (as
#: hyperframe's ``FRAMES``). A new extension is one class in an ``ext_*`` module and one line
#: here; a type listed twice fails at import.
EXTENSION_CLASSES: tuple[type[Extension], ...] = (
    MobileHomeAuthExtension,  # 32
    MobileForeignAuthExtension,  # 33
    ForeignHomeAuthExtension,  # 34
    GeneralizedAuthExtension,  # 36
    CriticalVendorExtensionOld,  # 37
    CriticalVendorExtension,  # 38
    MNFAKeyGenNonceRequest,  # 40
    MNFAKeyGenNonceReply,  # 41
    MNHAKeyGenNonceRequest,  # 42
    MNHAKeyGenNonceReply,  # 43
    UDPTunnelReplyExtension,  # 44
    FAErrorExtension,  # 45
    GFAAddressExtension,  # 46
    GREKeyExtension,  # 48
    EncapsulatingDeliveryExtension,  # 130
    MobileNodeNAIExtension,  # 131
    MobileForeignChallengeExtension,  # 132
    NormalVendorExtensionOld,  # 133
    NormalVendorExtension,  # 134
    NAICarryingExtension,  # 136
    RevocationSupportExtension,  # 137
    GeneralizedLLAExtension,  # 138
    DynamicHAExtension,  # 139
    UDPTunnelRequestExtension,  # 144
    MessageStringExtension,  # 145
    MobileNetworkExtension,  # 148 (dispatches on its subtype)
    TrustedNetworksConfiguredExtension,  # 149
    ExperimentalExtension,  # 255
)


def _registry(classes: tuple[type[Extension], ...]) -> dict[int, type[Extension]]:
    registry: dict[int, type[Extension]] = {}
    for cls in classes:
        if cls.TYPE in registry:
            raise RuntimeError(f"extension type {cls.TYPE} listed twice")
        registry[cls.TYPE] = cls
    return registry


#: type number -> class (RFC 5944 §1.9: a type not here is unknown)
REGISTRATION_EXTENSIONS: Mapping[int, type[Extension]] = MappingProxyType(
    _registry(EXTENSION_CLASSES)
)

_BodyDecoder = Callable[[bytes, int, int, int], Extension]
#: type -> (bound decode_body, long format?): what decode_extensions needs, looked up once.
_DECODERS: dict[int, tuple[_BodyDecoder, bool]] = {
    t: (cls.decode_body, cls.FORMAT is LONG) for t, cls in REGISTRATION_EXTENSIONS.items()
}
#: type -> (long format?, MIN_BODY) for the types whose bodies always decode once framed;
#: the table :func:`scan_extensions` uses.
_SCAN: dict[int, tuple[bool, int]] = {
    t: (cls.FORMAT is LONG, cls.MIN_BODY)
    for t, cls in REGISTRATION_EXTENSIONS.items()
    if cls.MIN_BODY is not None
}

_EMPTY: tuple[Extension, ...] = ()


def decode_extensions(
    data: bytes,
    pos: int,
    registry: Mapping[int, type[Extension]] = REGISTRATION_EXTENSIONS,
) -> tuple[Extension, ...]:
    """Decode the extensions in ``data[pos:]``. Raises :class:`DecodeError`, or
    :class:`UnknownExtensionError` for an unknown non-skippable type (RFC 5944 §1.9)."""
    end = len(data)
    if pos >= end:
        return _EMPTY
    if registry is REGISTRATION_EXTENSIONS:
        decoders = _DECODERS
    else:
        decoders = {t: (c.decode_body, c.FORMAT is LONG) for t, c in registry.items()}
    exts: list[Extension] = []
    append = exts.append
    get = decoders.get
    while pos < end:
        t = data[pos]
        entry = get(t)
        if entry is None:
            if t < 128:
                raise UnknownExtensionError(t, pos)
            is_long = False
        else:
            is_long = entry[1]
        if is_long:
            if pos + 4 > end:
                raise DecodeError(f"truncated long header of extension {t}", pos)
            _, subtype, length = LONG_HEADER.unpack_from(data, pos)
            start = pos + 4
            stop = start + length
        else:
            if pos + 2 > end:
                raise DecodeError(f"truncated header of extension {t}", pos)
            subtype = 0
            start = pos + 2
            stop = start + data[pos + 1]
        if stop > end:
            raise DecodeError(
                f"extension {t}: length {stop - start} overruns the message "
                f"({end - start} byte(s) left)",
                pos,
            )
        if entry is None:
            append(RawExtension(t, bytes(data[start:stop])))
        else:
            append(entry[0](data, start, stop, subtype))
        pos = stop
    return tuple(exts)


def scan_extensions(data: bytes, pos: int) -> bool:
    """Whether the registration extension area ``data[pos:]`` is sure to decode: the
    framing is sound and every extension is of a type that decodes once framed
    (``MIN_BODY``) or of an unknown skippable type (128--255).

    ``True`` lets a message defer building its extensions until they are first used: the
    bytes are known good, so :func:`decode_extensions` cannot fail on them later. ``False``
    says nothing more -- the caller decodes eagerly, which raises the precise error if there
    is one. Cheaper than decoding: no object is built."""
    end = len(data)
    get = _SCAN.get
    while pos < end:
        t = data[pos]
        entry = get(t)
        if entry is None:
            if t < 128 or t in _DECODERS:
                return False
            if pos + 2 > end:
                return False
            pos += 2 + data[pos + 1]
            continue
        if entry[0]:
            if pos + 4 > end:
                return False
            n = (data[pos + 2] << 8) | data[pos + 3]
            pos += 4
        else:
            if pos + 2 > end:
                return False
            n = data[pos + 1]
            pos += 2
        if n < entry[1]:
            return False
        pos += n
    return pos == end


def extension_offsets(
    data: bytes,
    pos: int,
    registry: Mapping[int, type[Extension]] = REGISTRATION_EXTENSIONS,
) -> tuple[int, ...]:
    """The offset of each extension header in ``data[pos:]``, for data that has already
    been decoded successfully (used to find the bytes an authenticator covers)."""
    offsets: list[int] = []
    end = len(data)
    get = registry.get
    while pos < end:
        offsets.append(pos)
        cls = get(data[pos])
        if cls is not None and cls.FORMAT is LONG:
            pos += 4 + LONG_HEADER.unpack_from(data, pos)[2]
        else:
            pos += 2 + data[pos + 1]
    return tuple(offsets)


def encode_extensions(extensions: tuple[Extension, ...]) -> bytes:
    return b"".join([e.encode() for e in extensions])


__all__ = [
    "AUTH_EXTENSION_TYPES",
    "EXTENSION_CLASSES",
    "LONG",
    "REGISTRATION_EXTENSIONS",
    "SHORT",
    "ExtFormat",
    "Extension",
    "ForeignHomeAuthExtension",
    "GeneralizedAuthExtension",
    "GeneralizedAuthSubtype",
    "MobileForeignAuthExtension",
    "MobileForeignChallengeExtension",
    "MobileHomeAuthExtension",
    "MobileNodeNAIExtension",
    "RawExtension",
    "body_length_error",
    "check_len",
    "check_uint",
    "decode_extensions",
    "encode_extensions",
    "extension_offsets",
    "scan_extensions",
]
