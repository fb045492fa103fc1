"""What the engines and the RADIUS shell exchange: typed requests, answers, accounting records.

Theory of operation. The agents stay sans-IO (STYLE.md): a foreign agent (or a home agent
for a co-located mobile node) that needs its home AAA server's decision emits an
:class:`AaaRequest` action, built from the registration request *as received* with
:meth:`AaaRequest.from_registration`; the I/O shell (:mod:`mip4.io.radius`) turns it into a
RADIUS Access-Request, retransmits and fails over (:mod:`mip4.aaa.policy`), and feeds the
engine an :class:`AaaAnswer` event carrying the same ``request_id``: ``ACCEPT`` with an
:class:`Authorization` (home address, home agent, MN-HA SPI and key), ``REJECT``, or
``TIMEOUT`` when every configured server stayed silent. Accounting (Start, Interim-Update,
Stop) is an :class:`AccountingRecord` action; its answer is an :class:`AccountingAnswer`.

Secrets and keys carry ``repr=False``: they never reach a log line through ``repr``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mip4.security.auth import AuthenticatedMessage
from mip4.security.mn_aaa import chap_attributes

#: 0.0.0.0: a home address or home agent the mobile node leaves to be assigned (RFC 2794)
UNSPECIFIED = IPv4Address(0)


class AaaResult(enum.Enum):
    """How an authentication exchange ended."""

    #: Access-Accept (RFC 2865 §4.2)
    ACCEPT = "accept"
    #: Access-Reject (RFC 2865 §4.3)
    REJECT = "reject"
    #: no valid answer from any configured server within the retransmission bounds
    TIMEOUT = "timeout"


class AcctStatus(enum.IntEnum):
    """Acct-Status-Type values (RFC 2866 §5.1)."""

    START = 1
    STOP = 2
    INTERIM_UPDATE = 3


class TerminateCause(enum.IntEnum):
    """Acct-Terminate-Cause values mip4 uses (RFC 2866 §5.10)."""

    #: deregistration by the mobile node (lifetime 0)
    USER_REQUEST = 1
    #: the binding or visitor entry expired
    SESSION_TIMEOUT = 5
    #: revoked by an agent (RFC 3543) or by the operator
    ADMIN_RESET = 6
    #: the agent was stopped by its operator (a clean shutdown: "Administrator is ending
    #: service on the NAS")
    ADMIN_REBOOT = 7
    #: the agent itself stopped
    NAS_REQUEST = 10


@dataclass(frozen=True)
class AaaRequest:
    """Action: ask the home AAA server to authenticate and authorize a mobile node.

    ``request_id`` is the engine's correlation token, echoed in the :class:`AaaAnswer`."""

    request_id: int
    #: the mobile node's NAI (RFC 2794), sent as User-Name
    nai: str
    #: CHAP-Password: challenge[0] || MN-AAA authenticator (RFC 4721 §7)
    chap_password: bytes
    #: CHAP-Challenge: MD5(preceding data) || challenge[-237:] (RFC 4721 §7)
    chap_challenge: bytes
    #: what the request asked for (0.0.0.0: "assign one", RFC 2794)
    home_address: IPv4Address = UNSPECIFIED
    home_agent: IPv4Address = UNSPECIFIED
    care_of_address: IPv4Address = UNSPECIFIED
    #: the asking agent's address, sent as NAS-IP-Address (and 3GPP2-Foreign-Agent-Address
    #: when ``foreign_agent`` is set)
    nas_address: IPv4Address | None = None
    foreign_agent: bool = True

    @classmethod
    def from_registration(
        cls,
        request_id: int,
        rrq: AuthenticatedMessage,
        *,
        nas_address: IPv4Address | None = None,
        foreign_agent: bool = True,
    ) -> AaaRequest:
        """Build from a decoded registration request with its raw bytes (see
        :func:`mip4.security.mn_aaa.chap_attributes`, which raises
        :class:`~mip4.security.auth.AuthenticationError` when it cannot be mapped)."""
        chap = chap_attributes(rrq)
        return cls(
            request_id=request_id,
            nai=chap.nai,
            chap_password=chap.chap_password,
            chap_challenge=chap.chap_challenge,
            home_address=getattr(rrq, "home_address", UNSPECIFIED),
            home_agent=getattr(rrq, "home_agent", UNSPECIFIED),
            care_of_address=getattr(rrq, "care_of_address", UNSPECIFIED),
            nas_address=nas_address,
            foreign_agent=foreign_agent,
        )


