"""Detector response: from expected photons per pixel to recorded pixel values.

Two detector models turn the noise-free image of the renderers (expected
X-ray photons per pixel, float32) into what a detector records:

* :class:`CCDResponse`, the fiber-coupled CCD of the DiffraNet paper
  (Appendix A), in this order: shot-to-shot fluence ("flicker"), Poisson
  photon counting, point-spread function, per-pixel calibration error,
  read-out noise, ADC offset, digitisation and clipping at 65025;
  :func:`to_8bit` then compresses it to 8 bits by the square root;
* :class:`PixelArrayResponse`, a photon-counting pixel array (Pilatus,
  Eiger, Jungfrau-like): Poisson counting, an optional paralysable dead time,
  the counter's saturation and module gaps; no PSF and no read-out noise.

The pieces are public pure functions too: :func:`poisson`, :func:`apply_psf`,
:func:`psf_kernel`, :func:`calibration_map`, :func:`to_8bit`; module gaps come
from :func:`diffranet.simulation.masks.module_gap_mask`.

Every random draw is a pure function of (seed, stream, pixel), the pixel
being its (row, column) on the whole detector, so an image does not depend on
the number of threads, and a tile given its ``origin`` gets the same noise as
those pixels of the whole image. Equations, units and conventions:
``docs/detector-response.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time

import numpy as np
import scipy.fft
from scipy.special import ndtr

from .. import _core
from ..detectors.masks import module_gap_mask
from ._params import Params
from .._validation import (
    check_choice,
    check_fraction,
    check_int,
    check_nonnegative,
    check_positive,
    check_seed,
    check_threads,
)

__all__ = [
    "CCDResponse",
    "PixelArrayResponse",
    "poisson",
    "apply_psf",
    "psf_kernel",
    "calibration_map",
    "to_8bit",
    "FIBER_G_PER_FWHM",
    "SATURATION_8BIT",
]

PSF_KINDS = ("fiber", "gauss")
#: Fiber PSF parameter g per unit FWHM: the profile g / (2 pi (g^2 + r^2)^(3/2))
#: falls to half its peak at r = g sqrt(2^(2/3) - 1), so FWHM = 2 g sqrt(2^(2/3) - 1).
FIBER_G_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 ** (2.0 / 3.0) - 1.0))
#: Gaussian sigma per unit FWHM.
GAUSS_SIGMA_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
#: Top of the 16-bit scale that the square root maps onto 0..255 (255^2).
SATURATION_8BIT = 65025
#: Default fiber-optic taper PSF FWHM (um): that of noisify, the detector model of Holton et al.
#: (2012) that the DiffraNet paper used (cctbx simtbx's nanoBragg defaults to 80).
DEFAULT_PSF_FWHM_UM = 46.0
#: Default fraction of a PSF's photons inside its truncated kernel.
DEFAULT_ENCLOSED_FRACTION = 0.999
# float32 holds every whole number up to 2^24: the largest saturation allowed.
_MAX_SATURATION = 2**24


# --------------------------------------------------------------------------- checks

def _check_image(name, image):
    """Return ``image`` as a C-contiguous float32 2-D array of finite values >= 0."""
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got NaN or infinite values")
    if arr.min() < 0:
        raise ValueError(f"{name} must be >= 0 (photons), got minimum {float(arr.min())!r}")
    return arr


def _check_mask(mask, shape):
    """Return ``mask`` as a uint8 array of ``shape`` (1 = masked), or None."""
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.dtype != bool or arr.shape != tuple(shape):
        raise ValueError(f"mask must be a bool array of shape {tuple(shape)}, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _check_origin(origin):
    """Return ``origin`` as two ints >= 0: the detector (row, col) of the image's first pixel."""
    if not isinstance(origin, (tuple, list, np.ndarray)) or len(origin) != 2:
        raise ValueError(f"origin must be (row, col) on the detector, got {origin!r}")
    return (check_int("origin[0]", origin[0], minimum=0, maximum=2**31 - 1),
            check_int("origin[1]", origin[1], minimum=0, maximum=2**31 - 1))


def _check_saturation(value):
    value = check_positive("saturation", value)
    if value > _MAX_SATURATION:
        raise ValueError(f"saturation must be <= 2**24 (float32 counts stay exact), got {value!r}")
    return value


