"""DeepFreak: the paper's ResNet classifier of diffraction images, as a scikit-learn estimator.

The network itself is :mod:`diffranet.models.resnet`; this module owns the data
path (validation, rescaling, resizing, per-pixel mean), the training loop of
the paper's Table 2 (SGD with momentum and weight decay, cross-entropy, step
decay of the learning rate), checkpoints, and batched prediction.

PyTorch is optional: this module imports without it, and ``fit`` raises an
ImportError naming what to install.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._atomic import atomic_write
from ..features.significance import SIGNIFICANCE_RANGE, significance_map
from ._torch import require_torch
from .topology import TOPOLOGY_PARAMETERS

__all__ = ["DeepFreakClassifier"]

# Parameters that change how fast or where training runs, not what it computes:
# a checkpoint written under other values of these can be resumed.
# Images per forward pass when batch-norm statistics are recomputed.
_BATCH_NORM_CHUNK = 64

_EXECUTION_PARAMS = frozenset(
    {"epochs", "verbose", "checkpoint_path", "device", "n_threads", "workers", "predict_batch_size"}
)


def _is_dataset(X):
    """Whether ``X`` is a torch ``Dataset`` (without importing torch when it is absent)."""
    torch_data = sys.modules.get("torch.utils.data")
    return torch_data is not None and isinstance(X, torch_data.Dataset)


def _label_key(label):
    """A hashable Python value for a label from a Dataset (tensor and numpy scalars unwrapped)."""
    if hasattr(label, "item") and np.ndim(label) == 0:
        return label.item()
    return label


def _as_image(image):
    """A 2-D numpy image from a Dataset item (numpy array or CPU tensor; a leading channel of 1 dropped)."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise ValueError(f"Dataset images must be 2-D (height, width), got shape {image.shape}")
    return image


class _ArrayImages:
    """Map-style dataset over an image array and encoded labels, fetched a batch at a time."""

    def __init__(self, images, labels=None):
        self.images = images
        self.labels = labels

    def __len__(self):
        return len(self.images)

    def __getitems__(self, indices):
        # Sorted fancy indexing copies one batch only (and reads memmaps in order).
        indices = np.asarray(indices)
        batch = self.images[indices]
        labels = None if self.labels is None else self.labels[indices]
        return batch, labels

    def __getitem__(self, index):
        return self.__getitems__([index])


class _DatasetImages:
    """Wraps a user ``Dataset`` of (image, label) or image items, labels encoded through ``index``."""

    def __init__(self, dataset, indices=None, index=None):
        self.dataset = dataset
        self.indices = np.arange(len(dataset)) if indices is None else np.asarray(indices)
        self.index = index

    def __len__(self):
        return len(self.indices)

    def __getitems__(self, indices):
        images, labels = [], []
        for i in indices:
            item = self.dataset[int(self.indices[i])]
            if isinstance(item, (tuple, list)):
                image, label = item[0], item[1] if len(item) > 1 else None
            else:
                image, label = item, None
            images.append(_as_image(image))
            labels.append(_label_key(label))
        shapes = {image.shape for image in images}
        if len(shapes) != 1:
            raise ValueError(f"Dataset images must all have one shape, got {sorted(shapes)}")
        encoded = None
        if self.index is not None:
            try:
                encoded = np.array([self.index[label] for label in labels], dtype=np.int64)
            except KeyError as exc:
                raise ValueError(f"label {exc.args[0]!r} was not seen in fit") from None
        return np.stack(images), encoded

    def __getitem__(self, index):
        return self.__getitems__([index])


def _identity_collate(batch):
    return batch


def _chunks(order, size):
    """``order`` in consecutive chunks of ``size``; a final chunk of one image joins the previous one.

    Batch normalisation in training mode cannot normalise a single image
    whose last feature map is 1 x 1, so with sizes above one no chunk of one
    is formed.
    """
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    if size > 1 and len(chunks) > 1 and len(chunks[-1]) == 1:
        tail = chunks.pop()
        chunks[-1] = np.concatenate([chunks[-1], tail])
    return chunks


def _batches(n, batch_size, generator, torch):
    """Shuffled training batches of ``range(n)`` (see :func:`_chunks`), each in index order."""
    order = torch.randperm(n, generator=generator).numpy()
    return [np.sort(batch) for batch in _chunks(order, batch_size)]


@contextlib.contextmanager
def _torch_session(torch, n_threads, deterministic):
    """Set torch's thread count and deterministic mode for one call, and restore them."""
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=det_warn)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


