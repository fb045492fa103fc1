"""Moves announced in advance (issue 14): what a wireless driver's scan report and a
link-layer source trigger would tell the daemons before the link switch (RFC 4881 §1.3).

:func:`announce` asks the foreign agent of the network the mobile node is about to join for
the advertisement it would send there (control command ``advertisement``), hands it with
the agent's hardware address to the mobile node's daemon (``anticipate``: the engine's
:class:`~mip4.core.events.MoveAnticipated`) and, with ``source_trigger``, tells the node's
current foreign agent (``handoff``: :class:`~mip4.core.events.HandoffTrigger`, RFC 4881
post-registration and the combined method). The daemons are found by their control
sockets: ``<lab.control_dir>/<node>.sock`` when the lab's daemons were started with one
(the scenario's), otherwise where :func:`mip4.lab.configs.lab_configs` puts them by
default.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mip4.daemon.control import request
from mip4.io.netns import Netns

from .build import LabError
from .configs import LAB_ROLES

if TYPE_CHECKING:
    from .build import Lab

#: the control socket directory of daemons started without one (``daemon.name``)
RUN_DIR = Path("/run/mip4")


class AnnounceError(LabError):
    """An announcement that could not be made (no agent there, a daemon not answering)."""


def agent_of(lab: Lab, net: str) -> str | None:
    """The foreign agent node serving network ``net`` (None: none)."""
    for node in lab.topology.nodes:
        if node.role.startswith("foreign agent") and any(a.net == net for a in node.attachments):
            return node.key
    return None


def control_socket(lab: Lab, node: str) -> Path:
    if lab.control_dir is not None:
        return Path(lab.control_dir) / f"{node}.sock"
    return RUN_DIR / f"{LAB_ROLES[node]}-{lab.prefix}-{node}.sock"


def _ask(lab: Lab, who: str, command: str, **args: str) -> dict[str, Any]:
    path = control_socket(lab, who)
    try:
        answer = request(path, command, timeout=2.0, **args)
    except (OSError, ValueError) as exc:
        raise AnnounceError(f"{who}: {command}: no answer on {path}: {exc}") from None
    if not answer.get("ok"):
        raise AnnounceError(f"{who}: {command}: {answer.get('error')}")
    return answer


def announce(lab: Lab, net: str, *, source_trigger: bool = False) -> dict[str, Any]:
    """Tell the daemons that the mobile node is about to move to ``net``; returns what
    was said (for logs). :class:`AnnounceError` when ``net`` has no foreign agent or a
    daemon does not answer; a source trigger the current agent refuses (no
    ``[handoff]``) is reported in the result, not raised."""
    new = agent_of(lab, net)
    if new is None:
        raise AnnounceError(f"network {net!r} has no foreign agent to announce")
    mobile = lab.topology.mobile
    adv = _ask(lab, new, "advertisement", interface=lab.ifname(new))
    with Netns(lab.ns(new)) as ns:
        link_src = ns.link_address(lab.ifname(new)).hex()
    said: dict[str, Any] = {"to": new, "src": adv["src"]}
    said["anticipate"] = _ask(
        lab,
        mobile,
        "anticipate",
        interface=lab.ifname(mobile),
        advertisement=str(adv["advertisement"]),
        src=str(adv["src"]),
        link_src=link_src,
    )
    old = agent_of(lab, lab.mobile_net)
    if source_trigger and old is not None and old != new:
        try:
            said["handoff"] = _ask(
                lab, old, "handoff", node=str(lab.address(mobile)), to=str(adv["src"])
            )
        except AnnounceError as exc:
            said["handoff"] = {"refused": str(exc)}
    return said