# --------------------------------------------------------------------------- Poisson

def poisson(expected, seed, mask=None, origin=(0, 0), n_threads=None):
    """Poisson-distributed photon counts with the given expected values.

    Parameters
    ----------
    expected : array_like, shape (rows, cols)
        Expected photons per pixel (finite, >= 0).
    seed : int
        Image seed; pixel (r, c) draws from the counter-based generator keyed
        by (seed, Poisson stream, detector row, detector column).
    mask : ndarray of bool, shape (rows, cols), optional
        True for pixels that record nothing: they come out 0.
    origin : tuple of int, default (0, 0)
        Detector (row, col) of ``expected[0, 0]``, for a tile of a larger
        detector: a tile gets exactly the counts of those pixels of the whole.
    n_threads : int, optional
        OpenMP threads; default all. The result does not depend on it.

    Returns
    -------
    ndarray, float32, shape (rows, cols)
        Whole numbers of photons; exact as float32 up to 2^24.

    Notes
    -----
    Exact for every mean: below a mean of 10 by inverting the cumulative
    distribution (P(k) = e^-mu mu^k / k!, summed from k = 0), at and above 10
    by Hoermann's transformed rejection (PTRS), which accepts a proposal with
    exactly the Poisson probability. No normal approximation is used. The
    only limit is float32: counts above 2^24 (about 1.7e7) are rounded to
    the nearest float32.

    References
    ----------
    W. Hoermann (1993), The transformed rejection method for generating
    Poisson random variables, Insurance: Mathematics and Economics 12, 39-45,
    doi:10.1016/0167-6687(93)90997-4.

    Examples
    --------
    >>> import numpy as np
    >>> counts = poisson(np.full((2, 3), 4.0), seed=1)
    >>> counts.shape, counts.dtype
    ((2, 3), dtype('float32'))
    >>> bool(np.all(poisson(np.zeros((2, 2)), seed=1) == 0))
    True
    """
    expected = _check_image("expected", expected)
    seed = check_seed("seed", seed)
    mask = _check_mask(mask, expected.shape)
    row0, col0 = _check_origin(origin)
    return _core.poisson(expected, 1.0, seed, row0, col0, mask, check_threads(n_threads))


# --------------------------------------------------------------------------- PSF

def _fiber_corner(g, x, y):
    """Integral of the fiber PSF g / (2 pi (g^2 + r^2)^(3/2)) over the rectangle [0, x] x [0, y] (pixels).

    It is atan(x y / (g sqrt(g^2 + x^2 + y^2))) / (2 pi): the solid angle of
    the rectangle seen from height g, over the 2 pi of the whole plane; odd in
    x and in y, so differences at pixel corners give each pixel's share.
    """
    return np.arctan(x * y / (g * np.sqrt(g * g + x * x + y * y))) / (2.0 * math.pi)


def _fiber_kernel(g, radius, total_radius):
    """Pixel integrals of the fiber PSF at offsets -radius..radius, as fractions of the photons inside the
    square of half-width ``total_radius`` pixels."""
    edges = np.arange(-radius - 0.5, radius + 1.0, 1.0)
    corner = _fiber_corner(g, edges[None, :], edges[:, None])
    kernel = corner[1:, 1:] - corner[:-1, 1:] - corner[1:, :-1] + corner[:-1, :-1]
    half_side = total_radius + 0.5
    return kernel / (4.0 * _fiber_corner(g, half_side, half_side))


def _gauss_kernel_1d(sigma, radius, total_radius):
    """Weights at offsets 0..radius of a Gaussian of ``sigma`` pixels integrated over each pixel, as fractions
    of the photons within -total_radius..total_radius."""
    d = np.arange(0, radius + 1, dtype=float)
    weights = ndtr((d + 0.5) / sigma) - ndtr((d - 0.5) / sigma)
    return weights / (2.0 * ndtr((total_radius + 0.5) / sigma) - 1.0)


