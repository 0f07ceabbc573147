"""PeakFinderHitFinder on frames with and without Bragg spots."""

import numpy as np
import pytest

from diffranet import PeakFinderHitFinder
from diffranet.peaks import count_peaks


def frames_with_spots(n_spots, shape=(128, 128), seed=0):
    """Poisson(100) frames with ``n_spots[i]`` 2 x 2-pixel spots of 600 photons per pixel in frame i."""
    rng = np.random.default_rng(seed)
    frames = rng.poisson(100.0, size=(len(n_spots),) + shape).astype(np.float64)
    for frame, n in zip(frames, n_spots):
        for k in range(n):
            r, c = 24 + 8 * (k // 11), 20 + 8 * (k % 11)  # away from the corners' short rings
            frame[r:r + 2, c:c + 2] += 600.0
    return frames


class TestHitFinder:
    def test_counts_match_the_peak_finder(self):
        frames = frames_with_spots([0, 3, 12, 30])
        finder = PeakFinderHitFinder(min_peaks=10, input_scale="linear").fit(frames, [0, 0, 1, 1])
        assert finder.count_peaks(frames).tolist() == [0, 3, 12, 30]
        assert finder.count_peaks(frames).tolist() == count_peaks(frames).tolist()
        assert finder.predict(frames).tolist() == [0, 0, 1, 1]
        assert np.isnan(finder.training_accuracy_)

    def test_fit_learns_the_threshold(self):
        frames = frames_with_spots([0, 2, 5, 7, 9, 15, 20, 40])
        finder = PeakFinderHitFinder(input_scale="linear").fit(frames, [0, 0, 0, 0, 1, 1, 1, 1])
        assert finder.min_peaks_ == 8  # smallest threshold separating 7 from 9
        assert finder.training_accuracy_ == 1.0
        assert finder.predict(frames).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]

    def test_five_class_labels_map_to_hit(self):
        frames = frames_with_spots([0, 1, 12, 30, 60])
        finder = PeakFinderHitFinder(input_scale="linear").fit(frames, [0, 1, 2, 3, 4])
        assert finder.classes_.tolist() == [0, 1]
        assert finder.predict(frames).tolist() == [0, 0, 1, 1, 1]
        # the same labels read as hit / miss are refused
        with pytest.raises(ValueError, match="target='hit'"):
            PeakFinderHitFinder(input_scale="linear", target="hit").fit(frames, [0, 1, 2, 3, 4])

    def test_target_class_reads_0_and_1_as_misses(self):
        frames = frames_with_spots([0, 20])
        finder = PeakFinderHitFinder(input_scale="linear", target="class").fit(frames, [0, 1])
        assert finder.predict(frames).tolist() == [0, 0]

    def test_predict_proba(self):
        frames = frames_with_spots([0, 5, 9, 10, 11, 20, 60])
        finder = PeakFinderHitFinder(min_peaks=10, input_scale="linear").fit(frames, [0, 0, 0, 1, 1, 1, 1])
        proba = finder.predict_proba(frames)
        assert proba.shape == (7, 2) and np.allclose(proba.sum(axis=1), 1.0)
        assert np.all(np.diff(proba[:, 1]) > 0)  # more peaks, more likely a hit
        assert (proba.argmax(axis=1) == finder.predict(frames)).all()
        assert proba[-1, 1] > 0.99 and proba[0, 1] < 1e-3

    def test_sqrt_compressed_frames(self):
        frames = frames_with_spots([0, 15])
        grey = np.rint(np.sqrt(frames)).astype(np.uint8)
        finder = PeakFinderHitFinder(min_peaks=10).fit(grey, [0, 1])
        assert finder.predict(grey).tolist() == [0, 1]
        with pytest.raises(ValueError, match="Negative"):
            finder.predict(-np.ones_like(frames))

    def test_shape_must_match_fit(self):
        frames = frames_with_spots([0, 15])
        finder = PeakFinderHitFinder(min_peaks=10, input_scale="linear").fit(frames, [0, 1])
        with pytest.raises(ValueError, match="features|shape"):
            finder.predict(frames[:, :50])

    @pytest.mark.parametrize("params", [{"min_peaks": 0}, {"input_scale": "log"}, {"min_pixels": 3, "max_pixels": 2},
                                        {"min_radius_px": 5.0, "max_radius_px": 4.0}])
    def test_bad_parameters(self, params):
        frames = frames_with_spots([0, 15])
        with pytest.raises(ValueError):
            PeakFinderHitFinder(**{"input_scale": "linear", **params}).fit(frames, [0, 1])
