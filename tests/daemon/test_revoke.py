"""Operator commands over the control socket (RFC 3543 revocation, RFC 4433 redirection):
``mip4 ha revoke``, ``mip4 ha redirect --to``, ``mip4 fa revoke`` against a real
:class:`ControlServer` on a Unix socket, whose engines live in the in-memory network."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from mip4.cli import main as mip4_main
from mip4.core.actions import Action
from mip4.core.home_agent import HomeAgentConfig
from mip4.core.mobile_node import MobileNodeConfig
from mip4.daemon.control import ControlServer, operator_commands, request

from ..core.netsim import HA_ADDR, HOME_NET, MN_HOME, World

NAI = "alice@example.net"


class NetsimDriver:
    """What ``operator_commands`` needs of the daemon's driver, over the in-memory network:
    the engine's actions go onto the network, and it runs until quiet."""

    def __init__(self, w: World, name: str) -> None:
        self.w, self.name = w, name
        self.starts = 0

    def clock(self) -> float:
        return self.w.now

    def run_actions(self, actions: Sequence[Action]) -> None:
        self.w.net.emit(self.name, list(actions))

    def start(self) -> None:
        self.starts += 1


def registered_world() -> World:
    w = World(
        ha_config=HomeAgentConfig(
            address=HA_ADDR, home_network=HOME_NET, interface="ha0", revocation=True
        ),
        mn_config=MobileNodeConfig(home_address=MN_HOME, home_agent=HA_ADDR, nai=NAI),
        fa_options={"revocation": True},
        fa_ha_sa=True,
    )
    w.move("A")
    assert w.mn.registered
    return w


def serve(w: World, role: str, path: Path, client: Callable[[], Any]) -> Any:
    node = "ha" if role == "ha" else "fa1"
    driver = NetsimDriver(w, node)

    async def main() -> Any:
        server = ControlServer(
            path,
            {"status": lambda: {}},
            commands=operator_commands(w.net.engine(node), driver),  # type: ignore[arg-type]
        )
        await server.start()
        try:
            return await asyncio.wait_for(asyncio.to_thread(client), 20)
        finally:
            await server.close()

    return asyncio.run(main())


@pytest.mark.parametrize("node", [str(MN_HOME), NAI])
def test_ha_revoke(tmp_path: Path, node: str, capsys: pytest.CaptureFixture[str]) -> None:
    w = registered_world()
    path = tmp_path / "ha-x.sock"
    rc = serve(w, "ha", path, lambda: mip4_main(["ha", "revoke", node, "--socket", str(path)]))
    assert rc == 0
    out = capsys.readouterr().out
    assert out.strip() == f"mip4 ha revoke: revoked {MN_HOME}, revocations_sent 1"
    # the foreign agent was told and acknowledged; the node was informed and re-registered
    assert w.ha.counters.events["revocations_acknowledged"] == 1
    assert w.fa1.counters.events["visitors_revoked"] == 1
    assert w.mn.counters.events["revoked"] == 1


def test_ha_revoke_unknown_node_and_bad_redirect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = registered_world()
    path = tmp_path / "ha-x.sock"

    def client() -> list[int]:
        return [
            mip4_main(["ha", "revoke", "bob@example.net", "--socket", str(path)]),
            mip4_main(["ha", "redirect", NAI, "--to", "nowhere", "--socket", str(path)]),
            mip4_main(["ha", "redirect", NAI, "--to", "0.0.0.0", "--socket", str(path)]),
        ]

    assert serve(w, "ha", path, client) == [1, 1, 1]
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "mip4 ha revoke: revoke: no binding for bob@example.net",
        "mip4 ha redirect: redirect: --to 'nowhere' is not an IPv4 address",
        "mip4 ha redirect: redirect: --to 0.0.0.0 is not a home agent's address",
    ]
    assert len(w.bindings()) == 1 and w.ha.counters.events["bindings_revoked"] == 0


def test_ha_redirect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = registered_world()
    path = tmp_path / "ha-x.sock"
    to = HOME_NET[2]
    rc = serve(
        w,
        "ha",
        path,
        lambda: mip4_main(["ha", "redirect", NAI, "--to", str(to), "--socket", str(path)]),
    )
    assert rc == 0
    assert w.ha.redirects == {NAI: to}
    assert f"redirected {NAI}, to {to}, revoked {MN_HOME}" in capsys.readouterr().out
    # the node was told, asked this home agent again and was sent to the other one
    assert w.mn.counters.events["revoked"] == 1
    assert w.mn.home_agent == to


def test_fa_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = registered_world()
    path = tmp_path / "fa-x.sock"

    def client() -> list[int]:
        return [
            mip4_main(["fa", "revoke", "10.0.0.99", "--socket", str(path)]),
            mip4_main(["fa", "revoke", "alice", "--socket", str(path)]),
            mip4_main(["fa", "revoke", str(MN_HOME), "--socket", str(path)]),
        ]

    assert serve(w, "fa", path, client) == [1, 1, 0]
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "mip4 fa revoke: revoke: no visitor 10.0.0.99",
        "mip4 fa revoke: revoke: home address 'alice' is not an IPv4 address",
    ]
    assert captured.out.strip() == f"mip4 fa revoke: revoked {MN_HOME}, revocations_sent 1"
    # the home agent removed the binding and acknowledged
    assert w.ha.counters.events["revocations_received"] == 1
    assert w.fa1.counters.events["revocations_acknowledged"] == 1


def test_commands_are_listed_and_arguments_checked(tmp_path: Path) -> None:
    w = registered_world()
    path = tmp_path / "ha-x.sock"

    def client() -> list[dict[str, Any]]:
        return [request(path, "nonsense"), request(path, "revoke")]

    unknown, missing = serve(w, "ha", path, client)
    assert unknown["error"] == "unknown command 'nonsense' (known: redirect, revoke, status)"
    assert missing == {"ok": False, "error": "revoke: 'node' missing (a string)"}


def test_no_commands_for_a_mobile_node() -> None:
    w = registered_world()
    assert operator_commands(w.mn, NetsimDriver(w, "mn")) == {}  # type: ignore[arg-type]


def test_role_without_config_or_command_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert mip4_main(["ha"]) == 2
    assert capsys.readouterr().err.strip() == (
        "mip4 ha: the following arguments are required: --config (or a command: revoke, redirect)"
    )
    assert mip4_main(["mn"]) == 2
