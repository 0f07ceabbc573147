"""The label rule: weak, good and strong told apart by counting significant spots.

The label quantity of a crystal image is ``n_significant_spots``, measured on
the noise-free images (expected photons) that the detector then records:

1. **Spots** are the 4-connected components of the pixels where the expected
   Bragg photons are > 0, over the whole detector. The tophat spot shape makes
   the Bragg image exactly 0 between spots, so the spots do not depend on the
   crystal volume.
2. For each spot, sums run over its **visible** pixels (not under ``mask``,
   e.g. the beamstop shadow): a spot cut by the shadow counts once, with the
   photons that reach the detector; a spot entirely in the shadow has no
   signal.
3. With ``B`` and ``G`` the expected Bragg and background photons of a pixel
   and ``mu = B + G``, the variance of the recorded pixel under the CCD model
   (Poisson counting, gain error of RMS ``c``, read-out noise of RMS ``r``
   photons) is ``var = mu (1 + c^2) + c^2 mu^2 + r^2``. The spot's signal is
   ``S = sum B`` and its noise ``sigma = sqrt(sum var)``.
4. A spot is **significant** when ``S > k_sigma * sigma`` (strictly).

Classes: ``weak`` for ``weak_min <= n < good_min``, ``good`` for
``good_min <= n < strong_min``, ``strong`` for ``n >= strong_min``; fewer than
``weak_min`` significant spots is not a crystal class.

Since ``S`` grows as the volume scale ``v`` and ``sigma`` more slowly, each spot
becomes significant above one volume ``v*`` (:func:`significance_volumes`), so
the count is a non-decreasing step function of ``v`` and a volume giving any
reachable count is found exactly, without re-rendering (:func:`volume_for_count`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .._validation import check_int, check_nonnegative, check_positive

__all__ = ["LabelRule", "SpotSums", "spot_sums", "significance_volumes", "volume_for_count", "CRYSTAL_LABELS"]

#: Labels of the crystal classes: weak, good, strong.
CRYSTAL_LABELS = (2, 3, 4)


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


def spot_sums(bragg, background, mask=None):
    """Find the spots of a Bragg image and sum what the label rule needs.

    Parameters
    ----------
    bragg : ndarray, shape (rows, cols)
        Expected Bragg photons per pixel (>= 0; 0 between spots).
    background : ndarray, shape (rows, cols)
        Expected background photons per pixel (>= 0).
    mask : ndarray of bool, optional
        True for pixels that record nothing (beamstop shadow, bad pixels).

    Returns
    -------
    SpotSums
        Spots in the order of :func:`scipy.ndimage.label` (row-major first pixel).
    """
    bragg, background, mask = _check_pair(bragg, background, mask)
    components, n = ndimage.label(bragg > 0)
    b = bragg.astype(np.float64)
    g = background.astype(np.float64)
    counted = np.ones_like(b)
    if mask is not None:
        visible = ~mask
        b, g, counted = b * visible, g * visible, counted * visible
    flat = components.ravel()

    def total(values):
        return np.bincount(flat, weights=values.ravel(), minlength=n + 1)[1:]

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


class LabelRule:
    """Count significant spots and map the count to weak, good or strong.

    Parameters
    ----------
    k_sigma : float, default 3.0
        A spot is significant when its Bragg photons exceed ``k_sigma`` times the
        noise of its pixels.
    weak_min, good_min, strong_min : int, default 5, 50, 400
        Class thresholds on the number of significant spots:
        weak [weak_min, good_min), good [good_min, strong_min), strong [strong_min, inf).
    calibration_rms : float, default 0.04
        RMS per-pixel gain error of the detector (fraction).
    readout_rms_photons : float, default 3.0
        RMS read-out noise (photons).

    Examples
    --------
    >>> import numpy as np
    >>> rule = LabelRule(k_sigma=3, weak_min=1, good_min=2, strong_min=3, calibration_rms=0, readout_rms_photons=0)
    >>> bragg = np.zeros((3, 5)); bragg[1, 0] = 10.0; bragg[1, 4] = 9.0
    >>> rule.count(bragg, np.zeros_like(bragg))  # 10 > 3 sqrt(10); 9 = 3 sqrt(9) is not
    1
    >>> rule.classify(1), rule.classify(3)
    (2, 4)
    """

    def __init__(self, k_sigma=3.0, weak_min=5, good_min=50, strong_min=400, calibration_rms=0.04,
                 readout_rms_photons=3.0):
        self.k_sigma = check_positive("k_sigma", k_sigma)
        self.weak_min = check_int("weak_min", weak_min, minimum=1)
        self.good_min = check_int("good_min", good_min, minimum=self.weak_min + 1)
        self.strong_min = check_int("strong_min", strong_min, minimum=self.good_min + 1)
        self.calibration_rms = check_nonnegative("calibration_rms", calibration_rms)
        self.readout_rms_photons = check_nonnegative("readout_rms_photons", readout_rms_photons)

    def significant(self, sums, volume=1.0):
        """Bool per spot: significant at volume scale ``volume``."""
        var = _variance_terms(sums, volume, self.calibration_rms, self.readout_rms_photons)
        return volume * sums.bragg > self.k_sigma * np.sqrt(var)

    def count(self, bragg, background, mask=None):
        """Number of significant spots of a noise-free shot.

        Parameters
        ----------
        bragg, background : ndarray, shape (rows, cols)
            Expected photons per pixel.
        mask : ndarray of bool, optional
            Pixels that record nothing.

        Returns
        -------
        int
        """
        return int(np.count_nonzero(self.significant(spot_sums(bragg, background, mask))))

    def thresholds(self, sums):
        """:func:`significance_volumes` with this rule's parameters."""
        return significance_volumes(sums, self.k_sigma, self.calibration_rms, self.readout_rms_photons)

    def classify(self, n_significant):
        """Label 2 (weak), 3 (good) or 4 (strong) of a count, or None below ``weak_min``."""
        n = check_int("n_significant", n_significant, minimum=0)
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
        return {"k_sigma": self.k_sigma, "weak_min": self.weak_min, "good_min": self.good_min,
                "strong_min": self.strong_min, "calibration_rms": self.calibration_rms,
                "readout_rms_photons": self.readout_rms_photons}

    def __repr__(self):
        return "LabelRule(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"
