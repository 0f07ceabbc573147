import pickle

import cv2
import numpy as np
import pytest
from sklearn.base import clone

from diffranet.features import BoVWExtractor
from diffranet.features import bovw as bovw_module
from diffranet.features.bovw import (
    DENSE_SIZE,
    DENSE_STEP,
    MIN_IMAGE_SIZE,
    dense_keypoints,
    pad_to_min_size,
    sift_descriptors,
)


@pytest.fixture(scope="module")
def fitted(spot_images):
    return BoVWExtractor(n_clusters=8, random_state=0).fit(spot_images)


@pytest.fixture(scope="module")
def ramp():
    """A 32 x 32 grey ramp: texture, but no extremum for SIFT's detector."""
    return (4 * np.add.outer(np.arange(32), np.arange(32))).astype(np.uint8)


class TestPadToMinSize:
    def test_one_row_image(self):
        padded = pad_to_min_size(np.array([[1, 2, 3]], np.uint8))
        assert padded.shape == (MIN_IMAGE_SIZE, MIN_IMAGE_SIZE)
        # 15 rows of padding: 7 above, 8 below; 13 columns: 6 left, 7 right
        np.testing.assert_array_equal(padded[7, 5:10], [1, 1, 2, 3, 3])
        np.testing.assert_array_equal(padded, np.broadcast_to(padded[7], padded.shape))

    def test_edge_values(self):
        padded = pad_to_min_size(np.array([[1, 2], [3, 4]]), min_size=4)
        np.testing.assert_array_equal(padded, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])

    def test_only_the_short_axis(self):
        assert pad_to_min_size(np.zeros((40, 3), np.uint8)).shape == (40, MIN_IMAGE_SIZE)

    def test_large_image_unchanged(self, spot_images):
        image = spot_images[0]
        assert pad_to_min_size(image) is image


