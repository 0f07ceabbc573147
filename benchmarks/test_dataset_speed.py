"""Speed of the dataset generator on the ``diffranet`` preset (the paper's Appendix A).

Renders 200 images of the paper's class mix (the first 200 of the test split,
blank 16.4 %, no-crystal 25.9 %, weak/good/strong 57.7 %) into shards, in one
process and on a two-worker Dask LocalCluster, and reports images per second
and the projected time for the paper's 25,000 images (goal: at most 60 min on
2 cores). Run: ``pytest benchmarks/test_dataset_speed.py``.
"""

import pytest

from diffranet.dataset import generate_dataset

N_IMAGES = 200
PAPER_TOTAL = 25_000


@pytest.mark.parametrize("workers", [1, 2])
def test_diffranet_preset(benchmark, tmp_path_factory, workers):
    def run():
        out = tmp_path_factory.mktemp(f"bench{workers}")
        return generate_dataset(out, preset="diffranet", n_train=0, n_val=0, n_test=N_IMAGES, seed=0,
                                workers=workers, shard_size=100, progress=False)

    index = benchmark.pedantic(run, rounds=1, iterations=1)
    assert index["splits"]["test"]["n_images"] == N_IMAGES
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info["images_per_second"] = N_IMAGES / seconds
    benchmark.extra_info["projected_minutes_25000"] = PAPER_TOTAL * seconds / N_IMAGES / 60
