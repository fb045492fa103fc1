"""The status snapshot of a running daemon (the ``status`` control command) and its
rendering as tables (``mip4 status``). The JSON shape is documented in
``docs/configuration.md`` ("Status JSON"); keys are only ever added."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

from mip4 import __version__
from mip4.core.actions import Encapsulation
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent
from mip4.core.mobile_node import MobileNode
from mip4.wire.codes import ReplyCode
from mip4.wire.messages import RegistrationFlags

from .logs import plain

JSON = dict[str, Any]

#: The most entries of each list a status holds unless asked otherwise (``mip4 status
#: --limit``): a home agent with a million bindings answers at once, without building a
#: million rows on its event loop (issue 13); the list's total is there beside it.
LIMIT = 1000


def bounded(items: Iterable[Any], limit: int | None, key: Callable[[Any], Any]) -> list[Any]:
    """The first ``limit`` of ``items`` (all when ``None``) in the order the table keeps
    them, then sorted by ``key``: no sort of a whole table for a page of it."""
    return sorted(items if limit is None else islice(items, limit), key=key)


def flags(f: RegistrationFlags) -> list[str]:
    return [m.name for m in RegistrationFlags if m.name and f & m]


def encapsulation(e: Encapsulation) -> str:
    return e.name.lower()


def remaining(expires: float | None, now: float) -> float | None:
    return None if expires is None else round(max(0.0, expires - now), 1)


def code_key(code: int) -> str:
    """``"133 ha_identification_mismatch"``, as :meth:`Counters.snapshot` writes them."""
    try:
        return f"{code} {ReplyCode(code).name.lower()}"
    except ValueError:
        return str(code)


def home_agent(ha: HomeAgent, now: float, limit: int | None = LIMIT) -> JSON:
    """``limit``: the most bindings listed (``None``: all); ``bindings_total`` counts them
    all."""
    table = ha.bindings
    return {
        "address": str(ha.config.address),
        "home_network": str(ha.config.home_network),
        "bindings_total": len(table),
        "bindings": [
            {
                "home_address": str(b.home_address),
                "care_of_address": str(b.care_of_address),
                "lifetime": b.lifetime,
                "remaining": remaining(b.expires, now),
                "encapsulation": encapsulation(b.encapsulation),
                "reverse_tunnel": b.reverse_tunnel,
                "flags": flags(b.flags),
                "source": None if b.source is None else str(b.source),
                "identification": b.identification,
            }
            for b in bounded(table, limit, lambda b: (b.home_address, b.care_of_address))
        ],
    }


def steering(
    on: Mapping[str, Any] | None, off: str | None, driver: Mapping[str, int] | None
) -> JSON:
    """Flood steering of the home agent's port (issue 13): ``on`` is
    :meth:`mip4.io.bpf.steer.Steering.snapshot` (``None``: off, ``off`` says why); the
    datagrams read from each socket are the driver's ``read_trusted``/``read_general``."""
    if on is None:
        return {"on": False, "why": off or "off"}
    reads = driver or {}
    return {
        **on,
        "read_trusted": int(reads.get("read_trusted", 0)),
        "read_general": int(reads.get("read_general", 0)),
    }


def foreign_agent(fa: ForeignAgent, now: float, limit: int | None = LIMIT) -> JSON:
    """``limit``: the most visitors and pending registrations listed (``None``: all);
    ``visitors_total`` and ``pending_total`` count them all."""
    visitors, pending = fa.visitors, fa.pending
    return {
        "visitors_total": len(visitors),
        "pending_total": len(pending),
        "links": [
            {
                "interface": link.interface,
                "address": str(link.address),
                "care_of_addresses": [str(a) for a in link.offered],
            }
            for link in fa.config.links
        ],
        "visitors": [
            {
                "home_address": str(v.home_address),
                "home_agent": str(v.home_agent),
                "care_of_address": str(v.care_of_address),
                "interface": v.interface,
                "link_address": None if v.link_address is None else v.link_address.hex(":"),
                "lifetime": v.lifetime,
                "remaining": remaining(v.expires, now),
                "encapsulation": encapsulation(v.encapsulation),
                "reverse_tunnel": v.reverse_tunnel,
                "flags": flags(v.flags),
                "colocated": v.colocated,
            }
            for v in bounded(visitors, limit, lambda v: v.home_address)
        ],
        "pending": [
            {
                "home_address": str(p.home_address),
                "home_agent": str(p.home_agent),
                "care_of_address": str(p.care_of_address),
                "interface": p.interface,
                "requested_lifetime": p.requested_lifetime,
                "age": round(max(0.0, now - p.relayed_at), 1),
                "expires_in": round(max(0.0, p.expires - now), 1),
            }
            for p in bounded(pending, limit, lambda p: p.home_address)
        ],
    }


