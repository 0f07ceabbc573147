"""DeepFreak: the paper's ResNet classifier of diffraction images, as a scikit-learn estimator.

This module holds the estimator: its parameters, input validation, ``fit``,
batched prediction and its state as plain data (``_to_state`` /
``_from_state``, behind pickling and the model files). The parts it combines
live beside it: the network in :mod:`.resnet`, the data path (arrays and
Datasets to tensors) in :mod:`._data`, the training loop with its
learning-rate schedule and batch-norm pass in :mod:`._training`, checkpoints
in :mod:`._checkpoint` and the state's keys in :mod:`._state`.

PyTorch is optional: this module imports without it, and ``fit`` raises an
ImportError naming what to install.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..features.significance import SIGNIFICANCE_RANGE
from . import _state
from ._data import (
    INPUT_CHANNELS,
    ArrayImages,
    DatasetImages,
    input_stage,
    is_dataset,
    label_key,
    scan_dataset,
    tensor_stage,
)
from ._torch import require_torch
from ._training import dihedral, mean_image, torch_session, train
from .topology import TOPOLOGY_PARAMETERS

__all__ = ["DeepFreakClassifier"]

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
    input_transform : {None, "significance", "significance_top2"}, default None
        What the network sees of an 8-bit image. None: the grey values (the
        paper). ``"significance"``: :func:`~diffranet.features.significance.significance_map`,
        each 4 x 4 block's maximum in units of the local background noise
        above the local background (a 128 x 128 map of a 512 x 512 image), so
        the input means the same on every detector, beam and background; the
        map's clip range is then mapped to [0, 1] (``pixel_range`` must be None).
        ``"significance_top2"``: the same for each block's two largest values,
        as two channels (``significance_map(..., second=True)``): a spot a peak
        finder counts has two pixels that stand out, a hot pixel or a noise
        spike one. ``init`` may then be a fitted ``"significance"`` model: its
        first convolution reads the first channel, the second starts at zero.
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
        Per-pixel mean of the rescaled, resized training images (of each
        channel: shape (2, input_size, input_size) with ``"significance_top2"``).
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
        "input_transform": [None, StrOptions({name for name in INPUT_CHANNELS if name is not None})],
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

        return build_resnet(self.depth, n_classes, in_channels=INPUT_CHANNELS[self.input_transform],
                            **self._network_kwargs())

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
        return input_stage(batch, self.input_transform)

    def _tensor_stage(self, x, torch, device, mean=None):
        """(B, rows, cols) tensor of :meth:`_input_stage` -> (B, 1, input_size, input_size) float32 tensor.

        See :func:`._data.tensor_stage`.
        """
        return tensor_stage(x, torch, device, input_size=self.input_size, resize=self.resize,
                            pixel_range=self.pixel_range_, mean=mean)

    def _preprocess(self, batch, torch, device, mean=None):
        """Float tensor (B, 1, input_size, input_size): transformed, rescaled, resized, mean-subtracted."""
        return self._tensor_stage(torch.from_numpy(self._input_stage(batch)), torch, device, mean)

    def _augment(self, x, generator, torch):
        """The batch under random symmetries of the square (``augment="dihedral"``)."""
        if self.augment is None:
            return x
        return dihedral(x, generator, torch)

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
        if is_dataset(X):
            if y is not None:
                raise ValueError("y must be None when X is a Dataset of (image, label) pairs")
            labels, shape, observed_range = scan_dataset(X)
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
        if self.input_transform is not None:
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

        with torch_session(torch, self.n_threads, deterministic=True):
            if is_dataset(X):
                index = {label: i for i, label in enumerate(self.classes_.tolist())}
                dataset = DatasetImages(X, index=index)
            else:
                dataset = ArrayImages(X, encoded)
            val_set = self._validation_set(validation)
            self.mean_image_ = mean_image(dataset, lambda images: self._preprocess(images, torch, device),
                                          input_size=self.input_size, batch_size=self.predict_batch_size,
                                          workers=self.workers, torch=torch, device=device)
            network, history = train(self, dataset, encoded, seed, torch, device, val_set)
        for name, value in history.items():
            setattr(self, name, value)
        self._set_model(network)
        return self

    def _validation_set(self, validation):
        """(images, encoded labels) of a validation set given to ``fit``, or None."""
        if validation is None:
            return None
        index = {label: i for i, label in enumerate(self.classes_.tolist())}
        if is_dataset(validation):
            images = DatasetImages(validation, index=index)
            labels = np.array([label_key(validation[i][1]) for i in range(len(validation))]) \
                if not hasattr(validation, "labels") else np.asarray(validation.labels)
        else:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ValueError("validation must be (X_val, y_val) or a Dataset of (image, label) pairs")
            X_val, labels = validation
            X_val = self._as_stack(np.asarray(X_val), reset=False)
            labels = np.asarray(labels)
            if len(X_val) != len(labels):
                raise ValueError(f"validation has {len(X_val)} images but {len(labels)} labels")
            images = ArrayImages(X_val)
        if len(labels) == 0:
            raise ValueError("validation must hold at least one image")
        try:
            encoded = np.array([index[label_key(label)] for label in labels.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"validation label {exc.args[0]!r} was not seen in the training labels") from None
        return images, encoded

    def _initial_weights(self):
        """The weights of ``init``, after checking that they fit this network and these classes."""
        init = self.init
        if not isinstance(init, DeepFreakClassifier) or not hasattr(init, "model_"):
            raise ValueError(f"init must be a fitted DeepFreakClassifier, got {type(init).__name__}")
        mine, theirs = self._network_kwargs(), init._network_kwargs()
        differ = sorted(k for k in mine if mine[k] != theirs[k])
        widened = (init.input_transform, self.input_transform) == ("significance", "significance_top2")
        if init.depth != self.depth or differ or (init.input_transform != self.input_transform and not widened):
            raise ValueError(f"init has another network ({', '.join(differ) or 'depth or input_transform'} differ)")
        if list(np.asarray(init.classes_).tolist()) != list(self.classes_.tolist()):
            raise ValueError(f"init was fitted on the classes {list(init.classes_)}, not {list(self.classes_)}")
        weights = {k: v.detach().cpu().clone() for k, v in init.model_.state_dict().items()}
        if widened:
            # the block maxima keep their filters; the second values start unread: the same function at first
            first = weights["conv1.weight"]
            weights["conv1.weight"] = first.new_zeros((first.shape[0], 2, *first.shape[2:]))
            weights["conv1.weight"][:, :1] = first
        return weights

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
        if is_dataset(X):
            dataset = DatasetImages(X)
            n = len(dataset)
        else:
            X = self._validate_images(X, reset=False)
            dataset, n = ArrayImages(X), len(X)
        device = next(self.model_.parameters()).device
        mean = torch.from_numpy(self.mean_image_).to(device)
        proba = np.empty((n, len(self.classes_)), dtype=np.float64)
        with torch_session(torch, self.n_threads, deterministic=False), torch.inference_mode():
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

    # ------------------------------------------------------------------- state

    def _to_state(self):
        """The fitted estimator as plain data: what :meth:`_from_state` rebuilds it from.

        Returns
        -------
        dict
            ``params`` (``get_params(deep=False)``), ``classes`` (``classes_``),
            ``fitted`` (the fitted attributes prediction needs: ``n_features_in_``,
            ``image_shape_``, ``pixel_range_``, ``mean_image_``, and
            ``device_`` when set), ``history`` (``seed_``, ``loss_curve_``,
            ``validation_scores_``, ``epoch_seconds_``, ``n_epochs_``, those
            set) and ``network`` (the network's ``state_dict``, detached CPU
            tensors; they share memory with a network on the CPU). See
            :mod:`diffranet.models._state`.

        Raises
        ------
        NotFittedError
            If the estimator has no network.
        """
        check_is_fitted(self, "model_")
        state = _state.from_attributes(vars(self), self.get_params(deep=False))
        # Weights only, on CPU: the state loads on a machine without the training GPU.
        state["network"] = {name: t.detach().cpu() for name, t in self.model_.state_dict().items()}
        return state

    @classmethod
    def _from_state(cls, state):
        """A fitted estimator rebuilt from :meth:`_to_state`'s dict.

        The keys are checked first, then the parameters, then the shapes of
        the network's tensors against the network the parameters describe
        (computed on torch's meta device, without allocating it): a state
        whose weights do not fit is refused before any network is built. The
        network goes to ``fitted["device_"]`` when that device is available,
        else to the CPU.

        Parameters
        ----------
        state : dict
            As from :meth:`_to_state`; the ``network`` tensors may be numpy arrays.

        Returns
        -------
        DeepFreakClassifier

        Raises
        ------
        ValueError
            If a key is missing or unknown, a parameter or fitted value is
            invalid, or the weights do not fit the network.
        """
        _state.check_keys(state, cls().get_params(deep=False))
        estimator = cls(**state["params"])
        try:
            estimator._validate_params()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"DeepFreak: {exc}") from None
        estimator.classes_ = np.asarray(state["classes"])
        if estimator.classes_.ndim != 1 or len(estimator.classes_) < 2:
            raise ValueError(f"DeepFreak state classes: expected 2 or more labels, got {state['classes']!r}")
        fitted = state["fitted"]
        estimator.n_features_in_ = int(fitted["n_features_in_"])
        estimator.image_shape_ = tuple(int(s) for s in fitted["image_shape_"])
        estimator.pixel_range_ = tuple(float(v) for v in fitted["pixel_range_"])
        mean = np.asarray(fitted["mean_image_"], dtype=np.float32)
        channels = INPUT_CHANNELS[estimator.input_transform]
        expected = (estimator.input_size,) * 2 if channels == 1 else (channels, *(estimator.input_size,) * 2)
        if mean.shape != expected:
            raise ValueError(f"DeepFreak state mean_image_ has shape {mean.shape}, expected {expected}")
        if not np.all(np.isfinite(mean)):
            raise ValueError("DeepFreak state mean_image_ holds non-finite values")
        estimator.mean_image_ = mean
        if "feature_names_in_" in fitted:
            estimator.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
        for name, value in state["history"].items():
            setattr(estimator, name, int(value) if name in ("seed_", "n_epochs_") else [float(v) for v in value])

        torch = require_torch()
        weights = {name: t if isinstance(t, torch.Tensor) else torch.tensor(np.asarray(t))
                   for name, t in state["network"].items()}
        n_classes = len(estimator.classes_)
        with torch.random.fork_rng(devices=[]):
            with torch.device("meta"):
                described = estimator._build_network(n_classes)
            expected = {name: tuple(t.shape) for name, t in described.state_dict().items()}
            _state.check_shapes(expected, {name: tuple(t.shape) for name, t in weights.items()})
            network = estimator._build_network(n_classes)
        network.load_state_dict(weights, strict=True)
        device = torch.device(fitted.get("device_", "cpu"))
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")
        estimator.device_ = str(device)
        estimator._set_model(network.to(device))
        return estimator

    # ---------------------------------------------------------------- pickling

    def __getstate__(self):
        if not hasattr(self, "model_"):  # not fitted: the parameters, as for any estimator
            return dict(super().__getstate__())  # a copy: pickling changes nothing
        state = self._to_state()
        # The weights stand apart, under the key pickles have always held them in.
        return {"_model_state": state.pop("network"), "_deepfreak_state": state}

    def __setstate__(self, state):
        weights = state.get("_model_state")
        if weights is None:
            super().__setstate__(state)
            return
        if "_deepfreak_state" in state:
            saved = dict(state["_deepfreak_state"], network=weights)
        else:
            # The earlier layout: the estimator's attributes beside the weights; parameters it
            # predates take their defaults.
            defaults = type(self)().get_params(deep=False)
            params = {name: state.get(name, default) for name, default in defaults.items()}
            saved = dict(_state.from_attributes(state, params), network=weights)
        super().__setstate__(vars(type(self)._from_state(saved)))
