"""perf (issue 13): with :func:`keep_large_blocks_mapped` a large block stays a mapping of
its own after a larger one was freed (so growing it moves pages, no copy); without it,
glibc's dynamic threshold puts the same block on the heap (the control: what the daemon
avoids). Each case runs in a child process, so this process's allocator is not changed."""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import ctypes, sys
from mip4.daemon.allocator import keep_large_blocks_mapped
if sys.argv[1] == "tuned":
    assert keep_large_blocks_mapped()
freed = bytearray(16 << 20)  # a mapped block, freed: glibc raises its threshold to 16 MiB
del freed
block = bytearray(1 << 20)  # what an array of a large table is
address = ctypes.addressof((ctypes.c_char * len(block)).from_buffer(block))
with open("/proc/self/maps") as maps:
    for line in maps:
        span, rest = line.split(" ", 1)
        lo, hi = (int(x, 16) for x in span.split("-"))
        if lo <= address < hi:
            print("heap" if rest.rstrip().endswith("[heap]") else "mapping", hi - lo)
            break
"""


def _where(case: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, case], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


def test_a_large_block_stays_a_mapping_of_its_own_after_a_larger_one_was_freed() -> None:
    assert _where("default")[0] == "heap"  # glibc's dynamic threshold: the copy case
    kind, size = _where("tuned")
    assert kind == "mapping" and size >= 1 << 20
