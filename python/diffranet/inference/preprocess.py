"""Turn a frame of any detector into the 8-bit image a model was trained on.

Three steps, each a function of its own:

1. **Onto the training detector.** With the frame's geometry
   (:class:`FrameGeometry`), :func:`resample` moves every pixel's photons to
   the training-detector pixel that sees the same resolution d = lambda / (2 sin
   theta) at the same azimuth (so a Bragg spot lands where the same reflection
   would land on the training detector, and its photons stay together).
   Without geometry, :func:`bin_and_crop` sums ``f x f`` blocks of pixels and
   keeps a window of the training shape around the beam centre.
2. **Missing area.** Pixels to ignore (mask, negative flags such as Pilatus
   gaps -1 and bad pixels -2, non-finite values, saturated pixels) send no
   photons. The part of a training pixel that no valid pixel fed (masks, gaps,
   the frame's edge, and the sampling of one pixel grid by the other) gets the
   local background: the median photon density of its ring and sector times
   the missing area (:func:`complete`). A training pixel fed mostly by ignored
   pixels holds only that background: neither a spot nor empty sky.
3. **8-bit.** The training detector's ADC offset is added and the paper's
   square-root transform applied (:func:`diffranet.simulation.response.to_8bit`).
   A frame whose background passes the 8-bit range once summed (more than
   half the image at 255) is scaled back into it (:func:`_in_range`).

Frames that need resampling or binning take all three steps in one call of
the compiled core (:func:`compiled_route_applies`: a map per frame shape and
geometry, cached; pixels to ignore skipped as they are read), which gives
the same bytes as the functions above: they are its reference.

See ``docs/preprocessing.md`` for the choices and pictures.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np

from .. import _core
from .._validation import check_finite, check_int, check_threads
from ..peaks.background import (
    fill_empty_sectors,
    fill_masked,
    group_medians,
    local_background,
    rings_and_sectors,
)
from ..simulation.response import to_8bit
from .geometry import PAPER_PREPROCESSING, FrameGeometry, Preprocessing

__all__ = [
    "preprocess", "to_training_counts", "resample", "bin_and_crop", "complete", "local_background", "fill_masked",
    "invalid_pixels", "count_nonfinite", "one_to_one_corner", "is_model_input", "compiled_route_applies", "INPUT_KINDS",
]

#: A training pixel is kept when its unmasked source pixels cover at least this share of it.
MIN_COVERAGE = 0.5

#: An 8-bit image with more than this share of its pixels at 255 has passed the 8-bit range (:func:`_in_range`).
OVERLOAD_SHARE = 0.5

#: The 8-bit level the median of such a frame is scaled to.
RANGE_MEDIAN_LEVEL = 128.0

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


#: The smallest float64 magnitude that becomes infinite as float32 (2**128 - 2**103).
FLOAT32_OVERFLOW = 2.0**128 - 2.0**103


def count_nonfinite(frame, mask=None, n_threads=None):
    """How many pixels of a frame are NaN or infinite outside its mask.

    Pixels of a float64 frame too large for float32 (the model input's type,
    from :data:`FLOAT32_OVERFLOW`) count too: they would become infinite there.

    Parameters
    ----------
    frame : array_like, shape (rows, cols)
        Detector values.
    mask : array_like of bool, optional
        True (or nonzero) for pixels to ignore.
    n_threads : int, optional
        Threads of the count (default: every core); float32 and float64
        frames in native byte order are counted in the compiled core, which
        reads the mask only near non-finite pixels.

    Returns
    -------
    int
        0 for frames of integers.

    Examples
    --------
    >>> count_nonfinite([[0.0, np.nan, np.inf, -1.0]], mask=[[False, True, False, False]])
    1
    """
    frame = _check_frame(frame)
    mask = _check_mask(mask, frame.shape)
    n_threads = check_threads(n_threads)
    if frame.dtype.kind != "f":
        return 0
    if frame.dtype.isnative and frame.dtype.itemsize in (4, 8):
        flags = None if mask is None else np.ascontiguousarray(mask).view(np.uint8)
        return _core.count_nonfinite(np.ascontiguousarray(frame), flags, n_threads)
    if frame.dtype.itemsize > 4:  # long double, float64 in the other byte order
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(frame) < FLOAT32_OVERFLOW)
    else:  # float16, float32 in the other byte order
        bad = ~np.isfinite(frame)
    if mask is not None:
        bad &= ~mask
    return int(np.count_nonzero(bad))


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


def _target_positions(source, shape, target, target_shape, x, y, max_radius_mm=None):
    """Training-detector pixel positions (x', y') of source positions (x, y); NaN if unreachable.

    The radial scale is tabulated up to ``max_radius_mm`` (default: the largest
    radius among the positions) plus one source pixel.
    """
    dx, dy, radius = _radial(source, shape, x, y)
    reach = float(radius.max()) if max_radius_mm is None else max_radius_mm
    grid, scale = _radial_scale(source, target, reach + source.pixel_size_mm)
    factor = np.interp(radius, grid, scale) / target.pixel_size_mm
    bx, by = target.center_px(target_shape)
    return bx + dx * factor, by + dy * factor


def _frame_reach_mm(source, shape, subpixel_x=None, subpixel_y=None):
    """The largest radius (mm) of a frame's pixel centres, or of one subpixel of each pixel: at a corner.

    ``subpixel_x`` / ``subpixel_y``: the subpixel's place in its pixel, (j + 0.5) / k.
    The corner positions are computed with the expressions the whole grid is
    computed with, so the value is the very maximum the whole grid would give.
    """
    rows, cols = shape
    y = np.array([0.0, rows - 1.0])[:, None] + 0.5
    x = np.array([0.0, cols - 1.0])[None, :] + 0.5
    if subpixel_x is not None:
        x, y = x - 0.5 + subpixel_x, y - 0.5 + subpixel_y
    return float(_radial(source, shape, x, y)[2].max())


def _source_window(shape, source, preprocessing):
    """(row slice, column slice) of the frame pixels that can land on the training detector.

    A position lands at x' = b' + dx f(r) (f: training pixels per source mm at
    radius r, :func:`_radial_scale`), so on the training detector only if
    |dx| <= e' / f(r), e' the farthest training edge from its centre, and only
    if its radius reaches no farther than the training corners: r <= r_in.
    The window bounds |dx| and |dy| with the smallest f up to r_in (tabulated;
    two grid steps and two pixels of margin). Resampling reads only this
    window: a small part of a large detector at a long distance.
    """
    target, shape_t = preprocessing.geometry, preprocessing.shape
    rows, cols = shape
    whole = (slice(0, rows), slice(0, cols))
    # the frame's reach and one pixel more: subpixels lie within half a pixel of the centres
    reach = _frame_reach_mm(source, shape) + source.pixel_size_mm
    grid, scale = _radial_scale(source, target, reach + source.pixel_size_mm)
    bx_t, by_t = target.center_px(shape_t)
    extent_x, extent_y = max(bx_t, shape_t[1] - bx_t), max(by_t, shape_t[0] - by_t)
    corner_mm = math.hypot(extent_x, extent_y) * target.pixel_size_mm
    with np.errstate(invalid="ignore"):
        beyond = np.flatnonzero(~(grid * scale <= corner_mm))  # NaN (unreachable) counts as beyond
    last = len(grid) if beyond.size == 0 else min(int(beyond[0]) + 2, len(grid))
    near = scale[:last]
    near = near[np.isfinite(near)]
    if near.size == 0 or not near.min() > 0:
        return whole
    per_px = near.min() / target.pixel_size_mm * source.pixel_size_mm  # training pixels per source pixel
    bx, by = source.center_px(shape)
    half_x, half_y = extent_x / per_px, extent_y / per_px
    if not (math.isfinite(half_x) and math.isfinite(half_y)):
        return whole
    col0, col1 = max(int(math.floor(bx - half_x)) - 2, 0), min(int(math.ceil(bx + half_x)) + 2, cols)
    row0, row1 = max(int(math.floor(by - half_y)) - 2, 0), min(int(math.ceil(by + half_y)) + 2, rows)
    if col0 >= col1 or row0 >= row1:
        return (slice(0, 0), slice(0, 0))
    return slice(row0, row1), slice(col0, col1)


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


#: Frame pixels whose positions are computed at once when a map is built: the temporaries (about 80
#: bytes a pixel) stay near 100 MB for any frame size.
_MAP_CHUNK_PX = 2**20

#: Most (sub)pixels a resampling map is built from: the map and its building take about 60 bytes for
#: each (2 GB here). An EIGER2 16M whose every pixel lands on the model input needs 18 M; a frame of
#: 8192 x 8192 tiny pixels (a start message can claim one) would need 67 M and 4 GB.
MAX_MAP_SUBPIXELS = 2**25


def _row_chunks(rows, n_cols):
    """Consecutive row ranges (start, stop) covering the slice ``rows``, each of at most about
    :data:`_MAP_CHUNK_PX` pixels of ``n_cols`` columns."""
    step = max(1, _MAP_CHUNK_PX // max(n_cols, 1))
    return [(r, min(r + step, rows.stop)) for r in range(rows.start, rows.stop, step)]


def _subpixels_per_side(shape, source, preprocessing):
    """Subpixels per side of a source pixel: a subpixel spans at most half a training pixel (1 to 8).

    Steps are measured between neighbours of which one lands on the training
    detector, so only the :func:`_source_window` (with one more pixel around
    it) is evaluated, with the whole frame's radial table, a band of rows at a
    time (each band with the next band's first row, for the steps across).
    """
    target, shape_t = preprocessing.geometry, preprocessing.shape
    rows_w, cols_w = _source_window(shape, source, preprocessing)
    rows_w = slice(max(rows_w.start - 1, 0), min(rows_w.stop + 1, shape[0]))
    cols_w = slice(max(cols_w.start - 1, 0), min(cols_w.stop + 1, shape[1]))
    if rows_w.start >= rows_w.stop or cols_w.start >= cols_w.stop:
        return 1
    x = np.arange(cols_w.start, cols_w.stop, dtype=np.float64)[None, :] + 0.5
    reach = _frame_reach_mm(source, shape)
    largest = 0.0
    for start, stop in _row_chunks(rows_w, cols_w.stop - cols_w.start):
        y = np.arange(start, min(stop + 1, rows_w.stop), dtype=np.float64)[:, None] + 0.5
        xt, yt = _target_positions(source, shape, target, shape_t, x, y, reach)
        with np.errstate(invalid="ignore"):
            seen = (xt >= 0) & (xt < shape_t[1]) & (yt >= 0) & (yt < shape_t[0])
        for axis in (0, 1):
            near = np.diff(seen, axis=axis) | np.delete(seen, -1, axis=axis)
            for a in (xt, yt):
                step = np.abs(np.diff(a, axis=axis))[near]
                step = step[np.isfinite(step)]
                largest = max(largest, float(step.max()) if step.size else 0.0)
    return int(min(max(math.ceil(2.0 * largest), 1), 8))


@functools.lru_cache(maxsize=4)
def _mapping(shape, source, preprocessing):
    """:func:`_build_mapping`, cached per geometry."""
    return _build_mapping(shape, source, preprocessing)


def _build_mapping(shape, source, preprocessing):
    """Sparse matrix from source pixels to training pixels, and the expected coverage.

    Each source pixel is split into ``k x k`` subpixels, ``k`` chosen so that a
    subpixel spans at most half a training pixel (no holes when the source
    pixels are coarser than the training pixels); entry ``(t, s)`` of the
    matrix is the share of source pixel ``s`` whose subpixels land in training
    pixel ``t`` (a multiple of ``1 / k**2``). Resampling a frame is then one
    sparse matrix-vector product.
    """
    import scipy.sparse

    target, shape_t = preprocessing.geometry, preprocessing.shape
    rows, cols = shape
    window_rows, window_cols = _source_window(shape, source, preprocessing)
    x = np.arange(window_cols.start, window_cols.stop, dtype=np.float64)[None, :] + 0.5
    window_px = (window_rows.stop - window_rows.start) * (window_cols.stop - window_cols.start)
    _check_map_budget(window_px, shape)  # before the subpixels are counted: that too reads the window
    k = _subpixels_per_side(shape, source, preprocessing)
    _check_map_budget(window_px * k * k, shape)
    all_sources, all_targets = [], []
    # the radial table spans the whole frame, as it would if every pixel were evaluated: one reach per subpixel
    reach = {(i, j): _frame_reach_mm(source, shape, (j + 0.5) / k, (i + 0.5) / k) for i in range(k) for j in range(k)}
    for start, stop in _row_chunks(window_rows, window_cols.stop - window_cols.start):
        y = np.arange(start, stop, dtype=np.float64)[:, None] + 0.5
        # flat frame index of each pixel of the band
        flat = (np.arange(start, stop)[:, None] * cols
                + np.arange(window_cols.start, window_cols.stop)[None, :]).ravel()
        for i in range(k):
            for j in range(k):
                xt, yt = _target_positions(source, shape, target, shape_t, x - 0.5 + (j + 0.5) / k,
                                           y - 0.5 + (i + 0.5) / k, reach[i, j])
                with np.errstate(invalid="ignore"):
                    col, row = np.floor(xt).ravel(), np.floor(yt).ravel()
                    inside = (col >= 0) & (col < shape_t[1]) & (row >= 0) & (row < shape_t[0])
                _check_window_border(inside.reshape(xt.shape), (slice(start, stop), window_cols), window_rows,
                                     shape)
                all_sources.append(flat[inside])
                all_targets.append((row[inside] * shape_t[1] + col[inside]).astype(np.intp))
    sources = np.concatenate(all_sources) if all_sources else np.zeros(0, np.intp)
    targets = np.concatenate(all_targets) if all_targets else np.zeros(0, np.intp)
    matrix = scipy.sparse.csr_matrix((np.ones(sources.size), (targets, sources)),
                                     shape=(shape_t[0] * shape_t[1], rows * cols))
    matrix.sum_duplicates()
    matrix.data /= k * k
    expected = _expected_pixels(source, preprocessing)
    expected.flags.writeable = False
    return matrix, expected


def _check_map_budget(subpixels, shape):
    if subpixels > MAX_MAP_SUBPIXELS:
        raise ValueError(f"the geometry maps {subpixels:,} (sub)pixels of a {shape[0]} x {shape[1]} frame onto the "
                         f"model input, at most {MAX_MAP_SUBPIXELS:,} are mapped (about 60 bytes each); "
                         "bin the frames or give a smaller frame")


def _check_window_border(inside, band, window_rows, shape):
    """Raise if a pixel of the band (rows, columns) on an edge of the window that the frame goes on
    past lands on the training detector.

    :func:`_source_window` is a bound, so this never happens; if it did, the
    map would miss pixels beyond the window.
    """
    if inside.size == 0:
        return
    rows, cols = band
    edges = [(rows.start == window_rows.start > 0, inside[0]), (rows.stop == window_rows.stop < shape[0], inside[-1]),
             (cols.start > 0, inside[:, 0]), (cols.stop < shape[1], inside[:, -1])]
    if any(cut and edge.any() for cut, edge in edges):
        raise AssertionError("a frame pixel outside the resampling window lands on the training detector")


def _mask_digest(mask):
    """A short digest of a boolean mask's pixels (cache key)."""
    return hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).digest()


