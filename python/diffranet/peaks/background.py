"""The sky around each pixel: medians of rings and sectors around the beam, and masked pixels filled with them.

Peak finders judge a pixel against the background of its ring around the beam
(peakfinder8's radial statistics); the preprocessing and the training-set
generator give masked pixels that background, so a gap or a beamstop is
neither a spot nor empty sky.
"""

from __future__ import annotations

import functools

import numpy as np

from .._validation import check_int, check_positive

__all__ = ["local_background", "fill_masked", "group_medians", "rings_and_sectors", "fill_empty_sectors"]


def group_medians(values, labels, n_labels, low_high=None):
    """Median of ``values`` per label in [0, n_labels) (NaN for empty labels); lower median for even counts.

    One sort of ``label * span + value`` puts every group's values in order, contiguously.
    ``low_high`` (the smallest and largest value, default those of ``values``)
    sets ``span``; medians of a subset of groups taken with the ``low_high`` of
    all values are the same numbers as those of all groups.
    """
    if low_high is None:
        low_high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    low = low_high[0]
    span = low_high[1] - low + 1.0
    keys = np.sort(labels * span + (values - low))
    bounds = np.arange(n_labels + 1) * span
    edges = np.searchsorted(keys, bounds, side="left")
    starts, counts = edges[:-1], np.diff(edges)
    medians = np.full(n_labels, np.nan)
    has = counts > 0
    medians[has] = keys[starts[has] + (counts[has] - 1) // 2] - np.flatnonzero(has) * span + low
    return medians


@functools.lru_cache(maxsize=8)
def rings_and_sectors(shape, beam_center_px, ring_width_px, n_sectors):
    """Ring index and ring * n_sectors + sector of every pixel (read-only, cached)."""
    rows, cols = shape
    bx, by = (cols / 2.0, rows / 2.0) if beam_center_px is None else beam_center_px
    y, x = np.indices(shape, dtype=np.float64)
    dx, dy = x + 0.5 - bx, y + 0.5 - by
    ring = (np.hypot(dx, dy) / ring_width_px).astype(np.int64)
    sector = ((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * n_sectors).astype(np.int64) % n_sectors
    cell = ring * n_sectors + sector
    ring.flags.writeable = cell.flags.writeable = False
    return ring, cell


def local_background(values, masked, beam_center_px=None, ring_width_px=2.0, n_sectors=16):
    """Median of the unmasked ``values`` of each pixel's ring and sector around the beam.

    Rings are ``ring_width_px`` wide around the beam centre and cut into
    ``n_sectors`` azimuthal sectors. Where a whole sector is masked the median
    of the ring is used, and where the whole ring is, the nearest ring with
    data. Medians ignore spots, so the result is the sky around each pixel.

    Parameters
    ----------
    values : ndarray, shape (rows, cols)
    masked : ndarray of bool, same shape
    beam_center_px : tuple of float, optional
        ``(x, y)``; default the image centre.
    ring_width_px : float, default 2.0
    n_sectors : int, default 16

    Returns
    -------
    ndarray of float64, same shape
        All zeros if every pixel is masked.
    """
    values = np.asarray(values, dtype=np.float64)
    masked = np.asarray(masked, dtype=bool)
    if masked.shape != values.shape:
        raise ValueError(f"masked has shape {masked.shape}, values {values.shape}")
    check_positive("ring_width_px", ring_width_px)
    n_sectors = check_int("n_sectors", n_sectors, minimum=1)
    if masked.all():
        return np.zeros(values.shape)
    center = None if beam_center_px is None else (float(beam_center_px[0]), float(beam_center_px[1]))
    ring, cell = rings_and_sectors(values.shape, center, float(ring_width_px), n_sectors)
    n_rings = int(ring.max()) + 1
    good = ~masked
    local = group_medians(values[good], cell[good], n_rings * n_sectors).reshape(n_rings, n_sectors)
    with np.errstate(all="ignore"):
        rings_with_data = ~np.isnan(local).all(axis=1)
    return fill_empty_sectors(local, rings_with_data).ravel()[cell]


def fill_empty_sectors(local, rings):
    """Sector medians with the empty ones filled from the medians of ``rings`` (all their sectors known).

    A sector with no unmasked pixel gets the median of its ring's sectors; a
    ring with none, the interpolation between the nearest such rings.
    """
    per_ring = np.full(local.shape[0], np.nan)
    with np.errstate(all="ignore"):
        per_ring[rings] = np.nanmedian(local[rings], axis=1)
    known = np.flatnonzero(rings)
    per_ring = np.interp(np.arange(local.shape[0]), known, per_ring[known])
    return np.where(np.isnan(local), per_ring[:, None], local)


def fill_masked(counts, masked, beam_center_px=None, ring_width_px=2.0, n_sectors=16):
    """Give masked pixels the local background (:func:`local_background`), neither a spot nor empty sky.

    Returns
    -------
    ndarray of float32
        A copy of ``counts`` with masked pixels filled.

    Examples
    --------
    >>> counts = np.array([[1.0, 1, 1], [1, 50, 1], [1, 1, 1]])
    >>> float(fill_masked(counts, counts > 10)[1, 1])
    1.0
    """
    counts = np.asarray(counts, dtype=np.float32)
    masked = np.asarray(masked, dtype=bool)
    if not masked.any():
        return counts.copy()
    background = local_background(counts, masked, beam_center_px, ring_width_px, n_sectors)
    return np.where(masked, background, counts).astype(np.float32)
