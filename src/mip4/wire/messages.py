"""Messages carried in UDP port 434 (RFC 5944 §3 and the MIP4 WG extensions).

Theory of operation
-------------------
Each message is a frozen dataclass with a ``TYPE`` class attribute, ``encode() -> bytes`` and
a ``decode(data)`` class method; :func:`decode_message` dispatches on the first byte through
:data:`MESSAGES`. Messages that end in an extension area keep the decoded extensions in
``extensions`` and, in a field that takes no part in equality, the exact bytes received
(``raw``): authenticators are verified over ``raw`` (RFC 5944 §3.5.1), never over a
re-serialisation. Hot decoders build the frozen object by assigning its ``__dict__`` at once
instead of calling the field-by-field frozen ``__init__`` (3x faster on CPython 3.11).

====  ===============================================  =========================================
Type  Message                                          Layout source
====  ===============================================  =========================================
1     RegistrationRequest (RFC 5944 §3.3)              RFC; Wireshark; tshark; Solaris agent
3     RegistrationReply (RFC 5944 §3.4)                RFC; Wireshark; tshark; Solaris agent
4     TunnelData (RFC 3519 §3.3)                       Wireshark; scapy
7     RegistrationRevocation (RFC 3543 §3.1)           Wireshark
15    RevocationAck (RFC 3543 §3.2)                    Wireshark
16    HandoffRequest (RFC 4881)                        UNVERIFIED: RRQ layout assumed
17    HandoffReply (RFC 4881)                          UNVERIFIED: RRP layout assumed
18    RegionalRegistrationRequest (RFC 4857)           UNVERIFIED: RRQ layout, GFA for HA
19    RegionalRegistrationReply (RFC 4857)             UNVERIFIED: RRP layout assumed
20    FastBindingUpdate (RFC 4988 §5.1)                UNVERIFIED: RRQ layout assumed
21    FastBindingAck (RFC 4988 §5.2)                   UNVERIFIED: RRP layout assumed
22    GenericNotification (RFC 6098)                   UNVERIFIED (see class)
23    GenericNotificationAck (RFC 6098)                UNVERIFIED (see class)
255   ExperimentalMessage (RFC 4064)                   opaque after the Type octet
====  ===============================================  =========================================

"UNVERIFIED": Wireshark names the type but does not decode it, and the RFC text could not be
read while this was written; each class docstring says what was assumed and why.
"""

from __future__ import annotations

from .addr import ZERO
from .errors import DecodeError
from .msg_base import INFINITE_LIFETIME, NO_FLAGS, Message, RegistrationFlags
from .msg_handover import (
    FastBindingAck,
    FastBindingUpdate,
    HandoffReply,
    HandoffRequest,
    RegionalRegistrationReply,
    RegionalRegistrationRequest,
)
from .msg_notify import GenericNotification, GenericNotificationAck, NotificationDirection
from .msg_opaque import ExperimentalMessage, TunnelData
from .msg_registration import RegistrationReply, RegistrationRequest
from .msg_revocation import (
    RegistrationRevocation,
    RevocationAck,
    RevocationAckFlags,
    RevocationFlags,
)

#: Every UDP-434 message class, in type order: the registry, written out. A new message is a
#: class in a ``msg_*`` module and one line here.
MESSAGE_CLASSES: tuple[type[Message], ...] = (
    RegistrationRequest,
    RegistrationReply,
    TunnelData,
    RegistrationRevocation,
    RevocationAck,
    HandoffRequest,
    HandoffReply,
    RegionalRegistrationRequest,
    RegionalRegistrationReply,
    FastBindingUpdate,
    FastBindingAck,
    GenericNotification,
    GenericNotificationAck,
    ExperimentalMessage,
)
#: type number -> class
MESSAGES: dict[int, type[Message]] = {cls.TYPE: cls for cls in MESSAGE_CLASSES}
if len(MESSAGES) != len(MESSAGE_CLASSES):
    raise RuntimeError("a message type is listed twice in MESSAGE_CLASSES")


def decode_message(data: bytes) -> Message:
    """Decode one UDP-434 payload. Raises :class:`DecodeError` for malformed input and for
    an unknown message type (naming it)."""
    if not data:
        raise DecodeError("empty message", 0)
    cls = MESSAGES.get(data[0])
    if cls is None:
        raise DecodeError(f"unknown Mobile IP message type {data[0]}", 0)
    return cls.decode(data)


__all__ = [
    "INFINITE_LIFETIME",
    "MESSAGES",
    "MESSAGE_CLASSES",
    "NO_FLAGS",
    "ZERO",
    "ExperimentalMessage",
    "FastBindingAck",
    "FastBindingUpdate",
    "GenericNotification",
    "GenericNotificationAck",
    "HandoffReply",
    "HandoffRequest",
    "Message",
    "NotificationDirection",
    "RegionalRegistrationReply",
    "RegionalRegistrationRequest",
    "RegistrationFlags",
    "RegistrationReply",
    "RegistrationRequest",
    "RegistrationRevocation",
    "RevocationAck",
    "RevocationAckFlags",
    "RevocationFlags",
    "TunnelData",
    "decode_message",
]
