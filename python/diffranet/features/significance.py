"""Local significance: how far each small block stands above its surroundings, in units of their noise.

A model that reads grey levels learns the photon scale of its training
regime (the background of one beam, sample and detector). Peak finders do not
look at grey levels: they ask how many standard deviations a pixel stands
above its local background. :func:`significance_map` gives a network the same
view of an 8-bit model input:

1. **Local background and noise from the lower part of each cell.** The image
   is cut into cells of ``cell_px x cell_px`` pixels. Bragg spots only ever
   add photons, so the darkest ``LOWER_SHARE`` (60 %) of a cell's pixels are
   background even when a dense lattice of weak spots covers much of it (a
   median would rise with the spots and hide them). The mean and standard
   deviation of that lower part give the background level and noise of a
   Gaussian truncated at its 60th percentile: ``noise = std / 0.6498`` and
   ``background = mean + 0.6439 noise``. Both are interpolated bilinearly
   between cell centres, so rings and gradients are followed smoothly.
2. **Block maxima.** Each ``block_px x block_px`` block keeps its largest
   value (a Bragg spot of one or two pixels survives the 4 x 4 reduction
   whole; a mean would dilute it 16 times). Pixels at 255, the 8-bit
   overload, carry no measurement (a saturated or hot pixel, masked as the
   preprocessing masks saturated counts) and do not take part.
3. **Significance.** ``(block maximum - background) / max(noise, noise_floor)``
   at each block, clipped to ``clip``.

The 8-bit input is the square root of the counts (:func:`~diffranet.simulation.response.to_8bit`),
which makes Poisson noise about 0.5 of a level whatever the photon count: the
``noise_floor`` of 0.5 is that level, which a cell of nearly equal values
(quantised to the same 8-bit level) would otherwise make zero. A gain (ADU per
photon) multiplies the square root's scale and its noise alike, so the
significance does not depend on it; neither does an offset or a smooth
background.

The cell statistics come from one histogram per cell (the input has 256
levels), so the whole map costs a few passes over the image.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> counts = rng.poisson(100.0, size=(1, 256, 256)).astype(float)
>>> counts[0, 100, 100] += 400.0                     # one spot of 400 photons
>>> images8 = np.rint(np.sqrt(counts)).astype(np.uint8)
>>> z = significance_map(images8)
>>> z.shape, bool(z[0, 25, 25] > 6), bool(np.median(z) < 3)
((1, 64, 64), True, True)
"""

from __future__ import annotations

import functools

import numpy as np

from .._validation import check_int

__all__ = ["significance_map", "SIGNIFICANCE_RANGE", "LOWER_SHARE"]

#: The clip range of :func:`significance_map` by default (noise units).
SIGNIFICANCE_RANGE = (-4.0, 16.0)

#: Share of each cell's pixels, the darkest, taken as background.
LOWER_SHARE = 0.6

# A standard Gaussian truncated at its LOWER_SHARE quantile a: mean -phi(a)/P, standard deviation
# sqrt(1 - a phi(a)/P - (phi(a)/P)^2), with P = LOWER_SHARE and a = 0.2533.
_MEAN_SHIFT = 0.6439
_STD_FACTOR = 0.6498

_OVERLOAD = 255


@functools.lru_cache(maxsize=8)
def _interpolation(n_cells, per_cell):
    """(n_cells * per_cell, n_cells) matrix: bilinear interpolation from cell centres to the points between.

    Points outside the first and last cell centres take the nearest centre's value.
    """
    n_points = n_cells * per_cell
    position = (np.arange(n_points) + 0.5) / per_cell - 0.5  # in cell-centre coordinates
    position = np.clip(position, 0.0, n_cells - 1)
    left = np.minimum(np.floor(position).astype(int), max(n_cells - 2, 0))
    weight = position - left
    matrix = np.zeros((n_points, n_cells), np.float32)
    rows = np.arange(n_points)
    matrix[rows, left] = 1.0 - weight
    if n_cells > 1:
        matrix[rows, left + 1] += weight
    matrix.flags.writeable = False
    return matrix


def _check_images(images8, block_px, cell_px):
    images = np.asarray(images8)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images8 must be uint8 of shape (n, rows, cols), got {images.dtype} {images.shape}")
    if cell_px % block_px:
        raise ValueError(f"cell_px ({cell_px}) must be a multiple of block_px ({block_px})")
    if images.shape[1] % cell_px or images.shape[2] % cell_px or images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"image rows and columns must be positive multiples of cell_px = {cell_px}, "
                         f"got {images.shape[1:]}")
    return images


