"""The text report of ``mip4 bench registrations``: rates, ratios against the echo
baseline of the same run, CPU per registration, startup and shutdown of the home agent."""

from __future__ import annotations

from typing import Any

LABELS = {
    "renew": "renewals (binding exists)",
    "first": "first registrations",
    "fa_renew": "FA-relayed renewals",
}


def _rate(r: dict[str, Any] | None) -> float:
    return float(r["rate"]) if r else 0.0


def _cpu(r: dict[str, Any] | None) -> str:
    if not r or r.get("cpu_us") is None:
        return "-"
    return f"{r['cpu_us']:,.0f} us"


def format_report(out: dict[str, Any]) -> str:
    echo = out.get("echo")
    head = ", ".join(
        f"{k} {out[k]}"
        for k in ("prefix", "python", "cpus", "load", "load_after", "nodes", "duration_s")
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
        if "fa_renew" not in block["results"]:
            lines.append(f"{'FA-relayed':<34} {'not measured':>10}")
        else:
            fa, direct = block["results"]["fa_renew"], block["results"].get("renew")
            if direct and _rate(direct):
                lines.append(f"{'':<4}FA-relayed / direct: {_rate(fa) / _rate(direct):.2f}x")
            if fa.get("fa_cpu_us") is not None:
                lines.append(f"{'':<4}FA CPU per relayed registration: {fa['fa_cpu_us']:,.0f} us")
    lines.append("")
    lines.append(
        "per s: accepted replies (code 0/1) per second seen by the generator, best of the "
        "rounds; CPU/reply: the server process's CPU time / accepted replies"
    )
    return "\n".join(lines)
