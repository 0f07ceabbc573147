"""The peak finder against hand-placed spots, pure noise and a slow reference."""

import collections

import numpy as np
import pytest
from scipy import ndimage, stats

from diffranet.peaks import PEAK_DTYPE, PeakFinderSettings, count_peaks, find_peaks, find_peaks_batch, ring_statistics
from diffranet.peaks import finder
from diffranet.peaks.finder import SQUARES_8BIT, _layout, _run

BACKGROUND = 100.0


def poisson_frame(shape=(256, 256), mean=BACKGROUND, seed=0):
    return np.random.default_rng(seed).poisson(mean, size=shape).astype(np.float64)


def add_gaussian(image, x, y, flux, sigma_px=1.0):
    """A spot centred at (x, y), in pixels from the outer corner of pixel (0, 0)."""
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]] + 0.5  # pixel centres
    image += flux / (2 * np.pi * sigma_px**2) * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma_px**2))


def reference_peaks(image, mask=None, min_snr=5.0, min_pixels=2, max_pixels=200, local_bg_radius=3, iterations=5):
    """A slow, plain transcription of the documented algorithm (numpy + scipy.ndimage).

    Coordinates of pixel centres at integers here; the finder reports them from the pixel corner.
    """
    rows, cols = image.shape
    cx, cy = (cols - 1) / 2, (rows - 1) / 2
    yy, xx = np.mgrid[:rows, :cols]
    ring = np.rint(np.hypot(xx - cx, yy - cy)).astype(int)
    valid = np.ones(image.shape, bool) if mask is None else ~mask
    threshold = np.full(ring.max() + 1, np.inf)
    for k in range(ring.max() + 1):
        values = image[(ring == k) & valid].astype(np.float64)
        lo, hi, last = -np.inf, np.inf, -1
        for _ in range(iterations):
            kept = values[(values > lo) & (values < hi)]
            if len(kept) == 0:
                break
            m, s = kept.mean(), kept.std()
            lo, hi = m - min_snr * s, m + min_snr * s
            threshold[k] = hi
            if len(kept) == last:
                break
            last = len(kept)
    candidate = valid & (image > threshold[ring])
    labels, n = ndimage.label(candidate, structure=np.ones((3, 3)))
    found = []
    radius = 2 * local_bg_radius
    for k in range(1, n + 1):
        r, c = np.nonzero(labels == k)
        if not min_pixels <= len(r) <= max_pixels:
            continue
        values = image[r, c]
        top = int(np.argmax(values))
        disc = (xx - c[top]) ** 2 + (yy - r[top]) ** 2 <= radius**2
        background = image[disc & valid & ~candidate]
        b, s = background.mean(), background.std()
        intensity = (values - b).sum()
        if intensity / s < min_snr or values[top] <= background.max():
            continue
        found.append(((values - b) @ c / intensity, (values - b) @ r / intensity, intensity, len(r)))
    return sorted(found, key=lambda p: (round(p[1]), p[0]))


