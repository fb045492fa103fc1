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


def _script(fa: ForeignAgent) -> list[list[Action]]:
    """A first registration, two unchanged renewals, a change, a denial, a deregistration:
    every action of each input."""
    fa.handle_timer(0.0)
    out: list[list[Action]] = []
    steps = [(600, 0, MAC), (600, 0, MAC), (600, 0, MAC), (300, 0, MAC2), (300, 133, MAC2)]
    for i, (lifetime, code, mac) in enumerate([*steps, (0, 0, MAC2)]):
        now = 1.0 + i
        out.append(fa.handle(from_mn(request(lifetime=lifetime), mac=mac), now))
        out.append(fa.handle(from_ha(reply(code, lifetime)), now + 0.1))
    return out


def _without_debug_logs(actions: list[Action]) -> list[Action]:
    return [a for a in actions if not (isinstance(a, Log) and a.level == DEBUG)]


def test_debug_records_not_built_above_the_engine_log_level() -> None:
    """``log_level`` INFO: the routine lines of unchanged renewals are not built; every
    other action (the info lines included) and every counter is what DEBUG gives."""
    loud, quiet = make_fa(), make_fa()
    assert loud.log_level == DEBUG  # the default builds every record
    quiet.log_level = INFO
    with_debug, without = _script(loud), _script(quiet)
    debug_lines = [a for out in with_debug for a in out if isinstance(a, Log) and a.level == DEBUG]
    # two unchanged renewals' request and reply lines, and the denied renewal's request
    assert len(debug_lines) == 5
    assert {a.event for a in debug_lines} == {"fa.request_relayed", "fa.reply_relayed"}
    assert not [a for out in without for a in out if isinstance(a, Log) and a.level < INFO]
    assert [_without_debug_logs(out) for out in with_debug] == without
    assert loud.counters.events == quiet.counters.events
    assert loud.counters.events["renewal_unchanged"] == 2


def test_debug_records_identical_when_debug_is_on() -> None:
    """At DEBUG (the default) the routine records are built as before: each unchanged
    renewal's request and reply line, with all their fields."""
    fa = make_fa()
    fa.log_level = DEBUG
    out = _script(fa)
    renewal = out[2] + out[3]  # the first unchanged renewal: request, then reply
    (req,) = [a for a in renewal if isinstance(a, Log) and a.event == "fa.request_relayed"]
    (rep,) = [a for a in renewal if isinstance(a, Log) and a.event == "fa.reply_relayed"]
    assert req.level == rep.level == DEBUG
    assert set(req.fields) == {
        "home_address",
        "nai",
        "home_agent",
        "care_of_address",
        "lifetime",
        "identification",
    }
    assert (req.fields["home_address"], req.fields["lifetime"], req.fields["nai"]) == (
        HOA,
        600,
        None,
    )
    assert rep.fields["decision"] == "reply_accepted" and rep.fields["code"] == 0
    assert set(rep.fields) == {
        "home_address",
        "home_agent",
        "care_of_address",
        "code",
        "lifetime",
        "decision",
    }
