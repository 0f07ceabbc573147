import math

import numpy as np
import pytest

from diffranet.dataset.labels import (
    LabelRule,
    detection_volumes,
    significance_volumes,
    spot_pixels,
    spot_sums,
    volume_for_count,
)
from diffranet.simulation.response import apply_psf


def _rule(**kw):
    params = dict(k_sigma=3.0, weak_min=1, good_min=2, strong_min=3, calibration_rms=0.0, readout_rms_photons=0.0)
    params.update(kw)
    return LabelRule(**params)


class TestSpotSums:
    def test_components_are_4_connected(self):
        bragg = np.zeros((4, 4))
        bragg[0, 0] = bragg[1, 1] = 1.0  # diagonal neighbours: two spots
        bragg[3, 2:] = 2.0  # one spot of two pixels
        sums = spot_sums(bragg, np.ones_like(bragg))
        assert len(sums) == 3
        assert sums.n_pixels.tolist() == [1, 1, 2]
        assert sums.bragg.tolist() == [1, 1, 4]
        assert sums.background.tolist() == [1, 1, 2]
        assert sums.bragg_sq.tolist() == [1, 1, 8]

    def test_zero_spots(self):
        sums = spot_sums(np.zeros((5, 5)), np.full((5, 5), 7.0))
        assert len(sums) == 0
        assert _rule().count_significant(np.zeros((5, 5)), np.full((5, 5), 7.0)) == 0

    def test_spot_split_by_mask_counts_once(self):
        bragg = np.zeros((3, 5))
        bragg[1, :] = 100.0
        mask = np.zeros((3, 5), dtype=bool)
        mask[:, 2] = True  # a beamstop arm across the spot's middle
        sums = spot_sums(bragg, np.zeros_like(bragg), mask)
        assert len(sums) == 1
        assert sums.n_pixels.tolist() == [4] and sums.bragg.tolist() == [400.0]
        assert _rule().count_significant(bragg, np.zeros_like(bragg), mask) == 1

    def test_spot_hidden_by_mask_is_not_significant(self):
        bragg = np.zeros((3, 3))
        bragg[1, 1] = 1e6
        mask = np.zeros((3, 3), dtype=bool)
        mask[1, 1] = True
        assert _rule().count_significant(bragg, np.zeros_like(bragg), mask) == 0

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="one shape"):
            spot_sums(np.zeros((3, 3)), np.zeros((3, 4)))

    def test_bad_mask(self):
        with pytest.raises(ValueError, match="mask"):
            spot_sums(np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((3, 3), dtype=int))


class TestCount:
    def test_exactly_at_k_sigma_is_not_significant(self):
        bragg = np.zeros((1, 3))
        bragg[0, 0] = 9.0  # S = 9 = 3 sqrt(9)
        assert _rule().count_significant(bragg, np.zeros_like(bragg)) == 0
        bragg[0, 0] = 9.0 + 1e-9
        assert _rule().count_significant(bragg, np.zeros_like(bragg)) == 1

    def test_variance_formula(self):
        # one pixel: B = 20, G = 5, c = 0.1, r = 2: var = 25 * 1.01 + 0.01 * 625 + 4 = 35.5
        bragg, background = np.array([[20.0]]), np.array([[5.0]])
        sigma = math.sqrt(25 * 1.01 + 0.01 * 625 + 4)
        assert _rule(k_sigma=20 / sigma * 0.999, calibration_rms=0.1, readout_rms_photons=2.0).count_significant(
            bragg, background) == 1
        assert _rule(k_sigma=20 / sigma * 1.001, calibration_rms=0.1, readout_rms_photons=2.0).count_significant(
            bragg, background) == 0

    def test_saturated_spot_is_significant(self):
        # far above the detector's 65025 ceiling: the rule uses expected photons, not clipped counts
        bragg = np.zeros((5, 5))
        bragg[2, 2] = 1e9
        assert _rule(calibration_rms=0.04, readout_rms_photons=3.0).count_significant(bragg, np.full((5, 5), 100.0)) == 1

    def test_readout_noise_scales_with_pixels(self):
        bragg = np.zeros((1, 10))
        bragg[0, :] = 1.0  # S = 10 over 10 pixels; sigma = sqrt(10 + 10 r^2)
        assert _rule(readout_rms_photons=0.0).count_significant(bragg, np.zeros_like(bragg)) == 1
        assert _rule(readout_rms_photons=1.0).count_significant(bragg, np.zeros_like(bragg)) == 0


class TestClassify:
    rule = LabelRule(weak_min=5, good_min=50, strong_min=400)

    @pytest.mark.parametrize("n, label", [(0, None), (4, None), (5, 2), (49, 2), (50, 3), (399, 3), (400, 4),
                                          (10**6, 4)])
    def test_thresholds(self, n, label):
        assert self.rule.classify(n) == label

    def test_class_range(self):
        assert self.rule.class_range(2) == (5, 50)
        assert self.rule.class_range(4) == (400, math.inf)
        with pytest.raises(ValueError, match="label"):
            self.rule.class_range(1)

    def test_negative_count(self):
        with pytest.raises(ValueError, match="n_detectable"):
            self.rule.classify(-1)

    @pytest.mark.parametrize("kw", [dict(weak_min=0), dict(good_min=5), dict(strong_min=20), dict(k_sigma=0),
                                    dict(calibration_rms=-0.1), dict(readout_rms_photons=-1), dict(min_pixels=0),
                                    dict(psf="airy"), dict(psf_fwhm_um=0), dict(pixel_size_mm=-1)])
    def test_bad_parameters(self, kw):
        with pytest.raises(ValueError, match=next(iter(kw))):
            LabelRule(**kw)


