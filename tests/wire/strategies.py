"""Hypothesis strategies for every UDP-434 message and every registration extension.

Import what you need::

    from tests.wire.strategies import messages, extensions, message_of, extension_lists

* :data:`EXTENSION_STRATEGIES` maps each concrete extension class (plus
  :class:`~mip4.wire.RawExtension`) to a strategy for it; :func:`extensions` draws from all.
* :data:`MESSAGE_STRATEGIES` maps each message class in :data:`~mip4.wire.MESSAGES` to a
  strategy; :func:`messages` draws from all; :func:`message_of` gives one class's.
* Every value drawn encodes without error and decodes back to an equal object.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any, TypeVar

from hypothesis import strategies as st

from mip4.wire import (
    AAA_SUBTYPE,
    MESSAGES,
    REGISTRATION_EXTENSIONS,
    AAAKeyGenNonce,
    CriticalVendorExtension,
    CriticalVendorExtensionOld,
    DynamicHAExtension,
    EncapsulatingDeliveryExtension,
    ExperimentalExtension,
    ExperimentalMessage,
    Extension,
    FAErrorExtension,
    FastBindingAck,
    FastBindingUpdate,
    ForeignHomeAuthExtension,
    GeneralizedAuthExtension,
    GeneralizedLLAExtension,
    GenericNotification,
    GenericNotificationAck,
    GFAAddressExtension,
    GREKeyExtension,
    HandoffReply,
    HandoffRequest,
    Message,
    MessageStringExtension,
    MNFAKeyGenNonceReply,
    MNFAKeyGenNonceRequest,
    MNHAKeyGenNonceReply,
    MNHAKeyGenNonceRequest,
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNetworkAckExtension,
    MobileNetworkRequestExtension,
    MobileNodeNAIExtension,
    NAICarryingExtension,
    NormalVendorExtension,
    NormalVendorExtensionOld,
    RawExtension,
    RegionalRegistrationReply,
    RegionalRegistrationRequest,
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    RegistrationRevocation,
    RevocationAck,
    RevocationAckFlags,
    RevocationFlags,
    RevocationSupportExtension,
    RevocationSupportFlags,
    TrustedNetworksConfiguredExtension,
    TunnelData,
    UDPTunnelReplyExtension,
    UDPTunnelReplyFlags,
    UDPTunnelRequestExtension,
    UDPTunnelRequestFlags,
)

T = TypeVar("T")

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)
ipv4 = st.builds(IPv4Address, u32)


def small_bytes(max_size: int = 24) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


def _b(cls: Callable[..., T], *args: st.SearchStrategy[Any]) -> st.SearchStrategy[T]:
    return st.builds(cls, *args)


#: skippable types no class handles: they decode to RawExtension
RAW_TYPES = [t for t in range(128, 256) if t not in REGISTRATION_EXTENSIONS]

_aaa_nonce = _b(AAAKeyGenNonce, u32, u32, u16, u16, small_bytes())


def _keygen_reply(cls: type[MNFAKeyGenNonceReply] | type[MNHAKeyGenNonceReply]) -> Any:
    aaa = _b(cls, st.just(AAA_SUBTYPE), u32, _aaa_nonce)
    other = _b(cls, u8.filter(lambda s: s != AAA_SUBTYPE), u32, small_bytes())
    return aaa | other


EXTENSION_STRATEGIES: dict[type[Extension], st.SearchStrategy[Any]] = {
    MobileHomeAuthExtension: _b(MobileHomeAuthExtension, u32, small_bytes(32)),
    MobileForeignAuthExtension: _b(MobileForeignAuthExtension, u32, small_bytes(32)),
    ForeignHomeAuthExtension: _b(ForeignHomeAuthExtension, u32, small_bytes(32)),
    GeneralizedAuthExtension: _b(GeneralizedAuthExtension, u8, u32, small_bytes(32)),
    CriticalVendorExtensionOld: _b(CriticalVendorExtensionOld, u32, u16, small_bytes(), u8),
    CriticalVendorExtension: _b(CriticalVendorExtension, u32, u16, small_bytes(), u8),
    MNFAKeyGenNonceRequest: _b(MNFAKeyGenNonceRequest, u8, u32, small_bytes()),
    MNHAKeyGenNonceRequest: _b(MNHAKeyGenNonceRequest, u8, u32, small_bytes()),
    MNFAKeyGenNonceReply: _keygen_reply(MNFAKeyGenNonceReply),
    MNHAKeyGenNonceReply: _keygen_reply(MNHAKeyGenNonceReply),
    UDPTunnelReplyExtension: _b(UDPTunnelReplyExtension, u8, u16.map(UDPTunnelReplyFlags), u16, u8),
    FAErrorExtension: _b(FAErrorExtension, u8, u8, small_bytes(4)),
    GFAAddressExtension: _b(GFAAddressExtension, ipv4),
    GREKeyExtension: _b(GREKeyExtension, u32, u8),
    EncapsulatingDeliveryExtension: st.just(EncapsulatingDeliveryExtension()),
    MobileNodeNAIExtension: _b(MobileNodeNAIExtension, small_bytes(40)),
    MobileForeignChallengeExtension: _b(MobileForeignChallengeExtension, small_bytes(32)),
    NormalVendorExtensionOld: _b(NormalVendorExtensionOld, u32, u16, small_bytes(), u16),
    NormalVendorExtension: _b(NormalVendorExtension, u32, u16, small_bytes(), u16),
    NAICarryingExtension: _b(NAICarryingExtension, u8, small_bytes(40)),
    RevocationSupportExtension: _b(
        RevocationSupportExtension, u32, u16.map(RevocationSupportFlags)
    ),
    GeneralizedLLAExtension: _b(GeneralizedLLAExtension, u8, small_bytes(16)),
    DynamicHAExtension: _b(DynamicHAExtension, u8, ipv4),
    UDPTunnelRequestExtension: _b(
        UDPTunnelRequestExtension, u8.map(UDPTunnelRequestFlags), u8, u8, u8, u16
    ),
    MessageStringExtension: _b(MessageStringExtension, u8, small_bytes(40)),
    MobileNetworkRequestExtension: _b(MobileNetworkRequestExtension, u8, ipv4),
    MobileNetworkAckExtension: _b(
        MobileNetworkAckExtension, st.sampled_from([1, 2]), u8, u8, ipv4, u8
    ),
    TrustedNetworksConfiguredExtension: _b(TrustedNetworksConfiguredExtension, u8, u8),
    ExperimentalExtension: _b(ExperimentalExtension, small_bytes()),
    RawExtension: _b(RawExtension, st.sampled_from(RAW_TYPES), small_bytes())
    # type 148 with a subtype that has no layout of its own is kept raw too
    | _b(
        RawExtension,
        st.just(148),
        st.tuples(st.integers(3, 255), small_bytes()).map(lambda t: bytes((t[0],)) + t[1]),
    ),
}


def extensions() -> st.SearchStrategy[Extension]:
    """Any registration extension (including unknown skippable ones, kept raw)."""
    return st.one_of(*EXTENSION_STRATEGIES.values())


def extension_lists(max_size: int = 5) -> st.SearchStrategy[tuple[Extension, ...]]:
    return st.lists(extensions(), max_size=max_size).map(tuple)


_exts = extension_lists()
_reg_flags = u8.map(RegistrationFlags)

MESSAGE_STRATEGIES: dict[type[Message], st.SearchStrategy[Any]] = {
    RegistrationRequest: _b(RegistrationRequest, _reg_flags, u16, ipv4, ipv4, ipv4, u64, _exts),
    RegistrationReply: _b(RegistrationReply, u8, u16, ipv4, ipv4, u64, _exts),
    TunnelData: _b(TunnelData, u8, small_bytes(64), u16),
    RegistrationRevocation: _b(
        RegistrationRevocation, u16.map(RevocationFlags), ipv4, ipv4, ipv4, u32, _exts, u8
    ),
    RevocationAck: _b(RevocationAck, u16.map(RevocationAckFlags), ipv4, u32, _exts, u8),
    HandoffRequest: _b(HandoffRequest, u8, u16, ipv4, ipv4, ipv4, u64, _exts),
    HandoffReply: _b(HandoffReply, u8, u16, ipv4, ipv4, u64, _exts),
    RegionalRegistrationRequest: _b(
        RegionalRegistrationRequest, _reg_flags, u16, ipv4, ipv4, ipv4, u64, _exts
    ),
    RegionalRegistrationReply: _b(RegionalRegistrationReply, u8, u16, ipv4, ipv4, u64, _exts),
    FastBindingUpdate: _b(FastBindingUpdate, _reg_flags, u16, ipv4, ipv4, ipv4, u64, _exts),
    FastBindingAck: _b(FastBindingAck, u8, u16, ipv4, ipv4, u64, _exts),
    GenericNotification: _b(GenericNotification, u8, u8, ipv4, ipv4, ipv4, u64, _exts, u8),
    GenericNotificationAck: _b(GenericNotificationAck, u8, u8, u8, ipv4, ipv4, ipv4, u64, _exts),
    ExperimentalMessage: _b(ExperimentalMessage, small_bytes(64)),
}

assert set(MESSAGE_STRATEGIES) == set(MESSAGES.values()), "a message type has no strategy"


def message_of(cls: type[Message]) -> st.SearchStrategy[Any]:
    """Messages of one class."""
    return MESSAGE_STRATEGIES[cls]


def messages() -> st.SearchStrategy[Message]:
    """Any UDP-434 message, with generated extension lists where the type carries them."""
    return st.one_of(*MESSAGE_STRATEGIES.values())


__all__ = [
    "EXTENSION_STRATEGIES",
    "MESSAGE_STRATEGIES",
    "RAW_TYPES",
    "extension_lists",
    "extensions",
    "ipv4",
    "message_of",
    "messages",
    "small_bytes",
    "u8",
    "u16",
    "u32",
    "u64",
]
