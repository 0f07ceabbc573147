import importlib
import math

import numpy as np
import pytest
from scipy import ndimage

from diffranet import Detector
from diffranet.inference import FrameGeometry, Preprocessing, preprocess
from diffranet.simulation.response import to_8bit
from diffranet.inference.geometry import PAPER_PREPROCESSING
from diffranet.inference.preprocess import is_model_input
from diffranet.peaks import PeakFinderHitFinder

pp = importlib.import_module("diffranet.inference.preprocess")

# training detector: 128 x 128 pixels of 0.5 mm at 50 mm, 1.5 A, beam at the centre
TARGET = Preprocessing(shape=(128, 128), geometry=FrameGeometry(0.5, 50.0, 1.5), adc_offset=0.0)
# source detector: 400 x 400 pixels of 0.1 mm at 100 mm, 1.0 A, beam at (200, 200)
SOURCE = FrameGeometry(0.1, 100.0, 1.0, (200.0, 200.0))


def landing(source, row, col):
    """Where the resolution of source pixel (row, col) is seen on TARGET: (2theta' deg, azimuth rad, radius px)."""
    dx = (col + 0.5 - source.beam_center_px[0]) * source.pixel_size_mm
    dy = (row + 0.5 - source.beam_center_px[1]) * source.pixel_size_mm
    two_theta = math.atan2(math.hypot(dx, dy), source.distance_mm)
    d = source.wavelength_A / (2 * math.sin(two_theta / 2))
    g = TARGET.geometry
    two_theta_t = 2 * math.asin(g.wavelength_A / (2 * d))
    return math.degrees(two_theta_t), math.atan2(dy, dx), g.distance_mm * math.tan(two_theta_t) / g.pixel_size_mm


class TestResample:
    @pytest.mark.parametrize("row, col", [(260, 310), (120, 90), (200, 385), (30, 200)])
    def test_spot_lands_at_its_resolution(self, row, col):
        frame = np.zeros((400, 400), np.float32)
        frame[row, col] = 1000.0
        counts, masked = pp.to_training_counts(frame, None, SOURCE, TARGET)
        assert counts.sum() == pytest.approx(1000.0, rel=1e-6)  # every photon arrives
        r, c = np.unravel_index(np.argmax(counts), counts.shape)
        assert counts[r, c] == pytest.approx(1000.0, rel=1e-6)  # in one training pixel
        two_theta_t, azimuth, radius_px = landing(SOURCE, row, col)
        # the simulator's own geometry says which 2theta that training pixel sees
        detector = Detector(shape=TARGET.shape, pixel_size_mm=0.5, distance_mm=50.0)
        pixel_two_theta = detector.two_theta_deg()[r, c]
        half_pixel_deg = math.degrees(0.5 * math.sqrt(2) * 0.5 / 50.0)
        assert abs(pixel_two_theta - two_theta_t) <= half_pixel_deg
        # same azimuth around the beam, within a pixel at that radius
        found = math.atan2(r + 0.5 - 64.0, c + 0.5 - 64.0)
        assert abs(math.remainder(found - azimuth, 2 * math.pi)) <= 1.0 / radius_px
        assert not masked[r, c]

    def test_photons_summed(self):
        rng = np.random.default_rng(1)
        frame = rng.poisson(3.0, (400, 400)).astype(np.float32)
        sums, covered, expected = pp.resample(frame, np.zeros(frame.shape, bool), SOURCE, TARGET)
        assert sums.sum() == pytest.approx(frame.sum(dtype=np.float64), rel=1e-9)   # all inside TARGET
        assert covered.sum() == pytest.approx(frame.size, rel=1e-9)
        # the Jacobian's area agrees with the pixels that arrived, away from the frame's edge
        inside = ndimage.binary_erosion(covered > 0, iterations=2)
        assert expected[inside].sum() == pytest.approx(covered[inside].sum(), rel=0.005)

    def test_background_level_kept(self):
        # sampling a fine grid by a coarse one: some training pixels get 2 source columns, others 3;
        # the completed counts follow the area, not the sampling
        frame = np.full((400, 400), 3.0, np.float32)
        counts, masked = pp.to_training_counts(frame, None, SOURCE, TARGET)
        _, covered, expected = pp.resample(frame, np.zeros(frame.shape, bool), SOURCE, TARGET)
        inner = ~masked & (covered >= expected)
        assert covered[inner].std() > 0.05 * covered[inner].mean()        # the sampling does vary
        np.testing.assert_allclose(counts[inner], 3.0 * expected[inner], rtol=1e-5)
        inside = ndimage.binary_erosion(covered > 0, iterations=2)
        assert counts[inside].sum() == pytest.approx(3.0 * covered[inside].sum(), rel=0.005)

    def test_coarse_source_leaves_no_holes(self):
        # source pixels larger than training pixels: each is split, every training pixel under the frame is fed
        coarse = FrameGeometry(1.0, 50.0, 1.5, (20.0, 20.0))
        frame = np.ones((40, 40), np.float32)
        counts, masked = pp.to_training_counts(frame, None, coarse, TARGET)
        # the frame covers +-20 mm, 40 training pixels around the centre
        assert not masked[25:103, 25:103].any() and masked[:, :20].all()
        np.testing.assert_allclose(counts[25:103, 25:103], 0.25, rtol=1e-3)

    def test_masked_pixels_never_look_like_spots_or_sky(self):
        rng = np.random.default_rng(2)
        frame = rng.poisson(5.0, (400, 400)).astype(np.float32)
        mask = np.zeros(frame.shape, bool)
        frame[150:167, :] = 1e6          # a hot gap, masked
        mask[150:167, :] = True
        frame[:, 250:257] = -1           # a Pilatus-style gap flag
        y, x = np.indices(frame.shape)
        stop = np.hypot(x + 0.5 - 200, y + 0.5 - 200) < 40   # a beamstop shadow
        frame[stop] = 0.0
        mask |= stop
        counts, masked = pp.to_training_counts(frame, mask, SOURCE, TARGET)
        seen = counts[~masked]
        background = np.median(seen)
        assert counts.max() < 2 * background              # no hot gap anywhere
        # the beamstop shadow maps to masked training pixels, filled with the background around them
        assert masked[62:66, 62:66].all()
        assert np.all(counts[62:66, 62:66] > 0.5 * background)
        image = preprocess(frame, mask, SOURCE, TARGET)
        assert image.max() < to_8bit(np.float32(2 * background))

    def test_unreachable_resolution_is_masked(self):
        # the training detector sees beyond 2theta 45 deg only up to its edge; a frame at 1.5 A whose
        # edge is at 20 deg covers only the centre of a large training detector
        wide = Preprocessing(shape=(400, 400), geometry=FrameGeometry(0.5, 50.0, 1.5), adc_offset=0.0)
        frame = np.ones((400, 400), np.float32)
        _, masked = pp.to_training_counts(frame, None, FrameGeometry(0.1, 100.0, 1.5), wide)
        assert not masked[200, 200] and masked[0, 0]