def mobile_node(mn: MobileNode, now: float) -> JSON:
    att = mn.attachment
    agent = att.agent.address if att is not None and att.agent is not None else None
    b = mn.binding
    pending = mn.pending_request
    last = mn.last_reaction
    reg = mn.last_registration
    return {
        # issue 10: the address in use (assigned by the home agent for a node known by
        # its NAI, RFC 2794; 0.0.0.0 until then), and the NAI
        "home_address": str(mn.home_address),
        "nai": mn.config.nai,
        "home_agent": str(mn.home_agent),
        "state": mn.state.value,
        "registered": mn.registered,
        "at_home": mn.at_home,
        "attachment": None
        if att is None
        else {
            "kind": att.kind.value,
            "interface": att.interface,
            "care_of_address": str(att.care_of_address),
            "agent": None if agent is None else str(agent),
        },
        "care_of_address": None if mn.care_of_address is None else str(mn.care_of_address),
        "agent": None if agent is None else str(agent),
        "binding": None
        if b is None
        else {
            "care_of_address": str(b.care_of_address),
            "lifetime": b.granted,
            "remaining": remaining(b.expires, now),
            "encapsulation": encapsulation(b.encapsulation),
            "reverse_tunnel": b.reverse_tunnel,
        },
        "pending": None
        if pending is None
        else {
            "care_of_address": str(pending.care_of_address),
            "lifetime": pending.lifetime,
            "deregistration": pending.lifetime == 0,
        },
        "failure_reason": mn.failure_reason,
        "last_reply": None
        if last is None
        else {"code": int(last.code), "reaction": last.reaction.value},
        "last_registration": None
        if reg is None
        else {
            "care_of_address": str(reg.care_of_address),
            "deregistration": reg.deregistration,
            "rtt_ms": round(reg.round_trip * 1000.0, 3),
            "retransmissions": reg.retransmissions,
            "age": round(max(0.0, now - reg.at), 1),
        },
    }


def read_tun_stats(ifname: str, sys_class_net: Path = Path("/sys/class/net")) -> JSON:
    """Kernel packet and byte counters of the TUN device (rx: datagrams the kernel routed
    into the tunnel; tx: decapsulated datagrams written back). Empty when unreadable."""
    out: JSON = {}
    for key in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes"):
        try:
            out[key] = int((sys_class_net / ifname / "statistics" / key).read_text())
        except (OSError, ValueError):
            return {}
    return out


def counters(
    engine: HomeAgent | ForeignAgent | MobileNode,
    *,
    mn_replies: Mapping[int, int] | None = None,
    driver: Mapping[str, int] | None = None,
    executor: Mapping[str, int] | None = None,
    forwarder: Mapping[str, int] | None = None,
    tunnel: Mapping[str, int] | None = None,
) -> JSON:
    if isinstance(engine, MobileNode):
        replies = mn_replies or {}
        snap: JSON = {
            "accepted": {code_key(c): n for c, n in sorted(replies.items()) if c < 2},
            "denied": {code_key(c): n for c, n in sorted(replies.items()) if c >= 2},
            "discarded": dict(engine.counters.discarded),
            "events": dict(engine.counters.events),
        }
    else:
        snap = engine.counters.snapshot()
    if isinstance(engine, HomeAgent):  # issue 13: what the fast paths answered
        snap["fast_renewals"] = engine.fast_renewals
        snap["fast_first_registrations"] = engine.fast_first_registrations
    elif isinstance(engine, ForeignAgent):  # issue 13: what the relay fast path relayed
        snap["fast_relayed_requests"] = engine.fast_requests
        snap["fast_relayed_replies"] = engine.fast_replies
        # of those, or of the general path's: what the kernel relayed (fa_kernel)
        snap["kernel_relayed_requests"] = engine.kernel_requests
        snap["kernel_relayed_replies"] = engine.kernel_replies
        snap["kernel_relayed_superseded"] = engine.kernel_superseded
        snap["kernel_relayed_general"] = engine.kernel_general
    snap["driver"] = dict(driver or {})
    snap["executor"] = dict(executor or {})
    snap["forwarder"] = dict(forwarder or {})
    snap["tunnel"] = dict(tunnel or {})
    return snap


