"""Speed of the peak finder and of the peak-count hit finder.

Run with ``pytest benchmarks/test_peakfinder_speed.py``. Rates are frames per
second: 512 x 512 frames (DiffraNet's detector) in batches of 64, parallel over
frames, and single PILATUS 6M-size frames (2527 x 2463), parallel within the
frame. The hit finder must classify at least 500 frames/s of 512 x 512 on two
cores.
"""


import numpy as np
import pytest

from diffranet import PeakFinderHitFinder
from diffranet.peaks import count_peaks

THREADS = [1, 2]
N_FRAMES = 64
REQUIRED_RATE = 500.0  # 512 x 512 frames/s on two cores


def _frames(n, shape, n_spots, seed=0):
    """Poisson frames: a radial background (water-ring-like) with Gaussian Bragg spots."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    yy, xx = np.mgrid[:rows, :cols]
    r = np.hypot(xx - cols / 2, yy - rows / 2) / max(rows, cols)
    background = 300.0 * np.exp(-((r - 0.3) / 0.15) ** 2) + 50.0
    frames = np.empty((n, rows, cols), dtype=np.float32)
    for i in range(n):
        expected = background.copy()
        for x, y, flux in zip(rng.uniform(0, cols, n_spots), rng.uniform(0, rows, n_spots),
                              rng.uniform(500, 20000, n_spots)):
            r0, c0 = int(y), int(x)
            sl = np.s_[max(r0 - 3, 0):r0 + 4, max(c0 - 3, 0):c0 + 4]
            expected[sl] += flux / (2 * np.pi) * np.exp(-((xx[sl] - x) ** 2 + (yy[sl] - y) ** 2) / 2)
        frames[i] = rng.poisson(expected)
    return frames


@pytest.fixture(scope="module")
def frames_512():
    return _frames(N_FRAMES, (512, 512), 100)


@pytest.fixture(scope="module")
def frame_6m():
    return _frames(1, (2527, 2463), 1000)


@pytest.mark.parametrize("n_threads", THREADS)
def test_find_peaks_512(frames_per_second, frames_512, n_threads):
    frames_per_second(N_FRAMES, lambda f: count_peaks(f, n_threads=n_threads), frames_512)


@pytest.mark.parametrize("n_threads", THREADS)
def test_find_peaks_pilatus_6m(frames_per_second, frame_6m, n_threads):
    frames_per_second(1, lambda f: count_peaks(f, n_threads=n_threads), frame_6m)


def test_hit_finder_classifies_500_frames_per_second(frames_per_second, frames_512):
    """PeakFinderHitFinder.predict on 8-bit square-root frames (the dataset's), two threads."""
    grey = np.rint(np.sqrt(np.clip(frames_512, 0, 65025))).astype(np.uint8)
    finder = PeakFinderHitFinder(min_peaks=10, n_jobs=2).fit(grey, np.ones(N_FRAMES, dtype=int))
    rate = frames_per_second(N_FRAMES, finder.predict, grey)
    assert rate >= REQUIRED_RATE