class TestBinAndCrop:
    def test_sums_blocks_around_the_centre(self):
        frame = np.arange(100 * 120, dtype=np.float32).reshape(100, 120)
        sums, covered, expected = pp.bin_and_crop(frame, np.zeros(frame.shape, bool), 2, (20, 20),
                                                  beam_center_px=(60, 50))
        np.testing.assert_allclose(sums, frame[30:70, 40:80].reshape(20, 2, 20, 2).sum(axis=(1, 3)), rtol=1e-6)
        assert np.all(covered == 4) and np.all(expected == 4)

    def test_masked_pixels_completed_and_outside_masked(self):
        frame = np.full((8, 8), 2.0, np.float32)
        invalid = np.zeros(frame.shape, bool)
        invalid[0, 0] = True                    # one of four pixels of a block
        invalid[6:8, 6:8] = True                # a whole block
        frame[invalid] = 1e6
        counts, masked = pp.to_training_counts(frame, invalid, preprocessing=Preprocessing(
            shape=(5, 4), adc_offset=0.0, bin_factor=2), beam_center_px=(4, 3))
        # the window starts one block above the frame: its first row of blocks is outside
        assert masked[0].all() and masked[4, 3] and not masked[4, 2]
        # 3 pixels of 2 photons + the background of the fourth; masked blocks hold the background
        np.testing.assert_allclose(counts, 8.0)

    def test_default_factor(self):
        assert pp.default_bin_factor((2527, 2463), (512, 512)) == 4
        assert pp.default_bin_factor((512, 1024), (512, 512)) == 1
        assert pp.default_bin_factor((100, 100), (512, 512)) == 1


