"""significance_map: the local significance of block maxima, against a slow reference and physics."""

import numpy as np
import pytest

from diffranet.features.significance import SIGNIFICANCE_RANGE, significance_map
from diffranet.simulation.response import to_8bit


def reference(image8, block_px=4, cell_blocks=8, noise_floor=0.5, clip=SIGNIFICANCE_RANGE):
    """The definition, pixel by pixel: loops, np.median, explicit bilinear weights."""
    image = image8.astype(np.float64)
    br, bc = image.shape[0] // block_px, image.shape[1] // block_px
    maxima = np.empty((br, bc))
    for i in range(br):
        for j in range(bc):
            maxima[i, j] = image[i * block_px:(i + 1) * block_px, j * block_px:(j + 1) * block_px].max()
    cr, cc = br // cell_blocks, bc // cell_blocks
    median, sigma = np.empty((cr, cc)), np.empty((cr, cc))
    for i in range(cr):
        for j in range(cc):
            cell = maxima[i * cell_blocks:(i + 1) * cell_blocks, j * cell_blocks:(j + 1) * cell_blocks]
            median[i, j] = np.median(cell)
            sigma[i, j] = 1.4826 * np.median(np.abs(cell - median[i, j]))

    def weights(n_cells, b):
        p = min(max((b + 0.5) / cell_blocks - 0.5, 0.0), n_cells - 1)
        left = min(int(np.floor(p)), max(n_cells - 2, 0))
        w = np.zeros(n_cells)
        w[left] += 1 - (p - left)
        if n_cells > 1:
            w[left + 1] += p - left
        return w

    out = np.empty((br, bc))
    for i in range(br):
        wr = weights(cr, i)
        for j in range(bc):
            wc = weights(cc, j)
            bg = wr @ median @ wc
            noise = max(wr @ sigma @ wc, noise_floor)
            out[i, j] = np.clip((maxima[i, j] - bg) / noise, *clip)
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
        np.testing.assert_allclose(significance_map(image)[0], reference(image), rtol=1e-5, atol=1e-5)

    def test_other_block_and_cell_sizes(self):
        image = np.random.default_rng(2).integers(0, 30, size=(48, 48)).astype(np.uint8)
        got = significance_map(image, block_px=2, cell_blocks=6, noise_floor=1.0, clip=(-2, 5))[0]
        np.testing.assert_allclose(got, reference(image, 2, 6, 1.0, (-2, 5)), rtol=1e-5, atol=1e-5)

    def test_spots_stand_out_and_background_does_not(self):
        image, where = spots_on(100.0)
        z = significance_map(image)[0]
        assert all(z[r // 4, c // 4] > 8 for r, c in where)
        assert np.median(z) == pytest.approx(0.0, abs=0.6)

    def test_gain_and_offset_do_not_change_it(self):
        # the same Poisson draws on another scale: the same spots, the same quiet background
        # (not the same numbers: 8-bit rounding is coarser against the noise at gain 1)
        for gain, offset in ((1.0, 0.0), (4.0, 30.0), (0.5, 5.0)):
            image, where = spots_on(400.0, gain=gain, offset=offset)
            z = significance_map(image)[0]
            spots = np.zeros(z.shape, bool)
            spots[where[:, 0] // 4, where[:, 1] // 4] = True
            assert z[spots].min() > 5
            assert np.median(z) == pytest.approx(0.0, abs=0.5)
            assert np.mean(z[~spots] > 5) < 0.005

    def test_a_smooth_background_is_removed(self):
        rows, cols = np.indices((128, 128))
        ramp = 50.0 + 3.0 * cols + 0.02 * (rows - 64) ** 2
        z = significance_map(spots_on(ramp)[0])[0]
        assert np.mean(np.abs(z) > 4) < 0.03  # spots only (12 of 1024 blocks) and a few edges

    def test_flat_image_is_zero(self):
        assert not significance_map(np.full((64, 64), 7, np.uint8)).any()


class TestValidation:
    @pytest.mark.parametrize("images", [np.zeros((64, 64), np.uint16), np.zeros((2, 2, 64, 64), np.uint8),
                                        np.zeros((60, 64), np.uint8), np.zeros((0, 64), np.uint8)])
    def test_bad_images(self, images):
        with pytest.raises(ValueError):
            significance_map(images)

    @pytest.mark.parametrize("kwargs", [dict(block_px=0), dict(cell_blocks=0), dict(noise_floor=0.0),
                                        dict(clip=(3, 3)), dict(block_px=2.5)])
    def test_bad_parameters(self, kwargs):
        with pytest.raises(ValueError):
            significance_map(np.zeros((64, 64), np.uint8), **kwargs)
