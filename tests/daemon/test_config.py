"""The daemons' configuration files: every example loads; every error names the file and
the key."""

from __future__ import annotations

import tomllib
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.core.actions import Encapsulation
from mip4.core.home_agent import HomeAgent
from mip4.core.mobile_node import ReverseTunnel
from mip4.daemon import run as run_module
from mip4.daemon.config import (
    ConfigError,
    LogFormat,
    MobileNodeFile,
    load_config,
    parse_config,
)
from mip4.io.runtime import NodeIO
from mip4.lab import Lab
from mip4.lab.configs import LAB_KEY, lab_configs
from mip4.security.sa import Algorithm, ReplayMethod

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

HA = '[home_agent]\naddress = "10.1.0.2"\nhome_network = "10.1.0.0/24"\n'
FA = '[foreign_agent]\n[[foreign_agent.links]]\ninterface = "e0"\naddress = "10.2.0.2"\n'
MN = (
    '[mobile_node]\nhome_address = "10.1.0.100"\nhome_agent = "10.1.0.2"\n'
    '[io]\ninterfaces = ["e0"]\n'
)
SA = '[[security_associations]]\npeer = "{peer}"\nspi = 256\nkey = "{key}"\n'


def role_of(path: Path) -> str:
    name = path.stem
    return "fa" if name.startswith("fa") else name


def example_files() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.toml"))


def test_there_are_examples_for_every_role() -> None:
    roles = {role_of(p) for p in example_files()}
    assert roles == {"ha", "fa", "mn"}
    assert len(example_files()) >= 7


@pytest.mark.parametrize("path", example_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_loads(path: Path) -> None:
    cfg = load_config(role_of(path), path)
    assert cfg.role == role_of(path)
    assert cfg.interfaces and all(cfg.interfaces)
    assert cfg.tun_name
    if cfg.role == "mn":
        assert isinstance(cfg.file, MobileNodeFile)
        sa = cfg.mn_association()
        assert sa.spi >= 256 and len(sa.key) == 16
    else:
        assert cfg.forwarding and cfg.link_sources


def test_lab_examples_are_what_labconfig_generates() -> None:
    for node, text in lab_configs(Lab("demo")).items():
        assert (EXAMPLES / "lab" / f"{node}.toml").read_text() == text, node


def test_example_values_reach_the_core_dataclasses() -> None:
    mn = load_config("mn", EXAMPLES / "mn.toml")
    assert isinstance(mn.file, MobileNodeFile)
    m = mn.file.mobile_node
    assert m.reverse_tunnel is ReverseTunnel.PREFER
    assert m.encapsulations == (Encapsulation.IPIP,)
    assert mn.mn_association().key == bytes(range(16))  # ':'-separated hex
    assert mn.io.home_gateway == IPv4Address("10.1.0.1")
    ha = load_config("ha", EXAMPLES / "ha.toml")
    assert ha.tunnel_source == IPv4Address("10.1.0.2")  # default: home_agent.address
    ((peer, sa),) = ha.associations
    assert peer == IPv4Address("10.1.0.100")
    assert (sa.algorithm, sa.replay) == (Algorithm.HMAC_MD5, ReplayMethod.TIMESTAMPS)
    fa = load_config("fa", EXAMPLES / "fa.toml")
    assert fa.daemon.log_format is LogFormat.JSON
    lab_mn = load_config("mn", EXAMPLES / "lab" / "mn.toml")
    assert lab_mn.mn_association().key == LAB_KEY


def test_role_defaults_and_control_socket(tmp_path: Path) -> None:
    cfg = parse_config("fa", tomllib.loads(FA), "fa.toml")
    assert cfg.interfaces == ("e0",) and cfg.tun_name == "mip4-fa"
    assert cfg.control_socket(42) == Path("/run/mip4/fa-42.sock")
    text = MN + '[daemon]\nname = "x"\n' + SA.format(peer="10.1.0.2", key="00ff")
    cfg = parse_config("mn", tomllib.loads(text), "mn.toml")
    assert not cfg.forwarding and not cfg.link_sources
    assert cfg.control_socket(42) == Path("/run/mip4/mn-x.sock")
    text = HA + f'[daemon]\ncontrol_socket = "{tmp_path}/s"\n'
    assert parse_config("ha", tomllib.loads(text), "h").control_socket(1) == tmp_path / "s"


def test_key_file_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "k.hex").write_text("0a 0b 0c\n0d\n")
    path = tmp_path / "mn.toml"
    path.write_text(
        MN + '[[security_associations]]\npeer = "10.1.0.2"\nspi = 300\nkey_file = "k.hex"\n'
    )
    assert load_config("mn", path).mn_association().key == bytes([10, 11, 12, 13])
    (tmp_path / "k.hex").write_text("0a0g")
    with pytest.raises(ConfigError, match=r"mn\.toml: security_associations\[0\]: key_file"):
        load_config("mn", path)