class TestVolumes:
    def _image(self):
        rng = np.random.default_rng(1)
        bragg = np.zeros((40, 40))
        for r, c in rng.integers(1, 38, size=(25, 2)):
            bragg[r, c] = rng.uniform(1e-4, 1e-2)
        return bragg, rng.uniform(10, 1000, size=bragg.shape)

    def test_thresholds_match_direct_count(self):
        bragg, background = self._image()
        rule = LabelRule(calibration_rms=0.04, readout_rms_photons=3.0, weak_min=1, good_min=2, strong_min=3)
        thresholds = rule.thresholds(spot_sums(bragg, background))
        for v in np.geomspace(1e2, 1e8, 25):
            assert rule.count_significant(bragg * v, background) == int(np.count_nonzero(thresholds < v))

    def test_volume_for_every_count(self):
        bragg, background = self._image()
        rule = LabelRule(calibration_rms=0.04, readout_rms_photons=3.0, weak_min=1, good_min=2, strong_min=3)
        sums = spot_sums(bragg, background)
        thresholds = rule.thresholds(sums)
        for target in range(len(sums) + 1):
            volume = volume_for_count(thresholds, target)
            assert rule.count_significant(bragg * volume, background) == target

    def test_unreachable(self):
        assert volume_for_count(np.array([1.0, 2.0, np.inf]), 3) is None
        assert volume_for_count(np.array([1.0, 1.0]), 1) is None  # tie
        assert volume_for_count(np.array([1.0, 5.0]), 2, max_volume=4.0) is None
        assert volume_for_count(np.array([1.0, 5.0]), 1, max_volume=4.0) == 2.0

    def test_spot_capped_by_gain_error_never_significant(self):
        sums = spot_sums(np.array([[1.0]]), np.array([[0.0]]))
        # S / sigma -> 1 / c = 2 as the volume grows: never above k = 3
        assert significance_volumes(sums, 3.0, 0.5, 0.0)[0] == np.inf


