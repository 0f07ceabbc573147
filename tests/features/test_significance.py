"""significance_map: the local significance of block maxima, against a slow reference and physics."""

import numpy as np
import pytest

from diffranet.features.significance import SIGNIFICANCE_RANGE, significance_map
from diffranet.simulation.response import to_8bit


def reference(image8, block_px=4, cell_px=32, noise_floor=0.5, clip=SIGNIFICANCE_RANGE, rank=1):
    """The definition, cell by cell and block by block: sorted values, explicit bilinear weights.

    ``rank``: 1 for each block's largest value, 2 for its second largest (overloads counted as 0).
    """
    image = image8.astype(np.float64)
    cr, cc = image.shape[0] // cell_px, image.shape[1] // cell_px
    level, noise = np.empty((cr, cc)), np.empty((cr, cc))
    for i in range(cr):
        for j in range(cc):
            cell = np.sort(image[i * cell_px:(i + 1) * cell_px, j * cell_px:(j + 1) * cell_px].ravel())
            cell = cell[cell != 255]
            wanted = 0.6 * cell.size  # the darkest 60 %, the last value counted in part
            whole = int(np.floor(wanted))
            weights = np.zeros(cell.size)
            weights[:whole] = 1.0
            if whole < cell.size:
                weights[whole] = wanted - whole
            mean = np.sum(weights * cell) / weights.sum()
            std = np.sqrt(np.sum(weights * (cell - mean) ** 2) / weights.sum())
            noise[i, j] = max(std / 0.6498, noise_floor)
            level[i, j] = mean + 0.6439 * noise[i, j]
    per = cell_px // block_px

    def weights_at(n_cells, b):
        p = min(max((b + 0.5) / per - 0.5, 0.0), n_cells - 1)
        left = min(int(np.floor(p)), max(n_cells - 2, 0))
        w = np.zeros(n_cells)
        w[left] += 1 - (p - left)
        if n_cells > 1:
            w[left + 1] += p - left
        return w

    br, bc = image.shape[0] // block_px, image.shape[1] // block_px
    out = np.empty((br, bc))
    for i in range(br):
        wr = weights_at(cr, i)
        for j in range(bc):
            wc = weights_at(cc, j)
            block = image[i * block_px:(i + 1) * block_px, j * block_px:(j + 1) * block_px]
            top = np.sort(np.where(block == 255, 0.0, block).ravel())[-rank]
            out[i, j] = np.clip((top - wr @ level @ wc) / (wr @ noise @ wc), *clip)
    return out


def spots_on(background, gain=1.0, offset=0.0, seed=0, shape=(128, 128)):
    """8-bit image of Poisson counts: a background plus 12 spots of 300 photons, times gain, plus offset."""
    rng = np.random.default_rng(seed)
    expected = np.broadcast_to(np.asarray(background, float), shape).copy()
    where = rng.integers(8, shape[0] - 8, size=(12, 2))
    for r, c in where:
        expected[r, c] += 300.0
    counts = rng.poisson(expected).astype(float) * gain + offset
    return to_8bit(counts)[None], where


