"""mip4.aaa: the home AAA server's side of Mobile IPv4, pure (no sockets, no clock).

* :mod:`.messages` -- :class:`AaaRequest` (an engine's action) and :class:`AaaAnswer` (the
  event it gets back), :class:`Authorization`, :class:`AccountingRecord`.
* :mod:`.attributes` -- those messages <-> RADIUS attributes (RFC 2865/2866, 3GPP2 VSAs).
* :mod:`.policy` -- retransmission and failover across servers, driven by ``now``;
  per-server counters.
* :mod:`.freeradius` -- a minimal FreeRADIUS configuration generated as text.

The RADIUS transport (pyrad on asyncio) is :mod:`mip4.io.radius`. The MN-AAA authenticator's
mapping onto CHAP is :mod:`mip4.security.mn_aaa` (RFC 4721 §7).
"""

from .messages import (
    UNSPECIFIED,
    AaaAnswer,
    AaaRequest,
    AaaResult,
    AccountingAnswer,
    AccountingRecord,
    AcctStatus,
    Authorization,
    TerminateCause,
)
from .policy import Policy, RadiusServer, ServerCounters

__all__ = [
    "UNSPECIFIED",
    "AaaAnswer",
    "AaaRequest",
    "AaaResult",
    "AccountingAnswer",
    "AccountingRecord",
    "AcctStatus",
    "Authorization",
    "Policy",
    "RadiusServer",
    "ServerCounters",
    "TerminateCause",
]
