"""Configuration files for the daemons on the namespace lab (:mod:`mip4.lab`).

``lab_configs(Lab("demo"))`` returns the TOML text of ``ha``, ``fa1``, ``fa2`` and ``mn``
for that lab's names and addresses: what ``examples/lab/`` holds for lab id ``demo``
(``tests/daemon/test_config.py`` checks they are the same) and what the lab tests and the
demo start the daemons with. ``mip4 lab configs --id ID --out DIR`` writes them for any lab
id and prints how to start them::

    .venv/bin/mip4 lab up --id demo
    .venv/bin/mip4 lab exec --id demo ha -- .venv/bin/mip4 ha --config examples/lab/ha.toml &
    .venv/bin/mip4 lab exec --id demo fa1 -- .venv/bin/mip4 fa --config examples/lab/fa1.toml &
    .venv/bin/mip4 lab exec --id demo fa2 -- .venv/bin/mip4 fa --config examples/lab/fa2.toml &
    .venv/bin/mip4 lab exec --id demo mn -- .venv/bin/mip4 mn --config examples/lab/mn.toml &
    .venv/bin/mip4 status --role mn

Network C has no agent: its co-located address (10.4.0.100/24) is static; ``mip4 lab move
c`` adds it (with the default route), as a DHCP server would, and removes it when the node
moves on; the mobile node daemon registers it when it appears.

With ``aaa=True`` (``mip4 lab configs --aaa``, ``mip4 lab demo --aaa``) the files are those of
issues 10 and 11, for the AAA lab (:data:`mip4.lab.topology.AAA`: a second home agent
``ha2`` at 10.1.0.3): the lab's FreeRADIUS (:mod:`mip4.lab.radius`, in the router's
namespace at :func:`radius_address`) decides. The foreign agents challenge (RFC 4721) and
ask it, and account for their visitors (RFC 2866); both home agents (``ha``, ``ha2``) have
no security association for the mobile node and ask it too (``home_agent.aaa``: key and
home address from the Access-Accept). The mobile node has its NAI and its MN-AAA secret and
nothing else: no home address (RFC 2794: the home agent assigns the one AAA gives), home
agent 0.0.0.0 (RFC 4433: the home AAA server picks one) and no MN-HA key (RFC 3957: the
home AAA server derives one and the node derives the same from the nonce in the reply); only
the home network (``home_subnet``), so that it knows its home link before AAA has given it
anything.
Every agent supports registration revocation (RFC 3543, ``revocation = true``), with an
FA-HA security association between each foreign agent and each home agent, so that an
operator can move the node from one home agent to the other (``mip4 ha redirect``). The
RADIUS shared secret is in ``radius.secret`` beside the files."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path

from .build import Lab, LabError
from .radius import LAB_MN_AAA_SECRET, LAB_NAI, LAB_RADIUS_SECRET

#: The MN-HA key of the lab (RFC 5944 §3.5.1: 128 bits for HMAC-MD5). Test material only.
LAB_KEY = bytes(range(16))
LAB_SPI = 256
#: The SPI of the MN-FA keys the lab's FreeRADIUS derives for the AAA lab's node at each
#: foreign agent (RFC 3957; issue 11).
LAB_MN_FA_SPI = 258
#: The FA-HA security associations of the AAA lab (RFC 5944 §3.5.1, for RFC 3543
#: revocations): SPI and key between every foreign agent and every home agent. Test
#: material only.
FA_HA_SPI = 257
FA_HA_KEY = bytes(range(16, 32))
#: Which daemon runs on which lab node (``ha2``: the AAA lab only).
LAB_ROLES = {"ha": "ha", "ha2": "ha", "fa1": "fa", "fa2": "fa", "mn": "mn"}
#: AAA (issue 10): the lab node FreeRADIUS runs in, the file holding the RADIUS secret, and
#: the seconds between a visitor's Interim-Update accounting records
RADIUS_NODE = "rtr"
RADIUS_SECRET_FILE = "radius.secret"
INTERIM_INTERVAL = 10


def radius_address(lab: Lab) -> IPv4Address:
    """Where the lab's FreeRADIUS listens: the router's address on the correspondent
    network, which every agent reaches through its default route."""
    return lab.address(RADIUS_NODE, "cn")


def home_agent_nodes(lab: Lab, *, aaa: bool) -> list[str]:
    """The lab's home agents: ``ha``, and ``ha2`` in the AAA lab (issue 11)."""
    return ["ha", "ha2"] if aaa else ["ha"]


