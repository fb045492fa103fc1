"""Reloading a running daemon's configuration (SIGHUP, issue 15).

Theory of operation
-------------------
On SIGHUP the daemon reads its file again (:func:`~mip4.daemon.config.load_config`, the
same checks as at start). An invalid file changes nothing: the daemon keeps running on the
configuration it has and logs ``daemon.reload_failed`` with the error (file and key). A
valid file is compared key by key with what runs (:func:`reload`):

* ``[[security_associations]]`` change in place: the agents' association store is brought
  to the file's set (added, rekeyed, removed), the mobile node's MN-HA association is
  replaced. The next registration is checked with the new keys.
* The home agent's pool and limits change in place (:data:`IN_PLACE`): the engine reads
  ``home_agent.home_addresses``, ``address_pool`` (addresses assigned stay assigned),
  ``max_bindings``, ``simultaneous_bindings``,
  ``max_simultaneous_bindings``, ``reverse_tunnel_required`` and ``gratuitous_arp_count``
  at each registration. Existing bindings are kept as granted.
* The foreign agent's ``max_pending``, ``pending_timeout``, ``require_mn_fa_auth`` and
  ``require_nai`` change in place (read at each request); visitors and pending requests
  already accepted stay.
* The mobile node's ``lifetime`` (asked for from the next request on; the binding held
  stays as granted), its retransmission, back-off and renewal timers
  (``retransmit_initial``, ``retransmit_max``, ``retransmit_limit``, ``renew_fraction``,
  ``denial_backoff``, ``denial_backoff_max``, ``failed_retry``), its correction and
  redirect limits and ``on_revocation`` change in place
  (:meth:`~mip4.core.mobile_node.MobileNode.reconfigure`): read when they are used.
* ``daemon.log_level`` changes in place for every role (the level of the ``mip4``
  loggers); the other ``[daemon]`` keys (log format and target, name, control socket,
  uvloop) need a restart.
* Every other key needs a restart: the addresses, interfaces and sockets the daemon opened,
  what its agent advertisements carry (their settings are fixed when the advertiser
  starts: ``max_lifetime``, the encapsulation and reverse-tunnel flags, intervals), the
  rest of the foreign agent's table and the mobile node's (its home address and agent,
  flags, discovery: its parts hold them from the start), and ``[io]``, ``[snmp]``,
  ``[metrics]``, ``[store]``
  (the agents' store file is open and restored from at start), the foreign agent's
  ``[handoff]`` and the mobile node's ``[handover]``. A change there is refused with one
  ``daemon.reload_refused`` line naming the key; the running value stays, and the keys
  that can change still do.
* ``[aaa]`` needs a restart too (:func:`aaa_changes`): the RADIUS client, its servers,
  secrets and retransmission policy, and the Disconnect-Request socket are built once at
  start (:mod:`mip4.daemon.aaa`). A change is refused naming the key (``aaa.servers``,
  ``aaa.timeout``, ``aaa.retries``, ``aaa.nas_identifier``, ``aaa.disconnect_port``,
  ``aaa.disconnect_address``); what ``[aaa]`` folds into the engine's table
  (``accounting``, ``accounting_interval``, ``mn_aaa_secret``) is compared there.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent
from mip4.core.mobile_node import MobileNode
from mip4.security.sa import SecurityAssociations
from mip4.security.sa_table import Associations

from .aaa import AaaSettings
from .config import DaemonConfig

__all__ = [
    "DAEMON_IN_PLACE",
    "ENGINE_TABLES",
    "IN_PLACE",
    "Reload",
    "aaa_changes",
    "changed_keys",
    "reload",
]

#: The engine table of each role.
ENGINE_TABLES = {"ha": "home_agent", "fa": "foreign_agent", "mn": "mobile_node"}

#: Engine keys (per role) that change in place; every other engine key needs a restart.
IN_PLACE: dict[str, frozenset[str]] = {
    "ha": frozenset(
        {
            "home_addresses",
            "address_pool",
            "max_bindings",
            "simultaneous_bindings",
            "max_simultaneous_bindings",
            "reverse_tunnel_required",
            "gratuitous_arp_count",
        }
    ),
    # the foreign agent's pending-list limits and request requirements: read at each
    # request, by the engine and by its checks (FaTables), and not advertised.
    # max_visitors stays refused: it decides the advertised B flag (RFC 5944 §2.1.1), and
    # tests/daemon/test_reload.py holds that it needs a restart.
    "fa": frozenset({"max_pending", "pending_timeout", "require_mn_fa_auth", "require_nai"}),
    # the mobile node's registration client reads these when it builds a request, arms a
    # retransmission, a back-off or the renewal (mip4.core.mn_client), and the node its
    # reaction to a revocation: MobileNode.reconfigure
    "mn": frozenset(
        {
            "lifetime",
            "renew_fraction",
            "retransmit_initial",
            "retransmit_max",
            "retransmit_limit",
            "denial_backoff",
            "denial_backoff_max",
            "failed_retry",
            "correction_limit",
            "redirect_limit",
            "on_revocation",
        }
    ),
}

#: ``[daemon]`` keys that change in place (every role): the level of the ``mip4`` loggers.
DAEMON_IN_PLACE = frozenset({"log_level"})

#: Tables compared field by field whose every key needs a restart.
RESTART_TABLES = ("io", "snmp", "metrics", "store", "handoff", "handover")


@dataclass(frozen=True)
class Reload:
    """What a reload did: the configuration now running, the keys changed in place, the
    keys refused (the running value stays)."""

    config: DaemonConfig
    applied: tuple[str, ...]
    refused: tuple[str, ...]


def changed_keys(table: str, old: object, new: object) -> list[str]:
    """``table.key`` for every field of the dataclass ``old`` whose value in ``new``
    differs (a table of tables compares as one key)."""
    return [
        f"{table}.{f.name}"
        for f in dataclasses.fields(old)  # type: ignore[arg-type]
        if getattr(old, f.name) != getattr(new, f.name)
    ]


def _table_changes(name: str, old: object, new: object) -> list[str]:
    """``changed_keys`` of an optional table: one present on one side only (or not a
    table) is one key, ``name``."""
    if old == new:
        return []
    if old is None or new is None or not dataclasses.is_dataclass(old):
        return [name]
    return changed_keys(name, old, new)


def aaa_changes(old: AaaSettings | None, new: AaaSettings | None) -> list[str]:
    """The ``[aaa]`` keys whose value differs between two loaded configurations
    (``None``: no server configured)."""
    if old == new:
        return []
    o_servers, n_servers = (old.servers if old else ()), (new.servers if new else ())
    keys = []
    if o_servers != n_servers:
        keys.append("aaa.servers")
    o_policy, n_policy = (old.policy if old else None), (new.policy if new else None)
    if o_policy != n_policy:
        if o_policy is None or n_policy is None or o_policy.timeout != n_policy.timeout:
            keys.append("aaa.timeout")
        if o_policy is None or n_policy is None or o_policy.retries != n_policy.retries:
            keys.append("aaa.retries")
    if (old.nas_identifier if old else None) != (new.nas_identifier if new else None):
        keys.append("aaa.nas_identifier")
    o_dis, n_dis = (old.disconnect if old else None), (new.disconnect if new else None)
    if o_dis != n_dis:
        if o_dis is None or n_dis is None or o_dis[1] != n_dis[1]:
            keys.append("aaa.disconnect_port")
        if o_dis is not None and n_dis is not None and o_dis[0] != n_dis[0]:
            keys.append("aaa.disconnect_address")
    return keys or ["aaa"]


def _sync_associations(engine: HomeAgent | ForeignAgent, new: DaemonConfig) -> None:
    store = engine.security_associations
    if not isinstance(store, SecurityAssociations):
        raise TypeError(f"cannot reload into {type(store).__name__}")
    given = new.associations
    if isinstance(given, Associations):
        # a subscriber table (issue 13: a million rows) is taken whole, not row by row:
        # the new configuration's rows replace the store's (what was removed or replaced
        # of the old ones goes with them); the TOML associations are brought over below
        store.retable(given.table)
        wanted = {(peer, sa.spi): sa for peer, sa in given.pairs}
        held = list(store.objects())
    else:
        wanted = {(peer, sa.spi): sa for peer, sa in given}
        held = list(store)
    for peer, sa in held:
        if (peer, sa.spi) not in wanted:
            store.remove(peer, sa.spi)
    for (peer, _), sa in wanted.items():
        if store.get(peer, sa.spi) != sa:
            store.replace(peer, sa)


def routine_log_level(engine: HomeAgent | ForeignAgent | MobileNode, config: DaemonConfig) -> None:
    """The agents build their routine DEBUG records (a foreign agent's unchanged renewal's
    ``fa.request_relayed`` / ``fa.reply_relayed``, a home agent's unchanged renewal's
    ``ha.registration``) only when something reads them: the ``mip4`` logger at DEBUG, or
    the metrics endpoint, which times relays and registrations by those records. Called
    at start and after a reload changes ``daemon.log_level``."""
    if isinstance(engine, ForeignAgent | HomeAgent):
        metrics = config.file.metrics.address is not None
        level = logging.getLogger("mip4").getEffectiveLevel()
        engine.log_level = logging.DEBUG if metrics else level


def reload(
    running: DaemonConfig, engine: HomeAgent | ForeignAgent | MobileNode, new: DaemonConfig
) -> Reload:
    """Bring ``engine`` to ``new`` where that can happen in place (see the module
    docstring); ``running`` is the configuration it runs on. ``ValueError`` (nothing
    changed) when the merged engine table is inconsistent."""
    role = running.role
    table = ENGINE_TABLES[role]
    refused: list[str] = []
    for name in RESTART_TABLES:
        if hasattr(running.file, name):  # [store]: the agents only; [handoff]: the FA's
            refused += _table_changes(name, getattr(running.file, name), getattr(new.file, name))
    refused += aaa_changes(running.aaa, new.aaa)
    old_daemon, new_daemon = running.file.daemon, new.file.daemon
    daemon_changes = changed_keys("daemon", old_daemon, new_daemon)
    daemon_keep = {k.split(".", 1)[1] for k in daemon_changes} - DAEMON_IN_PLACE
    refused += [k for k in daemon_changes if k.split(".", 1)[1] in daemon_keep]
    daemon_applied = [k for k in daemon_changes if k.split(".", 1)[1] not in daemon_keep]
    daemon = dataclasses.replace(new_daemon, **{k: getattr(old_daemon, k) for k in daemon_keep})
    old_engine: Any = engine.config
    new_engine: Any = getattr(new.file, table)
    engine_changes = changed_keys(table, old_engine, new_engine)
    in_place = IN_PLACE[role]
    keep = {k.split(".", 1)[1] for k in engine_changes} - in_place
    refused += [k for k in engine_changes if k.split(".", 1)[1] in keep]
    applied = [k for k in engine_changes if k.split(".", 1)[1] in in_place]
    merged = dataclasses.replace(new_engine, **{k: getattr(old_engine, k) for k in keep})
    sa_changed = running.associations != new.associations
    mn_sa = None
    if sa_changed and isinstance(engine, MobileNode):
        if "mobile_node.home_agent" in refused:
            # the MN-HA association is chosen by the running home agent's address
            new = dataclasses.replace(new, file=dataclasses.replace(new.file, **{table: merged}))
        mn_sa = new.mn_association()
    # everything checked: apply
    if daemon_applied:
        logging.getLogger("mip4").setLevel(daemon.log_level.value.upper())
        routine_log_level(engine, running)
        applied += daemon_applied
    if sa_changed:
        applied.append("security_associations")
        if isinstance(engine, MobileNode):
            assert mn_sa is not None
            engine.client.sa = mn_sa
        else:
            _sync_associations(engine, new)
    if applied and isinstance(engine, HomeAgent):
        engine.config = merged
    if applied and isinstance(engine, ForeignAgent):
        engine.reconfigure(merged)
    if applied and isinstance(engine, MobileNode):
        engine.reconfigure(merged)
    file = dataclasses.replace(
        running.file,
        **{
            table: merged,
            "security_associations": new.file.security_associations,
            "daemon": daemon,
        },
    )
    now_running = dataclasses.replace(
        running,
        file=file,
        associations=new.associations if sa_changed else running.associations,
        warnings=new.warnings,
    )
    return Reload(now_running, tuple(applied), tuple(refused))
