"""The DeepFreak model shipped with diffranet: it loads by name, takes (n, 512, 512) uint8 images, and
classifies freshly generated DiffraNet images far better than chance."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

import diffranet  # noqa: E402
from diffranet.classes import CLASS_NAMES, MISS_LABELS  # noqa: E402
from diffranet.cli import main  # noqa: E402
from diffranet.inference.modelfile import default_model_path  # noqa: E402
from diffranet.models import DeepFreakClassifier  # noqa: E402


@pytest.fixture(scope="module")
def default():
    return diffranet.load_model("default")


def test_shipped_in_the_package():
    path = default_model_path()
    assert path is not None and path.name == "default.dfm"
    assert path.stat().st_size < 8_000_000  # a few MB


def test_loads_by_name_with_the_paper_geometry(default):
    assert isinstance(default.estimator, DeepFreakClassifier)
    assert default.class_names == CLASS_NAMES
    assert default.preprocessing.shape == (512, 512)
    assert default.estimator.image_shape_ == (512, 512)
    assert default.metadata["training"]["preset"]["name"] == "diffranet"
    # a deployed model predicts with torch's threads, on the CPU unless moved
    assert default.estimator.n_threads is None and default.estimator.checkpoint_path is None


def test_predict_takes_uint8_512_images(default):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 30, (3, 512, 512), dtype=np.uint8)
    proba = default.predict_proba(images)
    assert proba.shape == (3, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert default.estimator.predict(images).shape == (3,)
    with pytest.raises(ValueError, match="uint8"):
        default.predict_proba(images.astype(np.float32))
    with pytest.raises(ValueError, match="512"):
        default.predict_proba(images[:, :256])


def test_classify_command_uses_it(tmp_path, capsys):
    from diffranet.io import write_image

    frame = np.random.default_rng(1).poisson(2.0, (512, 512)).astype(np.float32)
    write_image(tmp_path / "frame.npz", frame)
    assert main(["classify", "--model", "default", str(tmp_path / "frame.npz")]) == 0
    verdict = json.loads(capsys.readouterr().out.splitlines()[0])
    assert verdict["label"] in CLASS_NAMES and len(verdict["proba"]) == 5


@pytest.mark.slow
def test_scores_far_above_chance_on_fresh_images(default, tmp_path):
    """40 images of the paper's preset from a seed the model never saw: chance is about 27 %
    (the largest class share) for five classes and 58 % for hit / miss."""
    from diffranet.dataset.generate import generate_dataset
    from diffranet.dataset.loader import load_split

    generate_dataset(tmp_path / "fresh", preset="diffranet", n_train=0, n_val=0, n_test=40, seed=777, workers=1,
                     progress=False)
    X, y = load_split(tmp_path / "fresh", "test")
    predicted = default.estimator.predict(X)
    assert np.mean(predicted == y) >= 0.45
    assert np.mean(np.isin(predicted, MISS_LABELS) == np.isin(y, MISS_LABELS)) >= 0.8
