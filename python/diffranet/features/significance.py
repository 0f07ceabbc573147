"""Local significance: how far each small block stands above its surroundings, in units of their noise.

A model that reads grey levels learns the photon scale of its training
regime (the background of one beam, sample and detector). Peak finders do not
look at grey levels: they ask how many standard deviations a pixel stands
above its local background. :func:`significance_map` gives a network the same
view of an 8-bit model input:

1. **Block maxima.** The image is cut into ``block_px x block_px`` blocks and
   each keeps its largest value (a Bragg spot of one or two pixels survives
   the 4 x 4 reduction whole; a mean would dilute it 16 times).
2. **Local background and noise.** The block maxima are grouped into cells of
   ``cell_blocks x cell_blocks`` blocks. Each cell's median is its
   background and 1.4826 times its median absolute deviation its noise (both
   ignore the few blocks holding spots); both are interpolated bilinearly
   between cell centres, so rings and gradients of the background are
   followed smoothly.
3. **Significance.** ``(block maximum - background) / max(noise, noise_floor)``,
   clipped to ``clip``.

The 8-bit input is the square root of the counts (:func:`~diffranet.simulation.response.to_8bit`),
which makes Poisson noise about 0.5 of a level whatever the photon count: the
``noise_floor`` of 0.5 is that level, which a cell of nearly equal values
(quantised to the same 8-bit level) would otherwise make zero. A gain (ADU per
photon) multiplies the square root's scale and its noise alike, so the
significance does not depend on it; neither does an offset or a smooth
background, which the local median removes.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> counts = rng.poisson(100.0, size=(1, 256, 256)).astype(float)
>>> counts[0, 100, 100] += 400.0                     # one spot of 400 photons
>>> images8 = np.rint(np.sqrt(counts)).astype(np.uint8)
>>> z = significance_map(images8)
>>> z.shape, bool(z[0, 25, 25] > 6), bool(np.median(z) < 1)
((1, 64, 64), True, True)
"""

from __future__ import annotations

import functools

import numpy as np

from .._validation import check_int

__all__ = ["significance_map", "SIGNIFICANCE_RANGE"]

#: The clip range of :func:`significance_map` by default (noise units).
SIGNIFICANCE_RANGE = (-4.0, 16.0)

#: Median absolute deviation to standard deviation, for Gaussian noise.
_MAD_TO_SIGMA = 1.4826


@functools.lru_cache(maxsize=8)
def _interpolation(n_cells, cell_blocks):
    """(n_cells * cell_blocks, n_cells) matrix: bilinear interpolation from cell centres to blocks.

    Blocks outside the first and last cell centres take the nearest centre's value.
    """
    n_blocks = n_cells * cell_blocks
    position = (np.arange(n_blocks) + 0.5) / cell_blocks - 0.5  # in cell-centre coordinates
    position = np.clip(position, 0.0, n_cells - 1)
    left = np.minimum(np.floor(position).astype(int), max(n_cells - 2, 0))
    weight = position - left
    matrix = np.zeros((n_blocks, n_cells), np.float32)
    rows = np.arange(n_blocks)
    matrix[rows, left] = 1.0 - weight
    if n_cells > 1:
        matrix[rows, left + 1] += weight
    matrix.flags.writeable = False
    return matrix


def _median_last(values):
    """Median along the last axis (by a sort, which numpy vectorises; ``np.median`` partitions row by row)."""
    ordered = np.sort(values, axis=-1)
    k = ordered.shape[-1]
    return 0.5 * (ordered[..., (k - 1) // 2] + ordered[..., k // 2])


def _check_images(images8, block_px, cell_blocks):
    images = np.asarray(images8)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images8 must be uint8 of shape (n, rows, cols), got {images.dtype} {images.shape}")
    side = block_px * cell_blocks
    if images.shape[1] % side or images.shape[2] % side or images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"image rows and columns must be positive multiples of block_px * cell_blocks = {side}, "
                         f"got {images.shape[1:]}")
    return images


def significance_map(images8, block_px=4, cell_blocks=8, noise_floor=0.5, clip=SIGNIFICANCE_RANGE):
    """Local significance of the block maxima of 8-bit images (see the module docstring).

    Parameters
    ----------
    images8 : array_like of uint8, shape (n, rows, cols) or (rows, cols)
        Model inputs (8-bit square root of the counts); rows and columns
        multiples of ``block_px * cell_blocks``.
    block_px : int, default 4
        Side of the blocks reduced to their maximum.
    cell_blocks : int, default 8
        Side of a background cell, in blocks (32 pixels by default).
    noise_floor : float, default 0.5
        Smallest noise (8-bit levels): the Poisson noise of the square root.
    clip : tuple of float, default :data:`SIGNIFICANCE_RANGE`
        ``(low, high)`` bounds of the result.

    Returns
    -------
    ndarray of float32, shape (n, rows // block_px, cols // block_px)
    """
    block_px = check_int("block_px", block_px, minimum=1)
    cell_blocks = check_int("cell_blocks", cell_blocks, minimum=1)
    if not noise_floor > 0:
        raise ValueError(f"noise_floor must be > 0, got {noise_floor!r}")
    low, high = (float(c) for c in clip)
    if not low < high:
        raise ValueError(f"clip must be (low, high) with low < high, got {clip!r}")
    images = _check_images(images8, block_px, cell_blocks)
    n, rows, cols = images.shape
    br, bc = rows // block_px, cols // block_px
    # one axis at a time: numpy reduces a contiguous axis several times faster than two strided ones
    maxima = images.reshape(n, br, block_px, cols).max(axis=2).reshape(n, br, bc, block_px).max(axis=3)
    maxima = maxima.astype(np.float32)
    cr, cc = br // cell_blocks, bc // cell_blocks
    cells = maxima.reshape(n, cr, cell_blocks, cc, cell_blocks).transpose(0, 1, 3, 2, 4).reshape(n, cr, cc, -1)
    median = _median_last(cells)
    mad = _median_last(np.abs(cells - median[..., None]))
    up_rows, up_cols = _interpolation(cr, cell_blocks), _interpolation(cc, cell_blocks)
    background = up_rows @ median @ up_cols.T
    noise = np.maximum(up_rows @ (_MAD_TO_SIGMA * mad) @ up_cols.T, np.float32(noise_floor))
    z = (maxima - background) / noise
    return np.clip(z, low, high, out=z).astype(np.float32, copy=False)
