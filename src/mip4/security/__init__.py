"""mip4.security: mobility security associations, authenticators, replay protection.

Pure (stdlib + :mod:`mip4.wire`); time enters as parameters.

* :mod:`.sa` -- :class:`SecurityAssociation`, the ``(peer, SPI)`` store.
* :mod:`.auth` -- compute, sign, verify authenticators over the bytes as received.
* :mod:`.replay` -- Identification values: NTP timestamps and nonces (RFC 5944 §5.7).
"""

from .auth import (
    CHAP_SPI,
    AuthenticationError,
    AuthFailure,
    VerifyResult,
    append_extensions,
    authorization_index,
    compute_authenticator,
    covered_bytes,
    sign,
    sign_mn_aaa,
    strip_after,
    strip_auth,
    strip_for_relay,
    truncate_before,
    verify,
    verify_mn_aaa,
    with_raw,
)
from .sa import (
    Algorithm,
    ReplayMethod,
    SecurityAssociation,
    SecurityAssociations,
    SecurityAssociationStore,
)

__all__ = [
    "CHAP_SPI",
    "Algorithm",
    "AuthFailure",
    "AuthenticationError",
    "ReplayMethod",
    "SecurityAssociation",
    "SecurityAssociationStore",
    "SecurityAssociations",
    "VerifyResult",
    "append_extensions",
    "authorization_index",
    "compute_authenticator",
    "covered_bytes",
    "sign",
    "sign_mn_aaa",
    "strip_after",
    "strip_auth",
    "strip_for_relay",
    "truncate_before",
    "verify",
    "verify_mn_aaa",
    "with_raw",
]
