"""Whole paper shots per second: Bragg + water + air + the paper's CCD + 8 bit.

The DiffraNet image of the paper's Appendix A (512^2 pixels of 172 um at 80 mm,
1.5 A, 1e12 photons in 30 um, PSII crystal 9x4x3 cells x 300 domains of 0.5 deg,
0.1 um scaled by 2.7e7, 10 um water, 5 mm air, fiber-coupled CCD), each shot a
new orientation and seed. Two ways to use 2 cores:

- ``test_shot_threads``: one process, the core's OpenMP threads;
- ``test_shots_two_processes``: two single-threaded worker processes, as the
  dataset generator runs.

Run: ``pytest benchmarks/test_shot_speed.py -s``; ``extra_info`` holds images/s,
the time of each part (Bragg, background, detector) of one shot, and the peak
resident memory (RSS) of each worker process.
"""

import resource
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from diffranet import StructureFactors, random_orientation
from diffranet.dataset.presets import PRESETS

PAPER = PRESETS["diffranet"]

SHOTS = 8


def shot(seed, n_threads=None, sf=None):
    sim = PAPER.simulator(random_orientation(seed), sf, volume_scale=PAPER.max_volume_scale, n_threads=n_threads)
    return sim.simulate(seed=seed).image8


def peak_rss_mb():
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def shots(seeds, n_threads=1):
    sf = StructureFactors.default_protein()
    start = time.process_time()
    sums = [int(shot(seed, n_threads, sf).sum()) for seed in seeds]
    return sums, peak_rss_mb(), time.process_time() - start


def part_times(n_threads):
    sim = PAPER.simulator(random_orientation(0), StructureFactors.default_protein(),
                          volume_scale=PAPER.max_volume_scale, n_threads=n_threads)
    sim.simulate(seed=0)  # warm caches
    times = {}
    start = time.perf_counter()
    expected = sim.bragg(seed=1)
    times["bragg_s"] = time.perf_counter() - start
    start = time.perf_counter()
    expected = expected + sim.background_image()
    times["background_s"] = time.perf_counter() - start
    start = time.perf_counter()
    counts = sim.response.apply(expected, pixel_size_mm=0.172, seed=1, n_threads=n_threads)
    sim.response.to_8bit(counts)
    times["detector_s"] = time.perf_counter() - start
    return times


@pytest.mark.parametrize("n_threads", [1, 2])
def test_shot_threads(benchmark, n_threads):
    sf = StructureFactors.default_protein()
    seeds = iter(range(10**6))
    image = benchmark.pedantic(lambda: shot(next(seeds), n_threads, sf), rounds=SHOTS, iterations=1,
                               warmup_rounds=1)
    assert image.max() > 0
    benchmark.extra_info["images_per_s"] = 1.0 / benchmark.stats.stats.mean
    benchmark.extra_info.update(part_times(n_threads))
    benchmark.extra_info["peak_rss_mb"] = peak_rss_mb()
    print(f"\n{n_threads} thread(s): {benchmark.extra_info}")


def test_shots_two_processes(benchmark):
    StructureFactors.default_protein()  # build the cache before the workers start
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(shots, [[0], [1]]))  # start the workers and load their tables

        def run():
            return list(pool.map(shots, [list(range(2, 2 + SHOTS, 2)), list(range(3, 3 + SHOTS, 2))]))

        results = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["images_per_s"] = SHOTS / benchmark.stats.stats.mean
    benchmark.extra_info["worker_peak_rss_mb"] = max(rss for _, rss, _ in results)
    # CPU seconds per shot in the workers: with two free cores, 2 / this is the shots per second
    benchmark.extra_info["worker_cpu_s_per_shot"] = sum(cpu for _, _, cpu in results) / SHOTS
    print(f"\ntwo single-threaded processes: {benchmark.extra_info['images_per_s']:.1f} images/s, "
          f"worker CPU {benchmark.extra_info['worker_cpu_s_per_shot']:.3f} s per shot, "
          f"worker peak RSS {benchmark.extra_info['worker_peak_rss_mb']:.0f} MB")
