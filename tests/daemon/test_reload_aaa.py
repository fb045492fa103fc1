"""SIGHUP and ``[aaa]`` (issue 15): the RADIUS client is built once at start, so a change
of ``[aaa]`` is refused naming the key -- never silently ignored -- and the running
settings stay; the rest of the file still reloads."""

from __future__ import annotations

from typing import Any

import pytest

from mip4.core.home_agent import HomeAgent
from mip4.daemon.config import DaemonConfig, parse_config
from mip4.daemon.reload import aaa_changes, reload
from mip4.daemon.run import build_engine

from .test_reload import FA, HA, KEY2, MN, ha_data


def with_aaa(**aaa: Any) -> dict[str, Any]:
    data = ha_data()
    servers = aaa.pop("servers", [{"address": "127.0.0.1", "secret": "s3cret"}])
    data["aaa"] = {"servers": servers, **aaa}
    return data


def cfg(data: dict[str, Any]) -> DaemonConfig:
    return parse_config("ha", data, "ha.toml")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"timeout": 5.0}, "aaa.timeout"),
        ({"retries": 4}, "aaa.retries"),
        ({"nas_identifier": "ha-2"}, "aaa.nas_identifier"),
        ({"servers": [{"address": "127.0.0.2", "secret": "s3cret"}]}, "aaa.servers"),
        ({"servers": [{"address": "127.0.0.1", "secret": "other"}]}, "aaa.servers"),
        ({"disconnect_port": 3799}, "aaa.disconnect_port"),
    ],
)
def test_an_aaa_change_is_refused_naming_the_key(change: dict[str, Any], key: str) -> None:
    running = cfg(with_aaa())
    engine = build_engine(running)
    r = reload(running, engine, cfg(with_aaa(**change)))
    assert r.refused == (key,) and r.applied == ()
    assert r.config.aaa == running.aaa  # the running settings stay


def test_aaa_added_or_removed_is_refused() -> None:
    plain = cfg(ha_data())
    engine = build_engine(plain)
    added = reload(plain, engine, cfg(with_aaa()))
    assert set(added.refused) == {"aaa.servers", "aaa.timeout", "aaa.retries"}
    assert added.config.aaa is None
    running = cfg(with_aaa())
    removed = reload(running, build_engine(running), cfg(ha_data()))
    assert "aaa.servers" in removed.refused and removed.config.aaa == running.aaa


def test_the_disconnect_address_is_named() -> None:
    a = cfg(with_aaa(disconnect_port=3799)).aaa
    b = cfg(with_aaa(disconnect_port=3799, disconnect_address="127.0.0.1")).aaa
    assert aaa_changes(a, b) == ["aaa.disconnect_address"]
    assert aaa_changes(a, a) == [] and aaa_changes(None, None) == []


def test_an_aaa_change_does_not_stop_a_rekey() -> None:
    running = cfg(with_aaa())
    engine = build_engine(running)
    assert isinstance(engine, HomeAgent)
    new = with_aaa(timeout=9.0)
    new["security_associations"] = [
        {"peer": str(MN), "spi": 256, "key": KEY2},
        {"peer": str(FA), "spi": 300, "key": KEY2},
    ]
    r = reload(running, engine, cfg(new))
    assert r.refused == ("aaa.timeout",) and r.applied == ("security_associations",)
    sa = engine.security_associations.get(MN, 256)
    assert sa is not None and sa.key == bytes.fromhex(KEY2)
    assert engine.config.address == HA
