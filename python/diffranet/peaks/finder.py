"""Bragg peak finding in the style of peakfinder8 (Cheetah, OM, CrystFEL).

The work runs in the compiled core (``diffranet._core.find_peaks``); this
module validates the input and names the result's columns.
"""

from __future__ import annotations

import collections
import hashlib
import math
import threading

import numpy as np

from .. import _core
from .._validation import FrozenAfterInit, check_finite, check_int, check_nonnegative, check_positive, check_threads

__all__ = ["PEAK_DTYPE", "PeakFinderSettings", "find_peaks", "find_peaks_batch", "count_peaks", "ring_statistics"]

#: One row per peak. Positions in pixels from the outer corner of pixel (0, 0),
#: x along columns and y along rows (the centre of pixel (row, col) is at
#: (col + 0.5, row + 0.5), the convention of every ``beam_center_px``);
#: intensities in the image's units.
PEAK_DTYPE = np.dtype([
    ("x", "<f8"),            # centroid column, weighted by value - local background
    ("y", "<f8"),            # centroid row
    ("intensity", "<f8"),    # sum of value - local background over the peak's pixels
    ("max_value", "<f8"),    # brightest pixel - local background
    ("n_pixels", "<i8"),     # pixels in the peak
    ("snr", "<f8"),          # intensity / local sigma (peakfinder8's definition)
    ("background", "<f8"),   # local background per pixel
    ("sigma", "<f8"),        # local noise per pixel
])

_COLUMNS = PEAK_DTYPE.names

#: The value each level of a square-root-compressed 8-bit image stands for (the offset aside, which no
#: ring threshold sees): the finder's table for the dataset's frames and the model inputs.
SQUARES_8BIT = np.arange(256, dtype=np.float32) ** 2

#: The compiled kernel puts pixel centres at integer coordinates; the Python
#: layer measures from the outer corner of pixel (0, 0), half a pixel away.
_KERNEL_OFFSET_PX = 0.5


class PeakFinderSettings(FrozenAfterInit):
    """Validated peak-finder parameters (see :func:`find_peaks` for their meaning).

    The defaults are CrystFEL's for ``indexamajig --peaks=peakfinder8``
    (``--min-snr=5 --min-pix-count=2 --max-pix-count=200 --local-bg-radius=3``),
    except ``adc_threshold``, whose CrystFEL default (800) is in the units of a
    particular detector; here it is 0 (the ring threshold alone decides).
    """

    def __init__(self, min_snr=5.0, adc_threshold=0.0, min_pixels=2, max_pixels=200, local_bg_radius=3,
                 iterations=5, min_radius_px=0.0, max_radius_px=None):
        self.min_snr = check_positive("min_snr", min_snr)
        self.adc_threshold = check_finite("adc_threshold", adc_threshold)
        self.min_pixels = check_int("min_pixels", min_pixels, minimum=1)
        self.max_pixels = check_int("max_pixels", max_pixels, minimum=self.min_pixels)
        self.local_bg_radius = check_int("local_bg_radius", local_bg_radius, minimum=1, maximum=1000)
        self.iterations = check_int("iterations", iterations, minimum=1, maximum=100)
        self.min_radius_px = check_nonnegative("min_radius_px", min_radius_px)
        self.max_radius_px = math.inf if max_radius_px is None else check_positive("max_radius_px", max_radius_px)
        if not self.max_radius_px > self.min_radius_px:
            raise ValueError(f"max_radius_px must be > min_radius_px={self.min_radius_px}, got {max_radius_px!r}")
        self._freeze()

    def core_args(self):
        """Keyword arguments of ``_core.find_peaks`` (all but images, layout, level values, threads)."""
        return {"min_snr": self.min_snr, "adc_threshold": self.adc_threshold, "min_pixels": self.min_pixels,
                "max_pixels": self.max_pixels, "local_bg_radius": self.local_bg_radius,
                "iterations": self.iterations, "min_radius_px": self.min_radius_px,
                "max_radius_px": self.max_radius_px}


