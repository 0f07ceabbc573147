"""Speed of the Bragg renderers on the DiffraNet image (512^2, oversample 2,
300 domains of 0.5 deg, tophat, PSII cell, N 9x4x3, 1.5 A, 80 mm).

Run: ``pytest benchmarks/test_bragg_speed.py -s``. ``test_paper_image_ratios``
times the reflection renderer, the per-pixel loop and (when a ``nanoBragg``
binary is on ``PATH``) the nanoBragg C program on the same image in the same
run and reports the ratios, which stay meaningful on a busy machine where the
absolute times do not.
"""

import shutil
import subprocess
import time

import pytest


def _nanobragg_seconds(tmp_path):
    """nanoBragg on the same image (expected photons only, no noise image)."""
    command = ["nanoBragg", "-cell", "117", "223", "310", "90", "90", "90", "-Na", "9", "-Nb", "4", "-Nc", "3",
               "-default_F", "100", "-lambda", "1.5", "-distance", "80", "-pixel", "0.172", "-detpixels", "512",
               "-oversample", "2", "-mosaic", "0.5", "-mosaic_domains", "300", "-xtal_shape", "tophat",
               "-fluence", str(1e12 / (30e-6) ** 2), "-floatfile", str(tmp_path / "nanobragg.bin"), "-nonoise"]
    start = time.perf_counter()
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
    return time.perf_counter() - start


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


@pytest.mark.parametrize("n_threads", [1, 2])
def test_paper_image_ratios(benchmark, paper_sim, tmp_path, n_threads):
    """Reflection renderer vs per-pixel loop vs nanoBragg, timed in one run."""
    sim = paper_sim(n_threads=n_threads)
    sim.bragg(seed=0)  # warm the direction cache
    reflection = benchmark.pedantic(sim.bragg, kwargs={"seed": 0}, rounds=5, iterations=1)
    assert reflection.max() > 0
    reflection_s = benchmark.stats.stats.min
    start = time.perf_counter()
    sim.bragg(seed=0, method="pixel")
    pixel_s = time.perf_counter() - start
    info = {"reflection_s": reflection_s, "pixel_loop_s": pixel_s, "pixel_loop_over_reflection": pixel_s / reflection_s}
    if shutil.which("nanoBragg") is not None and n_threads == 2:
        nanobragg_s = _nanobragg_seconds(tmp_path)
        info.update(nanobragg_s=nanobragg_s, nanobragg_over_reflection=nanobragg_s / reflection_s)
    benchmark.extra_info.update(info)
    print(f"\n{n_threads} thread(s): " + ", ".join(f"{k} {v:.3g}" for k, v in info.items()))
