"""The foreign agents' usual renewal relayed by the kernel (issue 13), with the real daemons
in the lab: ``mip4 fa`` on the bpf plane (``[io] fast_path_relay``, on by default), ``mip4
ha`` and ``mip4 mn`` asking for a 4 s lifetime (a renewal every 3.2 s).

At A the node's first registration goes through FA1's engine; every renewal after it, and
the home agent's acceptance, is relayed by FA1's program (its ``relay_request`` /
``relay_reply`` events) and given back to the engine (``kernel_relayed_*`` in its status),
whose visitor entry follows the renewals -- it is there, with a lifetime left, long after
the first registration's would have run out -- as the home agent's binding does. A move to
B (a changed request: FA2's engine, then FA2's kernel) and back to A registers each time;
FA1's entry for the node went with its visitor. Throughout, the datagram the home agent
answers and the one the node gets are the ones the kernel relayed: nothing else could
renew them. The control case, ``fast_path_relay = false``, relays every renewal in the
engine and none in the kernel."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

import mip4.lab.configs as lab_configs_module
from mip4.lab.configs import with_lab_dataplane
from mip4.lab.scenario import Scenario, Settings

from .helpers import MN, lab_id

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.usefixtures("needs_bpf")]

LIFETIME = 4


def _on_bpf(monkeypatch: pytest.MonkeyPatch, relay: bool) -> None:
    original: Callable[..., dict[str, str]] = lab_configs_module.lab_configs

    def configs(*args: Any, **kw: Any) -> dict[str, str]:
        texts = original(*args, **kw)
        fas = with_lab_dataplane({n: t for n, t in texts.items() if n in ("fa1", "fa2")}, "bpf")
        if not relay:
            fas = {
                n: t.replace("[io]\n", "[io]\nfast_path_relay = false\n", 1) for n, t in fas.items()
            }
        return texts | fas

    monkeypatch.setattr(lab_configs_module, "lab_configs", configs)


def _status(sc: Scenario, node: str) -> dict[str, Any]:
    st: dict[str, Any] | None = sc.agents.status(node)  # type: ignore[attr-defined]
    assert st is not None, f"{node} does not answer"
    return st


def _counters(sc: Scenario, node: str) -> dict[str, Any]:
    counters: dict[str, Any] = _status(sc, node)["counters"]
    return counters


def _events(sc: Scenario, node: str) -> dict[str, int]:
    st = _status(sc, node)
    assert st["dataplane"] == "bpf", st.get("dataplane")
    events: dict[str, int] = st["fast_path"]["events"]
    return events


def _visitor(sc: Scenario, node: str) -> dict[str, Any] | None:
    for v in _status(sc, node)["foreign_agent"]["visitors"]:
        if v["home_address"] == MN:
            return dict(v)
    return None


def test_renewals_are_relayed_by_the_kernel(
    lab_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_bpf(monkeypatch, relay=True)
    settings = Settings(lab_id(lab_prefix), reverse_tunnel=True, lifetime=LIFETIME)
    with Scenario(settings) as sc:
        rec = sc.move("a")
        assert rec.registered, rec.note
        registered_at = time.monotonic()
        sc.wait(
            lambda: _counters(sc, "fa1")["kernel_relayed_replies"] >= 4,
            8 * LIFETIME,
            "FA1's kernel to relay four renewals",
        )
        c = _counters(sc, "fa1")
        events = _events(sc, "fa1")
        # every renewal since the first registration: the kernel's, given back to the engine
        assert c["kernel_relayed_requests"] >= c["kernel_relayed_replies"] >= 4, c
        assert events.get("relay_request", 0) >= c["kernel_relayed_requests"], events
        assert events.get("relay_reply", 0) >= c["kernel_relayed_replies"], events
        assert c["kernel_relayed_general"] == 0 and c["kernel_relayed_superseded"] == 0, c
        assert events.get("relay_ring_full", 0) == 0, events
        # the engine relayed the first registration itself (its general path), no renewal:
        # every other request it counts relayed is one the kernel relayed; and with the
        # renewals applied, the visitor never expired and no request timed out (78)
        assert c["fast_relayed_requests"] == 0, c
        assert c["events"]["relayed_requests"] == c["kernel_relayed_requests"] + 1, c
        assert c["events"]["relayed_replies"] == c["kernel_relayed_replies"] + 1, c
        assert c["events"].get("visitor_expired", 0) == 0, c
        assert not c["denied"], c
        # the visitor entry followed the renewals: the first registration's 4 s are long gone
        assert time.monotonic() - registered_at > 2 * LIFETIME
        v = _visitor(sc, "fa1")
        assert v is not None and v["remaining"] > 0, v
        assert sc.mn_status().registered
        assert [b.care_of_address for b in sc.ha_status().bindings] == [rec.care_of_address]
        # a changed request (another care-of address) is the engines'; back at A, FA1's
        # kernel relays the renewals again
        at_a = c["kernel_relayed_replies"]
        rec = sc.move("b")
        assert rec.registered, rec.note
        sc.wait(lambda: _visitor(sc, "fa1") is None, 2 * LIFETIME + 5, "FA1's visitor to go")
        sc.wait(
            lambda: _counters(sc, "fa2")["kernel_relayed_replies"] >= 1,
            4 * LIFETIME,
            "FA2's kernel to relay a renewal",
        )
        rec = sc.move("a")
        assert rec.registered, rec.note
        sc.wait(
            lambda: _counters(sc, "fa1")["kernel_relayed_replies"] >= at_a + 2,
            6 * LIFETIME,
            "FA1's kernel to relay renewals again",
        )
        assert sc.mn_status().registered
        for fa in ("fa1", "fa2"):
            c = _counters(sc, fa)
            assert c["kernel_relayed_general"] == 0, (fa, c)


def test_without_the_kernel_relay_the_engine_relays_every_renewal(
    lab_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_bpf(monkeypatch, relay=False)
    settings = Settings(lab_id(lab_prefix), reverse_tunnel=True, lifetime=LIFETIME)
    with Scenario(settings) as sc:
        rec = sc.move("a")
        assert rec.registered, rec.note
        sc.wait(
            lambda: _counters(sc, "fa1")["fast_relayed_replies"] >= 4,
            8 * LIFETIME,
            "FA1 to relay four renewals",
        )
        c = _counters(sc, "fa1")
        assert c["kernel_relayed_requests"] == c["kernel_relayed_replies"] == 0, c
        assert _events(sc, "fa1").get("relay_request", 0) == 0
        assert sc.mn_status().registered