@dataclass(frozen=True)
class Authorization:
    """What an Access-Accept grants (the attributes cdma2000 deployments use)."""

    #: Framed-IP-Address (8): the home address to assign (RFC 2794 with AAA)
    home_address: IPv4Address | None = None
    #: 3GPP2-Home-Agent-IP-Address (5535/7)
    home_agent: IPv4Address | None = None
    #: 3GPP2-MN-HA-SPI (5535/57)
    mn_ha_spi: int | None = None
    #: 3GPP2-MN-HA-Shared-Key (5535/58), decrypted (RFC 2868 salt encryption); never printed
    mn_ha_key: bytes | None = field(default=None, repr=False)
    #: Session-Timeout (27), seconds, when the server limits the session
    session_timeout: int | None = None
    #: Mip4-Key-Nonce (26/32473/1): the Key Generation Nonce the server derived the MN-HA
    #: key with (RFC 3957); the home agent returns it to the node in extension 43
    key_nonce: bytes | None = None
    #: Class (25): echoed in accounting (RFC 2865 §5.25)
    radius_class: bytes | None = None
    #: RFC 3957 MN-FA key for a foreign agent's request (``MN_FA_KEY_ATTRIBUTES`` of
    #: :mod:`mip4.aaa.attributes`): Mip4-MN-FA-SPI (26/32473/2), the node's SPI with the FA
    mn_fa_spi: int | None = None
    #: Mip4-MN-FA-Key (26/32473/3), salt-encrypted on the wire; never printed
    mn_fa_key: bytes | None = field(default=None, repr=False)
    #: Mip4-MN-FA-Key-Nonce (26/32473/4): the Key Generation Nonce it was derived with; the
    #: foreign agent returns it to the node in extension 41
    mn_fa_key_nonce: bytes | None = None


@dataclass(frozen=True)
class AaaAnswer:
    """Event: the outcome of one :class:`AaaRequest`."""

    request_id: int
    result: AaaResult
    #: set for ``ACCEPT`` only
    authorization: Authorization | None = None
    #: the server that answered (its configured name), ``None`` on ``TIMEOUT``
    server: str | None = None
    #: Reply-Message, when the server sent one
    reply_message: str | None = None


@dataclass(frozen=True)
class AccountingRecord:
    """Action: an Accounting-Request (RFC 2866) for one visitor's Mobile IP session."""

    request_id: int
    status: AcctStatus
    #: Acct-Session-Id: unique per session, the same in its Start, Interim and Stop
    session_id: str
    nai: str
    home_address: IPv4Address
    care_of_address: IPv4Address
    home_agent: IPv4Address
    nas_address: IPv4Address | None = None
    #: tunnelled traffic of the visitor, from the data plane's counters: input = from the
    #: mobile node (RFC 2866 §5.3 "received from the port"), output = delivered to it
    input_octets: int = 0
    output_octets: int = 0
    input_packets: int = 0
    output_packets: int = 0
    #: Acct-Session-Time, seconds since the session started
    session_time: int = 0
    terminate_cause: TerminateCause | None = None
    radius_class: bytes | None = None

    def __post_init__(self) -> None:
        for name in ("input_octets", "output_octets", "input_packets", "output_packets"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.status is AcctStatus.STOP and self.terminate_cause is None:
            raise ValueError("a Stop record needs a terminate_cause (RFC 2866 §5.10)")


@dataclass(frozen=True)
class AccountingAnswer:
    """Event: the outcome of one :class:`AccountingRecord` (Accounting-Response or silence)."""

    request_id: int
    ok: bool
    server: str | None = None


@dataclass(frozen=True)
class DisconnectRequest:
    """A RADIUS Disconnect-Request (RFC 5176 §3.1) that passed its authenticator check: the
    session it names, by User-Name (the NAI) and/or Framed-IP-Address (the home address).
    The home agent revokes the node's bindings (RFC 3543) when it holds one."""

    nai: str | None = None
    home_address: IPv4Address | None = None
    #: the server (configured name) that sent it
    server: str | None = None

    @property
    def node(self) -> IPv4Address | str | None:
        """What names the node: the home address when given, else the NAI."""
        return self.home_address if self.home_address is not None else self.nai
