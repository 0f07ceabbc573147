"""Speed of the Bragg renderers on the DiffraNet image (512^2, oversample 2,
300 domains of 0.5 deg, tophat, PSII cell, N 9x4x3, 1.5 A, 80 mm).

The reference point is the nanoBragg C program (OpenMP), about 2.7 s per such
image on a 2-core machine. Run: ``pytest benchmarks/test_bragg_speed.py``; the
per-pixel loop of the same image, timed in the same run, shows the speed-up of
the reflection-centric algorithm as a ratio.
"""

import pytest


@pytest.mark.parametrize("n_threads", [1, 2])
def test_reflection_renderer(benchmark, paper_sim, n_threads):
    sim = paper_sim(n_threads=n_threads)
    image, stats = benchmark(sim.bragg, seed=0, return_stats=True)
    assert image.max() > 0
    benchmark.extra_info["spots"] = stats["spots"]
    benchmark.extra_info["subpixels_tested"] = stats["subpixels_tested"]


@pytest.mark.parametrize("n_threads", [1, 2])
def test_pixel_loop_same_image(benchmark, paper_sim, n_threads):
    sim = paper_sim(n_threads=n_threads)
    image = benchmark.pedantic(sim.bragg, kwargs={"seed": 0, "method": "pixel"}, rounds=2, iterations=1)
    assert image.max() > 0


@pytest.mark.parametrize("n_threads", [1, 2])
def test_sinc_30_domains(benchmark, paper_sim, n_threads):
    sim = paper_sim(n_threads=n_threads, spot_shape="sinc", mosaic_domains=30)
    image = benchmark.pedantic(sim.bragg, kwargs={"seed": 0}, rounds=2, iterations=1)
    assert image.max() > 0