class TestSpots:
    def test_gaussian_spots_positions_and_intensities(self):
        image = poisson_frame()
        truth = [(40.8, 51.2, 20000.0), (201.1, 30.7, 15000.0), (129.4, 190.9, 30000.0), (60.6, 221.0, 12000.0)]
        for x, y, flux in truth:
            add_gaussian(image, x, y, flux)
        peaks = find_peaks(image)
        assert len(peaks) == len(truth)
        for x, y, flux in truth:
            j = np.argmin(np.hypot(peaks["x"] - x, peaks["y"] - y))
            assert abs(peaks["x"][j] - x) < 0.5 and abs(peaks["y"][j] - y) < 0.5
            # pixels above 5 sigma hold most of a sigma = 1 px Gaussian (beyond ~2.5 px it is below threshold)
            assert 0.9 * flux < peaks["intensity"][j] < 1.02 * flux
            assert peaks["snr"][j] > 100

    def test_tophat_spot_intensity_and_pixel_count(self):
        image = poisson_frame(seed=1)
        image[100:103, 60:63] += 400.0  # 3 x 3 pixels, 40 sigma each
        peaks = find_peaks(image)
        assert len(peaks) == 1
        assert peaks["n_pixels"][0] == 9
        # the centre pixel (101, 61) spans 61..62 in x and 101..102 in y
        assert peaks["x"][0] == pytest.approx(61.5, abs=0.1) and peaks["y"][0] == pytest.approx(101.5, abs=0.1)
        # 9 x 400 photons, plus the Poisson noise of 9 pixels (30) and of the background estimate
        assert peaks["intensity"][0] == pytest.approx(3600.0, abs=120.0)
        assert peaks["background"][0] == pytest.approx(BACKGROUND, abs=3.0)
        assert peaks["sigma"][0] == pytest.approx(10.0, rel=0.2)

    def test_masked_spot_is_not_found(self):
        image = poisson_frame(seed=2)
        add_gaussian(image, 50.5, 50.5, 20000.0)
        add_gaussian(image, 180.5, 180.5, 20000.0)
        mask = np.zeros(image.shape, bool)
        mask[45:56, 45:56] = True
        peaks = find_peaks(image, mask)
        assert len(peaks) == 1 and abs(peaks["x"][0] - 180.5) < 0.5
        assert len(find_peaks(image)) == 2

    def test_min_and_max_pixels(self):
        image = poisson_frame(seed=3)
        image[30, 40] += 1000.0            # one pixel
        image[100:105, 100:105] += 1000.0  # 25 pixels
        assert len(find_peaks(image)) == 1  # the single pixel is below min_pixels=2
        assert len(find_peaks(image, min_pixels=1)) == 2
        assert len(find_peaks(image, min_pixels=1, max_pixels=24)) == 1
        assert len(find_peaks(image, min_pixels=26)) == 0

    def test_beam_center_and_radius_limits(self):
        image = poisson_frame(seed=4)
        add_gaussian(image, 20.5, 20.5, 20000.0)   # 10 px from (10.5, 20.5)
        add_gaussian(image, 200.5, 20.5, 20000.0)  # 190 px
        peaks = find_peaks(image, beam_center_px=(10.5, 20.5), max_radius_px=100.0)
        assert len(peaks) == 1 and abs(peaks["x"][0] - 20.5) < 0.5
        peaks = find_peaks(image, beam_center_px=(10.5, 20.5), min_radius_px=100.0)
        assert len(peaks) == 1 and abs(peaks["x"][0] - 200.5) < 0.5

    def test_adc_threshold(self):
        image = poisson_frame(seed=5)
        image[60:62, 60:62] += 200.0
        assert len(find_peaks(image)) == 1
        assert len(find_peaks(image, adc_threshold=400.0)) == 0


class TestNoise:
    def test_no_peaks_on_poisson_background(self):
        frames = np.stack([poisson_frame(seed=10 + i) for i in range(16)])
        assert count_peaks(frames).sum() == 0

    def test_single_pixel_false_positives_follow_the_poisson_tail(self):
        """With min_pixels=1 every pixel above mean + 5 sigma is a peak: as many as the Poisson tail predicts."""
        frames = np.stack([poisson_frame(seed=30 + i) for i in range(16)])
        found = count_peaks(frames, min_pixels=1).sum()
        # the ring threshold is about 100 + 5 * 10 = 150: P(X > 150) for Poisson(100)
        expected = frames.size * stats.poisson.sf(150, BACKGROUND)
        assert found <= expected + 4 * np.sqrt(expected) + 3
        assert found >= max(expected - 4 * np.sqrt(expected), 0)

    def test_ring_statistics_follow_a_radial_background(self):
        rows = cols = 301
        yy, xx = np.mgrid[:rows, :cols]
        r = np.hypot(xx - 150, yy - 150)
        expected = 2000.0 / (1.0 + r / 50.0)
        image = np.random.default_rng(6).poisson(expected).astype(float)
        image[150, 200] += 5000.0  # an outlier the clipping must ignore
        st = ring_statistics(image)
        k = np.arange(5, 150)
        truth = 2000.0 / (1.0 + k / 50.0)
        assert np.allclose(st["mean"][k], truth, rtol=0.02)
        assert np.allclose(st["sigma"][k], np.sqrt(truth), rtol=0.3)
        assert np.all(st["threshold"][k] == pytest.approx(st["mean"][k] + 5 * st["sigma"][k]))


