import math

import numpy as np
import pytest

from diffranet.dataset.labels import LabelRule, significance_volumes, spot_sums, volume_for_count


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
        assert _rule().count(np.zeros((5, 5)), np.full((5, 5), 7.0)) == 0

    def test_spot_split_by_mask_counts_once(self):
        bragg = np.zeros((3, 5))
        bragg[1, :] = 100.0
        mask = np.zeros((3, 5), dtype=bool)
        mask[:, 2] = True  # a beamstop arm across the spot's middle
        sums = spot_sums(bragg, np.zeros_like(bragg), mask)
        assert len(sums) == 1
        assert sums.n_pixels.tolist() == [4] and sums.bragg.tolist() == [400.0]
        assert _rule().count(bragg, np.zeros_like(bragg), mask) == 1

    def test_spot_hidden_by_mask_is_not_significant(self):
        bragg = np.zeros((3, 3))
        bragg[1, 1] = 1e6
        mask = np.zeros((3, 3), dtype=bool)
        mask[1, 1] = True
        assert _rule().count(bragg, np.zeros_like(bragg), mask) == 0

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
        assert _rule().count(bragg, np.zeros_like(bragg)) == 0
        bragg[0, 0] = 9.0 + 1e-9
        assert _rule().count(bragg, np.zeros_like(bragg)) == 1

    def test_variance_formula(self):
        # one pixel: B = 20, G = 5, c = 0.1, r = 2: var = 25 * 1.01 + 0.01 * 625 + 4 = 35.5
        bragg, background = np.array([[20.0]]), np.array([[5.0]])
        sigma = math.sqrt(25 * 1.01 + 0.01 * 625 + 4)
        assert _rule(k_sigma=20 / sigma * 0.999, calibration_rms=0.1, readout_rms_photons=2.0).count(
            bragg, background) == 1
        assert _rule(k_sigma=20 / sigma * 1.001, calibration_rms=0.1, readout_rms_photons=2.0).count(
            bragg, background) == 0

    def test_saturated_spot_is_significant(self):
        # far above the detector's 65025 ceiling: the rule uses expected photons, not clipped counts
        bragg = np.zeros((5, 5))
        bragg[2, 2] = 1e9
        assert _rule(calibration_rms=0.04, readout_rms_photons=3.0).count(bragg, np.full((5, 5), 100.0)) == 1

    def test_readout_noise_scales_with_pixels(self):
        bragg = np.zeros((1, 10))
        bragg[0, :] = 1.0  # S = 10 over 10 pixels; sigma = sqrt(10 + 10 r^2)
        assert _rule(readout_rms_photons=0.0).count(bragg, np.zeros_like(bragg)) == 1
        assert _rule(readout_rms_photons=1.0).count(bragg, np.zeros_like(bragg)) == 0


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
        with pytest.raises(ValueError, match="n_significant"):
            self.rule.classify(-1)

    @pytest.mark.parametrize("kw", [dict(weak_min=0), dict(good_min=5), dict(strong_min=50), dict(k_sigma=0),
                                    dict(calibration_rms=-0.1), dict(readout_rms_photons=-1)])
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
            assert rule.count(bragg * v, background) == int(np.count_nonzero(thresholds < v))

    def test_volume_for_every_count(self):
        bragg, background = self._image()
        rule = LabelRule(calibration_rms=0.04, readout_rms_photons=3.0, weak_min=1, good_min=2, strong_min=3)
        sums = spot_sums(bragg, background)
        thresholds = rule.thresholds(sums)
        for target in range(len(sums) + 1):
            volume = volume_for_count(thresholds, target)
            assert rule.count(bragg * volume, background) == target

    def test_unreachable(self):
        assert volume_for_count(np.array([1.0, 2.0, np.inf]), 3) is None
        assert volume_for_count(np.array([1.0, 1.0]), 1) is None  # tie
        assert volume_for_count(np.array([1.0, 5.0]), 2, max_volume=4.0) is None
        assert volume_for_count(np.array([1.0, 5.0]), 1, max_volume=4.0) == 2.0

    def test_spot_capped_by_gain_error_never_significant(self):
        sums = spot_sums(np.array([[1.0]]), np.array([[0.0]]))
        # S / sigma -> 1 / c = 2 as the volume grows: never above k = 3
        assert significance_volumes(sums, 3.0, 0.5, 0.0)[0] == np.inf
