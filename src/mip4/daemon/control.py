"""The control socket: an AF_UNIX stream socket, one JSON request per line, one JSON
response per line, then the daemon closes the connection.

::

    -> {"command": "status"}                       (at most 1,000 entries per list)
    <- {"ok": true, "status": {...}}
    -> {"command": "status", "limit": "0"}         (every entry; "50": at most 50)
    -> {"command": "ping"}
    <- {"ok": true, "pong": 1234}
    -> {"command": "nonsense"}
    <- {"ok": false, "error": "unknown command 'nonsense' (known: ping, status)"}
    -> {"command": "revoke", "node": "alice@example.net"}          (home agent)
    <- {"ok": true, "revoked": "10.0.0.5", "revocations_sent": 1}
    -> {"command": "redirect", "node": "10.0.0.5", "to": "10.0.0.2"} (home agent)
    -> {"command": "revoke", "node": "10.0.0.5"}                   (foreign agent)
    -> {"command": "advertisement", "interface": "eth1"}           (foreign agent)
    <- {"ok": true, "interface": "eth1", "src": "10.2.0.1", "advertisement": "<hex>"}
    -> {"command": "handoff", "node": "10.0.0.5", "to": "10.3.0.1"} (foreign agent)
    -> {"command": "anticipate", "interface": "eth0", "advertisement": "<hex>",
        "src": "10.3.0.1", "link_src": "02:..."}                    (mobile node)

:class:`ControlServer` runs on the daemon's asyncio loop and answers from a table of
handlers (``command -> () -> dict``) and of operator commands that take the request's
arguments (``command -> (request) -> dict``; :func:`operator_commands`: RFC 3543
revocation, RFC 4433 redirection), so nothing but the loop's thread ever reads or changes
engine state. A command refused (no such binding, a bad address) answers ``ok: false`` with
one line saying why. :func:`request` is the blocking client used by ``mip4 status`` and
``mip4 ha|fa revoke``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import stat
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mip4.core.actions import Log
from mip4.core.events import HandoffTrigger, MoveAnticipated
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent
from mip4.core.mobile_node import MobileNode

from .logs import log
from .status import LIMIT as STATUS_LIMIT

if TYPE_CHECKING:
    from mip4.io.driver import EngineDriver

#: Longest request line accepted.
MAX_REQUEST = 4096

Handler = Callable[[], dict[str, Any]]
#: An operator command: the request object in, the answer's fields out.
Command = Callable[[Mapping[str, Any]], dict[str, Any]]


class CommandRefused(ValueError):
    """An operator command that cannot be carried out (its message is the answer)."""


class ControlError(RuntimeError):
    """The control socket cannot be used (in use by a live daemon, not a socket...)."""


def socket_alive(path: Path, timeout: float = 1.0) -> bool:
    """Whether a process accepts connections on the Unix socket at ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError:
        return False
    else:
        return True
    finally:
        s.close()


def claim_path(path: Path) -> None:
    """Make ``path`` free for a new socket: create its directory, remove a stale socket
    left by a crashed daemon; refuse when a live daemon answers there or when the path is
    something other than a socket."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(f"{path} exists and is not a socket")
    if socket_alive(path):
        raise ControlError(f"{path}: another daemon is running and answers there")
    path.unlink()
    log.info(
        "removed stale control socket",
        extra={"event": "daemon.stale_socket", "fields": {"path": str(path)}},
    )


class ControlServer:
    """Serves ``handlers`` on ``path`` (an AF_UNIX socket) on the running loop."""

    def __init__(
        self,
        path: Path,
        handlers: Mapping[str, Handler],
        commands: Mapping[str, Command] | None = None,
    ) -> None:
        self.path = path
        self.handlers = dict(handlers)
        self.commands = dict(commands or {})
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        claim_path(self.path)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_REQUEST * 2
        )
        self._inode = self.path.stat().st_ino
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o660)

    def answer(self, line: bytes) -> dict[str, Any]:
        """The response to one request line."""
        try:
            req = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return {"ok": False, "error": f"not JSON: {e}"}
        if not isinstance(req, dict) or not isinstance(req.get("command"), str):
            return {"ok": False, "error": 'expected {"command": "..."}'}
        name = req["command"]
        handler = self.handlers.get(name)
        command = self.commands.get(name)
        if handler is None and command is None:
            known = ", ".join(sorted([*self.handlers, *self.commands]))
            return {"ok": False, "error": f"unknown command {name!r} (known: {known})"}
        try:
            if command is not None:
                return {"ok": True, **command(req)}
            assert handler is not None
            return {"ok": True, **handler()}
        except CommandRefused as e:
            return {"ok": False, "error": str(e)}
        except Exception as e:  # a broken handler must not take the daemon down
            log.exception("control command %s failed", name)
            return {"ok": False, "error": f"{name} failed: {e!r}"}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            if len(line) > MAX_REQUEST:
                reply: dict[str, Any] = {"ok": False, "error": "request too long"}
            else:
                reply = self.answer(line.strip())
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        # remove the path only if it is still ours (not a successor's)
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.stat().st_ino == self._inode:
                self.path.unlink()


def request(
    path: Path | str, command: str, timeout: float = 5.0, **arguments: str
) -> dict[str, Any]:
    """Send ``{"command": command, **arguments}`` to the daemon at ``path`` and return its
    answer. ``OSError`` when nobody answers; ``ValueError`` for an answer that is not
    JSON."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
        s.sendall(json.dumps({"command": command, **arguments}).encode() + b"\n")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                break
    finally:
        s.close()
    data = b"".join(chunks)
    if not data:
        raise OSError(errno.ECONNRESET, f"{path}: no answer")
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ValueError(f"{path}: answer is not a JSON object")
    return answer


