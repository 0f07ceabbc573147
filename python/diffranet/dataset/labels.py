"""The label rule: weak, good and strong told apart by counting detectable spots.

The label quantity of a crystal image is ``n_detectable_spots``: the number of
Bragg spots a peak finder of the kind used by serial-crystallography hit
finders (peakfinder8 in OM, Cheetah and CrystFEL) would detect in the recorded
image. It is measured on the noise-free images (expected photons), without
drawing any noise:

1. **Spots** are the 4-connected components of the pixels where the expected
   Bragg photons are > 0, over the whole detector. The tophat spot shape makes
   the Bragg image exactly 0 between spots, so the spots do not depend on the
   crystal volume. Each pixel within ``SPOT_REACH_PX`` (1.5 pixels) of a spot
   belongs to the nearest spot (between equally near ones, the one met
   first in row-major order of the offsets), so that the photons the point-spread function
   carries into a spot's neighbours count for it; masked pixels (beamstop
   shadow, gaps) belong to none.
2. The expected Bragg and background photons ``B`` and ``G`` of each pixel
   are blurred by the detector's point-spread function (linear, so it
   commutes with the crystal volume). With ``mu = B + G``, the variance of a
   recorded pixel under the CCD model (Poisson counting, gain error of RMS
   ``c``, read-out noise of RMS ``r`` photons) is
   ``var = mu (1 + c^2) + c^2 mu^2 + r^2``.
3. A pixel **stands out** when ``B > k_sigma * sqrt(var)`` (strictly).
4. A spot is **detectable** when at least ``min_pixels`` of its pixels stand
   out.

``k_sigma = 5`` and ``min_pixels = 2`` are the defaults of CrystFEL's
peakfinder8 (``indexamajig --min-snr=5 --min-pix-count=2``), which, like OM
and Cheetah, thresholds pixels at 5 sigma above the local background and keeps
groups of at least two pixels. The earlier quantity, ``n_significant_spots``
(a spot whose photons summed over its whole footprint exceed ``k_sigma`` times
their noise, without the PSF: what an ideal matched filter could detect), is
still measured by :meth:`LabelRule.count_significant` and stored beside it.

Classes: ``weak`` for ``weak_min <= n < good_min``, ``good`` for
``good_min <= n < strong_min``, ``strong`` for ``n >= strong_min``; fewer than
``weak_min`` detectable spots is not a crystal class.

Since ``B`` grows as the volume scale ``v`` and ``sqrt(var)`` more slowly, each
pixel stands out above one volume (:func:`significance_volumes` of the pixel),
each spot becomes detectable above the ``min_pixels``-th smallest volume of its
pixels (:func:`detection_volumes`), so the count is a non-decreasing step
function of ``v`` and a volume giving any reachable count is found exactly,
without re-rendering (:func:`volume_for_count`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .. import _core
from .._validation import FrozenAfterInit, check_int, check_nonnegative, check_positive
from ..simulation.response import CCDResponse, apply_psf

__all__ = ["LabelRule", "LabelThresholds", "SpotSums", "spot_sums", "spot_pixels", "significance_volumes", "detection_volumes",
           "volume_for_count", "CRYSTAL_LABELS", "SPOT_REACH_PX"]

#: Labels of the crystal classes: weak, good, strong.
CRYSTAL_LABELS = (2, 3, 4)

#: Pixels this close (centre to centre, in pixels) to a spot's pixels belong to it:
#: the spot's pixels and their 8 neighbours.
SPOT_REACH_PX = 1.5


@dataclass
class SpotSums:
    """Per-spot sums over visible pixels (float64 arrays, one entry per spot).

    Attributes
    ----------
    n_pixels : visible pixels
    bragg : sum of B (photons)
    background : sum of G (photons)
    bragg_sq, cross, background_sq : sums of B^2, B G and G^2 (photons^2)
    """

    n_pixels: np.ndarray
    bragg: np.ndarray
    background: np.ndarray
    bragg_sq: np.ndarray
    cross: np.ndarray
    background_sq: np.ndarray

    def __len__(self):
        return len(self.n_pixels)


def _check_pair(bragg, background, mask):
    bragg = np.asarray(bragg)
    background = np.asarray(background)
    if bragg.ndim != 2 or background.shape != bragg.shape:
        raise ValueError(f"bragg and background must be 2-D arrays of one shape, got {bragg.shape} "
                         f"and {background.shape}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != bragg.shape:
            raise ValueError(f"mask must be a bool array of shape {bragg.shape}, got {mask.dtype} {mask.shape}")
    return bragg, background, mask


def spot_sums(bragg, background, mask=None, *, spots=None):
    """Find the spots of a Bragg image and sum what the label rule needs.

    Parameters
    ----------
    bragg : ndarray, shape (rows, cols)
        Expected Bragg photons per pixel (>= 0; 0 between spots).
    background : ndarray, shape (rows, cols)
        Expected background photons per pixel (>= 0).
    mask : ndarray of bool, optional
        True for pixels that record nothing (beamstop shadow, bad pixels).
    spots : tuple (labels, n), optional
        :func:`spot_pixels` of ``bragg`` and ``mask``, if already computed
        (its pixels with Bragg photons are the spots found here).

    Returns
    -------
    SpotSums
        Spots in the order of :func:`scipy.ndimage.label` (row-major first pixel).
    """
    bragg, background, mask = _check_pair(bragg, background, mask)
    # only spot pixels contribute: sum over them alone
    if spots is None:
        components, n = ndimage.label(bragg > 0)
        inside = components > 0
    else:  # spot_pixels labels also the neighbours of a spot: keep its own pixels
        components, n = spots
        inside = (components > 0) & (bragg > 0)
    if mask is not None:
        inside &= ~mask
    flat = components[inside]
    b = bragg[inside].astype(np.float64)
    g = background[inside].astype(np.float64)
    counted = np.ones_like(b)

    def total(values):
        return np.bincount(flat, weights=values, minlength=n + 1)[1:]

    return SpotSums(n_pixels=total(counted), bragg=total(b), background=total(g), bragg_sq=total(b * b),
                    cross=total(b * g), background_sq=total(g * g))


def _variance_terms(sums, volume, calibration_rms, readout_rms_photons):
    """sum(var) of each spot with Bragg photons scaled by ``volume``."""
    c2 = calibration_rms**2
    v = volume
    mu = v * sums.bragg + sums.background
    mu_sq = v * v * sums.bragg_sq + 2 * v * sums.cross + sums.background_sq
    return mu * (1 + c2) + c2 * mu_sq + sums.n_pixels * readout_rms_photons**2


def significance_volumes(sums, k_sigma, calibration_rms, readout_rms_photons):
    """Volume scale above which each spot is significant.

    Solves ``(v S)^2 = k^2 sum var(v)`` for ``v``: with ``a = c^2 sum B^2``,
    ``b = (1 + c^2) S + 2 c^2 sum BG`` and ``g = (1 + c^2) sum G + c^2 sum G^2 + n r^2``,
    ``v* = (k^2 b + sqrt(k^4 b^2 + 4 (S^2 - k^2 a) k^2 g)) / (2 (S^2 - k^2 a))``.

    Parameters
    ----------
    sums : SpotSums
        Of the Bragg image at volume scale 1.
    k_sigma : float
    calibration_rms : float
    readout_rms_photons : float

    Returns
    -------
    ndarray, float64
        ``v*`` per spot; ``inf`` for a spot that never becomes significant (no
        visible signal, or ``S / sigma`` bounded below ``k_sigma`` by the gain error).
    """
    c2 = calibration_rms**2
    k2 = k_sigma**2
    s = sums.bragg
    a = c2 * sums.bragg_sq
    b = (1 + c2) * s + 2 * c2 * sums.cross
    g = (1 + c2) * sums.background + c2 * sums.background_sq + sums.n_pixels * readout_rms_photons**2
    lead = s * s - k2 * a
    out = np.full(len(s), np.inf)
    ok = (lead > 0) & (s > 0)
    out[ok] = (k2 * b[ok] + np.sqrt(k2 * k2 * b[ok] ** 2 + 4 * lead[ok] * k2 * g[ok])) / (2 * lead[ok])
    return out


def spot_pixels(bragg, mask=None, reach_px=SPOT_REACH_PX):
    """The spot each pixel belongs to: its own, or the nearest one within ``reach_px``.

    Parameters
    ----------
    bragg : ndarray, shape (rows, cols)
        Expected Bragg photons per pixel (0 between spots).
    mask : ndarray of bool, optional
        Pixels that record nothing: they belong to no spot.
    reach_px : float, default SPOT_REACH_PX
        Largest distance (pixels) from a pixel to a spot pixel.

    Returns
    -------
    labels : ndarray of int32, shape (rows, cols)
        Spot number 1 .. n of each pixel (the numbering of :func:`spot_sums`), 0 for none.
    n : int
        Number of spots.
    """
    bragg, _, mask = _check_pair(bragg, bragg, mask)
    components, n = ndimage.label(bragg > 0)
    labels = components.astype(np.int32)
    reach = int(math.floor(reach_px))
    if n > 0 and reach > 0:
        # Claim pixels ring by ring, nearest offsets first (ties: the first offset of
        # _neighbour_offsets): the same as a distance transform limited to reach_px,
        # at the cost of a few array passes.
        rows, cols = labels.shape
        padded = np.pad(labels, reach)
        for dr, dc in _neighbour_offsets(reach_px):
            np.copyto(labels, padded[reach + dr:reach + dr + rows, reach + dc:reach + dc + cols], where=labels == 0)
    if mask is not None:
        labels[mask] = 0
    return labels, int(n)


@functools.lru_cache(maxsize=4)
def _neighbour_offsets(reach_px):
    """(row, col) offsets with 0 < distance <= reach_px, nearest first."""
    reach = int(math.floor(reach_px))
    offsets = [(dr, dc) for dr in range(-reach, reach + 1) for dc in range(-reach, reach + 1)
               if 0 < dr * dr + dc * dc <= reach_px * reach_px]
    return tuple(sorted(offsets, key=lambda o: (o[0] ** 2 + o[1] ** 2, o)))


def detection_volumes(labels, n_spots, pixel_volumes, min_pixels):
    """Volume scale above which each spot has ``min_pixels`` pixels standing out.

    Parameters
    ----------
    labels : ndarray of int, shape (rows, cols)
        :func:`spot_pixels` labels (0: no spot).
    n_spots : int
    pixel_volumes : ndarray of float, shape (rows, cols)
        Volume scale above which each pixel stands out (inf: never).
    min_pixels : int

    Returns
    -------
    ndarray, float64, shape (n_spots,)
        The ``min_pixels``-th smallest pixel volume of each spot; inf for a
        spot with fewer pixels that ever stand out.
    """
    labels = np.ascontiguousarray(labels, dtype=np.int32).ravel()
    pixel_volumes = np.ascontiguousarray(pixel_volumes, dtype=np.float64).ravel()
    if labels.shape != pixel_volumes.shape:
        raise ValueError(f"labels and pixel_volumes must have one shape, got {labels.size} and "
                         f"{pixel_volumes.size} values")
    n_spots = check_int("n_spots", n_spots, minimum=0)
    min_pixels = check_int("min_pixels", min_pixels, minimum=1)
    if labels.size and (labels.min() < 0 or labels.max() > n_spots):
        raise ValueError(f"labels must lie in [0, n_spots = {n_spots}]")
    if np.isnan(pixel_volumes).any():
        raise ValueError("pixel_volumes must not hold NaN (inf: never stands out)")
    return _core.kth_smallest_per_group(labels, pixel_volumes, n_spots, min_pixels)


def volume_for_count(thresholds, count, max_volume=None):
    """A volume scale at which exactly ``count`` spots are significant.

    Parameters
    ----------
    thresholds : ndarray
        :func:`significance_volumes` of the spots.
    count : int
        Wanted number of significant spots (>= 0).
    max_volume : float, optional
        Largest volume scale allowed (> 0); default: no limit.

    Returns
    -------
    float or None
        The geometric mean of the ``count``-th and ``count + 1``-th smallest
        thresholds, the latter capped at ``max_volume`` (twice the last
        threshold when ``count`` is every spot and no cap applies); None when
        ``count`` cannot be reached (too few spots that become significant
        below ``max_volume``, or two spots sharing a threshold).
    """
    count = check_int("count", count, minimum=0)
    cap = math.inf if max_volume is None else check_positive("max_volume", max_volume)
    t = np.sort(np.asarray(thresholds, dtype=np.float64))
    t = t[np.isfinite(t)]
    if count > len(t):
        return None
    low = t[count - 1] if count > 0 else 0.0
    high = min(t[count] if count < len(t) else 4.0 * max(low, 0.25), cap)
    if not high > low:
        return None
    return math.sqrt(low * high) if low > 0 else 0.5 * high


@dataclasses.dataclass(frozen=True)
class LabelThresholds:
    """What makes a spot detectable and how many make each class: the detector-free half of a :class:`LabelRule`.

    Parameters
    ----------
    k_sigma : float, default 5.0
        A pixel stands out when its Bragg photons exceed ``k_sigma`` times its noise.
    min_spot_pixels : int, default 2
        Pixels that must stand out for a spot to be detectable.
    weak_min, good_min, strong_min : int, default 10, 50, 300
        Detectable spots that make an image weak, good, strong.

    Examples
    --------
    >>> LabelThresholds(weak_min=2, good_min=8, strong_min=25).good_min
    8
    """

    k_sigma: float = 5.0
    min_spot_pixels: int = 2
    weak_min: int = 10
    good_min: int = 50
    strong_min: int = 300

    def __post_init__(self):
        LabelRule(**self._rule_params())  # one place validates the thresholds

    def _rule_params(self):
        return {"k_sigma": self.k_sigma, "min_pixels": self.min_spot_pixels, "weak_min": self.weak_min,
                "good_min": self.good_min, "strong_min": self.strong_min}

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, params):
        """Rebuild from :meth:`to_dict`; unknown keys raise ValueError."""
        params = dict(params)
        unknown = sorted(set(params) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"label thresholds: unknown parameters {unknown}")
        return cls(**params)


class LabelRule(FrozenAfterInit):
    """Count detectable spots and map the count to weak, good or strong.

    Parameters
    ----------
    k_sigma : float, default 5.0
        A pixel stands out when its Bragg photons exceed ``k_sigma`` times its
        noise (peakfinder8's ``--min-snr``); also the significance level of
        :meth:`count_significant`.
    min_pixels : int, default 2
        Pixels that must stand out for a spot to be detectable
        (peakfinder8's ``--min-pix-count``).
    weak_min, good_min, strong_min : int, default 10, 50, 300
        Class thresholds on the number of detectable spots:
        weak [weak_min, good_min), good [good_min, strong_min), strong [strong_min, inf).
    calibration_rms : float, default 0.04
        RMS per-pixel gain error of the detector (fraction).
    readout_rms_photons : float, default 3.0
        RMS read-out noise (photons).
    psf : {"fiber", "gauss", None}, default None
        Detector point-spread function (see :func:`diffranet.simulation.response.psf_kernel`);
        None: no blur.
    psf_fwhm_um : float, default 80.0
    pixel_size_mm : float, default 0.172
        Pixel side, to express the PSF width in pixels.

    Examples
    --------
    Two spots without PSF or gain error: the first has two pixels above
    5 sigma (Poisson, 40 > 5 sqrt(40)), the second only one.

    >>> import numpy as np
    >>> rule = LabelRule(weak_min=1, good_min=2, strong_min=3, calibration_rms=0, readout_rms_photons=0)
    >>> bragg = np.zeros((3, 9)); bragg[1, 0:2] = 40.0; bragg[1, 6:8] = (40.0, 20.0)
    >>> rule.count(bragg, np.zeros_like(bragg))
    1
    >>> rule.classify(1), rule.classify(3)
    (2, 4)
    """

    def __init__(self, k_sigma=5.0, min_pixels=2, weak_min=10, good_min=50, strong_min=300, calibration_rms=0.04,
                 readout_rms_photons=3.0, psf=None, psf_fwhm_um=80.0, pixel_size_mm=0.172):
        self.k_sigma = check_positive("k_sigma", k_sigma)
        self.min_pixels = check_int("min_pixels", min_pixels, minimum=1)
        self.weak_min = check_int("weak_min", weak_min, minimum=1)
        self.good_min = check_int("good_min", good_min, minimum=self.weak_min + 1)
        self.strong_min = check_int("strong_min", strong_min, minimum=self.good_min + 1)
        self.calibration_rms = check_nonnegative("calibration_rms", calibration_rms)
        self.readout_rms_photons = check_nonnegative("readout_rms_photons", readout_rms_photons)
        if psf not in (None, "fiber", "gauss"):
            raise ValueError(f"psf must be 'fiber', 'gauss' or None, got {psf!r}")
        self.psf = psf
        self.psf_fwhm_um = check_positive("psf_fwhm_um", psf_fwhm_um)
        self.pixel_size_mm = check_positive("pixel_size_mm", pixel_size_mm)
        self._freeze()

    @classmethod
    def for_detector(cls, thresholds, response, pixel_size_mm):
        """The rule of ``thresholds`` on a detector: its noise, gain error and PSF read from ``response``.

        Parameters
        ----------
        thresholds : LabelThresholds
        response : CCDResponse or PixelArrayResponse
            A :class:`~diffranet.simulation.response.CCDResponse` brings its
            calibration error, read-out noise and PSF; a photon counter has none.
        pixel_size_mm : float

        Examples
        --------
        >>> from diffranet.simulation.response import CCDResponse
        >>> rule = LabelRule.for_detector(LabelThresholds(), CCDResponse(psf_fwhm_um=46.0), 0.172)
        >>> rule.psf, rule.psf_fwhm_um, rule.readout_rms_photons
        ('fiber', 46.0, 3.0)
        """
        if not isinstance(thresholds, LabelThresholds):
            raise ValueError(f"thresholds must be a LabelThresholds, got {type(thresholds).__name__}")
        noise = {"calibration_rms": 0.0, "readout_rms_photons": 0.0, "psf": None}
        if isinstance(response, CCDResponse):
            noise = {"calibration_rms": response.calibration_rms, "readout_rms_photons": response.readout_rms_photons,
                     "psf": response.psf}
            if response.psf is not None:
                noise["psf_fwhm_um"] = response.psf_fwhm_um
        return cls(**thresholds._rule_params(), pixel_size_mm=pixel_size_mm, **noise)

    # ------------------------------------------------------------------ detectable spots
    def blur(self, image):
        """``image`` (expected photons) through the detector's PSF, as float64."""
        image = np.asarray(image, dtype=np.float64)
        if self.psf is None:
            return image
        return np.asarray(apply_psf(image, self.pixel_size_mm, kind=self.psf, fwhm_um=self.psf_fwhm_um),
                          dtype=np.float64)

    def pixel_volumes(self, blurred_bragg, blurred_background):
        """Volume scale above which each pixel stands out (inf: never), from PSF-blurred images."""
        b = np.asarray(blurred_bragg, dtype=np.float64).ravel()
        g = np.asarray(blurred_background, dtype=np.float64).ravel()
        b = np.maximum(b, 0.0)
        g = np.maximum(g, 0.0)
        sums = SpotSums(n_pixels=np.ones_like(b), bragg=b, background=g, bragg_sq=b * b, cross=b * g,
                        background_sq=g * g)
        return self.thresholds(sums).reshape(np.shape(blurred_bragg))

    def detection_thresholds(self, bragg, background, mask=None, blurred_background=None, *, spots=None):
        """Volume scale above which each spot of a shot is detectable.

        Parameters
        ----------
        bragg, background : ndarray, shape (rows, cols)
            Expected photons per pixel (Bragg at the volume scale of interest).
        mask : ndarray of bool, optional
        blurred_background : ndarray, optional
            ``self.blur(background)``, if already computed.
        spots : tuple (labels, n), optional
            :func:`spot_pixels` of ``bragg`` and ``mask``, if already computed.

        Returns
        -------
        ndarray, float64, shape (n_spots,)
            Volume factors relative to ``bragg``: spot ``i`` is detectable in
            ``v * bragg`` when ``v`` exceeds entry ``i``.
        """
        bragg, background, mask = _check_pair(bragg, background, mask)
        labels, n = spot_pixels(bragg, mask) if spots is None else spots
        if n == 0:
            return np.zeros(0)
        g = self.blur(background) if blurred_background is None else blurred_background
        inside = labels > 0  # only pixels of a spot can make it detectable
        volumes = np.full(labels.shape, np.inf)
        volumes[inside] = self.pixel_volumes(self.blur(bragg)[inside], np.asarray(g)[inside])
        return detection_volumes(labels, n, volumes, self.min_pixels)

    def count(self, bragg, background, mask=None, blurred_background=None):
        """Number of detectable spots of a noise-free shot (the label quantity).

        Parameters
        ----------
        bragg, background : ndarray, shape (rows, cols)
            Expected photons per pixel.
        mask : ndarray of bool, optional
            Pixels that record nothing.
        blurred_background : ndarray, optional
            ``self.blur(background)``, if already computed.

        Returns
        -------
        int
        """
        return int(np.count_nonzero(self.detection_thresholds(bragg, background, mask, blurred_background) < 1.0))

    # ------------------------------------------------------------------ significant spots
    def significant(self, sums, volume=1.0):
        """Bool per spot: significant (summed over its footprint, no PSF) at volume scale ``volume``."""
        var = _variance_terms(sums, volume, self.calibration_rms, self.readout_rms_photons)
        return volume * sums.bragg > self.k_sigma * np.sqrt(var)

    def count_significant(self, bragg, background, mask=None):
        """Number of significant spots of a noise-free shot (``n_significant_spots``).

        Returns
        -------
        int
        """
        return int(np.count_nonzero(self.significant(spot_sums(bragg, background, mask))))

    def thresholds(self, sums):
        """:func:`significance_volumes` with this rule's parameters."""
        return significance_volumes(sums, self.k_sigma, self.calibration_rms, self.readout_rms_photons)

    # ------------------------------------------------------------------ classes
    def classify(self, n_detectable):
        """Label 2 (weak), 3 (good) or 4 (strong) of a count, or None below ``weak_min``."""
        n = check_int("n_detectable", n_detectable, minimum=0)
        if n >= self.strong_min:
            return 4
        if n >= self.good_min:
            return 3
        if n >= self.weak_min:
            return 2
        return None

    def class_range(self, label):
        """``[low, high)`` of the count for crystal label 2, 3 or 4 (high is inf for strong)."""
        if label not in CRYSTAL_LABELS:
            raise ValueError(f"label must be one of {CRYSTAL_LABELS} (weak, good, strong), got {label!r}")
        edges = (self.weak_min, self.good_min, self.strong_min, math.inf)
        i = CRYSTAL_LABELS.index(label)
        return edges[i], edges[i + 1]

    def to_dict(self):
        """JSON-serialisable parameters."""
        return {"k_sigma": self.k_sigma, "min_pixels": self.min_pixels, "weak_min": self.weak_min,
                "good_min": self.good_min, "strong_min": self.strong_min, "calibration_rms": self.calibration_rms,
                "readout_rms_photons": self.readout_rms_photons, "psf": self.psf, "psf_fwhm_um": self.psf_fwhm_um,
                "pixel_size_mm": self.pixel_size_mm}

    def __repr__(self):
        return "LabelRule(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"