def lab_address(lab: Lab, node: str) -> IPv4Address:
    """``node``'s address, from the AAA topology when the lab's own has no such node
    (``mip4 lab configs --aaa`` for a lab id that is not up)."""
    from .topology import AAA

    if node in lab.topology.node_keys():
        return lab.address(node)
    return AAA.address(node)


def _aaa_table(lab: Lab, node: str, *, accounting: bool) -> str:
    """``[aaa]`` of an agent's file (issue 10)."""
    return (
        "\n[aaa]\n"
        "timeout = 1.0\nretries = 2\n"
        f'nas_identifier = "{lab.prefix}-{node}"\n'
        + (f"accounting = true\ninterim_interval = {INTERIM_INTERVAL}\n" if accounting else "")
        + "\n[[aaa.servers]]\n"
        'name = "lab-radius"\n'
        f'address = "{radius_address(lab)}"\n'
        f'secret_file = "{RADIUS_SECRET_FILE}"\n'
    )


def lab_configs(
    lab: Lab,
    *,
    socket_dir: Path | str | None = None,
    log_format: str = "text",
    lifetime: int = 300,
    reverse_tunnel: str = "prefer",
    advertisement_interval: float = 1.0,
    encapsulations: Sequence[str] | None = None,
    broadcast: bool = False,
    aaa: bool = False,
    handover: str | None = None,
) -> dict[str, str]:
    """TOML text per lab node (``ha``, ``fa1``, ``fa2``, ``mn``; ``aaa``: and ``ha2``).
    Control sockets are ``<socket_dir>/<node>.sock`` (default:
    ``/run/mip4/<role>-<lab prefix>-<node>.sock`` via ``daemon.name``). ``encapsulations``
    (e.g. ``["gre", "ipip"]``) sets ``mobile_node.encapsulations``; left out, the default
    (IP-in-IP). ``broadcast`` sets the mobile node's B bit (home-link broadcasts forwarded
    to it). ``aaa``: the files of the AAA lab (see the module docstring). ``handover``
    (issue 14: ``base``, ``low-latency``, ``fast``): ``[handoff]`` for the agents,
    ``[handover]`` for the node."""
    home = lab.topology.network("home")
    mn_ip, ha_ip = lab.address("mn"), lab.address("ha")
    key = LAB_KEY.hex()

    def daemon(node: str) -> str:
        lines = ["[daemon]", f'name = "{lab.prefix}-{node}"']
        if socket_dir is not None:
            lines.append(f'control_socket = "{Path(socket_dir) / (node + ".sock")}"')
        lines.append(f'log_format = "{log_format}"')
        return "\n".join(lines) + "\n"

    def sa(peer: object) -> str:
        return (
            "[[security_associations]]\n"
            f'peer = "{peer}"\nspi = {LAB_SPI}\nkey = "{key}"\n'
            'algorithm = "hmac-md5"\nreplay = "timestamps"\n'
        )

    def fa_ha(peer: object) -> str:
        """RFC 3543 revocations between a foreign and a home agent (the AAA lab)."""
        return (
            "\n[[security_associations]]\n"
            f'peer = "{peer}"\nspi = {FA_HA_SPI}\nkey = "{FA_HA_KEY.hex()}"\n'
            'algorithm = "hmac-md5"\nreplay = "timestamps"\n'
        )

    has = home_agent_nodes(lab, aaa=aaa)
    fas = ("fa1", "fa2")
    out: dict[str, str] = {}
    for node in has:
        out[node] = (
            f"# mip4 ha on lab {lab.lab_id!r}\n\n"
            "[home_agent]\n"
            f'address = "{lab_address(lab, node)}"\n'
            f'home_network = "{home.subnet}"\n'
            f'interface = "{lab.ifname("ha")}"\n'  # both home agents: on the home network
            f"advertisement_interval = {advertisement_interval}\n"
            + ("aaa = true\nrevocation = true\n" if aaa else "")
            + "\n[io]\n"
            f'tun_name = "{lab.prefix}-t"\n\n'
            + daemon(node)
            # AAA: the home agent learns the node's MN-HA key from its Access-Accept
            + (
                _aaa_table(lab, node, accounting=False)
                + "".join(fa_ha(lab.address(fa)) for fa in fas)
                if aaa
                else "\n" + sa(mn_ip)
            )
        )
    for node in fas:
        out[node] = (
            f"# mip4 fa on lab {lab.lab_id!r}\n\n"
            "[foreign_agent]\n"
            f"advertisement_interval = {advertisement_interval}\n"
            + ("challenge_length = 16\naaa = true\nrevocation = true\n" if aaa else "")
            + "\n[[foreign_agent.links]]\n"
            f'interface = "{lab.ifname(node)}"\n'
            f'address = "{lab.address(node)}"\n'
            "prefix_len = 24\n\n"
            "[io]\n"
            f'tun_name = "{lab.prefix}-t"\n\n'
            + daemon(node)
            + (_aaa_table(lab, node, accounting=True) if aaa else "")
            + ("".join(fa_ha(lab_address(lab, ha)) for ha in has) if aaa else "")
            + ("\n[handoff]\n" if handover is not None else "")
        )
    out["mn"] = (
        f"# mip4 mn on lab {lab.lab_id!r}\n\n"
        "[mobile_node]\n"
        + (  # AAA: known by its NAI only; AAA gives the address, the home agent (RFC 4433:
            # Home Agent 0.0.0.0) and the key; the home network tells it its home link
            f'nai = "{LAB_NAI}"\nmn_aaa_secret = "{LAB_MN_AAA_SECRET}"\n'
            'home_agent = "0.0.0.0"\n'
            f'home_subnet = "{home.subnet}"\n'
            if aaa
            else f'home_address = "{mn_ip}"\nhome_agent = "{ha_ip}"\n'
            f"home_prefix_len = {home.subnet.prefixlen}\n"
        )
        + f"lifetime = {lifetime}\n"
        f'reverse_tunnel = "{reverse_tunnel}"\n'
        + ("broadcast = true\n" if broadcast else "")
        + (
            "encapsulations = [" + ", ".join(f'"{e}"' for e in encapsulations) + "]\n"
            if encapsulations
            else ""
        )
        + "\n"
        "[io]\n"
        f'interfaces = ["{lab.ifname("mn")}"]\n'
        f'tun_name = "{lab.prefix}-t"\n'
        f'home_gateway = "{home.gateway}"\n\n'
        + daemon("mn")
        + ("" if aaa else "\n" + sa(ha_ip))
        + (f'\n[handover]\nmode = "{handover}"\n' if handover is not None else "")
    )
    return with_lab_dataplane(out)  # issue 12: MIP4_LAB_DATAPLANE


