"""Local binary pattern (LBP) histograms."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from skimage.feature import local_binary_pattern
from sklearn.utils._param_validation import Interval, StrOptions

from .._validation import threads_for_jobs
from ._base import ImageFeatureExtractor

#: Largest ``n_points`` for the methods whose histogram has 2**n_points bins.
MAX_FULL_POINTS = 16


def lbp_n_bins(n_points, method):
    """Number of distinct LBP codes, hence histogram bins, of ``method`` with ``n_points``.

    ``"uniform"``: the P + 1 rotation-invariant uniform patterns (0 to P set
    bits) plus one bin for all non-uniform patterns; ``"nri_uniform"``: the
    P (P - 1) + 2 uniform patterns in every rotation plus one non-uniform bin;
    ``"default"`` and ``"ror"``: codes in [0, 2**P).

    Examples
    --------
    >>> lbp_n_bins(8, "uniform"), lbp_n_bins(8, "nri_uniform"), lbp_n_bins(8, "default")
    (10, 59, 256)
    """
    if method == "uniform":
        return n_points + 2
    if method == "nri_uniform":
        return n_points * (n_points - 1) + 3
    return 2**n_points


def _lbp_histograms(images, n_points, radius, method, n_bins):
    """Normalised LBP code histograms of a block of images, shape (n_images, n_bins)."""
    out = np.empty((images.shape[0], n_bins))
    for k, image in enumerate(images):
        codes = local_binary_pattern(image, n_points, radius, method).astype(np.intp)
        out[k] = np.bincount(codes.ravel(), minlength=n_bins) / codes.size
    return out


class LBPExtractor(ImageFeatureExtractor):
    """Histogram of local binary patterns, of a length fixed by the parameters.

    Each pixel is coded by comparing it with ``n_points`` neighbours sampled
    (bilinearly) on a circle of ``radius`` pixels, as in
    :func:`skimage.feature.local_binary_pattern`; the feature vector is the
    fraction of pixels with each code. Its length, :func:`lbp_n_bins`, depends
    only on ``n_points`` and ``method``: every code has its bin even when an
    image lacks it, so images of any content give comparable vectors.

    Parameters
    ----------
    n_points : int, default=24
        Number of circularly symmetric neighbours P, >= 1 (<= 16 for
        ``"default"`` and ``"ror"``, whose histograms have 2**P bins). The
        default is that of the paper's search space (Table 8).
    radius : float, default=3
        Radius R of the circle in pixels, >= 0.
    method : {"uniform", "nri_uniform", "default", "ror"}, default="uniform"
        Pattern coding, as in :func:`skimage.feature.local_binary_pattern`.
    n_jobs : int or None, default=None
        Parallel workers (threads) over images (None: 1, -1: all cores).

    Attributes
    ----------
    n_bins_ : int
        Histogram length, ``lbp_n_bins(n_points, method)``.
    image_shape_ : tuple of int
        (height, width) of the images seen in ``fit``.
    n_features_in_ : int
        Height of the images seen in ``fit`` (their width for 2-D input).

    References
    ----------
    .. [1] T. Ojala, M. Pietikainen, T. Maenpaa, "Multiresolution gray-scale and
       rotation invariant texture classification with local binary patterns",
       IEEE Trans. Pattern Anal. Mach. Intell. 24 (2002) 971-987,
       doi:10.1109/TPAMI.2002.1017623.

    Examples
    --------
    A zero image (the outside counts as zero): every neighbour equals the
    centre, so all P bits are set and every pixel has the uniform code P = 4.

    >>> import numpy as np
    >>> lbp = LBPExtractor(n_points=4, radius=1)
    >>> lbp.fit_transform(np.zeros((1, 3, 3), dtype=np.uint8))
    array([[0., 0., 0., 0., 1., 0.]])
    """

    _parameter_constraints = {
        "n_points": [Interval(Integral, 1, None, closed="left")],
        "radius": [Interval(Real, 0, None, closed="left")],
        "method": [StrOptions({"uniform", "nri_uniform", "default", "ror"})],
        "n_jobs": [Integral, None],
    }

    def __init__(self, n_points=24, radius=3, method="uniform", n_jobs=None):
        self.n_points = n_points
        self.radius = radius
        self.method = method
        self.n_jobs = n_jobs

    def _fit_images(self, images):
        if self.method in ("default", "ror") and self.n_points > MAX_FULL_POINTS:
            raise ValueError(
                f"method={self.method!r} has 2**n_points bins and needs n_points <= {MAX_FULL_POINTS}, "
                f"got {self.n_points}"
            )
        self.n_bins_ = lbp_n_bins(self.n_points, self.method)

    def _feature_names(self):
        return [f"lbp_{code}" for code in range(self.n_bins_)]

    def _transform_images(self, images):
        workers = min(threads_for_jobs(self.n_jobs), images.shape[0])
        blocks = np.array_split(images, workers)
        parts = Parallel(n_jobs=workers, prefer="threads")(
            delayed(_lbp_histograms)(block, self.n_points, self.radius, self.method, self.n_bins_)
            for block in blocks
        )
        return np.concatenate(parts)
