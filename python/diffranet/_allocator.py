"""Process-wide settings for processes that redo the same work many times (the package's own processes only).

**Start-up objects out of the garbage collector's walks.** A full cyclic
collection walks every container object Python tracks: about 270,000 once
torch, scikit-learn and a model are loaded, 120 ms per collection here. A
service that makes a few objects per frame that live a while (records,
queued frames) runs one every so many frames, about a millisecond per
frame on average for a JUNGFRAU 4M series. :func:`freeze_loaded_objects`
moves the objects that exist to the collector's permanent generation
(:func:`gc.freeze`), once the model is loaded: collections then walk only
what the frames made.

**Freed memory kept in the process heap (glibc).**

glibc serves allocations above its mmap threshold (128 KiB, adaptive up to
32 MiB) from fresh memory maps and returns them to the kernel when freed, and
trims the top of the heap when more than twice that threshold is free. A
process that renders or classifies one image after another then page-faults
every image's arrays in again (a 512 x 512 float64 array is 512 pages), which
costs more than some of the work itself. :func:`keep_freed_memory` raises both
limits, so freed arrays are reused: the resident size stays at the peak
working set of one task, and stays flat.

**Idle OpenMP threads sleep.** OpenMP runtimes (the core's, torch's) keep the
threads of a parallel region spinning for a while after it ends, waiting for
the next one. In a service that classifies one frame after another beside a
receiving thread (and, on the same machine, the sender), that spinning takes
the cores the others need: 10 to 20 CPU ms of each EIGER 16M frame here.
:func:`passive_openmp_wait` sets ``OMP_WAIT_POLICY=PASSIVE``, which every
OpenMP runtime reads when it loads, so it must run before any of them does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os

__all__ = ["freeze_loaded_objects", "keep_freed_memory", "passive_openmp_wait"]

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


def passive_openmp_wait():
    """Idle OpenMP threads sleep rather than spin, in the OpenMP runtimes loaded from now on.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already names a
    policy. Call it first thing in a process this package owns, before the
    compiled core, scikit-learn or torch are imported: a runtime already
    loaded keeps its policy.

    Returns
    -------
    str
        The policy in the environment now.
    """
    return os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def freeze_loaded_objects():
    """Leave every object that exists now out of later garbage collections (:func:`gc.freeze`).

    Call it in a process this package owns once its libraries and model are
    loaded (they live as long as the process). Frozen objects are still freed
    when their last reference goes; only reference cycles among them are
    never collected.

    Returns
    -------
    int
        Objects now frozen.
    """
    gc.freeze()
    return gc.get_freeze_count()
