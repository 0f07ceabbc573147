"""Bag of visual words over SIFT descriptors."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import pairwise_distances_argmin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.parallel import Parallel, delayed

from .._validation import threads_for_jobs
from ._base import ImageFeatureExtractor


def opencv():
    """The ``cv2`` module (OpenCV), or an ImportError saying which extra installs it."""
    try:
        import cv2  # optional (diffranet[search]): only BoVW models need it
    except ImportError as exc:
        raise ImportError("the BoVW extractor needs OpenCV: pip install 'diffranet[search]'") from exc
    return cv2

#: Length of a SIFT descriptor.
SIFT_SIZE = 128

#: Smallest image height and width (pixels) handed to SIFT. Smaller images are
#: padded to this size by repeating their edge pixels (``pad_to_min_size``); at
#: this size the dense grid holds 2 x 2 keypoints.
MIN_IMAGE_SIZE = 16

#: Step (pixels) of the dense keypoint grid: keypoints at the centres of
#: ``DENSE_STEP`` x ``DENSE_STEP`` tiles, ``(DENSE_STEP // 2 + i * DENSE_STEP)``.
DENSE_STEP = 8

#: Diameter (pixels, OpenCV's ``KeyPoint.size``) of the dense keypoints. OpenCV
#: describes a keypoint of size ``s`` at full resolution with 4 x 4 cells of
#: ``1.5 s`` pixels, so each dense descriptor covers 12 x 12 pixels in cells of
#: 3 pixels, the default bin size of VLFeat's ``vl_dsift``. Small cells suit
#: one-pixel spots: on the synthetic images of the test suite (128 x 128, five
#: classes, 40 per class for training and 40 for testing), dense SIFT with 50
#: words and a 200-tree random forest scored 74 % with this size, 69 % and 59 %
#: with sizes 4 and 8.
DENSE_SIZE = 2

#: Where the descriptors of an image are computed (see ``BoVWExtractor``).
KEYPOINT_MODES = ("detect", "dense", "detect_or_dense")

# Most images per unit of parallel work (bounds the descriptors held at once).
_CHUNK = 64


def pad_to_min_size(image, min_size=MIN_IMAGE_SIZE):
    """Pad ``image`` with its edge pixels to at least ``min_size`` x ``min_size`` pixels.

    Parameters
    ----------
    image : ndarray of shape (height, width)
    min_size : int, default=MIN_IMAGE_SIZE
        Smallest height and width of the result, in pixels.

    Returns
    -------
    padded : ndarray of shape (max(height, min_size), max(width, min_size))
        ``image`` itself if it is large enough, otherwise a copy with the
        original centred (one pixel more after than before for odd padding)
        and each padding pixel equal to the nearest image pixel (``np.pad``
        mode ``"edge"``). Padding adds no gradient across the image border, so
        SIFT describes only the structure of the image itself; reflection
        would tile a one- or two-pixel-wide image into a periodic texture.

    Examples
    --------
    >>> pad_to_min_size(np.array([[1, 2, 3]]), min_size=5)
    array([[1, 1, 2, 3, 3],
           [1, 1, 2, 3, 3],
           [1, 1, 2, 3, 3],
           [1, 1, 2, 3, 3],
           [1, 1, 2, 3, 3]])
    """
    missing = np.maximum(min_size - np.asarray(image.shape), 0)
    if not missing.any():
        return image
    return np.pad(image, [(m // 2, m - m // 2) for m in missing], mode="edge")


def dense_keypoints(shape, step=DENSE_STEP, size=DENSE_SIZE):
    """Upright keypoints on a regular grid (dense SIFT).

    Parameters
    ----------
    shape : tuple of int
        (height, width) of the image, pixels.
    step : int, default=DENSE_STEP
        Grid step, pixels; the keypoints sit at ``step // 2 + i * step``
        along both axes.
    size : float, default=DENSE_SIZE
        Keypoint diameter, pixels (OpenCV's ``KeyPoint.size``).

    Returns
    -------
    keypoints : list of cv2.KeyPoint
        Row by row, with orientation 0 degrees (descriptors are not rotated).

    Examples
    --------
    >>> [k.pt for k in dense_keypoints((16, 20))]
    [(4.0, 4.0), (12.0, 4.0), (4.0, 12.0), (12.0, 12.0)]
    """
    return [
        opencv().KeyPoint(float(x), float(y), float(size), 0.0)
        for y in range(step // 2, shape[0], step)
        for x in range(step // 2, shape[1], step)
    ]


def sift_descriptors(image, keypoints="detect_or_dense"):
    """SIFT descriptors of one uint8 image, shape (n_keypoints, 128), float32.

    The image is first padded to ``MIN_IMAGE_SIZE`` (``pad_to_min_size``).
    ``keypoints="detect"``: keypoints are detected and described by OpenCV's
    ``cv2.SIFT_create()`` with its default parameters, and an image without
    keypoints gives a (0, 128) array. ``"dense"``: the keypoints are
    ``dense_keypoints`` of the padded image. ``"detect_or_dense"``: detected
    keypoints, or the dense grid when the detector finds none.
    """
    image = pad_to_min_size(image)
    sift = opencv().SIFT_create()
    descriptors = _no_descriptors()
    if keypoints != "dense":
        descriptors = _as_descriptors(sift.detectAndCompute(image, None)[1])
    if keypoints != "detect" and len(descriptors) == 0:
        descriptors = _as_descriptors(sift.compute(image, dense_keypoints(image.shape))[1])
    return descriptors


def _no_descriptors():
    return np.empty((0, SIFT_SIZE), dtype=np.float32)


def _as_descriptors(found):
    """OpenCV's descriptors as a (n, 128) float32 array.

    "No keypoints" is None in OpenCV 4.x and 5.0 and an empty (0, 128) array
    from 5.1 on; both become the empty array here.
    """
    if found is None or np.size(found) == 0:
        return _no_descriptors()
    return np.asarray(found, dtype=np.float32).reshape(-1, SIFT_SIZE)


def _descriptors_of_chunk(images, keypoints):
    """All SIFT descriptors of a stack of images, concatenated."""
    return np.concatenate(
        [_no_descriptors()] + [sift_descriptors(image, keypoints) for image in images]
    )


def _histograms_of_chunk(images, keypoints, vocabulary):
    """Fraction of each image's descriptors per visual word, shape (n_images, n_words)."""
    descriptors = [sift_descriptors(image, keypoints) for image in images]
    counts = np.array([d.shape[0] for d in descriptors])
    n_words = vocabulary.shape[0]
    out = np.zeros((images.shape[0], n_words))
    if counts.sum():
        words = pairwise_distances_argmin(np.concatenate(descriptors), vocabulary)
        owner = np.repeat(np.arange(images.shape[0]), counts)
        out = np.bincount(owner * n_words + words, minlength=out.size).reshape(out.shape).astype(np.float64)
        out /= np.maximum(counts, 1)[:, np.newaxis]
    return out


def _chunks(images, workers):
    """Consecutive stacks of at most ``_CHUNK`` images, at least one per worker."""
    size = min(_CHUNK, -(-images.shape[0] // workers))
    return (images[start : start + size] for start in range(0, images.shape[0], size))


class BoVWExtractor(ImageFeatureExtractor):
    """Bag-of-visual-words histogram of SIFT descriptors.

    ``fit`` computes SIFT descriptors (OpenCV) of the training images and
    clusters them with mini-batch k-means into a vocabulary of ``n_clusters``
    visual words. ``transform`` reuses that vocabulary: each descriptor of an
    image is assigned to its nearest word (Euclidean) and the feature vector is
    the fraction of the image's descriptors per word.

    Images smaller than ``MIN_IMAGE_SIZE`` (16) pixels in height or width are
    first padded to that size with their edge pixels (``pad_to_min_size``), so
    that a one-row image (2-D input is read as a stack of them) can be
    described.

    Parameters
    ----------
    n_clusters : int, default=100
        Vocabulary size, >= 1. The default is that of the paper's search space
        (Table 8).
    keypoints : {"detect_or_dense", "detect", "dense"}, default="detect_or_dense"
        Where descriptors are computed. ``"detect"``: at the keypoints of SIFT's
        detector (difference-of-Gaussian extrema, with their scale and
        orientation [1]_); an image without keypoints gets the zero vector.
        ``"dense"``: on a fixed grid (dense SIFT [3]_): upright keypoints of
        diameter ``DENSE_SIZE`` (2) pixels every ``DENSE_STEP`` (8) pixels.
        ``"detect_or_dense"``: detected keypoints, and the dense grid for an
        image in which the detector finds none. It is the default because it
        keeps the paper's detected keypoints wherever SIFT finds some, while
        blank frames and frames whose Bragg spots are one pixel wide (the
        detector finds no extremum in either) still get a histogram, and a
        vocabulary can be learned from any training set.
    max_descriptors : int, default=100000
        At most this many training descriptors, drawn uniformly at random
        without replacement, are clustered (memory and time of k-means).
    random_state : int, RandomState instance or None, default=None
        Seeds the descriptor subsample and k-means.
    n_jobs : int or None, default=None
        Parallel workers (threads) for SIFT over images (None: 1, -1: all
        cores). The features do not depend on it.

    Attributes
    ----------
    vocabulary_ : ndarray of float32, shape (n_clusters, 128)
        Visual words: the k-means cluster centres.
    n_descriptors_ : int
        Number of SIFT descriptors found in the training images.
    image_shape_ : tuple of int
        (height, width) of the images seen in ``fit``, before padding.
    n_features_in_ : int
        Height of the images seen in ``fit`` (their width for 2-D input).

    Raises
    ------
    ValueError
        In ``fit``, if the (subsampled) training descriptors hold fewer distinct
        vectors than ``n_clusters``; the message gives both numbers.

    References
    ----------
    .. [1] D. G. Lowe, "Distinctive image features from scale-invariant
       keypoints", Int. J. Comput. Vis. 60 (2004) 91-110,
       doi:10.1023/B:VISI.0000029664.99615.94.
    .. [2] J. Yang, Y.-G. Jiang, A. G. Hauptmann, C.-W. Ngo, "Evaluating
       bag-of-visual-words representations in scene classification", Proc.
       MIR 2007, 197-206, doi:10.1145/1290082.1290111.
    .. [3] A. Bosch, A. Zisserman, X. Munoz, "Image classification using random
       forests and ferns", Proc. ICCV 2007, doi:10.1109/ICCV.2007.4409066.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(4, 32, 32), dtype=np.uint8)
    >>> bovw = BoVWExtractor(n_clusters=3, keypoints="dense", random_state=0)
    >>> bovw.fit_transform(images).shape  # 16 dense descriptors per image
    (4, 3)
    >>> bovw.n_descriptors_
    64
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "keypoints": [StrOptions(set(KEYPOINT_MODES))],
        "max_descriptors": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self, n_clusters=100, keypoints="detect_or_dense", max_descriptors=100_000, random_state=None, n_jobs=None
    ):
        self.n_clusters = n_clusters
        self.keypoints = keypoints
        self.max_descriptors = max_descriptors
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _training_descriptors(self, images, rng):
        """Uniform subsample of at most ``max_descriptors`` training descriptors, in image order.

        Images are described chunk by chunk and only the subsample is kept (the
        descriptors of all images of a large set do not fit in memory): once
        more than ``max_descriptors`` were seen, every descriptor gets a
        uniform random key and the ``max_descriptors`` smallest keys are kept,
        a uniform sample without replacement. The keys are drawn in descriptor
        order, so the sample does not depend on the chunks or the number of
        workers; no random number is drawn while all descriptors fit.
        """
        workers = threads_for_jobs(self.n_jobs)
        chunks = Parallel(n_jobs=workers, prefer="threads", return_as="generator")(
            delayed(_descriptors_of_chunk)(chunk, self.keypoints) for chunk in _chunks(images, workers)
        )
        kept = _no_descriptors()
        index = np.empty(0, dtype=np.int64)  # position of each kept descriptor among all
        keys = None  # random keys of the kept descriptors, once subsampling has started
        total = 0
        for descriptors in chunks:
            kept = np.concatenate([kept, descriptors])
            index = np.concatenate([index, np.arange(total, total + descriptors.shape[0])])
            total += descriptors.shape[0]
            if keys is None and total > self.max_descriptors:
                keys = rng.random_sample(total)
            elif keys is not None:
                keys = np.concatenate([keys, rng.random_sample(descriptors.shape[0])])
            if keys is not None and kept.shape[0] > self.max_descriptors:
                smallest = np.argpartition(keys, self.max_descriptors - 1)[: self.max_descriptors]
                kept, index, keys = kept[smallest], index[smallest], keys[smallest]
        return kept[np.argsort(index)], total

    def _fit_images(self, images):
        rng = check_random_state(self.random_state)
        descriptors, self.n_descriptors_ = self._training_descriptors(images, rng)
        n_distinct = np.unique(descriptors, axis=0).shape[0]
        if n_distinct < self.n_clusters:
            hint = ", or keypoints='detect_or_dense'" if self.keypoints == "detect" else ""
            raise ValueError(
                f"the training images give {n_distinct} distinct SIFT descriptors, fewer than "
                f"n_clusters={self.n_clusters}; use more or larger images or fewer clusters{hint}"
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
        workers = threads_for_jobs(self.n_jobs)
        chunks = Parallel(n_jobs=workers, prefer="threads")(
            delayed(_histograms_of_chunk)(chunk, self.keypoints, self.vocabulary_)
            for chunk in _chunks(images, workers)
        )
        return np.concatenate(chunks)
