"""The text report of ``mip4 bench registrations``: rates, ratios against the echo
baseline of the same run, CPU per registration, startup and shutdown of the home agent;
first registrations from many sources against those from one source of the same round,
and what the home agent's flood steering read from each socket."""

from __future__ import annotations

from typing import Any

LABELS = {
    "renew": "renewals (binding exists)",
    "first": "first registrations",
    "fa_renew": "FA-relayed renewals",
    "flood_renew": "renewals under a forged flood",
    "first_sources": "first registrations, many sources",
    "flood_first_sources": "  the same under the forged flood",
}

#: Issue 13: valid renewals under a flood of forged requests keep at least this share of
#: the renewals measured alone.
FLOOD_TARGET = 0.5


def flood_lines(r: dict[str, Any]) -> list[str]:
    """The forged flood's figures under its ``flood_renew`` line."""
    f = r.get("flood", {})
    x = r.get("x_alone")
    if x is None:
        verdict = "no renewals alone to compare"
    else:
        verdict = f"target >= {FLOOD_TARGET}x {'holds' if x >= FLOOD_TARGET else 'NOT met'}"
    lines = [
        f"{'':<4}under flood / alone (same round, {_rate_alone(r):,.0f}/s): "
        + (f"{x:.2f}x" if x is not None else "-")
        + f" ({verdict})",
        f"{'':<4}flood offered {float(f.get('rate', 0)):,.0f}/s ({f.get('sent', 0):,} sent from "
        f"{f.get('source', '?')}), answered by the HA with 131: {f.get('answered_131', 0):,}",
    ]
    if "ha_udp_RcvbufErrors" in f:
        lines.append(
            f"{'':<4}HA namespace UDP: {f['ha_udp_InDatagrams']:,} datagrams in, "
            f"{f['ha_udp_RcvbufErrors']:,} dropped at a full receive buffer (UdpRcvbufErrors)"
        )
    if r.get("ha_accepted") is not None:
        lines.append(
            f"{'':<4}valid renewals sent {r.get('sent', 0):,}, timed out {r.get('timeouts', 0):,}"
            f" (sent again after {r.get('retry_s', '?')} s), accepted by the HA's own count "
            f"{r['ha_accepted']:,}"
        )
    if r.get("ha_run_share") is not None:
        lines.append(
            f"{'':<4}HA main thread during the renewals: on a CPU {r['ha_run_share']:.0%}, "
            f"runnable waiting for one {r['ha_wait_share']:.0%} of {r['ha_wall_s']:.2f} s"
        )
    return lines


def reads_line(r: dict[str, Any]) -> str:
    """What the home agent's flood steering read from each socket during ``r`` (the
    difference of two ``mip4 status`` snapshots)."""
    reads = r.get("reads") or {}
    if not reads.get("on"):
        return f"{'':<4}HA steering off ({reads.get('why', '?')})"
    return (
        f"{'':<4}HA reads: trusted socket {reads.get('read_trusted', 0):,}, general "
        f"{reads.get('read_general', 0):,}; dropped trusted {reads.get('trusted_drops', 0):,}"
        f", general {reads.get('general_drops', 0):,}; trusted sources now "
        f"{reads.get('trusted_sources', 0):,}"
    )


def sources_lines(kind: str, r: dict[str, Any]) -> list[str]:
    """Under a ``first_sources`` or ``flood_first_sources`` line (issue 13): the ratio to
    the same round's first registrations from one source (and, under the flood, to the
    many-sources ones alone), what steering read, whether every reply went to its
    request's source."""
    x = r.get("x_one_source")
    line = (
        f"{'':<4}{r.get('sources', '?')} sources from {r.get('source_base', '?')}: "
        f"x one source (same round, {float(r.get('one_source_rate') or 0):,.0f}/s): "
        + (f"{x:.2f}x" if x is not None else "-")
    )
    if kind == "flood_first_sources":
        xa = r.get("x_alone")
        line += f", x alone ({_rate_alone(r):,.0f}/s): " + (f"{xa:.2f}x" if xa is not None else "-")
    lines = [line]
    lines.append(
        f"{'':<4}nodes accepted {r.get('accepted', 0):,} of {r.get('nodes', '?')}, "
        f"sent {r.get('sent', 0):,}, replies to another address than the source "
        f"{r.get('wrong_dst', 0):,}"
    )
    if "reads" in r:
        lines.append(reads_line(r))
    if kind == "flood_first_sources":
        f = r.get("flood", {})
        lines.append(
            f"{'':<4}flood offered {float(f.get('rate', 0)):,.0f}/s ({f.get('sent', 0):,} sent), "
            f"answered with 131: {f.get('answered_131', 0):,}; HA namespace UDP "
            f"{f.get('ha_udp_InDatagrams', 0):,} in, {f.get('ha_udp_RcvbufErrors', 0):,} "
            "dropped (UdpRcvbufErrors)"
        )
    return lines


def _rate_alone(r: dict[str, Any]) -> float:
    return float(r.get("alone_rate") or 0.0)


