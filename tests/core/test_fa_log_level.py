"""Issue 13: the foreign agent's lines for a renewal that leaves the visitor as it was
(``fa.request_relayed``, ``fa.reply_relayed``) are routine (debug); first registrations,
changes, deregistrations and denials stay info. ``renewal_unchanged`` counts the quiet ones
(``mip4 status`` shows engine events)."""

from __future__ import annotations

from collections.abc import Sequence

from mip4.core.actions import DEBUG, INFO, Action, Log
from mip4.core.foreign_agent import ForeignAgent, VisitorState

from .test_foreign_agent import HOA, MAC, MAC2, from_ha, from_mn, make_fa, reply, request


def _level(actions: Sequence[Action], event: str) -> int:
    (log,) = [a for a in actions if isinstance(a, Log) and a.event == event]
    return log.level


def _round(
    fa: ForeignAgent, now: float, *, code: int = 0, lifetime: int = 600, mac: bytes = MAC
) -> tuple[int, int]:
    req = fa.handle(from_mn(request(lifetime=lifetime), mac=mac), now)
    rep = fa.handle(from_ha(reply(code, lifetime)), now + 0.1)
    return _level(req, "fa.request_relayed"), _level(rep, "fa.reply_relayed")


def test_unchanged_renewal_is_debug_and_counted() -> None:
    fa = make_fa()
    fa.handle_timer(0.0)
    assert _round(fa, 1.0) == (INFO, INFO)
    assert fa.state_of(HOA) is VisitorState.REGISTERED
    assert _round(fa, 2.0) == (DEBUG, DEBUG)
    assert _round(fa, 3.0) == (DEBUG, DEBUG)
    assert fa.counters.events["renewal_unchanged"] == 2
    assert fa.counters.events["relayed_requests"] == 3


def test_changes_denials_and_deregistrations_stay_info() -> None:
    fa = make_fa()
    fa.handle_timer(0.0)
    assert _round(fa, 1.0) == (INFO, INFO)
    assert _round(fa, 2.0, lifetime=300) == (INFO, INFO)  # another lifetime
    assert _round(fa, 3.0, lifetime=300, mac=MAC2) == (INFO, INFO)  # another link address
    assert _round(fa, 4.0, lifetime=300, mac=MAC2) == (DEBUG, DEBUG)
    assert _round(fa, 5.0, lifetime=300, mac=MAC2, code=133) == (DEBUG, INFO)  # denied
    assert _round(fa, 6.0, lifetime=0, mac=MAC2) == (INFO, INFO)  # deregistration
    assert fa.state_of(HOA) is VisitorState.IDLE
    assert _round(fa, 7.0) == (INFO, INFO)  # registered again
    assert fa.counters.events["renewal_unchanged"] == 1
