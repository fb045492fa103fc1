"""What a mobile node does with each Registration Reply code (RFC 5944 §3.6.2).

Theory of operation
-------------------
Every one of the 256 possible codes has a defined reaction, held as data in
:data:`REPLY_REACTIONS` (built once, checked complete at import). Assigned codes get the
reaction their meaning calls for (RFC 5944 §3.4, §3.6.2.2, §3.6.2.3; RFC 3024 for reverse
tunnelling; RFC 4721 for challenges); unassigned codes fall back to the generic reaction of
their range: 2--63 and 64--127 and 128--255 are treated as "unspecified" denials by the
foreign agent or home agent, backed off and retried.

Reactions (:class:`Reaction`):

* ``REGISTERED`` -- 0 and 1 (RFC 5944 §3.6.2.2).
* ``RESYNC`` -- 133: resynchronise the Identification from the reply's high word and send a
  new request (RFC 5944 §3.6.2.3, §5.7).
* ``RETRY_LIFETIME`` -- 69: the reply's Lifetime is the most the foreign agent accepts;
  retry with it (RFC 5944 §3.7.2.2 / §3.6.2.3).
* ``RETRY_HOME_AGENT`` -- 136: the reply's Home Agent field is the home agent's unicast
  address (dynamic home agent discovery, RFC 5944 §3.6.1.2 / §3.8.3.2); re-register to it.
* ``RETRY_REDIRECTED`` -- 143: register with the home agent the reply's Redirected HA
  extension names (RFC 4433 §3.1), at most ``redirect_limit`` times in a row.
* ``RETRY_IPIP`` -- 72/139: fall back to the default IP-in-IP encapsulation.
* ``RETRY_WITH_T`` / ``RETRY_WITHOUT_T`` -- RFC 3024 §4.2 codes 74/75 and 137/138.
* ``RETRY_DIRECT_DELIVERY`` -- RFC 3024 79: drop the Encapsulating Delivery Style
  extension and retry with direct delivery.
* ``NEW_CHALLENGE`` -- RFC 4721 104/105/106/109: solicit a fresh advertisement (with a
  fresh challenge) and retry.
* ``RETRY_AAA`` -- not in the table: what a 131 becomes when the home agent has no key
  for the node (the reply has no MN-HA extension) and the node can ask the home AAA server
  (NAI and MN-AAA secret): retry with the challenge the home agent's reply gives (a
  co-located node, RFC 4721) and, for a node whose MN-HA key came from AAA, ask for a new
  key (RFC 3957); see :mod:`mip4.core.mn_client`.
* ``OTHER_AGENT`` -- 77: this care-of address is refused; use another agent, or wait for
  this one to advertise another care-of address (the one used may have been stale).
* ``BACK_OFF`` -- a transient denial (resources, unreachable home agent, unspecified):
  retry after an exponentially growing pause.
* ``GIVE_UP`` -- a denial the node cannot fix by itself (authentication, prohibited,
  poorly formed, unsupported feature): stop, with a reason the operator can read, until the
  node attaches somewhere else or is reconfigured.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mip4.wire.codes import ReplyCode, reply_code_name


class Reaction(Enum):
    REGISTERED = "registered"
    RESYNC = "resynchronise identification and retry"
    RETRY_LIFETIME = "retry with the lifetime the reply allows"
    RETRY_HOME_AGENT = "retry with the home agent named in the reply"
    RETRY_REDIRECTED = "register with the home agent the reply redirects to"
    RETRY_IPIP = "retry with IP-in-IP encapsulation"
    RETRY_WITH_T = "retry requesting reverse tunnelling"
    RETRY_WITHOUT_T = "retry without reverse tunnelling"
    RETRY_DIRECT_DELIVERY = "retry with the direct delivery style"
    NEW_CHALLENGE = "solicit a fresh challenge and retry"
    RETRY_AAA = "retry through the home AAA server (challenge, new MN-HA key)"
    OTHER_AGENT = "register through another agent"
    BACK_OFF = "back off and retry later"
    GIVE_UP = "give up"


@dataclass(frozen=True, slots=True)
class CodeReaction:
    code: int
    reaction: Reaction
    #: for the operator: what happened, in words
    reason: str

    @property
    def by_foreign_agent(self) -> bool:
        return 64 <= self.code < 128

    @property
    def by_home_agent(self) -> bool:
        return self.code >= 128


_C = ReplyCode
_R = Reaction

#: Assigned codes with a reaction of their own, and why.
_EXPLICIT: dict[int, tuple[Reaction, str]] = {
    _C.ACCEPTED: (_R.REGISTERED, "registration accepted"),
    _C.ACCEPTED_NO_SIMULTANEOUS_BINDINGS: (
        _R.REGISTERED,
        "registration accepted, but simultaneous bindings are not supported",
    ),
    # -- foreign agent (RFC 5944 §3.4)
    _C.FA_UNSPECIFIED: (_R.BACK_OFF, "foreign agent denied the registration, reason unspecified"),
    _C.FA_ADMIN_PROHIBITED: (_R.GIVE_UP, "foreign agent: administratively prohibited"),
    _C.FA_INSUFFICIENT_RESOURCES: (_R.BACK_OFF, "foreign agent: insufficient resources"),
    _C.FA_MN_FAILED_AUTH: (
        _R.GIVE_UP,
        "foreign agent: mobile node failed authentication (check the MN-FA key)",
    ),
    _C.FA_HA_FAILED_AUTH: (
        _R.GIVE_UP,
        "foreign agent: home agent failed authentication (FA-HA security association)",
    ),
    _C.FA_LIFETIME_TOO_LONG: (_R.RETRY_LIFETIME, "foreign agent: requested lifetime too long"),
    _C.FA_POORLY_FORMED_REQUEST: (_R.GIVE_UP, "foreign agent: poorly formed request"),
    _C.FA_POORLY_FORMED_REPLY: (
        _R.BACK_OFF,
        "foreign agent: home agent sent a poorly formed reply",
    ),
    _C.FA_ENCAPSULATION_UNAVAILABLE: (
        _R.RETRY_IPIP,
        "foreign agent: requested encapsulation unavailable",
    ),
    _C.FA_RESERVED_UNAVAILABLE: (_R.GIVE_UP, "foreign agent: reserved and unavailable"),
    _C.FA_REVERSE_TUNNEL_UNAVAILABLE: (
        _R.RETRY_WITHOUT_T,
        "foreign agent: reverse tunnel unavailable (RFC 3024)",
    ),
    _C.FA_REVERSE_TUNNEL_MANDATORY: (
        _R.RETRY_WITH_T,
        "foreign agent: reverse tunnel is mandatory and T was not set (RFC 3024)",
    ),
    _C.FA_MN_TOO_DISTANT: (_R.GIVE_UP, "foreign agent: mobile node too distant"),
    _C.FA_INVALID_COA: (_R.OTHER_AGENT, "foreign agent: invalid care-of address"),
    _C.FA_REGISTRATION_TIMEOUT: (
        _R.BACK_OFF,
        "foreign agent: registration timeout (no reply from the home agent)",
    ),
    _C.FA_DELIVERY_STYLE_UNSUPPORTED: (
        _R.RETRY_DIRECT_DELIVERY,
        "foreign agent: encapsulating delivery style not supported (RFC 3024)",
    ),
    _C.FA_HOME_NETWORK_UNREACHABLE: (_R.BACK_OFF, "foreign agent: home network unreachable"),
    _C.FA_HA_HOST_UNREACHABLE: (_R.BACK_OFF, "foreign agent: home agent host unreachable"),
    _C.FA_HA_PORT_UNREACHABLE: (_R.BACK_OFF, "foreign agent: home agent port unreachable"),
    _C.FA_HA_UNREACHABLE: (_R.BACK_OFF, "foreign agent: home agent unreachable"),
    _C.FA_VENDOR_SPECIFIC: (_R.GIVE_UP, "foreign agent: vendor-specific denial (RFC 3115)"),
    _C.FA_NONZERO_HA_REQUIRED: (_R.GIVE_UP, "foreign agent: non-zero home agent required"),
    _C.FA_NONZERO_HOA_REQUIRED: (_R.GIVE_UP, "foreign agent: non-zero home address required"),
    _C.FA_MISSING_NAI: (_R.GIVE_UP, "foreign agent: missing NAI (RFC 2794)"),
    _C.FA_MISSING_HOME_AGENT: (_R.GIVE_UP, "foreign agent: missing home agent"),
    _C.FA_MISSING_HOME_ADDRESS: (_R.GIVE_UP, "foreign agent: missing home address"),
    _C.FA_UNKNOWN_CVSE_FROM_MN: (_R.GIVE_UP, "foreign agent: cannot interpret our CVSE"),
    _C.FA_UNKNOWN_CVSE_FROM_HA: (
        _R.GIVE_UP,
        "foreign agent: cannot interpret the home agent's CVSE",
    ),
    _C.FA_UNKNOWN_CHALLENGE: (_R.NEW_CHALLENGE, "foreign agent: unknown challenge (RFC 4721)"),
    _C.FA_MISSING_CHALLENGE: (_R.NEW_CHALLENGE, "foreign agent: missing challenge (RFC 4721)"),
    _C.FA_STALE_CHALLENGE: (_R.NEW_CHALLENGE, "foreign agent: stale challenge (RFC 4721)"),
    _C.FA_MISSING_KEYGEN_REPLY: (
        _R.GIVE_UP,
        "foreign agent: missing MN-FA key generation reply (RFC 3957)",
    ),
    _C.FA_MN_FAILED_AAA_AUTH: (
        _R.GIVE_UP,
        "foreign agent: mobile node failed AAA authentication (RFC 4721)",
    ),
    _C.FA_HA_WRONG_CHALLENGE: (
        _R.NEW_CHALLENGE,
        "foreign agent: home agent sent the wrong challenge (RFC 4721)",
    ),
    _C.FA_EXPERIMENTAL: (_R.GIVE_UP, "foreign agent: experimental code (RFC 4064)"),
    # -- home agent (RFC 5944 §3.4)
    _C.HA_UNSPECIFIED: (_R.BACK_OFF, "home agent denied the registration, reason unspecified"),
    _C.HA_ADMIN_PROHIBITED: (_R.GIVE_UP, "home agent: administratively prohibited"),
    _C.HA_INSUFFICIENT_RESOURCES: (_R.BACK_OFF, "home agent: insufficient resources"),
    _C.HA_MN_FAILED_AUTH: (
        _R.GIVE_UP,
        "home agent: mobile node failed authentication (check the MN-HA key and SPI)",
    ),
    _C.HA_FA_FAILED_AUTH: (
        _R.GIVE_UP,
        "home agent: foreign agent failed authentication (FA-HA security association)",
    ),
    _C.HA_IDENTIFICATION_MISMATCH: (_R.RESYNC, "home agent: identification mismatch"),
    _C.HA_POORLY_FORMED_REQUEST: (_R.GIVE_UP, "home agent: poorly formed request"),
    _C.HA_TOO_MANY_BINDINGS: (_R.BACK_OFF, "home agent: too many simultaneous bindings"),
    _C.HA_UNKNOWN_HA_ADDRESS: (_R.RETRY_HOME_AGENT, "home agent: unknown home agent address"),
    _C.HA_REVERSE_TUNNEL_UNAVAILABLE: (
        _R.RETRY_WITHOUT_T,
        "home agent: reverse tunnel unavailable (RFC 3024)",
    ),
    _C.HA_REVERSE_TUNNEL_MANDATORY: (
        _R.RETRY_WITH_T,
        "home agent: reverse tunnel is mandatory and T was not set (RFC 3024)",
    ),
    _C.HA_ENCAPSULATION_UNAVAILABLE: (
        _R.RETRY_IPIP,
        "home agent: requested encapsulation unavailable",
    ),
    _C.HA_UNKNOWN_CVSE_FROM_MN: (_R.GIVE_UP, "home agent: cannot interpret our CVSE"),
    _C.HA_UNKNOWN_CVSE_FROM_FA: (
        _R.GIVE_UP,
        "home agent: cannot interpret the foreign agent's CVSE",
    ),
    _C.HA_UDP_ENCAPSULATION_UNAVAILABLE: (
        _R.GIVE_UP,
        "home agent: UDP encapsulation unavailable (RFC 3519)",
    ),
    _C.HA_REDIRECTED: (
        _R.RETRY_REDIRECTED,
        "home agent: redirected to another home agent (RFC 4433)",
    ),
    _C.HA_MN_FAILED_AAA_AUTH: (
        _R.GIVE_UP,
        "home agent: mobile node failed AAA authentication (RFC 4721)",
    ),
    _C.HA_PMIP_UNSUPPORTED: (_R.GIVE_UP, "home agent: proxy Mobile IP unsupported (RFC 5563)"),
    _C.HA_PMIP_DISALLOWED: (_R.GIVE_UP, "home agent: proxy Mobile IP disallowed (RFC 5563)"),
    _C.HA_EXPERIMENTAL: (_R.GIVE_UP, "home agent: experimental code (RFC 4064)"),
}


def _default(code: int) -> tuple[Reaction, str]:
    if code < 64:
        return (_R.BACK_OFF, f"unassigned reply code {code} (not an acceptance): retry later")
    if code < 128:
        return (_R.BACK_OFF, f"foreign agent: unassigned denial code {code}: retry later")
    return (_R.BACK_OFF, f"home agent: unassigned denial code {code}: retry later")


def _build() -> dict[int, CodeReaction]:
    table: dict[int, CodeReaction] = {}
    for code in range(256):
        reaction, reason = _EXPLICIT.get(code) or _default(code)
        table[code] = CodeReaction(code, reaction, f"{reason} ({code} {reply_code_name(code)})")
    missing = [c.value for c in ReplyCode if c.value not in _EXPLICIT]
    if missing:  # every assigned code must have been thought about
        raise RuntimeError(f"reply codes without an explicit reaction: {missing}")
    return table


#: The reaction to each of the 256 reply codes.
REPLY_REACTIONS: dict[int, CodeReaction] = _build()


def reaction_for(code: int) -> CodeReaction:
    return REPLY_REACTIONS[code & 0xFF]


__all__ = ["REPLY_REACTIONS", "CodeReaction", "Reaction", "reaction_for"]