def _kernel_radius(kind, width_px, enclosed_fraction):
    """Radius (pixels) inside which the continuous PSF holds ``enclosed_fraction`` of its photons."""
    tail = 1.0 - enclosed_fraction
    if kind == "fiber":
        # enclosed within r: 1 - g / sqrt(g^2 + r^2)
        g = width_px
        r = g * math.sqrt(1.0 / (tail * tail) - 1.0)
    else:
        # enclosed within r: 1 - exp(-r^2 / (2 sigma^2))
        r = width_px * math.sqrt(-2.0 * math.log(tail))
    return max(1, math.ceil(r))


def _check_psf(kind, fwhm_um, pixel_size_mm, enclosed_fraction):
    kind = check_choice("kind", kind, PSF_KINDS)
    fwhm_um = check_positive("fwhm_um", fwhm_um)
    pixel_size_mm = check_positive("pixel_size_mm", pixel_size_mm)
    enclosed_fraction = check_fraction("enclosed_fraction", enclosed_fraction)
    if not 0.0 < enclosed_fraction < 1.0:
        raise ValueError(f"enclosed_fraction must lie in (0, 1), got {enclosed_fraction!r}")
    return kind, fwhm_um, pixel_size_mm, enclosed_fraction


def psf_kernel(kind, fwhm_um, pixel_size_mm, enclosed_fraction=DEFAULT_ENCLOSED_FRACTION, max_radius=None):
    """The detector PSF integrated over pixels, truncated and normalised to 1.

    Parameters
    ----------
    kind : {"fiber", "gauss"}
        ``"fiber"``: fiber-optic taper PSF of Holton et al. (2012),
        PSF(r) = g / (2 pi (g^2 + r^2)^(3/2)) with g = FWHM / (2 sqrt(2^(2/3) - 1))
        = 0.6524 FWHM; ``"gauss"``: isotropic Gaussian, sigma = FWHM / 2.3548.
    fwhm_um : float
        Full width at half maximum of the PSF (micrometres).
    pixel_size_mm : float
        Pixel side (mm).
    enclosed_fraction : float, default 0.999
        The kernel's half-width R (pixels) is the radius inside which the
        continuous PSF holds this fraction of its photons: for the fiber,
        1 - g / sqrt(g^2 + R^2), so R ~ g / (1 - enclosed_fraction) (its 1/r^3
        tails make R about 1000 g); for the Gaussian 1 - exp(-R^2 / 2 sigma^2).
    max_radius : int, optional
        Keep offsets up to this many pixels only, without rescaling: offsets
        beyond an image's size never take photons from one of its pixels to
        another, so :func:`apply_psf` drops them (``max(rows, cols) - 1``)
        and the result does not depend on the image size.

    Returns
    -------
    ndarray, float64, shape (2R' + 1, 2R' + 1), R' = min(R, max_radius)
        Fraction of a pixel's photons that land on the pixel at each offset
        (row offset first; centre at [R', R']). Each value is the PSF
        integrated over that pixel's area (in closed form), divided by the
        integral over the square of half-width R + 1/2: the tails beyond R are
        put back inside in proportion, so the kernel sums to 1 (less what
        ``max_radius`` drops) and photons are conserved.

    References
    ----------
    J. M. Holton, C. Nielsen & K. A. Frankel (2012), The point-spread function
    of fiber-coupled area detectors, J. Synchrotron Rad. 19, 1006-1011,
    doi:10.1107/S0909049512035571.

    Examples
    --------
    >>> k = psf_kernel("gauss", fwhm_um=100.0, pixel_size_mm=0.1)
    >>> k.shape, round(float(k.sum()), 12)
    ((5, 5), 1.0)
    """
    kind, fwhm_um, pixel_size_mm, enclosed_fraction = _check_psf(kind, fwhm_um, pixel_size_mm, enclosed_fraction)
    if max_radius is not None:
        max_radius = check_int("max_radius", max_radius, minimum=1)
    fwhm_px = fwhm_um * 1e-3 / pixel_size_mm
    if kind == "fiber":
        return _kernel_cached("fiber", fwhm_px * FIBER_G_PER_FWHM, enclosed_fraction, max_radius).copy()
    half = _kernel_cached("gauss", fwhm_px * GAUSS_SIGMA_PER_FWHM, enclosed_fraction, max_radius)
    full = np.concatenate([half[:0:-1], half])
    return np.outer(full, full)