def snapshot(
    *,
    role: str,
    name: str,
    config: str,
    started: float,
    now: float,
    interfaces: Iterable[str],
    tun: str | None,
    engine: HomeAgent | ForeignAgent | MobileNode,
    counter_sets: JSON,
    limit: int | None = LIMIT,
) -> JSON:
    """The ``status`` object (see the module docstring); ``limit``: the most entries of
    each list (``None``: all)."""
    out: JSON = {
        "role": role,
        "name": name,
        "pid": os.getpid(),
        "version": __version__,
        "config": config,
        "uptime": round(now - started, 1),
        "interfaces": list(interfaces),
        "tun": tun,
    }
    if isinstance(engine, HomeAgent):
        out["home_agent"] = home_agent(engine, now, limit)
    elif isinstance(engine, ForeignAgent):
        out["foreign_agent"] = foreign_agent(engine, now, limit)
    else:
        out["mobile_node"] = mobile_node(engine, now)
    out["counters"] = counter_sets
    result = plain(out)
    assert isinstance(result, dict)
    return result


# ----------------------------------------------------------------------------------------
# Tables for people
# ----------------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    out = [line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return out


def _counter_lines(title: str, values: Mapping[str, Any]) -> list[str]:
    if not values:
        return []
    items = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
    return [f"  {title}: {items}"]


def _of(listed: object, total: int | None) -> str:
    """``"3"``, or ``"1000 of 1000000"`` when the list holds fewer than there are."""
    n = len(listed) if isinstance(listed, list | dict) else 0
    return str(n) if total is None or total == n else f"{n} of {total}"


