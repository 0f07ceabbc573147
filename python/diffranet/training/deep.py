"""Deep classifiers: train DeepFreak on a data folder, score it like the classic models, save it."""

from __future__ import annotations

import copy
import logging
import time

import numpy as np

from ..classes import CLASS_NAMES
from ..dataset.loader import has_split, is_dataset_dir, load_split
from ..inference import save_model
from ..inference.training_input import training_input
from ..models import DeepFreakClassifier
from ..training_history import training_history
from .metrics import evaluate_splits

__all__ = ["raw_image", "save_deepfreak", "train_deepfreak"]

_log = logging.getLogger(__name__)


def raw_image(image):
    """The uint8 image as stored (DeepFreak rescales and resizes it itself, as in prediction)."""
    return image


def _split(data_dir, split):
    """(X, y) of a split: a lazy torch Dataset for generated shards (memory stays bounded), arrays otherwise."""
    if is_dataset_dir(data_dir):
        # imported on use: ShardDataset is a torch Dataset, and torch is optional
        from ..dataset.loader import ShardDataset

        dataset = ShardDataset(data_dir, split, transform=raw_image)
        return dataset, dataset.labels
    return load_split(data_dir, split)


def _fit_input(X, y):
    """Arguments of ``fit``: a Dataset alone, or the arrays."""
    return (X, y) if isinstance(X, np.ndarray) else (X,)


def train_deepfreak(data_dir, out=None, **params):
    """Train a :class:`~diffranet.models.DeepFreakClassifier` on ``data_dir``, score it on val/test, save it.

    The training split is read through :class:`~diffranet.dataset.loader.ShardDataset`
    for a generated dataset (one image at a time, in DataLoader workers when
    ``workers`` > 0), so memory stays bounded whatever its size. The
    validation split, when there is one, is scored after every epoch and, with
    ``early_stopping``, picks the epoch whose weights are kept.

    Parameters
    ----------
    data_dir : path-like
        Either layout read by :func:`diffranet.dataset.loader.load_split`.
    out : path-like, optional
        Model file to write (:func:`diffranet.inference.save_model`, ``.dfm``),
        with the training history and scores in its metadata.
    **params
        Parameters of :class:`~diffranet.models.DeepFreakClassifier`
        (``epochs``, ``checkpoint_path``, ``n_threads``, ``workers``, ...).

    Returns
    -------
    model : DeepFreakClassifier
        The fitted classifier.
    metrics : dict
        Split name -> :func:`diffranet.training.metrics.split_scores` result, plus
        ``train_seconds`` (this run) and ``train_images_per_s`` (training
        images per second of training pass, mean over the epochs).
    """
    X, y = _split(data_dir, "train")
    validation = None
    if has_split(data_dir, "val"):
        X_val, y_val = _split(data_dir, "val")
        validation = X_val if not isinstance(X_val, np.ndarray) else (X_val, y_val)
    _log.info(f"train: {len(y)} images" + ("" if validation is None else f", validation: {len(y_val)} images"))
    model = DeepFreakClassifier(**params)
    start = time.perf_counter()
    model.fit(*_fit_input(X, y), validation=validation)
    metrics = {"train_seconds": time.perf_counter() - start}
    n_train = len(y) if not model.early_stopping or validation is not None \
        else len(y) - int(np.ceil(model.validation_fraction * len(y)))
    if model.epoch_seconds_:
        metrics["train_images_per_s"] = n_train * len(model.epoch_seconds_) / sum(model.epoch_seconds_)
    _log.info(f"fitted in {metrics['train_seconds']:.1f} s, {model.n_epochs_} epochs")
    metrics.update(evaluate_splits(model, data_dir, load=_split))
    if out is not None:
        save_deepfreak(model, out, data_dir, y, metrics)
        _log.info(f"saved {out}")
    return model, metrics


def save_deepfreak(model, out, data_dir, labels, metrics):
    """Write a fitted DeepFreak model file with its training history and scores.

    Settings of the training run only (threads, DataLoader workers, device,
    checkpoint, progress bar) are not kept: the loaded model predicts with
    torch's thread count, on the CPU unless moved.
    """
    model = copy.copy(model).set_params(n_threads=None, workers=0, device="auto", checkpoint_path=None, verbose=0,
                                        init=None)
    preprocessing, summary = training_input(data_dir, model.image_shape_, labels)
    summary.update(metrics=metrics, history=training_history(model))
    return save_model(model, out, class_names=CLASS_NAMES, preprocessing=preprocessing, training=summary)