@functools.lru_cache(maxsize=8)
def _kernel_cached(kind, width_px, enclosed_fraction, max_radius):
    """Read-only kernel of a PSF: the fiber's 2-D kernel (width g) or the Gaussian's 1-D half profile (width sigma)."""
    radius = _kernel_radius(kind, width_px, enclosed_fraction)
    build = _fiber_kernel if kind == "fiber" else _gauss_kernel_1d
    kernel = build(width_px, radius if max_radius is None else min(radius, max_radius), radius)
    kernel.setflags(write=False)
    return kernel


@functools.lru_cache(maxsize=8)
def _fiber_spectrum(g, enclosed_fraction, shape):
    """The fiber kernel on the zero-padded FFT grid for images of ``shape``: its real spectrum and the grid.

    The kernel sits with its centre at (0, 0) and negative offsets wrapped
    round; a grid of at least (rows + ry) x (cols + rx) keeps the circular
    convolution free of wrap-around on the image's pixels.
    """
    rows, cols = shape
    kernel = _kernel_cached("fiber", g, enclosed_fraction, max(rows, cols) - 1)
    radius = kernel.shape[0] // 2
    # offsets beyond the image's extent along an axis never connect two pixels
    ry, rx = min(radius, rows - 1), min(radius, cols - 1)
    grid_shape = (scipy.fft.next_fast_len(rows + ry, real=True), scipy.fft.next_fast_len(cols + rx, real=True))
    grid = np.zeros(grid_shape)
    grid[np.ix_(np.arange(-ry, ry + 1) % grid_shape[0], np.arange(-rx, rx + 1) % grid_shape[1])] = \
        kernel[radius - ry:radius + ry + 1, radius - rx:radius + rx + 1]
    # a kernel even in both axes has a real spectrum; computed in double precision, applied in single
    spectrum = scipy.fft.rfft2(grid, workers=1).real.astype(np.float32)
    spectrum.setflags(write=False)
    return spectrum, grid_shape


def _convolve(image, kind, fwhm_px, enclosed_fraction, n_threads):
    """Validated-input PSF convolution (image float32 C-contiguous)."""
    rows, cols = image.shape
    if kind == "fiber":
        spectrum, grid_shape = _fiber_spectrum(fwhm_px * FIBER_G_PER_FWHM, enclosed_fraction, (rows, cols))
        # each 1-D transform is computed whole by one worker: the result does not depend on their number
        workers = n_threads if n_threads > 0 else -1
        # single precision: within 2e-6 of the peak of the exact convolution (typically 5e-7; a
        # float32 image holds 6e-8), at less than half the cost of double precision
        product = scipy.fft.rfft2(image, s=grid_shape, workers=workers)
        product *= spectrum
        return np.ascontiguousarray(scipy.fft.irfft2(product, s=grid_shape, workers=workers)[:rows, :cols])
    half = _kernel_cached("gauss", fwhm_px * GAUSS_SIGMA_PER_FWHM, enclosed_fraction, max(rows, cols) - 1)
    return _core.convolve_separable(image, half, n_threads)


def apply_psf(image, pixel_size_mm, kind="fiber", fwhm_um=DEFAULT_PSF_FWHM_UM, *,
              enclosed_fraction=DEFAULT_ENCLOSED_FRACTION, n_threads=None):
    """Spread each pixel's photons over its neighbours with the detector PSF.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Photons per pixel (finite, >= 0).
    pixel_size_mm : float
        Pixel side (mm).
    kind : {"fiber", "gauss"}, default "fiber"
        PSF shape, see :func:`psf_kernel`.
    fwhm_um : float, default 46
        PSF full width at half maximum (micrometres).
    enclosed_fraction : float, default 0.999
        Sets the kernel truncation radius, see :func:`psf_kernel`.
    n_threads : int, optional
        OpenMP threads; default all. The result does not depend on it.

    Returns
    -------
    ndarray, float32, shape (rows, cols)
        The image convolved with :func:`psf_kernel`. Photons spread beyond
        the edges of the image are lost; the rest are conserved, so the total
        is kept exactly for a spot at least R from every edge. The fiber PSF's
        1/r^3 tails reach far: a pixel d pixels from an edge loses about
        g / 2d of its photons across it.

    Notes
    -----
    The Gaussian is separable and applied directly (two 1-D passes); the
    fiber kernel, a few hundred pixels wide, is applied by zero-padded FFT
    (:mod:`scipy.fft`, single precision: every value within 2e-6 of the
    image's largest value of an exact convolution) with its spectrum cached
    per image shape.

    Examples
    --------
    >>> import numpy as np
    >>> spot = np.zeros((21, 21), np.float32); spot[10, 10] = 1000.0
    >>> blurred = apply_psf(spot, pixel_size_mm=0.1, kind="gauss", fwhm_um=100.0)
    >>> round(float(blurred.sum()), 3), round(float(blurred[10, 10]), 1)
    (1000.0, 579.1)
    """
    image = _check_image("image", image)
    kind, fwhm_um, pixel_size_mm, enclosed_fraction = _check_psf(kind, fwhm_um, pixel_size_mm, enclosed_fraction)
    return _convolve(image, kind, fwhm_um * 1e-3 / pixel_size_mm, enclosed_fraction, check_threads(n_threads))


