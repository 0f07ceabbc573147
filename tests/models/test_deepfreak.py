"""DeepFreakClassifier: learning, reproducibility, pickling, checkpoints, data paths and validation."""

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from diffranet import DeepFreakClassifier
from diffranet.features.significance import significance_map
from diffranet.models.resnet import PAPER_BEST

# ResNet-18 of width 8 at 64 px: a few seconds per fit on two cores.
SMALL = {
    "depth": 18,
    "width": 8,
    "input_size": 64,
    "head_pool_size": None,
    "epochs": 5,
    "batch_size": 8,
    "learning_rate": 0.01,
    "momentum": 0.9,
    "lr_step_epochs": 3,
    "lr_gamma": 0.2,
    "n_threads": 2,
    "random_state": 0,
}
# Narrower still, on the 32 px tiny split: a fraction of a second per fit.
TINY = {**SMALL, "width": 4, "input_size": 32, "epochs": 2, "lr_step_epochs": 1, "lr_gamma": 0.5}


class TestWithoutTorch:
    def test_import_and_fit_error(self):
        # A fresh interpreter where `import torch` fails, as on a machine without
        # it. An import hook rather than sys.modules["torch"] = None, which
        # SciPy's array-API helpers would take for an imported torch module.
        code = textwrap.dedent(
            """
            import sys

            class NoTorch:
                def find_spec(self, name, path=None, target=None):
                    if name == "torch" or name.startswith("torch."):
                        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                    return None

            sys.meta_path.insert(0, NoTorch())
            import numpy as np
            import diffranet
            from diffranet import DeepFreakClassifier
            from diffranet.models import torch_available
            assert not torch_available()
            assert "torch" not in sys.modules
            clf = DeepFreakClassifier(epochs=1)
            assert clf.get_params()["epochs"] == 1
            try:
                clf.fit(np.zeros((4, 8, 8), np.uint8), [0, 1, 0, 1])
            except ImportError as exc:
                print(exc)
                assert "torch" not in sys.modules
            else:
                raise SystemExit("fit did not raise ImportError")
            """
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert "pip install 'diffranet[torch]'" in result.stdout
        assert "torch==" in result.stdout


class TestDefaults:
    def test_paper_configuration(self):
        params = DeepFreakClassifier().get_params()
        for name, value in PAPER_BEST.items():
            assert params[name] == value
        # Table 2.
        assert params["epochs"] == 180
        assert params["batch_size"] == 1
        assert params["learning_rate"] == pytest.approx(8.4474e-4)
        assert params["momentum"] == pytest.approx(0.56168)
        assert params["weight_decay"] == pytest.approx(3.4855e-5)
        assert (params["lr_step_epochs"], params["lr_gamma"]) == (10, 0.1)
        assert params["input_size"] == 512


torch = pytest.importorskip("torch")


def fitted(X, y, **params):
    return DeepFreakClassifier(**{**TINY, **params}).fit(X, y)


def hot_pixels_or_spots(n, seed):
    """8-bit images: six single bright pixels (label 0, hot pixels) or six spots of two bright pixels (label 1),
    each inside one 4 x 4 block, on a noisy background: the blocks' maxima are alike, their second values not."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(100.0, size=(n, 64, 64)).astype(float)
    y = np.arange(n) % 2
    for image, label in zip(X, y):
        for _ in range(6):
            r, c = 4 * rng.integers(1, 15) + rng.integers(0, 4), 4 * rng.integers(1, 15) + rng.integers(0, 3)
            image[r, c] += 3000.0
            if label:
                image[r, c + 1] += 3000.0
    return np.sqrt(X).round().astype(np.uint8), y


class TestLearning:
    def test_second_values_tell_spots_from_hot_pixels(self):
        X, y = hot_pixels_or_spots(96, 0)
        X_test, y_test = hot_pixels_or_spots(64, 1)
        settings = {**SMALL, "input_size": 16, "epochs": 8}
        top2 = DeepFreakClassifier(**settings, input_transform="significance_top2").fit(X, y)
        maxima = DeepFreakClassifier(**settings, input_transform="significance").fit(X, y)
        assert top2.score(X_test, y_test) > 0.9
        assert maxima.score(X_test, y_test) < 0.75  # one channel sees the same block maxima in both classes

    def test_three_classes(self, ring_split):
        X_train, y_train, X_test, y_test = ring_split
        clf = DeepFreakClassifier(**SMALL).fit(X_train, y_train)
        assert list(clf.classes_) == ["noise", "ring", "spots"]
        assert clf.score(X_test, y_test) > 0.9
        assert clf.n_epochs_ == len(clf.loss_curve_) == SMALL["epochs"]
        assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
        proba = clf.predict_proba(X_test)
        assert proba.shape == (len(X_test), 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


class TestPreprocessing:
    def test_mean_image_of_uint8(self, tiny_split):
        X, y, _, _ = tiny_split
        clf = fitted(X, y, epochs=1)
        assert clf.pixel_range_ == (0.0, 255.0)
        np.testing.assert_allclose(clf.mean_image_, X.mean(axis=0) / 255.0, atol=1e-6)

    def test_float_range_and_resize(self, tiny_split):
        X, y, _, _ = tiny_split
        X = X.astype(np.float64) * 4.0 + 100.0
        clf = fitted(X, y, epochs=1, input_size=16, resize="area")
        assert clf.pixel_range_ == (X.min(), X.max())
        assert clf.mean_image_.shape == (16, 16)
        # Area resampling by 2 averages 2 x 2 blocks, and the mean is linear.
        scaled = (X - X.min()) / (X.max() - X.min())
        blocks = scaled.reshape(len(X), 16, 2, 16, 2).mean(axis=(2, 4))
        np.testing.assert_allclose(clf.mean_image_, blocks.mean(axis=0), atol=1e-5)

    def test_max_resize_keeps_one_pixel_spots(self, tiny_split):
        X, y, _, _ = tiny_split
        clf = fitted(X, y, epochs=1, input_size=16, resize="max")
        # Max resampling by 2 takes the largest of each 2 x 2 block, so a lone
        # bright pixel keeps its full height.
        scaled = X / 255.0
        blocks = scaled.reshape(len(X), 16, 2, 16, 2).max(axis=(2, 4))
        np.testing.assert_allclose(clf.mean_image_, blocks.mean(axis=0), atol=1e-5)
        spot = np.zeros((1,) + X.shape[1:], np.uint8)
        spot[0, 7, 9] = 255
        torch = pytest.importorskip("torch")
        x = clf._preprocess(spot, torch, "cpu").numpy()[0, 0]
        assert x[3, 4] == pytest.approx(1.0) and np.count_nonzero(x > 0.5) == 1

    def test_fixed_pixel_range(self, tiny_split):
        X, y, _, _ = tiny_split
        assert fitted(X, y, epochs=1, pixel_range=(0, 1000)).pixel_range_ == (0.0, 1000.0)


class TestReproducibility:
    def test_same_seed_same_predictions(self, tiny_split):
        X, y, X_test, _ = tiny_split
        first = fitted(X, y).predict_proba(X_test)
        second = fitted(X, y).predict_proba(X_test)
        np.testing.assert_array_equal(first, second)
        assert not np.array_equal(first, fitted(X, y, random_state=1).predict_proba(X_test))

    def test_global_torch_state_untouched(self, tiny_split):
        X, y, _, _ = tiny_split
        rng_state = torch.get_rng_state()
        threads = torch.get_num_threads()
        fitted(X, y, n_threads=1, epochs=1)
        assert torch.equal(torch.get_rng_state(), rng_state)
        assert torch.get_num_threads() == threads
        assert not torch.are_deterministic_algorithms_enabled()

    def test_pickle_round_trip(self, tiny_split):
        X, y, X_test, _ = tiny_split
        clf = fitted(X, y)
        state = clf.__getstate__()
        assert "model_" not in state
        assert all(t.device.type == "cpu" for t in state["_model_state"].values())
        restored = pickle.loads(pickle.dumps(clf))
        assert isinstance(restored.model_, torch.nn.Module)
        assert not restored.model_.training
        np.testing.assert_array_equal(restored.predict_proba(X_test), clf.predict_proba(X_test))
        # Pickling leaves the original usable.
        assert hasattr(clf, "model_")

    def test_clone_is_unfitted(self, tiny_split):
        X, y, _, _ = tiny_split
        copy = clone(fitted(X, y, epochs=1))
        assert not hasattr(copy, "model_")
        assert copy.get_params() == DeepFreakClassifier(**{**TINY, "epochs": 1}).get_params()


class TestCheckpoint:
    def test_resume_equals_uninterrupted(self, tiny_split, tmp_path):
        # Each epoch reseeds its shuffling, and model, optimiser momentum and
        # learning-rate schedule (halved every epoch here) are restored, so a
        # fit interrupted after 2 of 4 epochs continues bit for bit on CPU.
        X, y, X_test, _ = tiny_split
        path = tmp_path / "deepfreak.pt"
        straight = fitted(X, y, epochs=4)
        part = fitted(X, y, epochs=2, checkpoint_path=path)
        assert torch.load(path, weights_only=True)["epoch"] == 2
        resumed = clone(part).set_params(epochs=4).fit(X, y)
        assert torch.load(path, weights_only=True)["epoch"] == 4
        assert resumed.loss_curve_ == straight.loss_curve_
        np.testing.assert_array_equal(resumed.predict_proba(X_test), straight.predict_proba(X_test))

    def test_finished_checkpoint_is_loaded(self, tiny_split, tmp_path):
        X, y, X_test, _ = tiny_split
        path = str(tmp_path / "deepfreak.pt")
        first = fitted(X, y, checkpoint_path=path)
        again = fitted(X, y, checkpoint_path=path, random_state=0)
        np.testing.assert_array_equal(again.predict_proba(X_test), first.predict_proba(X_test))
        assert again.n_epochs_ == TINY["epochs"]
        assert [name for name in os.listdir(tmp_path)] == ["deepfreak.pt"]

    def test_other_configuration_refused(self, tiny_split, tmp_path):
        X, y, _, _ = tiny_split
        path = tmp_path / "deepfreak.pt"
        fitted(X, y, epochs=1, checkpoint_path=path)
        with pytest.raises(ValueError, match="another configuration"):
            fitted(X, y, epochs=1, checkpoint_path=path, width=2)
        with pytest.raises(ValueError, match="another configuration"):
            fitted(X[:-1], y[:-1], epochs=1, checkpoint_path=path)


class ImageDataset(torch.utils.data.Dataset):
    """(image tensor, label) pairs, as a lazy HDF5 reader would give them."""

    def __init__(self, X, y=None):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        image = torch.from_numpy(self.X[i])
        return image if self.y is None else (image, self.y[i])


class TestDataset:
    def test_dataset_equals_array(self, tiny_split):
        X, y, X_test, y_test = tiny_split
        from_array = fitted(X, y)
        from_dataset = fitted(ImageDataset(X, list(y)), None)
        np.testing.assert_array_equal(from_dataset.classes_, from_array.classes_)
        assert from_dataset.image_shape_ == from_array.image_shape_
        expected = from_array.predict_proba(X_test)
        np.testing.assert_array_equal(from_dataset.predict_proba(X_test), expected)
        np.testing.assert_array_equal(from_array.predict_proba(ImageDataset(X_test, y_test)), expected)
        np.testing.assert_array_equal(from_array.predict_proba(ImageDataset(X_test)), expected)

    def test_dataset_with_y(self, tiny_split):
        X, y, _, _ = tiny_split
        with pytest.raises(ValueError, match="y must be None"):
            fitted(ImageDataset(X, y), y)

    def test_dataset_without_labels(self, tiny_split):
        X, _, _, _ = tiny_split
        with pytest.raises(ValueError, match=r"\(image, label\)"):
            fitted(ImageDataset(X), None)


class TestTraining:
    def test_early_stopping(self, tiny_split):
        X, y, _, _ = tiny_split
        clf = fitted(X, y, epochs=6, early_stopping=True, validation_fraction=0.25, n_iter_no_change=1)
        assert 2 <= clf.n_epochs_ <= 6
        assert len(clf.validation_scores_) == clf.n_epochs_
        assert all(0.0 <= s <= 1.0 for s in clf.validation_scores_)

    def test_prediction_leaves_the_deterministic_mode_alone(self, tiny_split, tmp_path):
        # torch.use_deterministic_algorithms imports torch's compiler on its first call (1.4 s here): a process
        # that only classifies must not pay for it, and a user's own setting stays as it was
        X, y, X_test, _ = tiny_split
        path = tmp_path / "model.pkl"
        path.write_bytes(pickle.dumps(fitted(X, y, epochs=1)))
        np.save(tmp_path / "images.npy", X_test)
        code = textwrap.dedent(
            f"""
            import pickle, sys
            import numpy as np
            import torch
            clf = pickle.loads(open({str(path)!r}, "rb").read())
            clf.predict_proba(np.load({str(tmp_path / "images.npy")!r}))
            assert "torch._inductor" not in sys.modules, "the compiler was imported"
            torch.use_deterministic_algorithms(True)
            clf.predict_proba(np.load({str(tmp_path / "images.npy")!r}))
            assert torch.are_deterministic_algorithms_enabled()
            """
        )
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)

    def test_progress_bar(self, tiny_split, capsys):
        X, y, _, _ = tiny_split
        fitted(X, y, epochs=1, verbose=1)
        assert "DeepFreak" in capsys.readouterr().err

    @staticmethod
    def _batch_norm_layers(model):
        return [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    def test_batch_norm_statistics_are_those_of_the_final_weights(self, tiny_split):
        # With batch_norm_images >= the 24 training images, prediction uses each layer's
        # statistics over all of them under the final weights: the same as one
        # training-mode pass of the (un-augmented, mean-subtracted) images through a copy
        # whose statistics were reset. The running averages of training differ.
        X, y, _, _ = tiny_split
        clf = fitted(X, y, epochs=2, batch_norm_images=10_000)
        lagging = fitted(X, y, epochs=2, batch_norm_images=0)
        reference = copy.deepcopy(clf.model_)
        for layer in self._batch_norm_layers(reference):
            layer.reset_running_stats()
            layer.momentum = None
        reference.train()
        with torch.no_grad():
            reference(clf._preprocess(X, torch, "cpu", torch.from_numpy(clf.mean_image_)))
        pairs = list(zip(self._batch_norm_layers(clf.model_), self._batch_norm_layers(reference),
                         self._batch_norm_layers(lagging.model_)))
        assert len(pairs) > 10
        for fitted_layer, expected, running in pairs:
            np.testing.assert_allclose(fitted_layer.running_mean, expected.running_mean, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(fitted_layer.running_var, expected.running_var, rtol=1e-4, atol=1e-5)
        # same weights (the pass only measures), other statistics
        first_fitted, _, first_running = pairs[0]
        np.testing.assert_array_equal(first_fitted.weight.detach(), first_running.weight.detach())
        assert not np.allclose(first_fitted.running_var, first_running.running_var, rtol=1e-3)

    def test_batch_of_one_is_merged(self, tiny_split):
        # 24 images in batches of 23 would leave one image alone with 1 x 1 maps.
        X, y, _, _ = tiny_split
        clf = fitted(X, y, epochs=1, batch_size=23, input_size=8)
        assert clf.n_epochs_ == 1

    def test_binary_labels_of_any_type(self, tiny_split):
        X, y, X_test, _ = tiny_split
        labels = np.where(y == "noise", "miss", "hit")
        clf = fitted(X, labels, epochs=1)
        assert list(clf.classes_) == ["hit", "miss"]
        assert set(clf.predict(X_test)) <= {"hit", "miss"}


class TestValidation:
    def test_not_fitted(self, tiny_split):
        _, _, X_test, _ = tiny_split
        with pytest.raises(NotFittedError):
            DeepFreakClassifier(**TINY).predict(X_test)

    def test_image_shape_at_predict(self, tiny_split):
        X, y, _, _ = tiny_split
        clf = fitted(X, y, epochs=1)
        with pytest.raises(ValueError, match="images of shape"):
            clf.predict(X[:, :, :16])

    def test_one_class(self, tiny_split):
        X, _, _, _ = tiny_split
        with pytest.raises(ValueError, match="at least 2 classes"):
            fitted(X, np.zeros(len(X)))

    @pytest.mark.parametrize("pixel_range", [(1, 1), (0, np.inf), (0, 1, 2)])
    def test_pixel_range(self, tiny_split, pixel_range):
        X, y, _, _ = tiny_split
        with pytest.raises(ValueError, match="pixel_range"):
            fitted(X, y, pixel_range=pixel_range)

    def test_device(self, tiny_split):
        X, y, _, _ = tiny_split
        with pytest.raises(ValueError, match="device"):
            fitted(X, y, device="abacus")
        if not torch.cuda.is_available():
            with pytest.raises(ValueError, match="CUDA is not available"):
                fitted(X, y, device="cuda:0")

    def test_topology_too_deep_for_input(self, tiny_split):
        X, y, _, _ = tiny_split
        with pytest.raises(ValueError, match="head_pool_size"):
            fitted(X, y, head_pool_size=7)

    def test_nan(self, tiny_split):
        X, y, _, _ = tiny_split
        X = X.astype(float)
        X[0, 0, 0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            fitted(X, y)
        with pytest.raises(ValueError, match="NaN"):
            fitted(ImageDataset(X, y), None)


class TestInit:
    """Fine-tuning: ``init`` starts training from a fitted network's weights."""

    def test_starts_from_the_given_weights(self, tiny_split):
        X, y, _, _ = tiny_split
        first = fitted(X, y)
        # a step so small that the weights stay where they started
        still = fitted(X, y, init=first, learning_rate=1e-12, momentum=0.0, epochs=1, batch_norm_images=0)
        fresh = fitted(X, y, learning_rate=1e-12, momentum=0.0, epochs=1, batch_norm_images=0)
        for (name, a), b, c in zip(first.model_.state_dict().items(), still.model_.state_dict().values(),
                                   fresh.model_.state_dict().values()):
            if "weight" in name and "bn" not in name:
                np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-9, err_msg=name)
                assert not np.allclose(c.numpy(), a.numpy()), name

    def test_fine_tuning_keeps_what_was_learned(self, ring_split):
        X, y, X_test, y_test = ring_split
        base = fitted(X, y, epochs=4)
        tuned = fitted(X[:30], y[:30], init=base, epochs=1, learning_rate=0.001)
        scratch = fitted(X[:30], y[:30], epochs=1, learning_rate=0.001)
        assert (tuned.predict(X_test) == y_test).mean() > (scratch.predict(X_test) == y_test).mean()

    @pytest.mark.parametrize("change", [dict(width=8), dict(input_transform="significance")])
    def test_refuses_another_network(self, tiny_split, change):
        X, y, _, _ = tiny_split
        first = fitted(X, y)
        with pytest.raises(ValueError, match="another network"):
            fitted(X, y, init=first, **change)

    def test_two_channel_input_starts_from_a_one_channel_network(self, tiny_split):
        # the second channel (each block's second-largest value) starts unread: the widened network
        # computes what the one-channel network did until training teaches it to read it
        X, y, X_test, _ = tiny_split
        one = fitted(X, y, input_transform="significance", input_size=8)
        two = DeepFreakClassifier(**{**TINY, "input_transform": "significance_top2", "input_size": 8, "init": one})
        two.classes_ = one.classes_
        weights = two._initial_weights()
        assert weights["conv1.weight"].shape[1] == 2 and not weights["conv1.weight"][:, 1].any()
        network = two._build_network(len(one.classes_))
        network.load_state_dict(weights)
        network.eval()
        mean = torch.from_numpy(one.mean_image_)
        with torch.inference_mode():
            x_one = one._preprocess(X_test, torch, "cpu", mean)
            pair = torch.from_numpy(significance_map(X_test, second=True))
            x_two = torch.cat([x_one, pair[:, 1:] / 20.0], dim=1)  # any second channel: it is not read
            torch.testing.assert_close(network(x_two), one.model_(x_one))
        with pytest.raises(ValueError, match="another network"):
            fitted(X, y, input_transform="significance", input_size=8,
                   init=fitted(X, y, input_transform="significance_top2", input_size=8))

    def test_refuses_other_classes_and_unfitted(self, tiny_split):
        X, y, _, _ = tiny_split
        first = fitted(X, y)
        with pytest.raises(ValueError, match="classes"):
            fitted(X, np.where(y == y[0], "other", y), init=first)
        with pytest.raises(ValueError, match="fitted DeepFreakClassifier"):
            fitted(X, y, init=DeepFreakClassifier())
