"""perf (issue 13): the C allocator of a daemon holding a million bindings.

A list of a million items (the expiry heap, a table's array) grows by asking ``realloc``
for a larger array. glibc serves a block at or above its *mmap threshold* with a mapping
of its own, and ``realloc`` of such a block moves pages (``mremap``) instead of copying
them. But the threshold is dynamic: each time a mapped block is freed, glibc raises it to
that block's size (up to 32 MiB), and later arrays below it come from the heap, where
growing one past its neighbour copies the whole array in the call that appends one item:
4-25 ms at a million items, measured last session, longer than the 10 ms the issue allows
a pause. :func:`keep_large_blocks_mapped` fixes the threshold at glibc's own starting
value, so large blocks stay mapped and grow without a copy (in process, after one large
block freed: a 3 M-item list's worst append 11-14 ms -> 0.25-2.6 ms). Blocks below it,
and Python's own small objects (its arenas are mapped by Python itself), are unchanged.

A C library other than glibc, or none reachable through :mod:`ctypes`, is left as it is.
"""

from __future__ import annotations

import ctypes

#: ``mallopt`` parameter (glibc's ``malloc.h``: ``#define M_MMAP_THRESHOLD -3``)
M_MMAP_THRESHOLD = -3
#: glibc's initial mmap threshold (``DEFAULT_MMAP_THRESHOLD_MIN``, 128 KiB), kept fixed
MMAP_THRESHOLD = 128 * 1024


def keep_large_blocks_mapped(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix the C allocator's mmap threshold at ``threshold`` bytes (glibc's ``mallopt``;
    setting it turns the dynamic adjustment off). ``True`` when the C library took it."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