# --------------------------------------------------------------------------- calibration, 8 bit

def calibration_map(shape, calibration_rms, calibration_seed, origin=(0, 0), n_threads=None):
    """Per-pixel gain factors of a detector: 1 + calibration_rms * z, z standard normal.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)``.
    calibration_rms : float
        RMS calibration error as a fraction (the paper: 0.04).
    calibration_seed : int
        Identifies the detector: z of pixel (r, c) is keyed by
        (calibration_seed, calibration stream, detector row, detector column),
        independent of any image seed.
    origin : tuple of int, default (0, 0)
        Detector (row, col) of the map's first pixel.
    n_threads : int, optional

    Returns
    -------
    ndarray, float32, shape ``shape``

    Examples
    --------
    >>> g = calibration_map((256, 256), 0.04, calibration_seed=7)
    >>> round(float(g.mean()), 2), round(float(g.std()), 2)
    (1.0, 0.04)
    """
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in shape)):
        raise ValueError(f"shape must be two positive integers (rows, cols), got {shape!r}")
    rms = check_nonnegative("calibration_rms", calibration_rms)
    seed = check_seed("calibration_seed", calibration_seed)
    row0, col0 = _check_origin(origin)
    return _core.calibration_map(int(shape[0]), int(shape[1]), rms, seed, row0, col0, check_threads(n_threads))


def to_8bit(counts):
    """Compress 16-bit counts to 8 bits by the square root, as in the paper.

    ``uint8(round(sqrt(clip(counts, 0, 65025))))``: 65025 = 255^2 maps to 255.

    Parameters
    ----------
    counts : array_like
        Pixel values (photons or ADU, one per photon).

    Returns
    -------
    ndarray, uint8, same shape

    Notes
    -----
    Rounding to the nearest level (not truncation) keeps the 8-bit value
    unbiased. The square root stabilises the variance: for N counted photons
    sqrt(N) has a standard error of 1/2 whatever N (d sqrt(N) = dN / 2 sqrt(N),
    dN = sqrt(N)), and the rounding adds 1/12 to the variance, so a pixel with
    many photons scatters by about 0.58 of an 8-bit level from image to image.
    The paper describes this as a standard error of unity; by the same
    argument it is one half.

    Examples
    --------
    >>> to_8bit([[0.0, 4.0, 100.0, 70000.0]])
    array([[  0,   2,  10, 255]], dtype=uint8)
    """
    arr = np.asarray(counts)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"counts must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if np.isnan(arr).any():
        raise ValueError("counts must not contain NaN")
    return np.rint(np.sqrt(np.clip(arr, 0.0, SATURATION_8BIT))).astype(np.uint8)


# --------------------------------------------------------------------------- detector models

def _check_apply_args(expected_photons, pixel_size_mm, seed, mask, n_threads, origin):
    """Validated arguments of the detector models' ``apply``."""
    expected = _check_image("expected_photons", expected_photons)
    return (expected, check_positive("pixel_size_mm", pixel_size_mm), check_seed("seed", seed),
            _check_mask(mask, expected.shape), check_threads(n_threads), _check_origin(origin))


