"""DeepFreakClassifier's state as plain data: ``_from_state(_to_state(m))``, pickling and model files
rebuild the same estimator, and a state with a key missing or unknown is refused by name."""

import copy
import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

torch = pytest.importorskip("torch")

from diffranet import DeepFreakClassifier  # noqa: E402
from diffranet.inference import Preprocessing, load_model, save_model  # noqa: E402

TINY = {"depth": 18, "width": 4, "input_size": 32, "head_pool_size": None, "epochs": 2, "batch_size": 8,
        "learning_rate": 0.01, "momentum": 0.9, "n_threads": 1, "random_state": 0}


@pytest.fixture(scope="module")
def fitted(tiny_split):
    X, y, X_test, y_test = tiny_split
    clf = DeepFreakClassifier(**TINY, early_stopping=True, validation_fraction=0.25).fit(X, y)
    return clf, X_test


def assert_same_estimator(restored, clf, X):
    """Same parameters, fitted attributes and probabilities."""
    assert type(restored) is DeepFreakClassifier and not restored.model_.training
    assert restored.get_params() == clf.get_params()
    for name in ("n_features_in_", "image_shape_", "pixel_range_", "device_", "seed_", "loss_curve_",
                 "validation_scores_", "epoch_seconds_", "n_epochs_"):
        assert getattr(restored, name) == getattr(clf, name), name
    np.testing.assert_array_equal(restored.classes_, clf.classes_)
    np.testing.assert_array_equal(restored.mean_image_, clf.mean_image_)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


class TestRoundTrip:
    def test_state_is_plain_data(self, fitted):
        clf, _ = fitted
        state = clf._to_state()
        assert sorted(state) == ["classes", "fitted", "history", "network", "params"]
        assert state["params"] == clf.get_params(deep=False)
        assert state["history"]["loss_curve_"] == clf.loss_curve_ and len(state["history"]["validation_scores_"]) == 2
        assert state["fitted"]["mean_image_"] is clf.mean_image_
        assert state["network"].keys() == clf.model_.state_dict().keys()
        assert all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in state["network"].values())

    def test_from_state_of_to_state(self, fitted):
        clf, X = fitted
        assert_same_estimator(DeepFreakClassifier._from_state(clf._to_state()), clf, X)

    def test_network_as_numpy_arrays(self, fitted):
        clf, X = fitted
        state = clf._to_state()
        state["network"] = {name: t.numpy() for name, t in state["network"].items()}
        assert_same_estimator(DeepFreakClassifier._from_state(state), clf, X)

    def test_pickle(self, fitted):
        clf, X = fitted
        assert_same_estimator(pickle.loads(pickle.dumps(clf)), clf, X)
        assert_same_estimator(copy.deepcopy(clf), clf, X)

    def test_pickle_of_the_earlier_layout(self, fitted):
        # the estimator's attributes beside its weights, as pickles held them before _to_state
        clf, X = fitted
        state = {k: v for k, v in vars(clf).items() if k != "model_"}
        state["_model_state"] = {k: v.detach().cpu() for k, v in clf.model_.state_dict().items()}
        restored = DeepFreakClassifier.__new__(DeepFreakClassifier)
        restored.__setstate__(pickle.loads(pickle.dumps(state)))
        assert_same_estimator(restored, clf, X)

    def test_unfitted_pickle_keeps_parameters(self):
        clf = pickle.loads(pickle.dumps(DeepFreakClassifier(**TINY)))
        assert clf.get_params() == DeepFreakClassifier(**TINY).get_params() and not hasattr(clf, "model_")
        with pytest.raises(NotFittedError):
            clf._to_state()

    def test_model_file(self, fitted, tiny_split, tmp_path):
        clf, X = fitted
        path = save_model(clf, tmp_path / "m.dfm", class_names=("noise", "ring", "spots"),
                          preprocessing=Preprocessing(shape=X.shape[1:]))
        model = load_model(path)
        assert type(model.estimator) is DeepFreakClassifier
        np.testing.assert_array_equal(model.estimator.predict_proba(X), clf.predict_proba(X))
        assert model.estimator.loss_curve_ == clf.loss_curve_ and model.estimator.seed_ == clf.seed_


class TestRefused:
    @staticmethod
    def edited(state, part, change):
        state = dict(state)
        if part is None:
            state = change(state)
        else:
            state[part] = change(dict(state[part]))
        return state

    @pytest.mark.parametrize("part, change, match", [
        (None, lambda s: {k: v for k, v in s.items() if k != "network"}, r"keys: missing \['network'\]"),
        (None, lambda s: {**s, "optimizer": {}}, r"keys: unknown \['optimizer'\]"),
        ("params", lambda p: {k: v for k, v in p.items() if k != "depth"}, r"parameters: missing \['depth'\]"),
        ("params", lambda p: {**p, "dropout": 0.5}, r"parameters: unknown \['dropout'\]"),
        ("fitted", lambda f: {k: v for k, v in f.items() if k != "mean_image_"},
         r"fitted attributes: missing \['mean_image_'\]"),
        ("fitted", lambda f: {**f, "model_": None}, r"fitted attributes: unknown \['model_'\]"),
        ("history", lambda h: {**h, "lr_curve_": []}, r"history entries: unknown \['lr_curve_'\]"),
    ], ids=["missing key", "extra key", "missing param", "extra param", "missing fitted", "extra fitted",
            "extra history"])
    def test_missing_or_extra_key(self, fitted, part, change, match):
        clf, _ = fitted
        with pytest.raises(ValueError, match=match):
            DeepFreakClassifier._from_state(self.edited(clf._to_state(), part, change))

    def test_not_a_dict(self):
        with pytest.raises(ValueError, match="must be a dict"):
            DeepFreakClassifier._from_state([("params", {})])

    @pytest.mark.parametrize("part, change, match", [
        ("params", lambda p: {**p, "depth": 7}, "depth"),
        ("params", lambda p: {**p, "width": 8}, "do not fit the described network"),
        ("fitted", lambda f: {**f, "mean_image_": np.zeros((4, 4), np.float32)}, "mean_image_ has shape"),
        ("fitted", lambda f: {**f, "mean_image_": np.full((32, 32), np.nan, np.float32)}, "non-finite"),
    ])
    def test_values_that_do_not_fit(self, fitted, part, change, match):
        clf, _ = fitted
        with pytest.raises(ValueError, match=match):
            DeepFreakClassifier._from_state(self.edited(clf._to_state(), part, change))
