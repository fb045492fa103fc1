"""Registration revocation (RFC 3543): what the home agent and the foreign agent share.

Theory of operation
-------------------
Revocation lets one mobility agent tell the other that a registration it serves has ended
before its lifetime did. Support is negotiated per registration: a foreign agent that
supports it sets the X bit in its advertisements and appends a Revocation Support
extension (137) after the mobile node's authenticator and before its FA-HA authenticator
when relaying a request; a home agent that supports it answers with its own 137 in the
reply (again before FA-HA). Without an FA-HA security association there is no
negotiation: every revocation message is authenticated with FA-HA (RFC 3543 §3). The ``I``
flag of each 137 says the agent supports "informing the mobile node": the home agent then
may set ``I`` in a revocation, asking the foreign agent to tell the node.

:class:`Revocations` is one agent's half of the protocol, sans-IO like the engines:

* **Sending.** :meth:`Revocations.start` builds a Registration Revocation (type 7) signed
  with FA-HA and remembers it as outstanding. Its Revocation Identifier is this agent's
  clock in seconds (``now + clock_offset``), strictly increasing across every revocation
  the agent sends -- the timestamp of the 137 extensions it sends is the same clock, so a
  later revocation always carries an identifier at least the timestamp its peer learnt at
  registration. Unacknowledged, it is sent again after ``retransmit_initial`` seconds,
  doubling up to ``retransmit_max``, at most ``retransmit_limit`` times, then given up
  (counted ``revocation_unacknowledged``); each retransmission carries a fresh, greater
  identifier, and an acknowledgement of any of them ends it.
* **Receiving.** :meth:`Revocations.verify` checks the FA-HA authenticator over the bytes
  as received (a bad or missing one: silently discarded, counted
  ``revocation_bad_authenticator``); :meth:`Revocations.fresh` is the replay check: per
  (peer, home address) the identifier must exceed the last one accepted and must not be
  below the timestamp the peer sent in the registration's 137 extension. Anything else is
  a replay: ignored (no acknowledgement) and counted ``revocation_replayed``. A fresh
  revocation is acknowledged (type 15, FA-HA, the same identifier) even when no binding
  or visitor is left -- the peer's retransmission after a lost acknowledgement finds
  nothing and still stops.

RFC 3543's text beyond its table of contents was not available when this was written: the
message layouts are Wireshark's (``mip4.wire.msg_revocation``), the rules above are this
implementation's reading, and the choices it makes where the RFC is not at hand are said so
where they are made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Protocol

from mip4.security.auth import FA_HA, AuthenticationError, sign, verify
from mip4.security.sa import SecurityAssociation, SecurityAssociationStore, lookup_for
from mip4.wire.errors import DecodeError
from mip4.wire.ext_mobility import RevocationSupportExtension, RevocationSupportFlags
from mip4.wire.extensions import ForeignHomeAuthExtension
from mip4.wire.messages import decode_message
from mip4.wire.msg_revocation import (
    RegistrationRevocation,
    RevocationAck,
    RevocationAckFlags,
    RevocationFlags,
)

from .actions import MIP_PORT, Action, Log, SendUdp
from .counters import Counters
from .registration import ConfigError, Discard

__all__ = [
    "Outstanding",
    "RevocationSettings",
    "Revocations",
    "decode_revocation",
    "support_extension",
]

_MASK32 = 0xFFFFFFFF


@dataclass(frozen=True)
class RevocationSettings:
    """How an agent takes part in registration revocation (RFC 3543)."""

    #: negotiate revocation (X bit / 137 extension) and send and accept revocations
    enabled: bool = False
    #: support the 'I' bit: informing the mobile node of a revocation
    inform: bool = True
    #: seconds before the first retransmission of an unacknowledged revocation
    retransmit_initial: float = 1.0
    #: longest pause between retransmissions (the pause doubles up to it)
    retransmit_max: float = 8.0
    #: retransmissions before giving up
    retransmit_limit: int = 4

    def __post_init__(self) -> None:
        if not self.retransmit_initial > 0:
            raise ConfigError("revocation_retransmit_initial must be > 0")
        if self.retransmit_max < self.retransmit_initial:
            raise ConfigError("revocation_retransmit_max must be >= revocation_retransmit_initial")
        if not 0 <= self.retransmit_limit <= 32:
            raise ConfigError("revocation_retransmit_limit not in 0..32")


class _RevocationKeys(Protocol):
    """The ``revocation*`` keys both agents' configurations carry."""

    @property
    def revocation(self) -> bool: ...
    @property
    def revocation_inform(self) -> bool: ...
    @property
    def revocation_retransmit_initial(self) -> float: ...
    @property
    def revocation_retransmit_max(self) -> float: ...
    @property
    def revocation_retransmit_limit(self) -> int: ...


