"""Protocol numbers: message types, extension types and reply codes.

Sources (see ``shared/reference/numbers.md``): the IANA "Mobile IPv4 Numbers" registry
(iana.org/assignments/mobileip-numbers), RFC 5944 §3.4 and §2.1, and Wireshark's
``epan/dissectors/packet-mip.c`` / ``packet-icmp.c``, which agree on every value here.
"""

from __future__ import annotations

from enum import IntEnum


class MessageType(IntEnum):
    """Message types carried in UDP port 434 (IANA mobileip-numbers, "Message Types")."""

    REGISTRATION_REQUEST = 1  # RFC 5944 §3.3
    REGISTRATION_REPLY = 3  # RFC 5944 §3.4
    TUNNEL_DATA = 4  # RFC 3519 §3.3
    REGISTRATION_REVOCATION = 7  # RFC 3543 §3.1
    REVOCATION_ACK = 15  # RFC 3543 §3.2
    HANDOFF_REQUEST = 16  # RFC 4881 §4.1
    HANDOFF_REPLY = 17  # RFC 4881 §4.2
    REGIONAL_REGISTRATION_REQUEST = 18  # RFC 4857 §4.2
    REGIONAL_REGISTRATION_REPLY = 19  # RFC 4857 §4.3
    FAST_BINDING_UPDATE = 20  # RFC 4988 §4.1
    FAST_BINDING_ACK = 21  # RFC 4988 §4.2
    GENERIC_NOTIFICATION = 22  # RFC 6098 §4.1
    GENERIC_NOTIFICATION_ACK = 23  # RFC 6098 §4.2
    EXPERIMENTAL = 255  # RFC 4064 §5


class ExtensionType(IntEnum):
    """Registration extension types (IANA mobileip-numbers, "Extensions appearing in
    Mobile IP control messages"). 0--127 are non-skippable, 128--255 skippable."""

    MN_HA_AUTH = 32  # RFC 5944 §3.5.2
    MN_FA_AUTH = 33  # RFC 5944 §3.5.3
    FA_HA_AUTH = 34  # RFC 5944 §3.5.4
    GENERALIZED_AUTH = 36  # RFC 4721 §5 (long format)
    CVSE_OLD = 37  # RFC 3115 (early number; Wireshark keeps it)
    CVSE = 38  # RFC 3115 §3.1 (long format)
    MN_FA_KEY_REQUEST = 40  # RFC 3957 (AAA key generation nonce request, long format)
    MN_FA_KEY_REPLY = 41  # RFC 3957
    MN_HA_KEY_REQUEST = 42  # RFC 3957
    MN_HA_KEY_REPLY = 43  # RFC 3957
    UDP_TUNNEL_REPLY = 44  # RFC 3519 §3.2
    FA_ERROR = 45  # RFC 4636
    GFA_IP_ADDRESS = 46  # RFC 4857
    PMIPV4_NON_SKIPPABLE = 47  # RFC 5563 (Wireshark)
    GRE_KEY = 48  # RFC 6245 §3.1
    ENCAPSULATING_DELIVERY_STYLE = 130  # RFC 3024 §3.3
    MN_NAI = 131  # RFC 2794 §2
    MN_FA_CHALLENGE = 132  # RFC 4721 §4
    NVSE_OLD = 133  # RFC 3115 (early number)
    NVSE = 134  # RFC 3115 §3.2
    NAI_CARRYING = 136  # RFC 3846 §3
    REVOCATION_SUPPORT = 137  # RFC 3543 §3.3
    GENERALIZED_LL_ADDRESS = 138  # RFC 4881 §4.4
    DYNAMIC_HA = 139  # RFC 4433 §3.1
    HIERARCHICAL_FA = 140  # RFC 4857
    REPLAY_PROTECTION_STYLE = 141  # RFC 4857
    REGIONAL_LIFETIME = 142  # RFC 4857
    UDP_TUNNEL_REQUEST = 144  # RFC 3519 §3.1
    MESSAGE_STRING = 145  # RFC 4917 §3
    PMIPV4_SKIPPABLE = 147  # RFC 5563
    MOBILE_NETWORK = 148  # RFC 5177 §3.1
    TRUSTED_NETWORKS_CONFIGURED = 149  # RFC 5265 §5.3
    EXPERIMENTAL_SKIPPABLE = 255  # RFC 4064


class AgentAdvExtensionType(IntEnum):
    """ICMP router discovery extension types (a separate number space; RFC 5944 §2.1)."""

    PAD = 0  # RFC 5944 §2.1.3 (one byte, no length)
    MOBILITY_AGENT_ADVERTISEMENT = 16  # RFC 5944 §2.1.1
    PREFIX_LENGTHS = 19  # RFC 5944 §2.1.2
    CHALLENGE = 24  # RFC 4721 §3.1
    AGENT_NAI = 25


