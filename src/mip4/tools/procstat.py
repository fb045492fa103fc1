"""The machine's CPU time from ``/proc/stat``, for the benchmarks (Linux)."""

from __future__ import annotations

#: the first line's columns: user nice system idle iowait irq softirq steal (guest time is
#: counted in user already, so the columns after steal are left out of any sum)
USER, NICE, SYSTEM, IDLE, IOWAIT, IRQ, SOFTIRQ, STEAL = range(8)


def cpu_ticks() -> list[int]:
    """The machine's CPU time since boot in clock ticks, all CPUs together, column by column
    (``USER`` .. ``STEAL``); ``OSError`` where ``/proc/stat`` cannot be read."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    if len(fields) < 9 or fields[0] != "cpu":
        raise OSError(f"/proc/stat: not the line of all CPUs: {' '.join(fields[:3])!r}")
    return [int(x) for x in fields[1:9]]
