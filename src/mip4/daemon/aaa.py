"""The ``[aaa]`` table of a daemon's file: the home AAA servers (RADIUS) an agent asks.

Theory of operation
-------------------
An agent that asks a home AAA server (issue 10, RFC 4721 §3.2) gets it from ``[aaa]``:

.. code-block:: toml

    [aaa]
    nas_identifier = "fa1"
    timeout = 2.0
    retries = 2
    accounting = true
    interim_interval = 300

    [[aaa.servers]]
    name = "radius1"
    address = "192.0.2.10"
    secret_file = "radius1.secret"   # or: secret = "..."

    [[aaa.servers]]                  # tried when the first stays silent
    name = "radius2"
    address = "192.0.2.11"
    secret_file = "radius2.secret"

The servers are tried in order (:mod:`mip4.aaa.policy`). What the engine does with them is
switched on in its own table: ``foreign_agent.aaa`` (ask before relaying a request with an
MN-AAA extension) and ``home_agent.aaa`` (ask for a node known only by its NAI). ``[aaa]
accounting`` turns the foreign agent's RADIUS accounting on (``foreign_agent.accounting``
does too) and ``interim_interval`` sets its Interim-Update interval. Either switch without a
server is an error naming the key, as is a secret given twice or not at all, or a secret file
that cannot be read. Secrets are read once at start and live only in
:class:`~mip4.aaa.policy.RadiusServer` objects (``repr=False``): never in a log line or in
``mip4 status``.

A home agent with ``disconnect_port`` listens there (on ``disconnect_address``) for RADIUS
Disconnect-Requests from its servers (RFC 5176; 3799 is the IANA port): each is checked
with the sending server's secret and revokes the bindings of the node it names (User-Name
= NAI, or Framed-IP-Address = home address) as ``mip4 ha revoke`` does (RFC 3543), answered
Disconnect-ACK, or Disconnect-NAK when no binding matches (:func:`open_disconnect`).

For the mobile node the table holds only ``mn_aaa_secret_file`` (the MN-AAA secret read
from a file, instead of ``mobile_node.mn_aaa_secret`` in the file itself).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING

from mip4.aaa.policy import Policy, RadiusServer
from mip4.core.registration import ConfigError, config_from_mapping

from .validate import MAX_KEY_FILE_BYTES, FileRefused, read_regular_file, utf8_text

if TYPE_CHECKING:
    from mip4.aaa.messages import DisconnectRequest
    from mip4.core.home_agent import HomeAgent
    from mip4.io.driver import EngineDriver
    from mip4.io.radius import DisconnectServer

    from .config import ForeignAgentFile, HomeAgentFile, MobileNodeFile

__all__ = [
    "AaaSection",
    "AaaServerSection",
    "AaaSettings",
    "load_aaa_section",
    "prepare_mobile_node",
    "resolve_aaa",
]

_ANY = IPv4Address(0)
#: RFC 2865 §3: the IANA port of RADIUS authentication (accounting: 1813, RFC 2866 §3)
RADIUS_PORT = 1812


@dataclass(frozen=True)
class AaaServerSection:
    """``[[aaa.servers]]``: one RADIUS server, in the order they are tried."""

    #: The server's IPv4 address.
    address: IPv4Address
    #: A name for logs and ``mip4 status`` (default: ``address:port``); unique.
    name: str | None = None
    #: Authentication port (RFC 2865: 1812).
    port: int = RADIUS_PORT
    #: Accounting port; default ``port + 1`` (1813, RFC 2866).
    acct_port: int | None = None
    #: The RADIUS shared secret, as text. Exactly one of ``secret`` and ``secret_file``.
    secret: str | None = None
    #: A file holding the shared secret (one line; relative paths: to the configuration
    #: file). Preferred: the configuration file then holds no secret.
    secret_file: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} not in 1..65535")
        if self.acct_port is not None and not 1 <= self.acct_port <= 65535:
            raise ValueError(f"acct_port: {self.acct_port} not in 1..65535")
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError("secret, secret_file: give exactly one of them")
        if self.secret is not None and not self.secret:
            raise ValueError("secret: must not be empty")
        if self.name is not None and not self.name:
            raise ValueError("name: must not be empty")

    @property
    def label(self) -> str:
        return self.name or f"{self.address}:{self.port}"

    def server(self, base: Path | None) -> RadiusServer:
        """The :class:`RadiusServer` (reads ``secret_file``, relative to ``base``)."""
        if self.secret is not None:
            secret = self.secret.encode()
        else:
            assert self.secret_file is not None
            secret = read_secret_file(self.secret_file, base, "secret_file")
        return RadiusServer(
            self.label, self.address, self.port, secret, acct_port=self.acct_port or 0
        )


def read_secret_file(name: str, base: Path | None, key: str) -> bytes:
    """A secret kept in a file: its first line, without the line end; ``ValueError`` naming
    ``key`` and the path (never the contents) otherwise."""
    path = Path(name)
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        data = read_regular_file(path, MAX_KEY_FILE_BYTES)
    except FileRefused as e:
        raise ValueError(f"{key}: cannot read {path}: {e}") from None
    text = utf8_text(data, f"{key} ({path})")
    lines = text.splitlines()
    secret = lines[0] if lines else ""
    if not secret:
        raise ValueError(f"{key}: {path} holds an empty secret")
    return secret.encode()


@dataclass(frozen=True)
class AaaSection:
    """``[aaa]``: the home AAA servers (RADIUS) this agent asks, and how."""

    #: The RADIUS servers, tried in order (``[[aaa.servers]]`` tables).
    servers: tuple[AaaServerSection, ...] = ()
    #: Seconds to wait for an answer before retransmitting (RFC 5080 §2.2.1).
    timeout: float = 3.0
    #: Retransmissions to one server before the next one is tried.
    retries: int = 2
    #: NAS-Identifier sent in every request (RFC 2865 §5.32); default: none.
    nas_identifier: str | None = None
    #: RADIUS accounting (RFC 2866) of the foreign agent's visitors: Start, Interim-Update,
    #: Stop (same as ``foreign_agent.accounting = true``).
    accounting: bool = False
    #: Seconds between Interim-Update records of a session (same as
    #: ``foreign_agent.accounting_interval``); unset: none.
    interim_interval: float | None = None
    #: Mobile node only: a file holding its MN-AAA secret (one line), instead of
    #: ``mobile_node.mn_aaa_secret``.
    mn_aaa_secret_file: str | None = None
    #: Home agent only: the UDP port to take RADIUS Disconnect-Requests on (RFC 5176;
    #: IANA: 3799); unset: none taken.
    disconnect_port: int | None = None
    #: The address that port is bound to.
    disconnect_address: IPv4Address = _ANY

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout: {self.timeout} must be > 0")
        if self.retries < 0:
            raise ValueError(f"retries: {self.retries} must be >= 0")
        if self.interim_interval is not None and not self.interim_interval > 0:
            raise ValueError(f"interim_interval: {self.interim_interval} must be > 0")
        if self.nas_identifier is not None and not 0 < len(self.nas_identifier.encode()) <= 253:
            raise ValueError("nas_identifier: must be 1..253 bytes")
        if self.disconnect_port is not None and not 1 <= self.disconnect_port <= 65535:
            raise ValueError(f"disconnect_port: {self.disconnect_port} not in 1..65535")
        labels = [s.label for s in self.servers]
        for i, label in enumerate(labels):
            if label in labels[:i]:
                raise ValueError(f"servers[{i}].name: {label!r} is used twice")

    @property
    def policy(self) -> Policy:
        return Policy(timeout=self.timeout, retries=self.retries)


@dataclass(frozen=True)
class AaaSettings:
    """What a daemon needs at run time: the servers with their secrets read, the policy."""

    servers: tuple[RadiusServer, ...]
    policy: Policy
    nas_identifier: str | None = None
    #: where Disconnect-Requests are taken (home agent; ``None``: not taken)
    disconnect: tuple[IPv4Address, int] | None = None

    def __repr__(self) -> str:  # the servers' reprs hold no secret; keep it short anyway
        return f"AaaSettings(servers={[s.name for s in self.servers]}, policy={self.policy})"


@dataclass(frozen=True)
class _AaaTable:
    """Loads ``[aaa]`` alone, so that its errors name ``aaa.<key>``."""

    aaa: AaaSection = dataclasses.field(default_factory=AaaSection)


def load_aaa_section(
    data: Mapping[str, object], source: str
) -> tuple[dict[str, object], AaaSection]:
    """Take the ``[aaa]`` table out of the document and load it (the role's own tables
    are loaded without it: it is common to every role, like a separate file)."""
    out = dict(data)
    table = out.pop("aaa", None)
    if table is None:
        return out, AaaSection()
    return out, config_from_mapping(_AaaTable, {"aaa": table}, source).aaa


def prepare_mobile_node(
    data: Mapping[str, object], source: str
) -> tuple[dict[str, object], str | None]:
    """Before the generic loader (which has no ``bytes`` type): take ``mn_aaa_secret``
    (text) out of the ``[mobile_node]`` table, and let a node with an ``nai`` leave out
    ``home_address`` (RFC 2794: 0.0.0.0, assigned by its home agent). Returns the document
    to load and the secret text (``None``: none given)."""
    out = dict(data)
    table = out.get("mobile_node")
    if not isinstance(table, Mapping):
        return out, None
    mn = dict(table)
    secret = mn.pop("mn_aaa_secret", None)
    if secret is not None and not isinstance(secret, str):
        raise ConfigError(f"{source}: mobile_node.mn_aaa_secret: expected a string")
    if "home_address" not in mn and isinstance(mn.get("nai"), str):
        mn["home_address"] = "0.0.0.0"
    out["mobile_node"] = mn
    return out, secret


def resolve_aaa(
    file: HomeAgentFile | ForeignAgentFile | MobileNodeFile,
    aaa: AaaSection,
    source: str,
    base: Path | None,
    mn_aaa_secret: str | None = None,
) -> tuple[HomeAgentFile | ForeignAgentFile | MobileNodeFile, AaaSettings | None]:
    """Check ``[aaa]`` against the engine's switches and fold it in; read the secrets.
    Returns the file (the engine table updated: ``foreign_agent.accounting`` and its
    interval, ``mobile_node.mn_aaa_secret``) and the run-time settings (``None``: no server).
    Every error is a :class:`ConfigError` naming ``source`` and the key."""
    from .config import ForeignAgentFile, HomeAgentFile, MobileNodeFile

    if isinstance(file, MobileNodeFile):
        if aaa.servers:
            raise ConfigError(f"{source}: aaa.servers: a mobile node asks no AAA server")
        secret: bytes | None = None
        if mn_aaa_secret is not None and aaa.mn_aaa_secret_file is not None:
            raise ConfigError(
                f"{source}: mobile_node.mn_aaa_secret, aaa.mn_aaa_secret_file: give one of them"
            )
        if mn_aaa_secret is not None:
            secret = mn_aaa_secret.encode()
        elif aaa.mn_aaa_secret_file is not None:
            try:
                secret = read_secret_file(aaa.mn_aaa_secret_file, base, "mn_aaa_secret_file")
            except ValueError as e:
                raise ConfigError(f"{source}: aaa.{e}") from None
        if secret is not None:
            try:
                mn = dataclasses.replace(file.mobile_node, mn_aaa_secret=secret)
            except ValueError as e:
                raise ConfigError(f"{source}: mobile_node.mn_aaa_secret: {e}") from None
            file = dataclasses.replace(file, mobile_node=mn)
        return file, None
    if aaa.mn_aaa_secret_file is not None:
        raise ConfigError(f"{source}: aaa.mn_aaa_secret_file: for the mobile node only")
    if aaa.disconnect_port is not None and not isinstance(file, HomeAgentFile):
        raise ConfigError(f"{source}: aaa.disconnect_port: for the home agent only")
    servers: list[RadiusServer] = []
    for i, sec in enumerate(aaa.servers):
        try:
            servers.append(sec.server(base))
        except ValueError as e:
            raise ConfigError(f"{source}: aaa.servers[{i}].{e}") from None
    if isinstance(file, ForeignAgentFile):
        fa = file.foreign_agent
        if aaa.interim_interval is not None and fa.accounting_interval not in (
            None,
            aaa.interim_interval,
        ):
            raise ConfigError(
                f"{source}: aaa.interim_interval, foreign_agent.accounting_interval: "
                "two different values; give one"
            )
        accounting = fa.accounting or aaa.accounting
        interval = aaa.interim_interval or fa.accounting_interval
        for key, wanted in (("foreign_agent.aaa", fa.aaa), ("accounting", accounting)):
            if wanted and not servers:
                raise ConfigError(f"{source}: {key}: needs a RADIUS server in [[aaa.servers]]")
        try:
            fa = dataclasses.replace(fa, accounting=accounting, accounting_interval=interval)
        except ValueError as e:
            raise ConfigError(f"{source}: aaa: {e}") from None
        file = dataclasses.replace(file, foreign_agent=fa)
    elif isinstance(file, HomeAgentFile):
        if aaa.accounting or aaa.interim_interval is not None:
            raise ConfigError(
                f"{source}: aaa.accounting: the foreign agent accounts for visitors; "
                "the home agent does not"
            )
        if getattr(file.home_agent, "aaa", False) and not servers:
            raise ConfigError(f"{source}: home_agent.aaa: needs a RADIUS server in [[aaa.servers]]")
        if aaa.disconnect_port is not None and not servers:
            raise ConfigError(
                f"{source}: aaa.disconnect_port: needs the RADIUS servers that may send "
                "Disconnect-Requests in [[aaa.servers]]"
            )
    if not servers:
        return file, None
    disconnect = None
    if aaa.disconnect_port is not None:
        disconnect = (aaa.disconnect_address, aaa.disconnect_port)
    return file, AaaSettings(tuple(servers), aaa.policy, aaa.nas_identifier, disconnect)


def disconnect_handler(
    engine: HomeAgent, driver: EngineDriver
) -> Callable[[DisconnectRequest], bool]:
    """What a verified Disconnect-Request does (RFC 5176 → RFC 3543): revoke every binding
    of the node it names, as ``mip4 ha revoke`` does; ``False`` when none is held."""

    def disconnect(req: DisconnectRequest) -> bool:
        node = req.node
        if node is None or engine.home_address_of(node) is None:
            return False
        driver.run_actions(engine.revoke(node, driver.clock(), reason="radius_disconnect"))
        driver.start()  # re-arm: revocations are retransmitted until acknowledged
        return True

    return disconnect


async def open_disconnect(
    settings: AaaSettings | None, engine: object, driver: EngineDriver, source: str = "-"
) -> DisconnectServer | None:
    """The Disconnect-Request listener of a home agent with ``aaa.disconnect_port``."""
    from mip4.core.home_agent import HomeAgent
    from mip4.io.radius import DisconnectServer, listen_disconnect

    if settings is None or settings.disconnect is None or not isinstance(engine, HomeAgent):
        return None
    server = DisconnectServer(settings.servers, disconnect_handler(engine, driver))
    address, port = settings.disconnect
    try:
        await listen_disconnect(server, address, port)
    except OSError as e:
        raise ConfigError(
            f"{source}: aaa.disconnect_port: cannot listen on {address}:{port}: {e}"
        ) from None
    return server
