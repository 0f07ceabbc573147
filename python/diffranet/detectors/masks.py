"""Detector masks: pixels that record nothing.

Both helpers return a bool array, True for dead pixels, ready for
``Detector(mask=...)``; combine them with ``|``.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_fraction, check_int, check_seed

__all__ = ["bad_pixel_mask", "module_gap_mask"]


def _check_pair_of_ints(name, value, minimum, scalar=False):
    if scalar and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (rows, cols) of integers, got {value!r}")
    return tuple(check_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(value))


def module_gap_mask(shape, module_shape, gap_px, origin=(0, 0)):
    """Gaps between the modules of a tiled detector (Pilatus, Eiger).

    Modules of ``module_shape`` pixels tile the detector from detector pixel
    (0, 0), separated by ``gap_px`` dead rows and columns; the last module may
    be cut by the image edge.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the detector.
    module_shape : tuple of int
        ``(rows, cols)`` of one module (each >= 1).
    gap_px : int or tuple of int
        Dead rows between modules along the slow axis and dead columns along the
        fast axis (>= 0); one integer for both. A Pilatus 6M is
        ``module_gap_mask((2527, 2463), (195, 487), (17, 7))``.
    origin : tuple of int, default (0, 0)
        Detector ``(row, col)`` of the image's first pixel, for an image that is
        a region of the detector (each >= 0).

    Returns
    -------
    ndarray of bool, shape ``shape``
        True in the gaps.

    Examples
    --------
    >>> module_gap_mask((5, 7), (2, 3), 1).astype(int)
    array([[0, 0, 0, 1, 0, 0, 0],
           [0, 0, 0, 1, 0, 0, 0],
           [1, 1, 1, 1, 1, 1, 1],
           [0, 0, 0, 1, 0, 0, 0],
           [0, 0, 0, 1, 0, 0, 0]])
    """
    rows, cols = _check_pair_of_ints("shape", shape, minimum=1)
    module_rows, module_cols = _check_pair_of_ints("module_shape", module_shape, minimum=1)
    gap_rows, gap_cols = _check_pair_of_ints("gap_px", gap_px, minimum=0, scalar=True)
    row0, col0 = _check_pair_of_ints("origin", origin, minimum=0)
    dead_row = (np.arange(rows) + row0) % (module_rows + gap_rows) >= module_rows
    dead_col = (np.arange(cols) + col0) % (module_cols + gap_cols) >= module_cols
    return dead_row[:, None] | dead_col[None, :]


def bad_pixel_mask(shape, fraction, seed=0):
    """Randomly placed dead pixels.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the detector.
    fraction : float
        Fraction of the pixels that are dead, in [0, 1]; exactly
        ``round(fraction * rows * cols)`` pixels are marked.
    seed : int, default 0
        The same seed gives the same pixels (``numpy.random.default_rng``).

    Returns
    -------
    ndarray of bool, shape ``shape``
        True for the dead pixels.

    Examples
    --------
    >>> int(bad_pixel_mask((10, 10), 0.05, seed=1).sum())
    5
    """
    rows, cols = _check_pair_of_ints("shape", shape, minimum=1)
    fraction = check_fraction("fraction", fraction)
    seed = check_seed("seed", seed)
    n = rows * cols
    dead = np.random.default_rng(seed).choice(n, size=int(round(fraction * n)), replace=False)
    mask = np.zeros(n, dtype=bool)
    mask[dead] = True
    return mask.reshape(rows, cols)