# ---- issue 12 ("bpf" helper): the data plane of every lab daemon, one switch ----------
#: ``MIP4_LAB_DATAPLANE=bpf|userspace|auto`` in the environment: every file :func:`lab_configs`
#: writes gets ``[io] dataplane`` set to it (the lab suite run with a plane forced for every
#: role); unset or empty: the files leave the daemons' default.
LAB_DATAPLANE_ENV = "MIP4_LAB_DATAPLANE"


def with_lab_dataplane(texts: dict[str, str], plane: str | None = None) -> dict[str, str]:
    """``texts`` with ``[io] dataplane = plane`` in each file (``plane`` None: the value of
    ``MIP4_LAB_DATAPLANE``, nothing when it is unset); a ``dataplane`` already there is
    replaced. An unknown value raises :class:`LabError` naming the variable."""
    import os
    import re

    if plane is None:
        plane = os.environ.get(LAB_DATAPLANE_ENV, "").strip()
        if not plane:
            return texts
    if plane not in ("auto", "bpf", "userspace"):
        raise LabError(f"{LAB_DATAPLANE_ENV}={plane!r}: use bpf, userspace or auto")
    line = f'dataplane = "{plane}"\n'
    out = {}
    for node, text in texts.items():
        text = re.sub(r'(?m)^dataplane = "[a-z]*"\n', "", text)
        out[node] = text.replace("[io]\n", "[io]\n" + line, 1)
    return out


# ---- end issue 12 -------------------------------------------------------------------------


def write_lab_configs(lab: Lab, directory: Path | str, **kw: object) -> dict[str, Path]:
    """Write :func:`lab_configs` as ``<directory>/<node>.toml``; returns the paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for node, text in lab_configs(lab, **kw).items():  # type: ignore[arg-type]
        p = d / f"{node}.toml"
        p.write_text(text)
        paths[node] = p
    if kw.get("aaa"):
        secret = d / RADIUS_SECRET_FILE
        secret.write_text(LAB_RADIUS_SECRET + "\n")
        secret.chmod(0o600)
    return paths
