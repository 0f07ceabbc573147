"""Input validation and scikit-learn plumbing shared by the image feature extractors.

Every extractor takes a stack of 8-bit detector images. Validation happens here,
once, before any image reaches scikit-image, OpenCV or the compiled core.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted, validate_data

#: Largest grey value of an 8-bit image.
MAX_GREY = 255


def as_uint8_images(X):
    """Return ``X`` as a C-contiguous uint8 array of shape (n_images, height, width).

    Parameters
    ----------
    X : ndarray of shape (n_images, height, width) or (n_images, width)
        Grey values on the 8-bit scale [0, 255]: unsigned 8-bit images as
        stored by the detector, or any integer or float array holding the same
        values (floats are rounded to the nearest grey level). A 2-D array is a
        stack of one-row images.

    Returns
    -------
    images : ndarray of uint8, shape (n_images, height, width)

    Raises
    ------
    ValueError
        If ``X`` has more than three dimensions, images of zero width, or values
        outside [0, 255].
    """
    X = np.asarray(X)
    if X.ndim == 2:
        X = X[:, np.newaxis, :]
    if X.ndim != 3:
        raise ValueError(f"expected images of shape (n_images, height, width), got shape {X.shape}")
    if X.shape[2] == 0:
        raise ValueError(f"images must be at least one pixel wide, got shape {X.shape}")
    if X.dtype == np.uint8:
        return np.ascontiguousarray(X)
    low, high = X.min().item(), X.max().item()
    if low < 0:
        raise ValueError(f"Negative values in data: grey values must lie in [0, {MAX_GREY}], got {low!r}")
    if high > MAX_GREY:
        raise ValueError(f"grey values must lie in [0, {MAX_GREY}], got {high!r}")
    if X.dtype.kind == "f":
        X = np.rint(X)
    return np.ascontiguousarray(X, dtype=np.uint8)


class ImageFeatureExtractor(TransformerMixin, BaseEstimator):
    """Base class: a transformer from a stack of images to one feature row per image.

    Subclasses implement ``_fit_images(images)``, ``_transform_images(images)``
    and ``_feature_names()``; this class validates the input, records the image
    shape seen in ``fit`` and checks it in ``transform``.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # Grey values are non-negative; negative input is refused.
        tags.input_tags.positive_only = True
        # Features are float64 whatever the image dtype.
        tags.transformer_tags.preserves_dtype = []
        return tags

    def _validate_images(self, X, *, reset):
        # scikit-learn's finiteness check sums X: +inf and -inf together would warn before it raises
        with np.errstate(invalid="ignore", over="ignore"):
            X = validate_data(self, X, reset=reset, allow_nd=True, dtype="numeric")
        images = as_uint8_images(X)
        if reset:
            self.image_shape_ = images.shape[1:]
        elif images.shape[1:] != self.image_shape_:
            raise ValueError(
                f"X has images of shape {images.shape[1:]}, but {type(self).__name__} "
                f"was fitted on images of shape {self.image_shape_}"
            )
        return images

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the images, and learn what the extractor needs.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width) or (n_images, width)
            Grey values in [0, 255]; a 2-D array is a stack of one-row images.
        y : None
            Ignored; present for Pipeline compatibility.

        Returns
        -------
        self : object
            The fitted extractor.
        """
        images = self._validate_images(X, reset=True)
        self._fit_images(images)
        return self

    def transform(self, X):
        """Compute one feature row per image.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width) or (n_images, width)
            Images of the shape seen in ``fit``, grey values in [0, 255].

        Returns
        -------
        features : ndarray of float64, shape (n_images, n_features_out)
            Columns in the order of ``get_feature_names_out()``.
        """
        check_is_fitted(self)
        images = self._validate_images(X, reset=False)
        return self._transform_images(images)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : None
            Ignored: image pixels have no names.

        Returns
        -------
        names : ndarray of str objects, shape (n_features_out,)
        """
        check_is_fitted(self)
        return np.asarray(self._feature_names(), dtype=object)


def check_unique_list(name, values):
    """Return ``values`` as a non-empty list without repeated entries."""
    values = list(np.asarray(values).ravel().tolist())
    if not values:
        raise ValueError(f"{name} must not be empty")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat entries, got {values!r}")
    return values
