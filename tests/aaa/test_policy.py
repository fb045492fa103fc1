"""The retransmission/failover machine on a virtual clock (no sockets)."""

from __future__ import annotations

import pytest

from mip4.aaa.policy import Answer, Exchange, GiveUp, Policy, ServerCounters, Transmit


def test_retransmit_then_next_server_then_give_up() -> None:
    counters: dict[str, ServerCounters] = {}
    ex = Exchange(["a", "b"], Policy(timeout=2.0, retries=2), counters)
    assert ex.start(0.0) == Transmit(0, fresh=True)
    assert ex.next_deadline() == 2.0
    assert ex.handle_timer(1.9) is None  # not yet
    assert ex.handle_timer(2.0) == Transmit(0, fresh=False)
    assert ex.handle_timer(4.0) == Transmit(0, fresh=False)
    assert ex.handle_timer(6.0) == Transmit(1, fresh=True)  # a: 3 transmissions, silent
    assert ex.handle_timer(8.0) == Transmit(1, fresh=False)
    assert ex.handle_timer(10.0) == Transmit(1, fresh=False)
    assert ex.handle_timer(12.0) == GiveUp()
    assert ex.done and ex.next_deadline() is None
    assert ex.handle_timer(14.0) is None
    for name in ("a", "b"):
        c = counters[name]
        assert (c.requests, c.retransmissions, c.timeouts, c.accepts) == (1, 2, 3, 0)


def test_answer_ends_and_measures_rtt_from_the_last_transmission() -> None:
    counters: dict[str, ServerCounters] = {}
    ex = Exchange(["a", "b"], Policy(timeout=1.0, retries=1), counters)
    ex.start(10.0)
    ex.handle_timer(11.0)  # retransmit to a at 11.0
    assert ex.handle_answer(0, Answer.REJECT, 11.25)
    assert ex.done and ex.answered_by == 0
    assert counters["a"].rejects == 1 and counters["a"].rtt_last == pytest.approx(0.25)
    assert counters["a"].timeouts == 1 and counters["b"].requests == 0
    assert not ex.handle_answer(0, Answer.ACCEPT, 11.5)  # a duplicate: ignored, not counted
    assert counters["a"].accepts == 0


def test_late_answer_from_the_previous_server_is_taken() -> None:
    counters: dict[str, ServerCounters] = {}
    ex = Exchange(["a", "b"], Policy(timeout=1.0, retries=0), counters)
    ex.start(0.0)
    assert ex.handle_timer(1.0) == Transmit(1, fresh=True)
    assert ex.handle_answer(0, Answer.ACCEPT, 1.5)
    assert counters["a"].accepts == 1 and counters["a"].timeouts == 1
    assert counters["a"].rtt_last == pytest.approx(1.5)


def test_answer_from_a_server_never_asked_is_ignored() -> None:
    ex = Exchange(["a", "b"], Policy(), {})
    ex.start(0.0)
    assert not ex.handle_answer(1, Answer.ACCEPT, 0.1)
    assert not ex.done


def test_bounds_are_validated() -> None:
    with pytest.raises(ValueError):
        Policy(timeout=0)
    with pytest.raises(ValueError):
        Policy(retries=-1)
    with pytest.raises(ValueError):
        Exchange([], Policy(), {})
    ex = Exchange(["a"], Policy(), {})
    ex.start(0.0)
    with pytest.raises(RuntimeError):
        ex.start(0.0)


def test_counters_as_dict_has_no_secret_and_a_mean() -> None:
    c = ServerCounters(rtt_total=3.0, rtt_count=2)
    assert c.as_dict()["rtt_mean"] == 1.5
    assert ServerCounters().as_dict()["rtt_mean"] is None
