"""Issue 15: what a reload (SIGHUP) changes in place and what it refuses, on real engines
(the lab test in test_lab_daemons.py sends the signal to real daemons)."""

from __future__ import annotations

import copy
from ipaddress import IPv4Address
from typing import Any

import pytest

from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent
from mip4.core.mobile_node import MobileNode
from mip4.daemon.config import DaemonConfig, parse_config
from mip4.daemon.reload import reload
from mip4.daemon.run import build_engine

KEY1, KEY2 = "11" * 16, "22" * 16
MN, HA, FA = IPv4Address("10.0.0.5"), IPv4Address("10.0.0.1"), IPv4Address("10.9.0.1")


def ha_data(**ha: Any) -> dict[str, Any]:
    return {
        "home_agent": {
            "address": str(HA),
            "home_network": "10.0.0.0/24",
            "interface": "eth0",
            **ha,
        },
        "security_associations": [{"peer": str(MN), "spi": 256, "key": KEY1}],
    }


def cfg(role: str, data: dict[str, Any]) -> DaemonConfig:
    return parse_config(role, data, f"{role}.toml")


def test_ha_rekey_and_new_peer_take_effect_in_the_running_store() -> None:
    running = cfg("ha", ha_data())
    engine = build_engine(running)
    assert isinstance(engine, HomeAgent)
    store = engine.security_associations
    data = ha_data()
    data["security_associations"] = [
        {"peer": str(MN), "spi": 256, "key": KEY2},
        {"peer": str(FA), "spi": 300, "key": KEY1},
    ]
    r = reload(running, engine, cfg("ha", data))
    assert r.applied == ("security_associations",) and r.refused == ()
    assert engine.security_associations is store  # the engine's own store, changed in place
    sa = store.get(MN, 256)
    assert sa is not None and sa.key == bytes.fromhex(KEY2)
    assert store.get(FA, 300) is not None
    # and removed again
    r2 = reload(r.config, engine, cfg("ha", ha_data()))
    assert r2.applied == ("security_associations",)
    assert store.get(FA, 300) is None
    sa = store.get(MN, 256)
    assert sa is not None and sa.key == bytes.fromhex(KEY1)
    assert reload(r2.config, engine, cfg("ha", ha_data())).applied == ()


def test_ha_limits_and_pool_change_restart_keys_are_refused() -> None:
    running = cfg("ha", ha_data())
    engine = build_engine(running)
    assert isinstance(engine, HomeAgent)
    data = ha_data(
        max_bindings=7,
        home_addresses=["10.0.0.5"],
        address_pool=["10.0.0.50", "10.0.0.51"],
        address="10.0.0.2",
    )
    data["io"] = {"tun_mtu": 1400}
    data["metrics"] = {"listen": "127.0.0.1:9434"}
    r = reload(running, engine, cfg("ha", data))
    assert set(r.applied) == {
        "home_agent.max_bindings",
        "home_agent.home_addresses",
        "home_agent.address_pool",
    }
    assert set(r.refused) == {"home_agent.address", "io.tun_mtu", "metrics.listen"}
    assert engine.config.max_bindings == 7
    assert engine.config.home_addresses == frozenset({MN})
    assert engine.config.address_pool == {IPv4Address("10.0.0.50"), IPv4Address("10.0.0.51")}
    assert engine.config.address == HA  # refused: the running value stays
    assert r.config.io.tun_mtu == running.io.tun_mtu
    assert r.config.file.metrics.listen is None
    assert r.config.file.home_agent.max_bindings == 7  # type: ignore[union-attr]
    # the same file again: the refused keys are still refused, nothing else changes
    again = reload(r.config, engine, cfg("ha", copy.deepcopy(data)))
    assert again.applied == () and set(again.refused) == set(r.refused)


def test_inconsistent_merge_changes_nothing() -> None:
    running = cfg("ha", ha_data(reverse_tunnel=False))
    engine = build_engine(running)
    before = engine.config
    # reverse_tunnel_required (in place) needs reverse_tunnel (refused: advertised)
    data = ha_data(reverse_tunnel=True, reverse_tunnel_required=True)
    data["security_associations"] = [{"peer": str(MN), "spi": 256, "key": KEY2}]
    with pytest.raises(ValueError):
        reload(running, engine, cfg("ha", data))
    assert engine.config is before
    assert isinstance(engine, HomeAgent)
    sa = engine.security_associations.get(MN, 256)
    assert sa is not None and sa.key == bytes.fromhex(KEY1)


def mn_data(key: str, **mn: Any) -> dict[str, Any]:
    return {
        "mobile_node": {"home_address": str(MN), "home_agent": str(HA), "lifetime": 300, **mn},
        "io": {"interfaces": ["eth0"]},
        "security_associations": [{"peer": str(HA), "spi": 256, "key": key}],
    }


