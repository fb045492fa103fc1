"""The lab's AAA pieces without a lab (issue 10 item 4): the daemon files ``mip4 lab configs
--aaa`` writes load, and say what the AAA lab means; the FreeRADIUS configuration of the lab
has the demo node as its subscriber with the key the node's file holds."""

from __future__ import annotations

import tomllib
from ipaddress import IPv4Address
from pathlib import Path

from mip4.aaa.freeradius import users_file
from mip4.daemon.config import load_config
from mip4.lab.build import Lab
from mip4.lab.configs import LAB_KEY, LAB_ROLES, LAB_SPI, radius_address, write_lab_configs
from mip4.lab.radius import LAB_MN_AAA_SECRET, LAB_NAI, LAB_RADIUS_SECRET, lab_freeradius_config


def test_aaa_files_load_and_hand_the_decisions_to_radius(tmp_path: Path) -> None:
    lab = Lab("t1", run_dir=tmp_path / "run")
    paths = write_lab_configs(lab, tmp_path / "cfg", aaa=True)
    cfgs = {node: load_config(LAB_ROLES[node], path) for node, path in paths.items()}
    server = radius_address(lab)
    for node in ("ha", "fa1", "fa2"):
        aaa = cfgs[node].aaa
        assert aaa is not None, node
        (s,) = aaa.servers
        assert (s.address, s.port, s.accounting_port) == (server, 1812, 1813)
        assert s.secret == LAB_RADIUS_SECRET.encode()
    ha = cfgs["ha"]
    assert ha.associations == ()  # the home agent learns the node's key from AAA
    assert ha.file.home_agent.aaa  # type: ignore[union-attr]
    for node in ("fa1", "fa2"):
        fa = cfgs[node].file.foreign_agent  # type: ignore[union-attr]
        assert fa.aaa and fa.challenge_length == 16 and fa.accounting
    mn = cfgs["mn"]
    mn_cfg = mn.file.mobile_node  # type: ignore[union-attr]
    assert mn_cfg.home_address == IPv4Address(0) and mn_cfg.nai == LAB_NAI
    assert mn_cfg.mn_aaa_secret == LAB_MN_AAA_SECRET.encode()
    assert mn.mn_association().key == LAB_KEY and mn.mn_association().spi == LAB_SPI
    # without --aaa: the files of the other tests, unchanged
    plain = write_lab_configs(lab, tmp_path / "plain")
    assert "aaa" not in tomllib.loads(plain["ha"].read_text())
    assert not (tmp_path / "plain" / "radius.secret").exists()


def test_lab_radius_serves_the_demo_node_with_the_nodes_key(tmp_path: Path) -> None:
    lab = Lab("t1", run_dir=tmp_path / "run")
    cfg = lab_freeradius_config(lab, tmp_path / "radius")
    (sub,) = cfg.subscribers
    assert (sub.nai, sub.secret) == (LAB_NAI, LAB_MN_AAA_SECRET.encode())
    assert (sub.home_address, sub.home_agent) == (lab.address("mn"), lab.address("ha"))
    assert (sub.mn_ha_spi, sub.mn_ha_key) == (LAB_SPI, LAB_KEY)
    users = users_file(cfg)
    assert f"Mip4-MN-HA-Shared-Key = 0x{LAB_KEY.hex()}" in users
    assert cfg.address == radius_address(lab) and cfg.directory == str(tmp_path / "radius")
    assert all(c.secret == LAB_RADIUS_SECRET for c in cfg.clients)
