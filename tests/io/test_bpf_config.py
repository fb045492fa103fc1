"""``[io] dataplane`` (issue 12): its values, its default, and what ``mip4 status`` shows of
the plane that runs (no kernel needed)."""

from __future__ import annotations

import logging
import tomllib

import pytest

from mip4.core.registration import ConfigError
from mip4.daemon.config import parse_config
from mip4.daemon.status import render_text

HA = '[home_agent]\naddress = "10.1.0.2"\nhome_network = "10.1.0.0/24"\n'
SA = '[[security_associations]]\npeer = "10.1.0.100"\nspi = 256\nkey = "00112233"\n'


def config(io: str) -> str:
    return HA + io + SA


def test_the_default_is_auto() -> None:
    # issue 12: "bpf when the kernel supports it, else user space"
    assert parse_config("ha", tomllib.loads(config("")), "ha.toml").io.dataplane == "auto"


def test_auto_falls_back_to_user_space_once_logged_and_probes_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mip4.io.bpf import agent

    probes: list[int] = []

    def failing() -> str:
        probes.append(1)
        return "kernel 5.4 < 5.10"

    monkeypatch.setattr(agent, "bpf_plane_unavailable", failing)
    monkeypatch.setattr(agent, "_probed", [])
    monkeypatch.setattr(agent, "_fallbacks_logged", set())
    caplog.set_level(logging.INFO, logger="mip4")
    # several nodes opened in one process (the lab, a test): one probe, one log line
    assert [agent.resolve_dataplane("auto") for _ in range(3)] == ["userspace"] * 3
    assert len(probes) == 1
    said = [r.getMessage() for r in caplog.records if "bpf plane is unavailable" in r.message]
    assert said == [
        "dataplane = auto: the bpf plane is unavailable (kernel 5.4 < 5.10): user-space plane"
    ]
    assert caplog.records[-1].levelno == logging.WARNING
    # forced bpf still refuses, with the same (cached) reason; userspace never probes
    with pytest.raises(RuntimeError, match=r"kernel 5\.4 < 5\.10"):
        agent.resolve_dataplane("bpf")
    assert agent.resolve_dataplane("userspace") == "userspace"
    assert len(probes) == 1


def test_auto_takes_bpf_where_the_probe_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from mip4.io.bpf import agent

    monkeypatch.setattr(agent, "bpf_plane_unavailable", lambda: None)
    monkeypatch.setattr(agent, "_probed", [])
    assert agent.resolve_dataplane("auto") == "bpf"


@pytest.mark.parametrize("value", ["auto", "bpf", "userspace"])
def test_each_plane_can_be_chosen(value: str) -> None:
    text = config(f'[io]\ndataplane = "{value}"\n')
    assert parse_config("ha", tomllib.loads(text), "ha.toml").io.dataplane == value


def test_an_unknown_plane_is_an_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"ha\.toml: .*dataplane: 'xdp'"):
        parse_config("ha", tomllib.loads(config('[io]\ndataplane = "xdp"\n')), "ha.toml")


def status(**extra: object) -> dict[str, object]:
    return {
        "role": "ha",
        "name": "x",
        "pid": 1,
        "version": "0",
        "uptime": 1.0,
        "config": "ha.toml",
        "interfaces": ["e0"],
        "tun": "t0",
        "counters": {},
        **extra,
    }


def test_status_names_the_plane_and_the_fast_path_counters() -> None:
    text = render_text(status(dataplane="userspace"))
    assert "data plane: userspace" in text and "fast path" not in text
    fast = {"bindings": {"10.1.0.100": {"packets": 12, "bytes": 3456}}, "events": {"encap": 12}}
    text = render_text(status(dataplane="bpf", fast_path=fast))
    assert "data plane: bpf" in text
    assert "fast path (1):" in text
    row = next(line for line in text.splitlines() if "10.1.0.100" in line).split()
    assert row == ["10.1.0.100", "12", "3456"]
    assert "fast path events: encap=12" in text
    assert "maps full" not in text  # nothing refused: no line
    fast["map_full"] = {"mip4_bindings": 3}
    fast["capacity"] = 1048576
    text = render_text(status(dataplane="bpf", fast_path=fast))
    assert "fast path (1, capacity 1048576 per map):" in text
    fast["pinned"] = None  # no bpffs: the operator is told a crash stops the fast path
    assert "fast path (1, capacity 1048576 per map, maps not pinned):" in render_text(
        status(dataplane="bpf", fast_path=fast)
    )
    fast["pinned"] = "/sys/fs/bpf/mip4/t0"
    assert "capacity 1048576 per map, maps pinned at /sys/fs/bpf/mip4/t0):" in render_text(
        status(dataplane="bpf", fast_path=fast)
    )
    del fast["pinned"]
    assert "fast path maps full (refused, left to the user-space plane): mip4_bindings=3" in text
    # a status from before issue 12 (no such keys) still renders
    assert "data plane" not in render_text(status())


# ---- MIP4_LAB_DATAPLANE: the lab suite with one plane forced for every role -------------


@pytest.mark.parametrize("value", ["bpf", "userspace", "auto"])
def test_the_lab_switch_sets_the_plane_of_every_lab_daemon(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from mip4.lab.build import Lab
    from mip4.lab.configs import LAB_ROLES, lab_configs

    monkeypatch.setenv("MIP4_LAB_DATAPLANE", value)
    for aaa in (False, True):
        texts = lab_configs(Lab("q7"), aaa=aaa)
        assert {"ha", "fa1", "fa2", "mn"} <= set(texts) <= set(LAB_ROLES)
        for node, text in texts.items():
            if aaa:  # (the AAA files name a secret file beside them: the table is enough)
                assert tomllib.loads(text)["io"]["dataplane"] == value, node
                continue
            cfg = parse_config(LAB_ROLES[node], tomllib.loads(text), f"{node}.toml")
            assert cfg.io.dataplane == value, node
    monkeypatch.delenv("MIP4_LAB_DATAPLANE")
    assert all("dataplane" not in t for t in lab_configs(Lab("q7")).values())


def test_the_lab_switch_replaces_a_plane_already_set_and_rejects_unknown_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mip4.lab.build import Lab, LabError
    from mip4.lab.configs import lab_configs, with_lab_dataplane

    monkeypatch.setenv("MIP4_LAB_DATAPLANE", "bpf")
    texts = with_lab_dataplane(lab_configs(Lab("q7")), "userspace")
    for text in texts.values():
        assert text.count("dataplane = ") == 1 and 'dataplane = "userspace"' in text
    monkeypatch.setenv("MIP4_LAB_DATAPLANE", "xdp")
    with pytest.raises(LabError, match="MIP4_LAB_DATAPLANE='xdp'"):
        lab_configs(Lab("q7"))