class TestDetectable:
    """The label quantity: spots with min_pixels pixels k sigma above their noise after the PSF."""

    def test_two_pixels_needed(self):
        rule = _rule(k_sigma=5.0, min_pixels=2)
        bragg = np.zeros((3, 12))
        bragg[1, 0:2] = 40.0         # two pixels at 40 > 5 sqrt(40) = 31.6
        bragg[1, 5:7] = (40.0, 20.0)  # one pixel only: 20 < 5 sqrt(20)
        bragg[1, 10] = 1e6           # one pixel, however bright
        assert rule.count(bragg, np.zeros_like(bragg)) == 1
        assert _rule(k_sigma=5.0, min_pixels=1).count(bragg, np.zeros_like(bragg)) == 3

    def test_exactly_at_k_sigma_does_not_stand_out(self):
        bragg = np.zeros((1, 4))
        bragg[0, :2] = 25.0  # 25 = 5 sqrt(25)
        rule = _rule(k_sigma=5.0, min_pixels=2)
        assert rule.count(bragg, np.zeros_like(bragg)) == 0
        assert rule.count(bragg * (1 + 1e-9), np.zeros_like(bragg)) == 1

    def test_neighbours_within_reach_belong_to_the_spot(self):
        bragg = np.zeros((7, 9))
        bragg[3, 2] = 1.0
        bragg[3, 6] = 1.0
        labels, n = spot_pixels(bragg)
        assert n == 2
        assert (labels[2:5, 1:4] == 1).all() and (labels[2:5, 5:8] == 2).all()
        assert labels[3, 4] == 0 and labels[0, 0] == 0  # 2 pixels from either spot: beyond reach
        mask = np.zeros_like(bragg, dtype=bool)
        mask[3, 3] = True
        assert spot_pixels(bragg, mask)[0][3, 3] == 0

    @pytest.mark.parametrize("seed", range(4))
    def test_spot_pixels_against_brute_force_nearest_spot(self, seed):
        """Each pixel belongs to the spot at the smallest distance <= 1.5 px (ties: first offset, row-major)."""
        from scipy import ndimage

        rng = np.random.default_rng(seed)
        bragg = (rng.random((30, 34)) < 0.08) * rng.random((30, 34))
        components, n = ndimage.label(bragg > 0)
        spot_rows, spot_cols = np.nonzero(components)
        expected = np.zeros(bragg.shape, dtype=np.int32)
        for r in range(bragg.shape[0]):
            for c in range(bragg.shape[1]):
                d2 = (spot_rows - r) ** 2 + (spot_cols - c) ** 2
                near = d2 <= 1.5**2
                if not near.any():
                    continue
                best = d2[near].min()
                # among the nearest, the first offset in row-major order: smallest (dr, dc)
                candidates = sorted((int(spot_rows[i] - r), int(spot_cols[i] - c), int(components[spot_rows[i], spot_cols[i]]))
                                    for i in np.flatnonzero(near & (d2 == best)))
                expected[r, c] = candidates[0][2]
        labels, got_n = spot_pixels(bragg)
        assert got_n == n
        assert np.array_equal(labels, expected)

    @pytest.mark.parametrize("masked", [False, True])
    def test_sums_and_thresholds_from_given_spot_pixels(self, masked):
        # the dataset generator finds a shot's spots once and hands them to both
        rng = np.random.default_rng(7)
        bragg = (rng.random((40, 44)) < 0.05) * rng.uniform(0.0, 50.0, (40, 44))
        background = rng.uniform(0.5, 3.0, bragg.shape)
        mask = (rng.random(bragg.shape) < 0.1) if masked else None
        spots = spot_pixels(bragg, mask)
        for name, expected in vars(spot_sums(bragg, background, mask)).items():
            np.testing.assert_array_equal(getattr(spot_sums(bragg, background, mask, spots=spots), name), expected)
        rule = _rule(min_pixels=1)
        np.testing.assert_array_equal(rule.detection_thresholds(bragg, background, mask, spots=spots),
                                      rule.detection_thresholds(bragg, background, mask))

    def test_detection_volumes_take_the_kth_smallest_pixel(self):
        labels = np.array([[1, 1, 1, 0, 2]])
        volumes = np.array([[5.0, 2.0, 9.0, 0.1, 3.0]])
        assert detection_volumes(labels, 2, volumes, 2).tolist() == [5.0, math.inf]
        assert detection_volumes(labels, 2, volumes, 1).tolist() == [2.0, 3.0]
        assert detection_volumes(labels, 2, volumes, 4).tolist() == [math.inf, math.inf]

    def test_psf_against_a_direct_count(self):
        """With the fiber PSF: the count equals a pixel-by-pixel count on the blurred images."""
        rng = np.random.default_rng(3)
        bragg = np.zeros((48, 48))
        for r, c in rng.integers(2, 46, size=(30, 2)):
            bragg[r, c:c + rng.integers(1, 3)] = rng.uniform(50, 3000)
        background = np.full(bragg.shape, 200.0)
        rule = LabelRule(k_sigma=5.0, min_pixels=2, weak_min=1, good_min=2, strong_min=3, psf="fiber",
                         psf_fwhm_um=80.0, pixel_size_mm=0.172)
        b = apply_psf(bragg, 0.172, kind="fiber", fwhm_um=80.0)
        g = apply_psf(background, 0.172, kind="fiber", fwhm_um=80.0)
        mu = b + g
        stands_out = b > 5.0 * np.sqrt(mu * (1 + 0.04**2) + 0.04**2 * mu**2 + 9.0)
        labels, n = spot_pixels(bragg)
        per_spot = np.bincount(labels[stands_out], minlength=n + 1)[1:]
        expected = int(np.count_nonzero(per_spot >= 2))
        assert 0 < expected < n
        assert rule.count(bragg, background) == expected
        # the PSF takes photons out of single-pixel spots: fewer detectable than without it
        no_psf = LabelRule(k_sigma=5.0, min_pixels=2, weak_min=1, good_min=2, strong_min=3)
        assert rule.count(bragg, background) != no_psf.count(bragg, background)

    def test_volume_for_every_detectable_count(self):
        rng = np.random.default_rng(4)
        bragg = np.zeros((40, 40))
        for r, c in rng.integers(2, 37, size=(20, 2)):
            bragg[r, c:c + 2] = rng.uniform(1e-4, 1e-2, size=2)
        background = rng.uniform(10, 1000, size=bragg.shape)
        rule = LabelRule(weak_min=1, good_min=2, strong_min=3, psf="fiber")
        thresholds = rule.detection_thresholds(bragg, background)
        for v in np.geomspace(1e3, 1e9, 20):
            assert rule.count(bragg * v, background) == int(np.count_nonzero(thresholds < v))
        reachable = int(np.count_nonzero(np.isfinite(thresholds)))
        assert reachable > 5
        for target in range(reachable + 1):
            volume = volume_for_count(thresholds, target)
            if volume is not None:  # None only for two spots sharing a threshold
                assert rule.count(bragg * volume, background) == target

    def test_masked_spot_is_not_detectable(self):
        bragg = np.zeros((5, 6))
        bragg[2, 2:4] = 1e4
        mask = np.zeros(bragg.shape, dtype=bool)
        mask[1:4, 1:5] = True
        rule = _rule(k_sigma=5.0, min_pixels=2)
        assert rule.count(bragg, np.zeros_like(bragg)) == 1
        assert rule.count(bragg, np.zeros_like(bragg), mask) == 0

    def test_to_dict_round_trip(self):
        rule = LabelRule(psf="gauss", psf_fwhm_um=50.0, min_pixels=3)
        assert LabelRule(**rule.to_dict()).to_dict() == rule.to_dict()
