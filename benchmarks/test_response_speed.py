"""Speed of the detector response on the DiffraNet image.

The expected photons are the paper's shot: the Bragg image of the paper's
set-up (``PRESETS["diffranet"]`` with uniform structure factors: 512^2 pixels
of 172 um at 80 mm, PSII cell, 9x4x3 cells, 300 domains, oversample 2) scaled by 2.7e7 as in the paper (a 0.1 um crystal
standing for a 30 um one), plus 10 um of water and 5 mm of air (about 700
photons per pixel). Each round records a new image (new seed) through the
paper's CCD chain and converts it to 8 bits.

Run: ``pytest benchmarks/test_response_speed.py -s``. Besides the timing table,
each test prints and stores in ``extra_info`` the images per second, the time of
each stage (median over 10 images) and the ratio of the whole chain to the Bragg
render of the same image with the same number of threads.
"""

import itertools
import time

import numpy as np
import pytest

from diffranet import random_orientation
from diffranet.dataset.presets import PRESETS
from diffranet.simulation.background import Background
from diffranet.simulation.response import PixelArrayResponse

PAPER = PRESETS["diffranet"].with_(structure_factors=None,  # uniform F: the table is not needed here
                                   crystal=PRESETS["diffranet"].crystal.with_(default_F=100.0))
PAPER_VOLUME_SCALE = PAPER.max_volume_scale  # (30 um / 0.1 um)^3, Appendix A


def bragg_simulator(n_threads):
    return PAPER.simulator(random_orientation(0), background=False, response=False, n_threads=n_threads)


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@pytest.fixture(scope="module")
def paper_shot():
    sim = bragg_simulator(n_threads=None)
    bragg = sim.bragg(seed=0)
    background = Background().render(sim.detector, sim.beam, oversample=2)
    return (bragg * PAPER_VOLUME_SCALE + background).astype(np.float32)


@pytest.fixture(scope="module")
def bragg_seconds():
    """Median Bragg render time of the paper image, per thread count (measured once)."""
    cache = {}

    def measure(n_threads):
        if n_threads not in cache:
            sim = bragg_simulator(n_threads)
            sim.bragg(seed=0)
            cache[n_threads] = median_seconds(lambda: sim.bragg(seed=0), repeats=3)
        return cache[n_threads]

    return measure


def report(benchmark, label, stage_seconds, bragg):
    total = benchmark.stats.stats.median
    benchmark.extra_info["images_per_s"] = 1.0 / total
    benchmark.extra_info["bragg_s"] = bragg
    benchmark.extra_info["response_over_bragg"] = total / bragg
    for stage, seconds in stage_seconds.items():
        benchmark.extra_info[f"{stage}_s"] = seconds
    stages = ", ".join(f"{stage} {1e3 * s:.1f} ms" for stage, s in stage_seconds.items())
    print(f"\n{label}: {1.0 / total:.1f} images/s ({1e3 * total:.1f} ms: {stages}); "
          f"Bragg {1e3 * bragg:.0f} ms, response / Bragg = {total / bragg:.3f}")


@pytest.mark.parametrize("n_threads", [1, 2])
def test_paper_ccd_chain(benchmark, paper_shot, bragg_seconds, n_threads):
    ccd = PAPER.response()
    seeds = itertools.count()

    def record():
        return ccd.to_8bit(ccd.apply(paper_shot, 0.172, next(seeds), n_threads=n_threads))

    record()  # builds the cached PSF spectrum and calibration map
    image8 = benchmark(record)
    assert image8.dtype == np.uint8 and image8.shape == (512, 512)

    stages = {name: [] for name in ("poisson", "psf", "readout", "to_8bit")}
    for seed in range(10):
        counts, timings = ccd.apply(paper_shot, 0.172, seed, n_threads=n_threads, return_timings=True)
        for name in ("poisson", "psf", "readout"):
            stages[name].append(timings[name])
        stages["to_8bit"].append(median_seconds(lambda: ccd.to_8bit(counts), repeats=1))
    bragg = bragg_seconds(n_threads)
    report(benchmark, f"paper CCD chain, {n_threads} thread(s)",
           {name: float(np.median(values)) for name, values in stages.items()}, bragg)
    # the detector must not dominate the image's cost
    assert benchmark.stats.stats.median < 0.5 * bragg


@pytest.mark.parametrize("n_threads", [1, 2])
def test_pixel_array(benchmark, paper_shot, bragg_seconds, n_threads):
    pad = PixelArrayResponse(module_shape=(195, 487), gap_px=(17, 7))
    seeds = itertools.count()

    def record():
        return pad.to_8bit(pad.apply(paper_shot, 0.172, next(seeds), n_threads=n_threads))

    image8 = benchmark(record)
    assert image8.dtype == np.uint8
    poisson = []
    for seed in range(10):
        _, timings = pad.apply(paper_shot, 0.172, seed, n_threads=n_threads, return_timings=True)
        poisson.append(timings["poisson"])
    report(benchmark, f"pixel array, {n_threads} thread(s)", {"poisson": float(np.median(poisson))},
           bragg_seconds(n_threads))
