"""Bag of visual words over SIFT descriptors."""

from __future__ import annotations

from numbers import Integral

import cv2
import numpy as np
from joblib import Parallel, delayed
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import pairwise_distances_argmin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from ._base import ImageFeatureExtractor, n_threads

#: Length of a SIFT descriptor.
SIFT_SIZE = 128


def sift_descriptors(image):
    """SIFT descriptors of one uint8 image, shape (n_keypoints, 128), float32.

    Keypoints are detected and described by OpenCV's ``cv2.SIFT_create()`` with
    its default parameters; an image without keypoints gives a (0, 128) array.
    """
    _, descriptors = cv2.SIFT_create().detectAndCompute(image, None)
    if descriptors is None:
        return np.empty((0, SIFT_SIZE), dtype=np.float32)
    return descriptors


def _descriptors_of_block(images):
    return [sift_descriptors(image) for image in images]


class BoVWExtractor(ImageFeatureExtractor):
    """Bag-of-visual-words histogram of SIFT descriptors.

    ``fit`` detects SIFT keypoints (OpenCV) in the training images and clusters
    their 128-dimensional descriptors with mini-batch k-means into a vocabulary
    of ``n_clusters`` visual words. ``transform`` reuses that vocabulary: each
    descriptor of an image is assigned to its nearest word (Euclidean) and the
    feature vector is the fraction of the image's keypoints per word. An image
    without keypoints gets the zero vector.

    Parameters
    ----------
    n_clusters : int, default=100
        Vocabulary size, >= 1. The default is that of the paper's search space
        (Table 8).
    max_descriptors : int, default=100000
        At most this many training descriptors, drawn at random without
        replacement, are clustered (memory and time of k-means).
    random_state : int, RandomState instance or None, default=None
        Seeds the descriptor subsample and k-means.
    n_jobs : int or None, default=None
        Parallel workers (threads) for SIFT over images (None: 1, -1: all cores).

    Attributes
    ----------
    vocabulary_ : ndarray of float32, shape (n_clusters, 128)
        Visual words: the k-means cluster centres.
    n_descriptors_ : int
        Number of SIFT descriptors found in the training images.
    image_shape_ : tuple of int
        (height, width) of the images seen in ``fit``.
    n_features_in_ : int
        Height of the images seen in ``fit`` (their width for 2-D input).

    References
    ----------
    .. [1] D. G. Lowe, "Distinctive image features from scale-invariant
       keypoints", Int. J. Comput. Vis. 60 (2004) 91-110,
       doi:10.1023/B:VISI.0000029664.99615.94.
    .. [2] J. Yang, Y.-G. Jiang, A. G. Hauptmann, C.-W. Ngo, "Evaluating
       bag-of-visual-words representations in scene classification", Proc.
       MIR 2007, 197-206, doi:10.1145/1290082.1290111.
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "max_descriptors": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(self, n_clusters=100, max_descriptors=100_000, random_state=None, n_jobs=None):
        self.n_clusters = n_clusters
        self.max_descriptors = max_descriptors
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _descriptors(self, images):
        workers = min(n_threads(self.n_jobs), images.shape[0])
        blocks = Parallel(n_jobs=workers, prefer="threads")(
            delayed(_descriptors_of_block)(block) for block in np.array_split(images, workers)
        )
        return [d for block in blocks for d in block]

    def _fit_images(self, images):
        rng = check_random_state(self.random_state)
        descriptors = np.concatenate(self._descriptors(images))
        self.n_descriptors_ = descriptors.shape[0]
        if descriptors.shape[0] > self.max_descriptors:
            keep = np.sort(rng.choice(descriptors.shape[0], self.max_descriptors, replace=False))
            descriptors = descriptors[keep]
        n_distinct = np.unique(descriptors, axis=0).shape[0]
        if n_distinct < self.n_clusters:
            raise ValueError(
                f"the training images give {n_distinct} distinct SIFT descriptors, fewer than "
                f"n_clusters={self.n_clusters}; use more or larger images or fewer clusters"
            )
        batch_size = 1024
        kmeans = MiniBatchKMeans(
            n_clusters=self.n_clusters,
            batch_size=batch_size,
            init_size=min(descriptors.shape[0], max(3 * batch_size, 3 * self.n_clusters)),
            n_init=3,
            random_state=rng,
        )
        self.vocabulary_ = kmeans.fit(descriptors).cluster_centers_.astype(np.float32)

    def _feature_names(self):
        return [f"bovw_{word}" for word in range(self.vocabulary_.shape[0])]

    def _transform_images(self, images):
        out = np.zeros((images.shape[0], self.vocabulary_.shape[0]))
        for k, descriptors in enumerate(self._descriptors(images)):
            if descriptors.shape[0]:
                words = pairwise_distances_argmin(descriptors, self.vocabulary_)
                out[k] = np.bincount(words, minlength=self.vocabulary_.shape[0]) / descriptors.shape[0]
        return out