def settings_of(config: _RevocationKeys, role: str) -> RevocationSettings:
    """An agent configuration's ``revocation*`` keys as :class:`RevocationSettings`; an
    error names the role and the key."""
    try:
        return RevocationSettings(
            enabled=config.revocation,
            inform=config.revocation_inform,
            retransmit_initial=config.revocation_retransmit_initial,
            retransmit_max=config.revocation_retransmit_max,
            retransmit_limit=config.revocation_retransmit_limit,
        )
    except ConfigError as e:
        raise ConfigError(f"{role}: {e}") from None


def support_extension(timestamp: int, inform: bool) -> RevocationSupportExtension:
    """The Revocation Support extension an agent appends (RFC 3543 §3.2)."""
    flags = RevocationSupportFlags.I if inform else RevocationSupportFlags(0)
    return RevocationSupportExtension(timestamp & _MASK32, flags)


def decode_revocation(payload: bytes) -> RegistrationRevocation | RevocationAck | None:
    """The revocation message in ``payload``, ``None`` when it is another message type;
    undecodable revocation messages raise :class:`Discard`."""
    if not payload or payload[0] not in (RegistrationRevocation.TYPE, RevocationAck.TYPE):
        return None
    try:
        msg = decode_message(payload)
    except DecodeError as e:
        raise Discard("decode_error", str(e)) from None
    assert isinstance(msg, RegistrationRevocation | RevocationAck)
    return msg


@dataclass
class Outstanding:
    """A revocation sent and not yet acknowledged."""

    peer: IPv4Address
    home_address: IPv4Address
    flags: RevocationFlags
    home_domain_address: IPv4Address
    foreign_domain_address: IPv4Address
    sa: SecurityAssociation
    src: IPv4Address | None
    reason: str
    started: float
    timeout: float
    next_retry: float
    #: every Revocation Identifier sent for it (an acknowledgement of any one ends it)
    identifiers: list[int] = field(default_factory=list)
    retransmissions: int = 0