# ----------------------------------------------------------------------------------------
# Operator commands (RFC 3543 revocation, RFC 4433 redirection)
# ----------------------------------------------------------------------------------------


def status_limit(req: Mapping[str, Any]) -> int | None:
    """The ``status`` request's ``limit``: the most entries of each list (default
    :data:`mip4.daemon.status.LIMIT`); ``"0"``: all of them (``None``)."""
    raw = req.get("limit")
    if raw is None:
        return STATUS_LIMIT
    try:
        limit = int(str(raw))
    except ValueError:
        raise CommandRefused(f"limit: {raw!r} is not a number of entries") from None
    if limit < 0:
        raise CommandRefused(f"limit: {limit} is negative (0: every entry)")
    return None if limit == 0 else limit


def _text(req: Mapping[str, Any], key: str) -> str:
    value = req.get(key)
    if not isinstance(value, str) or not value:
        raise CommandRefused(f"{req.get('command')}: {key!r} missing (a string)")
    return value


def _address(text: str, what: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise CommandRefused(f"{what} {text!r} is not an IPv4 address") from None


def _node(text: str) -> IPv4Address | str:
    """A home address, or else an NAI."""
    try:
        return IPv4Address(text)
    except ValueError:
        return text


def operator_commands(engine: object, driver: EngineDriver) -> dict[str, Command]:
    """The operator commands ``engine`` offers, run on the daemon's loop: the engine's
    actions go to ``driver`` (executed at once, timer re-armed for retransmissions)."""

    def run(actions: list[Any]) -> int:
        driver.run_actions(actions)
        driver.start()  # re-arm: revocations are retransmitted until acknowledged
        return sum(1 for a in actions if isinstance(a, Log) and a.event.endswith("revocation_sent"))

    if isinstance(engine, HomeAgent):
        ha = engine

        def ha_revoke(req: Mapping[str, Any]) -> dict[str, Any]:
            node = _node(_text(req, "node"))
            hoa = ha.home_address_of(node)
            if hoa is None:
                raise CommandRefused(f"revoke: no binding for {node}")
            sent = run(ha.revoke(node, driver.clock()))
            return {"revoked": str(hoa), "revocations_sent": sent}

        def ha_redirect(req: Mapping[str, Any]) -> dict[str, Any]:
            node = _node(_text(req, "node"))
            to = _address(_text(req, "to"), "redirect: --to")
            if to.is_unspecified or to.is_multicast or to == IPv4Address("255.255.255.255"):
                raise CommandRefused(f"redirect: --to {to} is not a home agent's address")
            hoa = ha.home_address_of(node)
            sent = run(ha.redirect(node, to, driver.clock()))
            return {
                "redirected": str(node),
                "to": str(to),
                "revoked": str(hoa) if hoa is not None else None,
                "revocations_sent": sent,
            }

        return {"revoke": ha_revoke, "redirect": ha_redirect}
    if isinstance(engine, ForeignAgent):
        fa = engine

        def fa_revoke(req: Mapping[str, Any]) -> dict[str, Any]:
            hoa = _address(_text(req, "node"), "revoke: home address")
            if fa.visitors.get(hoa) is None:
                raise CommandRefused(f"revoke: no visitor {hoa}")
            sent = run(fa.revoke(hoa, driver.clock()))
            return {"revoked": str(hoa), "revocations_sent": sent}

        return {"revoke": fa_revoke}
    return {}


# -- handovers (issue 14): anticipation and link-layer triggers injected from outside ------


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text.replace(":", ""))
    except ValueError:
        raise CommandRefused(f"{what}: not hexadecimal") from None


def handover_commands(engine: object, driver: EngineDriver) -> dict[str, Command]:
    """What a wireless driver's scan report or link-layer trigger would tell the daemon
    (RFC 4881 §1.3 L2 triggers), for the lab and for operators: ``anticipate`` (mobile
    node: :class:`~mip4.core.events.MoveAnticipated`), ``advertisement`` (foreign agent:
    the advertisement it would send now on a link, to hand to ``anticipate``) and
    ``handoff`` (foreign agent: :class:`~mip4.core.events.HandoffTrigger`). Offered only
    by an engine built with handover settings (``[handover]`` / ``[handoff]``)."""
    if isinstance(engine, MobileNode) and engine.handover is not None:

        def mn_anticipate(req: Mapping[str, Any]) -> dict[str, Any]:
            event = MoveAnticipated(
                interface=_text(req, "interface"),
                advertisement=_hex(_text(req, "advertisement"), "anticipate: advertisement"),
                src=_address(_text(req, "src"), "anticipate: src"),
                link_src=_hex(req["link_src"], "anticipate: link_src")
                if isinstance(req.get("link_src"), str)
                else None,
            )
            actions = driver.feed(event)
            return {"anticipated": str(event.src), "actions": len(actions)}

        return {"anticipate": mn_anticipate}
    if isinstance(engine, ForeignAgent) and engine.handoff is not None:
        fa = engine

        def fa_advertisement(req: Mapping[str, Any]) -> dict[str, Any]:
            name = req.get("interface")
            links = [lk for lk in fa.config.links if name is None or lk.interface == name]
            if not links:
                raise CommandRefused(f"advertisement: no link {name}")
            link = links[0]
            return {
                "interface": link.interface,
                "src": str(link.address),
                "advertisement": fa.advertisement(link).encode().hex(),
            }

        def fa_handoff(req: Mapping[str, Any]) -> dict[str, Any]:
            hoa = _address(_text(req, "node"), "handoff: home address")
            to = _address(_text(req, "to"), "handoff: --to")
            actions = driver.feed(HandoffTrigger(hoa, to))
            return {"node": str(hoa), "to": str(to), "actions": len(actions)}

        return {"advertisement": fa_advertisement, "handoff": fa_handoff}
    return {}
