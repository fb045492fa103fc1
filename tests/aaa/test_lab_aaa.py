"""The lab's AAA pieces without a lab (issue 10 item 4, issue 11): the daemon files ``mip4 lab
configs --aaa`` writes load, and say what the AAA lab means -- two home agents, revocation
with FA-HA associations between every foreign and every home agent, a node with only its NAI
and its MN-AAA secret; the FreeRADIUS configuration of the lab has the demo node as its
subscriber and derives its MN-HA key (RFC 3957)."""

from __future__ import annotations

import json
import tomllib
from ipaddress import IPv4Address
from pathlib import Path

from mip4.aaa.freeradius import users_file
from mip4.daemon.config import load_config
from mip4.lab.build import Lab
from mip4.lab.configs import (
    FA_HA_KEY,
    FA_HA_SPI,
    LAB_KEY,
    LAB_MN_FA_SPI,
    LAB_ROLES,
    LAB_SPI,
    radius_address,
    write_lab_configs,
)
from mip4.lab.radius import LAB_MN_AAA_SECRET, LAB_NAI, LAB_RADIUS_SECRET, lab_freeradius_config
from mip4.lab.topology import AAA, DEFAULT


def test_aaa_files_load_and_hand_the_decisions_to_radius(tmp_path: Path) -> None:
    lab = Lab("t1", AAA, run_dir=tmp_path / "run")
    paths = write_lab_configs(lab, tmp_path / "cfg", aaa=True)
    assert set(paths) == {"ha", "ha2", "fa1", "fa2", "mn"}
    cfgs = {node: load_config(LAB_ROLES[node], path) for node, path in paths.items()}
    server = radius_address(lab)
    for node in ("ha", "ha2", "fa1", "fa2"):
        aaa = cfgs[node].aaa
        assert aaa is not None, node
        (s,) = aaa.servers
        assert (s.address, s.port, s.accounting_port) == (server, 1812, 1813)
        assert s.secret == LAB_RADIUS_SECRET.encode()
    fas, has = [lab.address("fa1"), lab.address("fa2")], [lab.address("ha"), lab.address("ha2")]
    for node, address in zip(("ha", "ha2"), has, strict=True):
        ha = cfgs[node]
        # the home agents learn the node's key from AAA: their only associations are
        # FA-HA ones with the foreign agents (RFC 3543 revocations)
        assert [peer for peer, _ in ha.associations] == fas, node
        assert all((sa.spi, sa.key) == (FA_HA_SPI, FA_HA_KEY) for _, sa in ha.associations)
        ha_cfg = ha.file.home_agent  # type: ignore[union-attr]
        assert ha_cfg.aaa and ha_cfg.revocation and ha_cfg.address == address
        assert ha_cfg.home_network == lab.topology.network("home").subnet
    for node in ("fa1", "fa2"):
        fa = cfgs[node].file.foreign_agent  # type: ignore[union-attr]
        assert fa.aaa and fa.challenge_length == 16 and fa.accounting and fa.revocation
        assert [peer for peer, _ in cfgs[node].associations] == has, node
        assert all((sa.spi, sa.key) == (FA_HA_SPI, FA_HA_KEY) for _, sa in cfgs[node].associations)
    # the node: its NAI and its MN-AAA secret; no home address, no MN-HA key (RFC 3957)
    mn = cfgs["mn"]
    mn_cfg = mn.file.mobile_node  # type: ignore[union-attr]
    assert mn_cfg.home_address == IPv4Address(0) and mn_cfg.nai == LAB_NAI
    # issue 11: no home agent address either (RFC 4433: Home Agent 0.0.0.0, AAA picks
    # one); only the home network, to know its home link before AAA has given anything
    assert mn_cfg.home_agent == IPv4Address(0) and mn_cfg.requested_home_agent is None
    assert mn_cfg.home_subnet == lab.topology.network("home").subnet
    mn_text = paths["mn"].read_text()
    assert "home_address" not in mn_text
    assert str(lab.address("ha")) not in mn_text and str(lab.address("ha2")) not in mn_text
    assert mn_cfg.mn_aaa_secret == LAB_MN_AAA_SECRET.encode()
    assert mn.associations == ()
    assert LAB_KEY.hex() not in paths["mn"].read_text()
    # without --aaa: the files of the other tests, unchanged
    plain = write_lab_configs(lab, tmp_path / "plain")
    assert "aaa" not in tomllib.loads(plain["ha"].read_text())
    assert not (tmp_path / "plain" / "radius.secret").exists()


def test_lab_radius_serves_the_demo_node_and_derives_its_key(tmp_path: Path) -> None:
    lab = Lab("t1", AAA, run_dir=tmp_path / "run")
    cfg = lab_freeradius_config(lab, tmp_path / "radius")
    (sub,) = cfg.subscribers
    assert (sub.nai, sub.secret) == (LAB_NAI, LAB_MN_AAA_SECRET.encode())
    assert (sub.home_address, sub.home_agent) == (lab.address("mn"), lab.address("ha"))
    # RFC 3957: no static key; the server derives one at each Access-Accept
    assert (sub.mn_ha_spi, sub.mn_ha_key, sub.derive_mn_ha_key) == (LAB_SPI, None, True)
    assert sub.mn_fa_spi == LAB_MN_FA_SPI  # and an MN-FA key for each foreign agent
    users = users_file(cfg)
    assert "Mip4-MN-HA-Shared-Key" not in users and LAB_KEY.hex() not in users
    assert f"3GPP2-MN-HA-SPI = {LAB_SPI}" in users
    assert cfg.address == radius_address(lab) and cfg.directory == str(tmp_path / "radius")
    assert all(c.secret == LAB_RADIUS_SECRET for c in cfg.clients)


def test_the_aaa_lab_has_two_home_agents_and_its_state_file_says_so(tmp_path: Path) -> None:
    """Issue 11: ``mip4 lab up --aaa`` builds the AAA topology (ha2 on the home network);
    ``Lab.load`` -- what ``mip4 lab status/exec/down`` use -- finds it again from the state
    file, and a lab without the key in its file is the default one."""
    lab = Lab("t2", AAA, run_dir=tmp_path / "run")
    assert lab.topology.home_agents() == ["ha", "ha2"]
    assert lab.address("ha2") == IPv4Address("10.1.0.3")
    assert lab.ifname("ha2") == lab.ifname("ha") == f"{lab.prefix}-home"
    assert len(lab.port("ha2", "home")) <= 15  # IFNAMSIZ, with the longest lab id
    assert len(Lab("abcde", AAA).port("ha2", "home")) <= 15
    lab.state_dir.mkdir(parents=True)
    lab._write_state("up")
    loaded = Lab.load("t2", tmp_path / "run")
    assert loaded.topology is AAA and loaded.namespaces() == lab.namespaces()
    assert lab.ns("ha2") in loaded.namespaces()
    plain = Lab("t3", run_dir=tmp_path / "run")
    plain.state_dir.mkdir(parents=True)
    plain._write_state("up")
    state = json.loads(plain.state_file.read_text())
    del state["topology"]  # a state file written before issue 11
    plain.state_file.write_text(json.dumps(state))
    assert Lab.load("t3", tmp_path / "run").topology is DEFAULT
    assert DEFAULT.home_agents() == ["ha"]