class Revocations:
    """One agent's revocation state (see the module docstring)."""

    def __init__(
        self,
        role: str,
        settings: RevocationSettings,
        security_associations: SecurityAssociationStore,
        clock_offset: float,
        counters: Counters,
    ) -> None:
        self.role = role
        self.settings = settings
        self.security_associations = security_associations
        self.clock_offset = clock_offset
        self.counters = counters
        self._last_identifier = 0
        #: revocations waiting for their acknowledgement, by (peer, home address)
        self._outstanding: dict[tuple[IPv4Address, IPv4Address], Outstanding] = {}
        #: the last Revocation Identifier accepted, by (peer, home address)
        self._accepted: dict[tuple[IPv4Address, IPv4Address], int] = {}

    # -- clock ------------------------------------------------------------------------------

    def timestamp(self, now: float) -> int:
        """This agent's revocation clock: Unix seconds, 32 bits (never below an identifier
        already sent)."""
        return max(int(now + self.clock_offset) & _MASK32, self._last_identifier)

    def _next_identifier(self, now: float) -> int:
        ident = max(int(now + self.clock_offset) & _MASK32, self._last_identifier + 1)
        self._last_identifier = ident & _MASK32
        return self._last_identifier

    def fa_ha_sa(self, peer: IPv4Address) -> SecurityAssociation | None:
        sas = self.security_associations.for_peer(peer)
        return sas[0] if sas else None

    # -- sending ------------------------------------------------------------------------------

    @property
    def outstanding(self) -> dict[tuple[IPv4Address, IPv4Address], Outstanding]:
        return dict(self._outstanding)

    def start(
        self,
        *,
        peer: IPv4Address,
        home_address: IPv4Address,
        flags: RevocationFlags,
        home_domain_address: IPv4Address,
        foreign_domain_address: IPv4Address,
        now: float,
        reason: str,
        src: IPv4Address | None = None,
    ) -> list[Action]:
        """Send a revocation to ``peer`` (a new one replaces one outstanding for the same
        home address). Nothing is sent without an FA-HA association with ``peer``."""
        sa = self.fa_ha_sa(peer)
        if sa is None:
            self.counters.event("revocation_without_sa")
            return [
                Log(
                    f"{self.role}.revocation_not_sent",
                    {"peer": peer, "home_address": home_address, "why": "no FA-HA SA"},
                )
            ]
        s = self.settings
        out = Outstanding(
            peer=peer,
            home_address=home_address,
            flags=flags,
            home_domain_address=home_domain_address,
            foreign_domain_address=foreign_domain_address,
            sa=sa,
            src=src,
            reason=reason,
            started=now,
            timeout=s.retransmit_initial,
            next_retry=now + s.retransmit_initial,
        )
        self._outstanding[(peer, home_address)] = out
        self.counters.event("revocations_sent")
        return [
            self._send(out, now),
            Log(
                f"{self.role}.revocation_sent",
                {
                    "peer": peer,
                    "home_address": home_address,
                    "identifier": out.identifiers[-1],
                    "inform": bool(flags & RevocationFlags.I),
                    "reason": reason,
                },
            ),
        ]

    def _send(self, out: Outstanding, now: float) -> SendUdp:
        ident = self._next_identifier(now)
        out.identifiers.append(ident)
        msg = RegistrationRevocation(
            flags=out.flags,
            home_address=out.home_address,
            home_domain_address=out.home_domain_address,
            foreign_domain_address=out.foreign_domain_address,
            revocation_id=ident,
        )
        signed = sign(msg, ForeignHomeAuthExtension, out.sa)
        return SendUdp(dst=out.peer, payload=signed.raw, dport=MIP_PORT, src=out.src)

    def next_deadline(self) -> float | None:
        return min((o.next_retry for o in self._outstanding.values()), default=None)

    def on_timer(self, now: float) -> list[Action]:
        """Retransmit what is due, with back-off; give up past the limit."""
        actions: list[Action] = []
        s = self.settings
        for key, out in list(self._outstanding.items()):
            if out.next_retry > now:
                continue
            if out.retransmissions >= s.retransmit_limit:
                del self._outstanding[key]
                self.counters.event("revocation_unacknowledged")
                actions.append(
                    Log(
                        f"{self.role}.revocation_unacknowledged",
                        {
                            "peer": out.peer,
                            "home_address": out.home_address,
                            "retransmissions": out.retransmissions,
                        },
                    )
                )
                continue
            out.retransmissions += 1
            out.timeout = min(out.timeout * 2, s.retransmit_max)
            out.next_retry = now + out.timeout
            self.counters.event("revocation_retransmissions")
            actions.append(self._send(out, now))
            actions.append(
                Log(
                    f"{self.role}.revocation_retransmitted",
                    {
                        "peer": out.peer,
                        "home_address": out.home_address,
                        "identifier": out.identifiers[-1],
                        "retransmissions": out.retransmissions,
                    },
                )
            )
        return actions

    def acknowledged(self, ack: RevocationAck, src: IPv4Address) -> Outstanding:
        """The outstanding revocation ``ack`` (already verified) ends; :class:`Discard`
        when it matches none."""
        out = self._outstanding.get((src, ack.home_address))
        if out is None or ack.revocation_id not in out.identifiers:
            raise Discard("unmatched_revocation_ack", f"{ack.home_address} from {src}")
        del self._outstanding[(src, ack.home_address)]
        self.counters.event("revocations_acknowledged")
        return out

    # -- receiving ------------------------------------------------------------------------------

    def verify(self, msg: RegistrationRevocation | RevocationAck, src: IPv4Address) -> None:
        """RFC 3543 §3: FA-HA over the bytes as received, with the sender's SA; otherwise
        a counted silent discard."""
        if not self.settings.enabled:
            raise Discard("revocation_not_supported", str(src))
        try:
            verify(msg, FA_HA, lookup_for(self.security_associations, src))
        except AuthenticationError as e:
            raise Discard("revocation_bad_authenticator", f"from {src}: {e}") from None

    def fresh(self, msg: RegistrationRevocation, src: IPv4Address, floor: int | None) -> bool:
        """The replay check (see the module docstring); a replay is counted and logged by
        the caller's discard."""
        key = (src, msg.home_address)
        last = self._accepted.get(key)
        if last is not None and msg.revocation_id <= last:
            return False
        if floor is not None and msg.revocation_id < floor:
            return False
        self._accepted[key] = msg.revocation_id
        return True

    def ack(
        self, msg: RegistrationRevocation, src: IPv4Address, informed: bool, local: IPv4Address
    ) -> SendUdp:
        """The acknowledgement of ``msg`` (RFC 3543 §3.4), signed with FA-HA."""
        sa = self.fa_ha_sa(src)
        assert sa is not None  # verify() found it
        ack = RevocationAck(
            flags=RevocationAckFlags.I if informed else RevocationAckFlags(0),
            home_address=msg.home_address,
            revocation_id=msg.revocation_id,
        )
        signed = sign(ack, ForeignHomeAuthExtension, sa)
        return SendUdp(dst=src, payload=signed.raw, dport=MIP_PORT, src=local)
