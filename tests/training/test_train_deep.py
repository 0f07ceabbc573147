"""training.deep: DeepFreak trained on a data folder and scored like the classic models."""

import logging

import numpy as np
import pytest

pytest.importorskip("torch")

from diffranet.dataset.loader import load_split  # noqa: E402
from diffranet.models import DeepFreakClassifier  # noqa: E402
from diffranet.training import split_scores, train_deepfreak  # noqa: E402
from diffranet.training.metrics import format_scores  # noqa: E402

TINY = dict(depth=18, width=4, input_size=32, head_pool_size=None, epochs=2, batch_size=8, learning_rate=0.01,
            momentum=0.9, random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, write_synthetic_dataset):
    out = tmp_path_factory.mktemp("deep-data")
    write_synthetic_dataset(out, n_per_class=4, size=32, seed=1)
    return out


def test_train_deepfreak_scores_every_split(data_dir, caplog):
    with caplog.at_level(logging.INFO, logger="diffranet.training.deep"):
        model, metrics = train_deepfreak(data_dir, **TINY)
    lines = [record.getMessage() for record in caplog.records]
    assert isinstance(model, DeepFreakClassifier) and model.get_params()["width"] == 4
    assert set(metrics) == {"train_seconds", "train_images_per_s", "val", "test"}
    for split in ("val", "test"):
        scores = metrics[split]
        assert scores["n_images"] == 20
        assert 0.0 <= scores["accuracy"] <= 1.0 and 0.0 <= scores["hit_miss_accuracy"] <= 1.0
        assert np.asarray(scores["confusion_matrix"]).sum() == 20
    assert lines[0] == "train: 20 images, validation: 20 images" and lines[1].startswith("fitted in")
    text = format_scores(metrics)
    assert "val: accuracy" in text and "test: accuracy" in text
    # the same scores as the classic models get
    assert metrics["test"] == split_scores(model, *load_split(data_dir, "test"))
