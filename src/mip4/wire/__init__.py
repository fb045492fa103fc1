"""The Mobile IPv4 codec: pure, stdlib-only, one frozen dataclass per message and extension.

>>> from mip4.wire import decode_message
"""

from .addr import BROADCAST, ZERO, ipv4_from_int
from .codes import AgentAdvExtensionType, ExtensionType, MessageType, ReplyCode, reply_code_name
from .errors import DecodeError, EncodeError, UnknownExtensionError
from .extensions import (
    REGISTRATION_EXTENSIONS,
    Extension,
    ExtFormat,
    RawExtension,
    decode_extensions,
    encode_extensions,
    extension_offsets,
)
from .messages import (
    INFINITE_LIFETIME,
    MESSAGES,
    Message,
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    decode_message,
)

__all__ = [
    "BROADCAST",
    "INFINITE_LIFETIME",
    "MESSAGES",
    "REGISTRATION_EXTENSIONS",
    "ZERO",
    "AgentAdvExtensionType",
    "DecodeError",
    "EncodeError",
    "ExtFormat",
    "Extension",
    "ExtensionType",
    "Message",
    "MessageType",
    "RawExtension",
    "RegistrationFlags",
    "RegistrationReply",
    "RegistrationRequest",
    "ReplyCode",
    "UnknownExtensionError",
    "decode_extensions",
    "decode_message",
    "encode_extensions",
    "extension_offsets",
    "ipv4_from_int",
    "reply_code_name",
]
