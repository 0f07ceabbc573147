"""Speed of the feature extractors and of the fastest classic pipeline.

Run with ``pytest benchmarks/test_features_speed.py``. Rates are in images per
second of 512 x 512 pixels; the GLCM kernel is compared with scikit-image as a
ratio, and the GLCM + RF pipeline must classify at least 200 images/s on two
cores.
"""

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from diffranet.features import GLCM_PROPERTIES, GLCMExtractor, LBPExtractor
from diffranet.search.spaces import PAPER_BEST
from diffranet.training import build_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "features"))
from synthetic import synthetic_images  # noqa: E402

N_IMAGES = 32
SIZE = 512
# The paper's best GLCM (Table 3, RF): 4 distances x 2 angles x 6 properties.
DISTANCES, ANGLES = [1, 2, 5, 8], [45, 135]
THREADS = [1, 2]
REQUIRED_RATE = 200.0  # images/s on two cores, for the fastest pipeline


@pytest.fixture(scope="module")
def images():
    """32 sqrt-compressed 512 x 512 images: 4 of each class, repeated."""
    X, _ = synthetic_images(range(5), 1, size=SIZE, seed=0)
    return np.ascontiguousarray(np.resize(X, (N_IMAGES, SIZE, SIZE)))


def _rate(benchmark, n_images, seconds_fallback):
    """Images/s from the benchmark's median, or from a plain timing when benchmarks are disabled."""
    stats = getattr(benchmark, "stats", None)
    seconds = stats.stats.median if stats is not None else seconds_fallback
    return n_images / seconds


def _timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def _skimage_glcm(image):
    glcm = graycomatrix(image, DISTANCES, np.deg2rad(ANGLES), 256)
    return [graycoprops(glcm, p) for p in GLCM_PROPERTIES]


@pytest.mark.parametrize("n_jobs", THREADS)
def test_glcm(benchmark, images, n_jobs):
    glcm = GLCMExtractor(distances=DISTANCES, angles=ANGLES, n_jobs=n_jobs).fit(images[:1])
    _, seconds = _timed(glcm.transform, images)
    benchmark.extra_info["images"] = N_IMAGES
    benchmark(glcm.transform, images)
    benchmark.extra_info["images_per_s"] = _rate(benchmark, N_IMAGES, seconds)


def test_glcm_speedup_over_skimage(images):
    """The compiled GLCM on one thread against skimage graycomatrix + graycoprops."""
    glcm = GLCMExtractor(distances=DISTANCES, angles=ANGLES, n_jobs=1).fit(images[:1])
    _, ours = _timed(glcm.transform, images[:8])
    _, reference = _timed(lambda block: [_skimage_glcm(im) for im in block], images[:8])
    assert reference / ours > 5.0


@pytest.mark.parametrize("n_jobs", THREADS)
@pytest.mark.parametrize("n_points, radius", [(8, 1), (24, 3)])
def test_lbp(benchmark, images, n_points, radius, n_jobs):
    lbp = LBPExtractor(n_points=n_points, radius=radius, n_jobs=n_jobs).fit(images[:1])
    benchmark.extra_info["images"] = 8
    benchmark.pedantic(lbp.transform, args=(images[:8],), rounds=2)


def test_glcm_rf_pipeline_classifies_200_images_per_second(benchmark, images):
    """The paper's GLCM + RF configuration (100 trees, depth 20), predicting on two cores."""
    rng = np.random.default_rng(0)
    labels = np.arange(N_IMAGES) % 5
    model = build_pipeline(PAPER_BEST[("glcm", "rf")], random_state=0, n_jobs=2)
    model.fit(images, labels)
    batch = images[rng.permutation(N_IMAGES)]
    _, seconds = _timed(model.predict, batch)
    benchmark.extra_info["images"] = N_IMAGES
    benchmark(model.predict, batch)
    rate = _rate(benchmark, N_IMAGES, seconds)
    benchmark.extra_info["images_per_s"] = rate
    assert rate >= REQUIRED_RATE
