"""Keep freed memory in the process heap (glibc), for processes that redo the same work many times.

glibc serves allocations above its mmap threshold (128 KiB, adaptive up to
32 MiB) from fresh memory maps and returns them to the kernel when freed, and
trims the top of the heap when more than twice that threshold is free. A
process that renders or classifies one image after another then page-faults
every image's arrays in again (a 512 x 512 float64 array is 512 pages), which
costs more than some of the work itself. :func:`keep_freed_memory` raises both
limits, so freed arrays are reused: the resident size stays at the peak
working set of one task, and stays flat.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Arrays below this size come from (and return to) the heap rather than fresh memory maps.
_HEAP_UP_TO_BYTES = 64 * 1024 * 1024
#: Free memory at the top of the heap kept rather than returned to the kernel.
_KEEP_FREE_BYTES = 512 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def keep_freed_memory():
    """Keep freed arrays of up to 64 MiB in the heap for reuse (glibc only; once per process).

    Call it only in a process this package owns (a worker), never in a user's
    interpreter: it changes the allocator of the whole process.

    Returns
    -------
    bool
        True if the allocator took the settings (False on other C libraries:
        nothing changes, the work only runs slower).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _HEAP_UP_TO_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_FREE_BYTES))