def render_text(s: JSON) -> str:
    """``mip4 status`` without ``--json``."""
    lines = [
        f"{s['role']} {s['name']} (pid {s['pid']}, mip4 {s['version']}, up {s['uptime']} s, "
        f"config {s['config']})",
        f"interfaces: {', '.join(s['interfaces'])}; tunnel device: {s['tun'] or '-'}",
        "",
    ]
    if "dataplane" in s:  # issue 12
        lines.insert(-1, f"data plane: {s['dataplane']}")
    if "steering" in s:  # issue 13
        st = s["steering"]
        if st["on"]:
            text = (
                f"flood steering: on, {st['trusted_sources']} trusted sources"
                f" (map {st['map_size']}); read trusted {st['read_trusted']},"
                f" general {st['read_general']}; dropped trusted"
                f" {st.get('trusted_drops', 0)}, general {st.get('general_drops', 0)}"
            )
        else:
            text = f"flood steering: off ({st['why']})"
        lines.insert(-1, text)
    if "home_agent" in s:
        ha = s["home_agent"]
        lines.append(f"home agent {ha['address']} for {ha['home_network']}")
        lines.append(f"bindings ({_of(ha['bindings'], ha.get('bindings_total'))}):")
        rows = [
            [
                b["home_address"],
                b["care_of_address"],
                b["lifetime"],
                "infinite" if b["remaining"] is None else b["remaining"],
                b["encapsulation"],
                "".join(b["flags"]) or "-",
                b["source"],
            ]
            for b in ha["bindings"]
        ]
        hdr = ["home address", "care-of address", "lifetime", "remaining", "encap", "flags"]
        lines += ["  " + x for x in _table([*hdr, "from"], rows)]
    if "fast_path" in s:  # issue 12: per-binding counters of the bpf fast path
        fast = s["fast_path"]["bindings"]
        capacity = s["fast_path"].get("capacity")
        room = "" if capacity is None else f", capacity {capacity} per map"
        if "pinned" in s["fast_path"]:
            pinned = s["fast_path"]["pinned"]
            room += f", maps pinned at {pinned}" if pinned else ", maps not pinned"
        lines.append(f"fast path ({_of(fast, s['fast_path'].get('bindings_total'))}{room}):")
        rows = [[home, t["packets"], t["bytes"]] for home, t in sorted(fast.items())]
        lines += ["  " + x for x in _table(["home address", "packets", "bytes"], rows)]
        lines += _counter_lines("fast path events", s["fast_path"]["events"])
        lines += _counter_lines(
            "fast path maps full (refused, left to the user-space plane)",
            s["fast_path"].get("map_full", {}),
        )
    if "foreign_agent" in s:
        fa = s["foreign_agent"]
        for link in fa["links"]:
            coas = ", ".join(link["care_of_addresses"])
            lines.append(f"link {link['interface']} {link['address']} (care-of {coas})")
        lines.append(f"visitors ({_of(fa['visitors'], fa.get('visitors_total'))}):")
        rows = [
            [
                v["home_address"],
                v["home_agent"],
                v["care_of_address"],
                v["interface"],
                v["link_address"],
                v["lifetime"],
                "infinite" if v["remaining"] is None else v["remaining"],
                "".join(v["flags"]) or "-",
            ]
            for v in fa["visitors"]
        ]
        hdr = ["home address", "home agent", "care-of", "interface", "link address"]
        lines += ["  " + x for x in _table([*hdr, "lifetime", "remaining", "flags"], rows)]
        lines.append(f"pending ({_of(fa['pending'], fa.get('pending_total'))}):")
        rows = [
            [
                p["home_address"],
                p["home_agent"],
                p["care_of_address"],
                p["interface"],
                p["requested_lifetime"],
                p["age"],
                p["expires_in"],
            ]
            for p in fa["pending"]
        ]
        hdr = ["home address", "home agent", "care-of", "interface", "lifetime", "age"]
        lines += ["  " + x for x in _table([*hdr, "expires in"], rows)]
    if "mobile_node" in s:
        mn = s["mobile_node"]
        lines.append(f"mobile node {mn['home_address']}, home agent {mn['home_agent']}")
        lines.append(f"  state:            {mn['state']}")
        lines.append(f"  registered:       {'yes' if mn['registered'] else 'no'}")
        att = mn["attachment"]
        if att is not None:
            where = f"{att['kind']} on {att['interface']}"
            if att["agent"]:
                where += f" (agent {att['agent']})"
            lines.append(f"  attachment:       {where}")
        lines.append(f"  care-of address:  {mn['care_of_address'] or '-'}")
        b = mn["binding"]
        if b is not None:
            rem = "infinite" if b["remaining"] is None else f"{b['remaining']} s"
            lines.append(
                f"  binding:          {b['care_of_address']} lifetime {b['lifetime']} s, "
                f"{rem} left, {b['encapsulation']}"
                + (", reverse tunnel" if b["reverse_tunnel"] else "")
            )
        if mn["pending"] is not None:
            p = mn["pending"]
            what = "deregistration" if p["deregistration"] else f"lifetime {p['lifetime']}"
            lines.append(f"  request pending:  {p['care_of_address']} {what}")
        if mn["last_reply"] is not None:
            r = mn["last_reply"]
            lines.append(f"  last reply:       {code_key(r['code'])} ({r['reaction']})")
        reg = mn.get("last_registration")
        if reg is not None:
            what = "deregistration" if reg["deregistration"] else reg["care_of_address"]
            lines.append(
                f"  last accepted:    {what}, round trip {reg['rtt_ms']:.1f} ms, "
                f"{reg['retransmissions']} retransmission(s), {reg['age']} s ago"
            )
        if mn["failure_reason"]:
            lines.append(f"  failure:          {mn['failure_reason']}")
    if "aaa" in s:  # issue 10: per-server RADIUS counters (RFC 4668, RFC 4670)
        lines += _aaa_lines(s["aaa"])
    c = s["counters"]
    lines += ["", "counters:"]
    for key in ("accepted", "denied", "discarded", "events", "forwarder", "tunnel", "driver"):
        lines += _counter_lines(key, c.get(key, {}))
    if "fast_renewals" in c:  # a home agent: renewals its fast path answered (issue 13)
        lines.append(f"  fast renewals: {c['fast_renewals']}")
    if "fast_first_registrations" in c:
        lines.append(f"  fast first registrations: {c['fast_first_registrations']}")
    if "fast_relayed_requests" in c:  # a foreign agent: its relay fast path (issue 13)
        lines.append(
            f"  fast relayed: {c['fast_relayed_requests']} requests,"
            f" {c['fast_relayed_replies']} replies"
        )
    if c.get("kernel_relayed_requests") or c.get("kernel_relayed_replies"):
        lines.append(
            f"  relayed by the kernel: {c['kernel_relayed_requests']} requests,"
            f" {c['kernel_relayed_replies']} replies"
            f" ({c.get('kernel_relayed_superseded', 0)} superseded,"
            f" {c.get('kernel_relayed_general', 0)} by the general path)"
        )
    return "\n".join(lines)


def _aaa_lines(aaa: JSON) -> list[str]:
    """The RADIUS servers of ``[aaa]`` with their counters (issue 10)."""
    lines = [f"AAA servers ({len(aaa['servers'])}):"]
    rows = []
    for srv in aaa["servers"]:
        auth, acct = aaa["auth"].get(srv["name"], {}), aaa["acct"].get(srv["name"], {})
        rtt = auth.get("rtt_mean")
        rows.append(
            [
                srv["name"],
                f"{srv['address']}:{srv['port']}",
                auth.get("requests", 0),
                auth.get("accepts", 0),
                auth.get("rejects", 0),
                auth.get("timeouts", 0),
                None if rtt is None else round(rtt * 1000, 1),
                acct.get("requests", 0),
                acct.get("timeouts", 0),
            ]
        )
    hdr = ["server", "address", "requests", "accepts", "rejects", "timeouts", "rtt ms"]
    return lines + ["  " + x for x in _table([*hdr, "acct requests", "acct timeouts"], rows)]


def merge(*counters: Mapping[str, int]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in counters:
        total.update(c)
    return dict(total)
