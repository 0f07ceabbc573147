import pytest

from diffranet.dataset import generate_dataset, get_preset


@pytest.fixture(scope="session")
def quick():
    """The quick preset: the diffranet preset's code path on a 64 x 64 detector."""
    return get_preset("quick")


@pytest.fixture(scope="session")
def tiny(quick):
    """The quick preset with 4 mosaic domains, for the fastest end-to-end runs."""
    return quick.with_(name="tiny", crystal=quick.crystal.with_(mosaic_domains=4))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory, tiny):
    """A generated dataset: 30 train, 10 val, 20 test images in shards of 8."""
    out = tmp_path_factory.mktemp("small") / "data"
    generate_dataset(out, preset=tiny, n_train=30, n_val=10, n_test=20, seed=5, workers=1, shard_size=8,
                     progress=False)
    return out
