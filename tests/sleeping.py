"""Where a process sleeps: the benchmarks' senders and sinks must wait in a timer nap, never
asleep on their socket (a sleeper there is woken by each datagram's sender, whose CPU pays
for it: a cost of the instrument charged to what is measured)."""

from __future__ import annotations

import time


def where_it_sleeps(pid: int, looks: int = 20) -> list[str]:
    """The kernel functions ``pid`` was seen asleep in (``/proc/PID/wchan``), looked at
    while it sleeps: a task that is running or waiting for a CPU has no wchan ("0"),
    which on a busy machine is most of the looks. Bounded: 1,000 looks, 5 s, ``looks``
    sleeping ones suffice."""
    seen: list[str] = []
    deadline = time.monotonic() + 5.0
    for _ in range(1000):
        if len(seen) >= looks or time.monotonic() > deadline:
            break
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read().strip()
        if state == "S" and wchan != "0":
            seen.append(wchan)
        time.sleep(0.005)
    return seen
