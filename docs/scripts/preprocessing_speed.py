"""Time preprocessing of one frame: resample by resolution (mapping cached), bin and crop, table look-up.

Run as ``python docs/scripts/preprocessing_speed.py``; prints the median of a few calls per
stage, for the frames of ``benchmarks/test_classify_speed.py`` (a PILATUS 6M-size frame,
2527 x 2463, and a 512 x 512 frame) onto the paper's 512 x 512 training detector, and for a
16-bit 512 x 512 frame that needs no resampling (the one-table-look-up shortcut).
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from diffranet.inference import preprocess

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from test_classify_speed import PILATUS_6M, PILATUS_GEOMETRY, SMALL, SMALL_GEOMETRY, _frame  # noqa: E402

REPEATS = 7


def median_seconds(function):
    function()  # builds and caches the resampling mapping
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    for shape, geometry in ((PILATUS_6M, PILATUS_GEOMETRY), (SMALL, SMALL_GEOMETRY)):
        counts = _frame(shape)
        resample = median_seconds(lambda: preprocess(counts, geometry=geometry))
        binned = median_seconds(lambda: preprocess(counts))
        print(f"{shape[0]} x {shape[1]}: resample by resolution {1e3 * resample:.0f} ms, "
              f"bin and crop {1e3 * binned:.0f} ms")
    counts16 = np.random.default_rng(0).poisson(5.0, SMALL).astype(np.uint16)
    print(f"512 x 512 uint16, no resampling: table look-up {1e3 * median_seconds(lambda: preprocess(counts16)):.2f} ms")
