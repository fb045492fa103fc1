"""Status snapshots of real engines (the in-memory triangle) and their rendering."""

from __future__ import annotations

import json
from collections import Counter
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from mip4.daemon.status import (
    LIMIT,
    counters,
    read_tun_stats,
    render_text,
    snapshot,
    steering,
)

from ..core.netsim import Packet, World


def snap(
    engine: object, role: str, now: float, limit: int | None = LIMIT, **kw: object
) -> dict[str, Any]:
    return snapshot(
        role=role,
        name="x",
        config=f"{role}.toml",
        started=now - 5,
        now=now,
        interfaces=["e0"],
        tun="t0",
        engine=engine,  # type: ignore[arg-type]
        counter_sets=counters(engine, **kw),  # type: ignore[arg-type]
        limit=limit,
    )


def registered_world() -> World:
    w = World()
    w.move("A")
    w.advance(3)
    assert w.mn.registered
    return w


def test_home_agent_status_shows_the_binding() -> None:
    w = registered_world()
    s = snap(w.ha, "ha", w.now, driver=Counter(events=3), forwarder={"encapsulated": 7})
    json.dumps(s)  # plain JSON
    ha = s["home_agent"]
    assert isinstance(ha, dict)
    (b,) = ha["bindings"]
    coa = str(w.mn.care_of_address)
    assert b["home_address"] == str(w.mn.config.home_address) and b["care_of_address"] == coa
    assert 0 < b["remaining"] <= b["lifetime"]
    assert b["encapsulation"] == "ipip" and isinstance(b["flags"], list)
    c = s["counters"]
    assert isinstance(c, dict)
    assert c["accepted"] == {"0 accepted": 1}
    assert c["driver"] == {"events": 3} and c["forwarder"] == {"encapsulated": 7}
    text = render_text(s)
    assert "bindings (1):" in text and coa in text and "encapsulated=7" in text


def test_foreign_agent_status_shows_the_visitor() -> None:
    w = registered_world()
    s = snap(w.fa1, "fa", w.now)
    fa = s["foreign_agent"]
    assert isinstance(fa, dict)
    (v,) = fa["visitors"]
    assert v["home_address"] == str(w.mn.config.home_address)
    assert v["care_of_address"] == str(w.mn.care_of_address)
    assert fa["pending"] == []
    assert "visitors (1):" in render_text(s)


def test_foreign_agent_pending_request() -> None:
    w = World()
    w.net.drop_if(lambda p: p.sender == "ha")  # the home agent's reply never arrives
    w.move("A")
    s = snap(w.fa1, "fa", w.now)
    fa = s["foreign_agent"]
    assert isinstance(fa, dict)
    (p,) = fa["pending"]
    assert p["home_address"] == str(w.mn.config.home_address) and p["expires_in"] > 0
    assert "pending (1):" in render_text(s)


def test_mobile_node_status_and_reply_counts() -> None:
    w = registered_world()
    s = snap(w.mn, "mn", w.now, mn_replies={0: 2, 133: 1})
    mn = s["mobile_node"]
    assert isinstance(mn, dict)
    assert mn["state"] == "registered" and mn["registered"] is True
    assert mn["care_of_address"] == mn["agent"] == str(w.mn.care_of_address)
    assert mn["attachment"]["kind"] == "foreign agent"
    assert mn["binding"]["remaining"] > 0
    assert mn["last_reply"] == {"code": 0, "reaction": "registered"}
    c = s["counters"]
    assert isinstance(c, dict)
    assert c["accepted"] == {"0 accepted": 2}
    assert list(c["denied"]) == ["133 ha_identification_mismatch"]
    assert c["events"]["requests"] >= 1
    text = render_text(s)
    assert "state:            registered" in text and "133 ha_identification_mismatch" in text


def test_tun_stats(tmp_path: Path) -> None:
    d = tmp_path / "t0" / "statistics"
    d.mkdir(parents=True)
    for k, v in {"rx_packets": 1, "rx_bytes": 84, "tx_packets": 2, "tx_bytes": 168}.items():
        (d / k).write_text(f"{v}\n")
    assert read_tun_stats("t0", tmp_path) == {
        "rx_packets": 1,
        "rx_bytes": 84,
        "tx_packets": 2,
        "tx_bytes": 168,
    }
    assert read_tun_stats("nope", tmp_path) == {}


def test_mobile_node_last_registration() -> None:
    """The last accepted (de)registration: care-of address, retransmissions it took, and
    the round trip from its last transmission (immediate delivery here: 0 ms)."""
    from mip4.wire.messages import RegistrationRequest

    w = World()
    dropped: list[object] = []

    def first_request(p: Packet) -> bool:
        if not dropped and p.sender == "mn" and isinstance(p.message, RegistrationRequest):
            dropped.append(p)
            return True
        return False

    w.net.drop_if(first_request)
    w.move("A")
    w.advance(5)
    assert w.mn.registered and len(dropped) == 1
    mn = snap(w.mn, "mn", w.now)["mobile_node"]
    assert isinstance(mn, dict)
    reg = mn["last_registration"]
    assert reg["care_of_address"] == str(w.mn.care_of_address)
    assert reg["deregistration"] is False and reg["retransmissions"] == 1
    assert reg["rtt_ms"] == 0.0 and reg["age"] > 0
    assert "1 retransmission(s)" in render_text(snap(w.mn, "mn", w.now))
    w.move("home")
    mn = snap(w.mn, "mn", w.now)["mobile_node"]
    assert isinstance(mn, dict)
    reg = mn["last_registration"]
    assert reg["deregistration"] is True and reg["retransmissions"] == 0
    assert reg["care_of_address"] == str(w.mn.config.home_address)


