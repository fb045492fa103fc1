"""``ForeignAgent.next_deadline`` asks the revocations for their next retransmission only
when one is outstanding (issue 13: no ``min()`` over nothing after every read) -- and then
answers it: a revocation lost on the way is the agent's earliest deadline, and is
retransmitted there."""

from __future__ import annotations

import pytest

from mip4.core.revocation import Revocations
from mip4.core.timers import earliest

from .test_revocation import is_revocation, revoke_fa, world


def test_an_outstanding_revocation_is_the_next_deadline() -> None:
    w = world(fa={"revocation_retransmit_initial": 0.3})
    fa = w.fa1
    w.advance(0.05)  # the advertisement due now goes out: the next is ~1 s away
    w.net.drop_if(lambda p: p.sender == "fa1" and is_revocation(p))  # never answered
    assert fa._revocations.next_deadline() is None
    revoke_fa(w)
    retry = fa._revocations.next_deadline()
    assert retry is not None
    others = earliest(
        [fa._advertiser.next_deadline(), fa._pending.next_expiry(), fa._visitors.next_expiry()]
    )
    assert others is None or retry < others  # the revocation's own deadline comes first
    assert fa.next_deadline() == retry
    sent = len([p for p in w.net.packets if p.sender == "fa1" and is_revocation(p)])
    w.advance(retry - w.net.now + 0.001)
    assert fa.counters.events["revocation_retransmissions"] == 1
    assert len([p for p in w.net.packets if p.sender == "fa1" and is_revocation(p)]) == sent + 1


def test_none_outstanding_is_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    w = world()
    asked: list[int] = []
    real = Revocations.next_deadline

    def counting(self: Revocations) -> float | None:
        asked.append(1)
        return real(self)

    monkeypatch.setattr(Revocations, "next_deadline", counting)
    for _ in range(5):
        w.fa1.next_deadline()
    assert asked == []