def _rate(r: dict[str, Any] | None) -> float:
    """Accepted replies per second; under the flood, late ones (to requests the generator
    had already sent again) included: ``served_rate``."""
    if not r:
        return 0.0
    return float(r["served_rate"] if "served_rate" in r else r["rate"])


def _cpu(r: dict[str, Any] | None) -> str:
    if not r or r.get("cpu_us") is None:
        return "-"
    return f"{r['cpu_us']:,.0f} us"


def _cpu_sum(r: dict[str, Any], *keys: str) -> float | None:
    """The three processes' CPU per accepted registration: the generator's own
    (``cpu_s``) plus each of ``keys`` (per accepted, microseconds); ``None`` when one is
    missing."""
    if not r.get("accepted") or r.get("cpu_s") is None:
        return None
    parts = [r["cpu_s"] / r["accepted"] * 1e6] + [r.get(k) for k in keys]
    return None if any(p is None for p in parts) else float(sum(parts))


def ceiling_lines(fa: dict[str, Any], direct: dict[str, Any] | None, cpus: int | None) -> list[str]:
    """What the CPU the three processes spend per relayed registration (generator, FA,
    HA) allows on this host's ``cpus`` if nothing else limited the relayed path, against
    the direct path measured in the same run: a relayed rate near it is bound by CPU
    alone (the 2-core host of issue 13 runs all three processes)."""
    total = _cpu_sum(fa, "fa_cpu_us", "cpu_us")
    if not total or not cpus:
        return []
    ceiling = cpus / total * 1e6
    line = (
        f"{'':<4}CPU per relayed registration, generator + FA + HA: {total:,.0f} us;"
        f" {cpus} CPUs allow at most {ceiling:,.0f}/s"
    )
    if direct and _rate(direct):
        line += f" ({ceiling / _rate(direct):.2f}x direct)"
    return [line]


def format_report(out: dict[str, Any]) -> str:
    echo = out.get("echo")
    head = ", ".join(
        f"{k} {out[k]}"
        for k in (
            "prefix",
            "python",
            "cpus",
            "load",
            "load_after",
            "nodes",
            "duration_s",
            "sources",
            "steering",
        )
        if k in out
    )
    lines = [f"mip4 bench registrations ({head})" if head else "mip4 bench registrations", ""]
    lines.append(f"{'what':<34} {'per s':>10} {'x echo':>8} {'CPU/reply':>11}")
    lines.append(
        f"{'asyncio UDP echo (baseline)':<34} {_rate(echo):>10,.0f} {'1x':>8} {_cpu(echo):>11}"
    )
    for block in out.get("sas", []):
        lines.append(
            f"-- mip4 ha with {block['sas']} SAs: startup {block['startup_s']:.2f} s"
            + (f", shutdown {block['shutdown_s']:.2f} s" if "shutdown_s" in block else "")
            + (f", RSS {block['ha_rss_kib'] / 1024:.0f} MiB" if block.get("ha_rss_kib") else "")
        )
        for kind, label in LABELS.items():
            r = block["results"].get(kind)
            if r is None:
                continue
            ratio = _rate(r) / _rate(echo) if _rate(echo) else 0.0
            lines.append(f"{label:<34} {_rate(r):>10,.0f} {ratio:>7.3f}x {_cpu(r):>11}")
            bad = {c: n for c, n in r.get("codes", {}).items() if c not in ("0", "1")}
            if bad or r.get("timeouts"):
                lines.append(f"{'':<4}denied by code {bad}, timeouts {r.get('timeouts', 0)}")
            if kind == "flood_renew":
                lines += flood_lines(r)
            if kind in ("first", "flood_renew") and "reads" in r:
                lines.append(reads_line(r))
            if kind in ("first_sources", "flood_first_sources"):
                lines += sources_lines(kind, r)
        if "fa_renew" not in block["results"]:
            lines.append(f"{'FA-relayed':<34} {'not measured':>10}")
        else:
            fa, direct = block["results"]["fa_renew"], block["results"].get("renew")
            if direct and _rate(direct):
                lines.append(f"{'':<4}FA-relayed / direct: {_rate(fa) / _rate(direct):.2f}x")
            if fa.get("fa_cpu_us") is not None:
                lines.append(f"{'':<4}FA CPU per relayed registration: {fa['fa_cpu_us']:,.0f} us")
            k = fa.get("kernel_relayed")
            if k:  # issue 13: what the foreign agent's program relayed of them
                lines.append(
                    f"{'':<4}relayed by the FA's kernel: {k['requests']:,} requests,"
                    f" {k['replies']:,} replies ({k['general']:,} applied by the general path)"
                )
            lines += ceiling_lines(fa, direct, out.get("cpus"))
    lines.append("")
    lines.append(
        "per s: accepted replies (code 0/1) per second seen by the generator, best of the "
        "rounds; CPU/reply: the server process's CPU time / accepted replies"
    )
    return "\n".join(lines)
