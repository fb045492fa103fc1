"""mip4.security: mobility security associations, authenticators, replay protection.

Pure (stdlib + :mod:`mip4.wire`); time and randomness enter as parameters.

* :mod:`.sa` -- :class:`SecurityAssociation`, the ``(peer, SPI)`` store.
* :mod:`.auth` -- compute, sign, verify authenticators over the bytes as received; the
  foreign agent's strip/append helpers; MN-AAA (RFC 4721).
* :mod:`.replay` -- Identification values: NTP timestamps and nonces (RFC 5944 §5.7).
* :mod:`.challenge` -- the foreign agent's challenge window (RFC 4721).

Typical home agent use, for a decoded request ``rrq`` from mobile node ``hoa`` relayed by
foreign agent ``fa``::

    ok = verify(rrq, MN_HA, sas.lookup(hoa))         # AuthenticationError -> 131
    verify(rrq, FA_HA, sas.lookup(fa))               # if an FA-HA SA exists -> 132
    check = check_request(state, rrq.identification, ok.sa.replay, now_unix=wall,
                          tolerance=ok.sa.replay_tolerance, new_nonce=random_u32())
    states[hoa] = check.state                        # only after authentication passed
    reply = sign(RegistrationReply(check.code or 0, ..., check.reply_identification),
                 MobileHomeAuthExtension, ok.sa)
"""

from .auth import (
    CHAP_SPI,
    FA_HA,
    GENERALIZED,
    MN_FA,
    MN_HA,
    AuthenticationError,
    AuthFailure,
    VerifyResult,
    append_extensions,
    authorization_index,
    compute_authenticator,
    covered_bytes,
    find_auth_extension,
    mn_aaa_chap,
    reply_code_for,
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
from .challenge import ChallengeWindow, random_challenge, request_challenge
from .replay import (
    NTP_UNIX_OFFSET,
    MobileNodeReplay,
    ReplayCheck,
    ReplayState,
    check_request,
    matches_request,
    ntp_timestamp,
    random_u32,
    reply_identification,
    resync_identification,
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
    "FA_HA",
    "GENERALIZED",
    "MN_FA",
    "MN_HA",
    "NTP_UNIX_OFFSET",
    "Algorithm",
    "AuthFailure",
    "AuthenticationError",
    "ChallengeWindow",
    "MobileNodeReplay",
    "ReplayCheck",
    "ReplayMethod",
    "ReplayState",
    "SecurityAssociation",
    "SecurityAssociationStore",
    "SecurityAssociations",
    "VerifyResult",
    "append_extensions",
    "authorization_index",
    "check_request",
    "compute_authenticator",
    "covered_bytes",
    "find_auth_extension",
    "matches_request",
    "mn_aaa_chap",
    "ntp_timestamp",
    "random_challenge",
    "random_u32",
    "reply_code_for",
    "reply_identification",
    "request_challenge",
    "resync_identification",
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