def _check_images(images, ndim):
    arr = np.asarray(images)
    if arr.ndim != ndim:
        what = "a 2-D image (rows, cols)" if ndim == 2 else "a 3-D stack of images (n, rows, cols)"
        raise ValueError(f"image must be {what}, got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"image must hold real numbers, got dtype {arr.dtype}")
    if arr.shape[-1] < 1 or arr.shape[-2] < 1:
        raise ValueError(f"image must have at least one row and one column, got shape {arr.shape}")
    if arr.shape[-1] * arr.shape[-2] >= 2**31:
        raise ValueError(f"image must have fewer than 2**31 pixels, got shape {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if out.dtype.kind == "f" and arr.dtype.kind == "f" and not np.isfinite(out).all():
        raise ValueError("image must be finite (no NaN or inf); mask bad pixels instead")
    return out


def _check_mask(mask, shape):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != shape:
        raise ValueError(f"mask must be a bool array of shape {shape} (True: pixel records nothing), "
                         f"got {mask.dtype} {mask.shape}")
    return np.ascontiguousarray(mask, dtype=np.uint8)


def _kernel_center(beam_center_px, shape):
    """The beam centre in the kernel's coordinates (pixel centres at integers)."""
    rows, cols = shape
    if beam_center_px is None:
        beam_center_px = (cols / 2.0, rows / 2.0)
    if not isinstance(beam_center_px, (tuple, list, np.ndarray)) or len(beam_center_px) != 2:
        raise ValueError(f"beam_center_px must be (x, y) in pixels, got {beam_center_px!r}")
    x = check_finite("beam_center_px[0]", beam_center_px[0])
    y = check_finite("beam_center_px[1]", beam_center_px[1])
    if max(abs(x), abs(y)) > 1e7:
        raise ValueError(f"beam_center_px must lie within 1e7 pixels of the image, got {beam_center_px!r}")
    return x - _KERNEL_OFFSET_PX, y - _KERNEL_OFFSET_PX


#: Ring layouts kept for the next call: building one sorts every pixel by ring, which costs more than finding
#: the peaks of a 512 x 512 image, and a stream asks for the same detector, centre and mask again and again.
_LAYOUTS = collections.OrderedDict()
_LAYOUTS_LOCK = threading.Lock()
#: The pixels of the layouts kept (each costs 8 bytes per pixel); the newest is always kept.
_LAYOUTS_MAX_PIXELS = 2**23


def _layout(shape, x, y, mask):
    """The ring layout of a detector shape, beam centre (kernel coordinates) and uint8 mask (or None), cached."""
    key = (shape, x, y, None if mask is None else hashlib.blake2b(mask, digest_size=16).digest())
    with _LAYOUTS_LOCK:
        layout = _LAYOUTS.get(key)
        if layout is not None:
            _LAYOUTS.move_to_end(key)
            return layout
    layout = _core.RingLayout(shape[0], shape[1], x, y, mask)
    with _LAYOUTS_LOCK:
        _LAYOUTS[key] = layout
        pixels = sum(k[0][0] * k[0][1] for k in _LAYOUTS)
        while len(_LAYOUTS) > 1 and pixels > _LAYOUTS_MAX_PIXELS:
            (old_shape, *_), _ = _LAYOUTS.popitem(last=False)
            pixels -= old_shape[0] * old_shape[1]
    return layout


def _run(images, mask, beam_center_px, settings, n_threads, level_values=None):
    """Peaks of validated float32 images (n, rows, cols), or of uint8 images whose level l stands for
    ``level_values[l]`` (float32, 256 entries)."""
    shape = images.shape[1:]
    mask = _check_mask(mask, shape)
    x, y = _kernel_center(beam_center_px, shape)
    return _core.find_peaks(images, _layout(shape, x, y, mask), level_values,
                            n_threads=check_threads(n_threads), **settings.core_args())


def _table(found, select=None):
    n = len(found["x"]) if select is None else int(np.count_nonzero(select))
    table = np.zeros(n, dtype=PEAK_DTYPE)
    for name in _COLUMNS:
        table[name] = found[name] if select is None else found[name][select]
    table["x"] += _KERNEL_OFFSET_PX
    table["y"] += _KERNEL_OFFSET_PX
    return table


def find_peaks(image, mask=None, *, beam_center_px=None, min_snr=5.0, adc_threshold=0.0, min_pixels=2,
               max_pixels=200, local_bg_radius=3, iterations=5, min_radius_px=0.0, max_radius_px=None,
               n_threads=None):
    """Find Bragg peaks in one detector image, as peakfinder8 does.

    1. **Rings.** Every unmasked pixel belongs to ring ``round(r)``, ``r`` the
       distance in pixels of its centre from the beam centre. Per ring, the mean ``m`` and
       standard deviation ``s`` of the values are computed, then recomputed
       over the values within ``m +- min_snr s`` only, ``iterations`` times
       (or until the same pixels are kept): the background and noise of the
       ring, which the peaks themselves do not inflate.
    2. **Threshold.** A pixel is a candidate when its value exceeds
       ``max(m + min_snr s, adc_threshold)`` of its ring and
       ``min_radius_px <= r <= max_radius_px``.
    3. **Grouping.** 8-connected candidates form one peak around their local
       maximum; a peak needs ``min_pixels`` to ``max_pixels`` pixels.
    4. **Local background.** Mean ``b`` and deviation ``sigma`` of the
       unmasked non-candidate pixels within ``2 local_bg_radius`` pixels of the
       peak's brightest pixel.
    5. **Tests.** A peak is kept when ``snr = sum(value - b) / sigma >=
       min_snr`` and its brightest pixel is brighter than every local
       background pixel.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Pixel values proportional to photons (ADU or counts; not a
        square-root-compressed image), finite.
    mask : ndarray of bool, shape (rows, cols), optional
        True for pixels that record nothing (gaps, beamstop, bad pixels):
        never part of a peak nor of a background.
    beam_center_px : (float, float), optional
        Beam centre (x, y) in pixels from the outer corner of pixel (0, 0), as
        everywhere in diffranet (a header's beam centre, e.g. CBF ``Beam_xy``
        or :attr:`FrameGeometry.beam_center_px`, as it is); default the centre
        of the image, ``(cols / 2, rows / 2)``.
    min_snr : float, default 5.0
        Pixel threshold in ring sigmas, and the lowest peak SNR (CrystFEL
        ``--min-snr``).
    adc_threshold : float, default 0.0
        Lowest pixel threshold, in image units (CrystFEL ``--threshold``).
    min_pixels, max_pixels : int, default 2, 200
        Pixels per peak, inclusive (``--min-pix-count``, ``--max-pix-count``).
    local_bg_radius : int, default 3
        Half the radius (pixels) of the local background disc
        (``--local-bg-radius``).
    iterations : int, default 5
        Sigma-clipping passes per ring.
    min_radius_px, max_radius_px : float, default 0, None
        Peaks only between these distances from the beam centre (pixels;
        ``--min-res``, ``--max-res``); None: no upper limit.
    n_threads : int, optional
        Threads of the compiled kernel (None: every core). The result does
        not depend on it.

    Returns
    -------
    ndarray of :data:`PEAK_DTYPE`, shape (n_peaks,)
        In row-major order of each peak's first pixel; positions measured
        from the outer corner of pixel (0, 0), like ``beam_center_px``.

    Raises
    ------
    ValueError
        For an image that is not 2-D, real and finite, a mask of another shape
        or dtype, or a parameter out of range.

    References
    ----------
    .. [1] A. Barty et al., "Cheetah: software for high-throughput reduction
       and analysis of serial femtosecond X-ray diffraction data",
       J. Appl. Cryst. 47 (2014) 1118-1131, doi:10.1107/S1600576714007626.
    .. [2] T. A. White et al., "CrystFEL: a software suite for snapshot serial
       crystallography", J. Appl. Cryst. 45 (2012) 335-341,
       doi:10.1107/S0021889812002312.

    Examples
    --------
    A 2 x 2-pixel spot of 400 counts per pixel on a flat background of 100
    with a little noise:

    >>> import numpy as np
    >>> image = 100 + np.random.default_rng(0).normal(0, 3, (64, 64))
    >>> image[20:22, 30:32] += 400
    >>> peaks = find_peaks(image)
    >>> len(peaks), int(peaks["n_pixels"][0])
    (1, 4)
    >>> print(f"{peaks['x'][0]:.1f} {peaks['y'][0]:.1f}")
    31.0 21.0
    """
    settings = PeakFinderSettings(min_snr, adc_threshold, min_pixels, max_pixels, local_bg_radius, iterations,
                                  min_radius_px, max_radius_px)
    images = _check_images(image, 2)[np.newaxis]
    return _table(_run(images, mask, beam_center_px, settings, n_threads))


def find_peaks_batch(images, mask=None, *, beam_center_px=None, n_threads=None, **settings):
    """:func:`find_peaks` of every image of a stack of one detector, in parallel over images.

    Parameters
    ----------
    images : array_like, shape (n, rows, cols)
    mask, beam_center_px, n_threads
        As for :func:`find_peaks`, shared by every image.
    **settings
        The peak-finder parameters of :func:`find_peaks`.

    Returns
    -------
    list of ndarray of :data:`PEAK_DTYPE`
        One table per image.
    """
    settings = PeakFinderSettings(**settings)
    images = _check_images(images, 3)
    found = _run(images, mask, beam_center_px, settings, n_threads)
    return [_table(found, found["image"] == i) for i in range(images.shape[0])]


def count_peaks(images, mask=None, *, beam_center_px=None, n_threads=None, **settings):
    """Number of :func:`find_peaks` peaks in each image of a stack.

    Parameters as for :func:`find_peaks_batch`.

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    settings = PeakFinderSettings(**settings)
    images = _check_images(images, 3)
    return _run(images, mask, beam_center_px, settings, n_threads)["counts"]


def ring_statistics(image, mask=None, *, beam_center_px=None, min_snr=5.0, adc_threshold=0.0, iterations=5,
                    n_threads=None):
    """The sigma-clipped background of each ring (step 1 of :func:`find_peaks`).

    Returns
    -------
    dict
        ``mean``, ``sigma`` and ``threshold`` (float64 arrays indexed by ring
        ``round(r)``; an empty ring has mean and sigma 0 and threshold inf).
    """
    settings = PeakFinderSettings(min_snr=min_snr, adc_threshold=adc_threshold, iterations=iterations)
    image = _check_images(image, 2)
    mask = _check_mask(mask, image.shape)
    x, y = _kernel_center(beam_center_px, image.shape)
    return _core.ring_statistics(image, _layout(image.shape, x, y, mask), settings.min_snr, settings.adc_threshold,
                                 settings.iterations, check_threads(n_threads))
