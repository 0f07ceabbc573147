"""training_history: one schema from a fitted estimator or a saved model's record; drawn by plots."""

import numpy as np
import pytest

from diffranet.plots import learning_curve_figure
from diffranet.training_history import HISTORY_KEYS, training_history


class Fitted:
    loss_curve_ = [1.5, 0.9, 0.6]
    validation_scores_ = [0.4, 0.8, 0.7]
    epoch_seconds_ = [10, 11, 12]


class Saved:
    """A saved model: its recorded history is what was trained, whatever the estimator holds now."""

    def __init__(self, history):
        self.estimator = Fitted()
        self.metadata = {"training": {"history": history}}


def test_from_estimator_attributes():
    assert training_history(Fitted()) == {"loss": [1.5, 0.9, 0.6], "val_accuracy": [0.4, 0.8, 0.7],
                                          "epoch_seconds": [10.0, 11.0, 12.0]}


def test_saved_record_wins_and_missing_keys_are_empty():
    history = training_history(Saved({"loss": [2.0, 1.0], "val_accuracy": [0.5, 0.6]}))
    assert history == {"loss": [2.0, 1.0], "val_accuracy": [0.5, 0.6], "epoch_seconds": []}
    assert tuple(history) == HISTORY_KEYS


def test_no_loss_means_no_history():
    assert training_history(object()) is None
    assert training_history(Saved({})) == training_history(Fitted())  # an empty record: the estimator's


def test_learning_curve_figure_draws_the_schema(tmp_path):
    from matplotlib.image import imread

    path = learning_curve_figure(training_history(Fitted()), tmp_path / "curve.png", title="run")
    image = imread(path)
    assert image.ndim == 3 and np.asarray(image).std() > 0
    with pytest.raises(ValueError, match="no training loss"):
        learning_curve_figure({"loss": [], "val_accuracy": [0.5]}, tmp_path / "empty.png")


def test_drawing_leaves_the_matplotlib_backend_alone(tmp_path):
    # a notebook user's backend stays theirs: the figures use the object API, not pyplot
    import matplotlib

    backend = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        learning_curve_figure(training_history(Fitted()), tmp_path / "curve.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(backend)