@functools.lru_cache(maxsize=4)
def _covered_cache(mapping_key, invalid_digest):
    """Slot for the coverage of one mask under one mapping (filled by :func:`_coverage`)."""
    return {}


def _coverage(matrix, invalid, mapping_key):
    """Valid source pixels per training pixel; cached per mask (masks rarely change between frames)."""
    slot = _covered_cache(mapping_key, _mask_digest(invalid))
    if "covered" not in slot:
        covered = matrix @ (~invalid.ravel()).astype(np.float64)
        covered.flags.writeable = False
        slot["covered"] = covered
    return slot["covered"]


def resample(frame, invalid, geometry, preprocessing=PAPER_PREPROCESSING):
    """Sum a frame's photons into the training detector's pixels by resolution and azimuth.

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
        Pixels to ignore (:func:`invalid_pixels`): they send nothing.
    geometry : FrameGeometry
        The frame's geometry.
    preprocessing : Preprocessing
        The training detector.

    Returns
    -------
    sums : ndarray of float64, shape preprocessing.shape
        Photons received by each training pixel.
    covered : ndarray of float64
        Area of each training pixel covered by the valid source pixels that
        fed it, in source pixels.
    expected : ndarray of float64
        Area of each training pixel in source pixels (from the Jacobian of the
        mapping); ``covered`` differs from it by the masked source pixels and
        by the sampling of one pixel grid by the other.
    """
    if not isinstance(geometry, FrameGeometry):
        raise ValueError(f"geometry must be a FrameGeometry, got {type(geometry).__name__}")
    matrix, expected = _mapping(tuple(frame.shape), geometry, preprocessing)
    values = frame.astype(np.float64).ravel()
    values[invalid.ravel()] = 0.0
    covered = _coverage(matrix, invalid, (tuple(frame.shape), geometry, preprocessing))
    shape = preprocessing.shape
    return (matrix @ values).reshape(shape), covered.reshape(shape), expected


