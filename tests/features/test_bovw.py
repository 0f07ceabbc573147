import pickle

import cv2
import numpy as np
import pytest
from sklearn.base import clone

from diffranet.features import BoVWExtractor
from diffranet.features.bovw import sift_descriptors


@pytest.fixture(scope="module")
def fitted(spot_images):
    return BoVWExtractor(n_clusters=8, random_state=0).fit(spot_images)


class TestSiftDescriptors:
    def test_equal_opencv(self, spot_images):
        _, expected = cv2.SIFT_create().detectAndCompute(spot_images[0], None)
        np.testing.assert_array_equal(sift_descriptors(spot_images[0]), expected)
        assert expected.shape[0] > 8

    def test_no_keypoints_gives_empty_array(self):
        assert sift_descriptors(np.zeros((32, 32), np.uint8)).shape == (0, 128)


class TestBoVWValues:
    def test_words_are_nearest_vocabulary_entries(self, fitted, spot_images):
        features = fitted.transform(spot_images)
        for image, row in zip(spot_images, features):
            d = sift_descriptors(image)
            distances = ((d[:, None, :] - fitted.vocabulary_[None, :, :]) ** 2).sum(axis=2)
            expected = np.bincount(distances.argmin(axis=1), minlength=8) / d.shape[0]
            np.testing.assert_allclose(row, expected)

    def test_vocabulary_learned_in_fit_only(self, fitted, spot_images):
        vocabulary = fitted.vocabulary_.copy()
        other = np.flip(spot_images, axis=2).copy()
        fitted.transform(other)
        np.testing.assert_array_equal(fitted.vocabulary_, vocabulary)
        assert fitted.vocabulary_.shape == (8, 128)

    def test_image_without_keypoints_gives_zero_vector(self, fitted):
        features = fitted.transform(np.zeros((2, 96, 96), np.uint8))
        np.testing.assert_array_equal(features, 0.0)

    def test_reproducible_by_random_state(self, fitted, spot_images):
        again = BoVWExtractor(n_clusters=8, random_state=0).fit(spot_images)
        np.testing.assert_array_equal(again.vocabulary_, fitted.vocabulary_)

    def test_descriptor_subsample(self, spot_images):
        bovw = BoVWExtractor(n_clusters=4, max_descriptors=20, random_state=0).fit(spot_images)
        assert bovw.n_descriptors_ > 20
        assert bovw.vocabulary_.shape == (4, 128)

    def test_workers_give_same_values(self, fitted, spot_images):
        two = clone(fitted).set_params(n_jobs=2).fit(spot_images)
        np.testing.assert_array_equal(two.transform(spot_images), fitted.transform(spot_images))


class TestBoVWEstimatorProperties:
    """The common checks that need keypoints (exempt in tests/test_estimators.py)."""

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
        with pytest.raises(ValueError, match="distinct SIFT descriptors, fewer than n_clusters=100000"):
            BoVWExtractor(n_clusters=100_000).fit(spot_images)

    def test_zero_clusters(self, spot_images):
        with pytest.raises(ValueError, match="n_clusters"):
            BoVWExtractor(n_clusters=0).fit(spot_images)

    def test_zero_max_descriptors(self, spot_images):
        with pytest.raises(ValueError, match="max_descriptors"):
            BoVWExtractor(max_descriptors=0).fit(spot_images)
