"""A PNG of a run: registrations per second, binding table, handoff latency.

matplotlib is a development dependency, imported only here and only when a plot is asked
for; :func:`plot` raises :class:`PlotUnavailable` (saying so) when it is missing.
"""

from __future__ import annotations

from pathlib import Path

from mip4.errors import Mip4Error

from .report import Report


class PlotUnavailable(Mip4Error, RuntimeError):
    """matplotlib is not installed."""


def plot(report: Report, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise PlotUnavailable(
            "mip4 sim: --plot needs matplotlib (a development dependency: pip install matplotlib)"
        ) from e
    fig, (a, b, c) = plt.subplots(3, 1, figsize=(9, 10))
    s = report.scenario
    fig.suptitle(
        f"mip4 sim: {s['nodes']} nodes, {s['foreign_agents']} FAs, {s['home_agents']} HAs, "
        f"seed {s['seed']}"
    )
    a.plot(report.home_agent_accepts_per_second, lw=0.7, label="accepted by home agents")
    a.plot(report.registrations_per_second, lw=0.7, label="accepted at nodes")
    a.set_xlabel("simulated second")
    a.set_ylabel("registrations / s")
    a.legend()
    t = [x[0] for x in report.bindings_over_time]
    b.plot(t, [x[1] for x in report.bindings_over_time], label="bindings (home agents)")
    b.plot(t, [x[2] for x in report.bindings_over_time], label="visitors (foreign agents)")
    b.set_xlabel("simulated second")
    b.set_ylabel("entries")
    b.legend()
    if report.handoff_samples:
        c.hist(report.handoff_samples, bins=50)
    c.set_xlabel("handoff latency, link change to accepted registration (s)")
    c.set_ylabel("handoffs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