class TestReference:
    def test_matches_a_slow_reference(self):
        rng = np.random.default_rng(7)
        image = poisson_frame((160, 180), seed=8)
        for _ in range(25):
            add_gaussian(image, rng.uniform(5, 175), rng.uniform(5, 155), rng.uniform(500, 20000), rng.uniform(0.5, 1.5))
        mask = np.zeros(image.shape, bool)
        mask[70:90, 85:95] = True
        image32 = image.astype(np.float32)
        found = find_peaks(image32, mask)
        reference = reference_peaks(image32.astype(np.float64), mask)
        assert len(found) == len(reference) > 10
        ref = np.array(reference)
        order = np.lexsort((found["x"], np.rint(found["y"] - 0.5)))
        assert np.allclose(found["x"][order] - 0.5, ref[:, 0], atol=1e-6)
        assert np.allclose(found["y"][order] - 0.5, ref[:, 1], atol=1e-6)
        assert np.allclose(found["intensity"][order], ref[:, 2], rtol=1e-6)
        assert (found["n_pixels"][order] == ref[:, 3]).all()

    def test_threads_and_batches_agree(self):
        rng = np.random.default_rng(9)
        frames = np.stack([poisson_frame((200, 220), seed=20 + i) for i in range(5)])
        for frame in frames:
            for _ in range(20):
                add_gaussian(frame, rng.uniform(0, 220), rng.uniform(0, 200), 10000.0)
        single = [find_peaks(f, n_threads=1) for f in frames]
        for n_threads in (1, 2, 3):
            batch = find_peaks_batch(frames, n_threads=n_threads)
            assert all(np.array_equal(a, b) for a, b in zip(single, batch))
            assert np.array_equal(find_peaks(frames[0], n_threads=n_threads), single[0])
        assert list(count_peaks(frames)) == [len(s) for s in single]

    def test_integer_images_and_dtype(self):
        image = poisson_frame(seed=11).astype(np.uint16)
        image[10:12, 10:12] += 500
        peaks = find_peaks(image)
        assert peaks.dtype == PEAK_DTYPE and len(peaks) == 1


