"""DeepFreak without torch: the exported ONNX graph gives the estimator's probabilities."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from diffranet.inference import Preprocessing, load_model, modelfile, save_model  # noqa: E402
from diffranet.models import DeepFreakClassifier  # noqa: E402
from diffranet.models.runtime import DeepFreakRuntime, inference_graph  # noqa: E402


TINY = {"depth": 18, "width": 4, "input_size": 32, "head_pool_size": None, "epochs": 2, "batch_size": 8,
        "learning_rate": 0.01, "momentum": 0.9, "n_threads": 1, "random_state": 0}


@pytest.fixture(params=[dict(), dict(resize="max", input_size=16), dict(input_transform="significance", input_size=8),
                        dict(input_transform="significance_top2", input_size=8)],
                ids=["grey", "block-max", "significance", "significance-top2"])
def fitted(request, tiny_split):
    X, y, _, _ = tiny_split
    return DeepFreakClassifier(**{**TINY, **request.param}).fit(X, y), X


def test_graph_gives_the_estimator_probabilities(fitted):
    estimator, X = fitted
    runtime = DeepFreakRuntime(inference_graph(estimator), estimator.classes_, estimator.image_shape_,
                               estimator.input_transform)
    np.testing.assert_allclose(runtime.predict_proba(X), estimator.predict_proba(X), atol=1e-5)  # softmax in float32 here, float64 in the estimator
    assert np.array_equal(runtime.predict(X[:5]), estimator.predict(X[:5]))


def test_model_file_classifies_without_torch(fitted, tmp_path, monkeypatch):
    estimator, X = fitted
    path = save_model(estimator, tmp_path / "m.dfm", class_names=("noise", "ring", "spots"),
                      preprocessing=Preprocessing(shape=X.shape[1:]))
    expected = load_model(path).estimator.predict_proba(X)
    monkeypatch.setattr(modelfile, "torch_available", lambda: False)  # as if torch were not installed
    model = load_model(path)
    assert isinstance(model.estimator, DeepFreakRuntime)
    np.testing.assert_allclose(model.estimator.predict_proba(X), expected, atol=1e-5)  # softmax in float32 here, float64 in the estimator


def test_runtime_checks_the_image_shape(fitted):
    estimator, X = fitted
    runtime = DeepFreakRuntime(inference_graph(estimator), estimator.classes_, estimator.image_shape_,
                               estimator.input_transform)
    with pytest.raises(ValueError, match="images of shape"):
        runtime.predict_proba(X[:, :16, :16])