ERRORS = [
    # wrong type
    (
        "ha",
        HA + 'max_lifetime = "x"\n',
        r"^ha\.toml: home_agent\.max_lifetime: expected an integer, got 'x'$",
    ),
    ("ha", HA + "[io]\nforwarding = 1\n", r"^ha\.toml: io\.forwarding: expected true or false"),
    (
        "fa",
        FA.replace('"10.2.0.2"', "7"),
        r"^fa\.toml: foreign_agent\.links\[0\]\.address: expected an address",
    ),
    (
        "mn",
        MN + '[daemon]\nlog_format = "xml"\n',
        r"^mn\.toml: daemon\.log_format: expected one of 'text', 'json', got 'xml'",
    ),
    (
        "mn",
        MN.replace("[io]", 'reverse_tunnel = "maybe"\n[io]'),
        r"^mn\.toml: mobile_node\.reverse_tunnel: expected one of 'off', 'prefer', 'require'",
    ),
    (
        "mn",
        MN.replace("[io]", 'encapsulations = ["gre", "ipx"]\n[io]'),
        r"^mn\.toml: mobile_node\.encapsulations\[1\]: expected one of ipip, gre, minimal",
    ),
    # unknown keys, at every level
    ("ha", HA + "max_lifetme = 3\n", r"^ha\.toml: unknown key home_agent\.max_lifetme \(known:"),
    ("ha", HA + "[iio]\n", r"^ha\.toml: unknown key iio \(known: daemon, home_agent, io,"),
    ("fa", FA + "prefixlen = 24\n", r"^fa\.toml: unknown key foreign_agent\.links\[0\]\.prefixlen"),
    (
        "ha",
        HA + SA.format(peer="10.1.0.100", key="00") + "spy = 1\n",
        r"^ha\.toml: unknown key security_associations\[0\]\.spy",
    ),
    ("mn", MN + 'tun = "x"\n', r"^mn\.toml: unknown key io\.tun "),
    # missing required keys
    (
        "ha",
        HA.replace('address = "10.1.0.2"\n', ""),
        r"^ha\.toml: home_agent\.address: missing \(required\)$",
    ),
    ("ha", "[io]\n", r"^ha\.toml: home_agent: missing \(required\)$"),
    ("fa", "[foreign_agent]\n", r"^fa\.toml: foreign_agent\.links: missing \(required\)$"),
    (
        "mn",
        MN.replace('[io]\ninterfaces = ["e0"]\n', "") + SA.format(peer="10.1.0.2", key="00"),
        r"^mn\.toml: io\.interfaces: missing",
    ),
    ("mn", MN, r"^mn\.toml: security_associations: missing"),
    (
        "ha",
        HA + '[[security_associations]]\nspi = 256\nkey = "00"\n',
        r"^ha\.toml: security_associations\[0\]\.peer: missing \(required\)$",
    ),
    # bad security associations
    (
        "ha",
        HA + SA.format(peer="10.1.0.100", key="00zz"),
        r"^ha\.toml: security_associations\[0\]: key: not hexadecimal \(found 'z'\)$",
    ),
    (
        "ha",
        HA + SA.format(peer="10.1.0.100", key="abc"),
        r"^ha\.toml: security_associations\[0\]: key: odd number of hexadecimal digits",
    ),
    (
        "ha",
        HA + SA.format(peer="10.1.0.100", key=""),
        r"^ha\.toml: security_associations\[0\]: key: empty key",
    ),
    (
        "ha",
        HA + SA.format(peer="10.1.0.100", key="00").replace("256", "255"),
        r"^ha\.toml: security_associations\[0\]: spi: SPI 255 is reserved",
    ),
    (
        "ha",
        HA + SA.format(peer="10.1.0.100", key="00") + 'algorithm = "sha1"\n',
        r"^ha\.toml: security_associations\[0\]\.algorithm: expected one of keyed-md5, hmac-md5",
    ),
    (
        "ha",
        HA + SA.format(peer="10.1.0.100", key="00") + 'key_file = "k"\n',
        r"^ha\.toml: security_associations\[0\]: key, key_file: give exactly one",
    ),
    (
        "ha",
        HA + SA.format(peer="10.1.0.100", key="00") * 2,
        r"^ha\.toml: security_associations\[1\]: peer 10\.1\.0\.100: SPI 256 already",
    ),
    (
        "mn",
        MN + SA.format(peer="10.9.9.9", key="00") + SA.format(peer="10.9.9.8", key="00"),
        r"^mn\.toml: security_associations: none has peer = 10\.1\.0\.2",
    ),
    # the dataclasses' own checks, prefixed with their table
    ("ha", HA + "max_lifetime = 0\n", r"^ha\.toml: home_agent: .*max_lifetime 0 not in"),
    ("mn", MN + 'tun_name = "much-too-long-name"\n', r"^mn\.toml: io: tun_name: "),
    ("fa", "[foreign_agent]\nlinks = []\n", r"^fa\.toml: foreign_agent: .*at least one"),
    # issue 13: flood steering is on or off, nothing else
    ("ha", HA + '[io]\nflood_steering = "yes"\n', r"^ha\.toml: io\.flood_steering: "),
    ("ha", HA + "[io]\nflood_steering = 1\n", r"^ha\.toml: io\.flood_steering: "),
    # issue 13: the fast path's map capacity, 1,024..16,777,216 entries
    ("ha", HA + "[io]\nfast_path_capacity = 1023\n", r"^ha\.toml: io: fast_path_capacity: 1023"),
    ("fa", FA + "[io]\nfast_path_capacity = 16777217\n", r"^fa\.toml: io: fast_path_capacity: "),
    ("ha", HA + '[io]\nfast_path_capacity = "1M"\n', r"^ha\.toml: io\.fast_path_capacity: "),
    # issue 12: the home agent's program forwards what it decapsulates, or not
    ("ha", HA + '[io]\nfast_path_forwarding = "no"\n', r"^ha\.toml: io\.fast_path_forwarding: "),
]