class _DetectorResponse(Params):
    """What the detector models share: the 8-bit conversion and their metadata."""

    _model = ""

    @staticmethod
    def to_8bit(counts):
        """8-bit image by the square root: see :func:`to_8bit`."""
        return to_8bit(counts)

    @classmethod
    def from_dict(cls, data):
        """Rebuild a response from :meth:`to_dict` output."""
        if not isinstance(data, dict):
            raise ValueError(f"data must be a dict from to_dict(), got {type(data).__name__}")
        params = dict(data)
        found = params.pop("model", cls._model)
        if found != cls._model:
            raise ValueError(f"data describes model {found!r}, not {cls._model!r}")
        return cls(**params)



@dataclasses.dataclass(frozen=True, eq=False)
class CCDResponse(_DetectorResponse):
    """Fiber-coupled CCD: the detector chain of the DiffraNet paper (Appendix A).

    Parameters
    ----------
    flicker_rms : float, default 0.0
        RMS shot-to-shot fluctuation of the fluence, as a fraction of the mean:
        every expected value of an image is scaled by max(0, 1 + flicker_rms z),
        one standard normal z per image seed. The paper's XFEL pulses had an RMS
        equal to the mean (1.0), clipped at zero.
    psf : {"fiber", "gauss", None}, default "fiber"
        Point-spread function applied to the counted photons; None for none.
    psf_fwhm_um : float, default 46
        PSF full width at half maximum (micrometres); noisify's default for a
        fiber-coupled CCD (Holton et al. 2012).
    calibration_rms : float, default 0.04
        RMS per-pixel gain error (fraction): fixed for the detector, drawn
        from ``calibration_seed`` and not from the image seed.
    calibration_seed : int, default 0
        Identifies the detector's calibration pattern.
    readout_rms_photons : float, default 3.0
        RMS read-out noise, in photons (one ADU per photon).
    adc_offset : float, default 10.0
        Offset added to every pixel (ADU) to keep noise from going negative.
    saturation : float, default 65025
        Largest recorded value (ADU); 65025 = 255^2 is the paper's 16-bit
        ceiling, which the square root maps onto 255.

    Notes
    -----
    For expected photons mu at a pixel, the recorded value is

        N     ~ Poisson(f mu),              f = max(0, 1 + flicker_rms z_image)
        N'    = (PSF * N)                   (photons conserved away from edges)
        adu   = round(N' (1 + calibration_rms z_pixel) + readout_rms z + adc_offset)
        value = clip(adu, 0, saturation)

    Examples
    --------
    >>> import numpy as np
    >>> ccd = CCDResponse()
    >>> counts = ccd.apply(np.full((64, 64), 100.0, np.float32), pixel_size_mm=0.172, seed=3)
    >>> counts.dtype, bool(100 < counts.mean() < 112)
    (dtype('float32'), True)
    >>> ccd.to_8bit(counts).dtype
    dtype('uint8')
    """

    _model = "ccd"

    flicker_rms: float = 0.0
    psf: str | None = "fiber"
    psf_fwhm_um: float = DEFAULT_PSF_FWHM_UM
    calibration_rms: float = 0.04
    calibration_seed: int = 0
    readout_rms_photons: float = 3.0
    adc_offset: float = 10.0
    saturation: float = SATURATION_8BIT

    def __post_init__(self):
        self._set("flicker_rms", check_nonnegative("flicker_rms", self.flicker_rms))
        if self.psf is not None:
            check_choice("psf", self.psf, PSF_KINDS)
        self._set("psf_fwhm_um", check_positive("psf_fwhm_um", self.psf_fwhm_um))
        self._set("calibration_rms", check_nonnegative("calibration_rms", self.calibration_rms))
        self._set("calibration_seed", check_seed("calibration_seed", self.calibration_seed))
        self._set("readout_rms_photons", check_nonnegative("readout_rms_photons", self.readout_rms_photons))
        self._set("adc_offset", check_nonnegative("adc_offset", self.adc_offset))
        self._set("saturation", _check_saturation(self.saturation))

    def apply(self, expected_photons, pixel_size_mm, seed, mask=None, n_threads=None, origin=(0, 0),
              return_timings=False):
        """Record an image: expected photons in, CCD pixel values (ADU) out.

        Parameters
        ----------
        expected_photons : array_like, shape (rows, cols)
            Expected X-ray photons per pixel (finite, >= 0), e.g.
            ``Simulator.bragg()`` plus background.
        pixel_size_mm : float
            Pixel side (mm), to express the PSF width in pixels.
        seed : int
            Image seed: flicker, Poisson and read-out draws. The calibration
            pattern comes from ``calibration_seed`` instead.
        mask : ndarray of bool, shape (rows, cols), optional
            True for pixels that record nothing (beamstop shadow, bad pixels):
            they receive no photons and read 0 (no offset, no noise).
        n_threads : int, optional
            OpenMP threads; default all. The result does not depend on it.
        origin : tuple of int, default (0, 0)
            Detector (row, col) of the image's first pixel, for tiles. The noise
            is keyed by detector position; the PSF sees only the tile.
        return_timings : bool, default False
            Also return the seconds spent in each stage.

        Returns
        -------
        counts : ndarray, float32, shape (rows, cols)
            Whole ADU values in [0, saturation], one ADU per photon.
        timings : dict of str to float
            Only with ``return_timings``: seconds in "validate", "poisson",
            "psf" and "readout".
        """
        timings = {}
        start = time.perf_counter()
        expected, pixel_size_mm, seed, mask, threads, origin = _check_apply_args(
            expected_photons, pixel_size_mm, seed, mask, n_threads, origin)
        row0, col0 = origin
        now = time.perf_counter()
        timings["validate"] = now - start

        start = now
        scale = _core.flicker_factor(seed, self.flicker_rms)
        counts = _core.poisson(expected, scale, seed, row0, col0, mask, threads)
        now = time.perf_counter()
        timings["poisson"] = now - start

        start = now
        if self.psf is not None:
            counts = _convolve(counts, self.psf, self.psf_fwhm_um * 1e-3 / pixel_size_mm,
                               DEFAULT_ENCLOSED_FRACTION, threads)
        now = time.perf_counter()
        timings["psf"] = now - start

        start = now
        gain = None
        if self.calibration_rms > 0:
            gain = _calibration_map_cached(expected.shape, origin, self.calibration_rms, self.calibration_seed,
                                           threads)
        counts = _core.ccd_readout(counts, gain, self.readout_rms_photons, self.adc_offset, self.saturation, seed,
                                   row0, col0, mask, threads)
        timings["readout"] = time.perf_counter() - start
        return (counts, timings) if return_timings else counts

    def to_dict(self):
        """JSON-serialisable parameters that rebuild this response."""
        return {"model": self._model, "flicker_rms": self.flicker_rms, "psf": self.psf, "psf_fwhm_um": self.psf_fwhm_um,
                "calibration_rms": self.calibration_rms, "calibration_seed": self.calibration_seed,
                "readout_rms_photons": self.readout_rms_photons, "adc_offset": self.adc_offset,
                "saturation": self.saturation}