def test_mn_rekey_replaces_its_association_other_keys_need_a_restart() -> None:
    # (issue 15 moved mobile_node.lifetime to the keys that change in place: the key that
    # needs a restart here is now the home prefix, which its attachment part holds)
    running = cfg("mn", mn_data(KEY1))
    engine = build_engine(running)
    assert isinstance(engine, MobileNode)
    r = reload(running, engine, cfg("mn", mn_data(KEY2, home_prefix_len=16)))
    assert r.applied == ("security_associations",)
    assert r.refused == ("mobile_node.home_prefix_len",)
    assert engine.client.sa.key == bytes.fromhex(KEY2)
    assert engine.config.home_prefix_len == 24


def test_mn_lifetime_and_timers_change_in_place_the_rest_is_refused() -> None:
    running = cfg("mn", mn_data(KEY1))
    engine = build_engine(running)
    assert isinstance(engine, MobileNode)
    new = mn_data(
        KEY1,
        lifetime=600,
        retransmit_initial=2.0,
        renew_fraction=0.5,
        on_revocation="stop",
        home_agent="10.0.0.2",
    )
    r = reload(running, engine, cfg("mn", new))
    assert set(r.applied) == {
        "mobile_node.lifetime",
        "mobile_node.retransmit_initial",
        "mobile_node.renew_fraction",
        "mobile_node.on_revocation",
    }
    assert r.refused == ("mobile_node.home_agent",)
    # every part of the node reads the new values; the refused one keeps running
    for part in (engine, engine.client, engine.where):
        assert part.config.lifetime == 600 and part.config.retransmit_initial == 2.0
        assert part.config.home_agent == HA
    assert r.config.file.mobile_node.lifetime == 600  # type: ignore[union-attr]
    again = reload(r.config, engine, cfg("mn", new))
    assert again.applied == () and again.refused == ("mobile_node.home_agent",)


def test_log_level_changes_in_place_other_daemon_keys_are_refused() -> None:
    import logging

    root = logging.getLogger("mip4")
    level = root.level
    running = cfg("ha", ha_data())
    engine = build_engine(running)
    data = ha_data()
    data["daemon"] = {"log_level": "debug", "log_format": "json"}
    try:
        r = reload(running, engine, cfg("ha", data))
        assert r.applied == ("daemon.log_level",) and r.refused == ("daemon.log_format",)
        assert root.level == logging.DEBUG
        assert r.config.daemon.log_level.value == "debug"
        assert r.config.daemon.log_format == running.daemon.log_format
    finally:
        root.setLevel(level)


def test_fa_limits_are_refused_associations_change() -> None:
    def data(max_visitors: int, sas: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "foreign_agent": {
                "max_visitors": max_visitors,
                "links": [{"interface": "eth1", "address": str(FA)}],
            },
            "security_associations": sas,
        }

    running = cfg("fa", data(10, []))
    engine = build_engine(running)
    assert isinstance(engine, ForeignAgent)
    r = reload(running, engine, cfg("fa", data(5, [{"peer": str(HA), "spi": 999, "key": KEY1}])))
    assert r.refused == ("foreign_agent.max_visitors",)
    assert r.applied == ("security_associations",)
    assert engine.config.max_visitors == 10
    assert engine.security_associations.get(HA, 999) is not None


@pytest.mark.parametrize("role", ["fa", "ha"])
def test_the_agents_routine_records_follow_the_log_level_and_the_metrics(role: str) -> None:
    """The agents build their routine DEBUG records (the FA's relays, the HA's unchanged
    renewal's ``ha.registration``) only when they are read: the logger at DEBUG (after a
    reload too) or a metrics endpoint, which times relays and registrations by them."""
    import logging

    from mip4.daemon.reload import routine_log_level

    def data(level: str, metrics: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = (
            {"foreign_agent": {"links": [{"interface": "eth1", "address": str(FA)}]}}
            if role == "fa"
            else ha_data()
        )
        d["daemon"] = {"log_level": level}
        if metrics:
            d["metrics"] = {"listen": "127.0.0.1:9434"}
        return d

    root = logging.getLogger("mip4")
    level = root.level
    try:
        root.setLevel(logging.INFO)
        running = cfg(role, data("info"))
        engine = build_engine(running)
        assert isinstance(engine, ForeignAgent if role == "fa" else HomeAgent)
        assert engine.log_level == logging.DEBUG  # the engine's default: every record
        routine_log_level(engine, running)
        assert engine.log_level == logging.INFO
        r = reload(running, engine, cfg(role, data("debug")))
        assert r.applied == ("daemon.log_level",)
        assert engine.log_level == logging.DEBUG
        reload(r.config, engine, cfg(role, data("info")))
        assert engine.log_level == logging.INFO
        routine_log_level(engine, cfg(role, data("info", metrics=True)))
        assert engine.log_level == logging.DEBUG
    finally:
        root.setLevel(level)
