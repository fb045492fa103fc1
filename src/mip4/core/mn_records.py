"""The mobile node's registration records and the outcomes of its registration client.

Theory of operation
-------------------
Split out of :mod:`mip4.core.mn_client` (whose names these still are, re-exported there):
the plain data the :class:`~mip4.core.mn_client.RegistrationClient` keeps -- the outstanding
request (:class:`PendingRequest`), the binding the node believes its home agent holds
(:class:`Binding`), the last accepted registration for the operator
(:class:`RegistrationRecord`) and the corrections learnt from denials (:class:`Corrections`)
-- and the outcomes its methods return for the coordinator (:class:`Step`, :class:`Retry`,
:class:`RefusedCareOf`, :class:`Revoked`, :class:`AwaitChallenge`: :data:`ReplyOutcome`),
with :func:`encapsulation_of`, the tunnel a request's flags ask for. No behaviour lives
here: the client decides, these carry its decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from mip4.wire.messages import RegistrationFlags, RegistrationRequest

from .actions import Action, Encapsulation, SendUdp
from .mn_attachment import Attachment
from .mn_state import MnInput

#: Home Agent field values that ask for dynamic assignment (RFC 4433 §3.1)
UNASSIGNED_HOME_AGENT = (IPv4Address(0), IPv4Address("255.255.255.255"))


@dataclass(slots=True)
class PendingRequest:
    """The outstanding Registration Request."""

    request: RegistrationRequest
    send: SendUdp
    attachment: Attachment
    deregister: bool
    first_sent: float
    last_sent: float
    retransmissions: int
    timeout: float
    next_retry: float


@dataclass(slots=True)
class Binding:
    """What the node believes its home agent holds for it."""

    care_of_address: IPv4Address
    attachment: Attachment
    granted: int
    registered_at: float
    expires: float | None  #: None: infinite lifetime
    renew_at: float | None
    encapsulation: Encapsulation
    reverse_tunnel: bool
    #: Identification of the accepted request (a revocation notice names it, RFC 3543)
    identification: int = 0


@dataclass(frozen=True, slots=True)
class RegistrationRecord:
    """The node's last accepted registration or deregistration, for the operator."""

    #: when the reply arrived (the engine's clock)
    at: float
    #: the care-of address registered (the home address for a deregistration at home)
    care_of_address: IPv4Address
    #: from the request's last transmission to the reply, seconds
    round_trip: float
    retransmissions: int
    deregistration: bool


@dataclass(slots=True)
class Corrections:
    """Corrections learnt from denials, valid for the current attachment."""

    max_lifetime: int | None = None
    #: refused encapsulations (a frozen set: no empty set allocated per attachment)
    no_encapsulations: frozenset[Encapsulation] = frozenset()
    reverse_tunnel: bool | None = None  #: forced on/off by 74/75/137/138
    direct_delivery: bool = False  #: 79: no Encapsulating Delivery Style
    corrections: int = 0
    backoffs: int = 0
    redirects: int = 0  #: 143 redirections followed in a row (RFC 4433)


# ----------------------------------------------------------------------------------------
# Outcomes
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """Move the state machine with ``input`` (``why`` for the log), then emit ``after``."""

    input: MnInput
    why: str
    after: tuple[Action, ...] = ()
    #: emitted before the transition
    before: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Retry:
    """Register again for the current attachment (a corrective retry)."""

    why: str


@dataclass(frozen=True, slots=True)
class RefusedCareOf:
    """Code 77: the agent refused the care-of address of ``attachment``."""

    attachment: Attachment
    reason: str


@dataclass(frozen=True, slots=True)
class Revoked:
    """RFC 3543: the foreign agent told the node its registration was revoked."""

    reason: str


@dataclass(frozen=True, slots=True)
class AwaitChallenge:
    """A challenge error (RFC 4721): wait for a fresh advertisement from the agent."""

    interface: str
    reason: str


ReplyOutcome = Step | Retry | RefusedCareOf | AwaitChallenge | Revoked


def encapsulation_of(flags: RegistrationFlags) -> Encapsulation:
    if flags & RegistrationFlags.M:
        return Encapsulation.MINIMAL
    if flags & RegistrationFlags.G:
        return Encapsulation.GRE
    return Encapsulation.IPIP


__all__ = [
    "AwaitChallenge",
    "Binding",
    "Corrections",
    "PendingRequest",
    "RefusedCareOf",
    "RegistrationRecord",
    "ReplyOutcome",
    "Retry",
    "Revoked",
    "Step",
    "encapsulation_of",
]