class TestFillMasked:
    def test_ring_median_not_spot_not_zero(self):
        y, x = np.indices((64, 64))
        r = np.hypot(x + 0.5 - 32, y + 0.5 - 32)
        counts = (100.0 / (1 + r)).astype(np.float32)      # background falling with radius
        counts[10, 10] = 1e5                                # a spot
        masked = np.zeros(counts.shape, bool)
        masked[30:34, 5:9] = True
        filled = pp.fill_masked(counts, masked, (32.0, 32.0))
        assert filled.dtype == np.float32
        np.testing.assert_allclose(filled[masked], counts[masked], rtol=0.1)
        np.testing.assert_array_equal(filled[~masked], counts[~masked])

    def test_whole_ring_masked_takes_nearest_ring(self):
        counts = np.full((32, 32), 7.0, np.float32)
        y, x = np.indices(counts.shape)
        masked = np.abs(np.hypot(x + 0.5 - 16, y + 0.5 - 16) - 8) < 2
        assert np.all(pp.fill_masked(counts, masked)[masked] == 7.0)

    def test_all_masked(self):
        assert not pp.fill_masked(np.ones((4, 4)), np.ones((4, 4), bool)).any()


class TestPreprocess:
    def test_offset_and_square_root(self):
        frame = np.full((1024, 1024), 4.0, np.float32)
        image = preprocess(frame)                   # paper: 2 x 2 bins of 16 photons, + 10 ADU, sqrt
        assert image.shape == (512, 512) and image.dtype == np.uint8
        assert np.all(image == round(math.sqrt(26)))

    def test_invalid_pixels(self):
        frame = np.array([[0.0, -1.0, -2.0, np.nan, np.inf, 100.0, 5.0]])
        np.testing.assert_array_equal(pp.invalid_pixels(frame, saturation=100),
                                      [[False, True, True, True, True, True, False]])
        np.testing.assert_array_equal(pp.invalid_pixels(np.array([[3, -1]], np.int32), mask=[[1, 0]]),
                                      [[True, True]])

    def test_same_result_for_any_input_dtype(self):
        rng = np.random.default_rng(3)
        frame = rng.poisson(2.0, (130, 130))
        a = preprocess(frame.astype(np.int32), geometry=SOURCE, preprocessing=TARGET)
        b = preprocess(frame.astype(np.float32), geometry=SOURCE, preprocessing=TARGET)
        np.testing.assert_array_equal(a, b)

    @pytest.mark.parametrize("geometry", [None, FrameGeometry(0.1, 150.0, 1.0)])
    def test_a_background_past_the_8bit_range_is_scaled_back(self, geometry):
        # 40,000 photons a pixel, summed 4 or more to an input pixel: past 65,025 everywhere
        rng = np.random.default_rng(5)
        frame = rng.poisson(40_000.0, (1200, 1200)).astype(np.float32)
        spots = rng.integers(100, 1100, (60, 2))
        for dr in range(3):  # spots of 3 x 3 pixels, 100 noise units each
            for dc in range(3):
                frame[spots[:, 0] + dr, spots[:, 1] + dc] += 20_000.0
        image = preprocess(frame, geometry=geometry)
        plain = to_8bit(pp.to_training_counts(frame, geometry=geometry)[0] + np.float32(10.0))
        assert np.mean(plain == 255) > 0.5  # what the input would be without the scaling
        assert np.mean(image == 255) < 0.01 and abs(np.median(image) - pp.RANGE_MEDIAN_LEVEL) <= 1
        assert image.max() >= pp.RANGE_MEDIAN_LEVEL + 20  # the spots show again
        if geometry is not None:
            counter = PeakFinderHitFinder(min_peaks=10).fit(np.zeros((1, 512, 512), np.uint8), [0])
            assert counter.count_peaks(image[None])[0] >= 30

    def test_bright_spots_alone_are_not_scaled(self):
        frame = np.full((1024, 1024), 4.0, np.float32)
        frame[::8, ::8] = 1e6
        image = preprocess(frame)
        assert np.all(image[image != 255] == round(math.sqrt(26)))

    @pytest.mark.parametrize("frame, kwargs, match", [
        (np.zeros((2, 3, 4)), {}, "2-D"),
        (np.zeros((0, 4)), {}, "2-D"),
        (np.zeros((4, 4), complex), {}, "real numbers"),
        (np.zeros((4, 4)), {"mask": np.zeros((3, 4), bool)}, "mask has shape"),
        (np.zeros((4, 4)), {"mask": np.zeros((4, 4), float)}, "mask must be bool"),
        (np.zeros((4, 4)), {"preprocessing": "paper"}, "Preprocessing"),
        (np.zeros((4, 4)), {"geometry": (0.1, 100, 1)}, "FrameGeometry"),
        (np.zeros((4, 4)), {"saturation": float("nan")}, "saturation"),
    ])
    def test_bad_input(self, frame, kwargs, match):
        with pytest.raises(ValueError, match=match):
            preprocess(frame, **kwargs)


