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
levels), so the whole map costs two passes over the image, in the compiled
core (``csrc/src/significance.cpp``), images spread over threads.

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

import numpy as np

from .. import _core
from .._validation import check_int, check_threads

__all__ = ["significance_map", "SIGNIFICANCE_RANGE", "LOWER_SHARE"]

#: The clip range of :func:`significance_map` by default (noise units).
SIGNIFICANCE_RANGE = (-4.0, 16.0)

#: Share of each cell's pixels, the darkest, taken as background.
LOWER_SHARE = 0.6

# A standard Gaussian truncated at its LOWER_SHARE quantile a: mean -phi(a)/P, standard deviation
# sqrt(1 - a phi(a)/P - (phi(a)/P)^2), with P = LOWER_SHARE and a = 0.2533.
_MEAN_SHIFT = 0.6439
_STD_FACTOR = 0.6498


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


def significance_map(images8, block_px=4, cell_px=32, noise_floor=0.5, clip=SIGNIFICANCE_RANGE, second=False,
                     n_threads=None):
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
    second : bool, default False
        Also the significance of each block's second-largest value (overloads
        left out as for the maximum; a value met twice counts twice), as a
        second channel. A peak finder counts a spot when at least two of its
        pixels stand out: one bright pixel (a hot pixel, a cosmic-ray hit, a
        noise spike) has a high maximum and a low second value.
    n_threads : int, optional
        Threads over the images (compiled core); default all cores. The result
        does not depend on it.

    Returns
    -------
    ndarray of float32, shape (n, rows // block_px, cols // block_px)
        With ``second``, shape (n, 2, rows // block_px, cols // block_px):
        the maxima, then the second-largest values.
    """
    block_px = check_int("block_px", block_px, minimum=1)
    cell_px = check_int("cell_px", cell_px, minimum=1)
    if not noise_floor > 0:
        raise ValueError(f"noise_floor must be > 0, got {noise_floor!r}")
    low, high = (float(c) for c in clip)
    if not low < high:
        raise ValueError(f"clip must be (low, high) with low < high, got {clip!r}")
    images = np.ascontiguousarray(_check_images(images8, block_px, cell_px))
    return _core.significance_map(images, block_px, cell_px, LOWER_SHARE, _MEAN_SHIFT, _STD_FACTOR,
                                  float(noise_floor), low, high, bool(second), check_threads(n_threads))