class TestDenseKeypoints:
    def test_grid(self):
        keypoints = dense_keypoints((20, 9))
        assert [k.pt for k in keypoints] == [(4.0, 4.0), (4.0, 12.0)]
        assert {(k.size, k.angle) for k in keypoints} == {(DENSE_SIZE, 0.0)}

    def test_count(self):
        assert len(dense_keypoints((96, 96))) == (96 // DENSE_STEP) ** 2


class TestSiftDescriptors:
    @pytest.mark.parametrize("keypoints", ["detect", "detect_or_dense"])
    def test_detected_equal_opencv(self, spot_images, keypoints):
        _, expected = cv2.SIFT_create().detectAndCompute(spot_images[0], None)
        np.testing.assert_array_equal(sift_descriptors(spot_images[0], keypoints), expected)
        assert expected.shape[0] > 8

    def test_dense_equal_opencv(self, spot_images):
        _, expected = cv2.SIFT_create().compute(spot_images[0], dense_keypoints((96, 96)))
        np.testing.assert_array_equal(sift_descriptors(spot_images[0], "dense"), expected)
        assert expected.shape == ((96 // DENSE_STEP) ** 2, 128)

    def test_no_keypoints_detect_gives_empty_array(self, ramp):
        assert sift_descriptors(ramp, "detect").shape == (0, 128)

    def test_no_keypoints_falls_back_to_dense(self, ramp):
        _, expected = cv2.SIFT_create().compute(ramp, dense_keypoints(ramp.shape))
        np.testing.assert_array_equal(sift_descriptors(ramp), expected)
        assert expected.shape == (16, 128) and expected.any()

    @pytest.mark.parametrize("nothing", [None, np.empty((0, 128), np.float32)], ids=["none", "empty-array"])
    def test_both_opencv_answers_for_no_keypoints_fall_back_to_dense(self, ramp, monkeypatch, nothing):
        # OpenCV < 5.1 answers None when it detects no keypoint, 5.1 an empty (0, 128) array
        real = cv2.SIFT_create()

        class Sift:
            def detectAndCompute(self, image, mask):
                return (), nothing

            def compute(self, image, keypoints):
                return real.compute(image, keypoints)

        monkeypatch.setattr(cv2, "SIFT_create", Sift)
        _, expected = real.compute(ramp, dense_keypoints(ramp.shape))
        np.testing.assert_array_equal(sift_descriptors(ramp), expected)
        assert sift_descriptors(ramp, "detect").shape == (0, 128)

    def test_one_row_image_is_padded(self):
        row = np.array([[10, 200, 10, 10, 200]], np.uint8)
        _, expected = cv2.SIFT_create().compute(pad_to_min_size(row), dense_keypoints((16, 16)))
        np.testing.assert_array_equal(sift_descriptors(row), expected)
        assert expected.shape == (4, 128) and expected.any()

    def test_blank_image_gives_zero_descriptors(self):
        np.testing.assert_array_equal(sift_descriptors(np.zeros((32, 32), np.uint8)), np.zeros((16, 128)))


class TestBoVWValues:
    def test_words_are_nearest_vocabulary_entries(self, fitted, spot_images):
        features = fitted.transform(spot_images)
        for image, row in zip(spot_images, features):
            d = sift_descriptors(image)
            distances = ((d[:, None, :] - fitted.vocabulary_[None, :, :]) ** 2).sum(axis=2)
            expected = np.bincount(distances.argmin(axis=1), minlength=8) / d.shape[0]
            np.testing.assert_allclose(row, expected)

    def test_vocabulary_learned_in_fit_only(self, fitted, spot_images):
        vocabulary, n_descriptors = fitted.vocabulary_.copy(), fitted.n_descriptors_
        fitted.transform(np.flip(spot_images, axis=2).copy())
        np.testing.assert_array_equal(fitted.vocabulary_, vocabulary)
        assert fitted.n_descriptors_ == n_descriptors
        assert fitted.vocabulary_.shape == (8, 128)

    def test_image_without_keypoints_detect_gives_zero_vector(self, spot_images, ramp):
        bovw = BoVWExtractor(n_clusters=8, keypoints="detect", random_state=0).fit(spot_images[:, :32, :32])
        np.testing.assert_array_equal(bovw.transform(ramp[np.newaxis]), 0.0)

    def test_image_without_keypoints_gets_dense_histogram(self, fitted, spot_images):
        blank = np.zeros((1, 96, 96), np.uint8)
        np.testing.assert_allclose(fitted.transform(np.concatenate([blank, spot_images])).sum(axis=1), 1.0)

    def test_one_pixel_spots(self, three_classes):
        # SIFT's detector finds nothing in these images: the dense grid describes them all.
        (X, _), (X_test, _) = three_classes
        bovw = BoVWExtractor(n_clusters=10, random_state=0).fit(X)
        assert bovw.n_descriptors_ == X.shape[0] * (64 // DENSE_STEP) ** 2
        np.testing.assert_allclose(bovw.transform(X_test).sum(axis=1), 1.0)
        with pytest.raises(ValueError, match="0 distinct SIFT descriptors.*keypoints='detect_or_dense'"):
            BoVWExtractor(n_clusters=10, keypoints="detect").fit(X)

    def test_one_row_images(self):
        X = np.random.default_rng(0).integers(0, 256, size=(10, 24))
        bovw = BoVWExtractor(n_clusters=3, random_state=0).fit(X)
        assert bovw.image_shape_ == (1, 24)
        np.testing.assert_allclose(bovw.transform(X).sum(axis=1), 1.0)

    def test_dense_mode(self, spot_images):
        bovw = BoVWExtractor(n_clusters=8, keypoints="dense", random_state=0).fit(spot_images)
        assert bovw.n_descriptors_ == spot_images.shape[0] * (96 // DENSE_STEP) ** 2

    def test_reproducible_by_random_state(self, fitted, spot_images):
        again = BoVWExtractor(n_clusters=8, random_state=0).fit(spot_images)
        np.testing.assert_array_equal(again.vocabulary_, fitted.vocabulary_)
        other = BoVWExtractor(n_clusters=8, random_state=1).fit(spot_images)
        assert not np.array_equal(other.vocabulary_, fitted.vocabulary_)

    def test_workers_give_same_values(self, fitted, spot_images):
        two = clone(fitted).set_params(n_jobs=2).fit(spot_images)
        np.testing.assert_array_equal(two.vocabulary_, fitted.vocabulary_)
        np.testing.assert_array_equal(two.transform(spot_images), fitted.transform(spot_images))


class TestDescriptorSubsample:
    def test_count_and_vocabulary(self, spot_images):
        bovw = BoVWExtractor(n_clusters=4, max_descriptors=20, random_state=0).fit(spot_images)
        assert bovw.n_descriptors_ > 20
        assert bovw.vocabulary_.shape == (4, 128)

    def test_ordered_subset_of_all(self, spot_images):
        everything = np.concatenate([sift_descriptors(image) for image in spot_images])
        bovw = BoVWExtractor(max_descriptors=20)
        kept, total = bovw._training_descriptors(spot_images, np.random.RandomState(0))
        assert kept.shape == (20, 128) and total == everything.shape[0]
        rows = [np.flatnonzero((everything == d).all(axis=1))[0] for d in kept]
        assert rows == sorted(rows)

    def test_no_random_draw_without_subsample(self, spot_images):
        rng = np.random.RandomState(0)
        kept, total = BoVWExtractor()._training_descriptors(spot_images, rng)
        assert kept.shape[0] == total
        assert rng.random_sample() == np.random.RandomState(0).random_sample()

    def test_independent_of_chunks_and_workers(self, spot_images, monkeypatch):
        bovw = BoVWExtractor(max_descriptors=20)
        expected, _ = bovw._training_descriptors(spot_images, np.random.RandomState(0))
        monkeypatch.setattr(bovw_module, "_CHUNK", 1)
        for n_jobs in (1, 2):
            kept, _ = bovw.set_params(n_jobs=n_jobs)._training_descriptors(spot_images, np.random.RandomState(0))
            np.testing.assert_array_equal(kept, expected)


class TestBoVWEstimatorProperties:
    """Common-check properties on textured images (tests/test_estimators.py uses constant ones for some)."""

    def test_pickle(self, fitted, spot_images):
        restored = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_array_equal(restored.transform(spot_images), fitted.transform(spot_images))

    def test_fit_transform_equals_fit_then_transform(self, fitted, spot_images):
        np.testing.assert_array_equal(clone(fitted).fit_transform(spot_images), fitted.transform(spot_images))

    def test_sample_order_and_subset_invariance(self, fitted, spot_images):
        features = fitted.transform(spot_images)
        order = [3, 1, 5, 0, 2, 4]
        np.testing.assert_array_equal(fitted.transform(spot_images[order]), features[order])
        np.testing.assert_array_equal(fitted.transform(spot_images[2:4]), features[2:4])

    def test_feature_names(self, fitted):
        assert fitted.get_feature_names_out().tolist() == [f"bovw_{k}" for k in range(8)]

    def test_transform_needs_fit_image_shape(self, fitted):
        with pytest.raises(ValueError, match=r"fitted on images of shape \(96, 96\)"):
            fitted.transform(np.zeros((1, 96, 64), np.uint8))


class TestBoVWValidation:
    def test_fewer_descriptors_than_clusters(self, spot_images):
        with pytest.raises(ValueError, match=r"give \d+ distinct SIFT descriptors, fewer than n_clusters=100000"):
            BoVWExtractor(n_clusters=100_000).fit(spot_images)

    def test_constant_images(self):
        # every descriptor of a constant image is the zero vector
        with pytest.raises(ValueError, match="give 1 distinct SIFT descriptors, fewer than n_clusters=2"):
            BoVWExtractor(n_clusters=2).fit(np.full((4, 32, 32), 7, np.uint8))

    def test_zero_clusters(self, spot_images):
        with pytest.raises(ValueError, match="n_clusters"):
            BoVWExtractor(n_clusters=0).fit(spot_images)

    def test_unknown_keypoints(self, spot_images):
        with pytest.raises(ValueError, match="keypoints"):
            BoVWExtractor(keypoints="grid").fit(spot_images)

    def test_zero_max_descriptors(self, spot_images):
        with pytest.raises(ValueError, match="max_descriptors"):
            BoVWExtractor(max_descriptors=0).fit(spot_images)