def _lower_moments(histograms, share):
    """Mean and standard deviation of the lowest ``share`` of the values of each 256-level histogram.

    The level where the share is reached counts with the fraction of its
    pixels needed to make it up exactly.
    """
    levels = np.arange(histograms.shape[-1], dtype=np.float64)
    total = histograms.sum(axis=-1, keepdims=True).astype(np.float64)
    wanted = share * total
    below = np.cumsum(histograms, axis=-1) - histograms  # pixels at lower levels
    weights = np.clip(wanted - below, 0.0, histograms)   # pixels of each level inside the share
    n = np.maximum(weights.sum(axis=-1), 1.0)
    mean = (weights * levels).sum(axis=-1) / n
    var = (weights * levels ** 2).sum(axis=-1) / n - mean ** 2
    return mean, np.sqrt(np.maximum(var, 0.0))


def _block_maxima(images, block_px):
    """Maximum of each ``block_px x block_px`` block, by elementwise maxima of strided views (vectorised)."""
    rows = images[:, 0::block_px].copy()
    for offset in range(1, block_px):
        np.maximum(rows, images[:, offset::block_px], out=rows)
    blocks = rows[:, :, 0::block_px].copy()
    for offset in range(1, block_px):
        np.maximum(blocks, rows[:, :, offset::block_px], out=blocks)
    return blocks


def significance_map(images8, block_px=4, cell_px=32, noise_floor=0.5, clip=SIGNIFICANCE_RANGE):
    """Local significance of the block maxima of 8-bit images (see the module docstring).

    Parameters
    ----------
    images8 : array_like of uint8, shape (n, rows, cols) or (rows, cols)
        Model inputs (8-bit square root of the counts); rows and columns
        multiples of ``cell_px``.
    block_px : int, default 4
        Side of the blocks reduced to their maximum.
    cell_px : int, default 32
        Side of a background cell (a multiple of ``block_px``).
    noise_floor : float, default 0.5
        Smallest noise (8-bit levels): the Poisson noise of the square root.
    clip : tuple of float, default :data:`SIGNIFICANCE_RANGE`
        ``(low, high)`` bounds of the result.

    Returns
    -------
    ndarray of float32, shape (n, rows // block_px, cols // block_px)
    """
    block_px = check_int("block_px", block_px, minimum=1)
    cell_px = check_int("cell_px", cell_px, minimum=1)
    if not noise_floor > 0:
        raise ValueError(f"noise_floor must be > 0, got {noise_floor!r}")
    low, high = (float(c) for c in clip)
    if not low < high:
        raise ValueError(f"clip must be (low, high) with low < high, got {clip!r}")
    images = _check_images(images8, block_px, cell_px)
    n, rows, cols = images.shape
    cr, cc = rows // cell_px, cols // cell_px

    # one 256-level histogram per cell: label every pixel with its cell, count (cell, level) pairs
    cell_of_row = np.arange(rows) // cell_px
    cell_of_col = np.arange(cols) // cell_px
    cell_index = (cell_of_row[:, None] * cc + cell_of_col[None, :]).astype(np.int64)
    keys = (np.arange(n, dtype=np.int64)[:, None, None] * (cr * cc) + cell_index) * 256 + images
    histograms = np.bincount(keys.ravel(), minlength=n * cr * cc * 256).reshape(n, cr, cc, 256)
    histograms[..., _OVERLOAD] = 0  # overloads are not measurements
    mean, std = _lower_moments(histograms, LOWER_SHARE)
    noise = np.maximum(std / _STD_FACTOR, noise_floor)
    background = mean + _MEAN_SHIFT * noise

    # block maxima without the overloads, and the cell statistics at the block centres
    valid = images.copy()
    valid[valid == _OVERLOAD] = 0
    maxima = _block_maxima(valid, block_px)
    up_rows, up_cols = _interpolation(cr, cell_px // block_px), _interpolation(cc, cell_px // block_px)
    background = (up_rows @ background.astype(np.float32) @ up_cols.T)
    noise = (up_rows @ noise.astype(np.float32) @ up_cols.T)
    z = (maxima.astype(np.float32) - background) / noise
    return np.clip(z, low, high, out=z).astype(np.float32, copy=False)
