"""Issue 13: :meth:`HomeAgent.handle` runs its body outside the shared error boundary and
hands an exception to it only when one happens (the input's fields for the log line are
built then, not per request). Whatever the body raises -- a discard, a protocol error,
any other exception, a denial, a denial whose reply fails -- the actions and counters are
the ones :func:`mip4.core.engine.error_boundary` gives for the same body."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from mip4.core.actions import Action, Log, SendUdp
from mip4.core.counters import Counters
from mip4.core.engine import error_boundary
from mip4.core.home_agent import HomeAgent, _who
from mip4.core.registration import Discard, Pipeline, ProtocolError, RegistrationDenied
from mip4.wire.codes import ReplyCode

from . import test_home_agent as hat


def _with_check(ha: HomeAgent, check: Callable[[object], None]) -> HomeAgent:
    ha.pipeline = Pipeline((*ha.pipeline.checks, check))
    return ha


def _raising(exc: Exception) -> Callable[[object], None]:
    def check(_ctx: object) -> None:
        raise exc

    return check


@pytest.mark.parametrize(
    "exc",
    [Discard("some_reason", "detail"), ProtocolError("no transition"), ValueError("boom")],
    ids=["discard", "protocol", "internal"],
)
def test_the_same_actions_and_counters_as_the_boundary(exc: Exception) -> None:
    ha = _with_check(hat.make_ha(), _raising(exc))
    event = hat.udp(hat.request(lifetime=600), sport=4321)
    got = ha.handle(event, 0.0)
    counters = Counters()

    def body(_out: list[Action]) -> None:
        raise exc

    want = error_boundary("ha", counters, body, who=_who(event))
    assert got == want and len(got) == 1
    assert isinstance(got[0], Log) and got[0].fields["sport"] == 4321
    assert ha.counters.discarded == counters.discarded
    assert ha.bindings.bindings_of(hat.HOA) == ()


def test_a_discard_before_the_pipeline_carries_the_input() -> None:
    ha = hat.make_ha()
    event = hat.udp(b"\x01garbage", sport=999)
    (log,) = ha.handle(event, 0.0)
    assert isinstance(log, Log) and log.event == "ha.discard"
    assert {k: log.fields[k] for k in ("source", "sport", "interface")} == _who(event)
    assert ha.counters.discarded["decode_error"] == 1


def test_a_denial_is_answered_as_before() -> None:
    denial = RegistrationDenied(ReplyCode.HA_ADMIN_PROHIBITED, "test")
    ha = _with_check(hat.make_ha(), _raising(denial))
    actions = ha.handle(hat.udp(hat.request(lifetime=600)), 0.0)
    assert hat.reply_of(actions).code == ReplyCode.HA_ADMIN_PROHIBITED
    (log,) = hat.of(actions, Log)
    assert log.fields["decision"] == "denied" and log.fields["reason"] == "test"
    assert ha.counters.denied[ReplyCode.HA_ADMIN_PROHIBITED] == 1


def test_a_denial_whose_reply_fails_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    denial = RegistrationDenied(ReplyCode.HA_ADMIN_PROHIBITED, "test")
    ha = _with_check(hat.make_ha(), _raising(denial))

    def broken(*_args: object, **_kw: object) -> SendUdp:
        raise RuntimeError("no reply")

    monkeypatch.setattr(ha, "_reply", broken)
    event = hat.udp(hat.request(lifetime=600))
    (log,) = ha.handle(event, 0.0)
    assert isinstance(log, Log) and log.event == "ha.internal_error"
    assert log.fields == {"detail": repr(RuntimeError("no reply")), **_who(event)}
    assert ha.counters.discarded["internal_error"] == 1


def test_an_accepted_request_takes_no_boundary_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual path builds no log fields for the boundary: ``_who`` is not called."""
    import mip4.core.home_agent as module

    calls: list[object] = []

    def who(event: object) -> dict[str, object]:
        calls.append(event)
        return {}

    monkeypatch.setattr(module, "_who", who)
    ha = hat.make_ha()
    actions = ha.handle(hat.udp(hat.request(lifetime=600)), 0.0)
    assert hat.reply_of(actions).code == ReplyCode.ACCEPTED and calls == []
    assert dataclasses.is_dataclass(actions[0])
