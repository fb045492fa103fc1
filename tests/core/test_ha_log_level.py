"""Issue 13: the ``ha.registration`` line of a renewal that leaves the binding as it was is
routine (debug); first registrations, changes and denials stay info. The counter
``renewal_unchanged`` keeps the quiet ones visible (``mip4 status`` shows engine events)."""

from __future__ import annotations

from collections.abc import Sequence

from mip4.core.actions import DEBUG, INFO, Action, Log
from mip4.wire.codes import ReplyCode
from mip4.wire.messages import NO_FLAGS

from .test_home_agent import (
    COA,
    COA2,
    FA_SA,
    HOA,
    F,
    make_ha,
    request,
    sas,
    udp,
)


def _line(actions: Sequence[Action]) -> Log:
    (log,) = [a for a in actions if isinstance(a, Log) and a.event == "ha.registration"]
    return log


def test_unchanged_renewal_is_debug_and_counted() -> None:
    ha = make_ha()
    first = _line(ha.handle(udp(request(now=0)), 0.0))
    assert first.level == INFO and first.fields["code"] == 0
    renewal = _line(ha.handle(udp(request(now=100)), 100.0))
    assert renewal.level == DEBUG and renewal.fields["code"] == 0
    again = _line(ha.handle(udp(request(now=200)), 200.0))
    assert again.level == DEBUG
    assert ha.counters.events["renewal_unchanged"] == 2
    assert ha.counters.accepted[ReplyCode.ACCEPTED] == 3


def test_changed_renewals_stay_info() -> None:
    ha = make_ha(max_simultaneous_bindings=2)
    assert _line(ha.handle(udp(request(now=0)), 0.0)).level == INFO
    # another care-of address (the node moved)
    assert _line(ha.handle(udp(request(now=1, coa=COA2)), 1.0)).level == INFO
    # another lifetime
    assert _line(ha.handle(udp(request(now=2, coa=COA2, lifetime=300)), 2.0)).level == INFO
    # other flags (reverse tunnelling asked for)
    assert (
        _line(ha.handle(udp(request(now=3, coa=COA2, lifetime=300, flags=F.T)), 3.0)).level == INFO
    )
    # a second simultaneous binding, then the first one renewed as it was: debug
    assert _line(ha.handle(udp(request(now=4, coa=COA, flags=F.S)), 4.0)).level == INFO
    assert _line(ha.handle(udp(request(now=5, coa=COA, flags=F.S)), 5.0)).level == DEBUG
    # S clear while two are bound: the other one goes, a change
    assert _line(ha.handle(udp(request(now=6, coa=COA, flags=NO_FLAGS)), 6.0)).level == INFO
    assert ha.counters.events["renewal_unchanged"] == 1


def test_deregistration_and_denial_stay_info() -> None:
    ha = make_ha()
    ha.handle(udp(request(now=0)), 0.0)
    denied = _line(ha.handle(udp(request(now=1, mn_sa=FA_SA)), 1.0))  # wrong key: 131
    assert denied.fields["code"] == ReplyCode.HA_MN_FAILED_AUTH
    assert denied.level == INFO
    dereg = _line(ha.handle(udp(request(now=2, lifetime=0)), 2.0))
    assert dereg.level == INFO and dereg.fields["code"] == 0
    assert ha.counters.events["renewal_unchanged"] == 0
    assert _line(ha.handle(udp(request(now=3)), 3.0)).level == INFO  # bound again: a change


def test_other_source_is_a_change() -> None:
    ha = make_ha(sas(fa=True))
    ha.handle(udp(request(now=0)), 0.0)
    moved = _line(ha.handle(udp(request(now=1), src=HOA, interface="home0"), 1.0))
    assert moved.level == INFO


def test_a_raised_log_level_builds_no_routine_line() -> None:
    """``HomeAgent.log_level`` INFO (a daemon that writes no DEBUG line and reads none):
    an unchanged renewal's line is not built, on the fast path and the general one, and
    is still counted; the other actions are the same; lines at INFO still come."""
    for fast in (True, False):
        ha = make_ha()
        ha.renewal_fast_path = fast
        ha.log_level = INFO
        first = ha.handle(udp(request(now=0)), 0.0)
        assert _line(first).level == INFO
        quiet = ha.handle(udp(request(now=100)), 100.0)
        assert not [a for a in quiet if isinstance(a, Log)], fast
        assert [type(a).__name__ for a in quiet] == ["InstallBinding", "SendUdp"]
        assert ha.counters.events["renewal_unchanged"] == 1
        assert ha.counters.accepted[ReplyCode.ACCEPTED] == 2
        assert ha.fast_renewals == (1 if fast else 0)
        moved = ha.handle(udp(request(now=200, coa=COA2)), 200.0)
        assert _line(moved).level == INFO
        ha.log_level = DEBUG  # back: the routine line is built again
        assert _line(ha.handle(udp(request(now=300, coa=COA2)), 300.0)).level == DEBUG
