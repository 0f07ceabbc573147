"""Shared fixtures for the benchmarks (run with `pytest benchmarks/`)."""

import time

import pytest

from diffranet._allocator import passive_openmp_wait

passive_openmp_wait()  # as `diffranet stream` sets it, before the core (and its OpenMP runtime) loads

from diffranet import random_orientation
from diffranet.dataset.presets import PRESETS

#: The paper's set-up with uniform structure factors (default_F 100): the renderers' speed does not
#: depend on the amplitudes, and the table need not be built.
PAPER_UNIFORM_F = PRESETS["diffranet"].with_(structure_factors=None,
                                              crystal=PRESETS["diffranet"].crystal.with_(default_F=100.0))


@pytest.fixture(scope="session")
def paper_orientation():
    return random_orientation(0)


@pytest.fixture
def paper_sim(paper_orientation):
    """Factory for the Bragg-only simulator of the paper's set-up; keywords change its crystal."""

    def make(n_threads=None, **crystal_changes):
        preset = PAPER_UNIFORM_F.with_(crystal=PAPER_UNIFORM_F.crystal.with_(**crystal_changes))
        return preset.simulator(paper_orientation, background=False, response=False, n_threads=n_threads)

    return make


@pytest.fixture
def frames_per_second(benchmark):
    """``measure(n_frames, function, *args)``: benchmark the call, record and return frames per second.

    The median of the benchmark's rounds; with benchmarks disabled (``--benchmark-disable``), one timed call.
    """

    def measure(n_frames, function, *args):
        start = time.perf_counter()
        function(*args)
        fallback = time.perf_counter() - start
        benchmark(function, *args)
        stats = getattr(benchmark, "stats", None)
        rate = n_frames / (stats.stats.median if stats is not None else fallback)
        benchmark.extra_info["frames_per_s"] = rate
        return rate

    return measure