def test_home_agent_status_counts_the_renewals_its_fast_path_answered() -> None:
    w = registered_world()
    assert counters(w.ha)["fast_renewals"] == 0  # the first registration is not a renewal
    w.advance(w.mn.config.lifetime * 2)  # the node renews (at most every lifetime)
    assert w.mn.registered
    s = snap(w.ha, "ha", w.now)
    c = s["counters"]
    assert isinstance(c, dict)
    assert c["fast_renewals"] == w.ha.fast_renewals >= 1, c
    assert "fast_renewals" not in counters(w.fa1)
    assert f"fast renewals: {w.ha.fast_renewals}" in render_text(s)


def test_home_agent_status_counts_the_first_registrations_its_fast_path_answered() -> None:
    w = registered_world()
    s = snap(w.ha, "ha", w.now)
    c = s["counters"]
    assert isinstance(c, dict)
    assert c["fast_first_registrations"] == w.ha.fast_first_registrations >= 1, c
    assert "fast_first_registrations" not in counters(w.fa1)
    assert f"fast first registrations: {w.ha.fast_first_registrations}" in render_text(s)


def test_foreign_agent_status_counts_what_its_relay_fast_path_relayed() -> None:
    w = registered_world()
    w.advance(w.mn.config.lifetime * 2)  # the node renews through FA1 (at most every lifetime)
    assert w.mn.registered
    s = snap(w.fa1, "fa", w.now)
    c = s["counters"]
    assert isinstance(c, dict)
    assert c["fast_relayed_requests"] == w.fa1.fast_requests >= 1, c
    assert c["fast_relayed_replies"] == w.fa1.fast_replies >= 1, c
    assert "fast_relayed_requests" not in counters(w.ha)
    assert (
        f"fast relayed: {w.fa1.fast_requests} requests, {w.fa1.fast_replies} replies"
        in render_text(s)
    )


def test_home_agent_status_says_whether_flood_steering_is_on() -> None:
    # issue 13: on, with the trusted sources and the datagrams read from each socket
    w = registered_world()
    s = snap(w.ha, "ha", w.now)
    s["steering"] = steering(
        {
            "on": True,
            "trusted_sources": 2,
            "map_size": 65536,
            "trusted_drops": 0,
            "general_drops": 9,
        },
        None,
        Counter(read_trusted=40, read_general=7, events=47),
    )
    json.dumps(s)
    assert s["steering"] == {
        "on": True,
        "trusted_sources": 2,
        "map_size": 65536,
        "trusted_drops": 0,
        "general_drops": 9,
        "read_trusted": 40,
        "read_general": 7,
    }
    text = render_text(s)
    assert (
        "flood steering: on, 2 trusted sources (map 65536); read trusted 40, general 7;"
        " dropped trusted 0, general 9"
    ) in text
    # off, and why
    s["steering"] = steering(None, "libbpf.so.1 not found", None)
    assert s["steering"] == {"on": False, "why": "libbpf.so.1 not found"}
    assert "flood steering: off (libbpf.so.1 not found)" in render_text(s)


def test_a_status_lists_at_most_its_limit_of_bindings_and_counts_them_all() -> None:
    """Issue 13: a home agent with a million bindings must not build a million rows on its
    event loop for a status: at most ``limit`` are listed (sorted among themselves), and
    ``bindings_total`` counts them all; ``None`` lists every one."""
    from mip4.security.sa import SecurityAssociations

    from ..core import test_home_agent as hat

    nodes = [IPv4Address(f"10.0.0.{20 + i}") for i in range(7)]
    store = SecurityAssociations()
    for home in nodes:
        store.add(home, hat.MN_SA)
    ha = hat.make_ha(store)
    for home in reversed(nodes):
        ha.handle(hat.udp(hat.request(hoa=home)), 0.0)
    some = snap(ha, "ha", 1.0, limit=3)
    listed = some["home_agent"]["bindings"]
    assert some["home_agent"]["bindings_total"] == 7 and len(listed) == 3
    homes = [b["home_address"] for b in listed]
    assert homes == sorted(homes, key=IPv4Address) and set(homes) <= {str(n) for n in nodes}
    assert "bindings (3 of 7):" in render_text(some)
    every = snap(ha, "ha", 1.0, limit=None)
    assert [b["home_address"] for b in every["home_agent"]["bindings"]] == [str(n) for n in nodes]
    assert "bindings (7):" in render_text(every)


def test_the_status_requests_limit() -> None:
    import pytest

    from mip4.daemon.control import CommandRefused, status_limit
    from mip4.daemon.status import LIMIT

    assert status_limit({"command": "status"}) == LIMIT == 1000
    assert status_limit({"command": "status", "limit": "50"}) == 50
    assert status_limit({"command": "status", "limit": "0"}) is None  # every entry
    for bad in ("x", "-1", "1.5"):
        with pytest.raises(CommandRefused, match="limit"):
            status_limit({"command": "status", "limit": bad})
