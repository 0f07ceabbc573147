import numpy as np
import pytest
from skimage.feature import local_binary_pattern

from diffranet.features import LBPExtractor
from diffranet.features.lbp import lbp_n_bins


class TestLbpNBins:
    @pytest.mark.parametrize(
        "n_points, method, expected",
        [(24, "uniform", 26), (8, "nri_uniform", 59), (4, "default", 16), (4, "ror", 16)],
    )
    def test_counts(self, n_points, method, expected):
        assert lbp_n_bins(n_points, method) == expected


class TestLBPValues:
    def test_zero_image_is_all_code_p(self):
        # Every neighbour, inside or outside the zero-padded image, equals the
        # centre: all P bits set, uniform code P.
        features = LBPExtractor(n_points=8, radius=1).fit_transform(np.zeros((1, 6, 6), np.uint8))
        np.testing.assert_array_equal(features[0], np.eye(10)[8])

    def test_bright_centre_hand_computed(self):
        # Ones with a 9 in the centre, P = 4 neighbours at R = 1 (right, up,
        # left, down), zero padding outside. Centre: all neighbours darker,
        # code 0. Corner (0, 0): right 1, up 0, left 0, down 1 -> bits 1001,
        # uniform, code 2. Edge (0, 1): right 1, up 0, left 1, down 9 -> bits
        # 1011, uniform, code 3. Four corners and four edges by symmetry.
        image = np.ones((1, 3, 3), np.uint8)
        image[0, 1, 1] = 9
        features = LBPExtractor(n_points=4, radius=1).fit_transform(image)
        np.testing.assert_allclose(features[0], [1 / 9, 0, 4 / 9, 4 / 9, 0, 0])

    @pytest.mark.parametrize(
        "n_points, radius, method",
        [(24, 3, "uniform"), (8, 1, "uniform"), (4, 0, "uniform"), (8, 2.5, "nri_uniform"), (8, 1, "ror"), (4, 2, "default")],
    )
    def test_equals_skimage_histogram(self, noise_images, n_points, radius, method):
        lbp = LBPExtractor(n_points=n_points, radius=radius, method=method)
        features = lbp.fit_transform(noise_images)
        n_bins = lbp_n_bins(n_points, method)
        for image, row in zip(noise_images, features):
            codes = local_binary_pattern(image, n_points, radius, method).astype(int).ravel()
            np.testing.assert_array_equal(row, np.bincount(codes, minlength=n_bins) / codes.size)

    @pytest.mark.parametrize("method", ["uniform", "nri_uniform", "ror", "default"])
    def test_length_does_not_depend_on_content(self, noise_images, method):
        lbp = LBPExtractor(n_points=8, radius=1, method=method)
        constant = lbp.fit_transform(np.full((2, 40, 48), 3, np.uint8))
        noisy = lbp.fit_transform(noise_images)
        assert constant.shape[1] == noisy.shape[1] == lbp_n_bins(8, method) == len(lbp.get_feature_names_out())
        np.testing.assert_allclose(noisy.sum(axis=1), 1.0)

    def test_workers_give_same_values(self, noise_images):
        one = LBPExtractor(n_points=8, radius=2, n_jobs=1).fit_transform(noise_images)
        two = LBPExtractor(n_points=8, radius=2, n_jobs=2).fit_transform(noise_images)
        np.testing.assert_array_equal(one, two)

    def test_feature_names(self):
        lbp = LBPExtractor(n_points=4, radius=1).fit(np.zeros((1, 3, 3), np.uint8))
        assert lbp.get_feature_names_out().tolist() == ["lbp_0", "lbp_1", "lbp_2", "lbp_3", "lbp_4", "lbp_5"]


class TestLBPValidation:
    X = np.zeros((2, 4, 4), dtype=np.uint8)

    def test_too_many_points_for_full_histogram(self):
        with pytest.raises(ValueError, match="n_points <= 16"):
            LBPExtractor(n_points=17, radius=1, method="default").fit(self.X)

    def test_negative_radius(self):
        with pytest.raises(ValueError, match="radius"):
            LBPExtractor(radius=-1).fit(self.X)

    def test_zero_points(self):
        with pytest.raises(ValueError, match="n_points"):
            LBPExtractor(n_points=0).fit(self.X)

    def test_unknown_method(self):
        with pytest.raises(ValueError, match="method"):
            LBPExtractor(method="var").fit(self.X)
