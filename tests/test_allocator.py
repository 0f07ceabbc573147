"""keep_freed_memory: freed arrays are reused instead of page-faulted in again."""

import subprocess
import sys

import pytest

_CHILD = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from diffranet._allocator import keep_freed_memory
    assert keep_freed_memory()
for _ in range(3):
    np.ones((5, 1024, 1024))  # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones((5, 1024, 1024))  # 40 MiB: above the largest threshold glibc adapts to by itself (32 MiB)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode):
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_arrays_are_reused():
    # without it, every 40 MiB array is a fresh memory map: 10240 page faults each (about 500 with
    # transparent huge pages)
    assert _page_faults("default") > 20 * 200
    assert _page_faults("keep") < 100
