"""Turn a frame of any detector into the 8-bit image a model was trained on.

Three steps, each a function of its own:

1. **Onto the training detector.** With the frame's geometry
   (:class:`FrameGeometry`), :func:`resample` moves every pixel's photons to
   the training-detector pixel that sees the same resolution d = lambda / (2 sin
   theta) at the same azimuth (so a Bragg spot lands where the same reflection
   would land on the training detector, and its photons stay together).
   Without geometry, :func:`bin_and_crop` sums ``f x f`` blocks of pixels and
   keeps a window of the training shape around the beam centre.
2. **Masked pixels.** Pixels to ignore (mask, negative flags such as Pilatus
   gaps -1 and bad pixels -2, non-finite values, saturated pixels) carry no
   photons; a training pixel fed mostly by them is masked in turn, and
   :func:`fill_masked` gives it the median of the unmasked pixels of its ring
   and sector: local background, neither a spot nor empty sky.
3. **8-bit.** The training detector's ADC offset is added and the paper's
   square-root transform applied (:func:`diffranet.simulation.response.to_8bit`).

See ``docs/preprocessing.md`` for the choices and pictures.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .._validation import check_finite, check_int, check_positive
from ..simulation.response import to_8bit
from .geometry import PAPER_PREPROCESSING, FrameGeometry, Preprocessing

__all__ = ["preprocess", "to_training_counts", "resample", "bin_and_crop", "fill_masked", "invalid_pixels"]

#: A training pixel is kept when its unmasked source pixels cover at least this share of it.
MIN_COVERAGE = 0.5

#: Largest 2theta (degrees) a flat detector normal to the beam is assumed to see.
_MAX_TWO_THETA = 89.0


# --------------------------------------------------------------------------- validation


def _check_frame(frame):
    frame = np.asarray(frame)
    if frame.ndim != 2 or frame.size == 0:
        raise ValueError(f"frame must be a non-empty 2-D array, got shape {frame.shape}")
    if frame.dtype.kind not in "uifb":
        raise ValueError(f"frame must hold real numbers, got dtype {frame.dtype}")
    return frame


def _check_mask(mask, shape):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"mask has shape {mask.shape}, the frame {shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "uib":
            raise ValueError(f"mask must be bool (True = ignore) or integer (nonzero = ignore), got {mask.dtype}")
        mask = mask != 0
    return mask


def invalid_pixels(frame, mask=None, saturation=None):
    """Pixels that carry no usable photon count.

    Parameters
    ----------
    frame : array_like, shape (rows, cols)
        Detector values.
    mask : array_like of bool, optional
        True (or nonzero) for pixels to ignore.
    saturation : float, optional
        Values at or above it are saturated (or an overload flag) and ignored.

    Returns
    -------
    ndarray of bool
        True where the pixel is masked, negative (Pilatus gaps -1, bad pixels
        -2), not finite, or saturated.

    Examples
    --------
    >>> invalid_pixels([[0, -1, 5, np.nan]], saturation=5).tolist()
    [[False, True, True, True]]
    """
    frame = _check_frame(frame)
    mask = _check_mask(mask, frame.shape)
    if frame.dtype.kind == "f":
        bad = ~np.isfinite(frame)
        with np.errstate(invalid="ignore"):
            bad |= frame < 0
    else:
        bad = frame < 0 if frame.dtype.kind == "i" else np.zeros(frame.shape, bool)
    if saturation is not None:
        with np.errstate(invalid="ignore"):
            bad |= frame >= check_finite("saturation", saturation)
    if mask is not None:
        bad |= mask
    return bad


# --------------------------------------------------------------------------- geometry mapping


def _radial(geometry, shape, x, y):
    """(dx, dy, radius) in mm of pixel positions ``x, y`` (pixels) from the beam centre."""
    bx, by = geometry.center_px(shape)
    dx = (x - bx) * geometry.pixel_size_mm
    dy = (y - by) * geometry.pixel_size_mm
    return dx, dy, np.hypot(dx, dy)


def _sin_theta_on(geometry, radius_mm):
    """sin(theta) of the pixels at ``radius_mm`` (2theta = atan(radius / distance))."""
    return np.sin(0.5 * np.arctan2(radius_mm, geometry.distance_mm))


def _radius_on(geometry, sin_theta):
    """Radius (mm) at which ``geometry`` sees sin(theta); NaN beyond the largest 2theta."""
    with np.errstate(invalid="ignore"):
        two_theta = 2.0 * np.arcsin(sin_theta)
    two_theta = np.where(two_theta < math.radians(_MAX_TWO_THETA), two_theta, np.nan)
    return geometry.distance_mm * np.tan(two_theta)


def _radial_scale(source, target, max_radius_mm, n_samples=4096):
    """R' / R (training mm per source mm) as a function of the source radius, tabulated.

    The mapping is radial, so it is computed on ``n_samples`` radii once and
    interpolated for every pixel; NaN where the training detector cannot see
    the resolution.
    """
    radius = np.linspace(0.0, max_radius_mm, n_samples)
    sin_theta = _sin_theta_on(source, radius) * (target.wavelength_A / source.wavelength_A)
    radius_t = _radius_on(target, sin_theta)
    limit = target.distance_mm * target.wavelength_A / (source.distance_mm * source.wavelength_A)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(radius > 0, radius_t / np.where(radius > 0, radius, 1.0), limit)
    return radius, scale


def _target_positions(source, shape, target, target_shape, x, y):
    """Training-detector pixel positions (x', y') of source positions (x, y); NaN if unreachable."""
    dx, dy, radius = _radial(source, shape, x, y)
    grid, scale = _radial_scale(source, target, float(radius.max()) + source.pixel_size_mm)
    factor = np.interp(radius, grid, scale) / target.pixel_size_mm
    bx, by = target.center_px(target_shape)
    return bx + dx * factor, by + dy * factor


def _expected_pixels(source, preprocessing):
    """How many source pixels cover each training pixel, from the Jacobian of the mapping.

    With R = D tan 2theta on the source, R' = D' tan 2theta' on the training
    detector and sin theta' = (lambda' / lambda) sin theta, an area dA on the
    source maps to dA' = (R' / R)(dR' / dR) dA on the training detector.
    """
    target, shape_t = preprocessing.geometry, preprocessing.shape
    rows, cols = np.indices(shape_t, dtype=np.float64)
    _, _, radius_t = _radial(target, shape_t, cols + 0.5, rows + 0.5)
    sin_theta_t = _sin_theta_on(target, radius_t)
    ratio = source.wavelength_A / target.wavelength_A
    sin_theta = sin_theta_t * ratio
    radius = _radius_on(source, sin_theta)
    theta, theta_t = np.arcsin(np.clip(sin_theta, 0, 1)), np.arcsin(sin_theta_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_radius = (target.distance_mm / np.cos(2 * theta_t) ** 2) / (source.distance_mm / np.cos(2 * theta) ** 2) \
            * (np.cos(theta) / np.cos(theta_t)) / ratio
        small = target.distance_mm / (source.distance_mm * ratio)  # limit of R'/R and dR'/dR at the centre
        area_ratio = np.where(radius_t > 1e-9, (radius_t / radius) * d_radius, small * small)
        pixels = (target.pixel_size_mm / source.pixel_size_mm) ** 2 / area_ratio
    return np.where(np.isfinite(pixels), pixels, 0.0)


@functools.lru_cache(maxsize=4)
@functools.lru_cache(maxsize=4)  # a stream's frames share one geometry: compute the mapping once
def _mapping(shape, source, preprocessing):
    """Target pixel index (or -1) of every source subpixel, subpixel weight, expected coverage.

    Each source pixel is split into ``k x k`` subpixels, ``k`` chosen so that a
    subpixel spans at most half a training pixel (no holes when the source
    pixels are coarser than the training pixels).
    """
    target, shape_t = preprocessing.geometry, preprocessing.shape
    rows, cols = shape
    y = np.arange(rows, dtype=np.float64)[:, None] + 0.5
    x = np.arange(cols, dtype=np.float64)[None, :] + 0.5
    xt, yt = _target_positions(source, shape, target, shape_t, x, y)
    with np.errstate(invalid="ignore"):
        seen = (xt >= 0) & (xt < shape_t[1]) & (yt >= 0) & (yt < shape_t[0])
    largest = 0.0
    for axis in (0, 1):
        near = np.diff(seen, axis=axis) | np.delete(seen, -1, axis=axis)
        for a in (xt, yt):
            step = np.abs(np.diff(a, axis=axis))[near]
            step = step[np.isfinite(step)]
            largest = max(largest, float(step.max()) if step.size else 0.0)
    k = int(min(max(math.ceil(2.0 * largest), 1), 8))
    indices = []
    for i in range(k):
        for j in range(k):
            if k > 1:
                xt, yt = _target_positions(source, shape, target, shape_t, x - 0.5 + (j + 0.5) / k,
                                           y - 0.5 + (i + 0.5) / k)
            with np.errstate(invalid="ignore"):
                col, row = np.floor(xt), np.floor(yt)
                inside = (col >= 0) & (col < shape_t[1]) & (row >= 0) & (row < shape_t[0])
            index = np.where(inside, np.nan_to_num(row) * shape_t[1] + np.nan_to_num(col), -1).astype(np.int64)
            indices.append(index.ravel())
    expected = _expected_pixels(source, preprocessing)
    return np.stack(indices), 1.0 / (k * k), expected


def resample(frame, invalid, geometry, preprocessing=PAPER_PREPROCESSING):
    """Move a frame's photons onto the training detector by resolution and azimuth.

    Every (sub)pixel of the frame sends its photons to the training pixel that
    sees the same resolution d = lambda / (2 sin theta) at the same azimuth
    around the beam: sin theta' = (lambda' / lambda) sin theta, radius
    R' = D' tan 2theta'. Photons are summed, never interpolated, so a spot's
    integrated count and its signal-to-noise ratio are kept. Pixels beyond the
    training detector's edge, or at resolutions it cannot see, are dropped.

    Parameters
    ----------
    frame : ndarray, shape (rows, cols)
        Detector values (photons).
    invalid : ndarray of bool, same shape
        Pixels to ignore (:func:`invalid_pixels`).
    geometry : FrameGeometry
        The frame's geometry.
    preprocessing : Preprocessing
        The training detector.

    Returns
    -------
    counts : ndarray of float32, shape preprocessing.shape
        Photons per training pixel; a pixel partly fed by ignored source
        pixels is scaled up by (source pixels) / (unmasked source pixels).
    masked : ndarray of bool
        Training pixels whose unmasked source pixels cover less than
        :data:`MIN_COVERAGE` of them (gaps, beamstop, outside the frame).
    """
    if not isinstance(geometry, FrameGeometry):
        raise ValueError(f"geometry must be a FrameGeometry, got {type(geometry).__name__}")
    index, weight, expected = _mapping(tuple(frame.shape), geometry, preprocessing)
    n = preprocessing.shape[0] * preprocessing.shape[1]
    valid = ~invalid.ravel()
    values = np.where(valid, frame.ravel().astype(np.float64, copy=False), 0.0) * weight
    sums = np.zeros(n)
    covered = np.zeros(n)
    everything = np.zeros(n)
    for sub in index:
        keep = sub >= 0
        target = sub[keep]
        sums += np.bincount(target, weights=values[keep], minlength=n)
        covered += np.bincount(target, weights=valid[keep] * weight, minlength=n)
        everything += np.bincount(target, minlength=n) * weight
    expected = expected.ravel()
    masked = (covered < MIN_COVERAGE * expected) | (covered <= 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = np.where(masked, 0.0, sums * (everything / np.where(covered > 0, covered, 1.0)))
    return counts.reshape(preprocessing.shape).astype(np.float32), masked.reshape(preprocessing.shape)


# --------------------------------------------------------------------------- no geometry


def default_bin_factor(shape, target_shape):
    """The largest integer factor whose binned frame still fills ``target_shape`` (at least 1)."""
    return max(1, min(shape[0] // target_shape[0], shape[1] // target_shape[1]))


def bin_and_crop(frame, invalid, factor, target_shape, beam_center_px=None):
    """Sum ``factor x factor`` pixel blocks in a window of ``target_shape`` blocks around the beam centre.

    Parameters
    ----------
    frame : ndarray, shape (rows, cols)
    invalid : ndarray of bool, same shape
        Pixels to ignore.
    factor : int
        Block side (pixels).
    target_shape : tuple of int
        ``(rows, cols)`` of the result.
    beam_center_px : tuple of float, optional
        ``(x, y)`` in pixels (corner of pixel (0, 0) at (0, 0)); default the frame centre.

    Returns
    -------
    counts : ndarray of float32, shape target_shape
        Photons per block; a block with ignored pixels is scaled by
        (pixels) / (unmasked pixels).
    masked : ndarray of bool
        Blocks less than :data:`MIN_COVERAGE` unmasked, or outside the frame.
    """
    factor = check_int("bin factor", factor, minimum=1)
    rows, cols = frame.shape
    tr, tc = target_shape
    bx, by = (cols / 2.0, rows / 2.0) if beam_center_px is None else beam_center_px
    top, left = int(round(by - tr * factor / 2.0)), int(round(bx - tc * factor / 2.0))
    window = np.zeros((tr * factor, tc * factor), np.float64)
    good = np.zeros(window.shape, bool)
    r0, r1 = max(top, 0), min(top + tr * factor, rows)
    c0, c1 = max(left, 0), min(left + tc * factor, cols)
    if factor == 1 and (r0, r1, c0, c1) == (top, top + tr, left, left + tc):
        # the window lies inside the frame, no binning: each pixel is its own block (fast path, same result)
        masked = np.ascontiguousarray(invalid[r0:r1, c0:c1])
        counts = frame[r0:r1, c0:c1].astype(np.float32)
        counts[masked] = 0.0
        return counts, masked
    if r1 > r0 and c1 > c0:
        part_valid = ~invalid[r0:r1, c0:c1]
        good[r0 - top : r1 - top, c0 - left : c1 - left] = part_valid
        window[r0 - top : r1 - top, c0 - left : c1 - left] = np.where(part_valid, frame[r0:r1, c0:c1], 0.0)
    sums = window.reshape(tr, factor, tc, factor).sum(axis=(1, 3))
    covered = good.reshape(tr, factor, tc, factor).sum(axis=(1, 3)) / float(factor * factor)
    masked = covered < MIN_COVERAGE
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = np.where(masked, 0.0, sums / np.where(covered > 0, covered, 1.0))
    return counts.astype(np.float32), masked


# --------------------------------------------------------------------------- masked pixels


def _group_medians(values, labels, n_labels):
    """Median of ``values`` per label in [0, n_labels) (NaN for empty labels); lower median for even counts."""
    order = np.lexsort((values, labels))
    labels_sorted, values_sorted = labels[order], values[order]
    starts = np.searchsorted(labels_sorted, np.arange(n_labels), side="left")
    stops = np.searchsorted(labels_sorted, np.arange(n_labels), side="right")
    counts = stops - starts
    medians = np.full(n_labels, np.nan)
    has = counts > 0
    medians[has] = values_sorted[starts[has] + (counts[has] - 1) // 2]
    return medians


def fill_masked(counts, masked, beam_center_px=None, ring_width_px=2.0, n_sectors=16):
    """Give masked pixels the local background: the median of their ring and sector.

    Rings are ``ring_width_px`` wide around the beam centre and cut into
    ``n_sectors`` azimuthal sectors. A masked pixel gets the median of the
    unmasked pixels of its sector of its ring; where the whole sector is
    masked, the median of the ring; where the whole ring is, the nearest ring
    with data. Medians ignore spots, so a filled pixel looks like the sky
    around it.

    Parameters
    ----------
    counts : ndarray, shape (rows, cols)
    masked : ndarray of bool, same shape
    beam_center_px : tuple of float, optional
        ``(x, y)``; default the image centre.
    ring_width_px : float, default 2.0
    n_sectors : int, default 16

    Returns
    -------
    ndarray of float32
        A copy of ``counts`` with masked pixels filled (all zeros if every
        pixel is masked).

    Examples
    --------
    >>> counts = np.array([[1.0, 1, 1], [1, 50, 1], [1, 1, 1]])
    >>> fill_masked(counts, counts > 10)[1, 1]
    np.float32(1.0)
    """
    counts = np.asarray(counts, dtype=np.float32)
    masked = np.asarray(masked, dtype=bool)
    if masked.shape != counts.shape:
        raise ValueError(f"masked has shape {masked.shape}, counts {counts.shape}")
    check_positive("ring_width_px", ring_width_px)
    n_sectors = check_int("n_sectors", n_sectors, minimum=1)
    if not masked.any():
        return counts.copy()
    out = counts.copy()
    if masked.all():
        out[:] = 0.0
        return out
    rows, cols = counts.shape
    bx, by = (cols / 2.0, rows / 2.0) if beam_center_px is None else beam_center_px
    y, x = np.indices(counts.shape, dtype=np.float64)
    dx, dy = x + 0.5 - bx, y + 0.5 - by
    ring = (np.hypot(dx, dy) / ring_width_px).astype(np.int64)
    sector = ((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * n_sectors).astype(np.int64) % n_sectors
    n_rings = int(ring.max()) + 1
    good = ~masked
    local = _group_medians(counts[good], (ring * n_sectors + sector)[good], n_rings * n_sectors)
    per_ring = _group_medians(counts[good], ring[good], n_rings)
    have = np.flatnonzero(np.isfinite(per_ring))
    per_ring = np.interp(np.arange(n_rings), have, per_ring[have])
    fill = local[ring * n_sectors + sector]
    fill = np.where(np.isfinite(fill), fill, per_ring[ring])
    out[masked] = fill[masked]
    return out


# --------------------------------------------------------------------------- the whole chain


def _is_training_detector(geometry, shape, preprocessing):
    """Whether a frame of ``shape`` and ``geometry`` is pixel for pixel the training detector."""
    target = preprocessing.geometry
    return (tuple(shape) == preprocessing.shape
            and all(math.isclose(a, b, rel_tol=1e-9) for a, b in (
                (geometry.pixel_size_mm, target.pixel_size_mm), (geometry.distance_mm, target.distance_mm),
                (geometry.wavelength_A, target.wavelength_A)))
            and all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(geometry.center_px(shape),
                                                                      target.center_px(shape))))


def to_training_counts(frame, mask=None, geometry=None, preprocessing=PAPER_PREPROCESSING, *,
                       beam_center_px=None, saturation=None):
    """Photons per training-detector pixel, masked pixels filled (steps 1 and 2 of :func:`preprocess`).

    Returns
    -------
    counts : ndarray of float32, shape preprocessing.shape
    masked : ndarray of bool
        Training pixels that were filled.
    """
    frame = _check_frame(frame)
    if not isinstance(preprocessing, Preprocessing):
        raise ValueError(f"preprocessing must be a Preprocessing, got {type(preprocessing).__name__}")
    invalid = invalid_pixels(frame, mask, saturation)
    if geometry is not None and _is_training_detector(geometry, frame.shape, preprocessing):
        # the frame already is in the training geometry: resampling would map each pixel onto itself
        counts, masked = bin_and_crop(frame, invalid, 1, preprocessing.shape, (frame.shape[1] / 2, frame.shape[0] / 2))
    elif geometry is not None:
        counts, masked = resample(frame, invalid, geometry, preprocessing)
    else:
        factor = preprocessing.bin_factor or default_bin_factor(frame.shape, preprocessing.shape)
        if beam_center_px is not None:
            beam_center_px = (check_finite("beam_center_px[0]", beam_center_px[0]),
                              check_finite("beam_center_px[1]", beam_center_px[1]))
        counts, masked = bin_and_crop(frame, invalid, factor, preprocessing.shape, beam_center_px)
    return fill_masked(counts, masked, preprocessing.geometry.center_px(preprocessing.shape)), masked


def preprocess(frame, mask=None, geometry=None, preprocessing=PAPER_PREPROCESSING, *, beam_center_px=None,
               saturation=None):
    """The 8-bit image a model trained on ``preprocessing``'s detector sees for this frame.

    Parameters
    ----------
    frame : array_like, shape (rows, cols)
        Raw detector values in photons (or ADU of one per photon), of any
        detector. Negative values (Pilatus gaps -1, bad pixels -2) and
        non-finite values are ignored.
    mask : array_like of bool, optional
        True (or nonzero) for pixels to ignore.
    geometry : FrameGeometry, optional
        The frame's geometry: the frame is resampled onto the training
        detector by resolution and azimuth (:func:`resample`). Without it the
        frame is binned and cropped around the beam centre (:func:`bin_and_crop`).
    preprocessing : Preprocessing, default the paper's
        The training detector and 8-bit transform (``SavedModel.preprocessing``).
    beam_center_px : tuple of float, optional
        ``(x, y)`` beam centre for binning and cropping when there is no
        ``geometry`` (default: the frame centre).
    saturation : float, optional
        Values at or above it are ignored (overload flags).

    Returns
    -------
    ndarray of uint8, shape preprocessing.shape

    Examples
    --------
    >>> frame = np.full((1024, 1024), 4.0, np.float32)
    >>> image = preprocess(frame)          # 2 x 2 binning: 16 photons + 10 ADU offset
    >>> image.shape, int(image[0, 0])
    ((512, 512), 5)
    """
    counts, _ = to_training_counts(frame, mask, geometry, preprocessing, beam_center_px=beam_center_px,
                                   saturation=saturation)
    return to_8bit(counts + np.float32(preprocessing.adc_offset))