class DeepFreakClassifier(ClassifierMixin, BaseEstimator):
    """DeepFreak: a ResNet classifier of diffraction images (needs PyTorch).

    The defaults are the paper's best network and training recipe (Tables 1
    and 2; Table 11, configuration B): ResNet-50, stage strides (1, 2, 3, 3),
    a 7 x 7 average pool before the classifier, 512 x 512 input, SGD with
    batch size 1 for 180 epochs. That takes GPU-days; for CPU work choose a
    smaller ``depth``, ``width`` and ``input_size`` and ``head_pool_size=None``
    (see ``docs/deepfreak.md``).

    Images are rescaled to [0, 1], resized (anti-aliased) to ``input_size`` x
    ``input_size``, and the per-pixel mean of the training images is
    subtracted, as in the paper (Section 4.3).

    Parameters
    ----------
    depth : {18, 34, 50, 101, 152}, default 50
        ResNet depth (He et al. 2016): basic blocks for 18 and 34, bottleneck
        blocks from 50.
    width : int, default 64
        Filters of the stem and first stage, doubled at each stage (the
        paper's "number of filters": 64, 16 or 8 in Table 9).
    stage_strides : tuple of 4 int, default (1, 2, 3, 3)
        Stride of each of the four stages; the paper's best extends the last
        two to 3.
    stem_kernel : int, default 7
        Kernel of the first convolution, in pixels of the resized image.
    stem_stride : int, default 2
        Stride of the first convolution (4 in Table 9, variant 4).
    stem_pool_size : int or None, default 3
        Size of the first max-pool; ``None`` removes it.
    stem_pool_stride : int, default 2
        Stride of the first max-pool.
    head_pool_size : int or None, default 7
        Average pool before the classifier ("2nd pool" of Table 9); ``None``
        is global average pooling, which any ``input_size`` allows.
    head_pool_stride : int, default 1
        Stride of the head pool ("2nd pool stride").
    input_size : int, default 512
        Images are resized to ``input_size`` x ``input_size`` pixels before
        the network.
    resize : {"bilinear", "area", "max"}, default "bilinear"
        Resampling: anti-aliased bilinear, area averaging, or the maximum of
        each block ("max": a one-pixel Bragg spot keeps its full height when
        a 512 px image is shrunk for a CPU-sized network, where averaging
        would dilute it by the square of the factor).
    augment : {None, "dihedral"}, default None
        Training augmentation. "dihedral": each training image is rotated by
        a random multiple of 90 degrees and flipped at random (the eight
        symmetries of the square), drawn per epoch from the seed, so a
        resumed fit augments exactly as an uninterrupted one. Suits detector
        images centred on the beam, whose classes do not change under these
        symmetries.
    input_transform : {None, "significance"}, default None
        What the network sees of an 8-bit image. None: the grey values (the
        paper). ``"significance"``: :func:`~diffranet.features.significance.significance_map`,
        each 4 x 4 block's maximum in units of the local background noise
        above the local background (a 128 x 128 map of a 512 x 512 image), so
        the input means the same on every detector, beam and background; the
        map's clip range is then mapped to [0, 1] (``pixel_range`` must be None).
    pixel_range : tuple (low, high) or None, default None
        Grey values mapped to 0 and 1. ``None``: (0, 255) for uint8 images,
        otherwise the smallest and largest value of the training images.
    epochs : int, default 180
        Training epochs (Table 2). With ``checkpoint_path``, the total number
        of epochs, counting those already in the checkpoint.
    batch_size : int, default 1
        Images per SGD step (Table 2). A last batch of one image is merged into
        the previous batch.
    learning_rate : float, default 8.4474e-4
        Initial SGD learning rate (Table 2).
    momentum : float, default 0.56168
        SGD momentum (Table 2).
    weight_decay : float, default 3.4855e-5
        L2 weight decay (Table 2).
    lr_step_epochs : int or None, default 10
        The learning rate is multiplied by ``lr_gamma`` every this many epochs
        (Table 2: every 10 epochs); ``None`` keeps it constant.
    lr_gamma : float, default 0.1
        Decay factor of the learning rate (Table 2: 0.1).
    early_stopping : bool, default False
        Stop when the validation accuracy has not improved for
        ``n_iter_no_change`` epochs, and keep the best weights. The
        validation images are those passed to ``fit`` as ``validation``, else
        ``validation_fraction`` of the training images (held out, stratified).
    validation_fraction : float, default 0.1
        Fraction held out when ``early_stopping``.
    n_iter_no_change : int, default 10
        Patience of early stopping, in epochs.
    batch_norm_images : int, default 2048
        After every epoch, the batch-normalisation statistics that prediction
        uses are recomputed from this many training images (drawn from the
        seed, without augmentation) under the epoch's final weights, before
        validation. The running averages kept during training lag the
        changing weights; on the DiffraNet set they made the validation
        accuracy of one model swing between 80 % and 97 % from epoch to
        epoch, and recomputing them removed the swings. 0 keeps the running
        averages.
    predict_batch_size : int, default 64
        Images per forward pass in ``predict`` / ``predict_proba`` (and for
        the per-pixel mean and validation in ``fit``).
    device : str, default "auto"
        Torch device: "auto" (CUDA when available, else CPU), "cpu",
        "cuda", "cuda:0", ...
    n_threads : int or None, default None
        CPU threads torch may use during ``fit`` and prediction (restored
        afterwards); ``None`` keeps torch's setting.
    workers : int, default 0
        DataLoader worker processes that load training batches (useful for a
        lazy ``Dataset``); 0 loads in the main process.
    init : DeepFreakClassifier or None, default None
        A fitted classifier of the same network (depth, width, strides,
        input) and classes whose weights start the training instead of a
        random initialisation: fine-tuning, e.g. of the shipped model on a set
        rendered for one beamline (``diffranet train --init default``).
    checkpoint_path : str or path-like or None, default None
        File to save model, optimiser, scheduler and epoch to after every
        epoch (atomically). If it exists when ``fit`` starts and was written
        for the same configuration and data, training resumes from it.
    random_state : int, RandomState instance or None, default None
        Seeds weight initialisation, shuffling and the validation split; an
        int makes CPU training reproducible.
    verbose : int, default 0
        Show a progress bar (tqdm) over training batches when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    n_features_in_ : int
        Height of the training images (scikit-learn's convention for 3-D
        input; the width of 2-D input, read as one-row images).
    image_shape_ : tuple (height, width)
        Shape of the training images; prediction requires the same shape.
    pixel_range_ : tuple (low, high)
        Grey values mapped to 0 and 1.
    mean_image_ : ndarray of float32, shape (input_size, input_size)
        Per-pixel mean of the rescaled, resized training images.
    model_ : torch.nn.Module
        The trained :class:`~diffranet.models.resnet.ResNet`, in eval mode.
    device_ : str
        Device the model lives on.
    seed_ : int
        Seed used for initialisation and shuffling.
    loss_curve_ : list of float
        Mean training cross-entropy of each epoch.
    validation_scores_ : list of float
        Validation accuracy after each epoch (empty without early stopping
        or a ``validation`` set).
    epoch_seconds_ : list of float
        Wall time of each epoch's training pass (training images / second is
        the number of training images divided by it).
    n_epochs_ : int
        Epochs trained, including resumed ones.

    References
    ----------
    A. Souza et al., "DiffraNet: automatic classification of serial
    crystallography diffraction patterns", arXiv:1904.11834.
    K. He, X. Zhang, S. Ren and J. Sun, "Deep residual learning for image
    recognition", CVPR 2016, doi:10.1109/CVPR.2016.90.

    Examples
    --------
    >>> from diffranet import DeepFreakClassifier
    >>> clf = DeepFreakClassifier(depth=18, width=8, input_size=64, head_pool_size=None, epochs=5,
    ...                           batch_size=8, learning_rate=0.05, momentum=0.9, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        "depth": [Options(Integral, {18, 34, 50, 101, 152})],
        "width": [Interval(Integral, 1, None, closed="left")],
        "stage_strides": ["array-like"],
        "stem_kernel": [Interval(Integral, 1, None, closed="left")],
        "stem_stride": [Interval(Integral, 1, None, closed="left")],
        "stem_pool_size": [Interval(Integral, 1, None, closed="left"), None],
        "stem_pool_stride": [Interval(Integral, 1, None, closed="left")],
        "head_pool_size": [Interval(Integral, 1, None, closed="left"), None],
        "head_pool_stride": [Interval(Integral, 1, None, closed="left")],
        "input_size": [Interval(Integral, 1, None, closed="left")],
        "resize": [StrOptions({"bilinear", "area", "max"})],
        "input_transform": [None, StrOptions({"significance"})],
        "augment": [StrOptions({"dihedral"}), None],
        "pixel_range": ["array-like", None],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_step_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "lr_gamma": [Interval(Real, 0, 1, closed="right")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "batch_norm_images": [Interval(Integral, 0, None, closed="left")],
        "predict_batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "workers": [Interval(Integral, 0, None, closed="left")],
        "checkpoint_path": [str, os.PathLike, None],
        "init": "no_validation",  # checked where it is used (_initial_weights)
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        depth=50,
        width=64,
        stage_strides=(1, 2, 3, 3),
        stem_kernel=7,
        stem_stride=2,
        stem_pool_size=3,
        stem_pool_stride=2,
        head_pool_size=7,
        head_pool_stride=1,
        input_size=512,
        resize="bilinear",
        input_transform=None,
        augment=None,
        pixel_range=None,
        epochs=180,
        batch_size=1,
        learning_rate=8.4474e-4,
        momentum=0.56168,
        weight_decay=3.4855e-5,
        lr_step_epochs=10,
        lr_gamma=0.1,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        batch_norm_images=2048,
        predict_batch_size=64,
        device="auto",
        n_threads=None,
        workers=0,
        checkpoint_path=None,
        init=None,
        random_state=None,
        verbose=0,
    ):
        self.depth = depth
        self.width = width
        self.stage_strides = stage_strides
        self.stem_kernel = stem_kernel
        self.stem_stride = stem_stride
        self.stem_pool_size = stem_pool_size
        self.stem_pool_stride = stem_pool_stride
        self.head_pool_size = head_pool_size
        self.head_pool_stride = head_pool_stride
        self.input_size = input_size
        self.resize = resize
        self.input_transform = input_transform
        self.augment = augment
        self.pixel_range = pixel_range
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_step_epochs = lr_step_epochs
        self.lr_gamma = lr_gamma
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batch_norm_images = batch_norm_images
        self.predict_batch_size = predict_batch_size
        self.device = device
        self.n_threads = n_threads
        self.workers = workers
        self.checkpoint_path = checkpoint_path
        self.init = init
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags

    # ----------------------------------------------------------------- network

    def _network_kwargs(self):
        kwargs = {name: getattr(self, name) for name in TOPOLOGY_PARAMETERS}
        kwargs["stage_strides"] = tuple(kwargs["stage_strides"])
        return dict(kwargs, input_size=self.input_size)

    def _build_network(self, n_classes):
        # imported on use: resnet imports torch, an optional dependency
        from .resnet import build_resnet

        return build_resnet(self.depth, n_classes, in_channels=1, **self._network_kwargs())

    def _set_model(self, network):
        """Keep ``network`` as ``model_``, in eval mode and channels-last memory format.

        Channels-last convolutions are faster on CPUs and give the same
        results up to float rounding; training stays in the default format,
        whose backward pass is deterministic on every thread count.
        """
        import torch

        self.model_ = network.eval().to(memory_format=torch.channels_last)
        return self.model_

    def _resolve_device(self, torch):
        name = "cuda" if self.device == "auto" and torch.cuda.is_available() else self.device
        name = "cpu" if name == "auto" else name
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} requested but CUDA is not available")
        return device

    # ------------------------------------------------------------------- input

    def _check_pixel_range(self):
        if self.pixel_range is None:
            return None
        values = np.asarray(self.pixel_range, dtype=float)
        if values.shape != (2,) or not np.all(np.isfinite(values)) or values[0] >= values[1]:
            raise ValueError(f"pixel_range must be (low, high) with finite low < high, got {self.pixel_range!r}")
        return float(values[0]), float(values[1])

    def _validate_images(self, X, *, reset):
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype="numeric")
        return self._as_stack(X, reset=reset)

    def _as_stack(self, X, *, reset):
        if X.ndim == 2:
            X = X[:, np.newaxis, :]
        if X.ndim != 3:
            raise ValueError(f"expected images of shape (n_images, height, width), got shape {X.shape}")
        if reset:
            self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        elif X.shape[1:] != self.image_shape_:
            raise ValueError(
                f"X has images of shape {X.shape[1:]}, but {type(self).__name__} "
                f"was fitted on images of shape {self.image_shape_}"
            )
        return X

    def _input_stage(self, batch):
        """The array the network's tensor stage takes: the images, or their significance map (numpy)."""
        batch = np.asarray(batch)
        if self.input_transform == "significance":
            return significance_map(batch)
        return np.ascontiguousarray(batch)

    def _tensor_stage(self, x, torch, device, mean=None):
        """(B, rows, cols) tensor of :meth:`_input_stage` -> (B, 1, input_size, input_size) float32 tensor.

        Block maxima or resizing to ``input_size``, rescaling of ``pixel_range_``
        to [0, 1] and subtraction of ``mean``. Also the first part of the
        exported inference graph (:func:`diffranet.models.export.inference_graph`).
        """
        rows, cols = x.shape[-2:]
        size = self.input_size
        if self.resize == "max" and (rows, cols) != (size, size) and rows % size == 0 and cols % size == 0:
            # Block maxima of the raw values: the same as after the (increasing) rescaling below, but
            # on 8-bit data, before any conversion, and on a 16 times smaller array when shrinking 4 x 4.
            x = x.reshape(-1, size, rows // size, size, cols // size).amax(dim=(2, 4))
        x = x.to(device=device, dtype=torch.float32)
        low, high = self.pixel_range_
        x = ((x - low) / (high - low)).unsqueeze(1)
        if x.shape[-2:] != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            if self.resize == "area":
                x = torch.nn.functional.interpolate(x, size=size, mode="area")
            elif self.resize == "max":
                x = torch.nn.functional.adaptive_max_pool2d(x, size)
            else:
                x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        if mean is not None:
            x = x - mean
        return x

    def _preprocess(self, batch, torch, device, mean=None):
        """Float tensor (B, 1, input_size, input_size): transformed, rescaled, resized, mean-subtracted."""
        return self._tensor_stage(torch.from_numpy(self._input_stage(batch)), torch, device, mean)

    def _loader(self, dataset, batches, torch, generator):
        # The generator seeds worker processes; without one the DataLoader would draw from torch's global RNG.
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=batches,
            collate_fn=_identity_collate,
            num_workers=self.workers,
            generator=generator,
        )

    def _scan_dataset(self, dataset):
        """Labels, image shape and grey-value extremes of a Dataset, in one pass."""
        labels, shape, low, high, is_uint8 = [], None, np.inf, -np.inf, True
        for i in range(len(dataset)):
            item = dataset[i]
            if not isinstance(item, (tuple, list)) or len(item) < 2:
                raise ValueError("fit needs a Dataset of (image, label) items")
            image = _as_image(item[0])
            if shape is None:
                shape = image.shape
            elif image.shape != shape:
                raise ValueError(f"Dataset images must all have one shape, got {shape} and {image.shape}")
            if not np.all(np.isfinite(image)):
                raise ValueError(f"Dataset image {i} contains NaN or infinity")
            is_uint8 &= image.dtype == np.uint8
            low, high = min(low, float(image.min())), max(high, float(image.max()))
            labels.append(_label_key(item[1]))
        if shape is None:
            raise ValueError("fit needs a non-empty Dataset")
        return np.asarray(labels), shape, (0.0, 255.0) if is_uint8 else (low, high)

    # --------------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, validation=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width) or (n_images, width), or torch Dataset
            Detector images (uint8 or float); a 2-D array is a stack of
            one-row images. A ``torch.utils.data.Dataset`` yields
            ``(image, label)`` pairs and is read one batch at a time.
        y : array-like of shape (n_images,)
            Class labels of any hashable type; must be None for a Dataset.
        validation : tuple (X_val, y_val) or torch Dataset, optional
            Images scored after every epoch (``validation_scores_``, the
            progress bar) and, with ``early_stopping``, used to stop and to
            pick the best weights instead of a hold-out of ``X``. Labels must
            be among those of ``y``.

        Returns
        -------
        self : DeepFreakClassifier
            The fitted classifier.
        """
        torch = require_torch()
        pixel_range = self._check_pixel_range()
        if _is_dataset(X):
            if y is not None:
                raise ValueError("y must be None when X is a Dataset of (image, label) pairs")
            labels, shape, observed_range = self._scan_dataset(X)
            check_classification_targets(labels)
            self.n_features_in_ = int(shape[0])
            self.image_shape_ = tuple(int(s) for s in shape)
        else:
            X, labels = validate_data(self, X, y, allow_nd=True, dtype="numeric")
            X = self._as_stack(X, reset=True)
            check_classification_targets(labels)
            if X.dtype == np.uint8:
                observed_range = (0.0, 255.0)
            else:
                observed_range = (float(X.min()), float(X.max()))
        self.classes_, encoded = np.unique(labels, return_inverse=True)
        encoded = encoded.astype(np.int64).ravel()
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes, got 1 class")
        if self.input_transform == "significance":
            if pixel_range is not None:
                raise ValueError("pixel_range must be None with input_transform='significance' "
                                 "(the significance map has a fixed range)")
            if observed_range != (0.0, 255.0):
                raise ValueError("input_transform='significance' needs uint8 images (the 8-bit model input)")
            pixel_range = SIGNIFICANCE_RANGE
        if pixel_range is None:
            low, high = observed_range
            pixel_range = (low, high) if high > low else (low, low + 1.0)
        self.pixel_range_ = pixel_range

        device = self._resolve_device(torch)
        self.device_ = str(device)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)

        with _torch_session(torch, self.n_threads, deterministic=True):
            if _is_dataset(X):
                index = {label: i for i, label in enumerate(self.classes_.tolist())}
                dataset = _DatasetImages(X, index=index)
            else:
                dataset = _ArrayImages(X, encoded)
            val_set = self._validation_set(validation)
            self.mean_image_ = self._mean_image(dataset, torch, device)
            self._train(dataset, encoded, seed, torch, device, val_set)
        return self

    def _validation_set(self, validation):
        """(images, encoded labels) of a validation set given to ``fit``, or None."""
        if validation is None:
            return None
        index = {label: i for i, label in enumerate(self.classes_.tolist())}
        if _is_dataset(validation):
            images = _DatasetImages(validation, index=index)
            labels = np.array([_label_key(validation[i][1]) for i in range(len(validation))]) \
                if not hasattr(validation, "labels") else np.asarray(validation.labels)
        else:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ValueError("validation must be (X_val, y_val) or a Dataset of (image, label) pairs")
            X_val, labels = validation
            X_val = self._as_stack(np.asarray(X_val), reset=False)
            labels = np.asarray(labels)
            if len(X_val) != len(labels):
                raise ValueError(f"validation has {len(X_val)} images but {len(labels)} labels")
            images = _ArrayImages(X_val)
        if len(labels) == 0:
            raise ValueError("validation must hold at least one image")
        try:
            encoded = np.array([index[_label_key(label)] for label in labels.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"validation label {exc.args[0]!r} was not seen in the training labels") from None
        return images, encoded

    def _mean_image(self, dataset, torch, device):
        """Per-pixel mean of the rescaled, resized images, accumulated one batch at a time."""
        n = len(dataset)
        total = torch.zeros((1, self.input_size, self.input_size), dtype=torch.float64, device=device)
        batches = [np.arange(i, min(i + self.predict_batch_size, n)) for i in range(0, n, self.predict_batch_size)]
        with torch.inference_mode():
            for images, _ in self._loader(dataset, batches, torch, torch.Generator().manual_seed(0)):
                total += self._preprocess(images, torch, device).sum(dim=0, dtype=torch.float64)
        return (total[0] / n).float().cpu().numpy()

    def _initial_weights(self):
        """The weights of ``init``, after checking that they fit this network and these classes."""
        init = self.init
        if not isinstance(init, DeepFreakClassifier) or not hasattr(init, "model_"):
            raise ValueError(f"init must be a fitted DeepFreakClassifier, got {type(init).__name__}")
        mine, theirs = self._network_kwargs(), init._network_kwargs()
        differ = sorted(k for k in mine if mine[k] != theirs[k])
        if init.depth != self.depth or differ or init.input_transform != self.input_transform:
            raise ValueError(f"init has another network ({', '.join(differ) or 'depth or input_transform'} differ)")
        if list(np.asarray(init.classes_).tolist()) != list(self.classes_.tolist()):
            raise ValueError(f"init was fitted on the classes {list(init.classes_)}, not {list(self.classes_)}")
        return {k: v.detach().cpu().clone() for k, v in init.model_.state_dict().items()}

    def _checkpoint_config(self):
        params = self.get_params(deep=False)
        if not isinstance(self.random_state, Integral):
            params.pop("random_state")
        config = {name: repr(value) for name, value in params.items() if name not in _EXECUTION_PARAMS}
        config["stage_strides"] = repr(tuple(self.stage_strides))
        return config

    def _load_checkpoint(self, torch, device, n_samples):
        path = os.fspath(self.checkpoint_path)
        if not os.path.exists(path):
            return None
        state = torch.load(path, map_location=device, weights_only=True)
        expected = {
            "config": self._checkpoint_config(),
            "classes": self.classes_.tolist(),
            "n_samples": n_samples,
        }
        found = {key: state.get(key) for key in expected}
        same_mean = np.array_equal(state["mean_image"].cpu().numpy(), self.mean_image_)
        if found != expected or not same_mean:
            raise ValueError(
                f"checkpoint {path!r} was written for another configuration or data set; "
                "delete it or choose another checkpoint_path"
            )
        return state

    def _save_checkpoint(self, state):
        with atomic_write(os.path.abspath(os.fspath(self.checkpoint_path))) as handle:
            require_torch().save(state, handle)

    def _augment(self, x, generator, torch):
        """The batch under random symmetries of the square (``augment="dihedral"``)."""
        if self.augment is None:
            return x
        choice = torch.randint(0, 8, (len(x),), generator=generator).tolist()
        out = torch.empty_like(x)
        for code in set(choice):
            rows = [i for i, c in enumerate(choice) if c == code]
            part = torch.rot90(x[rows], k=code % 4, dims=(2, 3))
            out[rows] = torch.flip(part, dims=(3,)) if code >= 4 else part
        return out

    def _train(self, dataset, encoded, seed, torch, device, val_set=None):
        n = len(dataset)
        state = None
        if self.checkpoint_path is not None:
            state = self._load_checkpoint(torch, device, n)
            if state is not None:
                seed = int(state["seed"])
        self.seed_ = seed

        train_idx, val_idx = np.arange(n), None
        val_dataset, val_encoded = (dataset, encoded) if val_set is None else val_set
        if val_set is not None:
            val_idx = np.arange(len(val_dataset))
        elif self.early_stopping:
            try:
                train_idx, val_idx = train_test_split(
                    train_idx, test_size=self.validation_fraction, stratify=encoded, random_state=seed
                )
            except ValueError:
                train_idx, val_idx = train_test_split(train_idx, test_size=self.validation_fraction, random_state=seed)
            train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self._build_network(len(self.classes_))
        if self.init is not None and state is None:
            model.load_state_dict(self._initial_weights())
        model.to(device)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=self.learning_rate, momentum=self.momentum, weight_decay=self.weight_decay
        )
        step = self.lr_step_epochs if self.lr_step_epochs is not None else self.epochs + 1
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=self.lr_gamma)
        loss_fn = torch.nn.CrossEntropyLoss()
        mean = torch.from_numpy(self.mean_image_).to(device)

        start, self.loss_curve_, self.validation_scores_, self.epoch_seconds_ = 0, [], [], []
        best_state, best_score, stale = None, -np.inf, 0
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start = int(state["epoch"])
            self.loss_curve_ = list(state["loss_curve"])
            self.validation_scores_ = list(state["validation_scores"])
            self.epoch_seconds_ = list(state.get("epoch_seconds", []))
            best_state, best_score, stale = state["best_model"], float(state["best_score"]), int(state["stale"])

        n_batches = (len(train_idx) + self.batch_size - 1) // self.batch_size
        progress = None
        if self.verbose and start < self.epochs:
            from tqdm.auto import tqdm

            progress = tqdm(total=(self.epochs - start) * len(train_idx), desc="DeepFreak", unit="img",
                            unit_scale=True)
        generator, augment_generator = torch.Generator(), torch.Generator()
        epoch = start
        try:
            for epoch in range(start, self.epochs):
                if self.early_stopping and stale >= self.n_iter_no_change:
                    break
                # One generator state per epoch: a resumed fit shuffles exactly as an uninterrupted one.
                generator.manual_seed(seed + 1 + epoch)
                augment_generator.manual_seed((seed + 1 + epoch) ^ 0x5A5A5A5A)
                batches = [train_idx[b] for b in _batches(len(train_idx), self.batch_size, generator, torch)]
                model.train()
                total, count = 0.0, 0
                epoch_start = time.perf_counter()
                for images, targets in self._loader(dataset, batches, torch, generator):
                    x = self._augment(self._preprocess(images, torch, device), augment_generator, torch) - mean
                    target = torch.from_numpy(targets).to(device)
                    loss = loss_fn(model(x), target)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(targets)
                    count += len(targets)
                    if progress is not None:
                        progress.update(len(targets))
                        progress.set_postfix(self._progress_fields(epoch, total / count, count, epoch_start),
                                             refresh=False)
                scheduler.step()
                self.epoch_seconds_.append(time.perf_counter() - epoch_start)
                self._recompute_batch_norm(model, dataset, train_idx, seed + 1 + epoch, torch, device, mean)
                self.loss_curve_.append(total / count)
                if val_idx is not None:
                    score = self._accuracy(model, val_dataset, val_idx, val_encoded, torch, device, mean)
                    self.validation_scores_.append(score)
                    if progress is not None:
                        progress.set_postfix(self._progress_fields(epoch, total / count, count, epoch_start))
                if self.early_stopping:
                    if score > best_score:
                        best_score, stale = score, 0
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    else:
                        stale += 1
                if self.checkpoint_path is not None:
                    self._save_checkpoint(
                        {
                            "config": self._checkpoint_config(),
                            "classes": self.classes_.tolist(),
                            "n_samples": n,
                            "mean_image": torch.from_numpy(self.mean_image_),
                            "seed": seed,
                            "epoch": epoch + 1,
                            "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(),
                            "loss_curve": list(self.loss_curve_),
                            "validation_scores": list(self.validation_scores_),
                            "epoch_seconds": list(self.epoch_seconds_),
                            "best_model": best_state,
                            "best_score": best_score,
                            "stale": stale,
                        }
                    )
        finally:
            if progress is not None:
                progress.close()
        if self.early_stopping and best_state is not None:
            model.load_state_dict(best_state)
        self.n_epochs_ = len(self.loss_curve_)
        self._set_model(model)

    def _recompute_batch_norm(self, model, dataset, indices, seed, torch, device, mean):
        """Batch-norm statistics of ``batch_norm_images`` training images under the current weights.

        Each layer's running mean and variance become the plain average of
        the batch statistics over the chosen images, in chunks of
        ``_BATCH_NORM_CHUNK`` (fixed, so that the result does not depend on
        execution settings; see :func:`_chunks`).
        """
        layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        n = min(self.batch_norm_images, len(indices))
        if not layers or n < 2:
            return
        chosen = np.sort(np.random.default_rng(seed).choice(indices, size=n, replace=False))
        momenta = [layer.momentum for layer in layers]
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average
        model.train()
        try:
            with torch.no_grad():
                for part in _chunks(chosen, _BATCH_NORM_CHUNK):
                    images, _ = dataset.__getitems__(part)
                    model(self._preprocess(images, torch, device, mean))
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum

    def _progress_fields(self, epoch, loss, count, epoch_start):
        """Progress-bar fields: epoch, mean loss, last validation accuracy, training images/s."""
        fields = {"epoch": f"{epoch + 1}/{self.epochs}", "loss": f"{loss:.4f}"}
        if self.validation_scores_:
            fields["val_acc"] = f"{self.validation_scores_[-1]:.4f}"
        fields["img/s"] = f"{count / max(time.perf_counter() - epoch_start, 1e-9):.1f}"
        return fields

    def _accuracy(self, model, dataset, indices, encoded, torch, device, mean):
        model.eval()
        correct = 0
        with torch.inference_mode():
            for start in range(0, len(indices), self.predict_batch_size):
                idx = indices[start : start + self.predict_batch_size]
                images, _ = dataset.__getitems__(idx)
                logits = model(self._preprocess(images, torch, device, mean))
                correct += int((logits.argmax(1).cpu().numpy() == encoded[idx]).sum())
        return correct / len(indices)

    # ----------------------------------------------------------------- predict

    def predict_proba(self, X):
        """Class probabilities (softmax of the network's logits).

        Parameters
        ----------
        X : array-like of shape (n_images, height, width) or (n_images, width), or torch Dataset
            Images of the shape seen in ``fit``; a Dataset may yield images or
            (image, label) pairs (labels are ignored).

        Returns
        -------
        proba : ndarray of float64, shape (n_images, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        torch = require_torch()
        if _is_dataset(X):
            dataset = _DatasetImages(X)
            n = len(dataset)
        else:
            X = self._validate_images(X, reset=False)
            dataset, n = _ArrayImages(X), len(X)
        device = next(self.model_.parameters()).device
        mean = torch.from_numpy(self.mean_image_).to(device)
        proba = np.empty((n, len(self.classes_)), dtype=np.float64)
        with _torch_session(torch, self.n_threads, deterministic=False), torch.inference_mode():
            for start in range(0, n, self.predict_batch_size):
                images, _ = dataset.__getitems__(np.arange(start, min(start + self.predict_batch_size, n)))
                if images.shape[1:] != self.image_shape_:
                    raise ValueError(f"Dataset images have shape {images.shape[1:]}, fitted on {self.image_shape_}")
                logits = self.model_(self._preprocess(images, torch, device, mean))
                proba[start : start + len(images)] = torch.softmax(logits.double(), dim=1).cpu().numpy()
        return proba

    def predict(self, X):
        """Most probable class of each image.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width) or (n_images, width), or torch Dataset
            Images of the shape seen in ``fit``.

        Returns
        -------
        labels : ndarray of shape (n_images,)
            Elements of ``classes_``.
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # ---------------------------------------------------------------- pickling

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the estimator keeps its model
        model = state.pop("model_", None)
        if model is not None:
            # Weights only, on CPU: the pickle loads on a machine without the training GPU.
            state["_model_state"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return state

    def __setstate__(self, state):
        weights = state.pop("_model_state", None)
        super().__setstate__(state)
        if weights is not None:
            torch = require_torch()
            device = torch.device(self.device_)
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
            self.device_ = str(device)
            with torch.random.fork_rng(devices=[]):
                model = self._build_network(len(self.classes_))
            model.load_state_dict(weights)
            self._set_model(model.to(device))
