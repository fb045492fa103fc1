"""The control socket: JSON request/response round trips on a Unix socket in a tmp dir,
stale sockets, and ``mip4 status`` against it."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mip4.cli import main as mip4_main
from mip4.daemon.cli import find_socket
from mip4.daemon.control import ControlError, ControlServer, claim_path, request, socket_alive
from mip4.daemon.status import counters, snapshot

from ..core.netsim import World


def serve_and(
    path: Path, handlers: dict[str, Callable[[], dict[str, Any]]], client: Callable[[], Any]
) -> Any:
    """Run a ControlServer on ``path`` while ``client`` runs on a thread; its result."""

    async def main() -> Any:
        server = ControlServer(path, handlers)
        await server.start()
        try:
            return await asyncio.wait_for(asyncio.to_thread(client), 20)
        finally:
            await server.close()

    return asyncio.run(main())


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run" / "ha-x.sock"  # the directory is created
    calls = []

    def status() -> dict[str, Any]:
        calls.append(1)
        return {"status": {"role": "ha", "n": len(calls)}}

    def client() -> list[dict[str, Any]]:
        return [
            request(path, "status"),
            request(path, "status"),
            request(path, "nonsense"),
            request(path, "boom"),
        ]

    def boom() -> dict[str, Any]:
        raise RuntimeError("broken")

    answers = serve_and(path, {"status": status, "boom": boom}, client)
    assert answers[0] == {"ok": True, "status": {"role": "ha", "n": 1}}
    assert answers[1]["status"]["n"] == 2
    assert answers[2] == {
        "ok": False,
        "error": "unknown command 'nonsense' (known: boom, status)",
    }
    assert answers[3]["ok"] is False and "broken" in answers[3]["error"]
    assert not path.exists()  # removed on close


def raw(path: Path, data: bytes) -> dict[str, Any]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(str(path))
        s.sendall(data)
        answer: dict[str, Any] = json.loads(s.makefile("rb").readline())
        return answer
    finally:
        s.close()


def test_malformed_requests(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"

    def client() -> list[dict[str, Any]]:
        return [raw(path, b"not json\n"), raw(path, b"[1, 2]\n"), raw(path, b'{"cmd": 1}\n')]

    a, b, c = serve_and(path, {"ping": lambda: {"pong": 1}}, client)
    assert a["ok"] is False and a["error"].startswith("not JSON")
    assert b["ok"] is False and c["ok"] is False and "command" in c["error"]


def test_stale_socket_is_replaced_and_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "fa-1.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # a crashed daemon's socket: bound, nobody listening
    dead.close()
    assert path.exists() and not socket_alive(path)
    claim_path(path)
    assert not path.exists()

    def client() -> None:
        assert socket_alive(path)
        with pytest.raises(ControlError, match="another daemon"):
            claim_path(path)

    serve_and(path, {}, client)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(ControlError, match="not a socket"):
        claim_path(tmp_path / "plain")


def test_find_socket(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="is the daemon running"):
        find_socket(tmp_path, "ha", None)
    (tmp_path / "ha-1.sock").touch()
    assert find_socket(tmp_path, "ha", None) == tmp_path / "ha-1.sock"
    assert find_socket(tmp_path, None, None) == tmp_path / "ha-1.sock"
    (tmp_path / "mn-2.sock").touch()
    assert find_socket(tmp_path, "mn", "2") == tmp_path / "mn-2.sock"
    with pytest.raises(LookupError, match="several"):
        find_socket(tmp_path, None, None)


def test_mip4_status_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = World()
    w.move("A")
    w.advance(3)
    path = tmp_path / "ha-t.sock"

    def status() -> dict[str, Any]:
        s = snapshot(
            role="ha",
            name="t",
            config="ha.toml",
            started=0.0,
            now=w.now,
            interfaces=["ha0"],
            tun="t0",
            engine=w.ha,
            counter_sets=counters(w.ha),
        )
        return {"status": s}

    def client() -> tuple[int, int, int]:
        a = mip4_main(["status", "--socket", str(path), "--json"])
        b = mip4_main(["status", "--role", "ha", "--run-dir", str(tmp_path)])
        c = mip4_main(["status", "--socket", str(tmp_path / "none.sock")])
        return a, b, c

    codes = serve_and(path, {"status": status}, client)
    assert codes == (0, 0, 1)
    out = capsys.readouterr()
    first, _, table = out.out.partition("\n}\n")
    data = json.loads(first + "\n}")
    (b,) = data["home_agent"]["bindings"]
    assert b["care_of_address"] == str(w.mn.care_of_address)
    assert "bindings (1):" in table and str(w.mn.care_of_address) in table
    assert "none.sock: no answer" in out.err
