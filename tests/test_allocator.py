"""Process-wide settings: freed memory kept in the heap, passive OpenMP waits, start-up objects frozen."""

import ctypes
import json
import subprocess
import sys

import pytest

_CHILD = """
import ctypes, ctypes.util, json, sys
import numpy as np

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    from diffranet._allocator import keep_freed_memory
    assert keep_freed_memory()
before = libc.mallinfo2()  # what imports mapped already is not the array's
a = np.ones((5, 1024, 1024))  # 40 MiB: above the largest threshold glibc adapts to by itself (32 MiB)
held = libc.mallinfo2()
del a
freed = libc.mallinfo2()
print(json.dumps({"mapped_while_held": held.hblks - before.hblks, "heap_free_after": freed.fordblks}))
"""


def _allocator_state(mode):
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _has_mallinfo2():
    try:
        ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _has_mallinfo2(), reason="glibc >= 2.33's allocator")
def test_large_arrays_come_from_the_heap_and_stay_there():
    default, keep = _allocator_state("default"), _allocator_state("keep")
    # by default the 40 MiB array is a memory map of its own, unmapped when freed
    assert default["mapped_while_held"] == 1
    # with the setting it is heap memory, kept (free, for reuse) after it is freed
    assert keep["mapped_while_held"] == 0
    assert keep["heap_free_after"] >= 40 * 1024 * 1024 > default["heap_free_after"]


class TestPassiveOpenMPWait:
    def test_set_unless_the_environment_names_a_policy(self, monkeypatch):
        from diffranet._allocator import passive_openmp_wait

        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        assert passive_openmp_wait() == "PASSIVE"
        import os

        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
        monkeypatch.setenv("OMP_WAIT_POLICY", "active")
        assert passive_openmp_wait() == "active"

    def test_the_stream_command_sets_it_before_any_openmp_runtime_loads(self):
        """`diffranet stream` sets it in run(), so nothing its module imports may load an OpenMP runtime."""
        child = ("import diffranet.cli.stream\n"
                 "print(any('gomp' in line or 'libomp' in line for line in open('/proc/self/maps')))")
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "False"


_FREEZE_CHILD = """
import gc, json, time
import diffranet.inference, torch  # noqa: F401  (the libraries a service has loaded)
from diffranet._allocator import freeze_loaded_objects

def full_collection_ms():
    start = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - start) * 1e3

before = min(full_collection_ms() for _ in range(3))
frozen = freeze_loaded_objects()
after = min(full_collection_ms() for _ in range(3))
print(json.dumps({"frozen": frozen, "before_ms": before, "after_ms": after}))
"""


def test_frozen_start_up_objects_leave_the_collections_walks():
    out = subprocess.run([sys.executable, "-c", _FREEZE_CHILD], capture_output=True, text=True, check=True)
    state = json.loads(out.stdout)
    assert state["frozen"] > 50_000  # torch alone makes more
    # a full collection walks only what was made since: many times faster
    assert state["after_ms"] * 10 < state["before_ms"]
