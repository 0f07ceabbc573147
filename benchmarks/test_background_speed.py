"""Speed of the amorphous background (10 um water + 5 mm air) on the DiffraNet
image (512^2, oversample 2, 1.5 A, 80 mm), as a fraction of the Bragg time of
the same geometry (300 domains, tophat, PSII cell).

Run: ``pytest benchmarks/test_background_speed.py``; each test records
``bragg_seconds`` and ``background_over_bragg`` in its extra info
(``--benchmark-columns`` or ``--benchmark-json`` show them).
"""

import time

import pytest

from diffranet.simulation.background import Background, LatticeDiffuse


def best_of(function, rounds=2):
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("compton", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_background_vs_bragg(benchmark, paper_sim, n_threads, compton):
    sim = paper_sim(n_threads=n_threads)
    background = Background(compton=compton, diffuse=LatticeDiffuse() if compton else None)
    image = benchmark(background.render, sim.detector, sim.beam, oversample=sim.oversample, n_threads=n_threads)
    assert image.min() > 0
    bragg_seconds = best_of(lambda: sim.bragg(seed=0))
    ratio = benchmark.stats.stats.min / bragg_seconds
    benchmark.extra_info["bragg_seconds"] = round(bragg_seconds, 4)
    benchmark.extra_info["background_over_bragg"] = round(ratio, 4)
    # at 2 x 2 subpixels the background must still cost less than the Bragg
    # render (the dataset preset samples it once per pixel, 4x cheaper)
    assert ratio < 1.0


@pytest.mark.parametrize("oversample", [1, 2])
def test_cached_samples_vs_computed(benchmark, paper_sim, monkeypatch, oversample):
    """The per-subpixel geometry (weights, scattering angles) cached per detector and beam
    direction, against computing it in every render, in one run on one thread."""
    from diffranet.simulation import background as background_module

    sim = paper_sim(n_threads=1)
    background = Background()
    render = lambda: background.render(sim.detector, sim.beam, oversample=oversample, n_threads=1)  # noqa: E731
    cached_image = benchmark(render)
    monkeypatch.setattr(background_module, "MAX_CACHED_SAMPLES_BYTES", 0)
    computed_seconds = min(best_of(render, rounds=5), best_of(render, rounds=5))
    assert (render() == cached_image).all()
    benchmark.extra_info["computed_seconds"] = round(computed_seconds, 4)
    benchmark.extra_info["computed_over_cached"] = round(computed_seconds / benchmark.stats.stats.min, 2)
    print(f"\noversample {oversample}: cached {benchmark.stats.stats.min * 1e3:.1f} ms, computed each render "
          f"{computed_seconds * 1e3:.1f} ms ({computed_seconds / benchmark.stats.stats.min:.2f}x)")