def test_flood_steering_is_on_by_default_and_can_be_turned_off() -> None:
    on = parse_config("ha", tomllib.loads(HA), "ha.toml")
    assert on.io.flood_steering is True
    off = parse_config("ha", tomllib.loads(HA + "[io]\nflood_steering = false\n"), "ha.toml")
    assert off.io.flood_steering is False


def test_fast_path_capacity_is_the_objects_unless_set() -> None:
    default = parse_config("ha", tomllib.loads(HA), "ha.toml")
    assert default.io.fast_path_capacity is None
    text = HA + "[io]\nfast_path_capacity = 1048576\n"
    assert parse_config("ha", tomllib.loads(text), "ha.toml").io.fast_path_capacity == 1 << 20


def test_fast_path_forwarding_is_on_by_default_and_reaches_the_node_io(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``[io] fast_path_forwarding`` (issue 12) is passed to ``NodeIO.open`` as
    ``bpf_forward``: the home agent's fast path marks its reverse-tunnel peers with it."""
    seen: list[object] = []

    def capture(*args: object, **kw: object) -> None:
        seen.append(kw["bpf_forward"])

    monkeypatch.setattr(NodeIO, "open", capture)
    for text, expected in ((HA, True), (HA + "[io]\nfast_path_forwarding = false\n", False)):
        cfg = parse_config("ha", tomllib.loads(text), "ha.toml")
        assert cfg.io.fast_path_forwarding is expected
        run_module.open_io(cfg, HomeAgent.__new__(HomeAgent))  # (only its type is looked at)
    assert seen == [True, False]


@pytest.mark.parametrize(("role", "text", "message"), ERRORS)
def test_errors_name_file_and_key(role: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(role, tomllib.loads(text), f"{role}.toml")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read"):
        load_config("ha", tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[home_agent\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config("ha", bad)


def test_lab_configs_options() -> None:
    texts = lab_configs(Lab("x"), encapsulations=["gre", "ipip"], reverse_tunnel="off", lifetime=60)
    cfg = parse_config("mn", tomllib.loads(texts["mn"]), "mn.toml")
    assert isinstance(cfg.file, MobileNodeFile)
    m = cfg.file.mobile_node
    assert m.encapsulations == (Encapsulation.GRE, Encapsulation.IPIP)
    assert m.reverse_tunnel is ReverseTunnel.OFF and m.lifetime == 60
    for node in ("ha", "fa1", "fa2"):
        parse_config("fa" if node.startswith("fa") else node, tomllib.loads(texts[node]), node)