@functools.lru_cache(maxsize=4)
def _calibration_map_cached(shape, origin, calibration_rms, calibration_seed, n_threads):
    """A detector's calibration map for a tile (read-only): the same for every image, so computed once."""
    gain = _core.calibration_map(shape[0], shape[1], calibration_rms, calibration_seed, origin[0], origin[1],
                                 n_threads)
    gain.setflags(write=False)
    return gain


@dataclasses.dataclass(frozen=True, eq=False)
class PixelArrayResponse(_DetectorResponse):
    """Photon-counting pixel-array detector (Pilatus, Eiger, Jungfrau-like).

    Each pixel counts photons directly: no PSF, no read-out noise, no offset.

    Parameters
    ----------
    saturation : float, default 1048575
        Largest count a pixel holds (Pilatus: a 20-bit counter, 2^20 - 1).
    module_shape : tuple of int, optional
        ``(rows, cols)`` of one module; with it the pixels in the gaps
        between modules (:func:`diffranet.simulation.masks.module_gap_mask`) read 0.
        Default: one seamless module.
    gap_px : int or tuple of int, default (17, 7)
        Dead rows and columns between modules (Pilatus).
    dead_time_s : float, default 0.0
        Paralysable dead time of a pixel's counter (seconds); needs
        ``exposure_s``. The expected count n over the exposure T becomes
        n exp(-n dead_time_s / T) before counting.
    exposure_s : float, optional
        Exposure time (seconds), for the dead time.

    Notes
    -----
    The dead-time model keeps the Poisson spread of the reduced mean; a real
    paralysable counter's counts are slightly sub-Poissonian. It describes
    counting over an exposure much longer than the dead time (a synchrotron
    beam), not a femtosecond XFEL pulse, where a counter sees at most one
    event per pulse.

    Examples
    --------
    >>> import numpy as np
    >>> pad = PixelArrayResponse(saturation=50, module_shape=(4, 4), gap_px=1)
    >>> counts = pad.apply(np.full((9, 9), 80.0, np.float32), pixel_size_mm=0.172, seed=0)
    >>> float(counts.max()), float(counts[4].max())
    (50.0, 0.0)
    """

    _model = "pixel_array"

    saturation: float = 2**20 - 1
    module_shape: tuple | None = None
    gap_px: tuple = (17, 7)
    dead_time_s: float = 0.0
    exposure_s: float | None = None

    def __post_init__(self):
        self._set("saturation", _check_saturation(self.saturation))
        module_shape, gap_px = self.module_shape, self.gap_px
        # module_gap_mask validates both and names the offending value
        module_gap_mask((1, 1), (1, 1) if module_shape is None else module_shape, gap_px)
        if module_shape is not None:
            self._set("module_shape", (int(module_shape[0]), int(module_shape[1])))
        self._set("gap_px", (int(gap_px), int(gap_px)) if np.ndim(gap_px) == 0 else (int(gap_px[0]), int(gap_px[1])))
        self._set("dead_time_s", check_nonnegative("dead_time_s", self.dead_time_s))
        if self.exposure_s is not None:
            self._set("exposure_s", check_positive("exposure_s", self.exposure_s))
        if self.dead_time_s > 0 and self.exposure_s is None:
            raise ValueError(f"exposure_s is needed with dead_time_s={self.dead_time_s!r}")

    def apply(self, expected_photons, pixel_size_mm, seed, mask=None, n_threads=None, origin=(0, 0),
              return_timings=False):
        """Record an image: expected photons in, photon counts out.

        Parameters
        ----------
        expected_photons : array_like, shape (rows, cols)
            Expected X-ray photons per pixel (finite, >= 0).
        pixel_size_mm : float
            Pixel side (mm); accepted for the same call as :meth:`CCDResponse.apply`
            (a photon counter has no PSF to scale).
        seed : int
            Image seed for the Poisson draws.
        mask : ndarray of bool, shape (rows, cols), optional
            True for pixels that record nothing; they read 0, as do module gaps.
        n_threads : int, optional
            OpenMP threads; default all. The result does not depend on it.
        origin : tuple of int, default (0, 0)
            Detector (row, col) of the image's first pixel (noise keys and
            module positions).
        return_timings : bool, default False
            Also return the seconds spent in each stage.

        Returns
        -------
        counts : ndarray, float32, shape (rows, cols)
            Whole photon counts in [0, saturation].
        timings : dict of str to float
            Only with ``return_timings``: seconds in "validate" and "poisson".
        """
        timings = {}
        start = time.perf_counter()
        expected, _, seed, mask, threads, origin = _check_apply_args(
            expected_photons, pixel_size_mm, seed, mask, n_threads, origin)
        if self.module_shape is not None:
            gaps = module_gap_mask(expected.shape, self.module_shape, self.gap_px, origin).astype(np.uint8)
            mask = gaps if mask is None else mask | gaps
        if self.dead_time_s > 0:
            expected = (expected * np.exp(-expected * (self.dead_time_s / self.exposure_s))).astype(np.float32)
        now = time.perf_counter()
        timings["validate"] = now - start

        start = now
        counts = _core.poisson(expected, 1.0, seed, origin[0], origin[1], mask, threads)
        counts = _core.clip_counts(counts, self.saturation, mask, threads)
        timings["poisson"] = time.perf_counter() - start
        return (counts, timings) if return_timings else counts

    def to_dict(self):
        """JSON-serialisable parameters that rebuild this response."""
        return {"model": self._model, "saturation": self.saturation,
                "module_shape": None if self.module_shape is None else list(self.module_shape),
                "gap_px": list(self.gap_px), "dead_time_s": self.dead_time_s,
                "exposure_s": self.exposure_s}
