import pickle

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops
from sklearn.base import clone

from diffranet.features import GLCM_PROPERTIES, GLCMExtractor
from diffranet.features.glcm import glcm_offsets


def skimage_features(image, distances, angles, levels=256, symmetric=False):
    """Reference: graycomatrix + graycoprops, ordered (distance, angle, property)."""
    glcm = graycomatrix(image, distances, np.deg2rad(angles), levels, symmetric=symmetric)
    props = np.stack([graycoprops(glcm, p) for p in GLCM_PROPERTIES], axis=-1)
    return props.reshape(-1)


class TestGlcmOffsets:
    def test_directions(self):
        # 0 deg along the row, 90 deg down the column, 45 deg down-right, 135 deg down-left
        assert glcm_offsets([1], [0, 45, 90, 135]).tolist() == [[0, 1], [1, 1], [1, 0], [1, -1]]

    def test_rounding_like_skimage(self):
        # d = 5 at 45 deg: 5 / sqrt(2) = 3.54 -> 4 pixels in each direction
        assert glcm_offsets([5], [45]).tolist() == [[4, 4]]


class TestGLCMValues:
    def test_hand_computed(self):
        # Rows [0 0 1 1]: horizontal pairs (0,0), (0,1), (1,1) per row, so
        # P = 1/3 each; contrast = 1/3, dissimilarity = 1/3,
        # homogeneity = 1/3 + 1/3 * 1/2 + 1/3 = 5/6, ASM = 3 * 1/9 = 1/3.
        X = np.array([[[0, 0, 1, 1], [0, 0, 1, 1]]], dtype=np.uint8)
        glcm = GLCMExtractor(distances=[1], angles=[0], levels=2, properties=["contrast", "homogeneity", "ASM"])
        # levels=2 bins grey values g to g * 2 // 256 = 0, so use grey values 0 and 128
        features = glcm.fit_transform(X * 128)
        np.testing.assert_allclose(features, [[1 / 3, 5 / 6, 1 / 3]])

    @pytest.mark.parametrize("symmetric", [False, True])
    def test_equals_skimage(self, noise_images, symmetric):
        distances, angles = [1, 2, 4, 5, 8], [0, 45, 90, 135]
        features = GLCMExtractor(distances=distances, angles=angles, symmetric=symmetric).fit_transform(noise_images)
        expected = [skimage_features(im, distances, angles, symmetric=symmetric) for im in noise_images]
        np.testing.assert_allclose(features, expected, rtol=1e-12, atol=1e-12)

    def test_levels_bin_grey_values(self, noise_images):
        features = GLCMExtractor(distances=[1, 3], angles=[0, 60], levels=8).fit_transform(noise_images)
        expected = [skimage_features(im // 32, [1, 3], [0, 60], levels=8) for im in noise_images]
        np.testing.assert_allclose(features, expected, rtol=1e-12, atol=1e-12)

    def test_low_dynamic_range_image(self):
        # Grey levels 10..13 only: exercises the restriction to the occupied grey-level square.
        image = np.random.default_rng(3).integers(10, 14, size=(30, 30), dtype=np.uint8)
        features = GLCMExtractor(distances=[1, 2], angles=[0, 45, 90]).fit_transform(image[None])
        np.testing.assert_allclose(features[0], skimage_features(image, [1, 2], [0, 45, 90]), rtol=1e-12)

    def test_offset_outside_image_gives_skimage_empty_values(self):
        # A distance of 8 in a 4 x 4 image leaves no pair: zeros, correlation 1.
        image = np.arange(16, dtype=np.uint8).reshape(4, 4)
        features = GLCMExtractor(distances=[8], angles=[0]).fit_transform(image[None])
        np.testing.assert_array_equal(features[0], [0, 0, 0, 0, 0, 1])
        np.testing.assert_array_equal(features[0], skimage_features(image, [8], [0]))

    def test_constant_image_correlation_is_one(self):
        features = GLCMExtractor(distances=[1], angles=[0]).fit_transform(np.full((1, 5, 5), 9, np.uint8))
        np.testing.assert_array_equal(features[0], [0, 0, 1, 1, 1, 1])

    def test_float_and_int_input_equal_uint8(self, noise_images):
        glcm = GLCMExtractor(distances=[1, 2], angles=[0, 90])
        expected = glcm.fit_transform(noise_images)
        np.testing.assert_array_equal(glcm.fit_transform(noise_images.astype(np.float32)), expected)
        np.testing.assert_array_equal(glcm.fit_transform(noise_images.astype(np.int64)), expected)
        # floats are rounded to the nearest grey level
        np.testing.assert_array_equal(glcm.fit_transform(np.clip(noise_images + 0.3, 0, 255)), expected)

    def test_two_d_input_is_one_row_images(self, noise_images):
        rows = noise_images[:, 0, :]
        glcm = GLCMExtractor(distances=[1, 2], angles=[0])
        np.testing.assert_array_equal(glcm.fit_transform(rows), glcm.fit_transform(rows[:, None, :]))

    def test_threads_give_same_values(self, noise_images):
        one = GLCMExtractor(distances=[1, 5], angles=[0, 135], n_jobs=1).fit_transform(noise_images)
        two = GLCMExtractor(distances=[1, 5], angles=[0, 135], n_jobs=2).fit_transform(noise_images)
        np.testing.assert_array_equal(one, two)

    def test_property_selection_and_names(self, noise_images):
        glcm = GLCMExtractor(distances=[1, 2], angles=[0, 22.5], properties=["energy", "contrast"])
        features = glcm.fit_transform(noise_images)
        full = GLCMExtractor(distances=[1, 2], angles=[0, 22.5]).fit_transform(noise_images).reshape(6, 4, 6)
        np.testing.assert_array_equal(features, full[:, :, [4, 0]].reshape(6, 8))
        assert glcm.get_feature_names_out().tolist()[:4] == [
            "energy_d1_a0",
            "contrast_d1_a0",
            "energy_d1_a22.5",
            "contrast_d1_a22.5",
        ]

    def test_clone_and_pickle(self, noise_images):
        glcm = GLCMExtractor(distances=[1, 2], angles=[45]).fit(noise_images)
        restored = pickle.loads(pickle.dumps(glcm))
        np.testing.assert_array_equal(restored.transform(noise_images), glcm.transform(noise_images))
        assert clone(glcm).get_params() == glcm.get_params()


class TestGLCMValidation:
    X = np.zeros((2, 4, 4), dtype=np.uint8)

    @pytest.mark.parametrize(
        "params, match",
        [
            ({"distances": []}, "distances must not be empty"),
            ({"distances": [1, 1]}, "must not repeat"),
            ({"distances": [0]}, "integers >= 1"),
            ({"distances": [1.5]}, "integers >= 1"),
            ({"angles": [float("nan")]}, "finite numbers"),
            ({"angles": ["up"]}, "finite numbers"),
            ({"properties": ["entropy"]}, "must be among"),
            ({"properties": ["ASM", "ASM"]}, "must not repeat"),
            ({"levels": 0}, "levels"),
            ({"levels": 257}, "levels"),
        ],
    )
    def test_bad_parameters(self, params, match):
        with pytest.raises(ValueError, match=match):
            GLCMExtractor(**params).fit(self.X)

    def test_negative_grey_value(self):
        with pytest.raises(ValueError, match="got -1"):
            GLCMExtractor().fit(np.full((1, 3, 3), -1))

    def test_grey_value_above_255(self):
        with pytest.raises(ValueError, match="got 256"):
            GLCMExtractor().fit(np.full((1, 3, 3), 256))

    def test_four_dimensional_input(self):
        with pytest.raises(ValueError, match="n_images, height, width"):
            GLCMExtractor().fit(np.zeros((1, 2, 3, 3)))

    def test_zero_width_images(self):
        with pytest.raises(ValueError, match="one pixel wide"):
            GLCMExtractor().fit(np.zeros((1, 3, 0)))

    def test_transform_needs_fit_image_width(self):
        glcm = GLCMExtractor().fit(self.X)
        with pytest.raises(ValueError, match=r"fitted on images of shape \(4, 4\)"):
            glcm.transform(np.zeros((2, 4, 5), dtype=np.uint8))

    def test_transform_needs_fit_image_height(self):
        glcm = GLCMExtractor().fit(self.X)
        with pytest.raises(ValueError, match="X has 5 features"):
            glcm.transform(np.zeros((2, 5, 4), dtype=np.uint8))