# --------------------------------------------------------------------------- no geometry


def default_bin_factor(shape, target_shape):
    """The largest integer factor whose binned frame still fills ``target_shape`` (at least 1)."""
    return max(1, min(shape[0] // target_shape[0], shape[1] // target_shape[1]))


def _window_corner(shape, factor, target_shape, beam_center_px):
    """(row, col) of the top-left frame pixel of the binning window (may lie outside the frame)."""
    rows, cols = shape
    bx, by = (cols / 2.0, rows / 2.0) if beam_center_px is None else beam_center_px
    return int(round(by - target_shape[0] * factor / 2.0)), int(round(bx - target_shape[1] * factor / 2.0))


def _unbinned(frame, invalid, corner, target_shape):
    """(sums, covered, expected) of a frame window whose pixels are the training pixels one to one."""
    window = np.s_[corner[0]:corner[0] + target_shape[0], corner[1]:corner[1] + target_shape[1]]
    valid = ~invalid[window]
    return np.where(valid, frame[window], 0.0), valid.astype(np.float64), np.ones(target_shape)


def _same_grid(geometry, target, shape, rel_tol=1e-9):
    """True if ``geometry`` on frames of ``shape`` is the ``target`` detector (to 1 part in 1e9)."""
    close = functools.partial(math.isclose, rel_tol=rel_tol, abs_tol=0.0)
    center, target_center = geometry.center_px(shape), target.center_px(shape)
    return (close(geometry.pixel_size_mm, target.pixel_size_mm) and close(geometry.distance_mm, target.distance_mm)
            and close(geometry.wavelength_A, target.wavelength_A)
            and all(math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9) for a, b in zip(center, target_center)))


def one_to_one_corner(shape, geometry=None, preprocessing=PAPER_PREPROCESSING, beam_center_px=None):
    """Where the training pixels are a window of the frame's own pixels, one to one, if they are.

    That is the case for a frame in the training detector's geometry (same
    shape, pixel size, distance, wavelength and beam centre), which needs no
    resampling, and for a frame without geometry whose bin factor is 1 and
    whose crop window lies inside it. Both then take the same exact shortcut
    (:func:`resample` and :func:`bin_and_crop` would give the same counts).

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the frame.
    geometry : FrameGeometry, optional
    preprocessing : Preprocessing
    beam_center_px : tuple of float, optional
        As for :func:`bin_and_crop` (frames without geometry only).

    Returns
    -------
    tuple of int or None
        ``(row, col)`` of the frame pixel that is training pixel ``(0, 0)``,
        or None when the frame must be resampled or binned.
    """
    target_shape = preprocessing.shape
    if geometry is not None:
        if tuple(shape) != target_shape or not _same_grid(geometry, preprocessing.geometry, target_shape):
            return None
        return (0, 0)
    if (preprocessing.bin_factor or default_bin_factor(shape, target_shape)) != 1:
        return None
    top, left = _window_corner(shape, 1, target_shape, beam_center_px)
    if top < 0 or left < 0 or top + target_shape[0] > shape[0] or left + target_shape[1] > shape[1]:
        return None
    return top, left


def bin_and_crop(frame, invalid, factor, target_shape, beam_center_px=None):
    """Sum ``factor x factor`` pixel blocks in a window of ``target_shape`` blocks around the beam centre.

    Parameters
    ----------
    frame : ndarray, shape (rows, cols)
    invalid : ndarray of bool, same shape
        Pixels to ignore: they send nothing.
    factor : int
        Block side (pixels).
    target_shape : tuple of int
        ``(rows, cols)`` of the result.
    beam_center_px : tuple of float, optional
        ``(x, y)`` in pixels (corner of pixel (0, 0) at (0, 0)); default the frame centre.

    Returns
    -------
    sums, covered, expected : ndarray of float64, shape target_shape
        As :func:`resample`: photons per block, valid pixels per block, and
        ``factor ** 2``.
    """
    factor = check_int("bin factor", factor, minimum=1)
    rows, cols = frame.shape
    tr, tc = target_shape
    top, left = _window_corner(frame.shape, factor, target_shape, beam_center_px)
    r0, r1 = max(top, 0), min(top + tr * factor, rows)
    c0, c1 = max(left, 0), min(left + tc * factor, cols)
    if factor == 1 and (r0, r1, c0, c1) == (top, top + tr, left, left + tc):
        return _unbinned(frame, invalid, (top, left), target_shape)  # fast path, same result
    window = np.zeros((tr * factor, tc * factor), np.float64)
    good = np.zeros(window.shape, bool)
    if r1 > r0 and c1 > c0:
        part_valid = ~invalid[r0:r1, c0:c1]
        good[r0 - top : r1 - top, c0 - left : c1 - left] = part_valid
        window[r0 - top : r1 - top, c0 - left : c1 - left] = np.where(part_valid, frame[r0:r1, c0:c1], 0.0)
    sums = window.reshape(tr, factor, tc, factor).sum(axis=(1, 3))
    covered = good.reshape(tr, factor, tc, factor).sum(axis=(1, 3)).astype(np.float64)
    return sums, covered, np.full(target_shape, float(factor * factor))


# --------------------------------------------------------------------------- masked pixels


@functools.lru_cache(maxsize=4)
def _background_plan(shape, center, masked_digest, where_digest):
    """Slot for what :func:`_background_at` needs of one mask and one set of pixels (filled there)."""
    return {}


def _plan_background(masked, center, where):
    """The cells :func:`_background_at` computes for this mask and these pixels, and how to gather them."""
    n_sectors = 16
    ring, cell = rings_and_sectors(masked.shape, center, 2.0, n_sectors)
    n_rings = int(ring.max()) + 1
    good = ~masked
    cell_good = cell[good]
    filled = (np.bincount(cell_good, minlength=n_rings * n_sectors) > 0).reshape(n_rings, n_sectors)
    wanted = np.zeros(n_rings * n_sectors, bool)
    wanted[cell[where]] = True
    wanted = wanted.reshape(n_rings, n_sectors)
    ring_has_data = filled.any(axis=1)
    whole_rings = (wanted & ~filled).any(axis=1)
    have = np.flatnonzero(ring_has_data)
    empty = np.flatnonzero(whole_rings & ~ring_has_data)
    if empty.size:  # np.interp's neighbours of an empty ring: the nearest rings with data below and above
        at = np.searchsorted(have, empty)
        whole_rings[have[np.clip(at - 1, 0, have.size - 1)]] = True
        whole_rings[have[np.clip(at, 0, have.size - 1)]] = True
    keep = (wanted | whole_rings[:, None]).ravel()[cell_good]
    return {"good": good, "pixels": np.flatnonzero(good)[keep], "labels": cell_good[keep],
            "shape": (n_rings, n_sectors), "rows": whole_rings & ring_has_data,
            "any_whole": bool(whole_rings.any()), "cells": cell[where]}


def _background_at(values, masked, beam_center_px, where):
    """``local_background(values, masked, beam_center_px)[where]``, computing only the medians it needs.

    Needed: the cells (ring and sector) holding a pixel of ``where``; for such
    a cell with no unmasked pixel, every cell of its ring; for such a ring
    with no unmasked pixel, the nearest rings with data on either side. The
    medians are the same numbers as in :func:`local_background` (same sort
    keys, same interpolation between the same rings). Which cells and pixels
    that means is cached per mask and ``where``.
    """
    if masked.all():
        return np.zeros(int(np.count_nonzero(where)))
    if where.all():
        return local_background(values, masked, beam_center_px).ravel()
    center = None if beam_center_px is None else (float(beam_center_px[0]), float(beam_center_px[1]))
    digest = _mask_digest(masked)
    slot = _background_plan(masked.shape, center, digest, digest if where is masked else _mask_digest(where))
    if "plan" not in slot:
        slot["plan"] = _plan_background(masked, center, where)
    plan = slot["plan"]
    good_values = values[plan["good"]]
    low_high = (float(good_values.min()), float(good_values.max()))
    n_rings, n_sectors = plan["shape"]
    local = group_medians(np.asarray(values.ravel()[plan["pixels"]], dtype=np.float64), plan["labels"],
                           n_rings * n_sectors, low_high).reshape(n_rings, n_sectors)
    if plan["any_whole"]:
        local = fill_empty_sectors(local, plan["rows"])
    return local.ravel()[plan["cells"]]


def complete(sums, covered, expected, beam_center_px=None):
    """Photons per training pixel: the photons received plus the background of the area no valid pixel fed.

    A training pixel of area ``expected`` (in source pixels) received the
    photons of valid source pixels covering ``covered`` of it. The rest (masked
    source pixels, gaps, the edge of the frame, and the sampling of one pixel
    grid by the other) gets the local background photon density (median of
    ``sums / covered`` over the ring and sector, :func:`local_background`):

        counts = sums + (expected - covered) * background_density

    so spots keep exactly the photons they had, and the background keeps its
    level wherever pixels are missing. Pixels with ``covered`` below
    :data:`MIN_COVERAGE` of ``expected`` are masked: they get
    ``expected * background_density`` only.

    Returns
    -------
    counts : ndarray of float32
    masked : ndarray of bool
    """
    masked = (covered < MIN_COVERAGE * expected) | (covered <= 0)
    if not masked.any() and np.all(covered >= expected):  # every pixel fully fed: no background to add
        return np.maximum(sums, 0.0).astype(np.float32), masked
    with np.errstate(invalid="ignore", divide="ignore"):
        density = np.where(covered > 0, sums / np.where(covered > 0, covered, 1.0), 0.0)
    # only pixels not exactly fed (or masked) change: elsewhere (expected - covered) * background is 0
    need = masked | (covered != expected)
    background = _background_at(density, masked, beam_center_px, need)
    counts = sums.copy()
    fed, area = covered[need], expected[need]
    counts[need] = np.where(masked[need], area * background, sums[need] + (area - fed) * background)
    return np.maximum(counts, 0.0).astype(np.float32), masked


# --------------------------------------------------------------------------- the whole chain


def to_training_counts(frame, mask=None, geometry=None, preprocessing=PAPER_PREPROCESSING, *,
                       beam_center_px=None, saturation=None):
    """Photons per training-detector pixel, missing area completed (steps 1 and 2 of :func:`preprocess`).

    Returns
    -------
    counts : ndarray of float32, shape preprocessing.shape
    masked : ndarray of bool
        Training pixels mostly fed by masked pixels or lying outside the
        frame: they hold only the local background.
    """
    frame = _check_frame(frame)
    if not isinstance(preprocessing, Preprocessing):
        raise ValueError(f"preprocessing must be a Preprocessing, got {type(preprocessing).__name__}")
    invalid = invalid_pixels(frame, mask, saturation)
    beam_center_px = _check_center(geometry, beam_center_px)
    corner = one_to_one_corner(frame.shape, geometry, preprocessing, beam_center_px)
    if corner is not None:
        sums, covered, expected = _unbinned(frame, invalid, corner, preprocessing.shape)
    elif geometry is not None:
        sums, covered, expected = resample(frame, invalid, geometry, preprocessing)
    else:
        factor = preprocessing.bin_factor or default_bin_factor(frame.shape, preprocessing.shape)
        sums, covered, expected = bin_and_crop(frame, invalid, factor, preprocessing.shape, beam_center_px)
    return complete(sums, covered, expected, preprocessing.geometry.center_px(preprocessing.shape))


def _check_center(geometry, beam_center_px):
    """The validated beam centre of a frame without geometry (None otherwise)."""
    if geometry is not None:
        if not isinstance(geometry, FrameGeometry):
            raise ValueError(f"geometry must be a FrameGeometry, got {type(geometry).__name__}")
        return None
    if beam_center_px is None:
        return None
    return (check_finite("beam_center_px[0]", beam_center_px[0]), check_finite("beam_center_px[1]", beam_center_px[1]))


@functools.lru_cache(maxsize=8)
def _table_8bit(dtype, adc_offset):
    """The 8-bit image of every value of an unsigned integer type of up to 16 bits (read-only).

    The same operations as :func:`to_training_counts` and :func:`preprocess`
    on a fully valid pixel, applied to each possible value once.
    """
    counts = np.maximum(np.arange(2 ** (8 * np.dtype(dtype).itemsize), dtype=np.float64), 0.0).astype(np.float32)
    table = to_8bit(counts + np.float32(adc_offset))
    table.flags.writeable = False
    return table


def _invalid_in_window(window, mask, saturation):
    """Masked or saturated pixels of an unsigned-integer window (None when there are none)."""
    invalid = None if mask is None or not mask.any() else mask
    if saturation is not None and float(window.max()) >= check_finite("saturation", saturation):
        saturated = window >= saturation
        invalid = saturated if invalid is None else invalid | saturated
    return invalid


def _table_image(frame, corner, mask, preprocessing, saturation):
    """The 8-bit image of an unsigned-integer frame whose pixels are the training pixels, by table look-up.

    Pixels to ignore then hold only their local background (as
    :func:`complete` gives them: the other pixels are fed exactly), whose
    8-bit values replace the looked-up ones.
    """
    rows, cols = preprocessing.shape
    window_slice = np.s_[corner[0]:corner[0] + rows, corner[1]:corner[1] + cols]
    window = frame[window_slice]
    table = _table_8bit(frame.dtype.str, float(preprocessing.adc_offset))
    if frame.dtype.isnative:  # the compiled look-up: a third of numpy's time (no index conversion)
        image = _core.lookup_u8(table, np.ascontiguousarray(window))
    else:
        image = np.take(table, window)
    invalid = _invalid_in_window(window, None if mask is None else mask[window_slice], saturation)
    if invalid is not None:
        background = _background_at(window, invalid, preprocessing.geometry.center_px(preprocessing.shape), invalid)
        counts = np.maximum(background, 0.0).astype(np.float32)
        image[invalid] = to_8bit(counts + np.float32(preprocessing.adc_offset))
    return image


# --------------------------------------------------------------------------- the compiled route

#: Ring width (pixels) and sectors of the local background (those of :func:`local_background`).
_RING_WIDTH_PX, _N_SECTORS = 2.0, 16


def _binning_matrix(shape, factor, target_shape, beam_center_px):
    """:func:`bin_and_crop` as a sparse matrix (each frame pixel of the window to its block) and ``factor ** 2``."""
    import scipy.sparse

    rows, cols = shape
    top, left = _window_corner(shape, factor, target_shape, beam_center_px)
    r = top + np.arange(target_shape[0] * factor)
    c = left + np.arange(target_shape[1] * factor)
    r, c = r[(r >= 0) & (r < rows)], c[(c >= 0) & (c < cols)]
    sources = (r[:, None] * cols + c[None, :]).ravel()
    targets = (((r - top) // factor)[:, None] * target_shape[1] + ((c - left) // factor)[None, :]).ravel()
    matrix = scipy.sparse.csr_matrix((np.ones(sources.size), (targets, sources)),
                                     shape=(target_shape[0] * target_shape[1], rows * cols))
    matrix.sum_duplicates()
    return matrix, np.full(target_shape, float(factor * factor))


@functools.lru_cache(maxsize=4)
def _frame_map(shape, geometry, preprocessing, beam_center_px):
    """The compiled map of frames of ``shape`` onto the training detector (cached per shape, geometry,
    training detector and, without geometry, beam centre; masks and saturation are applied per frame)."""
    if geometry is not None:
        matrix, expected = _build_mapping(shape, geometry, preprocessing)
    else:
        factor = preprocessing.bin_factor or default_bin_factor(shape, preprocessing.shape)
        matrix, expected = _binning_matrix(shape, factor, preprocessing.shape, beam_center_px)
    bx, by = preprocessing.geometry.center_px(preprocessing.shape)
    ring, cell = rings_and_sectors(preprocessing.shape, (float(bx), float(by)), _RING_WIDTH_PX, _N_SECTORS)
    n_rings = int(ring.max()) + 1
    cell = cell.astype(np.int32)
    cell_starts = np.zeros(n_rings * _N_SECTORS + 1, np.int64)
    np.cumsum(np.bincount(cell.ravel(), minlength=n_rings * _N_SECTORS), out=cell_starts[1:])
    return _core.FrameMap(shape[0], shape[1], matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32),
                          np.ascontiguousarray(matrix.data, dtype=np.float64),
                          np.ascontiguousarray(expected, dtype=np.float64), cell,
                          np.argsort(cell.ravel(), kind="stable").astype(np.int32), cell_starts, n_rings,
                          _N_SECTORS, MIN_COVERAGE)


def compiled_route_applies(frame, geometry):
    """Whether :func:`preprocess` takes a frame that needs resampling or binning through the compiled core.

    It does for frames of native 8- to 64-bit integers, float32 and float64
    with a geometry (resampling), and of integers of up to 32 bits without
    one (binning: their block sums are exact in any order); other frames
    (bool, float16, non-native byte order, floats or 64-bit integers to bin)
    take the Python route. Both give the same image.
    """
    dtype = frame.dtype
    if not dtype.isnative or dtype.kind not in "uif" or dtype == np.float16 or frame.size >= 2 ** 31:
        return False
    return geometry is not None or (dtype.kind in "ui" and dtype.itemsize <= 4)


def _compiled_image(frame, mask, geometry, preprocessing, beam_center_px, saturation, n_threads=None):
    """The 8-bit image by the compiled route: the same bytes as ``to_8bit(to_training_counts(...) + offset)``.

    The frame's pixels are read once through the cached map of its shape and
    geometry; masked, negative, non-finite and saturated pixels are skipped as
    they are read; the missing area is completed and the square root taken
    in the compiled core, frame rows spread over ``n_threads`` (default all).
    """
    frame_map = _frame_map(tuple(frame.shape), geometry, preprocessing, beam_center_px)
    mask = None if mask is None else np.ascontiguousarray(mask).view(np.uint8)
    image = np.empty(preprocessing.shape, np.uint8)
    frame_map.to_8bit(np.ascontiguousarray(frame), mask, saturation, float(preprocessing.adc_offset), image,
                      check_threads(n_threads))
    return image


def _is_bslz4(frame):
    """Whether ``frame`` holds pixels still bslz4-compressed (see :func:`preprocess`)."""
    return callable(getattr(frame, "bslz4_layout", None)) and callable(getattr(frame, "expand", None))


def _bslz4_image(packed, mask, geometry, preprocessing, beam_center_px, saturation, input, n_threads=None):
    """The 8-bit image of a frame whose pixels are still bslz4-compressed, by the compiled route, or None.

    Only the bslz4 blocks holding pixels the map reads are expanded (into a
    buffer of the calling thread, kept between frames): a training detector
    that sees a part of a large frame reads only that part. None when the
    frame does not take that route (not integers in native byte order, a
    model input already, pixels that are the training pixels one to one, or
    lz4 pixels): the caller expands it.
    """
    dtype, shape = np.dtype(packed.dtype), tuple(packed.shape)
    if len(shape) != 2 or dtype.kind not in "ui" or not dtype.isnative or 0 in shape:
        return None
    if is_model_input(packed, preprocessing, input) or not compiled_route_applies(packed, geometry):
        return None
    center = _check_center(geometry, beam_center_px)
    if one_to_one_corner(shape, geometry, preprocessing, center) is not None:
        return None
    layout = packed.bslz4_layout()
    if layout is None:
        return None
    payload, offset, block_elements = layout
    frame_map = _frame_map(shape, geometry, preprocessing, center)
    mask = _check_mask(mask, shape)
    mask = None if mask is None else np.ascontiguousarray(mask).view(np.uint8)
    saturation = None if saturation is None else check_finite("saturation", saturation)
    image = np.empty(preprocessing.shape, np.uint8)
    frame_map.bslz4_to_8bit(payload, offset, dtype, block_elements, mask, saturation,
                            float(preprocessing.adc_offset), image, check_threads(n_threads))
    return image


#: What a frame holds: ``"counts"`` (photons or ADU, preprocessed), ``"8bit"`` (a model input
#: already), ``"auto"`` (8-bit when it is uint8 of the model's input shape, counts otherwise).
INPUT_KINDS = ("auto", "counts", "8bit")


def is_model_input(frame, preprocessing=PAPER_PREPROCESSING, input="auto"):
    """Whether ``frame`` is taken as a model input as it is (see :data:`INPUT_KINDS`).

    An 8-bit frame of the model's input shape is what the package itself writes
    (``diffranet dataset --format pgm|png``, :func:`diffranet.io.write_image` of
    a model input): applying the square root again would misread it. Raw
    detector frames are never 8-bit.

    Raises
    ------
    ValueError
        For an unknown ``input``, or ``input="8bit"`` with a frame that is not
        uint8 of the model's input shape.
    """
    if input not in INPUT_KINDS:
        raise ValueError(f"input must be one of {', '.join(INPUT_KINDS)}, got {input!r}")
    fits = frame.dtype == np.uint8 and tuple(frame.shape) == tuple(preprocessing.shape)
    if input == "8bit" and not fits:
        raise ValueError(f"an 8-bit model input is uint8 of shape {tuple(preprocessing.shape)}, "
                         f"got {frame.dtype} {tuple(frame.shape)}")
    return input == "8bit" or (input == "auto" and fits)


def preprocess(frame, mask=None, geometry=None, preprocessing=PAPER_PREPROCESSING, *, beam_center_px=None,
               saturation=None, input="auto", n_threads=None):
    """The 8-bit image a model trained on ``preprocessing``'s detector sees for this frame.

    Parameters
    ----------
    frame : array_like, shape (rows, cols)
        Raw detector values in photons (or ADU of one per photon), of any
        detector. Negative values (Pilatus gaps -1, bad pixels -2) and
        non-finite values are ignored. Also a frame whose pixels are still
        compressed (:class:`diffranet.live.compression.CompressedArray`, or
        any object with ``shape``, ``dtype``, ``bslz4_layout()`` and
        ``expand()``): integer pixels that need resampling or binning are
        then expanded only where the training detector reads them (a
        damaged block elsewhere goes unnoticed); other frames are expanded.
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
    input : {"auto", "counts", "8bit"}, default "auto"
        ``"auto"``: a uint8 frame of the model's input shape is a model input
        already and is returned as it is (:func:`is_model_input`); any other
        frame holds counts. ``"counts"`` / ``"8bit"`` say which it is.
    n_threads : int, optional
        Threads of the compiled route (default: every core the calling
        thread may use); the image never depends on it.

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
    if _is_bslz4(frame):
        if not isinstance(preprocessing, Preprocessing):
            raise ValueError(f"preprocessing must be a Preprocessing, got {type(preprocessing).__name__}")
        image = _bslz4_image(frame, mask, geometry, preprocessing, beam_center_px, saturation, input, n_threads)
        if image is not None and not _overloaded(image):
            return image
        frame = frame.expand()  # other frames, and (rarely) one past the 8-bit range: the route below
    frame = _check_frame(frame)
    if not isinstance(preprocessing, Preprocessing):
        raise ValueError(f"preprocessing must be a Preprocessing, got {type(preprocessing).__name__}")
    if is_model_input(frame, preprocessing, input):
        return frame.copy()
    center = _check_center(geometry, beam_center_px)
    corner = one_to_one_corner(frame.shape, geometry, preprocessing, center)
    if corner is not None and frame.dtype.kind == "u" and frame.dtype.itemsize <= 2:
        # unsigned-integer frames whose pixels are the training pixels: one table look-up per pixel
        image = _table_image(frame, corner, _check_mask(mask, frame.shape), preprocessing, saturation)
    elif corner is None and compiled_route_applies(frame, geometry):
        checked = None if saturation is None else check_finite("saturation", saturation)
        image = _compiled_image(frame, _check_mask(mask, frame.shape), geometry, preprocessing, center, checked,
                                n_threads)
    else:
        counts, _ = to_training_counts(frame, mask, geometry, preprocessing, beam_center_px=beam_center_px,
                                       saturation=saturation)
        image = to_8bit(counts + np.float32(preprocessing.adc_offset))
    if _overloaded(image):
        image = _in_range(frame, mask, geometry, preprocessing, beam_center_px, saturation)
    return image


def _overloaded(image):
    """Whether more than :data:`OVERLOAD_SHARE` of an 8-bit image is at 255."""
    return np.count_nonzero(image == 255) > OVERLOAD_SHARE * image.size


def _in_range(frame, mask, geometry, preprocessing, beam_center_px, saturation):
    """The 8-bit image of a frame whose background passes the 8-bit range, scaled back into it.

    Summing several bright detector pixels onto one input pixel can pass the
    8-bit range (65025 counts) everywhere; the input then holds 255 alone and
    shows nothing. Scaled so that its median sits at :data:`RANGE_MEDIAN_LEVEL`,
    it shows its spots again: a scale keeps each spot's height in units of the
    background's noise, which is what a significance input and a peak finder
    read. Its grey levels are then no longer photons.
    """
    counts, _ = to_training_counts(frame, mask, geometry, preprocessing, beam_center_px=beam_center_px,
                                   saturation=saturation)
    # more than half the pixels at 255: the median is past the range, so far above zero
    scale = np.float32(RANGE_MEDIAN_LEVEL ** 2 / float(np.median(counts)))
    return to_8bit(counts * scale + np.float32(preprocessing.adc_offset))