class ReplyCode(IntEnum):
    """Registration Reply codes (RFC 5944 §3.4; IANA mobileip-numbers, "Code Values for
    Mobile IP Registration Reply Messages"). 0--1 accepted; 64--127 denied by the foreign
    agent; 128--192 denied by the home agent."""

    ACCEPTED = 0
    ACCEPTED_NO_SIMULTANEOUS_BINDINGS = 1
    # -- denied by the foreign agent (RFC 5944 §3.4, RFC 3024, RFC 3519, RFC 4721, ...)
    FA_UNSPECIFIED = 64
    FA_ADMIN_PROHIBITED = 65
    FA_INSUFFICIENT_RESOURCES = 66
    FA_MN_FAILED_AUTH = 67
    FA_HA_FAILED_AUTH = 68
    FA_LIFETIME_TOO_LONG = 69
    FA_POORLY_FORMED_REQUEST = 70
    FA_POORLY_FORMED_REPLY = 71
    FA_ENCAPSULATION_UNAVAILABLE = 72
    FA_RESERVED_UNAVAILABLE = 73
    FA_REVERSE_TUNNEL_UNAVAILABLE = 74  # RFC 3024
    FA_REVERSE_TUNNEL_MANDATORY = 75  # RFC 3024
    FA_MN_TOO_DISTANT = 76
    FA_INVALID_COA = 77
    FA_REGISTRATION_TIMEOUT = 78
    FA_DELIVERY_STYLE_UNSUPPORTED = 79  # RFC 3024
    FA_HOME_NETWORK_UNREACHABLE = 80
    FA_HA_HOST_UNREACHABLE = 81
    FA_HA_PORT_UNREACHABLE = 82
    FA_HA_UNREACHABLE = 88
    FA_VENDOR_SPECIFIC = 89  # RFC 3115
    FA_NONZERO_HA_REQUIRED = 90  # RFC 4433
    FA_NONZERO_HOA_REQUIRED = 96  # RFC 2794
    FA_MISSING_NAI = 97  # RFC 2794
    FA_MISSING_HOME_AGENT = 98  # RFC 2794
    FA_MISSING_HOME_ADDRESS = 99  # RFC 2794
    FA_UNKNOWN_CVSE_FROM_MN = 100  # RFC 3115
    FA_UNKNOWN_CVSE_FROM_HA = 101  # RFC 3115
    FA_UNKNOWN_CHALLENGE = 104  # RFC 4721
    FA_MISSING_CHALLENGE = 105  # RFC 4721
    FA_STALE_CHALLENGE = 106  # RFC 4721
    FA_MISSING_KEYGEN_REPLY = 107  # RFC 3957
    FA_MN_FAILED_AAA_AUTH = 108  # RFC 4721
    FA_HA_WRONG_CHALLENGE = 109  # RFC 4721
    FA_EXPERIMENTAL = 127  # RFC 4064
    # -- denied by the home agent
    HA_UNSPECIFIED = 128
    HA_ADMIN_PROHIBITED = 129
    HA_INSUFFICIENT_RESOURCES = 130
    HA_MN_FAILED_AUTH = 131
    HA_FA_FAILED_AUTH = 132
    HA_IDENTIFICATION_MISMATCH = 133
    HA_POORLY_FORMED_REQUEST = 134
    HA_TOO_MANY_BINDINGS = 135
    HA_UNKNOWN_HA_ADDRESS = 136
    HA_REVERSE_TUNNEL_UNAVAILABLE = 137  # RFC 3024
    HA_REVERSE_TUNNEL_MANDATORY = 138  # RFC 3024
    HA_ENCAPSULATION_UNAVAILABLE = 139  # RFC 3024
    HA_UNKNOWN_CVSE_FROM_MN = 140  # RFC 3115
    HA_UNKNOWN_CVSE_FROM_FA = 141  # RFC 3115
    HA_UDP_ENCAPSULATION_UNAVAILABLE = 142  # RFC 3519
    HA_REDIRECTED = 143  # RFC 4433
    HA_MN_FAILED_AAA_AUTH = 144  # RFC 4721
    HA_PMIP_UNSUPPORTED = 149  # RFC 5563
    HA_PMIP_DISALLOWED = 150  # RFC 5563
    HA_EXPERIMENTAL = 192  # RFC 4064

    @property
    def accepted(self) -> bool:
        return self <= 1

    @property
    def denied_by_fa(self) -> bool:
        return 64 <= self < 128

    @property
    def denied_by_ha(self) -> bool:
        return self >= 128


def reply_code_name(code: int) -> str:
    """The registry name of ``code``, or ``"unassigned (N)"``."""
    try:
        return ReplyCode(code).name.lower()
    except ValueError:
        return f"unassigned ({code})"