class TestValidation:
    @pytest.mark.parametrize("image", [np.zeros(5), np.zeros((2, 3, 4)), np.zeros((0, 4)), np.zeros((3, 3), bool),
                                       np.array([["a"]])])
    def test_bad_image(self, image):
        with pytest.raises(ValueError, match="image"):
            find_peaks(image)

    def test_non_finite(self):
        image = np.zeros((8, 8))
        image[1, 1] = np.nan
        with pytest.raises(ValueError, match="finite"):
            find_peaks(image)

    @pytest.mark.parametrize("mask", [np.zeros((8, 8), int), np.zeros((8, 9), bool)])
    def test_bad_mask(self, mask):
        with pytest.raises(ValueError, match="mask"):
            find_peaks(np.zeros((8, 8)), mask)

    @pytest.mark.parametrize("kwargs, match", [
        ({"min_snr": 0}, "min_snr"), ({"min_pixels": 0}, "min_pixels"), ({"min_pixels": 5, "max_pixels": 4},
                                                                          "max_pixels"),
        ({"local_bg_radius": 0}, "local_bg_radius"), ({"iterations": 0}, "iterations"),
        ({"min_radius_px": 10, "max_radius_px": 5}, "max_radius_px"), ({"beam_center_px": (1.0,)}, "beam_center"),
        ({"beam_center_px": (np.nan, 1.0)}, "beam_center"), ({"n_threads": 0}, "n_threads"),
        ({"n_threads": -1}, "n_threads"),
        ({"adc_threshold": np.inf}, "adc_threshold"),
    ])
    def test_bad_parameters(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            find_peaks(np.zeros((8, 8)), **kwargs)

    def test_batch_needs_a_stack(self):
        with pytest.raises(ValueError, match="3-D"):
            count_peaks(np.zeros((8, 8)))


class TestBinding:
    """The compiled kernel refuses what it cannot read (ValueError), whatever the Python layer did."""

    LAYOUT = dict(rows=8, cols=8, beam_center_x=4.0, beam_center_y=4.0, mask=None)

    @classmethod
    def call(cls, images=None, level_values=None, **changes):
        from diffranet import _core

        layout = {name: changes.pop(name) if name in changes else value for name, value in cls.LAYOUT.items()}
        args = dict(min_snr=5.0, adc_threshold=0.0, min_pixels=2, max_pixels=200, local_bg_radius=3, iterations=5,
                    min_radius_px=0.0, max_radius_px=np.inf, n_threads=1)
        args.update(changes)
        images = np.zeros((1, 8, 8), np.float32) if images is None else images
        return _core.find_peaks(images, _core.RingLayout(**layout), level_values, **args)

    @pytest.mark.parametrize("images", [np.zeros((1, 8, 8)), np.zeros((8, 8), np.float32),
                                        np.zeros((1, 8, 16), np.float32)[:, :, ::2], np.zeros((1, 0, 8), np.float32),
                                        np.zeros((1, 8, 9), np.float32), np.zeros((1, 8, 8), np.uint8)])
    def test_bad_images(self, images):
        with pytest.raises(ValueError):
            self.call(images)

    @pytest.mark.parametrize("changes", [{"min_snr": 0.0}, {"min_pixels": 0}, {"max_pixels": 1, "min_pixels": 2},
                                         {"local_bg_radius": 0}, {"iterations": 0}, {"beam_center_x": np.nan},
                                         {"beam_center_y": 2e7}, {"rows": 0}, {"max_radius_px": 0.0},
                                         {"n_threads": -1}, {"adc_threshold": np.inf}])
    def test_bad_values(self, changes):
        with pytest.raises(ValueError):
            self.call(**changes)

    def test_bad_mask(self):
        with pytest.raises(ValueError, match="mask"):
            self.call(mask=np.zeros((8, 8), bool))
        with pytest.raises(ValueError, match="mask"):
            self.call(mask=np.zeros((8, 7), np.uint8))
        assert self.call(mask=np.zeros((8, 8), np.uint8))["counts"].tolist() == [0]

    @pytest.mark.parametrize("level_values", [np.zeros(256), np.zeros(255, np.float32),
                                              np.full(256, np.nan, np.float32)])
    def test_bad_level_values(self, level_values):
        with pytest.raises(ValueError, match="level_values"):
            self.call(np.zeros((1, 8, 8), np.uint8), level_values)
        # float images take no table
        with pytest.raises(ValueError):
            self.call(np.zeros((1, 8, 8), np.float32), np.zeros(256, np.float32))


class TestLevels:
    """8-bit images read through a table of level values find the peaks of the values the table gives them."""

    @staticmethod
    def levels(seed, shape=(200, 220)):
        """A model input's kind of image: round(sqrt(counts + 10)) of a faint background with spots."""
        rng = np.random.default_rng(seed)
        counts = poisson_frame(shape, mean=4.0, seed=seed)
        for _ in range(30):
            add_gaussian(counts, rng.uniform(0, shape[1]), rng.uniform(0, shape[0]), rng.uniform(50, 3000))
        return np.clip(np.rint(np.sqrt(counts + 10)), 0, 255).astype(np.uint8)

    @pytest.mark.parametrize("n_threads", [1, 2])
    @pytest.mark.parametrize("table", ["squares", "shuffled"])
    def test_same_peaks_as_the_values(self, table, n_threads):
        # any table of integers (a shuffled one too): every sum is exact, so the histogram gives the same rings
        values = SQUARES_8BIT if table == "squares" else np.random.default_rng(3).permutation(256).astype(np.float32)
        images = np.stack([self.levels(seed) for seed in range(4)])
        mask = np.zeros(images.shape[1:], bool)
        mask[50:60, :40] = True
        settings = PeakFinderSettings()
        by_level = _run(images, mask, (101.3, 98.7), settings, n_threads, values)
        by_value = _run(np.ascontiguousarray(values[images]), mask, (101.3, 98.7), settings, n_threads)
        assert by_value["counts"].sum() > (40 if table == "squares" else 0)
        for name, column in by_value.items():
            assert np.array_equal(by_level[name], column), name


class TestLayoutCache:
    """Ring layouts are built once per shape, centre and mask contents, and the kept ones are bounded."""

    def test_one_layout_per_shape_centre_and_mask(self):
        plain = _layout((8, 8), 3.5, 3.5, None)
        assert _layout((8, 8), 3.5, 3.5, None) is plain
        assert _layout((8, 8), 3.5, 3.6, None) is not plain
        assert _layout((8, 9), 3.5, 3.5, None) is not plain
        mask = np.zeros((8, 8), np.uint8)
        masked = _layout((8, 8), 3.5, 3.5, mask)
        assert masked is not plain and _layout((8, 8), 3.5, 3.5, mask.copy()) is masked
        mask[0, 0] = 1
        assert _layout((8, 8), 3.5, 3.5, mask) is not masked

    def test_a_changed_mask_is_never_served_a_stale_layout(self):
        image = poisson_frame((64, 64), seed=4)
        image[20:22, 30:32] += 2000
        mask = np.zeros(image.shape, bool)
        for covered, expected in [(False, 1), (True, 0), (False, 1)]:
            mask[20:22, 30:32] = covered
            assert len(find_peaks(image, mask)) == expected

    def test_the_kept_layouts_are_bounded_in_pixels(self, monkeypatch):
        monkeypatch.setattr(finder, "_LAYOUTS", collections.OrderedDict())
        monkeypatch.setattr(finder, "_LAYOUTS_MAX_PIXELS", 100)
        for side in (5, 6, 7):
            _layout((side, side), 1.0, 1.0, None)
        assert [key[0] for key in finder._LAYOUTS] == [(6, 6), (7, 7)]  # 36 + 49 pixels; the 25 went first
        _layout((20, 20), 1.0, 1.0, None)
        assert [key[0] for key in finder._LAYOUTS] == [(20, 20)]  # the newest stays, alone over the bound