class TestModelInputs:
    """8-bit frames of the model's input shape are model inputs (what the package writes), not counts."""

    def test_auto_takes_an_8bit_frame_of_the_input_shape_as_it_is(self):
        image8 = np.random.default_rng(0).integers(0, 256, PAPER_PREPROCESSING.shape).astype(np.uint8)
        out = preprocess(image8)
        assert np.array_equal(out, image8) and out is not image8

    def test_counts_applies_the_square_root(self):
        frame = np.full(PAPER_PREPROCESSING.shape, 90, np.uint8)
        assert int(preprocess(frame, input="counts")[0, 0]) == 10  # sqrt(90 + 10 ADU offset)

    def test_other_shapes_and_types_are_counts_under_auto(self):
        frame = np.full(PAPER_PREPROCESSING.shape, 90, np.uint16)
        assert int(preprocess(frame)[0, 0]) == 10
        small = np.full((256, 256), 90, np.uint8)
        assert not is_model_input(small)

    @pytest.mark.parametrize("frame", [np.zeros((512, 512), np.uint16), np.zeros((256, 256), np.uint8)])
    def test_8bit_refuses_what_is_not_a_model_input(self, frame):
        with pytest.raises(ValueError, match="8-bit model input"):
            preprocess(frame, input="8bit")

    def test_unknown_input_kind(self):
        with pytest.raises(ValueError, match="input must be one of"):
            preprocess(np.zeros((512, 512), np.uint8), input="photons")


class TestCountNonfinite:
    def test_hand_made(self):
        frame = np.array([[0.0, np.nan, np.inf], [-np.inf, -1.0, 2.0]], np.float32)
        assert pp.count_nonfinite(frame) == 3
        assert pp.count_nonfinite(frame, [[False, True, False], [False, False, False]]) == 2
        assert pp.count_nonfinite(frame, np.ones(frame.shape, np.uint8)) == 0
        assert pp.count_nonfinite(np.full((2, 3), -1, np.int32)) == 0

    @pytest.mark.parametrize("dtype", ["<f8", ">f8", "longdouble"])
    def test_values_float32_cannot_hold_count(self, dtype):
        # the model input is float32: a float64 pixel of 1e300 would become infinite there
        largest = np.nextafter(pp.FLOAT32_OVERFLOW, 0.0)  # still rounds to float32's largest value
        with np.errstate(over="ignore"):
            assert np.isfinite(np.float32(largest)) and not np.isfinite(np.float32(pp.FLOAT32_OVERFLOW))
        frame = np.array([[1e300, -1e300, pp.FLOAT32_OVERFLOW, largest, -largest, 3e38, 0.0]]).astype(dtype)
        assert pp.count_nonfinite(frame) == 3
        assert pp.count_nonfinite(frame, [[True, False, False, False, False, False, False]]) == 2

    @pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8", ">f8", "f2"])
    def test_large_frames_any_float_type_and_thread_count(self, dtype):
        """Blocks with masked and unmasked non-finite pixels, the last block short; compiled or numpy."""
        rng = np.random.default_rng(0)
        frame = rng.random((517, 1031))
        bad = rng.random(frame.shape) < 1e-3
        frame[bad] = rng.choice([np.nan, np.inf, -np.inf], int(bad.sum()))
        frame[-1, -1], bad[-1, -1] = np.nan, True
        mask = rng.random(frame.shape) < 0.3
        mask[-1, -1] = False
        frame = frame.astype(dtype)
        expected = int(np.count_nonzero(bad & ~mask))
        for n_threads in (1, 2, 7):
            assert pp.count_nonfinite(frame, mask, n_threads) == expected
            assert pp.count_nonfinite(frame[:, ::2], mask[:, ::2], n_threads) == np.count_nonzero(
                ~np.isfinite(frame[:, ::2]) & ~mask[:, ::2])
        assert pp.count_nonfinite(frame) == np.count_nonzero(~np.isfinite(frame))

    def test_refusals(self):
        frame = np.zeros((4, 4), np.float32)
        with pytest.raises(ValueError, match="2-D"):
            pp.count_nonfinite(np.zeros((2, 2, 2), np.float32))
        with pytest.raises(ValueError, match="mask has shape"):
            pp.count_nonfinite(frame, np.zeros((4, 5), bool))
        with pytest.raises(ValueError, match="n_threads"):
            pp.count_nonfinite(frame, n_threads=0)
