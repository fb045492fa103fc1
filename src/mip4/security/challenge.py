"""Foreign-agent challenges (RFC 4721: Mobile IPv4 Challenge/Response Extensions).

Theory of operation
-------------------
A foreign agent that wants replay protection for requests it cannot otherwise judge puts a
random *challenge* in its agent advertisements (Challenge extension, ICMP extension 24,
RFC 4721 §2) and, optionally, in its Registration Replies (MN-FA Challenge extension 132,
RFC 4721 §3.2). The mobile node copies one into its next request as an MN-FA Challenge
extension, before the MN-FA or MN-AAA authentication extension that covers it (RFC 4721
§3.1). The foreign agent then checks (RFC 4721 §3.2):

* no challenge in the request -> 105 *missing challenge*;
* the challenge is one of the last ``window`` it advertised (CHALLENGE_WINDOW, default 2,
  RFC 4721 §8), or the one it gave this node in a reply, and the node has not used it
  before -> accepted;
* the challenge was issued but has left the window, or this node already used it ->
  106 *stale challenge*;
* never issued by this agent -> 104 *unknown challenge*.

(Telling "stale" from "unknown" needs memory of older challenges; ``history`` bounds it.
RFC 4721 leaves the choice between 104 and 106 for an expired challenge to the agent; we
answer 106 when we remember issuing it.)

:meth:`ChallengeWindow.check` does not change anything; call
:meth:`ChallengeWindow.consume` once the request's MN-FA (or, via AAA, MN-AAA)
authenticator has been verified, so that forged requests cannot use up a node's
challenges. Randomness enters as a parameter; :func:`random_challenge` is the convenience
the I/O shell uses.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Hashable

from mip4.wire.codes import ReplyCode
from mip4.wire.extensions import Extension, MobileForeignChallengeExtension

#: RFC 4721 §8: how many of the most recently advertised challenges stay acceptable.
CHALLENGE_WINDOW = 2
#: RFC 4721 §2: the challenge SHOULD be at least 4 bytes. Solaris mipagent sends 16.
MIN_CHALLENGE_LEN = 4
DEFAULT_CHALLENGE_LEN = 16


def random_challenge(length: int = DEFAULT_CHALLENGE_LEN) -> bytes:
    """A fresh random challenge from the OS CSPRNG."""
    if not MIN_CHALLENGE_LEN <= length <= 255:
        raise ValueError(f"challenge length {length} outside {MIN_CHALLENGE_LEN}..255")
    return secrets.token_bytes(length)


def request_challenge(extensions: tuple[Extension, ...]) -> bytes | None:
    """The challenge of the (last) MN-FA Challenge extension (132) in a request."""
    for ext in reversed(extensions):
        if isinstance(ext, MobileForeignChallengeExtension):
            return ext.challenge
    return None


class ChallengeWindow:
    """The challenges a foreign agent has issued and which of them each node has used."""

    __slots__ = ("_history", "_issued", "_per_node", "_used", "history", "window")

    def __init__(self, window: int = CHALLENGE_WINDOW, history: int = 32) -> None:
        if window < 1:
            raise ValueError(f"challenge window must be >= 1, not {window}")
        if history < window:
            raise ValueError(f"history ({history}) must be >= window ({window})")
        self.window = window
        self.history = history
        #: advertised challenges, newest last (at most ``history``)
        self._issued: deque[bytes] = deque(maxlen=history)
        self._history: set[bytes] = set()
        #: challenge handed to a node in a Registration Reply (RFC 4721 §3.2)
        self._per_node: dict[Hashable, bytes] = {}
        #: challenges each node has used, newest last
        self._used: dict[Hashable, deque[bytes]] = {}

    @staticmethod
    def _valid(challenge: bytes) -> bytes:
        if not isinstance(challenge, bytes) or len(challenge) < MIN_CHALLENGE_LEN:
            raise ValueError(
                f"a challenge must be at least {MIN_CHALLENGE_LEN} bytes (RFC 4721 §2)"
            )
        return challenge

    def advertise(self, challenge: bytes) -> bytes:
        """Record ``challenge`` as the one now being advertised (a new one per
        advertisement, RFC 4721 §2) and return it."""
        self._valid(challenge)
        if len(self._issued) == self._issued.maxlen:
            self._history.discard(self._issued[0])
        self._issued.append(challenge)
        self._history.add(challenge)
        return challenge

    @property
    def current(self) -> bytes | None:
        """The challenge to put in the next advertisement (``None`` before the first)."""
        return self._issued[-1] if self._issued else None

    def issue_to(self, node: Hashable, challenge: bytes) -> bytes:
        """Record ``challenge`` as given to ``node`` in a Registration Reply; it is valid for
        that node's next request whatever the window (RFC 4721 §3.2)."""
        self._per_node[node] = self._valid(challenge)
        return challenge

    def check(self, node: Hashable, challenge: bytes | None) -> ReplyCode | None:
        """``None`` if ``challenge`` (from ``node``'s request) is acceptable, else the code
        for the reply: 105 missing, 106 stale, 104 unknown. Changes nothing."""
        if challenge is None:
            return ReplyCode.FA_MISSING_CHALLENGE
        used = self._used.get(node)
        if used is not None and challenge in used:
            return ReplyCode.FA_STALE_CHALLENGE
        if self._per_node.get(node) == challenge:
            return None
        recent = list(self._issued)[-self.window :]
        if challenge in recent:
            return None
        if challenge in self._history:
            return ReplyCode.FA_STALE_CHALLENGE
        return ReplyCode.FA_UNKNOWN_CHALLENGE

    def consume(self, node: Hashable, challenge: bytes) -> None:
        """Mark ``challenge`` used by ``node`` (after its request authenticated)."""
        used = self._used.get(node)
        if used is None:
            used = self._used[node] = deque(maxlen=self.history)
        used.append(challenge)
        if self._per_node.get(node) == challenge:
            del self._per_node[node]

    def forget(self, node: Hashable) -> None:
        """Drop what is remembered about ``node`` (its visitor entry was removed)."""
        self._used.pop(node, None)
        self._per_node.pop(node, None)


__all__ = [
    "CHALLENGE_WINDOW",
    "DEFAULT_CHALLENGE_LEN",
    "MIN_CHALLENGE_LEN",
    "ChallengeWindow",
    "random_challenge",
    "request_challenge",
]