class TestValues:
    @pytest.mark.parametrize("shape", [(64, 64), (64, 128), (96, 32)])
    def test_equals_the_reference(self, shape):
        rng = np.random.default_rng(1)
        image = rng.integers(0, 60, size=shape).astype(np.uint8)
        image[5, 7] = 250
        image[40, 9] = 255  # an overload: not a measurement
        np.testing.assert_allclose(significance_map(image)[0], reference(image), rtol=1e-4, atol=1e-4)

    @pytest.mark.parametrize("shape", [(64, 64), (96, 32)])
    def test_second_largest_values_equal_the_reference(self, shape):
        rng = np.random.default_rng(3)
        image = rng.integers(0, 60, size=shape).astype(np.uint8)
        image[5, 7] = image[5, 6] = 250  # a spot of two pixels: both channels high
        image[20, 21] = 240              # a single bright pixel: only the first
        image[40, 9] = image[40, 10] = 255  # overloads: not measurements
        image[48:52, 0:4] = 255          # a block of nothing but overloads
        both = significance_map(image, second=True)[0]
        np.testing.assert_array_equal(both[0], significance_map(image)[0])
        np.testing.assert_allclose(both[1], reference(image, rank=2), rtol=1e-4, atol=1e-4)
        assert both[0, 1, 1] > 8 and both[1, 1, 1] > 8
        assert both[0, 5, 5] > 8 and both[1, 5, 5] < 3

    def test_second_channel_with_other_sizes(self):
        image = np.random.default_rng(4).integers(0, 30, size=(48, 48)).astype(np.uint8)
        got = significance_map(image, block_px=3, cell_px=12, noise_floor=1.0, clip=(-2, 5), second=True)[0]
        np.testing.assert_allclose(got[0], reference(image, 3, 12, 1.0, (-2, 5)), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got[1], reference(image, 3, 12, 1.0, (-2, 5), rank=2), rtol=1e-4, atol=1e-4)

    def test_other_block_and_cell_sizes(self):
        image = np.random.default_rng(2).integers(0, 30, size=(48, 48)).astype(np.uint8)
        got = significance_map(image, block_px=2, cell_px=12, noise_floor=1.0, clip=(-2, 5))[0]
        np.testing.assert_allclose(got, reference(image, 2, 12, 1.0, (-2, 5)), rtol=1e-4, atol=1e-4)

    def test_a_dense_lattice_of_weak_spots_stands_out(self):
        # spots on every third pixel of every third row (11 % of the pixels), 6 sigma each: a median
        # background would rise with them; the darkest 60 % of each cell do not
        rng = np.random.default_rng(4)
        expected = np.full((128, 128), 400.0)
        expected[::3, ::3] += 6 * 20.0
        image = to_8bit(rng.poisson(expected).astype(float))[None]
        assert np.median(significance_map(image)) > 3
        flat = to_8bit(rng.poisson(np.full((128, 128), 400.0)).astype(float))[None]
        assert np.median(significance_map(flat)) < 2

    def test_overloads_are_not_spots(self):
        rng = np.random.default_rng(5)
        image = to_8bit(rng.poisson(np.full((64, 64), 9.0)).astype(float))
        image[rng.integers(0, 64, 20), rng.integers(0, 64, 20)] = 255  # hot or saturated pixels
        assert significance_map(image).max() < 5

    def test_spots_stand_out_and_background_does_not(self):
        image, where = spots_on(100.0)
        z = significance_map(image)[0]
        assert all(z[r // 4, c // 4] > 8 for r, c in where)
        # the maximum of 16 background pixels: about 1.5 sigma above the background
        assert np.median(z) == pytest.approx(1.3, abs=0.5)

    def test_gain_and_offset_do_not_change_it(self):
        # the same Poisson draws on another scale: the same spots, the same quiet background
        # (not the same numbers: 8-bit rounding is coarser against the noise at gain 1)
        for gain, offset in ((1.0, 0.0), (4.0, 30.0), (0.5, 5.0)):
            image, where = spots_on(400.0, gain=gain, offset=offset)
            z = significance_map(image)[0]
            spots = np.zeros(z.shape, bool)
            spots[where[:, 0] // 4, where[:, 1] // 4] = True
            assert z[spots].min() > 5
            assert np.median(z) == pytest.approx(1.3, abs=0.6)
            assert np.mean(z[~spots] > 5) < 0.005

    def test_a_smooth_background_is_removed(self):
        rows, cols = np.indices((128, 128))
        ramp = 50.0 + 3.0 * cols + 0.02 * (rows - 64) ** 2
        z = significance_map(spots_on(ramp)[0])[0]
        assert np.mean(np.abs(z) > 4) < 0.03  # spots only (12 of 1024 blocks) and a few edges

    def test_flat_image(self):
        # no spread: the noise floor (0.5), and the level of a Gaussian seen through its lower 60 %
        np.testing.assert_allclose(significance_map(np.full((64, 64), 7, np.uint8)), -0.6439, atol=1e-6)


class TestValidation:
    @pytest.mark.parametrize("images", [np.zeros((64, 64), np.uint16), np.zeros((2, 2, 64, 64), np.uint8),
                                        np.zeros((60, 64), np.uint8), np.zeros((0, 64), np.uint8)])
    def test_bad_images(self, images):
        with pytest.raises(ValueError):
            significance_map(images)

    @pytest.mark.parametrize("kwargs", [dict(block_px=0), dict(cell_px=0), dict(noise_floor=0.0),
                                        dict(clip=(3, 3)), dict(block_px=2.5), dict(block_px=3)])
    def test_bad_parameters(self, kwargs):
        with pytest.raises(ValueError):
            significance_map(np.zeros((64, 64), np.uint8), **kwargs)


class TestThreads:
    def test_same_map_for_any_thread_count(self):
        images = np.random.default_rng(6).integers(0, 80, size=(5, 64, 96)).astype(np.uint8)
        one = significance_map(images, n_threads=1)
        assert np.array_equal(one, significance_map(images, n_threads=3))
        assert np.array_equal(one, significance_map(images))
        assert np.array_equal(one[2], significance_map(images[2])[0])

    def test_bad_thread_count(self):
        with pytest.raises(ValueError):
            significance_map(np.zeros((64, 64), np.uint8), n_threads=0)
