"""The classic hit finder: a frame is a hit when a peak finder finds enough peaks."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from .._validation import threads_for_jobs
from ..classes import HIT_LABELS, is_hit
from .finder import SQUARES_8BIT, PeakFinderSettings
from .finder import _run as run_finder

__all__ = ["PeakFinderHitFinder"]

#: Steepness of predict_proba in log(1 + peaks): a frame with twice the
#: threshold's peaks has a hit probability of about 0.94.
_PROBA_SLOPE = 4.0


class PeakFinderHitFinder(ClassifierMixin, BaseEstimator):
    """Hit / miss by counting Bragg peaks (:func:`diffranet.peaks.find_peaks`).

    A frame is a hit when the peak finder finds at least ``min_peaks``
    peaks: the hit criterion of OM, Cheetah and CrystFEL
    (``indexamajig --min-peaks``), and the baseline every learned classifier
    is compared with. With ``min_peaks=None``, :meth:`fit` picks the threshold
    that classifies the training frames best (the smallest of the best);
    with an integer, ``fit`` only validates.

    Parameters
    ----------
    min_peaks : int or None, default None
        Peaks needed for a hit (>= 1); None: learned in ``fit``.
    input_scale : {"sqrt", "linear"}, default "sqrt"
        ``"sqrt"``: the images are square-root compressed (DiffraNet's 8-bit
        images, grey = round(sqrt(counts))) and are squared before peak
        finding; ``"linear"``: values proportional to photons, used as they are.
    target : {"auto", "hit", "class"}, default "auto"
        How ``y`` is read in ``fit``: ``"hit"``, 0 for a miss and 1 for a hit;
        ``"class"``, DiffraNet labels 0-4 mapped by :func:`diffranet.classes.is_hit`;
        ``"auto"``, ``"class"`` when a label is >= 2, else ``"hit"``.
    min_snr, adc_threshold, min_pixels, max_pixels, local_bg_radius, iterations, min_radius_px, max_radius_px
        Peak-finder settings, see :func:`diffranet.peaks.find_peaks` (the
        defaults are CrystFEL's for peakfinder8).
    beam_center_px : (float, float) or None, default None
        Beam centre (x, y) in pixels from the outer corner of pixel (0, 0), as
        everywhere in diffranet (:class:`~diffranet.detectors.FrameGeometry`);
        default the image centre.
    n_jobs : int or None, default None
        Threads of the compiled peak finder (None: 1, -1: all cores).

    Attributes
    ----------
    classes_ : ndarray of int64, ``[0, 1]``
        Miss and hit.
    min_peaks_ : int
        The threshold in use.
    training_accuracy_ : float
        Hit / miss accuracy on the training frames (nan when ``min_peaks`` was given).
    image_shape_ : tuple of int
        (height, width) of the frames seen in ``fit``.
    n_features_in_ : int
        Height of the frames seen in ``fit`` (their width for 2-D input).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> frames = rng.poisson(100.0, size=(4, 64, 64)).astype(float)
    >>> for k in range(12):
    ...     frames[2:, 5 * k + 2, 8:10] += 900.0     # 12 two-pixel spots on frames 2, 3
    >>> finder = PeakFinderHitFinder(input_scale="linear").fit(frames, [0, 0, 1, 1])
    >>> finder.predict(frames).tolist(), finder.min_peaks_
    ([0, 0, 1, 1], 1)
    """

    _parameter_constraints = {
        "min_peaks": [Interval(Integral, 1, None, closed="left"), None],
        "input_scale": [StrOptions({"sqrt", "linear"})],
        "target": [StrOptions({"auto", "hit", "class"})],
        "min_snr": [Interval(Real, 0, None, closed="neither")],
        "adc_threshold": [Real],
        "min_pixels": [Interval(Integral, 1, None, closed="left")],
        "max_pixels": [Interval(Integral, 1, None, closed="left")],
        "local_bg_radius": [Interval(Integral, 1, 1000, closed="both")],
        "iterations": [Interval(Integral, 1, 100, closed="both")],
        "min_radius_px": [Interval(Real, 0, None, closed="left")],
        "max_radius_px": [Interval(Real, 0, None, closed="neither"), None],
        "beam_center_px": ["array-like", None],
        "n_jobs": [Integral, None],
    }

    def __init__(self, min_peaks=None, *, input_scale="sqrt", target="auto", min_snr=5.0, adc_threshold=0.0,
                 min_pixels=2, max_pixels=200, local_bg_radius=3, iterations=5, min_radius_px=0.0,
                 max_radius_px=None, beam_center_px=None, n_jobs=None):
        self.min_peaks = min_peaks
        self.input_scale = input_scale
        self.target = target
        self.min_snr = min_snr
        self.adc_threshold = adc_threshold
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.local_bg_radius = local_bg_radius
        self.iterations = iterations
        self.min_radius_px = min_radius_px
        self.max_radius_px = max_radius_px
        self.beam_center_px = beam_center_px
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.classifier_tags.multi_class = False
        return tags

    # ------------------------------------------------------------------ helpers
    def _settings(self):
        return {"min_snr": self.min_snr, "adc_threshold": self.adc_threshold, "min_pixels": self.min_pixels,
                "max_pixels": self.max_pixels, "local_bg_radius": self.local_bg_radius,
                "iterations": self.iterations, "min_radius_px": self.min_radius_px,
                "max_radius_px": self.max_radius_px}

    def _images(self, X, *, reset):
        """Frames as C-contiguous float32 values proportional to photons, or the dataset's 8-bit frames as they are
        (their values are the squares of their levels: ``_count`` hands the finder the table)."""
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype=None)
        if X.dtype.kind not in "iuf":
            X = validate_data(self, X, reset=False, allow_nd=True, dtype=np.float32)
        if X.ndim == 2:
            X = X[:, np.newaxis, :]
        if X.ndim != 3:
            raise ValueError(f"expected frames of shape (n_frames, height, width), got shape {X.shape}")
        if reset:
            self.image_shape_ = X.shape[1:]
        elif X.shape[1:] != self.image_shape_:
            raise ValueError(f"X has frames of shape {X.shape[1:]}, but {type(self).__name__} was fitted on "
                             f"frames of shape {self.image_shape_}")
        if self.input_scale == "sqrt":
            if X.dtype == np.uint8:  # the dataset's frames: the finder squares by table look-up
                return np.ascontiguousarray(X)
            if (X < 0).any():
                raise ValueError("Negative values in data: square-root compressed frames "
                                 "(input_scale='sqrt') are >= 0")
            X = np.square(X, dtype=np.float32)
        return np.ascontiguousarray(X, dtype=np.float32)

    def _hit_target(self, y):
        y = check_array(column_or_1d(y, warn=True), ensure_2d=False, dtype=None, input_name="y")
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"y must hold class labels (0/1 miss/hit or DiffraNet labels 0-4), got {kind} target")
        y = np.asarray(y)
        if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
            raise ValueError(f"y must hold integer labels (0/1 miss/hit or DiffraNet labels 0-4), got {y.dtype}")
        y = y.astype(np.int64)
        if y.min() < 0 or y.max() > max(HIT_LABELS):
            raise ValueError(f"y must hold labels in 0..{max(HIT_LABELS)}, got {y.min()}..{y.max()}")
        as_class = self.target == "class" or (self.target == "auto" and y.max() >= 2)
        if not as_class and y.max() > 1:
            raise ValueError("with target='hit', y must hold 0 (miss) and 1 (hit)")
        return is_hit(y).astype(np.int64) if as_class else y

    def count_peaks(self, X):
        """Peaks found in each frame.

        Parameters
        ----------
        X : array-like of shape (n_frames, height, width)

        Returns
        -------
        ndarray of int64, shape (n_frames,)
        """
        check_is_fitted(self)
        return self._count(self._images(X, reset=False))

    def _count(self, images):
        beam = None if self.beam_center_px is None else tuple(np.asarray(self.beam_center_px, dtype=float))
        # the frames are validated float32 already (finite: validate_data, or squares of 8-bit values)
        settings = PeakFinderSettings(**self._settings())
        levels = SQUARES_8BIT if images.dtype == np.uint8 else None
        return run_finder(images, None, beam, settings, threads_for_jobs(self.n_jobs), levels)["counts"]

    # ------------------------------------------------------------------ API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Validate, and choose ``min_peaks`` on the training frames if not given.

        Parameters
        ----------
        X : array-like of shape (n_frames, height, width) or (n_frames, width)
        y : array-like of shape (n_frames,)
            0/1 (miss/hit) or DiffraNet labels 0-4 (see ``target``).

        Returns
        -------
        self : PeakFinderHitFinder
        """
        PeakFinderSettings(**self._settings())  # the cross-parameter checks
        images = self._images(X, reset=True)
        hit = self._hit_target(y)
        if len(hit) != len(images):
            raise ValueError(f"X and y hold {len(images)} and {len(hit)} samples")
        self.classes_ = np.array([0, 1], dtype=np.int64)
        if self.min_peaks is not None:
            self.min_peaks_ = int(self.min_peaks)
            self.training_accuracy_ = math.nan
            return self
        counts = self._count(images)
        candidates = np.unique(np.concatenate([counts, counts + 1]))
        candidates = candidates[candidates >= 1]
        accuracy = np.array([np.mean((counts >= t) == hit.astype(bool)) for t in candidates])
        best = int(np.argmax(accuracy))  # first maximum: the smallest of the best thresholds
        self.min_peaks_ = int(candidates[best])
        self.training_accuracy_ = float(accuracy[best])
        return self

    def decision_function(self, X):
        """``log(1 + peaks) - log(min_peaks_ + 1/2)``: positive for a hit.

        Parameters
        ----------
        X : array-like of shape (n_frames, height, width)

        Returns
        -------
        ndarray of float64, shape (n_frames,)
        """
        counts = self.count_peaks(X)
        return np.log1p(counts) - math.log(self.min_peaks_ + 0.5)

    def predict(self, X):
        """1 (hit) when a frame has at least ``min_peaks_`` peaks, else 0 (miss).

        Parameters
        ----------
        X : array-like of shape (n_frames, height, width)

        Returns
        -------
        ndarray of int64, shape (n_frames,)
        """
        return (self.decision_function(X) > 0).astype(np.int64)

    def predict_proba(self, X):
        """Miss and hit probabilities: a logistic function of :meth:`decision_function`.

        The hit probability is 1/2 half-way (in log peaks) between ``min_peaks_ - 1``
        and ``min_peaks_``, so ``predict`` is its arg-max, and rises with the
        number of peaks (about 0.94 at twice the threshold).

        Returns
        -------
        ndarray of float64, shape (n_frames, 2)
        """
        hit = 1.0 / (1.0 + np.exp(-_PROBA_SLOPE * self.decision_function(X)))
        return np.column_stack([1.0 - hit, hit])
