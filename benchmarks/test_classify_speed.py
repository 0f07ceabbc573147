"""Speed of preprocessing and of classifying raw frames (``diffranet classify``'s work per frame).

Run with ``pytest benchmarks/test_classify_speed.py``. Frames per second for a
PILATUS 6M-size frame (2527 x 2463) resampled by resolution onto the paper's
512 x 512 detector, the same frame binned and cropped (no geometry), and a
512 x 512 frame; then the whole chain with the paper's GLCM + random forest
(preprocess + features + forest), one frame at a time and in batches of 16.
"""

import time

import numpy as np
import pytest

from diffranet.classes import CLASS_NAMES
from diffranet.inference import FrameGeometry, SavedModel, preprocess
from diffranet.search.spaces import PAPER_BEST
from diffranet.training.classic import build_pipeline

PILATUS_6M = (2527, 2463)
PILATUS_GEOMETRY = FrameGeometry(0.172, 351.0, 0.9686, (1231.5, 1263.5))
SMALL = (512, 512)
SMALL_GEOMETRY = FrameGeometry(0.172, 120.0, 1.0)


def _frame(shape, seed=0):
    """Photon counts: 1 per pixel of background, 500 spots of 2000 photons, Pilatus-style gaps."""
    rng = np.random.default_rng(seed)
    frame = rng.poisson(1.0, shape).astype(np.int32)
    frame[rng.integers(0, shape[0], 500), rng.integers(0, shape[1], 500)] += 2000
    frame[195::212, :] = -1
    return frame


@pytest.fixture(scope="module")
def frames():
    return {"6M": (_frame(PILATUS_6M), PILATUS_GEOMETRY), "512": (_frame(SMALL), SMALL_GEOMETRY)}


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 40, (10, 512, 512), dtype=np.uint8)
    estimator = build_pipeline(PAPER_BEST[("glcm", "rf")], random_state=0, n_jobs=2).fit(images, np.arange(10) % 5)
    return SavedModel(estimator, CLASS_NAMES)


def _per_second(benchmark, n_frames, function, *args):
    start = time.perf_counter()
    function(*args)  # warm the geometry cache
    fallback = time.perf_counter() - start
    benchmark(function, *args)
    stats = getattr(benchmark, "stats", None)
    seconds = stats.stats.median if stats is not None else fallback
    benchmark.extra_info["frames_per_s"] = n_frames / seconds
    return n_frames / seconds


@pytest.mark.parametrize("size", ["6M", "512"])
@pytest.mark.parametrize("mode", ["resample", "bin"])
def test_preprocess(benchmark, frames, size, mode):
    frame, geometry = frames[size]
    _per_second(benchmark, 1, preprocess, frame, None, geometry if mode == "resample" else None)


@pytest.mark.parametrize("size", ["6M", "512"])
@pytest.mark.parametrize("batch", [1, 16])
def test_classify(benchmark, frames, model, size, batch):
    frame, geometry = frames[size]
    stack = [frame] * batch
    _per_second(benchmark, batch, model.classify, stack, None, geometry)


def test_resampling_costs_at_most_a_few_binnings(frames):
    """Once its mapping is cached, resampling a 6M frame is a few bincounts: within 6x of plain binning."""
    frame, geometry = frames["6M"]
    preprocess(frame, geometry=geometry)
    timings = {}
    for name, g in (("resample", geometry), ("bin", None)):
        start = time.perf_counter()
        for _ in range(3):
            preprocess(frame, geometry=g)
        timings[name] = time.perf_counter() - start
    assert timings["resample"] < 6 * timings["bin"]
