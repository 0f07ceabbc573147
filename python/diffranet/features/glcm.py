"""Grey-level co-occurrence matrix (GLCM) texture features."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from .. import _core
from .._validation import threads_for_jobs
from ._base import ImageFeatureExtractor, check_unique_list

#: Haralick features in the order the compiled kernel returns them.
GLCM_PROPERTIES = ("contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation")


def glcm_offsets(distances, angles):
    """Pixel-pair offsets (row, column) of each (distance, angle), distance-major.

    The second pixel of a pair lies ``round(d sin(theta))`` rows below and
    ``round(d cos(theta))`` columns right of the first, as in
    :func:`skimage.feature.graycomatrix` (so 90 degrees points down the image).

    Parameters
    ----------
    distances : sequence of int
        Pair distances in pixels.
    angles : sequence of float
        Pair directions in degrees.

    Returns
    -------
    offsets : ndarray of int64, shape (len(distances) * len(angles), 2)

    Examples
    --------
    >>> glcm_offsets([1, 2], [0, 90]).tolist()
    [[0, 1], [1, 0], [0, 2], [2, 0]]
    """
    theta = np.deg2rad(np.asarray(angles, dtype=float))
    d = np.asarray(distances, dtype=float)[:, np.newaxis]
    rows = np.round(np.sin(theta) * d)
    cols = np.round(np.cos(theta) * d)
    return np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.int64)


class GLCMExtractor(ImageFeatureExtractor):
    """Haralick features of grey-level co-occurrence matrices, per distance and angle.

    For each (distance ``d``, angle ``theta``) the co-occurrence counts
    ``c(i, j)`` of grey levels ``i`` at pixel ``(r, s)`` and ``j`` at
    ``(r + round(d sin theta), s + round(d cos theta))`` are normalised to
    ``P(i, j) = c(i, j) / sum c`` and reduced to the properties

    - contrast ``sum P(i,j) (i - j)^2``
    - dissimilarity ``sum P(i,j) |i - j|``
    - homogeneity ``sum P(i,j) / (1 + (i - j)^2)``
    - ASM (angular second moment) ``sum P(i,j)^2``
    - energy ``sqrt(ASM)``
    - correlation ``sum P(i,j) (i - mu_i)(j - mu_j) / (sigma_i sigma_j)``, 1 when
      either standard deviation is zero,

    equal to :func:`skimage.feature.graycomatrix` followed by
    :func:`skimage.feature.graycoprops`. A pair offset larger than the image
    gives an empty matrix: every property is then 0 except correlation (1), as
    in scikit-image. The counting runs in the compiled core, in parallel over
    images and offsets.

    Parameters
    ----------
    distances : sequence of int, default=(5,)
        Pixel-pair distances in pixels, each >= 1, no repeats. The default is
        the default of the paper's search space (Table 8).
    angles : sequence of float, default=(0.0,)
        Pixel-pair directions in degrees (0: along a row, 90: down a column),
        no repeats.
    levels : int, default=256
        Number of grey levels of the matrix, 1 to 256. Grey values ``g`` in
        [0, 255] are binned to ``g * levels // 256``.
    properties : sequence of str, default=GLCM_PROPERTIES
        Properties to compute, any non-repeating selection of ``"contrast"``,
        ``"dissimilarity"``, ``"homogeneity"``, ``"ASM"``, ``"energy"`` and
        ``"correlation"``.
    symmetric : bool, default=False
        Count each pair in both orders, ``P + P^T``.
    n_jobs : int or None, default=None
        Threads of the compiled kernel (None: 1, -1: all cores).

    Attributes
    ----------
    distances_ : list of int
        Validated ``distances``.
    angles_ : list of float
        Validated ``angles`` in degrees.
    properties_ : list of str
        Validated ``properties``.
    offsets_ : ndarray of int64, shape (n_distances * n_angles, 2)
        (row, column) pixel offset of each (distance, angle), distance-major.
    image_shape_ : tuple of int
        (height, width) of the images seen in ``fit``.
    n_features_in_ : int
        Height of the images seen in ``fit`` (their width for 2-D input).

    References
    ----------
    .. [1] R. M. Haralick, K. Shanmugam, I. Dinstein, "Textural features for
       image classification", IEEE Trans. Syst. Man Cybern. 3 (1973) 610-621,
       doi:10.1109/TSMC.1973.4309314.

    Examples
    --------
    Two columns of grey levels 0 and 1: every horizontal pair is (0, 1).

    >>> import numpy as np
    >>> X = np.array([[[0, 1], [0, 1]]], dtype=np.uint8)
    >>> glcm = GLCMExtractor(distances=[1], angles=[0], properties=["contrast", "ASM"])
    >>> glcm.fit_transform(X)
    array([[1., 1.]])
    >>> glcm.get_feature_names_out().tolist()
    ['contrast_d1_a0', 'ASM_d1_a0']
    """

    _parameter_constraints = {
        "distances": ["array-like"],
        "angles": ["array-like"],
        "levels": [Interval(Integral, 1, 256, closed="both")],
        "properties": ["array-like"],
        "symmetric": ["boolean"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        distances=(5,),
        angles=(0.0,),
        levels=256,
        properties=GLCM_PROPERTIES,
        symmetric=False,
        n_jobs=None,
    ):
        self.distances = distances
        self.angles = angles
        self.levels = levels
        self.properties = properties
        self.symmetric = symmetric
        self.n_jobs = n_jobs

    def _fit_images(self, images):
        distances = check_unique_list("distances", self.distances)
        for d in distances:
            if isinstance(d, bool) or not isinstance(d, Integral) or d < 1:
                raise ValueError(f"distances must be integers >= 1, got {d!r}")
        angles = check_unique_list("angles", self.angles)
        for a in angles:
            if isinstance(a, bool) or not isinstance(a, Real) or not math.isfinite(a):
                raise ValueError(f"angles must be finite numbers of degrees, got {a!r}")
        properties = check_unique_list("properties", self.properties)
        for p in properties:
            if p not in GLCM_PROPERTIES:
                raise ValueError(f"properties must be among {list(GLCM_PROPERTIES)}, got {p!r}")
        self.distances_ = distances
        self.angles_ = angles
        self.properties_ = properties
        self.offsets_ = glcm_offsets(distances, angles)

    def _feature_names(self):
        return [f"{p}_d{d}_a{a:g}" for d in self.distances_ for a in self.angles_ for p in self.properties_]

    def _transform_images(self, images):
        if self.levels < 256:
            lut = (np.arange(256) * self.levels // 256).astype(np.uint8)
            images = lut[images]
        out = np.empty((images.shape[0], self.offsets_.shape[0], len(GLCM_PROPERTIES)))
        _core.glcm_features(images, self.offsets_, self.levels, self.symmetric, out, threads_for_jobs(self.n_jobs))
        columns = [GLCM_PROPERTIES.index(p) for p in self.properties_]
        return out[:, :, columns].reshape(images.shape[0], -1)
